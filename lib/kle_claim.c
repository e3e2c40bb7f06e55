/*
 * The seqlock's writer side and the guarded copy (kle_claim.h).
 */

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/types.h>

#include "kle_claim.h"


/* a process that is gone: it can never finish its write */
static int
kle_seqlock_gone(int64_t pid)
{
    return kill((pid_t) pid, 0) == -1 && errno == ESRCH;
}


int
kle_seqlock_write_begin(kle_seqlock_t *sl, int64_t pid, int64_t wait_ms)
{
    int       torn;
    int64_t   w, start;
    uint64_t  seq;

    start = 0;

    for ( ;; ) {
        w = __atomic_load_n(&sl->writer, __ATOMIC_ACQUIRE);

        if ((w == 0 || w == pid || kle_seqlock_gone(w))
            && __atomic_compare_exchange_n(&sl->writer, &w, pid, 0,
                                           __ATOMIC_ACQ_REL,
                                           __ATOMIC_ACQUIRE))
        {
            break;
        }

        if (start == 0) {
            start = kle_now_ms();

        } else if (kle_now_ms() - start >= wait_ms) {
            return KLE_SEQ_BUSY;
        }

        sched_yield();
    }

    /* this process is the only writer now */

    seq = __atomic_load_n(&sl->seq, __ATOMIC_RELAXED);
    torn = seq & 1;

    if (!torn) {
        __atomic_store_n(&sl->seq, seq + 1, __ATOMIC_RELAXED);
    }

    /* seq is odd before any byte of the write can be seen */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);

    return torn ? KLE_SEQ_TORN : KLE_SEQ_OK;
}


void
kle_seqlock_write_end(kle_seqlock_t *sl)
{
    uint64_t  seq;

    seq = __atomic_load_n(&sl->seq, __ATOMIC_RELAXED);

    /* every byte of the write before seq is even again */
    __atomic_store_n(&sl->seq, seq + 1, __ATOMIC_RELEASE);
    __atomic_store_n(&sl->writer, 0, __ATOMIC_RELEASE);
}


int
kle_seqlock_read(const kle_seqlock_t *sl, void *to, const void *from,
    size_t n)
{
    int       i;
    uint64_t  seq;

    for (i = 0; i < KLE_SEQ_READ_TRIES; i++) {

        seq = __atomic_load_n(&sl->seq, __ATOMIC_ACQUIRE);

        if (seq & 1) {
            kle_cpu_pause();
            continue;
        }

        memcpy(to, from, n);

        __atomic_thread_fence(__ATOMIC_ACQUIRE);

        if (__atomic_load_n(&sl->seq, __ATOMIC_RELAXED) == seq) {
            return 0;
        }
    }

    return -1;
}


int
kle_claim_begin(kle_seqlock_t *sl, kle_claim_t *claim, int64_t pid,
    int64_t wait_ms)
{
    int  rc;

    rc = kle_seqlock_write_begin(sl, pid, wait_ms);

    if (rc == KLE_SEQ_TORN) {
        /* what the dead writer left may mix two claims: none is safe */
        claim->until = 0;
        claim->term = 0;
        claim->leading = 0;
    }

    return rc;
}


int
kle_claim_limit(kle_claim_t *claim, int64_t until)
{
    if (claim->until == 0 || (until != 0 && claim->until <= until)) {
        return 0;
    }

    claim->until = until;

    if (until == 0) {
        claim->term = 0;
    }

    return 1;
}
