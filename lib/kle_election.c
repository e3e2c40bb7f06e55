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

/* client-go's floor for a request's timeout */
#define KLE_TIMEOUT_MIN  1000


static const char *kle_ms_text(int64_t ms, char *buf, size_t size);
static unsigned kle_set_state(kle_election_t *e, kle_state_t state);
static unsigned kle_check_deadline(kle_election_t *e, int64_t now);
static unsigned kle_leave_starting(kle_election_t *e);
static void kle_set_rv(char *dst, const char *rv);
static unsigned kle_set_observed(kle_election_t *e, int64_t now,
    const kle_record_t *rec, const char *rv);
static unsigned kle_saw(kle_election_t *e, int64_t now,
    const kle_record_t *rec, const char *rv);
static int kle_holds(const kle_election_t *e);
static unsigned kle_judge(kle_election_t *e, const kle_record_t *rec);
static int kle_lease_valid(const kle_election_t *e, int64_t now);
static int64_t kle_due(const kle_election_t *e, int64_t now);
static kle_action_kind_t kle_plan(kle_election_t *e, int64_t now);
static void kle_own_record(const kle_election_t *e, kle_record_t *rec);
static void kle_send(kle_election_t *e, int64_t now, int64_t wall_us,
    kle_action_kind_t kind, kle_action_t *act);
static unsigned kle_release_step(kle_election_t *e, int64_t now,
    int64_t wall_us, kle_action_t *act);
static unsigned kle_on_read(kle_election_t *e, int64_t now,
    kle_api_status_t status, const kle_record_t *rec, const char *rv,
    int retry_after);
static void kle_after_read(kle_election_t *e, int64_t now);
static unsigned kle_on_written(kle_election_t *e, int64_t now,
    const kle_record_t *rec, const char *rv);
static void kle_attempt_failed(kle_election_t *e, int64_t now,
    kle_api_status_t status, int retry_after);
static void kle_follow(kle_election_t *e, int64_t now, int failed);
static int64_t kle_timeout(const kle_election_t *e);
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

    if (cfg->address[0] != '\0'
        && !kle_address_valid(cfg->address, strlen(cfg->address)))
    {
        snprintf(err, errlen, "address \"%s\" must be HOST:PORT: an IPv4 "
                 "address, a bracketed IPv6 address or a DNS name, and a "
                 "port from 1 to 65535", cfg->address);
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

    /*
     * Whoever compares records at whole seconds (a configmaps lock stores
     * them so; client-go reads a Lease's MicroTimes as whole seconds) may
     * take two renewals within a second for one and start its lease clock
     * up to a second early: the claim must end a second before that.
     */
    if (ld - rd < 1000) {
        snprintf(err, errlen, "lease_duration (%s) - renew_deadline (%s) "
                 "must be at least 1s: client-go and configmaps locks "
                 "compare records at whole seconds, so a follower may take "
                 "over up to 1s early", kle_ms_text(ld, a, sizeof(a)),
                 kle_ms_text(rd, b, sizeof(b)));
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
            act->until = e->claim_until;
        }
        return ev;
    }

    if (e->release_wanted) {
        return ev | kle_release_step(e, now, wall_us, act);
    }

    if (e->pending != KLE_DO_NOTHING) {
        kind = e->pending;
        e->pending = KLE_DO_NOTHING;
        kle_send(e, now, wall_us, kind, act);
        return ev;
    }

    if (now < e->next_attempt) {
        act->kind = KLE_DO_WAIT;
        act->until = e->next_attempt;

        if (e->state == KLE_STATE_LEADING && e->claim_until < act->until) {
            act->until = e->claim_until;
        }

        return ev;
    }

    /* a new attempt */
    e->reread = 0;

    /*
     * The leader writes optimistically on the version it last wrote.
     * client-go gates this on the observed holder alone; we also require
     * LEADING, which only our own successful write sets.
     */
    if (e->state == KLE_STATE_LEADING && kle_holds(e) && !e->stale
        && e->observed_rv[0] != '\0' && kle_lease_valid(e, now))
    {
        kle_own_record(e, &e->pending_record);
        e->pending_record.acquire_time = e->observed.acquire_time;
        e->pending_record.transitions = e->observed.transitions;
        memcpy(e->pending_rv, e->observed_rv, KLE_RV_MAX);
        e->fast_path = 1;

        kle_send(e, now, wall_us, KLE_DO_UPDATE, act);
        return ev;
    }

    /*
     * Anyone else judges what it observed: an expired or free record is
     * taken with one UPDATE conditioned on the version that showed it, so
     * a stale view costs a 409, never a second leader.
     */
    kind = kle_plan(e, now);

    if (kind == KLE_DO_NOTHING) {
        if (e->watching) {
            /* the watch tells us of changes: wait for the expiry */
            e->next_attempt = kle_due(e, now);
            act->kind = KLE_DO_WAIT;
            act->until = e->next_attempt;
            return ev;
        }

        kind = KLE_DO_GET;      /* a poll */
    }

    kle_send(e, now, wall_us, kind, act);

    return ev;
}


unsigned
kle_election_on_result(kle_election_t *e, int64_t now,
    kle_api_status_t status, const kle_record_t *rec, const char *rv,
    int retry_after)
{
    int                fast;
    unsigned           ev;
    kle_action_kind_t  kind;

    kind = e->in_flight;
    if (kind == KLE_DO_NOTHING) {
        return 0;
    }

    e->in_flight = KLE_DO_NOTHING;

    ev = kle_check_deadline(e, now);

    if (e->releasing) {
        e->releasing = 0;

        if (status == KLE_API_OK) {
            ev |= kle_set_observed(e, now, rec ? rec : &e->pending_record,
                                   rec ? rv : NULL);
            return ev | kle_set_state(e, KLE_STATE_RELEASED);
        }

        /*
         * A write of ours cancelled for the release may still have landed
         * and moved the version on: read once, and if the record is still
         * ours, release that.  Otherwise the lease lapses on its own.
         */
        if (status == KLE_API_CONFLICT && !e->reread) {
            e->reread = 1;
            e->pending = KLE_DO_GET;
            return ev;
        }

        return ev | kle_set_state(e, KLE_STATE_RELEASED);
    }

    if (e->release_wanted) {
        /* the GET after a release's 409: release_step() judges it */
        if (status == KLE_API_OK && rec != NULL) {
            return ev | kle_saw(e, now, rec, rv);
        }

        return ev | kle_set_state(e, KLE_STATE_RELEASED);
    }

    if (kind == KLE_DO_GET) {
        return ev | kle_on_read(e, now, status, rec, rv, retry_after);
    }

    if (status == KLE_API_OK) {
        return ev | kle_on_written(e, now, rec, rv);
    }

    fast = e->fast_path;
    e->fast_path = 0;

    /* an UPDATE of an object that is gone: that is a read of it too */
    if (status == KLE_API_NOT_FOUND && kind == KLE_DO_UPDATE) {
        ev |= kle_saw(e, now, NULL, NULL);

        if (!e->reread) {
            e->reread = 1;
            kle_after_read(e, now);
            return ev;
        }

        kle_attempt_failed(e, now, status, retry_after);
        return ev;
    }

    /*
     * The version we wrote on is not the object's any more, unless a read
     * since the write was sent (a watch event) already showed a newer one.
     */
    if ((status == KLE_API_CONFLICT || status == KLE_API_ALREADY_EXISTS)
        && e->observations == e->sent_after)
    {
        e->stale = 1;
    }

    /*
     * A lost race, or a failed renewal, is read once in the same attempt,
     * unless a read since the write was sent already told us more.  The
     * server asking us to back off ends the attempt.
     */
    if (!e->reread && status != KLE_API_TOO_MANY_REQUESTS
        && (fast || e->stale) && e->observations == e->sent_after)
    {
        e->reread = 1;
        e->pending = KLE_DO_GET;
        return ev;
    }

    kle_attempt_failed(e, now, status, retry_after);

    return ev;
}


static unsigned
kle_on_read(kle_election_t *e, int64_t now, kle_api_status_t status,
    const kle_record_t *rec, const char *rv, int retry_after)
{
    unsigned  ev;

    if (status == KLE_API_NOT_FOUND) {
        ev = kle_saw(e, now, NULL, rv);

    } else if (status == KLE_API_OK && rec != NULL) {
        ev = kle_saw(e, now, rec, rv);

    } else {
        kle_attempt_failed(e, now, status, retry_after);
        return 0;
    }

    kle_after_read(e, now);

    return ev;
}


/* Within an attempt, after a read: the write it allows, or the end. */
static void
kle_after_read(kle_election_t *e, int64_t now)
{
    kle_action_kind_t  kind;

    kind = kle_plan(e, now);

    if (kind == KLE_DO_CREATE || kind == KLE_DO_UPDATE) {
        e->pending = kind;
        return;
    }

    if (e->state == KLE_STATE_LEADING) {
        e->next_attempt = now + e->cfg.retry_period;
        return;
    }

    /* a GET would read the same again: count it as a failure */
    kle_follow(e, now, kind == KLE_DO_GET);
}


static unsigned
kle_on_written(kle_election_t *e, int64_t now, const kle_record_t *rec,
    const char *rv)
{
    unsigned  ev;

    e->fast_path = 0;

    /*
     * A read that does not name us came while the write was out.  A write
     * conditioned on a version fails once a newer one exists, so this one
     * was stored before the version we read: what it wrote is replaced
     * already, and no claim.  Read what is there now.
     */
    if (e->superseded) {
        e->superseded = 0;

        if (!e->reread) {
            e->reread = 1;
            e->pending = KLE_DO_GET;
            return 0;
        }

        kle_follow(e, now, 1);
        return 0;
    }

    /*
     * The server says it stored a record that does not name us: that is
     * a read of someone else's record, not a claim of ours.
     */
    if (rec != NULL && !kle_election_mine(e, rec)) {
        ev = kle_saw(e, now, rec, rv);

        if (e->state == KLE_STATE_LEADING) {
            e->next_attempt = now + e->cfg.retry_period;
        } else {
            kle_follow(e, now, 1);
        }

        return ev;
    }

    /* without the server's echo we know the record, not its version */
    ev = kle_set_observed(e, now, rec ? rec : &e->pending_record,
                          rec ? rv : NULL);

    /*
     * The next renewal a retry period after this one started, so that a
     * slow answer does not let the claim lapse before it.
     */
    e->renew_start = e->request_start;
    e->next_attempt = e->request_start + e->cfg.retry_period;
    if (e->next_attempt < now) {
        e->next_attempt = now;
    }

    /*
     * A write that started a whole renew deadline ago proves nothing about
     * now; the record is ours, so the next attempt renews it.  The claim
     * ends a renew deadline after the write was sent, fixed now.
     */
    if (now - e->request_start < e->cfg.renew_deadline) {
        e->claim_until = e->request_start + e->cfg.renew_deadline;
        e->term = e->observed.transitions;
        ev |= kle_set_state(e, KLE_STATE_LEADING);
    }

    return ev;
}


static void
kle_attempt_failed(kle_election_t *e, int64_t now, kle_api_status_t status,
    int retry_after)
{
    int64_t  later, cap;

    e->pending = KLE_DO_NOTHING;

    if (status == KLE_API_TOO_MANY_REQUESTS && retry_after > 0) {
        /*
         * A follower waits one lease at most.  A leader never waits past
         * its claim: it tries again in time for the answer to come back
         * before the claim ends.
         */
        cap = e->state == KLE_STATE_LEADING
              ? e->claim_until - kle_timeout(e) : now + e->cfg.lease_duration;
        later = now + (int64_t) retry_after * 1000;
        e->backoff_until = later < cap ? later : cap;
    }

    if (e->state == KLE_STATE_LEADING) {
        e->next_attempt = now + e->cfg.retry_period;
        if (e->backoff_until > e->next_attempt) {
            e->next_attempt = e->backoff_until;
        }
        return;
    }

    kle_follow(e, now, 1);
}


/*
 * A follower's next attempt, once one has ended.  With a watch, at the
 * expiry of what it observed: the watch shows every change before then.
 * Without one, it polls with client-go's jitter.  After a failure, not
 * before the jitter; never before the server's Retry-After.
 */
static void
kle_follow(kle_election_t *e, int64_t now, int failed)
{
    int64_t  t, poll;

    t = kle_due(e, now);

    if (!e->watching) {
        poll = now + kle_jitter(e);
        if (failed || poll < t) {
            t = poll;
        }

    } else if (failed) {
        poll = now + kle_jitter(e);
        if (poll > t) {
            t = poll;
        }
    }

    if (t < e->backoff_until) {
        t = e->backoff_until;
    }

    e->next_attempt = t;
}


unsigned
kle_election_observe(kle_election_t *e, int64_t now, const kle_record_t *rec,
    const char *rv)
{
    int64_t   due;
    unsigned  ev;

    if (e->state == KLE_STATE_RELEASED) {
        return 0;
    }

    ev = kle_check_deadline(e, now);

    /*
     * A leader learns its own record from its writes.  One that names us
     * here is an echo or lags our writes: it must not move the version we
     * renew on back, nor lend an older term to the next renewal.  (One in
     * our name that someone else wrote is ignored too, as client-go's
     * leader does: docs/design.md, "What breaks it".)
     */
    if (e->state == KLE_STATE_LEADING && rec != NULL
        && kle_election_mine(e, rec))
    {
        return ev;
    }

    /* see kle_on_written() */
    if ((e->in_flight == KLE_DO_CREATE || e->in_flight == KLE_DO_UPDATE)
        && (rec == NULL || !kle_election_mine(e, rec)))
    {
        e->superseded = 1;
    }

    ev |= kle_saw(e, now, rec, rv);

    if (e->in_flight != KLE_DO_NOTHING || e->pending != KLE_DO_NOTHING
        || e->state == KLE_STATE_LEADING)
    {
        return ev;
    }

    due = kle_due(e, now);

    if (e->watching || due < e->next_attempt) {
        e->next_attempt = due;
    }

    if (e->next_attempt < e->backoff_until) {
        e->next_attempt = e->backoff_until;
    }

    return ev;
}


unsigned
kle_election_watching(kle_election_t *e, int64_t now, int established)
{
    unsigned  ev;
    int64_t   poll;

    if (e->state == KLE_STATE_RELEASED) {
        return 0;
    }

    ev = kle_check_deadline(e, now);

    established = established != 0;
    if (e->watching == established) {
        return ev;
    }

    e->watching = established;

    if (e->in_flight != KLE_DO_NOTHING || e->pending != KLE_DO_NOTHING
        || e->state == KLE_STATE_LEADING)
    {
        return ev;
    }

    if (established) {
        e->next_attempt = kle_due(e, now);

    } else {
        /* back to polling */
        poll = now + kle_jitter(e);
        if (poll < e->next_attempt) {
            e->next_attempt = poll;
        }
    }

    if (e->next_attempt < e->backoff_until) {
        e->next_attempt = e->backoff_until;
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
    e->reread = 0;
}


/*
 * The release record, if we are leading and the record is ours: at most
 * two writes and the GET between them (see on_result).
 */
static unsigned
kle_release_step(kle_election_t *e, int64_t now, int64_t wall_us,
    kle_action_t *act)
{
    if (e->pending == KLE_DO_GET) {
        e->pending = KLE_DO_NOTHING;
        kle_send(e, now, wall_us, KLE_DO_GET, act);
        return 0;
    }

    if (e->state != KLE_STATE_LEADING || !kle_holds(e)
        || e->observed_rv[0] == '\0')
    {
        return kle_set_state(e, KLE_STATE_RELEASED);
    }

    /* client-go's release record: free, expiring in a second */
    memset(&e->pending_record, 0, sizeof(e->pending_record));
    memcpy(e->pending_record.instance, e->cfg.instance,
           sizeof(e->pending_record.instance));
    e->pending_record.lease_duration = 1;
    e->pending_record.acquire_time = wall_us;
    e->pending_record.transitions = e->observed.transitions;
    memcpy(e->pending_rv, e->observed_rv, KLE_RV_MAX);
    e->releasing = 1;

    kle_send(e, now, wall_us, KLE_DO_UPDATE, act);

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
           && now < e->claim_until;
}


int64_t
kle_election_claim_until(const kle_election_t *e)
{
    if (e->state != KLE_STATE_LEADING || e->release_wanted) {
        return 0;
    }

    return e->claim_until;
}


int32_t
kle_election_term(const kle_election_t *e)
{
    if (e->state != KLE_STATE_LEADING || e->release_wanted) {
        return 0;
    }

    return e->term;
}


int64_t
kle_election_lease_until(const kle_election_t *e)
{
    if (!e->have_observed || e->absent || e->observed.holder[0] == '\0') {
        return 0;
    }

    return e->observed_time + (int64_t) e->observed.lease_duration * 1000;
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


/* The leader steps down when its claim ends unrenewed. */
static unsigned
kle_check_deadline(kle_election_t *e, int64_t now)
{
    if (e->state == KLE_STATE_LEADING && now >= e->claim_until) {
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


/* "" (unknown) unless rv is given and fits. */
static void
kle_set_rv(char *dst, const char *rv)
{
    size_t  n;

    n = rv ? strlen(rv) : 0;

    if (n >= KLE_RV_MAX) {
        n = 0;
    }

    memcpy(dst, rv ? rv : "", n);
    dst[n] = '\0';
}


/*
 * client-go's setObservedRecord, plus the OnNewLeader report: rec (NULL:
 * no object) and the version of its object become the observation, seen
 * now.  The two are only ever set together.
 */
static unsigned
kle_set_observed(kle_election_t *e, int64_t now, const kle_record_t *rec,
    const char *rv)
{
    unsigned      ev;
    kle_record_t  none;

    ev = 0;

    if (rec == NULL) {
        memset(&none, 0, sizeof(none));
        rec = &none;
    }

    if (!e->have_observed || e->absent != (rec == &none)
        || !kle_record_equal(&e->observed, rec))
    {
        ev |= KLE_EV_CHANGED;
    }

    ev |= kle_judge(e, rec == &none ? NULL : rec);

    e->observed = *rec;
    e->absent = (rec == &none);
    kle_set_rv(e->observed_rv, rv);
    e->observations++;
    e->have_observed = 1;
    e->stale = 0;
    e->observed_time = now;

    if (strcmp(e->observed.holder, e->reported) != 0) {
        memcpy(e->reported, e->observed.holder, sizeof(e->reported));
        ev |= KLE_EV_NEW_LEADER;
    }

    return ev;
}


/*
 * A read: a record (NULL: the object does not exist) and its version.
 * Only a change restarts the lease clock: remote times are never compared
 * with ours.  The same record under a newer version only moves the
 * version.  A leader steps down on any read that does not name it.
 */
static unsigned
kle_saw(kle_election_t *e, int64_t now, const kle_record_t *rec,
    const char *rv)
{
    unsigned  ev;

    if (e->have_observed && e->absent == (rec == NULL)
        && (rec == NULL || kle_record_equal(&e->observed, rec)))
    {
        if (strcmp(e->observed_rv, rv ? rv : "") != 0) {
            e->observations++;
        }
        kle_set_rv(e->observed_rv, rv);
        e->stale = 0;
        ev = 0;

    } else {
        ev = kle_set_observed(e, now, rec, rv);
    }

    ev |= kle_leave_starting(e);

    if (e->state == KLE_STATE_LEADING
        && (rec == NULL || !kle_election_mine(e, rec)))
    {
        ev |= kle_set_state(e, KLE_STATE_FOLLOWING);
    }

    return ev;
}


/*
 * What a newly observed record (NULL: none) says of another instance in
 * our identity, judged against the observation it replaces; and whether
 * a term is left to take.  A twin's record seen for the first time may
 * be the last one of a process of ours that died (a restart is a new
 * instance): only a change while the record names us proves a live one.
 */
static unsigned
kle_judge(kle_election_t *e, const kle_record_t *rec)
{
    int         exhausted;
    unsigned    ev;
    kle_twin_t  twin;

    ev = 0;
    twin = KLE_TWIN_NONE;

    if (rec != NULL && kle_record_names(rec, e->cfg.identity)
        && !kle_election_mine(e, rec))
    {
        if (e->cfg.predecessor[0] != '\0'
            && strcmp(rec->instance, e->cfg.predecessor) == 0)
        {
            twin = KLE_TWIN_PREDECESSOR;

        } else if (e->twin == KLE_TWIN_CONFLICT
                   || (e->have_observed && !e->absent
                       && kle_record_names(&e->observed, e->cfg.identity)))
        {
            twin = KLE_TWIN_CONFLICT;

        } else {
            twin = KLE_TWIN_WAIT;
        }
    }

    if (twin != e->twin) {
        e->twin = twin;
        ev |= KLE_EV_TWIN;
    }

    exhausted = rec != NULL && rec->transitions == INT32_MAX
                && !kle_election_mine(e, rec);

    if (exhausted && !e->exhausted) {
        ev |= KLE_EV_EXHAUSTED;
    }

    e->exhausted = exhausted;

    return ev;
}


int
kle_election_mine(const kle_election_t *e, const kle_record_t *rec)
{
    return kle_record_names(rec, e->cfg.identity)
           && (rec->instance[0] == '\0' || e->cfg.instance[0] == '\0'
               || strcmp(rec->instance, e->cfg.instance) == 0);
}


kle_twin_t
kle_election_twin(const kle_election_t *e)
{
    return e->twin;
}


int
kle_election_exhausted(const kle_election_t *e)
{
    return e->exhausted;
}


static int
kle_holds(const kle_election_t *e)
{
    return !e->absent && kle_election_mine(e, &e->observed);
}


static int
kle_lease_valid(const kle_election_t *e, int64_t now)
{
    return e->observed_time + (int64_t) e->observed.lease_duration * 1000
           > now;
}


/*
 * When what we observed lets an attempt act: now if it is free, gone, ours,
 * unknown or known to be out of date; else when its lease expires.
 */
static int64_t
kle_due(const kle_election_t *e, int64_t now)
{
    int64_t  t;

    if (!e->have_observed || e->stale || e->absent
        || e->observed_rv[0] == '\0'
        || (e->observed.holder[0] == '\0' && !e->exhausted)
        || kle_holds(e))
    {
        return now;
    }

    /* nothing to take: look again a retry period on, or at a change */
    if (e->exhausted && (e->observed.holder[0] == '\0'
                         || !kle_lease_valid(e, now)))
    {
        return now + e->cfg.retry_period;
    }

    t = e->observed_time + (int64_t) e->observed.lease_duration * 1000;

    return t > now ? t : now;
}


/*
 * client-go's tryAcquireOrRenew, judged on the observation alone: the
 * write it allows now (prepared in pending_record and pending_rv), GET if
 * it must be read first, NOTHING while another holder's lease runs.
 */
static kle_action_kind_t
kle_plan(kle_election_t *e, int64_t now)
{
    if (!e->have_observed || e->stale) {
        return KLE_DO_GET;
    }

    kle_own_record(e, &e->pending_record);
    e->pending_rv[0] = '\0';

    if (e->absent) {
        e->pending_record.acquire_time = KLE_ACQUIRE_NOW;
        return KLE_DO_CREATE;
    }

    if (e->observed_rv[0] == '\0') {
        return KLE_DO_GET;
    }

    if (kle_holds(e)) {
        /* ours, e.g. after a restart: the term goes on */
        e->pending_record.acquire_time = e->observed.acquire_time;
        e->pending_record.transitions = e->observed.transitions;

    } else if (e->exhausted) {
        /* a new term would repeat the holder's fencing token */
        return KLE_DO_NOTHING;

    } else if (e->observed.holder[0] == '\0' || !kle_lease_valid(e, now)) {
        e->pending_record.acquire_time = KLE_ACQUIRE_NOW;
        e->pending_record.transitions = e->observed.transitions + 1;

    } else {
        return KLE_DO_NOTHING;
    }

    memcpy(e->pending_rv, e->observed_rv, KLE_RV_MAX);

    return KLE_DO_UPDATE;
}


static void
kle_own_record(const kle_election_t *e, kle_record_t *rec)
{
    memset(rec, 0, sizeof(*rec));
    memcpy(rec->holder, e->cfg.identity, sizeof(rec->holder));
    memcpy(rec->address, e->cfg.address, sizeof(rec->address));
    memcpy(rec->instance, e->cfg.instance, sizeof(rec->instance));
    rec->lease_duration = (int32_t) (e->cfg.lease_duration / 1000);
}


static void
kle_send(kle_election_t *e, int64_t now, int64_t wall_us,
    kle_action_kind_t kind, kle_action_t *act)
{
    e->in_flight = kind;
    e->request_start = now;
    e->sent_after = e->observations;
    e->superseded = 0;

    act->kind = kind;
    act->timeout = kle_timeout(e);

    if (kind == KLE_DO_GET) {
        return;
    }

    e->pending_record.renew_time = wall_us;
    if (e->pending_record.acquire_time == KLE_ACQUIRE_NOW) {
        e->pending_record.acquire_time = wall_us;
    }

    act->record = e->pending_record;

    if (kind == KLE_DO_UPDATE) {
        memcpy(act->rv, e->pending_rv, KLE_RV_MAX);
    }
}


/* client-go's max(1s, rd / 2); never past rd: it would make no leader */
static int64_t
kle_timeout(const kle_election_t *e)
{
    int64_t  rd;

    rd = e->cfg.renew_deadline;

    if (rd / 2 >= KLE_TIMEOUT_MIN) {
        return rd / 2;
    }

    return rd < KLE_TIMEOUT_MIN ? rd : KLE_TIMEOUT_MIN;
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
