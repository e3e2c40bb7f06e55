/*
 * Files the credential code reads whole, secrets wiped before they are
 * freed, and the two string helpers the credential sources share.
 */

#ifndef KLE_FILE_H
#define KLE_FILE_H

#include <stddef.h>

/* bound on a kubeconfig and on CA, certificate and key files */
#define KLE_FILE_MAX  (16 * 1024 * 1024)

/* kle_file_read() flags */
#define KLE_FILE_REGULAR  1    /* refuse FIFOs, devices, folders: never block */

/*
 * Reads a whole file of at most max bytes, NUL-terminated.  NULL on
 * failure with why filled: "cannot open: <errno text>", "cannot read:
 * <errno text>", "is not a regular file" or "is larger than N bytes";
 * *op is then "open" or "read" (errno set) or NULL (no errno).
 */
char *kle_file_read(const char *path, size_t max, int flags, size_t *len,
    const char **op, char *why, size_t whylen);

/* The file can be opened and is not a folder; why as above. */
int kle_file_check(const char *path, char *why, size_t whylen);

/* Strips leading and trailing whitespace in place; returns s. */
char *kle_trim(char *s);

/* Tokens and private keys do not linger in freed heap memory. */
void kle_secret_free(void *p, size_t len);

/* malloc()ed printf; NULL on ENOMEM. */
char *kle_aprintf(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

/* Writes the message into err (if any room) and returns -1. */
int kle_errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif /* KLE_FILE_H */
