/*
 * Where the API server is and how to authenticate: in-cluster service
 * account, a kubeconfig file (libyaml), or given directly.
 */

#ifndef KLE_KUBECONFIG_H
#define KLE_KUBECONFIG_H

#include <stddef.h>
#include <stdint.h>

#define KLE_SA_DIR  "/var/run/secrets/kubernetes.io/serviceaccount"

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
    int             insecure;     /* insecure-skip-tls-verify */
    char           *namespace;    /* context's or the in-cluster one; NULL */

    char           *token;        /* current bearer token, NULL if none */
    char           *token_file;   /* re-read every 60 s and after a 401 */
    int64_t         token_read;   /* mono ms of the last read */
    char            token_error[256];  /* why the last re-read failed
                                          ("" if it did not) */

    char            source[512];  /* "in-cluster" or the kubeconfig path */
} kle_creds_t;

/*
 * kubeconfig: context NULL means current-context.  Relative paths resolve
 * against the file's folder; *-data is kept in memory.  On error -1 and one
 * line in err naming the file, the key and the problem.
 */
int kle_kubeconfig_load(kle_creds_t *c, const char *path, const char *context,
    char *err, size_t errlen);

/*
 * In-cluster: KUBERNETES_SERVICE_HOST/PORT (an IPv6 host is bracketed) and
 * dir/{token,ca.crt,namespace}; dir NULL means KLE_SA_DIR.
 */
int kle_incluster_load(kle_creds_t *c, const char *dir, char *err,
    size_t errlen);

/*
 * Explicit: server URL with optional files (NULL to omit).  The token file
 * is read now, so a missing one is a configuration error.
 */
int kle_creds_direct(kle_creds_t *c, const char *server,
    const char *token_file, const char *ca_file, const char *cert_file,
    const char *key_file, char *err, size_t errlen);

/*
 * The bearer token to send, re-reading token_file when 60 s have passed
 * since the last read or when force is set (after a 401).  A failed re-read
 * keeps the old token.  NULL if there is none.
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

#endif /* KLE_KUBECONFIG_H */
