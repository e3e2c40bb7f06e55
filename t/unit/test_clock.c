/*
 * The clock claims and readers use: kle_now_ms() is never behind
 * CLOCK_BOOTTIME read before it and never goes back, so a claim checked
 * against it can only end early.  Checked over millions of samples while
 * another thread keeps a core busy.
 *
 * The readers used to read CLOCK_MONOTONIC_COARSE plus its resolution as
 * an upper bound: the same samples measure that bound against
 * CLOCK_MONOTONIC and CLOCK_BOOTTIME (which has no coarse variant: the
 * coarse clock moved by the offset between the two, taken so that it errs
 * high) and print how often it was behind, to show why it is no longer
 * used (a late tick, as under a hypervisor, leaves the coarse clock more
 * than a resolution behind).
 */

#define _GNU_SOURCE

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "kle_clock.h"
#include "kle_test.h"


#define SAMPLES  3000000
#define LIMIT_MS 5000      /* under valgrind: fewer samples, same checks */


static volatile int  busy_stop;


static int64_t
ns(clockid_t id)
{
    struct timespec  ts;

    clock_gettime(id, &ts);
    return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}


static void *
busy(void *arg)
{
    volatile uint64_t  n = 0;

    (void) arg;

    while (!busy_stop) {
        n++;
    }

    return NULL;
}


int
main(void)
{
    int              i;
    int64_t          start, res, mono, boot, coarse, off, worst, worst_boot;
    int64_t          ms, prev, worst_ms, n;
    long             bad, bad_boot, bad_ms;
    pthread_t        t;
    struct timespec  ts;

    if (clock_getres(CLOCK_MONOTONIC_COARSE, &ts) != 0) {
        printf("1..0 # SKIP no CLOCK_MONOTONIC_COARSE\n");
        return 0;
    }

    res = (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
    printf("# CLOCK_MONOTONIC_COARSE resolution %lld ns\n", (long long) res);

    ok(res > 0 && res <= 100000000, "a resolution between 0 and 100 ms");

    /*
     * The offset of CLOCK_BOOTTIME over CLOCK_MONOTONIC (the time spent
     * suspended), read so that it errs high: BOOTTIME after MONOTONIC.
     */
    mono = ns(CLOCK_MONOTONIC);
    off = ns(CLOCK_BOOTTIME) - mono;

    pthread_create(&t, NULL, busy, NULL);

    bad = bad_boot = bad_ms = 0;
    worst = worst_boot = worst_ms = INT64_MIN;

    start = kle_now_ms();
    prev = start;

    for (i = 0; i < SAMPLES; i++) {
        if ((i & 0xffff) == 0 && kle_now_ms() - start > LIMIT_MS) {
            break;
        }

        mono = ns(CLOCK_MONOTONIC);
        boot = ns(CLOCK_BOOTTIME);
        coarse = ns(CLOCK_MONOTONIC_COARSE) + res;

        /* how far the precise clock is ahead of that old bound (a count) */
        n = mono - coarse;
        bad += n > 0;
        worst = n > worst ? n : worst;

        n = boot - (coarse + off);
        bad_boot += n > 0;
        worst_boot = n > worst_boot ? n : worst_boot;

        /* never behind CLOCK_BOOTTIME read before it, never back */
        ms = kle_now_ms();
        n = boot / 1000000 - ms;
        n = (prev - ms) > n ? prev - ms : n;
        bad_ms += n > 0;
        worst_ms = n > worst_ms ? n : worst_ms;
        prev = ms;
    }

    busy_stop = 1;
    pthread_join(t, NULL);

    printf("# %d samples: coarse + resolution behind CLOCK_MONOTONIC in "
           "%ld (worst %lld ns), behind CLOCK_BOOTTIME in %ld (worst %lld ns)"
           "\n", i, bad, (long long) worst, bad_boot,
           (long long) worst_boot);

    is_int(bad_ms, 0, "kle_now_ms() never behind CLOCK_BOOTTIME, never back");

    if (bad_ms) {
        printf("#   by up to %lld ms\n", (long long) worst_ms);
    }

    /* and it is not ahead: within a ms of CLOCK_BOOTTIME read after it */
    ms = kle_now_ms();
    boot = ns(CLOCK_BOOTTIME);
    ok(ms <= boot / 1000000, "kle_now_ms() is not ahead of CLOCK_BOOTTIME");

    return done_testing();
}
