/*
 * LeaderElectionRecord: the lock's content, as client-go and the Python
 * client define it, and its wire forms (Lease spec, ConfigMap annotation).
 */

#ifndef KLE_RECORD_H
#define KLE_RECORD_H

#include <stddef.h>
#include <stdint.h>

#define KLE_ID_MAX    256    /* identity / holder incl. NUL (DNS names <= 253) */
#define KLE_ADDR_MAX  128    /* advertised address incl. NUL */
/* an instance nonce: 32 lowercase hex digits, incl. NUL */
#define KLE_INSTANCE_MAX  33

typedef struct {
    char      holder[KLE_ID_MAX];     /* holderIdentity, "" = free */
    char      address[KLE_ADDR_MAX];  /* advertised address, "" = unknown */
    int32_t   lease_duration;         /* leaseDurationSeconds */
    int64_t   acquire_time;           /* unix microseconds, 0 = unset */
    int64_t   renew_time;             /* unix microseconds, 0 = unset */
    int32_t   transitions;            /* lease- / leaderTransitions */
    /*
     * The nonce of the instance that wrote the record (the annotation
     * leader-election.nginx.org/instance), "" if none or not valid: a
     * record of client-go or the Python client has none.
     */
    char      instance[KLE_INSTANCE_MAX];
    /*
     * Not 0: the holderIdentity could not be stored (KLE_ID_MAX bytes or
     * more, or a NUL inside); holder is then a readable stand-in, never
     * empty, and the record names no candidate.  The value is a hash of
     * the whole identity, so that two such holders still compare unequal.
     */
    uint32_t  foreign;
} kle_record_t;

/* 1 if both records hold the same values (client-go's raw compare). */
int kle_record_equal(const kle_record_t *a, const kle_record_t *b);

/*
 * Sets rec->holder from a holderIdentity of len bytes (JSON strings may
 * hold NULs): copied if it fits, else a foreign stand-in (see above).
 */
void kle_record_set_holder(kle_record_t *rec, const char *s, size_t len);

/* 1 if rec names identity: never for a foreign holder. */
int kle_record_names(const kle_record_t *rec, const char *identity);

/*
 * 1 if s (len bytes) is a strict HOST:PORT, shorter than KLE_ADDR_MAX: an
 * IPv4 address, a bracketed IPv6 address or a DNS name, and a port
 * 1-65535 without leading zeros.  What readers accept as an advertised
 * address, and what the address directive must be.
 */
int kle_address_valid(const char *s, size_t len);

/* 1 if s (len bytes) is an instance nonce: 32 lowercase hex digits. */
int kle_instance_valid(const char *s, size_t len);
/* A new random nonce into buf (KLE_INSTANCE_MAX bytes); -1 on failure. */
int kle_instance_new(char *buf);

/*
 * Times.  Parses RFC 3339 with or without a fraction (any number of digits,
 * "Z" or +hh:mm), and the Python client's str(datetime) form
 * "2026-01-01 10:00:00[.ffffff]" (local time, no zone).  0 on success,
 * -1 on anything else.
 */
int kle_time_parse(const char *s, int64_t *us);
/* MicroTime "2006-01-02T15:04:05.000000Z"; buf must hold 28 bytes. */
void kle_time_format_micro(int64_t us, char *buf, size_t size);
/* RFC 3339, whole seconds, "2006-01-02T15:04:05Z"; buf holds 21 bytes. */
void kle_time_format_rfc3339(int64_t us, char *buf, size_t size);

/*
 * The ConfigMap annotation JSON.  Parsing accepts leaseDurationSeconds
 * as a number or a string, any time form kle_time_parse() accepts, and a
 * missing leaderTransitions (0).  On error returns -1 and writes a
 * one-line reason into err.
 */
int kle_record_from_annotation(const char *json, size_t len,
    kle_record_t *rec, char *err, size_t errlen);
/* client-go's form; returns a malloc()ed NUL-terminated string. */
char *kle_record_to_annotation(const kle_record_t *rec);

#endif /* KLE_RECORD_H */
