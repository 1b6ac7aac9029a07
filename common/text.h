/* Small text helpers shared by every floor: hex, names, times, numbers. */
#ifndef PF_TEXT_H
#define PF_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Sensor and key names travel in file names on FAT32 sticks and in Arkime
 * node names: 1..64 of [A-Za-z0-9_.-], not starting with '.' or '-'. */
#define PF_NAME_MAX 64
bool pf_name_valid(const char *name);

/* Lower-case hex of n bytes into out (2n+1 bytes). */
void pf_hex(char *out, const uint8_t *in, size_t n);
/* Exactly 2n hex digits into n bytes. */
bool pf_unhex(uint8_t *out, size_t n, const char *hex);

/* Unix nanoseconds as "YYYY-mm-ddTHH:MM:SS.nnnnnnnnnZ" (31 bytes + NUL). */
#define PF_ISOTIME_BYTES 40
void pf_isotime_ns(char *out, size_t cap, int64_t unix_ns);
/* Compact "YYYYmmddTHHMMSSZ" for file names. */
void pf_compact_time(char *out, size_t cap, int64_t unix_ns);

/* Decimal unsigned 64-bit; rejects signs, spaces, overflow, trailing junk. */
bool pf_parse_u64(const char *s, uint64_t *out);
/* Like pf_parse_u64 with an optional K/M/G/T (binary) suffix. */
bool pf_parse_size(const char *s, uint64_t *out);

int64_t pf_now_ns(void);
/* sec * 10^9 + sub_ns, saturated at the int64 limits instead of
 * overflowing: capture files can carry stamps past the year 2262 (a
 * pcapng timestamp is 64 bits in its own units). */
int64_t pf_ns_saturated(int64_t sec, int64_t sub_ns);

#endif
