/*
 * kle_base64_decode: what decodes, encoded again (standard alphabet,
 * padded), decodes to the same bytes; what does not decode has a byte
 * outside the alphabet, whitespace and '=', or a bad length or padding.
 */

#include <errno.h>

#include "fuzz.h"
#include "kle_base64.h"


static char *
encode(const unsigned char *in, size_t n)
{
    static const char  a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                             "abcdefghijklmnopqrstuvwxyz0123456789+/";
    char               *out, *p;
    size_t              i;
    uint32_t            v;

    out = p = malloc(n / 3 * 4 + 5);

    for (i = 0; i + 2 < n; i += 3) {
        v = (uint32_t) in[i] << 16 | (uint32_t) in[i + 1] << 8 | in[i + 2];
        *p++ = a[v >> 18 & 63];
        *p++ = a[v >> 12 & 63];
        *p++ = a[v >> 6 & 63];
        *p++ = a[v & 63];
    }

    if (n - i == 1) {
        v = (uint32_t) in[i] << 16;
        *p++ = a[v >> 18 & 63];
        *p++ = a[v >> 12 & 63];
        *p++ = '=';
        *p++ = '=';
    } else if (n - i == 2) {
        v = (uint32_t) in[i] << 16 | (uint32_t) in[i + 1] << 8;
        *p++ = a[v >> 18 & 63];
        *p++ = a[v >> 12 & 63];
        *p++ = a[v >> 6 & 63];
        *p++ = '=';
    }

    *p = '\0';
    return out;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char           *in, *again;
    size_t          n, m, i, sextets;
    unsigned char  *out, *back;

    in = malloc(size ? size : 1);
    memcpy(in, data, size);

    out = kle_base64_decode(in, size, &n);

    sextets = 0;
    for (i = 0; i < size; i++) {
        if (strchr(" \t\r\n=", data[i]) == NULL || data[i] == '\0') {
            sextets++;
        }
    }

    if (out == NULL) {
        FUZZ_ASSERT(errno == EINVAL);
        free(in);
        return 0;
    }

    /* 4 sextets are 3 bytes; a last 2 or 3 are 1 or 2 */
    FUZZ_ASSERT(n == sextets / 4 * 3 + (sextets % 4 ? sextets % 4 - 1 : 0));
    FUZZ_ASSERT(out[n] == '\0');

    again = encode(out, n);
    back = kle_base64_decode(again, strlen(again), &m);
    FUZZ_ASSERT(back != NULL && m == n && memcmp(back, out, n) == 0);

    free(back);
    free(again);
    free(out);
    free(in);
    return 0;
}
