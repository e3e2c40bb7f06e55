/*
 * Exec credential plugins, as client-go's plugin/pkg/client/auth/exec runs
 * them, without blocking the host.
 *
 * The host may reap children of its own: nginx's master and workers call
 * waitpid(-1) on SIGCHLD and log each unknown pid.  So the plugin is not
 * our child: clone() with no exit signal starts a watcher that never
 * calls execve() (an execve() makes the exit signal SIGCHLD again), so it
 * sends no SIGCHLD and waitpid(-1) does not see it (only __WCLONE does).
 * The watcher forks the plugin, waits for it and writes its pid and exit
 * status into a pipe.  Its stdin is /dev/null, its stdout and stderr are
 * pipes; the three are read from the host's loop (kle_http_fd_watch).
 * Nothing else of the host is inherited, and the two run in a process
 * group of their own, killed whole on the timeout.
 *
 * The credential (token, client certificate and key) goes into the
 * kle_creds_t the transport reads; it never appears in a message.
 */

#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <json-c/json.h>

#include "kle_base64.h"
#include "kle_clock.h"
#include "kle_elector.h"
#include "kle_exec.h"
#include "kle_file.h"
#include "kle_record.h"
#include "kle_token.h"

#define KLE_EXEC_STACK   (64 * 1024)   /* the watcher needs little */
#define KLE_EXEC_REAPS   8          /* killed children not yet reaped */

extern char  **environ;

struct kle_exec_s {
    kle_exec_config_t   cfg;

    pid_t               pid;          /* the watcher of the run in flight,
                                         0 if none */
    pid_t               plugin;       /* the plugin, once the watcher says */
    int                 out;          /* its stdout, -1 once at its end */
    int                 err;          /* its stderr, likewise */
    int                 st;           /* the watcher's reports, likewise */
    int                 rep[4];       /* 'P' pid, 'E' errno or 'S' status */
    size_t              replen;       /* bytes of rep read */
    char               *buf;          /* stdout so far */
    size_t              len;
    char                errbuf[KLE_EXEC_ERR_MAX + 1];
    size_t              errlen;
    int                 err_cut;
    int64_t             deadline;     /* mono ms */
    pid_t               reap[KLE_EXEC_REAPS];

    int                 have;         /* creds hold a plugin credential */
    int64_t             got_at;       /* mono ms it came */
    int64_t             expires_us;   /* wall; 0: never */
    int64_t             renew_us;     /* wall: run again from then on */
    int                 refused;      /* a 401: run again now */
    int64_t             not_before;   /* mono ms: backoff after a failure */
    long                backoff;
    char                error[512];
    unsigned            runs;
};


static int kle_exec_start(kle_exec_t *x, int64_t now);
static void kle_exec_end(kle_exec_t *x);
static void kle_exec_fail(kle_exec_t *x, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void kle_exec_log(kle_exec_t *x, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));


/* The ExecCredential, checked as client-go checks it. */

static int
kle_exec_str(json_object *o, const char *key, const char **out, char *err,
    size_t errlen)
{
    json_object  *v;

    *out = NULL;

    if (!json_object_object_get_ex(o, key, &v) || v == NULL) {
        return 0;
    }

    if (!json_object_is_type(v, json_type_string)) {
        return kle_errf(err, errlen, "\"%s\" is not a string", key);
    }

    *out = json_object_get_string(v);
    if ((size_t) json_object_get_string_len(v) != strlen(*out)) {
        return kle_errf(err, errlen, "\"%s\" holds a NUL byte", key);
    }

    return 0;
}


/* A value from the plugin, quoted in a message: short, printable. */
static const char *
kle_exec_quote(const char *s, char *buf, size_t size)
{
    size_t  i;

    for (i = 0; s[i] != '\0' && i + 1 < size && i < 64; i++) {
        buf[i] = (s[i] < 0x20 || s[i] == 0x7f || s[i] == '"') ? '?' : s[i];
    }

    buf[i] = '\0';
    return buf;
}


int
kle_exec_cred_parse(const char *text, size_t len, const char *api_version,
    int64_t now_us, kle_exec_cred_t *cred, char *err, size_t errlen)
{
    char                     q[72];
    const char              *av, *kind, *token, *cert, *key, *exp, *bad;
    json_object             *o, *status;
    json_tokener            *tok;
    enum json_tokener_error  jerr;

    memset(cred, 0, sizeof(*cred));

    if (len == 0) {
        return kle_errf(err, errlen, "no output (an ExecCredential was "
                        "expected on stdout)");
    }

    tok = json_tokener_new();
    if (tok == NULL) {
        return kle_errf(err, errlen, "out of memory");
    }

    o = json_tokener_parse_ex(tok, text, (int) len);
    jerr = json_tokener_get_error(tok);

    /* nothing but whitespace may follow the object */
    if (o != NULL && jerr == json_tokener_success) {
        size_t  off = json_tokener_get_parse_end(tok);

        while (off < len && strchr(" \t\r\n", text[off]) && text[off]) {
            off++;
        }

        if (off != len) {
            jerr = json_tokener_error_parse_unexpected;
        }
    }

    json_tokener_free(tok);

    if (o == NULL || jerr != json_tokener_success) {
        json_object_put(o);
        return kle_errf(err, errlen, "the output is not JSON (%s)",
                        jerr == json_tokener_continue
                        ? "unexpected end of input"
                        : json_tokener_error_desc(jerr));
    }

    if (!json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        return kle_errf(err, errlen, "the output is not a JSON object");
    }

    if (kle_exec_str(o, "apiVersion", &av, err, errlen) != 0
        || kle_exec_str(o, "kind", &kind, err, errlen) != 0)
    {
        goto failed;
    }

    if (av == NULL || strcmp(av, api_version) != 0) {
        kle_errf(err, errlen, "the plugin answered apiVersion \"%s\", the "
                 "kubeconfig asks for \"%s\"",
                 av ? kle_exec_quote(av, q, sizeof(q)) : "", api_version);
        goto failed;
    }

    if (kind == NULL || strcmp(kind, "ExecCredential") != 0) {
        kle_errf(err, errlen, "the plugin answered kind \"%s\", not "
                 "\"ExecCredential\"",
                 kind ? kle_exec_quote(kind, q, sizeof(q)) : "");
        goto failed;
    }

    if (!json_object_object_get_ex(o, "status", &status) || status == NULL) {
        kle_errf(err, errlen, "the ExecCredential has no status");
        goto failed;
    }

    if (!json_object_is_type(status, json_type_object)) {
        kle_errf(err, errlen, "the ExecCredential's status is not an object");
        goto failed;
    }

    if (kle_exec_str(status, "token", &token, err, errlen) != 0
        || kle_exec_str(status, "clientCertificateData", &cert, err, errlen)
           != 0
        || kle_exec_str(status, "clientKeyData", &key, err, errlen) != 0
        || kle_exec_str(status, "expirationTimestamp", &exp, err, errlen)
           != 0)
    {
        goto failed;
    }

    token = (token && token[0]) ? token : NULL;
    cert = (cert && cert[0]) ? cert : NULL;
    key = (key && key[0]) ? key : NULL;

    if (token == NULL && cert == NULL && key == NULL) {
        kle_errf(err, errlen, "the ExecCredential's status holds neither a "
                 "token nor a client certificate and key");
        goto failed;
    }

    if ((cert == NULL) != (key == NULL)) {
        kle_errf(err, errlen, "the ExecCredential's status holds a client %s "
                 "without a client %s", cert ? "certificate" : "key",
                 cert ? "key" : "certificate");
        goto failed;
    }

    if (token != NULL && kle_token_check(token, strlen(token), &bad) != 0) {
        kle_errf(err, errlen, "the ExecCredential's token %s", bad);
        goto failed;
    }

    if (exp != NULL && exp[0] != '\0') {
        if (strlen(exp) < 20 || exp[10] != 'T'
            || kle_time_parse(exp, &cred->expires_us) != 0)
        {
            kle_errf(err, errlen, "expirationTimestamp \"%s\" is not an "
                     "RFC 3339 time", kle_exec_quote(exp, q, sizeof(q)));
            goto failed;
        }

        if (cred->expires_us <= now_us) {
            kle_errf(err, errlen, "the credential expired already "
                     "(expirationTimestamp \"%s\")",
                     kle_exec_quote(exp, q, sizeof(q)));
            goto failed;
        }
    }

    if ((token && (cred->token = strdup(token)) == NULL)
        || (cert && (cred->cert = (unsigned char *) strdup(cert)) == NULL)
        || (key && (cred->key = (unsigned char *) strdup(key)) == NULL))
    {
        kle_exec_cred_free(cred);
        kle_errf(err, errlen, "out of memory");
        goto failed;
    }

    cred->cert_len = cert ? strlen(cert) : 0;
    cred->key_len = key ? strlen(key) : 0;

    json_object_put(o);
    return 0;

failed:

    json_object_put(o);
    return -1;
}


void
kle_exec_cred_free(kle_exec_cred_t *cred)
{
    kle_secret_free(cred->token, cred->token ? strlen(cred->token) : 0);
    free(cred->cert);
    kle_secret_free(cred->key, cred->key_len);
    memset(cred, 0, sizeof(*cred));
}


char *
kle_exec_info(const kle_creds_t *c, char *err, size_t errlen)
{
    char           *out, *b64, why[256];
    size_t          len;
    const char     *op;
    json_object    *o, *spec, *cl;
    unsigned char  *ca;

    o = json_object_new_object();
    spec = json_object_new_object();
    if (o == NULL || spec == NULL) {
        json_object_put(o);
        json_object_put(spec);
        kle_errf(err, errlen, "out of memory");
        return NULL;
    }

    json_object_object_add(o, "kind", json_object_new_string("ExecCredential"));
    json_object_object_add(o, "apiVersion",
                           json_object_new_string(c->exec->api_version));
    json_object_object_add(o, "spec", spec);

    if (c->exec->provide_cluster_info) {
        cl = json_object_new_object();
        json_object_object_add(spec, "cluster", cl);

        json_object_object_add(cl, "server", json_object_new_string(c->server));

        if (c->tls_server_name) {
            json_object_object_add(cl, "tls-server-name",
                                   json_object_new_string(c->tls_server_name));
        }

        if (c->insecure) {
            json_object_object_add(cl, "insecure-skip-tls-verify",
                                   json_object_new_boolean(1));
        }

        /* the CA's bytes, from the file if it was named, as client-go */
        ca = c->ca_data;
        len = c->ca_len;

        if (ca == NULL && c->ca_file != NULL) {
            ca = (unsigned char *) kle_file_read(c->ca_file, KLE_FILE_MAX, 0,
                                                 &len, &op, why, sizeof(why));
            if (ca == NULL) {
                json_object_put(o);
                kle_errf(err, errlen, "certificate-authority \"%s\": %s",
                         c->ca_file, why);
                return NULL;
            }
        }

        if (ca != NULL) {
            b64 = kle_base64_encode(ca, len);
            if (ca != c->ca_data) {
                free(ca);
            }
            if (b64 == NULL) {
                json_object_put(o);
                kle_errf(err, errlen, "out of memory");
                return NULL;
            }
            json_object_object_add(cl, "certificate-authority-data",
                                   json_object_new_string(b64));
            free(b64);
        }

        if (c->proxy_url) {
            json_object_object_add(cl, "proxy-url",
                                   json_object_new_string(c->proxy_url));
        }

        /* kle_kubeconfig.c wrote it, so it parses */
        if (c->exec_config) {
            json_object_object_add(cl, "config",
                                   json_tokener_parse(c->exec_config));
        }
    }

    json_object_object_add(spec, "interactive", json_object_new_boolean(0));

    out = strdup(json_object_to_json_string_ext(o,
                                     JSON_C_TO_STRING_PLAIN
                                     | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);

    if (out == NULL) {
        kle_errf(err, errlen, "out of memory");
    }

    return out;
}


static int
kle_exec_runnable(const char *path, char *why, size_t whylen)
{
    struct stat  st;

    if (stat(path, &st) != 0) {
        return kle_errf(why, whylen, "%s", strerror(errno));
    }

    if (!S_ISREG(st.st_mode)) {
        return kle_errf(why, whylen, "is not a regular file");
    }

    if (access(path, X_OK) != 0) {
        return kle_errf(why, whylen, "is not executable: %s",
                        strerror(errno));
    }

    return 0;
}


char *
kle_exec_lookup(const char *command, const char *dir, char *why,
    size_t whylen)
{
    char        *path, reason[256];
    const char  *env, *p, *end;
    size_t       n;

    if (strchr(command, '/') != NULL) {
        if (command[0] == '/' || dir == NULL) {
            path = strdup(command);

        } else {
            /* "./x" is "x" in the kubeconfig's folder, as filepath.Join */
            while (command[0] == '.' && command[1] == '/') {
                command += 2;
                while (command[0] == '/') {
                    command++;
                }
            }
            path = kle_aprintf("%s/%s", dir, command);
        }

        if (path == NULL) {
            kle_errf(why, whylen, "out of memory");
            return NULL;
        }

        if (kle_exec_runnable(path, reason, sizeof(reason)) != 0) {
            kle_errf(why, whylen, "\"%s\" %s", path, reason);
            free(path);
            return NULL;
        }

        return path;
    }

    /* an empty PATH entry is the current folder, as for execvp() */
    env = getenv("PATH");
    if (env == NULL) {
        env = "/usr/local/bin:/usr/bin:/bin";
    }

    for (p = env; ; p = end + 1) {
        end = strchr(p, ':');
        n = end ? (size_t) (end - p) : strlen(p);

        path = kle_aprintf("%.*s%s%s", (int) n, n ? p : ".", "/", command);
        if (path == NULL) {
            kle_errf(why, whylen, "out of memory");
            return NULL;
        }

        if (kle_exec_runnable(path, reason, sizeof(reason)) == 0) {
            return path;
        }

        free(path);

        if (end == NULL) {
            break;
        }
    }

    kle_errf(why, whylen, "executable \"%s\" not found in PATH \"%.120s\"",
             command, env);
    return NULL;
}


static char **
kle_exec_strv_copy(char **src)
{
    size_t   n, i;
    char   **dst;

    if (src == NULL) {
        return NULL;
    }

    for (n = 0; src[n] != NULL; n++) { /* void */ }

    dst = calloc(n + 1, sizeof(char *));
    if (dst == NULL) {
        return NULL;
    }

    for (i = 0; i < n; i++) {
        dst[i] = strdup(src[i]);
        if (dst[i] == NULL) {
            while (i--) {
                free(dst[i]);
            }
            free(dst);
            return NULL;
        }
    }

    return dst;
}


static void
kle_exec_strv_free(char **v)
{
    size_t  i;

    if (v == NULL) {
        return;
    }

    /* env values may be secrets (AWS keys in a kubeconfig) */
    for (i = 0; v[i] != NULL; i++) {
        kle_secret_free(v[i], strlen(v[i]));
    }

    free(v);
}


int
kle_exec_conf_copy(kle_exec_conf_t **dst, const kle_exec_conf_t *src)
{
    kle_exec_conf_t  *d;

    *dst = NULL;

    if (src == NULL) {
        return 0;
    }

    d = calloc(1, sizeof(kle_exec_conf_t));
    if (d == NULL) {
        return -1;
    }

    d->provide_cluster_info = src->provide_cluster_info;

    if ((d->command = strdup(src->command)) == NULL
        || (d->path = strdup(src->path)) == NULL
        || (d->api_version = strdup(src->api_version)) == NULL
        || (src->install_hint
            && (d->install_hint = strdup(src->install_hint)) == NULL)
        || (d->argv = kle_exec_strv_copy(src->argv)) == NULL
        || (src->env && (d->env = kle_exec_strv_copy(src->env)) == NULL))
    {
        kle_exec_conf_free(d);
        return -1;
    }

    *dst = d;
    return 0;
}


void
kle_exec_conf_free(kle_exec_conf_t *conf)
{
    if (conf == NULL) {
        return;
    }

    free(conf->command);
    free(conf->path);
    free(conf->api_version);
    free(conf->install_hint);
    kle_exec_strv_free(conf->argv);
    kle_exec_strv_free(conf->env);
    free(conf);
}


/* The runner. */

kle_exec_t *
kle_exec_create(const kle_exec_config_t *cfg)
{
    kle_exec_t  *x;

    x = calloc(1, sizeof(kle_exec_t));
    if (x == NULL) {
        return NULL;
    }

    x->cfg = *cfg;
    x->out = -1;
    x->err = -1;
    x->st = -1;

    return x;
}


static void
kle_exec_close(kle_exec_t *x, int *fd)
{
    if (*fd != -1) {
        kle_http_fd_unwatch(x->cfg.http, *fd);
        close(*fd);
        *fd = -1;
    }
}


/* Collects pid if it has ended: 1 with *status, 0 if it still runs. */
static int
kle_exec_wait(pid_t pid, int *status)
{
    pid_t  r;

    do {
        r = waitpid(pid, status, WNOHANG | __WCLONE);
    } while (r == -1 && errno == EINTR);

    /* -1 (ECHILD): gone already; nothing more to learn */
    if (r == -1) {
        *status = 0;
        return 1;
    }

    return r == pid;
}


static void
kle_exec_reap(kle_exec_t *x)
{
    int  i, status;

    for (i = 0; i < KLE_EXEC_REAPS; i++) {
        if (x->reap[i] != 0 && kle_exec_wait(x->reap[i], &status)) {
            x->reap[i] = 0;
        }
    }
}


/* Ends the run in flight: its group is killed, the pid reaped later. */
static void
kle_exec_kill(kle_exec_t *x)
{
    int  i, status;

    if (x->pid == 0) {
        return;
    }

    kill(-x->pid, SIGKILL);
    kill(x->pid, SIGKILL);
    /* if it left the group; only while it runs (no final report yet) */
    if (x->plugin > 0 && x->replen < 4 * sizeof(int)) {
        kill(x->plugin, SIGKILL);
    }

    kle_exec_close(x, &x->out);
    kle_exec_close(x, &x->err);
    kle_exec_close(x, &x->st);

    if (!kle_exec_wait(x->pid, &status)) {
        for (i = 0; i < KLE_EXEC_REAPS; i++) {
            if (x->reap[i] == 0) {
                x->reap[i] = x->pid;
                break;
            }
        }
    }

    x->pid = 0;
}


void
kle_exec_destroy(kle_exec_t *x)
{
    if (x == NULL) {
        return;
    }

    kle_exec_kill(x);
    kle_exec_reap(x);
    kle_secret_free(x->buf, x->len);
    free(x);
}


const char *
kle_exec_error(const kle_exec_t *x)
{
    return x->error;
}


unsigned
kle_exec_runs(const kle_exec_t *x)
{
    return x->runs;
}


/* Drops the plugin's credential from creds. */
static void
kle_exec_forget(kle_exec_t *x)
{
    kle_creds_t  *c = x->cfg.creds;

    kle_secret_free(c->token, c->token ? strlen(c->token) : 0);
    free(c->cert_data);
    kle_secret_free(c->key_data, c->key_len);
    c->token = NULL;
    c->cert_data = NULL;
    c->cert_len = 0;
    c->key_data = NULL;
    c->key_len = 0;

    x->have = 0;
}


void
kle_exec_refused(kle_exec_t *x, int64_t sent)
{
    if (x->have && sent >= x->got_at) {
        kle_exec_forget(x);
        x->refused = 1;
    }
}


int
kle_exec_check(kle_exec_t *x, int64_t now, long *wake)
{
    int      status;
    int64_t  wall, w;

    *wake = -1;

    kle_exec_reap(x);

    wall = kle_wall_us();

    if (x->pid != 0) {
        if (x->out == -1 && x->err == -1 && x->st == -1
            && kle_exec_wait(x->pid, &status))
        {
            x->pid = 0;
            kle_exec_end(x);

        } else if (now >= x->deadline) {
            kle_exec_kill(x);
            kle_exec_fail(x, "timed out after %.3g s (killed)",
                          (x->cfg.timeout_ms ? x->cfg.timeout_ms
                                             : KLE_EXEC_TIMEOUT_MS) / 1000.0);

        } else {
            /* output ended: the exit follows at once, look again soon */
            *wake = (x->out == -1 && x->err == -1 && x->st == -1)
                    ? 10 : (long) (x->deadline - now);
        }
    }

    if (x->pid == 0
        && (!x->have || x->refused || (x->expires_us && wall >= x->renew_us)))
    {
        if (now >= x->not_before) {
            if (kle_exec_start(x, now) == 0) {
                *wake = (long) (x->deadline - now);
            }
        }

        if (x->pid == 0) {
            *wake = (long) (x->not_before > now ? x->not_before - now : 0);
        }

    } else if (x->pid == 0 && x->have && x->expires_us) {
        w = (x->renew_us - wall) / 1000 + 1;
        *wake = w > 0x7fffffff ? 0x7fffffff : (long) w;
    }

    return x->have && !x->refused && (!x->expires_us || wall < x->expires_us);
}


static void
kle_exec_read(int fd, void *data)
{
    kle_exec_t  *x = data;
    char         chunk[16384], *p;
    ssize_t      n;
    size_t       room;
    int          status, reads;

    /* a few reads per event: a plugin that writes without end must not
       hold the loop (the fd is level-triggered, the timeout ends it) */
    for (reads = 0; ; reads++) {
        if (reads == 4) {
            return;
        }

        n = read(fd, chunk, sizeof(chunk));

        if (n == -1 && errno == EINTR) {
            continue;
        }

        if (n == -1 && errno == EAGAIN) {
            return;
        }

        if (n <= 0) {
            /* the end (or an error that is one) */
            kle_exec_close(x, fd == x->out ? &x->out
                              : fd == x->err ? &x->err : &x->st);
            break;
        }

        if (fd == x->st) {
            room = sizeof(x->rep) - x->replen;
            n = (size_t) n > room ? (ssize_t) room : n;
            memcpy((char *) x->rep + x->replen, chunk, n);
            x->replen += n;

            if (x->replen >= 2 * sizeof(int) && x->rep[0] == 'P') {
                x->plugin = x->rep[1];
            }
            continue;
        }

        if (fd == x->err) {
            room = KLE_EXEC_ERR_MAX - x->errlen;
            if ((size_t) n > room) {
                x->err_cut = 1;
            }
            n = (size_t) n > room ? (ssize_t) room : n;
            memcpy(x->errbuf + x->errlen, chunk, n);
            x->errlen += n;
            continue;
        }

        if (x->len + n > KLE_EXEC_OUT_MAX) {
            kle_exec_kill(x);
            kle_exec_fail(x, "wrote more than %d KiB to stdout (killed)",
                          KLE_EXEC_OUT_MAX / 1024);
            goto done;
        }

        p = realloc(x->buf, x->len + n + 1);
        if (p == NULL) {
            kle_exec_kill(x);
            kle_exec_fail(x, "out of memory");
            goto done;
        }

        x->buf = p;
        memcpy(x->buf + x->len, chunk, n);
        x->len += n;
    }

    if (x->out != -1 || x->err != -1 || x->st != -1) {
        return;
    }

    /* all three at their end: the watcher has exited, or is about to */
    if (x->pid != 0 && kle_exec_wait(x->pid, &status)) {
        x->pid = 0;
        kle_exec_end(x);
    }

done:

    /* the host runs kle_exec_check() next, which collects a late exit */
    if (x->cfg.done) {
        x->cfg.done(x->cfg.data);
    }
}


/*
 * The watcher, after clone(): a copy of the host that only makes
 * async-signal-safe calls.  Its fds: 0-2 the plugin's stdio, 3 the
 * reports; nothing else of the host's (listening sockets, connections).
 */

typedef struct {
    const char   *path;
    char        **argv;
    char        **envp;
    int           in, out, err, st;
} kle_exec_child_t;


static void
kle_exec_report(int kind, int value)
{
    int  rec[2];

    rec[0] = kind;
    rec[1] = value;
    (void) !write(3, rec, sizeof(rec));
}


static int
kle_exec_watcher(void *arg)
{
    int                i, e, status, rep[2];
    pid_t              pid;
    ssize_t            n;
    sigset_t           none;
    kle_exec_child_t  *ch = arg;

    /* the host's handlers must not run here (nginx's would reap) */
    for (i = 1; i < NSIG; i++) {
        signal(i, SIG_DFL);
    }

    if (dup2(ch->in, 0) == -1 || dup2(ch->out, 1) == -1
        || dup2(ch->err, 2) == -1 || dup2(ch->st, 3) == -1)
    {
        _exit(126);
    }

#ifdef SYS_close_range
    if (syscall(SYS_close_range, 4, ~0U, 0) != 0)
#endif
    {
        for (i = 4; i < 65536; i++) {
            close(i);
        }
    }

    setpgid(0, 0);

    if (pipe2(rep, O_CLOEXEC) != 0) {
        kle_exec_report('E', errno);
        _exit(0);
    }

    pid = fork();

    if (pid == 0) {
        close(3);
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);

        execve(ch->path, ch->argv, ch->envp);

        e = errno;
        (void) !write(rep[1], &e, sizeof(e));
        _exit(127);
    }

    if (pid == -1) {
        kle_exec_report('E', errno);
        _exit(0);
    }

    kle_exec_report('P', (int) pid);

    /* the plugin's stdio stays with the plugin: EOF is its own */
    close(0);
    close(1);
    close(2);
    close(rep[1]);

    do {
        n = read(rep[0], &e, sizeof(e));
    } while (n == -1 && errno == EINTR);

    while (waitpid(pid, &status, 0) == -1 && errno == EINTR) {
        /* void */
    }

    if (n == sizeof(e)) {
        kle_exec_report('E', e);
    } else {
        kle_exec_report('S', status);
    }

    _exit(0);
}


/* environ, then the kubeconfig's env, then KUBERNETES_EXEC_INFO */
static char **
kle_exec_envp(kle_exec_t *x, char *info)
{
    size_t   n, m, i, k;
    char   **envp, **add;

    add = x->cfg.creds->exec->env;

    for (n = 0; environ && environ[n]; n++) { /* void */ }
    for (m = 0; add && add[m]; m++) { /* void */ }

    envp = calloc(n + m + 2, sizeof(char *));
    if (envp == NULL) {
        return NULL;
    }

    k = 0;
    for (i = 0; i < n; i++) {
        if (strncmp(environ[i], "KUBERNETES_EXEC_INFO=", 21) != 0) {
            envp[k++] = environ[i];
        }
    }

    for (i = 0; i < m; i++) {
        envp[k++] = add[i];
    }

    envp[k] = info;

    return envp;
}


static int
kle_exec_start(kle_exec_t *x, int64_t now)
{
    int                e, i, fds[7], flags;
    char              *info, *entry, *stack, err[256];
    char             **envp;
    sigset_t           all, saved;
    kle_exec_child_t   ch;
    kle_exec_conf_t   *conf = x->cfg.creds->exec;

    /* stdout, stderr and reports: read end, write end; /dev/null */
    for (i = 0; i < 7; i++) {
        fds[i] = -1;
    }

    envp = NULL;
    entry = NULL;

    x->runs++;
    x->len = 0;
    x->errlen = 0;
    x->err_cut = 0;
    x->replen = 0;
    x->plugin = 0;

    info = kle_exec_info(x->cfg.creds, err, sizeof(err));
    if (info == NULL) {
        kle_exec_fail(x, "%s", err);
        return -1;
    }

    entry = kle_aprintf("KUBERNETES_EXEC_INFO=%s", info);
    free(info);
    stack = malloc(KLE_EXEC_STACK);

    if (entry == NULL || stack == NULL
        || (envp = kle_exec_envp(x, entry)) == NULL)
    {
        kle_exec_fail(x, "out of memory");
        goto failed;
    }

    if (pipe2(&fds[0], O_CLOEXEC) != 0 || pipe2(&fds[2], O_CLOEXEC) != 0
        || pipe2(&fds[4], O_CLOEXEC) != 0
        || (fds[6] = open("/dev/null", O_RDONLY | O_CLOEXEC)) == -1)
    {
        kle_exec_fail(x, "cannot start: %s", strerror(errno));
        goto failed;
    }

    ch.path = conf->path;
    ch.argv = conf->argv;
    ch.envp = envp;
    ch.out = fds[1];
    ch.err = fds[3];
    ch.st = fds[5];
    ch.in = fds[6];

    /*
     * No exit signal (the low byte of the flags is 0), no shared memory:
     * the watcher runs on its own copy, stack included.  Signals stay
     * blocked until it has reset the host's handlers.
     */
    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, &saved);

    x->pid = clone(kle_exec_watcher, stack + KLE_EXEC_STACK, 0, &ch);
    e = errno;

    sigprocmask(SIG_SETMASK, &saved, NULL);

    for (i = 1; i < 7; i += 2) {
        close(fds[i]);
        fds[i] = -1;
    }
    close(fds[6]);
    fds[6] = -1;

    if (x->pid == -1) {
        x->pid = 0;
        kle_exec_fail(x, "cannot start: clone(): %s", strerror(e));
        goto failed;
    }

    for (i = 0; i < 6; i += 2) {
        flags = fcntl(fds[i], F_GETFL);
        fcntl(fds[i], F_SETFL, flags | O_NONBLOCK);
    }

    x->out = fds[0];
    x->err = fds[2];
    x->st = fds[4];
    fds[0] = fds[2] = fds[4] = -1;

    if (kle_http_fd_watch(x->cfg.http, x->out, kle_exec_read, x) != 0
        || kle_http_fd_watch(x->cfg.http, x->err, kle_exec_read, x) != 0
        || kle_http_fd_watch(x->cfg.http, x->st, kle_exec_read, x) != 0)
    {
        kle_exec_kill(x);
        kle_exec_fail(x, "cannot watch its output");
        goto failed;
    }

    x->deadline = now + (x->cfg.timeout_ms ? x->cfg.timeout_ms
                                           : KLE_EXEC_TIMEOUT_MS);

    kle_exec_log(x, KLE_LOG_DEBUG, "exec plugin \"%s\" started",
                 conf->command);

    free(stack);
    free(envp);
    free(entry);
    return 0;

failed:

    for (i = 0; i < 7; i++) {
        if (fds[i] != -1) {
            close(fds[i]);
        }
    }

    free(stack);
    free(envp);
    free(entry);
    return -1;
}


/* stderr, as the plugin wrote it, escaped by the logger: never a token */
static void
kle_exec_stderr(kle_exec_t *x, int level)
{
    char    text[4 * KLE_EXEC_ERR_MAX + 1];
    size_t  n;

    n = x->errlen;
    while (n > 0 && (x->errbuf[n - 1] == '\n' || x->errbuf[n - 1] == '\r')) {
        n--;
    }

    if (n == 0) {
        return;
    }

    x->errbuf[n] = '\0';

    /* one line, whatever the plugin wrote: every host logs it as such */
    kle_escape(x->errbuf, text, sizeof(text));

    kle_exec_log(x, level, "exec plugin \"%s\" stderr: %s%s",
                 x->cfg.creds->exec->command, text,
                 x->err_cut ? "..." : "");
}


static void
kle_exec_end(kle_exec_t *x)
{
    int              status, *last;
    char             err[256], when[32] = "";
    int64_t          wall, life, early;
    kle_creds_t     *c = x->cfg.creds;
    kle_exec_cred_t  cred;

    /* the watcher's last report: 'S' status or 'E' errno */
    last = x->replen >= 4 * sizeof(int) ? &x->rep[2]
           : x->replen >= 2 * sizeof(int) ? &x->rep[0] : NULL;

    if (last == NULL || last[0] == 'P') {
        kle_exec_fail(x, "ended without a word (killed?)");
        return;
    }

    if (last[0] == 'E') {
        kle_exec_fail(x, "cannot run \"%s\": %s%s%s", c->exec->path,
                      strerror(last[1]), c->exec->install_hint ? "; " : "",
                      c->exec->install_hint ? c->exec->install_hint : "");
        return;
    }

    status = last[1];

    if (WIFSIGNALED(status)) {
        kle_exec_stderr(x, KLE_LOG_WARN);
        kle_exec_fail(x, "killed by signal %d", WTERMSIG(status));
        return;
    }

    if (WEXITSTATUS(status) != 0) {
        kle_exec_stderr(x, KLE_LOG_WARN);
        kle_exec_fail(x, "failed with exit code %d", WEXITSTATUS(status));
        return;
    }

    kle_exec_stderr(x, KLE_LOG_INFO);

    wall = kle_wall_us();

    if (kle_exec_cred_parse(x->buf ? x->buf : "", x->len,
                            c->exec->api_version, wall, &cred, err,
                            sizeof(err))
        != 0)
    {
        kle_exec_fail(x, "%s", err);
        return;
    }

    kle_secret_free(x->buf, x->len);
    x->buf = NULL;
    x->len = 0;

    kle_exec_forget(x);

    c->token = cred.token;
    c->cert_data = cred.cert;
    c->cert_len = cred.cert_len;
    c->key_data = cred.key;
    c->key_len = cred.key_len;

    x->have = 1;
    x->got_at = kle_now_ms();
    x->refused = 0;
    x->backoff = 0;
    x->not_before = 0;
    x->expires_us = cred.expires_us;

    /* a leader must not wait for a run at expiry: start one before it */
    if (x->expires_us) {
        life = x->expires_us - wall;
        early = life / 4 < KLE_EXEC_EARLY_MS * 1000LL
                ? life / 4 : KLE_EXEC_EARLY_MS * 1000LL;
        x->renew_us = x->expires_us - early;
        kle_time_format_rfc3339(x->expires_us, when, sizeof(when));
    }

    if (x->error[0] != '\0') {
        kle_exec_log(x, KLE_LOG_NOTICE, "exec plugin \"%s\" works again",
                     c->exec->command);
        x->error[0] = '\0';
    }

    kle_exec_log(x, KLE_LOG_INFO, "exec plugin \"%s\" gave a %s%s%s, %s%s",
                 c->exec->command,
                 cred.token ? "token" : "",
                 cred.token && cred.cert ? " and " : "",
                 cred.cert ? "client certificate" : "",
                 x->expires_us ? "valid until " : "without expiry",
                 x->expires_us ? when : "");
}


static void
kle_exec_fail(kle_exec_t *x, const char *fmt, ...)
{
    char             why[384];
    va_list          ap;
    kle_exec_conf_t *conf = x->cfg.creds->exec;

    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);

    kle_secret_free(x->buf, x->len);
    x->buf = NULL;
    x->len = 0;

    /* the next run waits: retry period, doubled per failure, up to 60 s */
    x->backoff = x->backoff ? x->backoff * 2 : x->cfg.backoff_ms;
    if (x->backoff > KLE_EXEC_BACKOFF_MAX) {
        x->backoff = KLE_EXEC_BACKOFF_MAX;
    }
    x->not_before = kle_now_ms() + x->backoff;

    snprintf(x->error, sizeof(x->error), "exec plugin \"%s\": %s",
             conf->command, why);

    kle_exec_log(x, KLE_LOG_ERR, "%s; trying again in %ld ms", x->error,
                 x->backoff);
}


static void
kle_exec_log(kle_exec_t *x, int level, const char *fmt, ...)
{
    char     msg[4 * KLE_EXEC_ERR_MAX + 256];
    va_list  ap;

    if (x->cfg.log == NULL) {
        return;
    }

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    x->cfg.log(x->cfg.data, level, msg);
}
