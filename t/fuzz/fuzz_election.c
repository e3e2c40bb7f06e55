/*
 * kle_election driven by random histories: the input picks the timings,
 * then one operation per byte pair (next, an answer to the request in
 * flight, a watch event, the watch going up or down, time passing, a
 * release).  Checked after every step:
 *   - leader only while the observed record is ours (our identity, and
 *     our instance nonce or none), in LEADING, before the claim's end;
 *   - the claim's end moves only on a successful write, to that write's
 *     start + renew_deadline;
 *   - requests have a positive timeout, waits end in the future, an
 *     UPDATE carries the resourceVersion it was judged on;
 *   - STARTED and STOPPED alternate;
 *   - no UB (the sanitizers).
 * A successful write is answered with what was written, as the API server
 * does, unless the input asks for a hostile server (bit 1 of the sixth
 * byte, or KLE_FUZZ_HOSTILE=1 for every input): then any record.
 */

#include "fuzz.h"
#include "kle_election.h"

#define ME     "me"
#define OTHER  "other"

/* instance nonces: ours, a twin's, the old master's */
static const char  *nonces[] = { "", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                                 "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
                                 "cccccccccccccccccccccccccccccccc" };

typedef struct {
    const uint8_t  *p;
    size_t          n;
} input_t;

static int  hostile_env = -1;


static unsigned
take(input_t *in)
{
    unsigned  b;

    if (in->n == 0) {
        return 0;
    }
    b = *in->p++;
    in->n--;
    return b;
}


static void
random_record(input_t *in, kle_record_t *r, const kle_record_t *written)
{
    unsigned  m = take(in);

    memset(r, 0, sizeof(*r));

    switch (m % 6) {
    case 0:                              /* what we wrote */
        if (written) {
            *r = *written;
            return;
        }
        /* fall through */
    case 1:
        strcpy(r->holder, ME);
        break;
    case 2:
        strcpy(r->holder, OTHER);
        break;
    case 3:
        break;                           /* free */
    case 4:
        memset(r->holder, 'h', KLE_ID_MAX - 1);
        break;
    default:
        snprintf(r->holder, sizeof(r->holder), "c%u", take(in) % 4);
    }

    r->lease_duration = (int32_t) (take(in) % 40) - 2;
    if (m & 0x80) {
        r->lease_duration = (int32_t) (take(in) << 24 | take(in) << 16);
    }
    r->acquire_time = (int64_t) take(in) * 1000000;
    r->renew_time = r->acquire_time + (int64_t) take(in) * 1000;
    r->transitions = (int32_t) (take(in) % 8);
    if (m & 0x40) {
        r->transitions = INT32_MAX - (int32_t) (take(in) % 3);
    }
    if (m & 0x20) {
        strcpy(r->instance, nonces[take(in) % 4]);
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                     leading, inflight, established, hostile;
    char                    rv[KLE_RV_MAX], err[256];
    unsigned                op, ev, arg, rvn;
    int64_t                 now, wall, start, prev_claim, claim, last_until;
    input_t                 in;
    kle_action_t            act, sent;
    kle_record_t            rec;
    kle_election_t          e;
    kle_election_config_t   cfg;
    kle_api_status_t        st;

    if (hostile_env == -1) {
        hostile_env = getenv("KLE_FUZZ_HOSTILE") != NULL;
    }

    if (size < 6) {
        return 0;
    }

    in.p = data;
    in.n = size;

    memset(&cfg, 0, sizeof(cfg));
    strcpy(cfg.identity, ME);
    cfg.lease_duration = (int64_t) (1 + take(&in) % 30) * 1000;
    cfg.renew_deadline = 1 + (int64_t) (take(&in) << 8 | take(&in))
                             % cfg.lease_duration;
    cfg.retry_period = 1 + (int64_t) (take(&in) << 8 | take(&in))
                           % cfg.renew_deadline;
    op = take(&in);
    cfg.whole_seconds = op & 1;
    hostile = hostile_env || (op & 2);
    if (op & 4) {
        strcpy(cfg.instance, nonces[1]);
    }
    if (op & 8) {
        strcpy(cfg.predecessor, nonces[3]);
    }

    if (kle_election_config_validate(&cfg, err, sizeof(err)) != 0) {
        FUZZ_ASSERT(err[0] != '\0');
        return 0;
    }

    kle_election_init(&e, &cfg, 42);

    now = 1000000;
    wall = 1700000000000000LL;
    leading = 0;
    inflight = 0;
    established = 0;
    start = 0;
    rvn = 0;
    memset(&sent, 0, sizeof(sent));

    while (in.n > 0) {
        op = take(&in);
        arg = take(&in);
        prev_claim = kle_election_claim_until(&e);
        ev = 0;
        st = KLE_API_OK;

        switch (op % 8) {

        case 0:
        case 7:
            ev = kle_election_next(&e, now, wall, &act);

            FUZZ_ASSERT(memchr(act.rv, '\0', KLE_RV_MAX) != NULL);

            if (act.kind == KLE_DO_WAIT) {
                FUZZ_ASSERT(act.until > now);
                last_until = act.until;
                (void) last_until;

            } else if (act.kind != KLE_DO_NOTHING) {
                FUZZ_ASSERT(!inflight);
                FUZZ_ASSERT(act.timeout > 0);
                if (act.kind == KLE_DO_UPDATE) {
                    FUZZ_ASSERT(act.rv[0] != '\0');
                }
                inflight = 1;
                sent = act;
                start = now;
            }
            break;

        case 1:
            if (!inflight) {
                break;
            }

            inflight = 0;
            st = (kle_api_status_t) (arg % 11);

            if (st == KLE_API_OK) {
                random_record(&in, &rec,
                              sent.kind == KLE_DO_GET ? NULL : &sent.record);
                if (sent.kind != KLE_DO_GET && !hostile) {
                    rec = sent.record;
                }
                snprintf(rv, sizeof(rv), "%u", ++rvn);
                ev = kle_election_on_result(&e, now, st, &rec, rv,
                                            (int) take(&in));
            } else {
                ev = kle_election_on_result(&e, now, st, NULL, NULL,
                                            (int) (take(&in) << 8
                                                   | take(&in)));
            }
            break;

        case 2:
            if (arg & 1) {
                ev = kle_election_observe(&e, now, NULL, NULL);
            } else {
                random_record(&in, &rec, NULL);
                snprintf(rv, sizeof(rv), "%u", ++rvn);
                ev = kle_election_observe(&e, now, &rec, rv);
            }
            break;

        case 3:
            established = arg & 1;
            ev = kle_election_watching(&e, now, established);
            break;

        case 4:
            now += arg * 10;
            wall += (int64_t) arg * 10000;
            break;

        case 5:
            now += (int64_t) arg * 1000;
            wall += (int64_t) arg * 1000000;
            break;

        case 6:
            if (arg % 16 == 0) {
                kle_election_release(&e);
                inflight = 0;      /* the host cancels what is in flight */
            }
            break;
        }

        if (getenv("KLE_FUZZ_TRACE") != NULL) {
            fprintf(stderr, "op %u arg %u now %lld st %d sent %d ev %#x "
                    "state %s holder \"%.16s\" rv \"%s\" claim %lld "
                    "leader %d\n", op % 8, arg, (long long) now, (int) st,
                    (int) sent.kind, ev, kle_state_name(e.state),
                    e.observed.holder, e.observed_rv,
                    (long long) kle_election_claim_until(&e),
                    kle_election_is_leader(&e, now));
        }

        /*
         * Events alternate.  Both in one call: a claim that lapsed unseen
         * (no next() since) and the answer to a write sent before the
         * lapse, which makes a new one.
         */
        if ((ev & KLE_EV_STARTED_LEADING) && (ev & KLE_EV_STOPPED_LEADING)) {
            FUZZ_ASSERT(leading && op % 8 == 1 && st == KLE_API_OK);
            FUZZ_ASSERT(e.state == KLE_STATE_LEADING);
            ev &= ~(KLE_EV_STARTED_LEADING | KLE_EV_STOPPED_LEADING);
        }
        if (ev & KLE_EV_STARTED_LEADING) {
            FUZZ_ASSERT(!leading);
            leading = 1;
        }
        if (ev & KLE_EV_STOPPED_LEADING) {
            FUZZ_ASSERT(leading);
            leading = 0;
        }

        /* the claim moves only with a successful write */
        claim = kle_election_claim_until(&e);
        if (claim != 0 && claim != prev_claim) {
            FUZZ_ASSERT(op % 8 == 1 && st == KLE_API_OK
                        && (sent.kind == KLE_DO_CREATE
                            || sent.kind == KLE_DO_UPDATE));
            FUZZ_ASSERT(claim == start + cfg.renew_deadline);
            FUZZ_ASSERT(claim > prev_claim);
        }

        if (kle_election_is_leader(&e, now)) {
            FUZZ_ASSERT(e.state == KLE_STATE_LEADING);
            FUZZ_ASSERT(strcmp(e.observed.holder, ME) == 0);
            FUZZ_ASSERT(kle_election_mine(&e, &e.observed));
            FUZZ_ASSERT(claim != 0 && now < claim);
            FUZZ_ASSERT(kle_election_term(&e) >= 0);
        }

        FUZZ_ASSERT(e.state <= KLE_STATE_RELEASED);
    }

    return 0;
}
