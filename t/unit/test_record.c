/*
 * kle_record: time parsing and formatting, the ConfigMap annotation JSON.
 */

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kle_record.h"
#include "kle_test.h"


#define T0  1767261600LL            /* 2026-01-01T10:00:00Z */
#define US  1000000LL


static void
time_is(const char *s, int64_t want, const char *name)
{
    int64_t  got = -42;

    if (!ok(kle_time_parse(s, &got) == 0, name)) {
        printf("#   rejected: '%s'\n", s);
        return;
    }
    is_int(got, want, name);
}


static void
time_rejected(const char *s)
{
    char     name[128];
    int64_t  got = -42;

    snprintf(name, sizeof(name), "rejects '%s'", s ? s : "(null)");
    ok(kle_time_parse(s, &got) == -1 && got == -42, name);
}


/* Exactly len bytes, no NUL: valgrind catches any read past the end. */
static char *
exact(const char *s)
{
    char  *p = malloc(strlen(s));

    memcpy(p, s, strlen(s));
    return p;
}


static int
from_annotation(const char *json, kle_record_t *rec, char *err, size_t n)
{
    int    rc;
    char  *p = exact(json);

    rc = kle_record_from_annotation(p, strlen(json), rec, err, n);
    free(p);
    return rc;
}


static void
test_time_parse(void)
{
    setenv("TZ", "UTC", 1);
    tzset();

    time_is("2026-01-01T10:00:00Z", T0 * US, "RFC 3339, Z");
    time_is("2026-01-01T10:00:00.123456Z", T0 * US + 123456, "MicroTime");
    time_is("2026-01-01T10:00:00.1Z", T0 * US + 100000, "one digit");
    time_is("2026-01-01T10:00:00.000001Z", T0 * US + 1, "one microsecond");
    time_is("2026-01-01T10:00:00.123456789Z", T0 * US + 123456,
            "nanoseconds truncated");
    time_is("2026-01-01T10:00:00.999999999Z", T0 * US + 999999,
            "truncated, not rounded");
    time_is("2026-01-01T12:00:00+02:00", T0 * US, "+02:00");
    time_is("2026-01-01T04:30:00-05:30", T0 * US, "-05:30");
    time_is("2026-01-01T10:00:00.5+00:00", T0 * US + 500000,
            "fraction and offset");
    time_is("2026-01-01t10:00:00z", T0 * US, "lowercase t and z");
    time_is("2024-02-29T00:00:00Z", 1709164800LL * US, "leap day");
    time_is("1970-01-01T00:00:00Z", 0, "epoch");
    time_is("1969-12-31T23:59:59.5Z", -500000, "before 1970");
    time_is("2026-08-17 10:00:00.123456", 1786960800LL * US + 123456,
            "Python str(datetime), UTC");
    time_is("2026-08-17 10:00:00", 1786960800LL * US,
            "Python str(datetime) without fraction");
    time_is("2026-08-17 10:00:00+00:00", 1786960800LL * US,
            "Python str(datetime) of an aware time");

    /* Python writes local time: 10:00 CEST is 08:00 UTC */
    setenv("TZ", "CET-1CEST,M3.5.0,M10.5.0/3", 1);
    tzset();
    time_is("2026-08-17 10:00:00.123456", 1786953600LL * US + 123456,
            "Python local time, summer");
    time_is("2026-01-01 11:00:00", T0 * US, "Python local time, winter");
    time_is("2026-01-01T10:00:00Z", T0 * US, "Z ignores the local zone");
    setenv("TZ", "UTC", 1);
    tzset();

    time_rejected(NULL);
    time_rejected("");
    time_rejected("garbage");
    time_rejected("2026-01-01");
    time_rejected("2026-01-01T10:00:00");
    time_rejected("2026-01-01T10:00Z");
    time_rejected("2026-01-01T10:00:00Zjunk");
    time_rejected("2026-01-01T10:00:00Z ");
    time_rejected("2026-01-01 10:00:00 ");
    time_rejected(" 2026-01-01T10:00:00Z");
    time_rejected("2026-1-01T10:00:00Z");
    time_rejected("2026-01-01X10:00:00Z");
    time_rejected("2026-00-01T10:00:00Z");
    time_rejected("2026-13-01T10:00:00Z");
    time_rejected("2026-01-00T10:00:00Z");
    time_rejected("2026-01-32T10:00:00Z");
    time_rejected("2026-02-29T10:00:00Z");
    time_rejected("2100-02-29T10:00:00Z");
    time_rejected("2026-04-31T10:00:00Z");
    time_rejected("2026-01-01T24:00:00Z");
    time_rejected("2026-01-01T10:60:00Z");
    time_rejected("2026-01-01T10:00:60Z");
    time_rejected("2026-01-01T10:00:00.Z");
    time_rejected("2026-01-01T10:00:00.1234567890Z");
    time_rejected("2026-01-01T10:00:00+24:00");
    time_rejected("2026-01-01T10:00:00+02:60");
    time_rejected("2026-01-01T10:00:00+0200");
    time_rejected("2026-01-01T10:00:00+02");
    time_rejected("2026-01-01T-1:00:00Z");
    time_rejected("2026-01-01 10:00:00.");
}


static void
test_time_format(void)
{
    char  buf[32];

    kle_time_format_micro(T0 * US + 123456, buf, sizeof(buf));
    is_str(buf, "2026-01-01T10:00:00.123456Z", "MicroTime");
    kle_time_format_micro(T0 * US + 1, buf, 28);
    is_str(buf, "2026-01-01T10:00:00.000001Z", "MicroTime fits 28 bytes");
    kle_time_format_micro(0, buf, sizeof(buf));
    is_str(buf, "1970-01-01T00:00:00.000000Z", "MicroTime of 0");
    kle_time_format_micro(-1, buf, sizeof(buf));
    is_str(buf, "1969-12-31T23:59:59.999999Z", "MicroTime of -1us");

    kle_time_format_rfc3339(T0 * US + 999999, buf, 21);
    is_str(buf, "2026-01-01T10:00:00Z", "RFC 3339 truncates");
    kle_time_format_rfc3339(0, buf, sizeof(buf));
    is_str(buf, "1970-01-01T00:00:00Z", "RFC 3339 of 0");
    kle_time_format_rfc3339(-1, buf, sizeof(buf));
    is_str(buf, "1969-12-31T23:59:59Z", "RFC 3339 floors before 1970");

    kle_time_format_micro(T0 * US, buf, 5);
    is_str(buf, "2026", "a short buffer is truncated");
    buf[0] = 'x';
    kle_time_format_micro(T0 * US, buf, 0);
    is_int(buf[0], 'x', "size 0 writes nothing");
}


static void
test_equal(void)
{
    kle_record_t  a, b;

    memset(&a, 0, sizeof(a));
    strcpy(a.holder, "nginx-0");
    strcpy(a.address, "10.0.0.5:8080");
    a.lease_duration = 15;
    a.acquire_time = 1;
    a.renew_time = 2;
    a.transitions = 3;

    b = a;
    ok(kle_record_equal(&a, &b), "equal records");
    b.holder[0] = 'N';
    ok(!kle_record_equal(&a, &b), "holder differs");
    b = a;
    b.address[0] = '\0';
    ok(!kle_record_equal(&a, &b), "address differs");
    b = a;
    b.lease_duration = 16;
    ok(!kle_record_equal(&a, &b), "duration differs");
    b = a;
    b.acquire_time = 9;
    ok(!kle_record_equal(&a, &b), "acquire time differs");
    b = a;
    b.renew_time = 9;
    ok(!kle_record_equal(&a, &b), "renew time differs");
    b = a;
    b.transitions = 4;
    ok(!kle_record_equal(&a, &b), "transitions differ");
    b = a;
    strcpy(b.instance, "0123456789abcdef0123456789abcdef");
    ok(!kle_record_equal(&a, &b), "instance differs");
}


static void
test_instance_new(void)
{
    char  a[KLE_INSTANCE_MAX], b[KLE_INSTANCE_MAX];

    memset(a, 'x', sizeof(a));
    memset(b, 'x', sizeof(b));
    is_int(kle_instance_new(a), 0, "nonce made");
    is_int(kle_instance_new(b), 0, "another made");
    ok(a[KLE_INSTANCE_MAX - 1] == '\0' && kle_instance_valid(a, strlen(a)),
       "a nonce: 32 lowercase hex digits");
    ok(strcmp(a, b) != 0, "two nonces differ");
}


static void
test_annotation_out(void)
{
    char          *s, err[256];
    kle_record_t   r, back;

    memset(&r, 0, sizeof(r));
    strcpy(r.holder, "x");
    r.lease_duration = 15;
    r.acquire_time = T0 * US + 999999;
    r.renew_time = (T0 + 10) * US;
    r.transitions = 3;

    s = kle_record_to_annotation(&r);
    is_str(s, "{\"holderIdentity\":\"x\",\"leaseDurationSeconds\":15,"
              "\"acquireTime\":\"2026-01-01T10:00:00Z\","
              "\"renewTime\":\"2026-01-01T10:00:10Z\","
              "\"leaderTransitions\":3}", "client-go annotation bytes");

    memset(&back, 0x55, sizeof(back));
    ok(from_annotation(s, &back, err, sizeof(err)) == 0, "reads back");
    r.acquire_time = T0 * US;       /* whole seconds on the wire */
    ok(kle_record_equal(&r, &back), "round trip");
    free(s);

    /* the release record, and a holder that needs escaping */
    memset(&r, 0, sizeof(r));
    r.lease_duration = 1;
    s = kle_record_to_annotation(&r);
    is_str(s, "{\"holderIdentity\":\"\",\"leaseDurationSeconds\":1,"
              "\"acquireTime\":null,\"renewTime\":null,"
              "\"leaderTransitions\":0}", "unset times are null");
    memset(&back, 0x55, sizeof(back));
    ok(from_annotation(s, &back, err, sizeof(err)) == 0
       && kle_record_equal(&r, &back), "null times read back as 0");
    free(s);

    strcpy(r.holder, "a\"b\\c/d");
    s = kle_record_to_annotation(&r);
    ok(s != NULL && strstr(s, "\"holderIdentity\":\"a\\\"b\\\\c/d\"") != NULL,
       "holder escaped, slash kept");
    ok(from_annotation(s, &back, err, sizeof(err)) == 0
       && strcmp(back.holder, r.holder) == 0, "escaped holder reads back");
    free(s);
}


static void
test_annotation_in(void)
{
    char          err[256];
    kle_record_t  r;

    setenv("TZ", "CET-1CEST,M3.5.0,M10.5.0/3", 1);
    tzset();

    memset(&r, 0x55, sizeof(r));
    ok(from_annotation("{\"holderIdentity\": \"py-1\", "
                       "\"leaseDurationSeconds\": \"15\", "
                       "\"acquireTime\": \"2026-08-17 10:00:00.123456\", "
                       "\"renewTime\": \"2026-08-17 10:00:00\"}",
                       &r, err, sizeof(err)) == 0,
       "Python client's annotation parses");
    is_str(r.holder, "py-1", "Python holder");
    is_str(r.address, "", "no address in the annotation");
    is_int(r.lease_duration, 15, "string duration");
    is_int(r.acquire_time, 1786953600LL * US + 123456, "Python acquireTime");
    is_int(r.renew_time, 1786953600LL * US, "Python renewTime");
    is_int(r.transitions, 0, "missing leaderTransitions is 0");

    setenv("TZ", "UTC", 1);
    tzset();

    ok(from_annotation("{}", &r, err, sizeof(err)) == 0
       && r.holder[0] == '\0' && r.lease_duration == 0
       && r.acquire_time == 0 && r.renew_time == 0 && r.transitions == 0,
       "empty object is an all-zero record");

    ok(from_annotation("{\"holderIdentity\":null,\"leaseDurationSeconds\":"
                       "\"-1\",\"acquireTime\":\"\",\"renewTime\":"
                       "\"2026-01-01T10:00:00.5Z\",\"leaderTransitions\":7,"
                       "\"preferredHolder\":\"z\"}\n",
                       &r, err, sizeof(err)) == 0,
       "nulls, empty time, unknown keys, trailing newline");
    is_int(r.lease_duration, -1, "negative string duration");
    is_int(r.acquire_time, 0, "empty time is unset");
    is_int(r.renew_time, T0 * US + 500000, "fractional RFC 3339 accepted");
    is_int(r.transitions, 7, "transitions");

    err[0] = '\0';
    ok(from_annotation("{\"holderIdentity\":5}", &r, err, sizeof(err)) == -1,
       "holderIdentity a number rejected");
    is_str(err, "leader annotation: holderIdentity is not a string",
           "reason names the field");

    ok(from_annotation("[1]", &r, err, sizeof(err)) == -1
       && strcmp(err, "leader annotation: not a JSON object") == 0,
       "array rejected");
    ok(from_annotation("\"x\"", &r, err, sizeof(err)) == -1,
       "string rejected");
    ok(from_annotation("{\"holderIdentity\":\"a\"", &r, err,
                       sizeof(err)) == -1
       && strcmp(err, "leader annotation is not valid JSON: truncated") == 0,
       "truncated JSON rejected");
    ok(from_annotation("", &r, err, sizeof(err)) == -1, "empty rejected");
    ok(from_annotation("not json", &r, err, sizeof(err)) == -1,
       "garbage rejected");
    ok(from_annotation("{} {}", &r, err, sizeof(err)) == -1,
       "trailing data rejected");
    ok(from_annotation("{\"leaseDurationSeconds\":\"abc\"}", &r, err,
                       sizeof(err)) == -1
       && strcmp(err, "leader annotation: leaseDurationSeconds is not an "
                 "integer") == 0, "non-numeric duration string rejected");
    ok(from_annotation("{\"leaseDurationSeconds\":\"15s\"}", &r, err,
                       sizeof(err)) == -1, "duration '15s' rejected");
    ok(from_annotation("{\"leaseDurationSeconds\":\"\"}", &r, err,
                       sizeof(err)) == -1, "empty duration rejected");
    ok(from_annotation("{\"leaseDurationSeconds\":\" 15\"}", &r, err,
                       sizeof(err)) == -1, "duration ' 15' rejected");
    ok(from_annotation("{\"leaseDurationSeconds\":1.5}", &r, err,
                       sizeof(err)) == -1, "fractional duration rejected");
    ok(from_annotation("{\"leaseDurationSeconds\":4294967296}", &r, err,
                       sizeof(err)) == -1, "duration beyond int32 rejected");
    ok(from_annotation("{\"leaseDurationSeconds\":true}", &r, err,
                       sizeof(err)) == -1, "boolean duration rejected");
    ok(from_annotation("{\"renewTime\":\"yesterday\"}", &r, err,
                       sizeof(err)) == -1
       && strcmp(err, "leader annotation: renewTime is not a time") == 0,
       "bad time rejected");
    ok(from_annotation("{\"acquireTime\":1767261600}", &r, err,
                       sizeof(err)) == -1, "numeric time rejected");
    ok(from_annotation("{\"leaderTransitions\":{}}", &r, err,
                       sizeof(err)) == -1, "object transitions rejected");
    ok(strchr(err, '\n') == NULL, "reason is one line");
}


static void
test_long_holder(void)
{
    char          json[KLE_ID_MAX + 64], err[256];
    kle_record_t  r;

    memset(json, 0, sizeof(json));
    strcpy(json, "{\"holderIdentity\":\"");
    memset(json + strlen(json), 'a', KLE_ID_MAX - 1);
    strcat(json, "\"}");

    ok(from_annotation(json, &r, err, sizeof(err)) == 0
       && strlen(r.holder) == KLE_ID_MAX - 1, "holder of KLE_ID_MAX-1 fits");

    ok(r.foreign == 0 && kle_record_names(&r, r.holder),
       "holder of KLE_ID_MAX-1 is an identity");

    /* one we cannot store is someone else's, not an error */
    strcpy(json + strlen(json) - 2, "a\"}");
    ok(from_annotation(json, &r, err, sizeof(err)) == 0,
       "holder of KLE_ID_MAX read");
    ok(r.foreign != 0, "holder of KLE_ID_MAX is foreign");
    ok(r.holder[0] != '\0' && !kle_record_names(&r, r.holder),
       "holder of KLE_ID_MAX names nobody");

    /* a NUL inside: the same, where strlen would have cut it short */
    ok(from_annotation("{\"holderIdentity\":\"a\\u0000b\"}", &r, err,
                       sizeof(err)) == 0, "holder with a NUL read");
    ok(r.foreign != 0 && !kle_record_names(&r, "a"),
       "holder with a NUL is foreign, not \"a\"");
    ok(from_annotation("{\"holderIdentity\":\"\\u0000\"}", &r, err,
                       sizeof(err)) == 0 && r.holder[0] != '\0',
       "holder of one NUL is not free");

    /* NULs elsewhere: not a time, not a number */
    ok(from_annotation("{\"renewTime\":\"2026-01-01T00:00:00Z\\u0000x\"}",
                       &r, err, sizeof(err)) == -1,
       "time with a NUL rejected");
    ok(from_annotation("{\"leaseDurationSeconds\":\"15\\u0000\"}", &r, err,
                       sizeof(err)) == -1, "duration with a NUL rejected");
}


int
main(void)
{
    test_time_parse();
    test_time_format();
    test_equal();
    test_instance_new();
    test_annotation_out();
    test_annotation_in();
    test_long_holder();

    return done_testing();
}
