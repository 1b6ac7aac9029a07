#include "common/text.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

bool pf_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > PF_NAME_MAX || name[0] == '.' || name[0] == '-')
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (!(isalnum(c) || c == '_' || c == '-' || c == '.'))
            return false;
    }
    return true;
}

void pf_hex(char *out, const uint8_t *in, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

bool pf_unhex(uint8_t *out, size_t n, const char *hex)
{
    if (strlen(hex) != 2 * n)
        return false;
    for (size_t i = 0; i < n; i++) {
        int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

static void split_ns(int64_t unix_ns, struct tm *tm, long *frac)
{
    int64_t sec = unix_ns / 1000000000;
    int64_t rem = unix_ns % 1000000000;
    if (rem < 0) {
        rem += 1000000000;
        sec -= 1;
    }
    time_t t = (time_t)sec;
    if (gmtime_r(&t, tm) == NULL)
        memset(tm, 0, sizeof *tm);
    *frac = (long)rem;
}

void pf_isotime_ns(char *out, size_t cap, int64_t unix_ns)
{
    struct tm tm;
    long frac;
    split_ns(unix_ns, &tm, &frac);
    snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
}

void pf_compact_time(char *out, size_t cap, int64_t unix_ns)
{
    struct tm tm;
    long frac;
    split_ns(unix_ns, &tm, &frac);
    snprintf(out, cap, "%04d%02d%02dT%02d%02d%02dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour, tm.tm_min, tm.tm_sec);
}

bool pf_parse_u64(const char *s, uint64_t *out)
{
    if (s == NULL || !isdigit((unsigned char)s[0]))
        return false;
    errno = 0;
    char *end = NULL;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return false;
    *out = (uint64_t)v;
    return true;
}

bool pf_parse_size(const char *s, uint64_t *out)
{
    char num[32];
    size_t n = s != NULL ? strlen(s) : 0;
    if (n == 0 || n >= sizeof num)
        return false;
    memcpy(num, s, n + 1);
    uint64_t mult = 1;
    switch (toupper((unsigned char)num[n - 1])) {
    case 'K':
        mult = 1ULL << 10;
        break;
    case 'M':
        mult = 1ULL << 20;
        break;
    case 'G':
        mult = 1ULL << 30;
        break;
    case 'T':
        mult = 1ULL << 40;
        break;
    default:
        break;
    }
    if (mult != 1)
        num[n - 1] = '\0';
    uint64_t v;
    if (!pf_parse_u64(num, &v) || v > UINT64_MAX / mult)
        return false;
    *out = v * mult;
    return true;
}

int64_t pf_ns_saturated(int64_t sec, int64_t sub_ns)
{
    int64_t ns;
    if (__builtin_mul_overflow(sec, (int64_t)1000000000, &ns) ||
        __builtin_add_overflow(ns, sub_ns, &ns))
        return sec < 0 ? INT64_MIN : INT64_MAX;
    return ns;
}

int64_t pf_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}
