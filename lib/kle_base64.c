/*
 * Base64 decoding for kubeconfig *-data values.
 */

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "kle_base64.h"


unsigned char *
kle_base64_decode(const char *s, size_t len, size_t *out_len)
{
    int             v;
    size_t          q, i, pad;
    uint32_t        acc;
    unsigned char  *out, *p;
    unsigned char   ch;

    out = malloc(len / 4 * 3 + 3);
    if (out == NULL) {
        errno = ENOMEM;
        return NULL;
    }

    p = out;
    acc = 0;
    q = 0;
    pad = 0;

    for (i = 0; i < len; i++) {
        ch = (unsigned char) s[i];

        if (ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n') {
            continue;
        }

        if (ch == '=') {
            pad++;
            continue;
        }

        if (ch >= 'A' && ch <= 'Z') {
            v = ch - 'A';
        } else if (ch >= 'a' && ch <= 'z') {
            v = ch - 'a' + 26;
        } else if (ch >= '0' && ch <= '9') {
            v = ch - '0' + 52;
        } else if (ch == '+') {
            v = 62;
        } else if (ch == '/') {
            v = 63;
        } else {
            goto invalid;
        }

        /* nothing may follow the padding */
        if (pad) {
            goto invalid;
        }

        acc = acc << 6 | v;

        if (++q == 4) {
            *p++ = (unsigned char) (acc >> 16);
            *p++ = (unsigned char) (acc >> 8);
            *p++ = (unsigned char) acc;
            acc = 0;
            q = 0;
        }
    }

    /* a last group of 2 or 3 sextets, padded to 4 if padded at all */
    if (q == 1 || (pad && (q < 2 || q + pad != 4))) {
        goto invalid;
    }

    if (q == 2) {
        *p++ = (unsigned char) (acc >> 4);

    } else if (q == 3) {
        *p++ = (unsigned char) (acc >> 10);
        *p++ = (unsigned char) (acc >> 2);
    }

    *p = '\0';
    *out_len = p - out;
    return out;

invalid:

    free(out);
    errno = EINVAL;
    return NULL;
}


char *
kle_base64_encode(const unsigned char *data, size_t len)
{
    size_t     i;
    char      *out, *p;
    uint32_t   v;
    static const char  abc[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    out = malloc((len + 2) / 3 * 4 + 1);
    if (out == NULL) {
        errno = ENOMEM;
        return NULL;
    }

    p = out;

    for (i = 0; i + 2 < len; i += 3) {
        v = (uint32_t) data[i] << 16 | (uint32_t) data[i + 1] << 8
            | data[i + 2];
        *p++ = abc[v >> 18];
        *p++ = abc[(v >> 12) & 63];
        *p++ = abc[(v >> 6) & 63];
        *p++ = abc[v & 63];
    }

    if (i < len) {
        v = (uint32_t) data[i] << 16;
        if (i + 1 < len) {
            v |= (uint32_t) data[i + 1] << 8;
        }
        *p++ = abc[v >> 18];
        *p++ = abc[(v >> 12) & 63];
        *p++ = i + 1 < len ? abc[(v >> 6) & 63] : '=';
        *p++ = '=';
    }

    *p = '\0';
    return out;
}
