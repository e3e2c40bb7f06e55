/*
 * Bearer tokens.  Their contents never appear in a message.
 */

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "kle_file.h"
#include "kle_token.h"


int
kle_token_check(const char *token, size_t len, const char **why)
{
    size_t  i;

    if (len == 0) {
        *why = "is empty";
        return -1;
    }

    /* CR, LF and NUL would end or split the Authorization header */
    for (i = 0; i < len; i++) {
        if ((unsigned char) token[i] < 0x20 || token[i] == 0x7f) {
            *why = "contains control characters";
            return -1;
        }
    }

    return 0;
}


char *
kle_token_read(const char *path, char *why, size_t whylen, char *oserr,
    size_t oserrlen)
{
    int          e;
    char        *buf, *t;
    size_t       len;
    const char  *bad, *op;

    buf = kle_file_read(path, KLE_TOKEN_FILE_MAX, KLE_FILE_REGULAR, &len,
                        &op, why, whylen);
    if (buf == NULL) {
        e = errno;

        if (op != NULL) {
            snprintf(oserr, oserrlen, "%s %s: %s", op, path, strerror(e));
        } else {
            snprintf(oserr, oserrlen, "%s: %s", path, why);
        }
        return NULL;
    }

    /* a NUL would cut the token short unseen: check the raw bytes */
    if (memchr(buf, '\0', len) != NULL) {
        bad = "contains control characters";
        goto bad;
    }

    t = kle_trim(buf);

    if (kle_token_check(t, strlen(t), &bad) != 0) {
        goto bad;
    }

    return buf;

bad:

    snprintf(why, whylen, "%s", bad);
    snprintf(oserr, oserrlen, "%s: %s", path, bad);
    kle_secret_free(buf, len);
    return NULL;
}
