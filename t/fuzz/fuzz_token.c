/*
 * Tokens: kle_token_check against its definition, and kle_token_read on a
 * file holding the input (a memfd: no disk).  A token read is trimmed,
 * passes the check and is the input without surrounding whitespace.
 */

#define _GNU_SOURCE
#include <ctype.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz.h"
#include "kle_token.h"

static int   fd = -1;
static char  path[64];


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int          valid;
    char        *tok, why[256], oserr[512];
    size_t       i, a, b;
    const char  *bad;

    valid = size > 0;
    for (i = 0; i < size; i++) {
        if (data[i] < 0x20 || data[i] == 0x7f) {
            valid = 0;
        }
    }

    FUZZ_ASSERT((kle_token_check((const char *) data, size, &bad) == 0)
                == valid);

    if (fd == -1) {
        fd = memfd_create("kle-fuzz-token", MFD_CLOEXEC);
        FUZZ_ASSERT(fd != -1);
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    }

    FUZZ_ASSERT(ftruncate(fd, 0) == 0);
    FUZZ_ASSERT(pwrite(fd, data, size, 0) == (ssize_t) size);

    tok = kle_token_read(path, why, sizeof(why), oserr, sizeof(oserr));

    /* the expected token: the input less surrounding whitespace */
    for (a = 0; a < size && isspace(data[a]); a++) {
        /* void */
    }
    for (b = size; b > a && isspace(data[b - 1]); b--) {
        /* void */
    }

    valid = b > a && size <= KLE_TOKEN_FILE_MAX
            && memchr(data, '\0', size) == NULL;
    for (i = a; valid && i < b; i++) {
        if (data[i] < 0x20 || data[i] == 0x7f) {
            valid = 0;
        }
    }

    if (tok == NULL) {
        FUZZ_ASSERT(!valid);
        FUZZ_ASSERT(strncmp(oserr, path, strlen(path)) == 0);
        return 0;
    }

    FUZZ_ASSERT(valid);
    FUZZ_ASSERT(strlen(tok) == b - a && memcmp(tok, data + a, b - a) == 0);
    free(tok);

    return 0;
}
