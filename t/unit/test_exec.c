/*
 * kle_exec: the ExecCredential parser, KUBERNETES_EXEC_INFO, the command
 * lookup, and the runner on the built-in poll loop with shell plugins:
 * credentials land in the creds, failures are reported and backed off,
 * and the host never gets a SIGCHLD (nginx's handler would reap the
 * plugin and log it).
 */

#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "kle_base64.h"
#include "kle_clock.h"
#include "kle_elector.h"
#include "kle_exec.h"
#include "kle_kubeconfig.h"
#include "kle_test.h"
#include "kle_test_dir.h"

#define V1      KLE_EXEC_V1
#define NOW_US  1800000000000000LL      /* 2027-01-15T08:00:00Z */

static char  err[512];
static volatile sig_atomic_t  sigchld;


static int
parse(const char *json, kle_exec_cred_t *cred)
{
    err[0] = '\0';
    return kle_exec_cred_parse(json, strlen(json), V1, NOW_US, cred, err,
                               sizeof(err));
}


static void
parse_fails(const char *json, const char *want, const char *name)
{
    kle_exec_cred_t  cred;

    is_int(parse(json, &cred), -1, name);
    is_str(err, want, name);
    ok(strstr(err, "SECRET") == NULL, "no token in the message");
    ok(cred.token == NULL && cred.cert == NULL, "nothing kept");
}


static void
test_parse(void)
{
    kle_exec_cred_t  cred;

    is_int(parse("{\"apiVersion\":\"" V1 "\",\"kind\":\"ExecCredential\","
                 "\"status\":{\"token\":\"SECRET-1\"}}\n", &cred), 0,
           "a token");
    is_str(cred.token, "SECRET-1", "the token");
    ok(cred.cert == NULL && cred.key == NULL, "no certificate");
    ok(cred.expires_us == 0, "no expiry");
    kle_exec_cred_free(&cred);

    is_int(parse("{\"kind\":\"ExecCredential\",\"apiVersion\":\"" V1 "\","
                 "\"spec\":{\"interactive\":false},"
                 "\"status\":{\"expirationTimestamp\":"
                 "\"2027-01-15T10:00:00+01:00\","
                 "\"clientCertificateData\":\"CERT\","
                 "\"clientKeyData\":\"KEY\"}}", &cred), 0,
           "a certificate and key, an expiry with an offset");
    is_str((char *) cred.cert, "CERT", "certificate");
    is_int((int) cred.cert_len, 4, "certificate length");
    is_str((char *) cred.key, "KEY", "key");
    ok(cred.token == NULL, "no token");
    ok(cred.expires_us == NOW_US + 3600000000LL, "expiry with its offset");
    kle_exec_cred_free(&cred);

    is_int(parse("{\"apiVersion\":\"" V1 "\",\"kind\":\"ExecCredential\","
                 "\"status\":{\"token\":\"SECRET\",\"expirationTimestamp\":"
                 "\"2027-01-15T08:00:01.5Z\"}}", &cred), 0,
           "a fraction of a second");
    ok(cred.expires_us == NOW_US + 1500000, "expiry with its fraction");
    kle_exec_cred_free(&cred);

    parse_fails("", "no output (an ExecCredential was expected on stdout)",
                "empty");
    parse_fails("Error: SECRET expired\n",
                "the output is not JSON (unexpected character)", "not JSON");
    parse_fails("{\"apiVersion\":\"" V1 "\"", "the output is not JSON "
                "(unexpected end of input)", "cut short");
    parse_fails("{\"apiVersion\":\"" V1 "\",\"kind\":\"ExecCredential\","
                "\"status\":{\"token\":\"SECRET\"}} trailing",
                "the output is not JSON (unexpected character)",
                "text after the object");
    parse_fails("[1]", "the output is not a JSON object", "an array");
    parse_fails("{\"apiVersion\":\"client.authentication.k8s.io/v1beta1\","
                "\"kind\":\"ExecCredential\","
                "\"status\":{\"token\":\"SECRET\"}}",
                "the plugin answered apiVersion "
                "\"client.authentication.k8s.io/v1beta1\", the kubeconfig "
                "asks for \"" V1 "\"", "another apiVersion");
    parse_fails("{\"kind\":\"ExecCredential\","
                "\"status\":{\"token\":\"SECRET\"}}",
                "the plugin answered apiVersion \"\", the kubeconfig asks "
                "for \"" V1 "\"", "no apiVersion");
    parse_fails("{\"apiVersion\":\"" V1 "\",\"kind\":\"Secret\\n\\\"x\","
                "\"status\":{\"token\":\"SECRET\"}}",
                "the plugin answered kind \"Secret??x\", not "
                "\"ExecCredential\"", "another kind, quoted safely");
    parse_fails("{\"apiVersion\":\"" V1 "\",\"kind\":\"ExecCredential\"}",
                "the ExecCredential has no status", "no status");
    parse_fails("{\"apiVersion\":\"" V1 "\",\"kind\":\"ExecCredential\","
                "\"status\":\"SECRET\"}",
                "the ExecCredential's status is not an object",
                "status not an object");
    parse_fails("{\"apiVersion\":\"" V1 "\",\"kind\":\"ExecCredential\","
                "\"status\":{\"token\":\"\"}}",
                "the ExecCredential's status holds neither a token nor a "
                "client certificate and key", "empty token");
    parse_fails("{\"apiVersion\":\"" V1 "\",\"kind\":\"ExecCredential\","
                "\"status\":{\"clientKeyData\":\"SECRET\"}}",
                "the ExecCredential's status holds a client key without a "
                "client certificate", "a key alone");
    parse_fails("{\"apiVersion\":\"" V1 "\",\"kind\":\"ExecCredential\","
                "\"status\":{\"token\":7}}", "\"token\" is not a string",
                "token not a string");
    parse_fails("{\"apiVersion\":\"" V1 "\",\"kind\":\"ExecCredential\","
                "\"status\":{\"token\":\"SECRET\\r\\nX-Evil: 1\"}}",
                "the ExecCredential's token contains control characters",
                "a token that would split the header");
    parse_fails("{\"apiVersion\":\"" V1 "\",\"kind\":\"ExecCredential\","
                "\"status\":{\"token\":\"SECRET\\u0000x\"}}",
                "\"token\" holds a NUL byte", "a NUL in the token");
    parse_fails("{\"apiVersion\":\"" V1 "\",\"kind\":\"ExecCredential\","
                "\"status\":{\"token\":\"SECRET\",\"expirationTimestamp\":"
                "\"2027-01-15T08:00:00Z\"}}",
                "the credential expired already (expirationTimestamp "
                "\"2027-01-15T08:00:00Z\")", "expires now");
    parse_fails("{\"apiVersion\":\"" V1 "\",\"kind\":\"ExecCredential\","
                "\"status\":{\"token\":\"SECRET\",\"expirationTimestamp\":"
                "\"2027-01-15 09:00:00\"}}",
                "expirationTimestamp \"2027-01-15 09:00:00\" is not an RFC "
                "3339 time", "not RFC 3339");
}


static void
test_info(void)
{
    char             *s, *b64;
    kle_creds_t       c;
    kle_exec_conf_t   x;
    json_object      *o, *cl, *v;

    memset(&c, 0, sizeof(c));
    memset(&x, 0, sizeof(x));
    c.server = "https://10.0.0.1:6443";
    c.ca_data = (unsigned char *) "-----BEGIN CERTIFICATE-----\nAB\n";
    c.ca_len = strlen((char *) c.ca_data);
    c.tls_server_name = "kubernetes";
    c.proxy_url = "http://proxy:3128";
    c.exec = &x;
    x.api_version = KLE_EXEC_V1BETA1;

    s = kle_exec_info(&c, err, sizeof(err));
    is_str(s, "{\"kind\":\"ExecCredential\",\"apiVersion\":"
           "\"client.authentication.k8s.io/v1beta1\",\"spec\":"
           "{\"interactive\":false}}",
           "without provideClusterInfo: no cluster");
    free(s);

    x.provide_cluster_info = 1;
    s = kle_exec_info(&c, err, sizeof(err));
    o = s ? json_tokener_parse(s) : NULL;
    ok(o != NULL, "KUBERNETES_EXEC_INFO is JSON");
    cl = NULL;
    json_object_object_get_ex(o, "spec", &v);
    json_object_object_get_ex(v, "cluster", &cl);
    json_object_object_get_ex(cl, "server", &v);
    is_str(json_object_get_string(v), "https://10.0.0.1:6443", "server");
    json_object_object_get_ex(cl, "tls-server-name", &v);
    is_str(json_object_get_string(v), "kubernetes", "tls-server-name");
    json_object_object_get_ex(cl, "proxy-url", &v);
    is_str(json_object_get_string(v), "http://proxy:3128", "proxy-url");
    ok(!json_object_object_get_ex(cl, "insecure-skip-tls-verify", NULL),
       "insecure-skip-tls-verify left out when false");
    b64 = kle_base64_encode(c.ca_data, c.ca_len);
    json_object_object_get_ex(cl, "certificate-authority-data", &v);
    is_str(json_object_get_string(v), b64, "certificate-authority-data");
    is_str(b64, "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCkFCCg==",
           "base64 as Go's encoding/json writes []byte");
    free(b64);
    json_object_put(o);
    free(s);

    c.exec_config = "{\"audience\":\"sts\",\"n\":[1,null]}";
    s = kle_exec_info(&c, err, sizeof(err));
    o = s ? json_tokener_parse(s) : NULL;
    json_object_object_get_ex(o, "spec", &v);
    json_object_object_get_ex(v, "cluster", &cl);
    json_object_object_get_ex(cl, "config", &v);
    is_str(json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN),
           "{\"audience\":\"sts\",\"n\":[1,null]}",
           "the cluster's exec extension as spec.cluster.config");
    json_object_put(o);
    free(s);
    c.exec_config = NULL;

    c.ca_data = NULL;
    c.ca_file = "/nonexistent/ca.crt";
    s = kle_exec_info(&c, err, sizeof(err));
    ok(s == NULL, "an unreadable CA file fails the run");
    is_str(err, "certificate-authority \"/nonexistent/ca.crt\": cannot "
           "open: No such file or directory", "and says why");

    b64 = kle_base64_encode((unsigned char *) "ab", 2);
    is_str(b64, "YWI=", "base64 of 2 bytes");
    free(b64);
    b64 = kle_base64_encode((unsigned char *) "a", 1);
    is_str(b64, "YQ==", "base64 of 1 byte");
    free(b64);
}


static void
test_lookup(void)
{
    char  *p, *saved;

    saved = getenv("PATH") ? strdup(getenv("PATH")) : NULL;

    mkdir(at("bin"), 0755);
    put("bin/tool", "#!/bin/sh\n");
    chmod(at("bin/tool"), 0755);
    setenv("PATH", at("nothing-here"), 1);
    p = kle_exec_lookup("tool", NULL, err, sizeof(err));
    ok(p == NULL, "not in PATH");
    ok(strstr(err, "executable \"tool\" not found in PATH") == err,
       "not found: the message");

    setenv("PATH", at("bin"), 1);
    p = kle_exec_lookup("tool", NULL, err, sizeof(err));
    is_str(p, at("bin/tool"), "found in PATH");
    free(p);

    p = kle_exec_lookup("bin/tool", dir, err, sizeof(err));
    is_str(p, at("bin/tool"), "a path with a '/' is relative to the "
           "kubeconfig's folder, not looked up");
    free(p);

    p = kle_exec_lookup("bin", dir, err, sizeof(err));
    ok(p == NULL, "a folder in PATH is not the command");

    if (saved) {
        setenv("PATH", saved, 1);
        free(saved);
    }
}


/* The runner on the built-in loop, with shell scripts for plugins. */

static void
on_sigchld(int sig)
{
    (void) sig;
    sigchld++;
}


static int  done_calls;

static void
on_done(void *data)
{
    (void) data;
    done_calls++;
}


static char  last_log[1024];
static int   plugin_n;          /* plugins written so far */

static void
on_log(void *data, int level, const char *msg)
{
    (void) data;
    if (level <= KLE_LOG_INFO) {
        snprintf(last_log, sizeof(last_log), "%s", msg);
    }
}


/* Runs the plugin until it is usable or fails; 1 if usable. */
static int
run_plugin(const char *script, kle_creds_t *c, kle_exec_t **px,
    kle_http_t *h)
{
    int                usable;
    long               wake;
    int64_t            deadline;
    kle_exec_config_t  cfg;
    char               name[32];

    snprintf(name, sizeof(name), "plugin%d.sh", ++plugin_n);
    put(name, script);
    chmod(at(name), 0755);

    memset(c, 0, sizeof(*c));
    c->server = strdup("https://127.0.0.1:1");
    c->exec = calloc(1, sizeof(kle_exec_conf_t));
    c->exec->command = strdup(name);
    c->exec->path = strdup(at(name));
    c->exec->api_version = strdup(V1);
    c->exec->argv = calloc(2, sizeof(char *));
    c->exec->argv[0] = strdup(name);

    memset(&cfg, 0, sizeof(cfg));
    cfg.creds = c;
    cfg.http = h;
    cfg.backoff_ms = 50;
    cfg.timeout_ms = 2000;
    cfg.done = on_done;
    cfg.log = on_log;

    *px = kle_exec_create(&cfg);
    last_log[0] = '\0';

    deadline = kle_now_ms() + 5000;
    usable = 0;

    while (kle_now_ms() < deadline) {
        usable = kle_exec_check(*px, kle_now_ms(), &wake);
        if (usable || kle_exec_error(*px)[0] != '\0') {
            break;
        }
        kle_http_poll(h, wake < 0 || wake > 100 ? 100 : wake + 1);
    }

    return usable;
}


static void
test_runner(void)
{
    kle_http_t   *h;
    kle_exec_t   *x;
    kle_creds_t   c;
    long          wake;
    int64_t       t0;
    const char   *vg;

    signal(SIGCHLD, on_sigchld);
    h = kle_http_create(NULL);

    ok(run_plugin("#!/bin/sh\n"
                  "echo '{\"apiVersion\":\"" V1 "\","
                  "\"kind\":\"ExecCredential\","
                  "\"status\":{\"token\":\"tok-'$$'\"}}'\n"
                  "echo warming up >&2\n", &c, &x, h),
       "a token plugin: usable");
    ok(c.token != NULL && strncmp(c.token, "tok-", 4) == 0,
       "the token is in the creds");
    is_int((int) kle_exec_runs(x), 1, "one run");
    ok(done_calls > 0, "the host was told");
    is_str(last_log, "exec plugin \"plugin1.sh\" gave a token, without expiry",
           "logged without the token");

    /* a 401 for a request sent before this credential: ignored */
    kle_exec_refused(x, kle_now_ms() - 60000);
    ok(c.token != NULL, "a 401 to an older credential changes nothing");

    /* a 401 with this one: dropped, and run again */
    kle_exec_refused(x, kle_now_ms());
    ok(c.token == NULL, "a refused token is dropped");
    ok(!kle_exec_check(x, kle_now_ms(), &wake) || kle_exec_runs(x) == 2,
       "not usable until the plugin ran again");
    while (kle_exec_runs(x) < 2 || !kle_exec_check(x, kle_now_ms(), &wake)) {
        kle_http_poll(h, 50);
    }
    ok(c.token != NULL, "a new token after the 401");
    is_int((int) kle_exec_runs(x), 2, "two runs");
    kle_exec_destroy(x);
    kle_creds_free(&c);

    ok(!run_plugin("#!/bin/sh\necho 'no login' >&2\nexit 3\n", &c, &x, h),
       "exit 3: not usable");
    is_str(kle_exec_error(x), "exec plugin \"plugin2.sh\": failed with exit "
           "code 3", "exit 3: the exit code");
    ok(c.token == NULL, "no token");
    kle_exec_destroy(x);
    kle_creds_free(&c);

    ok(!run_plugin("#!/bin/sh\nkill -9 $$\n", &c, &x, h),
       "a killed plugin: not usable");
    is_str(kle_exec_error(x), "exec plugin \"plugin3.sh\": killed by signal 9",
           "killed: the signal");
    kle_exec_destroy(x);
    kle_creds_free(&c);

    ok(!run_plugin("#!/bin/sh\nhead -c 300000 /dev/zero\n", &c, &x, h),
       "huge output: not usable");
    is_str(kle_exec_error(x), "exec plugin \"plugin4.sh\": wrote more than "
           "256 KiB to stdout (killed)", "huge output: the limit");
    kle_exec_destroy(x);
    kle_creds_free(&c);

    /* valgrind cannot follow a failed execve() (its child dies with 101) */
    vg = getenv("LD_PRELOAD");
    if (vg == NULL || strstr(vg, "vgpreload") == NULL) {
        ok(!run_plugin("#!/nonexistent/interpreter\n", &c, &x, h),
           "a plugin that cannot start");
        snprintf(err, sizeof(err), "exec plugin \"plugin5.sh\": cannot run "
                 "\"%s\": No such file or directory", at("plugin5.sh"));
        is_str(kle_exec_error(x), err, "cannot run: the reason");
        kle_exec_destroy(x);
        kle_creds_free(&c);

    } else {
        plugin_n++;
    }

    /* endless stderr: the loop still turns, the timeout ends it */
    t0 = kle_now_ms();
    ok(!run_plugin("#!/bin/sh\nexec yes 'SECRET? no, noise' >&2\n", &c, &x,
                   h), "endless stderr: not usable");
    is_str(kle_exec_error(x), "exec plugin \"plugin6.sh\": timed out after "
           "2 s (killed)", "endless stderr: killed at the timeout");
    ok(kle_now_ms() - t0 < 5000, "and not much later");
    kle_exec_destroy(x);
    kle_creds_free(&c);

    ok(!run_plugin("#!/bin/sh\nsleep 60\n", &c, &x, h),
       "a plugin that hangs: not usable");
    is_str(kle_exec_error(x), "exec plugin \"plugin7.sh\": timed out after "
           "2 s (killed)", "a hang: killed at the timeout");
    kle_exec_destroy(x);
    kle_creds_free(&c);

    /* the plugin's own children are the watcher's business */
    ok(run_plugin("#!/bin/sh\nsleep 0 & wait\n"
                  "echo '{\"apiVersion\":\"" V1 "\","
                  "\"kind\":\"ExecCredential\","
                  "\"status\":{\"token\":\"t\",\"expirationTimestamp\":"
                  "\"2999-01-01T00:00:00Z\"}}'\n", &c, &x, h),
       "a plugin with children of its own, expiring far ahead");
    ok(kle_exec_check(x, kle_now_ms(), &wake) && wake > 1000,
       "usable, and no run due soon");
    kle_exec_destroy(x);
    kle_creds_free(&c);

    usleep(100000);
    is_int((int) sigchld, 0, "the host never got a SIGCHLD");

    kle_http_destroy(h);
}


int
main(void)
{
    kle_test_dir_make("/tmp/kle_exec_XXXXXX");

    test_parse();
    test_info();
    test_lookup();
    test_runner();

    kle_test_dir_remove();

    return done_testing();
}
