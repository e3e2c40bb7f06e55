/*
 * The credentials object: given directly, checked, copied, freed; and the
 * bearer token re-read as client-go re-reads a projected token.  Token
 * contents never appear in an error message.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kle_creds.h"
#include "kle_exec.h"
#include "kle_file.h"
#include "kle_token.h"

/* client-go re-reads a (projected, rotated) token file every minute */
#define KLE_TOKEN_REFRESH_MS  60000


static int kle_dup(char **dst, const char *src);
static int kle_dupmem(unsigned char **dst, const unsigned char *src,
    size_t len);


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
        return kle_errf(err, errlen, "no API server URL given");
    }

    if (kle_creds_set_server(c, server, &bad) != 0) {
        kle_errf(err, errlen, "server \"%s\": %s", server, bad);
        goto failed;
    }

    if ((cert_file == NULL) != (key_file == NULL)) {
        kle_errf(err, errlen, "%s \"%s\" needs a %s",
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
            kle_errf(err, errlen, "%s \"%s\": %s", files[i].name,
                     files[i].path, why);
            goto failed;
        }

        *files[i].dst = strdup(files[i].path);
        if (*files[i].dst == NULL) {
            goto nomem;
        }
    }

    if (token_file != NULL
        && kle_creds_load_token(c, token_file, why, sizeof(why)) != 0)
    {
        kle_errf(err, errlen, "token_file \"%s\": %s", token_file, why);
        goto failed;
    }

    if (kle_creds_check(c, &bad) != 0) {
        kle_errf(err, errlen, "server \"%s\": %s", server, bad);
        goto failed;
    }

    snprintf(c->source, sizeof(c->source), "%s", c->server);
    return 0;

nomem:
    kle_errf(err, errlen, "out of memory");
failed:
    kle_creds_free(c);
    return -1;
}


int
kle_creds_secret(const kle_creds_t *c)
{
    return c->token != NULL || c->token_file != NULL || c->exec != NULL
           || c->cert_file != NULL || c->cert_data != NULL
           || c->key_file != NULL || c->key_data != NULL;
}


int
kle_creds_check(const kle_creds_t *c, const char **why)
{
    int  has_ca;

    has_ca = c->ca_file != NULL || c->ca_data != NULL;

    /* in clear, anyone on the path could replay them */
    if (kle_creds_secret(c) && c->server != NULL
        && strncmp(c->server, "https://", 8) != 0)
    {
        *why = "credentials (a bearer token or a client certificate) are "
               "only sent over https://";
        return -1;
    }

    /* client-go: "specifying a root certificates file with the insecure
       flag is not allowed" */
    if (has_ca && c->insecure) {
        *why = "a certificate authority together with "
               "insecure-skip-tls-verify is not allowed";
        return -1;
    }

    return 0;
}


const char *
kle_creds_token(kle_creds_t *c, int64_t now_ms, int force)
{
    char  *token, why[256], oserr[sizeof(c->token_error)];

    if (c->token_file == NULL) {
        return c->token;
    }

    if (force || c->token == NULL
        || now_ms - c->token_read >= KLE_TOKEN_REFRESH_MS)
    {
        c->token_read = now_ms;

        /* a file caught mid-rotation must not drop a working token */
        token = kle_token_read(c->token_file, why, sizeof(why), oserr,
                               sizeof(oserr));
        if (token != NULL) {
            kle_secret_free(c->token, c->token ? strlen(c->token) : 0);
            c->token = token;
            c->token_error[0] = '\0';

        } else {
            memcpy(c->token_error, oserr, sizeof(c->token_error));
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
    }             files[] = {
        { c->ca_file, &c->ca_data, &c->ca_len },
        { c->cert_file, &c->cert_data, &c->cert_len },
        { c->key_file, &c->key_data, &c->key_len },
    };
    char          why[256];
    size_t        i;
    const char   *op;

    for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        if (files[i].path == NULL || *files[i].data != NULL) {
            continue;
        }

        *files[i].data = (unsigned char *) kle_file_read(files[i].path,
                                                         KLE_FILE_MAX, 0,
                                                         files[i].len, &op,
                                                         why, sizeof(why));
        if (*files[i].data == NULL) {
            return kle_errf(err, errlen, "\"%s\": %s", files[i].path, why);
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
        || kle_dup(&dst->exec_config, src->exec_config) != 0
        || kle_dup(&dst->namespace, src->namespace) != 0
        || kle_dup(&dst->token, src->token) != 0
        || kle_dup(&dst->token_file, src->token_file) != 0
        || kle_exec_conf_copy(&dst->exec, src->exec) != 0)
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
    free(c->exec_config);
    free(c->namespace);
    kle_secret_free(c->token, c->token ? strlen(c->token) : 0);
    free(c->token_file);
    kle_exec_conf_free(c->exec);

    memset(c, 0, sizeof(*c));
}


int
kle_creds_set_server(kle_creds_t *c, const char *url, const char **why)
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


int
kle_creds_load_token(kle_creds_t *c, const char *path, char *why,
    size_t whylen)
{
    char  oserr[sizeof(c->token_error)];

    if (c->token_file != path) {
        free(c->token_file);
        c->token_file = strdup(path);
        if (c->token_file == NULL) {
            snprintf(why, whylen, "out of memory");
            return -1;
        }
    }

    c->token = kle_token_read(path, why, whylen, oserr, sizeof(oserr));

    /* read at load; the host's clock is not known yet, so 0 = long ago */
    c->token_read = 0;

    return c->token ? 0 : -1;
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
