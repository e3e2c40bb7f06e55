/*
 * kle_lock: names, paths, reading Lease/ConfigMap objects, request bodies
 * and the classification of API answers.
 */

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "kle_lock.h"
#include "kle_test.h"


#define T0  1767261600LL            /* 2026-01-01T10:00:00Z */
#define US  1000000LL


static const char  *lease_body =
    "{\"kind\":\"Lease\",\"apiVersion\":\"coordination.k8s.io/v1\","
    "\"metadata\":{\"name\":\"nginx-web\",\"namespace\":\"default\","
    "\"uid\":\"8f1c\",\"resourceVersion\":\"4711\","
    "\"labels\":{\"app\":\"web\"},"
    "\"annotations\":{\"leader-election.nginx.org/address\":"
    "\"10.0.0.5:8080\",\"leader-election.nginx.org/address-holder\":"
    "\"nginx-0\",\"team\":\"edge\"},"
    "\"managedFields\":[{\"manager\":\"kle\",\"operation\":\"Update\"}]},"
    "\"spec\":{\"holderIdentity\":\"nginx-0\",\"leaseDurationSeconds\":15,"
    "\"acquireTime\":\"2026-01-01T10:00:00.000000Z\","
    "\"renewTime\":\"2026-01-01T10:00:30.250000Z\","
    "\"leaseTransitions\":3}}";

static const char  *configmap_body =
    "{\"kind\":\"ConfigMap\",\"apiVersion\":\"v1\","
    "\"metadata\":{\"name\":\"nginx-web\",\"namespace\":\"default\","
    "\"resourceVersion\":\"99\",\"labels\":{\"app\":\"web\"},"
    "\"annotations\":{\"control-plane.alpha.kubernetes.io/leader\":"
    "\"{\\\"holderIdentity\\\":\\\"nginx-1\\\",\\\"leaseDurationSeconds\\\":"
    "15,\\\"acquireTime\\\":\\\"2026-01-01T10:00:00Z\\\",\\\"renewTime\\\":"
    "\\\"2026-01-01T10:00:10Z\\\",\\\"leaderTransitions\\\":2}\","
    "\"team\":\"edge\"}},"
    "\"data\":{\"key\":\"value\"}}";

static const char  *conflict_body =
    "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},"
    "\"status\":\"Failure\",\"message\":\"Operation cannot be fulfilled on "
    "leases.coordination.k8s.io \\\"nginx-web\\\": the object has been "
    "modified; please apply your changes to the latest version and try "
    "again\",\"reason\":\"Conflict\",\"details\":{\"name\":\"nginx-web\","
    "\"group\":\"coordination.k8s.io\",\"kind\":\"leases\"},\"code\":409}";

static const char  *exists_body =
    "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},"
    "\"status\":\"Failure\",\"message\":\"leases.coordination.k8s.io "
    "\\\"nginx-web\\\" already exists\",\"reason\":\"AlreadyExists\","
    "\"details\":{\"name\":\"nginx-web\",\"group\":\"coordination.k8s.io\","
    "\"kind\":\"leases\"},\"code\":409}";


/* Exactly len bytes, no NUL: valgrind catches any read past the end. */
static char *
exact(const char *s)
{
    char  *p = malloc(strlen(s));

    memcpy(p, s, strlen(s));
    return p;
}


static int
read_body(kle_lock_t *lock, const char *body, kle_record_t *rec, char *err)
{
    int    rc;
    char  *p = exact(body);

    rc = kle_lock_read(lock, p, strlen(body), rec, err, 256);
    free(p);
    return rc;
}


static void
classify(int code, const char *body, const char *retry_after,
    kle_api_result_t *res)
{
    char  *p = exact(body);

    kle_api_classify(code, p, strlen(body), retry_after, res);
    free(p);
}


/* The value at a path of keys (NULL-terminated), or NULL. */
static json_object *
jpath(json_object *o, ...)
{
    va_list      ap;
    const char  *key;

    va_start(ap, o);
    while (o != NULL && (key = va_arg(ap, const char *)) != NULL) {
        if (!json_object_object_get_ex(o, key, &o)) {
            o = NULL;
        }
    }
    va_end(ap);

    return o;
}


static const char *
jstr(json_object *o)
{
    return json_object_is_type(o, json_type_string)
           ? json_object_get_string(o) : "(not a string)";
}


static void
lock_ok(const char *kind, const char *where, const char *ns,
    const char *name)
{
    char        err[512], label[300];
    kle_lock_t  lock;

    snprintf(label, sizeof(label), "accepts %.40s %.200s", kind, where);
    err[0] = '\0';
    if (!ok(kle_lock_init(&lock, kind, where, err, sizeof(err)) == 0,
            label))
    {
        printf("#   %s\n", err);
        return;
    }
    is_str(lock.ns, ns, "namespace");
    is_str(lock.name, name, "name");
    ok(lock.object == NULL && lock.resource_version[0] == '\0',
       "nothing remembered");
    kle_lock_free(&lock);
}


static void
lock_bad(const char *kind, const char *where, const char *want)
{
    char        err[512], label[300];
    kle_lock_t  lock;

    snprintf(label, sizeof(label), "rejects %.40s %.200s", kind, where);
    err[0] = '\0';
    ok(kle_lock_init(&lock, kind, where, err, sizeof(err)) == -1, label);
    if (want != NULL) {
        is_str(err, want, "reason");
    } else {
        ok(err[0] != '\0' && strchr(err, '\n') == NULL, "one-line reason");
    }
    kle_lock_free(&lock);
}


static void
test_init(void)
{
    char  long_name[300], where[320];

    lock_ok("leases", "default/nginx-web", "default", "nginx-web");
    lock_ok("configmaps", "kube-system/a.b-c.d0", "kube-system",
            "a.b-c.d0");
    lock_ok("leases", "0/9", "0", "9");

    lock_bad("foo", "default/x",
             "invalid lock kind \"foo\": expected \"leases\" or "
             "\"configmaps\"");
    lock_bad("Leases", "default/x", NULL);
    lock_bad(NULL, "default/x", NULL);
    lock_bad("leases", "x", "invalid lock \"x\": expected NAMESPACE/NAME");
    lock_bad("leases", "/x", "invalid lock \"/x\": expected NAMESPACE/NAME");
    lock_bad("leases", "x/", "invalid lock \"x/\": expected NAMESPACE/NAME");
    lock_bad("leases", "", NULL);
    lock_bad("leases", NULL, NULL);
    lock_bad("leases", "Default/x",
             "invalid lock namespace \"Default\": must be a DNS label "
             "(at most 63 of a-z, 0-9 and '-', starting and ending with a "
             "letter or digit)");
    lock_bad("leases", "-ns/x", NULL);
    lock_bad("leases", "ns-/x", NULL);
    lock_bad("leases", "a.b/x", NULL);
    lock_bad("leases", "ns/x_y",
             "invalid lock name \"x_y\": must be a DNS subdomain (at most "
             "253 of a-z, 0-9, '-' and '.', each dot-separated part "
             "starting and ending with a letter or digit)");
    lock_bad("leases", "ns/a/b", NULL);
    lock_bad("leases", "ns/a..b", NULL);
    lock_bad("leases", "ns/.a", NULL);
    lock_bad("leases", "ns/a.", NULL);
    lock_bad("leases", "ns/a.-b", NULL);
    lock_bad("leases", "ns/Web", NULL);
    lock_bad("leases", "ns/we b", NULL);

    /* 63 is the most for a namespace, 253 for a name */
    memset(long_name, 'a', 63);
    strcpy(long_name + 63, "/x");
    lock_ok("leases", long_name, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
            "aaaaaaaaaaaaaaaaaaa", "x");
    memset(long_name, 'a', 64);
    strcpy(long_name + 64, "/x");
    lock_bad("leases", long_name, NULL);

    memset(long_name, 'b', 253);
    long_name[253] = '\0';
    long_name[100] = '.';
    snprintf(where, sizeof(where), "ns/%s", long_name);
    lock_ok("leases", where, "ns", long_name);
    snprintf(where, sizeof(where), "ns/%sb", long_name);
    lock_bad("leases", where, NULL);

    is_str(kle_lock_kind_name(KLE_LOCK_LEASES), "leases", "kind name");
    is_str(kle_lock_kind_name(KLE_LOCK_CONFIGMAPS), "configmaps",
           "kind name");
}


static void
test_paths(void)
{
    char        buf[256], err[256];
    kle_lock_t  lease, cm;

    kle_lock_init(&lease, "leases", "default/nginx-web", err, sizeof(err));
    kle_lock_init(&cm, "configmaps", "kube-system/lock", err, sizeof(err));

    ok(kle_lock_object_path(&lease, buf, sizeof(buf)) == 0, "object path");
    is_str(buf, "/apis/coordination.k8s.io/v1/namespaces/default/leases/"
           "nginx-web", "Lease object path");
    kle_lock_collection_path(&lease, buf, sizeof(buf));
    is_str(buf, "/apis/coordination.k8s.io/v1/namespaces/default/leases",
           "Lease collection path");
    kle_lock_watch_path(&lease, "4711", buf, sizeof(buf));
    is_str(buf, "/apis/coordination.k8s.io/v1/namespaces/default/leases"
           "?watch=1&allowWatchBookmarks=true"
           "&fieldSelector=metadata.name%3Dnginx-web"
           "&resourceVersion=4711", "Lease watch path");
    kle_lock_watch_path(&lease, NULL, buf, sizeof(buf));
    is_str(buf, "/apis/coordination.k8s.io/v1/namespaces/default/leases"
           "?watch=1&allowWatchBookmarks=true"
           "&fieldSelector=metadata.name%3Dnginx-web",
           "watch path without rv");
    kle_lock_watch_path(&lease, "", buf, sizeof(buf));
    is_str(buf, "/apis/coordination.k8s.io/v1/namespaces/default/leases"
           "?watch=1&allowWatchBookmarks=true"
           "&fieldSelector=metadata.name%3Dnginx-web",
           "watch path with empty rv");
    kle_lock_watch_path(&lease, "a b&c", buf, sizeof(buf));
    ok(strstr(buf, "&resourceVersion=a%20b%26c") != NULL,
       "odd rv escaped");

    kle_lock_object_path(&cm, buf, sizeof(buf));
    is_str(buf, "/api/v1/namespaces/kube-system/configmaps/lock",
           "ConfigMap object path");
    kle_lock_collection_path(&cm, buf, sizeof(buf));
    is_str(buf, "/api/v1/namespaces/kube-system/configmaps",
           "ConfigMap collection path");
    kle_lock_watch_path(&cm, "12", buf, sizeof(buf));
    is_str(buf, "/api/v1/namespaces/kube-system/configmaps?watch=1"
           "&allowWatchBookmarks=true&fieldSelector=metadata.name%3Dlock"
           "&resourceVersion=12",
           "ConfigMap watch path");

    /* exactly fitting and one byte short */
    ok(kle_lock_object_path(&cm, buf, 47) == 0, "path fits exactly");
    ok(kle_lock_object_path(&cm, buf, 46) == -1, "path too long");
    ok(kle_lock_collection_path(&cm, buf, 10) == -1, "collection too long");
    ok(kle_lock_watch_path(&cm, "12", buf, 128) == -1, "watch too long");
    ok(kle_lock_watch_path(&cm, "12", buf, 129) == 0, "watch fits");

    kle_lock_free(&lease);
    kle_lock_free(&cm);
}


static void
test_lease(void)
{
    char          err[256], *s;
    kle_lock_t    lock;
    kle_record_t  r, w;
    json_object  *o, *spec;

    kle_lock_init(&lock, "leases", "default/nginx-web", err, sizeof(err));

    ok(kle_lock_update_body(&lock, &r, "1") == NULL,
       "no update before a read");

    memset(&r, 0x55, sizeof(r));
    ok(read_body(&lock, lease_body, &r, err) == 0, "Lease read");
    is_str(r.holder, "nginx-0", "holder");
    is_str(r.address, "10.0.0.5:8080", "address from the annotation");
    is_int(r.lease_duration, 15, "duration");
    is_int(r.acquire_time, T0 * US, "acquireTime");
    is_int(r.renew_time, (T0 + 30) * US + 250000, "renewTime");
    is_int(r.transitions, 3, "transitions");
    is_str(lock.resource_version, "4711", "resourceVersion remembered");
    ok(lock.object != NULL, "object remembered");

    /* update: everything kept, record and rv written, managedFields gone */
    memset(&w, 0, sizeof(w));
    strcpy(w.holder, "nginx-1");
    strcpy(w.address, "10.0.0.6:8080");
    w.lease_duration = 20;
    w.acquire_time = T0 * US + 123456;
    w.renew_time = (T0 + 40) * US + 7;
    w.transitions = 4;

    s = kle_lock_update_body(&lock, &w, lock.resource_version);
    o = s ? json_tokener_parse(s) : NULL;
    ok(o != NULL, "update body is JSON");
    is_str(jstr(jpath(o, "metadata", "resourceVersion", NULL)), "4711",
           "update carries the resourceVersion");
    is_str(jstr(jpath(o, "metadata", "uid", NULL)), "8f1c", "uid kept");
    is_str(jstr(jpath(o, "metadata", "labels", "app", NULL)), "web",
           "labels kept");
    is_str(jstr(jpath(o, "metadata", "annotations", "team", NULL)), "edge",
           "other annotations kept");
    is_str(jstr(jpath(o, "metadata", "annotations", KLE_ANNOTATION_ADDRESS,
                      NULL)), "10.0.0.6:8080", "address annotation set");
    ok(jpath(o, "metadata", "managedFields", NULL) == NULL,
       "managedFields dropped");
    spec = jpath(o, "spec", NULL);
    is_str(jstr(jpath(spec, "holderIdentity", NULL)), "nginx-1",
           "spec holder");
    is_int(json_object_get_int(jpath(spec, "leaseDurationSeconds", NULL)),
           20, "spec duration");
    ok(json_object_is_type(jpath(spec, "leaseDurationSeconds", NULL),
                           json_type_int), "duration is a number");
    is_str(jstr(jpath(spec, "acquireTime", NULL)),
           "2026-01-01T10:00:00.123456Z", "acquireTime MicroTime");
    is_str(jstr(jpath(spec, "renewTime", NULL)),
           "2026-01-01T10:00:40.000007Z", "renewTime MicroTime");
    is_int(json_object_get_int(jpath(spec, "leaseTransitions", NULL)), 4,
           "spec transitions");
    json_object_put(o);
    free(s);

    /* no address: the annotation goes, the others stay */
    w.address[0] = '\0';
    s = kle_lock_update_body(&lock, &w, lock.resource_version);
    o = s ? json_tokener_parse(s) : NULL;
    ok(o != NULL && jpath(o, "metadata", "annotations",
                          KLE_ANNOTATION_ADDRESS, NULL) == NULL,
       "address annotation removed");
    is_str(jstr(jpath(o, "metadata", "annotations", "team", NULL)), "edge",
           "other annotation kept on removal");
    json_object_put(o);
    free(s);

    /* a Lease with an empty spec, then one without spec or annotations */
    ok(read_body(&lock, "{\"kind\":\"Lease\",\"metadata\":{\"name\":"
                 "\"nginx-web\",\"resourceVersion\":\"5000\"},\"spec\":{}}",
                 &r, err) == 0, "empty spec reads");
    ok(r.holder[0] == '\0' && r.address[0] == '\0' && r.lease_duration == 0
       && r.acquire_time == 0 && r.renew_time == 0 && r.transitions == 0,
       "empty spec is an all-zero record");
    is_str(lock.resource_version, "5000", "new resourceVersion");

    ok(read_body(&lock, "{\"metadata\":{\"resourceVersion\":\"5001\","
                 "\"annotations\":null},\"spec\":{\"holderIdentity\":null,"
                 "\"acquireTime\":null}}", &r, err) == 0,
       "nulls and a missing kind read");
    ok(r.holder[0] == '\0' && r.acquire_time == 0, "nulls read as zero");

    s = kle_lock_update_body(&lock, &w, lock.resource_version);
    o = s ? json_tokener_parse(s) : NULL;
    is_str(jstr(jpath(o, "metadata", "resourceVersion", NULL)), "5001",
           "update uses the last read");
    ok(json_object_is_type(jpath(o, "metadata", "annotations", NULL),
                           json_type_null), "no annotations created");
    json_object_put(o);
    free(s);

    kle_lock_free(&lock);
    ok(lock.object == NULL && lock.resource_version[0] == '\0',
       "free forgets the object");
}


static void
test_create(void)
{
    char          err[256], *s;
    kle_lock_t    lock;
    kle_record_t  w;
    json_object  *o;

    kle_lock_init(&lock, "leases", "default/nginx-web", err, sizeof(err));

    memset(&w, 0, sizeof(w));
    strcpy(w.holder, "nginx-0");
    w.lease_duration = 15;
    w.acquire_time = T0 * US + 123456;
    w.renew_time = (T0 + 10) * US;
    w.transitions = 0;

    s = kle_lock_create_body(&lock, &w);
    is_str(s, "{\"apiVersion\":\"coordination.k8s.io/v1\",\"kind\":\"Lease\","
           "\"metadata\":{\"name\":\"nginx-web\",\"namespace\":\"default\"},"
           "\"spec\":{\"holderIdentity\":\"nginx-0\","
           "\"leaseDurationSeconds\":15,"
           "\"acquireTime\":\"2026-01-01T10:00:00.123456Z\","
           "\"renewTime\":\"2026-01-01T10:00:10.000000Z\","
           "\"leaseTransitions\":0}}", "Lease create body bytes");

    o = s ? json_tokener_parse(s) : NULL;
    is_str(jstr(jpath(o, "spec", "acquireTime", NULL)),
           "2026-01-01T10:00:00.123456Z", "acquireTime parses back");
    is_str(jstr(jpath(o, "spec", "renewTime", NULL)),
           "2026-01-01T10:00:10.000000Z", "renewTime parses back");
    is_int(json_object_get_int(jpath(o, "spec", "leaseDurationSeconds",
                                     NULL)), 15, "duration parses back");
    json_object_put(o);
    free(s);

    strcpy(w.address, "[fd00::1]:80");
    s = kle_lock_create_body(&lock, &w);
    o = s ? json_tokener_parse(s) : NULL;
    is_str(jstr(jpath(o, "metadata", "annotations", KLE_ANNOTATION_ADDRESS,
                      NULL)), "[fd00::1]:80", "create with address");
    json_object_put(o);
    free(s);

    /* nothing read: still no update body */
    ok(kle_lock_update_body(&lock, &w, "1") == NULL,
       "create remembers nothing");
    kle_lock_free(&lock);

    kle_lock_init(&lock, "configmaps", "kube-system/lock", err, sizeof(err));
    w.address[0] = '\0';
    w.acquire_time = T0 * US;
    s = kle_lock_create_body(&lock, &w);
    is_str(s, "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\","
           "\"metadata\":{\"name\":\"lock\",\"namespace\":\"kube-system\","
           "\"annotations\":{\"control-plane.alpha.kubernetes.io/leader\":"
           "\"{\\\"holderIdentity\\\":\\\"nginx-0\\\","
           "\\\"leaseDurationSeconds\\\":15,"
           "\\\"acquireTime\\\":\\\"2026-01-01T10:00:00Z\\\","
           "\\\"renewTime\\\":\\\"2026-01-01T10:00:10Z\\\","
           "\\\"leaderTransitions\\\":0}\"}}}", "ConfigMap create body bytes");
    free(s);
    kle_lock_free(&lock);
}


static void
test_configmap(void)
{
    char          err[256], *s;
    kle_lock_t    lock;
    kle_record_t  r, w;
    json_object  *o;

    kle_lock_init(&lock, "configmaps", "default/nginx-web", err,
                  sizeof(err));

    memset(&r, 0x55, sizeof(r));
    ok(read_body(&lock, configmap_body, &r, err) == 0, "ConfigMap read");
    is_str(r.holder, "nginx-1", "holder from the annotation");
    is_str(r.address, "", "no address annotation");
    is_int(r.lease_duration, 15, "duration");
    is_int(r.acquire_time, T0 * US, "acquireTime");
    is_int(r.renew_time, (T0 + 10) * US, "renewTime");
    is_int(r.transitions, 2, "leaderTransitions");
    is_str(lock.resource_version, "99", "resourceVersion");

    memset(&w, 0, sizeof(w));
    strcpy(w.holder, "nginx-2");
    strcpy(w.address, "10.0.0.7:80");
    w.lease_duration = 15;
    w.acquire_time = (T0 + 60) * US + 999;
    w.renew_time = (T0 + 60) * US;
    w.transitions = 3;

    s = kle_lock_update_body(&lock, &w, lock.resource_version);
    o = s ? json_tokener_parse(s) : NULL;
    ok(o != NULL, "update body is JSON");
    is_str(jstr(jpath(o, "metadata", "resourceVersion", NULL)), "99",
           "update carries the resourceVersion");
    is_str(jstr(jpath(o, "metadata", "annotations", KLE_ANNOTATION_LEADER,
                      NULL)),
           "{\"holderIdentity\":\"nginx-2\",\"leaseDurationSeconds\":15,"
           "\"acquireTime\":\"2026-01-01T10:01:00Z\","
           "\"renewTime\":\"2026-01-01T10:01:00Z\",\"leaderTransitions\":3}",
           "leader annotation written");
    is_str(jstr(jpath(o, "metadata", "annotations", "team", NULL)), "edge",
           "other annotation kept");
    is_str(jstr(jpath(o, "metadata", "annotations", KLE_ANNOTATION_ADDRESS,
                      NULL)), "10.0.0.7:80", "address annotation set");
    is_str(jstr(jpath(o, "metadata", "labels", "app", NULL)), "web",
           "labels kept");
    is_str(jstr(jpath(o, "data", "key", NULL)), "value", "data kept");
    ok(jpath(o, "spec", NULL) == NULL, "no spec on a ConfigMap");
    json_object_put(o);
    free(s);

    /* read our own update back, then remove the address */
    ok(read_body(&lock, "{\"kind\":\"ConfigMap\",\"metadata\":{\"name\":"
                 "\"nginx-web\",\"resourceVersion\":\"100\","
                 "\"annotations\":{\"leader-election.nginx.org/address\":"
                 "\"10.0.0.7:80\"}}}", &r, err) == 0,
       "ConfigMap without the leader annotation reads");
    ok(r.holder[0] == '\0' && r.lease_duration == 0 && r.acquire_time == 0
       && r.renew_time == 0 && r.transitions == 0,
       "no annotation is an all-zero record");
    is_str(r.address, "", "an address with no holder is not shown");

    w.address[0] = '\0';
    s = kle_lock_update_body(&lock, &w, lock.resource_version);
    o = s ? json_tokener_parse(s) : NULL;
    ok(o != NULL && jpath(o, "metadata", "annotations",
                          KLE_ANNOTATION_ADDRESS, NULL) == NULL,
       "address annotation removed");
    ok(jpath(o, "metadata", "annotations", KLE_ANNOTATION_LEADER, NULL)
       != NULL, "leader annotation present");
    json_object_put(o);
    free(s);

    ok(read_body(&lock, "{\"metadata\":{\"resourceVersion\":\"101\"}}", &r,
                 err) == 0 && r.holder[0] == '\0',
       "ConfigMap without annotations reads");
    s = kle_lock_update_body(&lock, &w, lock.resource_version);
    o = s ? json_tokener_parse(s) : NULL;
    ok(jpath(o, "metadata", "annotations", KLE_ANNOTATION_LEADER, NULL)
       != NULL, "annotations created on update");
    json_object_put(o);
    free(s);

    /* the Python client's record */
    setenv("TZ", "UTC", 1);
    tzset();
    ok(read_body(&lock, "{\"metadata\":{\"resourceVersion\":\"102\","
                 "\"annotations\":{\"control-plane.alpha.kubernetes.io/"
                 "leader\":\"{\\\"holderIdentity\\\": \\\"py-1\\\", "
                 "\\\"leaseDurationSeconds\\\": \\\"15\\\", "
                 "\\\"acquireTime\\\": \\\"2026-08-17 10:00:00.123456\\\", "
                 "\\\"renewTime\\\": \\\"2026-08-17 10:00:00\\\"}\"}}}",
                 &r, err) == 0, "Python-written ConfigMap reads");
    is_str(r.holder, "py-1", "Python holder");
    is_int(r.lease_duration, 15, "Python duration");
    is_int(r.acquire_time, 1786960800LL * US + 123456, "Python acquireTime");

    ok(read_body(&lock, "{\"metadata\":{\"resourceVersion\":\"103\","
                 "\"annotations\":{\"control-plane.alpha.kubernetes.io/"
                 "leader\":\"\"}}}", &r, err) == 0 && r.holder[0] == '\0',
       "empty leader annotation is no record");

    kle_lock_free(&lock);
}


static void
bad_read(kle_lock_t *lock, const char *body, const char *name)
{
    char          err[256];
    void         *before;
    kle_record_t  r;

    before = lock->object;
    err[0] = '\0';
    ok(read_body(lock, body, &r, err) == -1, name);
    ok(lock->object == before
       && strcmp(lock->resource_version, "4711") == 0,
       "remembered object unchanged");
    ok(err[0] != '\0' && strchr(err, '\n') == NULL, "one-line reason");
}


static void
test_malformed(void)
{
    char          err[256], *s, *cut, *big;
    kle_lock_t    lock, cm;
    kle_record_t  r;
    json_object  *o;

    kle_lock_init(&lock, "leases", "default/nginx-web", err, sizeof(err));
    read_body(&lock, lease_body, &r, err);

    cut = strdup(lease_body);
    cut[strlen(cut) / 2] = '\0';
    bad_read(&lock, cut, "truncated JSON rejected");
    read_body(&lock, cut, &r, err);
    is_str(err, "Lease response: a truncated JSON body", "truncated reason");
    free(cut);

    bad_read(&lock, "", "empty body rejected");
    bad_read(&lock, "[]", "array rejected");
    bad_read(&lock, "<html>502</html>", "HTML rejected");
    bad_read(&lock, "{\"metadata\":{\"resourceVersion\":\"1\"}} x",
             "trailing junk rejected");
    bad_read(&lock, "{\"metadata\":{\"resourceVersion\":\"1\"},"
             "\"spec\":\"x\"}", "spec a string rejected");
    read_body(&lock, "{\"metadata\":{\"resourceVersion\":\"1\"},"
              "\"spec\":\"x\"}", &r, err);
    is_str(err, "Lease response: spec is not an object", "spec reason");
    bad_read(&lock, "{\"metadata\":{\"resourceVersion\":\"1\"},\"spec\":"
             "{\"leaseDurationSeconds\":\"15\"}}",
             "string leaseDurationSeconds in a Lease rejected");
    bad_read(&lock, "{\"metadata\":{\"resourceVersion\":\"1\"},\"spec\":"
             "{\"leaseDurationSeconds\":15.5}}", "fractional duration");
    bad_read(&lock, "{\"metadata\":{\"resourceVersion\":\"1\"},\"spec\":"
             "{\"holderIdentity\":7}}", "numeric holder rejected");
    bad_read(&lock, "{\"metadata\":{\"resourceVersion\":\"1\"},\"spec\":"
             "{\"renewTime\":\"2026-01-01 xx\"}}", "bad renewTime rejected");
    bad_read(&lock, "{\"metadata\":{\"resourceVersion\":\"1\"},\"spec\":"
             "{\"leaseTransitions\":[]}}", "array transitions rejected");
    bad_read(&lock, "{\"metadata\":{}}", "no resourceVersion rejected");
    bad_read(&lock, "{\"metadata\":{\"resourceVersion\":12}}",
             "numeric resourceVersion rejected");
    bad_read(&lock, "{\"metadata\":\"x\"}", "metadata a string rejected");
    bad_read(&lock, "{\"spec\":{}}", "no metadata rejected");
    bad_read(&lock, "{\"kind\":\"LeaseList\",\"metadata\":"
             "{\"resourceVersion\":\"1\"},\"items\":[]}", "a list rejected");
    bad_read(&lock, "{\"kind\":\"Lease\",\"metadata\":{\"name\":\"other\","
             "\"resourceVersion\":\"1\"}}", "another Lease rejected");
    bad_read(&lock, "{\"metadata\":{\"resourceVersion\":\"1\","
             "\"annotations\":[]}}", "annotations an array rejected");

    big = malloc(200);
    strcpy(big, "{\"metadata\":{\"resourceVersion\":\"");
    memset(big + 32, '7', 64);     /* 64 digits do not fit in 64 bytes */
    strcpy(big + 32 + 64, "\"}}");
    bad_read(&lock, big, "resourceVersion too long rejected");
    free(big);

    /* the update still comes from the last good read */
    memset(&r, 0, sizeof(r));
    s = kle_lock_update_body(&lock, &r, lock.resource_version);
    o = s ? json_tokener_parse(s) : NULL;
    is_str(jstr(jpath(o, "metadata", "resourceVersion", NULL)), "4711",
           "update after bad reads uses the good object");
    is_str(jstr(jpath(o, "metadata", "labels", "app", NULL)), "web",
           "and its labels");
    json_object_put(o);
    free(s);

    kle_lock_free(&lock);

    kle_lock_init(&cm, "configmaps", "default/nginx-web", err, sizeof(err));
    ok(read_body(&cm, configmap_body, &r, err) == 0, "ConfigMap read");
    ok(read_body(&cm, "{\"metadata\":{\"resourceVersion\":\"5\","
                 "\"annotations\":{\"control-plane.alpha.kubernetes.io/"
                 "leader\":\"{\\\"holderIdentity\\\":1}\"}}}", &r,
                 err) == -1, "bad leader annotation rejected");
    is_str(err, "leader annotation: holderIdentity is not a string",
           "annotation reason");
    ok(read_body(&cm, "{\"metadata\":{\"resourceVersion\":\"5\","
                 "\"annotations\":{\"control-plane.alpha.kubernetes.io/"
                 "leader\":\"{\\\"holderIdentity\\\":\"}}}", &r,
                 err) == -1, "truncated leader annotation rejected");
    ok(read_body(&cm, "{\"metadata\":{\"resourceVersion\":\"5\","
                 "\"annotations\":{\"control-plane.alpha.kubernetes.io/"
                 "leader\":5}}}", &r, err) == -1,
       "numeric leader annotation rejected");
    ok(read_body(&cm, "{\"kind\":\"Lease\",\"metadata\":"
                 "{\"resourceVersion\":\"5\"}}", &r, err) == -1,
       "a Lease is not a ConfigMap");
    is_str(cm.resource_version, "99", "ConfigMap rv unchanged");
    kle_lock_free(&cm);
}


/*
 * Holders this instance cannot store read as someone else in both forms:
 * a Lease (where strlen would cut at a NUL) and a ConfigMap annotation.
 */
static void
test_foreign_holder(void)
{
    char          err[256], *body, *holder;
    kle_lock_t    lease, cm;
    kle_record_t  r;
    size_t        n;

    kle_lock_init(&lease, "leases", "default/nginx-web", err, sizeof(err));
    kle_lock_init(&cm, "configmaps", "default/nginx-web", err, sizeof(err));

    holder = malloc(301);
    memset(holder, 'h', 300);
    holder[300] = '\0';
    n = strlen(holder) + 256;
    body = malloc(n);

    snprintf(body, n, "{\"metadata\":{\"resourceVersion\":\"3\"},"
             "\"spec\":{\"holderIdentity\":\"%s\","
             "\"leaseDurationSeconds\":2}}", holder);
    ok(read_body(&lease, body, &r, err) == 0, "Lease: 300-byte holder read");
    ok(r.foreign != 0 && r.holder[0] != '\0', "Lease: a foreign holder");
    is_int(r.lease_duration, 2, "Lease: its lease still read");
    is_str(lease.resource_version, "3", "Lease: its version remembered");

    snprintf(body, n, "{\"metadata\":{\"resourceVersion\":\"3\","
             "\"annotations\":{\"control-plane.alpha.kubernetes.io/leader\":"
             "\"{\\\"holderIdentity\\\":\\\"%s\\\"}\"}}}", holder);
    ok(read_body(&cm, body, &r, err) == 0, "ConfigMap: 300-byte holder read");
    ok(r.foreign != 0, "ConfigMap: a foreign holder");

    ok(read_body(&lease, "{\"metadata\":{\"resourceVersion\":\"4\"},"
                 "\"spec\":{\"holderIdentity\":\"nginx-0\\u0000x\"}}",
                 &r, err) == 0, "Lease: holder with a NUL read");
    ok(r.foreign != 0 && !kle_record_names(&r, "nginx-0"),
       "Lease: a NUL does not make it nginx-0");
    ok(read_body(&cm, "{\"metadata\":{\"resourceVersion\":\"4\","
                 "\"annotations\":{\"control-plane.alpha.kubernetes.io/"
                 "leader\":\"{\\\"holderIdentity\\\":\\\"nginx-0\\\\u0000x"
                 "\\\"}\"}}}", &r, err) == 0, "ConfigMap: holder with a NUL");
    ok(r.foreign != 0 && !kle_record_names(&r, "nginx-0"),
       "ConfigMap: a NUL does not make it nginx-0");

    ok(read_body(&lease, "{\"metadata\":{\"resourceVersion\":\"5\"},"
                 "\"spec\":{\"renewTime\":\"2026-01-01T00:00:00.000000Z"
                 "\\u0000junk\"}}", &r, err) == -1,
       "Lease: a time with a NUL rejected");
    ok(read_body(&lease, "{\"metadata\":{\"resourceVersion\":\"5\\u0000\"}}",
                 &r, err) == -1, "Lease: a version with a NUL rejected");

    free(body);
    free(holder);
    kle_lock_free(&lease);
    kle_lock_free(&cm);
}


/* The advertised address, written with its holder and read only for it. */
static void
test_address(void)
{
    char          err[256], *s, body[1024];
    kle_lock_t    lock;
    kle_record_t  r, w;
    json_object  *o;
    size_t        i;

    static const char  *good[] = {
        "10.0.0.5:8080", "[fd00::1]:80", "[::1]:65535", "web-0.svc:1",
        "a.b.c.example.com:443", "NGINX-0:8080"
    };
    static const char  *bad[] = {
        "10.0.0.5", "10.0.0.5:", "10.0.0.5:0", "10.0.0.5:65536",
        "10.0.0.5:080", "10.0.0.5:+80", ":80", "fd00::1:80", "[fd00::1]",
        "[fd00::1%eth0]:80", "[10.0.0.5]:80", "1.2.3:80", "256.1.1.1:80",
        "-a:80", "a-:80", "a..b:80", "a.:80", "a b:80", "a/b:80",
        "a@b:80", "http://a:80", "a:80\n", "a:80 ", "[]:80"
    };

    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        ok(kle_address_valid(good[i], strlen(good[i])), good[i]);
    }
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ok(!kle_address_valid(bad[i], strlen(bad[i])), bad[i]);
    }
    ok(!kle_address_valid("a:80\0x", 6), "a NUL inside");
    ok(!kle_address_valid("", 0), "empty");

    kle_lock_init(&lock, "leases", "default/nginx-web", err, sizeof(err));

#define LEASE_WITH(ann, holder)                                               \
    snprintf(body, sizeof(body), "{\"metadata\":{\"resourceVersion\":"      \
             "\"7\",\"annotations\":{%s}},\"spec\":{\"holderIdentity\":"    \
             "\"%s\"}}", ann, holder)

    LEASE_WITH("\"leader-election.nginx.org/address\":\"10.0.0.5:80\","
               "\"leader-election.nginx.org/address-holder\":\"nginx-0\"",
               "nginx-0");
    read_body(&lock, body, &r, err);
    is_str(r.address, "10.0.0.5:80", "address of the holder shown");

    LEASE_WITH("\"leader-election.nginx.org/address\":\"10.0.0.5:80\","
               "\"leader-election.nginx.org/address-holder\":\"nginx-0\"",
               "client-go-elector");
    read_body(&lock, body, &r, err);
    is_str(r.address, "", "address of an earlier holder not shown");

    LEASE_WITH("\"leader-election.nginx.org/address\":\"10.0.0.5:80\"",
               "nginx-0");
    read_body(&lock, body, &r, err);
    is_str(r.address, "", "address without its holder not shown");

    LEASE_WITH("\"leader-election.nginx.org/address\":\"evil:80/x\","
               "\"leader-election.nginx.org/address-holder\":\"nginx-0\"",
               "nginx-0");
    ok(read_body(&lock, body, &r, err) == 0, "a bad address does not fail");
    is_str(r.address, "", "a bad address not shown");

    LEASE_WITH("\"leader-election.nginx.org/address\":\"10.0.0.5:80\","
               "\"leader-election.nginx.org/address-holder\":\"nginx-0\"",
               "");
    read_body(&lock, body, &r, err);
    is_str(r.address, "", "no holder, no address");

    /* written with the holder; a release removes both */
    memset(&w, 0, sizeof(w));
    strcpy(w.holder, "nginx-1");
    strcpy(w.address, "[fd00::2]:8080");
    s = kle_lock_update_body(&lock, &w, "7");
    o = s ? json_tokener_parse(s) : NULL;
    is_str(jstr(jpath(o, "metadata", "annotations", KLE_ANNOTATION_ADDRESS,
                      NULL)), "[fd00::2]:8080", "address written");
    is_str(jstr(jpath(o, "metadata", "annotations",
                      KLE_ANNOTATION_ADDRESS_HOLDER, NULL)), "nginx-1",
           "address-holder written");
    json_object_put(o);
    free(s);

    memset(&w, 0, sizeof(w));
    w.lease_duration = 1;
    s = kle_lock_update_body(&lock, &w, "7");
    o = s ? json_tokener_parse(s) : NULL;
    ok(o != NULL && jpath(o, "metadata", "annotations",
                          KLE_ANNOTATION_ADDRESS, NULL) == NULL
       && jpath(o, "metadata", "annotations", KLE_ANNOTATION_ADDRESS_HOLDER,
                NULL) == NULL, "release: both removed");
    json_object_put(o);
    free(s);

#undef LEASE_WITH

    kle_lock_free(&lock);
}


/* The instance nonce: read for a record with a holder, written with ours. */
static void
test_instance(void)
{
    char          err[256], *s, body[1024];
    kle_lock_t    lock, cm;
    kle_record_t  r, w;
    json_object  *o;
    size_t        i;

    static const char  *nonce = "0123456789abcdef0123456789abcdef";
    static const char  *bad[] = {
        "0123456789abcdef0123456789abcde",      /* 31 */
        "0123456789abcdef0123456789abcdef0",    /* 33 */
        "0123456789ABCDEF0123456789abcdef",     /* upper case */
        "0123456789abcdef0123456789abcdeg",
        " 123456789abcdef0123456789abcdef", ""
    };

    ok(kle_instance_valid(nonce, strlen(nonce)), "a nonce is valid");
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ok(!kle_instance_valid(bad[i], strlen(bad[i])), bad[i]);
    }

    kle_lock_init(&lock, "leases", "default/nginx-web", err, sizeof(err));

#define LEASE_WITH(ann, holder)                                               \
    snprintf(body, sizeof(body), "{\"metadata\":{\"resourceVersion\":"      \
             "\"7\",\"annotations\":{%s}},\"spec\":{\"holderIdentity\":"    \
             "\"%s\"}}", ann, holder)

    LEASE_WITH("\"leader-election.nginx.org/instance\":"
               "\"0123456789abcdef0123456789abcdef\"", "nginx-0");
    ok(read_body(&lock, body, &r, err) == 0, "Lease with a nonce read");
    is_str(r.instance, nonce, "the nonce read");

    LEASE_WITH("\"team\":\"edge\"", "nginx-0");
    read_body(&lock, body, &r, err);
    is_str(r.instance, "", "client-go's record: no nonce");

    LEASE_WITH("\"leader-election.nginx.org/instance\":"
               "\"0123456789abcdef0123456789abcdef\"", "");
    read_body(&lock, body, &r, err);
    is_str(r.instance, "", "no holder: the nonce is nobody's");

    LEASE_WITH("\"leader-election.nginx.org/instance\":"
               "\"0123456789ABCDEF0123456789abcdef\"", "nginx-0");
    ok(read_body(&lock, body, &r, err) == 0, "a bad nonce does not fail");
    is_str(r.instance, "", "a bad nonce reads as none");

    LEASE_WITH("\"leader-election.nginx.org/instance\":7", "nginx-0");
    ok(read_body(&lock, body, &r, err) == 0, "a number does not fail");
    is_str(r.instance, "", "a number reads as none");

    /* ours written beside the other annotations, which stay */
    LEASE_WITH("\"leader-election.nginx.org/instance\":"
               "\"ffffffffffffffffffffffffffffffff\",\"team\":\"edge\"",
               "nginx-0");
    read_body(&lock, body, &r, err);
    memset(&w, 0, sizeof(w));
    strcpy(w.holder, "nginx-0");
    strcpy(w.instance, nonce);
    w.lease_duration = 15;
    s = kle_lock_update_body(&lock, &w, "7");
    o = s ? json_tokener_parse(s) : NULL;
    is_str(jstr(jpath(o, "metadata", "annotations", KLE_ANNOTATION_INSTANCE,
                      NULL)), nonce, "Lease: our nonce written");
    is_str(jstr(jpath(o, "metadata", "annotations", "team", NULL)), "edge",
           "Lease: another annotation kept");
    json_object_put(o);
    free(s);

    /* the release record carries it too */
    w.holder[0] = '\0';
    w.lease_duration = 1;
    s = kle_lock_update_body(&lock, &w, "7");
    o = s ? json_tokener_parse(s) : NULL;
    is_str(jstr(jpath(o, "metadata", "annotations", KLE_ANNOTATION_INSTANCE,
                      NULL)), nonce, "release: our nonce written");
    json_object_put(o);
    free(s);

    /* a writer without a nonce leaves none of an earlier writer's */
    memset(&w, 0, sizeof(w));
    strcpy(w.holder, "nginx-0");
    w.lease_duration = 15;
    s = kle_lock_update_body(&lock, &w, "7");
    o = s ? json_tokener_parse(s) : NULL;
    ok(o != NULL && jpath(o, "metadata", "annotations",
                          KLE_ANNOTATION_INSTANCE, NULL) == NULL,
       "no nonce of ours: an earlier one removed");
    json_object_put(o);
    free(s);

    /* created with it */
    strcpy(w.instance, nonce);
    s = kle_lock_create_body(&lock, &w);
    o = s ? json_tokener_parse(s) : NULL;
    is_str(jstr(jpath(o, "metadata", "annotations", KLE_ANNOTATION_INSTANCE,
                      NULL)), nonce, "create: our nonce written");
    json_object_put(o);
    free(s);

#undef LEASE_WITH

    kle_lock_free(&lock);

    /* a ConfigMap carries it as an annotation of its own */
    kle_lock_init(&cm, "configmaps", "default/nginx-web", err, sizeof(err));
    ok(read_body(&cm, configmap_body, &r, err) == 0, "ConfigMap read");
    is_str(r.instance, "", "ConfigMap of client-go: no nonce");
    strcpy(w.holder, "nginx-1");
    s = kle_lock_update_body(&cm, &w, "99");
    o = s ? json_tokener_parse(s) : NULL;
    is_str(jstr(jpath(o, "metadata", "annotations", KLE_ANNOTATION_INSTANCE,
                      NULL)), nonce, "ConfigMap: our nonce written");
    is_str(jstr(jpath(o, "metadata", "annotations", "team", NULL)), "edge",
           "ConfigMap: another annotation kept");
    free(s);
    s = o ? strdup(json_object_to_json_string(o)) : NULL;
    json_object_put(o);
    ok(s != NULL && read_body(&cm, s, &r, err) == 0
       && strcmp(r.instance, nonce) == 0 && strcmp(r.holder, "nginx-1") == 0,
       "ConfigMap: read back");
    free(s);
    kle_lock_free(&cm);
}


/* A watch line given as a literal. */
static int
wev(kle_lock_t *lock, const char *line, kle_watch_event_t *ev)
{
    int    rc;
    char   err[256];
    char  *p = exact(line);

    rc = kle_lock_watch_event(lock, p, strlen(line), ev, err, sizeof(err));
    free(p);
    return rc;
}


/* Watch lines, each parsed once into what the elector needs. */
static void
test_watch_event(void)
{
    char               err[256], *line, *p;
    kle_lock_t         lock;
    kle_watch_event_t  ev;
    size_t             n;

    kle_lock_init(&lock, "leases", "default/nginx-web", err, sizeof(err));

    n = strlen(lease_body) + 64;
    line = malloc(n);
    snprintf(line, n, "{\"type\":\"MODIFIED\",\"object\":%s}", lease_body);
    p = exact(line);
    ok(kle_lock_watch_event(&lock, p, strlen(line), &ev, err, sizeof(err))
       == 0, "MODIFIED parsed");
    free(p);
    is_int(ev.type, KLE_WATCH_CHANGED, "MODIFIED is a change");
    is_str(ev.rec.holder, "nginx-0", "MODIFIED: its record");
    is_str(ev.rv, "4711", "MODIFIED: its version");
    ok(ev.object != NULL, "MODIFIED: its object, to keep");
    ok(lock.object == NULL, "parsing keeps nothing");
    kle_lock_keep(&lock, ev.object, ev.rv);
    kle_lock_watch_event_free(&ev);
    is_str(lock.resource_version, "4711", "kept: its version");
    ok(lock.object != NULL, "kept: the object outlives the event");

    snprintf(line, n, "{\"type\":\"ADDED\",\"object\":%s}", lease_body);
    ok(kle_lock_watch_event(&lock, line, strlen(line), &ev, err, sizeof(err))
       == 0 && ev.type == KLE_WATCH_CHANGED, "ADDED is a change");
    kle_lock_watch_event_free(&ev);

    ok(wev(&lock, "{\"type\":\"DELETED\",\"object\":{\"kind\":\"Lease\","
           "\"metadata\":{\"name\":\"nginx-web\",\"resourceVersion\":"
           "\"4800\"}}}", &ev) == 0, "DELETED parsed");
    is_int(ev.type, KLE_WATCH_DELETED, "DELETED");
    is_str(ev.rv, "4800", "DELETED: the deletion's version");
    kle_lock_watch_event_free(&ev);

    strcpy(line, "{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"Lease\","
           "\"metadata\":{\"resourceVersion\":\"4900\"}}}");
    ok(kle_lock_watch_event(&lock, line, strlen(line), &ev, err, sizeof(err))
       == 0 && ev.type == KLE_WATCH_BOOKMARK, "BOOKMARK parsed");
    is_str(ev.rv, "4900", "BOOKMARK: where to resume");
    ok(ev.object == NULL, "BOOKMARK: nothing to keep");
    kle_lock_watch_event_free(&ev);

    strcpy(line, "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\","
           "\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\","
           "\"message\":\"too old resource version: 1 (4711)\","
           "\"reason\":\"Expired\",\"code\":410}}");
    ok(kle_lock_watch_event(&lock, line, strlen(line), &ev, err, sizeof(err))
       == 0 && ev.type == KLE_WATCH_ERROR, "ERROR parsed");
    is_int(ev.code, 410, "ERROR: 410");
    is_str(ev.message, "too old resource version: 1 (4711)",
           "ERROR: its message");
    kle_lock_watch_event_free(&ev);

    ok(wev(&lock, "{\"type\":\"SURPRISE\",\"object\":{}}", &ev) == -1,
       "unknown type refused");
    ok(wev(&lock, "{\"type\":1,\"object\":{}}", &ev) == -1,
       "numeric type refused");
    ok(wev(&lock, "{\"type\":\"MODIFIED\"}", &ev) == -1, "no object refused");
    ok(wev(&lock, "{\"type\":\"MODIFIED\",\"object\":{\"metadata\":{}}}",
           &ev) == -1, "MODIFIED without a version refused");
    ok(wev(&lock, "{\"type\":\"BOOKMARK\",\"object\":{}}", &ev) == -1,
       "BOOKMARK without a version refused");
    ok(wev(&lock, "[1,2]", &ev) == -1, "an array refused");
    ok(wev(&lock, "{\"type\":\"MOD", &ev) == -1, "a cut line refused");
    is_str(lock.resource_version, "4711", "refused lines keep nothing");

    /* bounded before parsing: valid, but larger than a Lease can be */
    free(line);
    n = KLE_LEASE_BODY_MAX + 4096;
    line = malloc(n + 1);
    memset(line, 'x', n);
    line[n] = '\0';
    p = "{\"type\":\"MODIFIED\",\"object\":{\"metadata\":{"
        "\"resourceVersion\":\"1\"},\"pad\":\"";
    memcpy(line, p, strlen(p));
    memcpy(line + n - 4, "\"}}\n", 4);
    ok(kle_lock_watch_event(&lock, line, n - 1, &ev, err, sizeof(err))
       == -1, "an oversized event refused unparsed");
    p = "{\"metadata\":{\"resourceVersion\":\"1\"},\"pad\":\"";
    memcpy(line + 1024, p, strlen(p));
    memcpy(line + n - 4, "\"}  ", 4);
    ok(kle_lock_parse_body(&lock, line + 1024, n - 1024, err, sizeof(err))
       == NULL, "an oversized Lease refused unparsed");
    ok(kle_lock_parse_body(&lock, line + 1024, KLE_LEASE_BODY_MAX - 8192,
                           err, sizeof(err)) == NULL, "(a cut one too)");
    line[0] = '[';
    ok(kle_lock_parse_body(&lock, line, 100, err, sizeof(err)) == NULL,
       "a body that is no object refused unparsed");
    is_str(err, "Lease response: not a JSON object", "shape reason");
    free(line);

    kle_lock_free(&lock);
}


static void
test_classify(void)
{
    char              *p;
    kle_api_result_t   res;

    classify(409, conflict_body, NULL, &res);
    is_int(res.status, KLE_API_CONFLICT, "stale update is a conflict");
    is_int(res.code, 409, "code");
    is_str(res.reason, "Conflict", "Conflict reason");
    is_str(res.message, "Operation cannot be fulfilled on "
           "leases.coordination.k8s.io \"nginx-web\": the object has been "
           "modified; please apply your changes to the latest version and "
           "try again", "Conflict message");
    is_int(res.retry_after, 0, "no retry_after");

    classify(409, exists_body, NULL, &res);
    is_int(res.status, KLE_API_ALREADY_EXISTS, "AlreadyExists");
    is_str(res.reason, "AlreadyExists", "AlreadyExists reason");
    is_str(res.message, "leases.coordination.k8s.io \"nginx-web\" already "
           "exists", "AlreadyExists message");

    classify(409, "", NULL, &res);
    is_int(res.status, KLE_API_CONFLICT, "409 without a body");

    classify(404, "{\"kind\":\"Status\",\"apiVersion\":\"v1\","
             "\"metadata\":{},\"status\":\"Failure\",\"message\":"
             "\"leases.coordination.k8s.io \\\"x\\\" not found\","
             "\"reason\":\"NotFound\",\"details\":{\"name\":\"x\"},"
             "\"code\":404}", NULL, &res);
    is_int(res.status, KLE_API_NOT_FOUND, "404");
    is_str(res.reason, "NotFound", "NotFound reason");

    classify(401, "{\"kind\":\"Status\",\"reason\":\"Unauthorized\","
             "\"message\":\"Unauthorized\",\"code\":401}", NULL, &res);
    is_int(res.status, KLE_API_UNAUTHORIZED, "401");

    classify(403, "{\"kind\":\"Status\",\"apiVersion\":\"v1\","
             "\"metadata\":{},\"status\":\"Failure\",\"message\":"
             "\"leases.coordination.k8s.io \\\"x\\\" is forbidden: User "
             "\\\"system:serviceaccount:default:nginx\\\" cannot update "
             "resource \\\"leases\\\"\",\"reason\":\"Forbidden\","
             "\"code\":403}", NULL, &res);
    is_int(res.status, KLE_API_FORBIDDEN, "403");
    ok(strncmp(res.message, "leases.coordination.k8s.io \"x\" is forbidden",
               43) == 0, "Forbidden message");

    classify(429, "{\"kind\":\"Status\",\"reason\":\"TooManyRequests\","
             "\"message\":\"slow down\",\"details\":"
             "{\"retryAfterSeconds\":5},\"code\":429}", "3", &res);
    is_int(res.status, KLE_API_TOO_MANY_REQUESTS, "429");
    is_int(res.retry_after, 3, "Retry-After header wins");

    classify(429, "{\"kind\":\"Status\",\"reason\":\"TooManyRequests\","
             "\"details\":{\"retryAfterSeconds\":5},\"code\":429}", NULL,
             &res);
    is_int(res.retry_after, 5, "retryAfterSeconds from the Status");
    is_str(res.message, "HTTP 429 with a Status without a message",
           "message described when the Status has none");

    classify(429, "", " 12 ", &res);
    is_int(res.retry_after, 12, "Retry-After with spaces");
    classify(429, "", "Wed, 21 Oct 2015 07:28:00 GMT", &res);
    is_int(res.retry_after, 1, "HTTP-date Retry-After: default 1");
    classify(429, "", "0", &res);
    is_int(res.retry_after, 1, "Retry-After 0: at least 1");
    classify(429, "", "99999999999999999999", &res);
    is_int(res.retry_after, 1, "overflowing Retry-After ignored");
    classify(429, "too many", NULL, &res);
    is_int(res.retry_after, 1, "429 with nothing: 1");

    classify(502, "<html><body><h1>502 Bad Gateway</h1></body></html>",
             NULL, &res);
    is_int(res.status, KLE_API_SERVER_ERROR, "HTML 502");
    is_str(res.message, "HTTP 502 with a non-JSON body", "HTML described");
    is_str(res.reason, "", "no reason");

    classify(500, "", NULL, &res);
    is_int(res.status, KLE_API_SERVER_ERROR, "empty 500");
    is_str(res.message, "HTTP 500 with an empty body", "empty described");
    kle_api_classify(500, NULL, 0, NULL, &res);
    is_int(res.status, KLE_API_SERVER_ERROR, "NULL body 500");

    classify(503, "{\"kind\":\"Status\",\"details\":"
             "{\"retryAfterSeconds\":2},\"code\":503}", NULL, &res);
    is_int(res.retry_after, 2, "503 keeps a suggested delay");

    classify(0, "", NULL, &res);
    is_int(res.status, KLE_API_TRANSPORT, "code 0");
    ok(res.message[0] != '\0', "transport described");

    classify(200, lease_body, NULL, &res);
    is_int(res.status, KLE_API_OK, "200 with an object");
    classify(201, "{}", NULL, &res);
    is_int(res.status, KLE_API_OK, "201 with an object");
    classify(200, "[]", NULL, &res);
    is_int(res.status, KLE_API_BAD_RESPONSE, "200 with an array");
    is_str(res.message, "HTTP 200 with a JSON body that is not an object",
           "array described");
    classify(200, "{\"kind\":", NULL, &res);
    is_int(res.status, KLE_API_BAD_RESPONSE, "200 truncated");
    is_str(res.message, "HTTP 200 with a truncated JSON body",
           "truncation described");
    classify(200, "", NULL, &res);
    is_int(res.status, KLE_API_BAD_RESPONSE, "200 empty");
    classify(200, "ok", NULL, &res);
    is_int(res.status, KLE_API_BAD_RESPONSE, "200 text");

    classify(422, "{\"kind\":\"Status\",\"reason\":\"Invalid\","
             "\"message\":\"spec.holderIdentity: Invalid value\","
             "\"code\":422}", NULL, &res);
    is_int(res.status, KLE_API_REJECTED, "422");
    is_str(res.reason, "Invalid", "Invalid reason");
    classify(410, "{\"kind\":\"Status\",\"reason\":\"Expired\","
             "\"code\":410}", NULL, &res);
    is_int(res.status, KLE_API_REJECTED, "410 Gone");
    is_str(res.reason, "Expired", "Expired reason for the watcher");

    classify(404, "{\"kind\":\"Lease\"}", NULL, &res);
    is_str(res.reason, "", "a non-Status object gives no reason");
    is_str(res.message, "HTTP 404 with a JSON body that is not a Status",
           "non-Status described");

    /* len bounds the read: the bytes after it are not looked at */
    p = malloc(2);
    memcpy(p, "{}", 2);
    kle_api_classify(200, p, 2, NULL, &res);
    is_int(res.status, KLE_API_OK, "unterminated body, exact length");
    kle_api_classify(200, "{}garbage", 2, NULL, &res);
    is_int(res.status, KLE_API_OK, "bytes past len ignored");
    kle_api_classify(200, p, 1, NULL, &res);
    is_int(res.status, KLE_API_BAD_RESPONSE, "short len is truncated");
    free(p);

    is_str(kle_api_status_name(KLE_API_OK), "ok", "name ok");
    is_str(kle_api_status_name(KLE_API_NOT_FOUND), "not found", "name 404");
    is_str(kle_api_status_name(KLE_API_CONFLICT), "conflict", "name 409");
    is_str(kle_api_status_name(KLE_API_ALREADY_EXISTS), "already exists",
           "name exists");
    is_str(kle_api_status_name(KLE_API_UNAUTHORIZED), "unauthorized",
           "name 401");
    is_str(kle_api_status_name(KLE_API_FORBIDDEN), "forbidden", "name 403");
    is_str(kle_api_status_name(KLE_API_TOO_MANY_REQUESTS),
           "too many requests", "name 429");
    is_str(kle_api_status_name(KLE_API_SERVER_ERROR), "server error",
           "name 5xx");
    is_str(kle_api_status_name(KLE_API_BAD_RESPONSE), "bad response",
           "name bad");
    is_str(kle_api_status_name(KLE_API_TRANSPORT), "transport error",
           "name transport");
    is_str(kle_api_status_name(KLE_API_REJECTED), "rejected",
           "name rejected");
}


int
main(void)
{
    test_init();
    test_paths();
    test_lease();
    test_create();
    test_configmap();
    test_malformed();
    test_foreign_holder();
    test_address();
    test_instance();
    test_watch_event();
    test_classify();

    return done_testing();
}
