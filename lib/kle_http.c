/*
 * HTTP transport on libcurl's multi interface.  Two ways to drive it:
 * the host's event loop (socket and timer callbacks, as nginx does) or the
 * built-in loop (kle_http_poll: curl_multi_poll, as the CLI does).
 * Completion callbacks always run outside curl's own callbacks, so they may
 * start or cancel requests.
 *
 * Connections are kept per curl multi handle, and a multi is given up as a
 * whole (kle_http_retire): after an API request timed out, curl would
 * send the next one on the same connection (HTTP/2 multiplexes them all
 * onto one), which may have died without a word.  New requests go to a
 * fresh multi, hence new connections.  On the old one, API requests are
 * failed (resp->retired) at the next entry point; others (hooks, to other
 * servers) run to their end; then it is closed with its connections.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <curl/curl.h>

#include "kle_http.h"
#include "kle_clock.h"

#define KLE_HTTP_UA  "nginx-leader-election/0.1"

typedef struct kle_http_sock_s   kle_http_sock_t;
typedef struct kle_http_multi_s  kle_http_multi_t;

struct kle_http_sock_s {
    int               fd;
    void             *sock;      /* what the host's watch() returned */
    kle_http_multi_t *multi;     /* whose socket it is */
    kle_http_sock_t  *next;
};

struct kle_http_multi_s {
    kle_http_t        *http;
    CURLM             *multi;
    int64_t            expire;   /* mono ms curl's timer is due, -1: none */
    int                retired;  /* no new requests; closed once idle */
    kle_http_multi_t  *next;
};

struct kle_http_req_s {
    kle_http_t         *http;
    kle_http_multi_t   *multi;       /* the one it was added to */
    int                 api;         /* with creds: a timeout retires */
    CURL               *easy;
    struct curl_slist  *headers;
    struct curl_slist  *connect_to;
    char               *url;
    char               *req_body;
    char               *body;
    size_t              len;
    size_t              cap;
    size_t              off;         /* streaming: lines before it are out */
    size_t              scan;        /* streaming: no '\n' in [off, scan) */
    int                 open_pending;  /* streaming: a 200, not yet told */
    int64_t             heard;       /* mono ms of the last bytes in */
    int                 too_large;
    char                retry_after[32];
    int                 has_retry_after;
    char                error[CURL_ERROR_SIZE];
    kle_http_done_pt    done;
    kle_http_open_pt    on_open;     /* streaming: the 200 goes here */
    kle_http_line_pt    on_line;     /* streaming: lines go here */
    void               *data;
    kle_http_req_t     *prev;
    kle_http_req_t     *next;
};

struct kle_http_s {
    kle_http_multi_t  *multi;    /* new requests go here */
    kle_http_multi_t  *multis;   /* all, the retired ones too */
    int                reap;     /* retired: API requests to fail */
    kle_http_loop_t    loop;
    int                has_loop;
    kle_http_req_t    *reqs;
    int                pending;
    kle_http_sock_t   *socks;    /* fds the host watches */
    struct {
        int              fd;       /* -1: free */
        void            *sock;     /* what the host's watch() returned */
        kle_http_fd_pt   ready;
        void            *data;
    }                  fds[KLE_HTTP_FDS];
};

static int kle_http_curl_ready;


static size_t
kle_http_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    kle_http_req_t  *r = userdata;
    size_t           n = size * nmemb;
    char            *p;

    r->heard = kle_now_ms();

    /* a stream drops the lines already handed out: once per read */
    if (r->off > 0) {
        r->len -= r->off;
        memmove(r->body, r->body + r->off, r->len);
        r->body[r->len] = '\0';
        r->scan -= r->off;
        r->off = 0;
    }

    if (r->len + n > KLE_HTTP_MAX_BODY) {
        r->too_large = 1;
        return 0;                /* curl aborts the transfer */
    }

    if (r->len + n + 1 > r->cap) {
        size_t  cap = r->cap ? r->cap : 4096;

        while (cap < r->len + n + 1) {
            cap *= 2;
        }

        p = realloc(r->body, cap);
        if (p == NULL) {
            return 0;
        }

        r->body = p;
        r->cap = cap;
    }

    memcpy(r->body + r->len, ptr, n);
    r->len += n;
    r->body[r->len] = '\0';

    return n;
}


static size_t
kle_http_header(char *buf, size_t size, size_t nitems, void *userdata)
{
    kle_http_req_t  *r = userdata;
    size_t           n = size * nitems, name = sizeof("Retry-After:") - 1;
    size_t           i, j;
    long             code;

    r->heard = kle_now_ms();

    /* the blank line ending a response's headers: a 200 opens a stream */
    if (r->on_line != NULL
        && ((n == 2 && buf[0] == '\r' && buf[1] == '\n')
            || (n == 1 && buf[0] == '\n')))
    {
        code = 0;
        curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &code);
        r->open_pending = (code == 200);
        return n;
    }

    if (n > name && strncasecmp(buf, "Retry-After:", name) == 0) {
        i = name;
        while (i < n && (buf[i] == ' ' || buf[i] == '\t')) {
            i++;
        }
        for (j = 0; i < n && j < sizeof(r->retry_after) - 1; i++) {
            if (buf[i] == '\r' || buf[i] == '\n') {
                break;
            }
            r->retry_after[j++] = buf[i];
        }
        r->retry_after[j] = '\0';
        r->has_retry_after = 1;
    }

    return n;
}


static kle_http_sock_t *
kle_http_sock_find(kle_http_t *h, int fd, kle_http_sock_t ***link)
{
    kle_http_sock_t  **l, *s;

    for (l = &h->socks; (s = *l) != NULL; l = &s->next) {
        if (s->fd == fd) {
            if (link) {
                *link = l;
            }
            return s;
        }
    }

    return NULL;
}


static void
kle_http_sock_forget(kle_http_t *h, int fd)
{
    kle_http_sock_t  *s, **link;

    s = kle_http_sock_find(h, fd, &link);
    if (s != NULL) {
        *link = s->next;
        free(s);
    }
}


static int
kle_http_socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp,
    void *socketp)
{
    kle_http_multi_t *m = userp;
    kle_http_t       *h = m->http;
    kle_http_sock_t  *s;
    int               events;

    (void) easy;
    (void) socketp;

    /*
     * Our own table, not socketp: curl may still hand back the pointer of
     * a socket whose record the close callback has already dropped.
     */
    s = kle_http_sock_find(h, fd, NULL);

    if (what == CURL_POLL_REMOVE) {
        /* the fd may be another multi's by now: curl closed this one's */
        if (s != NULL && s->multi == m) {
            h->loop.watch(h->loop.host, fd, KLE_HTTP_REMOVE, s->sock);
            kle_http_sock_forget(h, fd);
        }
        return 0;
    }

    if (s == NULL) {
        s = calloc(1, sizeof(kle_http_sock_t));
        if (s == NULL) {
            return -1;
        }
        s->fd = fd;
        s->next = h->socks;
        h->socks = s;
    }

    s->multi = m;

    events = 0;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT) {
        events |= KLE_HTTP_IN;
    }
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT) {
        events |= KLE_HTTP_OUT;
    }

    s->sock = h->loop.watch(h->loop.host, fd, events, s->sock);

    return 0;
}


/*
 * The host has one timer: it is set for the earliest of the multis' (and
 * at once while retired API requests wait to be failed).
 */
static void
kle_http_arm(kle_http_t *h)
{
    kle_http_multi_t  *m;
    int64_t            first = -1, now;

    if (!h->has_loop) {
        return;
    }

    for (m = h->multis; m != NULL; m = m->next) {
        if (m->expire >= 0 && (first < 0 || m->expire < first)) {
            first = m->expire;
        }
    }

    now = kle_now_ms();

    if (h->reap) {
        first = now;
    }

    h->loop.timer(h->loop.host, first < 0 ? -1
                                : first > now ? (long) (first - now) : 0);
}


static int
kle_http_timer_cb(CURLM *multi, long ms, void *userp)
{
    kle_http_multi_t  *m = userp;

    (void) multi;

    m->expire = ms < 0 ? -1 : kle_now_ms() + ms;
    kle_http_arm(m->http);

    return 0;
}


/* curl closes its sockets here, so the host can let go of the fd first. */
static int
kle_http_close_cb(void *clientp, curl_socket_t fd)
{
    kle_http_t       *h = clientp;
    kle_http_sock_t  *s;

    s = kle_http_sock_find(h, fd, NULL);
    if (s != NULL) {
        h->loop.closing(h->loop.host, fd, s->sock);
        kle_http_sock_forget(h, fd);
    }

    return close(fd);
}


static kle_http_multi_t *
kle_http_multi(kle_http_t *h)
{
    kle_http_multi_t  *m;

    m = calloc(1, sizeof(kle_http_multi_t));
    if (m == NULL) {
        return NULL;
    }

    m->multi = curl_multi_init();
    if (m->multi == NULL) {
        free(m);
        return NULL;
    }

    m->http = h;
    m->expire = -1;

    if (h->has_loop) {
        curl_multi_setopt(m->multi, CURLMOPT_SOCKETFUNCTION,
                          kle_http_socket_cb);
        curl_multi_setopt(m->multi, CURLMOPT_SOCKETDATA, m);
        curl_multi_setopt(m->multi, CURLMOPT_TIMERFUNCTION,
                          kle_http_timer_cb);
        curl_multi_setopt(m->multi, CURLMOPT_TIMERDATA, m);
    }

    /* a watch, a request and a release may be open at once; no more */
    curl_multi_setopt(m->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 4L);

    m->next = h->multis;
    h->multis = m;

    return m;
}


/* Closes m's connections (the host hears of each socket) and frees it. */
static void
kle_http_multi_free(kle_http_t *h, kle_http_multi_t *m)
{
    kle_http_multi_t  **l;

    for (l = &h->multis; *l != NULL; l = &(*l)->next) {
        if (*l == m) {
            *l = m->next;
            break;
        }
    }

    curl_multi_cleanup(m->multi);
    free(m);
}


kle_http_t *
kle_http_create(const kle_http_loop_t *loop)
{
    int          i;
    kle_http_t  *h;

    if (!kle_http_curl_ready) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
            return NULL;
        }
        kle_http_curl_ready = 1;
    }

    h = calloc(1, sizeof(kle_http_t));
    if (h == NULL) {
        return NULL;
    }

    for (i = 0; i < KLE_HTTP_FDS; i++) {
        h->fds[i].fd = -1;
    }

    if (loop != NULL) {
        h->loop = *loop;
        h->has_loop = 1;
    }

    h->multi = kle_http_multi(h);
    if (h->multi == NULL) {
        free(h);
        return NULL;
    }

    return h;
}


int
kle_http_retire(kle_http_t *h)
{
    kle_http_multi_t  *m;

    m = kle_http_multi(h);
    if (m == NULL) {
        return -1;
    }

    h->multi->retired = 1;
    h->multi = m;
    h->reap = 1;

    /* its API requests are failed at the next entry point: make it soon */
    kle_http_arm(h);

    return 0;
}


static void
kle_http_req_free(kle_http_t *h, kle_http_req_t *r)
{
    if (r->prev) {
        r->prev->next = r->next;
    } else {
        h->reqs = r->next;
    }
    if (r->next) {
        r->next->prev = r->prev;
    }
    h->pending--;

    if (r->easy) {
        if (r->multi != NULL) {
            curl_multi_remove_handle(r->multi->multi, r->easy);
        }
        curl_easy_cleanup(r->easy);
    }
    curl_slist_free_all(r->headers);
    curl_slist_free_all(r->connect_to);
    free(r->url);
    free(r->req_body);
    free(r->body);
    free(r);
}


void
kle_http_destroy(kle_http_t *h)
{
    int  i;

    if (h == NULL) {
        return;
    }

    while (h->reqs) {
        kle_http_req_free(h, h->reqs);
    }

    for (i = 0; i < KLE_HTTP_FDS; i++) {
        if (h->fds[i].fd != -1) {
            kle_http_fd_unwatch(h, h->fds[i].fd);
        }
    }

    /* may still call the socket and close callbacks for cached connections */

    while (h->multis != NULL) {
        kle_http_multi_free(h, h->multis);
    }

    while (h->socks) {
        kle_http_sock_forget(h, h->socks->fd);
    }

    free(h);
}


static void
kle_http_blob(CURL *easy, CURLoption opt, unsigned char *data, size_t len)
{
    struct curl_blob  blob;

    blob.data = data;
    blob.len = len;
    blob.flags = CURL_BLOB_COPY;
    curl_easy_setopt(easy, opt, &blob);
}


/*
 * tls-server-name: connect to the URL's host but verify (and send SNI for)
 * another name.  libcurl verifies against the URL's host, so the URL names
 * tls_server_name and CONNECT_TO maps it to the real host.
 */
static int
kle_http_server_name(kle_http_req_t *r, const char *url, const char *name)
{
    CURLU  *u;
    char   *host = NULL, *port = NULL, *out = NULL, map[512];
    int     rc = -1;

    u = curl_url();
    if (u == NULL) {
        return -1;
    }

    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK
        || curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK
        || curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT)
           != CURLUE_OK
        || curl_url_set(u, CURLUPART_HOST, name, 0) != CURLUE_OK
        || curl_url_get(u, CURLUPART_URL, &out, 0) != CURLUE_OK)
    {
        goto done;
    }

    snprintf(map, sizeof(map), "%s:%s:%s:%s", name, port, host, port);
    r->connect_to = curl_slist_append(NULL, map);
    if (r->connect_to == NULL) {
        goto done;
    }

    free(r->url);
    r->url = strdup(out);
    rc = r->url ? 0 : -1;

done:

    curl_free(host);
    curl_free(port);
    curl_free(out);
    curl_url_cleanup(u);
    return rc;
}


/*
 * TLS and credentials, as client-go sets them: a configured CA is the only
 * trust anchor (libcurl's built-in CA file and CA path are both dropped);
 * with no CA the system's roots are used, as Go's x509.SystemCertPool.
 */
static int
kle_http_set_creds(kle_http_req_t *r, kle_creds_t *c)
{
    CURL        *e = r->easy;
    const char  *token, *bad;
    char        *auth;
    size_t       n;

    /* rechecked here, where the URL is final: never a secret in clear */
    if (kle_creds_check(c, &bad) != 0
        || (kle_creds_secret(c) && strncmp(r->url, "https://", 8) != 0))
    {
        return -1;
    }

    if (c->ca_data) {
        kle_http_blob(e, CURLOPT_CAINFO_BLOB, c->ca_data, c->ca_len);
        curl_easy_setopt(e, CURLOPT_CAINFO, NULL);
        curl_easy_setopt(e, CURLOPT_CAPATH, NULL);

    } else if (c->ca_file) {
        curl_easy_setopt(e, CURLOPT_CAINFO, c->ca_file);
        curl_easy_setopt(e, CURLOPT_CAPATH, NULL);
    }

    if (c->cert_data) {
        kle_http_blob(e, CURLOPT_SSLCERT_BLOB, c->cert_data, c->cert_len);
    } else if (c->cert_file) {
        curl_easy_setopt(e, CURLOPT_SSLCERT, c->cert_file);
    }

    if (c->key_data) {
        kle_http_blob(e, CURLOPT_SSLKEY_BLOB, c->key_data, c->key_len);
    } else if (c->key_file) {
        curl_easy_setopt(e, CURLOPT_SSLKEY, c->key_file);
    }

    if (c->insecure) {
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
    }

    if (c->proxy_url) {
        curl_easy_setopt(e, CURLOPT_PROXY, c->proxy_url);
    }

    if (c->tls_server_name) {
        if (kle_http_server_name(r, r->url, c->tls_server_name) != 0) {
            return -1;
        }
        curl_easy_setopt(e, CURLOPT_CONNECT_TO, r->connect_to);
    }

    token = kle_creds_token(c, kle_now_ms(), 0);
    if (token != NULL) {
        n = sizeof("Authorization: Bearer ") + strlen(token);
        auth = malloc(n);
        if (auth == NULL) {
            return -1;
        }
        snprintf(auth, n, "Authorization: Bearer %s", token);
        r->headers = curl_slist_append(r->headers, auth);
        /* the token is not left lying around in freed memory */
        memset(auth, 0, n);
        free(auth);
    }

    return 0;
}


static kle_http_req_t *
kle_http_start(kle_http_t *h, const char *method, const char *url,
    const char *body, long timeout_ms, kle_creds_t *creds,
    kle_http_open_pt on_open, kle_http_line_pt on_line,
    kle_http_done_pt done, void *data)
{
    CURL               *e;
    kle_http_req_t     *r;
    struct curl_slist  *l;

    r = calloc(1, sizeof(kle_http_req_t));
    if (r == NULL) {
        return NULL;
    }

    r->http = h;
    r->api = (creds != NULL);
    r->heard = kle_now_ms();
    r->done = done;
    r->on_open = on_open;
    r->on_line = on_line;
    r->data = data;
    r->next = h->reqs;
    if (h->reqs) {
        h->reqs->prev = r;
    }
    h->reqs = r;
    h->pending++;

    r->url = strdup(url);
    r->easy = e = curl_easy_init();
    if (r->url == NULL || e == NULL) {
        goto failed;
    }

    l = curl_slist_append(NULL, "Accept: application/json");
    if (l == NULL) {
        goto failed;
    }
    r->headers = l;

    if (body != NULL) {
        r->req_body = strdup(body);
        l = curl_slist_append(r->headers, "Content-Type: application/json");
        if (r->req_body == NULL || l == NULL) {
            goto failed;
        }
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->req_body);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long) strlen(body));
    }

    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    }

    if (creds != NULL && kle_http_set_creds(r, creds) != 0) {
        goto failed;
    }

    curl_easy_setopt(e, CURLOPT_URL, r->url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers);
    curl_easy_setopt(e, CURLOPT_USERAGENT, KLE_HTTP_UA);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                     timeout_ms < 10000 ? timeout_ms : 10000L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, kle_http_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, kle_http_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->error);
    curl_easy_setopt(e, CURLOPT_PRIVATE, r);

    if (h->has_loop) {
        curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, kle_http_close_cb);
        curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, h);
    }

    if (curl_multi_add_handle(h->multi->multi, e) != CURLM_OK) {
        goto failed;
    }

    r->multi = h->multi;

    return r;

failed:

    kle_http_req_free(h, r);
    return NULL;
}


kle_http_req_t *
kle_http_send(kle_http_t *h, const char *method, const char *url,
    const char *body, long timeout_ms, kle_creds_t *creds,
    kle_http_done_pt done, void *data)
{
    return kle_http_start(h, method, url, body, timeout_ms, creds, NULL,
                          NULL, done, data);
}


kle_http_req_t *
kle_http_watch(kle_http_t *h, const char *url, long timeout_ms,
    kle_creds_t *creds, kle_http_open_pt on_open, kle_http_line_pt on_line,
    kle_http_done_pt done, void *data)
{
    return kle_http_start(h, "GET", url, NULL, timeout_ms, creds, on_open,
                          on_line, done, data);
}


void
kle_http_cancel(kle_http_t *h, kle_http_req_t *r)
{
    if (r != NULL) {
        kle_http_req_free(h, r);
    }
}


int64_t
kle_http_heard(const kle_http_req_t *r)
{
    return r->heard;
}


int
kle_http_pending(const kle_http_t *h)
{
    return h->pending;
}


/*
 * Tells r's stream is open, or hands out its next non-empty line: 1 if a
 * callback ran.  The line is copied out first and the offsets moved, as
 * the callback may cancel any request, r too.  Each byte is searched for
 * a newline once, and the buffer is compacted once per read, in
 * kle_http_write: a stream of tiny lines costs linear time.
 */
static int
kle_http_line(kle_http_req_t *r)
{
    char  *nl, *line, *start;
    size_t n;
    long   code = 0;

    if (r->on_line == NULL) {
        return 0;
    }

    if (r->open_pending) {
        r->open_pending = 0;
        if (r->on_open != NULL) {
            r->on_open(r->data);
            return 1;
        }
    }

    if (r->len == r->off) {
        return 0;
    }

    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &code);
    if (code != 200) {
        return 0;                /* kept whole for the done callback */
    }

    for ( ;; ) {
        nl = memchr(r->body + r->scan, '\n', r->len - r->scan);
        if (nl == NULL) {
            r->scan = r->len;
            return 0;
        }

        start = r->body + r->off;
        n = (size_t) (nl - start);
        r->off = (size_t) (nl - r->body) + 1;
        r->scan = r->off;

        if (n > 0 && start[n - 1] == '\r') {
            n--;
        }

        if (n > 0) {
            break;
        }
    }

    line = malloc(n + 1);
    if (line == NULL) {
        return 0;
    }

    memcpy(line, start, n);
    line[n] = '\0';

    r->on_line(line, n, r->data);
    free(line);

    return 1;
}


static void
kle_http_lines(kle_http_t *h)
{
    kle_http_req_t  *r = h->reqs;

    while (r != NULL) {
        if (kle_http_line(r)) {
            r = h->reqs;         /* the list may have changed: rescan */
        } else {
            r = r->next;
        }
    }
}


/*
 * The retired multis: their API requests are failed, one at a time (a
 * callback may cancel or start any request, or retire again); a retired
 * multi with nothing left running is closed with its connections.
 */
static void
kle_http_reap(kle_http_t *h)
{
    kle_http_multi_t     *m, *next;
    kle_http_req_t       *r;
    kle_http_response_t   resp;
    kle_http_done_pt      done;
    void                 *data;

    while (h->reap) {
        for (r = h->reqs; r != NULL; r = r->next) {
            if (r->api && r->multi != NULL && r->multi->retired) {
                break;
            }
        }

        if (r == NULL) {
            h->reap = 0;
            break;
        }

        curl_multi_remove_handle(r->multi->multi, r->easy);
        r->multi = NULL;

        memset(&resp, 0, sizeof(resp));
        resp.error = "abandoned with its connection, after the server "
                     "stopped answering on it";
        resp.retired = 1;
        resp.body = "";

        done = r->done;
        data = r->data;

        done(&resp, data);

        kle_http_req_free(h, r);
    }

    for (m = h->multis; m != NULL; m = next) {
        next = m->next;

        if (!m->retired) {
            continue;
        }

        for (r = h->reqs; r != NULL; r = r->next) {
            if (r->multi == m) {
                break;
            }
        }

        if (r == NULL) {
            kle_http_multi_free(h, m);
        }
    }
}


/* Hands finished transfers to their callbacks, outside curl's callbacks. */
static void
kle_http_finish(kle_http_t *h)
{
    kle_http_multi_t     *mu;
    CURLMsg              *m;
    CURLcode              rc;
    kle_http_req_t       *r;
    kle_http_response_t   resp;
    long                  code;
    int                   left;
    kle_http_done_pt      done;
    void                 *data;

    kle_http_lines(h);

    /*
     * Multis are freed only in kle_http_reap(); one that a callback adds
     * goes to the head of the list and has no message yet.
     */
    for (mu = h->multis; mu != NULL; mu = mu->next) {

        while ((m = curl_multi_info_read(mu->multi, &left)) != NULL) {
            if (m->msg != CURLMSG_DONE) {
                continue;
            }

            r = NULL;
            curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE,
                              (char **) &r);
            if (r == NULL) {
                continue;
            }

            rc = m->data.result;
            code = 0;

            memset(&resp, 0, sizeof(resp));

            if (rc == CURLE_OK) {
                curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &code);
                resp.code = (int) code;
                resp.retry_after = r->has_retry_after ? r->retry_after
                                                      : NULL;

            } else if (r->too_large) {
                resp.error = "the answer exceeds 4 MiB";

            } else {
                resp.error = r->error[0] ? r->error : curl_easy_strerror(rc);
                resp.timed_out = (rc == CURLE_OPERATION_TIMEDOUT);
            }

            /*
             * No answer in time: its connection, and any other of this
             * multi, may be dead while still open (curl would reuse
             * them).  Retired before the callback, so that what it sends
             * goes out on a new connection.
             */
            if (resp.timed_out && r->api && r->multi == h->multi) {
                (void) kle_http_retire(h);
            }

            resp.body = r->body ? r->body + r->off : "";
            resp.body_len = r->len - r->off;

            /* detach first: the callback may start or cancel requests */
            curl_multi_remove_handle(mu->multi, r->easy);
            r->multi = NULL;
            done = r->done;
            data = r->data;

            done(&resp, data);

            kle_http_req_free(h, r);
        }
    }

    kle_http_reap(h);
}


int
kle_http_fd_watch(kle_http_t *h, int fd, kle_http_fd_pt ready, void *data)
{
    int  i;

    for (i = 0; i < KLE_HTTP_FDS; i++) {
        if (h->fds[i].fd == -1) {
            break;
        }
    }

    if (i == KLE_HTTP_FDS) {
        return -1;
    }

    h->fds[i].sock = NULL;

    if (h->has_loop) {
        h->fds[i].sock = h->loop.watch(h->loop.host, fd, KLE_HTTP_IN, NULL);
        if (h->fds[i].sock == NULL) {
            return -1;
        }
    }

    h->fds[i].fd = fd;
    h->fds[i].ready = ready;
    h->fds[i].data = data;

    return 0;
}


void
kle_http_fd_unwatch(kle_http_t *h, int fd)
{
    int  i;

    for (i = 0; i < KLE_HTTP_FDS; i++) {
        if (h->fds[i].fd != fd) {
            continue;
        }

        if (h->has_loop) {
            h->loop.watch(h->loop.host, fd, KLE_HTTP_REMOVE, h->fds[i].sock);
        }

        h->fds[i].fd = -1;
        h->fds[i].sock = NULL;
        return;
    }
}


/* 1 if fd is one of the watched fds (its callback has run). */
static int
kle_http_fd_event(kle_http_t *h, int fd)
{
    int  i;

    for (i = 0; i < KLE_HTTP_FDS; i++) {
        if (h->fds[i].fd == fd) {
            h->fds[i].ready(fd, h->fds[i].data);
            return 1;
        }
    }

    return 0;
}


void
kle_http_socket_action(kle_http_t *h, int fd, int what)
{
    kle_http_sock_t  *s;
    int               running, ev = 0;

    if (kle_http_fd_event(h, fd)) {
        return;
    }

    if (what & KLE_HTTP_IN) {
        ev |= CURL_CSELECT_IN;
    }
    if (what & KLE_HTTP_OUT) {
        ev |= CURL_CSELECT_OUT;
    }

    s = kle_http_sock_find(h, fd, NULL);

    curl_multi_socket_action(s != NULL ? s->multi->multi : h->multi->multi,
                             fd, ev, &running);
    kle_http_finish(h);
}


void
kle_http_timeout(kle_http_t *h)
{
    kle_http_multi_t  *m;
    int                running;

    /* the host has one timer for all: each multi looks at its own */
    for (m = h->multis; m != NULL; m = m->next) {
        if (m->expire >= 0) {
            curl_multi_socket_action(m->multi, CURL_SOCKET_TIMEOUT, 0,
                                     &running);
        }
    }

    kle_http_finish(h);
    kle_http_arm(h);
}


static void
kle_http_perform(kle_http_t *h)
{
    kle_http_multi_t  *m;
    int                running;

    for (m = h->multis; m != NULL; m = m->next) {
        curl_multi_perform(m->multi, &running);
    }

    kle_http_finish(h);
}


void
kle_http_poll(kle_http_t *h, long ms)
{
    int                  i;
    unsigned             n;
    struct curl_waitfd   wait[KLE_HTTP_FDS];

    kle_http_perform(h);

    if (ms > 0) {
        /* waits on the new multi; a retired one is looked at often */
        if (h->multis->next != NULL) {
            ms = ms < 50 ? ms : 50;
        }

        n = 0;
        for (i = 0; i < KLE_HTTP_FDS; i++) {
            if (h->fds[i].fd != -1) {
                wait[n].fd = h->fds[i].fd;
                wait[n].events = CURL_WAIT_POLLIN;
                wait[n].revents = 0;
                n++;
            }
        }

        curl_multi_poll(h->multi->multi, wait, n, (int) ms, NULL);

        /* a callback may unwatch others: look each one up again */
        for (i = 0; i < (int) n; i++) {
            if (wait[i].revents != 0) {
                kle_http_fd_event(h, wait[i].fd);
            }
        }

        kle_http_perform(h);
    }
}
