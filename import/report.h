/* The coverage report: what the import state knows about every sensor's
 * time line (delivered windows, drops, gaps, rejected and held bundles,
 * clock trouble, silent windows), as one JSON document, and that document
 * rendered as a self-contained HTML page or an SVG picture.
 *
 * Read-only: the state database is opened read-only and nothing under the
 * state directory is written. The JSON schema is docs/REPORT.md's. */
#ifndef PF_REPORT_H
#define PF_REPORT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/pf_err.h"
#include "common/text.h"

#define PF_REPORT_VERSION 1
/* Up to this many bundles in the range are drawn file by file, from their
 * signed manifests; beyond it the time line is aggregated per bucket in
 * SQL, so a year of one-minute bundles stays a few hundred kilobytes. */
#define PF_REPORT_DETAIL_MAX 3000
#define PF_REPORT_BUCKETS    600

typedef struct pf_report_opts {
    const char *state_dir;
    const char *ingest_dir;     /* NULL: delivered paths relative to INGEST */
    const char *quarantine_dir; /* NULL: STATE/quarantine */
    bool have_from, have_to;
    int64_t from_ns, to_ns;
    const char *const *sensors; /* NULL or nsensors names: only these */
    size_t nsensors;
    size_t detail_max; /* 0: PF_REPORT_DETAIL_MAX */
    unsigned buckets;  /* 0: PF_REPORT_BUCKETS */
    int64_t now_ns;    /* "generated" */
} pf_report_opts;

int pf_report_build(const pf_report_opts *o, json_t **out, pf_err *e);

/* The document as a standalone SVG time line, or as one HTML file with
 * that SVG inline, tables, and a few lines of script (no external
 * resources). *out is malloc'd. */
int pf_report_svg(const json_t *doc, char **out, size_t *len, pf_err *e);
int pf_report_html(const json_t *doc, char **out, size_t *len, pf_err *e);

/* "2023-11-14T22:14:05Z", "2023-11-14 22:14:05", "2023-11-14T22:14",
 * "2023-11-14" (all UTC, optional fraction of a second) or "@UNIX". */
bool pf_report_parse_time(const char *s, int64_t *ns);

/* Where a delivered file came from, by the import state: its name in
 * INGEST/<sensor>/, or else its BLAKE2b-256 (hex; NULL: name only). Kept
 * manifest paths are filled in whether or not those files exist. */
typedef struct pf_located {
    char sensor[PF_NAME_MAX + 1];
    int64_t seq, n, imported_at;
    bool converted;
    char state[16];
    char bundle_hash[65];
    char header_hash[65];
    char source[4096];
    char manifest[4096], sig[4096], header[4096];
} pf_located;

/* 0 found, 1 not known to this state, -1 error. */
int pf_report_locate(const char *state_dir, const char *file, const char *hash_hex, pf_located *out,
                     pf_err *e);

#endif
