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
    /*
     * The lock stores whole-second times (configmaps).  Validation asks
     * lease_duration - renew_deadline >= 1s of every lock all the same:
     * client-go followers read a Lease at whole seconds too.
     */
    int      whole_seconds;
    /*
     * This instance's nonce, written with each record (kle_instance_new),
     * and that of the instance it replaces in a binary upgrade; "" if
     * none.  A record in our identity with another instance's nonce is
     * not ours: a foreign holder (see kle_election_twin()).  Without a
     * nonce of our own, every record in our identity is ours.
     */
    char     instance[KLE_INSTANCE_MAX];
    char     predecessor[KLE_INSTANCE_MAX];
} kle_election_config_t;

/*
 * client-go's rules: lease_duration > renew_deadline > 1.2 * retry_period
 * > 0, identity not empty, lease_duration a whole number of seconds >= 1,
 * lease_duration - renew_deadline >= 1s (for every lock); an address,
 * if any, as kle_address_valid() says.  -1 with a message naming the
 * broken rule.
 */
int kle_election_config_validate(const kle_election_config_t *cfg,
    char *err, size_t errlen);

typedef enum {
    KLE_DO_NOTHING = 0,   /* a request is in flight, or the election ended */
    KLE_DO_WAIT,          /* call next() again at act.until */
    KLE_DO_GET,
    KLE_DO_CREATE,        /* write act.record */
    KLE_DO_UPDATE         /* write act.record, conditioned on act.rv */
} kle_action_kind_t;

typedef struct {
    kle_action_kind_t  kind;
    int64_t            until;    /* KLE_DO_WAIT: monotonic ms */
    int64_t            timeout;  /* requests: ms the host may wait for it */
    kle_record_t       record;   /* CREATE / UPDATE */
    /*
     * UPDATE: the resourceVersion of the very record the decision was
     * judged on.  The host sends exactly this one.
     */
    char               rv[KLE_RV_MAX];
} kle_action_t;

/* Events, returned as a bit mask by the calls that can cause them. */
#define KLE_EV_STARTED_LEADING  0x01
#define KLE_EV_STOPPED_LEADING  0x02
#define KLE_EV_NEW_LEADER       0x04   /* observed holder changed */
#define KLE_EV_CHANGED          0x08   /* anything a status page shows */
#define KLE_EV_TWIN             0x10   /* kle_election_twin() changed */
#define KLE_EV_EXHAUSTED        0x20   /* kle_election_exhausted() became 1 */

/*
 * Another instance in our identity (its nonce is not ours): what we make
 * of the record we observe.
 */
typedef enum {
    KLE_TWIN_NONE = 0,
    KLE_TWIN_WAIT,          /* such a record, unchanged since first seen:
                               maybe left by a restarted instance */
    KLE_TWIN_PREDECESSOR,   /* written by the instance we replace */
    KLE_TWIN_CONFLICT       /* it changed while in our name: another live
                               instance shares our identity */
} kle_twin_t;

typedef enum {
    KLE_STATE_STARTING = 0,   /* nothing observed yet */
    KLE_STATE_FOLLOWING,      /* candidate; the record is held or free */
    KLE_STATE_LEADING,
    KLE_STATE_RELEASED        /* released on shutdown; does nothing more */
} kle_state_t;

typedef struct {
    kle_election_config_t  cfg;
    kle_state_t            state;

    /*
     * The observation: a record and the resourceVersion of the object it
     * came from, always set together.  observed_time is when the record
     * last changed (by value) in our eyes.
     */
    kle_record_t           observed;       /* last record seen or written */
    char                   observed_rv[KLE_RV_MAX];  /* "" if unknown */
    int                    have_observed;
    int                    absent;         /* the object does not exist */
    int                    stale;          /* a write said the rv is old */
    uint64_t               observations;   /* count of rv changes */
    uint64_t               sent_after;     /* observations at the send */
    int64_t                observed_time;  /* mono ms it last changed */
    char                   reported[KLE_ID_MAX];  /* last NEW_LEADER holder */

    int64_t                renew_start;    /* mono ms: start of the last
                                              successful acquire/renew */
    int64_t                claim_until;    /* renew_start + renew_deadline */
    int32_t                term;           /* transitions of our claim */
    int64_t                next_attempt;   /* mono ms */
    int64_t                backoff_until;  /* mono ms: Retry-After */
    int64_t                request_start;  /* mono ms of the one in flight */
    kle_action_kind_t      in_flight;      /* KLE_DO_NOTHING if none */
    kle_action_kind_t      pending;        /* follow-up within an attempt */
    kle_record_t           pending_record;
    char                   pending_rv[KLE_RV_MAX];
    int                    fast_path;      /* in-flight UPDATE skipped GET */
    int                    reread;         /* this attempt's GET after a
                                              failed write is spent */
    int                    superseded;     /* a read not naming us came
                                              while our write was out */
    int                    releasing;      /* in-flight UPDATE is release */
    int                    release_wanted;
    int                    watching;       /* the host's watch is up */
    kle_twin_t             twin;           /* of the observed record */
    int                    exhausted;      /* no term is left to take */

    uint64_t               rng;            /* jitter, xorshift64 */
} kle_election_t;

/* seed: any value; the same seed gives the same jitter (tests). */
void kle_election_init(kle_election_t *e, const kle_election_config_t *cfg,
    uint64_t seed);

/* What to do at monotonic time now.  May return events (stepping down). */
unsigned kle_election_next(kle_election_t *e, int64_t now, int64_t wall_us,
    kle_action_t *act);

/*
 * The answer to the request next() asked for.  rec and rv are the record
 * and resourceVersion of the object the server returned (GET, or the
 * object a CREATE/UPDATE wrote), NULL if none.  retry_after (seconds)
 * defers the next attempt after a 429, within limits.
 */
unsigned kle_election_on_result(kle_election_t *e, int64_t now,
    kle_api_status_t status, const kle_record_t *rec, const char *rv,
    int retry_after);

/*
 * A record learnt outside a request (a watch event) and the
 * resourceVersion of its object; rec NULL: the object was deleted.  A
 * leader ignores records that name it and steps down on any other.
 */
unsigned kle_election_observe(kle_election_t *e, int64_t now,
    const kle_record_t *rec, const char *rv);

/*
 * Whether the host's watch on the lock is established.  While it is, a
 * follower sends nothing until the observed lease expires; without it,
 * the follower polls every [retry_period, 2.2 * retry_period).
 */
unsigned kle_election_watching(kle_election_t *e, int64_t now,
    int established);

/* Asks for release: next() then yields the release UPDATE if leading. */
void kle_election_release(kle_election_t *e);

/* Leading, not releasing, and now < the claim's end. */
int kle_election_is_leader(const kle_election_t *e, int64_t now);

/*
 * The claim: the monotonic ms it ends (the start of the write that made
 * or renewed it + renew_deadline, fixed then), 0 if none; and the
 * transition count of its term (the fencing token), 0 if none.
 */
int64_t kle_election_claim_until(const kle_election_t *e);
int32_t kle_election_term(const kle_election_t *e);

/*
 * 1 if rec is ours: it names our identity, and carries our nonce or none
 * (client-go, the Python client, or a host without a nonce).
 */
int kle_election_mine(const kle_election_t *e, const kle_record_t *rec);

/*
 * The observed record in our identity but another instance's: never
 * renewed, taken over only once it expires, like any foreign holder.  An
 * episode ends with the first record observed that is not such.
 */
kle_twin_t kle_election_twin(const kle_election_t *e);

/*
 * 1 while the observed record is someone else's at leaseTransitions
 * 2147483647: a new term could not get a greater fencing token, so none
 * is taken, even once it expires (docs/directives.md, fencing token).
 */
int kle_election_exhausted(const kle_election_t *e);

/*
 * When the lease of the holder last observed ends in our eyes: client-go's
 * observedTime (on kle_now_ms()'s clock, when the record last changed as
 * we saw it) + its leaseDurationSeconds; 0 if no holder is known.  Remote
 * times are never read, so this is late by at most the delay of that
 * observation.
 */
int64_t kle_election_lease_until(const kle_election_t *e);

const char *kle_state_name(kle_state_t state);  /* "leading", ... */

#endif /* KLE_ELECTION_H */
