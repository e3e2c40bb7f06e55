/*
 * Minimal TAP for the C unit tests: prove runs the binaries directly.
 *
 *     ok(cond, "name");  is_int(got, want, "name");  is_str(got, want, "n");
 *     return done_testing();
 */

#ifndef KLE_TEST_H
#define KLE_TEST_H

#include <stdio.h>
#include <string.h>

static int  kle_test_n;
static int  kle_test_failed;

static int
kle_test_ok(int cond, const char *file, int line, const char *name)
{
    kle_test_n++;
    printf("%sok %d - %s\n", cond ? "" : "not ", kle_test_n, name);
    if (!cond) {
        kle_test_failed++;
        printf("#   failed at %s line %d\n", file, line);
    }
    return cond;
}

#define ok(cond, name)  kle_test_ok(!!(cond), __FILE__, __LINE__, name)

#define is_int(got, want, name)                                              \
    do {                                                                     \
        long long g_ = (long long) (got), w_ = (long long) (want);           \
        if (!ok(g_ == w_, name)) {                                           \
            printf("#   got: %lld\n#   expected: %lld\n", g_, w_);          \
        }                                                                    \
    } while (0)

#define is_str(got, want, name)                                              \
    do {                                                                     \
        const char *g_ = (got), *w_ = (want);                                \
        if (!ok(g_ != NULL && w_ != NULL && strcmp(g_, w_) == 0, name)) {    \
            printf("#   got: '%s'\n#   expected: '%s'\n",                    \
                   g_ ? g_ : "(null)", w_ ? w_ : "(null)");                  \
        }                                                                    \
    } while (0)

static int
done_testing(void)
{
    printf("1..%d\n", kle_test_n);
    return kle_test_failed ? 1 : 0;
}

#endif /* KLE_TEST_H */
