/*
 * An election run over the transport: the one object a host embeds.
 * It owns the state machine, the lock and the requests; the host gives it
 * a kle_http_t and calls kle_elector_run() when it asks to be called.
 */

#ifndef KLE_ELECTOR_H
#define KLE_ELECTOR_H

#include "kle_clock.h"
#include "kle_election.h"
#include "kle_http.h"
#include "kle_kubeconfig.h"

enum { KLE_LOG_ERR = 0, KLE_LOG_WARN, KLE_LOG_NOTICE, KLE_LOG_INFO,
       KLE_LOG_DEBUG };

typedef struct kle_elector_s  kle_elector_t;

typedef struct {
    const char             *name;          /* election name, for hooks/logs */
    kle_election_config_t   election;
    const char             *lock_kind;     /* "leases" | "configmaps" */
    const char             *lock_where;    /* "NAMESPACE/NAME" */
    kle_creds_t            *creds;         /* borrowed; outlives the elector */

    /* optional: URLs that get a POST with a JSON body on each event */
    const char             *hook_started;
    const char             *hook_stopped;
    const char             *hook_new_leader;

    /* core/v1 Events for started and stopped leading (kle_events.h) */
    int                     events;

    /*
     * A previous process of this instance was leading (nginx: a reload or
     * a respawned worker): if the first records seen name this identity,
     * leading again is not news and the new_leader and started_leading
     * hooks are not sent again.  Callbacks are called as usual.
     */
    int                     resume;

    /* optional callbacks, all called from kle_elector_run/transport */
    void  (*on_started_leading)(void *data);
    void  (*on_stopped_leading)(void *data);
    void  (*on_new_leader)(const char *holder, void *data);
    void  (*on_change)(void *data);        /* status values changed */
    /*
     * The elector wants kle_elector_run() called in ms (replaces any
     * earlier wish).  Called when a request completes inside the transport;
     * hosts that call run() on their own schedule may leave it NULL.
     */
    void  (*schedule)(void *data, long ms);
    void  (*log)(void *data, int level, const char *msg);
    void   *data;
} kle_elector_config_t;

typedef struct {
    kle_state_t   state;
    int           is_leader;
    kle_record_t  record;          /* last observed */
    int64_t       renew_start;     /* mono ms, 0 if never */
    int64_t       claim_until;     /* mono ms the claim ends, 0 if none */
    int32_t       term;            /* transitions of the claimed term */
    int64_t       lease_until;     /* mono ms the record's lease ends as
                                      observed, 0 if no holder */
    char          last_error[256]; /* "" if the last request succeeded */
    int           record_mine;     /* record is ours: kle_election_mine() */
    int           identity_conflict;  /* another live instance holds the
                                         lock in our identity */
    uint64_t      api_requests;
    uint64_t      api_failures;
} kle_elector_status_t;

kle_elector_t *kle_elector_create(const kle_elector_config_t *cfg,
    kle_http_t *http, char *err, size_t errlen);
/* Does what is due now; returns ms until it wants to be called again. */
long kle_elector_run(kle_elector_t *el);
/*
 * Graceful shutdown: cancels what is in flight and, if leading, writes the
 * release record.  Keep calling run() until kle_elector_done().
 */
void kle_elector_release(kle_elector_t *el);
int kle_elector_done(const kle_elector_t *el);
/*
 * For hosts that are exiting and can no longer run their event loop:
 * drops what is in flight and, if leading, writes the release record with
 * a private blocking transport, waiting at most timeout_ms.  0 if released
 * (or nothing to release), -1 if the write failed.
 */
int kle_elector_release_sync(kle_elector_t *el, long timeout_ms);
/*
 * Stops without releasing (a newer process took over the role): cancels
 * what is in flight; run() does nothing more.
 */
void kle_elector_stop(kle_elector_t *el);
void kle_elector_status(const kle_elector_t *el, kle_elector_status_t *st);
void kle_elector_destroy(kle_elector_t *el);

/*
 * Helpers for the elector's companions (kle_events, the kle CLI).
 * kle_escape: server text with its control characters escaped (\xNN), so
 * that no log line can be forged or split.  kle_api_result: an HTTP answer
 * as an API result; no answer at all (code 0) is a transport failure.
 */
void kle_escape(const char *in, char *out, size_t size);
void kle_api_result(const kle_http_response_t *resp, kle_api_result_t *res);


#endif /* KLE_ELECTOR_H */
