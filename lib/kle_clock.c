/*
 * CLOCK_MONOTONIC, CLOCK_REALTIME and a cheap upper bound of the first.
 */

#include <time.h>

#include "kle_clock.h"


int64_t
kle_now_ms(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


int64_t
kle_wall_us(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}


/*
 * The coarse clock is the precise one as of the last tick, so the precise
 * one is less than a resolution ahead of it.  The resolution is read once.
 */

int64_t
kle_now_bound_ms(void)
{
    int64_t          ns;
    struct timespec  ts;
    static int64_t   res_ns = -1;

    if (res_ns < 0) {
        if (clock_getres(CLOCK_MONOTONIC_COARSE, &ts) != 0) {
            res_ns = 0;
            return kle_now_ms() + 1;
        }
        res_ns = (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
    }

    if (res_ns == 0 || clock_gettime(CLOCK_MONOTONIC_COARSE, &ts) != 0) {
        return kle_now_ms() + 1;
    }

    ns = (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec + res_ns;

    return (ns + 999999) / 1000000;
}
