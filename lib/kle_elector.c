/*
 * Runs the election state machine over the transport: turns its actions
 * into API requests, feeds the answers back, fires callbacks and hooks, and
 * logs each change of condition once.
 */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <json-c/json.h>

#include "kle_elector.h"

#define KLE_HOOKS_MAX     8
#define KLE_HOOK_TIMEOUT  5000    /* ms */
#define KLE_WATCH_SECONDS 290     /* the server ends a watch after this */

typedef struct {
    kle_elector_t         *el;
    kle_http_t            *http;          /* the transport it runs on */
    kle_http_req_t        *req;
    int                    event;
} kle_hook_t;

struct kle_elector_s {
    kle_elector_config_t   cfg;
    char                  *name;
    char                  *hooks[3];      /* started, stopped, new leader */
    kle_election_t         election;
    kle_lock_t             lock;
    kle_http_t            *http;

    kle_http_req_t        *req;           /* the API request in flight */
    kle_action_kind_t      req_kind;
    kle_record_t           req_record;
    kle_hook_t             hook_reqs[KLE_HOOKS_MAX];

    kle_http_req_t        *watch;         /* a follower's watch on the lock */
    int64_t                watch_after;   /* mono ms: none before */
    int                    watch_off;     /* the server refuses watches */

    kle_api_status_t       failing;       /* condition last logged */
    int                    failing_code;
    char                   last_error[256];
    uint64_t               requests;
    uint64_t               failures;
    int                    stopped;
    int                    resume;        /* see kle_elector_config_t */
};

enum { KLE_HOOK_STARTED = 0, KLE_HOOK_STOPPED, KLE_HOOK_NEW_LEADER };

static const char *kle_hook_events[] = {
    "started_leading", "stopped_leading", "new_leader"
};



static void
kle_log(kle_elector_t *el, int level, const char *fmt, ...)
{
    char     msg[512];
    va_list  ap;

    if (el->cfg.log == NULL) {
        return;
    }

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    el->cfg.log(el->cfg.data, level, msg);
}


kle_elector_t *
kle_elector_create(const kle_elector_config_t *cfg, kle_http_t *http,
    char *err, size_t errlen)
{
    kle_elector_t          *el;
    uint64_t                seed;
    size_t                  i;
    const char             *urls[3];
    kle_election_config_t   election;

    urls[KLE_HOOK_STARTED] = cfg->hook_started;
    urls[KLE_HOOK_STOPPED] = cfg->hook_stopped;
    urls[KLE_HOOK_NEW_LEADER] = cfg->hook_new_leader;

    el = calloc(1, sizeof(kle_elector_t));
    if (el == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }

    if (kle_lock_init(&el->lock, cfg->lock_kind, cfg->lock_where, err, errlen)
        != 0)
    {
        free(el);
        return NULL;
    }

    /* the lock decides whether records keep fractions of a second */
    election = cfg->election;
    election.whole_seconds = (el->lock.kind == KLE_LOCK_CONFIGMAPS);

    if (kle_election_config_validate(&election, err, errlen) != 0) {
        free(el);
        return NULL;
    }

    el->cfg = *cfg;
    el->http = http;
    el->resume = cfg->resume;
    el->name = strdup(cfg->name ? cfg->name : "default");
    if (el->name == NULL) {
        goto nomem;
    }

    for (i = 0; i < 3; i++) {
        if (urls[i] != NULL && urls[i][0] != '\0') {
            el->hooks[i] = strdup(urls[i]);
            if (el->hooks[i] == NULL) {
                goto nomem;
            }
        }
    }

    /* the strings were copied; do not keep the caller's pointers */
    el->cfg.name = el->name;
    el->cfg.hook_started = NULL;
    el->cfg.hook_stopped = NULL;
    el->cfg.hook_new_leader = NULL;
    el->cfg.lock_kind = NULL;
    el->cfg.lock_where = NULL;

    seed = (uint64_t) kle_wall_us() ^ ((uint64_t) getpid() << 32)
           ^ (uint64_t) (uintptr_t) el;
    kle_election_init(&el->election, &election, seed);

    return el;

nomem:

    snprintf(err, errlen, "out of memory");
    kle_elector_destroy(el);
    return NULL;
}


/* Hooks: a fire-and-forget POST; a failure is logged, nothing more. */

static void
kle_hook_done(const kle_http_response_t *resp, void *data)
{
    kle_hook_t     *hook = data;
    kle_elector_t  *el = hook->el;

    hook->req = NULL;

    if (resp->code >= 200 && resp->code < 300) {
        kle_log(el, KLE_LOG_DEBUG, "hook %s answered %d",
                kle_hook_events[hook->event], resp->code);
        return;
    }

    if (resp->code != 0) {
        kle_log(el, KLE_LOG_WARN, "hook %s to \"%s\" failed: HTTP %d",
                kle_hook_events[hook->event], el->hooks[hook->event],
                resp->code);
    } else {
        kle_log(el, KLE_LOG_WARN, "hook %s to \"%s\" failed: %s",
                kle_hook_events[hook->event], el->hooks[hook->event],
                resp->error);
    }
}


static void
kle_hook_fire(kle_elector_t *el, int event)
{
    const kle_record_t  *rec = &el->election.observed;
    kle_hook_t          *hook = NULL;
    json_object         *o;
    char                 when[32];
    size_t               i;

    if (el->hooks[event] == NULL || el->http == NULL) {
        return;
    }

    for (i = 0; i < KLE_HOOKS_MAX; i++) {
        if (el->hook_reqs[i].req == NULL) {
            hook = &el->hook_reqs[i];
            break;
        }
    }

    if (hook == NULL) {
        kle_log(el, KLE_LOG_WARN, "hook %s skipped: %d hooks still running",
                kle_hook_events[event], KLE_HOOKS_MAX);
        return;
    }

    kle_time_format_micro(kle_wall_us(), when, sizeof(when));

    o = json_object_new_object();
    if (o == NULL) {
        return;
    }

    json_object_object_add(o, "event",
                           json_object_new_string(kle_hook_events[event]));
    json_object_object_add(o, "election", json_object_new_string(el->name));
    json_object_object_add(o, "identity",
                      json_object_new_string(el->election.cfg.identity));
    json_object_object_add(o, "holder", json_object_new_string(rec->holder));
    json_object_object_add(o, "transitions",
                           json_object_new_int(rec->transitions));
    json_object_object_add(o, "time", json_object_new_string(when));

    hook->el = el;
    hook->http = el->http;
    hook->event = event;
    hook->req = kle_http_send(el->http, "POST", el->hooks[event],
                         json_object_to_json_string_ext(o,
                                                        JSON_C_TO_STRING_PLAIN),
                         KLE_HOOK_TIMEOUT, NULL, kle_hook_done, hook);
    json_object_put(o);

    if (hook->req == NULL) {
        kle_log(el, KLE_LOG_WARN, "hook %s to \"%s\" could not start",
                kle_hook_events[event], el->hooks[event]);
    }
}


/* The state machine's events become callbacks, hooks and log lines. */

static void
kle_elector_events(kle_elector_t *el, unsigned ev)
{
    const kle_elector_config_t  *cfg = &el->cfg;
    const kle_record_t          *rec = &el->election.observed;
    int                          quiet = 0;

    /* resuming our own claim: hooks were sent by the process before */

    if (el->resume && (ev & (KLE_EV_NEW_LEADER | KLE_EV_STARTED_LEADING))) {
        quiet = (strcmp(rec->holder, el->election.cfg.identity) == 0);
        if (!quiet || (ev & KLE_EV_STARTED_LEADING)) {
            el->resume = 0;
        }
    }

    /* in the order they happen: step down, see the holder, lead */

    if (ev & KLE_EV_STOPPED_LEADING) {
        kle_log(el, KLE_LOG_NOTICE, "stopped leading");
        if (cfg->on_stopped_leading) {
            cfg->on_stopped_leading(cfg->data);
        }
        kle_hook_fire(el, KLE_HOOK_STOPPED);
    }

    if (ev & KLE_EV_NEW_LEADER) {
        if (rec->holder[0]) {
            kle_log(el, KLE_LOG_INFO, "leader is now \"%s\" (transitions %d)",
                    rec->holder, (int) rec->transitions);
        } else {
            kle_log(el, KLE_LOG_INFO, "no leader: the lock is free");
        }
        if (cfg->on_new_leader) {
            cfg->on_new_leader(rec->holder, cfg->data);
        }
        if (!quiet) {
            kle_hook_fire(el, KLE_HOOK_NEW_LEADER);
        }
    }

    if (ev & KLE_EV_STARTED_LEADING) {
        kle_log(el, KLE_LOG_NOTICE, "started leading (transitions %d)",
                (int) rec->transitions);
        if (cfg->on_started_leading) {
            cfg->on_started_leading(cfg->data);
        }
        if (!quiet) {
            kle_hook_fire(el, KLE_HOOK_STARTED);
        }
    }

    if (ev && cfg->on_change) {
        cfg->on_change(cfg->data);
    }
}


/*
 * Errors are logged once per change of condition (the kind of failure and
 * its HTTP code), not on every retry; lost races only at debug level.
 * Called once the state machine has taken the answer: a GET that only
 * leads to a write does not end a failure, the write's answer does.
 */
static void
kle_elector_note(kle_elector_t *el, const kle_api_result_t *res,
    const char *what)
{
    int  level;

    if (res->status == KLE_API_OK
        || (res->status == KLE_API_NOT_FOUND && el->req_kind == KLE_DO_GET))
    {
        if (el->req_kind == KLE_DO_GET
            && el->election.pending != KLE_DO_NOTHING)
        {
            return;
        }

        if (el->failing != KLE_API_OK) {
            kle_log(el, KLE_LOG_NOTICE, "API server requests succeed again");
            el->failing = KLE_API_OK;
            el->failing_code = 0;
        }

        el->last_error[0] = '\0';
        return;
    }

    if (res->status == KLE_API_CONFLICT
        || res->status == KLE_API_ALREADY_EXISTS)
    {
        kle_log(el, KLE_LOG_DEBUG, "%s lost a race: %s", what, res->message);
        return;
    }

    el->failures++;
    snprintf(el->last_error, sizeof(el->last_error), "%s: %s%s%.200s", what,
             kle_api_status_name(res->status), res->message[0] ? ": " : "",
             res->message);

    if (el->failing == res->status && el->failing_code == res->code) {
        kle_log(el, KLE_LOG_DEBUG, "%s", el->last_error);
        return;
    }

    el->failing = res->status;
    el->failing_code = res->code;

    switch (res->status) {
    case KLE_API_FORBIDDEN:
        kle_log(el, KLE_LOG_ERR, "%s (check RBAC, the Role and RoleBinding: "
                "the service account needs get, create and update on %s)",
                el->last_error, kle_lock_kind_name(el->lock.kind));
        return;
    case KLE_API_UNAUTHORIZED:
        level = KLE_LOG_ERR;
        break;
    default:
        level = KLE_LOG_WARN;
    }

    kle_log(el, level, "%s", el->last_error);
}


static void kle_elector_answer(const kle_http_response_t *resp, void *data);


static int
kle_elector_send(kle_elector_t *el, const kle_action_t *act)
{
    const char  *method;
    char        *body = NULL;
    char         path[512], url[1024];
    int          rc;

    switch (act->kind) {
    case KLE_DO_GET:
        method = "GET";
        rc = kle_lock_object_path(&el->lock, path, sizeof(path));
        break;
    case KLE_DO_CREATE:
        method = "POST";
        rc = kle_lock_collection_path(&el->lock, path, sizeof(path));
        body = kle_lock_create_body(&el->lock, &act->record);
        break;
    default:
        method = "PUT";
        rc = kle_lock_object_path(&el->lock, path, sizeof(path));
        body = kle_lock_update_body(&el->lock, &act->record, act->rv);
        break;
    }

    if (rc != 0 || (act->kind != KLE_DO_GET && body == NULL)) {
        free(body);
        return -1;
    }

    snprintf(url, sizeof(url), "%s%s", el->cfg.creds->server, path);

    el->req_kind = act->kind;
    el->req_record = act->record;
    el->req = kle_http_send(el->http, method, url, body, (long) act->timeout,
                            el->cfg.creds, kle_elector_answer, el);
    free(body);

    if (el->req == NULL) {
        return -1;
    }

    el->requests++;
    return 0;
}


static const char *
kle_elector_what(kle_action_kind_t kind)
{
    switch (kind) {
    case KLE_DO_GET:
        return "get lock";
    case KLE_DO_CREATE:
        return "create lock";
    default:
        return "update lock";
    }
}


static void
kle_elector_answer(const kle_http_response_t *resp, void *data)
{
    kle_elector_t     *el = data;
    kle_api_result_t   res;
    kle_record_t       rec;
    const kle_record_t *got = NULL;
    char               err[256];
    unsigned           ev;
    long               next;

    el->req = NULL;

    if (resp->code == 0) {
        memset(&res, 0, sizeof(res));
        res.status = KLE_API_TRANSPORT;
        snprintf(res.message, sizeof(res.message), "%s",
                 resp->error ? resp->error : "no answer");
    } else {
        kle_api_classify(resp->code, resp->body, resp->body_len,
                         resp->retry_after, &res);
    }

    if (res.status == KLE_API_OK) {
        if (kle_lock_read(&el->lock, resp->body, resp->body_len, &rec, err,
                          sizeof(err)) == 0)
        {
            got = &rec;
        } else {
            res.status = KLE_API_BAD_RESPONSE;
            snprintf(res.message, sizeof(res.message), "%s", err);
        }
    }

    if (res.status == KLE_API_UNAUTHORIZED) {
        /* a projected token may have rotated: read it again now */
        kle_creds_token(el->cfg.creds, kle_now_ms(), 1);
    }

    ev = kle_election_on_result(&el->election, kle_now_ms(), res.status, got,
                                got ? el->lock.resource_version : NULL,
                                res.retry_after);
    kle_elector_note(el, &res, kle_elector_what(el->req_kind));
    kle_elector_events(el, ev | KLE_EV_CHANGED);

    next = kle_elector_run(el);

    if (el->cfg.schedule) {
        el->cfg.schedule(el->cfg.data, next);
    }
}


/*
 * Followers watch the lock so that a release or a change is seen at once
 * rather than at the next poll.  Polling goes on regardless: the watch
 * only brings observations forward, it decides nothing.
 */
static void
kle_elector_watch_line(const char *line, size_t len, void *data)
{
    kle_elector_t  *el = data;
    json_object    *ev, *type, *obj;
    kle_record_t    rec;
    const char     *t, *body;
    char            err[256];
    unsigned        events;

    ev = json_tokener_parse(line);
    (void) len;

    if (ev == NULL
        || !json_object_object_get_ex(ev, "type", &type)
        || !json_object_is_type(type, json_type_string)
        || !json_object_object_get_ex(ev, "object", &obj))
    {
        kle_log(el, KLE_LOG_DEBUG, "watch: ignoring a malformed event");
        json_object_put(ev);
        return;
    }

    t = json_object_get_string(type);

    if (strcmp(t, "ADDED") == 0 || strcmp(t, "MODIFIED") == 0) {
        body = json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN);
        if (kle_lock_read(&el->lock, body, strlen(body), &rec, err,
                          sizeof(err)) != 0)
        {
            kle_log(el, KLE_LOG_DEBUG, "watch: %s", err);
            json_object_put(ev);
            return;
        }

    } else if (strcmp(t, "DELETED") == 0) {
        json_object_put(ev);
        events = kle_election_observe(&el->election, kle_now_ms(), NULL,
                                      NULL);
        kle_elector_events(el, events);

        if (el->cfg.schedule) {
            el->cfg.schedule(el->cfg.data, kle_elector_run(el));
        }
        return;

    } else {
        /* ERROR (410 Expired: the version is too old) or BOOKMARK */
        json_object_put(ev);
        if (strcmp(t, "ERROR") == 0 && el->watch != NULL) {
            kle_http_cancel(el->http, el->watch);
            el->watch = NULL;
            el->watch_after = kle_now_ms() + el->election.cfg.retry_period;
        }
        return;
    }

    json_object_put(ev);

    events = kle_election_observe(&el->election, kle_now_ms(), &rec,
                                  el->lock.resource_version);
    kle_elector_events(el, events);

    if (el->cfg.schedule) {
        el->cfg.schedule(el->cfg.data, kle_elector_run(el));
    }
}


static void
kle_elector_watch_done(const kle_http_response_t *resp, void *data)
{
    kle_elector_t  *el = data;

    el->watch = NULL;

    if (resp->code == 200) {
        el->watch_after = 0;                 /* ended by the server */

    } else if (resp->code == 400 || resp->code == 403 || resp->code == 404
               || resp->code == 405)
    {
        el->watch_off = 1;
        kle_log(el, KLE_LOG_NOTICE, "watching the lock was refused (HTTP %d)"
                "; following by polling only", resp->code);
        return;

    } else {
        el->watch_after = kle_now_ms() + el->election.cfg.retry_period;
    }

    if (el->cfg.schedule) {
        el->cfg.schedule(el->cfg.data, kle_elector_run(el));
    }
}


static void
kle_elector_watch(kle_elector_t *el, int64_t now)
{
    char  path[768], url[1024];

    if (el->election.state != KLE_STATE_FOLLOWING) {
        if (el->watch != NULL) {
            kle_http_cancel(el->http, el->watch);
            el->watch = NULL;
        }
        return;
    }

    if (el->watch != NULL || el->watch_off || now < el->watch_after
        || el->lock.resource_version[0] == '\0'
        || kle_lock_watch_path(&el->lock, el->lock.resource_version, path,
                               sizeof(path)) != 0)
    {
        return;
    }

    snprintf(url, sizeof(url), "%s%s&timeoutSeconds=%d",
             el->cfg.creds->server, path, KLE_WATCH_SECONDS);

    el->watch = kle_http_watch(el->http, url, (KLE_WATCH_SECONDS + 10) * 1000L,
                               el->cfg.creds, kle_elector_watch_line,
                               kle_elector_watch_done, el);
    if (el->watch == NULL) {
        el->watch_after = now + el->election.cfg.retry_period;
        return;
    }

    el->requests++;
}


long
kle_elector_run(kle_elector_t *el)
{
    kle_election_t  *e = &el->election;
    kle_action_t     act;
    unsigned         ev;
    int64_t          now, wait;

    for ( ;; ) {
        if (el->stopped || el->http == NULL) {
            return -1;
        }

        now = kle_now_ms();
        ev = kle_election_next(e, now, kle_wall_us(), &act);
        kle_elector_events(el, ev);
        kle_elector_watch(el, now);

        switch (act.kind) {

        case KLE_DO_NOTHING:
            if (e->state == KLE_STATE_LEADING) {
                /* wake when leadership lapses if the answer is late */
                wait = e->renew_start + e->cfg.renew_deadline - now;
                return wait > 0 ? (long) wait : 0;
            }
            return -1;

        case KLE_DO_WAIT:
            wait = act.until - now;
            return wait > 0 ? (long) wait : 0;

        default:
            if (kle_elector_send(el, &act) == 0) {
                continue;
            }

            kle_log(el, KLE_LOG_ERR, "%s: could not start the request",
                    kle_elector_what(act.kind));
            ev = kle_election_on_result(e, now, KLE_API_TRANSPORT, NULL,
                                        NULL, 0);
            kle_elector_events(el, ev | KLE_EV_CHANGED);
        }
    }
}


/* Drops the API request and the watch in flight. */
static void
kle_elector_cancel(kle_elector_t *el)
{
    if (el->req != NULL) {
        kle_http_cancel(el->http, el->req);
        el->req = NULL;
    }

    if (el->watch != NULL) {
        kle_http_cancel(el->http, el->watch);
        el->watch = NULL;
    }
}


void
kle_elector_release(kle_elector_t *el)
{
    kle_elector_cancel(el);

    kle_election_release(&el->election);
}


int
kle_elector_done(const kle_elector_t *el)
{
    return el->stopped || el->election.state == KLE_STATE_RELEASED;
}


/* Counts (or cancels) the hook requests running on transport h. */
static int
kle_elector_hooks_on(kle_elector_t *el, kle_http_t *h, int cancel)
{
    size_t  i;
    int     n = 0;

    for (i = 0; i < KLE_HOOKS_MAX; i++) {
        if (el->hook_reqs[i].req != NULL && el->hook_reqs[i].http == h) {
            n++;
            if (cancel) {
                kle_http_cancel(h, el->hook_reqs[i].req);
                el->hook_reqs[i].req = NULL;
            }
        }
    }

    return n;
}


int
kle_elector_release_sync(kle_elector_t *el, long timeout_ms)
{
    kle_http_t  *saved, *own;
    int64_t      deadline;
    long         next;

    kle_elector_release(el);

    own = kle_http_create(NULL);
    if (own == NULL) {
        return -1;
    }

    saved = el->http;
    el->http = own;
    deadline = kle_now_ms() + timeout_ms;

    while (!kle_elector_done(el) && kle_now_ms() < deadline) {
        next = kle_elector_run(el);
        if (kle_elector_done(el)) {
            break;
        }
        if (next < 0 || next > deadline - kle_now_ms()) {
            next = (long) (deadline - kle_now_ms());
        }
        kle_http_poll(own, next > 0 ? next : 1);
    }

    if (el->req != NULL) {
        kle_http_cancel(own, el->req);
        el->req = NULL;
    }

    /* give the stopped_leading hook the time that is left, then drop it */
    while (kle_elector_hooks_on(el, own, 0) && kle_now_ms() < deadline) {
        kle_http_poll(own, (long) (deadline - kle_now_ms()));
    }
    kle_elector_hooks_on(el, own, 1);

    el->http = saved;
    kle_http_destroy(own);

    return (kle_elector_done(el) && el->last_error[0] == '\0') ? 0 : -1;
}


void
kle_elector_stop(kle_elector_t *el)
{
    kle_elector_cancel(el);
    el->stopped = 1;
}


void
kle_elector_status(const kle_elector_t *el, kle_elector_status_t *st)
{
    const kle_election_t  *e = &el->election;

    memset(st, 0, sizeof(*st));
    st->state = e->state;
    st->is_leader = kle_election_is_leader(e, kle_now_ms());
    st->record = e->observed;
    st->renew_start = e->state == KLE_STATE_LEADING ? e->renew_start : 0;

    st->claim_until = kle_election_claim_until(e);
    st->term = kle_election_term(e);
    snprintf(st->last_error, sizeof(st->last_error), "%s", el->last_error);
    st->api_requests = el->requests;
    st->api_failures = el->failures;
}


void
kle_elector_destroy(kle_elector_t *el)
{
    size_t  i;

    if (el == NULL) {
        return;
    }

    if (el->http != NULL) {
        kle_elector_cancel(el);
    }

    for (i = 0; i < KLE_HOOKS_MAX; i++) {
        if (el->hook_reqs[i].req != NULL) {
            kle_http_cancel(el->hook_reqs[i].http, el->hook_reqs[i].req);
        }
    }

    kle_lock_free(&el->lock);
    free(el->name);
    for (i = 0; i < 3; i++) {
        free(el->hooks[i]);
    }
    free(el);
}
