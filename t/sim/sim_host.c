/*
 * A model of each instance's host: what lib/kle_elector.c does around the
 * state machine (sends exactly the actions, feeds every answer with its
 * resourceVersion, keeps one watch and reports it, restarts it on
 * becoming leader, ignores events naming us while leading, revokes then
 * sends on release), and what the module publishes to its readers and
 * how they read it (docs/simulation.md).
 */

#include <inttypes.h>
#include <string.h>

#include "sim.h"

static void sim_host_events(int i, unsigned ev);
static void sim_host_publish(int i);
static void sim_host_wake(int i, int64_t until);
static void sim_host_watch_keep(int i);
static void sim_host_watch_closed(int i, int relist, int64_t backoff);
static void sim_host_cancel(int i);
static void sim_zone_limit(int i, int64_t until);
static void sim_host_seen(sim_inst_t *in, int64_t rv,
    const kle_record_t *rec);


void
sim_host_start(int i, int pool, int new_id)
{
    int64_t                now;
    kle_election_config_t  cfg;
    sim_inst_t            *in;
    sim_elector_t         *el;

    in = &sim.inst[i];
    el = &in->el;

    memset(el, 0, sizeof(*el));
    el->gen = ++sim.gens;
    el->running = 1;
    el->req = -1;
    el->relist = -1;
    el->inherit = 1;
    el->tm = sim.pool[pool];
    in->pool = pool;

    if (new_id) {
        in->ids++;
    }
    /* twins: a copied configuration gives instance 1 instance 0's name */
    snprintf(el->id, sizeof(el->id), "c%d", sim.twins && i == 1 ? 0 : i);
    if (in->ids) {
        snprintf(el->id + strlen(el->id), 8, "-%d", in->ids);
    }

    if (in->pub.id[0] != '\0' && strcmp(in->pub.id, el->id) != 0) {
        /* the claim published before is another identity's */
        TR(i, "identity %s: the published claim of %s is cleared", el->id,
           in->pub.id);
        memset(&in->pub, 0, sizeof(in->pub));
        sim_zone_write(i);
    }

    memset(&cfg, 0, sizeof(cfg));
    snprintf(cfg.identity, sizeof(cfg.identity), "%s", el->id);
    snprintf(cfg.address, sizeof(cfg.address), "10.0.0.%d:8080", i + 1);
    sim_nonce(i, cfg.instance);
    cfg.lease_duration = el->tm.ld;
    cfg.renew_deadline = el->tm.rd;
    cfg.retry_period = el->tm.rp;
    cfg.whole_seconds = sim.whole_seconds;

    kle_election_init(&el->e, &cfg, sim.seed * 131 + (uint64_t) el->gen);

    /*
     * The module caps an inherited claim at this elector's start plus its
     * renew deadline (ngx_http_leader_election_limit(), kle_claim_limit()):
     * any record it writes (perhaps with a shorter lease) is written
     * later, and followers time their takeover from it.
     */
    now = sim_mono(in, sim.t);
    sim_zone_limit(i, now + el->tm.rd);

    TR(i, "elector #%d starts as %s: lease %.3fs, renew deadline %.3fs, "
       "retry %.3fs", el->gen, el->id, el->tm.ld / 1e3, el->tm.rd / 1e3,
       el->tm.rp / 1e3);

    sim_host_run(i);
}


void
sim_nonce(int i, char *buf)
{
    snprintf(buf, KLE_INSTANCE_MAX, "%016x%016x", (unsigned) i + 1,
             (unsigned) sim.inst[i].life + 1);
}


/* kle_elector_run(): send what next() asks for until it says wait. */
void
sim_host_run(int i)
{
    sim_inst_t     *in;
    sim_elector_t  *el;
    kle_action_t    act;
    unsigned        ev;
    int             r, n;

    in = &sim.inst[i];
    el = &in->el;

    if (el->spin_t != sim.t) {
        el->spin_t = sim.t;
        el->spin = 0;
    }
    if (++el->spin > 64) {
        sim_violation(SIM_V_HOST, "%s: next() asks to run again at once, "
                      "forever", in->name);
        return;
    }

    for (n = 0; n < 8; n++) {
        if (!in->up || !el->running) {
            return;
        }

        ev = kle_election_next(&el->e, sim_mono(in, sim.t),
                               sim_wall(in, sim.t), &act);
        sim_host_events(i, ev);

        if (!el->running) {
            return;
        }

        if (el->e.state == KLE_STATE_RELEASED) {
            TR(i, "released: the elector is done");
            sim_host_stop(i);
            return;
        }

        sim_host_watch_keep(i);

        switch (act.kind) {

        case KLE_DO_NOTHING:
            el->wake_tok = ++sim.tok;
            if (act.until > 0) {
                /* leading with a request out: wake when the claim ends */
                sim_host_wake(i, act.until);
            }
            return;

        case KLE_DO_WAIT:
            sim_host_wake(i, act.until);
            return;

        default:
            if (el->req >= 0) {
                sim_violation(SIM_V_HOST, "%s: next() asked for a second "
                              "request", in->name);
                return;
            }
            r = sim_send(i, SIM_REQ_MACHINE, &act);
            if (r < 0) {
                return;
            }
            el->req = r;
            break;
        }
    }

    sim_violation(SIM_V_HOST, "%s: next() never says wait", in->name);
}


static void
sim_host_wake(int i, int64_t until)
{
    sim_inst_t     *in;
    sim_elector_t  *el;
    int64_t         at;

    in = &sim.inst[i];
    el = &in->el;

    at = sim_at_mono(in, until);
    if (at < sim.t) {
        at = sim.t;
    }

    /* timers may fire early: the machine must cope */
    if (sim_rand(8) == 0 && at > sim.t + 1) {
        at = sim_between(sim.t + 1, at - 1);
    }

    el->wake_tok = ++sim.tok;
    sim_push(at, SIM_EV_WAKE, i, el->wake_tok);
}


static void
sim_host_events(int i, unsigned ev)
{
    sim_inst_t     *in;
    sim_elector_t  *el;
    unsigned        more;

    in = &sim.inst[i];
    el = &in->el;

    if (ev & KLE_EV_STOPPED_LEADING) {
        if (!el->leading) {
            sim_violation(SIM_V_EVENTS, "%s: STOPPED_LEADING while not "
                          "leading", in->name);
        }
        el->leading = 0;
        TR(i, "STOPPED_LEADING");
    }

    if (ev & KLE_EV_STARTED_LEADING) {
        if (el->leading) {
            sim_violation(SIM_V_EVENTS, "%s: STARTED_LEADING twice",
                          in->name);
        }
        el->leading = 1;
        sim.st->started++;
        TR(i, "STARTED_LEADING term %d, claim until +%.3fs",
           (int) kle_election_term(&el->e),
           (kle_election_claim_until(&el->e) - sim_mono(in, sim.t)) / 1e3);

        /* the watch starts again from the write that made us leader */
        if (el->ws != SIM_WS_NONE) {
            sim_watch_cancel(el);
        }
        el->resume_rv = el->write_rv;
        el->watch_after = 0;
        if (el->watching) {
            el->watching = 0;
            more = kle_election_watching(&el->e, sim_mono(in, sim.t), 0);
            sim_host_events(i, more);
            return;
        }
    }

    if (el->leading != (el->e.state == KLE_STATE_LEADING)) {
        sim_violation(SIM_V_EVENTS, "%s: events say %sleading, the state "
                      "is %s", in->name, el->leading ? "" : "not ",
                      kle_state_name(el->e.state));
    }

    sim_host_publish(i);
}


/* The module's shared zone: leading, claim_until and term in one copy. */
static void
sim_host_publish(int i)
{
    sim_inst_t      *in;
    sim_elector_t   *el;
    kle_election_t  *e;
    sim_pub_t        p;

    in = &sim.inst[i];
    el = &in->el;
    e = &el->e;

    if (el->inherit) {
        /*
         * A new generation (reload, respawn) leaves the claim published
         * before until it leads or reads a record not naming it.
         */
        if (e->state == KLE_STATE_LEADING
            || (e->state != KLE_STATE_STARTING
                && !sim_names(&e->observed, el->id)))
        {
            el->inherit = 0;
        } else {
            return;
        }
    }

    /*
     * As ngx_http_leader_election_publish() reads kle_elector_status():
     * the claim is kle_election_claim_until()'s, none once a release is
     * asked for.
     */
    memset(&p, 0, sizeof(p));

    p.leading = (e->state == KLE_STATE_LEADING);
    p.claim_until = p.leading ? kle_election_claim_until(e) : 0;
    p.term = p.claim_until ? kle_election_term(e) : 0;
    p.renew_start = p.leading ? e->renew_start : 0;

    if (p.leading == in->pub.leading && p.claim_until == in->pub.claim_until
        && p.term == in->pub.term)
    {
        return;
    }

    if (p.claim_until == in->pub.claim_until) {
        p.claim_rv = in->pub.claim_rv;
    } else {
        p.claim_rv = el->write_rv;
        if (p.leading && p.claim_rv < in->seen_rv) {
            TR(i, "this claim's write (rv=%" PRId64 ") is older than rv=%"
               PRId64 ", already read, which does not name us", p.claim_rv,
               in->seen_rv);
        }
    }
    p.gen = el->gen;
    memcpy(p.id, el->id, sizeof(p.id));
    in->pub = p;
    sim_zone_write(i);

    if (p.claim_until != 0) {
        TR(i, "publish: claim term=%d until +%.3fs (write rv=%" PRId64 ")",
           (int) p.term, (p.claim_until - sim_mono(in, sim.t)) / 1e3,
           p.claim_rv);
    } else {
        TR(i, "publish: claim none");
    }
}


/*
 * The module's shared zone: what the host published, written through
 * lib/kle_claim (as ngx_http_leader_election_publish() writes it), and a
 * check at the instant the claim ends, so that a reader late by a
 * millisecond is seen (sim_check(): SIM_V_READER).
 */
void
sim_zone_write(int i)
{
    sim_inst_t  *in;
    int64_t      until;

    in = &sim.inst[i];

    if (kle_claim_begin(&in->zlock, &in->zclaim, 1, 0) != KLE_SEQ_OK) {
        sim_violation(SIM_V_HOST, "%s: the zone was left mid-write",
                      in->name);
        return;
    }

    until = in->pub.leading ? in->pub.claim_until : 0;

    in->zclaim.until = until;
    in->zclaim.term = until ? in->pub.term : 0;
    in->zclaim.leading = in->pub.leading;

    kle_seqlock_write_end(&in->zlock);

    if (until != 0) {
        sim_push(sim_at_mono(in, until), SIM_EV_CLAIM_END, i, 0);
    }
}


/*
 * The module's ngx_http_leader_election_limit(): the published claim ends
 * no later than until (0: at once), by lib/kle_claim's kle_claim_limit();
 * what the zone then holds is what the instance has published.
 */
static void
sim_zone_limit(int i, int64_t until)
{
    int          changed;
    sim_inst_t  *in;

    in = &sim.inst[i];

    if (kle_claim_begin(&in->zlock, &in->zclaim, 1, 0) != KLE_SEQ_OK) {
        sim_violation(SIM_V_HOST, "%s: the zone was left mid-write",
                      in->name);
        return;
    }

    changed = kle_claim_limit(&in->zclaim, until);

    kle_seqlock_write_end(&in->zlock);

    if (!changed) {
        return;
    }

    if (in->zclaim.until == 0) {
        memset(&in->pub, 0, sizeof(in->pub));
        TR(i, "publish: claim none (revoked)");
        return;
    }

    in->pub.claim_until = in->zclaim.until;
    in->pub.term = in->zclaim.term;

    sim_push(sim_at_mono(in, in->zclaim.until), SIM_EV_CLAIM_END, i, 0);

    TR(i, "the published claim is capped at +%.3fs",
       (in->zclaim.until - sim_mono(in, sim.t)) / 1e3);
}


/* A reader: lib/kle_claim's kle_claim_leads() on the instance's clock. */
int
sim_reader_leader(sim_inst_t *in, int64_t t, int32_t *token)
{
    int  leads;

    if (!in->up || in->paused_until > t) {
        return 0;
    }

    sim_clock_enter(in, t);
    leads = kle_claim_leads(&in->zlock, &in->zclaim, token);
    sim_clock_leave();

    return leads;
}


/* What a reader must say at t: its claim, to the millisecond. */
int
sim_claim_holds(const sim_inst_t *in, int64_t t)
{
    return in->up && in->paused_until <= t && in->pub.leading
           && in->pub.claim_until != 0
           && sim_mono(in, t) < in->pub.claim_until;
}


/*
 * What an instance's machine is fed.  A seconds-granular follower (as
 * client-go, which compares records as its LeaderElectionRecord marshals
 * them, metav1.Time in whole seconds) sees acquire and renew times
 * truncated to the second: renewals within one second look unchanged, so
 * its lease clock can start up to a second before the leader's claim.
 */
static const kle_record_t *
sim_host_sees(const sim_inst_t *in, const kle_record_t *rec,
    kle_record_t *buf)
{
    if (rec == NULL || !in->secs) {
        return rec;
    }

    *buf = *rec;
    buf->acquire_time -= buf->acquire_time % 1000000;
    buf->renew_time -= buf->renew_time % 1000000;

    return buf;
}


/* The newest version read that does not name this instance. */
static void
sim_host_seen(sim_inst_t *in, int64_t rv, const kle_record_t *rec)
{
    if (rec != NULL && sim_names(rec, in->el.id)) {
        return;
    }

    if (rv > in->seen_rv) {
        in->seen_rv = rv;
    }

}


void
sim_host_answer(int r, int timed_out)
{
    sim_inst_t        *in;
    sim_elector_t     *el;
    sim_req_t         *q;
    kle_api_status_t   status;
    kle_record_t       rec, secs;
    const kle_record_t *got;
    char               rvs[32], buf[200];
    unsigned           ev;
    int                i, role, kind, ra, ours;
    int64_t            now;

    q = &sim_req[r];
    i = q->inst;
    in = &sim.inst[i];
    el = &in->el;

    q->pending = 0;
    role = q->role;
    kind = q->kind;

    if (role == SIM_REQ_MACHINE) {
        el->req = -1;
    } else {
        el->relist = -1;
    }

    status = timed_out ? KLE_API_TRANSPORT : q->status;
    got = NULL;
    rvs[0] = '\0';

    if (status == KLE_API_OK && q->has_result) {
        rec = q->result;
        got = &rec;
        snprintf(rvs, sizeof(rvs), "%" PRId64, q->result_rv);
        if (el->ws == SIM_WS_NONE && el->relist < 0) {
            /* no watch running: the next one starts from this read */
            el->resume_rv = q->result_rv;
            el->want_relist = 0;
        }
        sim_host_seen(in, q->result_rv, got);
        if (kind != KLE_DO_GET) {
            el->write_rv = q->result_rv;
        }
    }

    if (role == SIM_REQ_RELIST && status == KLE_API_NOT_FOUND) {
        /* no object: watch from now, without a version */
        el->resume_rv = 0;
        el->want_relist = 0;
    }

    ra = status == KLE_API_TOO_MANY_REQUESTS ? q->retry_after : 0;

    if (q->applied || q->lost) {
        q->used = 0;
    }

    TR(i, "answer %s%s: %s%s%s%s%s", role == SIM_REQ_RELIST ? "relist " : "",
       kind == KLE_DO_GET ? "GET" : kind == KLE_DO_CREATE ? "CREATE"
                                                        : "UPDATE",
       timed_out ? "timed out" : sim_status_name(status),
       got ? " " : "", got ? sim_rec_text(got, buf, sizeof(buf)) : "",
       rvs[0] ? " rv=" : "", rvs);

    now = sim_mono(in, sim.t);

    if (role == SIM_REQ_MACHINE) {
        ev = kle_election_on_result(&el->e, now, status,
                                    sim_host_sees(in, got, &secs),
                                    got ? rvs : NULL, ra);
        sim_host_events(i, ev);

    } else if (status == KLE_API_OK || status == KLE_API_NOT_FOUND) {
        ours = got != NULL && el->e.state == KLE_STATE_LEADING
               && sim_names(got, el->id);
        if (!ours) {
            ev = kle_election_observe(&el->e, now,
                                      sim_host_sees(in, got, &secs),
                                      got ? rvs : NULL);
            sim_host_events(i, ev);
        }

    } else {
        el->want_relist = 1;
        el->watch_after = sim.t + el->tm.rp;
        sim_push(el->watch_after, SIM_EV_WAKE, i, 0);
    }

    sim_host_run(i);
}


/* One watch, whether following or leading; a relist after a 410. */
static void
sim_host_watch_keep(int i)
{
    sim_elector_t  *el;
    kle_action_t    act;
    int             r;

    el = &sim.inst[i].el;

    if (el->ws != SIM_WS_NONE || el->relist >= 0 || el->e.release_wanted
        || (el->e.state != KLE_STATE_FOLLOWING
            && el->e.state != KLE_STATE_LEADING)
        || sim.t < el->watch_after)
    {
        return;
    }

    if (el->want_relist) {
        memset(&act, 0, sizeof(act));
        act.kind = KLE_DO_GET;
        act.timeout = el->tm.rd / 2;
        r = sim_send(i, SIM_REQ_RELIST, &act);
        if (r >= 0) {
            el->relist = r;
            el->want_relist = 0;
        }
        return;
    }

    if (!el->e.have_observed) {
        return;
    }

    sim_watch_start(i);
}


void
sim_host_watch_opened(int i)
{
    sim_inst_t     *in;
    sim_elector_t  *el;
    unsigned        ev;

    in = &sim.inst[i];
    el = &in->el;

    TR(i, "watch established");

    el->watching = 1;
    ev = kle_election_watching(&el->e, sim_mono(in, sim.t), 1);
    sim_host_events(i, ev);
    sim_host_run(i);
}


static void
sim_host_watch_closed(int i, int relist, int64_t backoff)
{
    sim_inst_t     *in;
    sim_elector_t  *el;
    unsigned        ev;

    in = &sim.inst[i];
    el = &in->el;

    sim_watch_cancel(el);

    if (relist) {
        el->want_relist = 1;
    }

    el->watch_after = sim.t + backoff;
    if (backoff > 0) {
        sim_push(el->watch_after, SIM_EV_WAKE, i, 0);
    }

    if (el->watching) {
        el->watching = 0;
        ev = kle_election_watching(&el->e, sim_mono(in, sim.t), 0);
        sim_host_events(i, ev);
    }
}


/* The connection could not be made (cut off from the API). */
void
sim_host_watch_end(int i, unsigned tok, int clean)
{
    sim_elector_t  *el;

    el = &sim.inst[i].el;

    if (tok != el->wtok) {
        return;
    }

    TR(i, "watch failed");
    sim_host_watch_closed(i, 0, clean ? 0 : el->tm.rp);
    sim_host_run(i);
}


void
sim_host_watch_event(int i, unsigned tok)
{
    sim_inst_t     *in;
    sim_elector_t  *el;
    sim_change_t    c;
    kle_record_t    secs;
    char            rvs[32], buf[200];
    unsigned        ev;

    in = &sim.inst[i];
    el = &in->el;
    (void) tok;

    if (sim_wq_pop(i, &c) != 0) {
        return;
    }

    sim.st->watch_events++;
    snprintf(rvs, sizeof(rvs), "%" PRId64, c.rv);

    switch (c.kind) {

    case SIM_W_CHANGE:
    case SIM_W_DELETED:
        el->resume_rv = c.rv;

        if (c.kind == SIM_W_CHANGE && el->e.state == KLE_STATE_LEADING
            && sim_names(&c.rec, el->id))
        {
            TR(i, "watch MODIFIED rv=%s names us: ignored while leading",
               rvs);
            break;
        }

        sim_host_seen(in, c.rv, c.kind == SIM_W_DELETED ? NULL : &c.rec);

        TR(i, "watch %s rv=%s %s",
           c.kind == SIM_W_DELETED ? "DELETED" : "MODIFIED", rvs,
           c.kind == SIM_W_DELETED ? "" : sim_rec_text(&c.rec, buf,
                                                       sizeof(buf)));

        ev = kle_election_observe(&el->e, sim_mono(in, sim.t),
                           sim_host_sees(in, c.kind == SIM_W_DELETED
                                             ? NULL : &c.rec, &secs),
                           rvs);
        sim_host_events(i, ev);
        break;

    case SIM_W_BOOKMARK:
        el->resume_rv = c.rv;
        TR(i, "watch BOOKMARK rv=%s", rvs);
        break;

    case SIM_W_GONE:
        TR(i, "watch ERROR 410 Expired: relist, then watch again");
        sim_host_watch_closed(i, 1, 0);
        break;

    case SIM_W_END_DROP:
        TR(i, "watch connection broke");
        sim_host_watch_closed(i, 0, el->tm.rp);
        break;

    case SIM_W_END_CLOSE:
        TR(i, "watch ended by the server");
        sim_host_watch_closed(i, 0, 0);
        break;
    }

    sim_host_run(i);
}


/* Requests in flight are abandoned: the server may still apply them. */
static void
sim_host_cancel(int i)
{
    sim_elector_t  *el;
    sim_req_t      *q;
    int             k, r;

    el = &sim.inst[i].el;

    for (k = 0; k < 2; k++) {
        r = k == 0 ? el->req : el->relist;
        if (r < 0) {
            continue;
        }
        q = &sim_req[r];
        q->pending = 0;
        if (q->applied || q->lost) {
            q->used = 0;
        }
    }

    el->req = -1;
    el->relist = -1;

    sim_watch_cancel(el);
    el->watching = 0;
}


void
sim_host_stop(int i)
{
    sim_elector_t  *el;

    el = &sim.inst[i].el;

    if (!el->running) {
        return;
    }

    TR(i, "elector #%d stops", el->gen);

    el->running = 0;
    el->wake_tok = ++sim.tok;
    sim_host_cancel(i);
}


/* nginx -s quit: revoke the published claim, then release. */
void
sim_host_release(int i)
{
    sim_inst_t     *in;
    sim_elector_t  *el;

    in = &sim.inst[i];
    el = &in->el;

    in->release_at = sim.t;

    /* the module revokes the claim before the release is sent */
    sim_zone_limit(i, 0);

    el->inherit = 0;

    if (!el->running) {
        return;
    }

    sim_host_cancel(i);
    kle_election_release(&el->e);
    sim_host_run(i);
}


/* A reload: the old generation stops at once, the new one starts. */
void
sim_host_reload(int i, int pool, int new_id)
{
    sim_host_stop(i);
    sim_host_start(i, pool, new_id);
}
