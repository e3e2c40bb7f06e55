/*
 * The ConfigMap leader annotation: what parses is written in client-go's
 * form and parses again to the same record (times to the whole second, the
 * annotation's precision).
 */

#include "fuzz.h"
#include "kle_record.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char          err[256], *out;
    kle_record_t  a, b;

    memset(&a, 0, sizeof(a));
    err[0] = '\0';

    if (kle_record_from_annotation((const char *) data, size, &a, err,
                                   sizeof(err)) != 0)
    {
        FUZZ_ASSERT(err[0] != '\0');
        FUZZ_ASSERT(memchr(err, '\0', sizeof(err)) != NULL);
        return 0;
    }

    out = kle_record_to_annotation(&a);
    FUZZ_ASSERT(out != NULL);

    memset(&b, 0, sizeof(b));
    if (kle_record_from_annotation(out, strlen(out), &b, err,
                                   sizeof(err)) != 0)
    {
        fprintf(stderr, "written: %s\nread back: %s\n", out, err);
        FUZZ_ASSERT(0);
    }

    a.acquire_time = fuzz_floor_sec(a.acquire_time);
    a.renew_time = fuzz_floor_sec(a.renew_time);
    /* the address is not in the annotation */
    a.address[0] = '\0';
    b.address[0] = '\0';

    /* a holder we cannot store is written as its stand-in: never ours */
    if (a.foreign) {
        FUZZ_ASSERT(a.holder[0] != '\0');
        FUZZ_ASSERT(strcmp(a.holder, b.holder) == 0);
        b.foreign = a.foreign;
    }

    if (!kle_record_equal(&a, &b)) {
        fprintf(stderr, "written: %s\n", out);
        FUZZ_ASSERT(kle_record_equal(&a, &b));
    }

    free(out);
    return 0;
}
