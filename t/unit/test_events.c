/*
 * kle_events_body(): the core/v1 Event as client-go's elector writes it,
 * for a Lease and a ConfigMap lock, with and without a kept object, and a
 * lock name too long to take the time suffix as it is.
 */

#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>

#include "kle_events.h"
#include "kle_test.h"

/* 2026-01-02T03:04:05Z plus 123456 us */
#define WHEN  1767323045123456LL


static const char *
field(json_object *o, const char *path)
{
    char          buf[256], *key, *save;
    json_object  *v = o;

    snprintf(buf, sizeof(buf), "%s", path);

    for (key = strtok_r(buf, ".", &save); key != NULL;
         key = strtok_r(NULL, ".", &save))
    {
        if (!json_object_object_get_ex(v, key, &v)) {
            return NULL;
        }
    }

    return json_object_get_string(v);
}


static json_object *
body(const kle_lock_t *lock, const char *action)
{
    char         *s;
    json_object  *o;

    s = kle_events_body(lock, "pod-0", action, "web", WHEN);
    o = s ? json_tokener_parse(s) : NULL;
    free(s);

    return o;
}


int
main(void)
{
    kle_lock_t    lock;
    json_object  *o, *obj;
    char          err[256], name[254], where[300];
    const char   *n;

    /* a Lease, with the object the elector keeps */

    if (kle_lock_init(&lock, "leases", "ns1/web-lock", err, sizeof(err))
        != 0)
    {
        printf("Bail out! %s\n", err);
        return 1;
    }

    obj = json_tokener_parse("{\"kind\":\"Lease\",\"metadata\":{\"name\":"
                             "\"web-lock\",\"namespace\":\"ns1\",\"uid\":"
                             "\"0b7c-11\",\"resourceVersion\":\"42\"}}");
    kle_lock_keep(&lock, obj, "42");
    json_object_put(obj);

    o = body(&lock, KLE_EVENT_BECAME);
    ok(o != NULL, "a JSON object");
    is_str(field(o, "apiVersion"), "v1", "apiVersion");
    is_str(field(o, "kind"), "Event", "kind");
    is_str(field(o, "metadata.namespace"), "ns1", "in the lock's namespace");
    is_str(field(o, "metadata.name"), "web-lock.1886caf223f1fc00",
           "named as client-go does: the object's name, the time in hex ns");
    is_str(field(o, "involvedObject.kind"), "Lease", "involvedObject.kind");
    is_str(field(o, "involvedObject.apiVersion"), "coordination.k8s.io/v1",
           "involvedObject.apiVersion");
    is_str(field(o, "involvedObject.namespace"), "ns1",
           "involvedObject.namespace");
    is_str(field(o, "involvedObject.name"), "web-lock",
           "involvedObject.name");
    is_str(field(o, "involvedObject.uid"), "0b7c-11", "involvedObject.uid");
    is_str(field(o, "involvedObject.resourceVersion"), "42",
           "involvedObject.resourceVersion");
    is_str(field(o, "reason"), "LeaderElection", "reason");
    is_str(field(o, "message"), "pod-0 became leader", "message");
    is_str(field(o, "type"), "Normal", "type");
    is_str(field(o, "count"), "1", "count");
    is_str(field(o, "source.component"), "web", "source.component");
    is_str(field(o, "firstTimestamp"), "2026-01-02T03:04:05Z",
           "firstTimestamp: RFC 3339, seconds");
    is_str(field(o, "lastTimestamp"), "2026-01-02T03:04:05Z",
           "lastTimestamp");
    json_object_put(o);

    o = body(&lock, KLE_EVENT_STOPPED);
    is_str(field(o, "message"), "pod-0 stopped leading", "stopped leading");
    json_object_put(o);
    kle_lock_free(&lock);

    /* a ConfigMap never read: no uid, no resourceVersion */

    kle_lock_init(&lock, "configmaps", "kube-system/cm", err, sizeof(err));
    o = body(&lock, KLE_EVENT_BECAME);
    is_str(field(o, "involvedObject.kind"), "ConfigMap", "ConfigMap: kind");
    is_str(field(o, "involvedObject.apiVersion"), "v1",
           "ConfigMap: apiVersion");
    ok(field(o, "involvedObject.uid") == NULL, "no object: no uid");
    ok(field(o, "involvedObject.resourceVersion") == NULL,
       "no object: no resourceVersion");
    json_object_put(o);
    kle_lock_free(&lock);

    /* a 253-character name: cut to leave room for the suffix */

    memset(name, 'a', 253);
    name[253] = '\0';
    name[235] = '-';                /* the last character kept */
    snprintf(where, sizeof(where), "default/%s", name);
    kle_lock_init(&lock, "leases", where, err, sizeof(err));
    o = body(&lock, KLE_EVENT_BECAME);
    n = field(o, "metadata.name");
    ok(n != NULL && strlen(n) <= 253, "a long name stays a DNS subdomain");
    ok(n != NULL && strstr(n, "-.") == NULL, "no \"-.\" where it was cut");
    is_str(field(o, "involvedObject.name"), name,
           "involvedObject.name: the whole name");
    json_object_put(o);
    kle_lock_free(&lock);

    return done_testing();
}
