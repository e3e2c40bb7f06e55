
/*
 * The directives: "leader_election NAME { ... }" and what its block holds,
 * checked and completed at configuration time (defaults, timings, the
 * address, credentials, the shared zone), and the status and healthz
 * locations, which may name an election defined later.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_leader_election_module.h"



typedef struct {
    ngx_str_t                      name;       /* empty: the first one */
    ngx_str_t                      directive;
    ngx_http_leader_election_t   **election;
    u_char                        *file;
    ngx_uint_t                     line;
} ngx_http_leader_election_ref_t;


static ngx_int_t ngx_http_leader_election_instance(ngx_conf_t *cf,
    ngx_http_leader_election_main_conf_t *lemcf);
static char *ngx_http_leader_election(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_leader_election_directive(ngx_conf_t *cf,
    ngx_command_t *dummy, void *conf);
static char *ngx_http_leader_election_ignore(ngx_conf_t *cf,
    ngx_command_t *dummy, void *conf);
static char *ngx_http_leader_election_finish(ngx_conf_t *cf,
    ngx_http_leader_election_t *le);
static char *ngx_http_leader_election_load_creds(ngx_conf_t *cf,
    ngx_http_leader_election_t *le);
static void ngx_http_leader_election_free_creds(void *data);
static char *ngx_http_leader_election_lock(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_leader_election_expand_slot(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_leader_election_address(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static ngx_int_t ngx_http_leader_election_expand(ngx_conf_t *cf,
    ngx_str_t *value, ngx_str_t *out);
static char *ngx_http_leader_election_api_server(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_leader_election_url_slot(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static ngx_uint_t ngx_http_leader_election_is_url(ngx_str_t *s);
static char *ngx_http_leader_election_status(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_leader_election_healthz(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_leader_election_location(ngx_conf_t *cf,
    ngx_http_leader_election_loc_conf_t *lelcf, ngx_http_handler_pt handler);


ngx_command_t  ngx_http_leader_election_commands[] = {

    { ngx_string("leader_election"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_BLOCK|NGX_CONF_TAKE1,
      ngx_http_leader_election,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("leader_election_status"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS|NGX_CONF_TAKE1,
      ngx_http_leader_election_status,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("leader_election_healthz"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS|NGX_CONF_TAKE1,
      ngx_http_leader_election_healthz,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


/*
 * The directives inside "leader_election NAME { ... }".  The block is
 * parsed with its own handler, so that they are valid nowhere else.
 */
static ngx_command_t  ngx_http_leader_election_block_commands[] = {

    { ngx_string("lock"),
      NGX_CONF_TAKE2,
      ngx_http_leader_election_lock,
      0,
      0,
      NULL },

    { ngx_string("identity"),
      NGX_CONF_TAKE1,
      ngx_http_leader_election_expand_slot,
      0,
      offsetof(ngx_http_leader_election_t, identity),
      NULL },

    { ngx_string("address"),
      NGX_CONF_TAKE1,
      ngx_http_leader_election_address,
      0,
      offsetof(ngx_http_leader_election_t, address),
      NULL },

    { ngx_string("lease_duration"),
      NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      0,
      offsetof(ngx_http_leader_election_t, lease_duration),
      NULL },

    { ngx_string("renew_deadline"),
      NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      0,
      offsetof(ngx_http_leader_election_t, renew_deadline),
      NULL },

    { ngx_string("retry_period"),
      NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      0,
      offsetof(ngx_http_leader_election_t, retry_period),
      NULL },

    { ngx_string("api_server"),
      NGX_CONF_TAKE123,
      ngx_http_leader_election_api_server,
      0,
      0,
      NULL },

    { ngx_string("token_file"),
      NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      0,
      offsetof(ngx_http_leader_election_t, token_file),
      NULL },

    { ngx_string("ca_file"),
      NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      0,
      offsetof(ngx_http_leader_election_t, ca_file),
      NULL },

    { ngx_string("client_cert"),
      NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      0,
      offsetof(ngx_http_leader_election_t, client_cert),
      NULL },

    { ngx_string("client_key"),
      NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      0,
      offsetof(ngx_http_leader_election_t, client_key),
      NULL },

    { ngx_string("release_on_shutdown"),
      NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      0,
      offsetof(ngx_http_leader_election_t, release_on_shutdown),
      NULL },

    { ngx_string("events"),
      NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      0,
      offsetof(ngx_http_leader_election_t, events),
      NULL },

    { ngx_string("on_started_leading"),
      NGX_CONF_TAKE1,
      ngx_http_leader_election_url_slot,
      0,
      offsetof(ngx_http_leader_election_t, on_started_leading),
      NULL },

    { ngx_string("on_stopped_leading"),
      NGX_CONF_TAKE1,
      ngx_http_leader_election_url_slot,
      0,
      offsetof(ngx_http_leader_election_t, on_stopped_leading),
      NULL },

    { ngx_string("on_new_leader"),
      NGX_CONF_TAKE1,
      ngx_http_leader_election_url_slot,
      0,
      offsetof(ngx_http_leader_election_t, on_new_leader),
      NULL },

      ngx_null_command
};


void *
ngx_http_leader_election_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_leader_election_main_conf_t  *lemcf;

    lemcf = ngx_pcalloc(cf->pool,
                        sizeof(ngx_http_leader_election_main_conf_t));
    if (lemcf == NULL) {
        return NULL;
    }

    if (ngx_array_init(&lemcf->elections, cf->pool, 1,
                       sizeof(ngx_http_leader_election_t *))
        != NGX_OK)
    {
        return NULL;
    }

    if (ngx_array_init(&lemcf->refs, cf->pool, 2,
                       sizeof(ngx_http_leader_election_ref_t))
        != NGX_OK)
    {
        return NULL;
    }

    if (ngx_array_init(&lemcf->first, cf->pool,
                       NGX_HTTP_LEADER_ELECTION_NVALUES,
                       sizeof(ngx_http_variable_t *))
        != NGX_OK)
    {
        return NULL;
    }

    return lemcf;
}


void *
ngx_http_leader_election_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_leader_election_loc_conf_t  *lelcf;

    lelcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_leader_election_loc_conf_t));
    if (lelcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     lelcf->election = NULL;
     */

    return lelcf;
}


/* status and healthz locations may come before the election they name */

char *
ngx_http_leader_election_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_leader_election_main_conf_t *lemcf = conf;

    ngx_uint_t                       i, n;
    ngx_http_leader_election_t     **lep;
    ngx_http_leader_election_ref_t  *ref;

    if (ngx_http_leader_election_instance(cf, lemcf) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    lep = lemcf->elections.elts;
    ref = lemcf->refs.elts;

    for (i = 0; i < lemcf->refs.nelts; i++) {

        if (lemcf->elections.nelts == 0) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "no \"leader_election\" is defined for "
                          "the \"%V\" directive in %s:%ui",
                          &ref[i].directive, ref[i].file, ref[i].line);
            return NGX_CONF_ERROR;
        }

        if (ref[i].name.len == 0) {
            *ref[i].election = lep[0];
            continue;
        }

        for (n = 0; n < lemcf->elections.nelts; n++) {
            if (lep[n]->name.len == ref[i].name.len
                && ngx_strncmp(lep[n]->name.data, ref[i].name.data,
                               ref[i].name.len)
                   == 0)
            {
                *ref[i].election = lep[n];
                break;
            }
        }

        if (n == lemcf->elections.nelts) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "unknown leader_election \"%V\" in %s:%ui",
                          &ref[i].name, ref[i].file, ref[i].line);
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


/*
 * The nonce of this nginx instance, written with every record so that two
 * instances given one identity tell each other apart.  Made once per
 * master process (the module stays loaded across reloads: so does the
 * nonce) and passed in the environment to a new binary (USR2), to which
 * it names the instance it replaces.  A master started otherwise finds no
 * such variable: nginx gives a new binary the "env" list only.
 */

static char  ngx_http_leader_election_nonce[KLE_INSTANCE_MAX];
static char  ngx_http_leader_election_predecessor[KLE_INSTANCE_MAX];


static ngx_int_t
ngx_http_leader_election_instance(ngx_conf_t *cf,
    ngx_http_leader_election_main_conf_t *lemcf)
{
    char                         *v;
    u_char                       *p;
    ngx_str_t                    *var;
    ngx_uint_t                    i;
    ngx_core_conf_t              *ccf;
    ngx_http_leader_election_t  **lep;

    if (lemcf->elections.nelts == 0) {
        return NGX_OK;
    }

    if (ngx_http_leader_election_nonce[0] == '\0') {
        v = getenv(NGX_HTTP_LEADER_ELECTION_INSTANCE_ENV);

        if (v != NULL && kle_instance_valid(v, ngx_strlen(v))) {
            ngx_memcpy(ngx_http_leader_election_predecessor, v,
                       KLE_INSTANCE_MAX);
        }

        if (kle_instance_new(ngx_http_leader_election_nonce) != 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                               "leader_election: getrandom() failed");
            return NGX_ERROR;
        }
    }

    /* "env NAME=VALUE": what a new binary gets */

    ccf = (ngx_core_conf_t *) ngx_get_conf(cf->cycle->conf_ctx,
                                           ngx_core_module);

    p = ngx_pnalloc(cf->pool, sizeof(NGX_HTTP_LEADER_ELECTION_INSTANCE_ENV)
                              + KLE_INSTANCE_MAX);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(p, NGX_HTTP_LEADER_ELECTION_INSTANCE_ENV "=%s%Z",
                ngx_http_leader_election_nonce);

    var = ngx_array_push(&ccf->env);
    if (var == NULL) {
        return NGX_ERROR;
    }

    var->len = sizeof(NGX_HTTP_LEADER_ELECTION_INSTANCE_ENV) - 1;
    var->data = p;

    lep = lemcf->elections.elts;

    for (i = 0; i < lemcf->elections.nelts; i++) {
        ngx_memcpy(lep[i]->election.instance, ngx_http_leader_election_nonce,
                   KLE_INSTANCE_MAX);
        ngx_memcpy(lep[i]->election.predecessor,
                   ngx_http_leader_election_predecessor, KLE_INSTANCE_MAX);
    }

    return NGX_OK;
}


static char *
ngx_http_leader_election(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_leader_election_main_conf_t *lemcf = conf;

    u_char                       ch;
    char                        *rv;
    ngx_str_t                   *value, name;
    ngx_uint_t                   i, line, end;
    ngx_conf_t                   save;
    ngx_http_leader_election_t  *le, **lep;

    value = cf->args->elts;
    name = value[1];

    /* the name ends variable names: $leader_election_is_leader_NAME */

    for (i = 0; i < name.len; i++) {
        ch = name.data[i];

        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')
            || (ch >= '0' && ch <= '9') || ch == '_')
        {
            continue;
        }

        break;
    }

    if (name.len == 0 || i < name.len) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid name \"%V\" in \"%V\" directive, "
                           "only letters, digits and \"_\" are allowed",
                           &name, &cmd->name);
        return NGX_CONF_ERROR;
    }

    lep = lemcf->elections.elts;

    for (i = 0; i < lemcf->elections.nelts; i++) {
        if (lep[i]->name.len == name.len
            && ngx_strncmp(lep[i]->name.data, name.data, name.len) == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "duplicate leader_election \"%V\"", &name);
            return NGX_CONF_ERROR;
        }
    }

    le = ngx_pcalloc(cf->pool, sizeof(ngx_http_leader_election_t));
    if (le == NULL) {
        return NGX_CONF_ERROR;
    }

    le->name = name;
    le->lease_duration = NGX_CONF_UNSET_MSEC;
    le->renew_deadline = NGX_CONF_UNSET_MSEC;
    le->retry_period = NGX_CONF_UNSET_MSEC;
    le->api_server = NGX_CONF_UNSET_UINT;
    le->release_on_shutdown = NGX_CONF_UNSET;
    le->events = NGX_CONF_UNSET;

    lep = ngx_array_push(&lemcf->elections);
    if (lep == NULL) {
        return NGX_CONF_ERROR;
    }

    *lep = le;

    line = cf->conf_file->line;

    save = *cf;
    cf->handler = ngx_http_leader_election_directive;
    cf->handler_conf = le;

    /*
     * "nginx -s" reads the configuration for the pid file only: it may run
     * without the environment or the credentials of the server.
     */

    if (ngx_process == NGX_PROCESS_SIGNALLER) {
        cf->handler = ngx_http_leader_election_ignore;
    }

    rv = ngx_conf_parse(cf, NULL);

    *cf = save;

    if (rv != NGX_CONF_OK) {
        return rv;
    }

    if (ngx_process == NGX_PROCESS_SIGNALLER) {
        return ngx_http_leader_election_add_variables(cf, le) == NGX_OK
               ? NGX_CONF_OK : NGX_CONF_ERROR;
    }

    /* what the block lacks is reported at its first line */

    end = cf->conf_file->line;
    cf->conf_file->line = line;

    rv = ngx_http_leader_election_finish(cf, le);

    cf->conf_file->line = end;

    return rv;
}


static char *
ngx_http_leader_election_directive(ngx_conf_t *cf, ngx_command_t *dummy,
    void *conf)
{
    char           *rv;
    ngx_str_t      *value;
    ngx_uint_t      argc, valid;
    ngx_command_t  *cmd;

    value = cf->args->elts;

    for (cmd = ngx_http_leader_election_block_commands; cmd->name.len; cmd++)
    {
        if (cmd->name.len == value[0].len
            && ngx_strcmp(cmd->name.data, value[0].data) == 0)
        {
            break;
        }
    }

    if (cmd->name.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "unknown directive \"%V\"", &value[0]);
        return NGX_CONF_ERROR;
    }

    argc = cf->args->nelts - 1;

    if (cmd->type & NGX_CONF_FLAG) {
        valid = (argc == 1);

    } else {
        valid = (argc < NGX_CONF_MAX_ARGS && (cmd->type & (1 << argc)));
    }

    if (!valid) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid number of arguments in \"%V\" directive",
                           &value[0]);
        return NGX_CONF_ERROR;
    }

    rv = cmd->set(cf, cmd, conf);

    if (rv == NGX_CONF_OK || rv == NGX_CONF_ERROR) {
        return rv;
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "\"%V\" directive %s", &value[0], rv);

    return NGX_CONF_ERROR;
}


static char *
ngx_http_leader_election_ignore(ngx_conf_t *cf, ngx_command_t *dummy,
    void *conf)
{
    return NGX_CONF_OK;
}


static char *
ngx_http_leader_election_finish(ngx_conf_t *cf, ngx_http_leader_election_t *le)
{
    char        err[512];
    ngx_str_t   name;

    if (le->lock_kind.data == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "no \"lock\" is defined in leader_election \"%V\"",
                           &le->name);
        return NGX_CONF_ERROR;
    }

    if (le->identity.data == NULL) {
        le->identity = cf->cycle->hostname;
    }

    if (le->identity.len >= KLE_ID_MAX) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "identity \"%V\" is too long in "
                           "leader_election \"%V\"", &le->identity, &le->name);
        return NGX_CONF_ERROR;
    }

    ngx_memcpy(le->election.identity, le->identity.data, le->identity.len);
    ngx_memcpy(le->election.address, le->address.data, le->address.len);

    ngx_conf_init_msec_value(le->lease_duration, 15000);
    ngx_conf_init_msec_value(le->renew_deadline, 10000);
    ngx_conf_init_msec_value(le->retry_period, 2000);

    le->election.lease_duration = le->lease_duration;
    le->election.renew_deadline = le->renew_deadline;
    le->election.retry_period = le->retry_period;

    /* ConfigMap records hold whole seconds: core checks the margin */
    le->election.whole_seconds = (ngx_strcmp(le->lock_kind.data,
                                             "configmaps")
                                  == 0);

    if (kle_election_config_validate(&le->election, err, sizeof(err)) != 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "%s in leader_election \"%V\"", err, &le->name);
        return NGX_CONF_ERROR;
    }

    ngx_conf_init_value(le->release_on_shutdown, 1);
    ngx_conf_init_value(le->events, 0);
    ngx_conf_init_uint_value(le->api_server,
                             NGX_HTTP_LEADER_ELECTION_IN_CLUSTER);

    if (ngx_http_leader_election_load_creds(cf, le) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    name.len = sizeof("leader_election_") - 1 + le->name.len;
    name.data = ngx_pnalloc(cf->pool, name.len);
    if (name.data == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_sprintf(name.data, "leader_election_%V", &le->name);

    le->shm_zone = ngx_shared_memory_add(cf, &name,
                                   NGX_HTTP_LEADER_ELECTION_ZONE_PAGES
                                   * ngx_pagesize,
                                   &ngx_http_leader_election_module);
    if (le->shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    le->shm_zone->init = ngx_http_leader_election_init_zone;
    le->shm_zone->data = le;

    if (ngx_http_leader_election_add_variables(cf, le) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * Credentials are read here, in the master, so that "nginx -t" reports
 * a missing or broken kubeconfig; the workers inherit them.
 */

static char *
ngx_http_leader_election_load_creds(ngx_conf_t *cf,
    ngx_http_leader_election_t *le)
{
    int                  rc;
    char                 err[512];
    ngx_uint_t           i;
    ngx_pool_cleanup_t  *cln;

    struct {
        char            *name;
        ngx_str_t       *path;
    } files[] = {
        { "token_file", &le->token_file },
        { "ca_file", &le->ca_file },
        { "client_cert", &le->client_cert },
        { "client_key", &le->client_key }
    };

    for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {

        if (files[i].path->data == NULL) {
            continue;
        }

        if (le->api_server != NGX_HTTP_LEADER_ELECTION_URL) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%s\" is only used with "
                               "\"api_server https://HOST:PORT\" in "
                               "leader_election \"%V\"",
                               files[i].name, &le->name);
            return NGX_CONF_ERROR;
        }

        if (ngx_conf_full_name(cf->cycle, files[i].path, 1) != NGX_OK) {
            return NGX_CONF_ERROR;
        }
    }

    le->creds = ngx_pcalloc(cf->pool, sizeof(kle_creds_t));
    if (le->creds == NULL) {
        return NGX_CONF_ERROR;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        return NGX_CONF_ERROR;
    }

    cln->handler = ngx_http_leader_election_free_creds;
    cln->data = le->creds;

    switch (le->api_server) {

    case NGX_HTTP_LEADER_ELECTION_KUBECONFIG:

        if (ngx_conf_full_name(cf->cycle, &le->server, 1) != NGX_OK) {
            return NGX_CONF_ERROR;
        }

        rc = kle_kubeconfig_load(le->creds, (char *) le->server.data,
                                 (char *) le->context.data, err, sizeof(err));
        break;

    case NGX_HTTP_LEADER_ELECTION_URL:
        rc = kle_creds_direct(le->creds, (char *) le->server.data,
                              (char *) le->token_file.data,
                              (char *) le->ca_file.data,
                              (char *) le->client_cert.data,
                              (char *) le->client_key.data,
                              err, sizeof(err));
        break;

    default: /* NGX_HTTP_LEADER_ELECTION_IN_CLUSTER */
        rc = kle_incluster_load(le->creds, NULL, err, sizeof(err));
    }

    /* workers may not be able to read root-only key files: read them now */
    if (rc == 0) {
        rc = kle_creds_inline(le->creds, err, sizeof(err));
    }

    if (rc != 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "%s in leader_election \"%V\"", err, &le->name);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static void
ngx_http_leader_election_free_creds(void *data)
{
    kle_creds_t  *creds = data;

    kle_creds_free(creds);
}


static char *
ngx_http_leader_election_lock(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_leader_election_t *le = conf;

    char         err[512];
    size_t       len;
    ngx_str_t   *value;
    kle_lock_t   lock;

    if (le->lock_kind.data != NULL) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_http_leader_election_expand(cf, &value[1], &le->lock_kind)
        != NGX_OK
        || ngx_http_leader_election_expand(cf, &value[2], &le->lock_where)
           != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (kle_lock_init(&lock, (char *) le->lock_kind.data,
                      (char *) le->lock_where.data, err, sizeof(err))
        != 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "%s in \"%V\" directive", err, &cmd->name);
        return NGX_CONF_ERROR;
    }

    /* NAMESPACE/NAME, checked above; kept apart for the status page */

    len = ngx_strlen(lock.ns);

    kle_lock_free(&lock);

    le->lock_namespace.len = len;
    le->lock_namespace.data = le->lock_where.data;
    le->lock_name.len = le->lock_where.len - len - 1;
    le->lock_name.data = le->lock_where.data + len + 1;

    return NGX_CONF_OK;
}


static char *
ngx_http_leader_election_expand_slot(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    char  *p = conf;

    ngx_str_t  *field, *value;

    field = (ngx_str_t *) (p + cmd->offset);

    if (field->data != NULL) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_http_leader_election_expand(cf, &value[1], field) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * What other instances route to: the same strict HOST:PORT that readers
 * accept, so that a typo shows in nginx -t, not as an address nobody sees.
 */

static char *
ngx_http_leader_election_address(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_leader_election_t *le = conf;

    char  *rv;

    rv = ngx_http_leader_election_expand_slot(cf, cmd, conf);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    if (le->address.len >= KLE_ADDR_MAX) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "address \"%V\" is too long in "
                           "leader_election \"%V\"", &le->address, &le->name);
        return NGX_CONF_ERROR;
    }

    if (!kle_address_valid((char *) le->address.data, le->address.len)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid address \"%V\" in leader_election "
                           "\"%V\", it must be HOST:PORT: an IPv4 address, "
                           "a bracketed IPv6 address or a DNS name, and a "
                           "port from 1 to 65535",
                           &le->address, &le->name);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * Replaces each ${NAME} with the master's environment variable NAME (the
 * workers' environment is wiped).  out is NUL-terminated.
 */

static ngx_int_t
ngx_http_leader_election_expand(ngx_conf_t *cf, ngx_str_t *value,
    ngx_str_t *out)
{
    char        *env;
    u_char      *p, *q, *last, *dst;
    size_t       len, n;
    ngx_str_t   *args, name;
    ngx_uint_t   copy;

    args = cf->args->elts;
    last = value->data + value->len;

    len = 0;
    dst = NULL;

    /* the first pass measures, the second copies */

    for (copy = 0; copy < 2; copy++) {

        for (p = value->data; p < last; /* void */) {

            if (p + 1 == last || p[0] != '$' || p[1] != '{') {
                if (copy) {
                    *dst++ = *p;

                } else {
                    len++;
                }

                p++;
                continue;
            }

            q = ngx_strlchr(p + 2, last, '}');

            if (q == NULL || q == p + 2) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid value \"%V\" in \"%V\" directive",
                                   value, &args[0]);
                return NGX_ERROR;
            }

            name.len = q - (p + 2);
            name.data = ngx_pnalloc(cf->temp_pool, name.len + 1);
            if (name.data == NULL) {
                return NGX_ERROR;
            }

            ngx_cpystrn(name.data, p + 2, name.len + 1);

            env = getenv((char *) name.data);

            if (env == NULL) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "environment variable \"%V\" is not set "
                                   "in \"%V\" directive", &name, &args[0]);
                return NGX_ERROR;
            }

            n = ngx_strlen(env);

            if (copy) {
                dst = ngx_cpymem(dst, env, n);

            } else {
                len += n;
            }

            p = q + 1;
        }

        if (!copy) {
            out->len = len;
            out->data = ngx_pnalloc(cf->pool, len + 1);
            if (out->data == NULL) {
                return NGX_ERROR;
            }

            dst = out->data;
        }
    }

    *dst = '\0';

    return NGX_OK;
}


static char *
ngx_http_leader_election_api_server(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_leader_election_t *le = conf;

    ngx_str_t  *value;

    if (le->api_server != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "kubeconfig") == 0) {

        if (cf->args->nelts < 3) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid number of arguments in "
                               "\"%V kubeconfig\" directive", &cmd->name);
            return NGX_CONF_ERROR;
        }

        le->api_server = NGX_HTTP_LEADER_ELECTION_KUBECONFIG;
        le->server = value[2];

        if (cf->args->nelts == 4) {
            le->context = value[3];
        }

        return NGX_CONF_OK;
    }

    if (ngx_strcmp(value[1].data, "in-cluster") == 0) {
        le->api_server = NGX_HTTP_LEADER_ELECTION_IN_CLUSTER;

    } else if (ngx_http_leader_election_is_url(&value[1])) {
        le->api_server = NGX_HTTP_LEADER_ELECTION_URL;
        le->server = value[1];

    } else {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\" in \"%V\" directive, "
                           "it must be \"in-cluster\", \"kubeconfig\" or "
                           "an https:// URL", &value[1], &cmd->name);
        return NGX_CONF_ERROR;
    }

    if (cf->args->nelts > 2) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\" in \"%V\" directive",
                           &value[2], &cmd->name);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_leader_election_url_slot(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    char  *p = conf;

    char       *rv;
    ngx_str_t  *url;

    rv = ngx_conf_set_str_slot(cf, cmd, conf);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    url = (ngx_str_t *) (p + cmd->offset);

    if (!ngx_http_leader_election_is_url(url)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\" in \"%V\" directive, "
                           "it must be an http:// or https:// URL",
                           url, &cmd->name);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static ngx_uint_t
ngx_http_leader_election_is_url(ngx_str_t *s)
{
    return (s->len > sizeof("http://") - 1
            && ngx_strncasecmp(s->data, (u_char *) "http://", 7) == 0)
           || (s->len > sizeof("https://") - 1
               && ngx_strncasecmp(s->data, (u_char *) "https://", 8) == 0);
}


static char *
ngx_http_leader_election_status(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    return ngx_http_leader_election_location(cf, conf,
                                     ngx_http_leader_election_status_handler);
}


static char *
ngx_http_leader_election_healthz(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    return ngx_http_leader_election_location(cf, conf,
                                    ngx_http_leader_election_healthz_handler);
}


static char *
ngx_http_leader_election_location(ngx_conf_t *cf,
    ngx_http_leader_election_loc_conf_t *lelcf, ngx_http_handler_pt handler)
{
    ngx_str_t                             *value;
    ngx_http_core_loc_conf_t              *clcf;
    ngx_http_leader_election_ref_t        *ref;
    ngx_http_leader_election_main_conf_t  *lemcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (clcf->handler == ngx_http_leader_election_status_handler
        || clcf->handler == ngx_http_leader_election_healthz_handler)
    {
        return "is duplicate";
    }

    lemcf = ngx_http_conf_get_module_main_conf(cf,
                                            ngx_http_leader_election_module);

    ref = ngx_array_push(&lemcf->refs);
    if (ref == NULL) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;

    ref->directive = value[0];

    if (cf->args->nelts == 2) {
        ref->name = value[1];

    } else {
        ngx_str_null(&ref->name);
    }

    ref->election = &lelcf->election;
    ref->file = cf->conf_file->file.name.data;
    ref->line = cf->conf_file->line;

    clcf->handler = handler;

    return NGX_CONF_OK;
}
