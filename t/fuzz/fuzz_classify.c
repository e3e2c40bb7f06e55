/*
 * kle_api_classify: an HTTP code (two bytes), a Retry-After header value
 * (up to the first newline, absent if the input has none) and a body.
 * Checked: the class matches the code, Retry-After only where it applies
 * and never negative, messages terminated.
 */

#include "fuzz.h"
#include "kle_lock.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                code;
    char              *retry, *body;
    const uint8_t     *nl;
    kle_api_result_t   res;

    if (size < 2) {
        return 0;
    }

    code = (data[0] << 8 | data[1]) % 1000;
    data += 2;
    size -= 2;

    nl = memchr(data, '\n', size);
    retry = nl ? fuzz_cstr(data, (size_t) (nl - data)) : NULL;
    if (nl) {
        size -= (size_t) (nl - data) + 1;
        data = nl + 1;
    }

    /* exactly size bytes: a read past the body is ASan's to see */
    body = malloc(size ? size : 1);
    memcpy(body, data, size);

    memset(&res, 0xa5, sizeof(res));
    kle_api_classify(code, body, size, retry, &res);

    FUZZ_ASSERT(res.code == code);
    FUZZ_ASSERT(res.retry_after >= 0);
    FUZZ_ASSERT(memchr(res.reason, '\0', sizeof(res.reason)) != NULL);
    FUZZ_ASSERT(memchr(res.message, '\0', sizeof(res.message)) != NULL);
    FUZZ_ASSERT(strcmp(kle_api_status_name(res.status), "unknown") != 0);

    if (res.status != KLE_API_TOO_MANY_REQUESTS
        && res.status != KLE_API_SERVER_ERROR)
    {
        FUZZ_ASSERT(res.retry_after == 0);
    }

    if (code == 429) {
        FUZZ_ASSERT(res.status == KLE_API_TOO_MANY_REQUESTS);
        FUZZ_ASSERT(res.retry_after >= 1);
    } else if (code == 404) {
        FUZZ_ASSERT(res.status == KLE_API_NOT_FOUND);
    } else if (code == 401) {
        FUZZ_ASSERT(res.status == KLE_API_UNAUTHORIZED);
    } else if (code == 403) {
        FUZZ_ASSERT(res.status == KLE_API_FORBIDDEN);
    } else if (code >= 500 && code < 600) {
        FUZZ_ASSERT(res.status == KLE_API_SERVER_ERROR);
    } else if (code >= 200 && code < 300) {
        FUZZ_ASSERT(res.status == KLE_API_OK
                    || res.status == KLE_API_BAD_RESPONSE);
    } else if (code == 0) {
        FUZZ_ASSERT(res.status == KLE_API_TRANSPORT);
    }

    free(retry);
    free(body);
    return 0;
}
