
/*
 * $leader_election_is_leader, _holder, _holder_address, _identity,
 * _transitions, _fencing_token and _route: the first election's; each has
 * a _NAME form per election.  Evaluated on every use (requests may run for
 * longer than a claim), each reads only the fields it shows (_route: the
 * claim, holder and lease of one snapshot).  The texts come
 * from ngx_http_leader_election_value(), which other modules (stream{})
 * use for their own variables of the same names.
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
static ngx_int_t ngx_http_leader_election_identity_variable(
    ngx_http_request_t *r, ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_leader_election_transitions_variable(
    ngx_http_request_t *r, ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_leader_election_token_variable(
    ngx_http_request_t *r, ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_leader_election_route_variable(
    ngx_http_request_t *r, ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_leader_election_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data,
    ngx_http_leader_election_value_e what);
static ngx_int_t ngx_http_leader_election_string(
    ngx_http_leader_election_t *le, ngx_pool_t *pool, size_t off,
    size_t size, ngx_str_t *value);


ngx_str_t  ngx_http_leader_election_names[] = {
    ngx_string("leader_election_is_leader"),
    ngx_string("leader_election_holder"),
    ngx_string("leader_election_holder_address"),
    ngx_string("leader_election_identity"),
    ngx_string("leader_election_transitions"),
    ngx_string("leader_election_fencing_token"),
    ngx_string("leader_election_route"),
    ngx_null_string
};


/* by value, as the names above */
static ngx_http_get_variable_pt  ngx_http_leader_election_handlers[] = {
    ngx_http_leader_election_is_leader_variable,
    ngx_http_leader_election_holder_variable,
    ngx_http_leader_election_address_variable,
    ngx_http_leader_election_identity_variable,
    ngx_http_leader_election_transitions_variable,
    ngx_http_leader_election_token_variable,
    ngx_http_leader_election_route_variable
};


/*
 * le NULL: the unsuffixed names, which follow the first election once the
 * elections are known (ngx_http_leader_election_first_variables()); else
 * the names suffixed with "_" and its name.
 */

ngx_int_t
ngx_http_leader_election_add_variables(ngx_conf_t *cf,
    ngx_http_leader_election_t *le)
{
    ngx_str_t                             *base, name;
    ngx_uint_t                             i;
    ngx_http_variable_t                   *var, **first;
    ngx_http_leader_election_main_conf_t  *lemcf;

    lemcf = ngx_http_conf_get_module_main_conf(cf,
                                            ngx_http_leader_election_module);

    for (i = 0; i < NGX_HTTP_LEADER_ELECTION_NVALUES; i++) {

        base = &ngx_http_leader_election_names[i];

        if (le == NULL) {
            name = *base;

        } else {
            name.len = base->len + 1 + le->name.len;
            name.data = ngx_pnalloc(cf->pool, name.len);
            if (name.data == NULL) {
                return NGX_ERROR;
            }

            ngx_sprintf(name.data, "%V_%V", base, &le->name);
        }

        var = ngx_http_add_variable(cf, &name, NGX_HTTP_VAR_NOCACHEABLE);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = ngx_http_leader_election_handlers[i];
        var->data = (uintptr_t) le;

        if (le == NULL) {
            first = ngx_array_push(&lemcf->first);
            if (first == NULL) {
                return NGX_ERROR;
            }

            *first = var;
        }
    }

    return NGX_OK;
}


/* no lookup per request: the unsuffixed variables hold the first election */

void
ngx_http_leader_election_first_variables(ngx_conf_t *cf)
{
    ngx_uint_t                             i;
    ngx_http_variable_t                  **var;
    ngx_http_leader_election_main_conf_t  *lemcf;

    lemcf = ngx_http_conf_get_module_main_conf(cf,
                                            ngx_http_leader_election_module);

    if (lemcf->elections.nelts == 0) {
        return;
    }

    var = lemcf->first.elts;

    for (i = 0; i < lemcf->first.nelts; i++) {
        var[i]->data = (uintptr_t)
                       ((ngx_http_leader_election_t **)
                        lemcf->elections.elts)[0];
    }
}


ngx_int_t
ngx_http_leader_election_value(ngx_http_leader_election_t *le,
    ngx_http_leader_election_value_e what, ngx_pool_t *pool,
    ngx_str_t *value)
{
    u_char                            *p;
    int32_t                            n;
    ngx_http_leader_election_snap_t    snap;
    ngx_http_leader_election_state_t   st;

    switch (what) {

    case NGX_HTTP_LEADER_ELECTION_IS_LEADER:

        if (le != NULL && ngx_http_leader_election_leads(le, NULL)) {
            ngx_str_set(value, "1");

        } else {
            ngx_str_set(value, "0");
        }

        return NGX_OK;

    case NGX_HTTP_LEADER_ELECTION_HOLDER:
        return ngx_http_leader_election_string(le, pool,
                           offsetof(ngx_http_leader_election_snap_t, holder),
                           KLE_ID_MAX, value);

    case NGX_HTTP_LEADER_ELECTION_HOLDER_ADDRESS:
        return ngx_http_leader_election_string(le, pool,
                           offsetof(ngx_http_leader_election_snap_t, address),
                           KLE_ADDR_MAX, value);

    case NGX_HTTP_LEADER_ELECTION_IDENTITY:

        if (le == NULL) {
            ngx_str_set(value, "");

        } else {
            *value = le->identity;
        }

        return NGX_OK;

    case NGX_HTTP_LEADER_ELECTION_TRANSITIONS:

        if (le == NULL
            || ngx_http_leader_election_read_fields(le, &snap, transitions,
                                                    transitions)
               != NGX_OK)
        {
            ngx_str_set(value, "0");
            return NGX_OK;
        }

        n = snap.transitions;
        break;

    case NGX_HTTP_LEADER_ELECTION_FENCING_TOKEN:

        /* the term of the claim that makes this instance the leader */

        if (le == NULL || !ngx_http_leader_election_leads(le, &n)) {
            ngx_str_set(value, "");
            return NGX_OK;
        }

        break;

    case NGX_HTTP_LEADER_ELECTION_ROUTE:

        /* the leader check, holder and lease of one snapshot */

        if (le == NULL
            || ngx_http_leader_election_state(le, &st) != NGX_OK
            || st.route.len == 0)
        {
            ngx_str_set(value, "");
            return NGX_OK;
        }

        value->data = ngx_pnalloc(pool, st.route.len);
        if (value->data == NULL) {
            return NGX_ERROR;
        }

        value->len = st.route.len;
        ngx_memcpy(value->data, st.route.data, st.route.len);

        return NGX_OK;

    default:
        ngx_str_set(value, "");
        return NGX_OK;
    }

    p = ngx_pnalloc(pool, NGX_INT32_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    value->data = p;
    value->len = ngx_sprintf(p, "%D", n) - p;

    return NGX_OK;
}


static ngx_int_t
ngx_http_leader_election_is_leader_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_leader_election_t *le = (ngx_http_leader_election_t *) data;

    v->len = 1;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;
    v->data = (u_char *) "0";

    if (le != NULL && ngx_http_leader_election_claim(le->sh, NULL)) {
        v->data = (u_char *) "1";
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_leader_election_holder_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    return ngx_http_leader_election_variable(r, v, data,
                                       NGX_HTTP_LEADER_ELECTION_HOLDER);
}


static ngx_int_t
ngx_http_leader_election_address_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    return ngx_http_leader_election_variable(r, v, data,
                                       NGX_HTTP_LEADER_ELECTION_HOLDER_ADDRESS);
}


static ngx_int_t
ngx_http_leader_election_identity_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    return ngx_http_leader_election_variable(r, v, data,
                                       NGX_HTTP_LEADER_ELECTION_IDENTITY);
}


static ngx_int_t
ngx_http_leader_election_transitions_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    return ngx_http_leader_election_variable(r, v, data,
                                       NGX_HTTP_LEADER_ELECTION_TRANSITIONS);
}


static ngx_int_t
ngx_http_leader_election_token_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    return ngx_http_leader_election_variable(r, v, data,
                                       NGX_HTTP_LEADER_ELECTION_FENCING_TOKEN);
}


static ngx_int_t
ngx_http_leader_election_route_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    return ngx_http_leader_election_variable(r, v, data,
                                       NGX_HTTP_LEADER_ELECTION_ROUTE);
}


static ngx_int_t
ngx_http_leader_election_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data,
    ngx_http_leader_election_value_e what)
{
    ngx_str_t  value;

    if (ngx_http_leader_election_value((ngx_http_leader_election_t *) data,
                                       what, r->pool, &value)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    v->len = value.len;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;
    v->data = value.data;

    return NGX_OK;
}


/* a NUL-terminated string field of the snapshot; empty if unreadable */

static ngx_int_t
ngx_http_leader_election_string(ngx_http_leader_election_t *le,
    ngx_pool_t *pool, size_t off, size_t size, ngx_str_t *value)
{
    u_char                           *s;
    size_t                            len;
    ngx_http_leader_election_snap_t   snap;

    if (le == NULL
        || ngx_http_leader_election_read(le, &snap, off, off + size) != NGX_OK)
    {
        ngx_str_set(value, "");
        return NGX_OK;
    }

    s = (u_char *) &snap + off;
    len = ngx_strnlen(s, size);

    value->data = ngx_pnalloc(pool, len);
    if (value->data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(value->data, s, len);
    value->len = len;

    return NGX_OK;
}
