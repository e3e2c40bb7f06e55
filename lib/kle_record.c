/*
 * LeaderElectionRecord: times and the ConfigMap annotation JSON.
 */

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>
#include <sys/random.h>

#include <json-c/json.h>

#include "kle_record.h"


#define KLE_US_PER_SEC  1000000LL


static int kle_digits(const char **p, int n, int *out);
static int kle_dns_name(const char *s, size_t len);
static int kle_days_in_month(int year, int month);
static void kle_time_split(int64_t us, struct tm *tm, int *frac);
static int kle_json_int32(json_object *v, int strings, int32_t *out);
static int kle_json_time(json_object *v, int64_t *us);
static json_object *kle_json_time_new(int64_t us);


int
kle_record_equal(const kle_record_t *a, const kle_record_t *b)
{
    return strcmp(a->holder, b->holder) == 0
           && strcmp(a->address, b->address) == 0
           && a->lease_duration == b->lease_duration
           && a->acquire_time == b->acquire_time
           && a->renew_time == b->renew_time
           && a->transitions == b->transitions
           && a->foreign == b->foreign
           && strcmp(a->instance, b->instance) == 0;
}


void
kle_record_set_holder(kle_record_t *rec, const char *s, size_t len)
{
    size_t    i, n;
    uint32_t  h;

    if (len < KLE_ID_MAX && memchr(s, '\0', len) == NULL) {
        memcpy(rec->holder, s, len);
        rec->holder[len] = '\0';
        rec->foreign = 0;
        return;
    }

    /* FNV-1a of every byte; never 0, which means "not foreign" */
    h = 2166136261u;
    for (i = 0; i < len; i++) {
        h = (h ^ (unsigned char) s[i]) * 16777619u;
    }
    rec->foreign = h ? h : 1;

    /* a stand-in for status pages: the start, NULs shown as '?' */
    n = len < KLE_ID_MAX - 4 ? len : KLE_ID_MAX - 4;
    for (i = 0; i < n; i++) {
        rec->holder[i] = s[i] ? s[i] : '?';
    }

    if (n < len) {
        memcpy(rec->holder + n, "...", 4);

    } else {
        rec->holder[n] = '\0';
    }
}


int
kle_record_names(const kle_record_t *rec, const char *identity)
{
    return rec->foreign == 0 && strcmp(rec->holder, identity) == 0;
}


int
kle_instance_valid(const char *s, size_t len)
{
    size_t  i;

    if (len != KLE_INSTANCE_MAX - 1) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if (!isdigit((unsigned char) s[i]) && (s[i] < 'a' || s[i] > 'f')) {
            return 0;
        }
    }

    return 1;
}


int
kle_instance_new(char *buf)
{
    size_t         i, n;
    ssize_t        got;
    unsigned char  r[(KLE_INSTANCE_MAX - 1) / 2];

    for (n = 0; n < sizeof(r); n += (size_t) got) {
        got = getrandom(r + n, sizeof(r) - n, 0);
        if (got <= 0) {
            if (got < 0 && errno == EINTR) {
                got = 0;
                continue;
            }
            return -1;
        }
    }

    for (i = 0; i < sizeof(r); i++) {
        buf[2 * i] = "0123456789abcdef"[r[i] >> 4];
        buf[2 * i + 1] = "0123456789abcdef"[r[i] & 0x0f];
    }

    buf[KLE_INSTANCE_MAX - 1] = '\0';

    return 0;
}


int
kle_address_valid(const char *s, size_t len)
{
    char         host[KLE_ADDR_MAX], a[16];
    size_t       i, hlen;
    long         port;
    const char  *colon;

    if (len == 0 || len >= KLE_ADDR_MAX || memchr(s, '\0', len) != NULL) {
        return 0;
    }

    colon = NULL;
    for (i = len; i > 0; i--) {
        if (s[i - 1] == ':') {
            colon = s + i - 1;
            break;
        }
    }

    if (colon == NULL || colon == s) {
        return 0;
    }

    /* the port: 1-65535, digits only, no leading zero */
    i = (size_t) (colon - s) + 1;
    if (i == len || len - i > 5 || s[i] == '0') {
        return 0;
    }

    for (port = 0; i < len; i++) {
        if (!isdigit((unsigned char) s[i])) {
            return 0;
        }
        port = port * 10 + (s[i] - '0');
    }

    if (port < 1 || port > 65535) {
        return 0;
    }

    hlen = (size_t) (colon - s);
    memcpy(host, s, hlen);
    host[hlen] = '\0';

    if (host[0] == '[') {
        if (hlen < 3 || host[hlen - 1] != ']') {
            return 0;
        }
        host[hlen - 1] = '\0';
        return inet_pton(AF_INET6, host + 1, a) == 1;
    }

    if (inet_pton(AF_INET, host, a) == 1) {
        return 1;
    }

    return kle_dns_name(host, hlen);
}


/*
 * RFC 1123 host name: dot-separated labels of letters, digits and '-',
 * 1-63 each, not starting or ending with '-', 253 in all.  A last label
 * of digits only would be a malformed IPv4 address, not a name.
 */
static int
kle_dns_name(const char *s, size_t len)
{
    size_t  i, start;
    int     digits;

    if (len == 0 || len > 253) {
        return 0;
    }

    start = 0;
    digits = 1;

    for (i = 0; i <= len; i++) {
        if (i == len || s[i] == '.') {
            if (i == start || i - start > 63
                || s[start] == '-' || s[i - 1] == '-')
            {
                return 0;
            }
            if (i == len) {
                return !digits;
            }
            start = i + 1;
            digits = 1;
            continue;
        }

        if (!isalnum((unsigned char) s[i]) && s[i] != '-') {
            return 0;
        }

        if (!isdigit((unsigned char) s[i])) {
            digits = 0;
        }
    }

    return 0;
}


int
kle_time_parse(const char *s, int64_t *us)
{
    int         year, mon, mday, hour, min, sec, frac, n, local;
    int         oh, om, sign;
    time_t      t;
    struct tm   tm;

    if (s == NULL) {
        return -1;
    }

    if (kle_digits(&s, 4, &year) != 0 || *s++ != '-'
        || kle_digits(&s, 2, &mon) != 0 || *s++ != '-'
        || kle_digits(&s, 2, &mday) != 0)
    {
        return -1;
    }

    /* a space is the Python client's str(datetime): local time, no zone */
    if (*s != 'T' && *s != 't' && *s != ' ') {
        return -1;
    }
    local = (*s++ == ' ');

    if (kle_digits(&s, 2, &hour) != 0 || *s++ != ':'
        || kle_digits(&s, 2, &min) != 0 || *s++ != ':'
        || kle_digits(&s, 2, &sec) != 0)
    {
        return -1;
    }

    /* microseconds: digits past the sixth are dropped */
    frac = 0;
    if (*s == '.') {
        s++;
        for (n = 0; isdigit((unsigned char) *s); n++, s++) {
            if (n < 6) {
                frac = frac * 10 + (*s - '0');
            }
        }
        if (n == 0 || n > 9) {
            return -1;
        }
        for ( /* void */ ; n < 6; n++) {
            frac *= 10;
        }
    }

    sign = 0;
    oh = 0;
    om = 0;

    if (*s == 'Z' || *s == 'z') {
        s++;
        local = 0;

    } else if (*s == '+' || *s == '-') {
        sign = (*s++ == '-') ? -1 : 1;
        if (kle_digits(&s, 2, &oh) != 0 || *s++ != ':'
            || kle_digits(&s, 2, &om) != 0 || oh > 23 || om > 59)
        {
            return -1;
        }
        local = 0;

    } else if (!local) {
        return -1;      /* RFC 3339 requires a zone */
    }

    if (*s != '\0'
        || mon < 1 || mon > 12
        || mday < 1 || mday > kle_days_in_month(year, mon)
        || hour > 23 || min > 59 || sec > 59)
    {
        return -1;
    }

    memset(&tm, 0, sizeof(tm));
    tm.tm_year = year - 1900;
    tm.tm_mon = mon - 1;
    tm.tm_mday = mday;
    tm.tm_hour = hour;
    tm.tm_min = min;
    tm.tm_sec = sec;

    if (local) {
        tm.tm_isdst = -1;
        tm.tm_wday = -1;    /* mktime sets it on success; -1 is ambiguous */
        t = mktime(&tm);
        if (tm.tm_wday == -1) {
            return -1;
        }

    } else {
        t = timegm(&tm) - sign * (oh * 3600 + om * 60);
    }

    *us = (int64_t) t * KLE_US_PER_SEC + frac;

    return 0;
}


void
kle_time_format_micro(int64_t us, char *buf, size_t size)
{
    int        frac;
    struct tm  tm;

    if (size == 0) {
        return;
    }

    kle_time_split(us, &tm, &frac);

    snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
}


void
kle_time_format_rfc3339(int64_t us, char *buf, size_t size)
{
    int        frac;
    struct tm  tm;

    if (size == 0) {
        return;
    }

    kle_time_split(us, &tm, &frac);

    snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02dZ",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour, tm.tm_min, tm.tm_sec);
}


int
kle_record_from_annotation(const char *json, size_t len, kle_record_t *rec,
    char *err, size_t errlen)
{
    size_t              end;
    const char         *what;
    json_object        *root, *v;
    kle_record_t        r;
    json_tokener       *tok;
    enum json_tokener_error  jerr;

    if (len > INT_MAX) {
        snprintf(err, errlen, "leader annotation is too large");
        return -1;
    }

    tok = json_tokener_new();
    if (tok == NULL) {
        snprintf(err, errlen, "leader annotation: out of memory");
        return -1;
    }

    root = json_tokener_parse_ex(tok, json, (int) len);
    jerr = json_tokener_get_error(tok);
    end = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);

    if (root == NULL) {
        snprintf(err, errlen, "leader annotation is not valid JSON: %s",
                 jerr == json_tokener_continue
                     ? "truncated" : json_tokener_error_desc(jerr));
        return -1;
    }

    while (end < len && isspace((unsigned char) json[end])) {
        end++;
    }

    if (end < len) {
        what = "trailing data after the JSON value";
        goto failed;
    }

    if (!json_object_is_type(root, json_type_object)) {
        what = "not a JSON object";
        goto failed;
    }

    memset(&r, 0, sizeof(r));

    if (json_object_object_get_ex(root, "holderIdentity", &v) && v != NULL) {
        if (!json_object_is_type(v, json_type_string)) {
            what = "holderIdentity is not a string";
            goto failed;
        }
        kle_record_set_holder(&r, json_object_get_string(v),
                              (size_t) json_object_get_string_len(v));
    }

    /* the Python client writes the duration as a string */
    json_object_object_get_ex(root, "leaseDurationSeconds", &v);
    if (kle_json_int32(v, 1, &r.lease_duration) != 0) {
        what = "leaseDurationSeconds is not an integer";
        goto failed;
    }

    json_object_object_get_ex(root, "acquireTime", &v);
    if (kle_json_time(v, &r.acquire_time) != 0) {
        what = "acquireTime is not a time";
        goto failed;
    }

    json_object_object_get_ex(root, "renewTime", &v);
    if (kle_json_time(v, &r.renew_time) != 0) {
        what = "renewTime is not a time";
        goto failed;
    }

    json_object_object_get_ex(root, "leaderTransitions", &v);
    if (kle_json_int32(v, 1, &r.transitions) != 0) {
        what = "leaderTransitions is not an integer";
        goto failed;
    }

    json_object_put(root);
    *rec = r;

    return 0;

failed:

    json_object_put(root);
    snprintf(err, errlen, "leader annotation: %s", what);

    return -1;
}


char *
kle_record_to_annotation(const kle_record_t *rec)
{
    char         *s;
    json_object  *o, *v;

    o = json_object_new_object();
    if (o == NULL) {
        return NULL;
    }

    s = NULL;

    /* client-go's field order; json-c keeps insertion order */
    v = json_object_new_string_len(rec->holder,
                                   (int) strnlen(rec->holder, KLE_ID_MAX));
    if (v == NULL || json_object_object_add(o, "holderIdentity", v) != 0) {
        goto done;
    }

    v = json_object_new_int(rec->lease_duration);
    if (v == NULL
        || json_object_object_add(o, "leaseDurationSeconds", v) != 0)
    {
        goto done;
    }

    v = kle_json_time_new(rec->acquire_time);
    if ((rec->acquire_time != 0 && v == NULL)
        || json_object_object_add(o, "acquireTime", v) != 0)
    {
        goto done;
    }

    v = kle_json_time_new(rec->renew_time);
    if ((rec->renew_time != 0 && v == NULL)
        || json_object_object_add(o, "renewTime", v) != 0)
    {
        goto done;
    }

    v = json_object_new_int(rec->transitions);
    if (v == NULL
        || json_object_object_add(o, "leaderTransitions", v) != 0)
    {
        goto done;
    }

    s = strdup(json_object_to_json_string_ext(o,
                   JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));

done:

    json_object_put(o);

    return s;
}


/* Exactly n decimal digits at *p. */
static int
kle_digits(const char **p, int n, int *out)
{
    int          v;
    const char  *s;

    v = 0;
    for (s = *p; n > 0; n--, s++) {
        if (!isdigit((unsigned char) *s)) {
            return -1;
        }
        v = v * 10 + (*s - '0');
    }

    *p = s;
    *out = v;

    return 0;
}


static int
kle_days_in_month(int year, int month)
{
    static const int  days[] = { 31, 28, 31, 30, 31, 30,
                                 31, 31, 30, 31, 30, 31 };

    if (month == 2
        && year % 4 == 0 && (year % 100 != 0 || year % 400 == 0))
    {
        return 29;
    }

    return days[month - 1];
}


/* Floors towards minus infinity so times before 1970 print correctly. */
static void
kle_time_split(int64_t us, struct tm *tm, int *frac)
{
    int64_t  sec;
    time_t   t;

    sec = us / KLE_US_PER_SEC;
    *frac = (int) (us % KLE_US_PER_SEC);
    if (*frac < 0) {
        *frac += KLE_US_PER_SEC;
        sec--;
    }

    t = (time_t) sec;
    if (gmtime_r(&t, tm) == NULL) {
        memset(tm, 0, sizeof(*tm));
        tm->tm_year = 70;
        tm->tm_mday = 1;
        *frac = 0;
    }
}


/* Missing or null reads as 0; strings only where allowed. */
static int
kle_json_int32(json_object *v, int strings, int32_t *out)
{
    char        *end;
    int64_t      n;
    const char  *s;

    if (v == NULL) {
        *out = 0;
        return 0;
    }

    if (json_object_is_type(v, json_type_int)) {
        n = json_object_get_int64(v);

    } else if (strings && json_object_is_type(v, json_type_string)) {
        s = json_object_get_string(v);
        if (strlen(s) != (size_t) json_object_get_string_len(v)
            || (!isdigit((unsigned char) *s) && *s != '-'))
        {
            return -1;
        }
        errno = 0;
        n = strtoll(s, &end, 10);
        if (errno != 0 || end == s || *end != '\0') {
            return -1;
        }

    } else {
        return -1;
    }

    if (n < INT32_MIN || n > INT32_MAX) {
        return -1;
    }

    *out = (int32_t) n;

    return 0;
}


/* Missing, null or "" reads as unset (0). */
static int
kle_json_time(json_object *v, int64_t *us)
{
    if (v == NULL) {
        *us = 0;
        return 0;
    }

    if (!json_object_is_type(v, json_type_string)) {
        return -1;
    }

    if (json_object_get_string_len(v) == 0) {
        *us = 0;
        return 0;
    }

    if (strlen(json_object_get_string(v))
        != (size_t) json_object_get_string_len(v))
    {
        return -1;
    }

    return kle_time_parse(json_object_get_string(v), us);
}


/* metav1.Time: whole seconds, null when unset. */
static json_object *
kle_json_time_new(int64_t us)
{
    char  buf[32];

    if (us == 0) {
        return NULL;
    }

    kle_time_format_rfc3339(us, buf, sizeof(buf));

    return json_object_new_string(buf);
}
