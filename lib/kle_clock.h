/*
 * The clocks the core reads.  Decisions use CLOCK_MONOTONIC only; the wall
 * clock is only written into records.  kle_now_bound_ms() is for readers
 * on a hot path: it may be later than kle_now_ms(), never earlier, so a
 * deadline checked against it can only end early.
 */

#ifndef KLE_CLOCK_H
#define KLE_CLOCK_H

#include <stdint.h>

/* CLOCK_MONOTONIC, ms */
int64_t kle_now_ms(void);

/* CLOCK_REALTIME, unix us */
int64_t kle_wall_us(void);

/*
 * An upper bound of kle_now_ms(), for the readers: kle_now_ms() itself
 * (the coarse clock plus its resolution is not one, kle_clock.c).
 */
int64_t kle_now_bound_ms(void);

#endif /* KLE_CLOCK_H */
