#include "capture/internal.h"

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

int64_t cap_window_floor(int64_t ns, unsigned seconds)
{
    int64_t g = (int64_t)seconds * 1000000000;
    return seconds > 0 ? ns / g * g : ns;
}

int cap_open_file(struct sensor *s, int64_t start_ns, pf_err *e)
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
    int64_t now_wall = pf_now_ns(), now_mono = cap_mono_ns();
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

void cap_notify_sealer(struct sensor *s)
{
    pthread_mutex_lock(&s->sh.mu);
    s->sh.work = true;
    pthread_cond_signal(&s->sh.cv);
    pthread_mutex_unlock(&s->sh.mu);
}

/* Packets a failed flush threw out of the write buffer were counted as
 * saved when they were buffered: they are lost to the full (or failing)
 * spool instead. */
void cap_count_discarded(struct sensor *s)
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
int cap_close_file(struct sensor *s, const char *reason, int64_t end, pf_err *e)
{
    struct pcap_stat ps, *psp = NULL;
    pf_err ce;
    if (!s->open)
        return 0;
    s->open = false;
    pf_err_clear(&ce);
    int closed = pf_pcapw_close(&s->w, true, &ce);
    cap_count_discarded(s);
    if (closed != 0) {
        /* A failed flush can leave half a record: cut it off. */
        uint64_t kept = 0, cut = 0;
        pf_err re;
        pf_err_clear(&re);
        cap_event(s, PF_EV_WARN, "file=%s close failed (%s); keeping its complete records",
                  s->active, ce.msg);
        if (pf_pcap_recover(s->spool_fd, s->active, &kept, &cut, &re) != 0) {
            /* nothing of it can be sealed: count its packets as lost to
             * the disk in the next file, so the gap stays on record */
            cap_event(s, PF_EV_ERROR,
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
        cap_event(s, PF_EV_WARN, "file=%s statistics kept in memory: %s", s->ready, se.msg);
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
    cap_event(s, PF_EV_DEBUG, "rotated file=%s packets=%" PRIu64 " by=%s", s->ready, s->fs.saved,
              reason);
    cap_notify_sealer(s);
    rc = 0;
out:
    json_decref(j);
    free(text);
    return rc;
}

/* The window [start, end) closes; the next one starts at next_start. */
int cap_rotate(struct sensor *s, const char *reason, int64_t end, int64_t next_start_ns, pf_err *e)
{
    if (cap_close_file(s, reason, end, e) != 0)
        return -1;
    return cap_open_file(s, next_start_ns, e);
}

/* ---------- recovery, status ---------- */

/* A crash or power cut leaves .active-* files: cut each back to its last
 * complete record and hand it to the sealer, flagged as recovered. */
int cap_recover_spool(struct sensor *s, pf_err *e)
{
    int dup = fcntl(s->spool_fd, F_DUPFD_CLOEXEC, 0);
    DIR *d = dup >= 0 ? fdopendir(dup) : NULL;
    if (d == NULL) {
        if (dup >= 0)
            close(dup);
        return pf_err_sys(e, errno, "%s: cannot list spool", s->o->spool);
    }
    /* The dup shares its position with spool_fd, which cap_hand_over() has
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
            cap_event(s, PF_EV_WARN, "file=%s not recoverable (%s); removed", de->d_name, re.msg);
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
        cap_event(s, PF_EV_WARN, "recovered file=%s packets=%" PRIu64 " bytes_cut=%" PRIu64, ready,
                  packets, cut);
    }
    closedir(d);
    return pf_fsync_dirfd(s->spool_fd, s->o->spool, e);
}
