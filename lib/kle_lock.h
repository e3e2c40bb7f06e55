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
/* the identity that wrote the address: shown only for that holder */
#define KLE_ANNOTATION_ADDRESS_HOLDER                                         \
    "leader-election.nginx.org/address-holder"

/*
 * The nonce of the nginx instance (or kle process) that wrote the record:
 * tells two instances that share an identity apart (kle_election.h)
 */
#define KLE_ANNOTATION_INSTANCE  "leader-election.nginx.org/instance"

#define KLE_RV_MAX  64    /* a resourceVersion incl. NUL */

/*
 * The largest answers read as a lock object.  A Lease is a few hundred
 * bytes (managedFields make it a few KiB); a ConfigMap may carry data,
 * up to the 1 MiB the API server allows, JSON-escaped.
 */
#define KLE_LEASE_BODY_MAX      (256 * 1024)
#define KLE_CONFIGMAP_BODY_MAX  (3 * 1024 * 1024)
/* Status bodies of failed requests; larger ones are not parsed */
#define KLE_STATUS_BODY_MAX     (64 * 1024)

struct json_object;

typedef enum {
    KLE_LOCK_LEASES = 0,
    KLE_LOCK_CONFIGMAPS
} kle_lock_kind_t;

typedef struct {
    kle_lock_kind_t  kind;
    char             ns[64];          /* DNS label, <= 63 */
    char             name[254];       /* DNS subdomain, <= 253 */
    char             resource_version[KLE_RV_MAX];  /* of object */
    void            *object;          /* json_object *: the object kept */
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
/* A watch of the one object from rv (NULL: now), with bookmarks. */
int kle_lock_watch_path(const kle_lock_t *lock, const char *rv, char *buf,
    size_t size);
/* The collection listed down to the lock: GET it to learn a current rv. */
int kle_lock_list_path(const kle_lock_t *lock, char *buf, size_t size);

/*
 * Reading an answer is three steps, so that a host keeps only the objects
 * whose record its state machine took:
 *
 * parse_body: a 200/201 body as JSON, after a size bound proportionate to
 *   the lock's kind and a shape check; NULL with a reason in err.
 * parse: the record (all zero for an object with no record: a Lease with
 *   an empty spec, a ConfigMap without the annotation) and the object's
 *   resourceVersion (rv: KLE_RV_MAX bytes).  No side effect.  Holders the
 *   record cannot store read as foreign (kle_record_t.foreign); the
 *   address only when the holder wrote it and it is a valid HOST:PORT;
 *   the instance nonce only for a record with a holder, and if valid.
 * keep: remembers obj (a reference is taken) and rv: the object the next
 *   update body is built on.
 *
 * kle_lock_read() does all three.  -1 with a one-line reason in err on a
 * malformed body; the kept object is then unchanged.
 */
struct json_object *kle_lock_parse_body(const kle_lock_t *lock,
    const char *body, size_t len, char *err, size_t errlen);
int kle_lock_parse(const kle_lock_t *lock, struct json_object *obj,
    kle_record_t *rec, char *rv, char *err, size_t errlen);
void kle_lock_keep(kle_lock_t *lock, struct json_object *obj,
    const char *rv);
int kle_lock_read(kle_lock_t *lock, const char *body, size_t len,
    kle_record_t *rec, char *err, size_t errlen);
size_t kle_lock_body_max(const kle_lock_t *lock);

/*
 * A list of the lock's collection down to its name (kle_lock_list_path):
 * the list's resourceVersion (current, unlike the object's, which a quiet
 * lock keeps from before any compaction) into list_rv, and the lock object
 * in *item (borrowed from obj; NULL if the list is empty).  -1 with a
 * reason in err.
 */
int kle_lock_parse_list(const kle_lock_t *lock, struct json_object *obj,
    struct json_object **item, char *list_rv, char *err, size_t errlen);

/* One line of a watch stream. */
typedef enum {
    KLE_WATCH_CHANGED = 1,    /* ADDED or MODIFIED: rec, rv, object */
    KLE_WATCH_DELETED,        /* rv of the deletion */
    KLE_WATCH_BOOKMARK,       /* rv only: where to resume */
    KLE_WATCH_ERROR           /* a Status: code (410: list again), message */
} kle_watch_type_t;

typedef struct {
    kle_watch_type_t     type;
    kle_record_t         rec;
    char                 rv[KLE_RV_MAX];
    int                  code;
    char                 message[256];
    struct json_object  *object;   /* CHANGED: for kle_lock_keep() */
} kle_watch_event_t;

/*
 * Parses one event, once.  -1 with a reason for a line that is not an
 * event of this lock (unknown types included).  Release ev with
 * kle_lock_watch_event_free().
 */
int kle_lock_watch_event(const kle_lock_t *lock, const char *line,
    size_t len, kle_watch_event_t *ev, char *err, size_t errlen);
void kle_lock_watch_event_free(kle_watch_event_t *ev);

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
