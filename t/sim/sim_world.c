/*
 * The simulated world: one seed draws the timings, clocks and fault
 * profile; an event queue on one simulated clock (ms) runs the instances,
 * the network and the server; process faults arrive as a random process
 * until the calm, after which a stable leader must emerge in time.
 */

#include <inttypes.h>
#include <string.h>

#include "sim.h"


sim_t      sim;
sim_ev_t   sim_heap[SIM_HEAP_MAX];
sim_req_t  sim_req[SIM_REQ_MAX];

static void sim_setup(void);
static void sim_timing(sim_timing_t *tm);
static void sim_dispatch(const sim_ev_t *ev);
static int sim_pick_up(void);
static void sim_calm(void);


static uint64_t
sim_rand64(void)
{
    uint64_t  x;

    /* xorshift64* */
    x = sim.rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    sim.rng = x;

    return x * UINT64_C(2685821657736338717);
}


uint64_t
sim_rand(uint64_t n)
{
    return n ? sim_rand64() % n : 0;
}


int
sim_chance(int per_mille)
{
    return per_mille > 0 && (int) sim_rand(1000) < per_mille;
}


/* uniform in [lo, hi] */
int64_t
sim_between(int64_t lo, int64_t hi)
{
    if (hi <= lo) {
        return lo;
    }

    return lo + (int64_t) sim_rand((uint64_t) (hi - lo + 1));
}


/* The event queue: a binary heap on (time, random key). */

static int
sim_before(const sim_ev_t *a, const sim_ev_t *b)
{
    return a->t < b->t || (a->t == b->t && a->key < b->key);
}


void
sim_push(int64_t t, int type, int a, unsigned tok)
{
    sim_ev_t  ev, tmp;
    int       k, p;

    if (sim.nheap == SIM_HEAP_MAX) {
        sim_violation(SIM_V_OVERFLOW, "event queue full");
        return;
    }

    ev.t = t < sim.t ? sim.t : t;
    ev.key = sim_rand64();
    ev.type = type;
    ev.a = a;
    ev.tok = tok;

    k = sim.nheap++;
    sim_heap[k] = ev;

    while (k > 0) {
        p = (k - 1) / 2;
        if (!sim_before(&sim_heap[k], &sim_heap[p])) {
            break;
        }
        tmp = sim_heap[p];
        sim_heap[p] = sim_heap[k];
        sim_heap[k] = tmp;
        k = p;
    }
}


static void
sim_pop(sim_ev_t *ev)
{
    sim_ev_t  tmp;
    int       k, c;

    *ev = sim_heap[0];
    sim_heap[0] = sim_heap[--sim.nheap];

    k = 0;
    for ( ;; ) {
        c = 2 * k + 1;
        if (c >= sim.nheap) {
            break;
        }
        if (c + 1 < sim.nheap && sim_before(&sim_heap[c + 1], &sim_heap[c])) {
            c++;
        }
        if (!sim_before(&sim_heap[c], &sim_heap[k])) {
            break;
        }
        tmp = sim_heap[c];
        sim_heap[c] = sim_heap[k];
        sim_heap[k] = tmp;
        k = c;
    }
}


/* A fault's consequences last until t: the calm is measured from after. */
void
sim_horizon(int64_t t)
{
    if (sim.chaos && t > sim.horizon) {
        sim.horizon = t;
    }
}


/*
 * Clocks.  An instance's CLOCK_BOOTTIME runs at rate ppm of simulated
 * time; its CLOCK_MONOTONIC is the same clock stopped while the instance
 * was suspended.  Which one the code judges claims on is lib/kle_clock.c's
 * choice (sim_clock.c).
 */

int64_t
sim_boot(const sim_inst_t *in, int64_t t)
{
    return in->mono_off + t * in->rate / SIM_PPM;
}


int64_t
sim_monotonic(const sim_inst_t *in, int64_t t)
{
    int64_t  slept, end;
    int      k;

    slept = 0;
    for (k = 0; k < in->nsusp && in->susp_t[k] < t; k++) {
        end = in->susp_t[k] + in->susp_d[k];
        slept += (end < t ? end : t) - in->susp_t[k];
    }

    return in->mono_off + (t - slept) * in->rate / SIM_PPM;
}


int64_t
sim_wall(const sim_inst_t *in, int64_t t)
{
    return SIM_WALL0 + in->wall_off + t * 1000;
}


/*
 * Valid timings, as client-go and the configmaps rule accept them, with a
 * renew cycle a healthy network can keep on a clock up to 50% fast:
 * retry_period >= 300 ms and renew_deadline - retry_period >= 450 ms.
 */
static void
sim_timing(sim_timing_t *tm)
{
    static const int64_t  leases[] = { 1, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30 };

    kle_election_config_t  cfg;
    char                   err[256];
    int64_t                lo;
    int                    k;

    for ( ;; ) {
        k = (int) sim_rand(10);

        if (k == 0) {
            tm->ld = 15000; tm->rd = 10000; tm->rp = 2000;

        } else if (k == 1) {
            tm->ld = 4000; tm->rd = 3000; tm->rp = 500;

        } else {
            tm->ld = 1000 * leases[sim_rand(sizeof(leases)
                                            / sizeof(leases[0]))];
            lo = tm->ld * 3 / 10;
            tm->rd = sim_between(lo, tm->ld - (sim.whole_seconds || sim.secs
                                               ? 1000 : 1));
            tm->rp = sim_between(tm->rd / 8, (tm->rd * 5 - 1) / 6);
        }

        if (tm->rp < 300 || tm->rd - tm->rp < 450) {
            continue;
        }

        memset(&cfg, 0, sizeof(cfg));
        memcpy(cfg.identity, "x", 2);
        cfg.lease_duration = tm->ld;
        cfg.renew_deadline = tm->rd;
        cfg.retry_period = tm->rp;
        /* seconds-granular followers need the whole-second rule too */
        cfg.whole_seconds = sim.whole_seconds || sim.secs;

        if (kle_election_config_validate(&cfg, err, sizeof(err)) == 0) {
            return;
        }
    }
}


static int
sim_per_mille(void)
{
    static const int  p[] = { 0, 0, 5, 20, 60, 150 };

    return p[sim_rand(sizeof(p) / sizeof(p[0]))];
}


static void
sim_setup(void)
{
    sim_inst_t  *in;
    int64_t      ld_max, lim_ppm, rd;
    int          i, k, quiet;

    sim.n = 2 + (int) sim_rand(SIM_INST_MAX - 1);
    sim.whole_seconds = sim_rand(4) == 0;
    /* from the seed, not the stream: the other seeds stay as they were */
    sim.twins = sim.seed % 5 == 3;
    sim.secs = !sim.whole_seconds && sim_rand(4) == 0;

    /* a deployment's timings, and those its reloads may switch to */
    sim.npool = 1 + (int) sim_rand(SIM_POOL);
    ld_max = 0;
    for (k = 0; k < sim.npool; k++) {
        sim_timing(&sim.pool[k]);
        if (sim.pool[k].ld > ld_max) {
            ld_max = sim.pool[k].ld;
        }
    }

    /*
     * Clock rates: a follower's lease must outlast the leader's claim in
     * real time: rate_max / rate_min < ld / rd for every timing (with a
     * whole-second store, ld / (rd + 1 s): a repeated record can start a
     * follower's lease clock up to a second early).  Half the seeds use
     * 90% of that margin at most, the others equal rates.
     */
    lim_ppm = INT64_MAX;
    for (k = 0; k < sim.npool; k++) {
        rd = sim.pool[k].rd + (sim.whole_seconds || sim.secs ? 1000 : 0);
        if ((sim.pool[k].ld - rd) * SIM_PPM / rd < lim_ppm) {
            lim_ppm = (sim.pool[k].ld - rd) * SIM_PPM / rd;
        }
    }
    lim_ppm = sim_rand(2) ? lim_ppm * (int64_t) sim_rand(901) / 1000 : 0;

    /* beyond that, a lead cannot be kept: a clock 50% fast is plenty */
    if (lim_ppm > SIM_PPM / 2) {
        lim_ppm = SIM_PPM / 2;
    }

    sim.rate_min = SIM_PPM;
    sim.rate_max = SIM_PPM;
    sim.dmax = sim_between(2, 40);
    sim.wlag = sim_between(2, 60);

    for (i = 0; i < sim.n; i++) {
        in = &sim.inst[i];
        snprintf(in->name, sizeof(in->name), "c%d", i);
        in->rate = SIM_PPM + sim_between(0, lim_ppm);
        in->mono_off = sim_between(0, INT64_C(1000000000));
        in->wall_off = sim_between(-INT64_C(10000000000),
                                   INT64_C(10000000000));
        in->release_at = -1;
        in->secs = sim.secs && (i == 0 || sim_rand(2));
        if (in->rate > sim.rate_max) {
            sim.rate_max = in->rate;
        }
    }

    /* the fault profile */
    quiet = sim_rand(10) == 0;

    if (!quiet) {
        sim.p_delay = sim_per_mille();
        sim.p_lost = sim_per_mille();
        sim.p_answer_lost = sim_per_mille();
        sim.p_late = sim_per_mille();
        sim.p_err = sim_per_mille();
        sim.p_err_after = sim_per_mille();
        sim.p_throttle = sim_per_mille();
        sim.p_wlag = sim_per_mille();
        sim.p_wdrop = sim_per_mille();
        sim.p_wgone = sim_per_mille();
        for (k = SIM_F_PARTITION; k < SIM_F_KINDS; k++) {
            sim.fw[k] = sim_rand(3) ? (int) sim_rand(4) : 0;
        }
    }

    sim.p_bookmark = sim_per_mille();
    sim.wclose_min = sim_between(ld_max, 300000);
    sim.fault_mean = ld_max * sim_between(2, 30) / 10;

    sim.calm_at = ld_max * sim_between(3, 10);
    sim.chaos = 1;
    sim.leader = -1;
    sim.last_leader = -1;
    sim.first_calm_leader = -1;
    sim.overlap_pair = -1;
    sim.end = INT64_MAX;

    sim_server_init();

    for (i = 0; i < sim.n; i++) {
        in = &sim.inst[i];
        in->up = 1;
        in->pool = (int) sim_rand((uint64_t) sim.npool);
    }

    for (i = 0; i < sim.n; i++) {
        /* each starts at its own moment */
        sim_push(sim_between(0, sim.pool[0].rp), SIM_EV_RESTART, i, 0);
    }

    if (!quiet) {
        sim_push(sim_between(0, sim.fault_mean), SIM_EV_FAULT, 0, 0);
    }
    sim_push(sim.calm_at, SIM_EV_CALM, 0, 0);
}


static int
sim_pick_up(void)
{
    int  i, k, n;

    n = 0;
    for (i = 0; i < sim.n; i++) {
        n += sim.inst[i].up && !sim.inst[i].quitting;
    }
    if (n == 0) {
        return -1;
    }

    k = (int) sim_rand((uint64_t) n);
    for (i = 0; i < sim.n; i++) {
        if (sim.inst[i].up && !sim.inst[i].quitting && k-- == 0) {
            return i;
        }
    }

    return -1;
}


static int
sim_other_pool(int pool)
{
    return sim.npool == 1 ? pool
                          : (pool + 1 + (int) sim_rand((uint64_t) sim.npool
                                                       - 1)) % sim.npool;
}


/* A process fault (network faults are drawn per request and event). */
void
sim_fault(int kind)
{
    sim_inst_t  *in;
    int64_t      ld, d;
    int          i;

    ld = sim.pool[0].ld;

    if (kind >= SIM_F_FOREIGN_RECORD) {
        sim.st->faults[kind]++;
        sim_foreign_write(kind);
        return;
    }

    i = sim_pick_up();
    if (i < 0) {
        return;
    }
    in = &sim.inst[i];
    ld = sim.pool[in->pool].ld;
    sim.st->faults[kind]++;

    switch (kind) {

    case SIM_F_PARTITION:
        d = sim_between(ld / 4, 2 * ld);
        in->cut_until = sim.t + d;
        sim_horizon(in->cut_until);
        TR(-2, "%s cut off from the API for %.3fs", in->name, d / 1e3);
        break;

    case SIM_F_PAUSE_ELECTOR:
        if (!in->el.running) {
            break;
        }
        d = sim_between(ld / 4, 2 * ld);
        in->el.paused_until = sim.t + d;
        sim_horizon(in->el.paused_until);
        TR(-2, "%s: elector worker SIGSTOPped for %.3fs", in->name, d / 1e3);
        break;

    case SIM_F_PAUSE_INSTANCE:
        d = sim_between(ld / 4, 2 * ld);
        in->paused_until = sim.t + d;
        sim_horizon(in->paused_until);
        sim_push(in->paused_until, SIM_EV_RESUME, i, 0);
        TR(-2, "%s: whole instance SIGSTOPped for %.3fs", in->name, d / 1e3);
        break;

    case SIM_F_SUSPEND:
        /* as a SIGSTOP, and its CLOCK_MONOTONIC stops meanwhile */
        if (in->nsusp == SIM_SUSP || in->paused_until > sim.t) {
            break;
        }
        d = sim_between(ld / 4, 2 * ld);
        in->susp_t[in->nsusp] = sim.t;
        in->susp_d[in->nsusp] = d;
        in->nsusp++;
        in->paused_until = sim.t + d;
        sim_horizon(in->paused_until);
        sim_push(in->paused_until, SIM_EV_RESUME, i, 0);
        TR(-2, "%s: suspended for %.3fs (CLOCK_MONOTONIC stops)", in->name,
           d / 1e3);
        break;

    case SIM_F_CRASH_WORKER:
        TR(-2, "%s: elector worker killed", in->name);
        sim_host_stop(i);
        d = sim_between(1, 300);
        sim_horizon(sim.t + d);
        sim_push(sim.t + d, SIM_EV_RESPAWN, i, (unsigned) in->life);
        break;

    case SIM_F_CRASH_INSTANCE:
        TR(-2, "%s: whole instance killed", in->name);
        sim_host_stop(i);
        in->up = 0;
        memset(&in->pub, 0, sizeof(in->pub));
        memset(&in->zlock, 0, sizeof(in->zlock));
        memset(&in->zclaim, 0, sizeof(in->zclaim));
        d = sim_between(1, 2 * ld);
        sim_horizon(sim.t + d);
        sim_push(sim.t + d, SIM_EV_RESTART, i, (unsigned) in->life);
        break;

    case SIM_F_RELEASE:
        TR(-2, "%s: nginx -s quit", in->name);
        in->quitting = 1;
        sim_host_release(i);
        /* its workers drain for a while, reading the shared state */
        d = sim_between(0, ld);
        in->restart_at = sim.t + d + sim_between(1, ld);
        sim_horizon(in->restart_at);
        sim_push(sim.t + d, SIM_EV_EXIT, i, (unsigned) in->life);
        break;

    case SIM_F_RELOAD:
        TR(-2, "%s: reload", in->name);
        sim_host_reload(i, in->pool, 0);
        break;

    case SIM_F_RELOAD_TIMINGS:
        TR(-2, "%s: reload with other timings", in->name);
        sim_host_reload(i, sim_other_pool(in->pool), 0);
        break;

    case SIM_F_RELOAD_IDENTITY:
        TR(-2, "%s: reload with another identity", in->name);
        sim_host_reload(i, sim_rand(2) ? in->pool : sim_other_pool(in->pool),
                        1);
        break;
    }
}


static void
sim_inject(void)
{
    int  k, total, pick;

    total = 0;
    for (k = 0; k < SIM_F_KINDS; k++) {
        total += sim.fw[k];
    }
    if (total == 0) {
        return;
    }

    pick = (int) sim_rand((uint64_t) total);
    for (k = 0; k < SIM_F_KINDS; k++) {
        pick -= sim.fw[k];
        if (pick < 0) {
            sim_fault(k);
            return;
        }
    }
}


/*
 * Faults stop.  Everything they set in motion ends by the horizon; from
 * then on a leader must emerge within lease_duration + 2.2 x
 * retry_period (on the slowest clock) plus a round trip, and stay.
 */
static void
sim_calm(void)
{
    int64_t  ld, rp, start, bound;
    int      k;

    sim.chaos = 0;

    ld = 0;
    rp = 0;
    for (k = 0; k < sim.npool; k++) {
        ld = sim.pool[k].ld > ld ? sim.pool[k].ld : ld;
        rp = sim.pool[k].rp > rp ? sim.pool[k].rp : rp;
    }

    start = sim.horizon > sim.t ? sim.horizon : sim.t;
    sim.calm_start = start;

    /* a foreign record's lease may be longer than ours */
    if (sim.foreign_lease > ld) {
        ld = sim.foreign_lease;
    }

    bound = (ld + rp * 22 / 10) * SIM_PPM / sim.rate_min
            + 2 * sim.dmax + sim.wlag;
    sim.calm_bound = bound;
    sim.end = start + bound + 2 * ld + 30000;

    TR(-2, "calm: faults stop; effects end at %.3fs; a leader is due "
       "within %.3fs of then", start / 1e3, bound / 1e3);
}


static int
sim_paused(const sim_inst_t *in, int64_t *until)
{
    int64_t  u;

    u = in->paused_until > in->el.paused_until ? in->paused_until
                                               : in->el.paused_until;
    *until = u;

    return u > sim.t;
}


static void
sim_dispatch(const sim_ev_t *ev)
{
    sim_inst_t  *in;
    sim_req_t   *q;
    int64_t      until;

    switch (ev->type) {

    case SIM_EV_WAKE:
        in = &sim.inst[ev->a];
        if (!in->up || !in->el.running
            || (ev->tok != 0 && ev->tok != in->el.wake_tok))
        {
            return;
        }
        if (sim_paused(in, &until)) {
            sim_push(until, ev->type, ev->a, ev->tok);
            return;
        }
        sim_host_run(ev->a);
        return;

    case SIM_EV_APPLY:
        q = &sim_req[ev->a];
        if (q->used && q->tok == ev->tok) {
            sim_apply(ev->a);
        }
        return;

    case SIM_EV_ANSWER:
    case SIM_EV_TIMEOUT:
        q = &sim_req[ev->a];
        if (!q->used || q->tok != ev->tok || !q->pending) {
            return;
        }
        in = &sim.inst[q->inst];
        if (sim_paused(in, &until)) {
            sim_push(until, ev->type, ev->a, ev->tok);
            return;
        }
        if (ev->type == SIM_EV_ANSWER && in->cut_until > sim.t) {
            /* cut off after it was sent: the answer never comes */
            return;
        }
        sim_http_answer(ev->a, ev->type == SIM_EV_TIMEOUT);
        return;

    case SIM_EV_REAP:
        in = &sim.inst[ev->a];
        if (!in->up || !in->el.running || ev->tok != (unsigned) in->el.gen) {
            return;
        }
        if (sim_paused(in, &until)) {
            sim_push(until, ev->type, ev->a, ev->tok);
            return;
        }
        sim_http_reap(ev->a);
        return;

    case SIM_EV_WATCH_OPEN:
    case SIM_EV_WATCH_EVENT:
        in = &sim.inst[ev->a];
        if (!in->up || !in->el.running || ev->tok != in->el.wtok) {
            return;
        }
        if (sim_paused(in, &until)) {
            sim_push(until, ev->type, ev->a, ev->tok);
            return;
        }
        if (in->cut_until > sim.t) {
            if (ev->type == SIM_EV_WATCH_OPEN) {
                sim_http_watch_failed(ev->a);
            } else {
                /* TCP holds the stream until the network is back */
                sim_push(in->cut_until, ev->type, ev->a, ev->tok);
            }
            return;
        }
        if (ev->type == SIM_EV_WATCH_OPEN) {
            sim_watch_open(ev->a, ev->tok);
        } else {
            sim_http_watch_event(ev->a);
        }
        return;

    case SIM_EV_WATCH_END:
        sim_watch_close_at(ev->a, ev->tok);
        return;

    case SIM_EV_FAULT:
        if (!sim.chaos) {
            return;
        }
        sim_inject();
        sim_push(sim.t + sim_between(1, 2 * sim.fault_mean), SIM_EV_FAULT,
                 0, 0);
        return;

    case SIM_EV_RESUME:
        TR(-2, "%s: instance runs again", sim.inst[ev->a].name);
        return;

    case SIM_EV_RESPAWN:
        in = &sim.inst[ev->a];
        if (in->up && !in->quitting && ev->tok == (unsigned) in->life
            && !in->el.running)
        {
            TR(-2, "%s: the master respawns the elector worker", in->name);
            sim_host_start(ev->a, in->pool, 0);
        }
        return;

    case SIM_EV_EXIT:
        in = &sim.inst[ev->a];
        if (!in->up || ev->tok != (unsigned) in->life) {
            return;
        }
        TR(-2, "%s: exits", in->name);
        sim_host_stop(ev->a);
        in->up = 0;
        memset(&in->pub, 0, sizeof(in->pub));
        memset(&in->zlock, 0, sizeof(in->zlock));
        memset(&in->zclaim, 0, sizeof(in->zclaim));
        sim_push(in->restart_at, SIM_EV_RESTART, ev->a, (unsigned) in->life);
        return;

    case SIM_EV_RESTART:
        in = &sim.inst[ev->a];
        if (in->life != (int) ev->tok || (in->up && in->el.gen != 0)) {
            return;
        }
        if (in->el.gen != 0) {
            /* a new process, maybe on another machine and clock */
            in->life++;
            in->mono_off = sim_between(0, INT64_C(1000000000));
            in->nsusp = 0;
        }
        in->up = 1;
        in->quitting = 0;
        in->release_at = -1;
        in->paused_until = 0;
        in->seen_rv = 0;
        memset(&in->pub, 0, sizeof(in->pub));
        memset(&in->zlock, 0, sizeof(in->zlock));
        memset(&in->zclaim, 0, sizeof(in->zclaim));
        TR(-2, "%s: starts", in->name);
        sim_host_start(ev->a, in->pool,
                       in->el.gen != 0 && sim_rand(3) == 0);
        return;

    case SIM_EV_CALM:
        sim_calm();
        return;

    case SIM_EV_CLAIM_END:
        /* nothing happens: sim_check() runs at the claim's last instant */
        return;
    }
}


/* One schedule.  0: every invariant held. */
int
sim_run(uint64_t seed, int trace, sim_stats_t *st)
{
    sim_ev_t  ev;
    uint64_t  x;
    int       r;

    memset(&sim, 0, sizeof(sim));
    for (r = 0; r < SIM_REQ_MAX; r++) {
        sim_req[r].used = 0;
    }

    /* splitmix64 of the seed: neighbouring seeds share nothing */
    x = seed + UINT64_C(0x9e3779b97f4a7c15);
    x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
    x ^= x >> 31;

    sim.rng = x ? x : 1;
    sim.seed = seed;
    sim.trace = trace;
    sim.st = st;
    sim.v_first = -1;

    sim_setup();

    if (trace) {
        sim_trace_setup();
    }

    while (sim.nheap > 0) {
        sim_pop(&ev);
        if (ev.t > sim.end) {
            sim.t = sim.end;
            break;
        }
        sim.t = ev.t;
        st->events++;
        sim_dispatch(&ev);
        sim_check();
        if (sim.v_first >= 0) {
            break;
        }
    }

    if (sim.v_first < 0) {
        sim_check_end();
    }

    sim.trace = 0;
    sim_host_end();

    st->seeds++;
    st->sim_ms += (uint64_t) sim.t;

    if (sim.v_first >= 0) {
        st->failed++;
        if (st->failed == 1 || seed < st->first_failed) {
            st->first_failed = seed;
            st->first_violation = sim.v_first;
            st->first_at = sim.t;
            memcpy(st->first_why, sim.why, sizeof(st->first_why));
        }
        return -1;
    }

    return 0;
}
