
/*
 * The transport's sockets and timer on nginx's event loop: each socket
 * curl opens gets an ngx_connection_t with level-triggered events, its
 * timer an ngx_event_t.  The fds stay curl's: nginx never closes them.
 * Every event asks the guard first: an elector whose configuration is
 * over is destroyed, loop included, before it sees another byte.
 *
 * The transport may give up all its connections at once (kle_http_retire:
 * a request timed out, or the watch fell silent): it closes them through
 * the closing callback, each before its fd can be reused, and keeps one
 * timer for all its curl multis.  Nothing here depends on which multi a
 * socket belongs to.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_http.h>

#include "ngx_http_leader_election_module.h"


struct ngx_http_leader_election_loop_s {
    kle_http_t                       *http;
    ngx_event_t                       timer;
    ngx_connection_t                  dummy;  /* the timer's data */
    ngx_queue_t                       conns;  /* linked through c->queue */
    ngx_log_t                        *log;
    ngx_http_leader_election_guard_pt guard;
    void                             *data;
    unsigned                          destroying:1;
};


static void *ngx_http_leader_election_watch(void *host, int fd, int what,
    void *sock);
static ngx_int_t ngx_http_leader_election_watch_event(ngx_event_t *ev,
    ngx_int_t event, ngx_uint_t on);
static void ngx_http_leader_election_closing(void *host, int fd, void *sock);
static int ngx_http_leader_election_timer(void *host, long ms);
static void ngx_http_leader_election_free_connection(ngx_connection_t *c,
    ngx_uint_t flags);
static void ngx_http_leader_election_read_handler(ngx_event_t *rev);
static void ngx_http_leader_election_write_handler(ngx_event_t *wev);
static void ngx_http_leader_election_timer_handler(ngx_event_t *ev);


ngx_http_leader_election_loop_t *
ngx_http_leader_election_loop_create(ngx_log_t *log,
    ngx_http_leader_election_guard_pt guard, void *data)
{
    kle_http_loop_t                   hooks;
    ngx_http_leader_election_loop_t  *loop;

    loop = ngx_calloc(sizeof(ngx_http_leader_election_loop_t), log);
    if (loop == NULL) {
        return NULL;
    }

    loop->log = log;
    loop->guard = guard;
    loop->data = data;
    ngx_queue_init(&loop->conns);

    /* a dummy connection, as the event debug log reads ev->data's fd */

    loop->dummy.fd = (ngx_socket_t) -1;
    loop->dummy.data = loop;

    loop->timer.handler = ngx_http_leader_election_timer_handler;
    loop->timer.data = &loop->dummy;
    loop->timer.log = log;
    loop->timer.cancelable = 1;

    hooks.watch = ngx_http_leader_election_watch;
    hooks.timer = ngx_http_leader_election_timer;
    hooks.closing = ngx_http_leader_election_closing;
    hooks.host = loop;

    loop->http = kle_http_create(&hooks);
    if (loop->http == NULL) {
        ngx_free(loop);
        return NULL;
    }

    return loop;
}


kle_http_t *
ngx_http_leader_election_loop_http(ngx_http_leader_election_loop_t *loop)
{
    return loop->http;
}


void
ngx_http_leader_election_loop_destroy(ngx_http_leader_election_loop_t *loop)
{
    ngx_queue_t       *q;
    ngx_connection_t  *c;

    /* curl still calls back while it closes its cached connections */

    loop->destroying = 1;

    kle_http_destroy(loop->http);
    loop->http = NULL;

    /* any socket curl closed without a word: its fd is gone already */

    while (!ngx_queue_empty(&loop->conns)) {
        q = ngx_queue_head(&loop->conns);
        c = ngx_queue_data(q, ngx_connection_t, queue);

        ngx_http_leader_election_free_connection(c, NGX_CLOSE_EVENT);
    }

    if (loop->timer.timer_set) {
        ngx_del_timer(&loop->timer);
    }

    if (loop->timer.posted) {
        ngx_delete_posted_event(&loop->timer);
    }

    ngx_free(loop);
}


static void *
ngx_http_leader_election_watch(void *host, int fd, int what, void *sock)
{
    ngx_http_leader_election_loop_t *loop = host;

    ngx_connection_t  *c;

    c = sock;

    if (what & KLE_HTTP_REMOVE) {
        if (c != NULL) {
            /* an fd curl already closed is out of epoll: no epoll_ctl() */
            ngx_http_leader_election_free_connection(c,
                    fcntl(fd, F_GETFD) == -1 ? NGX_CLOSE_EVENT : 0);
        }

        return NULL;
    }

    if (c == NULL) {

        if (loop->destroying) {
            return NULL;
        }

        c = ngx_get_connection(fd, loop->log);
        if (c == NULL) {
            return NULL;
        }

        /* c->queue is free: only reusable connections use it */

        c->data = loop;
        c->read->handler = ngx_http_leader_election_read_handler;
        c->write->handler = ngx_http_leader_election_write_handler;
        c->read->log = loop->log;
        c->write->log = loop->log;

        ngx_queue_insert_tail(&loop->conns, &c->queue);
    }

    if (ngx_http_leader_election_watch_event(c->read, NGX_READ_EVENT,
                                             what & KLE_HTTP_IN)
        != NGX_OK
        || ngx_http_leader_election_watch_event(c->write, NGX_WRITE_EVENT,
                                                what & KLE_HTTP_OUT)
           != NGX_OK)
    {
        /* curl's timeout ends the request */
        ngx_http_leader_election_free_connection(c, 0);
        return NULL;
    }

    return c;
}


/* curl reports the level it waits for, not edges */

static ngx_int_t
ngx_http_leader_election_watch_event(ngx_event_t *ev, ngx_int_t event,
    ngx_uint_t on)
{
    if (on && !ev->active) {
        return ngx_add_event(ev, event, NGX_LEVEL_EVENT);
    }

    if (!on && ev->active) {
        return ngx_del_event(ev, event, 0);
    }

    return NGX_OK;
}


/* curl closes the fd right after: the kernel drops it from epoll then */

static void
ngx_http_leader_election_closing(void *host, int fd, void *sock)
{
    if (sock != NULL) {
        ngx_http_leader_election_free_connection(sock, NGX_CLOSE_EVENT);
    }
}


static int
ngx_http_leader_election_timer(void *host, long ms)
{
    ngx_http_leader_election_loop_t *loop = host;

    ngx_event_t  *ev;

    ev = &loop->timer;

    /* a timer re-added within 300 ms of its old expiry would be ignored */

    if (ev->timer_set) {
        ngx_del_timer(ev);
    }

    if (ev->posted) {
        ngx_delete_posted_event(ev);
    }

    if (ms < 0 || loop->destroying) {
        return 0;
    }

    if (ms == 0) {
        /* "as soon as possible", but not from within curl */
        ngx_post_event(ev, &ngx_posted_next_events);
        return 0;
    }

    ngx_add_timer(ev, (ngx_msec_t) ms);

    return 0;
}


static void
ngx_http_leader_election_free_connection(ngx_connection_t *c,
    ngx_uint_t flags)
{
    if (c->read->active) {
        ngx_del_event(c->read, NGX_READ_EVENT, flags);
    }

    if (c->write->active) {
        ngx_del_event(c->write, NGX_WRITE_EVENT, flags);
    }

    if (c->read->posted) {
        ngx_delete_posted_event(c->read);
    }

    if (c->write->posted) {
        ngx_delete_posted_event(c->write);
    }

    ngx_queue_remove(&c->queue);

    /* as ngx_close_connection() does, without closing the fd */

    ngx_free_connection(c);

    c->fd = (ngx_socket_t) -1;
}


static void
ngx_http_leader_election_read_handler(ngx_event_t *rev)
{
    ngx_connection_t                 *c;
    ngx_http_leader_election_loop_t  *loop;

    c = rev->data;
    loop = c->data;

    if (loop->guard(loop->data) != NGX_OK) {
        return;
    }

    kle_http_socket_action(loop->http, c->fd, KLE_HTTP_IN);
}


static void
ngx_http_leader_election_write_handler(ngx_event_t *wev)
{
    ngx_connection_t                 *c;
    ngx_http_leader_election_loop_t  *loop;

    c = wev->data;
    loop = c->data;

    if (loop->guard(loop->data) != NGX_OK) {
        return;
    }

    kle_http_socket_action(loop->http, c->fd, KLE_HTTP_OUT);
}


static void
ngx_http_leader_election_timer_handler(ngx_event_t *ev)
{
    ngx_connection_t                 *c;
    ngx_http_leader_election_loop_t  *loop;

    c = ev->data;
    loop = c->data;

    if (loop->guard(loop->data) != NGX_OK) {
        return;
    }

    kle_http_timeout(loop->http);
}
