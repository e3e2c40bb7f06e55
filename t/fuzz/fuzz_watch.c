/*
 * The watch stream, end to end: a real elector (kle_elector, kle_http,
 * libcurl) follows a lock on a loopback server that this target plays.
 * The server answers the first GET with a Lease held by another
 * candidate, then answers the watch the elector opens with a 200 whose
 * body is the input, and closes.  So the input goes through curl's
 * reading, the transport's line framing and the elector's line handler,
 * exactly as a stream from the API server would.
 *
 * Checked: no crash, no UB, no leak (the sanitizers), the elector never
 * claims to lead (every write is refused), and it ends when asked.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz.h"
#include "kle_elector.h"

#define LEASE_BODY                                                           \
    "{\"kind\":\"Lease\",\"apiVersion\":\"coordination.k8s.io/v1\","          \
    "\"metadata\":{\"name\":\"web\",\"namespace\":\"default\","              \
    "\"resourceVersion\":\"100\"},\"spec\":{\"holderIdentity\":\"other\","   \
    "\"leaseDurationSeconds\":15,"                                           \
    "\"acquireTime\":\"2026-01-01T10:00:00.000000Z\","                       \
    "\"renewTime\":\"2026-01-01T10:00:00.000000Z\",\"leaseTransitions\":1}}"

#define STATUS_500                                                           \
    "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\","     \
    "\"reason\":\"InternalError\",\"code\":500}"

typedef struct {
    int      fd;
    char     in[8192];
    size_t   in_len;
    char    *out;
    size_t   out_len;
    size_t   out_off;
    int      watch;       /* this connection serves the watch */
} conn_t;

static int          lfd = -1;
static char         server[64];
static kle_creds_t  creds;


static void
quiet(void *data, int level, const char *msg)
{
    (void) data;
    (void) level;
    (void) msg;
}


static void
listen_once(void)
{
    struct sockaddr_in  sa;
    socklen_t           len = sizeof(sa);

    lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    FUZZ_ASSERT(lfd != -1);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    FUZZ_ASSERT(bind(lfd, (struct sockaddr *) &sa, sizeof(sa)) == 0);
    FUZZ_ASSERT(listen(lfd, 16) == 0);
    FUZZ_ASSERT(getsockname(lfd, (struct sockaddr *) &sa, &len) == 0);
    snprintf(server, sizeof(server), "http://127.0.0.1:%d",
             ntohs(sa.sin_port));

    /* plain http and no credentials: what http:// is allowed for */
    FUZZ_ASSERT(kle_creds_direct(&creds, server, NULL, NULL, NULL, NULL,
                                 NULL, 0) == 0);
}


static void
respond(conn_t *c, const char *status, const char *body, size_t len)
{
    char  head[256];
    int   n;

    /* the watch has no length: its end is the connection's end */
    if (c->watch) {
        n = snprintf(head, sizeof(head), "HTTP/1.1 %s\r\nContent-Type: "
                     "application/json\r\nConnection: close\r\n\r\n",
                     status);
    } else {
        n = snprintf(head, sizeof(head), "HTTP/1.1 %s\r\nContent-Type: "
                     "application/json\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n", status, len);
    }

    c->out = malloc(n + len + 1);
    memcpy(c->out, head, n);
    memcpy(c->out + n, body, len);
    c->out_len = n + len;
    c->out_off = 0;
}


/* Reads what the elector sent; answers a request once it is whole. */
static int
serve(conn_t *c, const uint8_t *data, size_t size, int *watches)
{
    ssize_t      r;
    char        *end, *cl;
    size_t       body;

    if (c->out == NULL) {
        r = read(c->fd, c->in + c->in_len, sizeof(c->in) - 1 - c->in_len);
        if (r <= 0) {
            return r == 0 || (errno != EAGAIN && errno != EINTR) ? -1 : 0;
        }
        c->in_len += r;
        c->in[c->in_len] = '\0';

        end = strstr(c->in, "\r\n\r\n");
        if (end == NULL) {
            return c->in_len == sizeof(c->in) - 1 ? -1 : 0;
        }

        cl = strcasestr(c->in, "\r\nContent-Length:");
        body = cl && cl < end ? strtoul(cl + 17, NULL, 10) : 0;
        if (c->in_len < (size_t) (end + 4 - c->in) + body) {
            return 0;
        }

        if (strncmp(c->in, "GET ", 4) == 0 && strstr(c->in, "watch=")) {
            c->watch = 1;
            (*watches)++;
            if (*watches == 1) {
                respond(c, "200 OK", (const char *) data, size);
            } else {
                /* a second watch: the first one was handled; park it */
                return 0;
            }

        } else if (strncmp(c->in, "GET ", 4) == 0) {
            respond(c, "200 OK", LEASE_BODY, strlen(LEASE_BODY));

        } else {
            respond(c, "500 Internal Server Error", STATUS_500,
                    strlen(STATUS_500));
        }
    }

    while (c->out_off < c->out_len) {
        r = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
                 MSG_NOSIGNAL);
        if (r < 0) {
            return errno == EAGAIN || errno == EINTR ? 0 : -1;
        }
        c->out_off += r;
    }

    return -1;           /* all written: close, as "Connection: close" says */
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                    i, n, watches, idle, fd;
    conn_t                 conns[8];
    char                   err[256];
    kle_http_t            *http;
    kle_elector_t         *el;
    kle_elector_config_t   cfg;
    kle_elector_status_t   st;

    if (size > 1024 * 1024) {
        return 0;
    }

    if (lfd == -1) {
        listen_once();
    }

    memset(&cfg, 0, sizeof(cfg));
    cfg.name = "fuzz";
    strcpy(cfg.election.identity, "me");
    cfg.election.lease_duration = 15000;
    cfg.election.renew_deadline = 10000;
    cfg.election.retry_period = 2000;
    cfg.lock_kind = "leases";
    cfg.lock_where = "default/web";
    cfg.creds = &creds;
    cfg.log = quiet;

    http = kle_http_create(NULL);
    FUZZ_ASSERT(http != NULL);
    el = kle_elector_create(&cfg, http, err, sizeof(err));
    FUZZ_ASSERT(el != NULL);

    n = 0;
    watches = 0;
    idle = 0;

    /* until the watch was answered and the elector has had its say */
    for (i = 0; i < 400 && idle < 3; i++) {
        kle_elector_run(el);
        kle_http_poll(http, 1);

        while (n < 8 && (fd = accept4(lfd, NULL, NULL,
                                      SOCK_NONBLOCK | SOCK_CLOEXEC)) != -1)
        {
            memset(&conns[n], 0, sizeof(conns[n]));
            conns[n++].fd = fd;
        }

        for (fd = 0; fd < n; fd++) {
            if (conns[fd].fd != -1 && serve(&conns[fd], data, size, &watches)
                                      < 0)
            {
                close(conns[fd].fd);
                conns[fd].fd = -1;
            }
        }

        kle_elector_status(el, &st);
        FUZZ_ASSERT(!st.is_leader);

        if (watches > 0 && kle_http_pending(http) <= 1) {
            idle++;
        }
    }

    if (getenv("KLE_FUZZ_TRACE") != NULL) {
        kle_elector_status(el, &st);
        fprintf(stderr, "loops %d watches %d conns %d pending %d state %s "
                "holder \"%s\" requests %llu last_error \"%s\"\n", i,
                watches, n, kle_http_pending(http), kle_state_name(st.state),
                st.record.holder, (unsigned long long) st.api_requests,
                st.last_error);
    }

    kle_elector_stop(el);
    kle_elector_destroy(el);
    kle_http_destroy(http);

    for (fd = 0; fd < n; fd++) {
        if (conns[fd].fd != -1) {
            close(conns[fd].fd);
        }
        free(conns[fd].out);
    }

    return 0;
}
