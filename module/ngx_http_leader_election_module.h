
/*
 * Declarations shared by the files of ngx_http_leader_election_module.
 */


#ifndef _NGX_HTTP_LEADER_ELECTION_MODULE_H_INCLUDED_
#define _NGX_HTTP_LEADER_ELECTION_MODULE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "kle_elector.h"
#include "ngx_http_leader_election.h"


#define NGX_HTTP_LEADER_ELECTION_ZONE_PAGES  8


/*
 * What the elector publishes.  Readers copy the fields they need under the
 * seqlock; renew_start and leading come first so that the hot path copies
 * them in one go.
 */
typedef struct {
    int64_t                           renew_start;  /* mono ms, 0 if not */
    ngx_uint_t                        leading;
    kle_state_t                       state;
    int32_t                           transitions;
    ngx_pid_t                         elector_pid;
    int64_t                           heartbeat;    /* mono ms, 0 if never */
    int64_t                           acquire_time; /* unix us, 0 if unset */
    int64_t                           renew_time;
    uint64_t                          api_requests;
    uint64_t                          api_failures;
    char                              holder[KLE_ID_MAX];
    char                              address[KLE_ADDR_MAX];
    char                              last_error[256];
} ngx_http_leader_election_snap_t;


typedef struct {
    ngx_atomic_t                      seq;         /* odd while written */
    ngx_atomic_t                      generation;  /* configuration loads */
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
    ngx_str_t                         on_started_leading;
    ngx_str_t                         on_stopped_leading;
    ngx_str_t                         on_new_leader;
};


typedef struct {
    ngx_array_t                       elections;  /* of election pointers */
    ngx_array_t                       refs;       /* status, healthz NAME */
} ngx_http_leader_election_main_conf_t;


typedef struct {
    ngx_http_leader_election_t       *election;   /* status or healthz */
} ngx_http_leader_election_loc_conf_t;


typedef struct ngx_http_leader_election_loop_s
    ngx_http_leader_election_loop_t;


/* _shm.c */
ngx_int_t ngx_http_leader_election_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
void ngx_http_leader_election_new_generation(ngx_http_leader_election_t *le);
ngx_int_t ngx_http_leader_election_publish(ngx_http_leader_election_t *le,
    ngx_atomic_uint_t generation, kle_elector_status_t *st,
    ngx_uint_t keep_lead);
ngx_int_t ngx_http_leader_election_heartbeat(ngx_http_leader_election_t *le,
    ngx_atomic_uint_t generation);
ngx_int_t ngx_http_leader_election_read(ngx_http_leader_election_t *le,
    ngx_http_leader_election_snap_t *snap, size_t from, size_t to);
ngx_uint_t ngx_http_leader_election_is_leader(ngx_http_leader_election_t *le,
    ngx_http_leader_election_snap_t *snap, int64_t now);

/* copies the fields first..last of the snapshot */
#define ngx_http_leader_election_read_fields(le, snap, first, last)          \
    ngx_http_leader_election_read(le, snap,                                 \
        offsetof(ngx_http_leader_election_snap_t, first),                    \
        offsetof(ngx_http_leader_election_snap_t, last)                      \
        + sizeof(((ngx_http_leader_election_snap_t *) 0)->last))

/* _curl.c */
ngx_http_leader_election_loop_t *ngx_http_leader_election_loop_create(
    ngx_log_t *log);
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

/* _status.c */
ngx_int_t ngx_http_leader_election_status_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_leader_election_healthz_handler(ngx_http_request_t *r);


extern ngx_module_t  ngx_http_leader_election_module;


#endif /* _NGX_HTTP_LEADER_ELECTION_MODULE_H_INCLUDED_ */
