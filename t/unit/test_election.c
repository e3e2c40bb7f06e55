/*
 * kle_election: scripted histories on a fake clock, then two candidates
 * racing on one simulated API server over many random schedules.
 */

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kle_test.h"
#include "kle_election.h"

#define LD  15000
#define RD  10000
#define RP  2000

/* 2026-01-01T00:00:00Z: the wall clock of the scripted histories */
#define WALL0  INT64_C(1767225600000000)

#define EV_UP    KLE_EV_STARTED_LEADING
#define EV_DOWN  KLE_EV_STOPPED_LEADING
#define EV_NL    KLE_EV_NEW_LEADER
#define EV_CH    KLE_EV_CHANGED


static int64_t
wall(int64_t now)
{
    return WALL0 + now * 1000;
}


static void
config(kle_election_config_t *cfg, const char *id)
{
    memset(cfg, 0, sizeof(*cfg));
    snprintf(cfg->identity, sizeof(cfg->identity), "%s", id);
    snprintf(cfg->address, sizeof(cfg->address), "10.0.0.1:8080");
    cfg->lease_duration = LD;
    cfg->renew_deadline = RD;
    cfg->retry_period = RP;
}


static kle_record_t
record(const char *holder, int64_t acquire, int64_t renew,
    int32_t transitions)
{
    kle_record_t  rec;

    memset(&rec, 0, sizeof(rec));
    snprintf(rec.holder, sizeof(rec.holder), "%s", holder);
    rec.lease_duration = LD / 1000;
    rec.acquire_time = acquire;
    rec.renew_time = renew;
    rec.transitions = transitions;

    return rec;
}


/* What "a" writes: its identity, address and lease. */
static kle_record_t
mine(int64_t acquire, int64_t renew, int32_t transitions)
{
    kle_record_t  rec;

    rec = record("a", acquire, renew, transitions);
    snprintf(rec.address, sizeof(rec.address), "10.0.0.1:8080");

    return rec;
}


static void
is_record(const kle_record_t *got, const kle_record_t *want,
    const char *name)
{
    char  n[160];

    snprintf(n, sizeof(n), "%s: holder", name);
    is_str(got->holder, want->holder, n);
    snprintf(n, sizeof(n), "%s: address", name);
    is_str(got->address, want->address, n);
    snprintf(n, sizeof(n), "%s: lease_duration", name);
    is_int(got->lease_duration, want->lease_duration, n);
    snprintf(n, sizeof(n), "%s: acquire_time", name);
    is_int(got->acquire_time, want->acquire_time, n);
    snprintf(n, sizeof(n), "%s: renew_time", name);
    is_int(got->renew_time, want->renew_time, n);
    snprintf(n, sizeof(n), "%s: transitions", name);
    is_int(got->transitions, want->transitions, n);
}


static void
start(kle_election_t *e, const char *id)
{
    kle_election_config_t  cfg;

    config(&cfg, id);
    kle_election_init(e, &cfg, 1);
}


static unsigned
step(kle_election_t *e, int64_t now, kle_action_t *act)
{
    return kle_election_next(e, now, wall(now), act);
}


/*
 * "a" leads: its CREATE goes out at t and succeeds at t + 50; the server
 * echoes the record with version "2".
 */
static void
lead(kle_election_t *e, int64_t t)
{
    kle_action_t  act;

    start(e, "a");
    step(e, t, &act);
    kle_election_on_result(e, t, KLE_API_NOT_FOUND, NULL, NULL, 0);
    step(e, t, &act);
    kle_election_on_result(e, t + 50, KLE_API_OK, &act.record, "2", 0);
}


/* "a" follows: its first GET, at t, shows rec with version rv. */
static void
follow_rv(kle_election_t *e, int64_t t, const kle_record_t *rec,
    const char *rv)
{
    kle_action_t  act;

    start(e, "a");
    step(e, t, &act);
    kle_election_on_result(e, t, KLE_API_OK, rec, rv, 0);
}


static void
follow(kle_election_t *e, int64_t t, const kle_record_t *rec)
{
    follow_rv(e, t, rec, "1");
}


static void
test_validate(void)
{
    kle_election_config_t  cfg;
    char                   err[256];
    int                    i;

    config(&cfg, "a");
    is_int(kle_election_config_validate(&cfg, err, sizeof(err)), 0,
           "15s/10s/2s is valid");

    cfg.identity[0] = '\0';
    is_int(kle_election_config_validate(&cfg, err, sizeof(err)), -1,
           "empty identity refused");
    is_str(err, "identity must not be empty", "empty identity message");

    config(&cfg, "a");
    cfg.retry_period = 0;
    is_int(kle_election_config_validate(&cfg, err, sizeof(err)), -1,
           "retry_period 0 refused");
    is_str(err, "retry_period must be greater than 0", "retry_period 0 msg");

    cfg.retry_period = -5;
    is_int(kle_election_config_validate(&cfg, err, sizeof(err)), -1,
           "negative retry_period refused");
    is_str(err, "retry_period must be greater than 0",
           "negative retry_period msg");

    config(&cfg, "a");
    cfg.lease_duration = 10000;
    is_int(kle_election_config_validate(&cfg, err, sizeof(err)), -1,
           "lease_duration == renew_deadline refused");
    is_str(err, "lease_duration (10s) must be greater than renew_deadline "
           "(10s)", "lease_duration == renew_deadline msg");

    cfg.lease_duration = 9000;
    is_int(kle_election_config_validate(&cfg, err, sizeof(err)), -1,
           "lease_duration < renew_deadline refused");
    is_str(err, "lease_duration (9s) must be greater than renew_deadline "
           "(10s)", "lease_duration < renew_deadline msg");

    config(&cfg, "a");
    cfg.renew_deadline = 2000;
    is_int(kle_election_config_validate(&cfg, err, sizeof(err)), -1,
           "renew_deadline == retry_period refused");
    is_str(err, "renew_deadline (2s) must be greater than 1.2 * "
           "retry_period (2s)", "renew_deadline == retry_period msg");

    cfg.renew_deadline = 2400;
    is_int(kle_election_config_validate(&cfg, err, sizeof(err)), -1,
           "renew_deadline == 1.2 * retry_period refused");
    is_str(err, "renew_deadline (2400ms) must be greater than 1.2 * "
           "retry_period (2s)", "renew_deadline == 1.2 * retry_period msg");

    cfg.renew_deadline = 1500;
    is_int(kle_election_config_validate(&cfg, err, sizeof(err)), -1,
           "renew_deadline < retry_period refused");
    is_str(err, "renew_deadline (1500ms) must be greater than 1.2 * "
           "retry_period (2s)", "renew_deadline < retry_period msg");

    cfg.renew_deadline = 2401;
    is_int(kle_election_config_validate(&cfg, err, sizeof(err)), 0,
           "renew_deadline just above 1.2 * retry_period is valid");

    config(&cfg, "a");
    cfg.lease_duration = 15500;
    is_int(kle_election_config_validate(&cfg, err, sizeof(err)), -1,
           "fractional lease_duration refused");
    is_str(err, "lease_duration (15500ms) must be a whole number of seconds",
           "fractional lease_duration msg");

    config(&cfg, "a");
    cfg.lease_duration = INT64_C(3000000000000);
    is_int(kle_election_config_validate(&cfg, err, sizeof(err)), -1,
           "lease_duration beyond int32 seconds refused");
    is_str(err, "lease_duration (3000000000s) must be at most 2147483647s",
           "lease_duration too large msg");

    /* the shortest lease: 1s must leave renew_deadline 0 */
    config(&cfg, "a");
    cfg.lease_duration = 1000;
    cfg.renew_deadline = 2;
    cfg.retry_period = 1;
    is_int(kle_election_config_validate(&cfg, err, sizeof(err)), -1,
           "1s/2ms/1ms refused");
    cfg.lease_duration = 2000;
    cfg.renew_deadline = 1000;
    is_int(kle_election_config_validate(&cfg, err, sizeof(err)), 0,
           "2s/1s/1ms is valid");

    config(&cfg, "a");
    snprintf(cfg.address, sizeof(cfg.address), "10.0.0.1");
    is_int(kle_election_config_validate(&cfg, err, sizeof(err)), -1,
           "address without a port refused");
    is_str(err, "address \"10.0.0.1\" must be HOST:PORT: an IPv4 address, "
           "a bracketed IPv6 address or a DNS name, and a port from 1 to "
           "65535", "address msg");
    snprintf(cfg.address, sizeof(cfg.address), "[fd00::1]:80");
    is_int(kle_election_config_validate(&cfg, err, sizeof(err)), 0,
           "IPv6 address is valid");
    cfg.address[0] = '\0';
    is_int(kle_election_config_validate(&cfg, err, sizeof(err)), 0,
           "no address is valid");

    /*
     * LD - RD >= 1s for every lock: configmaps store whole seconds, and
     * client-go followers compare a Lease's records at whole seconds too
     */
    for (i = 0; i < 2; i++) {
        config(&cfg, "a");
        cfg.whole_seconds = i;
        is_int(kle_election_config_validate(&cfg, err, sizeof(err)), 0,
               "15s/10s/2s is valid");
        cfg.lease_duration = 4000;
        cfg.renew_deadline = 3500;
        cfg.retry_period = 1000;
        is_int(kle_election_config_validate(&cfg, err, sizeof(err)), -1,
               i ? "configmaps 4s/3500ms refused" : "leases 4s/3500ms refused");
        is_str(err, "lease_duration (4s) - renew_deadline (3500ms) must be "
               "at least 1s: client-go and configmaps locks compare records "
               "at whole seconds, so a follower may take over up to 1s "
               "early", "1s rule msg");
        cfg.renew_deadline = 3001;
        is_int(kle_election_config_validate(&cfg, err, sizeof(err)), -1,
               "4s/3001ms refused");
        cfg.renew_deadline = 3000;
        is_int(kle_election_config_validate(&cfg, err, sizeof(err)), 0,
               "4s/3s is valid");
    }
}


static void
test_fresh_start(void)
{
    kle_election_t  e;
    kle_action_t    act;
    kle_record_t    want;
    unsigned        ev;

    start(&e, "a");
    is_str(kle_state_name(e.state), "starting", "fresh: starting");
    ok(!kle_election_is_leader(&e, 0), "fresh: not leader");
    is_int(kle_election_claim_until(&e), 0, "fresh: no claim");

    ev = step(&e, 100, &act);
    is_int(act.kind, KLE_DO_GET, "fresh: first action is GET, at once");
    is_int(act.timeout, RD / 2, "fresh: request timeout is RD/2");
    is_int(ev, 0, "fresh: no events for sending");

    ev = step(&e, 120, &act);
    is_int(act.kind, KLE_DO_NOTHING, "fresh: nothing while GET in flight");
    is_int(act.until, 0, "fresh: no deadline to wake for");

    ev = kle_election_on_result(&e, 150, KLE_API_NOT_FOUND, NULL, NULL, 0);
    is_int(ev, EV_CH, "fresh: 404 moves to following");
    is_str(kle_state_name(e.state), "following", "fresh: following");

    ev = step(&e, 150, &act);
    is_int(act.kind, KLE_DO_CREATE, "fresh: 404 -> CREATE at once");
    is_int(act.timeout, RD / 2, "fresh: CREATE timeout");
    is_str(act.rv, "", "fresh: a CREATE names no version");
    want = mine(wall(150), wall(150), 0);
    is_record(&act.record, &want, "fresh: CREATE record");
    ok(!kle_election_is_leader(&e, 160), "fresh: not leader before answer");

    ev = kle_election_on_result(&e, 200, KLE_API_OK, &act.record, "2", 0);
    is_int(ev, EV_UP | EV_NL | EV_CH, "fresh: created -> started, new");
    is_str(kle_state_name(e.state), "leading", "fresh: leading");
    is_str(e.reported, "a", "fresh: reported self");
    is_int(e.renew_start, 150, "fresh: renew_start = CREATE's start");
    is_int(kle_election_claim_until(&e), 150 + RD,
           "fresh: the claim ends RD after the CREATE was sent");
    is_int(kle_election_term(&e), 0, "fresh: term 0");
    is_int(e.observed_time, 200, "fresh: observed at the answer");
    is_record(&e.observed, &want, "fresh: observed = written");
    is_str(e.observed_rv, "2", "fresh: with the echo's version");
    is_int(e.next_attempt, 150 + RP, "fresh: renew RP after the write");

    ok(kle_election_is_leader(&e, 200), "fresh: leader");
    ok(kle_election_is_leader(&e, 150 + RD - 1), "fresh: leader to RD-1");
    ok(!kle_election_is_leader(&e, 150 + RD), "fresh: not leader at RD");

    ev = step(&e, 300, &act);
    is_int(act.kind, KLE_DO_WAIT, "fresh: then WAIT");
    is_int(act.until, 150 + RP, "fresh: until the renew");
    is_int(ev, 0, "fresh: no events while waiting");
}


/* client-go's max(1 s, RD / 2), but never past RD. */
static void
test_timeout(void)
{
    kle_election_config_t  cfg;
    kle_election_t         e;
    kle_action_t           act;

    config(&cfg, "a");
    cfg.lease_duration = 3000;
    cfg.renew_deadline = 1500;
    cfg.retry_period = 500;
    kle_election_init(&e, &cfg, 1);
    step(&e, 0, &act);
    is_int(act.timeout, 1000, "timeout: RD 1.5s -> the 1s floor");

    cfg.renew_deadline = 700;
    cfg.retry_period = 100;
    kle_election_init(&e, &cfg, 1);
    step(&e, 0, &act);
    is_int(act.timeout, 700, "timeout: RD 700ms -> RD");
}


static void
test_follow(void)
{
    kle_election_t  e;
    kle_action_t    act;
    kle_record_t    other;
    unsigned        ev;

    other = record("b", wall(-5000), wall(-1000), 4);

    start(&e, "a");
    step(&e, 0, &act);
    ev = kle_election_on_result(&e, 10, KLE_API_OK, &other, "1", 0);
    is_int(ev, EV_NL | EV_CH, "follow: new leader b");
    is_str(e.reported, "b", "follow: reported b");
    is_str(kle_state_name(e.state), "following", "follow: following");
    is_int(e.observed_time, 10, "follow: observed at the answer");
    is_record(&e.observed, &other, "follow: observed");
    is_str(e.observed_rv, "1", "follow: with its version");
    ok(!kle_election_is_leader(&e, 10), "follow: not leader");

    ev = step(&e, 10, &act);
    is_int(act.kind, KLE_DO_WAIT, "follow: no write, WAIT");
    ok(act.until >= 10 + RP && act.until < 10 + RP * 22 / 10,
       "follow: no watch, so a poll in [RP, 2.2 RP)");
    is_int(e.pending, KLE_DO_NOTHING, "follow: nothing pending");
}


/* Held by b and never renewed: taken over exactly a lease after 1000. */
static void
test_takeover(void)
{
    kle_election_t  e;
    kle_action_t    act;
    kle_record_t    other, renewed, want;
    unsigned        ev;

    other = record("b", wall(-9000), wall(-1000), 4);

    follow(&e, 1000, &other);
    step(&e, 14000, &act);
    is_int(act.kind, KLE_DO_GET, "takeover: a poll re-reads");
    ev = kle_election_on_result(&e, 1000 + LD - 1, KLE_API_OK, &other, "1",
                                0);
    is_int(ev, 0, "takeover: same record, no events");
    is_int(e.observed_time, 1000, "takeover: observed_time kept");
    is_int(e.pending, KLE_DO_NOTHING, "takeover: valid to LD-1, no write");
    is_int(e.next_attempt, 1000 + LD, "takeover: next attempt at expiry");

    /* the GET that shows it expired is followed by the UPDATE */
    follow(&e, 1000, &other);
    step(&e, 14000, &act);
    ev = kle_election_on_result(&e, 1000 + LD, KLE_API_OK, &other, "3", 0);
    is_int(ev, 0, "takeover: expired, no events yet");
    is_int(e.pending, KLE_DO_UPDATE, "takeover: UPDATE pending");
    ev = step(&e, 1000 + LD, &act);
    is_int(act.kind, KLE_DO_UPDATE, "takeover: UPDATE at once");
    is_str(act.rv, "3", "takeover: on the version that showed it expired");
    want = mine(wall(1000 + LD), wall(1000 + LD), 5);
    is_record(&act.record, &want, "takeover: record");
    ev = kle_election_on_result(&e, 1000 + LD + 30, KLE_API_OK, &act.record,
                                "4", 0);
    is_int(ev, EV_UP | EV_NL | EV_CH, "takeover: leading");
    is_int(e.renew_start, 1000 + LD, "takeover: renew_start");
    is_int(kle_election_term(&e), 5, "takeover: term 5");

    /* a renewal seen at 10000 restarts the lease clock */
    renewed = record("b", wall(-9000), wall(9000), 4);
    follow(&e, 1000, &other);
    step(&e, 10000, &act);
    ev = kle_election_on_result(&e, 10000, KLE_API_OK, &renewed, "2", 0);
    is_int(ev, EV_CH, "takeover: renewal is a change, same leader");
    is_int(e.observed_time, 10000, "takeover: observed_time moved");
    step(&e, 16000, &act);
    is_int(act.kind, KLE_DO_GET, "takeover: a poll at 16000");
    kle_election_on_result(&e, 16000, KLE_API_OK, &renewed, "2", 0);
    is_int(e.pending, KLE_DO_NOTHING, "takeover: renewed lease still valid");
    is_int(e.observed_time, 10000, "takeover: observed_time still 10000");
    step(&e, 25000 - 1, &act);
    is_int(act.kind, KLE_DO_GET, "takeover: a poll at LD-1");
    kle_election_on_result(&e, 25000 - 1, KLE_API_OK, &renewed, "2", 0);
    is_int(e.pending, KLE_DO_NOTHING, "takeover: valid to LD-1");
    is_int(e.next_attempt, 25000, "takeover: next attempt at the expiry");
    step(&e, 25000, &act);
    is_int(act.kind, KLE_DO_UPDATE,
           "takeover: at the expiry, one UPDATE and no GET");
    is_str(act.rv, "2", "takeover: on the renewal's version");
}


/*
 * The takeover is one request, conditioned on the version of the record
 * whose expiry was judged: no GET first.  A 409 is followed by one GET.
 */
static void
test_takeover_one_request(void)
{
    kle_election_t  e;
    kle_action_t    act;
    kle_record_t    other, newer;
    unsigned        ev;

    other = record("b", wall(0), wall(0), 4);
    newer = record("c", wall(100), wall(16000), 5);

    follow(&e, 1000, &other);
    is_str(e.observed_rv, "1", "one request: observed with its version");
    ev = kle_election_watching(&e, 1000, 1);
    is_int(ev, 0, "one request: watching is no event");
    is_int(e.next_attempt, 1000 + LD, "one request: wakes at the expiry");
    step(&e, 1000 + LD, &act);
    is_int(act.kind, KLE_DO_UPDATE, "one request: UPDATE, no GET");
    is_str(act.rv, "1", "one request: on the observed version");
    is_int(act.record.transitions, 5, "one request: a new term");

    /* someone else was faster: the precondition says 409 */
    ev = kle_election_on_result(&e, 1000 + LD + 5, KLE_API_CONFLICT, NULL,
                                NULL, 0);
    is_int(ev, 0, "one request: 409, no events");
    is_int(e.pending, KLE_DO_GET, "one request: 409 -> one GET");
    step(&e, 1000 + LD + 5, &act);
    is_int(act.kind, KLE_DO_GET, "one request: the GET");
    ev = kle_election_on_result(&e, 1000 + LD + 10, KLE_API_OK, &newer, "9",
                                0);
    is_int(ev, EV_NL | EV_CH, "one request: c seen");
    is_int(e.pending, KLE_DO_NOTHING, "one request: c's lease is valid");
    is_int(e.next_attempt, 1000 + LD + 10 + LD,
           "one request: watching, so at c's expiry");

    /* a second 409 in one attempt is not read again at once */
    follow(&e, 0, &other);
    step(&e, LD, &act);
    kle_election_on_result(&e, LD, KLE_API_CONFLICT, NULL, NULL, 0);
    step(&e, LD, &act);
    kle_election_on_result(&e, LD + 5, KLE_API_OK, &other, "8", 0);
    step(&e, LD + 5, &act);
    is_int(act.kind, KLE_DO_UPDATE, "one request: same record, still due");
    is_str(act.rv, "8", "one request: on the version the GET showed");
    kle_election_on_result(&e, LD + 10, KLE_API_CONFLICT, NULL, NULL, 0);
    is_int(e.pending, KLE_DO_NOTHING, "one request: one GET per attempt");
    ok(e.next_attempt >= LD + 10 + RP, "one request: the attempt failed");
    step(&e, e.next_attempt, &act);
    is_int(act.kind, KLE_DO_GET, "one request: the next attempt reads");

    /* a deleted object is created, without a GET */
    follow(&e, 0, &other);
    ev = kle_election_observe(&e, 300, NULL, "12");
    is_int(ev, EV_NL | EV_CH, "one request: deleted, no holder");
    is_int(e.next_attempt, 300, "one request: at once");
    step(&e, 300, &act);
    is_int(act.kind, KLE_DO_CREATE, "one request: CREATE, no GET");
    ev = kle_election_on_result(&e, 310, KLE_API_ALREADY_EXISTS, NULL, NULL,
                                0);
    is_int(e.pending, KLE_DO_GET, "one request: AlreadyExists -> one GET");
}


/*
 * The version sent is the one of the record judged, even when that
 * record is older than one read before: a watch event that lags a GET
 * replaces both, so the UPDATE can only be a 409, never a win on a view
 * the server has left.
 */
static void
test_stale_observation(void)
{
    kle_election_t  e;
    kle_action_t    act;
    kle_record_t    b1, b2;
    unsigned        ev;

    b1 = record("b", wall(0), wall(0), 4);
    b2 = record("b", wall(0), wall(2000), 4);

    follow_rv(&e, 1000, &b2, "7");
    kle_election_watching(&e, 1000, 1);
    ev = kle_election_observe(&e, 1500, &b1, "5");
    is_int(ev, EV_CH, "stale event: recorded, a change");
    is_str(e.observed_rv, "5", "stale event: its own version with it");
    is_int(e.observed_time, 1500, "stale event: the lease clock restarts");
    is_int(e.next_attempt, 1500 + LD, "stale event: at its expiry");
    step(&e, 1500 + LD, &act);
    is_int(act.kind, KLE_DO_UPDATE, "stale event: taken over");
    is_str(act.rv, "5", "stale event: on the event's version, not 7");

    /* the other way round: a GET after the event, both move together */
    follow(&e, 1000, &b1);
    kle_election_observe(&e, 1500, &b2, "7");
    step(&e, e.next_attempt, &act);
    kle_election_on_result(&e, e.next_attempt, KLE_API_OK, &b1, "5", 0);
    is_str(e.observed_rv, "5", "stale GET: its version with its record");
    is_int(e.observed.renew_time, wall(0), "stale GET: its record");

    /* the same record under a newer version only moves the version */
    follow(&e, 1000, &b1);
    kle_election_watching(&e, 1000, 1);
    kle_election_observe(&e, 4000, &b1, "6");
    is_str(e.observed_rv, "6", "same record: the version moves");
    is_int(e.observed_time, 1000, "same record: the lease clock does not");
    step(&e, 1000 + LD, &act);
    is_str(act.rv, "6", "same record: UPDATE on the newer version");
}


/*
 * Remote times mean nothing here: a record renewed in 2000 or in 2100
 * holds for a full lease from our own first sight of it.
 */
static void
test_clock_skew(void)
{
    static const int64_t  renews[] = {
        INT64_C(946684800000000),      /* 2000-01-01 */
        INT64_C(4102444800000000)      /* 2100-01-01 */
    };

    kle_election_t  e;
    kle_action_t    act;
    kle_record_t    other;
    size_t          i;
    int64_t         t0;

    t0 = 500000;

    for (i = 0; i < sizeof(renews) / sizeof(renews[0]); i++) {
        other = record("b", renews[i], renews[i], 2);

        follow(&e, t0, &other);
        is_int(e.pending, KLE_DO_NOTHING, "skew: held at first sight");
        step(&e, t0 + LD - 1, &act);
        kle_election_on_result(&e, t0 + LD - 1, KLE_API_OK, &other, "1", 0);
        is_int(e.pending, KLE_DO_NOTHING, "skew: still held at LD-1");

        is_int(e.next_attempt, t0 + LD, "skew: next attempt at the expiry");
        step(&e, e.next_attempt, &act);
        is_int(act.kind, KLE_DO_UPDATE, "skew: free after a full lease");
    }
}


static void
test_empty_holder(void)
{
    kle_election_t  e;
    kle_action_t    act;
    kle_record_t    released, want;
    unsigned        ev;

    released = record("", wall(-100), wall(-100), 7);
    released.lease_duration = 1;

    start(&e, "a");
    step(&e, 40, &act);
    ev = kle_election_on_result(&e, 50, KLE_API_OK, &released, "1", 0);
    is_int(ev, EV_CH, "empty: a change, no new leader (none yet)");
    ev = step(&e, 50, &act);
    is_int(act.kind, KLE_DO_UPDATE, "empty: free at once");
    is_str(act.rv, "1", "empty: on the version read");
    want = mine(wall(50), wall(50), 8);
    is_record(&act.record, &want, "empty: record");
    ev = kle_election_on_result(&e, 60, KLE_API_OK, &act.record, "2", 0);
    is_int(ev, EV_UP | EV_NL | EV_CH, "empty: leading");
}


/*
 * The holder's lease as a follower sees it (what $leader_election_route
 * shows an address for): from the last change it saw, for the record's
 * own leaseDurationSeconds; none for a free lock or before any read.
 */
static void
test_lease_until(void)
{
    kle_election_t  e;
    kle_record_t    b, b2, released;

    start(&e, "a");
    is_int(kle_election_lease_until(&e), 0, "lease_until: nothing read");

    b = record("b", wall(0), wall(0), 3);
    b.lease_duration = 7;
    follow(&e, 1000, &b);
    is_int(kle_election_lease_until(&e), 1000 + 7000,
           "lease_until: first sight + the record's lease");

    kle_election_observe(&e, 5000, &b, "2");
    is_int(kle_election_lease_until(&e), 1000 + 7000,
           "lease_until: the same record does not extend it");

    b2 = b;
    b2.renew_time = wall(4000);
    kle_election_observe(&e, 6000, &b2, "3");
    is_int(kle_election_lease_until(&e), 6000 + 7000,
           "lease_until: a renewal seen extends it");

    released = record("", wall(0), wall(0), 3);
    released.lease_duration = 1;
    kle_election_observe(&e, 7000, &released, "4");
    is_int(kle_election_lease_until(&e), 0, "lease_until: released: none");

    kle_election_observe(&e, 8000, &b, "5");
    kle_election_observe(&e, 9000, NULL, "6");
    is_int(kle_election_lease_until(&e), 0, "lease_until: deleted: none");
}


/* Restarted with the record still ours: keep the term. */
static void
test_restart_self(void)
{
    kle_election_t  e;
    kle_action_t    act;
    kle_record_t    old, want;
    unsigned        ev;

    old = mine(wall(-60000), wall(-1000), 3);
    snprintf(old.address, sizeof(old.address), "10.0.0.9:8080");

    start(&e, "a");
    step(&e, 0, &act);
    ev = kle_election_on_result(&e, 5, KLE_API_OK, &old, "1", 0);
    is_int(ev, EV_NL | EV_CH, "restart: self reported as leader");
    is_str(kle_state_name(e.state), "following", "restart: following");
    ok(!kle_election_is_leader(&e, 5), "restart: not leader on a read");

    step(&e, 5, &act);
    is_int(act.kind, KLE_DO_UPDATE, "restart: UPDATE at once");
    want = mine(wall(-60000), wall(5), 3);
    is_record(&act.record, &want, "restart: term kept, address ours");

    ev = kle_election_on_result(&e, 20, KLE_API_OK, &act.record, "2", 0);
    is_int(ev, EV_UP | EV_CH, "restart: leading, holder unchanged");
    is_int(e.renew_start, 5, "restart: renew_start");
    is_int(kle_election_term(&e), 3, "restart: the term goes on");
}


static void
test_fast_path(void)
{
    kle_election_t  e;
    kle_action_t    act;
    kle_record_t    want, echo;
    unsigned        ev;

    lead(&e, 150);
    ev = step(&e, 2200, &act);
    is_int(act.kind, KLE_DO_UPDATE, "fast: renew without GET");
    is_str(act.rv, "2", "fast: on the version our CREATE made");
    is_int(e.fast_path, 1, "fast: fast path flagged");
    want = mine(wall(150), wall(2200), 0);
    is_record(&act.record, &want, "fast: record");

    /* the server's echo (here a ConfigMap: whole seconds) is observed */
    echo = act.record;
    echo.renew_time -= echo.renew_time % 1000000;
    ev = kle_election_on_result(&e, 2250, KLE_API_OK, &echo, "3", 0);
    is_int(ev, EV_CH, "fast: renewed, only a change");
    is_int(e.observed.renew_time, echo.renew_time, "fast: echo observed");
    is_int(e.renew_start, 2200, "fast: renew_start");
    is_int(kle_election_claim_until(&e), 2200 + RD, "fast: claim moved");
    is_int(e.next_attempt, 2200 + RP, "fast: next renew RP after it");
    is_int(e.fast_path, 0, "fast: flag cleared");

    step(&e, 4250, &act);
    is_int(act.kind, KLE_DO_UPDATE, "fast: second renew");
    is_str(act.rv, "3", "fast: on the echo's version");
    want = mine(wall(150), wall(4250), 0);
    is_record(&act.record, &want, "fast: second record");

    /* a write answered without the object: read it before the next */
    kle_election_on_result(&e, 4260, KLE_API_OK, NULL, NULL, 0);
    step(&e, 4260 + RP, &act);
    is_int(act.kind, KLE_DO_GET, "fast: no echo, no version: GET first");
}


static void
test_fast_path_conflict(void)
{
    kle_election_t  e;
    kle_action_t    act;
    kle_record_t    want, created, other;
    unsigned        ev;

    lead(&e, 150);
    created = e.observed;

    step(&e, 2200, &act);
    ev = kle_election_on_result(&e, 2300, KLE_API_CONFLICT, NULL, NULL, 0);
    is_int(ev, 0, "409: no events");
    is_int(e.pending, KLE_DO_GET, "409: GET pending");
    ev = step(&e, 2300, &act);
    is_int(act.kind, KLE_DO_GET, "409: GET in the same attempt");
    ev = kle_election_on_result(&e, 2350, KLE_API_OK, &created, "5", 0);
    is_int(ev, 0, "409: same record read back");
    step(&e, 2350, &act);
    is_int(act.kind, KLE_DO_UPDATE, "409: UPDATE after GET");
    is_str(act.rv, "5", "409: on the version read");
    is_int(e.fast_path, 0, "409: the slow path");
    want = mine(wall(150), wall(2350), 0);
    is_record(&act.record, &want, "409: record keeps the term");
    ev = kle_election_on_result(&e, 2400, KLE_API_OK, &act.record, "6", 0);
    is_int(ev, EV_CH, "409: renewed");
    is_int(e.renew_start, 2350, "409: renew_start = UPDATE's start");

    /* any failure falls back to a GET; here it shows b: step down */
    lead(&e, 150);
    step(&e, 2200, &act);
    kle_election_on_result(&e, 2300, KLE_API_SERVER_ERROR, NULL, NULL, 0);
    step(&e, 2300, &act);
    is_int(act.kind, KLE_DO_GET, "500: GET in the same attempt");
    other = record("b", wall(2000), wall(2000), 1);
    ev = kle_election_on_result(&e, 2350, KLE_API_OK, &other, "7", 0);
    is_int(ev, EV_DOWN | EV_NL | EV_CH, "500: b seen, stepped down at once");
    is_str(kle_state_name(e.state), "following", "500: following");
    ok(!kle_election_is_leader(&e, 2350), "500: no claim left");
    is_int(kle_election_claim_until(&e), 0, "500: claim_until 0");

    /* a 429 on the fast path backs off: no GET, not past the claim */
    lead(&e, 150);
    step(&e, 2200, &act);
    kle_election_on_result(&e, 2300, KLE_API_TOO_MANY_REQUESTS, NULL, NULL,
                           30);
    step(&e, 2300, &act);
    is_int(act.kind, KLE_DO_WAIT, "429 on fast path: no GET");
    is_int(e.next_attempt, 150 + RD - RD / 2,
           "429 on fast path: Retry-After capped in time to renew");
    is_int(act.until, 150 + RD - RD / 2, "429 on fast path: wakes then");
}


/* A leader steps down on any read that does not name it. */
static void
test_step_down(void)
{
    kle_election_t  e;
    kle_action_t    act;
    kle_record_t    other, free_, old;
    unsigned        ev;

    other = record("b", wall(1000), wall(1000), 1);
    free_ = record("", wall(1000), wall(1000), 0);
    free_.lease_duration = 1;
    old = mine(wall(150), wall(150), 0);

    /* a watch event with another holder */
    lead(&e, 150);
    ev = kle_election_observe(&e, 1000, &other, "5");
    is_int(ev, EV_DOWN | EV_NL | EV_CH, "event b: stepped down");
    ok(!kle_election_is_leader(&e, 1000), "event b: not leader");
    is_int(kle_election_claim_until(&e), 0, "event b: no claim");
    is_int(kle_election_term(&e), 0, "event b: no term");
    step(&e, e.next_attempt, &act);
    is_int(act.kind, KLE_DO_GET, "event b: a follower's poll");

    /* a free record: stepped down, and then free to take */
    lead(&e, 150);
    ev = kle_election_observe(&e, 1000, &free_, "5");
    is_int(ev, EV_DOWN | EV_NL | EV_CH, "event free: stepped down");
    is_int(e.next_attempt, 1000, "event free: an attempt at once");
    step(&e, 1000, &act);
    is_int(act.kind, KLE_DO_UPDATE, "event free: taken again");
    is_str(act.rv, "5", "event free: on its version");
    is_int(act.record.transitions, 1, "event free: a new term");

    /* the object deleted */
    lead(&e, 150);
    ev = kle_election_observe(&e, 1000, NULL, "5");
    is_int(ev, EV_DOWN | EV_NL | EV_CH, "event deleted: stepped down");
    step(&e, 1000, &act);
    is_int(act.kind, KLE_DO_CREATE, "event deleted: CREATE");

    /* an event naming us is ignored, whatever it holds */
    lead(&e, 150);
    ev = kle_election_observe(&e, 1000, &old, "1");
    is_int(ev, 0, "event self: ignored");
    is_str(e.observed_rv, "2", "event self: the version stays ours");

    /* the GET after a 409 */
    lead(&e, 150);
    step(&e, 2200, &act);
    kle_election_on_result(&e, 2250, KLE_API_CONFLICT, NULL, NULL, 0);
    step(&e, 2250, &act);
    ev = kle_election_on_result(&e, 2300, KLE_API_OK, &other, "5", 0);
    is_int(ev, EV_DOWN | EV_NL | EV_CH, "409 then GET b: stepped down");

    /* a GET that finds nothing */
    lead(&e, 150);
    step(&e, 2200, &act);
    kle_election_on_result(&e, 2250, KLE_API_SERVER_ERROR, NULL, NULL, 0);
    step(&e, 2250, &act);
    ev = kle_election_on_result(&e, 2300, KLE_API_NOT_FOUND, NULL, NULL, 0);
    is_int(ev, EV_DOWN | EV_NL | EV_CH, "GET 404: stepped down");
    step(&e, 2300, &act);
    is_int(act.kind, KLE_DO_CREATE, "GET 404: CREATE in the same attempt");

    /* a write whose echo names another holder is no claim */
    start(&e, "a");
    step(&e, 0, &act);
    kle_election_on_result(&e, 0, KLE_API_NOT_FOUND, NULL, NULL, 0);
    step(&e, 0, &act);
    ev = kle_election_on_result(&e, 50, KLE_API_OK, &other, "3", 0);
    is_int(ev & EV_UP, 0, "echo b: not leading");
    is_str(e.observed.holder, "b", "echo b: b observed");
    ok(!kle_election_is_leader(&e, 60), "echo b: no claim");
    lead(&e, 150);
    step(&e, 2200, &act);
    ev = kle_election_on_result(&e, 2250, KLE_API_OK, &other, "3", 0);
    is_int(ev & EV_DOWN, EV_DOWN, "echo b: a leader steps down");

    /* a renewal answered 404: gone, so created again */
    lead(&e, 150);
    step(&e, 2200, &act);
    ev = kle_election_on_result(&e, 2250, KLE_API_NOT_FOUND, NULL, NULL, 0);
    is_int(ev, EV_DOWN | EV_NL | EV_CH, "UPDATE 404: stepped down");
    step(&e, 2250, &act);
    is_int(act.kind, KLE_DO_CREATE, "UPDATE 404: CREATE");

    /* a free record read with a request in flight */
    lead(&e, 150);
    step(&e, 2200, &act);
    ev = kle_election_observe(&e, 2210, &other, "5");
    is_int(ev, EV_DOWN | EV_NL | EV_CH, "in flight: stepped down at once");
    ev = kle_election_on_result(&e, 2250, KLE_API_CONFLICT, NULL, NULL, 0);
    is_int(ev, 0, "in flight: the renewal lost");
    is_int(e.pending, KLE_DO_NOTHING,
           "in flight: no GET, the event is newer than the write");

    /* the same 409 with no read since the write: one GET */
    lead(&e, 150);
    step(&e, 2200, &act);
    kle_election_observe(&e, 2210, &old, "3");
    kle_election_on_result(&e, 2250, KLE_API_CONFLICT, NULL, NULL, 0);
    is_int(e.pending, KLE_DO_GET,
           "in flight: an ignored event is no read, so GET");
}


/* The claim's end is fixed when it is made. */
static void
test_claim(void)
{
    kle_election_t  e;
    kle_action_t    act;

    lead(&e, 150);
    is_int(kle_election_claim_until(&e), 150 + RD, "claim: CREATE + RD");

    /* a later configuration does not reinterpret it */
    e.cfg.renew_deadline = 3 * RD;
    ok(!kle_election_is_leader(&e, 150 + RD), "claim: fixed at RD");
    is_int(kle_election_claim_until(&e), 150 + RD, "claim: unchanged");
    e.cfg.renew_deadline = RD;

    /* a renewal sent at 2200 and answered at 2900 moves it to 2200 + RD */
    step(&e, 2200, &act);
    kle_election_on_result(&e, 2900, KLE_API_OK, &act.record, "3", 0);
    is_int(kle_election_claim_until(&e), 2200 + RD, "claim: renewal's start");

    /* a failed renewal does not */
    step(&e, 4900, &act);
    kle_election_on_result(&e, 4950, KLE_API_SERVER_ERROR, NULL, NULL, 0);
    is_int(kle_election_claim_until(&e), 2200 + RD, "claim: kept on 500");

    /* release: no claim from the request on */
    kle_election_release(&e);
    is_int(kle_election_claim_until(&e), 0, "claim: none once releasing");
    is_int(kle_election_term(&e), 0, "claim: no term once releasing");
}


static void
test_renew_deadline(void)
{
    kle_election_t  e;
    kle_action_t    act;
    kle_record_t    b;
    unsigned        ev;
    int64_t         t;
    int             fails;

    lead(&e, 150);                        /* renew_start 150 */

    fails = 0;
    for (t = e.next_attempt; t < 8000; t = e.next_attempt) {
        step(&e, t, &act);
        fails += act.kind == KLE_DO_UPDATE;
        kle_election_on_result(&e, t + 10, KLE_API_SERVER_ERROR, NULL, NULL,
                               0);
        step(&e, t + 10, &act);
        fails += act.kind == KLE_DO_GET;
        kle_election_on_result(&e, t + 20, KLE_API_TRANSPORT, NULL, NULL, 0);
        if (e.next_attempt != t + 20 + RP) {
            break;
        }
    }
    is_int(fails, 6, "deadline: 3 failed renewals, fast path then GET");
    is_int(t, 8210, "deadline: renewals every RP after each failure");

    step(&e, 8210, &act);
    is_int(act.kind, KLE_DO_UPDATE, "deadline: renewal in flight");
    ev = step(&e, 150 + RD - 1, &act);
    is_int(ev, 0, "deadline: no event at RD-1");
    is_int(act.kind, KLE_DO_NOTHING, "deadline: nothing, in flight");
    is_int(act.until, 150 + RD, "deadline: the lapse to wake for");
    ok(kle_election_is_leader(&e, 150 + RD - 1), "deadline: leader at RD-1");

    ev = step(&e, 150 + RD, &act);
    is_int(ev, EV_DOWN | EV_CH, "deadline: stopped exactly at RD");
    is_int(act.kind, KLE_DO_NOTHING, "deadline: still in flight");
    is_int(act.until, 0, "deadline: no lapse to wake for now");
    is_str(kle_state_name(e.state), "following", "deadline: following");
    ok(!kle_election_is_leader(&e, 150 + RD), "deadline: not leader");

    ev = step(&e, 150 + RD + 5, &act);
    is_int(ev, 0, "deadline: stopped once");

    /* the late answer started at 8210, after our last renewal */
    ev = kle_election_on_result(&e, 10200, KLE_API_OK, NULL, NULL, 0);
    is_int(ev, EV_UP | EV_CH, "deadline: late success leads again");
    is_int(e.renew_start, 8210, "deadline: renew_start = its start");
    ok(kle_election_is_leader(&e, 8210 + RD - 1), "deadline: to its RD-1");
    ok(!kle_election_is_leader(&e, 8210 + RD), "deadline: not past it");

    /* stepping down inside on_result: a failed attempt now jitters */
    lead(&e, 150);
    step(&e, 9000, &act);
    is_int(act.kind, KLE_DO_UPDATE, "deadline: renewal at 9000");
    kle_election_on_result(&e, 9100, KLE_API_CONFLICT, NULL, NULL, 0);
    step(&e, 9100, &act);
    ev = kle_election_on_result(&e, 150 + RD, KLE_API_SERVER_ERROR, NULL,
                                NULL, 0);
    is_int(ev, EV_DOWN | EV_CH, "deadline: stopped in on_result");
    ok(e.next_attempt >= 150 + RD + RP
       && e.next_attempt < 150 + RD + RP * 22 / 10,
       "deadline: a follower's jittered retry");

    /* and inside observe() */
    lead(&e, 150);
    b = record("b", wall(0), wall(0), 1);
    ev = kle_election_observe(&e, 150 + RD, &b, "1");
    is_int(ev, EV_DOWN | EV_NL | EV_CH, "deadline: stopped in observe");

    /* WAIT ends at the lapse when the next attempt is later */
    lead(&e, 150);
    step(&e, 2200, &act);
    kle_election_on_result(&e, 2210, KLE_API_SERVER_ERROR, NULL, NULL, 0);
    step(&e, 2210, &act);
    kle_election_on_result(&e, 2220, KLE_API_TOO_MANY_REQUESTS, NULL, NULL,
                           60);
    is_int(e.next_attempt, 150 + RD - RD / 2,
           "deadline: Retry-After 60s capped in time to renew");
    step(&e, 3000, &act);
    is_int(act.kind, KLE_DO_WAIT, "deadline: WAIT");
    is_int(act.until, 150 + RD - RD / 2, "deadline: until then");
    ev = step(&e, 150 + RD - RD / 2, &act);
    is_int(act.kind, KLE_DO_UPDATE, "deadline: a renewal then");
    kle_election_on_result(&e, 150 + RD - 1, KLE_API_TRANSPORT, NULL, NULL,
                           0);
    step(&e, 150 + RD - 1, &act);
    is_int(act.kind, KLE_DO_GET, "deadline: read after it failed");
    ev = step(&e, 150 + RD, &act);
    is_int(ev, EV_DOWN | EV_CH, "deadline: stopped at the lapse");

    /* a claim about to end: the cap is never before one retry period */
    lead(&e, 150);
    step(&e, 9000, &act);
    kle_election_on_result(&e, 9100, KLE_API_TOO_MANY_REQUESTS, NULL, NULL,
                           60);
    is_int(e.next_attempt, 9100 + RP, "deadline: late 429, one RP");
}


/* A write answered a whole RD after it started does not make a leader. */
static void
test_stale_write(void)
{
    kle_election_t  e;
    kle_action_t    act;
    unsigned        ev;

    start(&e, "a");
    step(&e, 0, &act);
    kle_election_on_result(&e, 0, KLE_API_NOT_FOUND, NULL, NULL, 0);
    step(&e, 0, &act);
    ev = kle_election_on_result(&e, RD, KLE_API_OK, NULL, NULL, 0);
    is_int(ev, EV_NL | EV_CH, "stale: ours, but not leading");
    is_str(kle_state_name(e.state), "following", "stale: following");
    is_int(e.next_attempt, RD, "stale: renew at once");

    step(&e, RD, &act);
    is_int(act.kind, KLE_DO_GET, "stale: no version known, so GET first");
    kle_election_on_result(&e, RD, KLE_API_OK, &e.observed, "1", 0);
    step(&e, RD, &act);
    is_int(act.kind, KLE_DO_UPDATE, "stale: then UPDATE");
    ev = kle_election_on_result(&e, RD + 10, KLE_API_OK, NULL, NULL, 0);
    is_int(ev, EV_UP | EV_CH, "stale: then leading");

    /* with the server's echo, the version is known: UPDATE at once */
    start(&e, "a");
    step(&e, 0, &act);
    kle_election_on_result(&e, 0, KLE_API_NOT_FOUND, NULL, NULL, 0);
    step(&e, 0, &act);
    kle_election_on_result(&e, RD, KLE_API_OK, &act.record, "2", 0);
    step(&e, RD + RP, &act);
    is_int(act.kind, KLE_DO_UPDATE, "stale echo: UPDATE, no GET");
    is_str(act.rv, "2", "stale echo: on the echo's version");
}


static void
test_too_many_requests(void)
{
    kle_election_config_t  cfg;
    kle_election_t         e;
    kle_action_t           act;

    start(&e, "a");
    step(&e, 100, &act);
    kle_election_on_result(&e, 100, KLE_API_TOO_MANY_REQUESTS, NULL, NULL,
                           10);
    is_int(e.next_attempt, 10100, "429: waits Retry-After");
    is_str(kle_state_name(e.state), "starting", "429: still starting");
    step(&e, 10099, &act);
    is_int(act.kind, KLE_DO_WAIT, "429: WAIT");
    is_int(act.until, 10100, "429: until Retry-After");

    /* a follower waits one lease at most */
    start(&e, "a");
    step(&e, 100, &act);
    kle_election_on_result(&e, 100, KLE_API_TOO_MANY_REQUESTS, NULL, NULL,
                           2147483647);
    is_int(e.next_attempt, 100 + LD, "429: Retry-After capped at a lease");

    /* nor does a watch event bring it forward */
    start(&e, "a");
    step(&e, 100, &act);
    kle_election_on_result(&e, 100, KLE_API_TOO_MANY_REQUESTS, NULL, NULL,
                           10);
    kle_election_observe(&e, 200, NULL, "3");
    is_int(e.next_attempt, 10100, "429: a deleted object waits too");

    /* a leader never waits past its claim */
    lead(&e, 150);
    step(&e, 2200, &act);
    kle_election_on_result(&e, 2210, KLE_API_TOO_MANY_REQUESTS, NULL, NULL,
                           2147483647);
    is_int(e.next_attempt, 150 + RD - RD / 2,
           "429: leader capped to renew before claim_until");

    start(&e, "a");
    step(&e, 100, &act);
    kle_election_on_result(&e, 100, KLE_API_TOO_MANY_REQUESTS, NULL, NULL,
                           1);
    ok(e.next_attempt >= 100 + RP && e.next_attempt < 100 + RP * 22 / 10,
       "429: a short Retry-After leaves the jitter");

    start(&e, "a");
    step(&e, 100, &act);
    kle_election_on_result(&e, 100, KLE_API_SERVER_ERROR, NULL, NULL,
                           30);
    ok(e.next_attempt < 100 + RP * 22 / 10, "429: only 429 defers");

    /* a leader renewing every 500 ms: 3 s fit before its claim ends */
    config(&cfg, "a");
    cfg.retry_period = 500;
    kle_election_init(&e, &cfg, 1);
    step(&e, 0, &act);
    kle_election_on_result(&e, 0, KLE_API_NOT_FOUND, NULL, NULL, 0);
    step(&e, 0, &act);
    kle_election_on_result(&e, 50, KLE_API_OK, &act.record, "2", 0);
    step(&e, 550, &act);
    kle_election_on_result(&e, 600, KLE_API_TOO_MANY_REQUESTS, NULL, NULL,
                           3);
    is_int(e.next_attempt, 3600, "429: leader waits Retry-After over RP");
}


static void
test_jitter(void)
{
    kle_election_t         e, f;
    kle_election_config_t  cfg;
    kle_action_t           act;
    int64_t                d, lo, hi, t;
    uint64_t               seed;
    int                    bad, i, same;

    config(&cfg, "a");
    lo = INT64_MAX;
    hi = 0;
    bad = 0;

    for (seed = 0; seed < 2000; seed++) {
        kle_election_init(&e, &cfg, seed);
        t = 0;
        for (i = 0; i < 5; i++) {
            kle_election_next(&e, t, wall(t), &act);
            kle_election_on_result(&e, t, KLE_API_TRANSPORT, NULL, NULL, 0);
            d = e.next_attempt - t;
            bad += d < RP || d * 10 >= RP * 22;
            lo = d < lo ? d : lo;
            hi = d > hi ? d : hi;
            t = e.next_attempt;
        }
    }
    is_int(bad, 0, "jitter: 10000 delays all in [RP, 2.2 RP)");
    ok(lo < RP + RP / 100, "jitter: reaches down to RP");
    ok(hi >= RP * 22 / 10 - RP / 100, "jitter: reaches up to 2.2 RP");

    kle_election_init(&e, &cfg, 42);
    kle_election_init(&f, &cfg, 42);
    same = 1;
    t = 0;
    for (i = 0; i < 20; i++) {
        kle_election_next(&e, t, wall(t), &act);
        kle_election_on_result(&e, t, KLE_API_TRANSPORT, NULL, NULL, 0);
        kle_election_next(&f, t, wall(t), &act);
        kle_election_on_result(&f, t, KLE_API_TRANSPORT, NULL, NULL, 0);
        same &= e.next_attempt == f.next_attempt;
        t = e.next_attempt;
    }
    ok(same, "jitter: a seed gives the same delays");

    /* the smallest periods stay inside the bounds too */
    cfg.lease_duration = 1000;
    cfg.renew_deadline = 20;
    cfg.retry_period = 5;
    kle_election_init(&e, &cfg, 7);
    bad = 0;
    for (t = 0; t < 10000; t = e.next_attempt) {
        kle_election_next(&e, t, wall(t), &act);
        kle_election_on_result(&e, t, KLE_API_TRANSPORT, NULL, NULL, 0);
        d = e.next_attempt - t;
        bad += d < 5 || d * 10 >= 5 * 22;
    }
    is_int(bad, 0, "jitter: 5ms period in [5, 11)");
}


/* b's record taken over, so the term is 5: the release keeps it. */
static void
take_over(kle_election_t *e)
{
    kle_action_t  act;
    kle_record_t  released;

    released = record("", wall(-100), wall(-100), 4);
    released.lease_duration = 1;

    start(e, "a");
    step(e, 0, &act);
    kle_election_on_result(e, 0, KLE_API_OK, &released, "1", 0);
    step(e, 0, &act);
    kle_election_on_result(e, 10, KLE_API_OK, &act.record, "2", 0);
}


static void
test_release(void)
{
    kle_election_t  e;
    kle_action_t    act;
    kle_record_t    want, other;
    unsigned        ev;
    int             i, quiet;

    take_over(&e);
    is_str(kle_state_name(e.state), "leading", "release: leading first");

    kle_election_release(&e);
    ok(!kle_election_is_leader(&e, 500), "release: no longer claims");
    ev = step(&e, 500, &act);
    is_int(ev, 0, "release: no events for sending");
    is_int(act.kind, KLE_DO_UPDATE, "release: UPDATE");
    is_int(act.timeout, RD / 2, "release: timeout");
    is_str(act.rv, "2", "release: on our last write's version");
    want = record("", wall(500), wall(500), 5);
    want.lease_duration = 1;
    is_record(&act.record, &want, "release: client-go's release record");
    is_int(e.releasing, 1, "release: flagged");

    ev = kle_election_on_result(&e, 520, KLE_API_OK, NULL, NULL, 0);
    is_int(ev, EV_DOWN | EV_NL | EV_CH, "release: stopped, holder gone");
    is_str(kle_state_name(e.state), "released", "release: released");
    is_record(&e.observed, &want, "release: observed the release");
    ok(!kle_election_is_leader(&e, 520), "release: not leader");

    quiet = 1;
    for (i = 0; i < 10; i++) {
        ev = step(&e, 520 + i * 100000, &act);
        quiet &= ev == 0 && act.kind == KLE_DO_NOTHING;
    }
    ok(quiet, "release: NOTHING forever");
    other = record("b", wall(0), wall(0), 6);
    is_int(kle_election_observe(&e, 600, &other, "1"), 0,
           "release: observations ignored");
    is_int(kle_election_on_result(&e, 600, KLE_API_OK, &other, "1", 0), 0,
           "release: results ignored");

    /* a failed release is not retried */
    take_over(&e);
    kle_election_release(&e);
    step(&e, 500, &act);
    ev = kle_election_on_result(&e, 520, KLE_API_SERVER_ERROR, NULL, NULL,
                                0);
    is_int(ev, EV_DOWN | EV_CH, "release failed: stopped anyway");
    is_str(kle_state_name(e.state), "released", "release failed: released");
    step(&e, 600, &act);
    is_int(act.kind, KLE_DO_NOTHING, "release failed: no retry");

    /*
     * A renewal cancelled for the release landed after all: the release
     * gets a 409, reads once, and releases the record on its version.
     */
    take_over(&e);
    step(&e, 10 + RP, &act);
    kle_election_release(&e);
    step(&e, 10 + RP + 1, &act);
    is_str(act.rv, "2", "release 409: on the version we knew");
    ev = kle_election_on_result(&e, 10 + RP + 5, KLE_API_CONFLICT, NULL,
                                NULL, 0);
    is_int(ev, 0, "release 409: not released yet");
    step(&e, 10 + RP + 5, &act);
    is_int(act.kind, KLE_DO_GET, "release 409: one GET");
    want = mine(wall(0), wall(10 + RP), 5);
    kle_election_on_result(&e, 10 + RP + 9, KLE_API_OK, &want, "3", 0);
    step(&e, 10 + RP + 9, &act);
    is_int(act.kind, KLE_DO_UPDATE, "release 409: the record is ours");
    is_str(act.rv, "3", "release 409: released on the version read");
    is_str(act.record.holder, "", "release 409: the release record");
    ev = kle_election_on_result(&e, 10 + RP + 12, KLE_API_CONFLICT, NULL,
                                NULL, 0);
    is_str(kle_state_name(e.state), "released", "release 409: once only");

    /* the GET shows another holder: nothing to release */
    take_over(&e);
    kle_election_release(&e);
    step(&e, 500, &act);
    kle_election_on_result(&e, 505, KLE_API_CONFLICT, NULL, NULL, 0);
    step(&e, 505, &act);
    kle_election_on_result(&e, 509, KLE_API_OK, &other, "4", 0);
    ev = step(&e, 509, &act);
    is_int(act.kind, KLE_DO_NOTHING, "release 409, b holds: no write");
    is_str(kle_state_name(e.state), "released", "release 409, b: released");

    /* a renewal in flight is cancelled by the host */
    take_over(&e);
    step(&e, 10 + RP, &act);
    is_int(act.kind, KLE_DO_UPDATE, "release in flight: renewal out");
    kle_election_release(&e);
    is_int(e.in_flight, KLE_DO_NOTHING, "release in flight: cancelled");
    step(&e, 10 + RP + 5, &act);
    is_int(act.kind, KLE_DO_UPDATE, "release in flight: release out");
    is_str(act.record.holder, "", "release in flight: release record");
    kle_election_release(&e);
    is_int(e.in_flight, KLE_DO_UPDATE, "release twice: release kept");

    /* a leader past its deadline has nothing left to release */
    take_over(&e);
    kle_election_release(&e);
    ev = step(&e, RD, &act);
    is_int(ev, EV_DOWN | EV_CH, "release late: stopped");
    is_int(act.kind, KLE_DO_NOTHING, "release late: no write");
    is_str(kle_state_name(e.state), "released", "release late: released");
}


static void
test_release_following(void)
{
    kle_election_t  e;
    kle_action_t    act;
    kle_record_t    other;
    unsigned        ev;

    other = record("b", wall(0), wall(0), 1);
    follow(&e, 0, &other);
    kle_election_release(&e);
    ev = step(&e, 100, &act);
    is_int(ev, EV_CH, "release following: changed, no stop");
    is_int(act.kind, KLE_DO_NOTHING, "release following: no request");
    is_str(kle_state_name(e.state), "released", "release following: done");

    /* while starting, with the first GET in flight */
    start(&e, "a");
    step(&e, 0, &act);
    kle_election_release(&e);
    ev = step(&e, 5, &act);
    is_int(ev, EV_CH, "release starting: changed");
    is_int(act.kind, KLE_DO_NOTHING, "release starting: no request");
    is_int(kle_election_on_result(&e, 10, KLE_API_OK, &other, "1", 0), 0,
           "release starting: the cancelled GET is ignored");
    is_str(kle_state_name(e.state), "released", "release starting: done");
}


static void
test_new_leader(void)
{
    kle_election_t  e;
    kle_action_t    act;
    kle_record_t    b1, b2, c, free_;
    unsigned        ev;

    b1 = record("b", wall(0), wall(0), 1);
    b2 = record("b", wall(0), wall(2000), 1);
    c = record("c", wall(3000), wall(3000), 2);
    free_ = record("", wall(4000), wall(4000), 2);
    free_.lease_duration = 1;

    start(&e, "a");
    step(&e, 0, &act);
    ev = kle_election_on_result(&e, 0, KLE_API_OK, &b1, "1", 0);
    is_int(ev & EV_NL, EV_NL, "new leader: b at first sight");
    step(&e, e.next_attempt, &act);
    ev = kle_election_on_result(&e, e.next_attempt, KLE_API_OK, &b1, "1", 0);
    is_int(ev, 0, "new leader: b again, nothing");
    step(&e, e.next_attempt, &act);
    ev = kle_election_on_result(&e, e.next_attempt, KLE_API_OK, &b2, "2",
                                0);
    is_int(ev, EV_CH, "new leader: b renewed, a change only");
    ev = kle_election_observe(&e, 7000, &c, "3");
    is_int(ev, EV_NL | EV_CH, "new leader: c, by watch");
    is_str(e.reported, "c", "new leader: reported c");
    ev = kle_election_observe(&e, 8000, &free_, "4");
    is_int(ev, EV_NL | EV_CH, "new leader: none");
    is_str(e.reported, "", "new leader: reported none");
    is_int(e.next_attempt, 8000, "new leader: a free record brings the "
           "attempt forward");

    step(&e, 8000, &act);
    is_int(act.kind, KLE_DO_UPDATE, "new leader: taken at once, no GET");
    is_str(act.rv, "4", "new leader: on the free record's version");
    ev = kle_election_on_result(&e, 8020, KLE_API_OK, &act.record, "5", 0);
    is_int(ev, EV_UP | EV_NL | EV_CH, "new leader: self");
    is_str(e.reported, "a", "new leader: reported self");
}


static void
test_observe(void)
{
    kle_election_t  e;
    kle_action_t    act;
    kle_record_t    b, free_, old;
    unsigned        ev;
    int64_t         next;

    b = record("b", wall(0), wall(0), 1);
    free_ = record("", wall(10), wall(10), 1);
    old = mine(wall(-9000), wall(-9000), 2);

    /* before anything was read */
    start(&e, "a");
    ev = kle_election_observe(&e, 0, &b, "1");
    is_int(ev, EV_NL | EV_CH, "observe: first sight");
    is_str(kle_state_name(e.state), "following", "observe: following");
    is_int(e.observed_time, 0, "observe: observed_time");
    step(&e, 50, &act);
    ev = kle_election_on_result(&e, 60, KLE_API_OK, &b, "1", 0);
    is_int(ev, 0, "observe: the GET reads the same");
    is_int(e.observed_time, 0, "observe: observed_time kept");

    /* with a request in flight: recorded only */
    follow(&e, 0, &b);
    next = e.next_attempt;
    step(&e, next, &act);
    is_int(act.kind, KLE_DO_GET, "observe: GET in flight");
    ev = kle_election_observe(&e, next + 5, &free_, "1");
    is_int(ev, EV_NL | EV_CH, "observe in flight: recorded");
    is_int(e.next_attempt, next, "observe in flight: no reschedule");
    is_int(e.in_flight, KLE_DO_GET, "observe in flight: GET still out");

    /* while leading, an event naming us is stale or an echo: ignored */
    take_over(&e);
    ev = kle_election_observe(&e, 100, &old, "1");
    is_int(ev, 0, "observe own while leading: ignored");
    step(&e, 10 + RP, &act);
    is_int(act.kind, KLE_DO_UPDATE, "observe own while leading: renew");
    is_str(act.rv, "2", "observe own while leading: our version");
    is_int(act.record.transitions, 5, "observe own while leading: term");
    is_int(act.record.acquire_time, wall(0),
           "observe own while leading: acquire_time");

    /*
     * A stale event showing us to a follower allows no blind write: the
     * UPDATE names the event's version, which the server has left.
     */
    follow(&e, 0, &b);
    ev = kle_election_observe(&e, 100, &old, "0");
    is_int(ev, EV_NL | EV_CH, "observe stale self: recorded");
    step(&e, e.next_attempt, &act);
    is_int(act.kind, KLE_DO_UPDATE, "observe stale self: UPDATE");
    is_str(act.rv, "0", "observe stale self: on the event's version");
    kle_election_on_result(&e, 150, KLE_API_CONFLICT, NULL, NULL, 0);
    step(&e, 150, &act);
    is_int(act.kind, KLE_DO_GET, "observe stale self: 409, then GET");
    kle_election_on_result(&e, 160, KLE_API_OK, &b, "1", 0);
    is_int(e.pending, KLE_DO_NOTHING, "observe stale self: b holds it");
}


#define NA  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"   /* "a"'s nonce */
#define NB  "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"   /* a twin's */
#define NP  "cccccccccccccccccccccccccccccccc"   /* the old master's */


/* "a" with nonce NA (and a predecessor, if any); a first GET shows rec. */
static void
twin_follow(kle_election_t *e, const kle_record_t *rec,
    const char *predecessor, unsigned *ev)
{
    kle_action_t           act;
    kle_election_config_t  cfg;

    config(&cfg, "a");
    snprintf(cfg.instance, sizeof(cfg.instance), "%s", NA);
    snprintf(cfg.predecessor, sizeof(cfg.predecessor), "%s", predecessor);
    kle_election_init(e, &cfg, 1);
    step(e, 0, &act);
    *ev = kle_election_on_result(e, 5, KLE_API_OK, rec, "1", 0);
}


static kle_record_t
twin_record(const char *nonce, int64_t renew, int32_t transitions)
{
    kle_record_t  rec;

    rec = mine(wall(-60000), wall(renew), transitions);
    snprintf(rec.instance, sizeof(rec.instance), "%s", nonce);

    return rec;
}


static void
test_twin(void)
{
    kle_election_t  e;
    kle_action_t    act;
    kle_record_t    rec;
    unsigned        ev;
    int64_t         t;

    /* our identity, another nonce: a foreign holder, not renewed */
    rec = twin_record(NB, -1000, 3);
    twin_follow(&e, &rec, "", &ev);
    ok(ev & KLE_EV_TWIN, "twin: reported");
    is_int(kle_election_twin(&e), KLE_TWIN_WAIT, "twin: first sight waits");
    ok(!kle_election_mine(&e, &rec), "twin: not ours");
    step(&e, 5, &act);
    ok(act.kind != KLE_DO_UPDATE && act.kind != KLE_DO_CREATE,
       "twin: no write while its lease runs");

    /* it renews: a live twin, reported once */
    rec = twin_record(NB, 2000, 3);
    ev = kle_election_observe(&e, 2000, &rec, "2");
    ok(ev & KLE_EV_TWIN, "twin renews: reported");
    is_int(kle_election_twin(&e), KLE_TWIN_CONFLICT, "twin renews: a clash");
    rec = twin_record(NB, 4000, 3);
    ev = kle_election_observe(&e, 4000, &rec, "3");
    ok(!(ev & KLE_EV_TWIN), "renews again: not reported again");
    is_int(kle_election_twin(&e), KLE_TWIN_CONFLICT, "still a clash");

    /* never written while valid; taken in a new term once it expires */
    for (t = 4000; t < 4000 + LD; t += 500) {
        step(&e, t, &act);
        if (act.kind == KLE_DO_GET) {
            kle_election_on_result(&e, t, KLE_API_OK, &rec, "3", 0);
            continue;
        }
        if (act.kind == KLE_DO_UPDATE || act.kind == KLE_DO_CREATE) {
            break;
        }
    }
    ok(t >= 4000 + LD, "twin: nothing written before its lease expires");
    step(&e, 4000 + LD, &act);
    is_int(act.kind, KLE_DO_UPDATE, "expired: taken");
    is_int(act.record.transitions, 4, "expired: a new term");
    is_str(act.record.instance, NA, "expired: our nonce");
    is_int(act.record.acquire_time, wall(4000 + LD), "expired: acquired now");
    ev = kle_election_on_result(&e, 4000 + LD + 10, KLE_API_OK, &act.record,
                                "4", 0);
    ok(ev & EV_UP, "expired: leading");
    ok(ev & KLE_EV_TWIN, "our record: the episode ends");
    is_int(kle_election_twin(&e), KLE_TWIN_NONE, "our record: no clash");
    is_int(kle_election_term(&e), 4, "the term of our own claim");

    /* a twin writes over our record: step down at once, a clash */
    t = 4000 + LD + 100;
    rec = twin_record(NB, t, 5);
    ev = kle_election_observe(&e, t, &rec, "5");
    ok(ev & EV_DOWN, "written over: stepped down at once");
    ok(!kle_election_is_leader(&e, t), "written over: not leader");
    is_int(kle_election_twin(&e), KLE_TWIN_CONFLICT,
           "written over by a twin: a clash at once");

    /* a record in our name without a nonce (client-go): ours, as before */
    rec = twin_record("", -1000, 3);
    twin_follow(&e, &rec, "", &ev);
    ok(!(ev & KLE_EV_TWIN), "no nonce: no twin");
    step(&e, 5, &act);
    is_int(act.kind, KLE_DO_UPDATE, "no nonce: renewed at once");
    is_int(act.record.transitions, 3, "no nonce: the term goes on");
    is_str(act.record.instance, NA, "no nonce: written with ours");

    /* our own nonce: ours (a reload, a respawned worker) */
    rec = twin_record(NA, -1000, 3);
    twin_follow(&e, &rec, "", &ev);
    ok(kle_election_mine(&e, &rec), "our nonce: ours");
    step(&e, 5, &act);
    is_int(act.kind, KLE_DO_UPDATE, "our nonce: renewed at once");
    is_int(act.record.transitions, 3, "our nonce: the term goes on");

    /* a stale record of an instance that died: waits, no clash */
    rec = twin_record(NB, -1000, 3);
    twin_follow(&e, &rec, "", &ev);
    rec.renew_time = wall(-1000);
    ev = kle_election_observe(&e, 1000, &rec, "1");
    is_int(kle_election_twin(&e), KLE_TWIN_WAIT,
           "the same record again: still only waiting");

    /* a binary upgrade: the old master's nonce, never a clash */
    rec = twin_record(NP, -1000, 3);
    twin_follow(&e, &rec, NP, &ev);
    is_int(kle_election_twin(&e), KLE_TWIN_PREDECESSOR,
           "upgrade: the old master's record");
    rec = twin_record(NP, 2000, 3);
    ev = kle_election_observe(&e, 2000, &rec, "2");
    ok(!(ev & KLE_EV_TWIN), "upgrade: its renewals are no news");
    is_int(kle_election_twin(&e), KLE_TWIN_PREDECESSOR, "upgrade: no clash");
    step(&e, 2000, &act);
    ok(act.kind != KLE_DO_UPDATE, "upgrade: the new master waits");

    /* the old master releases: taken at once */
    rec = record("", wall(2500), wall(2500), 3);
    rec.lease_duration = 1;
    snprintf(rec.instance, sizeof(rec.instance), "%s", NP);
    ev = kle_election_observe(&e, 2500, &rec, "3");
    is_int(kle_election_twin(&e), KLE_TWIN_NONE, "released: no twin");
    step(&e, 2500, &act);
    is_int(act.kind, KLE_DO_UPDATE, "released: taken at once");
    is_int(act.record.transitions, 4, "released: a new term");

    /* another instance still: a third one with our identity is a clash */
    rec = twin_record(NP, -1000, 3);
    twin_follow(&e, &rec, NP, &ev);
    rec = twin_record(NB, 2000, 4);
    ev = kle_election_observe(&e, 2000, &rec, "2");
    is_int(kle_election_twin(&e), KLE_TWIN_CONFLICT,
           "upgrade: a third instance is a clash");
}


/*
 * leaseTransitions is an int32: a term taken at 2147483647 would repeat
 * its predecessor's fencing token, so none is taken.
 */
static void
test_exhausted(void)
{
    kle_election_t  e;
    kle_action_t    act;
    kle_record_t    rec;
    unsigned        ev;
    int64_t         t;
    int             writes, reports;

    /* the last term: INT32_MAX - 1 -> INT32_MAX is still greater */
    rec = record("b", wall(-60000), wall(-1000), INT32_MAX - 1);
    follow(&e, 0, &rec);
    step(&e, LD, &act);
    if (act.kind == KLE_DO_GET) {
        kle_election_on_result(&e, LD, KLE_API_OK, &rec, "1", 0);
        step(&e, LD, &act);
    }
    is_int(act.kind, KLE_DO_UPDATE, "INT32_MAX - 1: taken");
    is_int(act.record.transitions, INT32_MAX, "INT32_MAX - 1: the last term");

    /* at INT32_MAX: reported, never taken, expired or free */
    rec = record("b", wall(-60000), wall(-1000), INT32_MAX);
    start(&e, "a");
    step(&e, 0, &act);
    ev = kle_election_on_result(&e, 0, KLE_API_OK, &rec, "1", 0);
    ok(ev & KLE_EV_EXHAUSTED, "INT32_MAX: reported");
    ok(kle_election_exhausted(&e), "INT32_MAX: exhausted");
    writes = 0;
    reports = 0;
    for (t = 0; t < 3 * LD; t += 250) {
        step(&e, t, &act);
        if (act.kind == KLE_DO_GET) {
            ev = kle_election_on_result(&e, t, KLE_API_OK, &rec, "1", 0);
            reports += (ev & KLE_EV_EXHAUSTED) != 0;
        }
        writes += act.kind == KLE_DO_UPDATE || act.kind == KLE_DO_CREATE;
    }
    is_int(writes, 0, "INT32_MAX, expired: no term taken");
    is_int(reports, 0, "INT32_MAX: reported once");

    rec = record("", wall(0), wall(0), INT32_MAX);
    rec.lease_duration = 1;
    kle_election_observe(&e, 3 * LD, &rec, "2");
    writes = 0;
    for (t = 3 * LD; t < 4 * LD; t += 250) {
        step(&e, t, &act);
        if (act.kind == KLE_DO_GET) {
            kle_election_on_result(&e, t, KLE_API_OK, &rec, "2", 0);
        }
        writes += act.kind == KLE_DO_UPDATE || act.kind == KLE_DO_CREATE;
    }
    is_int(writes, 0, "INT32_MAX, free: no term taken");

    /* deleted: created again from 0 */
    kle_election_observe(&e, 4 * LD, NULL, "3");
    ok(!kle_election_exhausted(&e), "deleted: not exhausted");
    step(&e, 4 * LD, &act);
    is_int(act.kind, KLE_DO_CREATE, "deleted: created");
    is_int(act.record.transitions, 0, "deleted: from 0");

    /* our own term at INT32_MAX goes on */
    rec = mine(wall(-60000), wall(-1000), INT32_MAX);
    follow(&e, 0, &rec);
    ok(!kle_election_exhausted(&e), "ours at INT32_MAX: not exhausted");
    step(&e, 5, &act);
    is_int(act.kind, KLE_DO_UPDATE, "ours at INT32_MAX: renewed");
    is_int(act.record.transitions, INT32_MAX, "ours: the term goes on");
}


static void
test_stray_result(void)
{
    kle_election_t  e;
    kle_record_t    b;

    b = record("b", wall(0), wall(0), 1);
    start(&e, "a");
    is_int(kle_election_on_result(&e, 5, KLE_API_OK, &b, "1", 0), 0,
           "stray: ignored");
    is_int(e.have_observed, 0, "stray: nothing observed");
    is_str(kle_state_name(e.state), "starting", "stray: still starting");
    is_str(kle_state_name((kle_state_t) 99), "unknown", "state name: unknown");
}


/*
 * A follower with an established watch sends nothing while the observed
 * lease runs: no GET, a timer at observed_time + leaseDurationSeconds.
 */
static void
test_watching(void)
{
    kle_election_t  e;
    kle_action_t    act;
    kle_record_t    b, b2, free_;
    int64_t         t;
    int             requests, late;

    b = record("b", wall(0), wall(0), 1);
    free_ = record("", wall(10), wall(10), 1);

    follow(&e, 1000, &b);
    kle_election_watching(&e, 1000, 1);
    is_int(e.next_attempt, 1000 + LD, "watching: timer at the expiry");

    /* b renews every RP: each event moves the timer; nothing is sent */
    requests = 0;
    late = 0;
    for (t = 1000 + RP; t < 60000; t += RP) {
        b2 = record("b", wall(0), wall(t), 1);
        kle_election_observe(&e, t, &b2, "2");
        step(&e, t, &act);
        requests += act.kind != KLE_DO_WAIT;
        late += act.until != t + LD;
    }
    is_int(requests, 0, "watching: no request in a minute of renewals");
    is_int(late, 0, "watching: each time until the renewal's expiry");

    /* the watch lost: back to polling */
    kle_election_watching(&e, 60000, 0);
    ok(e.next_attempt >= 60000 + RP && e.next_attempt < 60000 + RP * 22 / 10,
       "watching lost: a poll in [RP, 2.2 RP)");
    step(&e, e.next_attempt, &act);
    is_int(act.kind, KLE_DO_GET, "watching lost: polls");
    kle_election_on_result(&e, e.next_attempt, KLE_API_OK, &b2, "2", 0);

    /* up again: the timer at the expiry, whatever the poll said */
    kle_election_watching(&e, 64000, 1);
    is_int(e.next_attempt, 59000 + LD, "watching again: at the expiry");

    /* a free record is taken at once */
    kle_election_observe(&e, 65000, &free_, "3");
    is_int(e.next_attempt, 65000, "watching: free, at once");
    step(&e, 65000, &act);
    is_int(act.kind, KLE_DO_UPDATE, "watching: free, one UPDATE");
    is_str(act.rv, "3", "watching: on the free record's version");

    /* a failed takeover is not retried in a loop */
    kle_election_on_result(&e, 65010, KLE_API_SERVER_ERROR, NULL, NULL, 0);
    ok(e.next_attempt >= 65010 + RP, "watching: a failure waits a jitter");

    /* before anything is read, even a watching candidate GETs */
    start(&e, "a");
    kle_election_watching(&e, 0, 1);
    step(&e, 0, &act);
    is_int(act.kind, KLE_DO_GET, "watching: GET when nothing is known");
}


/*
 * A holder this instance cannot store (too long, a NUL inside) is someone
 * else: never us, never free.  The stand-in can equal our identity's text.
 */
static void
test_foreign_holder(void)
{
    kle_election_t  e;
    kle_action_t    act;
    kle_record_t    f;
    unsigned        ev;

    f = record("a", wall(0), wall(0), 3);
    f.foreign = 0x1234;

    follow(&e, 1000, &f);
    ok(!kle_election_is_leader(&e, 1000), "foreign: not us");
    is_int(e.pending, KLE_DO_NOTHING, "foreign: held, no write");
    step(&e, 1000 + LD, &act);
    is_int(act.kind, KLE_DO_UPDATE, "foreign: taken at expiry");
    is_int(act.record.transitions, 4, "foreign: as a new term");
    is_int(act.record.foreign, 0, "foreign: our record is ours");

    /* a leader reading it steps down */
    lead(&e, 150);
    ev = kle_election_observe(&e, 1000, &f, "5");
    is_int(ev & EV_DOWN, EV_DOWN, "foreign: a leader steps down");

    /* the stand-in of a long holder */
    memset(&f, 0, sizeof(f));
    {
        char  big[300];

        memset(big, 'x', sizeof(big));
        kle_record_set_holder(&f, big, sizeof(big));
        ok(f.foreign != 0, "foreign: 300 bytes is foreign");
        is_int(strlen(f.holder), KLE_ID_MAX - 1, "foreign: stand-in fits");
        ok(strcmp(f.holder + KLE_ID_MAX - 4, "...") == 0,
           "foreign: stand-in ends in ...");

        kle_record_set_holder(&f, "a\0b", 3);
        ok(f.foreign != 0, "foreign: a NUL inside is foreign");
        is_str(f.holder, "a?b", "foreign: NUL shown as ?");
        ok(!kle_record_names(&f, "a?b"), "foreign: never names anyone");

        kle_record_set_holder(&f, "\0", 1);
        is_str(f.holder, "?", "foreign: never empty");

        kle_record_set_holder(&f, big, KLE_ID_MAX - 1);
        is_int(f.foreign, 0, "foreign: 255 bytes fit");
        ok(kle_record_names(&f, f.holder), "foreign: 255 bytes named");
    }
}


/*
 * Two candidates on one simulated API server.  The server applies an
 * UPDATE only on the version its writer last read (else 409); requests
 * reach it and answer after random delays; answers get lost or time out
 * while the write still lands later; watch events arrive late (later than
 * a lease) and out of order; processes stall.  Each candidate reads the
 * shared clock through its own monotonic and wall offsets; in half the
 * schedules its monotonic clock also runs 10% fast or slow, within the
 * tolerance LD / RD allows.
 */

#define SIM_LD     1000
#define SIM_RD     700
#define SIM_RP     100
#define SIM_CHAOS  20000
#define SIM_REQS   64
#define SIM_WATCH  128
#define SIM_RUNS   500

typedef struct {
    int                used;
    int                who;
    kle_action_kind_t  kind;
    kle_record_t       rec;
    long               version;       /* what the writer last read */
    int64_t            apply_at;      /* -1 once applied */
    int64_t            answer_at;     /* -1 once answered */
    kle_api_status_t   fault;         /* refused before storage */
    int                lost;          /* the host times out */
    kle_api_status_t   status;
    kle_record_t       result;
    long               result_version;
} sim_req_t;

typedef struct {
    int           used;
    int           who;
    int64_t       at;
    kle_record_t  rec;
    long          version;
} sim_watch_t;

typedef struct {
    kle_election_t  e;
    char            id[8];
    int64_t         mono_off;
    int64_t         rate;             /* monotonic ms per 1000 sim ms */
    int64_t         wall_off;
    int             req;              /* in flight, -1 if none */
    int64_t         wake;
    int64_t         paused_until;     /* a stalled process */
    int             stopped;
    int             leading;          /* as the events tell it */
} sim_cand_t;

typedef struct {
    uint64_t      rng;
    int64_t       t;
    int           faults;
    int           exists;
    kle_record_t  rec;
    long          version;
    sim_req_t     reqs[SIM_REQS];
    sim_watch_t   watch[SIM_WATCH];
    sim_cand_t    c[2];
    int           bad_events;
    int           overlap;
    int           not_holder;
    int           fencing;       /* transitions went wrong */
    int           overflow;
    long          started;
    long          conflicts;
} sim_t;

static sim_t  sim;


static uint64_t
sim_rand(uint64_t n)
{
    uint64_t  x;

    x = sim.rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    sim.rng = x;

    return x % n;
}


static int64_t
sim_delay(void)
{
    if (sim.faults && sim_rand(15) == 0) {
        return 1 + (int64_t) sim_rand(500);
    }

    return 1 + (int64_t) sim_rand(30);
}


/* The candidate's monotonic clock at sim time t, and back. */
static int64_t
sim_mono(const sim_cand_t *c, int64_t t)
{
    return c->mono_off + t * c->rate / 1000;
}


static int64_t
sim_time(const sim_cand_t *c, int64_t mono)
{
    int64_t  t;

    t = (mono - c->mono_off) * 1000 / c->rate;
    while (sim_mono(c, t) < mono) {
        t++;
    }

    return t;
}


static void
sim_publish(void)
{
    int  i, w;

    for (i = 0; i < 2; i++) {
        if (sim_rand(2)) {
            continue;
        }
        for (w = 0; w < SIM_WATCH && sim.watch[w].used; w++) {
            /* void */
        }
        if (w == SIM_WATCH) {
            continue;
        }
        sim.watch[w].used = 1;
        sim.watch[w].who = i;
        sim.watch[w].at = sim.t + 1 + (int64_t) sim_rand(300);
        if (sim.faults && sim_rand(10) == 0) {
            sim.watch[w].at += (int64_t) sim_rand(2500);
        }
        sim.watch[w].rec = sim.rec;
        sim.watch[w].version = sim.version;
    }
}


static void
sim_free_maybe(sim_req_t *r)
{
    if (r->apply_at == -1
        && (r->answer_at == -1 || sim.c[r->who].stopped))
    {
        r->used = 0;
    }
}


static void
sim_apply(sim_req_t *r)
{
    r->apply_at = -1;

    if (r->fault != KLE_API_OK) {
        return;
    }

    switch (r->kind) {

    case KLE_DO_GET:
        r->status = sim.exists ? KLE_API_OK : KLE_API_NOT_FOUND;
        r->result = sim.rec;
        r->result_version = sim.version;
        return;

    case KLE_DO_CREATE:
        if (sim.exists) {
            r->status = KLE_API_ALREADY_EXISTS;
            return;
        }
        sim.exists = 1;
        break;

    default:
        if (!sim.exists) {
            r->status = KLE_API_NOT_FOUND;
            return;
        }
        if (r->version != sim.version) {
            r->status = KLE_API_CONFLICT;
            sim.conflicts++;
            return;
        }
        break;
    }

    /* transitions is a fencing token: it grows with every new holder */
    if (r->kind == KLE_DO_UPDATE
        && (r->rec.transitions < sim.rec.transitions
            || (r->rec.holder[0] != '\0'
                && strcmp(r->rec.holder, sim.rec.holder) != 0
                && r->rec.transitions == sim.rec.transitions)))
    {
        sim.fencing++;
    }

    sim.rec = r->rec;
    sim.version++;
    r->status = KLE_API_OK;
    r->result = sim.rec;
    r->result_version = sim.version;
    sim_publish();
}


static void
sim_events(sim_cand_t *c, unsigned ev)
{
    if (ev & EV_DOWN) {
        sim.bad_events += !c->leading;
        c->leading = 0;
    }
    if (ev & EV_UP) {
        sim.bad_events += c->leading;
        c->leading = 1;
        sim.started++;
    }
    sim.bad_events += c->leading != (c->e.state == KLE_STATE_LEADING);
}


static void
sim_send(sim_cand_t *c, const kle_action_t *act)
{
    sim_req_t  *r;
    int64_t     answer;
    int         i, k;

    for (i = 0; i < SIM_REQS && sim.reqs[i].used; i++) {
        /* void */
    }
    if (i == SIM_REQS) {
        sim.overflow++;
        return;
    }

    r = &sim.reqs[i];
    memset(r, 0, sizeof(*r));
    r->used = 1;
    r->who = (int) (c - sim.c);
    r->kind = act->kind;
    r->rec = act->record;
    /* the version the action names, not one the host remembers */
    r->version = act->rv[0] ? strtol(act->rv, NULL, 10) : -1;
    r->fault = KLE_API_OK;

    if (sim.faults) {
        k = (int) sim_rand(100);
        if (k < 8) {
            r->fault = KLE_API_SERVER_ERROR;
        } else if (k < 10) {
            r->fault = KLE_API_TOO_MANY_REQUESTS;
        } else if (k < 18) {
            r->lost = 1;
        }
    }

    r->apply_at = sim.t + sim_delay();
    answer = r->apply_at + sim_delay();
    if (r->lost || answer > sim.t + act->timeout) {
        r->lost = 1;
        answer = sim.t + act->timeout;
    }
    r->answer_at = answer;

    c->req = i;
}


static void
sim_answer(sim_cand_t *c)
{
    sim_req_t          *r;
    const kle_record_t *rec;
    kle_api_status_t    status;
    unsigned            ev;
    char                rv[32];

    r = &sim.reqs[c->req];
    rec = NULL;

    if (r->lost) {
        status = KLE_API_TRANSPORT;
    } else if (r->fault != KLE_API_OK) {
        status = r->fault;
    } else {
        status = r->status;
        if (status == KLE_API_OK) {
            rec = &r->result;
            snprintf(rv, sizeof(rv), "%ld", r->result_version);
        }
    }

    ev = kle_election_on_result(&c->e, sim_mono(c, sim.t), status, rec,
                                rec ? rv : NULL,
                                status == KLE_API_TOO_MANY_REQUESTS);
    sim_events(c, ev);

    r->answer_at = -1;
    sim_free_maybe(r);
    c->req = -1;
    c->wake = sim.t;
}


static void
sim_drive(sim_cand_t *c)
{
    kle_action_t  act;
    unsigned      ev;

    ev = kle_election_next(&c->e, sim_mono(c, sim.t),
                           WALL0 + (sim.t + c->wall_off) * 1000, &act);
    sim_events(c, ev);

    switch (act.kind) {

    case KLE_DO_WAIT:
        c->wake = sim_time(c, act.until);
        if (sim_rand(4) == 0 && c->wake > sim.t + 1) {
            /* a spurious wakeup */
            c->wake = sim.t + 1
                      + (int64_t) sim_rand((uint64_t) (c->wake - sim.t - 1));
        }
        return;

    case KLE_DO_NOTHING:
        break;

    default:
        sim_send(c, &act);
        break;
    }

    /* woken by the answer, or now and then while it is out */
    c->wake = sim_rand(2) ? INT64_MAX : sim.t + 1 + (int64_t) sim_rand(200);

    if (sim.faults && sim_rand(60) == 0) {
        c->paused_until = sim.t + 1 + (int64_t) sim_rand(1500);
    }

    /*
     * The host's watch comes and goes.  Its events are the lossy, late
     * ones of sim_publish: a silent follower must stay safe on them.
     */
    if (sim_rand(40) == 0) {
        ev = kle_election_watching(&c->e, sim_mono(c, sim.t),
                                   !c->e.watching);
        sim_events(c, ev);
    }
}


static void
sim_stop(sim_cand_t *c)
{
    int  i;

    c->stopped = 1;

    for (i = 0; i < SIM_REQS; i++) {
        if (sim.reqs[i].used && &sim.c[sim.reqs[i].who] == c) {
            sim_free_maybe(&sim.reqs[i]);
        }
    }
}


/* x, or when the candidate wakes from a pause if that is later */
static int64_t
sim_for(const sim_cand_t *c, int64_t x)
{
    return x > c->paused_until ? x : c->paused_until;
}


static void
sim_check(int *took, int other)
{
    int  i, n, who;

    n = 0;
    who = -1;

    for (i = 0; i < 2; i++) {
        if (kle_election_is_leader(&sim.c[i].e, sim_mono(&sim.c[i], sim.t))) {
            n++;
            who = i;
        }
    }

    sim.overlap += n > 1;

    if (n == 1 && (!sim.exists
                   || strcmp(sim.rec.holder, sim.c[who].id) != 0))
    {
        sim.not_holder++;
    }

    if (took != NULL && *took < 0 && who == other) {
        *took = (int) sim.t;
    }
}


static int64_t
sim_next_time(void)
{
    int64_t  t;
    int      i;

    t = INT64_MAX;

    for (i = 0; i < SIM_REQS; i++) {
        sim_req_t  *r = &sim.reqs[i];

        if (!r->used) {
            continue;
        }
        if (r->apply_at >= 0 && r->apply_at < t) {
            t = r->apply_at;
        }
        if (r->answer_at >= 0 && !sim.c[r->who].stopped
            && sim_for(&sim.c[r->who], r->answer_at) < t)
        {
            t = sim_for(&sim.c[r->who], r->answer_at);
        }
    }

    for (i = 0; i < SIM_WATCH; i++) {
        sim_watch_t  *w = &sim.watch[i];

        if (w->used && sim_for(&sim.c[w->who], w->at) < t) {
            t = sim_for(&sim.c[w->who], w->at);
        }
    }

    for (i = 0; i < 2; i++) {
        if (!sim.c[i].stopped && sim_for(&sim.c[i], sim.c[i].wake) < t) {
            t = sim_for(&sim.c[i], sim.c[i].wake);
        }
    }

    return t;
}


static void
sim_tick(int *took, int other)
{
    sim_cand_t  *c;
    unsigned     ev;
    int          i, j, first;
    char         rv[32];

    first = (int) sim_rand(SIM_REQS);
    for (j = 0; j < SIM_REQS; j++) {
        sim_req_t  *r = &sim.reqs[(first + j) % SIM_REQS];

        if (r->used && r->apply_at == sim.t) {
            sim_apply(r);
            sim_free_maybe(r);
        }
    }

    for (i = 0; i < SIM_WATCH; i++) {
        if (!sim.watch[i].used) {
            continue;
        }
        c = &sim.c[sim.watch[i].who];
        if (sim_for(c, sim.watch[i].at) > sim.t) {
            continue;
        }
        sim.watch[i].used = 0;
        if (!c->stopped) {
            snprintf(rv, sizeof(rv), "%ld", sim.watch[i].version);
            ev = kle_election_observe(&c->e, sim_mono(c, sim.t),
                                      &sim.watch[i].rec, rv);
            sim_events(c, ev);
            c->wake = sim.t;
        }
    }

    first = (int) sim_rand(2);
    for (j = 0; j < 2; j++) {
        c = &sim.c[(first + j) % 2];
        if (!c->stopped && c->req >= 0
            && sim_for(c, sim.reqs[c->req].answer_at) <= sim.t)
        {
            sim_answer(c);
        }
    }

    for (j = 0; j < 2; j++) {
        c = &sim.c[(first + j) % 2];
        if (!c->stopped && sim_for(c, c->wake) <= sim.t) {
            sim_drive(c);
        }
        if (!c->stopped && c->e.state == KLE_STATE_RELEASED) {
            sim_stop(c);
        }
    }

    sim_check(took, other);
}


static void
sim_until(int64_t end, int *took, int other)
{
    int64_t  t;

    for ( ;; ) {
        t = sim_next_time();
        if (t > end) {
            sim.t = end;
            return;
        }
        sim.t = t > sim.t ? t : sim.t + 1;
        sim_tick(took, other);
    }
}


/* One schedule; returns 0 or a short reason it failed. */
static const char *
sim_run(uint64_t seed)
{
    kle_election_config_t  cfg;
    sim_cand_t            *c;
    int64_t                end;
    int                    i, leader, took;

    memset(&sim, 0, sizeof(sim));
    sim.rng = seed * 0x9e3779b97f4a7c15ULL + 1;
    sim.faults = 1;

    for (i = 0; i < 2; i++) {
        c = &sim.c[i];
        snprintf(c->id, sizeof(c->id), "c%d", i);
        config(&cfg, c->id);
        cfg.lease_duration = SIM_LD;
        cfg.renew_deadline = SIM_RD;
        cfg.retry_period = SIM_RP;
        kle_election_init(&c->e, &cfg, seed * 2 + (uint64_t) i);
        c->mono_off = (int64_t) sim_rand(1000000);
        c->rate = seed % 2 ? 1000 : 900 + (int64_t) sim_rand(201);
        c->wall_off = (int64_t) sim_rand(100000000) - 50000000;
        c->req = -1;
        c->wake = (int64_t) sim_rand(300);
        kle_election_watching(&c->e, sim_mono(c, 0), (int) sim_rand(2));
    }

    sim_until(SIM_CHAOS, NULL, -1);

    /* calm: a leader must emerge and stay */
    sim.faults = 0;
    sim_until(SIM_CHAOS + 3 * SIM_LD, NULL, -1);

    leader = -1;
    for (i = 0; i < 2; i++) {
        if (kle_election_is_leader(&sim.c[i].e,
                                   sim_mono(&sim.c[i], sim.t)))
        {
            leader = i;
        }
    }
    if (leader < 0) {
        return "no leader after a calm period";
    }

    /*
     * The leader goes: half the time it just stops calling, else it
     * releases first and stops once released.  Its requests still land.
     */
    if (seed % 4 < 2) {
        sim_stop(&sim.c[leader]);

    } else {
        c = &sim.c[leader];
        kle_election_release(&c->e);
        if (c->req >= 0) {
            /* cancelled by the host: its answer never comes */
            sim.reqs[c->req].answer_at = -1;
            sim_free_maybe(&sim.reqs[c->req]);
            c->req = -1;
        }
        c->wake = sim.t;
    }

    took = -1;
    end = sim.t + (2 * SIM_LD + 200) * 1000 / 900;   /* the slowest clock */
    sim_until(end, &took, 1 - leader);

    if (sim.overflow) {
        return "request pool overflow";
    }
    if (sim.bad_events) {
        return "events out of order";
    }
    if (sim.overlap) {
        return "two leaders at once";
    }
    if (sim.not_holder) {
        return "a leader the server does not name";
    }
    if (sim.fencing) {
        return "transitions did not grow with the holder";
    }
    if (took < 0) {
        return "no takeover after the leader stopped";
    }
    if (kle_election_is_leader(&sim.c[leader].e,
                               sim_mono(&sim.c[leader], sim.t)))
    {
        return "the stopped leader still leads";
    }

    return NULL;
}


static void
test_simulation(void)
{
    const char  *why, *first;
    uint64_t     seed, bad_seed;
    long         started, conflicts;
    int          failed;

    failed = 0;
    first = NULL;
    bad_seed = 0;
    started = 0;
    conflicts = 0;

    for (seed = 1; seed <= SIM_RUNS; seed++) {
        why = sim_run(seed);
        started += sim.started;
        conflicts += sim.conflicts;
        if (why != NULL) {
            if (failed++ == 0) {
                first = why;
                bad_seed = seed;
            }
        }
    }

    if (!ok(failed == 0, "simulation: every schedule safe and live")) {
        printf("#   %d schedules failed; seed %" PRIu64 ": %s\n",
               failed, bad_seed, first);
    }

    /* the schedules must exercise handovers and lost races */
    ok(started > 3 * SIM_RUNS, "simulation: leadership changed hands often");
    ok(conflicts > SIM_RUNS, "simulation: writes lost races");
    printf("# %ld STARTED_LEADING, %ld conflicts over %d schedules\n",
           started, conflicts, SIM_RUNS);
}


/*
 * A read that does not name us arrives while our write is out; the write
 * then succeeds.  It was stored before the version we read (a write on an
 * older version fails after it), so it is no claim: read again.
 */
static void
test_superseded(void)
{
    kle_election_t  e;
    kle_action_t    act;
    kle_record_t    b, free_;
    unsigned        ev;

    b = record("b", wall(3000), wall(3000), 2);
    free_ = record("", wall(2300), wall(2300), 1);
    free_.lease_duration = 1;

    /* a leader's renewal out; the watch shows b's record; 200 after it */
    lead(&e, 150);
    step(&e, 2200, &act);
    is_int(act.kind, KLE_DO_UPDATE, "superseded: renewal out");
    ev = kle_election_observe(&e, 2210, &b, "7");
    is_int(ev & EV_DOWN, EV_DOWN, "superseded: b read, stepped down");
    ev = kle_election_on_result(&e, 2300, KLE_API_OK, &act.record, "6", 0);
    is_int(ev & EV_UP, 0, "superseded: the 200 makes no leader");
    ok(!kle_election_is_leader(&e, 2300), "superseded: no claim");
    is_str(e.observed.holder, "b", "superseded: b stays observed");
    is_str(e.observed_rv, "7", "superseded: its version too");
    step(&e, 2300, &act);
    is_int(act.kind, KLE_DO_GET, "superseded: read what is there");

    /* a follower's takeover out; a free record read since, then 200 */
    follow_rv(&e, 0, &b, "4");
    step(&e, LD, &act);
    is_int(act.kind, KLE_DO_UPDATE, "superseded takeover: out");
    kle_election_observe(&e, LD + 5, &free_, "5");
    ev = kle_election_on_result(&e, LD + 10, KLE_API_OK, &act.record, "6",
                                0);
    is_int(ev & EV_UP, 0, "superseded takeover: no claim");
    step(&e, LD + 10, &act);
    is_int(act.kind, KLE_DO_GET, "superseded takeover: read again");
    kle_election_on_result(&e, LD + 20, KLE_API_OK, &act.record, "6", 0);
    step(&e, LD + 20, &act);
    is_int(act.kind, KLE_DO_UPDATE, "superseded takeover: ours, renew");
    ev = kle_election_on_result(&e, LD + 30, KLE_API_OK, &act.record, "8",
                                0);
    is_int(ev & EV_UP, EV_UP, "superseded takeover: leads on a fresh write");
    is_int(kle_election_claim_until(&e), LD + 20 + RD,
           "superseded takeover: claim from the fresh write");

    /* an event naming us while the write is out supersedes nothing */
    follow_rv(&e, 0, &b, "4");
    step(&e, LD, &act);
    kle_election_observe(&e, LD + 5, &act.record, "6");
    ev = kle_election_on_result(&e, LD + 10, KLE_API_OK, &act.record, "6",
                                0);
    is_int(ev & EV_UP, EV_UP, "own echo first: leads");
}


/* The renewal is due a retry period after the last one started. */
static void
test_renew_schedule(void)
{
    kle_election_t  e;
    kle_action_t    act;

    lead(&e, 150);
    is_int(e.next_attempt, 150 + RP, "schedule: RP after the write's start");

    /* an answer slower than RP: renew at once, the claim must not lapse */
    step(&e, 150 + RP, &act);
    kle_election_on_result(&e, 150 + RP + RP + 500, KLE_API_OK, &act.record,
                           "3", 0);
    is_int(e.next_attempt, 150 + RP + RP + 500, "schedule: at once");
}


int
main(void)
{
    test_validate();
    test_fresh_start();
    test_timeout();
    test_follow();
    test_takeover();
    test_takeover_one_request();
    test_stale_observation();
    test_clock_skew();
    test_empty_holder();
    test_lease_until();
    test_restart_self();
    test_fast_path();
    test_fast_path_conflict();
    test_step_down();
    test_claim();
    test_renew_deadline();
    test_stale_write();
    test_too_many_requests();
    test_jitter();
    test_release();
    test_release_following();
    test_new_leader();
    test_observe();
    test_watching();
    test_foreign_holder();
    test_twin();
    test_exhausted();
    test_stray_result();
    test_superseded();
    test_renew_schedule();
    test_simulation();

    return done_testing();
}
