/*
 * How to reach and authenticate to the API server: the credentials object
 * that kle_kubeconfig_load(), kle_incluster_load() and kle_creds_direct()
 * fill, and the bearer token refresh.
 */

#ifndef KLE_CREDS_H
#define KLE_CREDS_H

#include <stddef.h>
#include <stdint.h>

typedef struct kle_exec_conf_s  kle_exec_conf_t;   /* kle_exec.h */

typedef struct {
    char           *server;       /* "https://host:port", no trailing '/' */
    char           *ca_file;
    unsigned char  *ca_data;      /* PEM, from certificate-authority-data */
    size_t          ca_len;
    char           *cert_file;
    unsigned char  *cert_data;
    size_t          cert_len;
    char           *key_file;
    unsigned char  *key_data;
    size_t          key_len;
    char           *tls_server_name;
    char           *proxy_url;
    char           *exec_config;  /* JSON: the cluster's extension
                                     "client.authentication.k8s.io/exec",
                                     an exec plugin's spec.cluster.config */
    int             insecure;     /* insecure-skip-tls-verify */
    char           *namespace;    /* context's or the in-cluster one; NULL */

    char           *token;        /* current bearer token, NULL if none */
    char           *token_file;   /* re-read every 60 s and after a 401 */
    int64_t         token_read;   /* mono ms of the last read */
    char            token_error[256];  /* why the last re-read failed
                                          ("open /path: Permission denied"),
                                          "" after a successful read */

    kle_exec_conf_t *exec;        /* an exec credential plugin, or NULL;
                                     its credential goes into token,
                                     cert_data and key_data */

    char            source[512];  /* "in-cluster" or the kubeconfig path */
} kle_creds_t;

/*
 * Explicit: server URL with optional files (NULL to omit).  The token file
 * is read now, so a missing one is a configuration error.
 */
int kle_creds_direct(kle_creds_t *c, const char *server,
    const char *token_file, const char *ca_file, const char *cert_file,
    const char *key_file, char *err, size_t errlen);

/*
 * The rules every source obeys, as client-go's: credentials (a token or a
 * client certificate) only over https://, and a CA not together with
 * insecure-skip-tls-verify.  0, or -1 with *why naming the rule.
 */
int kle_creds_check(const kle_creds_t *c, const char **why);
/* 1 if c holds a secret (a token or client certificate material) */
int kle_creds_secret(const kle_creds_t *c);

/*
 * The bearer token to send, re-reading token_file when 60 s have passed
 * since the last read or when force is set (after a 401).  A failed re-read
 * keeps the old token and says why in token_error.  NULL if there is none.
 */
const char *kle_creds_token(kle_creds_t *c, int64_t now_ms, int force);

/*
 * Reads ca_file, cert_file and key_file into the matching *_data fields
 * (files stay named for messages).  For hosts whose requests run in a
 * less privileged process than the one that loaded the configuration, as
 * nginx's workers do.  -1 with a reason naming the file.
 */
int kle_creds_inline(kle_creds_t *c, char *err, size_t errlen);

/* Deep copy (hosts that fork keep the parent's copy intact); -1 on ENOMEM. */
int kle_creds_copy(kle_creds_t *dst, const kle_creds_t *src);
void kle_creds_free(kle_creds_t *c);

/* For the sources.  Validates url and sets c->server without trailing '/'. */
int kle_creds_set_server(kle_creds_t *c, const char *url, const char **why);
/* Sets token_file to path and reads it; -1 with why (no token in it). */
int kle_creds_load_token(kle_creds_t *c, const char *path, char *why,
    size_t whylen);

#endif /* KLE_CREDS_H */
