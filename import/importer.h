/* pcapferry import: verified, exactly-once delivery of bundles' captures
 * into the directory Arkime's capture -m watches. Silent: it reports
 * through counts, pf_err and an event callback the command layer prints. */
#ifndef PF_IMPORTER_H
#define PF_IMPORTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/event.h"
#include "common/pf_err.h"
#include "keys/keyfile.h"

typedef struct pf_import_progress {
    size_t done, total;  /* bundles this run */
    uint64_t bytes_done; /* bundle bytes processed */
    uint64_t bytes_total;
} pf_import_progress;

typedef struct pf_import_opts {
    const pf_seckey *central;
    const char *keyring;
    const char *state_dir;
    const char *ingest_dir;
    const char *quarantine_dir; /* NULL: STATE/quarantine */
    const char *receipts_dir;   /* also write receipts to DIR/<sensor>/ */
    char *const *exec_argv;     /* template with {file} {sensor} {seq}; NULL: none */
    bool read_truncated;        /* Arkime runs with readTruncatedPackets=true */
    bool delete_source;         /* remove a source bundle once committed */
    unsigned settle_ms;         /* pause after making a sensor's ingest directory */
    unsigned batch;             /* bundles per group commit; 0 or 1: one at a time */
    unsigned jobs;              /* worker processes, sensors dealt out; 0 or 1: none */
    const char *arkime_socket;  /* capture's --command-socket: add-file instead of open/close */
    pf_event_fn event;
    void (*progress)(void *ctx, const pf_import_progress *p);
    void *ctx;
} pf_import_opts;

#define PF_IMPORT_JOBS_MAX 256

typedef struct pf_import_counts {
    size_t imported, duplicates, rejected, equivocations, incomplete;
    size_t files_delivered, files_converted, files_held, files_empty;
    size_t files_trimmed; /* delivered up to a cut-off last record */
    size_t files_split;   /* pcapng delivered as several classic pcaps */
    size_t exec_failures;
    size_t receipts_failed; /* receipt copies not written; their sources kept */
    uint64_t bytes_delivered;
    size_t gaps; /* missing seqs over all sensors, after the run */
} pf_import_counts;

typedef struct pf_importer pf_importer;

/* Takes the state lock (another importer: PF_EINCOMPLETE), opens the
 * database and finishes whatever a killed run left half done. */
pf_importer *pf_importer_open(const pf_import_opts *o, pf_err *e);
void pf_importer_close(pf_importer *imp);

/* One pass over bundle files and directories (searched recursively). A
 * rejected bundle is counted, not an error; a full disk stops the pass
 * with PF_EINCOMPLETE. */
int pf_importer_run(pf_importer *imp, char *const *sources, size_t n, pf_import_counts *c,
                    pf_err *e);

/* The same for the one file rel below the source directory root (a
 * --watch event): rel is walked from root without following any link. */
int pf_importer_run_below(pf_importer *imp, const char *root, const char *rel, pf_import_counts *c,
                          pf_err *e);

/* One line through the importer's event callback (for the --watch loop). */
void pf_importer_log(pf_importer *imp, enum pf_event_level level, const char *msg);

/* --watch: a first full pass, then bundles as they land (inotify
 * IN_CLOSE_WRITE and IN_MOVED_TO, as rsync renames its temp files), a full
 * rescan when the event queue overflows and every rescan_s seconds. Returns
 * once *stop is set (from a signal handler). */
int pf_importer_watch(pf_importer *imp, char *const *sources, size_t n, unsigned rescan_s,
                      volatile int *stop, pf_import_counts *c, pf_err *e);

/* Counts missing seqs per sensor into c->gaps. */
int pf_importer_count_gaps(pf_importer *imp, pf_import_counts *c, pf_err *e);

/* Per-sensor state for --status. */
typedef struct pf_sensor_status {
    char sensor[PF_NAME_MAX + 1];
    uint64_t last_seq, bundles, files, packets, bytes, drops;
    int64_t first_ts, last_ts; /* ns; 0 when unknown */
    uint64_t quarantined, held;
    uint64_t ngaps;
    char gaps[512]; /* "3, 5-9, ..." */
} pf_sensor_status;

int pf_import_status(const char *state_dir, pf_sensor_status **out, size_t *n, pf_err *e);

#endif
