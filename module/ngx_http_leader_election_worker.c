
/*
 * The elector role: one process per instance (worker 0, or the only
 * process with "master_process off") runs one kle elector per election,
 * each on a transport of its own over nginx's event loop, and publishes
 * its status to the shared zone.
 *
 * Reload: the master gives the new configuration a new generation; the
 * old worker 0 destroys its electors the moment it sees it (its next
 * event of any kind, before anything else, also while it drains), without
 * releasing, and the new worker 0 finds the record held by this instance's
 * identity and renews it: no transition.  The claim published before
 * stands until the deadline it was made with.  A worker 0 respawned after
 * a crash starts over and resumes the same way.  With "master_process off"
 * a reload starts no new process: the electors stop (that mode is for
 * development only).
 *
 * Shutdown: a release first revokes the published claim, so that no
 * worker claims once the release request may have left.  On "quit" a
 * worker 0 that still drains requests releases at its next tick (within
 * retry_period), waiting for the answer at most as long as exit would; one
 * that has nothing to drain exits at once and releases in exit_process(),
 * as it does on "stop".
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_http.h>

#include "ngx_http_leader_election_module.h"


/* ms before a write the shared state was too busy for is tried again */
#define NGX_HTTP_LEADER_ELECTION_RETRY  100


typedef struct {
    ngx_http_leader_election_t       *le;
    ngx_http_leader_election_loop_t  *loop;
    kle_elector_t                    *elector;   /* NULL once stopped */
    kle_creds_t                       creds;
    ngx_event_t                       event;
    ngx_connection_t                  dummy;     /* the event's data */
    ngx_atomic_uint_t                 generation;
    int64_t                           release_end; /* boot ms */
    int64_t                           limit_until; /* cap, 0: revoke */
    unsigned                          limit:1;     /* before it runs */
    unsigned                          republish:1; /* the zone was busy */
    unsigned                          inherit:1;
    unsigned                          releasing:1;
    unsigned                          exiting:1;
} ngx_http_leader_election_runner_t;


typedef struct {
    ngx_http_leader_election_runner_t  *runners;
    ngx_uint_t                          n;
} ngx_http_leader_election_role_t;


static ngx_int_t ngx_http_leader_election_start(
    ngx_http_leader_election_runner_t *rn);
static void ngx_http_leader_election_tick(ngx_event_t *ev);
static ngx_uint_t ngx_http_leader_election_over(
    ngx_http_leader_election_runner_t *rn);
static ngx_int_t ngx_http_leader_election_guard(void *data);
static void ngx_http_leader_election_quit(
    ngx_http_leader_election_runner_t *rn);
static void ngx_http_leader_election_release_step(
    ngx_http_leader_election_runner_t *rn);
static ngx_msec_t ngx_http_leader_election_release_wait(
    ngx_http_leader_election_t *le);
static void ngx_http_leader_election_retire(
    ngx_http_leader_election_runner_t *rn);
static ngx_uint_t ngx_http_leader_election_unrevoked(
    ngx_http_leader_election_runner_t *rn);
static void ngx_http_leader_election_destroy(
    ngx_http_leader_election_runner_t *rn);
static void ngx_http_leader_election_schedule(void *data, long ms);
static void ngx_http_leader_election_timer(
    ngx_http_leader_election_runner_t *rn, long ms);
static void ngx_http_leader_election_changed(void *data);
static void ngx_http_leader_election_log(void *data, int level,
    const char *msg);


/* what the elector process runs */
static ngx_http_leader_election_role_t  ngx_http_leader_election_role;


static ngx_uint_t  ngx_http_leader_election_log_levels[] = {
    NGX_LOG_ERR,                           /* KLE_LOG_ERR */
    NGX_LOG_WARN,                          /* KLE_LOG_WARN */
    NGX_LOG_NOTICE,                        /* KLE_LOG_NOTICE */
    NGX_LOG_INFO,                          /* KLE_LOG_INFO */
    NGX_LOG_DEBUG                          /* KLE_LOG_DEBUG */
};


ngx_int_t
ngx_http_leader_election_init_process(ngx_cycle_t *cycle)
{
    ngx_uint_t                             i, n;
    ngx_http_leader_election_t           **lep;
    ngx_http_leader_election_runner_t     *runners;
    ngx_http_leader_election_main_conf_t  *lemcf;

    /* cache manager and loader processes are not workers: ngx_worker is 0 */

    if (ngx_process != NGX_PROCESS_SINGLE
        && !(ngx_process == NGX_PROCESS_WORKER && ngx_worker == 0))
    {
        return NGX_OK;
    }

    lemcf = ngx_http_cycle_get_module_main_conf(cycle,
                                            ngx_http_leader_election_module);

    if (lemcf == NULL || lemcf->elections.nelts == 0) {
        return NGX_OK;
    }

    n = lemcf->elections.nelts;

    runners = ngx_calloc(n * sizeof(ngx_http_leader_election_runner_t),
                         cycle->log);
    if (runners == NULL) {
        return NGX_ERROR;
    }

    ngx_http_leader_election_role.runners = runners;
    ngx_http_leader_election_role.n = n;

    lep = lemcf->elections.elts;

    for (i = 0; i < n; i++) {
        runners[i].le = lep[i];

        /* a failure is logged; the other elections still run */
        (void) ngx_http_leader_election_start(&runners[i]);
    }

    return NGX_OK;
}


void
ngx_http_leader_election_exit_process(ngx_cycle_t *cycle)
{
    ngx_uint_t                          i;
    ngx_http_leader_election_runner_t  *runners;

    runners = ngx_http_leader_election_role.runners;

    if (runners == NULL) {
        return;
    }

    for (i = 0; i < ngx_http_leader_election_role.n; i++) {
        ngx_http_leader_election_retire(&runners[i]);
    }

    ngx_free(runners);

    ngx_http_leader_election_role.runners = NULL;
    ngx_http_leader_election_role.n = 0;
}


static ngx_int_t
ngx_http_leader_election_start(ngx_http_leader_election_runner_t *rn)
{
    char                         err[512];
    kle_elector_config_t         cfg;
    ngx_http_leader_election_t  *le;

    le = rn->le;

    /* the elector refreshes the token in a copy of its own */

    if (kle_creds_copy(&rn->creds, le->creds) != 0) {
        ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, 0,
                      "leader_election \"%V\": could not copy the "
                      "credentials", &le->name);
        return NGX_ERROR;
    }

    ngx_memzero(&cfg, sizeof(kle_elector_config_t));

    cfg.name = (char *) le->name.data;
    cfg.election = le->election;
    cfg.lock_kind = (char *) le->lock_kind.data;
    cfg.lock_where = (char *) le->lock_where.data;
    cfg.creds = &rn->creds;
    cfg.hook_started = (char *) le->on_started_leading.data;
    cfg.hook_stopped = (char *) le->on_stopped_leading.data;
    cfg.hook_new_leader = (char *) le->on_new_leader.data;
    cfg.events = le->events;
    /*
     * A reload or a respawn: the claim published before is this one's,
     * unless the master could not revoke it on a reload that changed the
     * identity or the lock.
     */
    rn->generation = le->generation;
    rn->limit = (le->sh->revoke == rn->generation);
    cfg.resume = !rn->limit && ngx_http_leader_election_leads(le, NULL);

    cfg.on_change = ngx_http_leader_election_changed;
    cfg.schedule = ngx_http_leader_election_schedule;
    cfg.log = ngx_http_leader_election_log;
    cfg.data = rn;

    /*
     * A transport per election: a watch holds a connection for minutes,
     * and curl limits the connections to one API server per transport.
     */

    rn->loop = ngx_http_leader_election_loop_create(ngx_cycle->log,
                                     ngx_http_leader_election_guard, rn);
    if (rn->loop == NULL) {
        ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, 0,
                      "leader_election \"%V\": could not create the HTTP "
                      "transport", &le->name);
        kle_creds_free(&rn->creds);
        return NGX_ERROR;
    }

    rn->elector = kle_elector_create(&cfg,
                                 ngx_http_leader_election_loop_http(rn->loop),
                                 err, sizeof(err));

    if (rn->elector == NULL) {
        ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, 0,
                      "leader_election \"%V\": %s", &le->name, err);
        ngx_http_leader_election_loop_destroy(rn->loop);
        rn->loop = NULL;
        kle_creds_free(&rn->creds);
        return NGX_ERROR;
    }

    rn->inherit = 1;

    if (cfg.resume) {
        /* capped, before this elector writes: see _limit() */
        rn->limit = 1;
        rn->limit_until = kle_now_ms() + (int64_t) le->renew_deadline;
    }

    /* a dummy connection, as the event debug log reads ev->data's fd */

    rn->dummy.fd = (ngx_socket_t) -1;
    rn->dummy.data = rn;

    rn->event.handler = ngx_http_leader_election_tick;
    rn->event.data = &rn->dummy;
    rn->event.log = ngx_cycle->log;
    rn->event.cancelable = 1;

    ngx_http_leader_election_schedule(rn, 0);

    return NGX_OK;
}


static void
ngx_http_leader_election_tick(ngx_event_t *ev)
{
    long                                ms;
    ngx_int_t                           rc;
    ngx_connection_t                   *c;
    ngx_http_leader_election_runner_t  *rn;

    c = ev->data;
    rn = c->data;

    /* a newer configuration first: it stops this elector, exiting or not */

    if (rn->elector == NULL || ngx_http_leader_election_over(rn)) {
        return;
    }

    if (rn->releasing) {
        ngx_http_leader_election_release_step(rn);
        return;
    }

    /* "stop": the worker is about to exit; exit_process() releases */

    if (ngx_terminate) {
        return;
    }

    if (ngx_exiting || ngx_quit) {
        ngx_http_leader_election_quit(rn);
        return;
    }

    /*
     * NGX_BUSY: another process, alive, is inside a write of the shared
     * state (a stopped elector of the previous generation): the elector
     * sends nothing before its claim is capped or revoked, and what it
     * could not publish is published again soon.
     */

    if (rn->limit) {
        rc = ngx_http_leader_election_limit(rn->le, rn->generation,
                                            rn->limit_until);
        if (rc == NGX_BUSY) {
            ngx_http_leader_election_timer(rn,
                                           NGX_HTTP_LEADER_ELECTION_RETRY);
            return;
        }

        if (rc == NGX_OK && rn->limit_until == 0) {
            /* revoked: an elector respawned later keeps its own claim */
            (void) ngx_atomic_cmp_set(&rn->le->sh->revoke, rn->generation,
                                      0);
        }

        rn->limit = 0;
    }

    rc = ngx_http_leader_election_heartbeat(rn->le, rn->generation);
    if (rc == NGX_DECLINED) {
        ngx_http_leader_election_destroy(rn);
        return;
    }

    if (rn->republish) {
        ngx_http_leader_election_changed(rn);
    }

    ms = kle_elector_run(rn->elector);

    if (rn->republish
        && (ms < 0 || ms > NGX_HTTP_LEADER_ELECTION_RETRY))
    {
        ms = NGX_HTTP_LEADER_ELECTION_RETRY;
    }

    ngx_http_leader_election_schedule(rn, ms);
}


/* a newer configuration's elector runs the election now: stop at once */

static ngx_uint_t
ngx_http_leader_election_over(ngx_http_leader_election_runner_t *rn)
{
    if (rn->le->sh->generation == rn->generation) {
        return 0;
    }

    ngx_log_error(NGX_LOG_NOTICE, ngx_cycle->log, 0,
                  "leader_election \"%V\": handed over to the reloaded "
                  "configuration", &rn->le->name);

    ngx_http_leader_election_destroy(rn);

    return 1;
}


/* asked by the transport before each of its events */

static ngx_int_t
ngx_http_leader_election_guard(void *data)
{
    ngx_http_leader_election_runner_t *rn = data;

    return ngx_http_leader_election_over(rn) ? NGX_DONE : NGX_OK;
}


/*
 * "quit" while this worker still serves requests: release now rather than
 * when they are done, and keep the worker until the release is answered
 * (a timer that cannot be cancelled), at most release_wait.  Otherwise
 * nothing new starts; a claim ends at its deadline.
 */

static void
ngx_http_leader_election_quit(ngx_http_leader_election_runner_t *rn)
{
    kle_elector_status_t         st;
    ngx_http_leader_election_t  *le;

    le = rn->le;

    kle_elector_status(rn->elector, &st);

    if (!le->release_on_shutdown || st.state != KLE_STATE_LEADING) {
        ngx_http_leader_election_destroy(rn);
        return;
    }

    /* no release while the claim may still be visible: it lapses instead */

    if (ngx_http_leader_election_unrevoked(rn)) {
        return;
    }

    kle_elector_release(rn->elector);

    rn->releasing = 1;
    rn->release_end = kle_now_ms()
                      + ngx_http_leader_election_release_wait(le);
    rn->event.cancelable = 0;

    ngx_http_leader_election_release_step(rn);
}


static void
ngx_http_leader_election_release_step(ngx_http_leader_election_runner_t *rn)
{
    long     ms;
    int64_t  now;

    now = kle_now_ms();

    if (!kle_elector_done(rn->elector)) {

        if (now >= rn->release_end) {
            ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                          "leader_election \"%V\": the lock was not "
                          "released, it expires after lease_duration",
                          &rn->le->name);
            ngx_http_leader_election_destroy(rn);
            return;
        }

        ms = kle_elector_run(rn->elector);

        ngx_http_leader_election_schedule(rn, ms);
        return;
    }

    /* released: the stopped_leading hook gets what is left of the wait */

    if (now < rn->release_end
        && kle_http_pending(ngx_http_leader_election_loop_http(rn->loop)))
    {
        ngx_http_leader_election_timer(rn, 10);
        return;
    }

    ngx_http_leader_election_destroy(rn);
}


/*
 * The worker serves nothing more, or is about to stop: waiting for the
 * release delays no request.  On SIGTERM the master sends SIGKILL after
 * about 1.5 s, so the wait is shorter then.
 */

static ngx_msec_t
ngx_http_leader_election_release_wait(ngx_http_leader_election_t *le)
{
    return ngx_min(le->renew_deadline / 2,
                   (ngx_msec_t) (ngx_terminate ? 1000 : 2000));
}


static void
ngx_http_leader_election_retire(ngx_http_leader_election_runner_t *rn)
{
    int64_t                      left;
    ngx_msec_t                   timeout;
    kle_elector_status_t         st;
    ngx_http_leader_election_t  *le;

    if (rn->elector == NULL) {
        return;
    }

    le = rn->le;
    rn->exiting = 1;

    if (rn->event.timer_set) {
        ngx_del_timer(&rn->event);
    }

    kle_elector_status(rn->elector, &st);

    if (le->sh->generation != rn->generation
        || !le->release_on_shutdown
        || st.state != KLE_STATE_LEADING)
    {
        /* a reload, or nothing to release */
        ngx_http_leader_election_destroy(rn);
        return;
    }

    timeout = ngx_http_leader_election_release_wait(le);

    if (rn->releasing) {
        /* started at "quit": what is left of its wait */
        left = rn->release_end - kle_now_ms();
        timeout = ngx_min(timeout, (ngx_msec_t) ngx_max(left, 1));

    } else if (ngx_http_leader_election_unrevoked(rn)) {
        return;
    }

    if (kle_elector_release_sync(rn->elector, (long) timeout) != 0) {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "leader_election \"%V\": the lock was not "
                      "released, it expires after lease_duration",
                      &le->name);
    }

    ngx_http_leader_election_destroy(rn);
}


/* never from within the elector's callbacks */

/*
 * Revokes the claim before a release is sent.  When a live writer holds
 * the shared state, the claim may still be visible: no release then (the
 * lock expires instead), and the runner is destroyed.  1 if so.
 */

static ngx_uint_t
ngx_http_leader_election_unrevoked(ngx_http_leader_election_runner_t *rn)
{
    ngx_http_leader_election_t  *le;

    le = rn->le;

    if (ngx_http_leader_election_limit(le, rn->generation, 0) != NGX_BUSY) {
        return 0;
    }

    ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                  "leader_election \"%V\": the claim could not be "
                  "revoked (process %L is writing the shared state), "
                  "the lock is not released, it expires after "
                  "lease_duration", &le->name, le->sh->lock.writer);

    ngx_http_leader_election_destroy(rn);

    return 1;
}


static void
ngx_http_leader_election_destroy(ngx_http_leader_election_runner_t *rn)
{
    if (rn->event.timer_set) {
        ngx_del_timer(&rn->event);
    }

    if (rn->event.posted) {
        ngx_delete_posted_event(&rn->event);
    }

    rn->releasing = 0;

    if (rn->elector == NULL) {
        return;
    }

    kle_elector_stop(rn->elector);
    kle_elector_destroy(rn->elector);
    rn->elector = NULL;

    ngx_http_leader_election_loop_destroy(rn->loop);
    rn->loop = NULL;

    kle_creds_free(&rn->creds);
}


static void
ngx_http_leader_election_schedule(void *data, long ms)
{
    ngx_http_leader_election_runner_t *rn = data;

    int64_t  left;

    if (rn->elector == NULL || rn->exiting) {
        return;
    }

    if (rn->releasing) {

        /* a release that is done: no need to wait for the next tick */

        if (kle_elector_done(rn->elector)) {
            ms = 1;
        }

        left = rn->release_end - kle_now_ms();

        if (ms < 0 || ms > left) {
            ms = (long) left;
        }

    } else if (ms < 0 || ms > (long) rn->le->retry_period) {

        /* at least every retry_period: the heartbeat shows it alive */

        ms = (long) rn->le->retry_period;
    }

    ngx_http_leader_election_timer(rn, ms);
}


static void
ngx_http_leader_election_timer(ngx_http_leader_election_runner_t *rn,
    long ms)
{
    /* at least 1 ms: a timer due now would run again in the same pass */

    if (ms < 1) {
        ms = 1;
    }

    /* a timer re-added within 300 ms of its old expiry would be ignored */

    if (rn->event.timer_set) {
        ngx_del_timer(&rn->event);
    }

    ngx_add_timer(&rn->event, (ngx_msec_t) ms);
}


static void
ngx_http_leader_election_changed(void *data)
{
    ngx_http_leader_election_runner_t *rn = data;

    ngx_int_t             rc;
    kle_elector_status_t  st;

    kle_elector_status(rn->elector, &st);

    /*
     * A new elector (after a reload or a crash) first reads the record;
     * while it is this instance's (its identity, and its nonce or none)
     * and is not yet renewed, the claim published before stands, until
     * the deadline it was made with.
     */

    if (rn->inherit
        && (st.state == KLE_STATE_LEADING
            || (st.state != KLE_STATE_STARTING && !st.record_mine)))
    {
        rn->inherit = 0;
    }

    rc = ngx_http_leader_election_publish(rn->le, rn->generation, &st,
                                          rn->inherit);

    rn->republish = (rc == NGX_BUSY);

    if (rc == NGX_DECLINED) {
        /* superseded: the next tick stops the elector, outside its calls */
        ngx_http_leader_election_schedule(rn, 0);
    }
}


static void
ngx_http_leader_election_log(void *data, int level, const char *msg)
{
    ngx_http_leader_election_runner_t *rn = data;

    ngx_uint_t  lvl;

    if (level < KLE_LOG_ERR || level > KLE_LOG_DEBUG) {
        level = KLE_LOG_ERR;
    }

    lvl = ngx_http_leader_election_log_levels[level];

    ngx_log_error(lvl, ngx_cycle->log, 0,
                  "leader_election \"%V\": %s", &rn->le->name, msg);
}
