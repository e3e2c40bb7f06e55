/*
 * kle_kubeconfig_parse on YAML and JSON kubeconfigs.  Relative files
 * resolve in a folder that does not exist, so nothing is read but what an
 * input names absolutely.  Checked: an error leaves the creds zeroed and
 * one terminated line; a success obeys the rules (https with credentials,
 * no CA with insecure) and copies and frees cleanly.
 */

#include "fuzz.h"
#include "kle_kubeconfig.h"

#define KC_PATH  "/nonexistent-kle-fuzz/kubeconfig"


static int
is_zero(const kle_creds_t *c)
{
    kle_creds_t  z;

    memset(&z, 0, sizeof(z));
    return memcmp(c, &z, sizeof(z)) == 0;
}


static void
one(const char *text, size_t size, const char *context)
{
    char          err[1024];
    const char   *why;
    kle_creds_t   c, copy;

    err[0] = '\0';

    if (kle_kubeconfig_parse(&c, text, size, KC_PATH, context, err,
                             sizeof(err)) != 0)
    {
        FUZZ_ASSERT(is_zero(&c));
        FUZZ_ASSERT(strncmp(err, "kubeconfig \"" KC_PATH "\": ", 47) == 0);
        for (why = err; *why; why++) {
            FUZZ_ASSERT((unsigned char) *why >= 0x20 && *why != 0x7f);
        }
        return;
    }

    FUZZ_ASSERT(c.server != NULL);
    FUZZ_ASSERT(strncmp(c.server, "https://", 8) == 0
                || strncmp(c.server, "http://", 7) == 0);
    FUZZ_ASSERT(kle_creds_check(&c, &why) == 0);
    FUZZ_ASSERT((c.ca_data == NULL) == (c.ca_len == 0));
    FUZZ_ASSERT((c.cert_data || c.cert_file) == (c.key_data || c.key_file));
    FUZZ_ASSERT(strcmp(c.source, KC_PATH) == 0);

    FUZZ_ASSERT(kle_creds_copy(&copy, &c) == 0);
    FUZZ_ASSERT(strcmp(copy.server, c.server) == 0);
    FUZZ_ASSERT(copy.ca_len == c.ca_len
                && (c.ca_len == 0
                    || memcmp(copy.ca_data, c.ca_data, c.ca_len) == 0));
    kle_creds_free(&copy);
    kle_creds_free(&c);
    FUZZ_ASSERT(is_zero(&c));
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char  *text;

    /* exactly size bytes: the parser must not read past them */
    text = malloc(size ? size : 1);
    memcpy(text, data, size);

    one(text, size, NULL);
    one(text, size, "kind-kind");

    free(text);
    return 0;
}
