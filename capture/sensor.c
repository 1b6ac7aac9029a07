#include "capture/sensor.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "bundle/bundle.h"
#include "common/text.h"
#include "capture/pcapfile.h"
#include "common/fsutil.h"

#define ACTIVE_PREFIX ".active-"
#define STATS_SUFFIX  ".stats.json"
#define CLOCK_JUMP_NS 1000000000LL
/* In the state directory: written before a batch is sealed, removed once
 * its plaintext is gone (see write_journal()). Not in the spool: a full
 * spool must not stop the sealer that empties it. */
#define SEAL_JOURNAL ".sealing.json"

/* What the capture thread and the sealer share, under lock. */
struct shared {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool work, done, paused;
    uint64_t outbox_bytes, outbox_bundles, bundles_made;
    char last_bundle[PF_BUNDLE_NAME_MAX];
    uint64_t last_seq;
    int fatal;
    pf_err err;
    json_t *pending_stats; /* pcap name -> statistics the spool had no room for */
    /* pcap name -> the order it was handed over in this run. Spool names
     * sort by their first packet's time, which is not capture order (-r
     * files of other times, a clock stepped back): the sealer follows this,
     * so seq order is file order, as Arkime without --flush needs. */
    json_t *handed;
    json_int_t handed_next;
};

struct file_stats {
    uint64_t seen, saved, not_saved_dont_save, not_saved_paused, not_saved_disk_full;
    struct pcap_stat base;
    int64_t start_ns, offset_start_ns, clock_jump_ns;
};

struct sensor {
    const pf_sensor_opts *o;
    pf_sensor_signals *sig;
    pcap_t *p;
    bool live;
    int spool_fd, outbox_fd, state_fd;
    pf_flows flows;
    json_t *capture_settings;
    struct shared sh;
    /* capture thread */
    pf_pcapw w;
    bool open;
    char active[NAME_MAX + 16], ready[NAME_MAX + 1];
    struct file_stats fs;
    int link_type;
    uint32_t snaplen;
    bool nano;
    int64_t deadline_mono, last_offset;
    int64_t file_boundary; /* the current window ends here (wall or packet time) */
    int64_t last_ts;       /* newest packet time seen */
    bool rotate_now, disk_full;
    uint64_t carry_seen, carry_full; /* of a file dropped as unrecoverable */
    bool outbox_fs_full;             /* sealing waits for free space (sealer thread) */
    int64_t disk_full_until;
    unsigned counter;
    uint64_t total_seen, total_saved, total_not_saved;
    struct pcap_stat last_ps;
    pf_err *e;
    bool failed;
    FILE **inputs; /* -r: opened as root, before the privilege drop */
};

static void event(struct sensor *s, enum pf_event_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void event(struct sensor *s, enum pf_event_level level, const char *fmt, ...)
{
    char line[2048];
    va_list ap;
    if (s->o->event == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    s->o->event(s->o->ctx, level, line);
}

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---------- directories and privileges ---------- */

static int open_dir(const char *path, mode_t mode, pf_err *e)
{
    if (pf_mkdir_p(path, mode, e) != 0)
        return -1;
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return pf_err_sys(e, errno, "%s: cannot open directory", path);
    return fd;
}

/* The user must own what it will write: the directories and what is in
 * them already (a lock file, a state file, pcaps left by a crash). */
static int hand_over(int dirfd, const char *path, uid_t uid, gid_t gid, pf_err *e)
{
    if (fchown(dirfd, uid, gid) != 0)
        return pf_err_sys(e, errno, "%s: cannot give it to the capture user", path);
    int dup = fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
    DIR *d = dup >= 0 ? fdopendir(dup) : NULL;
    if (d == NULL) {
        if (dup >= 0)
            close(dup);
        return pf_err_sys(e, errno, "%s: cannot list", path);
    }
    rewinddir(d);
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            fchownat(dirfd, de->d_name, uid, gid, AT_SYMLINK_NOFOLLOW);
    closedir(d);
    return 0;
}

static int drop_privileges(struct sensor *s, pf_err *e)
{
    const pf_sensor_opts *o = s->o;
    if (geteuid() != 0) {
        if (o->user != NULL)
            event(s, PF_EV_WARN, "not running as root: -Z %s has nothing to drop", o->user);
        return 0;
    }
    if (o->user == NULL) {
        if (o->no_drop) {
            event(s, PF_EV_WARN, "keeping root privileges (--no-drop)");
            return 0;
        }
        return pf_err_set(e, PF_EUSAGE,
                          "refusing to capture as root: give -Z USER (e.g. -Z pcapferry) or "
                          "--no-drop");
    }
    errno = 0;
    struct passwd *pw = getpwnam(o->user);
    if (pw == NULL)
        return pf_err_set(e, PF_EUSAGE, "-Z %s: no such user", o->user);
    if (hand_over(s->spool_fd, o->spool, pw->pw_uid, pw->pw_gid, e) != 0 ||
        hand_over(s->outbox_fd, o->outbox, pw->pw_uid, pw->pw_gid, e) != 0 ||
        hand_over(s->state_fd, o->state, pw->pw_uid, pw->pw_gid, e) != 0)
        return -1;
    gid_t gid = pw->pw_gid;
    if (setgroups(1, &gid) != 0 || setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0)
        return pf_err_sys(e, errno, "cannot drop privileges to %s", o->user);
    if (setuid(0) == 0 || seteuid(0) == 0)
        return pf_err_set(e, PF_EENV, "privilege drop to %s did not stick", o->user);
    /* Nothing this process runs may gain privileges again. */
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        return pf_err_sys(e, errno, "PR_SET_NO_NEW_PRIVS failed");
    event(s, PF_EV_INFO, "dropped privileges user=%s uid=%u gid=%u", o->user, (unsigned)pw->pw_uid,
          (unsigned)pw->pw_gid);
    return 0;
}

/* ---------- capture files ---------- */

static void file_names(struct sensor *s, int64_t start_ns)
{
    char when[32];
    pf_compact_time(when, sizeof when, start_ns);
    snprintf(s->ready, sizeof s->ready, "%s-%s-%04u.pcap", s->o->sensor->pub.name, when,
             s->counter);
    snprintf(s->active, sizeof s->active, "%s%s", ACTIVE_PREFIX, s->ready);
}

static int64_t next_boundary(int64_t ns, unsigned seconds)
{
    int64_t g = (int64_t)seconds * 1000000000;
    return (ns / g + 1) * g;
}

static int64_t window_floor(int64_t ns, unsigned seconds)
{
    int64_t g = (int64_t)seconds * 1000000000;
    return seconds > 0 ? ns / g * g : ns;
}

/* Packets may still sit in the kernel ring for up to the capture timeout
 * (100 ms) after their time: the timer waits that long past a boundary so
 * every packet stamped before it lands in the file it belongs to. */
#define ROTATE_GRACE_NS 250000000LL

static int open_file(struct sensor *s, int64_t start_ns, pf_err *e)
{
    for (int tries = 0; tries < 1000; tries++) {
        file_names(s, start_ns);
        s->counter = (s->counter + 1) % 10000;
        if (faccessat(s->spool_fd, s->ready, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
            continue;
        if (pf_pcapw_open(&s->w, s->spool_fd, s->active, s->link_type, s->snaplen, s->nano, e) == 0)
            break;
        if (e->sys_errno != EEXIST)
            return -1;
        pf_err_clear(e);
    }
    s->open = true;
    memset(&s->fs, 0, sizeof s->fs);
    /* packets of a window whose file was lost are counted in this one */
    s->fs.seen = s->carry_seen;
    s->fs.not_saved_disk_full = s->carry_full;
    s->carry_seen = s->carry_full = 0;
    s->fs.start_ns = start_ns;
    int64_t now_wall = pf_now_ns(), now_mono = mono_ns();
    s->fs.offset_start_ns = now_wall - now_mono;
    s->file_boundary =
        s->o->rotate_seconds > 0 ? next_boundary(start_ns, s->o->rotate_seconds) : INT64_MAX;
    if (s->live) {
        s->fs.base = s->last_ps;
        s->deadline_mono = s->o->rotate_seconds > 0
                               ? now_mono + (s->file_boundary - now_wall) + ROTATE_GRACE_NS
                               : INT64_MAX;
    }
    return 0;
}

static json_t *stats_json(struct sensor *s, const struct pcap_stat *ps, int64_t end_ns,
                          const char *reason)
{
    char a[PF_ISOTIME_BYTES], b[PF_ISOTIME_BYTES];
    pf_isotime_ns(a, sizeof a, s->fs.start_ns);
    pf_isotime_ns(b, sizeof b, end_ns);
    json_t *j =
        json_pack("{s:s, s:s, s:I, s:I, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:b}",
                  "window_start", a, "window_end", b, "window_start_ns", (json_int_t)s->fs.start_ns,
                  "window_end_ns", (json_int_t)end_ns, "rotated_by", reason, "packets_seen",
                  (json_int_t)s->fs.seen, "packets_saved", (json_int_t)s->fs.saved,
                  "not_saved_dont_save", (json_int_t)s->fs.not_saved_dont_save, "not_saved_paused",
                  (json_int_t)s->fs.not_saved_paused, "not_saved_disk_full",
                  (json_int_t)s->fs.not_saved_disk_full, "wall_minus_monotonic_ns",
                  (json_int_t)s->fs.offset_start_ns, "clock_jump_ns",
                  (json_int_t)s->fs.clock_jump_ns, "recovered", 0);
    if (j != NULL && ps != NULL) {
        /* libpcap's counters are cumulative: the file's window is the
         * difference (unsigned, so a wrap still subtracts right). */
        json_object_set_new(j, "received",
                            json_integer((json_int_t)(u_int)(ps->ps_recv - s->fs.base.ps_recv)));
        json_object_set_new(j, "dropped_kernel",
                            json_integer((json_int_t)(u_int)(ps->ps_drop - s->fs.base.ps_drop)));
        json_object_set_new(
            j, "dropped_interface",
            json_integer((json_int_t)(u_int)(ps->ps_ifdrop - s->fs.base.ps_ifdrop)));
    }
    return j;
}

static void notify_sealer(struct sensor *s)
{
    pthread_mutex_lock(&s->sh.mu);
    s->sh.work = true;
    pthread_cond_signal(&s->sh.cv);
    pthread_mutex_unlock(&s->sh.mu);
}

/* Packets a failed flush threw out of the write buffer were counted as
 * saved when they were buffered: they are lost to the full (or failing)
 * spool instead. */
static void count_discarded(struct sensor *s)
{
    uint64_t d = s->w.discarded;
    s->w.discarded = 0;
    s->fs.saved -= d;
    s->total_saved -= d;
    s->fs.not_saved_disk_full += d;
    s->total_not_saved += d;
}

/* Closes the current file and hands it to the sealer: fdatasync, stats
 * beside it, then the rename that makes it visible to the sealer. */
static int close_file(struct sensor *s, const char *reason, int64_t end, pf_err *e)
{
    struct pcap_stat ps, *psp = NULL;
    pf_err ce;
    if (!s->open)
        return 0;
    s->open = false;
    pf_err_clear(&ce);
    int closed = pf_pcapw_close(&s->w, true, &ce);
    count_discarded(s);
    if (closed != 0) {
        /* A failed flush can leave half a record: cut it off. */
        uint64_t kept = 0, cut = 0;
        pf_err re;
        pf_err_clear(&re);
        event(s, PF_EV_WARN, "file=%s close failed (%s); keeping its complete records", s->active,
              ce.msg);
        if (pf_pcap_recover(s->spool_fd, s->active, &kept, &cut, &re) != 0) {
            /* nothing of it can be sealed: count its packets as lost to
             * the disk in the next file, so the gap stays on record */
            event(s, PF_EV_ERROR,
                  "file=%s unrecoverable: %s; its %" PRIu64
                  " packets are counted as not saved (disk full or failing) in the next file",
                  s->active, re.msg, s->fs.seen);
            s->carry_seen += s->fs.seen;
            s->carry_full += s->fs.saved + s->fs.not_saved_disk_full;
            s->total_not_saved += s->fs.saved;
            s->total_saved -= s->fs.saved;
            unlinkat(s->spool_fd, s->active, 0);
            return 0;
        }
    }
    if (s->live && pcap_stats(s->p, &ps) == 0) {
        psp = &ps;
        s->last_ps = ps;
    }
    uint64_t drops = psp ? (u_int)(ps.ps_drop - s->fs.base.ps_drop) : 0;
    bool keep = s->fs.saved > 0 || drops > 0 || s->fs.not_saved_disk_full > 0 ||
                s->fs.not_saved_paused > 0 || s->o->seal_empty;
    if (!keep) {
        unlinkat(s->spool_fd, s->active, 0); /* a quiet window: nothing to seal */
        return 0;
    }
    json_t *j = stats_json(s, psp, end, reason);
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    char sname[NAME_MAX + 16];
    snprintf(sname, sizeof sname, "%s%s", s->ready, STATS_SUFFIX);
    int rc = -1;
    if (text == NULL) {
        pf_err_set(e, PF_EENV, "out of memory");
        goto out;
    }
    pf_err se;
    pf_err_clear(&se);
    if (pf_atomic_write_at(s->spool_fd, s->o->spool, sname, text, strlen(text), 0600, false, &se) !=
        0) {
        /* A full spool must not stop capture (docs/CAPTURE.md), nor lose
         * the counts of what it cost: the sealer gets the statistics from
         * memory (lost only if the daemon stops before sealing). */
        event(s, PF_EV_WARN, "file=%s statistics kept in memory: %s", s->ready, se.msg);
        pthread_mutex_lock(&s->sh.mu);
        json_object_set(s->sh.pending_stats, s->ready, j);
        pthread_mutex_unlock(&s->sh.mu);
    }
    /* its place in the order before the sealer can see it */
    pthread_mutex_lock(&s->sh.mu);
    json_object_set_new(s->sh.handed, s->ready, json_integer(s->sh.handed_next++));
    pthread_mutex_unlock(&s->sh.mu);
    if (renameat(s->spool_fd, s->active, s->spool_fd, s->ready) != 0) {
        pf_err_sys(e, errno, "%s/%s: cannot hand over to the sealer", s->o->spool, s->ready);
        pthread_mutex_lock(&s->sh.mu);
        json_object_del(s->sh.handed, s->ready);
        pthread_mutex_unlock(&s->sh.mu);
        goto out;
    }
    if (pf_fsync_dirfd(s->spool_fd, s->o->spool, e) != 0)
        goto out;
    event(s, PF_EV_DEBUG, "rotated file=%s packets=%" PRIu64 " by=%s", s->ready, s->fs.saved,
          reason);
    notify_sealer(s);
    rc = 0;
out:
    json_decref(j);
    free(text);
    return rc;
}

/* The window [start, end) closes; the next one starts at next_start. */
static int rotate(struct sensor *s, const char *reason, int64_t end, int64_t next_start_ns,
                  pf_err *e)
{
    if (close_file(s, reason, end, e) != 0)
        return -1;
    return open_file(s, next_start_ns, e);
}

/* ---------- the packet path ---------- */

static void on_packet(u_char *user, const struct pcap_pkthdr *h, const u_char *data)
{
    struct sensor *s = (struct sensor *)(void *)user;
    /* with -r the stamps come from a file and may lie past 2262 */
    int64_t ts =
        pf_ns_saturated((int64_t)h->ts.tv_sec, (int64_t)h->ts.tv_usec * (s->nano ? 1 : 1000));
    if (s->failed)
        return;
    /* -r: files follow packet time (named and windowed by it), opened at
     * the first packet */
    if (!s->open && open_file(s, window_floor(ts, s->o->rotate_seconds), s->e) != 0) {
        s->failed = true;
        return;
    }
    /* Live, a packet stamped well before this window means the wall clock
     * went back (the kernel stamps packets with it): start a window on the
     * new clock instead of filing the packet under a time it is not from
     * (the forward case is the test below). */
    if (s->live && ts < s->fs.start_ns - CLOCK_JUMP_NS &&
        rotate(s, "clock", s->last_ts > s->fs.start_ns ? s->last_ts : s->fs.start_ns,
               window_floor(ts, s->o->rotate_seconds), s->e) != 0) {
        s->failed = true;
        return;
    }
    /* A packet from the next window closes this one, live or not; the
     * timer only closes windows no packet crossed. */
    if (ts >= s->file_boundary &&
        rotate(s, "time", s->file_boundary, window_floor(ts, s->o->rotate_seconds), s->e) != 0) {
        s->failed = true;
        return;
    }
    /* -r: -C rotates before the next packet, not after a batch of 4096 */
    if (!s->live && s->rotate_now) {
        s->rotate_now = false;
        if (s->fs.saved > 0 && rotate(s, "size", s->last_ts, ts, s->e) != 0) {
            s->failed = true;
            return;
        }
    }
    if (ts > s->last_ts)
        s->last_ts = ts;
    s->fs.seen++;
    s->total_seen++;
    pthread_mutex_lock(&s->sh.mu);
    bool paused = s->sh.paused;
    pthread_mutex_unlock(&s->sh.mu);
    if (paused) {
        s->fs.not_saved_paused++;
        s->total_not_saved++;
        return;
    }
    if (!pf_flows_keep(&s->flows, h, data)) {
        s->fs.not_saved_dont_save++;
        s->total_not_saved++;
        return;
    }
    if (s->disk_full) {
        if (mono_ns() < s->disk_full_until) {
            s->fs.not_saved_disk_full++;
            s->total_not_saved++;
            return;
        }
        s->disk_full = false;
    }
    pf_err we;
    pf_err_clear(&we);
    if (pf_pcapw_write(&s->w, (int64_t)h->ts.tv_sec, (uint32_t)h->ts.tv_usec, h->caplen, h->len,
                       data, &we) != 0) {
        /* Never crash or stall on a full spool: count, and look again in
         * a second. */
        count_discarded(s);
        s->fs.not_saved_disk_full++;
        s->total_not_saved++;
        if (!s->disk_full)
            event(s, PF_EV_WARN, "spool write failed (%s); packets are counted as not saved",
                  we.msg);
        s->disk_full = true;
        s->disk_full_until = mono_ns() + 1000000000;
        return;
    }
    s->fs.saved++;
    s->total_saved++;
    if (s->o->rotate_bytes > 0 && s->w.bytes >= s->o->rotate_bytes)
        s->rotate_now = true;
}

/* Files left from an earlier run first, by name (their capture order is
 * their time order within that run), then this run's in the order they were
 * handed over. The spool can hold thousands when the outbox is full. */
struct hand_key {
    json_int_t key; /* -1: not handed over in this run */
    size_t at;      /* name order, for ties */
    char *name;
};

static int cmp_hand_key(const void *a, const void *b)
{
    const struct hand_key *x = a, *y = b;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    return x->at < y->at ? -1 : x->at > y->at;
}

static void hand_over_order(struct sensor *s, char **v, size_t n)
{
    struct hand_key *k = n > 1 ? malloc(n * sizeof *k) : NULL;
    if (k == NULL) /* one name, or no memory: name order */
        return;
    pthread_mutex_lock(&s->sh.mu);
    for (size_t i = 0; i < n; i++) {
        json_t *j = json_object_get(s->sh.handed, v[i]);
        k[i] = (struct hand_key){j != NULL ? json_integer_value(j) : -1, i, v[i]};
    }
    pthread_mutex_unlock(&s->sh.mu);
    qsort(k, n, sizeof *k, cmp_hand_key);
    for (size_t i = 0; i < n; i++)
        v[i] = k[i].name;
    free(k);
}

/* ---------- the sealer ---------- */

static uint64_t outbox_usage(struct sensor *s, uint64_t *bundles)
{
    size_t n;
    uint64_t total = 0;
    char **v = pf_list_names(s->outbox_fd, PF_BUNDLE_SUFFIX, &n);
    for (size_t i = 0; i < n; i++) {
        struct stat st;
        if (fstatat(s->outbox_fd, v[i], &st, AT_SYMLINK_NOFOLLOW) == 0)
            total += (uint64_t)st.st_size;
    }
    pf_free_names(v, n);
    *bundles = n;
    return total;
}

/* Makes room for need bytes in the outbox, by the --when-full policy.
 * Returns false when capture must stay paused for now. Deleted bundles
 * are listed in gaps so the next manifest names them. */
static bool make_room(struct sensor *s, uint64_t need, json_t *gaps, json_t *carried)
{
    const pf_sensor_opts *o = s->o;
    for (int guard = 0; guard < 100000; guard++) {
        uint64_t bundles = 0, used = outbox_usage(s, &bundles);
        struct statvfs vfs;
        uint64_t avail =
            fstatvfs(s->outbox_fd, &vfs) == 0 ? (uint64_t)vfs.f_bavail * vfs.f_frsize : UINT64_MAX;
        bool over = (o->outbox_max > 0 && used + need > o->outbox_max) ||
                    (o->min_free > 0 && avail < need + o->min_free);
        /* Without limits set, a full file system only makes sealing wait
         * (nothing is deleted that the operator did not ask to delete), but
         * without trying: a bundle that cannot fit fails with ENOSPC after
         * its seq was reserved, burning a number per retry (found by
         * tests/cli/faults.sh). The margin covers what sealing adds to the
         * capture bytes (header, tags, manifest). */
        if (!over && avail < need + need / 64 + (64u << 10)) {
            if (!s->outbox_fs_full)
                event(s, PF_EV_WARN,
                      "outbox file system full (%" PRIu64 " bytes free, about %" PRIu64
                      " needed): sealing waits for room",
                      avail, need + need / 64 + (64u << 10));
            s->outbox_fs_full = true;
            return false;
        }
        if (s->outbox_fs_full && !over)
            event(s, PF_EV_INFO, "outbox file system has room again: sealing resumes");
        s->outbox_fs_full = false;
        pthread_mutex_lock(&s->sh.mu);
        s->sh.outbox_bytes = used;
        s->sh.outbox_bundles = bundles;
        bool was_paused = s->sh.paused;
        if (!over && was_paused)
            s->sh.paused = false;
        if (over && o->when_full_stop)
            s->sh.paused = true;
        pthread_mutex_unlock(&s->sh.mu);
        if (!over) {
            if (was_paused)
                event(s, PF_EV_WARN, "outbox has room again: capture resumed");
            return true;
        }
        if (o->when_full_stop) {
            if (!was_paused)
                event(s, PF_EV_WARN,
                      "outbox full (%" PRIu64 " bytes in %" PRIu64
                      " bundles): capture paused, evidence kept (--when-full stop)",
                      used, bundles);
            return false;
        }
        size_t n;
        char **v = pf_list_names(s->outbox_fd, PF_BUNDLE_SUFFIX, &n);
        if (n == 0) {
            pf_free_names(v, n);
            return true; /* nothing left to delete: try anyway */
        }
        /* Bundles already copied to a stick go first (they exist
         * elsewhere); then the oldest. Acknowledged ones were pruned as
         * soon as their receipt came. */
        const char *victim = v[0];
        bool exported = false;
        int ed = openat(s->outbox_fd, ".exported", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        for (size_t i = 0; ed >= 0 && i < n && !exported; i++)
            if (faccessat(ed, v[i], F_OK, AT_SYMLINK_NOFOLLOW) == 0) {
                victim = v[i];
                exported = true;
            }
        if (ed >= 0)
            close(ed);
        pf_header h;
        uint64_t size = 0;
        pf_err he;
        pf_err_clear(&he);
        /* what the deleted bundle told about earlier deletions */
        json_t *old = json_object_get(carried, victim);
        if (old != NULL) {
            json_array_extend(gaps, old);
            json_object_del(carried, victim);
        }
        /* through the descriptor: after the privilege drop the outbox's
         * path may be out of reach, and the gap would lose its seq */
        if (pf_bundle_read_header_at(s->outbox_fd, victim, &h, &size, &he) == 0)
            json_array_append_new(
                gaps,
                json_pack("{s:s, s:I, s:s}", "deleted", victim, "seq", (json_int_t)h.seq, "reason",
                          exported ? "outbox full (exported, not acknowledged)" : "outbox full"));
        else
            json_array_append_new(
                gaps, json_pack("{s:s, s:s}", "deleted", victim, "reason", "outbox full"));
        unlinkat(s->outbox_fd, victim, 0);
        if (exported) {
            int md = openat(s->outbox_fd, ".exported", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            if (md >= 0) {
                unlinkat(md, victim, 0);
                close(md);
            }
        }
        pf_fsync_dirfd(s->outbox_fd, o->outbox, &he);
        event(s, PF_EV_WARN, "outbox full: deleted %s bundle=%s (--when-full drop-oldest)",
              exported ? "oldest exported" : "oldest", victim);
        pf_free_names(v, n);
    }
    return true;
}

static json_t *read_stats(struct sensor *s, const char *pcap)
{
    char name[NAME_MAX + 16];
    uint8_t *raw = NULL;
    size_t len = 0;
    pf_err e;
    pf_err_clear(&e);
    snprintf(name, sizeof name, "%s%s", pcap, STATS_SUFFIX);
    if (pf_read_file_at(s->spool_fd, name, name, 1 << 20, 0, &raw, &len, &e) != 0) {
        pthread_mutex_lock(&s->sh.mu);
        json_t *kept = json_deep_copy(json_object_get(s->sh.pending_stats, pcap));
        pthread_mutex_unlock(&s->sh.mu);
        return kept != NULL ? kept
                            : json_pack("{s:s}", "note", "capture statistics lost (no stats file)");
    }
    json_t *j = json_loadb((const char *)raw, len, 0, NULL);
    pf_free_file(raw, false);
    return j != NULL ? j : json_pack("{s:s}", "note", "capture statistics unreadable");
}

/* The window between pf_bundle_create() renaming the bundle into the outbox
 * and the removal of its plaintext from the spool: a crash there (or
 * between the rename and the state commit inside it) left the pcap in the
 * spool, and the next start sealed it again under a new seq, so the central
 * host delivered the same packets twice (found by tests/cli/chaos.sh). So
 * before sealing, the batch, the creation time its header will carry and
 * the seq the state will hand out are made durable here; at start,
 * finish_interrupted_seal() looks for that bundle and, if it exists (or
 * the state committed its seq), removes the plaintext instead of sealing
 * it again. */
static int write_journal(struct sensor *s, char **names, size_t n, int64_t created_ns, pf_err *e)
{
    pf_seq_state st;
    if (pf_state_open_at(&st, s->state_fd, s->o->state, s->o->sensor->pub.name, e) != 0)
        return -1;
    uint64_t next_seq = st.next_seq;
    pf_state_close(&st);
    json_t *files = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(files, json_string(names[i]));
    json_t *j = json_pack("{s:I, s:I, s:o}", "created_ns", (json_int_t)created_ns, "next_seq",
                          (json_int_t)next_seq, "files", files);
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (text == NULL)
        return pf_err_set(e, PF_EENV, "out of memory");
    int r = pf_atomic_write_at(s->state_fd, s->o->state, SEAL_JOURNAL, text, strlen(text), 0600,
                               false, e);
    free(text);
    return r;
}

/* The bundle in the outbox whose header says this sensor and created_ns
 * (read through the outbox descriptor: after the privilege drop the
 * outbox's path may be out of reach). */
static bool find_sealed(struct sensor *s, int64_t created_ns, char *name, size_t cap, pf_header *h)
{
    size_t n;
    bool found = false;
    char **v = pf_list_names(s->outbox_fd, PF_BUNDLE_SUFFIX, &n);
    for (size_t i = 0; i < n && !found; i++) {
        pf_err he;
        pf_err_clear(&he);
        found = pf_bundle_read_header_at(s->outbox_fd, v[i], h, NULL, &he) == 0 &&
                h->created_ns == created_ns && strcmp(h->sensor, s->o->sensor->pub.name) == 0;
        if (found)
            snprintf(name, cap, "%s", v[i]);
    }
    pf_free_names(v, n);
    return found;
}

/* A kill while a bundle or a stats file was being written leaves its
 * ".NAME.XXXXXXXX.part" temp file: in the outbox up to a whole bundle of
 * dead weight that nothing else ever removes (found by tests/cli/chaos.sh).
 * At start nothing of ours is in flight: remove those that start with
 * prefix. */
static void remove_stale_parts(int dirfd, const char *prefix)
{
    int dup = fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
    DIR *d = dup >= 0 ? fdopendir(dup) : NULL;
    if (d == NULL) {
        if (dup >= 0)
            close(dup);
        return;
    }
    rewinddir(d);
    struct dirent *de;
    size_t pl = strlen(prefix);
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        if (strncmp(de->d_name, prefix, pl) == 0 && len > pl + 5 &&
            strcmp(de->d_name + len - 5, ".part") == 0)
            unlinkat(dirfd, de->d_name, 0);
    }
    closedir(d);
}

static int finish_interrupted_seal(struct sensor *s, pf_err *e)
{
    char prefix[PF_NAME_MAX + 3];
    snprintf(prefix, sizeof prefix, ".%s-", s->o->sensor->pub.name);
    remove_stale_parts(s->outbox_fd, prefix); /* bundle create's temp files */
    remove_stale_parts(s->spool_fd, ".");     /* stats files being written */
    uint8_t *raw = NULL;
    size_t len = 0;
    pf_err je;
    pf_err_clear(&je);
    if (faccessat(s->state_fd, SEAL_JOURNAL, F_OK, AT_SYMLINK_NOFOLLOW) != 0)
        return 0;
    if (pf_read_file_at(s->state_fd, SEAL_JOURNAL, SEAL_JOURNAL, 1 << 20, 0, &raw, &len, &je) != 0)
        return pf_err_set(e, PF_EENV, "%s/%s: %s", s->o->state, SEAL_JOURNAL, je.msg);
    json_t *j = json_loadb((const char *)raw, len, 0, NULL);
    pf_free_file(raw, false);
    json_int_t created = 0, next_seq = 0;
    json_t *files = NULL;
    int rc = 0;
    if (j == NULL || json_unpack(j, "{s:I, s:I, s:o}", "created_ns", &created, "next_seq",
                                 &next_seq, "files", &files) != 0) {
        /* written atomically, so only a foreign hand makes it unreadable */
        event(s, PF_EV_WARN, "%s/%s unreadable; ignored", s->o->state, SEAL_JOURNAL);
        goto done;
    }
    char name[NAME_MAX + 1];
    pf_header h;
    pf_seq_state st;
    bool sealed = find_sealed(s, (int64_t)created, name, sizeof name, &h);
    if (pf_state_open_at(&st, s->state_fd, s->o->state, s->o->sensor->pub.name, e) != 0) {
        rc = -1;
        goto done;
    }
    if (sealed && st.last_seq < h.seq) {
        /* killed between the rename and the state commit: commit now, so
         * the next bundle names this one as its predecessor */
        uint8_t hash[PF_HASH_BYTES];
        if (pf_bundle_trailer_hash_at(s->outbox_fd, name, hash) != 0)
            rc = pf_err_set(e, PF_EENV, "%s/%s: no trailer hash", s->o->outbox, name);
        else
            rc = pf_state_commit(&st, h.seq, hash, e);
    }
    /* not in the outbox any more (pruned, dropped for space) but committed */
    bool committed = !sealed && st.last_seq >= (uint64_t)next_seq;
    pf_state_close(&st);
    if (rc != 0)
        goto done;
    if (!sealed && !committed)
        goto done; /* killed before the bundle existed: seal the files again */
    for (size_t i = 0; i < json_array_size(files); i++) {
        const char *f = json_string_value(json_array_get(files, i));
        char sname[NAME_MAX + 16];
        if (f == NULL || strchr(f, '/') != NULL)
            continue;
        snprintf(sname, sizeof sname, "%s%s", f, STATS_SUFFIX);
        unlinkat(s->spool_fd, f, 0);
        unlinkat(s->spool_fd, sname, 0);
    }
    event(s, PF_EV_WARN, "interrupted sealing finished: %zu file(s) already in bundle=%s",
          json_array_size(files), sealed ? name : "(committed, no longer in the outbox)");
done:
    json_decref(j);
    if (rc == 0)
        rc = pf_fsync_dirfd(s->spool_fd, s->o->spool, e);
    if (rc == 0)
        unlinkat(s->state_fd, SEAL_JOURNAL, 0);
    return rc;
}

static int seal_batch(struct sensor *s, char **names, size_t n, json_t *gaps, json_t *carried,
                      pf_err *e)
{
    pf_create_input in[64];
    pf_create_result res;
    int rc = -1;
    memset(in, 0, sizeof in);
    for (size_t i = 0; i < n; i++) {
        in[i].path = names[i];
        in[i].use_fd = true;
        in[i].fd = openat(s->spool_fd, names[i], O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        in[i].capture_stats = read_stats(s, names[i]);
        if (in[i].fd < 0) {
            pf_err_sys(e, errno, "%s/%s: cannot open", s->o->spool, names[i]);
            goto out;
        }
    }
    json_t *settings = json_deep_copy(s->capture_settings);
    /* -r files of another link type, a file recovered from another run:
     * the settings describe the link type of the files in this bundle. */
    uint32_t lt;
    if (pread(in[0].fd, &lt, sizeof lt, 20) == (ssize_t)sizeof lt && (int)lt != s->link_type) {
        const char *ltn = pcap_datalink_val_to_name((int)lt);
        json_object_set_new(settings, "link_type", json_integer((json_int_t)lt));
        json_object_set_new(settings, "link_type_name", ltn ? json_string(ltn) : json_null());
    }
    if (json_array_size(gaps) > 0)
        json_object_set(settings, "gaps_before_this_bundle", gaps);
    pf_create_opts co = {.sensor = s->o->sensor,
                         .central = s->o->central,
                         .outdir = s->o->outbox,
                         .state_dir = s->o->state,
                         .level = s->o->level,
                         .workers = s->o->workers,
                         .allow_unreadable = true, /* our own files: always carry them */
                         .capture = settings,
                         .use_outdir_fd = true,
                         .outdir_fd = s->outbox_fd,
                         .use_state_fd = true,
                         .state_fd = s->state_fd,
                         .created_ns = pf_now_ns()};
    if (write_journal(s, names, n, co.created_ns, e) != 0) {
        json_decref(settings);
        goto out;
    }
    pf_failpoint("seal-start");
    int r = pf_bundle_create(&co, in, n, &res, e);
    json_decref(settings);
    if (r != 0)
        goto out;
    pf_failpoint("seal-created"); /* the bundle is in the outbox, the plaintext still here */
    if (json_array_size(gaps) > 0)
        json_object_set_new(carried, res.name, json_deep_copy(gaps));
    json_array_clear(gaps);
    for (size_t i = 0; i < n; i++) {
        char sname[NAME_MAX + 16];
        snprintf(sname, sizeof sname, "%s%s", names[i], STATS_SUFFIX);
        unlinkat(s->spool_fd, names[i], 0); /* plaintext gone once sealed */
        pf_failpoint("seal-pcap-removed");
        unlinkat(s->spool_fd, sname, 0);
        pthread_mutex_lock(&s->sh.mu);
        json_object_del(s->sh.pending_stats, names[i]);
        json_object_del(s->sh.handed, names[i]);
        pthread_mutex_unlock(&s->sh.mu);
    }
    pf_fsync_dirfd(s->spool_fd, s->o->spool, e);
    unlinkat(s->state_fd, SEAL_JOURNAL, 0); /* a stale one only costs a look at the outbox */
    pf_failpoint("seal-done");
    pthread_mutex_lock(&s->sh.mu);
    snprintf(s->sh.last_bundle, sizeof s->sh.last_bundle, "%s", res.name);
    s->sh.last_seq = res.seq;
    s->sh.bundles_made++;
    pthread_mutex_unlock(&s->sh.mu);
    event(s, PF_EV_INFO,
          "sealed bundle=%s seq=%" PRIu64 " files=%zu packets=%" PRIu64 " bytes=%" PRIu64
          " sealed_bytes=%" PRIu64,
          res.path, res.seq, n, res.packets, res.bytes_in, res.bytes_out);
    rc = 0;
out:
    for (size_t i = 0; i < n; i++) {
        if (in[i].use_fd && in[i].fd >= 0)
            close(in[i].fd);
        json_decref(in[i].capture_stats);
    }
    return rc;
}

static void forward_event(void *ctx, enum pf_event_level level, const char *line)
{
    struct sensor *s = ctx;
    if (s->o->event != NULL)
        s->o->event(s->o->ctx, level, line);
}

/* Receipts in the inbox delete exactly the bundles they confirm. */
static void prune_from_inbox(struct sensor *s, int64_t *next)
{
    int64_t now = mono_ns();
    if (s->o->receipts_dir == NULL || now < *next)
        return;
    *next = now + 10 * 1000000000LL;
    pf_prune_result r;
    pf_err e;
    pf_err_clear(&e);
    if (pf_bundle_prune(s->outbox_fd, s->o->outbox, s->o->receipts_dir, s->o->central,
                        forward_event, s, &r, &e) != 0)
        event(s, PF_EV_WARN, "pruning from receipts failed: %s", e.msg);
}

/* The sealer and the threads it starts (zstd workers, the writer, the
 * hashers) inherit this nice value; the capture thread keeps its own. The
 * scheduler shares a core per thread, so without it four busy sealing
 * threads left the capture thread a fifth of its core and it dropped
 * packets that tcpdump kept (bench/capture.sh at 366 kpps). The spool
 * absorbs a burst; the sealer catches up afterwards. */
#define SEALER_NICE 10

static void *sealer_main(void *arg)
{
    struct sensor *s = arg;
    if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), SEALER_NICE) != 0)
        event(s, PF_EV_WARN, "cannot lower the sealer's priority: %s", strerror(errno));
    json_t *gaps = json_array();
    json_t *carried = json_object(); /* bundle name -> the gaps it lists */
    int64_t next_prune = 0;
    for (;;) {
        prune_from_inbox(s, &next_prune);
        pthread_mutex_lock(&s->sh.mu);
        if (!s->sh.work && !s->sh.done) {
            struct timespec until; /* the cv waits on the monotonic clock */
            clock_gettime(CLOCK_MONOTONIC, &until);
            until.tv_sec += 1;
            pthread_cond_timedwait(&s->sh.cv, &s->sh.mu, &until);
        }
        s->sh.work = false;
        bool done = s->sh.done;
        pthread_mutex_unlock(&s->sh.mu);

        size_t n;
        char **v = pf_list_names(s->spool_fd, ".pcap", &n);
        hand_over_order(s, v, n);
        if (n == 0) {
            pf_free_names(v, n);
            uint64_t b;
            uint64_t used = outbox_usage(s, &b);
            pthread_mutex_lock(&s->sh.mu);
            s->sh.outbox_bytes = used;
            s->sh.outbox_bundles = b;
            pthread_mutex_unlock(&s->sh.mu);
            if (done)
                break;
            continue;
        }
        /* One pcap per bundle, or as many as fit under --bundle-max-size. */
        size_t take = 0;
        uint64_t size = 0;
        while (take < n && take < 64) {
            struct stat st;
            uint64_t sz = fstatat(s->spool_fd, v[take], &st, 0) == 0 ? (uint64_t)st.st_size : 0;
            if (take > 0 && (s->o->bundle_max == 0 || size + sz > s->o->bundle_max))
                break;
            size += sz;
            take++;
        }
        if (!make_room(s, size, gaps, carried)) {
            pf_free_names(v, n);
            if (done) {
                event(s, PF_EV_WARN,
                      "stopping with %zu capture file(s) left in the spool "
                      "(outbox full); they are sealed at the next start",
                      n);
                break;
            }
            sleep(1);
            continue;
        }
        pf_err e;
        pf_err_clear(&e);
        if (seal_batch(s, v, take, gaps, carried, &e) != 0) {
            event(s, pf_err_is_nospace(&e) ? PF_EV_WARN : PF_EV_ERROR,
                  "sealing failed (%s); retrying", e.msg);
            pf_free_names(v, n);
            /* Stopping with a full outbox: retrying would never end (and
             * burn a seq per attempt). Leave the files in the spool for
             * the next start, as --when-full stop does. */
            if (done && pf_err_is_nospace(&e)) {
                event(s, PF_EV_WARN,
                      "stopping with %zu capture file(s) left in the spool (outbox full); "
                      "they are sealed at the next start",
                      n);
                break;
            }
            if (done) {
                pthread_mutex_lock(&s->sh.mu);
                s->sh.fatal = 1;
                s->sh.err = e;
                pthread_mutex_unlock(&s->sh.mu);
                break;
            }
            sleep(1);
            continue;
        }
        pf_free_names(v, n);
        pthread_mutex_lock(&s->sh.mu);
        s->sh.work = true; /* more may be waiting */
        pthread_mutex_unlock(&s->sh.mu);
    }
    json_decref(gaps);
    json_decref(carried);
    return NULL;
}

/* ---------- recovery, status ---------- */

/* A crash or power cut leaves .active-* files: cut each back to its last
 * complete record and hand it to the sealer, flagged as recovered. */
static int recover_spool(struct sensor *s, pf_err *e)
{
    int dup = fcntl(s->spool_fd, F_DUPFD_CLOEXEC, 0);
    DIR *d = dup >= 0 ? fdopendir(dup) : NULL;
    if (d == NULL) {
        if (dup >= 0)
            close(dup);
        return pf_err_sys(e, errno, "%s: cannot list spool", s->o->spool);
    }
    /* The dup shares its position with spool_fd, which hand_over() has
     * read to the end: start from the beginning. */
    rewinddir(d);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strncmp(de->d_name, ACTIVE_PREFIX, strlen(ACTIVE_PREFIX)) != 0)
            continue;
        const char *ready = de->d_name + strlen(ACTIVE_PREFIX);
        uint64_t packets = 0, cut = 0;
        pf_err re;
        pf_err_clear(&re);
        if (pf_pcap_recover(s->spool_fd, de->d_name, &packets, &cut, &re) != 0) {
            event(s, PF_EV_WARN, "file=%s not recoverable (%s); removed", de->d_name, re.msg);
            unlinkat(s->spool_fd, de->d_name, 0);
            continue;
        }
        if (packets == 0) {
            unlinkat(s->spool_fd, de->d_name, 0);
            continue;
        }
        json_t *j = json_pack("{s:b, s:I, s:I, s:s}", "recovered", 1, "packets_saved",
                              (json_int_t)packets, "bytes_cut", (json_int_t)cut, "note",
                              "interrupted by a crash or power cut; cut back to the last "
                              "complete record; counters of that window are lost");
        char *text = json_dumps(j, JSON_COMPACT);
        json_decref(j);
        char sname[NAME_MAX + 16];
        snprintf(sname, sizeof sname, "%s%s", ready, STATS_SUFFIX);
        int r = text ? pf_atomic_write_at(s->spool_fd, s->o->spool, sname, text, strlen(text), 0600,
                                          false, e)
                     : -1;
        free(text);
        if (r != 0 || renameat(s->spool_fd, de->d_name, s->spool_fd, ready) != 0) {
            closedir(d);
            return r != 0 ? -1 : pf_err_sys(e, errno, "%s: cannot hand over", ready);
        }
        event(s, PF_EV_WARN, "recovered file=%s packets=%" PRIu64 " bytes_cut=%" PRIu64, ready,
              packets, cut);
    }
    closedir(d);
    return pf_fsync_dirfd(s->spool_fd, s->o->spool, e);
}

static void write_status(struct sensor *s)
{
    pf_err e;
    char now[PF_ISOTIME_BYTES];
    pf_err_clear(&e);
    pf_isotime_ns(now, sizeof now, pf_now_ns());
    pthread_mutex_lock(&s->sh.mu);
    json_t *j = json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:s, s:I, s:I, s:I, s:s, s:I, s:b}",
                          "time", now, "source", s->live ? s->o->iface : "files", "packets_seen",
                          (json_int_t)s->total_seen, "packets_saved", (json_int_t)s->total_saved,
                          "packets_not_saved", (json_int_t)s->total_not_saved, "dropped_kernel",
                          (json_int_t)s->last_ps.ps_drop, "dropped_interface",
                          (json_int_t)s->last_ps.ps_ifdrop, "current_file", s->open ? s->ready : "",
                          "current_file_bytes", (json_int_t)(s->open ? s->w.bytes : 0),
                          "outbox_bytes", (json_int_t)s->sh.outbox_bytes, "outbox_bundles",
                          (json_int_t)s->sh.outbox_bundles, "last_bundle", s->sh.last_bundle,
                          "last_seq", (json_int_t)s->sh.last_seq, "paused", s->sh.paused);
    pthread_mutex_unlock(&s->sh.mu);
    char *text = j ? json_dumps(j, JSON_INDENT(2)) : NULL;
    json_decref(j);
    if (text != NULL)
        pf_atomic_write_at(s->state_fd, s->o->state, "status.json", text, strlen(text), 0644, false,
                           &e);
    free(text);
}

static void log_stats(struct sensor *s)
{
    pthread_mutex_lock(&s->sh.mu);
    uint64_t ob = s->sh.outbox_bytes, made = s->sh.bundles_made;
    pthread_mutex_unlock(&s->sh.mu);
    event(s, PF_EV_INFO,
          "stats seen=%" PRIu64 " saved=%" PRIu64 " not_saved=%" PRIu64
          " dropped_kernel=%u dropped_interface=%u bundles=%" PRIu64 " outbox_bytes=%" PRIu64,
          s->total_seen, s->total_saved, s->total_not_saved, s->last_ps.ps_drop,
          s->last_ps.ps_ifdrop, made, ob);
}

/* ---------- set-up and the loop ---------- */

static int open_handle(struct sensor *s, const char *file, pf_err *e)
{
    char errbuf[PCAP_ERRBUF_SIZE] = "";
    const pf_sensor_opts *o = s->o;
    if (file != NULL) {
        size_t k = 0;
        while (k < o->nread && o->read_files[k] != file)
            k++;
        FILE *fp = s->inputs != NULL && k < o->nread ? s->inputs[k] : NULL;
        if (fp != NULL) {
            s->inputs[k] = NULL; /* libpcap owns it now */
            s->p = pcap_fopen_offline_with_tstamp_precision(fp, PCAP_TSTAMP_PRECISION_NANO, errbuf);
            if (s->p == NULL)
                fclose(fp);
        } else {
            s->p =
                pcap_open_offline_with_tstamp_precision(file, PCAP_TSTAMP_PRECISION_NANO, errbuf);
        }
        if (s->p == NULL)
            return pf_err_set(e, PF_EREJECT, "%s: libpcap cannot read it: %s", file, errbuf);
        s->nano = true;
    } else {
        s->p = pcap_create(o->iface, errbuf);
        if (s->p == NULL)
            return pf_err_set(e, PF_EENV, "-i %s: %s", o->iface, errbuf);
        pcap_set_snaplen(s->p, (int)o->snaplen);
        pcap_set_promisc(s->p, o->promisc);
        pcap_set_timeout(s->p, 100);
        if (o->buffer_kib > 0)
            pcap_set_buffer_size(s->p, o->buffer_kib * 1024);
        s->nano = pcap_set_tstamp_precision(s->p, PCAP_TSTAMP_PRECISION_NANO) == 0;
        int r = pcap_activate(s->p);
        if (r < 0)
            return pf_err_set(e, r == PCAP_ERROR_PERM_DENIED ? PF_EUSAGE : PF_EENV, "-i %s: %s%s%s",
                              o->iface, pcap_statustostr(r), pcap_geterr(s->p)[0] ? ": " : "",
                              pcap_geterr(s->p));
        if (r > 0)
            event(s, PF_EV_WARN, "-i %s: %s", o->iface, pcap_statustostr(r));
        s->nano = pcap_get_tstamp_precision(s->p) == PCAP_TSTAMP_PRECISION_NANO;
        if (pcap_setnonblock(s->p, 1, errbuf) != 0)
            return pf_err_set(e, PF_EENV, "-i %s: %s", o->iface, errbuf);
    }
    if (o->filter != NULL && o->filter[0] != '\0') {
        struct bpf_program prog;
        if (pcap_compile(s->p, &prog, o->filter, 1, PCAP_NETMASK_UNKNOWN) != 0)
            return pf_err_set(e, PF_EUSAGE, "filter '%s': %s", o->filter, pcap_geterr(s->p));
        int r = pcap_setfilter(s->p, &prog);
        pcap_freecode(&prog);
        if (r != 0)
            return pf_err_set(e, PF_EENV, "filter '%s': %s", o->filter, pcap_geterr(s->p));
    }
    s->link_type = pcap_datalink(s->p);
    s->snaplen = (uint32_t)pcap_snapshot(s->p);
    return 0;
}

static json_t *settings_json(struct sensor *s)
{
    const pf_sensor_opts *o = s->o;
    const char *name = pcap_datalink_val_to_name(s->link_type);
    json_t *rules = json_array();
    for (size_t i = 0; i < o->nrules; i++)
        json_array_append_new(rules, json_pack("{s:s, s:I}", "bpf", o->rules[i].expr, "keep",
                                               (json_int_t)o->rules[i].keep));
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    return json_pack("{s:s, s:s?, s:s?, s:I, s:i, s:s?, s:b, s:I, s:I, s:o, s:s, s:s}", "source",
                     s->live ? "live" : "files", "interface", o->iface, "filter", o->filter,
                     "snaplen", (json_int_t)s->snaplen, "link_type", s->link_type, "link_type_name",
                     name, "promiscuous", s->live && o->promisc, "rotate_seconds",
                     (json_int_t)o->rotate_seconds, "rotate_bytes", (json_int_t)o->rotate_bytes,
                     "dont_save", rules, "hostname", host, "ts_resolution", s->nano ? "ns" : "us");
}

static int capture_live(struct sensor *s, pf_err *e)
{
    int fd = pcap_get_selectable_fd(s->p);
    int64_t next_status = mono_ns();
    if (open_file(s, pf_now_ns(), e) != 0)
        return -1;
    /* Jumps are measured from here on, across files: a rotation must not
     * hide one (a packet-driven rotation used to reset this and swallow a
     * forward jump). */
    s->last_offset = s->fs.offset_start_ns;
    while (!s->sig->stop && !s->failed) {
        int64_t now = mono_ns();
        int64_t wait = s->deadline_mono - now;
        if (next_status - now < wait)
            wait = next_status - now;
        if (wait > 1000000000)
            wait = 1000000000;
        if (wait < 0)
            wait = 0;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int r = poll(&pfd, 1, (int)(wait / 1000000));
        if (r < 0 && errno != EINTR)
            return pf_err_sys(e, errno, "poll on the capture handle failed");
        if (r > 0) {
            int n = pcap_dispatch(s->p, -1, on_packet, (u_char *)(void *)s);
            if (n == PCAP_ERROR)
                return pf_err_set(e, PF_EENV, "-i %s: %s", s->o->iface, pcap_geterr(s->p));
        }
        if (s->failed)
            break;
        now = mono_ns();
        int64_t offset = pf_now_ns() - now;
        int64_t jump = offset - s->last_offset;
        if (jump > CLOCK_JUMP_NS || jump < -CLOCK_JUMP_NS) {
            s->fs.clock_jump_ns += jump;
            event(s, PF_EV_WARN, "wall clock jumped by %+" PRId64 " ms", jump / 1000000);
        }
        s->last_offset = offset;
        int64_t wall = pf_now_ns();
        if (s->rotate_now || s->sig->rotate) {
            const char *why = s->rotate_now ? "size" : "signal";
            s->rotate_now = false;
            s->sig->rotate = 0;
            if (rotate(s, why, wall, wall, e) != 0)
                return -1;
        } else if (now >= s->deadline_mono) {
            /* a quiet window closes on time; after a long gap or a clock
             * jump either way the next window starts at the current time
             * (continuing the old windows after a jump back would stall
             * rotation for as long as the jump) */
            int64_t g = (int64_t)s->o->rotate_seconds * 1000000000;
            int64_t d = wall - s->file_boundary;
            int64_t next = d >= -CLOCK_JUMP_NS && d < g ? s->file_boundary
                                                        : window_floor(wall, s->o->rotate_seconds);
            if (rotate(s, "time", s->file_boundary, next, e) != 0)
                return -1;
        }
        if (s->sig->report) {
            s->sig->report = 0;
            log_stats(s);
        }
        if (now >= next_status) {
            struct pcap_stat ps;
            if (pcap_stats(s->p, &ps) == 0)
                s->last_ps = ps;
            write_status(s);
            next_status =
                now + (int64_t)(s->o->status_seconds ? s->o->status_seconds : 5) * 1000000000;
        }
    }
    if (s->failed)
        return -1;
    /* Stopping: the kernel hands packets over a ring block at a time, when
     * the block fills or its 100 ms timeout retires it, so the last packets
     * before SIGTERM may not have been visible yet (tests/cli/chaos.sh lost
     * 40 that way). Take them, for at most the grace period. */
    for (int64_t until = mono_ns() + ROTATE_GRACE_NS; !s->failed;) {
        int64_t left = until - mono_ns();
        if (left <= 0)
            break;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int r = poll(&pfd, 1, (int)(left / 1000000) + 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        if (pcap_dispatch(s->p, -1, on_packet, (u_char *)(void *)s) == PCAP_ERROR)
            return pf_err_set(e, PF_EENV, "-i %s: %s", s->o->iface, pcap_geterr(s->p));
    }
    if (s->failed)
        return -1;
    return close_file(s, "stop", pf_now_ns(), e);
}

static int capture_files(struct sensor *s, pf_err *e)
{
    for (size_t i = 0; i < s->o->nread && !s->sig->stop; i++) {
        if (i > 0) {
            pcap_close(s->p);
            s->p = NULL;
            int old_link = s->link_type;
            if (open_handle(s, s->o->read_files[i], e) != 0)
                return -1;
            /* a pcap holds one link type: a new one starts a new file */
            if (s->link_type != old_link && close_file(s, "link-type", s->last_ts, e) != 0)
                return -1;
        }
        for (;;) {
            int n = pcap_dispatch(s->p, 4096, on_packet, (u_char *)(void *)s);
            if (s->failed)
                return -1;
            if (n == PCAP_ERROR) {
                event(s, PF_EV_WARN, "%s: %s (keeping the packets read before)",
                      s->o->read_files[i], pcap_geterr(s->p));
                break;
            }
            if (n == 0 || s->sig->stop)
                break;
        }
    }
    return close_file(s, "end of input", s->last_ts, e);
}

int pf_sensor_run(const pf_sensor_opts *o, pf_sensor_signals *sig, pf_err *e)
{
    struct sensor s;
    pthread_t sealer;
    bool sealer_started = false;
    int rc = -1;

    memset(&s, 0, sizeof s);
    s.o = o;
    s.sig = sig;
    s.e = e;
    s.spool_fd = s.outbox_fd = s.state_fd = -1;
    s.live = o->iface != NULL;
    s.w.fd = -1;
    pthread_mutex_init(&s.sh.mu, NULL);
    /* The sealer's idle wait must not stretch when the wall clock jumps
     * back: wait on the monotonic clock. */
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s.sh.cv, &ca);
    pthread_condattr_destroy(&ca);
    s.sh.pending_stats = json_object();
    s.sh.handed = json_object();
    if (s.live == (o->nread > 0)) {
        pf_err_set(e, PF_EUSAGE, "capture needs either -i IFACE or -r FILE");
        goto out;
    }
    if (s.live && strcmp(o->iface, "any") == 0 && !o->allow_any) {
        pf_err_set(e, PF_EUSAGE,
                   "-i any: Linux's 'any' device replaces each frame's link layer with a cooked "
                   "header (MACs, VLAN tags and the Ethernet layer are lost); name the interface, "
                   "or pass --allow-any if that is acceptable");
        goto out;
    }
    if (geteuid() == 0 && o->user == NULL && !o->no_drop) {
        pf_err_set(e, PF_EUSAGE,
                   "refusing to capture as root: give -Z USER (e.g. -Z pcapferry) or --no-drop");
        goto out;
    }
    /* As root: the capture handle and the directories. */
    if (open_handle(&s, s.live ? NULL : o->read_files[0], e) != 0)
        goto out;
    s.flows.nrules = o->nrules;
    memcpy(s.flows.rules, o->rules, sizeof s.flows.rules);
    if (pf_flows_init(&s.flows, s.p, e) != 0)
        goto out;
    if ((s.spool_fd = open_dir(o->spool, 0700, e)) < 0 ||
        (s.outbox_fd = open_dir(o->outbox, 0750, e)) < 0 ||
        (s.state_fd = open_dir(o->state, 0700, e)) < 0)
        goto out;
    if (!s.live && o->nread > 1) {
        s.inputs = calloc(o->nread, sizeof *s.inputs);
        if (s.inputs == NULL) {
            pf_err_set(e, PF_EENV, "out of memory");
            goto out;
        }
        for (size_t i = 1; i < o->nread; i++)
            if ((s.inputs[i] = fopen(o->read_files[i], "rb")) == NULL) {
                pf_err_sys(e, errno, "%s: cannot open", o->read_files[i]);
                goto out;
            }
    }
    /* Then drop to the capture user; from here on only the descriptors. */
    if (drop_privileges(&s, e) != 0)
        goto out;
    if (recover_spool(&s, e) != 0 || finish_interrupted_seal(&s, e) != 0)
        goto out;
    s.capture_settings = settings_json(&s);
    if (pthread_create(&sealer, NULL, sealer_main, &s) != 0) {
        pf_err_set(e, PF_EENV, "cannot start the sealer thread");
        goto out;
    }
    sealer_started = true;
    notify_sealer(&s); /* files recovered or left from the last run */
    event(&s, PF_EV_INFO, "capturing source=%s link_type=%d snaplen=%u ts=%s spool=%s outbox=%s",
          s.live ? o->iface : o->read_files[0], s.link_type, s.snaplen, s.nano ? "ns" : "us",
          o->spool, o->outbox);
    int r = s.live ? capture_live(&s, e) : capture_files(&s, e);
    if (r != 0 && e->status == PF_OK)
        pf_err_set(e, PF_EENV, "capture failed");
    if (s.live)
        log_stats(&s);
    rc = r;
out:
    if (sealer_started) {
        pthread_mutex_lock(&s.sh.mu);
        s.sh.done = true;
        s.sh.work = true;
        pthread_cond_signal(&s.sh.cv);
        pthread_mutex_unlock(&s.sh.mu);
        pthread_join(sealer, NULL);
        if (s.sh.fatal && rc == 0) {
            *e = s.sh.err;
            rc = -1;
        }
        write_status(&s);
    }
    if (s.open)
        pf_pcapw_close(&s.w, true, e);
    for (size_t i = 0; s.inputs != NULL && i < o->nread; i++)
        if (s.inputs[i] != NULL)
            fclose(s.inputs[i]);
    free(s.inputs);
    pf_flows_free(&s.flows);
    json_decref(s.capture_settings);
    if (s.p != NULL)
        pcap_close(s.p);
    if (s.spool_fd >= 0)
        close(s.spool_fd);
    if (s.outbox_fd >= 0)
        close(s.outbox_fd);
    if (s.state_fd >= 0)
        close(s.state_fd);
    json_decref(s.sh.pending_stats);
    json_decref(s.sh.handed);
    pthread_mutex_destroy(&s.sh.mu);
    pthread_cond_destroy(&s.sh.cv);
    return rc;
}
