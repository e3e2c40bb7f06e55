/*
 * The calls the simulation makes into kle_election, in one place.
 */

#ifndef SIM_CORE_H
#define SIM_CORE_H

#include <stdio.h>
#include <string.h>

#include "kle_election.h"

#ifdef KLE_RV_MAX

#define SIM_CORE_RV  1

#define sim_e_result(e, now, st, rec, rv, ra)                                \
    kle_election_on_result(e, now, st, rec, rv, ra)
#define sim_e_observe(e, now, rec, rv)                                       \
    kle_election_observe(e, now, rec, rv)
#define sim_e_watching(e, now, up)  kle_election_watching(e, now, up)
#define sim_e_claim_until(e)        kle_election_claim_until(e)
#define sim_e_term(e)               kle_election_term(e)
#define sim_act_rv(act, last)       ((act)->rv)
#define sim_rec_names(rec, id)      kle_record_names(rec, id)
#define sim_rec_set_long_holder(rec, s, len)                                 \
    kle_record_set_holder(rec, s, len)

#else

/* the API before resourceVersions reached the state machine */

#define SIM_CORE_RV  0
#define KLE_RV_MAX   64

#define sim_e_result(e, now, st, rec, rv, ra)                                \
    kle_election_on_result(e, now, st, rec, ra)

static inline unsigned
sim_e_observe(kle_election_t *e, int64_t now, const kle_record_t *rec,
    const char *rv)
{
    kle_record_t  none;

    (void) rv;
    if (rec == NULL) {
        memset(&none, 0, sizeof(none));
        rec = &none;
    }
    return kle_election_observe(e, now, rec);
}

#define sim_e_watching(e, now, up)  0

static inline int64_t
sim_e_claim_until(const kle_election_t *e)
{
    return e->state == KLE_STATE_LEADING && !e->release_wanted
           ? e->renew_start + e->cfg.renew_deadline : 0;
}

#define sim_e_term(e)  ((e)->observed.transitions)

#define sim_rec_names(rec, id)  (strcmp((rec)->holder, id) == 0)

static inline void
sim_rec_set_long_holder(kle_record_t *rec, const char *s, size_t len)
{
    if (len >= sizeof(rec->holder)) {
        len = sizeof(rec->holder) - 1;
    }
    memcpy(rec->holder, s, len);
    rec->holder[len] = '\0';
}

static inline const char *
sim_act_rv(const kle_action_t *act, int64_t last)
{
    static char  buf[32];

    (void) act;
    snprintf(buf, sizeof(buf), "%lld", (long long) last);
    return buf;
}

#endif

#endif /* SIM_CORE_H */
