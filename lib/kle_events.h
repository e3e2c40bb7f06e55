/*
 * Kubernetes Events about an election's lock, as client-go's elector
 * records them: a core/v1 Event of type Normal, reason LeaderElection,
 * message "<identity> became leader" or "<identity> stopped leading", about
 * the lock object (involvedObject: its kind, namespace, name, uid,
 * apiVersion and resourceVersion), source.component the election's name.
 *
 * Best effort.  Each Event is one POST to /api/v1/namespaces/NS/events on
 * the election's transport, beside its own requests: one at a time (the
 * transport keeps 4 connections to a server: the watch, a request, the
 * GET after a 410, and this), the next queued behind it.  Never retried;
 * a failure is logged once per change of condition.
 */

#ifndef KLE_EVENTS_H
#define KLE_EVENTS_H

#include <stdint.h>
#include "kle_http.h"
#include "kle_lock.h"

#define KLE_EVENT_BECAME   "became leader"
#define KLE_EVENT_STOPPED  "stopped leading"

typedef struct kle_events_s  kle_events_t;

/* the elector's log callback and levels (KLE_LOG_*) */
typedef void (*kle_events_log_pt)(void *data, int level, const char *msg);

/* component: source.component; creds: borrowed, outlive the recorder */
kle_events_t *kle_events_create(const char *component, kle_creds_t *creds,
    kle_events_log_pt log, void *data);
/*
 * Records "<identity> <action>" about the object lock keeps now (its
 * name and namespace only if it keeps none).  Sent on http at once, or
 * when the Event before it is answered.
 */
void kle_events_record(kle_events_t *ev, kle_http_t *http,
    const kle_lock_t *lock, const char *identity, const char *action);
/* Events in flight or queued on http; cancel: drops them. */
int kle_events_on(kle_events_t *ev, kle_http_t *http, int cancel);
void kle_events_destroy(kle_events_t *ev);

/* The Event's JSON, malloc()ed; at wall_us (unix us).  NULL: no memory. */
char *kle_events_body(const kle_lock_t *lock, const char *identity,
    const char *action, const char *component, int64_t wall_us);

#endif /* KLE_EVENTS_H */
