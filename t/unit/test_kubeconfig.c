/*
 * kle_kubeconfig: kubeconfig (YAML and JSON), in-cluster, direct, token
 * refresh, copy/free.  Fixtures are written into a fresh temporary folder
 * so that relative paths and missing files are under the test's control.
 */

#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kle_exec.h"
#include "kle_kubeconfig.h"
#include "kle_test.h"
#include "kle_test_dir.h"

#define CA_PEM  "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
#define CA_B64  "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUIKLS0tLS1FTkQgQ0VS" \
                "VElGSUNBVEUtLS0tLQo="
#define SECRET  "s3cr3t-t0ken"

static char  err[1024];

static const unsigned char  cert_bytes[] = { 0x00, 0xff, 0x10, 0x80, 0x7f };
static const unsigned char  key_bytes[] = "KEY\0bytes\xfe";


/* The message expected for a kubeconfig written by put(name, ...). */

static const char *
kerr(const char *name, const char *fmt, ...)
{
    int         n;
    va_list     ap;
    static char buf[1024];

    n = snprintf(buf, sizeof(buf), "kubeconfig \"%s/%s\": ", dir, name);
    va_start(ap, fmt);
    vsnprintf(buf + n, sizeof(buf) - n, fmt, ap);
    va_end(ap);
    return buf;
}


static int
is_zero(const kle_creds_t *c)
{
    kle_creds_t  z;

    memset(&z, 0, sizeof(z));
    return memcmp(c, &z, sizeof(z)) == 0;
}


/* Loads a kubeconfig that must fail; checks the message and the state. */

static void
load_fails(const char *file, const char *context, const char *want,
    const char *name)
{
    int          rc;
    kle_creds_t  c;

    memset(&c, 0xa5, sizeof(c));
    err[0] = '\0';
    rc = kle_kubeconfig_load(&c, at(file), context, err, sizeof(err));
    is_int(rc, -1, name);
    is_str(err, want, name);
    ok(is_zero(&c), "creds zeroed after the error");
    ok(strstr(err, SECRET) == NULL, "no token in the message");
}


static const char  main_yaml[] =
    "apiVersion: v1\n"
    "kind: Config\n"
    "current-context: dev\n"
    "preferences: {}\n"
    "contexts:\n"
    "- name: dev\n"
    "  context:\n"
    "    cluster: c1\n"
    "    user: u1\n"
    "    namespace: team-a\n"
    "- name: prod\n"
    "  context: {cluster: c2, user: u2}\n"
    "- name: abs\n"
    "  context:\n"
    "    cluster: c3\n"
    "- name: bare\n"
    "  context:\n"
    "    cluster: c3\n"
    "    user: empty\n"
    "- name: insec\n"
    "  context: {cluster: c4, user: u1}\n"
    "- name: proxy\n"
    "  context: {cluster: c5, user: empty}\n"
    "clusters:\n"
    "- name: c1\n"
    "  cluster:\n"
    "    server: https://c1.example:6443/\n"
    "    certificate-authority: ca.crt\n"
    "    tls-server-name: kube.internal\n"
    "    proxy-url: http://proxy:3128\n"
    "    insecure-skip-tls-verify: false\n"
    "- name: c2\n"
    "  cluster:\n"
    "    server: \"https://127.0.0.1:8001\"\n"
    "    insecure-skip-tls-verify: false\n"
    "    certificate-authority-data: " CA_B64 "\n"
    "    certificate-authority: ignored-when-data-is-given\n"
    "- name: c3\n"
    "  cluster:\n"
    "    server: https://[fd00::10]:443/api//\n"
    "    certificate-authority: @ABS@\n"
    "- name: c4\n"
    "  cluster:\n"
    "    server: https://c4.example:6443\n"
    "    insecure-skip-tls-verify: yes\n"
    "- name: c5\n"
    "  cluster:\n"
    "    server: http://127.0.0.1:8001\n"
    "users:\n"
    "- name: u1\n"
    "  user:\n"
    "    token: " SECRET "\n"
    "- name: u2\n"
    "  user:\n"
    "    token: replaced-by-the-file\n"
    "    tokenFile: sub/tok\n"
    "    client-certificate-data: AP8QgH8=\n"
    "    client-key-data: |\n"
    "      S0VZAGJ5\n"
    "      dGVz/g==\n"
    "- name: empty\n"
    "  user: {}\n";


static void
test_yaml(void)
{
    char         text[4096], *p;
    kle_creds_t  c;

    if (mkdir(at("sub"), 0700) != 0) {
        perror("mkdir");
        exit(2);
    }

    put("ca.crt", CA_PEM);
    put("sub/ca.pem", CA_PEM);
    put("sub/tok", "  file-token\n\n");

    /* the absolute CA path is only known at run time */
    snprintf(text, sizeof(text), "%s", main_yaml);
    p = strstr(text, "@ABS@");
    memmove(p + strlen(at("sub/ca.pem")), p + 5, strlen(p + 5) + 1);
    memcpy(p, at("sub/ca.pem"), strlen(at("sub/ca.pem")));
    put("config", text);

    /* current-context */
    is_int(kle_kubeconfig_load(&c, at("config"), NULL, err, sizeof(err)), 0,
           "current-context loads");
    is_str(c.server, "https://c1.example:6443", "server, '/' stripped");
    is_str(c.ca_file, at("ca.crt"), "relative CA resolved to the folder");
    ok(c.ca_data == NULL && c.ca_len == 0, "no CA data");
    is_str(c.tls_server_name, "kube.internal", "tls-server-name");
    is_str(c.proxy_url, "http://proxy:3128", "proxy-url");
    is_int(c.insecure, 0, "insecure-skip-tls-verify false");
    is_str(c.namespace, "team-a", "namespace from the context");
    is_str(c.token, SECRET, "static token");
    ok(c.token_file == NULL, "no token file");
    ok(c.cert_file == NULL && c.cert_data == NULL, "no client cert");
    ok(c.key_file == NULL && c.key_data == NULL, "no client key");
    is_str(c.source, at("config"), "source is the kubeconfig path");
    is_str(kle_creds_token(&c, 123456789, 1), SECRET,
           "a static token is returned as is");
    kle_creds_free(&c);
    ok(is_zero(&c), "free zeroes");

    /* named context, -data, tokenFile */
    is_int(kle_kubeconfig_load(&c, at("config"), "prod", err, sizeof(err)),
           0, "named context loads");
    is_str(c.server, "https://127.0.0.1:8001", "quoted server");
    is_int(c.insecure, 0, "insecure-skip-tls-verify false");
    is_int(c.ca_len, strlen(CA_PEM), "CA data length");
    ok(c.ca_data && memcmp(c.ca_data, CA_PEM, c.ca_len) == 0,
       "CA data decoded");
    ok(c.ca_file == NULL, "CA data wins over the CA file");
    is_int(c.cert_len, sizeof(cert_bytes), "cert data length");
    ok(c.cert_data && memcmp(c.cert_data, cert_bytes, c.cert_len) == 0,
       "cert data decoded (binary)");
    is_int(c.key_len, sizeof(key_bytes) - 1, "key data length");
    ok(c.key_data && memcmp(c.key_data, key_bytes, c.key_len) == 0,
       "key data decoded across lines");
    ok(c.namespace == NULL, "no namespace in the context");
    is_str(c.token_file, at("sub/tok"), "tokenFile resolved");
    is_str(c.token, "file-token", "tokenFile read now and trimmed");
    ok(c.tls_server_name == NULL && c.proxy_url == NULL, "no extras");
    kle_creds_free(&c);

    /* absolute CA path, no user */
    is_int(kle_kubeconfig_load(&c, at("config"), "abs", err, sizeof(err)),
           0, "context without a user loads");
    is_str(c.server, "https://[fd00::10]:443/api", "path kept, '/'s stripped");
    is_str(c.ca_file, at("sub/ca.pem"), "absolute CA path kept");
    ok(c.token == NULL && c.token_file == NULL, "no auth");
    kle_creds_free(&c);

    is_int(kle_kubeconfig_load(&c, at("config"), "bare", err, sizeof(err)),
           0, "empty user {} loads");
    ok(c.token == NULL && c.cert_file == NULL && c.key_data == NULL,
       "empty user: no auth");
    kle_creds_free(&c);

    /* insecure without a CA is client-go's choice to make: allowed */
    is_int(kle_kubeconfig_load(&c, at("config"), "insec", err, sizeof(err)),
           0, "insecure-skip-tls-verify without a CA loads");
    is_int(c.insecure, 1, "insecure-skip-tls-verify yes");
    ok(c.ca_file == NULL && c.ca_data == NULL, "insecure: no CA");
    kle_creds_free(&c);

    /* http:// without credentials (kubectl proxy) is allowed */
    is_int(kle_kubeconfig_load(&c, at("config"), "proxy", err, sizeof(err)),
           0, "http:// without credentials loads");
    is_str(c.server, "http://127.0.0.1:8001", "http server");
    ok(c.token == NULL && c.token_file == NULL && c.cert_data == NULL,
       "http: no credentials");
    kle_creds_free(&c);
}


static void
test_json(void)
{
    kle_creds_t  c;

    put("config.json",
        "{\n"
        "\t\"kind\": \"Config\",\n"
        "\t\"apiVersion\": \"v1\",\n"
        "\t\"current-context\": \"j\",\n"
        "\t\"clusters\": [{\"name\": \"jc\", \"cluster\": {\n"
        "\t\t\"server\": \"https://10.1.2.3:6443\",\n"
        "\t\t\"certificate-authority-data\": \"" CA_B64 "\",\n"
        "\t\t\"insecure-skip-tls-verify\": false}}],\n"
        "\t\"users\": [{\"name\": \"ju\", \"user\": {\n"
        "\t\t\"client-certificate\": \"sub/ca.pem\",\n"
        "\t\t\"client-key\": \"ca.crt\",\n"
        "\t\t\"token\": null}}],\n"
        "\t\"contexts\": [{\"name\": \"j\", \"context\": {\"cluster\": \"jc\","
        " \"user\": \"ju\", \"namespace\": \"jn\"}}]\n"
        "}\n");

    is_int(kle_kubeconfig_load(&c, at("config.json"), NULL, err, sizeof(err)),
           0, "JSON kubeconfig loads");
    is_str(c.server, "https://10.1.2.3:6443", "JSON server");
    ok(c.ca_data && c.ca_len == strlen(CA_PEM)
       && memcmp(c.ca_data, CA_PEM, c.ca_len) == 0, "JSON CA data");
    is_str(c.cert_file, at("sub/ca.pem"), "JSON client-certificate");
    is_str(c.key_file, at("ca.crt"), "JSON client-key");
    ok(c.token == NULL, "JSON null token is absent");
    is_str(c.namespace, "jn", "JSON namespace");
    kle_creds_free(&c);
}


static void
test_token_refresh(void)
{
    int64_t      t = 5000000;
    kle_creds_t  c;

    put("rot", "tok1\n");
    is_int(kle_creds_direct(&c, "https://k:6443", at("rot"), NULL, NULL, NULL,
                            err, sizeof(err)), 0, "direct with token file");
    is_str(c.token, "tok1", "token read at load");

    is_str(kle_creds_token(&c, t, 0), "tok1", "first use");
    is_int(c.token_read, t, "token_read set");

    put("rot", "tok2\r\n");
    is_str(kle_creds_token(&c, t + 59999, 0), "tok1", "59.999 s: old token");
    is_int(c.token_read, t, "no read before 60 s");
    is_str(kle_creds_token(&c, t + 60000, 0), "tok2", "60 s: new token");
    is_int(c.token_read, t + 60000, "token_read moved");

    put("rot", "tok3");
    is_str(kle_creds_token(&c, t + 60001, 1), "tok3", "force re-reads");

    put("rot", " \n");
    is_str(kle_creds_token(&c, t + 60002, 1), "tok3", "empty keeps old");
    is_int(c.token_read, t + 60002, "token_read set on a failed read");

    put("rot", "bad\ntoken\n");
    is_str(kle_creds_token(&c, t + 60003, 1), "tok3",
           "a token with a newline inside keeps old");

    unlink(at("rot"));
    is_str(kle_creds_token(&c, t + 200000, 0), "tok3", "missing keeps old");
    is_int(c.token_read, t + 200000, "token_read set on a missing file");

    /* without a token every call tries */
    put("rot", "tok4");
    free(c.token);
    c.token = NULL;
    is_str(kle_creds_token(&c, t + 200001, 0), "tok4", "NULL token re-read");
    kle_creds_free(&c);
}


static void
test_errors(void)
{
    kle_creds_t  c;

    memset(&c, 0xa5, sizeof(c));
    is_int(kle_kubeconfig_load(&c, at("nonexistent"), NULL, err, sizeof(err)),
           -1, "missing kubeconfig");
    is_str(err, kerr("nonexistent", "cannot open: No such file or directory"),
           "missing kubeconfig message");
    ok(is_zero(&c), "zeroed");

    load_fails("sub", NULL, kerr("sub", "cannot read: Is a directory"),
               "a folder");

    load_fails("config", "nope", kerr("config", "context \"nope\" not found"),
               "unknown context");

    put("e1", "apiVersion: v1\nclusters: []\n");
    load_fails("e1", NULL,
               kerr("e1", "no current-context and no context given"),
               "no current-context");

    put("e2", "apiVersion: v1\ncurrent-context: \"\"\n");
    load_fails("e2", NULL,
               kerr("e2", "no current-context and no context given"),
               "empty current-context");

    put("e3", "current-context: x\n"
              "contexts: [{name: x, context: {cluster: c1, user: u}}]\n"
              "clusters: [{name: c1, cluster: {insecure: true}}]\n");
    load_fails("e3", NULL, kerr("e3", "cluster \"c1\": missing \"server\""),
               "missing server");

    put("e4", "apiVersion: v1\n"
              "kind: Config\n"
              "current-context: a: b\n");
    load_fails("e4", NULL,
               kerr("e4", "line 3: mapping values are not allowed in this "
                    "context"), "broken YAML");

    put("e5", "current-context: x\n"
              "contexts: [{name: x, context: {cluster: c, user: u}}]\n"
              "clusters: [{name: c, cluster: {server: 'https://h'}}]\n"
              "users:\n"
              "- name: u\n"
              "  user:\n"
              "    client-certificate-data: AP8QgH8=\n"
              "    client-key-data: AP8Q*H8=\n");
    load_fails("e5", NULL,
               kerr("e5", "users[0].user.client-key-data: invalid base64"),
               "invalid base64");

    put("e6", "current-context: x\n"
              "contexts: [{name: x, context: {cluster: c, user: u}}]\n"
              "clusters: [{name: c, cluster: {server: 'https://h'}}]\n"
              "users:\n"
              "- name: u\n"
              "  user:\n"
              "    token: " SECRET "\n"
              "    exec:\n"
              "      command: aws\n");
    load_fails("e6", NULL,
               kerr("e6", "user \"u\": exec together with token: client-go "
                    "uses the token and never runs the plugin; keep one of "
                    "them"), "exec plugin beside a token");

    put("e7", "current-context: x\n"
              "contexts: [{name: x, context: {cluster: c, user: u}}]\n"
              "clusters: [{name: c, cluster: {server: 'https://h'}}]\n"
              "users: [{name: u, user: {tokenFile: missing-tok}}]\n");
    load_fails("e7", NULL,
               kerr("e7", "users[0].user.tokenFile \"%s\": cannot open: No "
                    "such file or directory", at("missing-tok")),
               "missing tokenFile");

    put("e8", "current-context: x\n"
              "contexts: [{name: x, context: {cluster: c}}]\n"
              "clusters: [{name: c, cluster: {server: 'https://h',\n"
              "  certificate-authority: nope/ca.crt}}]\n");
    load_fails("e8", NULL,
               kerr("e8", "clusters[0].cluster.certificate-authority \"%s\": "
                    "cannot open: No such file or directory",
                    at("nope/ca.crt")), "missing CA file");

    put("e9", "current-context: x\n"
              "contexts: [{name: x, context: {cluster: c}}]\n"
              "clusters: [{name: d, cluster: {}},\n"
              "           {name: c, cluster: {server: 'ftp://h'}}]\n");
    load_fails("e9", NULL,
               kerr("e9", "clusters[1].cluster.server \"ftp://h\": must start "
                    "with https:// or http://"), "bad server scheme");

    put("e10", "current-context: x\n"
               "contexts: [{name: x, context: {cluster: nc}}]\n"
               "clusters: [{name: c, cluster: {server: 'https://h'}}]\n");
    load_fails("e10", NULL,
               kerr("e10", "context \"x\": cluster \"nc\" not found"),
               "cluster not found");

    put("e11", "current-context: x\n"
               "contexts: [{name: x, context: {cluster: c, user: nu}}]\n"
               "clusters: [{name: c, cluster: {server: 'https://h'}}]\n"
               "users: [{name: u, user: {}}]\n");
    load_fails("e11", NULL,
               kerr("e11", "context \"x\": user \"nu\" not found"),
               "user not found");

    put("e12", "current-context: x\n"
               "contexts: [{name: x, context: {user: u}}]\n");
    load_fails("e12", NULL, kerr("e12", "context \"x\": missing \"cluster\""),
               "context without cluster");

    put("e13", "current-context: x\n"
               "contexts: [{name: x, context: {cluster: c}},"
               " {name: x, context: {cluster: c}}]\n");
    load_fails("e13", NULL,
               kerr("e13", "contexts[1]: duplicate context \"x\""),
               "duplicate context");

    put("e14", "current-context: x\ncontexts: {x: y}\n");
    load_fails("e14", NULL, kerr("e14", "contexts: expected a list"),
               "contexts not a list");

    put("e15", "current-context: x\n"
               "contexts: [{name: x, context: {cluster: c}}]\n"
               "clusters: [{name: c, cluster: {server: https://h,\n"
               "  insecure-skip-tls-verify: maybe}}]\n");
    load_fails("e15", NULL,
               kerr("e15", "clusters[0].cluster.insecure-skip-tls-verify: "
                    "expected true or false"), "bad boolean");

    put("e16", "current-context: x\n"
               "contexts: [{name: x, context: {cluster: c, user: u}}]\n"
               "clusters: [{name: c, cluster: {server: 'https://h'}}]\n"
               "users: [{name: u, user: {client-certificate: ca.crt}}]\n");
    load_fails("e16", NULL,
               kerr("e16", "user \"u\": client-certificate without "
                    "client-key"), "cert without key");

    put("e17", "");
    load_fails("e17", NULL, kerr("e17", "empty file"), "empty file");

    put("e18", "- a\n- b\n");
    load_fails("e18", NULL,
               kerr("e18", "not a kubeconfig (the top level is not a "
                    "mapping)"), "top level list");

    put("e19", "current-context: x\n"
               "contexts: [{name: x, context: {cluster: c}}]\n"
               "clusters: [{name: c, cluster: {server: [https://h]}}]\n");
    load_fails("e19", NULL,
               kerr("e19", "clusters[0].cluster.server: expected a string"),
               "server not a string");

    put("e20", "current-context: x\n"
               "contexts: [{name: x, context: {cluster: c, user: u}}]\n"
               "clusters: [{name: c, cluster: {server: 'https://h'}}]\n"
               "users: [{name: u, user: {token: \"" SECRET "\\r\\nX: y\"}}]\n");
    load_fails("e20", NULL,
               kerr("e20", "users[0].user.token: contains control "
                    "characters"), "token with CR LF");

    put("bad-tok", SECRET "\nsecond line\n");
    put("e21", "current-context: x\n"
               "contexts: [{name: x, context: {cluster: c, user: u}}]\n"
               "clusters: [{name: c, cluster: {server: 'https://h'}}]\n"
               "users: [{name: u, user: {tokenFile: bad-tok}}]\n");
    load_fails("e21", NULL,
               kerr("e21", "users[0].user.tokenFile \"%s\": contains control "
                    "characters", at("bad-tok")), "token file with newline");

    /* the token is on the broken line: only the line number is shown */
    put("e22", "current-context: x\n"
               "users: [{name: u, user: {token: \"" SECRET "}}]\n");
    load_fails("e22", NULL,
               kerr("e22", "line 3: found unexpected end of stream"),
               "broken YAML near a token");

    put("e23", "current-context: x\n"
               "contexts: [{name: x, context: {cluster: c}}]\n"
               "clusters: [{name: c, cluster: {server: 'https://'}}]\n");
    load_fails("e23", NULL,
               kerr("e23", "clusters[0].cluster.server \"https://\": has no "
                    "host"), "server without host");

    put("e24", "a: b\nc: \xc3\x28\n");
    load_fails("e24", NULL,
               kerr("e24", "byte 9: invalid trailing UTF-8 octet"),
               "not UTF-8");
}


static void
test_base64(void)
{
    static const struct {
        const char  *in;
        const char  *out;   /* NULL: invalid */
    } cases[] = {
        { "YWI=", "ab" },
        { "YWI", "ab" },
        { "YWJjZA==", "abcd" },
        { "YWJj\n ZA", "abcd" },
        { "YWJjZA=", NULL },
        { "YWJjZ", NULL },
        { "====", NULL },
        { "YW=I", NULL },
        { "YWI==", NULL },
        { "YWJj-_", NULL },
    };

    int          i;
    char         text[512], name[64];
    kle_creds_t  c;

    for (i = 0; i < (int) (sizeof(cases) / sizeof(cases[0])); i++) {
        snprintf(text, sizeof(text),
                 "current-context: x\n"
                 "contexts: [{name: x, context: {cluster: c}}]\n"
                 "clusters: [{name: c, cluster: {server: 'https://h',\n"
                 "  certificate-authority-data: \"%s\"}}]\n", cases[i].in);
        put("b64", text);
        snprintf(name, sizeof(name), "base64 case %d", i);

        if (cases[i].out == NULL) {
            load_fails("b64", NULL,
                       kerr("b64", "clusters[0].cluster."
                            "certificate-authority-data: invalid base64"),
                       name);
            continue;
        }

        is_int(kle_kubeconfig_load(&c, at("b64"), NULL, err, sizeof(err)), 0,
               name);
        ok(c.ca_data && c.ca_len == strlen(cases[i].out)
           && memcmp(c.ca_data, cases[i].out, c.ca_len) == 0, name);
        kle_creds_free(&c);
    }
}


static void
test_incluster(void)
{
    char         sa[128], e[512];
    kle_creds_t  c;

    snprintf(sa, sizeof(sa), "%s/sa", dir);
    if (mkdir(sa, 0700) != 0) {
        perror("mkdir");
        exit(2);
    }

    put("sa/token", "sa-token\n");
    put("sa/ca.crt", CA_PEM);
    put("sa/namespace", "  kube-system \n");

    setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
    setenv("KUBERNETES_SERVICE_PORT", "443", 1);

    is_int(kle_incluster_load(&c, sa, err, sizeof(err)), 0, "in-cluster");
    is_str(c.server, "https://10.96.0.1:443", "IPv4 server");
    is_str(c.token, "sa-token", "SA token read now");
    is_str(c.token_file, at("sa/token"), "SA token file kept for re-reads");
    is_str(c.ca_file, at("sa/ca.crt"), "SA CA");
    is_str(c.namespace, "kube-system", "namespace trimmed");
    is_str(c.source, "in-cluster", "source");
    ok(c.ca_data == NULL && c.cert_file == NULL && !c.insecure, "rest unset");
    kle_creds_free(&c);

    setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
    unlink(at("sa/namespace"));
    snprintf(e, sizeof(e), "%s/", sa);
    is_int(kle_incluster_load(&c, e, err, sizeof(err)), 0, "in-cluster IPv6");
    is_str(c.server, "https://[fd00::1]:443", "IPv6 bracketed");
    is_str(c.token_file, at("sa/token"), "trailing '/' on the folder");
    ok(c.namespace == NULL, "no namespace file: NULL");
    kle_creds_free(&c);

    memset(&c, 0xa5, sizeof(c));
    put("sa/token", "\n");
    is_int(kle_incluster_load(&c, sa, err, sizeof(err)), -1, "empty token");
    snprintf(e, sizeof(e), "in-cluster configuration: \"%s\": is empty",
             at("sa/token"));
    is_str(err, e, "empty token message");
    ok(is_zero(&c), "zeroed");

    unlink(at("sa/token"));
    is_int(kle_incluster_load(&c, sa, err, sizeof(err)), -1, "no token");
    snprintf(e, sizeof(e), "in-cluster configuration: \"%s\": cannot open: "
             "No such file or directory", at("sa/token"));
    is_str(err, e, "missing token message");

    put("sa/token", "t");
    unlink(at("sa/ca.crt"));
    is_int(kle_incluster_load(&c, sa, err, sizeof(err)), -1, "no CA");
    snprintf(e, sizeof(e), "in-cluster configuration: \"%s\": cannot open: "
             "No such file or directory", at("sa/ca.crt"));
    is_str(err, e, "missing CA message");
    ok(is_zero(&c), "zeroed");

    setenv("KUBERNETES_SERVICE_PORT", "https", 1);
    is_int(kle_incluster_load(&c, sa, err, sizeof(err)), -1, "bad port");
    is_str(err, "in-cluster configuration: KUBERNETES_SERVICE_PORT \"https\" "
           "is not a port number", "bad port message");

    unsetenv("KUBERNETES_SERVICE_PORT");
    is_int(kle_incluster_load(&c, sa, err, sizeof(err)), -1, "no port");
    is_str(err, "in-cluster configuration: KUBERNETES_SERVICE_PORT is not set "
           "(not running in a pod? use \"api_server kubeconfig PATH\")",
           "missing port message");

    unsetenv("KUBERNETES_SERVICE_HOST");
    setenv("KUBERNETES_SERVICE_PORT", "443", 1);
    is_int(kle_incluster_load(&c, NULL, err, sizeof(err)), -1, "no host");
    is_str(err, "in-cluster configuration: KUBERNETES_SERVICE_HOST is not set "
           "(not running in a pod? use \"api_server kubeconfig PATH\")",
           "missing host message");
    ok(is_zero(&c), "zeroed");
}


static void
test_direct(void)
{
    char         e[512];
    kle_creds_t  c;

    put("d-tok", "direct-token\n");

    is_int(kle_creds_direct(&c, "https://api.example:6443/", at("d-tok"),
                            at("ca.crt"), at("sub/ca.pem"), at("ca.crt"),
                            err, sizeof(err)), 0, "direct");
    is_str(c.server, "https://api.example:6443", "direct server");
    is_str(c.token, "direct-token", "direct token");
    is_str(c.token_file, at("d-tok"), "direct token file");
    is_str(c.ca_file, at("ca.crt"), "direct CA");
    is_str(c.cert_file, at("sub/ca.pem"), "direct cert");
    is_str(c.key_file, at("ca.crt"), "direct key");
    is_str(c.source, "https://api.example:6443", "source is the server");
    kle_creds_free(&c);

    is_int(kle_creds_direct(&c, "http://127.0.0.1:8001", NULL, NULL, NULL,
                            NULL, err, sizeof(err)), 0, "direct, bare");
    ok(c.token == NULL && c.ca_file == NULL && c.key_file == NULL, "bare");
    kle_creds_free(&c);

    memset(&c, 0xa5, sizeof(c));
    is_int(kle_creds_direct(&c, "https://h", NULL, at("no-ca"), NULL, NULL,
                            err, sizeof(err)), -1, "direct, missing CA");
    snprintf(e, sizeof(e), "ca_file \"%s\": cannot open: No such file or "
             "directory", at("no-ca"));
    is_str(err, e, "missing CA message");
    ok(is_zero(&c), "zeroed");

    is_int(kle_creds_direct(&c, "https://h", at("no-tok"), NULL, NULL, NULL,
                            err, sizeof(err)), -1, "direct, missing token");
    snprintf(e, sizeof(e), "token_file \"%s\": cannot open: No such file or "
             "directory", at("no-tok"));
    is_str(err, e, "missing token message");

    is_int(kle_creds_direct(&c, "https://h", NULL, NULL, at("ca.crt"), NULL,
                            err, sizeof(err)), -1, "direct, cert alone");
    snprintf(e, sizeof(e), "client_cert \"%s\" needs a client_key",
             at("ca.crt"));
    is_str(err, e, "cert alone message");

    is_int(kle_creds_direct(&c, "h:6443", NULL, NULL, NULL, NULL,
                            err, sizeof(err)), -1, "direct, no scheme");
    is_str(err, "server \"h:6443\": must start with https:// or http://",
           "no scheme message");
    ok(is_zero(&c), "zeroed");
}


static void
test_copy(void)
{
    kle_creds_t  a, b;

    is_int(kle_kubeconfig_load(&a, at("config"), "prod", err, sizeof(err)),
           0, "load for copy");
    a.tls_server_name = strdup("tsn");
    a.namespace = strdup("ns");
    a.token_read = 42;
    a.insecure = 1;

    is_int(kle_creds_copy(&b, &a), 0, "copy");
    kle_creds_free(&a);

    is_str(b.server, "https://127.0.0.1:8001", "copied server");
    is_str(b.token, "file-token", "copied token");
    is_str(b.token_file, at("sub/tok"), "copied token file");
    is_str(b.tls_server_name, "tsn", "copied tls-server-name");
    is_str(b.namespace, "ns", "copied namespace");
    is_int(b.insecure, 1, "copied insecure");
    is_int(b.token_read, 42, "copied token_read");
    is_str(b.source, at("config"), "copied source");
    ok(b.ca_data && b.ca_len == strlen(CA_PEM)
       && memcmp(b.ca_data, CA_PEM, b.ca_len) == 0, "copied CA data");
    ok(b.cert_data && b.cert_len == sizeof(cert_bytes)
       && memcmp(b.cert_data, cert_bytes, b.cert_len) == 0,
       "copied cert data");
    ok(b.key_data && b.key_len == sizeof(key_bytes) - 1
       && memcmp(b.key_data, key_bytes, b.key_len) == 0, "copied key data");
    ok(b.ca_file == NULL && b.proxy_url == NULL, "NULLs stay NULL");

    kle_creds_free(&b);
    ok(is_zero(&b), "copy freed");
}


/* Files read into memory for a less privileged process to use. */

static void
test_inline(void)
{
    kle_creds_t  c;

    memset(&c, 0, sizeof(c));
    put("inline-ca.pem", CA_PEM);
    c.ca_file = strdup(at("inline-ca.pem"));
    c.key_data = (unsigned char *) strdup("kept");
    c.key_len = 4;
    c.key_file = strdup(at("no-such-key"));

    is_int(kle_creds_inline(&c, err, sizeof(err)), 0, "inline: ok");
    ok(c.ca_data && c.ca_len == strlen(CA_PEM)
       && memcmp(c.ca_data, CA_PEM, c.ca_len) == 0, "inline: CA read");
    ok(c.key_len == 4 && memcmp(c.key_data, "kept", 4) == 0,
       "inline: existing data kept, its file not read");
    ok(c.cert_data == NULL, "inline: no cert, no cert data");
    kle_creds_free(&c);

    memset(&c, 0, sizeof(c));
    c.cert_file = strdup(at("no-such-cert"));
    is_int(kle_creds_inline(&c, err, sizeof(err)), -1, "inline: missing");
    ok(strstr(err, "no-such-cert\": cannot open: No such file") != NULL,
       "inline: the error names the file");
    kle_creds_free(&c);
}


/* client-go's rules: credentials only over https, no CA with insecure. */

static void
test_rules(void)
{
    put("r1", "current-context: x\n"
              "contexts: [{name: x, context: {cluster: c, user: u}}]\n"
              "clusters: [{name: c, cluster: {server: 'http://h:8080'}}]\n"
              "users: [{name: u, user: {token: " SECRET "}}]\n");
    load_fails("r1", NULL,
               kerr("r1", "context \"x\": user \"u\" with cluster \"c\" "
                    "(http://h:8080): credentials (a bearer token or a "
                    "client certificate) are only sent over https://"),
               "a token over http:// is refused");

    put("r2", "current-context: x\n"
              "contexts: [{name: x, context: {cluster: c, user: u}}]\n"
              "clusters: [{name: c, cluster: {server: 'http://h:8080'}}]\n"
              "users: [{name: u, user: {client-certificate-data: AP8QgH8=,\n"
              "  client-key-data: AP8QgH8=}}]\n");
    load_fails("r2", NULL,
               kerr("r2", "context \"x\": user \"u\" with cluster \"c\" "
                    "(http://h:8080): credentials (a bearer token or a "
                    "client certificate) are only sent over https://"),
               "a client certificate over http:// is refused");

    put("r3", "current-context: x\n"
              "contexts: [{name: x, context: {cluster: c, user: u}}]\n"
              "clusters: [{name: c, cluster: {server: 'http://h:8080'}}]\n"
              "users: [{name: u, user: {tokenFile: sub/tok}}]\n");
    load_fails("r3", NULL,
               kerr("r3", "context \"x\": user \"u\" with cluster \"c\" "
                    "(http://h:8080): credentials (a bearer token or a "
                    "client certificate) are only sent over https://"),
               "a token file over http:// is refused");

    put("r4", "current-context: x\n"
              "contexts: [{name: x, context: {cluster: c}}]\n"
              "clusters: [{name: c, cluster: {server: 'https://h',\n"
              "  certificate-authority: ca.crt,\n"
              "  insecure-skip-tls-verify: true}}]\n");
    load_fails("r4", NULL,
               kerr("r4", "cluster \"c\": certificate-authority together "
                    "with insecure-skip-tls-verify is not allowed"),
               "insecure with a CA file is refused");

    put("r5", "{\"current-context\": \"x\",\n"
              " \"contexts\": [{\"name\": \"x\", \"context\": "
              "{\"cluster\": \"c\"}}],\n"
              " \"clusters\": [{\"name\": \"c\", \"cluster\": "
              "{\"server\": \"https://h\",\n"
              "  \"insecure-skip-tls-verify\": true,\n"
              "  \"certificate-authority-data\": \"" CA_B64 "\"}}]}\n");
    load_fails("r5", NULL,
               kerr("r5", "cluster \"c\": certificate-authority-data together "
                    "with insecure-skip-tls-verify is not allowed"),
               "insecure with CA data is refused (JSON)");
}


/* A kubeconfig is bounded before it is walked, and keys are unique. */

static void
test_bounds(void)
{
    int          i;
    char        *big, *p;
    size_t       n;
    kle_creds_t  c;

    put("k1", "current-context: x\n"
              "contexts: [{name: x, context: {cluster: c}}]\n"
              "clusters: [{name: c, cluster: {server: 'https://h'}}]\n"
              "current-context: y\n");
    load_fails("k1", NULL, kerr("k1", "line 4: duplicate key "
                                "\"current-context\""),
               "a duplicate top-level key is refused");

    put("k2", "current-context: x\n"
              "contexts: [{name: x, context: {cluster: c}}]\n"
              "clusters:\n"
              "- name: c\n"
              "  cluster:\n"
              "    server: https://good\n"
              "    'server': https://evil\n");
    load_fails("k2", NULL, kerr("k2", "line 7: duplicate key \"server\""),
               "a duplicate nested key is refused, quoted or not");

    put("k3", "{\"current-context\": \"x\", \"current-context\": \"y\"}");
    load_fails("k3", NULL, kerr("k3", "line 1: duplicate key "
                                "\"current-context\""),
               "a duplicate key in JSON form is refused");

    put("k4", "a: 1\n\"b\\tc\": 2\n\"b\\tc\": 3\n");
    load_fails("k4", NULL, kerr("k4", "line 3: duplicate key"),
               "a duplicate key with a control character is not shown");

    put("k5", "? [a, b]\n: 1\ncurrent-context: x\n");
    load_fails("k5", NULL, kerr("k5", "line 1: a mapping key that is not a "
                                "string"), "a list as a key is refused");

    /* 64 levels load, 65 do not; YAML flow and JSON alike */
    for (i = 0; i < 2; i++) {
        n = 63 + i;
        big = malloc(3 * n + 64);
        p = big + sprintf(big, "{\"current-context\": ");
        memset(p, '[', n);
        p += n;
        memset(p, ']', n);
        p += n;
        strcpy(p, "}");
        put("k6", big);
        free(big);

        if (i == 0) {
            load_fails("k6", NULL, kerr("k6", "current-context: expected a "
                                        "string"), "64 levels are read");
        } else {
            load_fails("k6", NULL, kerr("k6", "line 1: nested deeper than 64 "
                                        "levels"), "65 levels are refused");
        }
    }

    big = malloc(4 * 1000000 + 64);
    p = big + sprintf(big, "a: [");
    for (i = 0; i < 100001; i++) {
        p += sprintf(p, "0,");
    }
    strcpy(p, "0]\n");
    put("k7", big);
    free(big);
    load_fails("k7", NULL, kerr("k7", "line 1: more than 100000 nodes"),
               "more than 100000 nodes are refused");

    /* one byte over 16 MiB */
    big = malloc(16 * 1024 * 1024 + 2);
    memset(big, ' ', 16 * 1024 * 1024 + 1);
    big[16 * 1024 * 1024 + 1] = '\0';
    put("k8", big);
    free(big);
    load_fails("k8", NULL, kerr("k8", "is larger than 16777216 bytes"),
               "a kubeconfig over 16 MiB is refused");

    /* anchors and aliases are kept as references, never expanded */
    put("k9", "x: &a [1, 2]\n"
              "y: [*a, *a, *a]\n"
              "current-context: x\n"
              "contexts: [{name: x, context: {cluster: c}}]\n"
              "clusters: [{name: c, cluster: {server: 'https://h'}}]\n");
    is_int(kle_kubeconfig_load(&c, at("k9"), NULL, err, sizeof(err)), 0,
           "aliases load");
    kle_creds_free(&c);

    /* an alias that refers to the mapping it is in */
    put("k10", "current-context: &a {k: *a}\n");
    load_fails("k10", NULL, kerr("k10", "current-context: expected a "
                                 "string"), "a self-referring alias");
}

/* users[].user.exec, as client-go's clientcmd reads and validates it */

#define EXEC_HEAD                                                            \
    "current-context: x\n"                                                   \
    "contexts: [{name: x, context: {cluster: c, user: u}}]\n"                \
    "clusters: [{name: c, cluster: {server: 'https://h:6443',\n"             \
    "  certificate-authority-data: " CA_B64 "}}]\n"                          \
    "users:\n"                                                               \
    "- name: u\n"                                                            \
    "  user:\n"                                                              \
    "    exec:\n"

static void
test_exec(void)
{
    char         *plugin;
    kle_creds_t   c, d;

    /* a plugin beside the kubeconfig, named relative to it */
    put("plugin.sh", "#!/bin/sh\necho hi\n");
    plugin = strdup(at("plugin.sh"));
    chmod(plugin, 0755);
    put("noexec.sh", "#!/bin/sh\n");

    put("x1", EXEC_HEAD
              "      apiVersion: client.authentication.k8s.io/v1\n"
              "      command: ./plugin.sh\n"
              "      args: [eks, get-token, --cluster-name, \"a b\"]\n"
              "      env: [{name: AWS_PROFILE, value: prod}, {name: EMPTY}]\n"
              "      installHint: get it\n"
              "      provideClusterInfo: true\n"
              "      interactiveMode: Never\n");
    err[0] = '\0';
    is_int(kle_kubeconfig_load(&c, at("x1"), NULL, err, sizeof(err)), 0,
           "an exec user loads");
    is_str(err, "", "no error");
    ok(c.exec != NULL, "exec set");
    if (c.exec != NULL) {
        is_str(c.exec->command, "./plugin.sh", "command as written");
        is_str(c.exec->path, plugin, "relative to the kubeconfig's folder");
        is_str(c.exec->argv[0], "./plugin.sh", "argv[0] is the command");
        is_str(c.exec->argv[4], "a b", "args in order");
        ok(c.exec->argv[5] == NULL, "argv ends");
        is_str(c.exec->env[0], "AWS_PROFILE=prod", "env");
        is_str(c.exec->env[1], "EMPTY=", "env without a value");
        ok(c.exec->env[2] == NULL, "env ends");
        is_str(c.exec->api_version, KLE_EXEC_V1, "apiVersion");
        is_str(c.exec->install_hint, "get it", "installHint");
        is_int(c.exec->provide_cluster_info, 1, "provideClusterInfo");
    }
    ok(c.token == NULL && c.cert_data == NULL, "no credential before a run");
    ok(kle_creds_secret(&c), "an exec user counts as a secret (https only)");

    is_int(kle_creds_copy(&d, &c), 0, "copy");
    ok(d.exec != NULL && d.exec != c.exec
       && strcmp(d.exec->argv[4], "a b") == 0
       && strcmp(d.exec->env[0], "AWS_PROFILE=prod") == 0,
       "the copy has its own exec configuration");
    kle_creds_free(&d);
    kle_creds_free(&c);

    /* v1beta1 may leave interactiveMode out; PATH lookup for a bare name */
    put("x2", EXEC_HEAD
              "      apiVersion: client.authentication.k8s.io/v1beta1\n"
              "      command: sh\n");
    is_int(kle_kubeconfig_load(&c, at("x2"), NULL, err, sizeof(err)), 0,
           "v1beta1 without interactiveMode");
    ok(c.exec && c.exec->path[0] == '/'
       && strcmp(strrchr(c.exec->path, '/'), "/sh") == 0,
       "a bare command is found in PATH");
    ok(c.exec && c.exec->env == NULL && c.exec->argv[1] == NULL,
       "no env, no args");
    kle_creds_free(&c);

    put("x3", EXEC_HEAD
              "      apiVersion: client.authentication.k8s.io/v1\n"
              "      command: ./plugin.sh\n");
    load_fails("x3", NULL,
               kerr("x3", "user \"u\": users[0].user.exec.interactiveMode "
                    "must be given with client.authentication.k8s.io/v1 "
                    "(Never or IfAvailable)"), "v1 needs interactiveMode");

    put("x4", EXEC_HEAD
              "      apiVersion: client.authentication.k8s.io/v1\n"
              "      command: ./plugin.sh\n"
              "      interactiveMode: Always\n");
    load_fails("x4", NULL,
               kerr("x4", "user \"u\": users[0].user.exec.interactiveMode "
                    "\"Always\" needs a terminal, and the plugin runs "
                    "without one here (stdin is /dev/null): use a plugin "
                    "that works with \"Never\" or \"IfAvailable\""),
               "interactiveMode Always");

    put("x5", EXEC_HEAD
              "      apiVersion: client.authentication.k8s.io/v1\n"
              "      command: ./plugin.sh\n"
              "      interactiveMode: Sometimes\n");
    load_fails("x5", NULL,
               kerr("x5", "users[0].user.exec.interactiveMode \"Sometimes\" "
                    "is invalid: Never, IfAvailable or Always"),
               "interactiveMode unknown");

    put("x6", EXEC_HEAD
              "      apiVersion: client.authentication.k8s.io/v1alpha1\n"
              "      command: ./plugin.sh\n");
    load_fails("x6", NULL,
               kerr("x6", "users[0].user.exec.apiVersion "
                    "\"client.authentication.k8s.io/v1alpha1\" is not "
                    "supported: use \"client.authentication.k8s.io/v1\" or "
                    "\"client.authentication.k8s.io/v1beta1\""),
               "v1alpha1");

    put("x7", EXEC_HEAD
              "      command: ./plugin.sh\n");
    load_fails("x7", NULL,
               kerr("x7", "user \"u\": users[0].user.exec.apiVersion must "
                    "be given (\"client.authentication.k8s.io/v1\" or "
                    "\"client.authentication.k8s.io/v1beta1\")"),
               "no apiVersion");

    put("x8", EXEC_HEAD
              "      apiVersion: client.authentication.k8s.io/v1\n"
              "      interactiveMode: Never\n");
    load_fails("x8", NULL,
               kerr("x8", "user \"u\": users[0].user.exec.command must be "
                    "given to use an exec credential plugin"), "no command");

    put("x9", EXEC_HEAD
              "      apiVersion: client.authentication.k8s.io/v1\n"
              "      command: ./noexec.sh\n"
              "      interactiveMode: Never\n"
              "      installHint: brew install it\n");
    load_fails("x9", NULL,
               kerr("x9", "user \"u\": users[0].user.exec.command: \"%s\" is "
                    "not executable: Permission denied; brew install it",
                    at("noexec.sh")), "not executable, with the hint");

    put("x10", EXEC_HEAD
               "      apiVersion: client.authentication.k8s.io/v1\n"
               "      command: ./plugin.sh\n"
               "      interactiveMode: Never\n"
               "      env: [{value: x}]\n");
    load_fails("x10", NULL,
               kerr("x10", "users[0].user.exec.env[0].name: an environment "
                    "variable name must be given (without \"=\")"),
               "env without a name");

    put("x11", EXEC_HEAD
               "      apiVersion: client.authentication.k8s.io/v1\n"
               "      command: ./plugin.sh\n"
               "      interactiveMode: Never\n"
               "      args: [a, [b]]\n");
    load_fails("x11", NULL,
               kerr("x11", "users[0].user.exec.args[1]: expected a string"),
               "args not strings");

    put("x12", "current-context: x\n"
               "contexts: [{name: x, context: {cluster: c, user: u}}]\n"
               "clusters: [{name: c, cluster: {server: 'http://h'}}]\n"
               "users: [{name: u, user: {exec: {command: ./plugin.sh,\n"
               "  apiVersion: client.authentication.k8s.io/v1beta1}}}]\n");
    load_fails("x12", NULL,
               kerr("x12", "context \"x\": user \"u\" with cluster \"c\" "
                    "(http://h): credentials (a bearer token or a client "
                    "certificate) are only sent over https://"),
               "an exec user over http://");

    free(plugin);
}


/* the cluster's exec extension, as JSON for spec.cluster.config */

#define EXT_HEAD                                                             \
    "current-context: x\n"                                                   \
    "contexts: [{name: x, context: {cluster: c}}]\n"                         \
    "clusters:\n"                                                            \
    "- name: c\n"                                                            \
    "  cluster:\n"                                                           \
    "    server: https://h:6443\n"

static void
test_exec_extension(void)
{
    kle_creds_t  c, d;

    put("e1", EXT_HEAD
              "    extensions:\n"
              "    - name: other.example.com/x\n"
              "      extension: {ignored: true}\n"
              "    - name: client.authentication.k8s.io/exec\n"
              "      extension:\n"
              "        audience: sts.example.com\n"
              "        port: 8443\n"
              "        ratio: 0.5\n"
              "        big: 99999999999999999999\n"
              "        enabled: yes\n"
              "        quoted: 'yes'\n"
              "        version: \"1.20\"\n"
              "        none: ~\n"
              "        range: 1-2\n"
              "        hex: 0x1F\n"
              "        list: [a, 2, {k: v}]\n"
              "        anchor: &a {x: 1}\n"
              "        alias: *a\n");
    err[0] = '\0';
    is_int(kle_kubeconfig_load(&c, at("e1"), NULL, err, sizeof(err)), 0,
           "a cluster with extensions loads");
    is_str(err, "", "no error");
    is_str(c.exec_config,
           "{\"audience\":\"sts.example.com\",\"port\":8443,\"ratio\":0.5,"
           "\"big\":1e+20,\"enabled\":true,\"quoted\":\"yes\","
           "\"version\":\"1.20\",\"none\":null,\"range\":\"1-2\","
           "\"hex\":\"0x1F\",\"list\":[\"a\",2,{\"k\":\"v\"}],"
           "\"anchor\":{\"x\":1},\"alias\":{\"x\":1}}",
           "only the exec extension, typed as Go's YAML reads it");
    is_int(kle_creds_copy(&d, &c), 0, "copy");
    ok(d.exec_config && d.exec_config != c.exec_config
       && strcmp(d.exec_config, c.exec_config) == 0,
       "the copy has its own extension");
    kle_creds_free(&d);
    kle_creds_free(&c);

    put("e2", EXT_HEAD "    extensions: [{name: other, extension: 1}]\n");
    is_int(kle_kubeconfig_load(&c, at("e2"), NULL, err, sizeof(err)), 0,
           "other extensions only");
    ok(c.exec_config == NULL, "no exec extension, no config");
    kle_creds_free(&c);

    put("e3", EXT_HEAD "    extensions: {name: x}\n");
    is_int(kle_kubeconfig_load(&c, at("e3"), NULL, err, sizeof(err)), -1,
           "extensions not a list");
    ok(strstr(err, "clusters[0].cluster.extensions: expected a list") != NULL,
       "says where");

    put("e4", EXT_HEAD
              "    extensions:\n"
              "    - {name: client.authentication.k8s.io/exec, extension: {a: 1}}\n"
              "    - {name: client.authentication.k8s.io/exec, extension: {a: 2}}\n");
    is_int(kle_kubeconfig_load(&c, at("e4"), NULL, err, sizeof(err)), -1,
           "the exec extension twice");
    ok(strstr(err, "extensions[1]: duplicate extension") != NULL, "refused");

    put("e6", EXT_HEAD
              "    extensions:\n"
              "    - {name: client.authentication.k8s.io/exec, extension: 1}\n");
    is_int(kle_kubeconfig_load(&c, at("e6"), NULL, err, sizeof(err)), -1,
           "the exec extension not an object");
    ok(strstr(err, "clusters[0].cluster.extensions[0].extension: expected a "
                   "mapping") != NULL, "says where");

    /* aliases expand: a few lines may stand for more nodes than the scan
       counted */
    put("e5", EXT_HEAD
              "    extensions:\n"
              "    - name: client.authentication.k8s.io/exec\n"
              "      extension:\n"
              "        a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n"
              "        b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
              "        c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
              "        d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
              "        e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n");
    is_int(kle_kubeconfig_load(&c, at("e5"), NULL, err, sizeof(err)), -1,
           "an alias bomb in the extension");
    ok(strstr(err, "more than 100000 nodes") != NULL, "is bounded");
}


int
main(void)
{
    kle_test_dir_make("/tmp/kle_kc_XXXXXX");

    test_yaml();
    test_json();
    test_token_refresh();
    test_errors();
    test_base64();
    test_incluster();
    test_direct();
    test_copy();
    test_inline();
    test_rules();
    test_bounds();
    test_exec();
    test_exec_extension();

    kle_test_dir_remove();

    return done_testing();
}
