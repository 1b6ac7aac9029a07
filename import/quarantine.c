#include "import/internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fsutil.h"

/* ---------- quarantine ---------- */

/* Sets a rejected bundle aside with a reason file. A read-only source
 * (a write-protected stick) is copied; otherwise the bundle is moved. */
int imp_quarantine_bundle(pf_importer *imp, const char *path, const char *sensor, uint64_t seq,
                          const char *reason, bool equivocation, pf_err *e)
{
    uint8_t fh[32];
    char fhex[65], dir[PATH_MAX], name[NAME_MAX + 1], rname[NAME_MAX + 1], dest[PATH_MAX];
    char body[2048], when[PF_ISOTIME_BYTES];
    bool known = false;

    if (pf_hash_file(path, fh, e) != 0)
        return -1;
    imp_hex32(fhex, fh);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(imp->db.sql, "SELECT 1 FROM rejections WHERE file_hash = ?", -1, &st,
                           NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, fhex, -1, SQLITE_TRANSIENT);
        known = sqlite3_step(st) == SQLITE_ROW;
    }
    sqlite3_finalize(st);
    if (sensor != NULL && seq > 0)
        imp_note_receipt(imp, sensor, path, seq, fh, PF_RCPT_REJECTED, reason);
    if (known) {
        imp_event(imp, PF_EV_WARN,
                  "bundle=%s status=rejected again reason=\"%s\" (already quarantined)", path,
                  reason);
        return 0;
    }
    if (pf_path_join(dir, sizeof dir, imp->quarantine, sensor != NULL ? sensor : "unknown", e))
        return -1;
    if (pf_mkdir_p(dir, 0750, e) != 0)
        return -1;
    /* The same name with other bytes already there: keep both. */
    snprintf(name, sizeof name, "%s", pf_basename(path));
    if (pf_path_join(dest, sizeof dest, dir, name, e) != 0)
        return -1;
    if (access(dest, F_OK) == 0) {
        snprintf(name, sizeof name, "%.200s.%.16s", pf_basename(path), fhex);
        if (pf_path_join(dest, sizeof dest, dir, name, e) != 0)
            return -1;
    }
    bool moved = false;
    if (rename(path, dest) == 0) {
        moved = true;
    } else if (pf_copy_file(path, dir, name, e) != 0) {
        return -1;
    } else if (unlink(path) == 0) {
        moved = true;
    }
    pf_isotime_ns(when, sizeof when, pf_now_ns());
    int n = snprintf(body, sizeof body,
                     "bundle: %s\nsource: %s\n%s: %s\nsensor: %s\nseq: %" PRIu64
                     "\nblake2b_256: %s\ntime: %s\n%s\n",
                     name, path, equivocation ? "EQUIVOCATION" : "rejected", reason,
                     sensor != NULL ? sensor : "unknown", seq, fhex, when,
                     moved ? "disposition: moved here"
                           : "disposition: copied (the source is read-only)");
    snprintf(rname, sizeof rname, "%.240s.reason", name);
    if (pf_atomic_write(dir, rname, body, (size_t)n, 0640, false, e) != 0)
        return -1;
    if (pf_db_exec(&imp->db, e,
                   "INSERT OR IGNORE INTO rejections (file_hash, sensor, seq, reason, "
                   "equivocation, quarantined_as, at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                   "ssusisi", fhex, sensor, seq, reason, (int64_t)equivocation, dest,
                   imp_now_s()) != 0)
        return -1;
    imp_event(imp, equivocation ? PF_EV_ERROR : PF_EV_WARN,
              "bundle=%s status=%s reason=\"%s\" quarantined=%s", path,
              equivocation ? "EQUIVOCATION" : "rejected", reason, dest);
    return 0;
}

int imp_hold_file(pf_importer *imp, int dirfd, const char *sensor, uint64_t seq, size_t nth,
                  const char *stage, const char *orig, const char *reason, char *held_as,
                  size_t cap, pf_err *e)
{
    char dir[PATH_MAX], name[NAME_MAX + 1], rname[NAME_MAX + 1], body[1024];
    if (snprintf(dir, sizeof dir, "%s/held/%s", imp->quarantine, sensor) >= (int)sizeof dir)
        return pf_err_set(e, PF_EUSAGE, "%s: quarantine path too long", imp->quarantine);
    if (pf_mkdir_p(dir, 0750, e) != 0)
        return -1;
    /* sensor (64) + seq + nth + 150 bytes of the original name fit NAME_MAX */
    snprintf(name, sizeof name, "%.64s-%010" PRIu64 "-%zu-%.150s", sensor, seq, nth, orig);
    int qfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (qfd < 0)
        return pf_err_sys(e, errno, "%s: cannot open", dir);
    int r = renameat(dirfd, stage, qfd, name);
    int err = errno;
    if (r != 0 && err == EXDEV) {
        char src[PATH_MAX];
        if (snprintf(src, sizeof src, "%s/%s/%s", imp->o.ingest_dir, sensor, stage) >=
            (int)sizeof src) {
            close(qfd);
            return pf_err_set(e, PF_EENV, "%s/%s: path too long", imp->o.ingest_dir, sensor);
        }
        r = pf_copy_file(src, dir, name, e);
        if (r == 0)
            unlinkat(dirfd, stage, 0);
    } else if (r != 0) {
        close(qfd);
        return pf_err_sys(e, err, "%s/%s: cannot hold", dir, name);
    }
    if (r == 0)
        r = pf_fsync_dirfd(qfd, dir, e);
    close(qfd);
    if (r != 0)
        return -1;
    int n = snprintf(body, sizeof body, "file: %s\nsensor: %s\nseq: %" PRIu64 "\nheld: %s\n", orig,
                     sensor, seq, reason);
    if (n < 0)
        n = 0;
    if ((size_t)n >= sizeof body) /* a long reason is cut, never over-read */
        n = (int)sizeof body - 1;
    snprintf(rname, sizeof rname, "%.240s.reason", name);
    if (snprintf(held_as, cap, "%s/%s", dir, name) >= (int)cap)
        return pf_err_set(e, PF_EENV, "%s: path too long", dir);
    return pf_atomic_write(dir, rname, body, (size_t)n, 0640, false, e);
}
