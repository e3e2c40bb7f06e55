/*
 * Claims are judged on a clock that counts time spent suspended: after a
 * suspend, CLOCK_MONOTONIC is behind CLOCK_BOOTTIME by the time slept, and
 * kle_now_ms() must follow CLOCK_BOOTTIME.
 *
 * A machine that never slept has the two clocks equal and cannot tell
 * them apart, so the test runs itself again in a time namespace whose
 * CLOCK_BOOTTIME is 100000 s ahead (as after a 100000 s suspend), when it
 * can (root, and unshare(1) with --boottime); else it says why it skips.
 */

#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "kle_clock.h"
#include "kle_test.h"


#define SLEPT_S  100000


static int64_t
ms(clockid_t id)
{
    struct timespec  ts;

    clock_gettime(id, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


int
main(int argc, char **argv)
{
    char     self[4096];
    ssize_t  n;
    int64_t  mono, boot, now, boot2;

    (void) argc;

    mono = ms(CLOCK_MONOTONIC);
    boot = ms(CLOCK_BOOTTIME);

    if (boot - mono < 1000 && getenv("KLE_TEST_TIMENS") == NULL) {
        n = readlink("/proc/self/exe", self, sizeof(self) - 1);

        /* unshare(1) may exist and still be refused (no CAP_SYS_ADMIN) */
        if (n > 0
            && system("unshare --time --boottime 100000 true "
                      ">/dev/null 2>&1") == 0)
        {
            self[n] = '\0';
            setenv("KLE_TEST_TIMENS", "1", 1);
            fflush(stdout);
            execlp("unshare", "unshare", "--time", "--boottime", "100000",
                   self, (char *) NULL);
        }

        /* no time namespace: the clocks agree, nothing to tell apart */
        printf("1..0 # SKIP CLOCK_BOOTTIME = CLOCK_MONOTONIC here and no "
               "time namespace (unshare --time --boottime 100000 failed)\n");
        return 0;
    }

    if (boot - mono < 1000) {
        printf("1..0 # SKIP the time namespace did not move "
               "CLOCK_BOOTTIME (%s)\n", argv[0]);
        return 0;
    }

    printf("# CLOCK_BOOTTIME is %lld s ahead of CLOCK_MONOTONIC\n",
           (long long) (boot - mono) / 1000);

    now = kle_now_ms();
    boot2 = ms(CLOCK_BOOTTIME);

    ok(now >= boot && now <= boot2,
       "kle_now_ms() reads CLOCK_BOOTTIME, which counts time suspended");
    ok(now - mono > 1000,
       "not CLOCK_MONOTONIC, which stopped while the machine slept");

    if (now < boot || now > boot2) {
        printf("#   kle_now_ms() %lld, CLOCK_BOOTTIME %lld..%lld, "
               "CLOCK_MONOTONIC %lld\n", (long long) now, (long long) boot,
               (long long) boot2, (long long) mono);
    }

    return done_testing();
}
