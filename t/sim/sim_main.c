/*
 * sim --seeds N [--from S] [--jobs J]: runs N seeds, J processes over
 *     disjoint seeds, and prints the figures; exit 1 if any seed failed.
 * sim --seed S: replays one seed with its trace.
 * --expect-fail: a planted bug; exit 0 only if some seed failed.
 * --list: print each failing seed; --stop: every process stops once any
 *     seed failed (a planted bug needs one).
 */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sim.h"


static void
sim_usage(void)
{
    fprintf(stderr, "usage: sim [--seeds N] [--from S] [--jobs J] "
            "[--replay CMD] [--expect-fail] [--list] [--stop]\n"
            "       sim --seed S\n");
    exit(2);
}


static void
sim_merge(sim_stats_t *to, const sim_stats_t *from)
{
    int  k;

    to->seeds += from->seeds;
    to->sim_ms += from->sim_ms;
    to->events += from->events;
    to->elections += from->elections;
    to->started += from->started;
    to->requests += from->requests;
    to->conflicts += from->conflicts;
    to->watch_events += from->watch_events;
    to->foreign_overlaps += from->foreign_overlaps;
    to->foreign_unnamed += from->foreign_unnamed;
    to->term_resets += from->term_resets;
    to->calm_lapses += from->calm_lapses;

    for (k = 0; k < SIM_F_KINDS; k++) {
        to->faults[k] += from->faults[k];
    }
    for (k = 0; k < SIM_V_KINDS; k++) {
        to->violations[k] += from->violations[k];
    }

    if (from->worst_bound
        && (to->worst_bound == 0
            || from->worst_takeover * 1000 / from->worst_bound
               > to->worst_takeover * 1000 / to->worst_bound))
    {
        to->worst_takeover = from->worst_takeover;
        to->worst_bound = from->worst_bound;
    }

    if (from->failed
        && (to->failed == 0 || from->first_failed < to->first_failed))
    {
        to->first_failed = from->first_failed;
        to->first_violation = from->first_violation;
        to->first_at = from->first_at;
        memcpy(to->first_why, from->first_why, sizeof(to->first_why));
    }

    to->failed += from->failed;
}


static int  sim_list;
static int  sim_stop;
static int *sim_failed_any;    /* shared by the processes of a run */


static void
sim_span(uint64_t from, uint64_t count, uint64_t step, uint64_t k,
    sim_stats_t *st)
{
    uint64_t  s;
    char      line[400];
    int       n;

    for (s = from + k; s < from + count; s += step) {
        if (sim_stop && *sim_failed_any) {
            break;
        }
        if (sim_run(s, 0, st) == 0) {
            continue;
        }
        *sim_failed_any = 1;
        if (sim_list) {
            n = snprintf(line, sizeof(line), "seed %" PRIu64 ": %s\n", s,
                         sim.why);
            if (write(1, line, (size_t) n) < 0) {
                /* nothing to do */
            }
        }
    }
}


static void
sim_report(const sim_stats_t *st, uint64_t from, uint64_t count, int jobs,
    double wall, const char *replay)
{
    int  k;

    printf("sim: seeds %" PRIu64 "..%" PRIu64 " (%" PRIu64 " run), %d "
           "process%s, %.1fs\n", from, from + count - 1, st->seeds, jobs,
           jobs == 1 ? "" : "es", wall);
    printf("  simulated: %.1f hours in %" PRIu64 " events\n",
           st->sim_ms / 3.6e6, st->events);
    printf("  elections: %" PRIu64 " leadership changes seen by readers, "
           "%" PRIu64 " STARTED_LEADING\n", st->elections, st->started);
    printf("  requests: %" PRIu64 " (%" PRIu64 " lost races: 409), watch "
           "events: %" PRIu64 "\n", st->requests, st->conflicts,
           st->watch_events);
    printf("  faults:\n");
    for (k = 0; k < SIM_F_KINDS; k++) {
        printf("    %-42s %10" PRIu64 "\n", sim_fault_name(k), st->faults[k]);
    }
    printf("  foreign writes, counted (no lease protocol prevents them):\n");
    printf("    %-58s %6" PRIu64 "\n", "two leaders: a foreign lease shorter "
           "than the leader's claim", st->foreign_overlaps);
    printf("    %-58s %6" PRIu64 "\n", "a leader unnamed until it read the "
           "foreign write", st->foreign_unnamed);
    printf("    %-58s %6" PRIu64 "\n", "fencing token restarted by a foreign "
           "write", st->term_resets);
    printf("  leads that lapsed after the faults, before the bound: %"
           PRIu64 "\n", st->calm_lapses);
    if (st->worst_bound) {
        printf("  slowest leader after the faults: %.3fs (its bound "
               "%.3fs)\n", st->worst_takeover / 1e3, st->worst_bound / 1e3);
    }

    printf("  violations: %" PRIu64 " seeds failed\n", st->failed);
    for (k = 0; k < SIM_V_KINDS; k++) {
        if (st->violations[k]) {
            printf("    %-42s %10" PRIu64 "\n", sim_violation_name(k),
                   st->violations[k]);
        }
    }

    if (st->failed) {
        printf("  first failing seed %" PRIu64 ": %s\n", st->first_failed,
               st->first_why);
        printf("  replay: %s%" PRIu64 "\n", replay, st->first_failed);
    }
}


int
main(int argc, char **argv)
{
    sim_stats_t     st, part;
    struct timeval  a, b;
    uint64_t        from, count, seed;
    const char     *replay;
    pid_t           pids[64];
    int             fds[64][2];
    int             i, jobs, one, expect_fail, rc;
    ssize_t         n;

    from = 1;
    count = 10000;
    jobs = 1;
    one = 0;
    seed = 0;
    expect_fail = 0;
    replay = "make sim SEED=";

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--seeds") == 0 && i + 1 < argc) {
            count = strtoull(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--from") == 0 && i + 1 < argc) {
            from = strtoull(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--jobs") == 0 && i + 1 < argc) {
            jobs = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc) {
            seed = strtoull(argv[++i], NULL, 10);
            one = 1;
        } else if (strcmp(argv[i], "--replay") == 0 && i + 1 < argc) {
            replay = argv[++i];
        } else if (strcmp(argv[i], "--list") == 0) {
            sim_list = 1;
        } else if (strcmp(argv[i], "--stop") == 0) {
            sim_stop = 1;
        } else if (strcmp(argv[i], "--expect-fail") == 0) {
            expect_fail = 1;
        } else {
            sim_usage();
        }
    }

    if (jobs < 1 || jobs > 64 || count == 0) {
        sim_usage();
    }

    memset(&st, 0, sizeof(st));

    sim_failed_any = mmap(NULL, sizeof(int), PROT_READ | PROT_WRITE,
                          MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sim_failed_any == MAP_FAILED) {
        perror("mmap");
        return 2;
    }
    *sim_failed_any = 0;

    if (one) {
        rc = sim_run(seed, 1, &st);
        if (rc != 0) {
            printf("seed %" PRIu64 " FAILED: %s\n", seed, st.first_why);
        } else {
            printf("seed %" PRIu64 ": every invariant held\n", seed);
        }
        return rc != 0;
    }

    gettimeofday(&a, NULL);

    if (jobs == 1) {
        sim_span(from, count, 1, 0, &st);

    } else {
        for (i = 0; i < jobs; i++) {
            if (pipe(fds[i]) != 0) {
                perror("pipe");
                return 2;
            }
            pids[i] = fork();
            if (pids[i] < 0) {
                perror("fork");
                return 2;
            }
            if (pids[i] == 0) {
                close(fds[i][0]);
                memset(&part, 0, sizeof(part));
                sim_span(from, count, (uint64_t) jobs, (uint64_t) i, &part);
                n = write(fds[i][1], &part, sizeof(part));
                _exit(n == (ssize_t) sizeof(part) ? 0 : 1);
            }
            close(fds[i][1]);
        }

        for (i = 0; i < jobs; i++) {
            memset(&part, 0, sizeof(part));
            do {
                n = read(fds[i][0], &part, sizeof(part));
            } while (n < 0 && errno == EINTR);
            close(fds[i][0]);
            waitpid(pids[i], &rc, 0);
            if (n != (ssize_t) sizeof(part) || !WIFEXITED(rc)
                || WEXITSTATUS(rc) != 0)
            {
                fprintf(stderr, "sim: worker %d died\n", i);
                return 2;
            }
            sim_merge(&st, &part);
        }
    }

    gettimeofday(&b, NULL);

    sim_report(&st, from, count, jobs,
               (double) (b.tv_sec - a.tv_sec)
               + (b.tv_usec - a.tv_usec) / 1e6, replay);

    if (expect_fail) {
        return st.failed ? 0 : 1;
    }

    return st.failed ? 1 : 0;
}
