/*
 * kle's command line: the input is argv, NUL-separated.  Parsing never
 * reads past argv; what parses has a lock and bounded durations, and what
 * "run" accepts has a grace period inside lease_duration - renew_deadline.
 */

#include "fuzz.h"
#include "kle_args.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int          argc, rc;
    char        *copy, **argv, err[512];
    size_t       i, start;
    kle_opts_t   o;

    if (size > 4096) {
        return 0;
    }

    copy = fuzz_cstr(data, size);
    argv = calloc(size + 3, sizeof(char *));

    argc = 0;
    argv[argc++] = "run";
    for (i = 0, start = 0; i <= size; i++) {
        if (i == size || copy[i] == '\0') {
            argv[argc++] = copy + start;
            start = i + 1;
        }
    }
    argv[argc] = NULL;

    err[0] = '\0';
    rc = kle_parse_args(argc, argv, &o, err, sizeof(err));

    if (rc == -1) {
        FUZZ_ASSERT(err[0] != '\0' && strchr(err, '\n') == NULL);

    } else if (rc == 0) {
        FUZZ_ASSERT(o.lock != NULL);
        FUZZ_ASSERT(o.election.lease_duration >= 0
                    && o.election.lease_duration <= KLE_DURATION_MAX_MS);
        FUZZ_ASSERT(o.election.renew_deadline >= 0
                    && o.election.renew_deadline <= KLE_DURATION_MAX_MS);
        FUZZ_ASSERT(o.election.retry_period >= 0
                    && o.election.retry_period <= KLE_DURATION_MAX_MS);
        FUZZ_ASSERT(o.grace >= -1 && o.grace <= KLE_DURATION_MAX_MS);
        FUZZ_ASSERT(strlen(o.election.identity) < KLE_ID_MAX);

        if (kle_check_run(&o, err, sizeof(err)) == 0) {
            FUZZ_ASSERT(o.cmd[0] != NULL);
            FUZZ_ASSERT(o.grace >= 0);
            FUZZ_ASSERT(o.grace <= o.election.lease_duration
                                   - o.election.renew_deadline);
        }
    }

    free(argv);
    free(copy);
    return 0;
}
