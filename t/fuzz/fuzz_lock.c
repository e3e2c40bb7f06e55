/*
 * Lease and ConfigMap bodies (kle_lock_read, kle_lock_create_body,
 * kle_lock_update_body) and watch events (kle_lock_watch_event): bit 0 of
 * the first byte picks the kind, bit 1 whether the rest is the body of a
 * GET or one line of a watch.  What reads is written back as the update
 * body and as a create body, and both read again: the record survives (to
 * the second for ConfigMaps, whose annotation holds whole seconds), and so
 * does the resourceVersion the update is conditioned on.
 */

#include <json-c/json.h>

#include "fuzz.h"
#include "kle_lock.h"


static void
same_record(const kle_lock_t *lock, kle_record_t a, kle_record_t b,
    const char *body)
{
    if (lock->kind == KLE_LOCK_CONFIGMAPS) {
        a.acquire_time = fuzz_floor_sec(a.acquire_time);
        a.renew_time = fuzz_floor_sec(a.renew_time);
    }

    if (a.foreign) {
        /* written as its stand-in, which reads as an ordinary holder */
        FUZZ_ASSERT(strcmp(a.holder, b.holder) == 0);
        b.foreign = a.foreign;
    }

    if (!kle_record_equal(&a, &b) || a.foreign != b.foreign) {
        fprintf(stderr, "written: %s\n", body);
        FUZZ_ASSERT(0);
    }
}


/* A create body has no resourceVersion: add one as the server would. */
static char *
as_created(const char *body)
{
    char         *s;
    json_object  *o, *meta;

    o = json_tokener_parse(body);
    FUZZ_ASSERT(o != NULL);
    FUZZ_ASSERT(json_object_object_get_ex(o, "metadata", &meta));
    json_object_object_add(meta, "resourceVersion",
                           json_object_new_string("1"));
    s = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
    return s;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char               err[512], rv[64], *body, *upd, *crt, *created;
    kle_lock_t         lock, again;
    kle_record_t       rec, rec2;
    kle_watch_event_t  ev;

    if (size < 1) {
        return 0;
    }

    if (kle_lock_init(&lock, (data[0] & 1) ? "configmaps" : "leases",
                      "default/web", err, sizeof(err)) != 0)
    {
        FUZZ_ASSERT(0);
    }

    /* exactly the body's bytes: a read past them is ASan's to see */
    body = malloc(size - 1 ? size - 1 : 1);
    memcpy(body, data + 1, size - 1);

    if (data[0] & 2) {
        /* a watch line: only a change carries an object to write on */
        if (kle_lock_watch_event(&lock, body, size - 1, &ev, err,
                                 sizeof(err)) != 0)
        {
            FUZZ_ASSERT(err[0] != '\0' && strchr(err, '\n') == NULL);
            goto done;
        }

        FUZZ_ASSERT(ev.type >= KLE_WATCH_CHANGED
                    && ev.type <= KLE_WATCH_ERROR);
        FUZZ_ASSERT(memchr(ev.rv, '\0', sizeof(ev.rv)) != NULL);
        FUZZ_ASSERT(memchr(ev.message, '\0', sizeof(ev.message)) != NULL);
        FUZZ_ASSERT((ev.type == KLE_WATCH_CHANGED) == (ev.object != NULL));

        if (ev.type != KLE_WATCH_CHANGED) {
            kle_lock_watch_event_free(&ev);
            goto done;
        }

        FUZZ_ASSERT(ev.rv[0] != '\0');
        kle_lock_keep(&lock, ev.object, ev.rv);
        rec = ev.rec;
        kle_lock_watch_event_free(&ev);

    } else if (kle_lock_read(&lock, body, size - 1, &rec, err, sizeof(err))
               != 0)
    {
        FUZZ_ASSERT(err[0] != '\0' && strchr(err, '\n') == NULL);
        FUZZ_ASSERT(lock.object == NULL);
        goto done;
    }

    FUZZ_ASSERT(lock.resource_version[0] != '\0');
    FUZZ_ASSERT(rec.holder[0] != '\0' || !rec.foreign);
    snprintf(rv, sizeof(rv), "%s", lock.resource_version);

    /* the update: the object read, our record, its resourceVersion */
    upd = kle_lock_update_body(&lock, &rec, rv);
    FUZZ_ASSERT(upd != NULL);

    kle_lock_init(&again, (data[0] & 1) ? "configmaps" : "leases",
                  "default/web", err, sizeof(err));
    if (kle_lock_read(&again, upd, strlen(upd), &rec2, err, sizeof(err))
        != 0)
    {
        fprintf(stderr, "update body: %s\nread back: %s\n", upd, err);
        FUZZ_ASSERT(0);
    }
    FUZZ_ASSERT(strcmp(again.resource_version, rv) == 0);
    same_record(&lock, rec, rec2, upd);
    kle_lock_free(&again);

    /* nothing to condition on: no body */
    FUZZ_ASSERT(kle_lock_update_body(&lock, &rec, "") == NULL);

    /* the create body, as the server would store it */
    crt = kle_lock_create_body(&lock, &rec);
    FUZZ_ASSERT(crt != NULL);
    created = as_created(crt);
    kle_lock_init(&again, (data[0] & 1) ? "configmaps" : "leases",
                  "default/web", err, sizeof(err));
    if (kle_lock_read(&again, created, strlen(created), &rec2, err,
                      sizeof(err)) != 0)
    {
        fprintf(stderr, "create body: %s\nread back: %s\n", crt, err);
        FUZZ_ASSERT(0);
    }
    same_record(&lock, rec, rec2, crt);
    kle_lock_free(&again);

    free(created);
    free(crt);
    free(upd);

done:
    kle_lock_free(&lock);
    free(body);
    return 0;
}
