/* Names inside and of bundles. */
#ifndef PF_NAMES_H
#define PF_NAMES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PF_ENTRY_NAME_MAX    200
#define PF_MANIFEST_NAME     "manifest.json"
#define PF_MANIFEST_SIG_NAME "manifest.sig"
#define PF_BUNDLE_SUFFIX     ".pcapferry"
#define PF_BUNDLE_NAME_MAX   160

/* A capture file's name inside a bundle: printable ASCII that cannot climb
 * out of a directory, hide, or carry control characters. */
bool pf_entry_name_valid(const char *name);
bool pf_entry_name_reserved(const char *name);

/* <sensor>-<seq, 10 digits>-<UTC YYYYmmddTHHMMSSZ>.pcapferry: FAT-safe and
 * sortable. */
void pf_bundle_filename(char *out, size_t cap, const char *sensor, uint64_t seq, int64_t start_ns);

/* Dot files and .part files are copies in flight (ours, rsync's). */
bool pf_name_in_flight(const char *name);

#endif
