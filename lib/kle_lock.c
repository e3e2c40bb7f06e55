/*
 * Lease and ConfigMap locks: paths, request bodies, reading responses and
 * classifying API answers.  No I/O here.
 */

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "kle_lock.h"


#define KLE_JSON_FLAGS                                                       \
    (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)


typedef struct {
    const char  *api;         /* path prefix up to the namespace */
    const char  *resource;
    const char  *api_version;
    const char  *kind;
} kle_lock_type_t;


static int kle_dns_part(const char *s, size_t len);
static int kle_dns_label(const char *s, size_t len);
static int kle_dns_subdomain(const char *s, size_t len);
static json_object *kle_json_parse(const char *s, size_t len,
    const char **why);
static int kle_json_str(json_object *o, const char *key, const char **out);
static const char *kle_json_rv(json_object *meta, const char **rv);
static int kle_json_int32(json_object *v, int32_t *out);
static json_object *kle_json_child(json_object *o, const char *key);
static int kle_read_lease(json_object *obj, kle_record_t *rec,
    const char **why);
static int kle_read_configmap(json_object *annotations, kle_record_t *rec,
    char *err, size_t errlen);
static void kle_read_address(json_object *ann, kle_record_t *rec);
static void kle_read_instance(json_object *ann, kle_record_t *rec);
static int kle_write_record(const kle_lock_t *lock, json_object *obj,
    const kle_record_t *rec);
static int kle_set(json_object *o, const char *key, json_object *v);
static int kle_set_micro(json_object *o, const char *key, int64_t us);
static char *kle_json_dump(json_object *o);
static int kle_retry_after(const char *s);


static const kle_lock_type_t  kle_lock_types[] = {
    { "/apis/coordination.k8s.io/v1", "leases",
      "coordination.k8s.io/v1", "Lease" },
    { "/api/v1", "configmaps", "v1", "ConfigMap" }
};


int
kle_lock_init(kle_lock_t *lock, const char *kind, const char *where,
    char *err, size_t errlen)
{
    size_t       nslen, namelen;
    const char  *slash, *name;

    memset(lock, 0, sizeof(*lock));

    if (kind != NULL && strcmp(kind, "leases") == 0) {
        lock->kind = KLE_LOCK_LEASES;

    } else if (kind != NULL && strcmp(kind, "configmaps") == 0) {
        lock->kind = KLE_LOCK_CONFIGMAPS;

    } else {
        snprintf(err, errlen,
                 "invalid lock kind \"%s\": expected \"leases\" or "
                 "\"configmaps\"", kind ? kind : "");
        return -1;
    }

    slash = where ? strchr(where, '/') : NULL;
    if (slash == NULL || slash == where || slash[1] == '\0') {
        snprintf(err, errlen, "invalid lock \"%s\": expected NAMESPACE/NAME",
                 where ? where : "");
        return -1;
    }

    nslen = (size_t) (slash - where);
    name = slash + 1;
    namelen = strlen(name);

    if (nslen >= sizeof(lock->ns) || !kle_dns_label(where, nslen)) {
        snprintf(err, errlen,
                 "invalid lock namespace \"%.*s\": must be a DNS label "
                 "(at most 63 of a-z, 0-9 and '-', starting and ending "
                 "with a letter or digit)", (int) nslen, where);
        return -1;
    }

    if (namelen >= sizeof(lock->name) || !kle_dns_subdomain(name, namelen)) {
        snprintf(err, errlen,
                 "invalid lock name \"%s\": must be a DNS subdomain "
                 "(at most 253 of a-z, 0-9, '-' and '.', each dot-separated "
                 "part starting and ending with a letter or digit)", name);
        return -1;
    }

    memcpy(lock->ns, where, nslen);
    memcpy(lock->name, name, namelen);

    return 0;
}


void
kle_lock_free(kle_lock_t *lock)
{
    json_object_put(lock->object);
    lock->object = NULL;
    lock->resource_version[0] = '\0';
}


const char *
kle_lock_kind_name(kle_lock_kind_t kind)
{
    return kind == KLE_LOCK_CONFIGMAPS ? "configmaps" : "leases";
}


int
kle_lock_collection_path(const kle_lock_t *lock, char *buf, size_t size)
{
    int                     n;
    const kle_lock_type_t  *t;

    t = &kle_lock_types[lock->kind];
    n = snprintf(buf, size, "%s/namespaces/%s/%s",
                 t->api, lock->ns, t->resource);

    return (n < 0 || (size_t) n >= size) ? -1 : 0;
}


int
kle_lock_object_path(const kle_lock_t *lock, char *buf, size_t size)
{
    int     n;
    size_t  len;

    if (kle_lock_collection_path(lock, buf, size) != 0) {
        return -1;
    }

    len = strlen(buf);
    n = snprintf(buf + len, size - len, "/%s", lock->name);

    return (n < 0 || (size_t) n >= size - len) ? -1 : 0;
}


int
kle_lock_list_path(const kle_lock_t *lock, char *buf, size_t size)
{
    int     n;
    size_t  len;

    if (kle_lock_collection_path(lock, buf, size) != 0) {
        return -1;
    }

    len = strlen(buf);
    n = snprintf(buf + len, size - len, "?fieldSelector=metadata.name%%3D%s",
                 lock->name);

    return (n < 0 || (size_t) n >= size - len) ? -1 : 0;
}


int
kle_lock_watch_path(const kle_lock_t *lock, const char *rv, char *buf,
    size_t size)
{
    int     n;
    size_t  len;

    if (kle_lock_collection_path(lock, buf, size) != 0) {
        return -1;
    }

    len = strlen(buf);
    n = snprintf(buf + len, size - len,
                 "?watch=1&allowWatchBookmarks=true"
                 "&fieldSelector=metadata.name%%3D%s", lock->name);
    if (n < 0 || (size_t) n >= size - len) {
        return -1;
    }
    len += n;

    if (rv == NULL || rv[0] == '\0') {
        return 0;
    }

    n = snprintf(buf + len, size - len, "&resourceVersion=");
    if (n < 0 || (size_t) n >= size - len) {
        return -1;
    }
    len += n;

    /* opaque to clients: escape anything outside RFC 3986 unreserved */
    for ( /* void */ ; *rv != '\0'; rv++) {
        if (isalnum((unsigned char) *rv) || strchr("-._~", *rv) != NULL) {
            n = snprintf(buf + len, size - len, "%c", *rv);
        } else {
            n = snprintf(buf + len, size - len, "%%%02X", (unsigned char) *rv);
        }
        if (n < 0 || (size_t) n >= size - len) {
            return -1;
        }
        len += n;
    }

    return 0;
}


struct json_object *
kle_lock_parse_body(const kle_lock_t *lock, const char *body, size_t len,
    char *err, size_t errlen)
{
    size_t                  i;
    const char             *why;
    json_object            *obj;
    const kle_lock_type_t  *t;

    t = &kle_lock_types[lock->kind];

    /* cheap checks first: a lock object is one JSON object of some KiB */
    if (len > kle_lock_body_max(lock)) {
        snprintf(err, errlen, "%s response: %zu bytes, more than a %s "
                 "holds", t->kind, len, t->kind);
        return NULL;
    }

    for (i = 0; i < len && isspace((unsigned char) body[i]); i++) {
        /* void */
    }

    if (i < len && body[i] != '{') {
        snprintf(err, errlen, "%s response: not a JSON object", t->kind);
        return NULL;
    }

    obj = kle_json_parse(body, len, &why);
    if (obj == NULL) {
        snprintf(err, errlen, "%s response: %s", t->kind, why);
        return NULL;
    }

    return obj;
}


size_t
kle_lock_body_max(const kle_lock_t *lock)
{
    return lock->kind == KLE_LOCK_LEASES ? KLE_LEASE_BODY_MAX
                                         : KLE_CONFIGMAP_BODY_MAX;
}


int
kle_lock_parse(const kle_lock_t *lock, struct json_object *obj,
    kle_record_t *rec, char *rv_out, char *err, size_t errlen)
{
    const char             *why, *rv, *s;
    json_object            *meta, *ann;
    kle_record_t            r;
    const kle_lock_type_t  *t;

    t = &kle_lock_types[lock->kind];

    memset(&r, 0, sizeof(r));

    if (!json_object_is_type(obj, json_type_object)) {
        why = "not a JSON object";
        goto failed;
    }

    /* a List or another object must not pass for the lock */
    if (kle_json_str(obj, "kind", &s) != 0
        || (s != NULL && strcmp(s, t->kind) != 0))
    {
        why = "wrong kind";
        goto failed;
    }

    if (!json_object_object_get_ex(obj, "metadata", &meta)
        || !json_object_is_type(meta, json_type_object))
    {
        why = "no metadata object";
        goto failed;
    }

    if (kle_json_str(meta, "name", &s) != 0
        || (s != NULL && strcmp(s, lock->name) != 0))
    {
        why = "wrong metadata.name";
        goto failed;
    }

    why = kle_json_rv(meta, &rv);
    if (why != NULL) {
        goto failed;
    }

    ann = NULL;
    if (json_object_object_get_ex(meta, "annotations", &ann) && ann != NULL
        && !json_object_is_type(ann, json_type_object))
    {
        why = "metadata.annotations is not an object";
        goto failed;
    }

    if (lock->kind == KLE_LOCK_LEASES) {
        if (kle_read_lease(obj, &r, &why) != 0) {
            goto failed;
        }

    } else if (kle_read_configmap(ann, &r, err, errlen) != 0) {
        return -1;
    }

    kle_read_address(ann, &r);
    kle_read_instance(ann, &r);

    *rec = r;
    memcpy(rv_out, rv, strlen(rv) + 1);

    return 0;

failed:

    snprintf(err, errlen, "%s response: %s", t->kind, why);

    return -1;
}


int
kle_lock_parse_list(const kle_lock_t *lock, struct json_object *obj,
    struct json_object **item, char *list_rv, char *err, size_t errlen)
{
    const char             *why, *rv;
    json_object            *meta, *items;
    const kle_lock_type_t  *t;

    t = &kle_lock_types[lock->kind];
    *item = NULL;

    if (!json_object_is_type(obj, json_type_object)
        || !json_object_object_get_ex(obj, "metadata", &meta)
        || !json_object_is_type(meta, json_type_object))
    {
        why = "no metadata object";
        goto failed;
    }

    if (kle_json_rv(meta, &rv) != NULL) {
        why = "no usable metadata.resourceVersion";
        goto failed;
    }

    if (!json_object_object_get_ex(obj, "items", &items)
        || !json_object_is_type(items, json_type_array))
    {
        why = "no items array";
        goto failed;
    }

    /* the field selector names one object: more is not our lock */
    switch (json_object_array_length(items)) {
    case 0:
        break;
    case 1:
        *item = json_object_array_get_idx(items, 0);
        break;
    default:
        why = "more than one item";
        goto failed;
    }

    memcpy(list_rv, rv, strlen(rv) + 1);

    return 0;

failed:

    snprintf(err, errlen, "%sList response: %s", t->kind, why);

    return -1;
}


void
kle_lock_keep(kle_lock_t *lock, struct json_object *obj, const char *rv)
{
    size_t  n;

    n = strlen(rv);
    if (obj == NULL || n >= sizeof(lock->resource_version)) {
        return;
    }

    json_object_get(obj);
    json_object_put(lock->object);
    lock->object = obj;
    memcpy(lock->resource_version, rv, n + 1);
}


int
kle_lock_read(kle_lock_t *lock, const char *body, size_t len,
    kle_record_t *rec, char *err, size_t errlen)
{
    char          rv[KLE_RV_MAX];
    json_object  *obj;

    obj = kle_lock_parse_body(lock, body, len, err, errlen);
    if (obj == NULL) {
        return -1;
    }

    if (kle_lock_parse(lock, obj, rec, rv, err, errlen) != 0) {
        json_object_put(obj);
        return -1;
    }

    kle_lock_keep(lock, obj, rv);
    json_object_put(obj);

    return 0;
}


int
kle_lock_watch_event(const kle_lock_t *lock, const char *line, size_t len,
    kle_watch_event_t *ev, char *err, size_t errlen)
{
    const char   *type, *s, *why;
    json_object  *o, *obj, *meta, *v;

    memset(ev, 0, sizeof(*ev));

    /* an event is a lock object in an envelope */
    if (len > kle_lock_body_max(lock) + 1024) {
        snprintf(err, errlen, "watch event: %zu bytes, too large", len);
        return -1;
    }

    o = kle_json_parse(line, len, &why);
    if (o == NULL) {
        snprintf(err, errlen, "watch event: %s", why);
        return -1;
    }

    if (!json_object_is_type(o, json_type_object)
        || kle_json_str(o, "type", &type) != 0 || type == NULL
        || !json_object_object_get_ex(o, "object", &obj)
        || !json_object_is_type(obj, json_type_object))
    {
        snprintf(err, errlen, "watch event: not {\"type\", \"object\"}");
        json_object_put(o);
        return -1;
    }

    if (strcmp(type, "ADDED") == 0 || strcmp(type, "MODIFIED") == 0) {
        ev->type = KLE_WATCH_CHANGED;
        if (kle_lock_parse(lock, obj, &ev->rec, ev->rv, err, errlen) != 0) {
            json_object_put(o);
            return -1;
        }
        ev->object = json_object_get(obj);

    } else if (strcmp(type, "DELETED") == 0
               || strcmp(type, "BOOKMARK") == 0)
    {
        /* the version is all these tell; DELETED's is the deletion's */
        ev->type = type[0] == 'D' ? KLE_WATCH_DELETED : KLE_WATCH_BOOKMARK;
        if (!json_object_object_get_ex(obj, "metadata", &meta)
            || kle_json_rv(meta, &s) != NULL)
        {
            snprintf(err, errlen, "watch event: %s without a usable "
                     "resourceVersion", type);
            json_object_put(o);
            return -1;
        }
        memcpy(ev->rv, s, strlen(s) + 1);

    } else if (strcmp(type, "ERROR") == 0) {
        ev->type = KLE_WATCH_ERROR;
        if (json_object_object_get_ex(obj, "code", &v)
            && json_object_is_type(v, json_type_int))
        {
            ev->code = json_object_get_int(v);
        }
        if (kle_json_str(obj, "message", &s) == 0 && s != NULL) {
            snprintf(ev->message, sizeof(ev->message), "%s", s);
        }

    } else {
        snprintf(err, errlen, "watch event: unknown type");
        json_object_put(o);
        return -1;
    }

    json_object_put(o);

    return 0;
}


void
kle_lock_watch_event_free(kle_watch_event_t *ev)
{
    json_object_put(ev->object);
    ev->object = NULL;
}


char *
kle_lock_create_body(const kle_lock_t *lock, const kle_record_t *rec)
{
    char                   *s;
    json_object            *obj, *meta;
    const kle_lock_type_t  *t;

    t = &kle_lock_types[lock->kind];

    obj = json_object_new_object();
    if (obj == NULL) {
        return NULL;
    }

    s = NULL;

    if (kle_set(obj, "apiVersion", json_object_new_string(t->api_version))
        || kle_set(obj, "kind", json_object_new_string(t->kind)))
    {
        goto done;
    }

    meta = kle_json_child(obj, "metadata");
    if (meta == NULL
        || kle_set(meta, "name", json_object_new_string(lock->name))
        || kle_set(meta, "namespace", json_object_new_string(lock->ns)))
    {
        goto done;
    }

    if (kle_write_record(lock, obj, rec) == 0) {
        s = kle_json_dump(obj);
    }

done:

    json_object_put(obj);

    return s;
}


char *
kle_lock_update_body(const kle_lock_t *lock, const kle_record_t *rec,
    const char *rv)
{
    char         *s;
    json_object  *obj, *meta;

    if (lock->object == NULL || rv == NULL || rv[0] == '\0') {
        return NULL;
    }

    obj = NULL;
    if (json_object_deep_copy(lock->object, &obj, NULL) != 0) {
        return NULL;
    }

    s = NULL;

    /* always conditional: a ConfigMap PUT without it silently overwrites */
    meta = kle_json_child(obj, "metadata");
    if (meta == NULL
        || kle_set(meta, "resourceVersion", json_object_new_string(rv)))
    {
        goto done;
    }

    json_object_object_del(meta, "managedFields");

    if (kle_write_record(lock, obj, rec) == 0) {
        s = kle_json_dump(obj);
    }

done:

    json_object_put(obj);

    return s;
}


void
kle_api_classify(int code, const char *body, size_t len,
    const char *retry_after, kle_api_result_t *res)
{
    int           n;
    const char   *why, *s;
    json_object  *obj, *details, *v;

    memset(res, 0, sizeof(*res));
    res->code = code;

    if (code == 0) {
        res->status = KLE_API_TRANSPORT;
        snprintf(res->message, sizeof(res->message),
                 "no response from the API server");
        return;
    }

    /* a Status is small; a proxy's error page need not be parsed */
    if (len > KLE_STATUS_BODY_MAX
        && !(code >= 200 && code < 300 && len <= KLE_CONFIGMAP_BODY_MAX))
    {
        obj = NULL;
        why = "a body too large to read";

    } else {
        obj = kle_json_parse(body, len, &why);
    }

    if (obj != NULL && !json_object_is_type(obj, json_type_object)) {
        json_object_put(obj);
        obj = NULL;
        why = "a JSON body that is not an object";
    }

    if (code >= 200 && code < 300) {
        if (obj != NULL) {
            res->status = KLE_API_OK;
            json_object_put(obj);
            return;
        }

        res->status = KLE_API_BAD_RESPONSE;
        snprintf(res->message, sizeof(res->message), "HTTP %d with %s",
                 code, why);
        return;
    }

    if (obj != NULL && kle_json_str(obj, "kind", &s) == 0 && s != NULL
        && strcmp(s, "Status") == 0)
    {
        why = "a Status without a message";

        if (kle_json_str(obj, "reason", &s) == 0 && s != NULL) {
            snprintf(res->reason, sizeof(res->reason), "%s", s);
        }

        if (kle_json_str(obj, "message", &s) == 0 && s != NULL) {
            snprintf(res->message, sizeof(res->message), "%s", s);
        }

        if (json_object_object_get_ex(obj, "details", &details)
            && json_object_is_type(details, json_type_object)
            && json_object_object_get_ex(details, "retryAfterSeconds", &v)
            && json_object_is_type(v, json_type_int))
        {
            n = json_object_get_int(v);
            res->retry_after = n > 0 ? n : 0;
        }

    } else if (obj != NULL) {
        why = "a JSON body that is not a Status";
    }

    json_object_put(obj);

    if (res->message[0] == '\0') {
        snprintf(res->message, sizeof(res->message), "HTTP %d with %s",
                 code, why);
    }

    /* the header wins over the Status detail, as in client-go */
    n = kle_retry_after(retry_after);
    if (n >= 0) {
        res->retry_after = n;
    }

    if (code == 404) {
        res->status = KLE_API_NOT_FOUND;

    } else if (code == 409) {
        res->status = strcmp(res->reason, "AlreadyExists") == 0
                      ? KLE_API_ALREADY_EXISTS : KLE_API_CONFLICT;

    } else if (code == 401) {
        res->status = KLE_API_UNAUTHORIZED;

    } else if (code == 403) {
        res->status = KLE_API_FORBIDDEN;

    } else if (code == 429) {
        res->status = KLE_API_TOO_MANY_REQUESTS;
        if (res->retry_after <= 0) {
            res->retry_after = 1;
        }

    } else if (code >= 500 && code < 600) {
        res->status = KLE_API_SERVER_ERROR;

    } else if (code >= 400 && code < 500) {
        res->status = KLE_API_REJECTED;

    } else {
        res->status = KLE_API_BAD_RESPONSE;     /* 1xx, 3xx, nonsense */
    }

    if (res->status != KLE_API_TOO_MANY_REQUESTS
        && res->status != KLE_API_SERVER_ERROR)
    {
        res->retry_after = 0;
    }
}


const char *
kle_api_status_name(kle_api_status_t status)
{
    switch (status) {
    case KLE_API_OK:
        return "ok";
    case KLE_API_NOT_FOUND:
        return "not found";
    case KLE_API_CONFLICT:
        return "conflict";
    case KLE_API_ALREADY_EXISTS:
        return "already exists";
    case KLE_API_UNAUTHORIZED:
        return "unauthorized";
    case KLE_API_FORBIDDEN:
        return "forbidden";
    case KLE_API_TOO_MANY_REQUESTS:
        return "too many requests";
    case KLE_API_SERVER_ERROR:
        return "server error";
    case KLE_API_BAD_RESPONSE:
        return "bad response";
    case KLE_API_TRANSPORT:
        return "transport error";
    case KLE_API_REJECTED:
        return "rejected";
    }

    return "unknown";
}


/* [a-z0-9]([-a-z0-9]*[a-z0-9])? of any length but 0. */
static int
kle_dns_part(const char *s, size_t len)
{
    size_t  i;

    if (len == 0 || s[0] == '-' || s[len - 1] == '-') {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if (!(islower((unsigned char) s[i]) || isdigit((unsigned char) s[i])
              || s[i] == '-'))
        {
            return 0;
        }
    }

    return 1;
}


/* RFC 1123 label, as namespaces are. */
static int
kle_dns_label(const char *s, size_t len)
{
    return len <= 63 && kle_dns_part(s, len);
}


/* Parts joined by '.', 253 in all; Kubernetes caps no single part. */
static int
kle_dns_subdomain(const char *s, size_t len)
{
    const char  *dot, *end;

    if (len > 253) {
        return 0;
    }

    end = s + len;

    for ( ;; ) {
        dot = memchr(s, '.', (size_t) (end - s));
        if (dot == NULL) {
            return kle_dns_part(s, (size_t) (end - s));
        }
        if (!kle_dns_part(s, (size_t) (dot - s))) {
            return 0;
        }
        s = dot + 1;
    }
}


/*
 * Parses exactly len bytes as one JSON value (whitespace around it
 * allowed).  On failure why says how the body is wrong.
 */
static json_object *
kle_json_parse(const char *s, size_t len, const char **why)
{
    size_t                   end;
    json_object             *o;
    json_tokener            *tok;
    enum json_tokener_error  jerr;

    if (s == NULL || len == 0) {
        *why = "an empty body";
        return NULL;
    }

    if (len > INT_MAX) {
        *why = "a body too large";
        return NULL;
    }

    tok = json_tokener_new();
    if (tok == NULL) {
        *why = "no memory to parse the body";
        return NULL;
    }

    o = json_tokener_parse_ex(tok, s, (int) len);
    jerr = json_tokener_get_error(tok);
    end = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);

    if (o == NULL) {
        if (jerr == json_tokener_continue) {
            while (len > 0 && isspace((unsigned char) s[len - 1])) {
                len--;
            }
            *why = len ? "a truncated JSON body" : "an empty body";
        } else {
            *why = "a non-JSON body";
        }
        return NULL;
    }

    while (end < len && isspace((unsigned char) s[end])) {
        end++;
    }

    if (end < len) {
        json_object_put(o);
        *why = "a body with data after the JSON value";
        return NULL;
    }

    return o;
}


/* A resourceVersion a lock can keep: NULL, else why not. */
static const char *
kle_json_rv(json_object *meta, const char **rv)
{
    if (kle_json_str(meta, "resourceVersion", rv) != 0 || *rv == NULL
        || (*rv)[0] == '\0')
    {
        return "no metadata.resourceVersion";
    }

    if (strlen(*rv) >= KLE_RV_MAX) {
        return "metadata.resourceVersion is too long";
    }

    return NULL;
}


/* *out is NULL if the key is missing or null; -1 for another type. */
static int
kle_json_str(json_object *o, const char *key, const char **out)
{
    json_object  *v;

    *out = NULL;

    if (!json_object_object_get_ex(o, key, &v) || v == NULL) {
        return 0;
    }

    /* a NUL inside would cut the string short: not a string we take */
    if (!json_object_is_type(v, json_type_string)
        || strlen(json_object_get_string(v))
           != (size_t) json_object_get_string_len(v))
    {
        return -1;
    }

    *out = json_object_get_string(v);

    return 0;
}


/* A JSON integer in int32 range: Go rejects strings and fractions. */
static int
kle_json_int32(json_object *v, int32_t *out)
{
    int64_t  n;

    if (!json_object_is_type(v, json_type_int)) {
        return -1;
    }

    n = json_object_get_int64(v);
    if (n < INT32_MIN || n > INT32_MAX) {
        return -1;
    }

    *out = (int32_t) n;

    return 0;
}


/* The object at key, created (or replacing a non-object) if needed. */
static json_object *
kle_json_child(json_object *o, const char *key)
{
    json_object  *v;

    if (json_object_object_get_ex(o, key, &v)
        && json_object_is_type(v, json_type_object))
    {
        return v;
    }

    v = json_object_new_object();
    if (v == NULL || kle_set(o, key, v) != 0) {
        return NULL;
    }

    return v;
}


static int
kle_read_lease(json_object *obj, kle_record_t *rec, const char **why)
{
    const char   *s;
    json_object  *spec, *v;

    if (!json_object_object_get_ex(obj, "spec", &spec) || spec == NULL) {
        return 0;
    }

    if (!json_object_is_type(spec, json_type_object)) {
        *why = "spec is not an object";
        return -1;
    }

    if (json_object_object_get_ex(spec, "holderIdentity", &v) && v != NULL) {
        if (!json_object_is_type(v, json_type_string)) {
            *why = "spec.holderIdentity is not a string";
            return -1;
        }
        /* one we cannot store is someone else's, not an error */
        kle_record_set_holder(rec, json_object_get_string(v),
                              (size_t) json_object_get_string_len(v));
    }

    if (json_object_object_get_ex(spec, "leaseDurationSeconds", &v)
        && v != NULL)
    {
        if (kle_json_int32(v, &rec->lease_duration) != 0) {
            *why = "spec.leaseDurationSeconds is not an int32";
            return -1;
        }
    }

    if (kle_json_str(spec, "acquireTime", &s) != 0
        || (s != NULL && kle_time_parse(s, &rec->acquire_time) != 0))
    {
        *why = "spec.acquireTime is not a MicroTime";
        return -1;
    }

    if (kle_json_str(spec, "renewTime", &s) != 0
        || (s != NULL && kle_time_parse(s, &rec->renew_time) != 0))
    {
        *why = "spec.renewTime is not a MicroTime";
        return -1;
    }

    if (json_object_object_get_ex(spec, "leaseTransitions", &v)
        && v != NULL)
    {
        if (kle_json_int32(v, &rec->transitions) != 0) {
            *why = "spec.leaseTransitions is not an int32";
            return -1;
        }
    }

    return 0;
}


static int
kle_read_configmap(json_object *annotations, kle_record_t *rec,
    char *err, size_t errlen)
{
    json_object  *v;

    if (annotations == NULL
        || !json_object_object_get_ex(annotations, KLE_ANNOTATION_LEADER,
                                      &v)
        || v == NULL)
    {
        return 0;
    }

    if (!json_object_is_type(v, json_type_string)) {
        snprintf(err, errlen, "ConfigMap response: the %s annotation is "
                 "not a string", KLE_ANNOTATION_LEADER);
        return -1;
    }

    /* an empty annotation is no record, as in client-go */
    if (json_object_get_string_len(v) == 0) {
        return 0;
    }

    return kle_record_from_annotation(json_object_get_string(v),
                                      json_object_get_string_len(v),
                                      rec, err, errlen);
}


/*
 * The advertised address, only when the current holder wrote it: other
 * electors keep annotations they do not know, so an address left by an
 * earlier holder must not be shown.  One that does not check out reads as
 * unknown rather than failing the read.
 */
static void
kle_read_address(json_object *ann, kle_record_t *rec)
{
    json_object  *v, *h;
    size_t        n;

    rec->address[0] = '\0';

    if (ann == NULL || rec->holder[0] == '\0' || rec->foreign
        || !json_object_object_get_ex(ann, KLE_ANNOTATION_ADDRESS_HOLDER, &h)
        || !json_object_is_type(h, json_type_string)
        || (size_t) json_object_get_string_len(h) != strlen(rec->holder)
        || memcmp(json_object_get_string(h), rec->holder,
                  strlen(rec->holder)) != 0
        || !json_object_object_get_ex(ann, KLE_ANNOTATION_ADDRESS, &v)
        || !json_object_is_type(v, json_type_string))
    {
        return;
    }

    n = (size_t) json_object_get_string_len(v);

    if (n < KLE_ADDR_MAX && kle_address_valid(json_object_get_string(v), n)) {
        memcpy(rec->address, json_object_get_string(v), n);
        rec->address[n] = '\0';
    }
}


/*
 * The writer's instance nonce, for a record with a holder.  Other electors
 * keep it when they write: one that writes another identity makes it
 * moot (the record is not ours either way), one that writes our identity
 * is another process in our name, rightly not us.  What cannot be told is
 * such a writer keeping our own nonce: that reads as today, as ours.
 */
static void
kle_read_instance(json_object *ann, kle_record_t *rec)
{
    json_object  *v;

    rec->instance[0] = '\0';

    if (ann == NULL || rec->holder[0] == '\0'
        || !json_object_object_get_ex(ann, KLE_ANNOTATION_INSTANCE, &v)
        || !json_object_is_type(v, json_type_string)
        || !kle_instance_valid(json_object_get_string(v),
                               (size_t) json_object_get_string_len(v)))
    {
        return;
    }

    memcpy(rec->instance, json_object_get_string(v), KLE_INSTANCE_MAX);
}


/*
 * Writes rec into obj: the Lease spec or the annotation, the address and
 * the instance nonce.
 */
static int
kle_write_record(const kle_lock_t *lock, json_object *obj,
    const kle_record_t *rec)
{
    char         *a;
    json_object  *meta, *ann, *spec;

    meta = kle_json_child(obj, "metadata");
    if (meta == NULL) {
        return -1;
    }

    ann = NULL;
    if (json_object_object_get_ex(meta, "annotations", &ann)
        && !json_object_is_type(ann, json_type_object))
    {
        ann = NULL;
    }

    if (ann == NULL
        && (lock->kind == KLE_LOCK_CONFIGMAPS || rec->instance[0] != '\0'
            || (rec->address[0] != '\0' && rec->holder[0] != '\0')))
    {
        ann = kle_json_child(meta, "annotations");
        if (ann == NULL) {
            return -1;
        }
    }

    if (lock->kind == KLE_LOCK_LEASES) {
        /* all five fields each time, as client-go writes them */
        spec = kle_json_child(obj, "spec");
        if (spec == NULL
            || kle_set(spec, "holderIdentity",
                       json_object_new_string_len(rec->holder,
                           (int) strnlen(rec->holder, KLE_ID_MAX)))
            || kle_set(spec, "leaseDurationSeconds",
                       json_object_new_int(rec->lease_duration))
            || kle_set_micro(spec, "acquireTime", rec->acquire_time)
            || kle_set_micro(spec, "renewTime", rec->renew_time)
            || kle_set(spec, "leaseTransitions",
                       json_object_new_int(rec->transitions)))
        {
            return -1;
        }

    } else {
        a = kle_record_to_annotation(rec);
        if (a == NULL
            || kle_set(ann, KLE_ANNOTATION_LEADER, json_object_new_string(a)))
        {
            free(a);
            return -1;
        }
        free(a);
    }

    /* ours, or none: a nonce left by an earlier write must not stay */
    if (rec->instance[0] != '\0') {
        if (kle_set(ann, KLE_ANNOTATION_INSTANCE,
                    json_object_new_string_len(rec->instance,
                        (int) strnlen(rec->instance, KLE_INSTANCE_MAX))))
        {
            return -1;
        }

    } else if (ann != NULL) {
        json_object_object_del(ann, KLE_ANNOTATION_INSTANCE);
    }

    /* the address, and who wrote it: readers check the two agree */
    if (rec->address[0] != '\0' && rec->holder[0] != '\0') {
        return kle_set(ann, KLE_ANNOTATION_ADDRESS,
                       json_object_new_string_len(rec->address,
                           (int) strnlen(rec->address, KLE_ADDR_MAX)))
               || kle_set(ann, KLE_ANNOTATION_ADDRESS_HOLDER,
                          json_object_new_string_len(rec->holder,
                              (int) strnlen(rec->holder, KLE_ID_MAX)));
    }

    if (ann != NULL) {
        json_object_object_del(ann, KLE_ANNOTATION_ADDRESS);
        json_object_object_del(ann, KLE_ANNOTATION_ADDRESS_HOLDER);
    }

    return 0;
}


/* Adds v (taking it) under key; v NULL means allocation failed. */
static int
kle_set(json_object *o, const char *key, json_object *v)
{
    if (v == NULL) {
        return -1;
    }

    if (json_object_object_add(o, key, v) != 0) {
        json_object_put(v);
        return -1;
    }

    return 0;
}


/* MicroTime, or null when unset (a zero metav1.MicroTime). */
static int
kle_set_micro(json_object *o, const char *key, int64_t us)
{
    char  buf[32];

    if (us == 0) {
        return json_object_object_add(o, key, NULL) == 0 ? 0 : -1;
    }

    kle_time_format_micro(us, buf, sizeof(buf));

    return kle_set(o, key, json_object_new_string(buf));
}


static char *
kle_json_dump(json_object *o)
{
    const char  *s;

    s = json_object_to_json_string_ext(o, KLE_JSON_FLAGS);

    return s ? strdup(s) : NULL;
}


/* Retry-After in delta-seconds; -1 if absent or an HTTP date. */
static int
kle_retry_after(const char *s)
{
    long   n;
    char  *end;

    if (s == NULL) {
        return -1;
    }

    while (*s == ' ' || *s == '\t') {
        s++;
    }

    if (!isdigit((unsigned char) *s)) {
        return -1;
    }

    errno = 0;
    n = strtol(s, &end, 10);

    while (*end == ' ' || *end == '\t') {
        end++;
    }

    if (errno != 0 || *end != '\0' || n > INT_MAX) {
        return -1;
    }

    return (int) n;
}
