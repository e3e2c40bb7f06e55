/*
 * ExecCredentials: kle_exec_cred_parse on what a plugin printed, for both
 * apiVersions.  Accepted: a token that passes kle_token_check, or a
 * certificate and key together (or both), each non-empty, an expiry after
 * now.  Refused: one printable line of a message.
 */

#include "fuzz.h"
#include "kle_exec.h"
#include "kle_token.h"

#define NOW_US  1800000000000000LL


static void
check(const char *text, size_t size, const char *version)
{
    int              rc;
    char             err[512];
    size_t           i;
    const char      *bad;
    kle_exec_cred_t  cred;

    err[0] = '\0';
    rc = kle_exec_cred_parse(text, size, version, NOW_US, &cred, err,
                             sizeof(err));

    if (rc != 0) {
        FUZZ_ASSERT(rc == -1);
        FUZZ_ASSERT(err[0] != '\0');
        for (i = 0; err[i] != '\0'; i++) {
            FUZZ_ASSERT((unsigned char) err[i] >= 0x20 && err[i] != 0x7f);
        }
        FUZZ_ASSERT(cred.token == NULL && cred.cert == NULL
                    && cred.key == NULL);
        return;
    }

    FUZZ_ASSERT(cred.token != NULL || cred.cert != NULL);
    FUZZ_ASSERT((cred.cert == NULL) == (cred.key == NULL));
    FUZZ_ASSERT(cred.expires_us == 0 || cred.expires_us > NOW_US);

    if (cred.token != NULL) {
        FUZZ_ASSERT(kle_token_check(cred.token, strlen(cred.token), &bad)
                    == 0);
    }

    if (cred.cert != NULL) {
        FUZZ_ASSERT(cred.cert_len == strlen((char *) cred.cert)
                    && cred.cert_len > 0);
        FUZZ_ASSERT(cred.key_len == strlen((char *) cred.key)
                    && cred.key_len > 0);
    }

    kle_exec_cred_free(&cred);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char  *text;

    text = fuzz_cstr(data, size);

    check(text, size, KLE_EXEC_V1);
    check(text, size, KLE_EXEC_V1BETA1);

    free(text);

    return 0;
}
