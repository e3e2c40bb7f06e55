/*
 * kle_elector over the real transport, against a scripted API server on
 * loopback (a thread of this process): which requests go out, when, and
 * on which resourceVersion; the watch, its events and its restarts; what
 * reaches the log.
 */

#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <json-c/json.h>

#include "kle_test.h"
#include "kle_elector.h"

#define LD  3000
#define RD  1500
#define RP  300

#define COLL  "/apis/coordination.k8s.io/v1/namespaces/default/leases"
#define OBJ   COLL "/nginx-web"
#define LIST  COLL "?fieldSelector=metadata.name%3Dnginx-web"

#define CONNS  16
#define LOGS   1024


typedef struct {
    int      seq;                 /* its index in the log */
    int64_t  at;                  /* mono ms */
    char     method[8];
    char     target[1024];
    char     rv[64];              /* the body's metadata.resourceVersion */
    char     holder[64];          /* the body's spec.holderIdentity */
    char     labels[64];          /* the body's metadata.labels.stale */
    int      code;
} srv_req_t;

typedef struct {
    int      fd;
    int      watch;               /* an open watch stream */
    int      frozen;              /* held open, nothing passes either way */
    char    *in;
    size_t   in_len;
    char    *out;
    size_t   out_len;
} srv_conn_t;

static struct {
    pthread_t        thread;
    pthread_mutex_t  mu;
    int              lfd;
    int              wake[2];
    int              port;
    int              stop;
    srv_conn_t       conns[CONNS];

    int              exists;
    json_object     *obj;
    long             rv;

    int              watch_code;   /* answer the next watch with this */
    int              watch_refusals;  /* and so many after it */
    int              put_code;     /* answer the next PUT with this */
    int              hook_code;    /* answer hooks with this */
    char             status_message[128];

    srv_req_t        log[LOGS];
    int              nlog;
    unsigned         idle;        /* polls that timed out: all read */
} srv;


/* Test side: the elector's log and callbacks. */
static struct {
    char  lines[256][512];
    int   n;
    int   started;
    int   stopped;
    int   new_leader;
    char  holder[300];
    int   stop_on_started;
    int   stop_mark;              /* the server's log when it stopped */
    char  stop_on_holder[64];
    kle_elector_t  *el;
} seen;


static int64_t
now_ms(void)
{
    return kle_now_ms();
}


/* CPU time of the process (both threads), ms */
static int64_t
cpu_ms(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


static void
out_add(srv_conn_t *c, const char *data, size_t n)
{
    c->out = realloc(c->out, c->out_len + n);
    memcpy(c->out + c->out_len, data, n);
    c->out_len += n;
}


static void
out_printf(srv_conn_t *c, const char *fmt, ...)
{
    char     buf[8192];
    int      n;
    va_list  ap;

    va_start(ap, fmt);
    n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);

    out_add(c, buf, (size_t) n);
}


/* One chunk of a watch stream. */
static void
out_chunk(srv_conn_t *c, const char *data, size_t n)
{
    char  head[32];

    snprintf(head, sizeof(head), "%zx\r\n", n);
    out_add(c, head, strlen(head));
    out_add(c, data, n);
    out_add(c, "\r\n", 2);
}


static void
respond(srv_conn_t *c, int code, const char *body)
{
    out_printf(c, "HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
               "Content-Length: %zu\r\n\r\n", code, strlen(body));
    out_add(c, body, strlen(body));
}


static void
respond_status(srv_conn_t *c, int code, const char *reason,
    const char *message)
{
    char  body[1024];

    snprintf(body, sizeof(body), "{\"kind\":\"Status\",\"apiVersion\":\"v1\","
             "\"metadata\":{},\"status\":\"Failure\",\"message\":\"%s\","
             "\"reason\":\"%s\",\"code\":%d}", message, reason, code);
    respond(c, code, body);
}


static void
srv_wake(void)
{
    (void) !write(srv.wake[1], "x", 1);
}


/* A line to every open watch (the lock held). */
static void
srv_broadcast(const char *line)
{
    int     i;
    char   *l;
    size_t  n;

    n = strlen(line);
    l = malloc(n + 1);
    memcpy(l, line, n);
    l[n] = '\n';

    for (i = 0; i < CONNS; i++) {
        if (srv.conns[i].fd >= 0 && srv.conns[i].watch) {
            out_chunk(&srv.conns[i], l, n + 1);
        }
    }

    free(l);
    srv_wake();
}


static void
srv_event(const char *type)
{
    char  line[8192];

    snprintf(line, sizeof(line), "{\"type\":\"%s\",\"object\":%s}", type,
             json_object_to_json_string_ext(srv.obj, JSON_C_TO_STRING_PLAIN));
    srv_broadcast(line);
}


/* Stores obj (taken) with a new version and tells the watches. */
static void
srv_store(json_object *obj, const char *type)
{
    json_object  *meta;
    char          rv[32];

    json_object_put(srv.obj);
    srv.obj = obj;
    srv.exists = 1;

    if (!json_object_object_get_ex(obj, "metadata", &meta)) {
        meta = json_object_new_object();
        json_object_object_add(obj, "metadata", meta);
    }

    snprintf(rv, sizeof(rv), "%ld", ++srv.rv);
    json_object_object_add(meta, "resourceVersion",
                           json_object_new_string(rv));
    json_object_object_add(meta, "name", json_object_new_string("nginx-web"));

    srv_event(type);
}


static const char *
jget(json_object *o, const char *a, const char *b)
{
    json_object  *v;

    if (o != NULL && json_object_object_get_ex(o, a, &v)
        && json_object_object_get_ex(v, b, &v)
        && json_object_is_type(v, json_type_string))
    {
        return json_object_get_string(v);
    }

    return "";
}


static void
srv_handle(srv_conn_t *c, const char *method, const char *target,
    const char *body)
{
    srv_req_t    *r;
    json_object  *o, *labels;
    int           code;
    char          rv[32];

    o = body[0] ? json_tokener_parse(body) : NULL;

    r = &srv.log[srv.nlog < LOGS ? srv.nlog++ : LOGS - 1];
    memset(r, 0, sizeof(*r));
    r->seq = (int) (r - srv.log);
    r->at = now_ms();
    snprintf(r->method, sizeof(r->method), "%s", method);
    snprintf(r->target, sizeof(r->target), "%s", target);
    snprintf(r->rv, sizeof(r->rv), "%s", jget(o, "metadata",
                                              "resourceVersion"));
    snprintf(r->holder, sizeof(r->holder), "%s", jget(o, "spec",
                                                      "holderIdentity"));
    if (o != NULL && json_object_object_get_ex(o, "metadata", &labels)
        && json_object_object_get_ex(labels, "labels", &labels))
    {
        snprintf(r->labels, sizeof(r->labels), "%s",
                 json_object_to_json_string(labels));
    }

    if (strncmp(target, "/hook", 5) == 0) {
        r->code = srv.hook_code ? srv.hook_code : 200;
        respond(c, r->code, "{}");
        json_object_put(o);
        return;
    }

    if (strcmp(method, "GET") == 0 && strstr(target, "watch=1") != NULL) {
        if (srv.watch_code) {
            r->code = srv.watch_code;
            if (srv.watch_refusals > 0) {
                srv.watch_refusals--;
            } else {
                srv.watch_code = 0;
            }
            respond_status(c, r->code, r->code == 410 ? "Expired" : "Forbidden",
                           r->code == 410 ? "too old resource version"
                                          : "forbidden");
            json_object_put(o);
            return;
        }
        r->code = 200;
        out_printf(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                   "Transfer-Encoding: chunked\r\n\r\n");
        c->watch = 1;
        json_object_put(o);
        return;
    }

    /*
     * A list down to the lock: its resourceVersion is the store's current
     * one, here always ahead of the object's (other objects were written
     * since), as on a busy API server after a compaction.
     */
    if (strcmp(method, "GET") == 0 && strcmp(target, LIST) == 0) {
        json_object  *list, *meta, *items;

        snprintf(rv, sizeof(rv), "%ld", srv.rv + 1000);
        list = json_object_new_object();
        meta = json_object_new_object();
        items = json_object_new_array();
        json_object_object_add(list, "kind",
                               json_object_new_string("LeaseList"));
        json_object_object_add(meta, "resourceVersion",
                               json_object_new_string(rv));
        json_object_object_add(list, "metadata", meta);
        if (srv.exists) {
            json_object_array_add(items, json_object_get(srv.obj));
        }
        json_object_object_add(list, "items", items);
        r->code = 200;
        respond(c, 200, json_object_to_json_string_ext(list,
                                                    JSON_C_TO_STRING_PLAIN));
        json_object_put(list);
        json_object_put(o);
        return;
    }

    if (strcmp(method, "GET") == 0 && strcmp(target, OBJ) == 0) {
        if (srv.exists) {
            r->code = 200;
            respond(c, 200, json_object_to_json_string_ext(srv.obj,
                                                    JSON_C_TO_STRING_PLAIN));
        } else {
            r->code = 404;
            respond_status(c, 404, "NotFound", "not found");
        }
        json_object_put(o);
        return;
    }

    if (strcmp(method, "POST") == 0 && strcmp(target, COLL) == 0) {
        if (srv.exists) {
            r->code = 409;
            respond_status(c, 409, "AlreadyExists", "already exists");
            json_object_put(o);
            return;
        }
        srv_store(o, "ADDED");
        r->code = 201;
        respond(c, 201, json_object_to_json_string_ext(srv.obj,
                                                    JSON_C_TO_STRING_PLAIN));
        return;
    }

    if (strcmp(method, "PUT") == 0 && strcmp(target, OBJ) == 0) {
        code = srv.put_code;
        srv.put_code = 0;
        if (code == 0 && !srv.exists) {
            code = 404;
        }
        if (code == 0 && strcmp(r->rv, jget(srv.obj, "metadata",
                                            "resourceVersion")) != 0)
        {
            code = 409;
        }
        if (code != 0) {
            r->code = code;
            respond_status(c, code, code == 409 ? "Conflict" : "Failure",
                           srv.status_message[0] ? srv.status_message
                                                 : "the object has been "
                                                   "modified");
            json_object_put(o);
            return;
        }
        srv_store(o, "MODIFIED");
        r->code = 200;
        respond(c, 200, json_object_to_json_string_ext(srv.obj,
                                                    JSON_C_TO_STRING_PLAIN));
        return;
    }

    r->code = 400;
    respond_status(c, 400, "BadRequest", "unexpected");
    json_object_put(o);
}


/* Handles every complete request in c's input. */
static void
srv_input(srv_conn_t *c)
{
    char    *end, *cl, method[8], target[1024], *body;
    size_t   head, len;

    for ( ;; ) {
        if (c->in_len == 0) {
            return;
        }
        c->in = realloc(c->in, c->in_len + 1);
        c->in[c->in_len] = '\0';

        end = strstr(c->in, "\r\n\r\n");
        if (end == NULL) {
            return;
        }
        head = (size_t) (end - c->in) + 4;

        len = 0;
        cl = strcasestr(c->in, "\r\nContent-Length:");
        if (cl != NULL && cl < end) {
            len = strtoul(cl + 17, NULL, 10);
        }
        if (c->in_len < head + len) {
            return;
        }

        if (sscanf(c->in, "%7s %1023s", method, target) != 2) {
            c->in_len = 0;
            return;
        }

        body = malloc(len + 1);
        memcpy(body, c->in + head, len);
        body[len] = '\0';

        srv_handle(c, method, target, body);
        free(body);

        c->in_len -= head + len;
        memmove(c->in, c->in + head + len, c->in_len);
    }
}


static void
srv_close(srv_conn_t *c)
{
    close(c->fd);
    free(c->in);
    free(c->out);
    memset(c, 0, sizeof(*c));
    c->fd = -1;
}


static void *
srv_main(void *arg)
{
    struct pollfd  pfd[CONNS + 2];
    srv_conn_t    *map[CONNS + 2];
    char           buf[65536];
    ssize_t        n;
    int            i, k, fd;

    (void) arg;

    for ( ;; ) {
        pthread_mutex_lock(&srv.mu);

        if (srv.stop) {
            pthread_mutex_unlock(&srv.mu);
            return NULL;
        }

        k = 0;
        pfd[k].fd = srv.lfd;
        pfd[k++].events = POLLIN;
        pfd[k].fd = srv.wake[0];
        pfd[k++].events = POLLIN;

        for (i = 0; i < CONNS; i++) {
            if (srv.conns[i].fd >= 0 && !srv.conns[i].frozen) {
                map[k] = &srv.conns[i];
                pfd[k].fd = srv.conns[i].fd;
                pfd[k++].events = POLLIN
                                  | (srv.conns[i].out_len ? POLLOUT : 0);
            }
        }

        pthread_mutex_unlock(&srv.mu);

        if (poll(pfd, (nfds_t) k, 100) <= 0) {
            pthread_mutex_lock(&srv.mu);
            srv.idle++;
            pthread_mutex_unlock(&srv.mu);
            continue;
        }

        pthread_mutex_lock(&srv.mu);

        if (pfd[1].revents & POLLIN) {
            (void) !read(srv.wake[0], buf, sizeof(buf));
        }

        if (pfd[0].revents & POLLIN) {
            fd = accept(srv.lfd, NULL, NULL);
            for (i = 0; fd >= 0 && i < CONNS; i++) {
                if (srv.conns[i].fd < 0) {
                    srv.conns[i].fd = fd;
                    fd = -1;
                }
            }
            if (fd >= 0) {
                close(fd);
            }
        }

        for (i = 2; i < k; i++) {
            srv_conn_t  *c = map[i];

            if (c->fd != pfd[i].fd) {
                continue;
            }

            if (pfd[i].revents & POLLOUT) {
                n = send(c->fd, c->out, c->out_len, MSG_NOSIGNAL);
                if (n > 0) {
                    c->out_len -= (size_t) n;
                    memmove(c->out, c->out + n, c->out_len);
                }
            }

            if (pfd[i].revents & (POLLIN | POLLHUP | POLLERR)) {
                n = read(c->fd, buf, sizeof(buf));
                if (n <= 0) {
                    srv_close(c);
                    continue;
                }
                c->in = realloc(c->in, c->in_len + (size_t) n + 1);
                memcpy(c->in + c->in_len, buf, (size_t) n);
                c->in_len += (size_t) n;
                srv_input(c);
            }
        }

        pthread_mutex_unlock(&srv.mu);
    }
}


static void
srv_start(void)
{
    struct sockaddr_in  sa;
    socklen_t           len;
    int                 i, one = 1;

    memset(&srv, 0, sizeof(srv));
    pthread_mutex_init(&srv.mu, NULL);
    srv.rv = 100;

    for (i = 0; i < CONNS; i++) {
        srv.conns[i].fd = -1;
    }

    srv.lfd = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(srv.lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(srv.lfd, (struct sockaddr *) &sa, sizeof(sa));
    listen(srv.lfd, 16);
    len = sizeof(sa);
    getsockname(srv.lfd, (struct sockaddr *) &sa, &len);
    srv.port = ntohs(sa.sin_port);

    (void) !pipe(srv.wake);

    pthread_create(&srv.thread, NULL, srv_main, NULL);
}


static void
srv_stop(void)
{
    int  i;

    pthread_mutex_lock(&srv.mu);
    srv.stop = 1;
    pthread_mutex_unlock(&srv.mu);
    srv_wake();
    pthread_join(srv.thread, NULL);

    for (i = 0; i < CONNS; i++) {
        if (srv.conns[i].fd >= 0) {
            srv_close(&srv.conns[i]);
        }
    }

    close(srv.lfd);
    close(srv.wake[0]);
    close(srv.wake[1]);
    json_object_put(srv.obj);
    srv.obj = NULL;
}


/*
 * Every open connection stops passing bytes, either way, and stays open
 * (a NAT entry or a balancer's state lost); new ones pass.  thaw: they
 * are closed, as the kernel would at last.
 */
static void
srv_freeze(int thaw)
{
    int  i;

    pthread_mutex_lock(&srv.mu);
    for (i = 0; i < CONNS; i++) {
        if (srv.conns[i].fd < 0) {
            continue;
        }
        if (!thaw) {
            srv.conns[i].frozen = 1;
        } else if (srv.conns[i].frozen) {
            srv_close(&srv.conns[i]);
        }
    }
    srv_wake();
    pthread_mutex_unlock(&srv.mu);
}


/* A foreign writer: holder renews (or takes) the Lease, lease seconds. */
static void
srv_write(const char *holder, int lease)
{
    char          body[1024], when[32];
    json_object  *o;

    kle_time_format_micro(kle_wall_us(), when, sizeof(when));
    snprintf(body, sizeof(body), "{\"kind\":\"Lease\",\"apiVersion\":"
             "\"coordination.k8s.io/v1\",\"metadata\":{\"name\":\"nginx-web\","
             "\"namespace\":\"default\"},\"spec\":{\"holderIdentity\":\"%s\","
             "\"leaseDurationSeconds\":%d,\"acquireTime\":\"%s\","
             "\"renewTime\":\"%s\",\"leaseTransitions\":1}}",
             holder, lease, when, when);
    o = json_tokener_parse(body);

    pthread_mutex_lock(&srv.mu);
    srv_store(o, srv.exists ? "MODIFIED" : "ADDED");
    pthread_mutex_unlock(&srv.mu);
}


static void
srv_line(const char *line)
{
    pthread_mutex_lock(&srv.mu);
    srv_broadcast(line);
    pthread_mutex_unlock(&srv.mu);
}


/* Raw bytes to every watch, as one chunk. */
static void
srv_raw(const char *data, size_t n)
{
    int  i;

    pthread_mutex_lock(&srv.mu);
    for (i = 0; i < CONNS; i++) {
        if (srv.conns[i].fd >= 0 && srv.conns[i].watch) {
            out_chunk(&srv.conns[i], data, n);
        }
    }
    srv_wake();
    pthread_mutex_unlock(&srv.mu);
}


/* The server ends every watch (as at timeoutSeconds). */
static void
srv_end_watches(void)
{
    int  i;

    pthread_mutex_lock(&srv.mu);
    for (i = 0; i < CONNS; i++) {
        if (srv.conns[i].fd >= 0 && srv.conns[i].watch) {
            out_add(&srv.conns[i], "0\r\n\r\n", 5);
            srv.conns[i].watch = 0;
        }
    }
    srv_wake();
    pthread_mutex_unlock(&srv.mu);
}


static const char *
srv_rv(void)
{
    static char  rv[64];

    pthread_mutex_lock(&srv.mu);
    snprintf(rv, sizeof(rv), "%s", jget(srv.obj, "metadata",
                                        "resourceVersion"));
    pthread_mutex_unlock(&srv.mu);

    return rv;
}


/* Requests from index since on with method and a target starting so. */
static int
srv_count(int since, const char *method, const char *prefix)
{
    int  i, n = 0;

    pthread_mutex_lock(&srv.mu);
    for (i = since; i < srv.nlog; i++) {
        if ((method == NULL || strcmp(srv.log[i].method, method) == 0)
            && strncmp(srv.log[i].target, prefix, strlen(prefix)) == 0)
        {
            n++;
        }
    }
    pthread_mutex_unlock(&srv.mu);

    return n;
}


/* A copy of the last such request since since, 0 if none. */
static int
srv_last(int since, const char *method, const char *prefix, srv_req_t *out)
{
    int  i, found = 0;

    pthread_mutex_lock(&srv.mu);
    for (i = srv.nlog - 1; i >= since; i--) {
        if (strcmp(srv.log[i].method, method) == 0
            && strncmp(srv.log[i].target, prefix, strlen(prefix)) == 0)
        {
            *out = srv.log[i];
            found = 1;
            break;
        }
    }
    pthread_mutex_unlock(&srv.mu);

    return found;
}


/* Prints the requests from index since on, for a failed check. */
static void
srv_dump(int since)
{
    int  i;

    pthread_mutex_lock(&srv.mu);
    for (i = since; i < srv.nlog; i++) {
        printf("#   request %d at %lld: %s %s -> %d\n", srv.log[i].seq,
               (long long) srv.log[i].at, srv.log[i].method,
               srv.log[i].target, srv.log[i].code);
    }
    pthread_mutex_unlock(&srv.mu);
}


/*
 * Waits until the server has read every byte sent to it so far: a poll
 * that times out after this call found nothing more to read on any
 * connection (the loopback has delivered what send() returned from).
 */
static void
srv_sync(void)
{
    unsigned  idle;

    pthread_mutex_lock(&srv.mu);
    idle = srv.idle;
    pthread_mutex_unlock(&srv.mu);

    for ( ;; ) {
        usleep(10000);
        pthread_mutex_lock(&srv.mu);
        if (srv.idle - idle >= 2) {
            pthread_mutex_unlock(&srv.mu);
            return;
        }
        pthread_mutex_unlock(&srv.mu);
    }
}


static int
srv_mark(void)
{
    int  n;

    pthread_mutex_lock(&srv.mu);
    n = srv.nlog;
    pthread_mutex_unlock(&srv.mu);

    return n;
}


static void
cb_log(void *data, int level, const char *msg)
{
    (void) data;
    (void) level;

    if (seen.n < 256) {
        snprintf(seen.lines[seen.n++], sizeof(seen.lines[0]), "%s", msg);
    }
}


static int
logged(const char *needle)
{
    int  i, n = 0;

    for (i = 0; i < seen.n; i++) {
        n += strstr(seen.lines[i], needle) != NULL;
    }

    return n;
}


static void
cb_started(void *data)
{
    (void) data;
    seen.started++;
    if (seen.stop_on_started) {
        kle_elector_stop(seen.el);

        /* what was sent before the stop may reach the server after it */
        srv_sync();
        seen.stop_mark = srv_mark();
    }
}


static void
cb_stopped(void *data)
{
    (void) data;
    seen.stopped++;
}


static void
cb_new_leader(const char *holder, void *data)
{
    (void) data;
    seen.new_leader++;
    snprintf(seen.holder, sizeof(seen.holder), "%s", holder);
    if (seen.stop_on_holder[0] && strcmp(holder, seen.stop_on_holder) == 0) {
        kle_elector_stop(seen.el);
    }
}


static kle_creds_t  creds;
static kle_http_t  *http;


static kle_elector_t *
elector_hooks(const char *started, const char *new_leader)
{
    kle_elector_config_t  cfg;
    kle_elector_t        *el;
    char                  err[256];

    memset(&seen, 0, sizeof(seen));
    memset(&cfg, 0, sizeof(cfg));
    cfg.name = "web";
    snprintf(cfg.election.identity, sizeof(cfg.election.identity), "a");
    snprintf(cfg.election.address, sizeof(cfg.election.address),
             "127.0.0.1:8080");
    cfg.election.lease_duration = LD;
    cfg.election.renew_deadline = RD;
    cfg.election.retry_period = RP;
    cfg.lock_kind = "leases";
    cfg.lock_where = "default/nginx-web";
    cfg.creds = &creds;
    cfg.hook_started = started;
    cfg.hook_new_leader = new_leader;
    cfg.on_started_leading = cb_started;
    cfg.on_stopped_leading = cb_stopped;
    cfg.on_new_leader = cb_new_leader;
    cfg.log = cb_log;

    el = kle_elector_create(&cfg, http, err, sizeof(err));
    if (el == NULL) {
        printf("# %s\n", err);
        exit(1);
    }
    seen.el = el;

    return el;
}


static kle_elector_t *
elector(const char *hook)
{
    return elector_hooks(hook, hook);
}


/* Runs el for ms, or until cond() holds. */
static int
drive(kle_elector_t *el, long ms, int (*cond)(void))
{
    int64_t  end;
    long     next;

    end = now_ms() + ms;

    while (now_ms() < end) {
        next = kle_elector_run(el);
        if (cond != NULL && cond()) {
            return 1;
        }
        if (next < 0 || next > 10) {
            next = 10;
        }
        kle_http_poll(http, next > 0 ? next : 1);
    }

    return cond != NULL && cond();
}


static kle_elector_t  *cur;
static int             mark;

static int
is_leader(void)
{
    kle_elector_status_t  st;

    kle_elector_status(cur, &st);
    return st.is_leader;
}


static int
not_leader(void)
{
    return !is_leader();
}


static int
put_sent(void)
{
    return srv_count(mark, "PUT", OBJ) > 0;
}


static int
watching(void)
{
    return srv_count(mark, "GET", COLL "?watch=1") > 0;
}


static int
list_sent(void)
{
    return srv_count(mark, "GET", LIST) > 0;
}


static int
get_sent(void)
{
    return srv_count(mark, "GET", OBJ) > 0;
}


/*
 * How late the follower's view of b's renewals is (ms): the age of the
 * renewal it last saw.  Sampled after every run of the elector.
 */
static int64_t  view_lag;

static int
lag_sample(void)
{
    int64_t               lag;
    kle_elector_status_t  st;

    kle_elector_status(cur, &st);
    if (strcmp(st.record.holder, "b") == 0 && st.record.renew_time > 0) {
        lag = (kle_wall_us() - st.record.renew_time) / 1000;
        view_lag = lag > view_lag ? lag : view_lag;
    }

    return 0;
}


/*
 * A follower with its watch sends nothing while the holder renews, then
 * takes over a lease after the last renewal it saw, with one PUT on the
 * version of that renewal and no GET.
 */
static void
test_silent_follower(void)
{
    srv_req_t  r;
    int64_t    last;
    int        t, gets;
    char       want[64], query[128];

    srv_write("b", LD / 1000);
    cur = elector(NULL);
    mark = srv_mark();

    drive(cur, 3000, watching);
    drive(cur, 200, NULL);
    is_int(srv_count(mark, "GET", OBJ), 1, "silent: one GET to start");
    is_int(srv_count(mark, "GET", COLL "?watch=1"), 1, "silent: one watch");
    srv_last(mark, "GET", COLL "?watch=1", &r);
    snprintf(query, sizeof(query), "resourceVersion=%s", srv_rv());
    ok(strstr(r.target, query) != NULL, "silent: watched from the GET");
    ok(strstr(r.target, "allowWatchBookmarks=true") != NULL,
       "silent: with bookmarks");

    /* b renews for 3 leases: not one request from a */
    gets = srv_count(0, "GET", OBJ);
    last = 0;
    view_lag = 0;
    for (t = 0; t < 3 * LD / RP; t++) {
        srv_write("b", LD / 1000);
        last = now_ms();
        drive(cur, RP, lag_sample);
    }
    is_int(srv_count(0, "GET", OBJ) - gets, 0, "silent: no GET in steady state");

    /*
     * A process not run for a lease (a loaded machine) sees no renewal
     * for a lease, and may try to take over: the PUT, on the version it
     * saw, only loses a race.  Otherwise not one PUT.
     */
    if (view_lag < LD - RP) {
        is_int(srv_count(mark, "PUT", OBJ), 0,
               "silent: no PUT in steady state");

    } else {
        printf("#   the renewals reached a %lld ms late: a PUT may go\n",
               (long long) view_lag);
        ok(1, "silent: no PUT in steady state # SKIP a stalled process");
    }
    is_str(seen.holder, "b", "silent: b seen");

    /* b stops: a's takeover is one PUT a lease after the last renewal */
    snprintf(want, sizeof(want), "%s", srv_rv());
    mark = srv_mark();
    ok(drive(cur, LD + 1000, put_sent), "silent: a takes over");
    srv_last(mark, "PUT", OBJ, &r);
    ok(r.at - last >= LD - 50, "silent: the PUT not before the lease ends");
    ok(r.at - last < LD + 800, "silent: the PUT soon after (no poll)");
    printf("#   takeover %lld ms after the last renewal\n",
           (long long) (r.at - last));
    is_str(r.rv, want, "silent: on the last renewal's version");
    is_str(r.holder, "a", "silent: naming a");
    is_int(srv_count(mark, "GET", OBJ), 0, "silent: no GET before it");

    ok(drive(cur, 500, is_leader), "silent: a leads");
    snprintf(query, sizeof(query), "resourceVersion=%s", srv_rv());
    mark = r.seq;           /* b's silence may have restarted it before */
    ok(drive(cur, 500, watching), "silent: a new watch");
    srv_last(mark, "GET", COLL "?watch=1", &r);
    if (!ok(strstr(r.target, query) != NULL,
            "silent: watched again from the acquiring write"))
    {
        printf("#   %s, want %s\n", r.target, query);
        srv_dump(mark);
    }
}


/*
 * A leader ignores events naming it: a stale one neither moves the
 * version it renews on nor the object it writes.  Another holder in an
 * event: it steps down at once.
 */
static void
test_leader_events(void)
{
    srv_req_t  r;
    char       line[1024];

    ok(is_leader(), "leader events: leading");

    snprintf(line, sizeof(line), "{\"type\":\"MODIFIED\",\"object\":{"
             "\"kind\":\"Lease\",\"metadata\":{\"name\":\"nginx-web\","
             "\"resourceVersion\":\"7\",\"labels\":{\"stale\":\"yes\"}},"
             "\"spec\":{\"holderIdentity\":\"a\",\"leaseDurationSeconds\":2,"
             "\"leaseTransitions\":0}}}");
    srv_line(line);

    mark = srv_mark();
    drive(cur, 3 * RP, NULL);
    ok(srv_count(mark, "PUT", OBJ) >= 2, "leader events: renewing");
    is_int(srv_count(mark, "GET", OBJ), 0, "leader events: no GET");
    srv_last(mark, "PUT", OBJ, &r);
    is_int(r.code, 200, "leader events: renewals succeed");
    ok(strcmp(r.rv, "7") != 0, "leader events: not on the stale version");
    ok(strstr(r.labels, "stale") == NULL,
       "leader events: nor on the stale object");
    ok(is_leader(), "leader events: still leading");

    srv_write("c", 10);
    mark = srv_mark();
    ok(drive(cur, 1000, not_leader), "leader events: c seen, stepped down");
    is_int(seen.stopped, 1, "leader events: stopped_leading once");
    is_str(seen.holder, "c", "leader events: c is the leader");

    /*
     * A renewal in flight then gets a 409.  If the event came first, that
     * is all; if the 409 came first, it is read once (test_election.c
     * covers both orders on a fake clock).
     */
    drive(cur, 2 * RP, NULL);
    ok(srv_count(mark, "GET", OBJ) <= 1,
       "leader events: at most the 409's one GET");
}


static int
two_watches(void)
{
    return srv_count(mark, "GET", COLL "?watch=1") >= 2;
}


/*
 * BOOKMARK only moves the version the watch resumes from; a watch the
 * server ends resumes from it without a GET; ERROR 410 (or an HTTP 410)
 * costs one list, then a watch from the list's version (the object's own
 * may predate the compaction).
 */
static void
test_watch_resume(void)
{
    srv_req_t  r;
    char       query[128];

    mark = srv_mark();

    /* unknown, broken and error lines go through the same handler */
    srv_line("{\"type\":\"SURPRISE\",\"object\":{}}");
    srv_line("{\"type\":\"ERROR\"}");
    srv_line("not json at all");
    srv_line("{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\","
             "\"code\":500,\"message\":\"internal\"}}");
    drive(cur, 100, NULL);

    mark = srv_mark();
    drive(cur, 2 * RP, NULL);
    srv_line("{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\","
             "\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\","
             "\"message\":\"too old resource version\",\"reason\":\"Expired\","
             "\"code\":410}}");
    ok(drive(cur, 1000, list_sent), "410 event: a list");
    srv_last(mark, "GET", LIST, &r);
    mark = r.seq;
    ok(drive(cur, 1000, watching), "410 event: then a watch");
    is_int(srv_count(mark, "GET", LIST), 1, "410 event: one list");
    is_int(srv_count(mark, "GET", OBJ), 0, "410 event: no GET of the object");
    snprintf(query, sizeof(query), "resourceVersion=%ld", atol(srv_rv()) + 1000);
    srv_last(mark, "GET", COLL "?watch=1", &r);
    ok(strstr(r.target, query) != NULL,
       "410 event: from the list's version, not the object's");

    /* the watch refused with an HTTP 410 at once */
    pthread_mutex_lock(&srv.mu);
    srv.watch_code = 410;
    pthread_mutex_unlock(&srv.mu);
    srv_end_watches();
    mark = srv_mark();
    drive(cur, 2000, two_watches);
    is_int(srv_count(mark, "GET", LIST), 1, "HTTP 410: one list");
    ok(two_watches(), "HTTP 410: watching again after it");
}


static int
holder_x(void)
{
    return strcmp(seen.holder, "x") == 0;
}


/*
 * Framing: empty lines (LF and CRLF) in bulk cost linear time, and an
 * event cut across reads is put back together.
 */
static void
test_framing(void)
{
    char    *junk, line[1024];
    size_t   n, half;
    int64_t  t0, cpu0;

    n = 3 * 1024 * 1024;
    junk = malloc(n);
    for (half = 0; half < n; half += 2) {
        junk[half] = '\r';
        junk[half + 1] = '\n';
    }
    memset(junk, '\n', n / 2);

    t0 = now_ms();
    cpu0 = cpu_ms();
    srv_raw(junk, n);
    snprintf(line, sizeof(line), "{\"type\":\"MODIFIED\",\"object\":{"
             "\"kind\":\"Lease\",\"metadata\":{\"name\":\"nginx-web\","
             "\"resourceVersion\":\"%ld\"},\"spec\":{\"holderIdentity\":"
             "\"x\",\"leaseDurationSeconds\":10}}}\r\n", srv.rv + 1);
    half = strlen(line) / 2;
    srv_raw(line, half);
    drive(cur, 50, NULL);
    srv_raw(line + half, strlen(line) - half);
    ok(drive(cur, 30000, holder_x), "framing: the cut event arrives");
    printf("#   3 MiB of empty lines and an event in %lld ms, %lld ms of "
           "CPU\n", (long long) (now_ms() - t0),
           (long long) (cpu_ms() - cpu0));

    /* CPU time: a loaded machine stretches the wall clock, not this */
    ok(cpu_ms() - cpu0 < 3000, "framing: in linear time");
    free(junk);
}


/*
 * Log lines: holders and Status messages have their control characters
 * escaped; hook URLs lose their userinfo.
 */
static void
test_logs(void)
{
    kle_elector_t  *el;
    char            hook[256];
    int             i, bad;

    snprintf(hook, sizeof(hook), "http://user:secret@127.0.0.1:%d/hook",
             srv.port);

    pthread_mutex_lock(&srv.mu);
    srv.exists = 0;
    srv.hook_code = 500;
    pthread_mutex_unlock(&srv.mu);

    el = elector(hook);
    cur = el;
    ok(drive(el, 2000, is_leader), "logs: leading");
    drive(el, 300, NULL);

    srv_write("evil\nholder", 10);
    pthread_mutex_lock(&srv.mu);
    srv.put_code = 500;
    snprintf(srv.status_message, sizeof(srv.status_message),
             "line one\\nforged: line two");
    pthread_mutex_unlock(&srv.mu);
    drive(el, 1000, NULL);

    bad = 0;
    for (i = 0; i < seen.n; i++) {
        bad += strchr(seen.lines[i], '\n') != NULL
               || strchr(seen.lines[i], '\r') != NULL;
    }
    is_int(bad, 0, "logs: no line holds a newline");
    ok(logged("evil\\x0aholder") > 0, "logs: the holder escaped");
    is_int(logged("secret"), 0, "logs: no userinfo");
    ok(logged("http://127.0.0.1:") > 0, "logs: the hook URL without it");

    /* the token's read error: once per change of condition */
    snprintf(creds.token_error, sizeof(creds.token_error),
             "token \"/t\": Permission denied");
    srv_write("a2", 1);
    drive(el, 3 * RP, NULL);
    srv_write("a3", 1);
    drive(el, 3 * RP, NULL);
    is_int(logged("Permission denied"), 1, "logs: a token error once");
    creds.token_error[0] = '\0';
    srv_write("a4", 1);
    drive(el, 3 * RP, NULL);
    is_int(logged("the token is read again"), 1, "logs: its end once");

    pthread_mutex_lock(&srv.mu);
    srv.hook_code = 0;
    srv.status_message[0] = '\0';
    pthread_mutex_unlock(&srv.mu);

    kle_elector_destroy(el);
}


/* kle_elector_stop() from inside callbacks: nothing is sent after it. */
static void
test_stop_in_callbacks(void)
{
    kle_elector_t  *el;
    srv_req_t       r;
    char            hook[256];
    int             m, n;

    snprintf(hook, sizeof(hook), "http://127.0.0.1:%d/hook", srv.port);

    /*
     * on_started_leading: no hook, no watch, no renewal after the stop.
     * Only the started hook: the new-leader one fires before the callback,
     * so it may leave.  A watch started before the CREATE (a follower
     * watches from its first read) is on another connection and may reach
     * the server after it: what counts is what arrives after the stop.
     */
    pthread_mutex_lock(&srv.mu);
    srv.exists = 0;
    pthread_mutex_unlock(&srv.mu);
    el = elector_hooks(hook, NULL);
    cur = el;
    seen.stop_on_started = 1;
    m = srv_mark();
    drive(el, 3 * RP, NULL);
    is_int(seen.started, 1, "stop in started: it started");
    is_int(srv_count(m, "POST", COLL), 1, "stop in started: one CREATE");
    ok(srv_last(m, "POST", COLL, &r), "stop in started: the CREATE");
    ok(seen.stop_mark > r.seq, "stop in started: stopped after the CREATE");
    n = srv_count(seen.stop_mark, NULL, "");
    is_int(n, 0, "stop in started: nothing after it (hook, watch, renewal)");
    if (n != 0) {
        srv_dump(m);
    }
    is_int(srv_count(m, "PUT", OBJ), 0, "stop in started: no renewal");
    is_int(srv_count(m, NULL, "/hook"), 0, "stop in started: no hook");
    ok(kle_elector_done(el), "stop in started: done");
    kle_elector_destroy(el);

    /* on_new_leader, called from a watch event */
    srv_write("b", 10);
    el = elector(hook);
    cur = el;
    snprintf(seen.stop_on_holder, sizeof(seen.stop_on_holder), "x");
    mark = srv_mark();
    drive(el, 500, watching);
    drive(el, 100, NULL);
    srv_write("x", 1);
    drive(el, 200, NULL);
    m = srv_mark();
    drive(el, LD + 500, NULL);
    ok(holder_x(), "stop in an event: x seen");
    is_int(srv_mark() - m, 0, "stop in an event: nothing sent after");
    kle_elector_destroy(el);
}


/* A lost race on the takeover is read once. */
static void
test_conflict(void)
{
    kle_elector_t  *el;

    srv_write("b", 1);
    el = elector(NULL);
    cur = el;
    drive(el, 300, NULL);

    pthread_mutex_lock(&srv.mu);
    srv.put_code = 409;
    pthread_mutex_unlock(&srv.mu);

    mark = srv_mark();
    ok(drive(el, 2000, put_sent), "409: the takeover PUT");
    drive(el, 1000, get_sent);
    drive(el, 100, NULL);
    is_int(srv_count(mark, "GET", OBJ), 1, "409: then one GET");
    ok(drive(el, 1000, is_leader), "409: then it leads");
    is_int(logged("lost a race"), 1, "409: logged as a lost race");
    kle_elector_destroy(el);
}


static int
renewals_seen(void)
{
    kle_elector_status_t  st;

    kle_elector_status(cur, &st);
    /* renewals are seen: the last one observed is recent */
    return strcmp(st.record.holder, "b") == 0
           && kle_wall_us() - st.record.renew_time < 2 * RP * 1000;
}


/*
 * Every open connection dies silently (held, not closed) while b renews:
 * the follower's watch, silent for a renew deadline although b was seen
 * renewing every retry period, is given up with its connections and
 * started again on a new one, from where it was; then it sends nothing
 * again.  Its in-flight watch must not stall it until the watch's own
 * timeout (300 s).  A quiet lock (no renewals seen) is test_silent_follower.
 */
static void
test_dead_watch(void)
{
    kle_elector_t  *el;
    srv_req_t       r;
    int64_t         frozen, t;
    int             got, n;
    char            query[64];

    srv_write("b", LD / 1000);
    el = elector(NULL);
    cur = el;
    mark = srv_mark();
    ok(drive(el, 1000, watching), "dead watch: watching");
    drive(el, 100, NULL);

    /* steady state: b renews every retry period, a sees it */
    for (t = 0; t < 3; t++) {
        srv_write("b", LD / 1000);
        drive(el, RP, NULL);
    }

    srv_freeze(0);
    frozen = now_ms();
    snprintf(query, sizeof(query), "resourceVersion=%s", srv_rv());
    mark = srv_mark();

    /* b renews every retry period: the frozen watch shows none of it */
    got = 0;
    for (t = 0; t < RD + 600 && !got; t += RP) {
        srv_write("b", LD / 1000);
        got = drive(el, RP, watching);
    }
    ok(got, "dead watch: watching again");
    printf("#   a new watch %lld ms after the freeze\n",
           (long long) (now_ms() - frozen));
    ok(srv_last(mark, "GET", COLL "?watch=1", &r), "dead watch: its GET");
    ok(r.at - frozen <= RD + RP + 200,
       "dead watch: within a renew deadline of the last event");
    ok(strstr(r.target, query) != NULL, "dead watch: resumed where it was");
    ok(logged("heard nothing") >= 1, "dead watch: logged");

    /* steady state again: b's renewals arrive, a sends nothing */
    drive(el, 100, NULL);
    mark = srv_mark();
    for (t = 0; t < 2 * LD; t += RP) {
        srv_write("b", LD / 1000);
        drive(el, RP, NULL);
    }
    n = srv_mark() - mark;
    is_int(n, 0, "dead watch: then nothing sent for two leases");
    if (n != 0) {
        srv_dump(mark);
    }
    ok(renewals_seen(), "dead watch: b's renewals seen");
    is_int(seen.new_leader, 1, "dead watch: no other leader seen");

    kle_elector_destroy(el);
    srv_freeze(1);
}


/*
 * A leader whose renewal times out on a dead connection renews on a new
 * one within its renew deadline: it never stops leading.
 */
static void
test_dead_leader(void)
{
    kle_elector_t  *el;
    int64_t         end;
    int             lapsed, m;

    pthread_mutex_lock(&srv.mu);
    srv.exists = 0;
    pthread_mutex_unlock(&srv.mu);
    el = elector(NULL);
    cur = el;
    ok(drive(el, 1000, is_leader), "dead leader: leading");
    mark = srv_mark();
    drive(el, 1000, watching);
    drive(el, RP, NULL);

    srv_freeze(0);
    m = srv_mark();

    lapsed = 0;
    end = now_ms() + 3 * RD;
    while (now_ms() < end) {
        drive(el, 20, NULL);
        lapsed += !is_leader();
    }
    is_int(lapsed, 0, "dead leader: leading at every sample");
    ok(srv_count(m, "PUT", OBJ) >= 3, "dead leader: renewing again");
    is_int(seen.stopped, 0, "dead leader: never stopped leading");
    /*
     * Not asserted: whether a renewal was caught in flight on a frozen
     * connection depends on which connection curl picked (6 of 26 runs
     * under load caught none).  Over HTTP/1.1 curl closes a connection
     * whose request timed out anyway; the HTTP/2 case is t/024's and
     * t/kube/test_kube_deadconn.py's.
     */
    printf("#   renewals timed out: %d\n", logged("timed out"));

    kle_elector_destroy(el);
    srv_freeze(1);
}


/*
 * A refused watch (RBAC not in force yet, a restarting API server) is
 * tried again with a backoff up to a retry period, never given up; the
 * refusal is logged once.
 */
static void
test_refused_watch(void)
{
    kle_elector_t  *el;
    srv_req_t       r;
    int64_t         first;

    srv_write("b", LD / 1000);

    pthread_mutex_lock(&srv.mu);
    srv.watch_code = 403;
    srv.watch_refusals = 2;
    pthread_mutex_unlock(&srv.mu);

    el = elector(NULL);
    cur = el;
    mark = srv_mark();
    ok(drive(el, 1000, watching), "403 watch: tried");
    srv_last(mark, "GET", COLL "?watch=1", &r);
    first = r.at;
    mark = srv_mark();
    ok(drive(el, 4 * RP, two_watches), "403 watch: tried again");
    drive(el, 4 * RP, NULL);
    srv_last(mark, "GET", COLL "?watch=1", &r);
    is_int(r.code, 200, "403 watch: then allowed");
    is_int(srv_count(mark, "GET", COLL "?watch=1"), 3,
           "403 watch: three more tries, no more");
    ok(r.at - first <= 2 * RP + 100, "403 watch: backoff within a period");
    is_int(logged("watching the lock was refused (HTTP 403)"), 1,
           "403 watch: logged once");
    ok(logged("RBAC: watch on leases") == 1, "403 watch: names the verb");
    is_int(logged("watching the lock again"), 1, "403 watch: and the end");

    /* watching: nothing more while b renews */
    drive(el, 100, NULL);
    mark = srv_mark();
    srv_write("b", LD / 1000);
    drive(el, 2 * RP, NULL);
    is_int(srv_mark() - mark, 0, "403 watch: then nothing sent");

    kle_elector_destroy(el);
}


int
main(void)
{
    kle_elector_t  *el;

    srv_start();

    memset(&creds, 0, sizeof(creds));
    creds.server = malloc(64);
    snprintf(creds.server, 64, "http://127.0.0.1:%d", srv.port);

    http = kle_http_create(NULL);

    test_silent_follower();
    test_leader_events();
    test_watch_resume();
    test_framing();
    el = cur;
    kle_elector_destroy(el);

    test_logs();
    test_stop_in_callbacks();
    test_conflict();
    test_refused_watch();
    test_dead_watch();
    test_dead_leader();

    kle_http_destroy(http);
    srv_stop();
    kle_creds_free(&creds);

    return done_testing();
}
