/*
 * In-cluster discovery: the service's environment variables and the
 * service account's files, as client-go's rest.InClusterConfig reads them.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kle_file.h"
#include "kle_kubeconfig.h"

#define KLE_INCLUSTER  "in-cluster configuration: "
#define KLE_NS_MAX     4096     /* a namespace is a DNS label */


int
kle_incluster_load(kle_creds_t *c, const char *dir, char *err,
    size_t errlen)
{
    char        *p, *ns, why[256];
    size_t       len;
    const char  *host, *port, *op;

    memset(c, 0, sizeof(*c));

    if (dir == NULL) {
        dir = KLE_SA_DIR;
    }

    host = getenv("KUBERNETES_SERVICE_HOST");
    port = getenv("KUBERNETES_SERVICE_PORT");

    if (host == NULL || host[0] == '\0' || port == NULL || port[0] == '\0') {
        return kle_errf(err, errlen, KLE_INCLUSTER "%s is not set "
            "(not running in a pod? use \"api_server kubeconfig PATH\")",
            (host == NULL || host[0] == '\0') ? "KUBERNETES_SERVICE_HOST"
                                              : "KUBERNETES_SERVICE_PORT");
    }

    if (strspn(port, "0123456789") != strlen(port) || strlen(port) > 5
        || atoi(port) < 1 || atoi(port) > 65535)
    {
        return kle_errf(err, errlen, KLE_INCLUSTER "KUBERNETES_SERVICE_PORT "
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

    if (kle_creds_load_token(c, p, why, sizeof(why)) != 0) {
        kle_errf(err, errlen, KLE_INCLUSTER "\"%s\": %s", p, why);
        free(p);
        goto failed;
    }

    free(p);

    c->ca_file = kle_aprintf("%.*s/ca.crt", (int) len, dir);
    if (c->ca_file == NULL) {
        goto nomem;
    }

    if (kle_file_check(c->ca_file, why, sizeof(why)) != 0) {
        kle_errf(err, errlen, KLE_INCLUSTER "\"%s\": %s", c->ca_file, why);
        goto failed;
    }

    p = kle_aprintf("%.*s/namespace", (int) len, dir);
    if (p == NULL) {
        goto nomem;
    }

    ns = kle_file_read(p, KLE_NS_MAX, KLE_FILE_REGULAR, &len, &op, why,
                       sizeof(why));

    if (ns == NULL && errno != ENOENT) {
        kle_errf(err, errlen, KLE_INCLUSTER "\"%s\": %s", p, why);
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
    kle_errf(err, errlen, KLE_INCLUSTER "out of memory");
failed:
    kle_creds_free(c);
    return -1;
}
