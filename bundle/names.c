#include "bundle/names.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common/text.h"

bool pf_entry_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > PF_ENTRY_NAME_MAX || name[0] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        /* Printable ASCII only: libarchive converts other bytes through
         * the locale's charset, which differs between sensor and centre. */
        if (c < 0x20 || c > 0x7e || c == '/' || c == '\\')
            return false;
    }
    return true;
}

bool pf_entry_name_reserved(const char *name)
{
    return strcmp(name, PF_MANIFEST_NAME) == 0 || strcmp(name, PF_MANIFEST_SIG_NAME) == 0;
}

void pf_bundle_filename(char *out, size_t cap, const char *sensor, uint64_t seq, int64_t start_ns)
{
    char when[32];
    pf_compact_time(when, sizeof when, start_ns);
    snprintf(out, cap, "%s-%010" PRIu64 "-%s%s", sensor, seq, when, PF_BUNDLE_SUFFIX);
}

bool pf_name_in_flight(const char *name)
{
    size_t n = strlen(name);
    return name[0] == '.' || (n >= 5 && strcmp(name + n - 5, ".part") == 0);
}
