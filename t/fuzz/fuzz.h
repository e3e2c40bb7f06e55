/*
 * What the fuzz targets share: an assertion that stops the fuzzer (and the
 * replay) with the failed condition, inputs as C strings, whole seconds.
 */

#ifndef KLE_FUZZ_H
#define KLE_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_ASSERT(cond)                                                    \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__,        \
                    __LINE__, #cond);                                        \
            abort();                                                         \
        }                                                                    \
    } while (0)

/* data as a malloc()ed NUL-terminated string (NULs inside kept) */
static inline char *
fuzz_cstr(const uint8_t *data, size_t size)
{
    char  *s = malloc(size + 1);

    if (s == NULL) {
        abort();
    }
    memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

/*
 * Splits data at the first byte sep: *a and *b are malloc()ed strings;
 * b is "" if there is no sep.
 */
static inline void
fuzz_split(const uint8_t *data, size_t size, int sep, char **a, char **b)
{
    const uint8_t  *p = memchr(data, sep, size);

    if (p == NULL) {
        *a = fuzz_cstr(data, size);
        *b = fuzz_cstr(data, 0);
        return;
    }

    *a = fuzz_cstr(data, (size_t) (p - data));
    *b = fuzz_cstr(p + 1, size - (size_t) (p - data) - 1);
}

#define FUZZ_US  1000000LL

/* a time in microseconds down to its whole second (toward -infinity) */
static inline int64_t
fuzz_floor_sec(int64_t us)
{
    int64_t  r = us % FUZZ_US;

    return us - (r < 0 ? r + FUZZ_US : r);
}

#endif /* KLE_FUZZ_H */
