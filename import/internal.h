/* What the importer's stage files share (import/importer.c, sources.c,
 * quarantine.c, deliver.c, receipts.c, recover.c, status.c). Not a public
 * interface: the command layer uses import/importer.h only. */
#ifndef PF_IMPORT_INTERNAL_H
#define PF_IMPORT_INTERNAL_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "bundle/bundle.h"
#include "bundle/receipt.h"
#include "import/db.h"
#include "import/importer.h"

#define MAX_SCAN_DEPTH 8
/* A batch is flushed once it holds this many bundle bytes, whatever
 * --batch says: a few large bundles gain nothing from waiting together. */
#define IMP_BATCH_MAX_BYTES (256ull << 20)
#define STAGE_PREFIX        ".pcapferry-"

/* Where export writes bundles on a stick: DEST/pcapferry/<sensor>/. */
#define IMP_EXPORT_DIR "pcapferry"

/* Receipts of one run, one per sensor, and where they go back. */
#define MAX_RECEIPT_ROOTS 8
struct receipt_set {
    pf_receipt *r;
    int roots[MAX_RECEIPT_ROOTS]; /* export layouts (source dir indexes) */
    size_t nroots;
    bool write_failed; /* some copy of this sensor's receipt is missing */
};

/* --delete-source: sources are deleted once their receipt is written, so a
 * receipt that cannot be written (a full stick) leaves the bundle for the
 * next run to acknowledge again, instead of losing the acknowledgment. */
struct pending_delete {
    int dirfd; /* borrowed from the run's source list */
    char *name, *path;
    dev_t dev;
    ino_t ino;
    char sensor[PF_NAME_MAX + 1];
};

struct imp_batch; /* deliver.c: the bundles of the group commit under way */

struct pf_importer {
    struct imp_batch *batch;
    pf_import_opts o;
    char quarantine[PATH_MAX];
    int quarantine_fd;
    int lock_fd;
    pf_db db;
    struct receipt_set *rs;
    size_t nrs;
    struct pending_delete *pd;
    size_t npd;
    /* the unsealer's secret area, zstd context and buffers, reused from
     * one bundle to the next (made at the first, NULL if that failed) */
    struct pf_unseal_ctx *unseal;
    /* STATE/manifests/<sensor> of the last bundle saved: a fleet's bundles
     * come sensor by sensor, and creating and opening the directory path
     * again cost ten system calls a bundle */
    int prov_fd; /* -1: none */
    char prov_sensor[PF_NAME_MAX + 1];
};

/* A directory below a source, held open for the run. */
struct src_dir {
    int fd;
    char *path;  /* for messages */
    long parent; /* index; -1 a source root (parent not opened yet), -2 none */
    char name[NAME_MAX + 1];
};

struct candidate {
    size_t dir; /* in cand_list.dirs */
    char *name; /* in that directory */
    char *path; /* for messages and the state */
    dev_t dev;  /* the file the header was read from */
    ino_t ino;
    pf_header hdr;
    uint64_t size;
};

struct cand_list {
    struct candidate *v;
    size_t n, cap;
    struct src_dir *dirs;
    size_t ndirs, capdirs;
};

/* One source file, opened once: every later step reads fd, and names are
 * used only relative to dirfd (and only after imp_same_file). */
struct imp_source {
    int dirfd;
    const char *name;
    const char *path;
    int fd;
    struct stat st;
};

/* A source as given: a path (the operator's: resolved as given), and
 * optionally one file below it (walked without following links). */
struct imp_source_spec {
    const char *root;
    const char *rel;
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
int imp_collect(pf_importer *imp, const struct imp_source_spec *specs, size_t n,
                struct cand_list *l, pf_import_counts *c, pf_err *e);
void imp_cand_list_free(struct cand_list *l);
/* Opens cand again (PF_EINCOMPLETE when its name now holds another file). */
int imp_reopen(const struct cand_list *l, const struct candidate *cand, struct imp_source *src,
               pf_err *e);
/* Does src's name still hold the file src->fd reads? */
bool imp_same_file(const struct imp_source *src);
long imp_dir_parent(struct cand_list *l, size_t i);
int imp_export_root(struct cand_list *l, const struct candidate *cand);

/* quarantine.c */
/* Copies a rejected source into QUARANTINE/<sensor>/ (0640, ours: the
 * source's owner keeps no hold on the evidence) and removes it from the
 * source. hash (may be NULL) receives the BLAKE2b-256 of what was kept. */
int imp_quarantine_bundle(pf_importer *imp, const struct imp_source *src, const char *sensor,
                          uint64_t seq, const char *reason, bool equivocation, uint8_t hash[32],
                          pf_err *e);
int imp_hold_file(pf_importer *imp, int dirfd, const char *sensor, uint64_t seq, size_t nth,
                  const char *stage, const char *orig, const char *reason, char *held_as,
                  size_t cap, pf_err *e);

/* receipts.c: receipts are gathered during a run and written, with the
 * --delete-source deletions they allow, at its end. */
void imp_note_receipt(pf_importer *imp, struct cand_list *l, const struct candidate *cand,
                      const char *sensor, uint64_t seq, const uint8_t hash[32],
                      enum pf_receipt_status st, const char *reason);
int imp_delete_source(pf_importer *imp, const char *sensor, const struct imp_source *src,
                      pf_err *e);
int imp_acknowledge(pf_importer *imp, struct cand_list *l, pf_import_counts *c, pf_err *e);

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

/* Group commit (--batch N > 1, deliver.c). imp_batch_add takes over src's
 * descriptor, *dirfd and x (all reset) once the bundle is planned and its
 * files staged, unsynced; imp_batch_flush makes them durable, records,
 * delivers and acknowledges every bundle of the batch (see deliver.c for the
 * steps and why a crash between any two is safe). */
int imp_batch_add(pf_importer *imp, const struct candidate *cand, struct imp_source *src,
                  int *dirfd, pf_extracted *x, struct plan *plan, pf_import_counts *c, pf_err *e);
int imp_batch_flush(pf_importer *imp, struct cand_list *l, pf_import_counts *c, pf_err *e);
size_t imp_batch_len(const pf_importer *imp);
uint64_t imp_batch_bytes(const pf_importer *imp);
bool imp_batch_has(const pf_importer *imp, const char *sensor, uint64_t seq);
void imp_batch_abort(pf_importer *imp);
void imp_batch_free(pf_importer *imp);

/* recover.c: finishes what a killed run left half done. */
int imp_recover(pf_importer *imp, pf_err *e);
int imp_retry_execs(pf_importer *imp, pf_import_counts *c, pf_err *e);

#endif
