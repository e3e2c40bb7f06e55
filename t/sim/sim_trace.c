/*
 * The readable trace of one seed: one line per event, with the simulated
 * time, who (instance#elector generation, server, world, check) and what.
 */

#include <inttypes.h>
#include <stdarg.h>
#include <string.h>

#include "sim.h"


static const char  *sim_fault_names[SIM_F_KINDS] = {
    "request or answer delayed",
    "request lost",
    "answer lost",
    "write applied after its sender gave up",
    "5xx before storage",
    "5xx after storage",
    "429 with Retry-After",
    "watch event late",
    "watch connection broken",
    "watch 410 Expired",
    "watch ended by the server",
    "instance cut off from the API",
    "elector worker SIGSTOPped",
    "whole instance SIGSTOPped",
    "whole instance suspended",
    "elector worker killed",
    "whole instance killed",
    "release (nginx -s quit)",
    "reload",
    "reload with other timings",
    "reload with another identity",
    "foreign record",
    "foreign free record",
    "foreign record naming one of ours",
    "foreign Python-format record",
    "foreign unstorable holder",
    "foreign delete"
};

static const char  *sim_violation_names[SIM_V_KINDS] = {
    "two leaders",
    "leader not named by the server",
    "leader after release",
    "transition count",
    "liveness",
    "events out of order",
    "host contract",
    "simulator overflow",
    "reader outside its claim"
};


const char *
sim_fault_name(int kind)
{
    return sim_fault_names[kind];
}


const char *
sim_violation_name(int v)
{
    return sim_violation_names[v];
}


const char *
sim_status_name(kle_api_status_t s)
{
    switch (s) {
    case KLE_API_OK:
        return "200";
    case KLE_API_NOT_FOUND:
        return "404 NotFound";
    case KLE_API_CONFLICT:
        return "409 Conflict";
    case KLE_API_ALREADY_EXISTS:
        return "409 AlreadyExists";
    case KLE_API_TOO_MANY_REQUESTS:
        return "429 TooManyRequests";
    case KLE_API_SERVER_ERROR:
        return "500";
    case KLE_API_TRANSPORT:
        return "no answer";
    case KLE_API_REJECTED:
        return "422 Invalid";
    default:
        return "error";
    }
}


const char *
sim_rec_text(const kle_record_t *rec, char *buf, size_t size)
{
    snprintf(buf, size, "holder=\"%.40s\" lease=%ds tr=%d renew=%+.3fs",
             rec->holder, (int) rec->lease_duration, (int) rec->transitions,
             (rec->renew_time - SIM_WALL0) / 1e6);

    return buf;
}


void
sim_trace_setup(void)
{
    sim_inst_t  *in;
    int          i, k;

    printf("seed %" PRIu64 ": %d instances, %s store, delays <= %" PRId64
           "ms, watch lag <= %" PRId64 "ms\n", sim.seed, sim.n,
           sim.whole_seconds ? "whole-second (configmaps)" : "Lease",
           sim.dmax, sim.wlag);

    for (k = 0; k < sim.npool; k++) {
        printf("  timings %d: lease %.3fs, renew deadline %.3fs, "
               "retry %.3fs\n", k, sim.pool[k].ld / 1e3, sim.pool[k].rd / 1e3,
               sim.pool[k].rp / 1e3);
    }

    for (i = 0; i < sim.n; i++) {
        in = &sim.inst[i];
        printf("  %s: timings %d, clock rate %.6f%s\n", in->name, in->pool,
               (double) in->rate / SIM_PPM,
               in->secs ? ", sees record times in whole seconds (client-go)"
                        : "");
    }

    printf("  per mille: delay %d, lost %d, answer lost %d, late %d, "
           "5xx %d/%d, 429 %d, watch lag %d, drop %d, 410 %d\n",
           sim.p_delay, sim.p_lost, sim.p_answer_lost, sim.p_late,
           sim.p_err, sim.p_err_after, sim.p_throttle, sim.p_wlag,
           sim.p_wdrop, sim.p_wgone);
    printf("  a process fault every %.3fs on average until %.3fs\n",
           sim.fault_mean / 1e3, sim.calm_at / 1e3);
}


void
sim_tr(int i, const char *fmt, ...)
{
    va_list  ap;
    char     who[24];

    if (i >= 0) {
        snprintf(who, sizeof(who), "%s#%d", sim.inst[i].name,
                 sim.inst[i].el.gen);
    } else {
        snprintf(who, sizeof(who), "%s",
                 i == -1 ? "server" : i == -2 ? "world" : "check");
    }

    printf("%10.3f  %-7s ", sim.t / 1e3, who);

    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);

    putchar('\n');
}
