#include "capture/internal.h"

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
                cap_event(s, PF_EV_WARN,
                          "outbox file system full (%" PRIu64 " bytes free, about %" PRIu64
                          " needed): sealing waits for room",
                          avail, need + need / 64 + (64u << 10));
            s->outbox_fs_full = true;
            return false;
        }
        if (s->outbox_fs_full && !over)
            cap_event(s, PF_EV_INFO, "outbox file system has room again: sealing resumes");
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
                cap_event(s, PF_EV_WARN, "outbox has room again: capture resumed");
            return true;
        }
        if (o->when_full_stop) {
            if (!was_paused)
                cap_event(s, PF_EV_WARN,
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
        cap_event(s, PF_EV_WARN, "outbox full: deleted %s bundle=%s (--when-full drop-oldest)",
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
 * cap_finish_interrupted_seal() looks for that bundle and, if it exists (or
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

int cap_finish_interrupted_seal(struct sensor *s, pf_err *e)
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
        cap_event(s, PF_EV_WARN, "%s/%s unreadable; ignored", s->o->state, SEAL_JOURNAL);
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
    cap_event(s, PF_EV_WARN, "interrupted sealing finished: %zu file(s) already in bundle=%s",
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
    cap_event(s, PF_EV_INFO,
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
    int64_t now = cap_mono_ns();
    if (s->o->receipts_dir == NULL || now < *next)
        return;
    *next = now + 10 * 1000000000LL;
    pf_prune_result r;
    pf_err e;
    pf_err_clear(&e);
    if (pf_bundle_prune(s->outbox_fd, s->o->outbox, s->o->receipts_dir, s->o->central,
                        forward_event, s, &r, &e) != 0)
        cap_event(s, PF_EV_WARN, "pruning from receipts failed: %s", e.msg);
}

/* The sealer and the threads it starts (zstd workers, the writer, the
 * hashers) inherit this nice value; the capture thread keeps its own. The
 * scheduler shares a core per thread, so without it four busy sealing
 * threads left the capture thread a fifth of its core and it dropped
 * packets that tcpdump kept (bench/capture.sh at 366 kpps). The spool
 * absorbs a burst; the sealer catches up afterwards. */
#define SEALER_NICE 10

void *cap_sealer_main(void *arg)
{
    struct sensor *s = arg;
    if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), SEALER_NICE) != 0)
        cap_event(s, PF_EV_WARN, "cannot lower the sealer's priority: %s", strerror(errno));
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
                cap_event(s, PF_EV_WARN,
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
            cap_event(s, pf_err_is_nospace(&e) ? PF_EV_WARN : PF_EV_ERROR,
                      "sealing failed (%s); retrying", e.msg);
            pf_free_names(v, n);
            /* Stopping with a full outbox: retrying would never end (and
             * burn a seq per attempt). Leave the files in the spool for
             * the next start, as --when-full stop does. */
            if (done && pf_err_is_nospace(&e)) {
                cap_event(s, PF_EV_WARN,
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
