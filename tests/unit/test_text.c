#include <stdint.h>

#include "check.h"
#include "common/text.h"

int main(void)
{
    CHECK(pf_name_valid("sensor-1"));
    CHECK(pf_name_valid("ship_A.deck2"));
    CHECK(!pf_name_valid(""));
    CHECK(!pf_name_valid(".hidden"));
    CHECK(!pf_name_valid("-opt"));
    CHECK(!pf_name_valid("a/b"));
    CHECK(!pf_name_valid("a:b")); /* FAT refuses ':' */
    CHECK(!pf_name_valid("a b"));
    CHECK(!pf_name_valid("caf\xc3\xa9"));
    char long_name[PF_NAME_MAX + 2];
    memset(long_name, 'a', sizeof long_name);
    long_name[PF_NAME_MAX] = '\0';
    CHECK(pf_name_valid(long_name));
    long_name[PF_NAME_MAX] = 'a';
    long_name[PF_NAME_MAX + 1] = '\0';
    CHECK(!pf_name_valid(long_name));

    uint8_t bin[4] = {0x00, 0x7f, 0x80, 0xff}, back[4];
    char hex[9];
    pf_hex(hex, bin, 4);
    CHECK(strcmp(hex, "007f80ff") == 0);
    CHECK(pf_unhex(back, 4, "007F80ff") && memcmp(back, bin, 4) == 0);
    CHECK(!pf_unhex(back, 4, "007f80f"));
    CHECK(!pf_unhex(back, 4, "007f80fg"));
    CHECK(!pf_unhex(back, 4, "007f80ff00"));

    uint64_t v;
    CHECK(pf_parse_u64("0", &v) && v == 0);
    CHECK(pf_parse_u64("18446744073709551615", &v) && v == UINT64_MAX);
    CHECK(!pf_parse_u64("18446744073709551616", &v));
    CHECK(!pf_parse_u64("-1", &v));
    CHECK(!pf_parse_u64(" 1", &v));
    CHECK(!pf_parse_u64("1x", &v));
    CHECK(!pf_parse_u64("", &v));
    CHECK(pf_parse_size("10M", &v) && v == 10ULL << 20);
    CHECK(pf_parse_size("2g", &v) && v == 2ULL << 30);
    CHECK(pf_parse_size("512", &v) && v == 512);
    CHECK(!pf_parse_size("17179869184T", &v));
    CHECK(!pf_parse_size("M", &v));

    char iso[PF_ISOTIME_BYTES], compact[32];
    pf_isotime_ns(iso, sizeof iso, 1700000000123456789LL);
    CHECK(strcmp(iso, "2023-11-14T22:13:20.123456789Z") == 0);
    pf_isotime_ns(iso, sizeof iso, 0);
    CHECK(strcmp(iso, "1970-01-01T00:00:00.000000000Z") == 0);
    pf_isotime_ns(iso, sizeof iso, -1);
    CHECK(strcmp(iso, "1969-12-31T23:59:59.999999999Z") == 0);
    pf_compact_time(compact, sizeof compact, 2208988800LL * 1000000000LL); /* after 2038 */
    CHECK(strcmp(compact, "20400101T000000Z") == 0);
    return check_summary("test_text");
}
