/*
 * The clock the code reads: lib/kle_clock.c itself, linked unchanged, over
 * a clock_gettime() of the simulation's.  sim_mono(in, t) asks kle_now_ms()
 * what instance in's clock reads at simulated ms t; the clock_gettime()
 * below answers for that instance, CLOCK_BOOTTIME or CLOCK_MONOTONIC
 * (which stops while the instance is suspended), as asked.  So a
 * kle_clock.c that judged claims on a clock that stops would be caught
 * (plant claims-on-monotonic).  Outside sim_mono(), the real clocks.
 */

#include <errno.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "kle_clock.h"
#include "sim.h"


static const sim_inst_t  *sim_clock_in;
static int64_t            sim_clock_t;

/* entries nest: the elector's callbacks ask the simulator for times */
#define SIM_CLOCK_DEPTH  8

static const sim_inst_t  *sim_clock_in_saved[SIM_CLOCK_DEPTH];
static int64_t            sim_clock_t_saved[SIM_CLOCK_DEPTH];
static int                sim_clock_depth;


int
clock_gettime(clockid_t id, struct timespec *ts)
{
    int64_t  ms;

    if (sim_clock_in == NULL) {
        return (int) syscall(SYS_clock_gettime, id, ts);
    }

    switch (id) {

    case CLOCK_BOOTTIME:
        ms = sim_boot(sim_clock_in, sim_clock_t);
        break;

    case CLOCK_MONOTONIC:
    case CLOCK_MONOTONIC_COARSE:
    case CLOCK_MONOTONIC_RAW:
        ms = sim_monotonic(sim_clock_in, sim_clock_t);
        break;

    case CLOCK_REALTIME:
    case CLOCK_REALTIME_COARSE:
        ms = sim_wall(sim_clock_in, sim_clock_t) / 1000;
        break;

    default:
        errno = EINVAL;
        return -1;
    }

    ts->tv_sec = ms / 1000;
    ts->tv_nsec = (long) (ms % 1000) * 1000000;

    return 0;
}


/* the code called between these reads instance in's clocks at t */
void
sim_clock_enter(const sim_inst_t *in, int64_t t)
{
    if (sim_clock_depth < SIM_CLOCK_DEPTH) {
        sim_clock_in_saved[sim_clock_depth] = sim_clock_in;
        sim_clock_t_saved[sim_clock_depth] = sim_clock_t;
    }
    sim_clock_depth++;

    sim_clock_in = in;
    sim_clock_t = t;
}


void
sim_clock_leave(void)
{
    sim_clock_depth--;

    if (sim_clock_depth < SIM_CLOCK_DEPTH) {
        sim_clock_in = sim_clock_in_saved[sim_clock_depth];
        sim_clock_t = sim_clock_t_saved[sim_clock_depth];
    }
}


int64_t
sim_mono(const sim_inst_t *in, int64_t t)
{
    int64_t  ms;

    sim_clock_enter(in, t);
    ms = kle_now_ms();
    sim_clock_leave();

    return ms;
}


/* The first simulated ms at which kle_now_ms() reads mono or more. */
int64_t
sim_at_mono(const sim_inst_t *in, int64_t mono)
{
    int64_t  lo, hi, mid;

    if (sim_mono(in, 0) >= mono) {
        return 0;
    }

    /* sim_mono(lo) < mono <= sim_mono(hi) */
    lo = 0;
    hi = (mono - in->mono_off) * SIM_PPM / in->rate + 1;

    while (sim_mono(in, hi) < mono) {
        lo = hi;
        hi *= 2;
    }

    while (hi - lo > 1) {
        mid = lo + (hi - lo) / 2;
        if (sim_mono(in, mid) < mono) {
            lo = mid;
        } else {
            hi = mid;
        }
    }

    return hi;
}
