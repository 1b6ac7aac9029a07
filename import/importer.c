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
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bundle/bundle.h"
#include "bundle/receipt.h"
#include "common/fsutil.h"
#include "import/arkime.h"
#include "import/db.h"

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

/* Returns 0 when the bundle was dealt with (imported, duplicate, rejected
 * or left for later), -1 for an error that stops the run. */
static int import_one(pf_importer *imp, const struct candidate *cand, pf_import_counts *c,
                      pf_err *e)
{
    const pf_header *h = &cand->hdr;
    char hh[65], prefix[64];
    struct existing ex = {0};
    pf_extracted x;
    pf_err be;
    int dirfd = -1, fd = -1, rc = -1;
    bool new_dir = false;
    struct plan *plan = NULL;

    memset(&x, 0, sizeof x);
    imp_hex32(hh, h->hash);
    if (pf_db_query(&imp->db, e, existing_row, &ex,
                    "SELECT header_hash, bundle_hash FROM bundles WHERE sensor = ? AND seq = ?",
                    "su", h->sensor, h->seq) != 0)
        return -1;
    if (ex.found && strcmp(ex.header_hash, hh) == 0) {
        uint8_t bh[32], th[32];
        bool known = pf_unhex(bh, sizeof bh, ex.bundle_hash);
        /* the same header on a damaged body: say so, do not count it as
         * another copy of what arrived */
        if (known && pf_bundle_trailer_hash(cand->path, th) == 0 &&
            sodium_memcmp(th, bh, sizeof th) != 0) {
            c->rejected++;
            imp_note_receipt(imp, h->sensor, cand->path, h->seq, bh, PF_RCPT_COMMITTED, NULL);
            return imp_quarantine_bundle(imp, cand->path, h->sensor, 0,
                                         "a damaged copy of a bundle already imported intact "
                                         "(its trailer names another hash)",
                                         false, e);
        }
        c->duplicates++;
        if (known) /* acknowledge again */
            imp_note_receipt(imp, h->sensor, cand->path, h->seq, bh, PF_RCPT_COMMITTED, NULL);
        imp_event(imp, PF_EV_DEBUG, "bundle=%s sensor=%s seq=%" PRIu64 " status=already-imported",
                  cand->path, h->sensor, h->seq);
        return imp_delete_source(imp, h->sensor, cand->path, e);
    }
    if (ex.found) {
        /* Same seq, other bundle. Signed by the sensor: equivocation. */
        pf_trust t;
        pf_err_clear(&be);
        if (pf_keyring_lookup(imp->o.keyring, h->signer_id, &t, &be) == 0 &&
            pf_header_verify(h, t.key.sign_pk, &be) == 0) {
            char reason[512];
            snprintf(reason, sizeof reason,
                     "sensor %s signed two different bundles with seq %" PRIu64
                     " (imported header %.16s..., this one %.16s...): its key may be stolen or "
                     "its counter was reset",
                     h->sensor, h->seq, ex.header_hash, hh);
            c->equivocations++;
            c->rejected++;
            return imp_quarantine_bundle(imp, cand->path, h->sensor, h->seq, reason, true, e);
        }
        if (be.status == PF_EENV) {
            *e = be;
            return -1;
        }
        c->rejected++;
        return imp_quarantine_bundle(imp, cand->path, h->sensor, h->seq, be.msg, false, e);
    }

    /* Trust and the header signature before anything is created for this
     * sensor: an untrusted sender gets no directory in INGEST. */
    pf_trust tr;
    pf_err_clear(&be);
    if (pf_keyring_lookup(imp->o.keyring, h->signer_id, &tr, &be) != 0 ||
        pf_trust_allows_seq(&tr, h->seq, &be) != 0 || pf_header_verify(h, tr.key.sign_pk, &be)) {
        if (be.status == PF_EENV) {
            *e = be;
            return -1;
        }
        pf_err_prefix(&be, "%s: ", cand->path);
        c->rejected++;
        return imp_quarantine_bundle(imp, cand->path, h->sensor, h->seq, be.msg, false, e);
    }
    dirfd = imp_open_sensor_dir(imp, h->sensor, &new_dir, e);
    if (dirfd < 0)
        return -1;
    fd = open(cand->path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        pf_err_sys(e, errno, "%s: cannot open", cand->path);
        goto out;
    }
    snprintf(prefix, sizeof prefix, "%s%010" PRIu64 "-", STAGE_PREFIX, h->seq);
    pf_err_clear(&be);
    if (pf_bundle_extract(fd, cand->path, imp->o.central, imp->o.keyring, dirfd, prefix, &x, &be) !=
        0) {
        if (be.status == PF_EINCOMPLETE) {
            c->incomplete++;
            imp_event(imp, PF_EV_DEBUG, "bundle=%s status=incomplete (%s); left for a later run",
                      cand->path, be.msg);
            rc = 0;
        } else if (be.status == PF_EREJECT) {
            c->rejected++;
            rc = imp_quarantine_bundle(imp, cand->path, h->sensor, h->seq, be.msg, false, e);
        } else {
            if (pf_err_is_nospace(&be))
                be.status = PF_EINCOMPLETE;
            *e = be;
        }
        goto out;
    }
    plan = calloc(x.manifest->nfiles + 1, sizeof *plan);
    if (plan == NULL) {
        pf_err_set(e, PF_EENV, "out of memory");
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
    imp_note_receipt(imp, h->sensor, cand->path, h->seq, x.bundle_hash, PF_RCPT_COMMITTED, NULL);
    imp_event(imp, PF_EV_INFO,
              "bundle=%s sensor=%s seq=%" PRIu64 " status=imported files=%zu packets=%" PRIu64,
              cand->path, h->sensor, h->seq, x.manifest->nfiles,
              pf_manifest_total_packets(x.manifest));
    rc = imp_delete_source(imp, h->sensor, cand->path, e);
out:
    if (rc != 0 && x.staged != NULL && plan != NULL) {
        /* A failure before the intent was recorded leaves staged files that
         * no row points at: remove them now (recovery would too). */
        struct existing now = {0};
        pf_err ignore;
        pf_err_clear(&ignore);
        pf_db_query(&imp->db, &ignore, existing_row, &now,
                    "SELECT header_hash FROM bundles WHERE sensor = ? AND seq = ?", "su", h->sensor,
                    h->seq);
        if (!now.found)
            for (size_t i = 0; i < x.manifest->nfiles; i++) {
                char conv[PF_STAGE_NAME_MAX + 16];
                unlinkat(dirfd, x.staged[i], 0);
                snprintf(conv, sizeof conv, "%s%010" PRIu64 "-%zu.conv.part", STAGE_PREFIX, h->seq,
                         i);
                unlinkat(dirfd, conv, 0);
            }
    }
    free(plan);
    pf_extracted_clear(&x);
    if (fd >= 0)
        close(fd);
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
    if (imp_recover(imp, e) != 0)
        goto fail;
    return imp;
fail:
    pf_importer_close(imp);
    return NULL;
}

void pf_importer_close(pf_importer *imp)
{
    if (imp == NULL)
        return;
    pf_db_close(&imp->db);
    if (imp->lock_fd >= 0)
        close(imp->lock_fd);
    free(imp);
}

int pf_importer_run(pf_importer *imp, char *const *sources, size_t n, pf_import_counts *c,
                    pf_err *e)
{
    struct cand_list l = {0};
    pf_import_progress prog = {0};
    int rc = -1;

    if (imp_retry_execs(imp, c, e) != 0)
        goto out;
    if (imp_collect(imp, sources, n, &l, c, e) != 0)
        goto out;
    prog.total = l.n;
    for (size_t i = 0; i < l.n; i++)
        prog.bytes_total += l.v[i].size;
    for (size_t i = 0; i < l.n; i++) {
        if (import_one(imp, &l.v[i], c, e) != 0)
            goto out;
        prog.done++;
        prog.bytes_done += l.v[i].size;
        if (imp->o.progress != NULL)
            imp->o.progress(imp->o.ctx, &prog);
    }
    rc = pf_importer_count_gaps(imp, c, e);
out:
    /* also after an error: what was committed is acknowledged */
    pf_err ae;
    pf_err_clear(&ae);
    if (imp_acknowledge(imp, c, &ae) != 0 && rc == 0) {
        *e = ae;
        rc = -1;
    }
    imp_cand_list_free(&l);
    return rc;
}
