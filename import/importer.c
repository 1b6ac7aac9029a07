#include "import/internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bundle/bundle.h"
#include "bundle/receipt.h"
#include "bundle/stream.h"
#include "common/fsutil.h"
#include "import/arkime.h"
#include "import/db.h"
#include "import/identity.h"

void imp_event(pf_importer *imp, enum pf_event_level level, const char *fmt, ...)
{
    char line[2048];
    va_list ap;
    if (imp->o.event == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    imp->o.event(imp->o.ctx, level, line);
}

void pf_importer_log(pf_importer *imp, enum pf_event_level level, const char *msg)
{
    imp_event(imp, level, "%s", msg);
}

int64_t imp_now_s(void)
{
    return (int64_t)time(NULL);
}

struct existing {
    bool found;
    char header_hash[65];
    char bundle_hash[65];
};

static int existing_row(void *ctx, sqlite3_stmt *st, pf_err *e)
{
    struct existing *x = ctx;
    (void)e;
    x->found = true;
    snprintf(x->header_hash, sizeof x->header_hash, "%s", pf_db_text(st, 0));
    if (sqlite3_column_count(st) > 1)
        snprintf(x->bundle_hash, sizeof x->bundle_hash, "%s", pf_db_text(st, 1));
    return 0;
}

/* Rejects what src holds. Only a header whose signature verified
 * (authenticated) earns a signed "rejected" receipt and a place under its
 * sensor's quarantine folder: about unauthenticated bytes nothing is
 * signed, and what they claim is only quoted in the reason. */
static int reject(pf_importer *imp, struct cand_list *l, const struct candidate *cand,
                  const struct imp_source *src, const char *reason, bool equivocation,
                  bool authenticated, pf_import_counts *c, pf_err *e)
{
    const pf_header *h = &cand->hdr;
    uint8_t fh[32] = {0};
    char why[1024];
    c->rejected++;
    if (!authenticated) {
        snprintf(why, sizeof why, "%s (unauthenticated header claims sensor %s seq %" PRIu64 ")",
                 reason, h->sensor, h->seq);
        return imp_quarantine_bundle(imp, src, NULL, 0, why, false, NULL, e);
    }
    if (imp_quarantine_bundle(imp, src, h->sensor, h->seq, reason, equivocation, fh, e) != 0)
        return -1;
    if (!sodium_is_zero(fh, sizeof fh))
        imp_note_receipt(imp, l, cand, h->sensor, h->seq, fh, PF_RCPT_REJECTED, reason);
    return 0;
}

/* Returns 0 when the bundle was dealt with (imported, duplicate, rejected
 * or left for later), -1 for an error that stops the run. The file is
 * opened once here; everything below reads that descriptor. */
static int import_one(pf_importer *imp, struct cand_list *l, const struct candidate *cand,
                      pf_import_counts *c, pf_err *e)
{
    const pf_header *h = &cand->hdr;
    char hh[65], prefix[64];
    struct existing ex = {0};
    struct imp_source src = {.fd = -1};
    pf_extracted x;
    pf_header again;
    pf_err be;
    int dirfd = -1, rc = -1;
    bool new_dir = false;
    struct plan *plan = NULL;

    memset(&x, 0, sizeof x);
    pf_err_clear(&be);
    if (imp_reopen(l, cand, &src, &be) != 0 ||
        pf_bundle_read_header_fd(src.fd, cand->path, &again, NULL, &be) != 0 ||
        sodium_memcmp(again.hash, h->hash, sizeof again.hash) != 0) {
        /* gone, swapped or rewritten since the scan: the next run (or the
         * next event) takes whatever is there then */
        if (be.status == PF_EENV && be.sys_errno != ENOENT) {
            *e = be;
            goto out;
        }
        c->incomplete++;
        imp_event(imp, PF_EV_WARN,
                  "bundle=%s changed since it was scanned (%s); left for a later run", cand->path,
                  be.msg[0] ? be.msg : "another header");
        rc = 0;
        goto out;
    }
    imp_hex32(hh, h->hash);
    /* One key look-up and one signature check decide what this header is
     * worth; every step below uses them. A sensor is its key (issue 12):
     * a header its key signed under another sensor's name is refused before
     * (sensor, seq) means anything, and blamed on the key's own sensor (no
     * receipt: it names the other sensor's seq). */
    pf_trust tr;
    pf_header_proof proof; /* extraction does not verify these bytes again */
    pf_err auth;           /* why the header is not authenticated */
    pf_err_clear(&auth);
    memset(&proof, 0, sizeof proof);
    bool signed_ok = pf_keyring_lookup(imp->o.keyring, h->signer_id, &tr, &auth) == 0 &&
                     pf_header_verify_proof(h, tr.key.sign_pk, &proof, &auth) == 0;
    if (!signed_ok && auth.status == PF_EENV) {
        *e = auth;
        goto out;
    }
    pf_err_clear(&be);
    if (signed_ok && pf_trust_allows_sensor(&tr, h->sensor, &be) != 0) {
        pf_err_prefix(&be, "%s: ", cand->path);
        c->rejected++;
        rc = imp_quarantine_bundle(imp, &src, tr.key.name, 0, be.msg, false, NULL, e);
        goto out;
    }
    if (pf_db_query(&imp->db, e, existing_row, &ex,
                    "SELECT header_hash, bundle_hash FROM bundles WHERE sensor = ? AND seq = ?",
                    "su", h->sensor, h->seq) != 0)
        goto out;
    if (ex.found && strcmp(ex.header_hash, hh) == 0) {
        uint8_t bh[32], th[32];
        bool known = pf_unhex(bh, sizeof bh, ex.bundle_hash);
        /* The same header bytes as one imported and verified: authentic.
         * A damaged body: say so, do not count it as another copy. */
        if (known && pf_bundle_trailer_hash_fd(src.fd, th) == 0 &&
            sodium_memcmp(th, bh, sizeof th) != 0) {
            c->rejected++;
            imp_note_receipt(imp, l, cand, h->sensor, h->seq, bh, PF_RCPT_COMMITTED, NULL);
            rc = imp_quarantine_bundle(imp, &src, h->sensor, 0,
                                       "a damaged copy of a bundle already imported intact "
                                       "(its trailer names another hash)",
                                       false, NULL, e);
            goto out;
        }
        c->duplicates++;
        if (known) /* acknowledge again */
            imp_note_receipt(imp, l, cand, h->sensor, h->seq, bh, PF_RCPT_COMMITTED, NULL);
        imp_event(imp, PF_EV_DEBUG, "bundle=%s sensor=%s seq=%" PRIu64 " status=already-imported",
                  cand->path, h->sensor, h->seq);
        rc = imp_delete_source(imp, h->sensor, &src, e);
        goto out;
    }
    if (ex.found) {
        /* Same seq, other bundle. Signed by the sensor: equivocation. */
        if (signed_ok) {
            char reason[512];
            snprintf(reason, sizeof reason,
                     "sensor %s signed two different bundles with seq %" PRIu64
                     " (imported header %.16s..., this one %.16s...): its key may be stolen or "
                     "its counter was reset",
                     h->sensor, h->seq, ex.header_hash, hh);
            c->equivocations++;
            rc = reject(imp, l, cand, &src, reason, true, true, c, e);
            goto out;
        }
        rc = reject(imp, l, cand, &src, auth.msg, false, false, c, e);
        goto out;
    }

    /* Trust, signature and revocation before anything is created for this
     * sensor: an untrusted sender gets no directory in INGEST. */
    uint8_t vouched[PF_HASH_BYTES];
    bool has_vouched = false;
    pf_err_clear(&be);
    if (!signed_ok)
        be = auth;
    if (!signed_ok ||
        pf_identity_check_revocation(&imp->db, &tr, src.fd, h, vouched, &has_vouched, &be) != 0) {
        if (be.status == PF_EENV) {
            *e = be;
            goto out;
        }
        if (be.status == PF_EINCOMPLETE) { /* a revoked key's bundle not vouched for yet */
            c->incomplete++;
            imp_event(imp, PF_EV_WARN, "bundle=%s status=waiting (%s)", cand->path, be.msg);
            rc = 0;
            goto out;
        }
        pf_err_prefix(&be, "%s: ", cand->path);
        /* a revoked key still authenticates its header: the rejection
         * belongs to that sensor */
        rc = reject(imp, l, cand, &src, be.msg, false, signed_ok, c, e);
        goto out;
    }
    dirfd = imp_open_sensor_dir(imp, h->sensor, &new_dir, e);
    if (dirfd < 0)
        goto out;
    pf_pausepoint("import-judged");
    snprintf(prefix, sizeof prefix, "%s%010" PRIu64 "-", STAGE_PREFIX, h->seq);
    pf_err_clear(&be);
    bool batched = imp->o.batch > 1;
    if (imp->unseal == NULL)
        imp->unseal = pf_unseal_ctx_new(); /* NULL: each bundle makes its own */
    const pf_extract_opts xo = {
        .vouched = has_vouched ? vouched : NULL,
        .proof = &proof,
        .reuse = imp->unseal,
        .flags = PF_EXTRACT_HASH_FROM_TRAILER | (batched ? PF_EXTRACT_NO_FSYNC : 0u),
    };
    if (pf_bundle_extract_opts(src.fd, cand->path, imp->o.central, imp->o.keyring, dirfd, prefix,
                               &xo, &x, &be) != 0) {
        if (be.status == PF_EINCOMPLETE) {
            c->incomplete++;
            imp_event(imp, PF_EV_DEBUG, "bundle=%s status=incomplete (%s); left for a later run",
                      cand->path, be.msg);
            rc = 0;
        } else if (be.status == PF_EREJECT) {
            rc = reject(imp, l, cand, &src, be.msg, false, true, c, e);
        } else {
            if (pf_err_is_nospace(&be))
                be.status = PF_EINCOMPLETE;
            *e = be;
        }
        goto out;
    }
    /* What was extracted must be the header that was judged above (the
     * file's owner can rewrite it in place between two reads). */
    if (sodium_memcmp(x.hdr.hash, h->hash, sizeof h->hash) != 0) {
        for (size_t i = 0; i < x.manifest->nfiles; i++)
            unlinkat(dirfd, x.staged[i], 0);
        c->incomplete++;
        imp_event(imp, PF_EV_WARN,
                  "bundle=%s was rewritten while it was read; nothing delivered, left for a "
                  "later run",
                  cand->path);
        rc = 0;
        goto out;
    }
    plan = calloc(x.manifest->nfiles + 1, sizeof *plan);
    if (plan == NULL) {
        pf_err_set(e, PF_EENV, "out of memory");
        goto out;
    }
    if (batched) {
        /* imported, acknowledged and its source deleted at the flush */
        if (imp_batch_add(imp, cand, &src, &dirfd, &x, plan, c, e) != 0) {
            if (pf_err_is_nospace(e))
                e->status = PF_EINCOMPLETE;
            goto out;
        }
        rc = 0;
        goto out;
    }
    if (imp_deliver_bundle(imp, cand, dirfd, &x, plan, c, e) != 0) {
        if (pf_err_is_nospace(e))
            e->status = PF_EINCOMPLETE;
        /* Staged files of a bundle never recorded are removed below;
         * recorded rows are finished by the next run's recovery. */
        goto out;
    }
    c->imported++;
    imp_note_receipt(imp, l, cand, h->sensor, h->seq, x.bundle_hash, PF_RCPT_COMMITTED, NULL);
    imp_event(imp, PF_EV_INFO,
              "bundle=%s sensor=%s seq=%" PRIu64 " status=imported files=%zu packets=%" PRIu64,
              cand->path, h->sensor, h->seq, x.manifest->nfiles,
              pf_manifest_total_packets(x.manifest));
    rc = imp_delete_source(imp, h->sensor, &src, e);
out:
    if (rc != 0 && x.staged != NULL && plan != NULL && dirfd >= 0) {
        /* A failure before the intent was recorded leaves staged files that
         * no row points at: remove them now (recovery would too). */
        struct existing now = {0};
        pf_err ignore;
        pf_err_clear(&ignore);
        pf_db_query(&imp->db, &ignore, existing_row, &now,
                    "SELECT header_hash FROM bundles WHERE sensor = ? AND seq = ?", "su", h->sensor,
                    h->seq);
        if (!now.found) /* (deliver_bundle removes the outputs it made) */
            for (size_t i = 0; i < x.manifest->nfiles; i++)
                unlinkat(dirfd, x.staged[i], 0);
    }
    free(plan);
    pf_extracted_clear(&x);
    if (src.fd >= 0)
        close(src.fd);
    if (dirfd >= 0)
        close(dirfd);
    return rc;
}

/* ---------- open / run / close ---------- */

pf_importer *pf_importer_open(const pf_import_opts *o, pf_err *e)
{
    char path[PATH_MAX];
    pf_importer *imp = calloc(1, sizeof *imp);
    if (imp == NULL) {
        pf_err_set(e, PF_EENV, "out of memory");
        return NULL;
    }
    imp->o = *o;
    imp->lock_fd = -1;
    imp->prov_fd = -1;
    imp->quarantine_fd = -1;
    if (o->quarantine_dir != NULL)
        snprintf(imp->quarantine, sizeof imp->quarantine, "%s", o->quarantine_dir);
    else
        snprintf(imp->quarantine, sizeof imp->quarantine, "%s/quarantine", o->state_dir);
    struct stat st;
    if (stat(o->ingest_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        pf_err_set(e, PF_EUSAGE,
                   "%s: ingest directory does not exist (Arkime watches it; create "
                   "it first)",
                   o->ingest_dir);
        goto fail;
    }
    if (pf_mkdir_p(o->state_dir, 0750, e) != 0)
        goto fail;
    if (pf_path_join(path, sizeof path, o->state_dir, "lock", e) != 0)
        goto fail;
    imp->lock_fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (imp->lock_fd < 0) {
        pf_err_sys(e, errno, "%s: cannot open lock", path);
        goto fail;
    }
    if (flock(imp->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        pf_err_set(e, PF_EINCOMPLETE,
                   "%s: another pcapferry import is running on this state "
                   "directory; try again later",
                   o->state_dir);
        goto fail;
    }
    if (pf_db_open(&imp->db, o->state_dir, e) != 0)
        goto fail;
    /* Everything the quarantine holds is reached through this descriptor
     * and below it without following links. */
    if (pf_mkdir_p(imp->quarantine, 0750, e) != 0)
        goto fail;
    imp->quarantine_fd = open(imp->quarantine, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (imp->quarantine_fd < 0) {
        pf_err_sys(e, errno, "%s: cannot open quarantine directory", imp->quarantine);
        goto fail;
    }
    if (imp_recover(imp, e) != 0)
        goto fail;
    /* Three lookups per bundle would otherwise read every key file each */
    pf_keyring_cache_enable(true);
    return imp;
fail:
    pf_importer_close(imp);
    return NULL;
}

void pf_importer_close(pf_importer *imp)
{
    if (imp == NULL)
        return;
    imp_batch_free(imp);
    pf_unseal_ctx_free(imp->unseal);
    if (imp->prov_fd >= 0)
        close(imp->prov_fd);
    pf_keyring_cache_enable(false);
    pf_db_close(&imp->db);
    if (imp->quarantine_fd >= 0)
        close(imp->quarantine_fd);
    if (imp->lock_fd >= 0)
        close(imp->lock_fd);
    free(imp);
}

/* Imports the candidates of l (only those with mine[i] set, when mine is
 * given), in order, in group commits of --batch bundles. */
static int import_list(pf_importer *imp, struct cand_list *l, const unsigned char *mine,
                       pf_import_progress *prog, pf_import_counts *c, pf_err *e)
{
    for (size_t i = 0; i < l->n; i++) {
        if (mine != NULL && !mine[i])
            continue;
        /* A batch holds at most one bundle of a (sensor, seq): a second
         * copy is judged against the first one's committed row. Large
         * bundles flush early, so little waits staged. */
        if (imp_batch_has(imp, l->v[i].hdr.sensor, l->v[i].hdr.seq) &&
            imp_batch_flush(imp, l, c, e) != 0)
            return -1;
        if (import_one(imp, l, &l->v[i], c, e) != 0) {
            /* What the batch already holds was verified and staged: it is
             * committed before the run stops (a full disk still lets the
             * bundles that fitted through, as one at a time does). */
            pf_err fe;
            pf_err_clear(&fe);
            imp_batch_flush(imp, l, c, &fe);
            return -1;
        }
        if ((imp_batch_len(imp) >= imp->o.batch || imp_batch_bytes(imp) >= IMP_BATCH_MAX_BYTES) &&
            imp_batch_flush(imp, l, c, e) != 0)
            return -1;
        prog->done++;
        prog->bytes_done += l->v[i].size;
        if (imp->o.progress != NULL)
            imp->o.progress(imp->o.ctx, prog);
    }
    return imp_batch_flush(imp, l, c, e);
}

static void add_counts(pf_import_counts *to, const pf_import_counts *c)
{
    to->imported += c->imported;
    to->duplicates += c->duplicates;
    to->rejected += c->rejected;
    to->equivocations += c->equivocations;
    to->incomplete += c->incomplete;
    to->files_delivered += c->files_delivered;
    to->files_converted += c->files_converted;
    to->files_held += c->files_held;
    to->files_empty += c->files_empty;
    to->files_trimmed += c->files_trimmed;
    to->files_split += c->files_split;
    to->exec_failures += c->exec_failures;
    to->receipts_failed += c->receipts_failed;
    to->bytes_delivered += c->bytes_delivered;
}

struct worker_result {
    int rc;
    pf_import_counts c;
    pf_err e;
};

/* One worker of --jobs: a process of its own (libsodium, zstd, libarchive
 * and SQLite connections are per process, nothing is shared but the
 * database file, whose writers SQLite serializes), importing the sensors
 * it was given. Never returns. */
static void worker_main(pf_importer *imp, struct cand_list *l, const unsigned char *mine, int fd,
                        pid_t parent)
{
    struct worker_result res = {0};
    pf_import_progress prog = {0};
    /* dies with the importer: a kill -9 of it stops every worker at once,
     * as a power cut would, and leaves the state lock free */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
        _exit(1);
    pf_err_clear(&res.e);
    /* SQLite forbids carrying a connection across fork: the importer
     * closed its own before forking, each worker opens one. */
    if (pf_db_open(&imp->db, imp->o.state_dir, &res.e) != 0) {
        res.rc = -1;
    } else {
        imp->o.progress = NULL;
        res.rc = import_list(imp, l, mine, &prog, &res.c, &res.e);
        imp_batch_abort(imp);
        pf_err ae;
        pf_err_clear(&ae);
        if (imp_acknowledge(imp, l, &res.c, &ae) != 0 && res.rc == 0) {
            res.e = ae;
            res.rc = -1;
        }
    }
    const uint8_t *p = (const uint8_t *)&res;
    size_t off = 0;
    while (off < sizeof res) {
        ssize_t w = write(fd, p + off, sizeof res - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            _exit(1);
        off += (size_t)w;
    }
    _exit(0);
}

/* --jobs: sensors are dealt out to the workers in turn, so each sensor's
 * bundles are imported by one process in seq order and reach Arkime in
 * order; different sensors' bundles proceed side by side. Returns 1 when
 * there is nothing to share (one worker would do), else 0 or -1. */
static int run_workers(pf_importer *imp, struct cand_list *l, pf_import_counts *c, pf_err *e)
{
    unsigned jobs = imp->o.jobs;
    size_t nsensors = 0;
    unsigned char *owner = NULL, *mine = NULL;
    pid_t pids[PF_IMPORT_JOBS_MAX];
    int fds[PF_IMPORT_JOBS_MAX];
    unsigned started = 0;
    int rc = -1, killed_by = 0;

    for (size_t i = 0; i < l->n; i++)
        if (i == 0 || strcmp(l->v[i].hdr.sensor, l->v[i - 1].hdr.sensor) != 0)
            nsensors++;
    if (jobs > PF_IMPORT_JOBS_MAX)
        jobs = PF_IMPORT_JOBS_MAX;
    if (nsensors < jobs)
        jobs = (unsigned)nsensors;
    if (jobs <= 1)
        return 1;
    owner = malloc(l->n + 1);
    mine = malloc(l->n + 1);
    if (owner == NULL || mine == NULL) {
        pf_err_set(e, PF_EENV, "out of memory");
        goto out;
    }
    /* candidates come sorted by (sensor, seq) */
    for (size_t i = 0, s = 0; i < l->n; i++) {
        if (i > 0 && strcmp(l->v[i].hdr.sensor, l->v[i - 1].hdr.sensor) != 0)
            s++;
        owner[i] = (unsigned char)(s % jobs);
    }
    pid_t self = getpid();
    /* no SQLite connection, lock or WAL-index mapping crosses the fork */
    pf_db_close(&imp->db);
    for (unsigned k = 0; k < jobs; k++) {
        int p[2];
        if (pipe2(p, O_CLOEXEC) != 0) {
            pf_err_sys(e, errno, "cannot start an import worker");
            goto reap;
        }
        for (size_t i = 0; i < l->n; i++)
            mine[i] = owner[i] == k;
        pid_t pid = fork();
        if (pid < 0) {
            pf_err_sys(e, errno, "cannot start an import worker");
            close(p[0]);
            close(p[1]);
            goto reap;
        }
        if (pid == 0) {
            close(p[0]);
            for (unsigned j = 0; j < started; j++)
                close(fds[j]);
            worker_main(imp, l, mine, p[1], self);
        }
        close(p[1]);
        pids[started] = pid;
        fds[started] = p[0];
        started++;
    }
    rc = 0;
reap:
    for (unsigned k = 0; k < started; k++) {
        struct worker_result res;
        uint8_t *p = (uint8_t *)&res;
        size_t off = 0;
        while (off < sizeof res) {
            ssize_t r = read(fds[k], p + off, sizeof res - off);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                break;
            off += (size_t)r;
        }
        close(fds[k]);
        int ws = 0;
        while (waitpid(pids[k], &ws, 0) < 0 && errno == EINTR)
            ;
        if (off == sizeof res && WIFEXITED(ws) && WEXITSTATUS(ws) == 0) {
            add_counts(c, &res.c);
            if (res.rc != 0 && rc == 0) {
                *e = res.e;
                rc = -1;
            }
            continue;
        }
        if (WIFSIGNALED(ws) && killed_by == 0) {
            killed_by = WTERMSIG(ws);
            /* the others stop too: what was committed stays, the rest is
             * the next run's, as after any crash */
            for (unsigned j = k + 1; j < started; j++)
                kill(pids[j], SIGKILL);
        }
        if (rc == 0) {
            pf_err_set(e, PF_EENV, "an import worker %s %d",
                       WIFSIGNALED(ws) ? "was killed by signal" : "exited with status",
                       WIFSIGNALED(ws) ? WTERMSIG(ws) : WEXITSTATUS(ws));
            rc = -1;
        }
    }
    /* A worker killed (kill -9, a failpoint) is the import killed: the
     * importer ends the same way, so whoever started it sees one crash. */
    if (killed_by == SIGKILL)
        kill(getpid(), SIGKILL);
    pf_err oe;
    pf_err_clear(&oe);
    if (pf_db_open(&imp->db, imp->o.state_dir, &oe) != 0 && rc == 0) {
        *e = oe;
        rc = -1;
    }
out:
    free(owner);
    free(mine);
    return rc;
}

static int run_specs(pf_importer *imp, const struct imp_source_spec *specs, size_t n,
                     pf_import_counts *c, pf_err *e)
{
    struct cand_list l = {0};
    pf_import_progress prog = {0};
    pf_err ae;
    int rc = -1;

    pf_keyring_cache_reset(); /* each pass sees the keyring as it is now */
    if (imp_retry_execs(imp, c, e) != 0)
        goto out;
    if (imp_collect(imp, specs, n, &l, c, e) != 0)
        goto out;
    pf_pausepoint("import-scanned");
    prog.total = l.n;
    for (size_t i = 0; i < l.n; i++)
        prog.bytes_total += l.v[i].size;
    int w = imp->o.jobs > 1 ? run_workers(imp, &l, c, e) : 1;
    if (w < 0)
        goto out;
    if (w == 1 && import_list(imp, &l, NULL, &prog, c, e) != 0)
        goto out;
    rc = pf_importer_count_gaps(imp, c, e);
out:
    imp_batch_abort(imp); /* after an error: nothing of it was recorded */
    /* also after an error: what was committed is acknowledged */
    pf_err_clear(&ae);
    if (imp_acknowledge(imp, &l, c, &ae) != 0 && rc == 0) {
        *e = ae;
        rc = -1;
    }
    imp_cand_list_free(&l);
    return rc;
}

int pf_importer_run(pf_importer *imp, char *const *sources, size_t n, pf_import_counts *c,
                    pf_err *e)
{
    struct imp_source_spec *specs = calloc(n + 1, sizeof *specs);
    if (specs == NULL)
        return pf_err_set(e, PF_EENV, "out of memory");
    for (size_t i = 0; i < n; i++)
        specs[i].root = sources[i];
    int rc = run_specs(imp, specs, n, c, e);
    free(specs);
    return rc;
}

int pf_importer_run_below(pf_importer *imp, const char *root, const char *rel, pf_import_counts *c,
                          pf_err *e)
{
    struct imp_source_spec spec = {root, rel};
    return run_specs(imp, &spec, 1, c, e);
}
