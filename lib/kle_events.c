/*
 * Kubernetes Events for started and stopped leading (kle_events.h): the
 * Event's body, and its POSTs, one at a time, never retried.
 */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>

#include "kle_elector.h"
#include "kle_events.h"

#define KLE_EVENTS_QUEUE    4       /* in flight (the first) and waiting */
#define KLE_EVENTS_TIMEOUT  5000    /* ms */
#define KLE_EVENTS_NAME     253     /* a DNS subdomain */

typedef struct {
    kle_http_t       *http;
    char             *url;
    char             *body;
    char              action[32];
} kle_event_t;

struct kle_events_s {
    char             *component;
    kle_creds_t      *creds;
    kle_events_log_pt log;
    void             *data;

    kle_event_t       queue[KLE_EVENTS_QUEUE];   /* [0] is sent first */
    size_t            n;
    kle_http_req_t   *req;          /* queue[0]'s request, NULL if none */

    int               failing;      /* condition last logged: a status */
    int               failing_code; /* and HTTP code; 0, 0: none */
};


static void kle_events_send(kle_events_t *ev);


/* as kle_elector's: server text may hold control characters */
static void
kle_events_log(kle_events_t *ev, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
kle_events_log(kle_events_t *ev, int level, const char *fmt, ...)
{
    char     msg[512], safe[2048];
    va_list  ap;

    if (ev->log == NULL) {
        return;
    }

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    kle_escape(msg, safe, sizeof(safe));

    ev->log(ev->data, level, safe);
}


kle_events_t *
kle_events_create(const char *component, kle_creds_t *creds,
    kle_events_log_pt log, void *data)
{
    kle_events_t  *ev;

    ev = calloc(1, sizeof(kle_events_t));
    if (ev == NULL) {
        return NULL;
    }

    ev->component = strdup(component);
    if (ev->component == NULL) {
        free(ev);
        return NULL;
    }

    ev->creds = creds;
    ev->log = log;
    ev->data = data;

    return ev;
}


/* ObjectReference fields of the kept object, as client-go fills them */
static json_object *
kle_events_involved(const kle_lock_t *lock)
{
    json_object  *ref, *meta, *v;
    const char   *kind, *api;

    if (lock->kind == KLE_LOCK_LEASES) {
        kind = "Lease";
        api = "coordination.k8s.io/v1";

    } else {
        kind = "ConfigMap";
        api = "v1";
    }

    ref = json_object_new_object();
    if (ref == NULL) {
        return NULL;
    }

    json_object_object_add(ref, "kind", json_object_new_string(kind));
    json_object_object_add(ref, "namespace",
                           json_object_new_string(lock->ns));
    json_object_object_add(ref, "name", json_object_new_string(lock->name));

    meta = NULL;
    if (lock->object != NULL) {
        json_object_object_get_ex(lock->object, "metadata", &meta);
    }

    if (meta != NULL && json_object_object_get_ex(meta, "uid", &v)
        && json_object_is_type(v, json_type_string))
    {
        json_object_object_add(ref, "uid", json_object_get(v));
    }

    json_object_object_add(ref, "apiVersion", json_object_new_string(api));

    if (lock->resource_version[0] != '\0') {
        json_object_object_add(ref, "resourceVersion",
                          json_object_new_string(lock->resource_version));
    }

    return ref;
}


char *
kle_events_body(const kle_lock_t *lock, const char *identity,
    const char *action, const char *component, int64_t wall_us)
{
    json_object  *o, *meta, *source;
    char          name[KLE_EVENTS_NAME + 1], when[32], msg[512], *body;
    size_t        len;
    int           n;

    /* client-go's name: the object's, "." and the time in hex ns */

    n = snprintf(name, sizeof(name), ".%llx",
                 (unsigned long long) wall_us * 1000ULL);
    len = strlen(lock->name);
    if (len > KLE_EVENTS_NAME - (size_t) n) {
        len = KLE_EVENTS_NAME - (size_t) n;
    }
    while (len > 0 && (lock->name[len - 1] == '.'
                       || lock->name[len - 1] == '-'))
    {
        len--;
    }
    memmove(name + len, name, (size_t) n + 1);
    memcpy(name, lock->name, len);

    kle_time_format_rfc3339(wall_us, when, sizeof(when));
    snprintf(msg, sizeof(msg), "%s %s", identity, action);

    o = json_object_new_object();
    meta = json_object_new_object();
    source = json_object_new_object();

    if (o == NULL || meta == NULL || source == NULL) {
        json_object_put(o);
        json_object_put(meta);
        json_object_put(source);
        return NULL;
    }

    json_object_object_add(meta, "name", json_object_new_string(name));
    json_object_object_add(meta, "namespace",
                           json_object_new_string(lock->ns));
    json_object_object_add(source, "component",
                           json_object_new_string(component));

    json_object_object_add(o, "apiVersion", json_object_new_string("v1"));
    json_object_object_add(o, "kind", json_object_new_string("Event"));
    json_object_object_add(o, "metadata", meta);
    json_object_object_add(o, "involvedObject", kle_events_involved(lock));
    json_object_object_add(o, "reason",
                           json_object_new_string("LeaderElection"));
    json_object_object_add(o, "message", json_object_new_string(msg));
    json_object_object_add(o, "source", source);
    json_object_object_add(o, "firstTimestamp", json_object_new_string(when));
    json_object_object_add(o, "lastTimestamp", json_object_new_string(when));
    json_object_object_add(o, "count", json_object_new_int(1));
    json_object_object_add(o, "type", json_object_new_string("Normal"));

    body = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);

    return body;
}


static void
kle_events_pop(kle_events_t *ev)
{
    free(ev->queue[0].url);
    free(ev->queue[0].body);

    ev->n--;
    memmove(&ev->queue[0], &ev->queue[1], ev->n * sizeof(kle_event_t));
}


/*
 * Once per change of condition: the first failure of a kind (status and
 * HTTP code), and the first success after failures.
 */
static void
kle_events_note(kle_events_t *ev, const char *action,
    const kle_api_result_t *res)
{
    if (res->status == KLE_API_OK) {
        if (ev->failing != KLE_API_OK) {
            kle_events_log(ev, KLE_LOG_NOTICE, "Events are created again");
            ev->failing = KLE_API_OK;
            ev->failing_code = 0;
        }

        kle_events_log(ev, KLE_LOG_DEBUG, "Event \"%s\" created", action);
        return;
    }

    if (ev->failing == (int) res->status && ev->failing_code == res->code) {
        kle_events_log(ev, KLE_LOG_DEBUG, "Event \"%s\" not created: %s: %s",
                       action, kle_api_status_name(res->status),
                       res->message);
        return;
    }

    ev->failing = res->status;
    ev->failing_code = res->code;

    kle_events_log(ev, KLE_LOG_WARN, "Event \"%s\" not created, and not "
                   "retried: %s%s%.200s%s", action,
                   kle_api_status_name(res->status),
                   res->message[0] ? ": " : "", res->message,
                   res->status == KLE_API_FORBIDDEN
                   ? " (\"events on\" needs the create verb on events "
                     "in the Role)" : "");
}


static void
kle_events_done(const kle_http_response_t *resp, void *data)
{
    kle_events_t      *ev = data;
    kle_api_result_t   res;

    ev->req = NULL;

    kle_api_result(resp, &res);

    kle_events_note(ev, ev->queue[0].action, &res);
    kle_events_pop(ev);
    kle_events_send(ev);
}


/* Sends the first queued Event, unless one is in flight. */
static void
kle_events_send(kle_events_t *ev)
{
    kle_api_result_t  res;

    while (ev->req == NULL && ev->n > 0) {

        ev->req = kle_http_send(ev->queue[0].http, "POST", ev->queue[0].url,
                                ev->queue[0].body, KLE_EVENTS_TIMEOUT,
                                ev->creds, kle_events_done, ev);
        if (ev->req != NULL) {
            return;
        }

        memset(&res, 0, sizeof(res));
        res.status = KLE_API_TRANSPORT;
        snprintf(res.message, sizeof(res.message), "could not start");
        kle_events_note(ev, ev->queue[0].action, &res);
        kle_events_pop(ev);
    }
}


void
kle_events_record(kle_events_t *ev, kle_http_t *http, const kle_lock_t *lock,
    const char *identity, const char *action)
{
    kle_event_t       *e;
    kle_api_result_t   res;
    size_t             size;

    if (ev == NULL || http == NULL) {
        return;
    }

    if (ev->n == KLE_EVENTS_QUEUE) {
        memset(&res, 0, sizeof(res));
        res.status = KLE_API_REJECTED;
        snprintf(res.message, sizeof(res.message), "%d Events still wait "
                 "for an answer", KLE_EVENTS_QUEUE);
        kle_events_note(ev, action, &res);
        return;
    }

    e = &ev->queue[ev->n];
    memset(e, 0, sizeof(kle_event_t));

    size = strlen(ev->creds->server) + sizeof("/api/v1/namespaces//events")
           + strlen(lock->ns);
    e->url = malloc(size);
    e->body = kle_events_body(lock, identity, action, ev->component,
                              kle_wall_us());

    if (e->url == NULL || e->body == NULL) {
        free(e->url);
        free(e->body);
        kle_events_log(ev, KLE_LOG_WARN, "Event \"%s\" not created: out of "
                       "memory", action);
        return;
    }

    snprintf(e->url, size, "%s/api/v1/namespaces/%s/events",
             ev->creds->server, lock->ns);

    e->http = http;
    snprintf(e->action, sizeof(e->action), "%s", action);
    ev->n++;

    kle_events_send(ev);
}


int
kle_events_on(kle_events_t *ev, kle_http_t *http, int cancel)
{
    size_t  i;
    int     n;

    if (ev == NULL) {
        return 0;
    }

    n = 0;
    for (i = 0; i < ev->n; i++) {
        n += ev->queue[i].http == http;
    }

    if (!cancel || n == 0) {
        return n;
    }

    if (ev->req != NULL && ev->queue[0].http == http) {
        kle_http_cancel(http, ev->req);
        ev->req = NULL;
    }

    /* keep the others' order; drop this transport's */

    for (i = 0; i < ev->n; /* void */) {
        if (ev->queue[i].http != http) {
            i++;
            continue;
        }

        free(ev->queue[i].url);
        free(ev->queue[i].body);
        ev->n--;
        memmove(&ev->queue[i], &ev->queue[i + 1],
                (ev->n - i) * sizeof(kle_event_t));
    }

    kle_events_send(ev);

    return n;
}


void
kle_events_destroy(kle_events_t *ev)
{
    if (ev == NULL) {
        return;
    }

    if (ev->req != NULL) {
        kle_http_cancel(ev->queue[0].http, ev->req);
    }

    while (ev->n > 0) {
        kle_events_pop(ev);
    }

    free(ev->component);
    free(ev);
}
