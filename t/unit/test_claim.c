/*
 * lib/kle_claim: the claim published in shared memory, the seqlock that
 * guards it and the readers' check, with real processes: a writer that is
 * stopped inside its write, one that dies there, and the readers around
 * them.  A stopped writer must never be taken over (it would finish its
 * write on waking, over a newer one, and move seq back); a dead one must
 * be, and what it left half written must not be read as a claim.
 */

#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kle_claim.h"
#include "kle_test.h"


typedef struct {
    kle_seqlock_t  lock;
    kle_claim_t    claim;
} shared_t;


static shared_t  *sh;


static void
publish(int64_t until, int32_t term, uint32_t leading)
{
    sh->claim.until = until;
    sh->claim.term = term;
    sh->claim.leading = leading;
}


/* a child that begins a claim, stops (or dies) half way, then finishes */
static pid_t
writer(int die)
{
    pid_t  pid;

    fflush(stdout);
    pid = fork();
    if (pid != 0) {
        return pid;
    }

    if (kle_claim_begin(&sh->lock, &sh->claim, getpid(), 1000)
        != KLE_SEQ_OK)
    {
        _exit(2);
    }

    sh->claim.until = kle_now_ms() + 3600000;

    if (die) {
        _exit(0);
    }

    raise(SIGSTOP);

    /* the whole claim, as a publication writes it */
    sh->claim.until = kle_now_ms() + 3600000;
    sh->claim.term = 7;
    sh->claim.leading = 1;
    kle_seqlock_write_end(&sh->lock);

    _exit(0);
}


static void
stopped(pid_t pid)
{
    int  status;

    waitpid(pid, &status, WUNTRACED);
}


int
main(void)
{
    int       rc, st;
    pid_t     pid;
    int32_t   token;
    uint64_t  seq, seq2;

    sh = mmap(NULL, sizeof(shared_t), PROT_READ | PROT_WRITE,
              MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED) {
        return 1;
    }

    /* the check */

    is_int(kle_claim_begin(&sh->lock, &sh->claim, getpid(), 100), KLE_SEQ_OK,
           "a write begins on a fresh zone");
    publish(kle_now_ms() + 60000, 3, 1);
    kle_seqlock_write_end(&sh->lock);

    token = -1;
    ok(kle_claim_leads(&sh->lock, &sh->claim, &token), "a claim leads");
    is_int(token, 3, "with its term as the token");
    is_int(sh->lock.seq, 2, "seq even after one write");
    is_int(sh->lock.writer, 0, "and no writer inside");

    kle_claim_begin(&sh->lock, &sh->claim, getpid(), 100);
    publish(kle_now_ms() - 1, 3, 1);
    kle_seqlock_write_end(&sh->lock);
    ok(!kle_claim_leads(&sh->lock, &sh->claim, NULL),
       "a claim whose end has passed does not");

    kle_claim_begin(&sh->lock, &sh->claim, getpid(), 100);
    publish(kle_now_ms() + 60000, 3, 0);
    kle_seqlock_write_end(&sh->lock);
    ok(!kle_claim_leads(&sh->lock, &sh->claim, NULL),
       "nor one that is not leading");

    /* the cap a reload puts on the claim it inherits, the revoke of a quit */
    {
        kle_claim_t  c = { 5000, 7, 1 };

        is_int(kle_claim_limit(&c, 6000), 0, "a cap after the claim's end: "
               "no change");
        is_int(c.until, 5000, "the claim keeps its end");
        is_int(kle_claim_limit(&c, 4000), 1, "a cap before its end");
        is_int(c.until, 4000, "ends the claim at the cap");
        is_int(c.term, 7, "with its term");
        is_int(kle_claim_limit(&c, 0), 1, "a revoke");
        is_int(c.until, 0, "ends it");
        is_int(c.term, 0, "and its token");
        is_int(kle_claim_limit(&c, 3000), 0, "no cap revives a revoked claim");
        is_int(c.until, 0, "which stays revoked");
    }

    /*
     * A writer stopped inside its write (SIGSTOP, swap): the finding of
     * issue 14.  Another writer (here: a revocation) must wait for it, not
     * take over; readers meanwhile read no claim.
     */

    seq = sh->lock.seq;
    pid = writer(0);
    stopped(pid);

    ok(sh->lock.seq == seq + 1 && sh->lock.writer == pid,
       "a stopped writer is inside its write: seq odd, its pid recorded");
    ok(!kle_claim_leads(&sh->lock, &sh->claim, NULL),
       "readers read no claim while it is inside");

    rc = kle_claim_begin(&sh->lock, &sh->claim, getpid(), 50);

    if (rc != KLE_SEQ_BUSY) {
        /* taken over: the stopped writer finishes over the revocation */
        publish(0, 0, 0);
        kle_seqlock_write_end(&sh->lock);
    }

    is_int(rc, KLE_SEQ_BUSY,
           "a live writer is not taken over, even after the wait");
    ok(sh->lock.seq == (rc == KLE_SEQ_BUSY ? seq + 1 : seq + 3),
       "nor is seq touched");

    kill(pid, SIGCONT);
    waitpid(pid, &st, 0);
    seq2 = sh->lock.seq;

    if (rc == KLE_SEQ_BUSY) {
        rc = kle_claim_begin(&sh->lock, &sh->claim, getpid(), 1000);
        publish(0, 0, 0);
        kle_seqlock_write_end(&sh->lock);
    }

    is_int(rc, KLE_SEQ_OK, "once it has finished, the revocation is written");
    ok(!kle_claim_leads(&sh->lock, &sh->claim, NULL),
       "and the revoked claim stays revoked (not resurrected by the "
       "stopped writer)");
    ok(seq2 > seq && (seq2 & 1) == 0 && sh->lock.seq > seq2,
       "seq only moves forward");
    if (!(seq2 > seq && sh->lock.seq > seq2)) {
        printf("#   seq %llu, after the stopped writer %llu, at the end "
               "%llu\n", (unsigned long long) seq,
               (unsigned long long) seq2, (unsigned long long) sh->lock.seq);
    }

    /* a writer that dies inside its write is taken over */

    seq = sh->lock.seq;
    pid = writer(1);
    waitpid(pid, &st, 0);

    ok(sh->lock.seq == seq + 1 && sh->lock.writer == pid,
       "a writer died inside its write: seq odd, its pid recorded");
    ok(!kle_claim_leads(&sh->lock, &sh->claim, NULL),
       "readers read no claim from it");
    is_int(kle_seqlock_read(&sh->lock, &token, &sh->claim.term,
                            sizeof(token)),
           -1, "nor anything else");

    rc = kle_claim_begin(&sh->lock, &sh->claim, getpid(), 50);
    is_int(rc, KLE_SEQ_TORN, "its write is taken over, and said torn");
    ok(sh->claim.until == 0 && sh->claim.term == 0 && sh->claim.leading == 0,
       "the half-written claim is void");
    kle_seqlock_write_end(&sh->lock);
    ok(sh->lock.seq == seq + 2 && sh->lock.writer == 0,
       "the write ends it: seq even, one write later");

    kle_claim_begin(&sh->lock, &sh->claim, getpid(), 100);
    publish(kle_now_ms() + 60000, 4, 1);
    kle_seqlock_write_end(&sh->lock);
    token = -1;
    ok(kle_claim_leads(&sh->lock, &sh->claim, &token) && token == 4,
       "and the next claim is read");

    /* a writer that dies after taking the lock, before raising seq */

    seq = sh->lock.seq;
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        int64_t  zero = 0;

        __atomic_compare_exchange_n(&sh->lock.writer, &zero,
                                    (int64_t) getpid(), 0, __ATOMIC_SEQ_CST,
                                    __ATOMIC_SEQ_CST);
        _exit(0);
    }
    waitpid(pid, &st, 0);
    is_int(kle_claim_begin(&sh->lock, &sh->claim, getpid(), 50), KLE_SEQ_OK,
           "a writer gone before its write began: taken over, not torn");
    kle_seqlock_write_end(&sh->lock);
    ok(kle_claim_leads(&sh->lock, &sh->claim, NULL),
       "and the claim it did not touch stands");

    return done_testing();
}
