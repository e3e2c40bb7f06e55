/*
 * LD_PRELOAD shim for t/026_claim_log_order.t: a write() that carries a
 * claim line of the module ("claim term=") first sleeps
 * KLE_CLAIM_LOG_DELAY_MS, as a slow disk would, or a kill -9 between the
 * log line and the shared-state write would forever.  Every other write
 * passes at once.  The delay is read when the library loads (nginx's
 * workers lose the environment, not what their master loaded).
 */

#define _GNU_SOURCE

#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


static ssize_t  (*real_write)(int fd, const void *buf, size_t n);
static long       delay_ms;


__attribute__((constructor))
static void
claim_log_delay_init(void)
{
    const char  *v;

    real_write = (ssize_t (*)(int, const void *, size_t))
                 dlsym(RTLD_NEXT, "write");

    v = getenv("KLE_CLAIM_LOG_DELAY_MS");
    delay_ms = v ? atol(v) : 0;
}


ssize_t
write(int fd, const void *buf, size_t n)
{
    if (delay_ms > 0 && memmem(buf, n, "claim term=", 11) != NULL) {
        usleep((useconds_t) delay_ms * 1000);
    }

    return real_write(fd, buf, n);
}
