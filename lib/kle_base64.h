/*
 * Base64 as kubeconfig's *-data fields hold it.
 */

#ifndef KLE_BASE64_H
#define KLE_BASE64_H

#include <stddef.h>

/*
 * Standard base64 as Go's encoding/json reads []byte, but lenient where that
 * is harmless: whitespace (YAML line folding) is skipped and the padding may
 * be left out.  Decodes len bytes of s.  NULL with errno EINVAL or ENOMEM.
 * The result is NUL-terminated for convenience; *out_len excludes the NUL.
 */
unsigned char *kle_base64_decode(const char *s, size_t len, size_t *out_len);
/* Standard base64 with padding, NUL-terminated; NULL on ENOMEM. */
char *kle_base64_encode(const unsigned char *data, size_t len);

#endif /* KLE_BASE64_H */
