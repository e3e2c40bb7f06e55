/*
 * kle: leader election from the command line, on the same core as the
 * nginx module.
 *
 *   kle run --lock leases/NS/NAME [options] -- CMD [ARGS...]
 *       runs CMD while this process leads; stops it (SIGTERM, then SIGKILL
 *       after --grace) when leadership is lost; releases the lock on exit.
 *   kle status --lock leases/NS/NAME [connection options]
 *       prints the lock's record as JSON.
 */

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <json-c/json.h>

#include "kle_elector.h"

typedef struct {
    const char             *lock;
    const char             *kubeconfig;
    const char             *context;
    const char             *server;
    const char             *token_file;
    const char             *ca_file;
    const char             *cert_file;
    const char             *key_file;
    kle_election_config_t   election;
    int64_t                 grace;
    int                     release;
    int                     events;
    int                     verbose;
    char                  **cmd;
} kle_opts_t;

typedef struct {
    kle_opts_t             *opts;
    pid_t                   child;
    int64_t                 kill_at;     /* mono ms to SIGKILL, 0 if none */
    int                     exit_code;   /* the command's, once it ended */
    int                     exited;
} kle_run_t;

static volatile sig_atomic_t  kle_quit;

static const char *kle_usage =
    "usage: kle run    --lock KIND/NAMESPACE/NAME [options] -- CMD [ARGS...]\n"
    "       kle status --lock KIND/NAMESPACE/NAME [connection options]\n"
    "\n"
    "KIND is leases or configmaps.\n"
    "\n"
    "options (run):\n"
    "  --identity ID          this candidate's identity (default: host name)\n"
    "  --address ADDR         address advertised to followers\n"
    "  --lease-duration T     default 15s (T: 15, 15s, 1500ms, 1m)\n"
    "  --renew-deadline T     default 10s\n"
    "  --retry-period T       default 2s\n"
    "  --grace T              SIGTERM to SIGKILL delay (default 5s)\n"
    "  --no-release           do not release the lock on exit\n"
    "  --events               record Kubernetes Events on the lock\n"
    "  -v, --verbose          debug logging\n"
    "\n"
    "connection options (default: in-cluster when KUBERNETES_SERVICE_HOST\n"
    "is set, else $KUBECONFIG, else ~/.kube/config):\n"
    "  --kubeconfig FILE [--context NAME]\n"
    "  --server URL [--token-file F] [--ca-file F] [--client-cert F]\n"
    "               [--client-key F]\n";


static void
kle_stderr(int level, const char *msg)
{
    static const char  *names[] = { "error", "warn", "notice", "info",
                                    "debug" };
    char                when[32];

    kle_time_format_micro(kle_wall_us(), when, sizeof(when));
    fprintf(stderr, "%s kle[%d] %s: %s\n", when, (int) getpid(),
            names[level], msg);
}


static void
kle_log_cb(void *data, int level, const char *msg)
{
    kle_run_t  *r = data;

    if (level <= KLE_LOG_INFO || r->opts->verbose) {
        kle_stderr(level, msg);
    }
}


/* "15", "15s", "1500ms", "2m", "1h" -> ms; -1 if malformed */
static int64_t
kle_parse_duration(const char *s)
{
    char     *end;
    long long n;

    errno = 0;
    n = strtoll(s, &end, 10);
    if (errno || end == s || n < 0) {
        return -1;
    }

    if (*end == '\0' || strcmp(end, "s") == 0) {
        return n * 1000;
    }
    if (strcmp(end, "ms") == 0) {
        return n;
    }
    if (strcmp(end, "m") == 0) {
        return n * 60000;
    }
    if (strcmp(end, "h") == 0) {
        return n * 3600000;
    }

    return -1;
}


static int
kle_parse_args(int argc, char **argv, kle_opts_t *o)
{
    static const struct option  longs[] = {
        { "lock", required_argument, NULL, 'l' },
        { "identity", required_argument, NULL, 'i' },
        { "address", required_argument, NULL, 'a' },
        { "lease-duration", required_argument, NULL, 'L' },
        { "renew-deadline", required_argument, NULL, 'R' },
        { "retry-period", required_argument, NULL, 'P' },
        { "grace", required_argument, NULL, 'g' },
        { "no-release", no_argument, NULL, 'n' },
        { "events", no_argument, NULL, 'e' },
        { "kubeconfig", required_argument, NULL, 'k' },
        { "context", required_argument, NULL, 'c' },
        { "server", required_argument, NULL, 's' },
        { "token-file", required_argument, NULL, 't' },
        { "ca-file", required_argument, NULL, 'C' },
        { "client-cert", required_argument, NULL, 'E' },
        { "client-key", required_argument, NULL, 'K' },
        { "verbose", no_argument, NULL, 'v' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    int64_t                     *t;
    int                          ch;

    o->election.lease_duration = 15000;
    o->election.renew_deadline = 10000;
    o->election.retry_period = 2000;
    o->grace = 5000;
    o->release = 1;
    gethostname(o->election.identity, sizeof(o->election.identity) - 1);

    while ((ch = getopt_long(argc, argv, "+vh", longs, NULL)) != -1) {
        t = NULL;

        switch (ch) {
        case 'l': o->lock = optarg; break;
        case 'i':
            snprintf(o->election.identity, sizeof(o->election.identity), "%s",
                     optarg);
            break;
        case 'a':
            snprintf(o->election.address, sizeof(o->election.address), "%s",
                     optarg);
            break;
        case 'L': t = &o->election.lease_duration; break;
        case 'R': t = &o->election.renew_deadline; break;
        case 'P': t = &o->election.retry_period; break;
        case 'g': t = &o->grace; break;
        case 'n': o->release = 0; break;
        case 'e': o->events = 1; break;
        case 'k': o->kubeconfig = optarg; break;
        case 'c': o->context = optarg; break;
        case 's': o->server = optarg; break;
        case 't': o->token_file = optarg; break;
        case 'C': o->ca_file = optarg; break;
        case 'E': o->cert_file = optarg; break;
        case 'K': o->key_file = optarg; break;
        case 'v': o->verbose = 1; break;
        default:
            fputs(kle_usage, ch == 'h' ? stdout : stderr);
            return -1;
        }

        if (t != NULL && (*t = kle_parse_duration(optarg)) < 0) {
            fprintf(stderr, "kle: invalid duration \"%s\"\n", optarg);
            return -1;
        }
    }

    if (o->lock == NULL) {
        fprintf(stderr, "kle: --lock KIND/NAMESPACE/NAME is required\n");
        return -1;
    }

    o->cmd = argv + optind;
    return 0;
}


static int
kle_load_creds(kle_opts_t *o, kle_creds_t *c)
{
    const char  *path;
    char         err[512], home[1024];
    int          rc;

    if (o->server) {
        rc = kle_creds_direct(c, o->server, o->token_file, o->ca_file,
                              o->cert_file, o->key_file, err, sizeof(err));

    } else if (o->kubeconfig == NULL && getenv("KUBERNETES_SERVICE_HOST")) {
        rc = kle_incluster_load(c, NULL, err, sizeof(err));

    } else {
        path = o->kubeconfig ? o->kubeconfig : getenv("KUBECONFIG");
        if (path == NULL || path[0] == '\0') {
            snprintf(home, sizeof(home), "%s/.kube/config",
                     getenv("HOME") ? getenv("HOME") : "");
            path = home;
        }
        rc = kle_kubeconfig_load(c, path, o->context, err, sizeof(err));
    }

    if (rc != 0) {
        fprintf(stderr, "kle: %s\n", err);
    }

    return rc;
}


/* "leases/NS/NAME" -> kind and "NS/NAME" */
static int
kle_split_lock(const char *spec, char *kind, size_t size, const char **where)
{
    const char  *slash = strchr(spec, '/');

    if (slash == NULL || (size_t) (slash - spec) >= size) {
        fprintf(stderr, "kle: invalid lock \"%s\": expected "
                "KIND/NAMESPACE/NAME\n", spec);
        return -1;
    }

    memcpy(kind, spec, slash - spec);
    kind[slash - spec] = '\0';
    *where = slash + 1;
    return 0;
}


static void
kle_on_signal(int sig)
{
    (void) sig;
    kle_quit = 1;
}


static void
kle_child_start(kle_run_t *r)
{
    pid_t  pid, parent;

    parent = getpid();
    pid = fork();
    if (pid < 0) {
        kle_stderr(KLE_LOG_ERR, "fork() failed");
        return;
    }

    if (pid == 0) {
        setpgid(0, 0);

        /*
         * If kle dies without stopping the command (SIGKILL, OOM), the
         * command must not go on acting as leader on its own.
         */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent) {
            _exit(127);
        }

        signal(SIGTERM, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        signal(SIGHUP, SIG_DFL);
        execvp(r->opts->cmd[0], r->opts->cmd);
        fprintf(stderr, "kle: cannot run \"%s\": %s\n", r->opts->cmd[0],
                strerror(errno));
        _exit(127);
    }

    setpgid(pid, pid);
    r->child = pid;
    r->kill_at = 0;
}


static void
kle_child_stop(kle_run_t *r)
{
    if (r->child > 0 && r->kill_at == 0) {
        kill(-r->child, SIGTERM);
        r->kill_at = kle_now_ms() + r->opts->grace;
    }
}


/* Reaps the command; returns 1 if it ended by itself (not stopped by us). */
static int
kle_child_reap(kle_run_t *r)
{
    int  status;

    if (r->child <= 0 || waitpid(r->child, &status, WNOHANG) != r->child) {
        if (r->child > 0 && r->kill_at && kle_now_ms() >= r->kill_at) {
            kill(-r->child, SIGKILL);
        }
        return 0;
    }

    r->exit_code = WIFEXITED(status) ? WEXITSTATUS(status)
                                     : 128 + WTERMSIG(status);
    r->exited = (r->kill_at == 0);
    r->child = 0;
    r->kill_at = 0;

    return r->exited;
}


static void
kle_on_started(void *data)
{
    kle_run_t  *r = data;

    if (r->child == 0) {
        kle_child_start(r);
    }
}


static void
kle_on_stopped(void *data)
{
    kle_child_stop(data);
}


static int
kle_cmd_run(kle_opts_t *o)
{
    kle_elector_config_t  cfg;
    kle_elector_t        *el;
    kle_http_t           *http;
    kle_creds_t           creds;
    kle_run_t             r;
    char                  kind[32], err[512];
    long                  next;

    if (o->cmd[0] == NULL) {
        fprintf(stderr, "kle: run needs a command after --\n");
        return 2;
    }

    memset(&creds, 0, sizeof(creds));
    memset(&cfg, 0, sizeof(cfg));
    memset(&r, 0, sizeof(r));
    r.opts = o;

    if (kle_split_lock(o->lock, kind, sizeof(kind), &cfg.lock_where) != 0
        || kle_load_creds(o, &creds) != 0)
    {
        return 2;
    }

    cfg.name = o->lock;
    cfg.election = o->election;
    cfg.lock_kind = kind;
    cfg.creds = &creds;
    cfg.events = o->events;
    cfg.on_started_leading = kle_on_started;
    cfg.on_stopped_leading = kle_on_stopped;
    cfg.log = kle_log_cb;
    cfg.data = &r;

    http = kle_http_create(NULL);
    el = http ? kle_elector_create(&cfg, http, err, sizeof(err)) : NULL;
    if (el == NULL) {
        fprintf(stderr, "kle: %s\n", http ? err : "cannot start libcurl");
        kle_http_destroy(http);
        kle_creds_free(&creds);
        return 2;
    }

    signal(SIGTERM, kle_on_signal);
    signal(SIGINT, kle_on_signal);
    signal(SIGHUP, kle_on_signal);

    while (!kle_quit) {
        next = kle_elector_run(el);
        if (next < 0 || next > 100) {
            next = 100;              /* look at signals and the command */
        }
        kle_http_poll(http, next);

        if (kle_child_reap(&r)) {
            kle_stderr(KLE_LOG_NOTICE, "the command exited; stepping down");
            break;
        }
    }

    kle_child_stop(&r);
    while (r.child > 0) {
        kle_child_reap(&r);
        if (r.child > 0) {
            usleep(20000);
        }
    }

    if (o->release) {
        kle_elector_release_sync(el, (long) (o->election.renew_deadline / 2));
    }

    kle_elector_destroy(el);
    kle_http_destroy(http);
    kle_creds_free(&creds);

    return r.exited ? r.exit_code : 0;
}


typedef struct {
    int               done;
    int               code;
    kle_api_result_t  res;
    char             *body;
    size_t            len;
} kle_status_t;


static void
kle_status_done(const kle_http_response_t *resp, void *data)
{
    kle_status_t  *s = data;

    s->done = 1;
    s->code = resp->code;

    if (resp->code == 0) {
        s->res.status = KLE_API_TRANSPORT;
        snprintf(s->res.message, sizeof(s->res.message), "%s", resp->error);
        return;
    }

    kle_api_classify(resp->code, resp->body, resp->body_len,
                     resp->retry_after, &s->res);
    s->body = malloc(resp->body_len + 1);
    if (s->body != NULL) {
        memcpy(s->body, resp->body, resp->body_len + 1);
        s->len = resp->body_len;
    }
}


static int
kle_cmd_status(kle_opts_t *o)
{
    kle_creds_t    creds;
    kle_lock_t     lock;
    kle_record_t   rec;
    kle_http_t    *http;
    kle_status_t   s;
    json_object   *out;
    const char    *where;
    char           kind[32], err[512], path[512], url[1024], t[32];
    int64_t        deadline;
    int            rc = 1;

    memset(&creds, 0, sizeof(creds));
    memset(&lock, 0, sizeof(lock));
    memset(&s, 0, sizeof(s));

    if (kle_split_lock(o->lock, kind, sizeof(kind), &where) != 0) {
        return 2;
    }

    if (kle_lock_init(&lock, kind, where, err, sizeof(err)) != 0) {
        fprintf(stderr, "kle: %s\n", err);
        return 2;
    }

    if (kle_load_creds(o, &creds) != 0) {
        return 2;
    }

    http = kle_http_create(NULL);
    kle_lock_object_path(&lock, path, sizeof(path));
    snprintf(url, sizeof(url), "%s%s", creds.server, path);

    if (http == NULL
        || kle_http_send(http, "GET", url, NULL, 10000, &creds,
                         kle_status_done, &s) == NULL)
    {
        fprintf(stderr, "kle: cannot start the request\n");
        goto done;
    }

    deadline = kle_now_ms() + 11000;
    while (!s.done && kle_now_ms() < deadline) {
        kle_http_poll(http, 100);
    }

    if (s.res.status != KLE_API_OK) {
        fprintf(stderr, "kle: get %s: %s%s%s\n", o->lock,
                kle_api_status_name(s.res.status),
                s.res.message[0] ? ": " : "", s.res.message);
        rc = s.res.status == KLE_API_NOT_FOUND ? 3 : 1;
        goto done;
    }

    if (kle_lock_read(&lock, s.body, s.len, &rec, err, sizeof(err)) != 0) {
        fprintf(stderr, "kle: %s\n", err);
        goto done;
    }

    out = json_object_new_object();
    json_object_object_add(out, "holderIdentity",
                           json_object_new_string(rec.holder));
    json_object_object_add(out, "address",
                           json_object_new_string(rec.address));
    json_object_object_add(out, "leaseDurationSeconds",
                           json_object_new_int(rec.lease_duration));
    kle_time_format_micro(rec.acquire_time, t, sizeof(t));
    json_object_object_add(out, "acquireTime", json_object_new_string(t));
    kle_time_format_micro(rec.renew_time, t, sizeof(t));
    json_object_object_add(out, "renewTime", json_object_new_string(t));
    json_object_object_add(out, "leaseTransitions",
                           json_object_new_int(rec.transitions));
    json_object_object_add(out, "resourceVersion",
                           json_object_new_string(lock.resource_version));
    puts(json_object_to_json_string_ext(out, JSON_C_TO_STRING_PRETTY));
    json_object_put(out);
    rc = 0;

done:

    free(s.body);
    kle_http_destroy(http);
    kle_lock_free(&lock);
    kle_creds_free(&creds);
    return rc;
}


int
main(int argc, char **argv)
{
    kle_opts_t  o;

    memset(&o, 0, sizeof(o));

    if (argc < 2) {
        fputs(kle_usage, stderr);
        return 2;
    }

    if (kle_parse_args(argc - 1, argv + 1, &o) != 0) {
        return 2;
    }

    if (strcmp(argv[1], "run") == 0) {
        return kle_cmd_run(&o);
    }

    if (strcmp(argv[1], "status") == 0) {
        return kle_cmd_status(&o);
    }

    fprintf(stderr, "kle: unknown command \"%s\"\n%s", argv[1], kle_usage);
    return 2;
}
