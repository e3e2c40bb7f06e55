
/*
 * $leader_election_is_leader, _holder, _holder_address, _identity and
 * _transitions: the first election's; each has a _NAME form per election.
 * Evaluated on every use (requests may run for longer than a lease), each
 * reads only the fields it shows.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_leader_election_module.h"


static ngx_int_t ngx_http_leader_election_is_leader_variable(
    ngx_http_request_t *r, ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_leader_election_holder_variable(
    ngx_http_request_t *r, ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_leader_election_address_variable(
    ngx_http_request_t *r, ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_leader_election_string(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data, size_t off, size_t size);
static ngx_int_t ngx_http_leader_election_identity_variable(
    ngx_http_request_t *r, ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_leader_election_transitions_variable(
    ngx_http_request_t *r, ngx_http_variable_value_t *v, uintptr_t data);
static ngx_http_leader_election_t *ngx_http_leader_election_get(
    ngx_http_request_t *r, uintptr_t data);
static void ngx_http_leader_election_set(ngx_http_variable_value_t *v,
    u_char *data, size_t len);


static ngx_http_variable_t  ngx_http_leader_election_vars[] = {

    { ngx_string("leader_election_is_leader"), NULL,
      ngx_http_leader_election_is_leader_variable, 0,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("leader_election_holder"), NULL,
      ngx_http_leader_election_holder_variable, 0,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("leader_election_holder_address"), NULL,
      ngx_http_leader_election_address_variable, 0,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("leader_election_identity"), NULL,
      ngx_http_leader_election_identity_variable, 0,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("leader_election_transitions"), NULL,
      ngx_http_leader_election_transitions_variable, 0,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


/*
 * le NULL: the unsuffixed names, which follow the first election (data 0);
 * else the names suffixed with "_" and its name.
 */

ngx_int_t
ngx_http_leader_election_add_variables(ngx_conf_t *cf,
    ngx_http_leader_election_t *le)
{
    ngx_str_t             name;
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_leader_election_vars; v->name.len; v++) {

        if (le == NULL) {
            name = v->name;

        } else {
            name.len = v->name.len + 1 + le->name.len;
            name.data = ngx_pnalloc(cf->pool, name.len);
            if (name.data == NULL) {
                return NGX_ERROR;
            }

            ngx_sprintf(name.data, "%V_%V", &v->name, &le->name);
        }

        var = ngx_http_add_variable(cf, &name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = (uintptr_t) le;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_leader_election_is_leader_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_uint_t                        leader;
    ngx_http_leader_election_t       *le;
    ngx_http_leader_election_snap_t   snap;

    le = ngx_http_leader_election_get(r, data);

    leader = 0;

    if (le != NULL
        && ngx_http_leader_election_read_fields(le, &snap, renew_start,
                                                leading)
           == NGX_OK)
    {
        leader = ngx_http_leader_election_is_leader(le, &snap, kle_now_ms());
    }

    ngx_http_leader_election_set(v, (u_char *) (leader ? "1" : "0"), 1);

    return NGX_OK;
}


static ngx_int_t
ngx_http_leader_election_holder_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    return ngx_http_leader_election_string(r, v, data,
                          offsetof(ngx_http_leader_election_snap_t, holder),
                          KLE_ID_MAX);
}


static ngx_int_t
ngx_http_leader_election_address_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    return ngx_http_leader_election_string(r, v, data,
                          offsetof(ngx_http_leader_election_snap_t, address),
                          KLE_ADDR_MAX);
}


static ngx_int_t
ngx_http_leader_election_string(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data, size_t off, size_t size)
{
    u_char                           *s, *p;
    size_t                            len;
    ngx_http_leader_election_t       *le;
    ngx_http_leader_election_snap_t   snap;

    le = ngx_http_leader_election_get(r, data);

    if (le == NULL
        || ngx_http_leader_election_read(le, &snap, off, off + size) != NGX_OK)
    {
        ngx_http_leader_election_set(v, (u_char *) "", 0);
        return NGX_OK;
    }

    s = (u_char *) &snap + off;
    len = ngx_strnlen(s, size);

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(p, s, len);

    ngx_http_leader_election_set(v, p, len);

    return NGX_OK;
}


static ngx_int_t
ngx_http_leader_election_identity_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_leader_election_t  *le;

    le = ngx_http_leader_election_get(r, data);

    if (le == NULL) {
        ngx_http_leader_election_set(v, (u_char *) "", 0);

    } else {
        ngx_http_leader_election_set(v, le->identity.data, le->identity.len);
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_leader_election_transitions_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char                           *p;
    ngx_http_leader_election_t       *le;
    ngx_http_leader_election_snap_t   snap;

    le = ngx_http_leader_election_get(r, data);

    if (le == NULL
        || ngx_http_leader_election_read_fields(le, &snap, transitions,
                                                transitions)
           != NGX_OK)
    {
        ngx_http_leader_election_set(v, (u_char *) "0", 1);
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, NGX_INT32_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ngx_http_leader_election_set(v, p,
                                 ngx_sprintf(p, "%D", snap.transitions) - p);

    return NGX_OK;
}


static ngx_http_leader_election_t *
ngx_http_leader_election_get(ngx_http_request_t *r, uintptr_t data)
{
    ngx_http_leader_election_main_conf_t  *lemcf;

    if (data) {
        return (ngx_http_leader_election_t *) data;
    }

    lemcf = ngx_http_get_module_main_conf(r, ngx_http_leader_election_module);

    if (lemcf->elections.nelts == 0) {
        return NULL;
    }

    return ((ngx_http_leader_election_t **) lemcf->elections.elts)[0];
}


static void
ngx_http_leader_election_set(ngx_http_variable_value_t *v, u_char *data,
    size_t len)
{
    v->len = len;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;
    v->data = data;
}
