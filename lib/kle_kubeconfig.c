/*
 * Credentials: a kubeconfig (libyaml, so YAML or JSON), the in-cluster
 * service account, or files given directly; and the bearer token refresh.
 * Token contents never appear in an error message.
 */

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yaml.h>

#include "kle_kubeconfig.h"

/* client-go re-reads a (projected, rotated) token file every minute */
#define KLE_TOKEN_REFRESH_MS  60000
/* bound on any file read whole: kubeconfig, token, namespace */
#define KLE_FILE_MAX          (16 * 1024 * 1024)

#define KLE_INCLUSTER         "in-cluster configuration: "
#define KLE_NO_PLUGINS        "; use a token, tokenFile or client certificates"

typedef struct {
    const char       *path;      /* the kubeconfig, for messages */
    char             *dir;       /* its folder; NULL if path has no '/' */
    yaml_document_t  *doc;
    kle_creds_t      *c;         /* being filled */
    char             *err;
    size_t            errlen;
} kle_kc_t;


static int kle_kc_parse(kle_kc_t *kc, const char *text, size_t len);
static int kle_kc_config(kle_kc_t *kc, const char *context);
static int kle_kc_cluster(kle_kc_t *kc, const char *name, yaml_node_t *cl,
    const char *pfx);
static int kle_kc_user(kle_kc_t *kc, const char *name, yaml_node_t *u,
    const char *pfx);
static int kle_kc_find(kle_kc_t *kc, const char *list, const char *item,
    const char *name, yaml_node_t **body, char *pfx, size_t pfxlen);
static yaml_node_t *kle_kc_get(kle_kc_t *kc, yaml_node_t *map,
    const char *key);
static int kle_kc_str(kle_kc_t *kc, yaml_node_t *map, const char *key,
    const char *pfx, const char **out);
static int kle_kc_bool(kle_kc_t *kc, yaml_node_t *map, const char *key,
    const char *pfx, int *out);
static int kle_kc_data(kle_kc_t *kc, yaml_node_t *map, const char *key,
    const char *pfx, unsigned char **data, size_t *len);
static int kle_kc_file(kle_kc_t *kc, yaml_node_t *map, const char *key,
    const char *pfx, char **path);
static int kle_kc_error(kle_kc_t *kc, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int kle_server_set(kle_creds_t *c, const char *url, const char **why);
static int kle_token_load(kle_creds_t *c, const char *path, char *why,
    size_t whylen);
static char *kle_token_read(const char *path, char *why, size_t whylen);
static int kle_token_check(const char *token, const char **why);
static int kle_file_check(const char *path, char *why, size_t whylen);
static char *kle_file_read(const char *path, size_t *len, char *why,
    size_t whylen);
static char *kle_trim(char *s);
static unsigned char *kle_base64_decode(const char *s, size_t *len);
static int kle_dup(char **dst, const char *src);
static int kle_dupmem(unsigned char **dst, const unsigned char *src,
    size_t len);
static void kle_secret_free(void *p, size_t len);
static char *kle_aprintf(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
static int kle_error(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));


int
kle_kubeconfig_load(kle_creds_t *c, const char *path, const char *context,
    char *err, size_t errlen)
{
    int               rc;
    char             *text, *slash, why[256];
    size_t            len;
    kle_kc_t          kc;
    yaml_document_t   doc;

    memset(c, 0, sizeof(*c));
    memset(&kc, 0, sizeof(kc));
    kc.path = path;
    kc.doc = &doc;
    kc.c = c;
    kc.err = err;
    kc.errlen = errlen;

    /* read whole: the messages for a missing file or a folder are ours */
    text = kle_file_read(path, &len, why, sizeof(why));
    if (text == NULL) {
        return kle_kc_error(&kc, "%s", why);
    }

    rc = kle_kc_parse(&kc, text, len);
    kle_secret_free(text, len);
    if (rc != 0) {
        return -1;
    }

    slash = strrchr(path, '/');
    if (slash != NULL) {
        kc.dir = strndup(path, slash - path);
        if (kc.dir == NULL) {
            rc = kle_kc_error(&kc, "out of memory");
        }
    }

    if (rc == 0) {
        rc = kle_kc_config(&kc, context);
    }

    yaml_document_delete(&doc);
    free(kc.dir);

    if (rc != 0) {
        kle_creds_free(c);
        return -1;
    }

    snprintf(c->source, sizeof(c->source), "%s", path);
    return 0;
}


int
kle_incluster_load(kle_creds_t *c, const char *dir, char *err,
    size_t errlen)
{
    char        *p, *ns, why[256];
    size_t       len;
    const char  *host, *port;

    memset(c, 0, sizeof(*c));

    if (dir == NULL) {
        dir = KLE_SA_DIR;
    }

    host = getenv("KUBERNETES_SERVICE_HOST");
    port = getenv("KUBERNETES_SERVICE_PORT");

    if (host == NULL || host[0] == '\0' || port == NULL || port[0] == '\0') {
        return kle_error(err, errlen, KLE_INCLUSTER "%s is not set "
            "(not running in a pod? use \"api_server kubeconfig PATH\")",
            (host == NULL || host[0] == '\0') ? "KUBERNETES_SERVICE_HOST"
                                              : "KUBERNETES_SERVICE_PORT");
    }

    if (strspn(port, "0123456789") != strlen(port) || strlen(port) > 5
        || atoi(port) < 1 || atoi(port) > 65535)
    {
        return kle_error(err, errlen, KLE_INCLUSTER "KUBERNETES_SERVICE_PORT "
                         "\"%s\" is not a port number", port);
    }

    /* an IPv6 address needs brackets in a URL */
    if (strchr(host, ':') != NULL && host[0] != '[') {
        c->server = kle_aprintf("https://[%s]:%s", host, port);
    } else {
        c->server = kle_aprintf("https://%s:%s", host, port);
    }

    if (c->server == NULL) {
        goto nomem;
    }

    len = strlen(dir);
    while (len > 0 && dir[len - 1] == '/') {
        len--;
    }

    p = kle_aprintf("%.*s/token", (int) len, dir);
    if (p == NULL) {
        goto nomem;
    }

    if (kle_token_load(c, p, why, sizeof(why)) != 0) {
        kle_error(err, errlen, KLE_INCLUSTER "\"%s\": %s", p, why);
        free(p);
        goto failed;
    }

    free(p);

    c->ca_file = kle_aprintf("%.*s/ca.crt", (int) len, dir);
    if (c->ca_file == NULL) {
        goto nomem;
    }

    if (kle_file_check(c->ca_file, why, sizeof(why)) != 0) {
        kle_error(err, errlen, KLE_INCLUSTER "\"%s\": %s", c->ca_file, why);
        goto failed;
    }

    p = kle_aprintf("%.*s/namespace", (int) len, dir);
    if (p == NULL) {
        goto nomem;
    }

    ns = kle_file_read(p, &len, why, sizeof(why));

    if (ns == NULL && errno != ENOENT) {
        kle_error(err, errlen, KLE_INCLUSTER "\"%s\": %s", p, why);
        free(p);
        goto failed;
    }

    free(p);

    if (ns != NULL) {
        if (kle_trim(ns)[0] == '\0') {
            free(ns);

        } else {
            c->namespace = ns;
        }
    }

    snprintf(c->source, sizeof(c->source), "in-cluster");
    return 0;

nomem:
    kle_error(err, errlen, KLE_INCLUSTER "out of memory");
failed:
    kle_creds_free(c);
    return -1;
}


int
kle_creds_direct(kle_creds_t *c, const char *server,
    const char *token_file, const char *ca_file, const char *cert_file,
    const char *key_file, char *err, size_t errlen)
{
    int          i;
    char         why[256];
    const char  *bad;
    struct {
        const char   *name;
        const char   *path;
        char        **dst;
    } files[] = {
        { "ca_file", ca_file, &c->ca_file },
        { "client_cert", cert_file, &c->cert_file },
        { "client_key", key_file, &c->key_file },
    };

    memset(c, 0, sizeof(*c));

    if (server == NULL) {
        return kle_error(err, errlen, "no API server URL given");
    }

    if (kle_server_set(c, server, &bad) != 0) {
        kle_error(err, errlen, "server \"%s\": %s", server, bad);
        goto failed;
    }

    if ((cert_file == NULL) != (key_file == NULL)) {
        kle_error(err, errlen, "%s \"%s\" needs a %s",
                  cert_file ? "client_cert" : "client_key",
                  cert_file ? cert_file : key_file,
                  cert_file ? "client_key" : "client_cert");
        goto failed;
    }

    for (i = 0; i < (int) (sizeof(files) / sizeof(files[0])); i++) {
        if (files[i].path == NULL) {
            continue;
        }

        if (kle_file_check(files[i].path, why, sizeof(why)) != 0) {
            kle_error(err, errlen, "%s \"%s\": %s", files[i].name,
                      files[i].path, why);
            goto failed;
        }

        *files[i].dst = strdup(files[i].path);
        if (*files[i].dst == NULL) {
            goto nomem;
        }
    }

    if (token_file != NULL
        && kle_token_load(c, token_file, why, sizeof(why)) != 0)
    {
        kle_error(err, errlen, "token_file \"%s\": %s", token_file, why);
        goto failed;
    }

    snprintf(c->source, sizeof(c->source), "%s", c->server);
    return 0;

nomem:
    kle_error(err, errlen, "out of memory");
failed:
    kle_creds_free(c);
    return -1;
}


const char *
kle_creds_token(kle_creds_t *c, int64_t now_ms, int force)
{
    char  *token, why[256];

    if (c->token_file == NULL) {
        return c->token;
    }

    if (force || c->token == NULL
        || now_ms - c->token_read >= KLE_TOKEN_REFRESH_MS)
    {
        c->token_read = now_ms;

        /* a file caught mid-rotation must not drop a working token */
        token = kle_token_read(c->token_file, why, sizeof(why));
        if (token != NULL) {
            kle_secret_free(c->token, c->token ? strlen(c->token) : 0);
            c->token = token;
            c->token_error[0] = '\0';

        } else {
            snprintf(c->token_error, sizeof(c->token_error), "%s", why);
        }
    }

    return c->token;
}


int
kle_creds_inline(kle_creds_t *c, char *err, size_t errlen)
{
    struct {
        const char      *path;
        unsigned char  **data;
        size_t          *len;
    }       files[] = {
        { c->ca_file, &c->ca_data, &c->ca_len },
        { c->cert_file, &c->cert_data, &c->cert_len },
        { c->key_file, &c->key_data, &c->key_len },
    };
    char    why[256];
    size_t  i;

    for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        if (files[i].path == NULL || *files[i].data != NULL) {
            continue;
        }

        *files[i].data = (unsigned char *) kle_file_read(files[i].path,
                                                         files[i].len, why,
                                                         sizeof(why));
        if (*files[i].data == NULL) {
            return kle_error(err, errlen, "\"%s\": %s", files[i].path, why);
        }
    }

    return 0;
}


int
kle_creds_copy(kle_creds_t *dst, const kle_creds_t *src)
{
    memset(dst, 0, sizeof(*dst));

    dst->ca_len = src->ca_len;
    dst->cert_len = src->cert_len;
    dst->key_len = src->key_len;
    dst->insecure = src->insecure;
    dst->token_read = src->token_read;
    memcpy(dst->token_error, src->token_error, sizeof(dst->token_error));
    memcpy(dst->source, src->source, sizeof(dst->source));

    if (kle_dup(&dst->server, src->server) != 0
        || kle_dup(&dst->ca_file, src->ca_file) != 0
        || kle_dupmem(&dst->ca_data, src->ca_data, src->ca_len) != 0
        || kle_dup(&dst->cert_file, src->cert_file) != 0
        || kle_dupmem(&dst->cert_data, src->cert_data, src->cert_len) != 0
        || kle_dup(&dst->key_file, src->key_file) != 0
        || kle_dupmem(&dst->key_data, src->key_data, src->key_len) != 0
        || kle_dup(&dst->tls_server_name, src->tls_server_name) != 0
        || kle_dup(&dst->proxy_url, src->proxy_url) != 0
        || kle_dup(&dst->namespace, src->namespace) != 0
        || kle_dup(&dst->token, src->token) != 0
        || kle_dup(&dst->token_file, src->token_file) != 0)
    {
        kle_creds_free(dst);
        return -1;
    }

    return 0;
}


void
kle_creds_free(kle_creds_t *c)
{
    free(c->server);
    free(c->ca_file);
    free(c->ca_data);
    free(c->cert_file);
    free(c->cert_data);
    free(c->key_file);
    kle_secret_free(c->key_data, c->key_len);
    free(c->tls_server_name);
    free(c->proxy_url);
    free(c->namespace);
    kle_secret_free(c->token, c->token ? strlen(c->token) : 0);
    free(c->token_file);

    memset(c, 0, sizeof(*c));
}


static int
kle_kc_parse(kle_kc_t *kc, const char *text, size_t len)
{
    int            ok;
    yaml_parser_t  parser;

    if (!yaml_parser_initialize(&parser)) {
        return kle_kc_error(kc, "out of memory");
    }

    yaml_parser_set_input_string(&parser, (const unsigned char *) text, len);

    /* the first document; on failure libyaml has freed it already */
    ok = yaml_parser_load(&parser, kc->doc);

    if (!ok) {
        if (parser.error == YAML_MEMORY_ERROR) {
            kle_kc_error(kc, "out of memory");

        } else if (parser.error == YAML_READER_ERROR) {
            kle_kc_error(kc, "byte %zu: %s", parser.problem_offset,
                         parser.problem ? parser.problem : "invalid input");

        } else {
            kle_kc_error(kc, "line %zu: %s", parser.problem_mark.line + 1,
                         parser.problem ? parser.problem : "invalid YAML");
        }
    }

    yaml_parser_delete(&parser);

    return ok ? 0 : -1;
}


static int
kle_kc_config(kle_kc_t *kc, const char *context)
{
    char          cpfx[64], lpfx[64], upfx[64];
    yaml_node_t  *root, *ctx, *cl, *u;
    const char   *cluster, *user, *ns;

    root = yaml_document_get_root_node(kc->doc);

    if (root == NULL) {
        return kle_kc_error(kc, "empty file");
    }

    if (root->type != YAML_MAPPING_NODE) {
        return kle_kc_error(kc, "not a kubeconfig (the top level is not a "
                            "mapping)");
    }

    if (context == NULL) {
        if (kle_kc_str(kc, root, "current-context", NULL, &context) != 0) {
            return -1;
        }

        if (context == NULL || context[0] == '\0') {
            return kle_kc_error(kc, "no current-context and no context "
                                "given");
        }
    }

    switch (kle_kc_find(kc, "contexts", "context", context, &ctx, cpfx,
                        sizeof(cpfx)))
    {
    case -1:
        return -1;
    case 0:
        return kle_kc_error(kc, "context \"%s\" not found", context);
    }

    if (kle_kc_str(kc, ctx, "cluster", cpfx, &cluster) != 0
        || kle_kc_str(kc, ctx, "user", cpfx, &user) != 0
        || kle_kc_str(kc, ctx, "namespace", cpfx, &ns) != 0)
    {
        return -1;
    }

    if (cluster == NULL || cluster[0] == '\0') {
        return kle_kc_error(kc, "context \"%s\": missing \"cluster\"",
                            context);
    }

    switch (kle_kc_find(kc, "clusters", "cluster", cluster, &cl, lpfx,
                        sizeof(lpfx)))
    {
    case -1:
        return -1;
    case 0:
        return kle_kc_error(kc, "context \"%s\": cluster \"%s\" not found",
                            context, cluster);
    }

    if (kle_kc_cluster(kc, cluster, cl, lpfx) != 0) {
        return -1;
    }

    /* a context without a user talks to the server unauthenticated */
    if (user != NULL && user[0] != '\0') {
        switch (kle_kc_find(kc, "users", "user", user, &u, upfx,
                            sizeof(upfx)))
        {
        case -1:
            return -1;
        case 0:
            return kle_kc_error(kc, "context \"%s\": user \"%s\" not found",
                                context, user);
        }

        if (kle_kc_user(kc, user, u, upfx) != 0) {
            return -1;
        }
    }

    if (ns != NULL && ns[0] != '\0') {
        kc->c->namespace = strdup(ns);
        if (kc->c->namespace == NULL) {
            return kle_kc_error(kc, "out of memory");
        }
    }

    return 0;
}


static int
kle_kc_cluster(kle_kc_t *kc, const char *name, yaml_node_t *cl,
    const char *pfx)
{
    kle_creds_t  *c = kc->c;
    const char   *server, *s, *bad;

    if (kle_kc_str(kc, cl, "server", pfx, &server) != 0) {
        return -1;
    }

    if (server == NULL || server[0] == '\0') {
        return kle_kc_error(kc, "cluster \"%s\": missing \"server\"", name);
    }

    if (kle_server_set(c, server, &bad) != 0) {
        return kle_kc_error(kc, "%s.server \"%s\": %s", pfx, server, bad);
    }

    /* -data wins over the file, as in client-go */
    if (kle_kc_data(kc, cl, "certificate-authority-data", pfx, &c->ca_data,
                    &c->ca_len) != 0)
    {
        return -1;
    }

    if (c->ca_data == NULL
        && kle_kc_file(kc, cl, "certificate-authority", pfx, &c->ca_file)
           != 0)
    {
        return -1;
    }

    if (kle_kc_bool(kc, cl, "insecure-skip-tls-verify", pfx, &c->insecure)
        != 0)
    {
        return -1;
    }

    if (kle_kc_str(kc, cl, "tls-server-name", pfx, &s) != 0) {
        return -1;
    }

    if (s != NULL && s[0] != '\0' && (c->tls_server_name = strdup(s)) == NULL)
    {
        return kle_kc_error(kc, "out of memory");
    }

    if (kle_kc_str(kc, cl, "proxy-url", pfx, &s) != 0) {
        return -1;
    }

    if (s != NULL && s[0] != '\0' && (c->proxy_url = strdup(s)) == NULL) {
        return kle_kc_error(kc, "out of memory");
    }

    return 0;
}


static int
kle_kc_user(kle_kc_t *kc, const char *name, yaml_node_t *u,
    const char *pfx)
{
    char          why[256];
    kle_creds_t  *c = kc->c;
    const char   *token, *bad;

    if (kle_kc_get(kc, u, "exec") != NULL) {
        return kle_kc_error(kc, "user \"%s\": exec credential plugins are "
                            "not supported" KLE_NO_PLUGINS, name);
    }

    if (kle_kc_get(kc, u, "auth-provider") != NULL) {
        return kle_kc_error(kc, "user \"%s\": auth-provider plugins are "
                            "not supported" KLE_NO_PLUGINS, name);
    }

    if (kle_kc_get(kc, u, "username") != NULL
        || kle_kc_get(kc, u, "password") != NULL)
    {
        return kle_kc_error(kc, "user \"%s\": username/password is not "
                            "supported" KLE_NO_PLUGINS, name);
    }

    if (kle_kc_str(kc, u, "token", pfx, &token) != 0) {
        return -1;
    }

    if (token != NULL && token[0] != '\0') {
        if (kle_token_check(token, &bad) != 0) {
            return kle_kc_error(kc, "%s.token: %s", pfx, bad);
        }

        c->token = strdup(token);
        if (c->token == NULL) {
            return kle_kc_error(kc, "out of memory");
        }
    }

    /* both given: the file replaces the static token, as in client-go */
    if (kle_kc_file(kc, u, "tokenFile", pfx, &c->token_file) != 0) {
        return -1;
    }

    if (c->token_file != NULL) {
        kle_secret_free(c->token, c->token ? strlen(c->token) : 0);
        c->token = NULL;

        if (kle_token_load(c, c->token_file, why, sizeof(why)) != 0) {
            return kle_kc_error(kc, "%s.tokenFile \"%s\": %s", pfx,
                                c->token_file, why);
        }
    }

    if (kle_kc_data(kc, u, "client-certificate-data", pfx, &c->cert_data,
                    &c->cert_len) != 0
        || (c->cert_data == NULL
            && kle_kc_file(kc, u, "client-certificate", pfx, &c->cert_file)
               != 0)
        || kle_kc_data(kc, u, "client-key-data", pfx, &c->key_data,
                       &c->key_len) != 0
        || (c->key_data == NULL
            && kle_kc_file(kc, u, "client-key", pfx, &c->key_file) != 0))
    {
        return -1;
    }

    if ((c->cert_data || c->cert_file) && !(c->key_data || c->key_file)) {
        return kle_kc_error(kc, "user \"%s\": client-certificate without "
                            "client-key", name);
    }

    if ((c->key_data || c->key_file) && !(c->cert_data || c->cert_file)) {
        return kle_kc_error(kc, "user \"%s\": client-key without "
                            "client-certificate", name);
    }

    return 0;
}


/*
 * Finds the entry of the top-level list (contexts, clusters, users) called
 * name: 1 with *body its item mapping (NULL if absent) and pfx the path of
 * that mapping for messages, 0 if there is none, -1 on a malformed list.
 */

static int
kle_kc_find(kle_kc_t *kc, const char *list, const char *item,
    const char *name, yaml_node_t **body, char *pfx, size_t pfxlen)
{
    int                found, i;
    char               ipfx[32];
    const char        *n;
    yaml_node_t       *seq, *entry, *b;
    yaml_node_item_t  *it;

    found = 0;
    *body = NULL;

    seq = kle_kc_get(kc, yaml_document_get_root_node(kc->doc), list);
    if (seq == NULL) {
        return 0;
    }

    if (seq->type != YAML_SEQUENCE_NODE) {
        return kle_kc_error(kc, "%s: expected a list", list);
    }

    for (it = seq->data.sequence.items.start, i = 0;
         it < seq->data.sequence.items.top;
         it++, i++)
    {
        entry = yaml_document_get_node(kc->doc, *it);
        snprintf(ipfx, sizeof(ipfx), "%s[%d]", list, i);

        if (entry == NULL || entry->type != YAML_MAPPING_NODE) {
            return kle_kc_error(kc, "%s: expected a mapping", ipfx);
        }

        if (kle_kc_str(kc, entry, "name", ipfx, &n) != 0) {
            return -1;
        }

        if (n == NULL || strcmp(n, name) != 0) {
            continue;
        }

        /* client-go refuses duplicates rather than pick one */
        if (found) {
            return kle_kc_error(kc, "%s: duplicate %s \"%s\"", ipfx, item,
                                name);
        }

        found = 1;
        snprintf(pfx, pfxlen, "%s.%s", ipfx, item);

        b = kle_kc_get(kc, entry, item);
        if (b != NULL && b->type != YAML_MAPPING_NODE) {
            return kle_kc_error(kc, "%s: expected a mapping", pfx);
        }

        *body = b;
    }

    return found;
}


/* The value of key in a mapping; NULL if map is NULL, key absent or null. */

static yaml_node_t *
kle_kc_get(kle_kc_t *kc, yaml_node_t *map, const char *key)
{
    size_t             len;
    const char        *s;
    yaml_node_t       *k, *v;
    yaml_node_pair_t  *pair;

    if (map == NULL || map->type != YAML_MAPPING_NODE) {
        return NULL;
    }

    len = strlen(key);

    for (pair = map->data.mapping.pairs.start;
         pair < map->data.mapping.pairs.top;
         pair++)
    {
        k = yaml_document_get_node(kc->doc, pair->key);

        if (k == NULL || k->type != YAML_SCALAR_NODE
            || k->data.scalar.length != len
            || memcmp(k->data.scalar.value, key, len) != 0)
        {
            continue;
        }

        v = yaml_document_get_node(kc->doc, pair->value);

        /* "key:", "key: ~" and JSON's null all mean absent */
        if (v != NULL && v->type == YAML_SCALAR_NODE
            && v->data.scalar.style == YAML_PLAIN_SCALAR_STYLE)
        {
            s = (const char *) v->data.scalar.value;

            if (s[0] == '\0' || strcmp(s, "~") == 0
                || strcmp(s, "null") == 0 || strcmp(s, "Null") == 0
                || strcmp(s, "NULL") == 0)
            {
                return NULL;
            }
        }

        return v;
    }

    return NULL;
}


static int
kle_kc_str(kle_kc_t *kc, yaml_node_t *map, const char *key, const char *pfx,
    const char **out)
{
    yaml_node_t  *v;

    *out = NULL;

    v = kle_kc_get(kc, map, key);
    if (v == NULL) {
        return 0;
    }

    /* a NUL inside would silently cut the value short */
    if (v->type != YAML_SCALAR_NODE
        || strlen((const char *) v->data.scalar.value) != v->data.scalar.length)
    {
        return kle_kc_error(kc, "%s%s%s: expected a string", pfx ? pfx : "",
                            pfx ? "." : "", key);
    }

    *out = (const char *) v->data.scalar.value;
    return 0;
}


static int
kle_kc_bool(kle_kc_t *kc, yaml_node_t *map, const char *key, const char *pfx,
    int *out)
{
    int          i;
    const char  *s;
    static const char  *yes[] = { "true", "yes", "on" };
    static const char  *no[] = { "false", "no", "off" };

    if (kle_kc_str(kc, map, key, pfx, &s) != 0) {
        return -1;
    }

    *out = 0;

    if (s == NULL) {
        return 0;
    }

    /* YAML 1.1 booleans, as the Go YAML reader takes them */
    for (i = 0; i < 3; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = 1;
            return 0;
        }

        if (strcasecmp(s, no[i]) == 0) {
            return 0;
        }
    }

    return kle_kc_error(kc, "%s.%s: expected true or false", pfx, key);
}


static int
kle_kc_data(kle_kc_t *kc, yaml_node_t *map, const char *key, const char *pfx,
    unsigned char **data, size_t *len)
{
    const char  *s;

    *data = NULL;
    *len = 0;

    if (kle_kc_str(kc, map, key, pfx, &s) != 0) {
        return -1;
    }

    if (s == NULL) {
        return 0;
    }

    *data = kle_base64_decode(s, len);

    if (*data == NULL) {
        return kle_kc_error(kc, "%s.%s: %s", pfx, key,
                            errno == ENOMEM ? "out of memory"
                                            : "invalid base64");
    }

    /* empty means not set, as an empty []byte does in Go */
    if (*len == 0) {
        free(*data);
        *data = NULL;
    }

    return 0;
}


/* A file named by key, resolved against the kubeconfig's folder. */

static int
kle_kc_file(kle_kc_t *kc, yaml_node_t *map, const char *key, const char *pfx,
    char **path)
{
    char         why[256];
    const char  *s;

    *path = NULL;

    if (kle_kc_str(kc, map, key, pfx, &s) != 0) {
        return -1;
    }

    if (s == NULL || s[0] == '\0') {
        return 0;
    }

    if (s[0] == '/' || kc->dir == NULL) {
        *path = strdup(s);

    } else {
        *path = kle_aprintf("%s/%s", kc->dir, s);
    }

    if (*path == NULL) {
        return kle_kc_error(kc, "out of memory");
    }

    /* checked now so that nginx -t reports it */
    if (kle_file_check(*path, why, sizeof(why)) != 0) {
        return kle_kc_error(kc, "%s.%s \"%s\": %s", pfx, key, *path, why);
    }

    return 0;
}


static int
kle_kc_error(kle_kc_t *kc, const char *fmt, ...)
{
    char     msg[1024];
    va_list  ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    return kle_error(kc->err, kc->errlen, "kubeconfig \"%s\": %s", kc->path,
                     msg);
}


/* Validates url and stores it without trailing slashes in c->server. */

static int
kle_server_set(kle_creds_t *c, const char *url, const char **why)
{
    char    *s;
    size_t   len, skip;

    if (strncmp(url, "https://", 8) == 0) {
        skip = 8;

    } else if (strncmp(url, "http://", 7) == 0) {
        skip = 7;

    } else {
        *why = "must start with https:// or http://";
        return -1;
    }

    len = strlen(url);
    while (len > skip && url[len - 1] == '/') {
        len--;
    }

    if (len == skip || url[skip] == '/') {
        *why = "has no host";
        return -1;
    }

    s = strndup(url, len);
    if (s == NULL) {
        *why = "out of memory";
        return -1;
    }

    free(c->server);
    c->server = s;
    return 0;
}


/* Sets token_file to path and reads it; an empty token is an error here. */

static int
kle_token_load(kle_creds_t *c, const char *path, char *why, size_t whylen)
{
    if (c->token_file != path) {
        c->token_file = strdup(path);
        if (c->token_file == NULL) {
            snprintf(why, whylen, "out of memory");
            return -1;
        }
    }

    c->token = kle_token_read(path, why, whylen);

    /* read at load; the host's clock is not known yet, so 0 = long ago */
    c->token_read = 0;

    return c->token ? 0 : -1;
}


static char *
kle_token_read(const char *path, char *why, size_t whylen)
{
    char        *buf, *t;
    size_t       len;
    const char  *bad;

    buf = kle_file_read(path, &len, why, whylen);
    if (buf == NULL) {
        return NULL;
    }

    t = kle_trim(buf);

    if (t[0] == '\0') {
        snprintf(why, whylen, "is empty");
        kle_secret_free(buf, len);
        return NULL;
    }

    if (kle_token_check(t, &bad) != 0) {
        snprintf(why, whylen, "%s", bad);
        kle_secret_free(buf, len);
        return NULL;
    }

    return buf;
}


/* A token goes into an HTTP header: CR, LF and the like would break it. */

static int
kle_token_check(const char *token, const char **why)
{
    const unsigned char  *p;

    for (p = (const unsigned char *) token; *p; p++) {
        if (*p < 0x20 || *p == 0x7f) {
            *why = "contains control characters";
            return -1;
        }
    }

    return 0;
}


static int
kle_file_check(const char *path, char *why, size_t whylen)
{
    int          fd;
    struct stat  st;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd == -1) {
        snprintf(why, whylen, "cannot open: %s", strerror(errno));
        return -1;
    }

    if (fstat(fd, &st) == -1) {
        snprintf(why, whylen, "cannot open: %s", strerror(errno));
        close(fd);
        return -1;
    }

    close(fd);

    /* open() takes a folder; reading it later would not */
    if (S_ISDIR(st.st_mode)) {
        snprintf(why, whylen, "cannot open: %s", strerror(EISDIR));
        return -1;
    }

    return 0;
}


/*
 * Reads a whole file, NUL-terminated.  NULL with errno set and why filled
 * ("cannot open: ..." or "cannot read: ...") on failure.
 */

static char *
kle_file_read(const char *path, size_t *len, char *why, size_t whylen)
{
    int      fd, e;
    char    *buf, *p;
    size_t   size, n;
    ssize_t  r;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd == -1) {
        e = errno;
        snprintf(why, whylen, "cannot open: %s", strerror(e));
        errno = e;
        return NULL;
    }

    size = 4096;
    n = 0;
    buf = malloc(size);
    if (buf == NULL) {
        e = ENOMEM;
        goto failed;
    }

    for ( ;; ) {
        if (n + 1 == size) {
            if (size >= KLE_FILE_MAX) {
                e = EFBIG;
                goto failed;
            }

            p = realloc(buf, size * 2);
            if (p == NULL) {
                e = ENOMEM;
                goto failed;
            }

            buf = p;
            size *= 2;
        }

        r = read(fd, buf + n, size - n - 1);

        if (r == -1 && errno == EINTR) {
            continue;
        }

        if (r == -1) {
            e = errno;
            goto failed;
        }

        if (r == 0) {
            break;
        }

        n += r;
    }

    close(fd);
    buf[n] = '\0';
    *len = n;
    return buf;

failed:

    snprintf(why, whylen, "cannot read: %s", strerror(e));
    kle_secret_free(buf, n);
    close(fd);
    errno = e;
    return NULL;
}


/* Strips leading and trailing whitespace in place; returns s. */

static char *
kle_trim(char *s)
{
    size_t  skip, len;

    for (skip = 0; isspace((unsigned char) s[skip]); skip++) {
        /* void */
    }

    len = strlen(s + skip);
    while (len > 0 && isspace((unsigned char) s[skip + len - 1])) {
        len--;
    }

    memmove(s, s + skip, len);
    s[len] = '\0';
    return s;
}


/*
 * Standard base64 as Go's encoding/json reads []byte, but lenient where that
 * is harmless: whitespace (YAML line folding) is skipped and the padding may
 * be left out.  NULL with errno EINVAL or ENOMEM.  The result is
 * NUL-terminated for convenience; *len excludes the NUL.
 */

static unsigned char *
kle_base64_decode(const char *s, size_t *len)
{
    int             v, pad;
    size_t          q;
    uint32_t        acc;
    unsigned char  *out, *p;

    out = malloc(strlen(s) / 4 * 3 + 3);
    if (out == NULL) {
        errno = ENOMEM;
        return NULL;
    }

    p = out;
    acc = 0;
    q = 0;
    pad = 0;

    for ( ; *s; s++) {
        if (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n') {
            continue;
        }

        if (*s == '=') {
            pad++;
            continue;
        }

        if (*s >= 'A' && *s <= 'Z') {
            v = *s - 'A';
        } else if (*s >= 'a' && *s <= 'z') {
            v = *s - 'a' + 26;
        } else if (*s >= '0' && *s <= '9') {
            v = *s - '0' + 52;
        } else if (*s == '+') {
            v = 62;
        } else if (*s == '/') {
            v = 63;
        } else {
            goto invalid;
        }

        /* nothing may follow the padding */
        if (pad) {
            goto invalid;
        }

        acc = acc << 6 | v;

        if (++q == 4) {
            *p++ = (unsigned char) (acc >> 16);
            *p++ = (unsigned char) (acc >> 8);
            *p++ = (unsigned char) acc;
            acc = 0;
            q = 0;
        }
    }

    /* a last group of 2 or 3 sextets, padded to 4 if padded at all */
    if (q == 1 || (pad && (q < 2 || q + pad != 4))) {
        goto invalid;
    }

    if (q == 2) {
        *p++ = (unsigned char) (acc >> 4);

    } else if (q == 3) {
        *p++ = (unsigned char) (acc >> 10);
        *p++ = (unsigned char) (acc >> 2);
    }

    *p = '\0';
    *len = p - out;
    return out;

invalid:

    free(out);
    errno = EINVAL;
    return NULL;
}


static int
kle_dup(char **dst, const char *src)
{
    *dst = NULL;

    if (src == NULL) {
        return 0;
    }

    *dst = strdup(src);
    return *dst ? 0 : -1;
}


static int
kle_dupmem(unsigned char **dst, const unsigned char *src, size_t len)
{
    *dst = NULL;

    if (src == NULL) {
        return 0;
    }

    /* keep the NUL the decoder adds */
    *dst = malloc(len + 1);
    if (*dst == NULL) {
        return -1;
    }

    memcpy(*dst, src, len);
    (*dst)[len] = '\0';
    return 0;
}


/* Tokens and private keys do not linger in freed heap memory. */

static void
kle_secret_free(void *p, size_t len)
{
    if (p != NULL) {
        explicit_bzero(p, len);
        free(p);
    }
}


static char *
kle_aprintf(const char *fmt, ...)
{
    int      n;
    char    *s;
    va_list  ap;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);

    if (n < 0) {
        return NULL;
    }

    s = malloc(n + 1);
    if (s == NULL) {
        return NULL;
    }

    va_start(ap, fmt);
    vsnprintf(s, n + 1, fmt, ap);
    va_end(ap);

    return s;
}


static int
kle_error(char *err, size_t errlen, const char *fmt, ...)
{
    va_list  ap;

    if (err != NULL && errlen > 0) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }

    return -1;
}
