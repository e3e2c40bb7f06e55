/*
 * kle_lock_init and the request paths: kind selector byte, then
 * "NAMESPACE/NAME", a newline, and a resourceVersion.  A lock that is
 * accepted yields paths made of URL-safe bytes only (the resourceVersion
 * escaped), each exactly one query, and a too-small buffer is an error,
 * never an overrun.
 */

#include <ctype.h>

#include "fuzz.h"
#include "kle_lock.h"


static void
url_safe(const char *p, int query)
{
    int  q = 0;

    for ( /* void */ ; *p; p++) {
        FUZZ_ASSERT(isalnum((unsigned char) *p)
                    || strchr("-._~/%=&?", *p) != NULL);
        if (*p == '?') {
            q++;
        }
    }

    FUZZ_ASSERT(q == query);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char  *kinds[] = { "leases", "configmaps", "pods", "" };
    char                err[512], buf[2048], tiny[16], *where, *rv;
    kle_lock_t          lock;

    if (size < 1) {
        return 0;
    }

    fuzz_split(data + 1, size - 1, '\n', &where, &rv);

    if (kle_lock_init(&lock, kinds[data[0] & 3], where, err, sizeof(err))
        != 0)
    {
        FUZZ_ASSERT(err[0] != '\0');
        goto done;
    }

    FUZZ_ASSERT((data[0] & 3) < 2);

    FUZZ_ASSERT(kle_lock_object_path(&lock, buf, sizeof(buf)) == 0);
    url_safe(buf, 0);
    FUZZ_ASSERT(strstr(buf, lock.name) != NULL);

    FUZZ_ASSERT(kle_lock_collection_path(&lock, buf, sizeof(buf)) == 0);
    url_safe(buf, 0);

    if (kle_lock_watch_path(&lock, rv, buf, sizeof(buf)) == 0) {
        url_safe(buf, 1);
    } else {
        FUZZ_ASSERT(strlen(rv) * 3 + 600 > sizeof(buf));
    }

    FUZZ_ASSERT(kle_lock_object_path(&lock, tiny, sizeof(tiny)) == -1);
    FUZZ_ASSERT(kle_lock_watch_path(&lock, rv, tiny, sizeof(tiny)) == -1);

    kle_lock_free(&lock);

done:
    free(where);
    free(rv);
    return 0;
}
