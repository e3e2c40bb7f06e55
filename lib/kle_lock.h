/*
 * Resource locks: a coordination.k8s.io/v1 Lease or a ConfigMap carrying
 * the control-plane.alpha.kubernetes.io/leader annotation.  This file knows
 * request paths, request bodies and how to read responses; it sends nothing.
 */

#ifndef KLE_LOCK_H
#define KLE_LOCK_H

#include "kle_record.h"

#define KLE_ANNOTATION_LEADER   "control-plane.alpha.kubernetes.io/leader"
#define KLE_ANNOTATION_ADDRESS  "leader-election.nginx.org/address"

typedef enum {
    KLE_LOCK_LEASES = 0,
    KLE_LOCK_CONFIGMAPS
} kle_lock_kind_t;

typedef struct {
    kle_lock_kind_t  kind;
    char             ns[64];          /* DNS label, <= 63 */
    char             name[254];       /* DNS subdomain, <= 253 */
    char             resource_version[64];  /* of the last object read */
    void            *object;          /* json_object *: last object read */
} kle_lock_t;

/*
 * kind is "leases" or "configmaps", where is "NAMESPACE/NAME".  Both parts
 * are checked as Kubernetes names.  -1 with a reason in err.
 */
int kle_lock_init(kle_lock_t *lock, const char *kind, const char *where,
    char *err, size_t errlen);
void kle_lock_free(kle_lock_t *lock);
const char *kle_lock_kind_name(kle_lock_kind_t kind);  /* "leases", ... */

/* API paths, written into buf; -1 if it does not fit. */
int kle_lock_object_path(const kle_lock_t *lock, char *buf, size_t size);
int kle_lock_collection_path(const kle_lock_t *lock, char *buf, size_t size);
int kle_lock_watch_path(const kle_lock_t *lock, const char *rv, char *buf,
    size_t size);

/*
 * Reads a Lease or ConfigMap object (a 200/201 body): fills rec (all zero
 * for an object with no record: a Lease with an empty spec, a ConfigMap
 * without the annotation), remembers the object and its resourceVersion
 * for the next update.  -1 with a reason in err on a malformed body;
 * the remembered object is then unchanged.
 */
int kle_lock_read(kle_lock_t *lock, const char *body, size_t len,
    kle_record_t *rec, char *err, size_t errlen);

/*
 * Request bodies, malloc()ed.  create: a new object with rec.  update: the
 * remembered object (so labels and other annotations survive) with rec
 * written into it, conditioned on rv (the version the decision was judged
 * on); NULL if no object was read yet or rv is empty.
 */
char *kle_lock_create_body(const kle_lock_t *lock, const kle_record_t *rec);
char *kle_lock_update_body(const kle_lock_t *lock, const kle_record_t *rec,
    const char *rv);

/* Classification of an API answer. */
typedef enum {
    KLE_API_OK = 0,
    KLE_API_NOT_FOUND,
    KLE_API_CONFLICT,           /* stale resourceVersion: a lost race */
    KLE_API_ALREADY_EXISTS,     /* create lost a race */
    KLE_API_UNAUTHORIZED,       /* reload credentials */
    KLE_API_FORBIDDEN,          /* RBAC */
    KLE_API_TOO_MANY_REQUESTS,  /* honour retry_after */
    KLE_API_SERVER_ERROR,       /* 5xx */
    KLE_API_BAD_RESPONSE,       /* non-JSON, truncated, wrong shape */
    KLE_API_TRANSPORT,          /* no answer: connect, TLS, timeout */
    KLE_API_REJECTED            /* any other 4xx */
} kle_api_status_t;

typedef struct {
    kle_api_status_t  status;
    int               code;          /* HTTP status, 0 if none */
    int               retry_after;   /* seconds, 0 if none */
    char              reason[64];    /* Status.reason, "" if none */
    char              message[256];  /* Status.message or a description */
} kle_api_result_t;

/*
 * Classifies an HTTP answer from its code, body (a Status object or not)
 * and Retry-After header value (NULL if absent).  A 2xx is KLE_API_OK
 * only if its body is a JSON object; reading the record is kle_lock_read's.
 */
void kle_api_classify(int code, const char *body, size_t len,
    const char *retry_after, kle_api_result_t *res);
const char *kle_api_status_name(kle_api_status_t status);

#endif /* KLE_LOCK_H */
