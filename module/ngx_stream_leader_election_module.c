
/*
 * The $leader_election_* variables in stream{}: the same names, _NAME forms
 * and values as in http{}, for the elections that http{} defines.  Nothing
 * is read here but through the reader API of ngx_http_leader_election_module
 * (ngx_http_leader_election.h), so both modules show the same shared state
 * the same way.
 *
 * That module must be loaded before this one, and its http{} must come
 * before stream{}: its symbols are referenced weakly, so that loading this
 * module without it (or before it) is a configuration error that says so,
 * not a dlopen() failure that names a symbol.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_stream.h>

#include "ngx_http_leader_election.h"


#define NGX_STREAM_LEADER_ELECTION_HTTP  "ngx_http_leader_election_module"


typedef struct {
    ngx_http_leader_election_t        *election;  /* NULL: none defined */
    ngx_http_leader_election_value_e   what;
} ngx_stream_leader_election_var_t;


static ngx_int_t ngx_stream_leader_election_variable(ngx_stream_session_t *s,
    ngx_stream_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_stream_leader_election_http_loaded(ngx_conf_t *cf);
static ngx_int_t ngx_stream_leader_election_add(ngx_conf_t *cf,
    ngx_http_leader_election_t *le, ngx_str_t *suffix);
static ngx_uint_t ngx_stream_leader_election_defined(
    ngx_stream_core_main_conf_t *cmcf, ngx_str_t *name);
static ngx_int_t ngx_stream_leader_election_preconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_stream_leader_election_postconfiguration(
    ngx_conf_t *cf);


/* resolved when ngx_http_leader_election_module.so was loaded before */
#pragma weak ngx_http_leader_election_nth
#pragma weak ngx_http_leader_election_name
#pragma weak ngx_http_leader_election_value
#pragma weak ngx_http_leader_election_names


static ngx_stream_module_t  ngx_stream_leader_election_module_ctx = {
    ngx_stream_leader_election_preconfiguration, /* preconfiguration */
    ngx_stream_leader_election_postconfiguration, /* postconfiguration */

    NULL,                                  /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL                                   /* merge server configuration */
};


ngx_module_t  ngx_stream_leader_election_module = {
    NGX_MODULE_V1,
    &ngx_stream_leader_election_module_ctx, /* module context */
    NULL,                                  /* module directives */
    NGX_STREAM_MODULE,                     /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    NULL,                                  /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    NULL,                                  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


/* evaluated on every use: a session may outlast a claim */

static ngx_int_t
ngx_stream_leader_election_variable(ngx_stream_session_t *s,
    ngx_stream_variable_value_t *v, uintptr_t data)
{
    ngx_stream_leader_election_var_t *var =
                                   (ngx_stream_leader_election_var_t *) data;

    ngx_str_t  value;

    if (ngx_http_leader_election_value(var->election, var->what,
                                       s->connection->pool, &value)
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


/*
 * The unsuffixed variables follow the first election (or none, which is
 * an error only if stream{} uses them: see postconfiguration); each
 * election known by now gets its _NAME forms.
 */

static ngx_int_t
ngx_stream_leader_election_preconfiguration(ngx_conf_t *cf)
{
    ngx_uint_t                   n;
    ngx_http_leader_election_t  *le;

    if (ngx_stream_leader_election_http_loaded(cf) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_stream_leader_election_add(cf,
                            ngx_http_leader_election_nth(cf->cycle, 0), NULL)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    for (n = 0; /* void */; n++) {

        le = ngx_http_leader_election_nth(cf->cycle, n);
        if (le == NULL) {
            break;
        }

        if (ngx_stream_leader_election_add(cf, le,
                                           ngx_http_leader_election_name(le))
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/*
 * The http module's symbols resolve only if its .so was loaded before this
 * one; and it must be part of this configuration (a reload may have
 * dropped its load_module line while its .so is still mapped).
 */

static ngx_int_t
ngx_stream_leader_election_http_loaded(ngx_conf_t *cf)
{
    ngx_uint_t  i, present;

    present = 0;

    for (i = 0; cf->cycle->modules[i]; i++) {
        if (ngx_strcmp(cf->cycle->modules[i]->name,
                       NGX_STREAM_LEADER_ELECTION_HTTP)
            == 0)
        {
            present = 1;
            break;
        }
    }

    if (present
        && ngx_http_leader_election_nth != NULL
        && ngx_http_leader_election_name != NULL
        && ngx_http_leader_election_value != NULL
        && ngx_http_leader_election_names != NULL)
    {
        return NGX_OK;
    }

    if (present) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "ngx_stream_leader_election_module is loaded "
                           "before " NGX_STREAM_LEADER_ELECTION_HTTP
                           ": put the load_module line of "
                           NGX_STREAM_LEADER_ELECTION_HTTP ".so first");

    } else {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "ngx_stream_leader_election_module needs "
                           NGX_STREAM_LEADER_ELECTION_HTTP ": add "
                           "\"load_module modules/"
                           NGX_STREAM_LEADER_ELECTION_HTTP ".so;\" "
                           "before the load_module line of this module");
    }

    return NGX_ERROR;
}


/* suffix NULL: the unsuffixed names */

static ngx_int_t
ngx_stream_leader_election_add(ngx_conf_t *cf, ngx_http_leader_election_t *le,
    ngx_str_t *suffix)
{
    ngx_str_t                         *base, name;
    ngx_uint_t                         i;
    ngx_stream_variable_t             *v;
    ngx_stream_leader_election_var_t  *var;

    for (i = 0; i < NGX_HTTP_LEADER_ELECTION_NVALUES; i++) {

        base = &ngx_http_leader_election_names[i];

        if (suffix == NULL) {
            name = *base;

        } else {
            name.len = base->len + 1 + suffix->len;
            name.data = ngx_pnalloc(cf->pool, name.len);
            if (name.data == NULL) {
                return NGX_ERROR;
            }

            ngx_sprintf(name.data, "%V_%V", base, suffix);
        }

        var = ngx_palloc(cf->pool, sizeof(ngx_stream_leader_election_var_t));
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->election = le;
        var->what = i;

        v = ngx_stream_add_variable(cf, &name, NGX_STREAM_VAR_NOCACHEABLE);
        if (v == NULL) {
            return NGX_ERROR;
        }

        v->get_handler = ngx_stream_leader_election_variable;
        v->data = (uintptr_t) var;
    }

    return NGX_OK;
}


/*
 * Every variable of ours that stream{} uses must name an election http{}
 * defined before it; else nginx would say only "unknown variable", or
 * show "0" for an election that does not exist.
 */

static ngx_int_t
ngx_stream_leader_election_postconfiguration(ngx_conf_t *cf)
{
    size_t                        len;
    ngx_str_t                    *base, *name, suffix;
    ngx_uint_t                    i, k;
    ngx_stream_variable_t        *v;
    ngx_stream_core_main_conf_t  *cmcf;

    cmcf = ngx_stream_conf_get_module_main_conf(cf, ngx_stream_core_module);

    v = cmcf->variables.elts;

    for (i = 0; i < cmcf->variables.nelts; i++) {

        name = &v[i].name;

        if (ngx_stream_leader_election_defined(cmcf, name)) {
            continue;
        }

        /* the longest base name it starts with: _holder, _holder_address */

        len = 0;

        for (k = 0; k < NGX_HTTP_LEADER_ELECTION_NVALUES; k++) {
            base = &ngx_http_leader_election_names[k];

            if (base->len > len
                && name->len >= base->len
                && ngx_strncmp(name->data, base->data, base->len) == 0
                && (name->len == base->len || name->data[base->len] == '_'))
            {
                len = base->len;
            }
        }

        if (len == 0) {
            continue;
        }

        if (name->len == len) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"$%V\" is used in stream{}, but no "
                               "leader_election is defined in an http{} "
                               "block before stream{}", name);
            return NGX_ERROR;
        }

        suffix.data = name->data + len + 1;
        suffix.len = name->len - len - 1;

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"$%V\" is used in stream{}, but no "
                           "leader_election \"%V\" is defined in an http{} "
                           "block before stream{}", name, &suffix);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * A used name (nginx keeps it lowercased) is ours and names an election if
 * the variable added for it has our handler and an election.
 */

static ngx_uint_t
ngx_stream_leader_election_defined(ngx_stream_core_main_conf_t *cmcf,
    ngx_str_t *name)
{
    ngx_uint_t                         i;
    ngx_hash_key_t                    *key;
    ngx_stream_variable_t             *av;
    ngx_stream_leader_election_var_t  *var;

    key = cmcf->variables_keys->keys.elts;

    for (i = 0; i < cmcf->variables_keys->keys.nelts; i++) {
        av = key[i].value;

        if (av->get_handler != ngx_stream_leader_election_variable
            || key[i].key.len != name->len
            || ngx_strncasecmp(key[i].key.data, name->data, name->len) != 0)
        {
            continue;
        }

        var = (ngx_stream_leader_election_var_t *) av->data;

        return var->election != NULL;
    }

    return 0;
}
