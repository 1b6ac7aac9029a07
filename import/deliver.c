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
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/fsutil.h"
#include "import/arkime.h"
#include "import/arkime_socket.h"

/* ---------- delivery ---------- */

static void settle(pf_importer *imp);

int imp_open_sensor_dir(pf_importer *imp, const char *sensor, bool *created, pf_err *e)
{
    char path[PATH_MAX];
    *created = false;
    if (pf_path_join(path, sizeof path, imp->o.ingest_dir, sensor, e) != 0)
        return -1;
    /* 0770: under the setgid, group-arkime ingest directory of the
     * documented layout (docs/DEPLOY.md, Permissions) Arkime reads and, with
     * --copy --delete, removes; nobody else gets in. */
    if (mkdir(path, 0770) == 0) {
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

int imp_exec_and_record(pf_importer *imp, const char *sensor, uint64_t seq, int64_t nth,
                        const char *final, pf_import_counts *c, pf_err *e)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s/%s", imp->o.ingest_dir, sensor, final);
    int st = run_exec(imp, path, sensor, seq);
    if (st != 0) {
        c->exec_failures++;
        imp_event(imp, PF_EV_WARN, "file=%s exec_status=%d (retried on the next run)", path, st);
    }
    return pf_db_exec(
        &imp->db, e,
        "UPDATE deliveries SET exec_status = ?, exec_attempts = MAX(exec_attempts, 0) + 1 "
        "WHERE sensor = ? AND seq = ? AND n = ?",
        "isui", (int64_t)st, sensor, seq, nth);
}

/* A delivered file's access time is set to this mark before it gets its
 * final name; Arkime's first read moves it (relatime updates an atime older
 * than the mtime), so after a crash the file itself says whether Arkime
 * took it. */
#define ATIME_MARK 0

static bool atime_moved(int dirfd, const char *final)
{
    struct stat st;
    if (fstatat(dirfd, final, &st, AT_SYMLINK_NOFOLLOW) != 0)
        return false;
    return st.st_atim.tv_sec != ATIME_MARK || st.st_atim.tv_nsec != 0;
}

/* After a crash with the announcement begun: did Arkime take the file?
 * Gone (--copy --delete) or read (atime moved) says yes; an untouched file
 * may still sit in capture's queue, so give it up to --settle-ms. */
static bool arkime_took(pf_importer *imp, int dirfd, const char *final)
{
    if (faccessat(dirfd, final, F_OK, AT_SYMLINK_NOFOLLOW) != 0 && errno == ENOENT)
        return true;
    for (long waited = 0;; waited += 50) {
        if (atime_moved(dirfd, final))
            return true;
        if (waited >= imp->o.settle_ms)
            return false;
        struct timespec ts = {0, 50 * 1000000L};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
            ;
    }
}

/* Monitor mode: open/close makes the IN_CLOSE_WRITE capture waits for.
 * With the command socket, capture says when it has read the file. */
static int announce(pf_importer *imp, int dirfd, const char *sensor, uint64_t seq, int64_t nth,
                    const char *final, pf_err *e)
{
    if (imp->o.arkime_socket == NULL)
        return pf_arkime_announce(dirfd, final, e);
    char path[PATH_MAX];
    uint64_t packets;
    bool refused;
    if (snprintf(path, sizeof path, "%s/%s/%s", imp->o.ingest_dir, sensor, final) >=
        (int)sizeof path)
        return pf_err_set(e, PF_EUSAGE, "%s/%s/%s: path too long", imp->o.ingest_dir, sensor,
                          final);
    if (pf_arkime_socket_add(imp->o.arkime_socket, path, PF_ARKIME_SOCKET_TIMEOUT_S, &packets,
                             &refused, e) != 0) {
        if (refused) {
            /* capture did not take it: the next run hands it over again,
             * without the doubt of a begun announcement */
            pf_err ignore;
            pf_err_clear(&ignore);
            (void)pf_db_exec(&imp->db, &ignore,
                             "DELETE FROM announcing WHERE sensor = ? AND seq = ? AND n = ?", "sui",
                             sensor, seq, nth);
        }
        return -1;
    }
    imp_event(imp, PF_EV_DEBUG, "file=%s arkime=file-done packets=%" PRIu64, path, packets);
    return 0;
}

static int announcing_count(void *ctx, sqlite3_stmt *st, pf_err *e)
{
    (void)e;
    *(int64_t *)ctx = sqlite3_column_int64(st, 0);
    return 0;
}

/* The last step for one file: staged -> atime mark -> final name ->
 * "announcing" recorded -> announced -> delivered. Safe to repeat after a
 * crash at any point (see docs/IMPORT.md, "Crash windows"): only a crash
 * between the "announcing" commit and the "delivered" one leaves a doubt,
 * and then the file's atime (or its absence) tells whether Arkime took it. */
int imp_finish_delivery(pf_importer *imp, int dirfd, const char *sensor, uint64_t seq, int64_t nth,
                        const char *stage, const char *final, bool *announced_again, pf_err *e)
{
    *announced_again = false;
    const struct timespec mark[2] = {{ATIME_MARK, 0}, {0, UTIME_OMIT}};
    if (utimensat(dirfd, stage, mark, AT_SYMLINK_NOFOLLOW) != 0 && errno != ENOENT)
        return pf_err_sys(e, errno, "%s/%s/%s: cannot mark the staged file", imp->o.ingest_dir,
                          sensor, stage);
    if (pf_rename_noreplace(dirfd, stage, dirfd, final) != 0) {
        int err = errno;
        bool stage_there = faccessat(dirfd, stage, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
        bool final_there = faccessat(dirfd, final, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
        if (err != ENOENT || stage_there)
            return pf_err_sys(e, err, "%s/%s/%s: cannot deliver", imp->o.ingest_dir, sensor, final);
        /* renamed by the run that was killed */
        int64_t begun = 0;
        if (pf_db_query(&imp->db, e, announcing_count, &begun,
                        "SELECT COUNT(*) FROM announcing WHERE sensor = ? AND seq = ? AND n = ?",
                        "sui", sensor, seq, nth) != 0)
            return -1;
        if (!final_there || (begun > 0 && arkime_took(imp, dirfd, final)))
            goto record; /* consumed (--copy --delete) or read by Arkime */
        if (begun > 0) {
            /* killed between the "announcing" commit and the open(), or
             * Arkime has not read the file yet: err on announcing again */
            *announced_again = true;
            goto announce;
        }
    }
    if (pf_fsync_dirfd(dirfd, final, e) != 0)
        return -1;
    pf_failpoint("import-renamed");
    if (pf_db_exec(&imp->db, e,
                   "INSERT OR IGNORE INTO announcing (sensor, seq, n) VALUES (?, ?, ?)", "sui",
                   sensor, seq, nth) != 0)
        return -1;
    pf_failpoint("import-announcing");
announce:
    if (announce(imp, dirfd, sensor, seq, nth, final, e) != 0)
        return -1;
    pf_failpoint("import-announced");
record:
    if (pf_db_begin(&imp->db, e) != 0)
        return -1;
    if (pf_db_exec(&imp->db, e,
                   "UPDATE deliveries SET state = 'delivered' WHERE sensor = ? AND seq = ? "
                   "AND n = ?",
                   "sui", sensor, seq, nth) != 0 ||
        pf_db_exec(&imp->db, e, "DELETE FROM announcing WHERE sensor = ? AND seq = ? AND n = ?",
                   "sui", sensor, seq, nth) != 0 ||
        pf_db_commit(&imp->db, e) != 0) {
        pf_db_rollback(&imp->db);
        return -1;
    }
    return 0;
}

/* flags: PF_AW_NO_SYNC in a batch, whose syncfs makes these durable before
 * the intent that relies on them is committed (a crash before that commit
 * leaves no row, and the next run writes them again). */
static int save_provenance(pf_importer *imp, const pf_extracted *x, unsigned flags, pf_err *e)
{
    char dir[PATH_MAX], name[NAME_MAX + 1];
    int dfd = -1, rc = -1;
    snprintf(dir, sizeof dir, "%s/manifests/%s", imp->o.state_dir, x->hdr.sensor);
    struct stat dst;
    /* a directory removed meanwhile (import --watch runs for months) would
     * swallow what is written into it: made again */
    if (imp->prov_fd >= 0 && strcmp(imp->prov_sensor, x->hdr.sensor) == 0 &&
        fstat(imp->prov_fd, &dst) == 0 && dst.st_nlink > 0) {
        dfd = imp->prov_fd;
    } else {
        if (pf_mkdir_p(dir, 0750, e) != 0)
            return -1;
        dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
            return pf_err_sys(e, errno, "%s: cannot open directory", dir);
        if (imp->prov_fd >= 0)
            close(imp->prov_fd);
        imp->prov_fd = dfd;
        snprintf(imp->prov_sensor, sizeof imp->prov_sensor, "%s", x->hdr.sensor);
    }
    snprintf(name, sizeof name, "%s-%010" PRIu64 ".manifest.json", x->hdr.sensor, x->hdr.seq);
    if (pf_atomic_write_flags(dfd, dir, name, x->manifest_raw, x->manifest_len, 0640, flags, e) !=
        0)
        goto out;
    snprintf(name, sizeof name, "%s-%010" PRIu64 ".manifest.sig", x->hdr.sensor, x->hdr.seq);
    if (pf_atomic_write_flags(dfd, dir, name, x->manifest_sig, PF_SIG_BYTES, 0640, flags, e) != 0)
        goto out;
    /* The header completes the proof: the manifest names its hash. */
    snprintf(name, sizeof name, "%s-%010" PRIu64 ".header", x->hdr.sensor, x->hdr.seq);
    if (pf_atomic_write_flags(dfd, dir, name, x->hdr.raw, x->hdr.raw_len, 0640, flags, e) != 0)
        goto out;
    rc = 0;
out:
    return rc;
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

/* What one manifest file turns into: one row of the deliveries table
 * each. A file delivered as it is, trimmed, converted, held or empty is one
 * out; a split pcapng is one out per interface delivered. */
struct out {
    size_t file; /* manifest index */
    int gate;    /* DELIVER, TRIM, CONVERT: something is delivered; HOLD, EMPTY: not */
    long iface;  /* pcapng interface in file order, or -1 */
    char stage[PF_STAGE_NAME_MAX + 16];
    char final[NAME_MAX + 1];
    char reason[1024];
    char held_as[PATH_MAX]; /* HOLD: the held file; otherwise the original kept as evidence */
    uint64_t packets, bytes, trim_bytes, trim_packets;
    int64_t link_type; /* -1: none */
};

struct outs {
    struct out *v;
    size_t n, cap;
};

static struct out *out_add(struct outs *l, size_t file, pf_err *e)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 8;
        struct out *g = realloc(l->v, cap * sizeof *g);
        if (g == NULL) {
            pf_err_set(e, PF_EENV, "out of memory");
            return NULL;
        }
        l->v = g;
        l->cap = cap;
    }
    struct out *o = &l->v[l->n++];
    memset(o, 0, sizeof *o);
    o->file = file;
    o->iface = -1;
    o->link_type = -1;
    return o;
}

/* The first len bytes of a staged file, as a new staged file. */
static int copy_prefix(int dirfd, const char *from, const char *to, uint64_t len, pf_err *e)
{
    uint8_t *buf = malloc(256 * 1024);
    int in = -1, out = -1, rc = -1;
    uint64_t off = 0;
    if (buf == NULL) {
        pf_err_set(e, PF_EENV, "out of memory");
        goto done;
    }
    in = openat(dirfd, from, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    out = openat(dirfd, to, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (in < 0 || out < 0) {
        pf_err_sys(e, errno, "%s: cannot stage the trimmed capture", to);
        goto done;
    }
    while (off < len) {
        size_t want = len - off < 256 * 1024 ? (size_t)(len - off) : 256 * 1024;
        ssize_t r = pread(in, buf, want, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            pf_err_sys(e, r < 0 ? errno : EIO, "%s: read failed", from);
            goto done;
        }
        if (pf_write_all(out, buf, (size_t)r, to, e) != 0)
            goto done;
        off += (uint64_t)r;
    }
    if (fsync(out) != 0) {
        pf_err_sys(e, errno, "%s: fsync failed", to);
        goto done;
    }
    rc = 0;
done:
    if (out >= 0 && close(out) != 0 && rc == 0)
        rc = pf_err_sys(e, errno, "%s: close failed", to);
    if (in >= 0)
        close(in);
    if (rc != 0)
        unlinkat(dirfd, to, 0);
    free(buf);
    return rc;
}

/* Checks a file the importer wrote itself (a trimmed or converted capture)
 * the way the extraction pass checks what arrived: what reaches Arkime
 * passes the same gate whoever wrote it. */
static int recheck(int dirfd, const char *name, bool read_truncated, pf_pcapcheck *k, char *reason,
                   size_t cap, pf_err *e)
{
    int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 || pf_pcapcheck_fd(k, fd) != 0) {
        int err = errno;
        if (fd >= 0)
            close(fd);
        return pf_err_sys(e, err, "%s: cannot read back", name);
    }
    close(fd);
    return (int)pf_arkime_gate(k, read_truncated, reason, cap);
}

static void appendf(char *buf, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void appendf(char *buf, size_t cap, const char *fmt, ...)
{
    size_t len = strlen(buf);
    if (len + 1 >= cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + len, cap - len, fmt, ap);
    va_end(ap);
}

static int hold(pf_importer *imp, int dirfd, const pf_header *h, size_t i, const char *stage,
                const char *orig, const char *reason, char *held_as, size_t cap, pf_err *e)
{
    return imp_hold_file(imp, dirfd, h->sensor, h->seq, i + 1, stage, orig, reason, held_as, cap,
                         e);
}

/* A pcapng: one classic pcap per interface Arkime reads (capture refuses
 * a pcapng with several interfaces, and the 6.x viewer reads no pcapng).
 * Interfaces Arkime does not read, and anything the conversion could not
 * carry, are named in the reason kept beside the held original. */
static int plan_pcapng(pf_importer *imp, int dirfd, const pf_extracted *x, size_t i,
                       const char *when, struct outs *l, pf_import_counts *c, pf_err *e)
{
    const pf_header *h = &x->hdr;
    const char *name = x->manifest->files[i].name;
    char prefix[PF_SPLIT_STAGE_MAX - 16], notes[768] = "", why[512];
    pf_split *sp = malloc(sizeof *sp);
    size_t first = l->n, parts = 0, with_packets = 0;
    int rc = -1;
    if (sp == NULL)
        return pf_err_set(e, PF_EENV, "out of memory");
    snprintf(prefix, sizeof prefix, "%s%010" PRIu64 "-%zu-if", STAGE_PREFIX, h->seq, i);
    if (pf_pcapng_split(dirfd, x->staged[i], prefix, sp, name, e) != 0)
        goto done;
    for (size_t j = 0; j < sp->nifaces; j++) {
        pf_split_iface *f = &sp->ifaces[j];
        with_packets += f->packets > 0;
        if (f->packets > 0 && !pf_arkime_link_type_ok(f->link_type))
            appendf(notes, sizeof notes,
                    "; interface %zu: link type %" PRIu32 " (%" PRIu64
                    " packets) is not one Arkime reads: not delivered",
                    j, f->link_type, f->packets);
        if (!f->written)
            continue;
        pf_pcapcheck k;
        int g = recheck(dirfd, f->out_name, imp->o.read_truncated, &k, why, sizeof why, e);
        if (g < 0)
            goto done;
        if (f->bad_ts > 0) {
            g = PF_GATE_HOLD;
            snprintf(why, sizeof why,
                     "%" PRIu64 " timestamps before 1970 or after 2106, which classic pcap "
                     "cannot hold",
                     f->bad_ts);
        }
        if (g != PF_GATE_DELIVER) {
            appendf(notes, sizeof notes, "; interface %zu (%" PRIu64 " packets): %s", j, f->packets,
                    why);
            unlinkat(dirfd, f->out_name, 0);
            f->written = false;
            continue;
        }
        struct out *o = out_add(l, i, e);
        if (o == NULL)
            goto done;
        o->gate = PF_GATE_CONVERT;
        o->iface = (long)j;
        snprintf(o->stage, sizeof o->stage, "%s", f->out_name);
        o->packets = k.records;
        o->bytes = k.size;
        o->link_type = (int64_t)k.link_type_raw;
        parts++;
    }
    if (sp->secrets > 0)
        appendf(notes, sizeof notes,
                "; %" PRIu64 " decryption secrets block(s) (TLS or QUIC keys) cannot travel in "
                "classic pcap: they are in the held original",
                sp->secrets);
    if (sp->damaged)
        appendf(notes, sizeof notes, "; read up to offset %" PRIu64 ", where %s", sp->good_end,
                sp->damage);
    if (sp->cut_bytes > 0)
        appendf(notes, sizeof notes,
                "; last block cut off: %" PRIu64 " bytes after offset %" PRIu64
                " left out (Arkime reads up to it)",
                sp->cut_bytes, sp->good_end);
    if (parts == 0) {
        struct out *o = out_add(l, i, e);
        if (o == NULL)
            goto done;
        snprintf(o->final, sizeof o->final, "%s-%010" PRIu64 "-%zu-%s.pcap", h->sensor, h->seq,
                 i + 1, when);
        if (sp->packets == 0 && !sp->damaged && sp->cut_bytes == 0) {
            o->gate = PF_GATE_EMPTY;
            snprintf(o->reason, sizeof o->reason, "no packets");
            unlinkat(dirfd, x->staged[i], 0);
            c->files_empty++;
        } else {
            o->gate = PF_GATE_HOLD;
            snprintf(o->reason, sizeof o->reason, "pcapng with nothing Arkime can read%s",
                     notes[0] ? notes : "");
            if (hold(imp, dirfd, h, i, x->staged[i], name, o->reason, o->held_as, sizeof o->held_as,
                     e) != 0)
                goto done;
            c->files_held++;
            imp_event(imp, PF_EV_WARN, "sensor=%s seq=%" PRIu64 " file=%s held=%s reason=\"%s\"",
                      h->sensor, h->seq, name, o->held_as, o->reason);
        }
        rc = 0;
        goto done;
    }
    /* Named by interface only when packets came from several: a single
     * interface keeps the name a classic pcap would get. */
    bool split = with_packets > 1;
    for (size_t n = first; n < l->n; n++) {
        struct out *o = &l->v[n];
        if (!split)
            o->iface = -1;
        if (!split)
            snprintf(o->final, sizeof o->final, "%s-%010" PRIu64 "-%zu-%s.pcap", h->sensor, h->seq,
                     i + 1, when);
        else
            snprintf(o->final, sizeof o->final, "%s-%010" PRIu64 "-%zu-if%ld-%s.pcap", h->sensor,
                     h->seq, i + 1, o->iface, when);
    }
    c->files_converted++;
    if (!split && notes[0] == '\0') {
        /* one interface, every packet carried: as before, the signed
         * original stays described by the manifest kept in the state */
        unlinkat(dirfd, x->staged[i], 0);
        rc = 0;
        goto done;
    }
    /* Split or partly carried: the signed original is kept, held. */
    char reason[1024] = "", held_as[PATH_MAX];
    snprintf(reason, sizeof reason, "pcapng delivered as %zu classic pcap%s", parts,
             parts > 1 ? "s" : "");
    if (split) {
        appendf(reason, sizeof reason, " (interface%s", parts > 1 ? "s" : "");
        for (size_t n = first; n < l->n; n++)
            appendf(reason, sizeof reason, "%s %ld", n > first ? "," : "", l->v[n].iface);
        appendf(reason, sizeof reason, ")");
    }
    appendf(reason, sizeof reason, "%s; this is the signed original", notes);
    if (hold(imp, dirfd, h, i, x->staged[i], name, reason, held_as, sizeof held_as, e) != 0)
        goto done;
    for (size_t n = first; n < l->n; n++) {
        snprintf(l->v[n].held_as, sizeof l->v[n].held_as, "%s", held_as);
        snprintf(l->v[n].reason, sizeof l->v[n].reason, "%s", reason);
    }
    l->v[first].trim_bytes = sp->cut_bytes;
    l->v[first].trim_packets = sp->cut_bytes > 0;
    c->files_split += split;
    imp_event(imp, PF_EV_WARN, "sensor=%s seq=%" PRIu64 " file=%s original_held=%s note=\"%s\"",
              h->sensor, h->seq, name, held_as, reason);
    rc = 0;
done:
    if (rc != 0) {
        for (size_t j = 0; j < sp->nifaces; j++)
            if (sp->ifaces[j].written)
                unlinkat(dirfd, sp->ifaces[j].out_name, 0);
        l->n = first;
    }
    free(sp);
    return rc;
}

/* Decides, from the bytes, what becomes of manifest file i. */
static int plan_file(pf_importer *imp, int dirfd, const pf_extracted *x, size_t i, struct plan *p,
                     struct outs *l, pf_import_counts *c, pf_err *e)
{
    const pf_header *h = &x->hdr;
    const pf_manifest_file *mf = &x->manifest->files[i];
    const pf_pcapcheck *k = &x->checks[i];
    char when[32];
    /* names only: the sensor's claimed first timestamp, or the bundle's */
    pf_compact_time(when, sizeof when,
                    mf->info.have_ts && mf->info.first_ns >= 0 ? mf->info.first_ns : h->created_ns);
    snprintf(p->stage, sizeof p->stage, "%s", x->staged[i]);
    p->gate = (int)pf_arkime_gate(k, imp->o.read_truncated, p->reason, sizeof p->reason);
    snprintf(p->final, sizeof p->final, "%s-%010" PRIu64 "-%zu-%s.pcap", h->sensor, h->seq, i + 1,
             when);
    if (p->gate == PF_GATE_CONVERT)
        return plan_pcapng(imp, dirfd, x, i, when, l, c, e);
    struct out *o = out_add(l, i, e);
    if (o == NULL)
        return -1;
    o->gate = p->gate;
    snprintf(o->final, sizeof o->final, "%s", p->final);
    snprintf(o->reason, sizeof o->reason, "%s", p->reason);
    o->link_type = k->format == PF_PCAPCHECK_PCAP ? (int64_t)k->link_type_raw : -1;
    switch (p->gate) {
    case PF_GATE_DELIVER:
        snprintf(o->stage, sizeof o->stage, "%s", x->staged[i]);
        o->packets = k->records;
        o->bytes = k->size;
        return 0;
    case PF_GATE_EMPTY:
        unlinkat(dirfd, x->staged[i], 0);
        c->files_empty++;
        return 0;
    case PF_GATE_HOLD:
        if (hold(imp, dirfd, h, i, x->staged[i], mf->name, o->reason, o->held_as, sizeof o->held_as,
                 e) != 0)
            return -1;
        snprintf(p->held_as, sizeof p->held_as, "%s", o->held_as);
        c->files_held++;
        imp_event(imp, PF_EV_WARN, "sensor=%s seq=%" PRIu64 " file=%s held=%s reason=\"%s\"",
                  h->sensor, h->seq, mf->name, o->held_as, o->reason);
        return 0;
    case PF_GATE_TRIM:
        break;
    }
    /* Deliver the file cut at its last complete record; its hash then
     * differs from the signed one, so the original is held beside it. */
    pf_pcapcheck t;
    char why[512];
    snprintf(o->stage, sizeof o->stage, "%s%010" PRIu64 "-%zu.trim.part", STAGE_PREFIX, h->seq, i);
    if (copy_prefix(dirfd, x->staged[i], o->stage, k->good_end, e) != 0)
        goto fail;
    int g = recheck(dirfd, o->stage, imp->o.read_truncated, &t, why, sizeof why, e);
    if (g < 0)
        goto fail;
    if (g != PF_GATE_DELIVER || t.records != k->records) {
        pf_err_set(e, PF_EENV, "%s: the trimmed copy does not read back whole (%s)", mf->name, why);
        goto fail;
    }
    if (hold(imp, dirfd, h, i, x->staged[i], mf->name, o->reason, o->held_as, sizeof o->held_as,
             e) != 0)
        goto fail;
    o->packets = t.records;
    o->bytes = t.size;
    o->trim_bytes = k->cut_bytes;
    o->trim_packets = k->cut_header;
    c->files_trimmed++;
    imp_event(imp, PF_EV_WARN,
              "sensor=%s seq=%" PRIu64 " file=%s trimmed_bytes=%" PRIu64 " trimmed_packets=%" PRIu64
              " original_held=%s reason=\"%s\"",
              h->sensor, h->seq, mf->name, o->trim_bytes, o->trim_packets, o->held_as, o->reason);
    return 0;
fail:
    unlinkat(dirfd, o->stage, 0);
    l->n--;
    return -1;
}

/* Plans every manifest file of x into l (gate, convert, hold). */
static int plan_bundle(pf_importer *imp, int dirfd, pf_extracted *x, struct plan *plan,
                       struct outs *l, pf_import_counts *c, pf_err *e)
{
    for (size_t i = 0; i < x->manifest->nfiles; i++)
        if (plan_file(imp, dirfd, x, i, &plan[i], l, c, e) != 0)
            return -1;
    return 0;
}

/* The intent rows of one bundle, inside the caller's transaction: every
 * file it delivers gets its n (1, 2, ... in manifest and interface order)
 * and final name here, so a rerun after a crash finds the same ones. */
static int record_intent(pf_importer *imp, const struct candidate *cand, const pf_extracted *x,
                         const struct outs *lp, pf_err *e)
{
    const pf_manifest *m = x->manifest;
    const pf_header *h = &x->hdr;
    const struct outs l = *lp;
    char hh[65], bh[65], ph[65], fhex[65];
    uint64_t packets = 0, bytes = 0;
    int64_t first = 0, last = 0;
    bool have_ts = false;

    for (size_t i = 0; i < m->nfiles; i++) {
        const pf_pcapinfo *f = &m->files[i].info;
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
    imp_hex32(hh, h->hash);
    imp_hex32(bh, x->bundle_hash);
    imp_hex32(ph, h->prev_hash);
    if (pf_db_exec(
            &imp->db, e,
            "INSERT INTO bundles (sensor, seq, header_hash, bundle_hash, prev_seq, "
            "prev_hash, status, source, imported_at, files, packets, bytes, first_ts, "
            "last_ts, drops) VALUES (?, ?, ?, ?, ?, ?, 'delivering', ?, ?, ?, ?, ?, ?, ?, ?)",
            "sussussiuuuiiu", h->sensor, h->seq, hh, bh, h->prev_seq, h->prev_seq ? ph : NULL,
            cand->path, imp_now_s(), (uint64_t)m->nfiles, packets, bytes, have_ts ? first : 0,
            have_ts ? last : 0, manifest_drops(m)) != 0)
        return -1;
    for (size_t n = 0; n < l.n; n++) {
        const struct out *o = &l.v[n];
        bool delivers = o->gate != PF_GATE_HOLD && o->gate != PF_GATE_EMPTY;
        const char *state = o->gate == PF_GATE_HOLD    ? "held"
                            : o->gate == PF_GATE_EMPTY ? "empty"
                                                       : "staged";
        imp_hex32(fhex, m->files[o->file].info.blake2b);
        if (pf_db_exec(&imp->db, e,
                       "INSERT INTO deliveries (sensor, seq, n, name, stage, final, state, "
                       "blake2b, converted, reason, exec_status, exec_attempts, packets, "
                       "trim_bytes, trim_packets, interface, link_type, evidence) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?, ?, ?, ?, ?)",
                       "suisssssisiuuuiis", h->sensor, h->seq, (int64_t)n + 1,
                       m->files[o->file].name, delivers ? o->stage : "", o->final, state, fhex,
                       (int64_t)(o->gate == PF_GATE_CONVERT), o->reason[0] ? o->reason : NULL,
                       (int64_t)(imp->o.exec_argv != NULL && delivers ? -1 : 0),
                       delivers ? o->packets : 0, o->trim_bytes, o->trim_packets, (int64_t)o->iface,
                       o->link_type, delivers && o->held_as[0] ? o->held_as : NULL) != 0)
            return -1;
    }
    return pf_db_exec(&imp->db, e,
                      "UPDATE deliveries SET interface = NULLIF(interface, -1), "
                      "link_type = NULLIF(link_type, -1) WHERE sensor = ? AND seq = ?",
                      "su", h->sensor, h->seq);
}

static void log_delivered(pf_importer *imp, const pf_header *h, const struct out *o)
{
    char extra[PATH_MAX + 128] = "";
    if (o->gate == PF_GATE_CONVERT)
        appendf(extra, sizeof extra, " converted=pcapng");
    if (o->iface >= 0 && o->held_as[0])
        appendf(extra, sizeof extra, " interface=%ld", o->iface);
    if (o->trim_bytes > 0)
        appendf(extra, sizeof extra, " trimmed_bytes=%" PRIu64 " trimmed_packets=%" PRIu64,
                o->trim_bytes, o->trim_packets);
    if (o->held_as[0])
        appendf(extra, sizeof extra, " original_held=%s", o->held_as);
    imp_event(imp, PF_EV_INFO, "sensor=%s seq=%" PRIu64 " delivered=%s/%s/%s packets=%" PRIu64 "%s",
              h->sensor, h->seq, imp->o.ingest_dir, h->sensor, o->final, o->packets, extra);
}

/* Everything after a successful extraction: gate, convert, hold, record,
 * deliver, each step durable before the next (--batch 1). On failure the
 * caller removes what is still staged. */
int imp_deliver_bundle(pf_importer *imp, const struct candidate *cand, int dirfd, pf_extracted *x,
                       struct plan *plan, pf_import_counts *c, pf_err *e)
{
    const pf_header *h = &x->hdr;
    bool recorded = false;
    struct outs l = {0};
    int rc = -1;

    if (plan_bundle(imp, dirfd, x, plan, &l, c, e) != 0)
        goto out;
    pf_failpoint("import-staged");
    if (save_provenance(imp, x, 0, e) != 0)
        goto out;
    /* One transaction records the intent for the whole bundle. */
    if (pf_db_begin(&imp->db, e) != 0)
        goto out;
    if (record_intent(imp, cand, x, &l, e) != 0 || pf_db_commit(&imp->db, e) != 0)
        goto rollback;
    recorded = true;
    pf_failpoint("import-intent");

    for (size_t n = 0; n < l.n; n++) {
        struct out *o = &l.v[n];
        bool again;
        if (o->gate == PF_GATE_HOLD || o->gate == PF_GATE_EMPTY)
            continue;
        if (imp_finish_delivery(imp, dirfd, h->sensor, h->seq, (int64_t)n + 1, o->stage, o->final,
                                &again, e) != 0)
            goto out;
        o->stage[0] = '\0';
        c->files_delivered++;
        c->bytes_delivered += o->bytes;
        log_delivered(imp, h, o);
    }
    pf_failpoint("import-delivered");
    if (pf_db_exec(&imp->db, e,
                   "UPDATE bundles SET status = 'committed' WHERE sensor = ? AND seq = ?", "su",
                   h->sensor, h->seq) != 0)
        goto out;
    if (imp->o.exec_argv != NULL)
        for (size_t n = 0; n < l.n; n++)
            if (l.v[n].gate != PF_GATE_HOLD && l.v[n].gate != PF_GATE_EMPTY)
                if (imp_exec_and_record(imp, h->sensor, h->seq, (int64_t)n + 1, l.v[n].final, c,
                                        e) != 0)
                    goto out;
    rc = 0;
    goto out;
rollback:
    pf_db_rollback(&imp->db);
out:
    if (rc != 0 && !recorded)
        /* files this stage made; the caller removes the extracted ones */
        for (size_t n = 0; n < l.n; n++)
            if (l.v[n].stage[0] != '\0' && strcmp(l.v[n].stage, x->staged[l.v[n].file]) != 0)
                unlinkat(dirfd, l.v[n].stage, 0);
    free(l.v);
    return rc;
}

/* ---------- group commit (--batch N, N > 1) ----------
 *
 * The same steps and database states as imp_deliver_bundle, each taken for
 * a batch of bundles at once, so that one flush covers the batch where the
 * per-bundle path pays one per file and step:
 *   1. each bundle is extracted and planned, its staged files and
 *      provenance written without fsync (imp_batch_add);
 *   2. syncfs of the ingest and state filesystems: every staged file and
 *      provenance file is durable before any intent names it;
 *   3. one transaction records the intents of every bundle;
 *   4. every staged file gets its atime mark and final name, in (sensor,
 *      seq, n) order; one syncfs makes the renames durable;
 *   5. one transaction records "announcing" for every file;
 *   6. every file is announced, in the same order;
 *   7. one transaction records every file delivered and every bundle
 *      committed; then --exec runs, receipts are noted, sources deleted.
 * A crash between any two steps leaves the rows imp_recover finishes file
 * by file, exactly as after a crash in the per-bundle path: no row before
 * step 3 (the next run removes the staged files and starts over), rows
 * 'staged' after it, 'announcing' rows only for files whose announcement
 * may have begun. syncfs also writes back whatever else is dirty on those
 * filesystems: the price of one flush instead of one per file. */

struct batch_item {
    const struct candidate *cand;
    struct imp_source src; /* fd owned: the source is deleted after commit */
    int dirfd;             /* INGEST/<sensor>, owned */
    pf_extracted x;
    struct outs l;
};

struct imp_batch {
    struct batch_item *v;
    size_t n, cap;
    uint64_t bytes; /* staged so far */
};

size_t imp_batch_len(const pf_importer *imp)
{
    return imp->batch != NULL ? imp->batch->n : 0;
}

uint64_t imp_batch_bytes(const pf_importer *imp)
{
    return imp->batch != NULL ? imp->batch->bytes : 0;
}

bool imp_batch_has(const pf_importer *imp, const char *sensor, uint64_t seq)
{
    for (size_t i = 0; i < imp_batch_len(imp); i++)
        if (imp->batch->v[i].x.hdr.seq == seq && strcmp(imp->batch->v[i].x.hdr.sensor, sensor) == 0)
            return true;
    return false;
}

static void item_free(struct batch_item *it, bool remove_staged)
{
    if (remove_staged && it->dirfd >= 0) {
        for (size_t n = 0; n < it->l.n; n++)
            if (it->l.v[n].stage[0] != '\0')
                unlinkat(it->dirfd, it->l.v[n].stage, 0);
        for (size_t i = 0; it->x.manifest != NULL && i < it->x.manifest->nfiles; i++)
            unlinkat(it->dirfd, it->x.staged[i], 0);
    }
    free(it->l.v);
    pf_extracted_clear(&it->x);
    if (it->src.fd >= 0)
        close(it->src.fd);
    if (it->dirfd >= 0)
        close(it->dirfd);
    memset(it, 0, sizeof *it);
    it->src.fd = it->dirfd = -1;
}

static void batch_clear(pf_importer *imp, bool remove_staged)
{
    struct imp_batch *b = imp->batch;
    if (b == NULL)
        return;
    for (size_t i = 0; i < b->n; i++)
        item_free(&b->v[i], remove_staged);
    b->n = 0;
    b->bytes = 0;
}

void imp_batch_abort(pf_importer *imp)
{
    /* nothing of a batch is recorded before its flush: what it staged goes */
    batch_clear(imp, true);
}

void imp_batch_free(pf_importer *imp)
{
    imp_batch_abort(imp);
    if (imp->batch != NULL)
        free(imp->batch->v);
    free(imp->batch);
    imp->batch = NULL;
}

int imp_batch_add(pf_importer *imp, const struct candidate *cand, struct imp_source *src,
                  int *dirfd, pf_extracted *x, struct plan *plan, pf_import_counts *c, pf_err *e)
{
    struct imp_batch *b = imp->batch;
    struct outs l = {0};
    if (b == NULL) {
        b = imp->batch = calloc(1, sizeof *b);
        if (b == NULL)
            return pf_err_set(e, PF_EENV, "out of memory");
    }
    if (b->n == b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 16;
        struct batch_item *g = realloc(b->v, cap * sizeof *g);
        if (g == NULL)
            return pf_err_set(e, PF_EENV, "out of memory");
        b->v = g;
        b->cap = cap;
    }
    if (plan_bundle(imp, *dirfd, x, plan, &l, c, e) != 0)
        goto fail;
    pf_failpoint("import-staged");
    if (save_provenance(imp, x, PF_AW_NO_SYNC, e) != 0)
        goto fail;
    /* the item owns the source, the directory and the extraction now */
    struct batch_item *it = &b->v[b->n++];
    it->cand = cand;
    it->src = *src;
    src->fd = -1;
    it->dirfd = *dirfd;
    *dirfd = -1;
    it->x = *x;
    memset(x, 0, sizeof *x);
    it->l = l;
    b->bytes += it->x.bundle_bytes;
    return 0;
fail:
    /* files the planning made; the caller removes the extracted ones */
    for (size_t n = 0; n < l.n; n++)
        if (l.v[n].stage[0] != '\0' && strcmp(l.v[n].stage, x->staged[l.v[n].file]) != 0)
            unlinkat(*dirfd, l.v[n].stage, 0);
    free(l.v);
    return -1;
}

/* Makes everything written so far to the ingest and state filesystems
 * durable: one flush each (one in all when they are the same). */
static int sync_filesystems(pf_importer *imp, pf_err *e)
{
    const char *dirs[2] = {imp->o.ingest_dir, imp->o.state_dir};
    dev_t done = 0;
    for (size_t i = 0; i < 2; i++) {
        int fd = open(dirs[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        struct stat st;
        if (fd < 0)
            return pf_err_sys(e, errno, "%s: cannot open", dirs[i]);
        if (fstat(fd, &st) != 0 || (i > 0 && st.st_dev == done)) {
            close(fd);
            continue;
        }
        done = st.st_dev;
        /* since Linux 5.8 syncfs reports writeback errors of the filesystem */
        if (syncfs(fd) != 0) {
            int err = errno;
            close(fd);
            return pf_err_sys(e, err, "%s: syncfs failed", dirs[i]);
        }
        close(fd);
    }
    return 0;
}

static bool delivers(const struct out *o)
{
    return o->gate != PF_GATE_HOLD && o->gate != PF_GATE_EMPTY;
}

int imp_batch_flush(pf_importer *imp, struct cand_list *cl, pf_import_counts *c, pf_err *e)
{
    struct imp_batch *b = imp->batch;
    const struct timespec mark[2] = {{ATIME_MARK, 0}, {0, UTIME_OMIT}};
    bool recorded = false, first = true;
    int rc = -1;

    if (b == NULL || b->n == 0)
        return 0;
    /* 2. staged files and provenance durable before any row names them */
    if (sync_filesystems(imp, e) != 0)
        goto out;
    /* 3. the intents */
    if (pf_db_begin(&imp->db, e) != 0)
        goto out;
    for (size_t i = 0; i < b->n; i++)
        if (record_intent(imp, b->v[i].cand, &b->v[i].x, &b->v[i].l, e) != 0) {
            pf_db_rollback(&imp->db);
            goto out;
        }
    if (pf_db_commit(&imp->db, e) != 0) {
        pf_db_rollback(&imp->db);
        goto out;
    }
    recorded = true;
    pf_failpoint("import-intent");
    /* 4. final names; a crash among them leaves some renamed, the rest
     * staged: recovery tells them apart by name */
    for (size_t i = 0; i < b->n; i++) {
        struct batch_item *it = &b->v[i];
        const pf_header *h = &it->x.hdr;
        for (size_t n = 0; n < it->l.n; n++) {
            struct out *o = &it->l.v[n];
            if (!delivers(o))
                continue;
            if (utimensat(it->dirfd, o->stage, mark, AT_SYMLINK_NOFOLLOW) != 0) {
                pf_err_sys(e, errno, "%s/%s/%s: cannot mark the staged file", imp->o.ingest_dir,
                           h->sensor, o->stage);
                goto out;
            }
            if (pf_rename_noreplace(it->dirfd, o->stage, it->dirfd, o->final) != 0) {
                pf_err_sys(e, errno, "%s/%s/%s: cannot deliver", imp->o.ingest_dir, h->sensor,
                           o->final);
                goto out;
            }
            o->stage[0] = '\0';
            if (first)
                pf_failpoint("import-batch-renamed");
            first = false;
        }
    }
    if (sync_filesystems(imp, e) != 0)
        goto out;
    pf_failpoint("import-renamed");
    /* 5. announcements may begin */
    if (pf_db_begin(&imp->db, e) != 0)
        goto out;
    for (size_t i = 0; i < b->n; i++)
        for (size_t n = 0; n < b->v[i].l.n; n++)
            if (delivers(&b->v[i].l.v[n]) &&
                pf_db_exec(&imp->db, e,
                           "INSERT OR IGNORE INTO announcing (sensor, seq, n) VALUES (?, ?, ?)",
                           "sui", b->v[i].x.hdr.sensor, b->v[i].x.hdr.seq, (int64_t)n + 1) != 0) {
                pf_db_rollback(&imp->db);
                goto out;
            }
    if (pf_db_commit(&imp->db, e) != 0) {
        pf_db_rollback(&imp->db);
        goto out;
    }
    pf_failpoint("import-announcing");
    /* 6. in (sensor, seq, n) order: each sensor's files reach Arkime in order */
    first = true;
    for (size_t i = 0; i < b->n; i++)
        for (size_t n = 0; n < b->v[i].l.n; n++) {
            const struct out *o = &b->v[i].l.v[n];
            if (!delivers(o))
                continue;
            if (announce(imp, b->v[i].dirfd, b->v[i].x.hdr.sensor, b->v[i].x.hdr.seq,
                         (int64_t)n + 1, o->final, e) != 0)
                goto out;
            if (first)
                pf_failpoint("import-announced");
            first = false;
        }
    /* 7. delivered and committed, in one transaction */
    if (pf_db_begin(&imp->db, e) != 0)
        goto out;
    for (size_t i = 0; i < b->n; i++) {
        const pf_header *h = &b->v[i].x.hdr;
        if (pf_db_exec(&imp->db, e,
                       "UPDATE deliveries SET state = 'delivered' WHERE sensor = ? AND seq = ? "
                       "AND state = 'staged'",
                       "su", h->sensor, h->seq) != 0 ||
            pf_db_exec(&imp->db, e, "DELETE FROM announcing WHERE sensor = ? AND seq = ?", "su",
                       h->sensor, h->seq) != 0 ||
            pf_db_exec(&imp->db, e,
                       "UPDATE bundles SET status = 'committed' WHERE sensor = ? AND seq = ?", "su",
                       h->sensor, h->seq) != 0) {
            pf_db_rollback(&imp->db);
            goto out;
        }
    }
    if (pf_db_commit(&imp->db, e) != 0) {
        pf_db_rollback(&imp->db);
        goto out;
    }
    pf_failpoint("import-delivered");
    for (size_t i = 0; i < b->n; i++) {
        struct batch_item *it = &b->v[i];
        const pf_header *h = &it->x.hdr;
        for (size_t n = 0; n < it->l.n; n++) {
            if (!delivers(&it->l.v[n]))
                continue;
            c->files_delivered++;
            c->bytes_delivered += it->l.v[n].bytes;
            log_delivered(imp, h, &it->l.v[n]);
            if (imp->o.exec_argv != NULL &&
                imp_exec_and_record(imp, h->sensor, h->seq, (int64_t)n + 1, it->l.v[n].final, c,
                                    e) != 0)
                goto out;
        }
        c->imported++;
        imp_note_receipt(imp, cl, it->cand, h->sensor, h->seq, it->x.bundle_hash, PF_RCPT_COMMITTED,
                         NULL);
        imp_event(imp, PF_EV_INFO,
                  "bundle=%s sensor=%s seq=%" PRIu64 " status=imported files=%zu packets=%" PRIu64,
                  it->cand->path, h->sensor, h->seq, it->x.manifest->nfiles,
                  pf_manifest_total_packets(it->x.manifest));
        if (imp_delete_source(imp, h->sensor, &it->src, e) != 0)
            goto out;
    }
    rc = 0;
out:
    if (rc != 0 && pf_err_is_nospace(e))
        e->status = PF_EINCOMPLETE;
    /* Once the intents are recorded, what is left staged is the next run's
     * recovery's to finish; before, nothing names it and it goes. */
    batch_clear(imp, !recorded);
    return rc;
}
