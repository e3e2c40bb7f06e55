
/*
 * Leader election state for other nginx modules.
 *
 *     le = ngx_http_leader_election_lookup(cf->cycle, &name);
 *     ...
 *     if (ngx_http_leader_election_state(le, &st) == NGX_OK
 *         && st.is_leader)
 *     {
 *         ...
 *     }
 *
 * Reading the state takes no lock and makes no system call but
 * clock_gettime(): it is cheap enough for every request.
 */


#ifndef _NGX_HTTP_LEADER_ELECTION_H_INCLUDED_
#define _NGX_HTTP_LEADER_ELECTION_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


#define NGX_HTTP_LEADER_ELECTION_ID_MAX    256
#define NGX_HTTP_LEADER_ELECTION_ADDR_MAX  128


typedef struct ngx_http_leader_election_s  ngx_http_leader_election_t;


typedef struct {
    ngx_uint_t   is_leader;
    int32_t      transitions;     /* the lock's transition count */
    ngx_str_t    identity;        /* this instance's */
    ngx_str_t    holder;          /* empty if none */
    ngx_str_t    holder_address;  /* empty if none or unknown */

    u_char       holder_data[NGX_HTTP_LEADER_ELECTION_ID_MAX];
    u_char       address_data[NGX_HTTP_LEADER_ELECTION_ADDR_MAX];
} ngx_http_leader_election_state_t;


/*
 * The election called name in cycle's configuration; name NULL or empty
 * means the first one defined.  NULL if there is none.  The result lives as
 * long as the cycle.  At configuration time pass cf->cycle (from
 * postconfiguration on), at run time ngx_cycle.
 */
ngx_http_leader_election_t *ngx_http_leader_election_lookup(
    ngx_cycle_t *cycle, ngx_str_t *name);

/*
 * A consistent snapshot.  NGX_BUSY if the shared state could not be read
 * (its writer died while writing); st->is_leader is then 0.
 */
ngx_int_t ngx_http_leader_election_state(ngx_http_leader_election_t *le,
    ngx_http_leader_election_state_t *st);


#endif /* _NGX_HTTP_LEADER_ELECTION_H_INCLUDED_ */
