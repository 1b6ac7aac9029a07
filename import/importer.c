#include "import/importer.h"

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
#include "import/identity.h"

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

static void event(pf_importer *imp, enum pf_event_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A bundle found at ROOT/pcapferry/<sensor>/NAME came from an export to
 * removable media: its receipt goes back to ROOT/pcapferry-receipts/. */
static void note_receipt(pf_importer *imp, const char *sensor, const char *path, uint64_t seq,
                         const uint8_t hash[32], enum pf_receipt_status st, const char *reason)
{
    pf_err e;
    struct receipt_set *set = NULL;
    pf_err_clear(&e);
    for (size_t i = 0; i < imp->nrs; i++)
        if (strcmp(imp->rs[i].r->sensor, sensor) == 0)
            set = &imp->rs[i];
    if (set == NULL) {
        struct receipt_set *g = realloc(imp->rs, (imp->nrs + 1) * sizeof *g);
        if (g == NULL)
            return;
        imp->rs = g;
        set = &imp->rs[imp->nrs];
        memset(set, 0, sizeof *set);
        set->r = pf_receipt_new(sensor);
        if (set->r == NULL)
            return;
        imp->nrs++;
    }
    pf_receipt_add(set->r, seq, hash, st, reason, &e);
    char marker[PF_NAME_MAX + 16];
    snprintf(marker, sizeof marker, "/pcapferry/%s/", sensor);
    const char *at = strstr(path, marker);
    if (at == NULL || set->nroots >= MAX_RECEIPT_ROOTS)
        return;
    char *root = at == path ? strdup("/") : strndup(path, (size_t)(at - path));
    for (size_t i = 0; root != NULL && i < set->nroots; i++)
        if (strcmp(set->roots[i], root) == 0) {
            free(root);
            return;
        }
    if (root != NULL)
        set->roots[set->nroots++] = root;
}

static int delete_now(const char *path, pf_err *e)
{
    char dir[PATH_MAX];
    if (unlink(path) != 0 && errno != ENOENT) /* reached twice through nested sources */
        return pf_err_sys(e, errno, "%s: cannot delete source", path);
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash != NULL) {
        *slash = '\0';
        return pf_fsync_dir(dir[0] ? dir : "/", e);
    }
    return pf_fsync_dir(".", e);
}

static bool receipt_failed_for(const pf_importer *imp, const char *sensor)
{
    for (size_t i = 0; i < imp->nrs; i++)
        if (strcmp(imp->rs[i].r->sensor, sensor) == 0)
            return imp->rs[i].write_failed;
    return false;
}

/* Writes the receipts of the run, then deletes the sources (--delete-source)
 * whose sensor's receipts were all written. Counts what failed; returns -1
 * (e set) only when a deletion failed. */
static int acknowledge(pf_importer *imp, pf_import_counts *c, pf_err *e)
{
    int rc = 0;
    for (size_t i = 0; i < imp->nrs; i++) {
        struct receipt_set *set = &imp->rs[i];
        char dir[PATH_MAX], name[NAME_MAX + 1];
        for (size_t k = 0; k <= set->nroots; k++) {
            pf_err re;
            pf_err_clear(&re);
            if (k < set->nroots)
                snprintf(dir, sizeof dir, "%s/%s/%s", set->roots[k], PF_RECEIPTS_DIR,
                         set->r->sensor);
            else if (imp->o.receipts_dir != NULL)
                snprintf(dir, sizeof dir, "%s/%s", imp->o.receipts_dir, set->r->sensor);
            else
                continue;
            if (set->r->n == 0)
                continue;
            if (pf_receipt_write(set->r, imp->o.central, dir, name, sizeof name, &re) == 0) {
                event(imp, PF_EV_INFO, "receipt=%s/%s sensor=%s bundles=%zu", dir, name,
                      set->r->sensor, set->r->n);
            } else {
                set->write_failed = true;
                if (c != NULL)
                    c->receipts_failed++;
                event(imp, PF_EV_ERROR, "could not write a receipt to %s: %s", dir, re.msg);
            }
        }
    }
    for (size_t i = 0; i < imp->npd; i++) {
        struct pending_delete *d = &imp->pd[i];
        if (receipt_failed_for(imp, d->sensor)) {
            event(imp, PF_EV_WARN, "bundle=%s kept: its receipt could not be written", d->path);
        } else {
            pf_err de;
            pf_err_clear(&de);
            if (delete_now(d->path, &de) != 0 && rc == 0) {
                *e = de;
                rc = -1;
            }
        }
        free(d->path);
    }
    free(imp->pd);
    imp->pd = NULL;
    imp->npd = 0;
    for (size_t i = 0; i < imp->nrs; i++) {
        pf_receipt_free(imp->rs[i].r);
        for (size_t k = 0; k < imp->rs[i].nroots; k++)
            free(imp->rs[i].roots[k]);
    }
    free(imp->rs);
    imp->rs = NULL;
    imp->nrs = 0;
    return rc;
}

struct candidate {
    char *path;
    pf_header hdr;
    uint64_t size;
};

static void event(pf_importer *imp, enum pf_event_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void event(pf_importer *imp, enum pf_event_level level, const char *fmt, ...)
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
    event(imp, level, "%s", msg);
}

static void hex32(char out[65], const uint8_t in[32])
{
    pf_hex(out, in, 32);
}

static int64_t now_s(void)
{
    return (int64_t)time(NULL);
}

/* ---------- quarantine ---------- */

/* Sets a rejected bundle aside with a reason file. A read-only source
 * (a write-protected stick) is copied; otherwise the bundle is moved. */
static int quarantine_bundle(pf_importer *imp, const char *path, const char *sensor, uint64_t seq,
                             const char *reason, bool equivocation, pf_err *e)
{
    uint8_t fh[32];
    char fhex[65], dir[PATH_MAX], name[NAME_MAX + 1], rname[NAME_MAX + 1], dest[PATH_MAX];
    char body[2048], when[PF_ISOTIME_BYTES];
    bool known = false;

    if (pf_hash_file(path, fh, e) != 0)
        return -1;
    hex32(fhex, fh);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(imp->db.sql, "SELECT 1 FROM rejections WHERE file_hash = ?", -1, &st,
                           NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, fhex, -1, SQLITE_TRANSIENT);
        known = sqlite3_step(st) == SQLITE_ROW;
    }
    sqlite3_finalize(st);
    if (sensor != NULL && seq > 0)
        note_receipt(imp, sensor, path, seq, fh, PF_RCPT_REJECTED, reason);
    if (known) {
        event(imp, PF_EV_WARN,
              "bundle=%s status=rejected again reason=\"%s\" (already quarantined)", path, reason);
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
                   "ssusisi", fhex, sensor, seq, reason, (int64_t)equivocation, dest, now_s()) != 0)
        return -1;
    event(imp, equivocation ? PF_EV_ERROR : PF_EV_WARN,
          "bundle=%s status=%s reason=\"%s\" quarantined=%s", path,
          equivocation ? "EQUIVOCATION" : "rejected", reason, dest);
    return 0;
}

/* ---------- source scanning ---------- */

struct cand_list {
    struct candidate *v;
    size_t n, cap;
};

static int add_candidate(struct cand_list *l, const char *path, pf_err *e)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        struct candidate *g = realloc(l->v, cap * sizeof *g);
        if (g == NULL)
            return pf_err_set(e, PF_EENV, "out of memory");
        l->v = g;
        l->cap = cap;
    }
    struct candidate *c = &l->v[l->n];
    memset(c, 0, sizeof *c);
    c->path = strdup(path);
    if (c->path == NULL)
        return pf_err_set(e, PF_EENV, "out of memory");
    l->n++;
    return 0;
}

static bool is_bundle_name(const char *name)
{
    size_t n = strlen(name), s = strlen(PF_BUNDLE_SUFFIX);
    return !pf_name_in_flight(name) && n > s && strcmp(name + n - s, PF_BUNDLE_SUFFIX) == 0;
}

static int scan_dir(const char *dir, int depth, struct cand_list *l, pf_err *e)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return pf_err_sys(e, errno, "%s: cannot read directory", dir);
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(d)) != NULL) {
        char path[PATH_MAX];
        struct stat st;
        if (de->d_name[0] == '.') /* dot files and dirs: in flight or not ours */
            continue;
        if (snprintf(path, sizeof path, "%s/%s", dir, de->d_name) >= (int)sizeof path)
            continue;
        if (lstat(path, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode) && depth < MAX_SCAN_DEPTH)
            rc = scan_dir(path, depth + 1, l, e);
        else if (S_ISREG(st.st_mode) && is_bundle_name(de->d_name))
            rc = add_candidate(l, path, e);
    }
    closedir(d);
    return rc;
}

static int cmp_candidate(const void *a, const void *b)
{
    const struct candidate *x = a, *y = b;
    int c = strcmp(x->hdr.sensor, y->hdr.sensor);
    if (c != 0)
        return c;
    return x->hdr.seq < y->hdr.seq ? -1 : x->hdr.seq > y->hdr.seq;
}

/* ---------- delivery ---------- */

static void settle(pf_importer *imp);

static int open_sensor_dir(pf_importer *imp, const char *sensor, bool *created, pf_err *e)
{
    char path[PATH_MAX];
    *created = false;
    if (pf_path_join(path, sizeof path, imp->o.ingest_dir, sensor, e) != 0)
        return -1;
    if (mkdir(path, 0755) == 0) {
        *created = true;
        if (pf_fsync_dir(imp->o.ingest_dir, e) != 0)
            return -1;
        settle(imp);
    } else if (errno != EEXIST) {
        return pf_err_sys(e, errno, "%s: cannot create ingest directory", path);
    }
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return pf_err_sys(e, errno, "%s: cannot open ingest directory", path);
    return fd;
}

static void settle(pf_importer *imp)
{
    /* capture -m -R adds a watch to a new subdirectory only when it sees
     * its IN_CREATE; a file closed before that is missed. */
    struct timespec ts = {(time_t)(imp->o.settle_ms / 1000),
                          (long)(imp->o.settle_ms % 1000) * 1000000L};
    /* a signal must not cut it short: the file would be announced too early */
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static int run_exec(pf_importer *imp, const char *file, const char *sensor, uint64_t seq)
{
    char seqs[32];
    char *argv[64];
    size_t n = 0;
    snprintf(seqs, sizeof seqs, "%" PRIu64, seq);
    for (size_t i = 0; imp->o.exec_argv[i] != NULL && n < 63; i++) {
        const char *t = imp->o.exec_argv[i];
        const char *with = strcmp(t, "{file}") == 0     ? file
                           : strcmp(t, "{sensor}") == 0 ? sensor
                           : strcmp(t, "{seq}") == 0    ? seqs
                                                        : NULL;
        if (with == NULL && strstr(t, "{") != NULL) {
            /* placeholders inside a word, e.g. sensor:{sensor} */
            char buf[PATH_MAX];
            size_t o = 0;
            for (const char *p = t; *p != '\0' && o + 1 < sizeof buf;) {
                const char *rep = NULL;
                size_t skip = 0;
                if (strncmp(p, "{file}", 6) == 0)
                    rep = file, skip = 6;
                else if (strncmp(p, "{sensor}", 8) == 0)
                    rep = sensor, skip = 8;
                else if (strncmp(p, "{seq}", 5) == 0)
                    rep = seqs, skip = 5;
                if (rep != NULL) {
                    o += (size_t)snprintf(buf + o, sizeof buf - o, "%s", rep);
                    if (o >= sizeof buf)
                        o = sizeof buf - 1;
                    p += skip;
                } else {
                    buf[o++] = *p++;
                }
            }
            buf[o] = '\0';
            argv[n++] = strdup(buf);
        } else {
            argv[n++] = strdup(with != NULL ? with : t);
        }
    }
    argv[n] = NULL;
    int status = -1;
    pid_t pid = fork();
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2(devnull, 0);
        execvp(argv[0], argv);
        _exit(127);
    }
    if (pid > 0) {
        int ws;
        while (waitpid(pid, &ws, 0) < 0 && errno == EINTR)
            ;
        status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + (WIFSIGNALED(ws) ? WTERMSIG(ws) : 0);
    }
    for (size_t i = 0; i < n; i++)
        free(argv[i]);
    return status;
}

static int exec_and_record(pf_importer *imp, const char *sensor, uint64_t seq, int64_t nth,
                           const char *final, pf_import_counts *c, pf_err *e)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s/%s", imp->o.ingest_dir, sensor, final);
    int st = run_exec(imp, path, sensor, seq);
    if (st != 0) {
        c->exec_failures++;
        event(imp, PF_EV_WARN, "file=%s exec_status=%d (retried on the next run)", path, st);
    }
    return pf_db_exec(
        &imp->db, e,
        "UPDATE deliveries SET exec_status = ?, exec_attempts = MAX(exec_attempts, 0) + 1 "
        "WHERE sensor = ? AND seq = ? AND n = ?",
        "isui", (int64_t)st, sensor, seq, nth);
}

/* The last step for one file: staged -> final name -> announced. Safe to
 * repeat after a crash at any point (see docs/IMPORT.md). */
static int finish_delivery(pf_importer *imp, int dirfd, const char *sensor, uint64_t seq,
                           int64_t nth, const char *stage, const char *final, bool *announced_again,
                           pf_err *e)
{
    *announced_again = false;
    if (pf_rename_noreplace(dirfd, stage, dirfd, final) != 0) {
        int err = errno;
        bool stage_there = faccessat(dirfd, stage, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
        bool final_there = faccessat(dirfd, final, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
        if (err == ENOENT && !stage_there) {
            /* renamed by the run that was killed: the announcement may or
             * may not have happened; we err on announcing again */
            *announced_again = final_there;
        } else {
            return pf_err_sys(e, err, "%s/%s/%s: cannot deliver", imp->o.ingest_dir, sensor, final);
        }
        if (!final_there)
            goto record; /* already consumed by Arkime (--copy --delete) */
    }
    if (pf_fsync_dirfd(dirfd, final, e) != 0)
        return -1;
    pf_failpoint("import-renamed");
    if (pf_arkime_announce(dirfd, final, e) != 0)
        return -1;
    pf_failpoint("import-announced");
record:
    return pf_db_exec(&imp->db, e,
                      "UPDATE deliveries SET state = 'delivered' WHERE sensor = ? AND seq = ? "
                      "AND n = ?",
                      "sui", sensor, seq, nth);
}

static int hold_file(pf_importer *imp, int dirfd, const char *sensor, uint64_t seq, size_t nth,
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

static int save_provenance(pf_importer *imp, const pf_extracted *x, pf_err *e)
{
    char dir[PATH_MAX], name[NAME_MAX + 1];
    snprintf(dir, sizeof dir, "%s/manifests/%s", imp->o.state_dir, x->hdr.sensor);
    if (pf_mkdir_p(dir, 0750, e) != 0)
        return -1;
    snprintf(name, sizeof name, "%s-%010" PRIu64 ".manifest.json", x->hdr.sensor, x->hdr.seq);
    if (pf_atomic_write(dir, name, x->manifest_raw, x->manifest_len, 0640, false, e) != 0)
        return -1;
    snprintf(name, sizeof name, "%s-%010" PRIu64 ".manifest.sig", x->hdr.sensor, x->hdr.seq);
    if (pf_atomic_write(dir, name, x->manifest_sig, PF_SIG_BYTES, 0640, false, e) != 0)
        return -1;
    /* The header completes the proof: the manifest names its hash. */
    snprintf(name, sizeof name, "%s-%010" PRIu64 ".header", x->hdr.sensor, x->hdr.seq);
    return pf_atomic_write(dir, name, x->hdr.raw, x->hdr.raw_len, 0640, false, e);
}

static uint64_t manifest_drops(const pf_manifest *m)
{
    uint64_t drops = 0;
    for (size_t i = 0; i < m->nfiles; i++) {
        json_t *s = m->files[i].capture_stats;
        if (s == NULL)
            continue;
        const char *keys[] = {"dropped_kernel", "dropped_interface"};
        for (size_t k = 0; k < 2; k++) {
            json_t *v = json_object_get(s, keys[k]);
            if (json_is_integer(v) && json_integer_value(v) > 0)
                drops += (uint64_t)json_integer_value(v);
        }
    }
    return drops;
}

struct plan {
    int gate;
    char stage[PF_STAGE_NAME_MAX + 16];
    char final[NAME_MAX + 1];
    char reason[512];
    char held_as[PATH_MAX];
};

/* Everything after a successful extraction: gate, convert, hold, record,
 * deliver. On failure the caller removes what is still staged. */
static int deliver_bundle(pf_importer *imp, const struct candidate *cand, int dirfd,
                          pf_extracted *x, struct plan *plan, pf_import_counts *c, pf_err *e)
{
    const pf_manifest *m = x->manifest;
    const pf_header *h = &x->hdr;
    char hh[65], bh[65], ph[65], fhex[65];
    uint64_t packets = 0, bytes = 0;
    int64_t first = 0, last = 0;
    bool have_ts = false;

    for (size_t i = 0; i < m->nfiles; i++) {
        const pf_pcapinfo *f = &m->files[i].info;
        struct plan *p = &plan[i];
        snprintf(p->stage, sizeof p->stage, "%s", x->staged[i]);
        p->gate = (int)pf_arkime_gate(f, imp->o.read_truncated, p->reason, sizeof p->reason);
        char when[32];
        pf_compact_time(when, sizeof when,
                        f->have_ts && f->first_ns >= 0 ? f->first_ns : h->created_ns);
        snprintf(p->final, sizeof p->final, "%s-%010" PRIu64 "-%zu-%s.pcap", h->sensor, h->seq,
                 i + 1, when);
        if (p->gate == PF_GATE_CONVERT) {
            char conv[PF_STAGE_NAME_MAX + 16];
            snprintf(conv, sizeof conv, "%s%010" PRIu64 "-%zu.conv.part", STAGE_PREFIX, h->seq, i);
            pf_err ce;
            pf_err_clear(&ce);
            if (pf_pcapng_to_pcap(dirfd, p->stage, conv, f->packets, m->files[i].name, &ce) == 0) {
                unlinkat(dirfd, p->stage, 0);
                snprintf(p->stage, sizeof p->stage, "%s", conv);
                c->files_converted++;
            } else if (ce.status == PF_EREJECT) {
                p->gate = PF_GATE_HOLD;
                snprintf(p->reason, sizeof p->reason, "pcapng conversion failed: %.400s", ce.msg);
            } else {
                *e = ce;
                return -1;
            }
        }
        if (p->gate == PF_GATE_HOLD) {
            if (hold_file(imp, dirfd, h->sensor, h->seq, i + 1, p->stage, m->files[i].name,
                          p->reason, p->held_as, sizeof p->held_as, e) != 0)
                return -1;
            p->stage[0] = '\0';
            c->files_held++;
            event(imp, PF_EV_WARN, "sensor=%s seq=%" PRIu64 " file=%s held=%s reason=\"%s\"",
                  h->sensor, h->seq, m->files[i].name, p->held_as, p->reason);
        } else if (p->gate == PF_GATE_EMPTY) {
            unlinkat(dirfd, p->stage, 0);
            p->stage[0] = '\0';
            c->files_empty++;
        }
        packets += f->packets;
        bytes += f->size;
        if (f->have_ts) {
            if (!have_ts || f->min_ns < first)
                first = f->min_ns;
            if (!have_ts || f->max_ns > last)
                last = f->max_ns;
            have_ts = true;
        }
    }
    pf_failpoint("import-staged");
    if (save_provenance(imp, x, e) != 0)
        return -1;

    /* One transaction records the intent for the whole bundle. */
    hex32(hh, h->hash);
    hex32(bh, x->bundle_hash);
    hex32(ph, h->prev_hash);
    if (pf_db_begin(&imp->db, e) != 0)
        return -1;
    if (pf_db_exec(
            &imp->db, e,
            "INSERT INTO bundles (sensor, seq, header_hash, bundle_hash, prev_seq, "
            "prev_hash, status, source, imported_at, files, packets, bytes, first_ts, "
            "last_ts, drops) VALUES (?, ?, ?, ?, ?, ?, 'delivering', ?, ?, ?, ?, ?, ?, ?, ?)",
            "sussussiuuuiiu", h->sensor, h->seq, hh, bh, h->prev_seq, h->prev_seq ? ph : NULL,
            cand->path, now_s(), (uint64_t)m->nfiles, packets, bytes, have_ts ? first : 0,
            have_ts ? last : 0, manifest_drops(m)) != 0)
        goto rollback;
    for (size_t i = 0; i < m->nfiles; i++) {
        const struct plan *p = &plan[i];
        const char *state = p->gate == PF_GATE_HOLD    ? "held"
                            : p->gate == PF_GATE_EMPTY ? "empty"
                                                       : "staged";
        hex32(fhex, m->files[i].info.blake2b);
        if (pf_db_exec(&imp->db, e,
                       "INSERT INTO deliveries (sensor, seq, n, name, stage, final, state, "
                       "blake2b, converted, reason, exec_status, exec_attempts) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?)",
                       "suisssssisi", h->sensor, h->seq, (int64_t)i + 1, m->files[i].name, p->stage,
                       p->final, state, fhex, (int64_t)(p->gate == PF_GATE_CONVERT),
                       p->reason[0] ? p->reason : NULL,
                       (int64_t)(imp->o.exec_argv != NULL ? -1 : 0)) != 0)
            goto rollback;
    }
    if (pf_db_commit(&imp->db, e) != 0)
        goto rollback;
    pf_failpoint("import-intent");

    for (size_t i = 0; i < m->nfiles; i++) {
        struct plan *p = &plan[i];
        bool again;
        if (p->stage[0] == '\0')
            continue;
        if (finish_delivery(imp, dirfd, h->sensor, h->seq, (int64_t)i + 1, p->stage, p->final,
                            &again, e) != 0)
            return -1;
        p->stage[0] = '\0';
        c->files_delivered++;
        c->bytes_delivered += m->files[i].info.size;
        event(imp, PF_EV_INFO, "sensor=%s seq=%" PRIu64 " delivered=%s/%s/%s packets=%" PRIu64 "%s",
              h->sensor, h->seq, imp->o.ingest_dir, h->sensor, p->final, m->files[i].info.packets,
              plan[i].gate == PF_GATE_CONVERT ? " converted=pcapng" : "");
    }
    pf_failpoint("import-delivered");
    if (pf_db_exec(&imp->db, e,
                   "UPDATE bundles SET status = 'committed' WHERE sensor = ? AND seq = ?", "su",
                   h->sensor, h->seq) != 0)
        return -1;
    if (imp->o.exec_argv != NULL)
        for (size_t i = 0; i < m->nfiles; i++)
            if (plan[i].gate == PF_GATE_DELIVER || plan[i].gate == PF_GATE_CONVERT)
                if (exec_and_record(imp, h->sensor, h->seq, (int64_t)i + 1, plan[i].final, c, e) !=
                    0)
                    return -1;
    return 0;
rollback:
    pf_db_rollback(&imp->db);
    return -1;
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

static int delete_source(pf_importer *imp, const char *sensor, const char *path, pf_err *e)
{
    if (!imp->o.delete_source)
        return 0;
    struct pending_delete *g = realloc(imp->pd, (imp->npd + 1) * sizeof *g);
    char *copy = strdup(path);
    if (g == NULL || copy == NULL) {
        free(copy);
        if (g != NULL)
            imp->pd = g;
        return pf_err_set(e, PF_EENV, "out of memory");
    }
    imp->pd = g;
    imp->pd[imp->npd].path = copy;
    snprintf(imp->pd[imp->npd].sensor, sizeof imp->pd[imp->npd].sensor, "%s", sensor);
    imp->npd++;
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
    hex32(hh, h->hash);
    /* Issue 12: the header's sensor name must be its key's pinned name
     * before (sensor, seq) means anything (import/identity.c). */
    char blame[PF_NAME_MAX + 1];
    pf_err_clear(&be);
    if (pf_identity_check_name(imp->o.keyring, h, blame, &be) != 0) {
        if (be.status == PF_EENV) {
            *e = be;
            return -1;
        }
        pf_err_prefix(&be, "%s: ", cand->path);
        c->rejected++;
        return quarantine_bundle(imp, cand->path, blame, 0, be.msg, false, e);
    }
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
            note_receipt(imp, h->sensor, cand->path, h->seq, bh, PF_RCPT_COMMITTED, NULL);
            return quarantine_bundle(imp, cand->path, h->sensor, 0,
                                     "a damaged copy of a bundle already imported intact "
                                     "(its trailer names another hash)",
                                     false, e);
        }
        c->duplicates++;
        if (known) /* acknowledge again */
            note_receipt(imp, h->sensor, cand->path, h->seq, bh, PF_RCPT_COMMITTED, NULL);
        event(imp, PF_EV_DEBUG, "bundle=%s sensor=%s seq=%" PRIu64 " status=already-imported",
              cand->path, h->sensor, h->seq);
        return delete_source(imp, h->sensor, cand->path, e);
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
            return quarantine_bundle(imp, cand->path, h->sensor, h->seq, reason, true, e);
        }
        if (be.status == PF_EENV) {
            *e = be;
            return -1;
        }
        c->rejected++;
        return quarantine_bundle(imp, cand->path, h->sensor, h->seq, be.msg, false, e);
    }

    /* Trust and the header signature before anything is created for this
     * sensor: an untrusted sender gets no directory in INGEST. */
    pf_trust tr;
    uint8_t vouched[PF_HASH_BYTES];
    bool has_vouched = false;
    pf_err_clear(&be);
    if (pf_keyring_lookup(imp->o.keyring, h->signer_id, &tr, &be) != 0 ||
        pf_header_verify(h, tr.key.sign_pk, &be) != 0 ||
        pf_identity_check_revocation(&imp->db, &tr, cand->path, h, vouched, &has_vouched, &be) !=
            0) {
        if (be.status == PF_EENV) {
            *e = be;
            return -1;
        }
        if (be.status == PF_EINCOMPLETE) { /* a revoked key's bundle not vouched for yet */
            c->incomplete++;
            event(imp, PF_EV_WARN, "bundle=%s status=waiting (%s)", cand->path, be.msg);
            return 0;
        }
        pf_err_prefix(&be, "%s: ", cand->path);
        c->rejected++;
        return quarantine_bundle(imp, cand->path, h->sensor, h->seq, be.msg, false, e);
    }
    dirfd = open_sensor_dir(imp, h->sensor, &new_dir, e);
    if (dirfd < 0)
        return -1;
    fd = open(cand->path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        pf_err_sys(e, errno, "%s: cannot open", cand->path);
        goto out;
    }
    snprintf(prefix, sizeof prefix, "%s%010" PRIu64 "-", STAGE_PREFIX, h->seq);
    pf_err_clear(&be);
    if (pf_bundle_extract_vouched(fd, cand->path, imp->o.central, imp->o.keyring,
                                  has_vouched ? vouched : NULL, dirfd, prefix, &x, &be) != 0) {
        if (be.status == PF_EINCOMPLETE) {
            c->incomplete++;
            event(imp, PF_EV_DEBUG, "bundle=%s status=incomplete (%s); left for a later run",
                  cand->path, be.msg);
            rc = 0;
        } else if (be.status == PF_EREJECT) {
            c->rejected++;
            rc = quarantine_bundle(imp, cand->path, h->sensor, h->seq, be.msg, false, e);
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
    if (deliver_bundle(imp, cand, dirfd, &x, plan, c, e) != 0) {
        if (pf_err_is_nospace(e))
            e->status = PF_EINCOMPLETE;
        /* Staged files of a bundle never recorded are removed below;
         * recorded rows are finished by the next run's recovery. */
        goto out;
    }
    c->imported++;
    note_receipt(imp, h->sensor, cand->path, h->seq, x.bundle_hash, PF_RCPT_COMMITTED, NULL);
    event(imp, PF_EV_INFO,
          "bundle=%s sensor=%s seq=%" PRIu64 " status=imported files=%zu packets=%" PRIu64,
          cand->path, h->sensor, h->seq, x.manifest->nfiles, pf_manifest_total_packets(x.manifest));
    rc = delete_source(imp, h->sensor, cand->path, e);
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

/* ---------- recovery ---------- */

struct pending {
    char sensor[PF_NAME_MAX + 1];
    uint64_t seq;
    int64_t n;
    char stage[PF_STAGE_NAME_MAX + 16];
    char final[NAME_MAX + 1];
};

struct pending_list {
    struct pending *v;
    size_t n, cap;
};

static int pending_row(void *ctx, sqlite3_stmt *st, pf_err *e)
{
    struct pending_list *l = ctx;
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 16;
        struct pending *g = realloc(l->v, cap * sizeof *g);
        if (g == NULL)
            return pf_err_set(e, PF_EENV, "out of memory");
        l->v = g;
        l->cap = cap;
    }
    struct pending *p = &l->v[l->n++];
    snprintf(p->sensor, sizeof p->sensor, "%s", pf_db_text(st, 0));
    p->seq = (uint64_t)sqlite3_column_int64(st, 1);
    p->n = sqlite3_column_int64(st, 2);
    snprintf(p->stage, sizeof p->stage, "%s", pf_db_text(st, 3));
    snprintf(p->final, sizeof p->final, "%s", pf_db_text(st, 4));
    return 0;
}

static int remove_stale_staging(pf_importer *imp, pf_err *e)
{
    DIR *d = opendir(imp->o.ingest_dir);
    if (d == NULL)
        return pf_err_sys(e, errno, "%s: cannot read ingest directory", imp->o.ingest_dir);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.' || !pf_name_valid(de->d_name))
            continue;
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", imp->o.ingest_dir, de->d_name);
        DIR *s = opendir(path);
        if (s == NULL)
            continue;
        struct dirent *f;
        while ((f = readdir(s)) != NULL) {
            size_t len = strlen(f->d_name);
            if (strncmp(f->d_name, STAGE_PREFIX, strlen(STAGE_PREFIX)) == 0 && len > 5 &&
                strcmp(f->d_name + len - 5, ".part") == 0)
                unlinkat(dirfd(s), f->d_name, 0);
        }
        closedir(s);
    }
    closedir(d);
    return 0;
}

static int recover(pf_importer *imp, pf_err *e)
{
    struct pending_list l = {0};
    int rc = -1;
    if (pf_db_query(&imp->db, e, pending_row, &l,
                    "SELECT d.sensor, d.seq, d.n, d.stage, d.final FROM deliveries d "
                    "JOIN bundles b ON b.sensor = d.sensor AND b.seq = d.seq "
                    "WHERE b.status = 'delivering' AND d.state = 'staged' "
                    "ORDER BY d.sensor, d.seq, d.n",
                    "") != 0)
        goto out;
    for (size_t i = 0; i < l.n; i++) {
        struct pending *p = &l.v[i];
        bool created, again;
        int dirfd = open_sensor_dir(imp, p->sensor, &created, e);
        if (dirfd < 0)
            goto out;
        int r = finish_delivery(imp, dirfd, p->sensor, p->seq, p->n, p->stage, p->final, &again, e);
        close(dirfd);
        if (r != 0)
            goto out;
        event(imp, again ? PF_EV_WARN : PF_EV_INFO, "sensor=%s seq=%" PRIu64 " recovered=%s%s",
              p->sensor, p->seq, p->final,
              again ? " (announced again after an interrupted run: Arkime may index it twice)"
                    : "");
    }
    if (pf_db_exec(&imp->db, e,
                   "UPDATE bundles SET status = 'committed' WHERE status = 'delivering' AND "
                   "NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.sensor = bundles.sensor AND "
                   "d.seq = bundles.seq AND d.state = 'staged')",
                   "") != 0)
        goto out;
    if (remove_stale_staging(imp, e) != 0)
        goto out;
    rc = 0;
out:
    free(l.v);
    return rc;
}

struct exec_row {
    char sensor[PF_NAME_MAX + 1];
    uint64_t seq;
    int64_t n;
    char final[NAME_MAX + 1];
};

static int retry_execs(pf_importer *imp, pf_import_counts *c, pf_err *e)
{
    struct pending_list l = {0};
    int rc = -1;
    if (imp->o.exec_argv == NULL)
        return 0;
    /* exec_attempts = -1 marks "wanted, never run" (killed before it ran) */
    if (pf_db_query(&imp->db, e, pending_row, &l,
                    "SELECT sensor, seq, n, stage, final FROM deliveries WHERE state = "
                    "'delivered' AND exec_attempts != 0 AND (exec_status IS NULL OR "
                    "exec_status != 0) ORDER BY sensor, seq, n",
                    "") != 0)
        goto out;
    for (size_t i = 0; i < l.n; i++)
        if (exec_and_record(imp, l.v[i].sensor, l.v[i].seq, l.v[i].n, l.v[i].final, c, e) != 0)
            goto out;
    rc = 0;
out:
    free(l.v);
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
    if (recover(imp, e) != 0)
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

    if (retry_execs(imp, c, e) != 0)
        goto out;
    for (size_t i = 0; i < n; i++) {
        struct stat st;
        /* Absolute paths: messages name files plainly, and a relative
         * source inside an export layout still finds its way back for
         * the receipt. */
        char *src = realpath(sources[i], NULL);
        if (src == NULL || stat(src, &st) != 0) {
            pf_err_sys(e, errno, "%s: cannot access source", sources[i]);
            free(src);
            goto out;
        }
        int r = S_ISDIR(st.st_mode) ? scan_dir(src, 0, &l, e) : add_candidate(&l, src, e);
        free(src);
        if (r != 0)
            goto out;
    }
    /* Headers first: cheap, and they give the delivery order. */
    size_t good = 0;
    for (size_t i = 0; i < l.n; i++) {
        pf_err he;
        pf_err_clear(&he);
        struct candidate *cand = &l.v[i];
        if (pf_bundle_read_header(cand->path, &cand->hdr, &cand->size, &he) == 0) {
            l.v[good] = *cand;
            good++;
            continue;
        }
        if (he.status == PF_EINCOMPLETE) {
            c->incomplete++;
            event(imp, PF_EV_DEBUG, "bundle=%s status=incomplete; left for a later run",
                  cand->path);
        } else if (he.status == PF_EREJECT) {
            c->rejected++;
            if (quarantine_bundle(imp, cand->path, NULL, 0, he.msg, false, e) != 0)
                goto out;
        } else {
            *e = he;
            goto out;
        }
        free(cand->path);
    }
    for (size_t i = good; i < l.n; i++)
        l.v[i].path = NULL;
    size_t total = good;
    l.n = good;
    if (l.n > 1)
        qsort(l.v, l.n, sizeof *l.v, cmp_candidate);
    prog.total = total;
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
    if (acknowledge(imp, c, &ae) != 0 && rc == 0) {
        *e = ae;
        rc = -1;
    }
    for (size_t i = 0; i < l.n; i++)
        free(l.v[i].path);
    free(l.v);
    return rc;
}

/* ---------- gaps and status ---------- */

struct seqrow {
    char sensor[PF_NAME_MAX + 1];
    uint64_t seq, prev_seq;
};

struct seqlist {
    struct seqrow *v;
    size_t n, cap;
};

static int seq_row(void *ctx, sqlite3_stmt *st, pf_err *e)
{
    struct seqlist *l = ctx;
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        struct seqrow *g = realloc(l->v, cap * sizeof *g);
        if (g == NULL)
            return pf_err_set(e, PF_EENV, "out of memory");
        l->v = g;
        l->cap = cap;
    }
    struct seqrow *r = &l->v[l->n++];
    snprintf(r->sensor, sizeof r->sensor, "%s", pf_db_text(st, 0));
    r->seq = (uint64_t)sqlite3_column_int64(st, 1);
    r->prev_seq = (uint64_t)sqlite3_column_int64(st, 2);
    return 0;
}

/* Missing seqs of one sensor's rows v[0..n) (sorted by seq): numbers below
 * the highest seq that no bundle filled and no bundle declared abandoned
 * (a bundle whose prev_seq skips numbers says they were never written). */
static uint64_t sensor_gaps(const struct seqrow *v, size_t n, char *list, size_t cap)
{
    uint64_t missing = 0, expect = 1;
    size_t used = 0;
    if (list != NULL && cap > 0)
        list[0] = '\0';
    /* Without any chain information, counting starts at the first seq. */
    bool chained = false;
    for (size_t i = 0; i < n; i++)
        chained |= v[i].prev_seq != 0 || v[i].seq == 1;
    if (!chained && n > 0)
        expect = v[0].seq;
    for (size_t i = 0; i < n; i++) {
        uint64_t lo = expect, hi = v[i].seq; /* [lo, hi) are candidates */
        /* Numbers after prev_seq were declared never written (a crash or a
         * failed write burnt them); numbers up to prev_seq are real bundles
         * and must arrive. (This used to count the declared ones as gaps
         * whenever prev_seq was the bundle just before: faults.sh, a full
         * outbox burning seqs.) */
        if (v[i].prev_seq != 0 && v[i].prev_seq + 1 < hi)
            hi = v[i].prev_seq + 1;
        /* in a chain, prev_seq 0 says no bundle was completed before */
        if (chained && v[i].prev_seq == 0)
            hi = lo;
        if (hi > lo) {
            missing += hi - lo;
            if (list != NULL && used + 48 < cap)
                used += (size_t)snprintf(list + used, cap - used,
                                         hi - lo == 1 ? "%s%" PRIu64 : "%s%" PRIu64 "-%" PRIu64,
                                         used ? ", " : "", lo, hi - 1);
        }
        expect = v[i].seq + 1;
    }
    return missing;
}

int pf_importer_count_gaps(pf_importer *imp, pf_import_counts *c, pf_err *e)
{
    struct seqlist l = {0};
    if (pf_db_query(&imp->db, e, seq_row, &l,
                    "SELECT sensor, seq, prev_seq FROM bundles ORDER BY sensor, seq", "") != 0) {
        free(l.v);
        return -1;
    }
    c->gaps = 0;
    for (size_t i = 0; i < l.n;) {
        size_t j = i;
        while (j < l.n && strcmp(l.v[j].sensor, l.v[i].sensor) == 0)
            j++;
        c->gaps += sensor_gaps(&l.v[i], j - i, NULL, 0);
        i = j;
    }
    free(l.v);
    return 0;
}

struct status_ctx {
    pf_sensor_status *v;
    size_t n, cap;
};

static pf_sensor_status *status_for(struct status_ctx *s, const char *sensor, pf_err *e)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i].sensor, sensor) == 0)
            return &s->v[i];
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 8;
        pf_sensor_status *g = realloc(s->v, cap * sizeof *g);
        if (g == NULL) {
            pf_err_set(e, PF_EENV, "out of memory");
            return NULL;
        }
        s->v = g;
        s->cap = cap;
    }
    pf_sensor_status *r = &s->v[s->n++];
    memset(r, 0, sizeof *r);
    snprintf(r->sensor, sizeof r->sensor, "%s", sensor);
    return r;
}

static int status_bundles(void *ctx, sqlite3_stmt *st, pf_err *e)
{
    pf_sensor_status *r = status_for(ctx, pf_db_text(st, 0), e);
    if (r == NULL)
        return -1;
    r->last_seq = (uint64_t)sqlite3_column_int64(st, 1);
    r->bundles = (uint64_t)sqlite3_column_int64(st, 2);
    r->files = (uint64_t)sqlite3_column_int64(st, 3);
    r->packets = (uint64_t)sqlite3_column_int64(st, 4);
    r->bytes = (uint64_t)sqlite3_column_int64(st, 5);
    r->first_ts = sqlite3_column_int64(st, 6);
    r->last_ts = sqlite3_column_int64(st, 7);
    r->drops = (uint64_t)sqlite3_column_int64(st, 8);
    return 0;
}

static int status_counts(void *ctx, sqlite3_stmt *st, pf_err *e)
{
    pf_sensor_status *r = status_for(ctx, pf_db_text(st, 0), e);
    if (r == NULL)
        return -1;
    if (sqlite3_column_int(st, 2) == 0)
        r->quarantined = (uint64_t)sqlite3_column_int64(st, 1);
    else
        r->held = (uint64_t)sqlite3_column_int64(st, 1);
    return 0;
}

int pf_import_status(const char *state_dir, pf_sensor_status **out, size_t *n, pf_err *e)
{
    pf_db db;
    struct status_ctx s = {0};
    struct seqlist l = {0};
    char path[PATH_MAX];
    int rc = -1;
    *out = NULL;
    *n = 0;
    if (pf_path_join(path, sizeof path, state_dir, "pcapferry.db", e) != 0)
        return -1;
    if (access(path, F_OK) != 0)
        return pf_err_set(e, PF_EUSAGE, "%s: no import state here yet", state_dir);
    if (pf_db_open(&db, state_dir, e) != 0)
        return -1;
    if (pf_db_query(&db, e, status_bundles, &s,
                    "SELECT sensor, MAX(seq), COUNT(*), SUM(files), SUM(packets), SUM(bytes), "
                    "MIN(NULLIF(first_ts, 0)), MAX(last_ts), SUM(drops) FROM bundles "
                    "GROUP BY sensor ORDER BY sensor",
                    "") != 0 ||
        pf_db_query(&db, e, status_counts, &s,
                    "SELECT COALESCE(sensor, 'unknown'), COUNT(*), 0 FROM rejections GROUP BY 1 "
                    "UNION ALL SELECT sensor, COUNT(*), 1 FROM deliveries WHERE state = 'held' "
                    "GROUP BY sensor",
                    "") != 0 ||
        pf_db_query(&db, e, seq_row, &l,
                    "SELECT sensor, seq, prev_seq FROM bundles ORDER BY sensor, seq", "") != 0)
        goto out;
    for (size_t i = 0; i < l.n;) {
        size_t j = i;
        while (j < l.n && strcmp(l.v[j].sensor, l.v[i].sensor) == 0)
            j++;
        pf_sensor_status *r = status_for(&s, l.v[i].sensor, e);
        if (r == NULL)
            goto out;
        r->ngaps = sensor_gaps(&l.v[i], j - i, r->gaps, sizeof r->gaps);
        i = j;
    }
    *out = s.v;
    *n = s.n;
    s.v = NULL;
    rc = 0;
out:
    free(s.v);
    free(l.v);
    pf_db_close(&db);
    return rc;
}
