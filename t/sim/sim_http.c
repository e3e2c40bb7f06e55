/*
 * lib/kle_http.h over the simulated network: what the real elector
 * (lib/kle_elector.c, linked unchanged) sends goes to the simulated API
 * server (sim_server.c) with the seed's delays and losses, and what comes
 * back is what a kube-apiserver answers: the Lease or ConfigMap object,
 * a list, Status bodies, watch event lines, in JSON that lib/kle_lock.c
 * parses.  Give-ups are reported as lib/kle_http.c reports them: a
 * timeout (resp->timed_out) retires every connection, and the requests
 * still in flight on them fail with resp->retired at the next entry
 * point.  Callbacks run only from the simulator's events, never inside a
 * call of the elector's, as curl's multi interface runs them.
 */

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>

#include "kle_lock.h"
#include "sim.h"

static char *sim_http_text(json_object *o);


/* The stored object as the server renders it, to instance i. */
static json_object *
sim_http_object(const kle_record_t *rec, const sim_raw_t *raw, int64_t rv,
    int secs)
{
    json_object  *o, *meta, *ann, *spec, *a;
    int64_t       at, rt;
    char          buf[64];

    at = rec->acquire_time;
    rt = rec->renew_time;
    if (secs) {
        /* client-go's LeaderElectionRecord: metav1.Time, whole seconds */
        at -= ((at % 1000000) + 1000000) % 1000000;
        rt -= ((rt % 1000000) + 1000000) % 1000000;
    }

    o = json_object_new_object();
    meta = json_object_new_object();
    ann = json_object_new_object();

    json_object_object_add(o, "kind", json_object_new_string(
        sim.lock.kind == KLE_LOCK_LEASES ? "Lease" : "ConfigMap"));
    json_object_object_add(o, "apiVersion", json_object_new_string(
        sim.lock.kind == KLE_LOCK_LEASES ? "coordination.k8s.io/v1" : "v1"));
    json_object_object_add(meta, "name", json_object_new_string("lock"));
    json_object_object_add(meta, "namespace", json_object_new_string("sim"));
    snprintf(buf, sizeof(buf), "%" PRId64, rv);
    json_object_object_add(meta, "resourceVersion",
                           json_object_new_string(buf));

    if (rec->instance[0] != '\0') {
        json_object_object_add(ann, KLE_ANNOTATION_INSTANCE,
                               json_object_new_string(rec->instance));
    }

    if (sim.lock.kind == KLE_LOCK_LEASES) {
        spec = json_object_new_object();
        json_object_object_add(spec, "holderIdentity",
                               json_object_new_string_len(raw->holder,
                                                          raw->hlen));
        json_object_object_add(spec, "leaseDurationSeconds",
                               json_object_new_int(rec->lease_duration));
        if (at != 0) {
            kle_time_format_micro(at, buf, sizeof(buf));
            json_object_object_add(spec, "acquireTime",
                                   json_object_new_string(buf));
        } else {
            json_object_object_add(spec, "acquireTime", NULL);
        }
        if (rt != 0) {
            kle_time_format_micro(rt, buf, sizeof(buf));
            json_object_object_add(spec, "renewTime",
                                   json_object_new_string(buf));
        } else {
            json_object_object_add(spec, "renewTime", NULL);
        }
        json_object_object_add(spec, "leaseTransitions",
                               json_object_new_int(rec->transitions));
        json_object_object_add(o, "spec", spec);

    } else if (raw->ann[0] != '\0') {
        /* as the Python client wrote it */
        json_object_object_add(ann, KLE_ANNOTATION_LEADER,
                               json_object_new_string(raw->ann));

    } else {
        a = json_object_new_object();
        json_object_object_add(a, "holderIdentity",
                               json_object_new_string_len(raw->holder,
                                                          raw->hlen));
        json_object_object_add(a, "leaseDurationSeconds",
                               json_object_new_int(rec->lease_duration));
        kle_time_format_rfc3339(at, buf, sizeof(buf));
        json_object_object_add(a, "acquireTime", json_object_new_string(buf));
        kle_time_format_rfc3339(rt, buf, sizeof(buf));
        json_object_object_add(a, "renewTime", json_object_new_string(buf));
        json_object_object_add(a, "leaderTransitions",
                               json_object_new_int(rec->transitions));
        json_object_object_add(ann, KLE_ANNOTATION_LEADER,
            json_object_new_string(json_object_to_json_string_ext(a,
                                                   JSON_C_TO_STRING_PLAIN)));
        json_object_put(a);
    }

    json_object_object_add(meta, "annotations", ann);
    json_object_object_add(o, "metadata", meta);

    return o;
}


/*
 * The object's text at version rv, as instance i is sent it: rendered
 * once for every instance that reads it (a cache of the last few, by
 * seed, version and granularity); borrowed until the next call.
 */
#define SIM_HTTP_CACHE  8

static struct {
    uint64_t  seed;
    int64_t   rv;
    int       secs;
    char     *text;
} sim_http_cache[SIM_HTTP_CACHE];

static unsigned  sim_http_cache_next;


static const char *
sim_http_object_text(const kle_record_t *rec, const sim_raw_t *raw,
    int64_t rv, int secs)
{
    unsigned  k;

    for (k = 0; k < SIM_HTTP_CACHE; k++) {
        if (sim_http_cache[k].text != NULL
            && sim_http_cache[k].seed == sim.seed
            && sim_http_cache[k].rv == rv && sim_http_cache[k].secs == secs)
        {
            return sim_http_cache[k].text;
        }
    }

    k = sim_http_cache_next++ % SIM_HTTP_CACHE;
    free(sim_http_cache[k].text);

    sim_http_cache[k].seed = sim.seed;
    sim_http_cache[k].rv = rv;
    sim_http_cache[k].secs = secs;
    sim_http_cache[k].text = sim_http_text(sim_http_object(rec, raw, rv,
                                                           secs));

    return sim_http_cache[k].text;
}


/* o as text, malloc()ed; o is put. */
static char *
sim_http_text(json_object *o)
{
    char  *s;

    s = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);

    return s;
}


static json_object *
sim_http_status(int code, const char *reason, const char *message)
{
    json_object  *o;

    o = json_object_new_object();
    json_object_object_add(o, "kind", json_object_new_string("Status"));
    json_object_object_add(o, "apiVersion", json_object_new_string("v1"));
    json_object_object_add(o, "metadata", json_object_new_object());
    json_object_object_add(o, "status", json_object_new_string("Failure"));
    json_object_object_add(o, "message", json_object_new_string(message));
    json_object_object_add(o, "reason", json_object_new_string(reason));
    json_object_object_add(o, "code", json_object_new_int(code));

    return o;
}


/*
 * A request body as the server reads it: the record (through the lock's
 * own reader, the server's view of it is what every reader's is) and the
 * resourceVersion it is conditioned on ("" if none).
 */
static int
sim_http_body(const char *body, kle_record_t *rec, char *rv, size_t size)
{
    json_object  *o, *meta, *v;
    char          tmp[KLE_RV_MAX], err[256];
    int           rc;

    rv[0] = '\0';

    o = body ? json_tokener_parse(body) : NULL;
    if (o == NULL || !json_object_object_get_ex(o, "metadata", &meta)
        || !json_object_is_type(meta, json_type_object))
    {
        json_object_put(o);
        return -1;
    }

    if (json_object_object_get_ex(meta, "resourceVersion", &v)
        && json_object_is_type(v, json_type_string))
    {
        snprintf(rv, size, "%s", json_object_get_string(v));
    }

    /* the server gives a create its version */
    json_object_object_add(meta, "resourceVersion",
                           json_object_new_string("1"));

    rc = kle_lock_parse(&sim.lock, o, rec, tmp, err, sizeof(err));
    json_object_put(o);

    if (rc != 0) {
        TR(-1, "cannot read the body: %s: %s", err, body);
    }

    return rc;
}


/* The newest version read that does not name this instance. */
static void
sim_http_seen(sim_inst_t *in, int64_t rv, const kle_record_t *rec)
{
    if (rec != NULL && sim_names(rec, in->el.id)) {
        return;
    }

    if (rv > in->seen_rv) {
        in->seen_rv = rv;
    }
}


static int
sim_http_alloc(void)
{
    int  r;

    for (r = 0; r < SIM_REQ_MAX && sim_req[r].used; r++) {
        /* void */
    }

    if (r == SIM_REQ_MAX) {
        sim_violation(SIM_V_OVERFLOW, "request pool full");
        return -1;
    }

    return r;
}


/* The host is done with request r; the server may still apply it. */
void
sim_http_free(int r)
{
    sim_req_t  *q;

    q = &sim_req[r];
    q->pending = 0;
    q->retired = 0;

    if (q->role == SIM_REQ_WATCH || q->applied || q->lost) {
        q->used = 0;
    }
}


kle_http_req_t *
kle_http_send(kle_http_t *h, const char *method, const char *url,
    const char *body, long timeout_ms, kle_creds_t *creds,
    kle_http_done_pt done, void *data)
{
    sim_inst_t    *in;
    sim_req_t     *q;
    kle_record_t   rec;
    char           rv[KLE_RV_MAX];
    int            i, r, k, role, kind;

    i = h->inst;
    in = &sim.inst[i];

    if (creds == NULL || h->gen != in->el.gen) {
        /* hooks are not configured; an old transport sends nothing */
        return NULL;
    }

    memset(&rec, 0, sizeof(rec));
    rv[0] = '\0';

    if (strcmp(method, "GET") == 0) {
        kind = KLE_DO_GET;
        role = strstr(url, "fieldSelector=") ? SIM_REQ_RELIST
                                             : SIM_REQ_MACHINE;

    } else {
        kind = strcmp(method, "POST") == 0 ? KLE_DO_CREATE : KLE_DO_UPDATE;
        role = SIM_REQ_MACHINE;

        if (sim_http_body(body, &rec, rv, sizeof(rv)) != 0) {
            sim_violation(SIM_V_HOST, "%s sent a %s body the server cannot "
                          "read", in->name, method);
            return NULL;
        }
    }

    for (k = 0; k < SIM_REQ_MAX; k++) {
        q = &sim_req[k];
        if (q->used && q->pending && q->inst == i && q->gen == h->gen
            && q->role == role && role != SIM_REQ_WATCH)
        {
            sim_violation(SIM_V_HOST, "%s: a second %s while one is out",
                          in->name, role == SIM_REQ_RELIST ? "list"
                                                           : "request");
            return NULL;
        }
    }

    if (timeout_ms <= 0) {
        sim_violation(SIM_V_HOST, "%s: a request without a timeout",
                      in->name);
        return NULL;
    }

    r = sim_send(i, role, kind, &rec, rv, timeout_ms);
    if (r < 0) {
        return NULL;
    }

    q = &sim_req[r];
    q->done = done;
    q->data = data;
    q->heard = sim_mono(in, sim.t);

    return q;
}


kle_http_req_t *
kle_http_watch(kle_http_t *h, const char *url, long timeout_ms,
    kle_creds_t *creds, kle_http_open_pt on_open, kle_http_line_pt on_line,
    kle_http_done_pt done, void *data)
{
    sim_inst_t   *in;
    sim_req_t    *q;
    const char   *p;
    int64_t       rv, limit;
    int           i, r;

    i = h->inst;
    in = &sim.inst[i];

    if (creds == NULL || h->gen != in->el.gen) {
        return NULL;
    }

    if (in->el.watch_req >= 0) {
        sim_violation(SIM_V_HOST, "%s: a second watch while one is out",
                      in->name);
        return NULL;
    }

    r = sim_http_alloc();
    if (r < 0) {
        return NULL;
    }

    q = &sim_req[r];
    memset(q, 0, sizeof(*q));
    q->used = 1;
    q->tok = ++sim.tok;
    q->inst = i;
    q->gen = h->gen;
    q->role = SIM_REQ_WATCH;
    q->kind = KLE_DO_GET;
    q->sent = sim.t;
    q->pending = 1;
    q->done = done;
    q->on_open = on_open;
    q->on_line = on_line;
    q->data = data;
    q->heard = sim_mono(in, sim.t);
    q->deadline = sim_at_mono(in, q->heard + timeout_ms);

    sim_push(q->deadline, SIM_EV_TIMEOUT, r, q->tok);

    p = strstr(url, "resourceVersion=");
    rv = p ? strtoll(p + 16, NULL, 10) : 0;
    p = strstr(url, "timeoutSeconds=");
    limit = p ? strtoll(p + 15, NULL, 10) * 1000 : 0;

    in->el.watch_req = r;
    sim_watch_start(i, rv, limit);

    return q;
}


void
kle_http_cancel(kle_http_t *h, kle_http_req_t *q)
{
    sim_elector_t  *el;
    int             r;

    r = (int) (q - sim_req);
    el = &sim.inst[h->inst].el;

    if (q->role == SIM_REQ_WATCH && el->watch_req == r) {
        sim_watch_cancel(el);
        el->watch_req = -1;
    }

    sim_http_free(r);
}


int
kle_http_retire(kle_http_t *h)
{
    sim_req_t  *q;
    int         r, any;

    any = 0;

    for (r = 0; r < SIM_REQ_MAX; r++) {
        q = &sim_req[r];
        if (q->used && q->pending && q->inst == h->inst && q->gen == h->gen)
        {
            q->retired = 1;
            any = 1;
        }
    }

    if (any) {
        TR(h->inst, "connections retired: the requests on them fail");
        sim_push(sim.t, SIM_EV_REAP, h->inst, (unsigned) h->gen);
    }

    return 0;
}


int
kle_http_pending(const kle_http_t *h)
{
    int  r, n;

    n = 0;
    for (r = 0; r < SIM_REQ_MAX; r++) {
        if (sim_req[r].used && sim_req[r].pending
            && sim_req[r].inst == h->inst && sim_req[r].gen == h->gen)
        {
            n++;
        }
    }

    return n;
}


int64_t
kle_http_heard(const kle_http_req_t *q)
{
    return q->heard;
}


/* Not used by the simulation: an exec plugin, release_sync(). */

kle_http_t *
kle_http_create(const kle_http_loop_t *loop)
{
    (void) loop;
    return NULL;
}


void
kle_http_destroy(kle_http_t *h)
{
    (void) h;
}


int
kle_http_fd_watch(kle_http_t *h, int fd, kle_http_fd_pt ready, void *data)
{
    (void) h;
    (void) fd;
    (void) ready;
    (void) data;
    return -1;
}


void
kle_http_fd_unwatch(kle_http_t *h, int fd)
{
    (void) h;
    (void) fd;
}


void
kle_http_socket_action(kle_http_t *h, int fd, int what)
{
    (void) h;
    (void) fd;
    (void) what;
}


void
kle_http_timeout(kle_http_t *h)
{
    (void) h;
}


void
kle_http_poll(kle_http_t *h, long ms)
{
    (void) h;
    (void) ms;
}


/* Calls done for request r, which the host no longer holds after it. */
static void
sim_http_done(int r, kle_http_response_t *resp)
{
    sim_req_t         *q;
    kle_http_done_pt   done;
    void              *data;
    int                i;

    q = &sim_req[r];
    i = q->inst;
    done = q->done;
    data = q->data;

    if (q->role == SIM_REQ_WATCH && sim.inst[i].el.watch_req == r) {
        sim_watch_cancel(&sim.inst[i].el);
        sim.inst[i].el.watch_req = -1;
    }

    sim_http_free(r);

    if (resp->body == NULL) {
        resp->body = "";
    }
    resp->body_len = strlen(resp->body);

    sim_host_enter(i);
    done(resp, data);
    sim_host_leave(i);
}


void
sim_http_reap(int i)
{
    sim_req_t            *q;
    kle_http_response_t   resp;
    int                   r;

    for ( ;; ) {
        for (r = 0; r < SIM_REQ_MAX; r++) {
            q = &sim_req[r];
            if (q->used && q->pending && q->retired && q->inst == i
                && q->gen == sim.inst[i].el.gen)
            {
                break;
            }
        }

        if (r == SIM_REQ_MAX || !sim.inst[i].el.running) {
            return;
        }

        TR(i, "%s retired", q->role == SIM_REQ_WATCH ? "watch" : "request");

        memset(&resp, 0, sizeof(resp));
        resp.error = "abandoned with its connection, after the server "
                     "stopped answering on it";
        resp.retired = 1;
        sim_http_done(r, &resp);
    }
}


/* The answer to request r, or its give-up. */
void
sim_http_answer(int r, int timed_out)
{
    sim_inst_t           *in;
    sim_req_t            *q;
    kle_http_response_t   resp;
    json_object          *list, *items, *meta;
    kle_record_t         *got;
    char                  ra[16], buf[200], lrv[32];
    char                 *body;
    int                   i;

    q = &sim_req[r];
    i = q->inst;
    in = &sim.inst[i];

    if (q->gen != in->el.gen || !in->el.running) {
        sim_http_free(r);
        return;
    }

    memset(&resp, 0, sizeof(resp));
    body = NULL;
    got = NULL;

    if (timed_out) {
        TR(i, "%s timed out", q->role == SIM_REQ_WATCH ? "watch"
                              : q->role == SIM_REQ_RELIST ? "list"
                              : q->kind == KLE_DO_GET ? "GET"
                              : q->kind == KLE_DO_CREATE ? "CREATE"
                              : "UPDATE");
        resp.error = "Operation timed out";
        resp.timed_out = 1;

        /* as lib/kle_http.c: retired before the callback */
        q->pending = 0;
        kle_http_retire(&in->el.http);
        q->pending = 1;

        sim_http_done(r, &resp);
        return;
    }

    switch (q->status) {

    case KLE_API_OK:
        resp.code = q->kind == KLE_DO_CREATE ? 201 : 200;

        if (q->role == SIM_REQ_RELIST) {
            list = json_object_new_object();
            meta = json_object_new_object();
            items = json_object_new_array();
            json_object_object_add(list, "kind", json_object_new_string(
                sim.lock.kind == KLE_LOCK_LEASES ? "LeaseList"
                                                 : "ConfigMapList"));
            json_object_object_add(list, "apiVersion",
                json_object_new_string(sim.lock.kind == KLE_LOCK_LEASES
                                       ? "coordination.k8s.io/v1" : "v1"));
            snprintf(lrv, sizeof(lrv), "%" PRId64, q->list_rv);
            json_object_object_add(meta, "resourceVersion",
                                   json_object_new_string(lrv));
            json_object_object_add(list, "metadata", meta);
            if (q->has_result) {
                json_object_array_add(items,
                    sim_http_object(&q->result, &q->result_raw, q->result_rv,
                                    in->secs));
                got = &q->result;
                sim_http_seen(in, q->result_rv, got);
            } else {
                sim_http_seen(in, q->list_rv, NULL);
            }
            json_object_object_add(list, "items", items);
            body = sim_http_text(list);
            break;
        }

        if (q->has_result) {
            got = &q->result;
            body = strdup(sim_http_object_text(&q->result, &q->result_raw,
                                               q->result_rv, in->secs));
            sim_http_seen(in, q->result_rv, got);
            if (q->kind != KLE_DO_GET) {
                in->el.write_rv = q->result_rv;
            }
        }
        break;

    case KLE_API_NOT_FOUND:
        resp.code = 404;
        body = sim_http_text(sim_http_status(404, "NotFound",
                                             "leases \"lock\" not found"));
        break;

    case KLE_API_CONFLICT:
        resp.code = 409;
        body = sim_http_text(sim_http_status(409, "Conflict",
            "Operation cannot be fulfilled on leases \"lock\": the object "
            "has been modified; please apply your changes to the latest "
            "version and try again"));
        break;

    case KLE_API_ALREADY_EXISTS:
        resp.code = 409;
        body = sim_http_text(sim_http_status(409, "AlreadyExists",
                                             "leases \"lock\" already "
                                             "exists"));
        break;

    case KLE_API_TOO_MANY_REQUESTS:
        resp.code = 429;
        body = sim_http_text(sim_http_status(429, "TooManyRequests",
                                             "too many requests"));
        snprintf(ra, sizeof(ra), "%d", q->retry_after);
        resp.retry_after = ra;
        break;

    case KLE_API_REJECTED:
        resp.code = 422;
        body = sim_http_text(sim_http_status(422, "Invalid", "invalid"));
        break;

    default:
        resp.code = 500;
        body = sim_http_text(sim_http_status(500, "InternalError",
                                             "etcdserver: request timed "
                                             "out"));
        break;
    }

    TR(i, "answer %s%s: %d%s%s rv=%" PRId64,
       q->role == SIM_REQ_RELIST ? "list " : "",
       q->kind == KLE_DO_GET ? "GET" : q->kind == KLE_DO_CREATE ? "CREATE"
                                                              : "UPDATE",
       resp.code, got ? " " : "",
       got ? sim_rec_text(got, buf, sizeof(buf)) : "",
       q->role == SIM_REQ_RELIST ? q->list_rv : q->result_rv);

    resp.body = body;
    sim_http_done(r, &resp);
    free(body);
}


void
sim_http_watch_opened(int i)
{
    sim_inst_t  *in;
    sim_req_t   *q;

    in = &sim.inst[i];

    if (in->el.watch_req < 0) {
        return;
    }

    q = &sim_req[in->el.watch_req];
    q->heard = sim_mono(in, sim.t);

    TR(i, "watch established");

    if (q->on_open != NULL) {
        sim_host_enter(i);
        q->on_open(q->data);
        sim_host_leave(i);
    }
}


/* The connection could not be made (cut off from the API). */
void
sim_http_watch_failed(int i)
{
    kle_http_response_t  resp;

    if (sim.inst[i].el.watch_req < 0) {
        return;
    }

    TR(i, "watch failed");

    memset(&resp, 0, sizeof(resp));
    resp.error = "Failed to connect to the API server";
    sim_http_done(sim.inst[i].el.watch_req, &resp);
}


/* The head of the watch stream reaches the elector. */
void
sim_http_watch_event(int i)
{
    sim_inst_t           *in;
    sim_req_t            *q;
    sim_change_t          c;
    kle_http_response_t   resp;
    json_object          *obj, *meta;
    const char           *text;
    const kle_record_t   *seen;
    char                 *line, rvs[32], buf[200];
    int                   r;

    in = &sim.inst[i];
    r = in->el.watch_req;

    if (r < 0 || sim_wq_pop(i, &c) != 0) {
        return;
    }

    q = &sim_req[r];
    q->heard = sim_mono(in, sim.t);
    sim.st->watch_events++;

    memset(&resp, 0, sizeof(resp));
    snprintf(rvs, sizeof(rvs), "%" PRId64, c.rv);

    switch (c.kind) {

    case SIM_W_END_DROP:
        TR(i, "watch connection broke");
        resp.error = "transfer closed with outstanding read data remaining";
        sim_http_done(r, &resp);
        return;

    case SIM_W_END_CLOSE:
        TR(i, "watch ended by the server");
        resp.code = 200;
        sim_http_done(r, &resp);
        return;

    case SIM_W_CHANGE:
    case SIM_W_DELETED:
        seen = c.kind == SIM_W_DELETED ? NULL : &c.rec;
        sim_http_seen(in, c.rv, seen);
        TR(i, "watch %s rv=%s %s",
           c.kind == SIM_W_DELETED ? "DELETED" : "MODIFIED", rvs,
           sim_rec_text(&c.rec, buf, sizeof(buf)));
        obj = NULL;
        break;

    case SIM_W_BOOKMARK:
        TR(i, "watch BOOKMARK rv=%s", rvs);
        obj = json_object_new_object();
        meta = json_object_new_object();
        json_object_object_add(obj, "kind", json_object_new_string(
            sim.lock.kind == KLE_LOCK_LEASES ? "Lease" : "ConfigMap"));
        json_object_object_add(obj, "apiVersion", json_object_new_string(
            sim.lock.kind == KLE_LOCK_LEASES ? "coordination.k8s.io/v1"
                                             : "v1"));
        json_object_object_add(meta, "resourceVersion",
                               json_object_new_string(rvs));
        json_object_object_add(obj, "metadata", meta);
        break;

    default: /* SIM_W_GONE */
        TR(i, "watch ERROR 410 Expired");
        obj = sim_http_status(410, "Expired", "too old resource version");
        break;
    }

    if (obj == NULL) {
        text = sim_http_object_text(&c.rec, &c.raw, c.rv, in->secs);
        line = malloc(strlen(text) + 40);
        sprintf(line, "{\"type\":\"%s\",\"object\":%s}",
                c.kind == SIM_W_CHANGE ? "MODIFIED" : "DELETED", text);

    } else {
        text = json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN);
        line = malloc(strlen(text) + 40);
        sprintf(line, "{\"type\":\"%s\",\"object\":%s}",
                c.kind == SIM_W_BOOKMARK ? "BOOKMARK" : "ERROR", text);
        json_object_put(obj);
    }

    sim_host_enter(i);
    q->on_line(line, strlen(line), q->data);
    sim_host_leave(i);

    free(line);

    /* after an ERROR the server ends the stream */
    if (c.kind == SIM_W_GONE && sim.inst[i].el.watch_req == r
        && sim_req[r].pending)
    {
        memset(&resp, 0, sizeof(resp));
        resp.code = 200;
        sim_http_done(r, &resp);
    }
}
