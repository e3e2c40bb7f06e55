/*
 * CLOCK_BOOTTIME and CLOCK_REALTIME.
 *
 * CLOCK_MONOTONIC stops while the system is suspended (and on some
 * hypervisors while a VM is paused): an instance that wakes after its
 * lease lapsed would go on believing its claim.  CLOCK_BOOTTIME goes on
 * counting.  It has no coarse variant, so the readers' hot path pays a
 * precise read (the vDSO's, with no system call, on Linux 5.3 and later
 * with a vDSO-capable clock source).
 */

#include <time.h>

#include "kle_clock.h"


#ifdef CLOCK_BOOTTIME
#define KLE_CLOCK  CLOCK_BOOTTIME
#else
#define KLE_CLOCK  CLOCK_MONOTONIC
#endif


int64_t
kle_now_ms(void)
{
    struct timespec  ts;

    clock_gettime(KLE_CLOCK, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


int64_t
kle_wall_us(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}
