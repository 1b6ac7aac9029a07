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

/* Directory DIR below the quarantine, created and opened without
 * following links (held/<sensor>, <sensor>, unknown). */
static int quarantine_dir(pf_importer *imp, const char *rel, char *path, size_t cap, pf_err *e)
{
    if (snprintf(path, cap, "%s/%s", imp->quarantine, rel) >= (int)cap)
        return pf_err_set(e, PF_EUSAGE, "%s: quarantine path too long", imp->quarantine);
    return pf_mkdirs_at(imp->quarantine_fd, imp->quarantine, rel, 0750, e);
}

/* Sets a rejected bundle aside with a reason file. It is always copied from
 * the descriptor that was judged, into a file of ours (0640): moving it
 * would keep the source account's ownership, and with it a way to change
 * the evidence through a hard link. The source is then removed, unless it
 * is read-only (a write-protected stick) or its name now holds another
 * file. */
int imp_quarantine_bundle(pf_importer *imp, const struct imp_source *src, const char *sensor,
                          uint64_t seq, const char *reason, bool equivocation, uint8_t hash[32],
                          pf_err *e)
{
    uint8_t fh[32];
    char fhex[65], dir[PATH_MAX], name[NAME_MAX + 1], rname[NAME_MAX + 1], dest[PATH_MAX];
    char body[2048], when[PF_ISOTIME_BYTES];
    const char *disposition = "moved here (copied, then removed from the source)";
    bool known = false;
    int qfd = -1, rc = -1;

    if (sensor != NULL && !pf_name_valid(sensor))
        sensor = NULL;
    if (pf_hash_fd(src->fd, src->path, fh, e) != 0)
        return -1;
    imp_hex32(fhex, fh);
    if (hash != NULL)
        memcpy(hash, fh, sizeof fh);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(imp->db.sql, "SELECT 1 FROM rejections WHERE file_hash = ?", -1, &st,
                           NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, fhex, -1, SQLITE_TRANSIENT);
        known = sqlite3_step(st) == SQLITE_ROW;
    }
    sqlite3_finalize(st);
    if (known) {
        imp_event(imp, PF_EV_WARN,
                  "bundle=%s status=rejected again reason=\"%s\" (already quarantined)", src->path,
                  reason);
        return 0;
    }
    qfd = quarantine_dir(imp, sensor != NULL ? sensor : "unknown", dir, sizeof dir, e);
    if (qfd < 0)
        return -1;
    /* The same name with other bytes already there: keep both. */
    snprintf(name, sizeof name, "%s", src->name);
    if (faccessat(qfd, name, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
        snprintf(name, sizeof name, "%.200s.%.16s", src->name, fhex);
    if (pf_path_join(dest, sizeof dest, dir, name, e) != 0)
        goto out;
    if (pf_copy_fd_at(src->fd, src->path, qfd, dir, name, 0640, e) != 0)
        goto out;
    if (!imp_same_file(src))
        disposition = "copied (the source name now holds another file: left alone)";
    else if (unlinkat(src->dirfd, src->name, 0) != 0)
        disposition = errno == EROFS || errno == EACCES || errno == EPERM
                          ? "copied (the source is read-only)"
                          : "copied (the source could not be removed)";
    else
        (void)pf_fsync_dirfd(src->dirfd, src->path, e);
    pf_err_clear(e);
    pf_isotime_ns(when, sizeof when, pf_now_ns());
    int n = snprintf(body, sizeof body,
                     "bundle: %s\nsource: %s\n%s: %s\nsensor: %s\nseq: %" PRIu64
                     "\nblake2b_256: %s\ntime: %s\ndisposition: %s\n",
                     name, src->path, equivocation ? "EQUIVOCATION" : "rejected", reason,
                     sensor != NULL ? sensor : "unknown", seq, fhex, when, disposition);
    if (n < 0)
        n = 0;
    if ((size_t)n >= sizeof body)
        n = (int)sizeof body - 1;
    snprintf(rname, sizeof rname, "%.240s.reason", name);
    if (pf_atomic_write_at(qfd, dir, rname, body, (size_t)n, 0640, false, e) != 0)
        goto out;
    if (pf_db_exec(&imp->db, e,
                   "INSERT OR IGNORE INTO rejections (file_hash, sensor, seq, reason, "
                   "equivocation, quarantined_as, at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                   "ssusisi", fhex, sensor, seq, reason, (int64_t)equivocation, dest,
                   imp_now_s()) != 0)
        goto out;
    imp_event(imp, equivocation ? PF_EV_ERROR : PF_EV_WARN,
              "bundle=%s status=%s reason=\"%s\" quarantined=%s", src->path,
              equivocation ? "EQUIVOCATION" : "rejected", reason, dest);
    rc = 0;
out:
    if (qfd >= 0)
        close(qfd);
    return rc;
}

int imp_hold_file(pf_importer *imp, int dirfd, const char *sensor, uint64_t seq, size_t nth,
                  const char *stage, const char *orig, const char *reason, char *held_as,
                  size_t cap, pf_err *e)
{
    char dir[PATH_MAX], name[NAME_MAX + 1], rname[NAME_MAX + 1], body[1024], rel[NAME_MAX + 8];
    struct stat st;
    snprintf(rel, sizeof rel, "held/%s", sensor);
    int qfd = quarantine_dir(imp, rel, dir, sizeof dir, e);
    if (qfd < 0)
        return -1;
    /* sensor (64) + seq + nth + 150 bytes of the original name fit NAME_MAX */
    snprintf(name, sizeof name, "%.64s-%010" PRIu64 "-%zu-%.150s", sensor, seq, nth, orig);
    /* The staged file is ours, but in a directory Arkime's account may
     * write: open it without links and keep it only if it is a file. */
    int sfd = pf_open_regular_at(dirfd, stage, stage, &st, e);
    int r = sfd < 0 ? -1 : renameat(dirfd, stage, qfd, name);
    if (sfd >= 0 && r != 0 && errno == EXDEV) {
        r = pf_copy_fd_at(sfd, stage, qfd, dir, name, 0640, e);
        if (r == 0)
            unlinkat(dirfd, stage, 0);
    } else if (sfd >= 0 && r != 0) {
        pf_err_sys(e, errno, "%s/%s: cannot hold", dir, name);
    } else if (r == 0 && fchmod(sfd, 0640) != 0) { /* held captures are not for Arkime */
        r = pf_err_sys(e, errno, "%s/%s: chmod failed", dir, name);
    }
    if (r == 0)
        r = pf_fsync_dirfd(qfd, dir, e);
    if (sfd >= 0)
        close(sfd);
    if (r != 0) {
        close(qfd);
        return -1;
    }
    int n = snprintf(body, sizeof body, "file: %s\nsensor: %s\nseq: %" PRIu64 "\nheld: %s\n", orig,
                     sensor, seq, reason);
    if (n < 0)
        n = 0;
    if ((size_t)n >= sizeof body) /* a long reason is cut, never over-read */
        n = (int)sizeof body - 1;
    snprintf(rname, sizeof rname, "%.240s.reason", name);
    r = snprintf(held_as, cap, "%s/%s", dir, name) >= (int)cap
            ? pf_err_set(e, PF_EENV, "%s: path too long", dir)
            : pf_atomic_write_at(qfd, dir, rname, body, (size_t)n, 0640, false, e);
    close(qfd);
    return r;
}
