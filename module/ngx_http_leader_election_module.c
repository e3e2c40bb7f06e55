
/*
 * Kubernetes leader election for nginx: the module and its lifecycle.
 * Directives and configuration are in _conf.c.  The election runs in one
 * process per instance (_worker.c) and publishes its state in a shared
 * zone (_shm.c) that every worker reads for the variables (_variables.c)
 * and the status pages (_status.c), and that other modules read through
 * ngx_http_leader_election.h.
 *
 * Generations: each configuration that goes live gets a new one per
 * election (init_module, in the master); an elector whose generation is
 * over stops before it does anything else.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_leader_election_module.h"


static ngx_int_t ngx_http_leader_election_init_module(ngx_cycle_t *cycle);
static ngx_int_t ngx_http_leader_election_preconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_leader_election_postconfiguration(ngx_conf_t *cf);
static ngx_http_leader_election_main_conf_t *
    ngx_http_leader_election_cycle_conf(ngx_cycle_t *cycle);


static ngx_http_module_t  ngx_http_leader_election_module_ctx = {
    ngx_http_leader_election_preconfiguration, /* preconfiguration */
    ngx_http_leader_election_postconfiguration, /* postconfiguration */

    ngx_http_leader_election_create_main_conf, /* create main configuration */
    ngx_http_leader_election_init_main_conf, /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_leader_election_create_loc_conf, /* create location conf */
    NULL                                   /* merge location configuration */
};


ngx_module_t  ngx_http_leader_election_module = {
    NGX_MODULE_V1,
    &ngx_http_leader_election_module_ctx,  /* module context */
    ngx_http_leader_election_commands,     /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    ngx_http_leader_election_init_module,  /* init module */
    ngx_http_leader_election_init_process, /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_leader_election_exit_process, /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


ngx_http_leader_election_t *
ngx_http_leader_election_lookup(ngx_cycle_t *cycle, ngx_str_t *name)
{
    ngx_uint_t                             i;
    ngx_http_leader_election_t           **lep;
    ngx_http_leader_election_main_conf_t  *lemcf;

    lemcf = ngx_http_leader_election_cycle_conf(cycle);

    if (lemcf == NULL || lemcf->elections.nelts == 0) {
        return NULL;
    }

    lep = lemcf->elections.elts;

    if (name == NULL || name->len == 0) {
        return lep[0];
    }

    for (i = 0; i < lemcf->elections.nelts; i++) {
        if (lep[i]->name.len == name->len
            && ngx_strncmp(lep[i]->name.data, name->data, name->len) == 0)
        {
            return lep[i];
        }
    }

    return NULL;
}


ngx_http_leader_election_t *
ngx_http_leader_election_nth(ngx_cycle_t *cycle, ngx_uint_t n)
{
    ngx_http_leader_election_main_conf_t  *lemcf;

    lemcf = ngx_http_leader_election_cycle_conf(cycle);

    if (lemcf == NULL || n >= lemcf->elections.nelts) {
        return NULL;
    }

    return ((ngx_http_leader_election_t **) lemcf->elections.elts)[n];
}


ngx_str_t *
ngx_http_leader_election_name(ngx_http_leader_election_t *le)
{
    return &le->name;
}


/*
 * Callers from other modules (Lua's FFI among them) may pass a cycle that
 * has no http{} yet (nginx's first, empty one) or whose configuration no
 * longer loads this module while its .so is still mapped.
 */

static ngx_http_leader_election_main_conf_t *
ngx_http_leader_election_cycle_conf(ngx_cycle_t *cycle)
{
    ngx_uint_t  i;

    if (cycle->conf_ctx == NULL || cycle->modules == NULL) {
        return NULL;
    }

    for (i = 0; i < cycle->modules_n; i++) {
        if (cycle->modules[i] == &ngx_http_leader_election_module) {
            return ngx_http_cycle_get_module_main_conf(cycle,
                                            ngx_http_leader_election_module);
        }
    }

    return NULL;
}


/*
 * A new configuration is in force: its elections get a new generation, and
 * the electors of the previous one stop when they see it.  This is done
 * here rather than in the zone's init: init_module runs once the new cycle
 * can no longer fail, so a reload that fails (a port already in use, say)
 * leaves the running electors alone.
 */

static ngx_int_t
ngx_http_leader_election_init_module(ngx_cycle_t *cycle)
{
    ngx_uint_t                             i;
    ngx_http_leader_election_t           **lep;
    ngx_http_leader_election_main_conf_t  *lemcf;

    lemcf = ngx_http_cycle_get_module_main_conf(cycle,
                                            ngx_http_leader_election_module);
    if (lemcf == NULL) {
        return NGX_OK;
    }

    lep = lemcf->elections.elts;

    for (i = 0; i < lemcf->elections.nelts; i++) {
        ngx_http_leader_election_new_generation(lep[i], cycle->log);
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_leader_election_preconfiguration(ngx_conf_t *cf)
{
    return ngx_http_leader_election_add_variables(cf, NULL);
}


/* the elections are known: the unsuffixed variables follow the first */

static ngx_int_t
ngx_http_leader_election_postconfiguration(ngx_conf_t *cf)
{
    ngx_http_leader_election_first_variables(cf);

    return NGX_OK;
}
