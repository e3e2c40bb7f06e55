
/*
 * leader_election_status: the election as JSON, or as Prometheus text with
 * ?format=prometheus.  leader_election_healthz: 200 "ok" or 503 and why.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_leader_election_module.h"


#define NGX_HTTP_LEADER_ELECTION_JSON                                         \
    "{\"name\": %V, \"election\": %V, \"identity\": %V, "                     \
    "\"is_leader\": %s, \"holder\": %V, \"holder_address\": %V, "             \
    "\"transitions\": %D, "                                                   \
    "\"lock\": {\"kind\": %V, \"namespace\": %V, \"name\": %V}, "             \
    "\"lease_duration\": %V, \"renew_deadline\": %V, \"retry_period\": %V, "  \
    "\"acquire_time\": %V, \"renew_time\": %V, \"state\": \"%s\", "           \
    "\"elector_pid\": %V, \"last_error\": %V, "                               \
    "\"api\": {\"requests\": %uL, \"failures\": %uL}, "                       \
    "\"heartbeat_age_ms\": %V, \"identity_conflict\": %s}\n"

#define NGX_HTTP_LEADER_ELECTION_PROMETHEUS                                   \
    "# HELP leader_election_master_status 1 if this instance leads "          \
    "the election, else 0.\n"                                                 \
    "# TYPE leader_election_master_status gauge\n"                            \
    "leader_election_master_status{name=\"%V\"} %ui\n"                        \
    "# HELP leader_election_transitions Leader changes of the lock, "         \
    "as last observed.\n"                                                     \
    "# TYPE leader_election_transitions gauge\n"                              \
    "leader_election_transitions{name=\"%V\"} %D\n"                           \
    "# HELP leader_election_api_requests_total API server requests "          \
    "made by the elector.\n"                                                  \
    "# TYPE leader_election_api_requests_total counter\n"                     \
    "leader_election_api_requests_total{name=\"%V\"} %uL\n"                   \
    "# HELP leader_election_api_failures_total API server requests "          \
    "that failed.\n"                                                          \
    "# TYPE leader_election_api_failures_total counter\n"                     \
    "leader_election_api_failures_total{name=\"%V\"} %uL\n"                   \
    "# HELP leader_election_identity_conflict 1 while another instance "       \
    "holds the lock in this instance's identity.\n"                           \
    "# TYPE leader_election_identity_conflict gauge\n"                         \
    "leader_election_identity_conflict{name=\"%V\"} %ui\n"

/* client-go's healthz tolerance past the lease (maxTolerableExpiredLease) */
#define NGX_HTTP_LEADER_ELECTION_TOLERANCE  20000

#define NGX_HTTP_LEADER_ELECTION_REASON_LEN  256


static ngx_int_t ngx_http_leader_election_prepare(ngx_http_request_t *r);
static ngx_buf_t *ngx_http_leader_election_json(ngx_http_request_t *r,
    ngx_http_leader_election_t *le, ngx_http_leader_election_snap_t *snap);
static ngx_int_t ngx_http_leader_election_json_string(ngx_pool_t *pool,
    u_char *s, size_t len, ngx_str_t *out);
static void ngx_http_leader_election_json_time(int64_t us, u_char *buf,
    ngx_str_t *out);
static void ngx_http_leader_election_seconds(ngx_msec_t ms, u_char *buf,
    ngx_str_t *out);
static ngx_buf_t *ngx_http_leader_election_prometheus(ngx_http_request_t *r,
    ngx_http_leader_election_t *le, ngx_http_leader_election_snap_t *snap);
static ngx_int_t ngx_http_leader_election_send(ngx_http_request_t *r,
    ngx_uint_t status, ngx_str_t *type, ngx_buf_t *b);


ngx_int_t
ngx_http_leader_election_status_handler(ngx_http_request_t *r)
{
    ngx_int_t                             rc;
    ngx_buf_t                            *b;
    ngx_str_t                             format, type;
    ngx_http_leader_election_t           *le;
    ngx_http_leader_election_snap_t       snap;
    ngx_http_leader_election_loc_conf_t  *lelcf;

    rc = ngx_http_leader_election_prepare(r);
    if (rc != NGX_OK) {
        return rc;
    }

    lelcf = ngx_http_get_module_loc_conf(r, ngx_http_leader_election_module);
    le = lelcf->election;

    if (ngx_http_leader_election_read(le, &snap, 0, sizeof(snap)) != NGX_OK) {
        return NGX_HTTP_SERVICE_UNAVAILABLE;
    }

    if (ngx_http_arg(r, (u_char *) "format", 6, &format) == NGX_OK
        && format.len == 10
        && ngx_strncmp(format.data, "prometheus", 10) == 0)
    {
        ngx_str_set(&type, "text/plain; version=0.0.4");
        b = ngx_http_leader_election_prometheus(r, le, &snap);

    } else {
        ngx_str_set(&type, "application/json");
        b = ngx_http_leader_election_json(r, le, &snap);
    }

    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_leader_election_send(r, NGX_HTTP_OK, &type, b);
}


/*
 * Unhealthy (503), as client-go's healthz: leading, but the last renew
 * started more than lease_duration + 20 s ago; the others have taken over
 * by then.  Followers are healthy.  Also unhealthy: the elector has not
 * ticked for max(3 * retry_period, 10 s) (it ticks at least every
 * retry_period), so the process that runs it is stuck; and a snapshot that
 * cannot be read.  An elector that has not started yet is not unhealthy.
 */

ngx_int_t
ngx_http_leader_election_healthz_handler(ngx_http_request_t *r)
{
    int64_t                               now, limit;
    ngx_int_t                             rc;
    ngx_buf_t                            *b;
    ngx_str_t                             type;
    ngx_uint_t                            status;
    ngx_http_leader_election_t           *le;
    ngx_http_leader_election_snap_t       snap;
    ngx_http_leader_election_loc_conf_t  *lelcf;

    rc = ngx_http_leader_election_prepare(r);
    if (rc != NGX_OK) {
        return rc;
    }

    lelcf = ngx_http_get_module_loc_conf(r, ngx_http_leader_election_module);
    le = lelcf->election;

    b = ngx_create_temp_buf(r->pool,
                            NGX_HTTP_LEADER_ELECTION_REASON_LEN + le->name.len);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    status = NGX_HTTP_SERVICE_UNAVAILABLE;
    now = kle_now_ms();

    if (ngx_http_leader_election_read_fields(le, &snap, claim,
                                             heartbeat)
        != NGX_OK)
    {
        b->last = ngx_slprintf(b->last, b->end,
                               "leader_election \"%V\": the shared state "
                               "cannot be read", &le->name);
        goto send;
    }

    limit = (int64_t) le->lease_duration + NGX_HTTP_LEADER_ELECTION_TOLERANCE;

    if (snap.state == KLE_STATE_LEADING && now - snap.renew_start > limit) {
        b->last = ngx_slprintf(b->last, b->end,
                               "leader_election \"%V\": leading, but the "
                               "lease was last renewed %L ms ago",
                               &le->name, now - snap.renew_start);
        goto send;
    }

    limit = ngx_max((int64_t) le->retry_period * 3, 10000);

    if (snap.heartbeat != 0 && now - snap.heartbeat > limit) {
        b->last = ngx_slprintf(b->last, b->end,
                               "leader_election \"%V\": the elector "
                               "(pid %P) last ran %L ms ago",
                               &le->name, snap.elector_pid,
                               now - snap.heartbeat);
        goto send;
    }

    status = NGX_HTTP_OK;
    b->last = ngx_cpymem(b->last, "ok", 2);

send:

    ngx_str_set(&type, "text/plain");

    return ngx_http_leader_election_send(r, status, &type, b);
}


static ngx_int_t
ngx_http_leader_election_prepare(ngx_http_request_t *r)
{
    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    return ngx_http_discard_request_body(r);
}


static ngx_buf_t *
ngx_http_leader_election_json(ngx_http_request_t *r,
    ngx_http_leader_election_t *le, ngx_http_leader_election_snap_t *snap)
{
    size_t       len;
    int64_t      now;
    ngx_buf_t   *b;
    ngx_str_t    holder, election, identity, address, kind, ns, name;
    ngx_str_t    lease, deadline, retry, acquired, renewed, pid, error, age;
    ngx_uint_t   leader;
    const char  *state;
    u_char       lease_buf[NGX_INT64_LEN + 5], deadline_buf[NGX_INT64_LEN + 5];
    u_char       retry_buf[NGX_INT64_LEN + 5];
    u_char       acquired_buf[32], renewed_buf[32];
    u_char       pid_buf[NGX_INT64_LEN], age_buf[NGX_INT64_LEN];

    now = kle_now_ms();
    leader = ngx_http_leader_election_claimed(snap, now);

    /* a claim past renew_deadline is no lead, whatever was published */

    if (snap->state == KLE_STATE_LEADING && !leader) {
        state = kle_state_name(KLE_STATE_FOLLOWING);

    } else {
        state = kle_state_name(snap->state);
    }

    if (ngx_http_leader_election_json_string(r->pool, (u_char *) snap->holder,
                        ngx_strnlen((u_char *) snap->holder, KLE_ID_MAX),
                        &holder)
        != NGX_OK
        || ngx_http_leader_election_json_string(r->pool,
                        (u_char *) snap->address,
                        ngx_strnlen((u_char *) snap->address, KLE_ADDR_MAX),
                        &address)
           != NGX_OK
        || ngx_http_leader_election_json_string(r->pool, le->name.data,
                                                le->name.len, &election)
           != NGX_OK
        || ngx_http_leader_election_json_string(r->pool, le->identity.data,
                                                le->identity.len, &identity)
           != NGX_OK
        || ngx_http_leader_election_json_string(r->pool, le->lock_kind.data,
                                                le->lock_kind.len, &kind)
           != NGX_OK
        || ngx_http_leader_election_json_string(r->pool,
                                                le->lock_namespace.data,
                                                le->lock_namespace.len, &ns)
           != NGX_OK
        || ngx_http_leader_election_json_string(r->pool, le->lock_name.data,
                                                le->lock_name.len, &name)
           != NGX_OK)
    {
        return NULL;
    }

    if (snap->last_error[0] == '\0') {
        ngx_str_set(&error, "null");

    } else if (ngx_http_leader_election_json_string(r->pool,
                      (u_char *) snap->last_error,
                      ngx_strnlen((u_char *) snap->last_error,
                                  sizeof(snap->last_error)),
                      &error)
               != NGX_OK)
    {
        return NULL;
    }

    ngx_http_leader_election_seconds(le->lease_duration, lease_buf, &lease);
    ngx_http_leader_election_seconds(le->renew_deadline, deadline_buf,
                                     &deadline);
    ngx_http_leader_election_seconds(le->retry_period, retry_buf, &retry);

    ngx_http_leader_election_json_time(snap->acquire_time, acquired_buf,
                                       &acquired);
    ngx_http_leader_election_json_time(snap->renew_time, renewed_buf,
                                       &renewed);

    if (snap->elector_pid == 0) {
        ngx_str_set(&pid, "null");

    } else {
        pid.data = pid_buf;
        pid.len = ngx_sprintf(pid_buf, "%P", snap->elector_pid) - pid_buf;
    }

    if (snap->heartbeat == 0) {
        ngx_str_set(&age, "null");

    } else {
        age.data = age_buf;
        age.len = ngx_sprintf(age_buf, "%L", now - snap->heartbeat) - age_buf;
    }

    len = sizeof(NGX_HTTP_LEADER_ELECTION_JSON)
          + 2 * holder.len + election.len + identity.len + address.len
          + kind.len + ns.len + name.len + lease.len + deadline.len
          + retry.len + acquired.len + renewed.len + pid.len + error.len
          + age.len + 2 * sizeof("false") + ngx_strlen(state)
          + NGX_INT32_LEN + 2 * NGX_INT64_LEN;

    b = ngx_create_temp_buf(r->pool, len);
    if (b == NULL) {
        return NULL;
    }

    b->last = ngx_slprintf(b->last, b->end, NGX_HTTP_LEADER_ELECTION_JSON,
                           &holder, &election, &identity,
                           leader ? "true" : "false", &holder, &address,
                           snap->transitions, &kind, &ns, &name,
                           &lease, &deadline, &retry, &acquired, &renewed,
                           state, &pid, &error,
                           snap->api_requests, snap->api_failures, &age,
                           snap->identity_conflict ? "true" : "false");

    return b;
}


/* a JSON string, quotes included */

static ngx_int_t
ngx_http_leader_election_json_string(ngx_pool_t *pool, u_char *s, size_t len,
    ngx_str_t *out)
{
    u_char  *p;

    p = ngx_pnalloc(pool, len + ngx_escape_json(NULL, s, len) + 2);
    if (p == NULL) {
        return NGX_ERROR;
    }

    out->data = p;

    *p++ = '"';
    p = (u_char *) ngx_escape_json(p, s, len);
    *p++ = '"';

    out->len = p - out->data;

    return NGX_OK;
}


/* a MicroTime string, or null; buf holds 32 bytes */

static void
ngx_http_leader_election_json_time(int64_t us, u_char *buf, ngx_str_t *out)
{
    if (us == 0) {
        ngx_str_set(out, "null");
        return;
    }

    buf[0] = '"';
    kle_time_format_micro(us, (char *) buf + 1, 28);

    out->data = buf;
    out->len = ngx_strlen(buf);
    buf[out->len++] = '"';
}


/* "15", "2.5": seconds, with the fraction only when there is one */

static void
ngx_http_leader_election_seconds(ngx_msec_t ms, u_char *buf, ngx_str_t *out)
{
    u_char  *p;

    p = ngx_sprintf(buf, "%M", ms / 1000);

    if (ms % 1000) {
        p = ngx_sprintf(p, ".%03M", ms % 1000);

        while (p[-1] == '0') {
            p--;
        }
    }

    out->data = buf;
    out->len = p - buf;
}


static ngx_buf_t *
ngx_http_leader_election_prometheus(ngx_http_request_t *r,
    ngx_http_leader_election_t *le, ngx_http_leader_election_snap_t *snap)
{
    size_t       len;
    ngx_buf_t   *b;
    ngx_uint_t   leader;

    leader = ngx_http_leader_election_claimed(snap, kle_now_ms());

    /* the name is letters, digits and "_": nothing to escape */

    len = sizeof(NGX_HTTP_LEADER_ELECTION_PROMETHEUS) + 5 * le->name.len
          + NGX_INT32_LEN + 2 * NGX_INT64_LEN + 2;

    b = ngx_create_temp_buf(r->pool, len);
    if (b == NULL) {
        return NULL;
    }

    b->last = ngx_slprintf(b->last, b->end,
                           NGX_HTTP_LEADER_ELECTION_PROMETHEUS,
                           &le->name, leader, &le->name, snap->transitions,
                           &le->name, snap->api_requests,
                           &le->name, snap->api_failures,
                           &le->name,
                           (ngx_uint_t) (snap->identity_conflict != 0));

    return b;
}


static ngx_int_t
ngx_http_leader_election_send(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *type, ngx_buf_t *b)
{
    ngx_int_t    rc;
    ngx_chain_t  out;

    r->headers_out.status = status;
    r->headers_out.content_type = *type;
    r->headers_out.content_type_len = type->len;
    r->headers_out.content_length_n = b->last - b->pos;

    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}
