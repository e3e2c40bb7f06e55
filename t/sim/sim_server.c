/*
 * The simulated API server and network: one lock object with
 * resourceVersions from a global counter, 409 on a stale one,
 * AlreadyExists, no-op updates that keep the version, deletes, a short
 * history for watches (older resume points get 410), and per-instance
 * watch streams that deliver in order but can lag, drop and end.  Each
 * request's fate (delay, loss, error, late apply) is drawn when sent.
 */

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

static int64_t sim_oneway(void);
static int sim_store(const kle_record_t *rec, const sim_raw_t *raw);
static void sim_change(int kind);
static void sim_wq_add(int i, const sim_change_t *c, int64_t lag);
static int64_t sim_lag(int i);


void
sim_server_init(void)
{
    char  err[256];

    /* the lock's kind, to read what the electors send */
    if (kle_lock_init(&sim.lock, sim.whole_seconds ? "configmaps" : "leases",
                      "sim/lock", err, sizeof(err))
        != 0)
    {
        sim_violation(SIM_V_HOST, "kle_lock_init: %s", err);
    }

    sim.exists = 0;
    sim.counter = sim_between(1, 100000);
    sim.compacted = 0;
}


int
sim_names(const kle_record_t *rec, const char *id)
{
    return kle_record_names(rec, id);
}


static int64_t
sim_oneway(void)
{
    if (sim.chaos && sim_chance(sim.p_delay)) {
        sim.st->faults[SIM_F_DELAY]++;
        return sim_between(sim.dmax, 10 * sim.dmax + 2000);
    }

    return sim_between(1, sim.dmax);
}


int
sim_send(int i, int role, int kind, const kle_record_t *rec, const char *rv,
    int64_t timeout)
{
    sim_inst_t  *in;
    sim_req_t   *q;
    int64_t      up, ld;
    int          r;

    in = &sim.inst[i];
    ld = in->el.tm.ld;

    for (r = 0; r < SIM_REQ_MAX && sim_req[r].used; r++) {
        /* void */
    }
    if (r == SIM_REQ_MAX) {
        sim_violation(SIM_V_OVERFLOW, "request pool full");
        return -1;
    }

    q = &sim_req[r];
    memset(q, 0, sizeof(*q));
    q->used = 1;
    q->tok = ++sim.tok;
    q->inst = i;
    q->gen = in->el.gen;
    q->role = role;
    q->kind = kind;
    q->sent = sim.t;
    q->chaos = sim.chaos;
    q->pending = 1;
    q->err_before = KLE_API_OK;
    q->err_after = KLE_API_OK;

    if (kind != KLE_DO_GET) {
        q->rec = *rec;
    }
    if (kind == KLE_DO_UPDATE) {
        snprintf(q->rv, sizeof(q->rv), "%s", rv);
    }

    q->deadline = sim_at_mono(in, sim_mono(in, sim.t) + timeout);
    if (q->deadline <= sim.t) {
        q->deadline = sim.t + 1;
    }

    up = sim_oneway();
    q->down = sim_oneway();

    if (in->cut_until > sim.t) {
        q->lost = 1;

    } else if (sim.chaos) {
        if (sim_chance(sim.p_lost)) {
            q->lost = 1;
            sim.st->faults[SIM_F_REQ_LOST]++;

        } else if (sim_chance(sim.p_err)) {
            q->err_before = KLE_API_SERVER_ERROR;
            sim.st->faults[SIM_F_ERROR]++;

        } else if (sim_chance(sim.p_throttle)) {
            q->err_before = KLE_API_TOO_MANY_REQUESTS;
            q->retry_after = (int) sim_between(1, 2 * ld / 1000 + 1);
            sim.st->faults[SIM_F_THROTTLE]++;
        }

        if (sim_chance(sim.p_err_after)) {
            q->err_after = KLE_API_SERVER_ERROR;
        }
        if (sim_chance(sim.p_answer_lost)) {
            q->answer_lost = 1;
            sim.st->faults[SIM_F_ANSWER_LOST]++;
        }
        if (sim_chance(sim.p_late)) {
            /* the server applies it after the sender gave up */
            up = q->deadline - sim.t + sim_between(1, ld);
        }
    }

    sim_horizon(q->deadline);
    sim_horizon(sim.t + up + q->down);
    sim_horizon(q->deadline + (int64_t) q->retry_after * 1000);

    if (!q->lost) {
        sim_push(sim.t + up, SIM_EV_APPLY, r, q->tok);
    }
    sim_push(q->deadline, SIM_EV_TIMEOUT, r, q->tok);

    sim.st->requests++;

    if (sim.trace) {
        char  buf[200];

        if (kind == KLE_DO_GET) {
            buf[0] = '\0';
        } else {
            sim_rec_text(&q->rec, buf, sizeof(buf));
        }
        sim_tr(i, "send %s%s%s%s%s (times out at +%.3fs)",
               role == SIM_REQ_RELIST ? "list " : "",
               kind == KLE_DO_GET ? "GET"
               : kind == KLE_DO_CREATE ? "CREATE " : "UPDATE ",
               buf, kind == KLE_DO_UPDATE ? " rv=" : "",
               kind == KLE_DO_UPDATE ? q->rv : "",
               (q->deadline - sim.t) / 1e3);
    }

    return r;
}


void
sim_apply(int r)
{
    sim_req_t     *q;
    kle_record_t   old;
    char          *end;
    int64_t        rv;
    int            existed, changed;

    q = &sim_req[r];
    q->applied = 1;
    q->status = KLE_API_OK;
    changed = 0;

    if (q->err_before != KLE_API_OK) {
        q->status = q->err_before;
        goto answer;
    }

    if (q->kind != KLE_DO_GET && (!q->pending || sim.t >= q->deadline)) {
        sim.st->faults[SIM_F_LATE_APPLY]++;
    }

    old = sim.rec;
    existed = sim.exists;

    switch (q->kind) {

    case KLE_DO_GET:
        q->list_rv = sim.counter;           /* a list's version */
        if (!sim.exists) {
            /* a list is 200 with no items */
            q->status = q->role == SIM_REQ_RELIST ? KLE_API_OK
                                                  : KLE_API_NOT_FOUND;
            break;
        }
        q->result = sim.rec;
        q->result_raw = sim.raw;
        q->result_rv = sim.rv;
        q->has_result = 1;
        break;

    case KLE_DO_CREATE:
        if (sim.exists) {
            q->status = KLE_API_ALREADY_EXISTS;
            break;
        }
        changed = sim_store(&q->rec, NULL);
        break;

    default:
        if (!sim.exists) {
            q->status = KLE_API_NOT_FOUND;
            break;
        }
        rv = strtoll(q->rv, &end, 10);
        if (q->rv[0] == '\0' || *end != '\0') {
            /* the server refuses unconditional updates of a Lease */
            q->status = KLE_API_REJECTED;
            sim_violation(SIM_V_HOST, "%s sent an UPDATE with rv \"%s\"",
                          sim.inst[q->inst].name, q->rv);
            break;
        }
        if (rv != sim.rv) {
            q->status = KLE_API_CONFLICT;
            sim.st->conflicts++;
            break;
        }
        changed = sim_store(&q->rec, NULL);
        break;
    }

    if (q->status == KLE_API_OK && q->kind != KLE_DO_GET) {
        q->result = sim.rec;
        q->result_raw = sim.raw;
        q->result_rv = sim.rv;
        q->has_result = 1;
        sim_check_write(q->inst, q->kind, &old, existed, &sim.rec);
    }

    if (sim.trace) {
        char  buf[200];

        sim_tr(-1, "%s%s%s from %s#%d: %s%s %s rv=%" PRId64,
               q->kind == KLE_DO_GET ? "GET"
               : q->kind == KLE_DO_CREATE ? "CREATE" : "UPDATE",
               q->kind == KLE_DO_UPDATE ? " rv=" : "",
               q->kind == KLE_DO_UPDATE ? q->rv : "",
               sim.inst[q->inst].name, q->gen,
               sim_status_name(q->status),
               q->status == KLE_API_OK && q->kind != KLE_DO_GET && !changed
               ? " (no-op)" : "",
               q->status == KLE_API_OK ? sim_rec_text(&sim.rec, buf,
                                                       sizeof(buf)) : "",
               sim.rv);
    }

    if (q->status == KLE_API_OK && q->kind != KLE_DO_GET
        && q->err_after != KLE_API_OK)
    {
        /* stored, but the answer says it failed (an etcd timeout) */
        sim.st->faults[SIM_F_ERROR_AFTER]++;
        q->status = q->err_after;
        q->has_result = 0;
    }

answer:

    if (!q->pending) {
        q->used = 0;
        return;
    }

    if (q->answer_lost) {
        return;
    }

    sim_push(sim.t + q->down, SIM_EV_ANSWER, r, q->tok);
}


/* A write: 0 if it stored the same values (a no-op keeps the version). */
static int
sim_store(const kle_record_t *rec, const sim_raw_t *raw)
{
    kle_record_t  s;

    s = *rec;

    if (sim.whole_seconds) {
        s.acquire_time -= ((s.acquire_time % 1000000) + 1000000) % 1000000;
        s.renew_time -= ((s.renew_time % 1000000) + 1000000) % 1000000;
    }

    if (sim.exists && kle_record_equal(&sim.rec, &s)) {
        return 0;
    }

    sim.rec = s;
    if (raw != NULL) {
        sim.raw = *raw;
    } else {
        memset(&sim.raw, 0, sizeof(sim.raw));
        sim.raw.hlen = (int) strlen(s.holder);
        memcpy(sim.raw.holder, s.holder, (size_t) sim.raw.hlen);
    }
    sim.exists = 1;
    sim.rv = ++sim.counter;
    sim_change(SIM_W_CHANGE);

    return 1;
}


/* The object changed: keep it for watches, send it to the open ones. */
static void
sim_change(int kind)
{
    sim_change_t  *c;
    sim_change_t   b;
    int            i, k;

    if (sim.hist_n == SIM_HIST) {
        sim.compacted = sim.hist[sim.hist_head].rv;
        sim.hist_head = (sim.hist_head + 1) % SIM_HIST;
        sim.hist_n--;
    }

    k = (sim.hist_head + sim.hist_n) % SIM_HIST;
    c = &sim.hist[k];
    sim.hist_n++;

    c->kind = kind;
    c->rv = sim.rv;
    c->rec = sim.rec;
    c->raw = sim.raw;

    for (i = 0; i < sim.n; i++) {
        if (sim.inst[i].up && sim.inst[i].el.running
            && sim.inst[i].el.ws == SIM_WS_OPEN)
        {
            sim_wq_add(i, c, sim_lag(i));
        }
    }

    if (sim_chance(sim.p_bookmark)) {
        memset(&b, 0, sizeof(b));
        b.kind = SIM_W_BOOKMARK;
        b.rv = ++sim.counter;
        for (i = 0; i < sim.n; i++) {
            if (sim.inst[i].up && sim.inst[i].el.running
                && sim.inst[i].el.ws == SIM_WS_OPEN)
            {
                sim_wq_add(i, &b, sim_lag(i));
            }
        }
    }
}


static int64_t
sim_lag(int i)
{
    sim_inst_t  *in;

    in = &sim.inst[i];

    if (sim.chaos && sim_chance(sim.p_wlag)) {
        sim.st->faults[SIM_F_WATCH_LAG]++;
        return sim_between(sim.wlag, 2 * in->el.tm.ld);
    }

    return sim_between(1, sim.wlag);
}


/* In order: an event never overtakes the one before it. */
static void
sim_wq_add(int i, const sim_change_t *c, int64_t lag)
{
    sim_elector_t  *el;
    sim_wq_t       *w;
    int64_t         at;

    el = &sim.inst[i].el;

    if (el->wending) {
        return;
    }

    at = sim.t + lag;
    if (at < el->wq_last) {
        at = el->wq_last;
    }

    w = &el->wq[(el->wq_head + el->wq_n) % SIM_WQ];
    w->c = *c;
    w->at = at;
    el->wq_n++;
    el->wq_last = at;
    sim_horizon(at);

    if (el->wq_n == SIM_WQ - 1) {
        /* the server ends a watch that cannot keep up */
        w->c.kind = SIM_W_END_DROP;
        el->wending = 1;

    } else if (c->kind != SIM_W_END_CLOSE && c->kind != SIM_W_GONE
               && sim.chaos && sim_chance(sim.p_wdrop))
    {
        /* the connection breaks after this event */
        sim.st->faults[SIM_F_WATCH_DROP]++;
        w = &el->wq[(el->wq_head + el->wq_n) % SIM_WQ];
        memset(&w->c, 0, sizeof(w->c));
        w->c.kind = SIM_W_END_DROP;
        w->at = at;
        el->wq_n++;
        el->wending = 1;
    }

    if (c->kind == SIM_W_END_CLOSE || c->kind == SIM_W_GONE) {
        el->wending = 1;
    }

    if (!el->wq_armed) {
        el->wq_armed = 1;
        sim_push(el->wq[el->wq_head].at, SIM_EV_WATCH_EVENT, i, el->wtok);
    }
}


/* The host wants the head of the stream: the next one is armed after. */
int
sim_wq_pop(int i, sim_change_t *c)
{
    sim_elector_t  *el;

    el = &sim.inst[i].el;
    el->wq_armed = 0;

    if (el->wq_n == 0) {
        return -1;
    }

    *c = el->wq[el->wq_head].c;
    el->wq_head = (el->wq_head + 1) % SIM_WQ;
    el->wq_n--;

    if (el->wq_n > 0) {
        el->wq_armed = 1;
        sim_push(el->wq[el->wq_head].at, SIM_EV_WATCH_EVENT, i, el->wtok);
    }

    return 0;
}


void
sim_watch_start(int i, int64_t rv, int64_t limit)
{
    sim_elector_t  *el;

    el = &sim.inst[i].el;

    el->resume_rv = rv;
    el->wlimit = limit;
    el->ws = SIM_WS_CONNECTING;
    el->wtok = ++sim.tok;
    el->wq_head = 0;
    el->wq_n = 0;
    el->wq_armed = 0;
    el->wending = 0;
    el->wq_last = sim.t;

    TR(i, "watch from rv=%" PRId64, el->resume_rv);

    sim_push(sim.t + sim_oneway(), SIM_EV_WATCH_OPEN, i, el->wtok);
}


void
sim_watch_cancel(sim_elector_t *el)
{
    el->ws = SIM_WS_NONE;
    el->wtok = ++sim.tok;
    el->wq_n = 0;
    el->wq_armed = 0;
    el->wending = 0;
}


void
sim_watch_open(int i, unsigned tok)
{
    int64_t         end;
    sim_elector_t  *el;
    sim_change_t    g;
    int             k;

    el = &sim.inst[i].el;
    (void) tok;

    el->ws = SIM_WS_OPEN;

    if (el->resume_rv == 0) {
        /* no version: from now on, the object first, as ADDED */
        if (sim.exists) {
            memset(&g, 0, sizeof(g));
            g.kind = SIM_W_CHANGE;
            g.rv = sim.rv;
            g.rec = sim.rec;
            g.raw = sim.raw;
            sim_wq_add(i, &g, sim_lag(i));
        }

    } else if (el->resume_rv < sim.compacted
               || (sim.chaos && sim_chance(sim.p_wgone)))
    {
        /* too old: 200, then an ERROR event 410 Expired */
        sim.st->faults[SIM_F_WATCH_GONE]++;
        memset(&g, 0, sizeof(g));
        g.kind = SIM_W_GONE;
        sim_wq_add(i, &g, 0);

    } else {
        for (k = 0; k < sim.hist_n; k++) {
            const sim_change_t *c = &sim.hist[(sim.hist_head + k) % SIM_HIST];

            if (c->rv > el->resume_rv) {
                sim_wq_add(i, c, sim_lag(i));
            }
        }
    }

    /* the server ends every watch after a while, at the latest when the
       client's timeoutSeconds runs out */
    end = sim_between(sim.wclose_min, 2 * sim.wclose_min);
    if (el->wlimit > 0 && end > el->wlimit) {
        end = el->wlimit;
    }
    sim_push(sim.t + end, SIM_EV_WATCH_END, i, el->wtok);

    sim_http_watch_opened(i);
}


void
sim_watch_close_at(int i, unsigned tok)
{
    sim_elector_t  *el;
    sim_change_t    c;

    el = &sim.inst[i].el;

    if (!sim.inst[i].up || !el->running || tok != el->wtok
        || el->ws != SIM_WS_OPEN || el->wending)
    {
        return;
    }

    sim.st->faults[SIM_F_WATCH_CLOSE]++;
    memset(&c, 0, sizeof(c));
    c.kind = SIM_W_END_CLOSE;
    sim_wq_add(i, &c, 0);
}


/* Someone else writes the lock by hand, or deletes it. */
void
sim_foreign_write(int kind)
{
    static const char  *stamps[] = {
        "2026-01-01 10:00:00.123456", "2026-01-01 10:00:00",
        "2026-01-01T10:00:00Z", "2026-01-01T10:00:00.5+01:00"
    };

    sim_foreign_t  *f;
    kle_record_t    rec;
    sim_raw_t       raw;
    char            json[512], err[256], holder[320];
    int64_t         lease;
    int             i, changed;

    memset(&rec, 0, sizeof(rec));
    memset(&raw, 0, sizeof(raw));
    rec.acquire_time = SIM_WALL0 + sim.t * 1000;
    rec.renew_time = rec.acquire_time;
    rec.transitions = (int32_t) sim_between(0, 5);
    rec.lease_duration = (int32_t) sim_between(1, 30);

    switch (kind) {

    case SIM_F_FOREIGN_RECORD:
        snprintf(rec.holder, sizeof(rec.holder), "intruder-%d",
                 (int) sim_rand(1000));
        break;

    case SIM_F_FOREIGN_FREE:
        rec.transitions = sim.rec.transitions;
        break;

    case SIM_F_FOREIGN_OURS:
        i = (int) sim_rand((uint64_t) sim.n);
        snprintf(rec.holder, sizeof(rec.holder), "%s",
                 sim.inst[i].el.gen ? sim.inst[i].el.id : sim.inst[i].name);
        break;

    case SIM_F_FOREIGN_PYTHON:
        /* the Python client: a string lease, str(datetime), no count */
        snprintf(json, sizeof(json),
                 "{\"holderIdentity\": \"py-%d\", \"leaseDurationSeconds\": "
                 "\"%d\", \"acquireTime\": \"%s\", \"renewTime\": \"%s\"}",
                 (int) sim_rand(1000), (int) rec.lease_duration,
                 stamps[sim_rand(4)], stamps[sim_rand(4)]);
        if (kle_record_from_annotation(json, strlen(json), &rec, err,
                                       sizeof(err)) != 0)
        {
            sim_violation(SIM_V_HOST, "a Python-format record was "
                          "refused: %s", err);
            return;
        }
        /* a ConfigMap holds it as written */
        snprintf(raw.ann, sizeof(raw.ann), "%s", json);
        break;

    case SIM_F_FOREIGN_LONG:
        /* a holder no lock can hold */
        memset(holder, 'h', sizeof(holder));
        if (sim_rand(2)) {
            raw.hlen = 300;
        } else {
            holder[10] = '\0';
            raw.hlen = 20;
        }
        kle_record_set_holder(&rec, holder, (size_t) raw.hlen);
        memcpy(raw.holder, holder, (size_t) raw.hlen);
        break;

    case SIM_F_FOREIGN_DELETE:
        if (!sim.exists) {
            return;
        }
        sim.exists = 0;
        sim.rv = ++sim.counter;
        sim_change(SIM_W_DELETED);
        break;
    }

    if (raw.hlen == 0) {
        raw.hlen = (int) strlen(rec.holder);
        memcpy(raw.holder, rec.holder, (size_t) raw.hlen);
    }

    changed = 1;
    if (kind != SIM_F_FOREIGN_DELETE) {
        changed = sim_store(&rec, &raw);
    }

    if (!changed) {
        return;
    }

    /* how long an honest follower waits before it takes this one over */
    lease = kind == SIM_F_FOREIGN_DELETE || sim.rec.holder[0] == '\0'
            || sim.rec.lease_duration <= 0
            ? 0 : (int64_t) sim.rec.lease_duration * 1000;

    /* the one it names takes it at once, as its own */
    for (i = 0; i < sim.n; i++) {
        if (kind == SIM_F_FOREIGN_OURS
            || (kind != SIM_F_FOREIGN_DELETE
                && sim_names(&sim.rec, sim.inst[i].el.id)))
        {
            lease = 0;
        }
    }

    /* the latest ones: older ones predate every claim that matters */
    {
        f = &sim.foreign[sim.nforeign++ % SIM_FOREIGN];
        f->t = sim.t;
        f->rv = sim.rv;
        f->lease = lease;
        snprintf(f->holder, sizeof(f->holder), "%.*s", SIM_ID_MAX - 1,
                 kind == SIM_F_FOREIGN_DELETE ? "" : sim.rec.holder);
    }
    sim.foreign_rv = sim.rv;

    /* until it runs out, and until a leader that missed it lets go */
    for (i = 0; i < sim.npool; i++) {
        sim_horizon(sim.t + lease + sim.pool[i].rd);
    }

    if (kind != SIM_F_FOREIGN_DELETE
        && (int64_t) sim.rec.lease_duration * 1000 > sim.foreign_lease)
    {
        sim.foreign_lease = (int64_t) sim.rec.lease_duration * 1000;
    }

    if (sim.trace) {
        char  buf[200];

        sim_tr(-2, "foreign %s: %s rv=%" PRId64,
               kind == SIM_F_FOREIGN_DELETE ? "delete" : "write",
               kind == SIM_F_FOREIGN_DELETE ? ""
               : sim_rec_text(&sim.rec, buf, sizeof(buf)), sim.rv);
    }
}
