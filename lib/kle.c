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

#include "kle_args.h"
#include "kle_elector.h"
#include "kle_exec.h"

typedef struct {
    kle_opts_t             *opts;
    pid_t                   child;
    int64_t                 kill_at;     /* mono ms to SIGKILL, 0 if none */
    int                     leading;     /* between started and stopped */
    int                     exit_code;   /* the command's, once it ended */
    int                     exited;
} kle_run_t;

static volatile sig_atomic_t  kle_quit;

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

        /* ignored signals stay ignored across exec: restore them */
        signal(SIGTERM, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        signal(SIGHUP, SIG_DFL);
        signal(SIGPIPE, SIG_DFL);
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


/*
 * Reaps the command; returns 1 if it ended by itself (not stopped by us).
 * A command we stopped whose successor is wanted (leadership came back
 * during its grace period) is followed by a new one.
 */
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

    if (!r->exited && r->leading && !kle_quit) {
        kle_stderr(KLE_LOG_NOTICE, "leading again: starting the command "
                   "anew");
        kle_child_start(r);
    }

    return r->exited;
}


static void
kle_on_started(void *data)
{
    kle_run_t  *r = data;

    r->leading = 1;

    /* one still in its grace period is replaced once it has gone */
    if (r->child == 0) {
        kle_child_start(r);
    }
}


static void
kle_on_stopped(void *data)
{
    kle_run_t  *r = data;

    r->leading = 0;
    kle_child_stop(r);
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

    if (kle_check_run(o, err, sizeof(err)) != 0) {
        fprintf(stderr, "kle: %s\n", err);
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

    /* each kle process is an instance of its own (kle_election.h) */
    if (kle_instance_new(cfg.election.instance) != 0) {
        fprintf(stderr, "kle: getrandom() failed: %s\n", strerror(errno));
        kle_creds_free(&creds);
        return 2;
    }

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

        /* a SIGKILL is due at kill_at, not up to 100 ms after it */
        if (r.kill_at != 0 && r.kill_at - kle_now_ms() < next) {
            next = r.kill_at > kle_now_ms() ? (long) (r.kill_at - kle_now_ms())
                                            : 0;
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


/*
 * kle status with an exec user: the plugin runs once, as the elector runs
 * it (a child read from the loop, killed after its timeout).
 */
static void
kle_status_exec_log(void *data, int level, const char *msg)
{
    if (level <= KLE_LOG_NOTICE || *(int *) data) {
        kle_stderr(level, msg);
    }
}


static int
kle_status_exec(kle_creds_t *creds, kle_http_t *http, int verbose)
{
    int                usable;
    long               wake;
    kle_exec_t        *x;
    kle_exec_config_t  cfg;

    memset(&cfg, 0, sizeof(cfg));
    cfg.creds = creds;
    cfg.http = http;
    cfg.backoff_ms = 1000;
    cfg.log = kle_status_exec_log;
    cfg.data = &verbose;

    x = kle_exec_create(&cfg);
    if (x == NULL) {
        fprintf(stderr, "kle: out of memory\n");
        return -1;
    }

    for ( ;; ) {
        usable = kle_exec_check(x, kle_now_ms(), &wake);
        if (usable || kle_exec_error(x)[0] != '\0') {
            break;
        }
        kle_http_poll(http, wake < 0 || wake > 100 ? 100 : wake + 1);
    }

    if (!usable) {
        fprintf(stderr, "kle: %s\n", kle_exec_error(x));
    }

    kle_exec_destroy(x);

    return usable ? 0 : -1;
}


static void
kle_status_done(const kle_http_response_t *resp, void *data)
{
    kle_status_t  *s = data;

    s->done = 1;
    s->code = resp->code;

    kle_api_result(resp, &s->res);
    if (resp->code == 0) {
        return;
    }

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

    if (http != NULL && creds.exec != NULL
        && kle_status_exec(&creds, http, o->verbose) != 0)
    {
        goto done;
    }

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
    int         rc;
    char        err[512];
    kle_opts_t  o;

    if (argc < 2) {
        fputs(kle_usage, stderr);
        return 2;
    }

    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(kle_usage, stdout);
        return 0;
    }

    /*
     * A peer that closes while curl writes must not kill kle (curl's own
     * guard is off: CURLOPT_NOSIGNAL); the command gets it back.
     */
    signal(SIGPIPE, SIG_IGN);

    rc = kle_parse_args(argc - 1, argv + 1, &o, err, sizeof(err));
    if (rc != 0) {
        if (rc == 1) {
            fputs(kle_usage, stdout);
        } else {
            fprintf(stderr, "kle: %s\n", err);
        }
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
