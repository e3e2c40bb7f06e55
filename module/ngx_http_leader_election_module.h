
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
 * seqlock.  The claim comes first, so that the leader check copies 16 bytes
 * of one cache line: claim_until is an absolute CLOCK_MONOTONIC deadline,
 * fixed by the elector that made the claim, so that no reader (of this
 * configuration or another) has to know the timings it was made under.
 */
typedef struct {
    int64_t                           claim_until;  /* mono ms, 0: none */
    int32_t                           term;         /* of the claim */
    uint32_t                          leading;
    kle_state_t                       state;
    int32_t                           transitions;
    int64_t                           lease_until;  /* mono ms the holder's
                                                       lease ends as seen */
    int64_t                           renew_start;  /* mono ms, 0 if not */
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

/* readers of the claim order loads only: on x86 the processor keeps them */
#if (( __i386__ || __i386 || __amd64__ || __amd64 )                           \
     && ( __GNUC__ || __clang__ ))
#define ngx_http_leader_election_load_barrier()                              \
    __asm__ volatile ("" ::: "memory")
#else
#define ngx_http_leader_election_load_barrier()  ngx_memory_barrier()
#endif


/*
 * The leader check, inlined where every request evaluates it: the claim
 * (16 bytes) under the seqlock, and a coarse clock that may be late but
 * never early, so that a claim can only end early.  token gets the term
 * of the claim, from the same copy.
 */

static ngx_inline ngx_uint_t
ngx_http_leader_election_claim(ngx_http_leader_election_sh_t *sh,
    int32_t *token)
{
    int32_t            term;
    int64_t            until;
    uint32_t           leading;
    ngx_uint_t         n;
    ngx_atomic_uint_t  seq;

    for (n = 1000; n; n--) {

        seq = sh->seq;

        ngx_http_leader_election_load_barrier();

        until = sh->snap.claim_until;
        term = sh->snap.term;
        leading = sh->snap.leading;

        ngx_http_leader_election_load_barrier();

        if ((seq & 1) == 0 && sh->seq == seq) {

            if (!leading || until == 0 || kle_now_bound_ms() >= until) {
                return 0;
            }

            if (token) {
                *token = term;
            }

            return 1;
        }

        /* a write is under way, or ended while we read */
        ngx_cpu_pause();
    }

    /* the writer died while writing */
    return 0;
}


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
