/*
 * HTTP transport on libcurl's multi interface.  The host's event loop plugs
 * in through watch/timer callbacks (the shape of CURLMOPT_SOCKETFUNCTION and
 * TIMERFUNCTION); hosts without one call kle_http_poll().  Never blocks.
 */

#ifndef KLE_HTTP_H
#define KLE_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include "kle_kubeconfig.h"

#define KLE_HTTP_IN      1
#define KLE_HTTP_OUT     2
#define KLE_HTTP_REMOVE  4

typedef struct {
    /*
     * Watch fd for what (KLE_HTTP_IN|OUT, or KLE_HTTP_REMOVE to stop).
     * sock is what the previous call returned for this fd (NULL at first);
     * the return value is kept and passed next time.
     */
    void  *(*watch)(void *host, int fd, int what, void *sock);
    /* Call kle_http_timeout() after ms; -1 cancels.  Returns 0. */
    int    (*timer)(void *host, long ms);
    /* curl is about to close fd: drop any reference (sock as above). */
    void   (*closing)(void *host, int fd, void *sock);
    void    *host;
} kle_http_loop_t;

typedef struct {
    int          code;         /* HTTP status, 0 if no answer */
    const char  *error;        /* transport error text, NULL if answered */
    const char  *body;         /* NUL-terminated, never NULL */
    size_t       body_len;
    const char  *retry_after;  /* Retry-After header value, NULL if none */
    int          timed_out;
    int          retired;      /* dropped by kle_http_retire(): send again */
} kle_http_response_t;

typedef void (*kle_http_done_pt)(const kle_http_response_t *resp, void *data);

typedef struct kle_http_s      kle_http_t;
typedef struct kle_http_req_s  kle_http_req_t;

#define KLE_HTTP_MAX_BODY  (4 * 1024 * 1024)   /* larger answers fail */

/* loop NULL: the built-in poll loop.  NULL on failure. */
kle_http_t *kle_http_create(const kle_http_loop_t *loop);
/* Cancels every request (their callbacks are not called) and frees. */
void kle_http_destroy(kle_http_t *h);

/*
 * Starts a request.  url is absolute.  creds NULL: a plain request (hooks),
 * else TLS settings and the bearer token come from creds (which must
 * outlive the request).  body NULL for none.  done is called exactly once,
 * from kle_http_socket_action/timeout/poll, unless the request is
 * cancelled.  NULL if it could not start.
 */
kle_http_req_t *kle_http_send(kle_http_t *h, const char *method,
    const char *url, const char *body, long timeout_ms, kle_creds_t *creds,
    kle_http_done_pt done, void *data);
/*
 * A streaming GET (a Kubernetes watch).  When the answer's status is a 200,
 * on_open is called (before any line): the watch is established.  Then
 * each complete non-empty line of the body (without its "\n" or "\r\n")
 * is handed to on_line.  done is called when the stream ends (resp->body
 * then holds what was not delivered as lines, e.g. a Status body of an
 * error).  All three run outside curl's callbacks and may cancel any
 * request, this one too.  on_open may be NULL.
 */
typedef void (*kle_http_open_pt)(void *data);
typedef void (*kle_http_line_pt)(const char *line, size_t len, void *data);

kle_http_req_t *kle_http_watch(kle_http_t *h, const char *url,
    long timeout_ms, kle_creds_t *creds, kle_http_open_pt on_open,
    kle_http_line_pt on_line, kle_http_done_pt done, void *data);
void kle_http_cancel(kle_http_t *h, kle_http_req_t *r);
/*
 * Gives up every open connection, as one may have died without a word
 * (NAT or balancer state lost; HTTP/2 carries every request on one):
 * requests started from now on go out on new connections; those in flight
 * end with resp->retired, and the old connections are closed, at the next
 * entry point below.  Done on its own when a request with creds times
 * out.  -1 (nothing changed) if out of memory.
 */
int kle_http_retire(kle_http_t *h);
int kle_http_pending(const kle_http_t *h);   /* requests in flight */
/* Monotonic ms r last received bytes (headers or body), or started. */
int64_t kle_http_heard(const kle_http_req_t *r);

/*
 * Other fds on the same loop (an exec credential plugin's pipes): ready is
 * called, outside curl, when fd can be read (or is at its end).  At most
 * KLE_HTTP_FDS at once; unwatch before closing fd.  -1 if full.
 */
#define KLE_HTTP_FDS  4

typedef void (*kle_http_fd_pt)(int fd, void *data);

int kle_http_fd_watch(kle_http_t *h, int fd, kle_http_fd_pt ready,
    void *data);
void kle_http_fd_unwatch(kle_http_t *h, int fd);

/* Event loop entry points. */
void kle_http_socket_action(kle_http_t *h, int fd, int what);
void kle_http_timeout(kle_http_t *h);
/* Built-in loop: waits up to ms for activity and processes it. */
void kle_http_poll(kle_http_t *h, long ms);

#endif /* KLE_HTTP_H */
