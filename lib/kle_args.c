/*
 * kle's command line.  Nothing here prints, exits or does I/O but
 * gethostname(): the fuzzer calls it as main() does.
 */

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "kle_args.h"


const char  *kle_usage =
    "usage: kle run    --lock KIND/NAMESPACE/NAME [options] -- CMD [ARGS...]\n"
    "       kle status --lock KIND/NAMESPACE/NAME [connection options]\n"
    "\n"
    "KIND is leases or configmaps.\n"
    "\n"
    "options (run):\n"
    "  --identity ID          this candidate's identity (default: host name)\n"
    "  --address ADDR         address advertised to followers\n"
    "  --lease-duration T     default 15s (T: 15, 15s, 1500ms, 1m)\n"
    "  --renew-deadline T     default 10s\n"
    "  --retry-period T       default 2s\n"
    "  --grace T              SIGTERM to SIGKILL delay: at most\n"
    "                         lease-duration - renew-deadline - 200ms, when\n"
    "                         another candidate may lead (default: 5s or\n"
    "                         that)\n"
    "  --no-release           do not release the lock on exit\n"
    "  --events               record Kubernetes Events on the lock\n"
    "  -v, --verbose          debug logging\n"
    "\n"
    "connection options (default: in-cluster when KUBERNETES_SERVICE_HOST\n"
    "is set, else $KUBECONFIG, else ~/.kube/config):\n"
    "  --kubeconfig FILE [--context NAME]\n"
    "  --server URL [--token-file F] [--ca-file F] [--client-cert F]\n"
    "               [--client-key F]\n";


/* An argument for a message: at most 64 bytes, one line. */
static const char *
kle_arg_text(const char *arg, char *buf, size_t size)
{
    size_t  i;

    for (i = 0; arg[i] != '\0' && i < 64 && i + 1 < size; i++) {
        buf[i] = ((unsigned char) arg[i] < 0x20 || arg[i] == 0x7f)
                 ? '?' : arg[i];
    }

    buf[i] = '\0';
    return buf;
}


int
kle_parse_duration(const char *s, int64_t *ms)
{
    int64_t      n, unit;
    const char  *p;

    /* strtoll would take spaces, a sign and overflow quietly */
    n = 0;
    for (p = s; *p >= '0' && *p <= '9'; p++) {
        if (n > KLE_DURATION_MAX_MS) {
            return -1;
        }
        n = n * 10 + (*p - '0');
    }

    if (p == s) {
        return -1;
    }

    if (*p == '\0' || strcmp(p, "s") == 0) {
        unit = 1000;
    } else if (strcmp(p, "ms") == 0) {
        unit = 1;
    } else if (strcmp(p, "m") == 0) {
        unit = 60000;
    } else if (strcmp(p, "h") == 0) {
        unit = 3600000;
    } else {
        return -1;
    }

    if (n > KLE_DURATION_MAX_MS / unit) {
        return -1;
    }

    *ms = n * unit;
    return 0;
}


int
kle_parse_args(int argc, char **argv, kle_opts_t *o, char *err,
    size_t errlen)
{
    static const struct option  longs[] = {
        { "lock", required_argument, NULL, 'l' },
        { "identity", required_argument, NULL, 'i' },
        { "address", required_argument, NULL, 'a' },
        { "lease-duration", required_argument, NULL, 'L' },
        { "renew-deadline", required_argument, NULL, 'R' },
        { "retry-period", required_argument, NULL, 'P' },
        { "grace", required_argument, NULL, 'g' },
        { "no-release", no_argument, NULL, 'n' },
        { "events", no_argument, NULL, 'e' },
        { "kubeconfig", required_argument, NULL, 'k' },
        { "context", required_argument, NULL, 'c' },
        { "server", required_argument, NULL, 's' },
        { "token-file", required_argument, NULL, 't' },
        { "ca-file", required_argument, NULL, 'C' },
        { "client-cert", required_argument, NULL, 'E' },
        { "client-key", required_argument, NULL, 'K' },
        { "verbose", no_argument, NULL, 'v' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    int64_t                     *t;
    int                          ch;
    char                         arg[72];

    memset(o, 0, sizeof(*o));
    o->election.lease_duration = 15000;
    o->election.renew_deadline = 10000;
    o->election.retry_period = 2000;
    o->grace = -1;
    o->release = 1;
    gethostname(o->election.identity, sizeof(o->election.identity) - 1);

    /* optind 0: getopt starts afresh (a second call, the fuzzer) */
    optind = 0;
    opterr = 0;

    while ((ch = getopt_long(argc, argv, "+:vh", longs, NULL)) != -1) {
        t = NULL;

        switch (ch) {
        case 'l': o->lock = optarg; break;
        case 'i':
            if (strlen(optarg) >= sizeof(o->election.identity)) {
                snprintf(err, errlen, "--identity is longer than %zu bytes",
                         sizeof(o->election.identity) - 1);
                return -1;
            }
            snprintf(o->election.identity, sizeof(o->election.identity), "%s",
                     optarg);
            break;
        case 'a':
            if (strlen(optarg) >= sizeof(o->election.address)) {
                snprintf(err, errlen, "--address is longer than %zu bytes",
                         sizeof(o->election.address) - 1);
                return -1;
            }
            snprintf(o->election.address, sizeof(o->election.address), "%s",
                     optarg);
            break;
        case 'L': t = &o->election.lease_duration; break;
        case 'R': t = &o->election.renew_deadline; break;
        case 'P': t = &o->election.retry_period; break;
        case 'g': t = &o->grace; break;
        case 'n': o->release = 0; break;
        case 'e': o->events = 1; break;
        case 'k': o->kubeconfig = optarg; break;
        case 'c': o->context = optarg; break;
        case 's': o->server = optarg; break;
        case 't': o->token_file = optarg; break;
        case 'C': o->ca_file = optarg; break;
        case 'E': o->cert_file = optarg; break;
        case 'K': o->key_file = optarg; break;
        case 'v': o->verbose = 1; break;
        case 'h': return 1;
        case ':':
            snprintf(err, errlen, "option \"%s\" needs a value",
                     kle_arg_text(argv[optind - 1], arg, sizeof(arg)));
            return -1;
        default:
            snprintf(err, errlen, "unknown option \"%s\"",
                     kle_arg_text(argv[optind - 1], arg, sizeof(arg)));
            return -1;
        }

        if (t != NULL && kle_parse_duration(optarg, t) != 0) {
            snprintf(err, errlen, "invalid duration \"%s\" (expected "
                     "digits and s, ms, m or h, at most %" PRId32 "s)",
                     kle_arg_text(optarg, arg, sizeof(arg)), INT32_MAX);
            return -1;
        }
    }

    if (o->lock == NULL) {
        snprintf(err, errlen, "--lock KIND/NAMESPACE/NAME is required");
        return -1;
    }

    o->cmd = argv + optind;
    return 0;
}


int
kle_check_run(kle_opts_t *o, char *err, size_t errlen)
{
    int64_t  window;
    char     why[256];

    if (o->cmd == NULL || o->cmd[0] == NULL) {
        snprintf(err, errlen, "run needs a command after --");
        return -1;
    }

    if (kle_election_config_validate(&o->election, why, sizeof(why)) != 0) {
        snprintf(err, errlen, "%s", why);
        return -1;
    }

    /*
     * Another candidate may lead once lease_duration has passed since it
     * last saw our record change; our claim ends renew_deadline after our
     * last renew began.  The command must be gone in between.
     */
    window = o->election.lease_duration - o->election.renew_deadline
             - KLE_GRACE_SLACK;

    if (window < 0) {
        window = 0;
    }

    if (o->grace < 0) {
        o->grace = window < KLE_GRACE_DEFAULT ? window : KLE_GRACE_DEFAULT;

    } else if (o->grace > window) {
        snprintf(err, errlen, "--grace (%" PRId64 "ms) is longer than "
                 "--lease-duration - --renew-deadline - %dms (%" PRId64 "ms):"
                 " the command could still run while another candidate "
                 "leads", o->grace, KLE_GRACE_SLACK, window);
        return -1;
    }

    return 0;
}
