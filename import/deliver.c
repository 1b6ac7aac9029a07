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

/* Everything after a successful extraction: gate, convert, hold, record,
 * deliver. On failure the caller removes what is still staged. */
int imp_deliver_bundle(pf_importer *imp, const struct candidate *cand, int dirfd, pf_extracted *x,
                       struct plan *plan, pf_import_counts *c, pf_err *e)
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
            if (imp_hold_file(imp, dirfd, h->sensor, h->seq, i + 1, p->stage, m->files[i].name,
                              p->reason, p->held_as, sizeof p->held_as, e) != 0)
                return -1;
            p->stage[0] = '\0';
            c->files_held++;
            imp_event(imp, PF_EV_WARN, "sensor=%s seq=%" PRIu64 " file=%s held=%s reason=\"%s\"",
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
    imp_hex32(hh, h->hash);
    imp_hex32(bh, x->bundle_hash);
    imp_hex32(ph, h->prev_hash);
    if (pf_db_begin(&imp->db, e) != 0)
        return -1;
    if (pf_db_exec(
            &imp->db, e,
            "INSERT INTO bundles (sensor, seq, header_hash, bundle_hash, prev_seq, "
            "prev_hash, status, source, imported_at, files, packets, bytes, first_ts, "
            "last_ts, drops) VALUES (?, ?, ?, ?, ?, ?, 'delivering', ?, ?, ?, ?, ?, ?, ?, ?)",
            "sussussiuuuiiu", h->sensor, h->seq, hh, bh, h->prev_seq, h->prev_seq ? ph : NULL,
            cand->path, imp_now_s(), (uint64_t)m->nfiles, packets, bytes, have_ts ? first : 0,
            have_ts ? last : 0, manifest_drops(m)) != 0)
        goto rollback;
    for (size_t i = 0; i < m->nfiles; i++) {
        const struct plan *p = &plan[i];
        const char *state = p->gate == PF_GATE_HOLD    ? "held"
                            : p->gate == PF_GATE_EMPTY ? "empty"
                                                       : "staged";
        imp_hex32(fhex, m->files[i].info.blake2b);
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
        if (imp_finish_delivery(imp, dirfd, h->sensor, h->seq, (int64_t)i + 1, p->stage, p->final,
                                &again, e) != 0)
            return -1;
        p->stage[0] = '\0';
        c->files_delivered++;
        c->bytes_delivered += m->files[i].info.size;
        imp_event(imp, PF_EV_INFO,
                  "sensor=%s seq=%" PRIu64 " delivered=%s/%s/%s packets=%" PRIu64 "%s", h->sensor,
                  h->seq, imp->o.ingest_dir, h->sensor, p->final, m->files[i].info.packets,
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
                if (imp_exec_and_record(imp, h->sensor, h->seq, (int64_t)i + 1, plan[i].final, c,
                                        e) != 0)
                    return -1;
    return 0;
rollback:
    pf_db_rollback(&imp->db);
    return -1;
}
