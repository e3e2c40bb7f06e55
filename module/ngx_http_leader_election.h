
/*
 * Reading an election from another nginx module (the stream module, or any
 * other).  Elections are defined in http{}; their state lives in shared
 * memory that every process of the instance reads.
 *
 *     le = ngx_http_leader_election_lookup(cf->cycle, &name);
 *     if (le == NULL) {
 *         ... "no leader_election NAME is defined in http{}" ...
 *     }
 *     ...
 *     if (ngx_http_leader_election_leads(le, &token)) {
 *         ... act as leader, pass token to the guarded system ...
 *     }
 *
 * The readers take no lock and make no system call but one
 * clock_gettime(CLOCK_BOOTTIME) (the vDSO's where the kernel offers it):
 * they are cheap enough for every request.  Call them in
 * worker processes only (the zone is mapped when the workers start).
 */


#ifndef _NGX_HTTP_LEADER_ELECTION_H_INCLUDED_
#define _NGX_HTTP_LEADER_ELECTION_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


#define NGX_HTTP_LEADER_ELECTION_ID_MAX    256
#define NGX_HTTP_LEADER_ELECTION_ADDR_MAX  128


typedef struct ngx_http_leader_election_s  ngx_http_leader_election_t;


/* the values of the $leader_election_* variables */
typedef enum {
    NGX_HTTP_LEADER_ELECTION_IS_LEADER = 0,
    NGX_HTTP_LEADER_ELECTION_HOLDER,
    NGX_HTTP_LEADER_ELECTION_HOLDER_ADDRESS,
    NGX_HTTP_LEADER_ELECTION_IDENTITY,
    NGX_HTTP_LEADER_ELECTION_TRANSITIONS,
    NGX_HTTP_LEADER_ELECTION_FENCING_TOKEN,
    NGX_HTTP_LEADER_ELECTION_ROUTE,
    NGX_HTTP_LEADER_ELECTION_NVALUES
} ngx_http_leader_election_value_e;


typedef struct {
    ngx_uint_t   is_leader;
    int32_t      fencing_token;   /* the term claimed; -1 if not leader */
    int32_t      transitions;     /* the lock's, as last observed */
    ngx_str_t    identity;        /* this instance's */
    ngx_str_t    holder;          /* empty if none */
    ngx_str_t    holder_address;  /* empty if none or not valid */

    u_char       holder_data[NGX_HTTP_LEADER_ELECTION_ID_MAX];
    u_char       address_data[NGX_HTTP_LEADER_ELECTION_ADDR_MAX];

    /* "self", holder_address, or empty: $leader_election_route */
    ngx_str_t    route;
} ngx_http_leader_election_state_t;


/* the variables' names by value: "leader_election_is_leader", ... */
extern ngx_str_t  ngx_http_leader_election_names[];


/*
 * The election called name in cycle's configuration; name NULL or empty
 * means the first one defined.  NULL if there is none, or if no http{}
 * has been parsed yet.  The result lives as long as the cycle.  At
 * configuration time pass cf->cycle, at run time ngx_cycle.
 */
ngx_http_leader_election_t *ngx_http_leader_election_lookup(
    ngx_cycle_t *cycle, ngx_str_t *name);

/* the n-th election defined (from 0), NULL past the last: for _NAME forms */
ngx_http_leader_election_t *ngx_http_leader_election_nth(
    ngx_cycle_t *cycle, ngx_uint_t n);
ngx_str_t *ngx_http_leader_election_name(ngx_http_leader_election_t *le);

/*
 * 1 if this instance leads: the claim published by its elector has not
 * ended (and was not revoked by a release).  token (may be NULL) then gets
 * the claim's term, read in the same snapshot, for fencing.  0 if not, or
 * if the shared state cannot be read.
 */
ngx_uint_t ngx_http_leader_election_leads(ngx_http_leader_election_t *le,
    int32_t *token);

/*
 * The text of one of the $leader_election_* variables, as the http
 * module's own variables show it: "1"/"0", a string, a number, or empty.
 * Allocates from pool when needed.  NGX_ERROR only if that fails.
 */
ngx_int_t ngx_http_leader_election_value(ngx_http_leader_election_t *le,
    ngx_http_leader_election_value_e what, ngx_pool_t *pool,
    ngx_str_t *value);

/*
 * A consistent snapshot of everything above.  NGX_BUSY if the shared
 * state could not be read (its writer died while writing); st->is_leader
 * is then 0 and st->route empty.  holder, holder_address and route point
 * into st itself or to static text.
 *
 * route: "self" if this instance leads; else the holder's address if
 * another instance holds the lock, advertised a valid address that is not
 * this instance's own, and its lease runs as this instance observed it
 * (from the last change seen, for the record's lease duration); else
 * empty: no holder known, no address, a lapsed lease, or the lock names
 * this instance while its claim has lapsed.
 */
ngx_int_t ngx_http_leader_election_state(ngx_http_leader_election_t *le,
    ngx_http_leader_election_state_t *st);


#endif /* _NGX_HTTP_LEADER_ELECTION_H_INCLUDED_ */
