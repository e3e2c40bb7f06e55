
/*
 * The state an elector shares with every worker: one zone per election,
 * kept across reloads.  One process writes it at a time; readers copy what
 * they need under a seqlock (lib/kle_claim.h) and retry if a write
 * overlapped, so that a request never waits on a lock and makes no system
 * call but clock_gettime().
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_leader_election_module.h"


#if (KLE_ID_MAX != NGX_HTTP_LEADER_ELECTION_ID_MAX                            \
     || KLE_ADDR_MAX != NGX_HTTP_LEADER_ELECTION_ADDR_MAX)
#error "ngx_http_leader_election.h sizes must match lib/kle_record.h"
#endif


/*
 * A writer waits this long (ms) for another to finish, then gives up and
 * tries again later: it never takes over from a live process.
 */
#define NGX_HTTP_LEADER_ELECTION_WRITE_WAIT  100


static ngx_int_t ngx_http_leader_election_write_begin(
    ngx_http_leader_election_t *le, ngx_atomic_uint_t generation);
static void ngx_http_leader_election_write_end(
    ngx_http_leader_election_t *le);
static void ngx_http_leader_election_log_claim(ngx_http_leader_election_t *le,
    ngx_log_t *log, int64_t until, int32_t term, int64_t now);
static ngx_uint_t ngx_http_leader_election_other(
    ngx_http_leader_election_t *le, ngx_str_t *holder, ngx_str_t *address);


ngx_int_t
ngx_http_leader_election_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_leader_election_t  *ole = data;

    ngx_slab_pool_t             *shpool;
    ngx_http_leader_election_t  *le;

    le = shm_zone->data;

    if (ole) {
        /* a reload: what the running elector published stays */
        le->sh = ole->sh;

        le->lock_moved =
            ngx_strcmp(le->lock_kind.data, ole->lock_kind.data) != 0
            || ngx_strcmp(le->lock_where.data, ole->lock_where.data) != 0;

        le->lock_changed = le->lock_moved
                           || ngx_strcmp(le->election.identity,
                                         ole->election.identity)
                              != 0;

        return NGX_OK;
    }

    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        le->sh = shpool->data;
        return NGX_OK;
    }

    le->sh = ngx_slab_calloc(shpool, sizeof(ngx_http_leader_election_sh_t));
    if (le->sh == NULL) {
        return NGX_ERROR;
    }

    shpool->data = le->sh;

    return NGX_OK;
}


/*
 * Called in the master for each configuration that goes live: electors of
 * older generations stop writing from now on.
 */

void
ngx_http_leader_election_new_generation(ngx_http_leader_election_t *le,
    ngx_log_t *log)
{
    ngx_uint_t                        claimed;
    ngx_http_leader_election_snap_t  *snap;

    le->generation = ngx_atomic_fetch_add(&le->sh->generation, 1) + 1;

    if (!le->lock_changed) {
        return;
    }

    /* the published claim is on another lock or by another identity */

    if (ngx_http_leader_election_write_begin(le, le->generation)
        != NGX_OK)
    {
        /* the new elector revokes it before it runs */
        le->sh->revoke = le->generation;
        ngx_log_error(NGX_LOG_WARN, log, 0,
                      "leader_election \"%V\": the shared state is being "
                      "written by process %L, the new elector revokes the "
                      "claim", &le->name, le->sh->lock.writer);
        return;
    }

    snap = &le->sh->snap;

    claimed = snap->claim.leading || snap->claim.until != 0
              || snap->claim.term != 0;

    if (le->lock_moved) {
        ngx_memzero(snap, sizeof(ngx_http_leader_election_snap_t));

    } else {
        /* the same lock under another identity: what was observed stands */
        snap->claim.until = 0;
        snap->claim.term = 0;
        snap->claim.leading = 0;
        snap->renew_start = 0;

        if (snap->state == KLE_STATE_LEADING) {
            snap->state = KLE_STATE_FOLLOWING;
        }
    }

    ngx_http_leader_election_write_end(le);

    if (claimed) {
        ngx_http_leader_election_log_claim(le, log, 0, 0, 0);
    }
}


/*
 * keep_claim: leave state, leading, the claim and renew_start as they are
 * (a new elector has not yet renewed the record that names this identity:
 * the claim made before stands, up to the deadline it was made with).
 */

ngx_int_t
ngx_http_leader_election_publish(ngx_http_leader_election_t *le,
    ngx_atomic_uint_t generation, kle_elector_status_t *st,
    ngx_uint_t keep_claim)
{
    int32_t                           term;
    int64_t                           now, until;
    uint32_t                          leading;
    ngx_int_t                         rc;
    ngx_uint_t                        changed, logged;
    ngx_http_leader_election_snap_t  *snap;

    leading = (st->state == KLE_STATE_LEADING);
    until = leading ? st->claim_until : 0;
    term = until ? st->term : 0;

    /* a claim is logged as made no later than this */
    now = kle_now_ms();

    snap = &le->sh->snap;

    /*
     * A new claim is logged before it is written: killed in between, the
     * log holds a claim no worker saw, never one it did not record.  This
     * process is the only writer of its generation, so the snapshot read
     * here is its own last write.  An end ("none") is logged after.
     */

    logged = 0;

    if (!keep_claim && until != 0
        && (snap->claim.leading != leading || snap->claim.until != until
            || snap->claim.term != term))
    {
        ngx_http_leader_election_log_claim(le, ngx_cycle->log, until, term,
                                           now);
        logged = 1;
    }

    rc = ngx_http_leader_election_write_begin(le, generation);
    if (rc != NGX_OK) {
        return rc;
    }

    changed = 0;

    if (!keep_claim) {
        changed = (snap->claim.leading != leading
                   || snap->claim.until != until || snap->claim.term != term);

        snap->claim.until = until;
        snap->claim.term = term;
        snap->claim.leading = leading;
        snap->state = st->state;
        snap->renew_start = st->renew_start;
    }

    snap->transitions = st->record.transitions;
    snap->lease_until = st->lease_until;
    snap->acquire_time = st->record.acquire_time;
    snap->renew_time = st->record.renew_time;
    snap->api_requests = st->api_requests;
    snap->api_failures = st->api_failures;

    ngx_cpystrn((u_char *) snap->holder, (u_char *) st->record.holder,
                KLE_ID_MAX);

    /* core keeps an address only if its holder wrote it: check it anyway */

    if (st->record.holder[0] != '\0'
        && kle_address_valid(st->record.address,
                             ngx_strnlen((u_char *) st->record.address,
                                         KLE_ADDR_MAX)))
    {
        ngx_cpystrn((u_char *) snap->address, (u_char *) st->record.address,
                    KLE_ADDR_MAX);

    } else {
        snap->address[0] = '\0';
    }

    ngx_cpystrn((u_char *) snap->last_error, (u_char *) st->last_error,
                sizeof(snap->last_error));

    snap->identity_conflict = st->identity_conflict ? 1 : 0;

    ngx_http_leader_election_write_end(le);

    if (changed && !logged) {
        ngx_http_leader_election_log_claim(le, ngx_cycle->log, until, term,
                                           now);
    }

    return NGX_OK;
}


/*
 * The published claim ends no later than until, or at once if until is 0.
 * At once: a release is about to be sent, and no worker may claim from
 * now on, whatever the release's answer, or if there is none.  Later: a
 * new elector inherits the claim (a reload, a respawn) and caps it at its
 * start plus its own renew_deadline, as any record it writes, perhaps with
 * a shorter lease, is written after that start.
 */

ngx_int_t
ngx_http_leader_election_limit(ngx_http_leader_election_t *le,
    ngx_atomic_uint_t generation, int64_t until)
{
    int32_t                           term;
    int64_t                           now;
    ngx_int_t                         rc;
    ngx_http_leader_election_snap_t  *snap;

    now = kle_now_ms();

    rc = ngx_http_leader_election_write_begin(le, generation);
    if (rc != NGX_OK) {
        return rc;
    }

    snap = &le->sh->snap;

    if (!kle_claim_limit(&snap->claim, until)) {
        ngx_http_leader_election_write_end(le);
        return NGX_OK;
    }

    term = snap->claim.term;

    ngx_http_leader_election_write_end(le);

    ngx_http_leader_election_log_claim(le, ngx_cycle->log, until, term, now);

    return NGX_OK;
}


/*
 * The chaos checker's record of every interval in which a worker may act
 * as leader, on kle_now_ms()'s clock (CLOCK_BOOTTIME): "claim" with now
 * read before the write (a new claim is logged before it is written, too),
 * "none" with now read after it.  At debug level through ngx_log_error(),
 * so that "error_log ... debug_core" shows it in any nginx build.
 */

static void
ngx_http_leader_election_log_claim(ngx_http_leader_election_t *le,
    ngx_log_t *log, int64_t until, int32_t term, int64_t now)
{
    if (until == 0) {
        ngx_log_error(NGX_LOG_DEBUG, log, 0,
                      "leader_election \"%V\": claim none now=%L",
                      &le->name, kle_now_ms());
        return;
    }

    ngx_log_error(NGX_LOG_DEBUG, log, 0,
                  "leader_election \"%V\": claim term=%D until=%L now=%L",
                  &le->name, term, until, now);
}


ngx_int_t
ngx_http_leader_election_heartbeat(ngx_http_leader_election_t *le,
    ngx_atomic_uint_t generation)
{
    ngx_int_t          rc;

    rc = ngx_http_leader_election_write_begin(le, generation);
    if (rc != NGX_OK) {
        return rc;
    }

    le->sh->snap.heartbeat = kle_now_ms();
    le->sh->snap.elector_pid = ngx_pid;

    ngx_http_leader_election_write_end(le);

    return NGX_OK;
}


/* Copies bytes from..to of the snapshot into the same place in snap. */

ngx_int_t
ngx_http_leader_election_read(ngx_http_leader_election_t *le,
    ngx_http_leader_election_snap_t *snap, size_t from, size_t to)
{
    if (kle_seqlock_read(&le->sh->lock, (u_char *) snap + from,
                         (u_char *) &le->sh->snap + from, to - from)
        != 0)
    {
        return NGX_BUSY;
    }

    return NGX_OK;
}


/*
 * The fail-safe: a claim ends at the deadline the elector fixed when it
 * made it, whatever the reader's own configuration says, so that an
 * elector that stopped (paused, killed, cut off, reloaded) cannot leave
 * the workers believing they lead.  now may be late, never early.
 */

ngx_uint_t
ngx_http_leader_election_claimed(ngx_http_leader_election_snap_t *snap,
    int64_t now)
{
    return kle_claim_holds(&snap->claim, now);
}


ngx_uint_t
ngx_http_leader_election_leads(ngx_http_leader_election_t *le,
    int32_t *token)
{
    return ngx_http_leader_election_claim(le->sh, token);
}


ngx_int_t
ngx_http_leader_election_state(ngx_http_leader_election_t *le,
    ngx_http_leader_election_state_t *st)
{
    int64_t                          now;
    ngx_http_leader_election_snap_t  snap;

    st->identity = le->identity;
    st->is_leader = 0;
    st->fencing_token = -1;
    st->transitions = 0;
    st->holder.len = 0;
    st->holder.data = st->holder_data;
    st->holder_address.len = 0;
    st->holder_address.data = st->address_data;
    st->route.len = 0;
    st->route.data = st->address_data;

    if (ngx_http_leader_election_read_fields(le, &snap, claim, address)
        != NGX_OK)
    {
        return NGX_BUSY;
    }

    now = kle_now_ms();

    if (ngx_http_leader_election_claimed(&snap, now)) {
        st->is_leader = 1;
        st->fencing_token = snap.claim.term;
    }

    st->transitions = snap.transitions;

    st->holder.len = ngx_strnlen((u_char *) snap.holder, KLE_ID_MAX);
    ngx_memcpy(st->holder_data, snap.holder, st->holder.len);

    st->holder_address.len = ngx_strnlen((u_char *) snap.address,
                                         KLE_ADDR_MAX);
    ngx_memcpy(st->address_data, snap.address, st->holder_address.len);

    if (st->is_leader) {
        ngx_str_set(&st->route, "self");

    } else if (st->holder_address.len != 0
               && now < snap.lease_until
               && ngx_http_leader_election_other(le, &st->holder,
                                                 &st->holder_address))
    {
        st->route = st->holder_address;
    }

    return NGX_OK;
}


/*
 * Another instance: the lock names another identity (if it names ours,
 * this instance's claim has lapsed, or another instance runs under its
 * identity), and its address is not ours (after a reload that changed
 * the identity, the old one's lease may still run: routing to it would
 * loop back here).
 */

static ngx_uint_t
ngx_http_leader_election_other(ngx_http_leader_election_t *le,
    ngx_str_t *holder, ngx_str_t *address)
{
    if (holder->len == le->identity.len
        && ngx_strncmp(holder->data, le->identity.data, holder->len) == 0)
    {
        return 0;
    }

    if (address->len == le->address.len
        && ngx_strncmp(address->data, le->address.data, address->len) == 0)
    {
        return 0;
    }

    return 1;
}


/*
 * Writers are the elector of the current generation and, for a moment
 * during a reload, that of the previous one (the master too, when a reload
 * changes the lock); the seqlock's writer pid keeps them apart, and a
 * writer whose generation is over writes nothing.  NGX_BUSY: another
 * process, alive, has been writing for NGX_HTTP_LEADER_ELECTION_WRITE_WAIT
 * ms (stopped, swapped out); the caller tries again later.
 */

static ngx_int_t
ngx_http_leader_election_write_begin(ngx_http_leader_election_t *le,
    ngx_atomic_uint_t generation)
{
    int                             rc;
    ngx_http_leader_election_sh_t  *sh;

    sh = le->sh;

    rc = kle_claim_begin(&sh->lock, &sh->snap.claim, (int64_t) ngx_pid,
                         NGX_HTTP_LEADER_ELECTION_WRITE_WAIT);

    if (rc == KLE_SEQ_BUSY) {
        return NGX_BUSY;
    }

    if (rc == KLE_SEQ_TORN) {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "leader_election \"%V\": a process died while "
                      "writing the shared state, its claim is void",
                      &le->name);
    }

    if (sh->generation != generation) {
        kle_seqlock_write_end(&sh->lock);
        return NGX_DECLINED;
    }

    return NGX_OK;
}


static void
ngx_http_leader_election_write_end(ngx_http_leader_election_t *le)
{
    kle_seqlock_write_end(&le->sh->lock);
}
