
/*
 * Declarations shared by the files of ngx_http_leader_election_module.
 */


#ifndef _NGX_HTTP_LEADER_ELECTION_MODULE_H_INCLUDED_
#define _NGX_HTTP_LEADER_ELECTION_MODULE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "kle_claim.h"
#include "kle_elector.h"
#include "ngx_http_leader_election.h"


#define NGX_HTTP_LEADER_ELECTION_ZONE_PAGES  8

/* the instance nonce, as a new binary (USR2) inherits it */
#define NGX_HTTP_LEADER_ELECTION_INSTANCE_ENV  "NGX_LEADER_ELECTION_INSTANCE"


/*
 * What the elector publishes.  Readers copy the fields they need under the
 * seqlock (lib/kle_claim.h).  The claim comes first, so that the leader
 * check copies 16 bytes of one cache line: claim.until is an absolute
 * deadline on kle_now_ms()'s clock (CLOCK_BOOTTIME, which counts time
 * spent suspended), fixed by the elector that made the claim, so that no
 * reader (of this configuration or another) has to know the timings it
 * was made under.
 */
typedef struct {
    kle_claim_t                       claim;
    kle_state_t                       state;
    int32_t                           transitions;
    int64_t                           lease_until;  /* boot ms the holder's
                                                       lease ends as seen */
    int64_t                           renew_start;  /* boot ms, 0 if not */
    ngx_pid_t                         elector_pid;
    int64_t                           heartbeat;    /* boot ms, 0 if never */
    int64_t                           acquire_time; /* unix us, 0 if unset */
    int64_t                           renew_time;
    uint64_t                          api_requests;
    uint64_t                          api_failures;
    char                              holder[KLE_ID_MAX];
    char                              address[KLE_ADDR_MAX];
    char                              last_error[256];
    uint32_t                          identity_conflict;
} ngx_http_leader_election_snap_t;


typedef struct {
    kle_seqlock_t                     lock;        /* guards snap */
    ngx_atomic_t                      generation;  /* configuration loads */
    ngx_atomic_t                      revoke;      /* by this generation */
    ngx_http_leader_election_snap_t   snap;
} ngx_http_leader_election_sh_t;


enum {
    NGX_HTTP_LEADER_ELECTION_IN_CLUSTER = 0,
    NGX_HTTP_LEADER_ELECTION_KUBECONFIG,
    NGX_HTTP_LEADER_ELECTION_URL
};


struct ngx_http_leader_election_s {
    ngx_str_t                         name;
    ngx_shm_zone_t                   *shm_zone;
    ngx_http_leader_election_sh_t    *sh;
    ngx_atomic_uint_t                 generation;  /* of this cycle */
    ngx_uint_t                        lock_changed; /* since the last one */
    ngx_uint_t                        lock_moved;   /* kind or NS/NAME too */

    kle_election_config_t             election;    /* identity, ms timings */
    ngx_str_t                         identity;
    ngx_str_t                         address;
    ngx_msec_t                        lease_duration;
    ngx_msec_t                        renew_deadline;
    ngx_msec_t                        retry_period;

    ngx_str_t                         lock_kind;   /* all NUL-terminated */
    ngx_str_t                         lock_where;
    ngx_str_t                         lock_namespace;
    ngx_str_t                         lock_name;

    ngx_uint_t                        api_server;
    ngx_str_t                         server;      /* URL or kubeconfig */
    ngx_str_t                         context;
    ngx_str_t                         token_file;
    ngx_str_t                         ca_file;
    ngx_str_t                         client_cert;
    ngx_str_t                         client_key;
    kle_creds_t                      *creds;

    ngx_flag_t                        release_on_shutdown;
    ngx_flag_t                        events;      /* Kubernetes Events */
    ngx_str_t                         on_started_leading;
    ngx_str_t                         on_stopped_leading;
    ngx_str_t                         on_new_leader;
};


typedef struct {
    ngx_array_t                       elections;  /* of election pointers */
    ngx_array_t                       refs;       /* status, healthz NAME */
    ngx_array_t                       first;      /* unsuffixed variables */
} ngx_http_leader_election_main_conf_t;


typedef struct {
    ngx_http_leader_election_t       *election;   /* status or healthz */
} ngx_http_leader_election_loc_conf_t;


typedef struct ngx_http_leader_election_loop_s
    ngx_http_leader_election_loop_t;

/* NGX_OK: go on; else the loop was destroyed, touch nothing of it */
typedef ngx_int_t (*ngx_http_leader_election_guard_pt)(void *data);


/* _conf.c */
extern ngx_command_t  ngx_http_leader_election_commands[];

void *ngx_http_leader_election_create_main_conf(ngx_conf_t *cf);
char *ngx_http_leader_election_init_main_conf(ngx_conf_t *cf, void *conf);
void *ngx_http_leader_election_create_loc_conf(ngx_conf_t *cf);

/* _shm.c */
ngx_int_t ngx_http_leader_election_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
void ngx_http_leader_election_new_generation(ngx_http_leader_election_t *le,
    ngx_log_t *log);
ngx_int_t ngx_http_leader_election_publish(ngx_http_leader_election_t *le,
    ngx_atomic_uint_t generation, kle_elector_status_t *st,
    ngx_uint_t keep_claim);
ngx_int_t ngx_http_leader_election_limit(ngx_http_leader_election_t *le,
    ngx_atomic_uint_t generation, int64_t until);
ngx_int_t ngx_http_leader_election_heartbeat(ngx_http_leader_election_t *le,
    ngx_atomic_uint_t generation);
ngx_int_t ngx_http_leader_election_read(ngx_http_leader_election_t *le,
    ngx_http_leader_election_snap_t *snap, size_t from, size_t to);
ngx_uint_t ngx_http_leader_election_claimed(
    ngx_http_leader_election_snap_t *snap, int64_t now);

/* copies the fields first..last of the snapshot */
#define ngx_http_leader_election_read_fields(le, snap, first, last)          \
    ngx_http_leader_election_read(le, snap,                                 \
        offsetof(ngx_http_leader_election_snap_t, first),                    \
        offsetof(ngx_http_leader_election_snap_t, last)                      \
        + sizeof(((ngx_http_leader_election_snap_t *) 0)->last))

/* the leader check, inlined where every request evaluates it */
#define ngx_http_leader_election_claim(sh, token)                            \
    kle_claim_leads(&(sh)->lock, &(sh)->snap.claim, token)


/* _curl.c */
ngx_http_leader_election_loop_t *ngx_http_leader_election_loop_create(
    ngx_log_t *log, ngx_http_leader_election_guard_pt guard, void *data);
kle_http_t *ngx_http_leader_election_loop_http(
    ngx_http_leader_election_loop_t *loop);
void ngx_http_leader_election_loop_destroy(
    ngx_http_leader_election_loop_t *loop);

/* _worker.c */
ngx_int_t ngx_http_leader_election_init_process(ngx_cycle_t *cycle);
void ngx_http_leader_election_exit_process(ngx_cycle_t *cycle);

/* _variables.c */
ngx_int_t ngx_http_leader_election_add_variables(ngx_conf_t *cf,
    ngx_http_leader_election_t *le);
void ngx_http_leader_election_first_variables(ngx_conf_t *cf);

/* _status.c */
ngx_int_t ngx_http_leader_election_status_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_leader_election_healthz_handler(ngx_http_request_t *r);


extern ngx_module_t  ngx_http_leader_election_module;


#endif /* _NGX_HTTP_LEADER_ELECTION_MODULE_H_INCLUDED_ */
