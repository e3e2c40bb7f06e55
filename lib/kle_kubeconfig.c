/*
 * kubeconfig: the YAML (or JSON, which libyaml reads as YAML) document
 * walked down current-context -> context -> cluster and user, as client-go's
 * clientcmd reads it.  Bounded before it is walked: nesting depth, node
 * count and file size; duplicate keys are refused as Go's YAML refuses them.
 */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>
#include <yaml.h>

#include "kle_base64.h"
#include "kle_exec.h"
#include "kle_file.h"
#include "kle_kubeconfig.h"
#include "kle_token.h"

#define KLE_NO_PLUGINS  "; use a token, tokenFile, client certificates " \
                        "or an exec plugin"

typedef struct {
    const char       *path;      /* the kubeconfig, for messages */
    char             *dir;       /* its folder; NULL if path has no '/' */
    yaml_document_t  *doc;
    kle_creds_t      *c;         /* being filled */
    char             *err;
    size_t            errlen;
} kle_kc_t;


static int kle_kc_parse(kle_kc_t *kc, const char *text, size_t len);
static int kle_kc_scan(kle_kc_t *kc, const char *text, size_t len);
static int kle_kc_yaml_error(kle_kc_t *kc, yaml_parser_t *parser);
static int kle_kc_unique_keys(kle_kc_t *kc);
static int kle_kc_key_cmp(const void *a, const void *b);
static int kle_kc_config(kle_kc_t *kc, const char *context);
static int kle_kc_cluster(kle_kc_t *kc, const char *name, yaml_node_t *cl,
    const char *pfx);
static int kle_kc_user(kle_kc_t *kc, const char *name, yaml_node_t *u,
    const char *pfx);
static int kle_kc_exec(kle_kc_t *kc, const char *name, yaml_node_t *ex,
    const char *pfx);
static int kle_kc_exec_config(kle_kc_t *kc, yaml_node_t *cl,
    const char *pfx);
static int kle_kc_json(kle_kc_t *kc, yaml_node_t *n, int depth,
    size_t *nodes, json_object **out);
static int kle_kc_json_scalar(yaml_node_t *n, json_object **out);
static int kle_kc_find(kle_kc_t *kc, yaml_node_t *map, const char *at,
    const char *list, const char *item, const char *name, yaml_node_t **body,
    char *pfx, size_t pfxlen);
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


int
kle_kubeconfig_load(kle_creds_t *c, const char *path, const char *context,
    char *err, size_t errlen)
{
    int          rc;
    char        *text, why[256];
    size_t       len;
    const char  *op;

    memset(c, 0, sizeof(*c));

    /* read whole: the messages for a missing file or a folder are ours */
    text = kle_file_read(path, KLE_FILE_MAX, 0, &len, &op, why, sizeof(why));
    if (text == NULL) {
        return kle_errf(err, errlen, "kubeconfig \"%s\": %s", path, why);
    }

    rc = kle_kubeconfig_parse(c, text, len, path, context, err, errlen);
    kle_secret_free(text, len);

    return rc;
}


int
kle_kubeconfig_parse(kle_creds_t *c, const char *text, size_t len,
    const char *path, const char *context, char *err, size_t errlen)
{
    int               rc;
    char             *slash;
    kle_kc_t          kc;
    yaml_document_t   doc;

    memset(c, 0, sizeof(*c));
    memset(&kc, 0, sizeof(kc));
    kc.path = path;
    kc.doc = &doc;
    kc.c = c;
    kc.err = err;
    kc.errlen = errlen;

    if (len > KLE_FILE_MAX) {
        return kle_kc_error(&kc, "is larger than %d bytes", KLE_FILE_MAX);
    }

    if (kle_kc_scan(&kc, text, len) != 0 || kle_kc_parse(&kc, text, len) != 0)
    {
        return -1;
    }

    rc = kle_kc_unique_keys(&kc);

    slash = strrchr(path, '/');
    if (rc == 0 && slash != NULL) {
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


/*
 * The first document's events, before libyaml builds it: nesting and the
 * number of nodes are bounded here, so a hostile file cannot make the
 * loader allocate much (libyaml itself sets no limit).
 */

static int
kle_kc_scan(kle_kc_t *kc, const char *text, size_t len)
{
    int            rc, depth, done;
    size_t         nodes;
    yaml_event_t   ev;
    yaml_parser_t  parser;

    if (!yaml_parser_initialize(&parser)) {
        return kle_kc_error(kc, "out of memory");
    }

    yaml_parser_set_input_string(&parser, (const unsigned char *) text, len);

    rc = 0;
    depth = 0;
    nodes = 0;
    done = 0;

    while (!done) {
        if (!yaml_parser_parse(&parser, &ev)) {
            rc = kle_kc_yaml_error(kc, &parser);
            break;
        }

        switch (ev.type) {

        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT:
            if (++depth > KLE_KC_DEPTH_MAX) {
                rc = kle_kc_error(kc, "line %zu: nested deeper than %d "
                                  "levels", ev.start_mark.line + 1,
                                  KLE_KC_DEPTH_MAX);
            }
            /* fall through */

        case YAML_SCALAR_EVENT:
        case YAML_ALIAS_EVENT:
            if (rc == 0 && ++nodes > KLE_KC_NODES_MAX) {
                rc = kle_kc_error(kc, "line %zu: more than %d nodes",
                                  ev.start_mark.line + 1, KLE_KC_NODES_MAX);
            }
            break;

        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            depth--;
            break;

        case YAML_DOCUMENT_END_EVENT:
        case YAML_STREAM_END_EVENT:
            done = 1;
            break;

        default:
            break;
        }

        yaml_event_delete(&ev);

        if (rc != 0) {
            break;
        }
    }

    yaml_parser_delete(&parser);

    return rc;
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
        kle_kc_yaml_error(kc, &parser);
    }

    yaml_parser_delete(&parser);

    return ok ? 0 : -1;
}


/* The parser's error; the text near it is never shown (it may be a token). */

static int
kle_kc_yaml_error(kle_kc_t *kc, yaml_parser_t *parser)
{
    if (parser->error == YAML_MEMORY_ERROR) {
        return kle_kc_error(kc, "out of memory");
    }

    if (parser->error == YAML_READER_ERROR) {
        return kle_kc_error(kc, "byte %zu: %s", parser->problem_offset,
                            parser->problem ? parser->problem
                                            : "invalid input");
    }

    return kle_kc_error(kc, "line %zu: %s", parser->problem_mark.line + 1,
                        parser->problem ? parser->problem : "invalid YAML");
}


/*
 * Every mapping's keys are strings and unique: Go's YAML refuses a
 * duplicate key, and taking either value silently would differ from it.
 * The document's nodes are a flat array, so no walk (and no alias cycle).
 */

static int
kle_kc_unique_keys(kle_kc_t *kc)
{
    int                 rc;
    size_t              n, i, j, cap, len;
    yaml_node_t        *node, *k, **keys, **p;
    yaml_node_pair_t   *pair;

    keys = NULL;
    cap = 0;
    rc = 0;

    for (node = kc->doc->nodes.start; node < kc->doc->nodes.top; node++) {

        if (node->type != YAML_MAPPING_NODE) {
            continue;
        }

        n = node->data.mapping.pairs.top - node->data.mapping.pairs.start;
        if (n > cap) {
            p = realloc(keys, n * sizeof(yaml_node_t *));
            if (p == NULL) {
                rc = kle_kc_error(kc, "out of memory");
                break;
            }
            keys = p;
            cap = n;
        }

        i = 0;
        for (pair = node->data.mapping.pairs.start;
             pair < node->data.mapping.pairs.top;
             pair++)
        {
            k = yaml_document_get_node(kc->doc, pair->key);

            if (k == NULL || k->type != YAML_SCALAR_NODE) {
                rc = kle_kc_error(kc, "line %zu: a mapping key that is not "
                                  "a string", k ? k->start_mark.line + 1
                                                : node->start_mark.line + 1);
                goto done;
            }

            keys[i++] = k;
        }

        if (n < 2) {
            continue;
        }

        qsort(keys, n, sizeof(yaml_node_t *), kle_kc_key_cmp);

        for (i = 1; i < n; i++) {
            if (kle_kc_key_cmp(&keys[i - 1], &keys[i]) != 0) {
                continue;
            }

            k = keys[i - 1]->start_mark.index > keys[i]->start_mark.index
                ? keys[i - 1] : keys[i];

            /* the key is shown only if it is short, printable text */
            len = k->data.scalar.length;
            for (j = 0; j < len && j <= 64; j++) {
                if (k->data.scalar.value[j] < 0x20
                    || k->data.scalar.value[j] >= 0x7f
                    || k->data.scalar.value[j] == '"')
                {
                    break;
                }
            }

            if (j == len) {
                rc = kle_kc_error(kc, "line %zu: duplicate key \"%.*s\"",
                                  k->start_mark.line + 1, (int) len,
                                  (const char *) k->data.scalar.value);
            } else {
                rc = kle_kc_error(kc, "line %zu: duplicate key",
                                  k->start_mark.line + 1);
            }

            goto done;
        }
    }

done:

    free(keys);

    return rc;
}


static int
kle_kc_key_cmp(const void *a, const void *b)
{
    const yaml_node_t  *x = *(yaml_node_t * const *) a;
    const yaml_node_t  *y = *(yaml_node_t * const *) b;

    if (x->data.scalar.length != y->data.scalar.length) {
        return x->data.scalar.length < y->data.scalar.length ? -1 : 1;
    }

    return memcmp(x->data.scalar.value, y->data.scalar.value,
                  x->data.scalar.length);
}


static int
kle_kc_config(kle_kc_t *kc, const char *context)
{
    char          cpfx[64], lpfx[64], upfx[64];
    yaml_node_t  *root, *ctx, *cl, *u;
    const char   *cluster, *user, *ns, *bad;

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

    switch (kle_kc_find(kc, NULL, NULL, "contexts", "context", context, &ctx, cpfx,
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

    switch (kle_kc_find(kc, NULL, NULL, "clusters", "cluster", cluster, &cl, lpfx,
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
        switch (kle_kc_find(kc, NULL, NULL, "users", "user", user, &u, upfx,
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

    /* the CA rule was checked with the cluster: this is the https rule */
    if (kle_creds_check(kc->c, &bad) != 0) {
        return kle_kc_error(kc, "context \"%s\": user \"%s\" with cluster "
                            "\"%s\" (%s): %s", context, user, cluster,
                            kc->c->server, bad);
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

    if (kle_creds_set_server(c, server, &bad) != 0) {
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

    /* client-go refuses the pair rather than let one silently win */
    if (c->insecure && (c->ca_data != NULL || c->ca_file != NULL)) {
        return kle_kc_error(kc, "cluster \"%s\": certificate-authority%s "
                            "together with insecure-skip-tls-verify is not "
                            "allowed", name, c->ca_data ? "-data" : "");
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

    return kle_kc_exec_config(kc, cl, pfx);
}


/*
 * The cluster's extension "client.authentication.k8s.io/exec", kept as JSON:
 * client-go hands it to an exec plugin as spec.cluster.config.  Other
 * extensions are not read, as client-go ignores them.
 */

#define KLE_KC_EXEC_EXTENSION  "client.authentication.k8s.io/exec"

static int
kle_kc_exec_config(kle_kc_t *kc, yaml_node_t *cl, const char *pfx)
{
    char          epfx[320];
    size_t        nodes;
    json_object  *o;
    yaml_node_t  *ext;

    switch (kle_kc_find(kc, cl, pfx, "extensions", "extension",
                        KLE_KC_EXEC_EXTENSION, &ext, epfx, sizeof(epfx)))
    {
    case -1:
        return -1;
    case 0:
        return 0;
    }

    if (ext == NULL) {
        return 0;
    }

    nodes = 0;
    if (kle_kc_json(kc, ext, 0, &nodes, &o) != 0) {
        return kle_kc_error(kc, "%s: nested deeper than %d levels or more "
                            "than %d nodes (through aliases), or out of "
                            "memory", epfx, KLE_KC_DEPTH_MAX,
                            KLE_KC_NODES_MAX);
    }

    kc->c->exec_config = strdup(json_object_to_json_string_ext(o,
                                    JSON_C_TO_STRING_PLAIN
                                    | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);

    if (kc->c->exec_config == NULL) {
        return kle_kc_error(kc, "out of memory");
    }

    return 0;
}


/*
 * A node as JSON, as client-go reads YAML (through JSON): mappings become
 * objects, lists arrays, plain scalars null, booleans or numbers when they
 * read as such, every other scalar a string.  *out NULL is JSON's null.
 * Aliases are followed, so the walk is bounded again: the scan bounded the
 * text, not its expansion.  0, or -1 past a bound or out of memory.
 */

static int
kle_kc_json(kle_kc_t *kc, yaml_node_t *n, int depth, size_t *nodes,
    json_object **out)
{
    json_object       *o, *v;
    yaml_node_t       *k;
    yaml_node_pair_t  *pair;
    yaml_node_item_t  *it;

    *out = NULL;

    if (n == NULL || depth > KLE_KC_DEPTH_MAX || ++*nodes > KLE_KC_NODES_MAX)
    {
        return -1;
    }

    switch (n->type) {

    case YAML_MAPPING_NODE:
        o = json_object_new_object();
        if (o == NULL) {
            return -1;
        }

        for (pair = n->data.mapping.pairs.start;
             pair < n->data.mapping.pairs.top;
             pair++)
        {
            k = yaml_document_get_node(kc->doc, pair->key);

            /* a key is written as its text, as Go's YAML does */
            if (k == NULL || k->type != YAML_SCALAR_NODE
                || kle_kc_json(kc, yaml_document_get_node(kc->doc,
                                                          pair->value),
                               depth + 1, nodes, &v) != 0)
            {
                json_object_put(o);
                return -1;
            }

            json_object_object_add(o, (const char *) k->data.scalar.value, v);
        }

        *out = o;
        return 0;

    case YAML_SEQUENCE_NODE:
        o = json_object_new_array();
        if (o == NULL) {
            return -1;
        }

        for (it = n->data.sequence.items.start;
             it < n->data.sequence.items.top;
             it++)
        {
            if (kle_kc_json(kc, yaml_document_get_node(kc->doc, *it),
                            depth + 1, nodes, &v) != 0)
            {
                json_object_put(o);
                return -1;
            }

            json_object_array_add(o, v);
        }

        *out = o;
        return 0;

    case YAML_SCALAR_NODE:
        return kle_kc_json_scalar(n, out);

    default:
        return -1;
    }
}


/* YAML 1.1's plain null, booleans and numbers, as Go's YAML resolves them */

static int
kle_kc_json_scalar(yaml_node_t *n, json_object **out)
{
    char          *end;
    double         d;
    size_t         i;
    long long      ll;
    const char    *s;

    static const char  *nulls[] = { "", "~", "null", "Null", "NULL" };
    static const char  *yes[] = { "y", "Y", "yes", "Yes", "YES", "true",
                                  "True", "TRUE", "on", "On", "ON" };
    static const char  *no[] = { "n", "N", "no", "No", "NO", "false",
                                 "False", "FALSE", "off", "Off", "OFF" };

    s = (const char *) n->data.scalar.value;
    *out = NULL;

    if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE
        || strlen(s) != n->data.scalar.length)
    {
        goto string;
    }

    for (i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++) {
        if (strcmp(s, nulls[i]) == 0) {
            return 0;
        }
    }

    for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcmp(s, yes[i]) == 0 || strcmp(s, no[i]) == 0) {
            *out = json_object_new_boolean(strcmp(s, yes[i]) == 0);
            return *out ? 0 : -1;
        }
    }

    /* decimal numbers only: no hex, octal, infinity or NaN in JSON */
    if (strspn(s, "+-0123456789.eE") == n->data.scalar.length) {
        errno = 0;
        ll = strtoll(s, &end, 10);
        if (*end == '\0' && errno == 0) {
            *out = json_object_new_int64(ll);
            return *out ? 0 : -1;
        }

        errno = 0;
        d = strtod(s, &end);
        if (*end == '\0' && errno == 0 && end != s) {
            *out = json_object_new_double(d);
            return *out ? 0 : -1;
        }
    }

string:

    *out = json_object_new_string_len(s, (int) n->data.scalar.length);
    return *out ? 0 : -1;
}


static int
kle_kc_user(kle_kc_t *kc, const char *name, yaml_node_t *u,
    const char *pfx)
{
    char          why[256], epfx[80];
    kle_creds_t  *c = kc->c;
    const char   *token, *bad;
    yaml_node_t  *ex;

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
        if (kle_token_check(token, strlen(token), &bad) != 0) {
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

        if (kle_creds_load_token(c, c->token_file, why, sizeof(why)) != 0) {
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

    ex = kle_kc_get(kc, u, "exec");
    if (ex == NULL) {
        return 0;
    }

    /* client-go would use these and never run the plugin: say so */
    if (c->token || c->token_file || c->cert_data || c->cert_file) {
        return kle_kc_error(kc, "user \"%s\": exec together with %s: "
                            "client-go uses the %s and never runs the "
                            "plugin; keep one of them", name,
                            c->token_file ? "tokenFile"
                            : c->token ? "token" : "client-certificate",
                            c->token || c->token_file ? "token"
                                                      : "certificate");
    }

    snprintf(epfx, sizeof(epfx), "%s.exec", pfx);

    return kle_kc_exec(kc, name, ex, epfx);
}


/*
 * users[].user.exec, validated as client-go's clientcmd validates it; the
 * command is looked up now, so that "nginx -t" reports a missing plugin
 * (it never runs it).
 */

static int
kle_kc_exec(kle_kc_t *kc, const char *name, yaml_node_t *ex, const char *pfx)
{
    int                 i, n;
    char                why[512], ipfx[112];
    const char         *command, *av, *hint, *mode, *en, *ev;
    yaml_node_t        *args, *env, *item;
    kle_exec_conf_t    *x;
    yaml_node_item_t   *it;

    if (ex->type != YAML_MAPPING_NODE) {
        return kle_kc_error(kc, "%s: expected a mapping", pfx);
    }

    if (kle_kc_str(kc, ex, "command", pfx, &command) != 0
        || kle_kc_str(kc, ex, "apiVersion", pfx, &av) != 0
        || kle_kc_str(kc, ex, "installHint", pfx, &hint) != 0
        || kle_kc_str(kc, ex, "interactiveMode", pfx, &mode) != 0)
    {
        return -1;
    }

    if (command == NULL || command[0] == '\0') {
        return kle_kc_error(kc, "user \"%s\": %s.command must be given to "
                            "use an exec credential plugin", name, pfx);
    }

    if (av == NULL || av[0] == '\0') {
        return kle_kc_error(kc, "user \"%s\": %s.apiVersion must be given "
                            "(\"" KLE_EXEC_V1 "\" or \"" KLE_EXEC_V1BETA1
                            "\")", name, pfx);
    }

    if (strcmp(av, KLE_EXEC_V1) != 0 && strcmp(av, KLE_EXEC_V1BETA1) != 0) {
        return kle_kc_error(kc, "%s.apiVersion \"%s\" is not supported: use "
                            "\"" KLE_EXEC_V1 "\" or \"" KLE_EXEC_V1BETA1
                            "\"", pfx, av);
    }

    /* v1 asks for it; v1beta1 takes IfAvailable, as client-go defaults */
    if (mode == NULL || mode[0] == '\0') {
        if (strcmp(av, KLE_EXEC_V1) == 0) {
            return kle_kc_error(kc, "user \"%s\": %s.interactiveMode must be "
                                "given with " KLE_EXEC_V1 " (Never or "
                                "IfAvailable)", name, pfx);
        }
        mode = "IfAvailable";
    }

    if (strcmp(mode, "Always") == 0) {
        return kle_kc_error(kc, "user \"%s\": %s.interactiveMode \"Always\" "
                            "needs a terminal, and the plugin runs without "
                            "one here (stdin is /dev/null): use a plugin "
                            "that works with \"Never\" or \"IfAvailable\"",
                            name, pfx);
    }

    if (strcmp(mode, "Never") != 0 && strcmp(mode, "IfAvailable") != 0) {
        return kle_kc_error(kc, "%s.interactiveMode \"%s\" is invalid: "
                            "Never, IfAvailable or Always", pfx, mode);
    }

    x = calloc(1, sizeof(kle_exec_conf_t));
    if (x == NULL) {
        return kle_kc_error(kc, "out of memory");
    }

    kc->c->exec = x;

    if (kle_kc_bool(kc, ex, "provideClusterInfo", pfx,
                    &x->provide_cluster_info) != 0)
    {
        return -1;
    }

    args = kle_kc_get(kc, ex, "args");
    env = kle_kc_get(kc, ex, "env");

    if ((args && args->type != YAML_SEQUENCE_NODE)
        || (env && env->type != YAML_SEQUENCE_NODE))
    {
        return kle_kc_error(kc, "%s.%s: expected a list", pfx,
                            args && args->type != YAML_SEQUENCE_NODE
                            ? "args" : "env");
    }

    n = args ? (int) (args->data.sequence.items.top
                      - args->data.sequence.items.start) : 0;

    x->argv = calloc(n + 2, sizeof(char *));
    if (x->argv == NULL || (x->argv[0] = strdup(command)) == NULL) {
        return kle_kc_error(kc, "out of memory");
    }

    for (i = 0; i < n; i++) {
        item = yaml_document_get_node(kc->doc,
                                      args->data.sequence.items.start[i]);

        if (item == NULL || item->type != YAML_SCALAR_NODE
            || strlen((char *) item->data.scalar.value)
               != item->data.scalar.length)
        {
            return kle_kc_error(kc, "%s.args[%d]: expected a string", pfx, i);
        }

        x->argv[i + 1] = strdup((char *) item->data.scalar.value);
        if (x->argv[i + 1] == NULL) {
            return kle_kc_error(kc, "out of memory");
        }
    }

    if (env != NULL) {
        n = (int) (env->data.sequence.items.top
                   - env->data.sequence.items.start);

        x->env = calloc(n + 1, sizeof(char *));
        if (x->env == NULL) {
            return kle_kc_error(kc, "out of memory");
        }

        for (it = env->data.sequence.items.start, i = 0;
             it < env->data.sequence.items.top;
             it++, i++)
        {
            item = yaml_document_get_node(kc->doc, *it);
            snprintf(ipfx, sizeof(ipfx), "%s.env[%d]", pfx, i);

            if (item == NULL || item->type != YAML_MAPPING_NODE) {
                return kle_kc_error(kc, "%s: expected a mapping", ipfx);
            }

            if (kle_kc_str(kc, item, "name", ipfx, &en) != 0
                || kle_kc_str(kc, item, "value", ipfx, &ev) != 0)
            {
                return -1;
            }

            if (en == NULL || en[0] == '\0' || strchr(en, '=') != NULL) {
                return kle_kc_error(kc, "%s.name: an environment variable "
                                    "name must be given (without \"=\")",
                                    ipfx);
            }

            x->env[i] = kle_aprintf("%s=%s", en, ev ? ev : "");
            if (x->env[i] == NULL) {
                return kle_kc_error(kc, "out of memory");
            }
        }
    }

    if ((x->command = strdup(command)) == NULL
        || (x->api_version = strdup(av)) == NULL
        || (hint && hint[0] && (x->install_hint = strdup(hint)) == NULL))
    {
        return kle_kc_error(kc, "out of memory");
    }

    x->path = kle_exec_lookup(command, kc->dir, why, sizeof(why));
    if (x->path == NULL) {
        return kle_kc_error(kc, "user \"%s\": %s.command: %s%s%s", name, pfx,
                            why, x->install_hint ? "; " : "",
                            x->install_hint ? x->install_hint : "");
    }

    return 0;
}


/*
 * Finds the entry of a named list called name: a top-level one (contexts,
 * clusters, users) when map is NULL, else map's (a cluster's extensions,
 * at the path "at").  1 with *body its item mapping (NULL if absent) and
 * pfx the path of that mapping for messages, 0 if there is none, -1 on a
 * malformed list.
 */

static int
kle_kc_find(kle_kc_t *kc, yaml_node_t *map, const char *at,
    const char *list, const char *item, const char *name, yaml_node_t **body,
    char *pfx, size_t pfxlen)
{
    int                found, i;
    char               ipfx[300];
    const char        *n;
    yaml_node_t       *seq, *entry, *b;
    yaml_node_item_t  *it;

    found = 0;
    *body = NULL;

    seq = kle_kc_get(kc, map ? map : yaml_document_get_root_node(kc->doc),
                     list);
    if (seq == NULL) {
        return 0;
    }

    if (seq->type != YAML_SEQUENCE_NODE) {
        return kle_kc_error(kc, "%s%s%s: expected a list", at ? at : "",
                            at ? "." : "", list);
    }

    for (it = seq->data.sequence.items.start, i = 0;
         it < seq->data.sequence.items.top;
         it++, i++)
    {
        entry = yaml_document_get_node(kc->doc, *it);
        snprintf(ipfx, sizeof(ipfx), "%s%s%s[%d]", at ? at : "",
                 at ? "." : "", list, i);

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

    *data = kle_base64_decode(s, strlen(s), len);

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
    char     msg[1024], *p;
    va_list  ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    /* names come from the file: one line, whatever they hold */
    for (p = msg; *p; p++) {
        if ((unsigned char) *p < 0x20 || *p == 0x7f) {
            *p = '?';
        }
    }

    return kle_errf(kc->err, kc->errlen, "kubeconfig \"%s\": %s", kc->path,
                    msg);
}
