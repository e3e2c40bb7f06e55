/*
 * The election's decision logic, client-go's tryAcquireOrRenew as a sans-IO
 * state machine.  It reads no clock and no socket: the host feeds it
 * monotonic time (ms), wall time (unix us, only written into records) and
 * the outcome of each request, and asks it what to do next.
 *
 *     for (;;) {
 *         kle_election_next(e, now, wall, &act);
 *         switch (act.kind) {
 *         case KLE_DO_GET / CREATE / UPDATE: send it, later feed the answer
 *                                 with kle_election_on_result();
 *         case KLE_DO_WAIT:      sleep until act.until (or an observation);
 *         case KLE_DO_NOTHING:   a request is in flight, or released;
 *         }
 *     }
 */

#ifndef KLE_ELECTION_H
#define KLE_ELECTION_H

#include "kle_record.h"
#include "kle_lock.h"

typedef struct {
    char     identity[KLE_ID_MAX];
    char     address[KLE_ADDR_MAX];
    int64_t  lease_duration;   /* ms */
    int64_t  renew_deadline;   /* ms */
    int64_t  retry_period;     /* ms */
} kle_election_config_t;

/*
 * client-go's rules: lease_duration > renew_deadline > 1.2 * retry_period
 * > 0, identity not empty, lease_duration a whole number of seconds >= 1.
 * -1 with a message naming the broken rule.
 */
int kle_election_config_validate(const kle_election_config_t *cfg,
    char *err, size_t errlen);

typedef enum {
    KLE_DO_NOTHING = 0,   /* a request is in flight, or the election ended */
    KLE_DO_WAIT,          /* call next() again at act.until */
    KLE_DO_GET,
    KLE_DO_CREATE,        /* write act.record */
    KLE_DO_UPDATE         /* write act.record on the last read version */
} kle_action_kind_t;

typedef struct {
    kle_action_kind_t  kind;
    int64_t            until;    /* KLE_DO_WAIT: monotonic ms */
    int64_t            timeout;  /* requests: ms the host may wait for it */
    kle_record_t       record;   /* CREATE / UPDATE */
} kle_action_t;

/* Events, returned as a bit mask by the calls that can cause them. */
#define KLE_EV_STARTED_LEADING  0x01
#define KLE_EV_STOPPED_LEADING  0x02
#define KLE_EV_NEW_LEADER       0x04   /* observed holder changed */
#define KLE_EV_CHANGED          0x08   /* anything a status page shows */

typedef enum {
    KLE_STATE_STARTING = 0,   /* nothing observed yet */
    KLE_STATE_FOLLOWING,      /* candidate; the record is held or free */
    KLE_STATE_LEADING,
    KLE_STATE_RELEASED        /* released on shutdown; does nothing more */
} kle_state_t;

typedef struct {
    kle_election_config_t  cfg;
    kle_state_t            state;

    kle_record_t           observed;       /* last record seen or written */
    int                    have_observed;
    int64_t                observed_time;  /* mono ms it last changed */
    char                   reported[KLE_ID_MAX];  /* last NEW_LEADER holder */

    int64_t                renew_start;    /* mono ms: start of the last
                                              successful acquire/renew */
    int64_t                next_attempt;   /* mono ms */
    int64_t                request_start;  /* mono ms of the one in flight */
    kle_action_kind_t      in_flight;      /* KLE_DO_NOTHING if none */
    kle_action_kind_t      pending;        /* follow-up within an attempt */
    kle_record_t           pending_record;
    int                    fast_path;      /* in-flight UPDATE skipped GET */
    int                    releasing;      /* in-flight UPDATE is release */
    int                    release_wanted;

    uint64_t               rng;            /* jitter, xorshift64 */
} kle_election_t;

/* seed: any value; the same seed gives the same jitter (tests). */
void kle_election_init(kle_election_t *e, const kle_election_config_t *cfg,
    uint64_t seed);

/* What to do at monotonic time now.  May return events (stepping down). */
unsigned kle_election_next(kle_election_t *e, int64_t now, int64_t wall_us,
    kle_action_t *act);

/*
 * The answer to the request next() asked for.  rec is the record the
 * server returned (GET, or the object a CREATE/UPDATE wrote), NULL if none.
 * retry_after (seconds) defers the next attempt for 429s.
 */
unsigned kle_election_on_result(kle_election_t *e, int64_t now,
    kle_api_status_t status, const kle_record_t *rec, int retry_after);

/*
 * A record learnt outside a request (a watch event).  A record that became
 * free brings the next attempt forward to now.
 */
unsigned kle_election_observe(kle_election_t *e, int64_t now,
    const kle_record_t *rec);

/* Asks for release: next() then yields the release UPDATE if leading. */
void kle_election_release(kle_election_t *e);

/* Leading, and the last successful renew started < renew_deadline ago. */
int kle_election_is_leader(const kle_election_t *e, int64_t now);

const char *kle_state_name(kle_state_t state);  /* "leading", ... */

#endif /* KLE_ELECTION_H */
