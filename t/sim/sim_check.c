/*
 * The invariants, checked after every event (between events no reader can
 * start saying leader: a claim only ends with time):
 *
 *   - at most one instance's readers say leader;
 *   - when one does, the server's record names it;
 *   - no instance's readers say leader after its release was asked for;
 *   - the transition count grows by one with every new holder, and the
 *     term readers see grows with every new leader;
 *   - once the faults and what they set in motion are over, a leader
 *     emerges within the bound and keeps the lead.
 *
 * Foreign writes relax the first two, precisely: a leader that has not
 * yet read a foreign write may be unnamed, and a second leader may appear
 * when the foreign record's lease (0 for a delete, a free record or one
 * naming one of ours) ends before the first leader's claim does.  No
 * lease protocol can prevent that; such cases are counted, not hidden.
 */

#include <inttypes.h>
#include <stdarg.h>
#include <string.h>

#include "sim.h"


void
sim_violation(int v, const char *fmt, ...)
{
    va_list  ap;
    char     msg[200];

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    sim.st->violations[v]++;

    if (sim.v_first < 0) {
        sim.v_first = v;
        snprintf(sim.why, sizeof(sim.why), "%s at %.3fs: %s",
                 sim_violation_name(v), sim.t / 1e3, msg);
    }

    if (sim.trace) {
        sim_tr(-3, "VIOLATION %s: %s", sim_violation_name(v), msg);
    }
}


/*
 * A foreign write F the leader x has not read: it came after the write
 * that made x's claim, and x has read no version as new that does not
 * name it.  (A read that
 * arrives while x's write is in flight counts: if the write then
 * succeeds, it was applied before that read's version, since a write
 * conditioned on an older version fails after it.)  A hand-written
 * record naming x reads as x's own: reading it changes nothing, yet its
 * lease may be shorter than x's claim.
 */
static int
sim_unread_foreign(const sim_inst_t *x, const sim_foreign_t *f)
{
    return f->rv > x->pub.claim_rv
           && (x->seen_rv < f->rv || strcmp(f->holder, x->pub.id) == 0);
}


/*
 * x claims from before a foreign write that it has not read; y's claim
 * came after it; and the foreign lease ran out (on the fastest clock)
 * before x's claim ends.  Then an honest y could take over in time.
 */
static int
sim_excused_overlap(const sim_inst_t *x, const sim_inst_t *y)
{
    const sim_foreign_t  *f;
    int64_t               end;
    int                   k;

    end = sim_at_mono(x, x->pub.claim_until);

    for (k = 0; k < sim.nforeign && k < SIM_FOREIGN; k++) {
        f = &sim.foreign[k];
        if (sim_unread_foreign(x, f) && y->pub.claim_rv > f->rv
            && f->t + f->lease * SIM_PPM / sim.rate_max < end)
        {
            return 1;
        }
    }

    return 0;
}


/* Why a leader's claim is wrong, when the machine could have known. */
static const char *
sim_stale(const sim_inst_t *x, char *buf, size_t size)
{
    if (x->seen_rv <= x->pub.claim_rv) {
        return "";
    }

    snprintf(buf, size, " (%s's claim comes from a write at rv %" PRId64
             ", older than rv %" PRId64 " it had read)", x->pub.id,
             x->pub.claim_rv, x->seen_rv);

    return buf;
}


static void
sim_check_overlap(int a, int b)
{
    sim_inst_t  *x, *y;
    char         buf[160];
    int          pair;

    x = &sim.inst[a];
    y = &sim.inst[b];

    /* x: the older claim */
    if (x->pub.claim_rv > y->pub.claim_rv) {
        x = &sim.inst[b];
        y = &sim.inst[a];
    }

    pair = (int) (x - sim.inst) * SIM_INST_MAX + (int) (y - sim.inst);
    if (pair == sim.overlap_pair) {
        return;
    }
    sim.overlap_pair = pair;

    if (sim_excused_overlap(x, y)) {
        sim.st->foreign_overlaps++;
        TR(-3, "%s and %s both leader: %s's claim outlives a foreign "
           "record it has not read (counted, not a violation)", x->pub.id,
           y->pub.id, x->pub.id);
        return;
    }

    sim_violation(SIM_V_OVERLAP, "%s (term %d, claim from rv %" PRId64
                  ") and %s (term %d, claim from rv %" PRId64
                  ") are both leader%s", x->pub.id, (int) x->pub.term,
                  x->pub.claim_rv, y->pub.id, (int) y->pub.term,
                  y->pub.claim_rv, sim_stale(x, buf, sizeof(buf)));
}


static int
sim_foreign_since(int64_t rv)
{
    return sim.foreign_rv > rv;
}


static void
sim_check_leader(int i)
{
    sim_inst_t  *in;
    char         buf[160], nonce[KLE_INSTANCE_MAX];
    int          k, excused;

    in = &sim.inst[i];
    sim_nonce(i, nonce);

    /* named, and not in another instance's nonce (a twin's) */
    if (!sim.exists || !sim_names(&sim.rec, in->pub.id)
        || (sim.rec.instance[0] != '\0'
            && strcmp(sim.rec.instance, nonce) != 0))
    {
        excused = 0;
        for (k = 0; k < sim.nforeign && k < SIM_FOREIGN; k++) {
            if (sim_unread_foreign(in, &sim.foreign[k])) {
                excused = 1;
            }
        }

        if (!excused) {
            sim_violation(SIM_V_NOT_NAMED, "%s is leader, the server's "
                          "record names \"%.20s\"%s", in->pub.id,
                          sim.exists ? sim.rec.holder : "(deleted)",
                          sim_stale(in, buf, sizeof(buf)));

        } else if (!sim.unnamed) {
            sim.unnamed = 1;
            sim.st->foreign_unnamed++;
            TR(-3, "%s is leader but unnamed: a foreign write it has not "
               "read yet (counted, not a violation)", in->pub.id);
        }

    } else {
        sim.unnamed = 0;
    }

    if (sim.last_leader == i && strcmp(sim.last_id, in->pub.id) == 0) {
        if (in->pub.term < sim.last_term
            && !sim_foreign_since(sim.last_claim_rv))
        {
            sim_violation(SIM_V_TERM, "%s's term went back from %d to %d",
                          in->pub.id, (int) sim.last_term,
                          (int) in->pub.term);
        }

    } else {
        sim.st->elections++;

        if (sim.last_leader >= 0 && in->pub.term <= sim.last_term) {
            if (in->pub.claim_rv < sim.last_claim_rv) {
                /*
                 * Not a new lead: an older claim that outlived a foreign
                 * write, judged as such by the checks above.
                 */
                TR(-3, "%s's older claim outlives %s's", in->pub.id,
                   sim.last_id);

            } else if (sim_foreign_since(sim.last_claim_rv)) {
                sim.st->term_resets++;
                TR(-3, "term %d after %d: a foreign write restarted the "
                   "count (counted, not a violation)", (int) in->pub.term,
                   (int) sim.last_term);
            } else {
                sim_violation(SIM_V_TERM, "%s leads with term %d after %s "
                              "with term %d", in->pub.id, (int) in->pub.term,
                              sim.last_id, (int) sim.last_term);
            }
        }

        TR(-3, "readers: %s leads, term %d", in->pub.id, (int) in->pub.term);
    }

    sim.last_leader = i;
    memcpy(sim.last_id, in->pub.id, sizeof(sim.last_id));
    sim.last_term = in->pub.term;
    sim.last_claim_rv = in->pub.claim_rv;
}


/*
 * Liveness: a leader by calm_start + bound, and from then on the same
 * leader without a gap.  Before the bound, a lead that lapses and comes
 * back is counted (a claim made by a slow write can end before its
 * first renewal).
 */
static void
sim_check_calm(int n, int i)
{
    if (sim.chaos || sim.calm_bound == 0 || sim.t < sim.calm_start) {
        return;
    }

    if (sim.t <= sim.calm_start + sim.calm_bound) {
        if (n == 1 && sim.first_calm_leader < 0) {
            sim.first_calm_leader = sim.t;
        }
        if (n == 0 && sim.first_calm_leader >= 0 && !sim.calm_lapsed) {
            sim.calm_lapsed = 1;
            sim.st->calm_lapses++;
            TR(-3, "the lead lapsed before the bound (counted)");
        }
        return;
    }

    if (n != 1) {
        sim_violation(SIM_V_LIVENESS, "%s %.3fs after the faults ended "
                      "(bound %.3fs)", sim.calm_id[0] ? "the lead lapsed"
                      : "no leader", (sim.t - sim.calm_start) / 1e3,
                      sim.calm_bound / 1e3);
        return;
    }

    if (sim.calm_id[0] == '\0') {
        sim.calm_leader = i;
        memcpy(sim.calm_id, sim.inst[i].pub.id, sizeof(sim.calm_id));
        return;
    }

    if (sim.calm_leader != i || strcmp(sim.calm_id, sim.inst[i].pub.id) != 0)
    {
        sim_violation(SIM_V_LIVENESS, "without faults, the lead moved "
                      "from %s to %s", sim.calm_id, sim.inst[i].pub.id);
    }
}


void
sim_check(void)
{
    sim_inst_t  *in;
    int32_t      token;
    int          lead[SIM_INST_MAX];
    int          i, n, leads;

    n = 0;

    for (i = 0; i < sim.n; i++) {
        in = &sim.inst[i];

        leads = sim_reader_leader(in, sim.t, &token);

        /* exact: a reader says leader inside its own claim, and only */

        if (leads != sim_claim_holds(in, sim.t)) {
            sim_violation(SIM_V_READER, "%s's readers say %s %+" PRId64
                          " ms from the end of its claim (term %d)",
                          in->name, leads ? "leader" : "not leader",
                          sim_mono(in, sim.t) - in->pub.claim_until,
                          (int) in->pub.term);
        }

        if (leads && token != in->pub.term) {
            sim_violation(SIM_V_READER, "%s's readers read token %d, its "
                          "claim's term is %d", in->name, (int) token,
                          (int) in->pub.term);
        }

        if (!leads) {
            continue;
        }

        lead[n++] = i;

        if (in->release_at >= 0) {
            sim_violation(SIM_V_RELEASED, "%s's readers say leader %.3fs "
                          "after its release was asked for", in->pub.id,
                          (sim.t - in->release_at) / 1e3);
        }
    }

    if (n >= 2) {
        sim_check_overlap(lead[0], lead[1]);
        if (n > 2) {
            sim_check_overlap(lead[1], lead[2]);
        }
        return;
    }

    sim.overlap_pair = -1;

    if (n == 1) {
        sim_check_leader(lead[0]);
    }

    sim_check_calm(n, n == 1 ? lead[0] : -1);
}


/* A candidate's write was stored over old. */
void
sim_check_write(int i, int kind, const kle_record_t *old, int existed,
    const kle_record_t *rec)
{
    int32_t  want;

    (void) kind;

    if (!existed) {
        return;
    }

    /* a new holder: another identity, or another instance of ours */
    if (rec->holder[0] != '\0'
        && (strcmp(rec->holder, old->holder) != 0
            || (old->instance[0] != '\0'
                && strcmp(rec->instance, old->instance) != 0)))
    {
        want = old->transitions < INT32_MAX ? old->transitions + 1
                                            : INT32_MAX;
    } else {
        want = old->transitions;
    }

    if (rec->transitions != want) {
        sim_violation(SIM_V_TERM, "%s wrote transitions %d over \"%.20s\"'s "
                      "%d", sim.inst[i].name, (int) rec->transitions,
                      old->holder, (int) old->transitions);
    }
}


void
sim_check_end(void)
{
    int64_t  d;

    if (sim.calm_bound == 0) {
        return;
    }

    if (sim.first_calm_leader < 0 || sim.calm_id[0] == '\0') {
        sim_violation(SIM_V_LIVENESS, "no leader by the end, %.3fs after "
                      "the faults ended (bound %.3fs)",
                      (sim.t - sim.calm_start) / 1e3, sim.calm_bound / 1e3);
        return;
    }

    d = sim.first_calm_leader - sim.calm_start;

    if (d * 1000 / sim.calm_bound
        > sim.st->worst_takeover * 1000 / (sim.st->worst_bound + 1))
    {
        sim.st->worst_takeover = d;
        sim.st->worst_bound = sim.calm_bound;
    }
}
