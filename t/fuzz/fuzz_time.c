/*
 * kle_time_parse and the two formats: whatever parses, formats and parses
 * again to the same instant (MicroTime), or to the same second (RFC 3339);
 * any int64 formats without UB, and in years 0000-9999 round-trips.
 */

#include "fuzz.h"
#include "kle_record.h"


static void
round_trip(int64_t us)
{
    char     micro[64], whole[64];
    int64_t  back;

    kle_time_format_micro(us, micro, sizeof(micro));
    kle_time_format_rfc3339(us, whole, sizeof(whole));

    /* outside what gmtime can show, the formats fall back to 1970 */
    if (strncmp(micro, "1970-01-01T00:00:00.000000Z", 27) == 0
        && (us < 0 || us >= FUZZ_US))
    {
        return;
    }

    if (micro[0] == '-' || strlen(micro) != 27) {
        return;                   /* years outside 0000-9999 */
    }

    FUZZ_ASSERT(kle_time_parse(micro, &back) == 0);
    FUZZ_ASSERT(back == us);
    FUZZ_ASSERT(kle_time_parse(whole, &back) == 0);
    FUZZ_ASSERT(back == fuzz_floor_sec(us));
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char     *s, small[4];
    int64_t   us, raw;

    s = fuzz_cstr(data, size);

    if (kle_time_parse(s, &us) == 0) {
        round_trip(us);
    }

    free(s);

    if (size >= sizeof(raw)) {
        memcpy(&raw, data, sizeof(raw));
        round_trip(raw);

        /* short buffers are cut, never overrun */
        kle_time_format_micro(raw, small, sizeof(small));
        FUZZ_ASSERT(strlen(small) < sizeof(small));
        kle_time_format_rfc3339(raw, small, 0);
    }

    return 0;
}
