/*
 * Where the API server is and how to authenticate: a kubeconfig file
 * (libyaml, so YAML or JSON) or the in-cluster service account.  Both fill
 * a kle_creds_t (kle_creds.h).
 */

#ifndef KLE_KUBECONFIG_H
#define KLE_KUBECONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "kle_creds.h"

#define KLE_SA_DIR  "/var/run/secrets/kubernetes.io/serviceaccount"

/* bounds on a kubeconfig: amplification stays small */
#define KLE_KC_DEPTH_MAX  64        /* nested mappings and lists */
#define KLE_KC_NODES_MAX  100000    /* scalars, mappings, lists, aliases */

/*
 * kubeconfig: context NULL means current-context.  Relative paths resolve
 * against the file's folder; *-data is kept in memory.  A user's exec
 * plugin is checked and its command looked up (c->exec), never run: the
 * elector runs it (kle_exec.h).  On error -1 and one line in err naming
 * the file, the key and the problem.
 */
int kle_kubeconfig_load(kle_creds_t *c, const char *path, const char *context,
    char *err, size_t errlen);

/*
 * The same from text already in memory; path names it in messages and
 * gives the folder relative paths resolve against.
 */
int kle_kubeconfig_parse(kle_creds_t *c, const char *text, size_t len,
    const char *path, const char *context, char *err, size_t errlen);

/*
 * In-cluster: KUBERNETES_SERVICE_HOST/PORT (an IPv6 host is bracketed) and
 * dir/{token,ca.crt,namespace}; dir NULL means KLE_SA_DIR.
 */
int kle_incluster_load(kle_creds_t *c, const char *dir, char *err,
    size_t errlen);

#endif /* KLE_KUBECONFIG_H */
