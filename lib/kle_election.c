/*
 * The election's decisions: client-go's tryAcquireOrRenew cut at each
 * request, so that a host can run the requests asynchronously.  One
 * attempt is a chain of at most two requests (GET then CREATE or UPDATE,
 * or the leader's optimistic UPDATE then, if it fails, GET and UPDATE);
 * the follow-up is kept in e->pending and handed out by the next call to
 * kle_election_next().  e->pending_record is the write pending or in
 * flight; when it succeeds and the host has no echo, it is what we saw.
 * docs/design.md has the safety argument.
 */

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "kle_election.h"

/*
 * pending_record.acquire_time: take the wall time of the write, which is
 * only known when next() hands the write out.
 */
#define KLE_ACQUIRE_NOW  INT64_MIN

/* leaseDurationSeconds is an int32 */
#define KLE_LEASE_MAX_MS  ((int64_t) INT32_MAX * 1000)

static const char *kle_ms_text(int64_t ms, char *buf, size_t size);
static unsigned kle_set_state(kle_election_t *e, kle_state_t state);
static unsigned kle_check_deadline(kle_election_t *e, int64_t now);
static unsigned kle_leave_starting(kle_election_t *e);
static unsigned kle_set_observed(kle_election_t *e, int64_t now,
    const kle_record_t *rec);
static unsigned kle_saw_record(kle_election_t *e, int64_t now,
    const kle_record_t *rec);
static int kle_holds(const kle_election_t *e);
static int kle_lease_valid(const kle_election_t *e, int64_t now);
static void kle_own_record(const kle_election_t *e, kle_record_t *rec);
static void kle_send(kle_election_t *e, int64_t now, kle_action_kind_t kind,
    kle_action_t *act);
static unsigned kle_release_step(kle_election_t *e, int64_t now,
    int64_t wall_us, kle_action_t *act);
static unsigned kle_on_get(kle_election_t *e, int64_t now,
    kle_api_status_t status, const kle_record_t *rec, int retry_after);
static unsigned kle_on_written(kle_election_t *e, int64_t now,
    const kle_record_t *rec);
static void kle_attempt_failed(kle_election_t *e, int64_t now,
    kle_api_status_t status, int retry_after);
static int64_t kle_jitter(kle_election_t *e);


int
kle_election_config_validate(const kle_election_config_t *cfg, char *err,
    size_t errlen)
{
    char     a[32], b[32];
    int64_t  ld, rd, rp;

    ld = cfg->lease_duration;
    rd = cfg->renew_deadline;
    rp = cfg->retry_period;

    if (cfg->identity[0] == '\0') {
        snprintf(err, errlen, "identity must not be empty");
        return -1;
    }

    if (rp <= 0) {
        snprintf(err, errlen, "retry_period must be greater than 0");
        return -1;
    }

    if (ld > KLE_LEASE_MAX_MS) {
        snprintf(err, errlen, "lease_duration (%s) must be at most %" PRId32
                 "s", kle_ms_text(ld, a, sizeof(a)), INT32_MAX);
        return -1;
    }

    if (ld <= rd) {
        snprintf(err, errlen, "lease_duration (%s) must be greater than "
                 "renew_deadline (%s)", kle_ms_text(ld, a, sizeof(a)),
                 kle_ms_text(rd, b, sizeof(b)));
        return -1;
    }

    /* rd > 1.2 * rp in integers; rd <= rp first keeps the products small */
    if (rd <= rp || rd * 5 <= rp * 6) {
        snprintf(err, errlen, "renew_deadline (%s) must be greater than "
                 "1.2 * retry_period (%s)", kle_ms_text(rd, a, sizeof(a)),
                 kle_ms_text(rp, b, sizeof(b)));
        return -1;
    }

    if (ld % 1000 != 0) {
        snprintf(err, errlen, "lease_duration (%s) must be a whole number "
                 "of seconds", kle_ms_text(ld, a, sizeof(a)));
        return -1;
    }

    return 0;
}


static const char *
kle_ms_text(int64_t ms, char *buf, size_t size)
{
    if (ms % 1000 == 0) {
        snprintf(buf, size, "%" PRId64 "s", ms / 1000);

    } else {
        snprintf(buf, size, "%" PRId64 "ms", ms);
    }

    return buf;
}


void
kle_election_init(kle_election_t *e, const kle_election_config_t *cfg,
    uint64_t seed)
{
    memset(e, 0, sizeof(*e));

    e->cfg = *cfg;
    e->state = KLE_STATE_STARTING;
    e->next_attempt = 0;
    e->in_flight = KLE_DO_NOTHING;
    e->pending = KLE_DO_NOTHING;

    /* xorshift64 never leaves 0 */
    e->rng = seed ? seed : 0x9e3779b97f4a7c15ULL;
}


unsigned
kle_election_next(kle_election_t *e, int64_t now, int64_t wall_us,
    kle_action_t *act)
{
    unsigned           ev;
    kle_action_kind_t  kind;

    memset(act, 0, sizeof(*act));
    act->kind = KLE_DO_NOTHING;

    ev = kle_check_deadline(e, now);

    if (e->state == KLE_STATE_RELEASED) {
        return ev;
    }

    if (e->in_flight != KLE_DO_NOTHING) {
        /* not a wait: but a leader's host may want to wake for the lapse */
        if (e->state == KLE_STATE_LEADING) {
            act->until = e->renew_start + e->cfg.renew_deadline;
        }
        return ev;
    }

    if (e->release_wanted) {
        return ev | kle_release_step(e, now, wall_us, act);
    }

    if (e->pending != KLE_DO_NOTHING) {
        kind = e->pending;
        e->pending = KLE_DO_NOTHING;

        if (kind != KLE_DO_GET) {
            e->pending_record.renew_time = wall_us;
            if (e->pending_record.acquire_time == KLE_ACQUIRE_NOW) {
                e->pending_record.acquire_time = wall_us;
            }
        }

        kle_send(e, now, kind, act);
        return ev;
    }

    if (now < e->next_attempt) {
        act->kind = KLE_DO_WAIT;
        act->until = e->next_attempt;

        if (e->state == KLE_STATE_LEADING
            && e->renew_start + e->cfg.renew_deadline < act->until)
        {
            act->until = e->renew_start + e->cfg.renew_deadline;
        }

        return ev;
    }

    /*
     * A new attempt.  The leader first writes optimistically on the
     * version it last saw.  client-go gates this on the observed holder
     * alone; observe() can show us stale records, so we also require
     * LEADING, which only our own successful write sets.
     */
    if (e->state == KLE_STATE_LEADING && kle_holds(e)
        && kle_lease_valid(e, now))
    {
        kle_own_record(e, &e->pending_record);
        e->pending_record.acquire_time = e->observed.acquire_time;
        e->pending_record.renew_time = wall_us;
        e->pending_record.transitions = e->observed.transitions;
        e->fast_path = 1;

        kle_send(e, now, KLE_DO_UPDATE, act);
        return ev;
    }

    kle_send(e, now, KLE_DO_GET, act);
    return ev;
}


unsigned
kle_election_on_result(kle_election_t *e, int64_t now,
    kle_api_status_t status, const kle_record_t *rec, int retry_after)
{
    unsigned           ev;
    kle_action_kind_t  kind;

    kind = e->in_flight;
    if (kind == KLE_DO_NOTHING) {
        return 0;
    }

    e->in_flight = KLE_DO_NOTHING;

    ev = kle_check_deadline(e, now);

    if (e->releasing) {
        /* released or not, we tried once: the lease lapses on its own */
        e->releasing = 0;

        if (status == KLE_API_OK) {
            ev |= kle_set_observed(e, now, rec ? rec : &e->pending_record);
        }

        return ev | kle_set_state(e, KLE_STATE_RELEASED);
    }

    if (kind == KLE_DO_GET) {
        return ev | kle_on_get(e, now, status, rec, retry_after);
    }

    if (status == KLE_API_OK) {
        return ev | kle_on_written(e, now, rec);
    }

    /* the server asked us to back off: no GET now, the attempt ends */
    if (e->fast_path && status != KLE_API_TOO_MANY_REQUESTS) {
        /* the record moved on, or the API failed: read it, same attempt */
        e->fast_path = 0;
        e->pending = KLE_DO_GET;
        return ev;
    }

    kle_attempt_failed(e, now, status, retry_after);

    return ev;
}


static unsigned
kle_on_get(kle_election_t *e, int64_t now, kle_api_status_t status,
    const kle_record_t *rec, int retry_after)
{
    unsigned  ev;

    if (status == KLE_API_NOT_FOUND) {
        kle_own_record(e, &e->pending_record);
        e->pending_record.acquire_time = KLE_ACQUIRE_NOW;
        e->pending = KLE_DO_CREATE;

        return kle_leave_starting(e);
    }

    if (status != KLE_API_OK || rec == NULL) {
        kle_attempt_failed(e, now, status, retry_after);
        return 0;
    }

    ev = kle_saw_record(e, now, rec);
    ev |= kle_leave_starting(e);

    if (e->observed.holder[0] != '\0' && kle_lease_valid(e, now)
        && !kle_holds(e))
    {
        kle_attempt_failed(e, now, status, retry_after);
        return ev;
    }

    kle_own_record(e, &e->pending_record);

    if (kle_holds(e)) {
        e->pending_record.acquire_time = e->observed.acquire_time;
        e->pending_record.transitions = e->observed.transitions;

    } else {
        e->pending_record.acquire_time = KLE_ACQUIRE_NOW;
        e->pending_record.transitions = e->observed.transitions < INT32_MAX
                                        ? e->observed.transitions + 1
                                        : INT32_MAX;
    }

    e->pending = KLE_DO_UPDATE;

    return ev;
}


static unsigned
kle_on_written(kle_election_t *e, int64_t now, const kle_record_t *rec)
{
    unsigned  ev;

    ev = kle_set_observed(e, now, rec ? rec : &e->pending_record);

    e->fast_path = 0;
    e->renew_start = e->request_start;
    e->next_attempt = now + e->cfg.retry_period;

    /*
     * A write that started a whole renew deadline ago proves nothing about
     * now; the record is ours, so the next attempt renews it.
     */
    if (now - e->request_start < e->cfg.renew_deadline) {
        ev |= kle_set_state(e, KLE_STATE_LEADING);
    }

    return ev;
}


static void
kle_attempt_failed(kle_election_t *e, int64_t now, kle_api_status_t status,
    int retry_after)
{
    int64_t  later;

    if (e->state == KLE_STATE_LEADING) {
        e->next_attempt = now + e->cfg.retry_period;

    } else {
        e->next_attempt = now + kle_jitter(e);
    }

    if (status == KLE_API_TOO_MANY_REQUESTS && retry_after > 0) {
        later = now + (int64_t) retry_after * 1000;
        if (later > e->next_attempt) {
            e->next_attempt = later;
        }
    }
}


unsigned
kle_election_observe(kle_election_t *e, int64_t now, const kle_record_t *rec)
{
    unsigned  ev;

    if (e->state == KLE_STATE_RELEASED) {
        return 0;
    }

    ev = kle_check_deadline(e, now);

    /*
     * A leader learns its own record from its writes.  One that names us
     * here is an echo or a stale event: it must not lend an older term's
     * acquire_time and transitions to the next optimistic renewal.
     */
    if (e->state == KLE_STATE_LEADING
        && strcmp(rec->holder, e->cfg.identity) == 0)
    {
        return ev;
    }

    ev |= kle_saw_record(e, now, rec);
    ev |= kle_leave_starting(e);

    if (e->in_flight != KLE_DO_NOTHING || e->pending != KLE_DO_NOTHING) {
        return ev;
    }

    if (rec->holder[0] == '\0' && e->state != KLE_STATE_LEADING) {
        e->next_attempt = now;
    }

    return ev;
}


void
kle_election_release(kle_election_t *e)
{
    if (e->release_wanted) {
        return;
    }

    /* the host cancels what is in flight and never feeds its answer */
    e->release_wanted = 1;
    e->in_flight = KLE_DO_NOTHING;
    e->pending = KLE_DO_NOTHING;
    e->fast_path = 0;
}


static unsigned
kle_release_step(kle_election_t *e, int64_t now, int64_t wall_us,
    kle_action_t *act)
{
    if (e->state != KLE_STATE_LEADING || !kle_holds(e)) {
        return kle_set_state(e, KLE_STATE_RELEASED);
    }

    /* client-go's release record: free, expiring in a second */
    memset(&e->pending_record, 0, sizeof(e->pending_record));
    e->pending_record.lease_duration = 1;
    e->pending_record.acquire_time = wall_us;
    e->pending_record.renew_time = wall_us;
    e->pending_record.transitions = e->observed.transitions;
    e->releasing = 1;

    kle_send(e, now, KLE_DO_UPDATE, act);

    return 0;
}


/*
 * A leader that asked to release stops claiming at once: others may read
 * the free record before we read the answer to the release.
 */
int
kle_election_is_leader(const kle_election_t *e, int64_t now)
{
    return e->state == KLE_STATE_LEADING
           && !e->release_wanted
           && now - e->renew_start < e->cfg.renew_deadline;
}


const char *
kle_state_name(kle_state_t state)
{
    switch (state) {
    case KLE_STATE_STARTING:
        return "starting";
    case KLE_STATE_FOLLOWING:
        return "following";
    case KLE_STATE_LEADING:
        return "leading";
    case KLE_STATE_RELEASED:
        return "released";
    }

    return "unknown";
}


static unsigned
kle_set_state(kle_election_t *e, kle_state_t state)
{
    unsigned  ev;

    if (e->state == state) {
        return 0;
    }

    ev = KLE_EV_CHANGED;

    if (e->state == KLE_STATE_LEADING) {
        ev |= KLE_EV_STOPPED_LEADING;
    }

    if (state == KLE_STATE_LEADING) {
        ev |= KLE_EV_STARTED_LEADING;
    }

    e->state = state;

    return ev;
}


/* The leader steps down once a whole renew deadline passed unrenewed. */
static unsigned
kle_check_deadline(kle_election_t *e, int64_t now)
{
    if (e->state == KLE_STATE_LEADING
        && now - e->renew_start >= e->cfg.renew_deadline)
    {
        return kle_set_state(e, KLE_STATE_FOLLOWING);
    }

    return 0;
}


static unsigned
kle_leave_starting(kle_election_t *e)
{
    if (e->state == KLE_STATE_STARTING) {
        return kle_set_state(e, KLE_STATE_FOLLOWING);
    }

    return 0;
}


/* client-go's setObservedRecord, plus the OnNewLeader report. */
static unsigned
kle_set_observed(kle_election_t *e, int64_t now, const kle_record_t *rec)
{
    unsigned  ev;

    ev = 0;

    if (!e->have_observed || !kle_record_equal(&e->observed, rec)) {
        ev |= KLE_EV_CHANGED;
    }

    e->observed = *rec;
    e->have_observed = 1;
    e->observed_time = now;

    if (strcmp(e->observed.holder, e->reported) != 0) {
        memcpy(e->reported, e->observed.holder, sizeof(e->reported));
        ev |= KLE_EV_NEW_LEADER;
    }

    return ev;
}


/*
 * A record read from the server.  Only a change restarts the lease clock:
 * the remote times are never compared with ours.
 */
static unsigned
kle_saw_record(kle_election_t *e, int64_t now, const kle_record_t *rec)
{
    if (e->have_observed && kle_record_equal(&e->observed, rec)) {
        return 0;
    }

    return kle_set_observed(e, now, rec);
}


static int
kle_holds(const kle_election_t *e)
{
    return strcmp(e->observed.holder, e->cfg.identity) == 0;
}


static int
kle_lease_valid(const kle_election_t *e, int64_t now)
{
    return e->observed_time + (int64_t) e->observed.lease_duration * 1000
           > now;
}


static void
kle_own_record(const kle_election_t *e, kle_record_t *rec)
{
    memset(rec, 0, sizeof(*rec));
    memcpy(rec->holder, e->cfg.identity, sizeof(rec->holder));
    memcpy(rec->address, e->cfg.address, sizeof(rec->address));
    rec->lease_duration = (int32_t) (e->cfg.lease_duration / 1000);
}


static void
kle_send(kle_election_t *e, int64_t now, kle_action_kind_t kind,
    kle_action_t *act)
{
    e->in_flight = kind;
    e->request_start = now;

    act->kind = kind;
    act->timeout = e->cfg.renew_deadline / 2;

    if (kind != KLE_DO_GET) {
        act->record = e->pending_record;
    }
}


/* client-go's wait.Jitter(retry_period, 1.2): [rp, 2.2 * rp) */
static int64_t
kle_jitter(kle_election_t *e)
{
    uint64_t  x;
    int64_t   span;

    x = e->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    e->rng = x;

    span = e->cfg.retry_period * 6 / 5;

    return e->cfg.retry_period + (int64_t) (x % (uint64_t) span);
}
