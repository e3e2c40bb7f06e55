/*
 * The kle command line: options, durations and the checks that need no
 * I/O, apart from main() so that they can be tested and fuzzed alone.
 */

#ifndef KLE_ARGS_H
#define KLE_ARGS_H

#include <stddef.h>
#include <stdint.h>

#include "kle_election.h"

/* the longest duration: leaseDurationSeconds is an int32 */
#define KLE_DURATION_MAX_MS  ((int64_t) INT32_MAX * 1000)
#define KLE_GRACE_DEFAULT    5000
/* from the claim's end to the command's SIGKILL beside the grace period:
   kle notices the end on time and checks for the kill every 100 ms */
#define KLE_GRACE_SLACK      200

typedef struct {
    const char             *lock;
    const char             *kubeconfig;
    const char             *context;
    const char             *server;
    const char             *token_file;
    const char             *ca_file;
    const char             *cert_file;
    const char             *key_file;
    kle_election_config_t   election;
    int64_t                 grace;       /* ms; -1 until given */
    int                     release;
    int                     events;
    int                     verbose;
    char                  **cmd;         /* after "--", NULL-terminated */
} kle_opts_t;

extern const char  *kle_usage;

/*
 * "15", "15s", "1500ms", "2m", "1h" -> ms in *ms: digits only (no sign, no
 * space), at most KLE_DURATION_MAX_MS.  -1 if malformed or too long.
 */
int kle_parse_duration(const char *s, int64_t *ms);

/*
 * argv[0] is the subcommand.  0 with o filled, 1 for --help (usage wanted
 * on stdout), -1 with a one-line reason in err.
 */
int kle_parse_args(int argc, char **argv, kle_opts_t *o, char *err,
    size_t errlen);

/*
 * What "run" needs beyond parsing: a command, valid timings, and a grace
 * period that ends before another candidate can take over (lease_duration
 * - renew_deadline after this one's claim ends, less KLE_GRACE_SLACK).  An
 * unset grace becomes the smaller of 5 s and that window.  -1 with a reason
 * in err.
 */
int kle_check_run(kle_opts_t *o, char *err, size_t errlen);

#endif /* KLE_ARGS_H */
