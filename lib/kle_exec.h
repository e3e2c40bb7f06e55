/*
 * Exec credential plugins (a kubeconfig user's "exec"), as client-go runs
 * them: the configuration read from the kubeconfig, the ExecCredential the
 * plugin prints, and the runner that starts the plugin as a child process
 * whose output is read from the host's event loop (kle_http_fd_watch), so
 * that no host ever blocks on it.
 */

#ifndef KLE_EXEC_H
#define KLE_EXEC_H

#include <stddef.h>
#include <stdint.h>

#include "kle_creds.h"
#include "kle_http.h"

#define KLE_EXEC_V1        "client.authentication.k8s.io/v1"
#define KLE_EXEC_V1BETA1   "client.authentication.k8s.io/v1beta1"

#define KLE_EXEC_TIMEOUT_MS  10000          /* a run is killed after it */
#define KLE_EXEC_OUT_MAX     (256 * 1024)   /* more stdout fails the run */
#define KLE_EXEC_ERR_MAX     2048           /* stderr logged, the rest cut */
#define KLE_EXEC_EARLY_MS    30000          /* renew this long before expiry */
#define KLE_EXEC_BACKOFF_MAX 60000          /* between failed runs, at most */

struct kle_exec_conf_s {
    char   *command;       /* as the kubeconfig writes it, for messages */
    char   *path;          /* resolved at load: PATH, or the kubeconfig's
                              folder for a relative path with a '/' */
    char  **argv;          /* argv[0] is command; NULL-terminated */
    char  **env;           /* "NAME=VALUE" added to the environment */
    char   *api_version;   /* KLE_EXEC_V1 or KLE_EXEC_V1BETA1 */
    char   *install_hint;  /* NULL if none */
    int     provide_cluster_info;
};

/* What a plugin printed, checked. */
typedef struct {
    char           *token;       /* NULL if none */
    unsigned char  *cert;        /* PEM, NUL-terminated; NULL if none */
    size_t          cert_len;
    unsigned char  *key;
    size_t          key_len;
    int64_t         expires_us;  /* wall clock; 0: does not expire */
} kle_exec_cred_t;

/*
 * Parses a plugin's stdout as client-go does: an ExecCredential of the
 * configured apiVersion with a status holding a token or a certificate and
 * key pair (or both), and an expirationTimestamp that must not have passed
 * at now_us.  On error -1 and one line in err that never holds a secret.
 */
int kle_exec_cred_parse(const char *text, size_t len, const char *api_version,
    int64_t now_us, kle_exec_cred_t *cred, char *err, size_t errlen);
void kle_exec_cred_free(kle_exec_cred_t *cred);

/*
 * The KUBERNETES_EXEC_INFO value: an ExecCredential whose spec carries
 * interactive false and, with provideClusterInfo, the cluster (server,
 * tls-server-name, insecure-skip-tls-verify, certificate-authority-data,
 * proxy-url).  malloc()ed; NULL with err on failure.
 */
char *kle_exec_info(const kle_creds_t *c, char *err, size_t errlen);

/*
 * Where command runs from, as client-go finds it: a command with a '/' is
 * a path, relative ones against dir (the kubeconfig's folder, may be NULL);
 * any other is looked up in PATH.  The file must be executable.  Returns a
 * malloc()ed path, or NULL with why.
 */
char *kle_exec_lookup(const char *command, const char *dir, char *why,
    size_t whylen);

int kle_exec_conf_copy(kle_exec_conf_t **dst, const kle_exec_conf_t *src);
void kle_exec_conf_free(kle_exec_conf_t *conf);


/*
 * The runner: keeps the credential of c fresh by running its plugin.  The
 * credential goes into c (token, cert_data, key_data) for the transport.
 */
typedef struct kle_exec_s  kle_exec_t;

typedef struct {
    kle_creds_t  *creds;           /* with creds->exec set; borrowed */
    kle_http_t   *http;            /* whose loop watches the pipes */
    long          backoff_ms;      /* first wait after a failed run */
    long          timeout_ms;      /* 0: KLE_EXEC_TIMEOUT_MS */
    /* a run ended (well or not): the host may send again */
    void        (*done)(void *data);
    void        (*log)(void *data, int level, const char *msg);
    void         *data;
} kle_exec_config_t;

kle_exec_t *kle_exec_create(const kle_exec_config_t *cfg);
/* Kills a run in flight; the credential stays in creds. */
void kle_exec_destroy(kle_exec_t *x);

/*
 * Does what is due at now (monotonic ms): starts a run when the credential
 * is missing, near its expiry or refused, and the backoff allows; kills a
 * run past its timeout; collects an ended one.  Returns 1 if the credential
 * in creds may be used now, 0 if not; *wake: ms until it wants to be asked
 * again, -1 for no wish.
 */
int kle_exec_check(kle_exec_t *x, int64_t now, long *wake);
/*
 * A 401 for a request sent at sent (monotonic ms): if it went out with the
 * current credential, that is dropped and the plugin runs again; one sent
 * before the credential changed is ignored, as client-go does.
 */
void kle_exec_refused(kle_exec_t *x, int64_t sent);
/* Why the last run failed, "" if it succeeded or none ended yet. */
const char *kle_exec_error(const kle_exec_t *x);
/* Runs started (tests, status). */
unsigned kle_exec_runs(const kle_exec_t *x);

#endif /* KLE_EXEC_H */
