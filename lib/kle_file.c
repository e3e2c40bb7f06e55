/*
 * Reading credential files whole, and helpers for the credential code.
 */

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kle_file.h"


char *
kle_file_read(const char *path, size_t max, int flags, size_t *len,
    const char **op, char *why, size_t whylen)
{
    int          fd, e, oflags;
    char        *buf, *p;
    size_t       size, n, grow, want;
    ssize_t      r;
    struct stat  st;

    *op = "open";
    buf = NULL;
    n = 0;

    /* O_NONBLOCK: opening a FIFO must not wait for a writer */
    oflags = O_RDONLY | O_CLOEXEC;
    if (flags & KLE_FILE_REGULAR) {
        oflags |= O_NONBLOCK;
    }

    fd = open(path, oflags);
    if (fd == -1) {
        e = errno;
        snprintf(why, whylen, "cannot open: %s", strerror(e));
        errno = e;
        return NULL;
    }

    if ((flags & KLE_FILE_REGULAR)
        && (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)))
    {
        close(fd);
        *op = NULL;
        snprintf(why, whylen, "is not a regular file");
        errno = EINVAL;
        return NULL;
    }

    *op = "read";
    size = 4096;
    buf = malloc(size);
    if (buf == NULL) {
        e = ENOMEM;
        goto failed;
    }

    /* read one byte past max to tell "exactly max" from "more" */
    for ( ;; ) {
        if (n > max) {
            break;
        }

        if (n + 1 == size) {
            grow = size * 2 < max + 2 ? size * 2 : max + 2;
            p = realloc(buf, grow);
            if (p == NULL) {
                e = ENOMEM;
                goto failed;
            }

            buf = p;
            size = grow;
        }

        want = size - n - 1;
        if (want > max + 1 - n) {
            want = max + 1 - n;
        }

        r = read(fd, buf + n, want);

        if (r == -1 && errno == EINTR) {
            continue;
        }

        if (r == -1) {
            e = errno;
            goto failed;
        }

        if (r == 0) {
            break;
        }

        n += r;
    }

    if (n > max) {
        kle_secret_free(buf, n);
        close(fd);
        *op = NULL;
        snprintf(why, whylen, "is larger than %zu bytes", max);
        errno = EFBIG;
        return NULL;
    }

    close(fd);
    buf[n] = '\0';
    *len = n;
    *op = NULL;
    return buf;

failed:

    snprintf(why, whylen, "cannot read: %s", strerror(e));
    kle_secret_free(buf, n);
    close(fd);
    errno = e;
    return NULL;
}


int
kle_file_check(const char *path, char *why, size_t whylen)
{
    int          fd;
    struct stat  st;

    fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd == -1) {
        snprintf(why, whylen, "cannot open: %s", strerror(errno));
        return -1;
    }

    if (fstat(fd, &st) == -1) {
        snprintf(why, whylen, "cannot open: %s", strerror(errno));
        close(fd);
        return -1;
    }

    close(fd);

    /* open() takes a folder; reading it later would not */
    if (S_ISDIR(st.st_mode)) {
        snprintf(why, whylen, "cannot open: %s", strerror(EISDIR));
        return -1;
    }

    return 0;
}


char *
kle_trim(char *s)
{
    size_t  skip, len;

    for (skip = 0; isspace((unsigned char) s[skip]); skip++) {
        /* void */
    }

    len = strlen(s + skip);
    while (len > 0 && isspace((unsigned char) s[skip + len - 1])) {
        len--;
    }

    memmove(s, s + skip, len);
    s[len] = '\0';
    return s;
}


void
kle_secret_free(void *p, size_t len)
{
    if (p != NULL) {
        explicit_bzero(p, len);
        free(p);
    }
}


char *
kle_aprintf(const char *fmt, ...)
{
    int      n;
    char    *s;
    va_list  ap;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);

    if (n < 0) {
        return NULL;
    }

    s = malloc(n + 1);
    if (s == NULL) {
        return NULL;
    }

    va_start(ap, fmt);
    vsnprintf(s, n + 1, fmt, ap);
    va_end(ap);

    return s;
}


int
kle_errf(char *err, size_t errlen, const char *fmt, ...)
{
    va_list  ap;

    if (err != NULL && errlen > 0) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }

    return -1;
}
