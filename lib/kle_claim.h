/*
 * The claim an elector publishes to the processes that act on it, in
 * memory they share, and the check those readers make: no nginx here (the
 * module keeps it in a shared zone; the simulation and the unit tests in
 * memory of their own).
 *
 * A seqlock: one writer at a time, marked by its pid; readers take no
 * lock, copy, and retry if a write overlapped.  A writer is taken over
 * only once its process is gone: a writer that is merely stalled (stopped,
 * swapped out) finishes its write when it wakes, and a write that took it
 * over could be overwritten by it, its claim resurrected and seq moved
 * back so that torn reads would pass.
 */

#ifndef KLE_CLAIM_H
#define KLE_CLAIM_H

#include <stddef.h>
#include <stdint.h>

#include "kle_clock.h"


/* while leading: readers lead until `until' on kle_now_ms()'s clock */
typedef struct {
    int64_t   until;       /* kle_now_ms() deadline, 0: none */
    int32_t   term;        /* of the claim: the fencing token */
    uint32_t  leading;
} kle_claim_t;

typedef struct {
    uint64_t  seq;         /* odd while written */
    int64_t   writer;      /* pid of the process inside a write, 0: none */
} kle_seqlock_t;

#define KLE_SEQ_OK     0
#define KLE_SEQ_TORN   1   /* a dead writer's write was left unfinished */
#define KLE_SEQ_BUSY  (-1) /* a live writer has been inside for wait_ms */

/* a reader gives up after this many tries: a writer stays inside */
#define KLE_SEQ_READ_TRIES  1000

/*
 * Begins a write as process pid.  KLE_SEQ_TORN: the previous writer died
 * inside its write, which may be half done; the caller must rewrite
 * whatever such a write could have left inconsistent (kle_claim_begin()
 * voids the claim).  KLE_SEQ_BUSY: no write begun.
 */
int kle_seqlock_write_begin(kle_seqlock_t *sl, int64_t pid, int64_t wait_ms);
void kle_seqlock_write_end(kle_seqlock_t *sl);

/* copies n bytes at from, guarded by sl; -1 if a writer stays inside */
int kle_seqlock_read(const kle_seqlock_t *sl, void *to, const void *from,
    size_t n);

/* kle_seqlock_write_begin(), and on KLE_SEQ_TORN the claim is voided */
int kle_claim_begin(kle_seqlock_t *sl, kle_claim_t *claim, int64_t pid,
    int64_t wait_ms);

/*
 * Inside a write: the claim ends no later than until, and 0 revokes it.
 * A reload or a respawn caps the claim it inherits at its elector's start
 * plus its renew deadline before that elector writes (a record with a
 * shorter lease may follow, and followers time their takeover from it); a
 * release revokes it before the release record is sent (others may take
 * the free lock before its answer is read).  1 if the claim changed.
 */
int kle_claim_limit(kle_claim_t *claim, int64_t until);


static inline void
kle_cpu_pause(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __asm__ volatile ("pause");
#elif defined(__aarch64__)
    __asm__ volatile ("yield");
#endif
}


/* a copy of a claim, read at now: does it hold? */
static inline int
kle_claim_holds(const kle_claim_t *c, int64_t now)
{
    return c->leading && c->until != 0 && now < c->until;
}


/*
 * The leader check on every request: the claim under the seqlock, then
 * the clock, read after the copy, so that a claim can only end early.
 * token gets the term of the claim, from the same copy.
 */
static inline int
kle_claim_leads(const kle_seqlock_t *sl, const kle_claim_t *shared,
    int32_t *token)
{
    int          n;
    uint64_t     seq;
    kle_claim_t  c;

    for (n = KLE_SEQ_READ_TRIES; n; n--) {

        seq = __atomic_load_n(&sl->seq, __ATOMIC_ACQUIRE);

        c.until = ((const volatile kle_claim_t *) shared)->until;
        c.term = ((const volatile kle_claim_t *) shared)->term;
        c.leading = ((const volatile kle_claim_t *) shared)->leading;

        __atomic_thread_fence(__ATOMIC_ACQUIRE);

        if ((seq & 1) == 0
            && __atomic_load_n(&sl->seq, __ATOMIC_RELAXED) == seq)
        {
            if (!kle_claim_holds(&c, kle_now_ms())) {
                return 0;
            }

            if (token) {
                *token = c.term;
            }

            return 1;
        }

        /* a write is under way, or ended while we read */
        kle_cpu_pause();
    }

    /* a writer stays inside: no claim can be read */
    return 0;
}

#endif /* KLE_CLAIM_H */
