/*
 * Runs the election state machine over the transport: turns its actions
 * into API requests, feeds the answers and the watch's events back, fires
 * callbacks and hooks, and logs each change of condition once.
 *
 * The lock keeps exactly the object whose resourceVersion the state
 * machine holds: after each answer or event, it is kept only if the state
 * machine took it (its observed version is now this one), so an update
 * body is always built on the object the decision was judged on.
 */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <json-c/json.h>

#include "kle_elector.h"
#include "kle_events.h"
#include "kle_exec.h"

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
    kle_hook_t             hook_reqs[KLE_HOOKS_MAX];

    /*
     * One watch on the lock, for followers and the leader alike, resumed
     * from the last version it showed.  After a 410 one GET (relist)
     * gives the version to watch from again.
     */
    kle_http_req_t        *watch;
    int                    watch_open;    /* its 200 came: established */
    char                   watch_rv[KLE_RV_MAX];  /* resume from; "": now */
    int64_t                watch_start;   /* mono ms */
    int64_t                event_at;      /* mono ms of the last change */
    int64_t                event_gap;     /* ms between the last two, 0 */
    int64_t                watch_after;   /* mono ms: none before */
    int64_t                watch_backoff; /* ms, after a failed watch */
    int                    watch_refused; /* logged; told when it works */
    kle_http_req_t        *relist;        /* the GET after a 410 */
    int64_t                relist_at;     /* mono ms it was sent */
    int                    relist_wanted;

    kle_api_status_t       failing;       /* condition last logged */
    int                    failing_code;
    char                   last_error[256];
    char                   token_error[256];  /* last one logged */
    uint64_t               requests;
    uint64_t               failures;
    int                    stopped;
    int                    resume;        /* see kle_elector_config_t */

    kle_events_t          *events;        /* "events on", else NULL */

    kle_exec_t            *exec;          /* the credential plugin, or NULL */
    int                    creds_ready;   /* requests may be sent */
};

enum { KLE_HOOK_STARTED = 0, KLE_HOOK_STOPPED, KLE_HOOK_NEW_LEADER };

static const char *kle_hook_events[] = {
    "started_leading", "stopped_leading", "new_leader"
};


static void kle_elector_answer(const kle_http_response_t *resp, void *data);
static void kle_elector_schedule(kle_elector_t *el);
static void kle_elector_exec_done(void *data);
static void kle_elector_exec_note(kle_elector_t *el);
static void kle_elector_exec_log(void *data, int level, const char *msg);


/*
 * Server text (holders, Status messages) may hold anything: control
 * characters are escaped so that no line can be forged or split.
 */
void
kle_escape(const char *in, char *out, size_t size)
{
    size_t         n;
    unsigned char  c;

    for (n = 0; *in != '\0' && n + 5 < size; in++) {
        c = (unsigned char) *in;
        if (c < 0x20 || c == 0x7f) {
            n += snprintf(out + n, size - n, "\\x%02x", c);
        } else {
            out[n++] = (char) c;
        }
    }

    out[n] = '\0';
}


void
kle_api_result(const kle_http_response_t *resp, kle_api_result_t *res)
{
    if (resp->code != 0) {
        kle_api_classify(resp->code, resp->body, resp->body_len,
                         resp->retry_after, res);
        return;
    }

    memset(res, 0, sizeof(*res));
    res->status = KLE_API_TRANSPORT;
    snprintf(res->message, sizeof(res->message), "%s",
             resp->error ? resp->error : "no answer");
}


static void
kle_log(kle_elector_t *el, int level, const char *fmt, ...)
{
    char     msg[512], safe[2048];
    va_list  ap;

    if (el->cfg.log == NULL) {
        return;
    }

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    kle_escape(msg, safe, sizeof(safe));

    el->cfg.log(el->cfg.data, level, safe);
}


/* A URL as logs show it: without the userinfo it may carry. */
static const char *
kle_url_text(const char *url, char *buf, size_t size)
{
    const char  *auth, *end, *at;

    auth = strstr(url, "://");
    auth = auth ? auth + 3 : url;
    end = auth + strcspn(auth, "/?#");

    at = NULL;
    for (end--; end >= auth; end--) {
        if (*end == '@') {
            at = end;
            break;
        }
    }

    if (at == NULL) {
        snprintf(buf, size, "%s", url);

    } else {
        snprintf(buf, size, "%.*s%s", (int) (auth - url), url, at + 1);
    }

    return buf;
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

    if (cfg->events) {
        el->events = kle_events_create(el->name, cfg->creds, cfg->log,
                                       cfg->data);
        if (el->events == NULL) {
            goto nomem;
        }
    }

    if (cfg->creds->exec != NULL && http != NULL) {
        kle_exec_config_t  xc;

        memset(&xc, 0, sizeof(xc));
        xc.creds = cfg->creds;
        xc.http = http;
        xc.backoff_ms = (long) election.retry_period;
        xc.done = kle_elector_exec_done;
        xc.log = kle_elector_exec_log;
        xc.data = el;

        el->exec = kle_exec_create(&xc);
        if (el->exec == NULL) {
            goto nomem;
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
    char            url[1024];

    hook->req = NULL;

    if (resp->code >= 200 && resp->code < 300) {
        kle_log(el, KLE_LOG_DEBUG, "hook %s answered %d",
                kle_hook_events[hook->event], resp->code);
        return;
    }

    kle_url_text(el->hooks[hook->event], url, sizeof(url));

    if (resp->code != 0) {
        kle_log(el, KLE_LOG_WARN, "hook %s to \"%s\" failed: HTTP %d",
                kle_hook_events[hook->event], url, resp->code);
    } else {
        kle_log(el, KLE_LOG_WARN, "hook %s to \"%s\" failed: %s",
                kle_hook_events[hook->event], url, resp->error);
    }
}


static void
kle_hook_fire(kle_elector_t *el, int event)
{
    const kle_record_t  *rec = &el->election.observed;
    kle_hook_t          *hook = NULL;
    json_object         *o;
    char                 when[32], url[1024];
    size_t               i;

    if (el->hooks[event] == NULL || el->http == NULL || el->stopped) {
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
                kle_hook_events[event],
                kle_url_text(el->hooks[event], url, sizeof(url)));
    }
}


/*
 * Kubernetes Events ("events on", kle_events.c): sent beside the hooks,
 * on the same transport as the requests, but never waited for.
 */
static void
kle_elector_record(kle_elector_t *el, const char *action)
{
    if (el->events != NULL && el->http != NULL && !el->stopped) {
        kle_events_record(el->events, el->http, &el->lock,
                          el->election.cfg.identity, action);
    }
}


static void kle_elector_watch_restart(kle_elector_t *el, const char *rv);


/*
 * Another instance in our identity: a clash is an error, once per episode
 * (the state machine reports each change of what it makes of it).
 */
static void
kle_elector_twin(kle_elector_t *el)
{
    const char  *id = el->election.cfg.identity;

    switch (kle_election_twin(&el->election)) {

    case KLE_TWIN_WAIT:
        kle_log(el, KLE_LOG_NOTICE, "the lock names identity \"%s\" but "
                "another instance wrote it (instance %s): waiting for it "
                "to expire", id, el->election.observed.instance);
        break;

    case KLE_TWIN_PREDECESSOR:
        kle_log(el, KLE_LOG_NOTICE, "the previous nginx master (instance "
                "%s, binary upgrade) holds identity \"%s\": waiting for "
                "it to release or expire", el->election.observed.instance,
                id);
        break;

    case KLE_TWIN_CONFLICT:
        kle_log(el, KLE_LOG_ERR, "identity conflict: another instance "
                "(%s) holds the lock as \"%s\", this instance's identity; "
                "give each instance its own identity; this one does not "
                "lead while the other renews",
                el->election.observed.instance, id);
        break;

    case KLE_TWIN_NONE:
        break;
    }
}


/*
 * The state machine's events become callbacks, hooks and log lines.  A
 * callback may stop the elector: nothing more is done then.
 */
static void
kle_elector_events(kle_elector_t *el, unsigned ev)
{
    const kle_elector_config_t  *cfg = &el->cfg;
    const kle_record_t          *rec = &el->election.observed;
    int                          quiet = 0;

    if (el->stopped) {
        return;
    }

    /* resuming our own claim: hooks were sent by the process before */

    if (el->resume && (ev & (KLE_EV_NEW_LEADER | KLE_EV_STARTED_LEADING))) {
        quiet = kle_election_mine(&el->election, rec);
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
        kle_elector_record(el, KLE_EVENT_STOPPED);
    }

    if (el->stopped) {
        return;
    }

    if (ev & KLE_EV_TWIN) {
        kle_elector_twin(el);
    }

    if (ev & KLE_EV_EXHAUSTED) {
        kle_log(el, KLE_LOG_ERR, "the lock's transitions are at 2147483647: "
                "a new term could not get a greater fencing token, so "
                "none is taken; delete the lock object to start again "
                "from 0 (and reset what the guarded system remembers)");
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

    if (el->stopped) {
        return;
    }

    if (ev & KLE_EV_STARTED_LEADING) {
        /*
         * Watch again from the write that made us leader: an older watch
         * may still deliver events from before it, which would look like
         * another holder's.
         */
        kle_elector_watch_restart(el, el->election.observed_rv);

        kle_log(el, KLE_LOG_NOTICE, "started leading (transitions %d)",
                (int) rec->transitions);
        if (cfg->on_started_leading) {
            cfg->on_started_leading(cfg->data);
        }
        if (!quiet) {
            kle_hook_fire(el, KLE_HOOK_STARTED);
            kle_elector_record(el, KLE_EVENT_BECAME);
        }
    }

    if (ev && cfg->on_change && !el->stopped) {
        cfg->on_change(cfg->data);
    }
}


/* The reason the token file could not be read, once per change. */
static void
kle_elector_token_note(kle_elector_t *el)
{
    const char  *why;

    why = el->cfg.creds ? el->cfg.creds->token_error : "";

    if (strcmp(why, el->token_error) == 0) {
        return;
    }

    if (why[0] != '\0') {
        kle_log(el, KLE_LOG_ERR, "reading the token failed, the last one is "
                "used: %s", why);

    } else {
        kle_log(el, KLE_LOG_NOTICE, "the token is read again");
    }

    snprintf(el->token_error, sizeof(el->token_error), "%s", why);
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
    int   level;
    char  text[256];

    kle_elector_token_note(el);

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
    snprintf(text, sizeof(text), "%s: %s%s%.200s", what,
             kle_api_status_name(res->status), res->message[0] ? ": " : "",
             res->message);
    kle_escape(text, el->last_error, sizeof(el->last_error));

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


/* The API server URL of path, into url; -1 if it does not fit. */
static int
kle_elector_url(kle_elector_t *el, const char *path, char *url, size_t size)
{
    int  n;

    n = snprintf(url, size, "%s%s", el->cfg.creds->server, path);

    return (n < 0 || (size_t) n >= size) ? -1 : 0;
}


static int
kle_elector_send(kle_elector_t *el, const kle_action_t *act)
{
    const char  *method;
    char        *body = NULL;
    char         path[512], url[1024];
    int          rc;

    if (el->stopped) {
        return -1;
    }

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

    if (rc != 0 || (act->kind != KLE_DO_GET && body == NULL)
        || kle_elector_url(el, path, url, sizeof(url)) != 0)
    {
        free(body);
        return -1;
    }

    el->req_kind = act->kind;
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


/*
 * An answer as the state machine takes it: res, and for a 2xx the record,
 * its version and the parsed object (*obj, to put) in one parse.
 */
static const kle_record_t *
kle_elector_read(kle_elector_t *el, const kle_http_response_t *resp,
    kle_api_result_t *res, kle_record_t *rec, char *rv, json_object **obj)
{
    char  err[256];

    *obj = NULL;

    if (resp->code < 200 || resp->code >= 300) {
        kle_api_result(resp, res);
        return NULL;
    }

    memset(res, 0, sizeof(*res));
    res->code = resp->code;

    *obj = kle_lock_parse_body(&el->lock, resp->body, resp->body_len, err,
                               sizeof(err));
    if (*obj != NULL
        && kle_lock_parse(&el->lock, *obj, rec, rv, err, sizeof(err)) == 0)
    {
        res->status = KLE_API_OK;
        return rec;
    }

    json_object_put(*obj);
    *obj = NULL;
    res->status = KLE_API_BAD_RESPONSE;
    snprintf(res->message, sizeof(res->message), "%s", err);

    return NULL;
}


/* Keeps obj if the state machine now holds its version. */
static void
kle_elector_keep(kle_elector_t *el, json_object *obj, const char *rv)
{
    if (obj != NULL && strcmp(el->election.observed_rv, rv) == 0) {
        kle_lock_keep(&el->lock, obj, rv);
    }
}


static void
kle_elector_answer(const kle_http_response_t *resp, void *data)
{
    kle_elector_t       *el = data;
    kle_api_result_t     res;
    kle_record_t         rec;
    const kle_record_t  *got;
    json_object         *obj;
    char                 rv[KLE_RV_MAX];
    unsigned             ev;

    el->req = NULL;

    if (el->stopped) {
        return;
    }

    got = kle_elector_read(el, resp, &res, &rec, rv, &obj);

    if (res.status == KLE_API_UNAUTHORIZED) {
        /* a projected token may have rotated: read it again now */
        kle_creds_token(el->cfg.creds, kle_now_ms(), 1);

        /* the plugin's credential was refused: run it again, as client-go */
        if (el->exec != NULL) {
            kle_exec_refused(el->exec, el->election.request_start);
        }
    }

    ev = kle_election_on_result(&el->election, kle_now_ms(), res.status, got,
                                got ? rv : NULL, res.retry_after);
    if (got != NULL) {
        kle_elector_keep(el, obj, rv);

        /* no watch running: the next one starts from this read */
        if (el->watch == NULL && el->relist == NULL) {
            memcpy(el->watch_rv, rv, sizeof(el->watch_rv));
            el->relist_wanted = 0;
        }
    }
    json_object_put(obj);

    kle_elector_note(el, &res, kle_elector_what(el->req_kind));
    kle_elector_events(el, ev | KLE_EV_CHANGED);

    kle_elector_schedule(el);
}


/* Runs what is due and tells the host when to call again. */
static void
kle_elector_schedule(kle_elector_t *el)
{
    long  next;

    if (el->stopped) {
        return;
    }

    next = kle_elector_run(el);

    if (el->cfg.schedule && !el->stopped) {
        el->cfg.schedule(el->cfg.data, next);
    }
}


/*
 * A 410: list again, then watch.  At most once per retry period, so that
 * a server that keeps answering 410 is not asked in a loop.
 */
static void
kle_elector_relist(kle_elector_t *el)
{
    el->relist_wanted = 1;

    if (el->relist_at != 0) {
        el->watch_after = el->relist_at + el->election.cfg.retry_period;
    }
}


/* The watch is down: the state machine goes back to polling. */
static void
kle_elector_watch_closed(kle_elector_t *el)
{
    unsigned  ev;

    if (!el->watch_open) {
        return;
    }

    el->watch_open = 0;
    ev = kle_election_watching(&el->election, kle_now_ms(), 0);
    kle_elector_events(el, ev);
}


static void
kle_elector_watch_cancel(kle_elector_t *el)
{
    if (el->watch != NULL) {
        kle_http_cancel(el->http, el->watch);
        el->watch = NULL;
    }

    if (el->relist != NULL) {
        kle_http_cancel(el->http, el->relist);
        el->relist = NULL;
    }
}


static void
kle_elector_watch_restart(kle_elector_t *el, const char *rv)
{
    kle_elector_watch_cancel(el);
    kle_elector_watch_closed(el);

    memcpy(el->watch_rv, rv, sizeof(el->watch_rv));
    el->relist_wanted = 0;
    el->watch_after = 0;
}


/*
 * A failed watch is tried again after a backoff that doubles from a
 * quarter of a retry period up to one: a refusal right after an API
 * server restart passes soon.
 */
static void
kle_elector_watch_later(kle_elector_t *el, int64_t now)
{
    int64_t  rp = el->election.cfg.retry_period;

    el->watch_backoff = el->watch_backoff == 0 ? rp / 4
                                               : el->watch_backoff * 2;
    if (el->watch_backoff > rp || el->watch_backoff <= 0) {
        el->watch_backoff = rp;
    }

    el->watch_after = now + el->watch_backoff;
}


/*
 * A watch that heard nothing (not a byte) for a renew deadline, while
 * another holder's lease runs and that holder was last seen writing more
 * often than that, is taken for dead.  A middlebox that lost the
 * connection (NAT, conntrack, an L4 balancer) may hold it open with no
 * FIN and no RST, so the transport gives up its connections and the watch
 * starts again on a new one.  With no holder, its lease run out, ourselves
 * holding (a failing renewal retires the connections itself) or a quiet
 * lock, silence is normal; a watch not answered at all is dead all the
 * same.  The mono ms this watch would be judged dead at, 0 if never.
 */
static int64_t
kle_elector_watch_deadline(kle_elector_t *el)
{
    const kle_election_t  *e = &el->election;

    if (el->watch == NULL) {
        return 0;
    }

    if (el->watch_open
        && (e->observed.holder[0] == '\0'
            || kle_record_names(&e->observed, e->cfg.identity)
            || el->event_gap == 0
            || el->event_gap >= e->cfg.renew_deadline
            || e->observed_time + e->observed.lease_duration * 1000LL
               <= kle_now_ms()))
    {
        return 0;
    }

    return kle_http_heard(el->watch) + e->cfg.renew_deadline;
}


static void
kle_elector_watch_check(kle_elector_t *el, int64_t now)
{
    int64_t  dead;

    dead = kle_elector_watch_deadline(el);
    if (dead == 0 || now < dead) {
        return;
    }

    kle_log(el, KLE_LOG_INFO, "the watch heard nothing for %lld ms while "
            "the lock is held: watching again on a new connection",
            (long long) (now - kle_http_heard(el->watch)));

    kle_http_cancel(el->http, el->watch);
    el->watch = NULL;
    (void) kle_http_retire(el->http);

    kle_elector_watch_closed(el);
    el->watch_after = 0;
}


static void
kle_elector_watch_open(void *data)
{
    kle_elector_t  *el = data;
    unsigned        ev;

    if (el->stopped) {
        return;
    }

    el->watch_open = 1;
    el->watch_backoff = 0;

    if (el->watch_refused) {
        el->watch_refused = 0;
        kle_log(el, KLE_LOG_NOTICE, "watching the lock again");
    }

    kle_log(el, KLE_LOG_DEBUG, "watching the lock from version \"%s\"",
            el->watch_rv);

    ev = kle_election_watching(&el->election, kle_now_ms(), 1);
    kle_elector_events(el, ev);
    kle_elector_schedule(el);
}


/*
 * One event, parsed once.  Every event moves the version the watch
 * resumes from; the state machine decides what it makes of the record
 * (a leader ignores those naming it), and the lock keeps the object only
 * if the state machine took it.
 */
static void
kle_elector_watch_line(const char *line, size_t len, void *data)
{
    kle_elector_t      *el = data;
    kle_watch_event_t   wev;
    char                err[256];
    unsigned            ev;
    int64_t             now;

    if (el->stopped) {
        return;
    }

    if (kle_lock_watch_event(&el->lock, line, len, &wev, err, sizeof(err))
        != 0)
    {
        kle_log(el, KLE_LOG_DEBUG, "watch: ignoring a line: %s", err);
        return;
    }

    ev = 0;

    switch (wev.type) {

    case KLE_WATCH_CHANGED:
        now = kle_now_ms();
        el->event_gap = el->event_at != 0 ? now - el->event_at : 0;
        el->event_at = now;
        memcpy(el->watch_rv, wev.rv, sizeof(el->watch_rv));
        ev = kle_election_observe(&el->election, now, &wev.rec, wev.rv);
        kle_elector_keep(el, wev.object, wev.rv);
        break;

    case KLE_WATCH_DELETED:
        memcpy(el->watch_rv, wev.rv, sizeof(el->watch_rv));
        ev = kle_election_observe(&el->election, kle_now_ms(), NULL, wev.rv);
        break;

    case KLE_WATCH_BOOKMARK:
        memcpy(el->watch_rv, wev.rv, sizeof(el->watch_rv));
        kle_lock_watch_event_free(&wev);
        return;

    case KLE_WATCH_ERROR:
        /* 410 Expired: the version is compacted away; read, then watch */
        kle_log(el, KLE_LOG_DEBUG, "watch: error %d: %s", wev.code,
                wev.message);
        kle_lock_watch_event_free(&wev);

        if (el->watch != NULL) {
            kle_http_cancel(el->http, el->watch);
            el->watch = NULL;
        }

        if (wev.code == 410) {
            kle_elector_relist(el);
        } else {
            kle_elector_watch_later(el, kle_now_ms());
        }

        kle_elector_watch_closed(el);
        kle_elector_schedule(el);
        return;
    }

    kle_lock_watch_event_free(&wev);

    kle_elector_events(el, ev);
    kle_elector_schedule(el);
}


static void
kle_elector_watch_done(const kle_http_response_t *resp, void *data)
{
    kle_elector_t  *el = data;
    int64_t         now;

    el->watch = NULL;

    if (el->stopped) {
        return;
    }

    now = kle_now_ms();

    if (resp->code == 401 && el->exec != NULL) {
        kle_exec_refused(el->exec, el->watch_start);
    }

    if (resp->code == 200) {
        /* ended by the server: resume, unless it ends them at once */
        el->watch_after = now - el->watch_start < el->election.cfg.retry_period
                          ? now + el->election.cfg.retry_period : 0;

    } else if (resp->code == 410) {
        kle_elector_relist(el);

    } else if (resp->retired) {
        /* its connection was given up, not the watch: at once, anew */
        el->watch_after = 0;

    } else {
        /*
         * Refused (RBAC, a server whose caches are not filled yet after a
         * restart) or failed: followers poll meanwhile, and the watch is
         * tried again, as any failed request is.
         */
        if ((resp->code == 400 || resp->code == 403 || resp->code == 404
             || resp->code == 405)
            && !el->watch_refused)
        {
            el->watch_refused = 1;
            kle_log(el, KLE_LOG_NOTICE, "watching the lock was refused "
                    "(HTTP %d); following by polling, and trying again "
                    "(RBAC: watch on %s)", resp->code,
                    kle_lock_kind_name(el->lock.kind));
        }

        kle_elector_watch_later(el, now);
    }

    kle_elector_watch_closed(el);
    kle_elector_schedule(el);
}


/*
 * The answer to the list after a 410: a read of the lock, and the list's
 * resourceVersion to watch from.  Not the object's: on a quiet lock that
 * one predates the compaction, and a watch from it is told 410 again.
 */
static void
kle_elector_relisted(const kle_http_response_t *resp, void *data)
{
    kle_elector_t     *el = data;
    kle_api_result_t   res;
    kle_record_t       rec;
    json_object       *obj, *item;
    char               rv[KLE_RV_MAX], list_rv[KLE_RV_MAX], err[256];
    unsigned           ev;

    el->relist = NULL;

    if (el->stopped) {
        return;
    }

    ev = 0;
    obj = NULL;
    memset(&res, 0, sizeof(res));

    if (resp->code < 200 || resp->code >= 300) {
        kle_api_result(resp, &res);
        goto failed;
    }

    obj = kle_lock_parse_body(&el->lock, resp->body, resp->body_len, err,
                              sizeof(err));
    if (obj == NULL
        || kle_lock_parse_list(&el->lock, obj, &item, list_rv, err,
                               sizeof(err))
           != 0
        || (item != NULL
            && kle_lock_parse(&el->lock, item, &rec, rv, err, sizeof(err))
               != 0))
    {
        snprintf(res.message, sizeof(res.message), "%s", err);
        goto failed;
    }

    if (item != NULL) {
        ev = kle_election_observe(&el->election, kle_now_ms(), &rec, rv);
        kle_elector_keep(el, item, rv);

    } else {
        ev = kle_election_observe(&el->election, kle_now_ms(), NULL, NULL);
    }

    memcpy(el->watch_rv, list_rv, sizeof(el->watch_rv));
    el->relist_wanted = 0;

    json_object_put(obj);

    kle_elector_events(el, ev);
    kle_elector_schedule(el);
    return;

failed:

    kle_log(el, KLE_LOG_DEBUG, "watch: list again failed: %s", res.message);
    el->watch_after = kle_now_ms() + el->election.cfg.retry_period;

    json_object_put(obj);

    kle_elector_schedule(el);
}


/* Keeps one watch on the lock (or the GET that restarts it) going. */
static void
kle_elector_watch(kle_elector_t *el, int64_t now)
{
    kle_election_t  *e = &el->election;
    char             path[768], url[1024];

    if (el->stopped || el->watch != NULL
        || el->relist != NULL || !el->creds_ready
        || e->state == KLE_STATE_RELEASED
        || e->release_wanted || !e->have_observed || now < el->watch_after)
    {
        return;
    }

    if (el->relist_wanted) {
        if (kle_lock_list_path(&el->lock, path, sizeof(path)) != 0
            || kle_elector_url(el, path, url, sizeof(url)) != 0)
        {
            return;
        }

        el->relist_at = now;
        el->relist = kle_http_send(el->http, "GET", url, NULL,
                                   (long) (e->cfg.renew_deadline / 2),
                                   el->cfg.creds, kle_elector_relisted, el);
        if (el->relist == NULL) {
            el->watch_after = now + e->cfg.retry_period;
            return;
        }

        el->requests++;
        return;
    }

    if (kle_lock_watch_path(&el->lock, el->watch_rv, path, sizeof(path)) != 0
        || snprintf(url, sizeof(url), "%s%s&timeoutSeconds=%d",
                    el->cfg.creds->server, path, KLE_WATCH_SECONDS)
           >= (int) sizeof(url))
    {
        return;
    }

    el->watch_start = now;
    el->watch = kle_http_watch(el->http, url, (KLE_WATCH_SECONDS + 10) * 1000L,
                               el->cfg.creds, kle_elector_watch_open,
                               kle_elector_watch_line, kle_elector_watch_done,
                               el);
    if (el->watch == NULL) {
        el->watch_after = now + e->cfg.retry_period;
        return;
    }

    el->requests++;
}


/*
 * The exec plugin has no usable credential yet (it runs, or failed and
 * waits out its backoff): the request is not sent, and the state machine
 * takes it as failed, so that it retries after the retry period and a
 * leader steps down at its renew deadline as for any failed renewal.
 */
static void
kle_elector_no_creds(kle_elector_t *el, const kle_action_t *act, int64_t now)
{
    const char  *why;
    unsigned     ev;

    why = kle_exec_error(el->exec);

    if (why[0] != '\0') {
        el->failures++;
    }

    kle_log(el, KLE_LOG_DEBUG, "%s: waiting for the exec plugin's credential",
            kle_elector_what(act->kind));

    ev = kle_election_on_result(&el->election, now, KLE_API_UNAUTHORIZED,
                                NULL, NULL, 0);
    kle_elector_events(el, ev | KLE_EV_CHANGED);
}


/* The status page tells why nothing is sent, before the next try. */
static void
kle_elector_exec_note(kle_elector_t *el)
{
    char         text[sizeof(el->last_error)];
    const char  *why;

    why = kle_exec_error(el->exec);
    if (why[0] == '\0') {
        return;
    }

    kle_escape(why, text, sizeof(text));

    if (strcmp(text, el->last_error) != 0) {
        memcpy(el->last_error, text, sizeof(text));

        if (el->cfg.on_change) {
            el->cfg.on_change(el->cfg.data);
        }
    }
}


/* A plugin run ended or its output did: see what can be sent now. */
static void
kle_elector_exec_done(void *data)
{
    kle_elector_t  *el = data;

    kle_elector_exec_note(el);
    kle_elector_schedule(el);
}


static void
kle_elector_exec_log(void *data, int level, const char *msg)
{
    kle_log(data, level, "%s", msg);
}


long
kle_elector_run(kle_elector_t *el)
{
    kle_election_t  *e = &el->election;
    kle_action_t     act;
    unsigned         ev;
    int64_t          now, wait, dead;
    long             exec_wake;

    for ( ;; ) {
        if (el->stopped || el->http == NULL) {
            return -1;
        }

        kle_elector_token_note(el);

        now = kle_now_ms();

        exec_wake = -1;
        el->creds_ready = el->exec == NULL
                          || kle_exec_check(el->exec, now, &exec_wake);

        if (!el->creds_ready) {
            kle_elector_exec_note(el);
        }

        ev = kle_election_next(e, now, kle_wall_us(), &act);
        kle_elector_events(el, ev);
        kle_elector_watch_check(el, now);
        kle_elector_watch(el, now);

        if (el->stopped) {
            return -1;
        }

        switch (act.kind) {

        case KLE_DO_NOTHING:
            wait = -1;
            if (e->state == KLE_STATE_LEADING) {
                /* wake when leadership lapses if the answer is late */
                wait = e->claim_until > now ? e->claim_until - now : 0;
            }
            break;

        case KLE_DO_WAIT:
            wait = act.until > now ? act.until - now : 0;
            break;

        default:
            if (!el->creds_ready) {
                kle_elector_no_creds(el, &act, now);
                continue;
            }

            if (kle_elector_send(el, &act) == 0) {
                continue;
            }

            if (el->stopped) {
                return -1;
            }

            kle_log(el, KLE_LOG_ERR, "%s: could not start the request",
                    kle_elector_what(act.kind));
            ev = kle_election_on_result(e, now, KLE_API_TRANSPORT, NULL,
                                        NULL, 0);
            kle_elector_events(el, ev | KLE_EV_CHANGED);
            continue;
        }

        /* the plugin: its timeout, its backoff, the credential's renewal */
        if (exec_wake >= 0 && (wait < 0 || exec_wake < wait)) {
            wait = exec_wake;
        }

        /* a watch to start again later */
        if (el->watch == NULL && el->relist == NULL
            && el->watch_after > now && e->state != KLE_STATE_RELEASED
            && (wait < 0 || el->watch_after - now < wait))
        {
            wait = el->watch_after - now;
        }

        /* or to judge silent */
        dead = kle_elector_watch_deadline(el);
        if (dead != 0 && (wait < 0 || dead - now < wait)) {
            wait = dead > now ? dead - now : 0;
        }

        return wait < 0 ? -1 : (long) wait;
    }
}


/* Drops the API request, the watch and its GET in flight. */
static void
kle_elector_cancel(kle_elector_t *el)
{
    if (el->req != NULL) {
        kle_http_cancel(el->http, el->req);
        el->req = NULL;
    }

    kle_elector_watch_cancel(el);
    el->watch_open = 0;
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


/* Counts (or cancels) the hook requests and Events running on h. */
static int
kle_elector_hooks_on(kle_elector_t *el, kle_http_t *h, int cancel)
{
    size_t  i;
    int     n;

    n = kle_events_on(el->events, h, cancel);

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
    /* first: a callback running now sees it and sends nothing more */
    el->stopped = 1;

    if (el->http != NULL) {
        kle_elector_cancel(el);
        kle_elector_hooks_on(el, el->http, 1);
    }
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
    st->lease_until = kle_election_lease_until(e);
    snprintf(st->last_error, sizeof(st->last_error), "%s", el->last_error);
    st->record_mine = !e->absent && kle_election_mine(e, &e->observed);
    st->identity_conflict = kle_election_twin(e) == KLE_TWIN_CONFLICT;
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

    kle_exec_destroy(el->exec);
    kle_events_destroy(el->events);
    kle_lock_free(&el->lock);
    free(el->name);
    for (i = 0; i < 3; i++) {
        free(el->hooks[i]);
    }
    free(el);
}
