/* What the importer's stage files share (import/importer.c, sources.c,
 * quarantine.c, deliver.c, receipts.c, recover.c, status.c). Not a public
 * interface: the command layer uses import/importer.h only. */
#ifndef PF_IMPORT_INTERNAL_H
#define PF_IMPORT_INTERNAL_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bundle/bundle.h"
#include "bundle/receipt.h"
#include "import/db.h"
#include "import/importer.h"

#define MAX_SCAN_DEPTH 8
#define STAGE_PREFIX   ".pcapferry-"

/* Receipts of one run, one per sensor, and where they go back. */
#define MAX_RECEIPT_ROOTS 8
struct receipt_set {
    pf_receipt *r;
    char *roots[MAX_RECEIPT_ROOTS]; /* export layouts the bundles came from */
    size_t nroots;
    bool write_failed; /* some copy of this sensor's receipt is missing */
};

/* --delete-source: sources are deleted once their receipt is written, so a
 * receipt that cannot be written (a full stick) leaves the bundle for the
 * next run to acknowledge again, instead of losing the acknowledgment. */
struct pending_delete {
    char *path;
    char sensor[PF_NAME_MAX + 1];
};

struct pf_importer {
    pf_import_opts o;
    char quarantine[PATH_MAX];
    int lock_fd;
    pf_db db;
    struct receipt_set *rs;
    size_t nrs;
    struct pending_delete *pd;
    size_t npd;
};

struct candidate {
    char *path;
    pf_header hdr;
    uint64_t size;
};

struct cand_list {
    struct candidate *v;
    size_t n, cap;
};

void imp_event(pf_importer *imp, enum pf_event_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static inline void imp_hex32(char out[65], const uint8_t in[32])
{
    pf_hex(out, in, 32);
}

int64_t imp_now_s(void);

/* sources.c: every bundle file under the sources, headers read, in
 * delivery order (sensor, seq). Unreadable headers are counted and
 * quarantined there. */
int imp_collect(pf_importer *imp, char *const *sources, size_t n, struct cand_list *l,
                pf_import_counts *c, pf_err *e);
void imp_cand_list_free(struct cand_list *l);

/* quarantine.c */
int imp_quarantine_bundle(pf_importer *imp, const char *path, const char *sensor, uint64_t seq,
                          const char *reason, bool equivocation, pf_err *e);
int imp_hold_file(pf_importer *imp, int dirfd, const char *sensor, uint64_t seq, size_t nth,
                  const char *stage, const char *orig, const char *reason, char *held_as,
                  size_t cap, pf_err *e);

/* receipts.c: receipts are gathered during a run and written, with the
 * --delete-source deletions they allow, at its end. */
void imp_note_receipt(pf_importer *imp, const char *sensor, const char *path, uint64_t seq,
                      const uint8_t hash[32], enum pf_receipt_status st, const char *reason);
int imp_delete_source(pf_importer *imp, const char *sensor, const char *path, pf_err *e);
int imp_acknowledge(pf_importer *imp, pf_import_counts *c, pf_err *e);

/* deliver.c */
int imp_open_sensor_dir(pf_importer *imp, const char *sensor, bool *created, pf_err *e);
int imp_finish_delivery(pf_importer *imp, int dirfd, const char *sensor, uint64_t seq, int64_t nth,
                        const char *stage, const char *final, bool *announced_again, pf_err *e);
int imp_exec_and_record(pf_importer *imp, const char *sensor, uint64_t seq, int64_t nth,
                        const char *final, pf_import_counts *c, pf_err *e);

struct plan {
    int gate;
    char stage[PF_STAGE_NAME_MAX + 16];
    char final[NAME_MAX + 1];
    char reason[512];
    char held_as[PATH_MAX];
};

/* Everything after a successful extraction: gate, convert, hold, record,
 * deliver. On failure the caller removes what is still staged. */
int imp_deliver_bundle(pf_importer *imp, const struct candidate *cand, int dirfd, pf_extracted *x,
                       struct plan *plan, pf_import_counts *c, pf_err *e);

/* recover.c: finishes what a killed run left half done. */
int imp_recover(pf_importer *imp, pf_err *e);
int imp_retry_execs(pf_importer *imp, pf_import_counts *c, pf_err *e);

#endif
