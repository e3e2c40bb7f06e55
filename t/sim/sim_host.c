/*
 * The host around the real elector: what the module's worker does with
 * lib/kle_elector.c (start a generation, run it when it asks, publish its
 * status into the shared zone on every change, cap an inherited claim,
 * revoke before a release, stop it on a reload or a crash), and what the
 * module's readers read.  The elector itself, the state machine, the lock
 * and its JSON are the shipped code; its transport is sim_http.c.
 */

#include <inttypes.h>
#include <string.h>

#include "sim.h"

static void sim_host_wake(int i, long ms);
static void sim_host_publish(int i);
static void sim_zone_limit(int i, int64_t until);

void __real_kle_election_init(kle_election_t *e,
    const kle_election_config_t *cfg, uint64_t seed);
void __wrap_kle_election_init(kle_election_t *e,
    const kle_election_config_t *cfg, uint64_t seed);

static char  sim_server_url[] = "https://sim.invalid";


/*
 * kle_elector_create() seeds the state machine's jitter from the wall
 * clock, the pid and an address: the seed decides it here (the link
 * wraps kle_election_init, -Wl,--wrap), so that a run replays.
 */
void
__wrap_kle_election_init(kle_election_t *e, const kle_election_config_t *cfg,
    uint64_t seed)
{
    (void) seed;
    __real_kle_election_init(e, cfg, sim.seed * 131 + (uint64_t) sim.gens);
}


static int
sim_host_index(void *data)
{
    return (int) ((sim_inst_t *) data - sim.inst);
}


static void
sim_host_started(void *data)
{
    sim_inst_t  *in = data;
    int          i = sim_host_index(data);

    if (in->el.leading) {
        sim_violation(SIM_V_EVENTS, "%s: STARTED_LEADING twice", in->name);
    }
    in->el.leading = 1;
    sim.st->started++;
    TR(i, "STARTED_LEADING");
}


static void
sim_host_stopped(void *data)
{
    sim_inst_t  *in = data;
    int          i = sim_host_index(data);

    if (!in->el.leading) {
        sim_violation(SIM_V_EVENTS, "%s: STOPPED_LEADING while not leading",
                      in->name);
    }
    in->el.leading = 0;
    TR(i, "STOPPED_LEADING");
}


static void
sim_host_changed(void *data)
{
    sim_host_publish(sim_host_index(data));
}


static void
sim_host_schedule(void *data, long ms)
{
    sim_host_wake(sim_host_index(data), ms);
}


static void
sim_host_log(void *data, int level, const char *msg)
{
    static const char  *levels[] = { "error", "warn", "notice", "info",
                                     "debug" };

    TR(sim_host_index(data), "%s: %s", levels[level], msg);
}


void
sim_host_start(int i, int pool, int new_id)
{
    int64_t                now;
    int32_t                token;
    sim_inst_t            *in;
    sim_elector_t         *el;
    kle_elector_config_t   cfg;
    char                   err[256];

    in = &sim.inst[i];
    el = &in->el;

    memset(el, 0, sizeof(*el));
    el->gen = ++sim.gens;
    el->running = 1;
    el->watch_req = -1;
    el->inherit = 1;
    el->tm = sim.pool[pool];
    el->http.inst = i;
    el->http.gen = el->gen;
    el->creds.server = sim_server_url;
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
        /* the master revokes the claim of another identity */
        TR(i, "identity %s: the published claim of %s is cleared", el->id,
           in->pub.id);
        memset(&in->pub, 0, sizeof(in->pub));
        sim_zone_write(i);
    }

    memset(&cfg, 0, sizeof(cfg));
    cfg.name = "sim";
    snprintf(cfg.election.identity, sizeof(cfg.election.identity), "%s",
             el->id);
    sim_nonce(i, cfg.election.instance);
    cfg.election.lease_duration = el->tm.ld;
    cfg.election.renew_deadline = el->tm.rd;
    cfg.election.retry_period = el->tm.rp;
    cfg.lock_kind = sim.whole_seconds ? "configmaps" : "leases";
    cfg.lock_where = "sim/lock";
    cfg.creds = &el->creds;
    cfg.on_started_leading = sim_host_started;
    cfg.on_stopped_leading = sim_host_stopped;
    cfg.on_change = sim_host_changed;
    cfg.schedule = sim_host_schedule;
    /* its log lines go into the trace; formatting them is the cost */
    cfg.log = sim.trace ? sim_host_log : NULL;
    cfg.data = in;

    sim_host_enter(i);

    /* as the module: a previous process's claim still read as leading */
    cfg.resume = kle_claim_leads(&in->zlock, &in->zclaim, &token);
    now = kle_now_ms();

    el->elector = kle_elector_create(&cfg, &el->http, err, sizeof(err));

    sim_clock_leave();

    if (el->elector == NULL) {
        el->running = 0;
        sim_violation(SIM_V_HOST, "%s: kle_elector_create: %s", in->name,
                      err);
        return;
    }

    /*
     * The module caps an inherited claim at this elector's start plus its
     * renew deadline (ngx_http_leader_election_limit(), kle_claim_limit())
     * before the elector runs: any record it writes (perhaps with a
     * shorter lease) is written later, and followers time their takeover
     * from it.
     */
    if (cfg.resume) {
        sim_zone_limit(i, now + el->tm.rd);
    }

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


/* Around every call into the elector: the instance's clocks. */
void
sim_host_enter(int i)
{
    sim_clock_enter(&sim.inst[i], sim.t);
}


/* After it: a released elector is done (the module destroys it). */
void
sim_host_leave(int i)
{
    sim_elector_t  *el;

    sim_clock_leave();

    el = &sim.inst[i].el;

    if (el->running && el->elector != NULL && el->releasing
        && kle_elector_done(el->elector))
    {
        TR(i, "released: the elector is done");
        sim_host_stop(i);
    }
}


/* The timer: kle_elector_run(), and when it wants to run next. */
void
sim_host_run(int i)
{
    sim_inst_t     *in;
    sim_elector_t  *el;
    long            ms;

    in = &sim.inst[i];
    el = &in->el;

    if (!in->up || !el->running) {
        return;
    }

    if (el->spin_t != sim.t) {
        el->spin_t = sim.t;
        el->spin = 0;
    }
    if (++el->spin > 64) {
        sim_violation(SIM_V_HOST, "%s: the elector asks to run again at "
                      "once, forever", in->name);
        return;
    }

    sim_host_enter(i);
    ms = kle_elector_run(el->elector);
    if (el->running) {
        sim_host_wake(i, ms);
    }
    sim_host_leave(i);
}


static void
sim_host_wake(int i, long ms)
{
    sim_inst_t     *in;
    sim_elector_t  *el;
    int64_t         at;

    in = &sim.inst[i];
    el = &in->el;

    el->wake_tok = ++sim.tok;

    if (ms < 0) {
        return;
    }

    at = sim_at_mono(in, sim_mono(in, sim.t) + ms);
    if (at < sim.t) {
        at = sim.t;
    }

    /* timers may fire early: the elector must cope */
    if (sim_rand(8) == 0 && at > sim.t + 1) {
        at = sim_between(sim.t + 1, at - 1);
    }

    sim_push(at, SIM_EV_WAKE, i, el->wake_tok);
}


/*
 * The module's ngx_http_leader_election_changed(): the elector's status
 * into the shared zone, as ngx_http_leader_election_publish() writes it.
 */
static void
sim_host_publish(int i)
{
    sim_inst_t            *in;
    sim_elector_t         *el;
    kle_elector_status_t   st;
    sim_pub_t              p;

    in = &sim.inst[i];
    el = &in->el;

    if (!el->running || el->elector == NULL) {
        return;
    }

    kle_elector_status(el->elector, &st);

    if (el->leading != (st.state == KLE_STATE_LEADING)) {
        sim_violation(SIM_V_EVENTS, "%s: events say %sleading, the state "
                      "is %s", in->name, el->leading ? "" : "not ",
                      kle_state_name(st.state));
    }

    /*
     * A new generation (reload, respawn) first reads the record; while it
     * is this instance's and not yet renewed, the claim published before
     * stands.
     */
    if (el->inherit) {
        if (st.state == KLE_STATE_LEADING
            || (st.state != KLE_STATE_STARTING && !st.record_mine))
        {
            el->inherit = 0;
        } else {
            return;
        }
    }

    memset(&p, 0, sizeof(p));

    p.leading = (st.state == KLE_STATE_LEADING);
    p.claim_until = p.leading ? st.claim_until : 0;
    p.term = p.claim_until ? st.term : 0;
    p.renew_start = p.leading ? st.renew_start : 0;

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
 * The generation stops (kle_elector_stop(), as a reload or a dying
 * worker): what it had in flight may still land.
 */
void
sim_host_stop(int i)
{
    sim_elector_t  *el;
    int             r;

    el = &sim.inst[i].el;

    if (!el->running) {
        return;
    }

    TR(i, "elector #%d stops", el->gen);

    el->running = 0;
    el->wake_tok = ++sim.tok;

    sim_host_enter(i);
    kle_elector_stop(el->elector);
    kle_elector_destroy(el->elector);
    sim_clock_leave();

    el->elector = NULL;

    /* a request the elector dropped without cancelling is a leak */
    for (r = 0; r < SIM_REQ_MAX; r++) {
        if (sim_req[r].used && sim_req[r].pending && sim_req[r].inst == i
            && sim_req[r].gen == el->gen)
        {
            sim_violation(SIM_V_HOST, "%s: a request left in flight after "
                          "kle_elector_stop()", sim.inst[i].name);
            sim_http_free(r);
        }
    }

    sim_watch_cancel(el);
    el->watch_req = -1;
}


/*
 * nginx -s quit: the module revokes the published claim, then a leader
 * releases (kle_elector_release(), run until kle_elector_done()); any
 * other elector is destroyed.
 */
void
sim_host_release(int i)
{
    sim_inst_t            *in;
    sim_elector_t         *el;
    kle_elector_status_t   st;

    in = &sim.inst[i];
    el = &in->el;

    in->release_at = sim.t;

    /* the module revokes the claim before the release is sent */
    sim_zone_limit(i, 0);

    el->inherit = 0;

    if (!el->running) {
        return;
    }

    sim_host_enter(i);
    kle_elector_status(el->elector, &st);
    sim_clock_leave();

    if (st.state != KLE_STATE_LEADING) {
        sim_host_stop(i);
        return;
    }

    el->releasing = 1;

    sim_host_enter(i);
    kle_elector_release(el->elector);
    sim_host_leave(i);

    sim_host_run(i);
}


/* A reload: the old generation stops at once, the new one starts. */
void
sim_host_reload(int i, int pool, int new_id)
{
    sim_host_stop(i);
    sim_host_start(i, pool, new_id);
}


/* The end of a run: every elector is freed. */
void
sim_host_end(void)
{
    int  i;

    for (i = 0; i < sim.n; i++) {
        sim_host_stop(i);
    }

    kle_lock_free(&sim.lock);
}
