/*
 * The clocks the core reads.  Decisions, claims and the readers' check
 * use one clock that counts time spent suspended (CLOCK_BOOTTIME), so that
 * a machine that wakes after its lease lapsed does not believe its claim;
 * the wall clock is only written into records.
 */

#ifndef KLE_CLOCK_H
#define KLE_CLOCK_H

#include <stdint.h>

/* CLOCK_BOOTTIME (CLOCK_MONOTONIC where there is none), ms */
int64_t kle_now_ms(void);

/* CLOCK_REALTIME, unix us */
int64_t kle_wall_us(void);

#endif /* KLE_CLOCK_H */
