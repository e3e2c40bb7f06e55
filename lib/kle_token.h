/*
 * Bearer tokens: what a token may hold, and reading a token file.
 */

#ifndef KLE_TOKEN_H
#define KLE_TOKEN_H

#include <stddef.h>

/* a token file larger than this is refused (JWTs are a few KiB) */
#define KLE_TOKEN_FILE_MAX  (64 * 1024)

/*
 * A token goes into an HTTP header: 0 if the len bytes of token may, else
 * -1 with *why ("is empty", "contains control characters").
 */
int kle_token_check(const char *token, size_t len, const char **why);

/*
 * Reads, trims and checks a token file: a malloc()ed token, or NULL with
 * why saying what is wrong without the token ("cannot open: ...") and
 * oserr in Go's words with the file ("open /path: Permission denied").
 * Only regular files are read, so a FIFO cannot block the caller.
 */
char *kle_token_read(const char *path, char *why, size_t whylen,
    char *oserr, size_t oserrlen);

#endif /* KLE_TOKEN_H */
