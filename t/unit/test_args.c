/*
 * kle's command line (lib/kle_args.c): durations without overflow, the
 * grace period bounded by lease_duration - renew_deadline, one-line
 * errors whatever the arguments hold.
 */

#include <stdarg.h>
#include <stdint.h>

#include "kle_args.h"
#include "kle_test.h"


static int
parse(char *err, size_t errlen, kle_opts_t *o, ...)
{
    int       argc;
    static char  *argv[32];      /* o->cmd points into it */
    va_list   ap;

    va_start(ap, o);
    argv[0] = "run";
    for (argc = 1; argc < 31 && (argv[argc] = va_arg(ap, char *)) != NULL;
         argc++)
    {
        /* void */
    }
    va_end(ap);

    err[0] = '\0';
    return kle_parse_args(argc, argv, o, err, errlen);
}


static void
test_durations(void)
{
    static const struct {
        const char  *in;
        int64_t      ms;        /* -1: refused */
    } cases[] = {
        { "15", 15000 }, { "15s", 15000 }, { "1500ms", 1500 },
        { "2m", 120000 }, { "1h", 3600000 }, { "0", 0 },
        { "2147483647s", (int64_t) INT32_MAX * 1000 },
        { "2147483648s", -1 }, { "596524h", -1 },
        { "2562047788015216h", -1 }, { "9223372036854775807", -1 },
        { "99999999999999999999999", -1 }, { "+5s", -1 }, { " 5s", -1 },
        { "5 s", -1 }, { "-1", -1 }, { "", -1 }, { "s", -1 }, { "5x", -1 },
        { "0x10", -1 }, { "5sec", -1 },
    };

    int      i;
    char     name[64];
    int64_t  ms;

    for (i = 0; i < (int) (sizeof(cases) / sizeof(cases[0])); i++) {
        ms = -2;
        snprintf(name, sizeof(name), "duration \"%s\"", cases[i].in);
        if (cases[i].ms < 0) {
            is_int(kle_parse_duration(cases[i].in, &ms), -1, name);
        } else {
            is_int(kle_parse_duration(cases[i].in, &ms), 0, name);
            is_int(ms, cases[i].ms, name);
        }
    }
}


static void
test_grace(void)
{
    char        err[512];
    kle_opts_t  o;

    is_int(parse(err, sizeof(err), &o, "--lock", "leases/a/b", "--", "true",
                 NULL), 0, "defaults parse");
    is_int(kle_check_run(&o, err, sizeof(err)), 0, "defaults run");
    is_int(o.grace, 4800, "default grace: 15 s - 10 s - 200 ms");

    parse(err, sizeof(err), &o, "--lock", "leases/a/b", "--lease-duration",
          "4s", "--renew-deadline", "3s", "--retry-period", "1s", "--",
          "true", NULL);
    is_int(kle_check_run(&o, err, sizeof(err)), 0, "short lease runs");
    is_int(o.grace, 800, "default grace capped to 4 s - 3 s - 200 ms");

    parse(err, sizeof(err), &o, "--lock", "leases/a/b", "--grace", "4801ms",
          "--", "true", NULL);
    is_int(kle_check_run(&o, err, sizeof(err)), -1, "grace 4801ms refused");
    is_str(err, "--grace (4801ms) is longer than --lease-duration - "
           "--renew-deadline - 200ms (4800ms): the command could still run "
           "while another candidate leads", "grace: the rule is named");

    parse(err, sizeof(err), &o, "--lock", "leases/a/b", "--grace", "4800ms",
          "--", "true", NULL);
    is_int(kle_check_run(&o, err, sizeof(err)), 0, "grace = window: allowed");

    /* lease - renew deadline >= 1s: the window is never under 800ms */
    parse(err, sizeof(err), &o, "--lock", "leases/a/b", "--lease-duration",
          "1s", "--renew-deadline", "900ms", "--retry-period", "100ms", "--",
          "true", NULL);
    is_int(kle_check_run(&o, err, sizeof(err)), -1, "a window under 1s");
    ok(strstr(err, "must be at least 1s") != NULL, "the 1s rule is named");

    parse(err, sizeof(err), &o, "--lock", "leases/a/b", "--lease-duration",
          "2s", "--renew-deadline", "1s", "--retry-period", "100ms", "--",
          "true", NULL);
    is_int(kle_check_run(&o, err, sizeof(err)), 0, "the smallest window");
    is_int(o.grace, 800, "grace: 1s - 200ms");

    parse(err, sizeof(err), &o, "--lock", "leases/a/b", NULL);
    is_int(kle_check_run(&o, err, sizeof(err)), -1, "no command");
    is_str(err, "run needs a command after --", "no command: message");

    parse(err, sizeof(err), &o, "--lock", "leases/a/b", "--lease-duration",
          "10s", "--", "x", NULL);
    is_int(kle_check_run(&o, err, sizeof(err)), -1, "lease = renew deadline");
    ok(strstr(err, "must be greater than renew_deadline") != NULL,
       "the election's rule is named");
}


static void
test_errors(void)
{
    char        err[512];
    kle_opts_t  o;

    is_int(parse(err, sizeof(err), &o, "--lock", NULL), -1, "--lock alone");
    is_str(err, "option \"--lock\" needs a value", "missing value");

    is_int(parse(err, sizeof(err), &o, "--lock", "l", "--bogus", NULL), -1,
           "unknown option");
    is_str(err, "unknown option \"--bogus\"", "unknown option: message");

    is_int(parse(err, sizeof(err), &o, "--help", NULL), 1, "--help");

    is_int(parse(err, sizeof(err), &o, "--grace", "1\n2", NULL), -1,
           "newline in a duration");
    is_str(err, "invalid duration \"1?2\" (expected digits and s, ms, m or "
           "h, at most 2147483647s)", "the message stays one line");

    /* found by the fuzzer (t/fuzz/corpus/args/crash-newline-in-error) */
    is_int(parse(err, sizeof(err), &o, "--`o--grac\negus", NULL), -1,
           "newline in an unknown option");
    ok(strchr(err, '\n') == NULL, "unknown option: one line");

    {
        char  id[300];

        memset(id, 'a', sizeof(id) - 1);
        id[sizeof(id) - 1] = '\0';
        is_int(parse(err, sizeof(err), &o, "--lock", "l", "--identity", id,
                     NULL), -1, "an identity too long");
        is_str(err, "--identity is longer than 255 bytes", "identity: why");
    }

    /* getopt starts afresh on every call */
    is_int(parse(err, sizeof(err), &o, "--lock", "l", "-v", NULL), 0,
           "a second parse");
    is_int(o.verbose, 1, "second parse: -v seen");
    is_str(o.lock, "l", "second parse: --lock seen");
}


int
main(void)
{
    test_durations();
    test_grace();
    test_errors();

    return done_testing();
}
