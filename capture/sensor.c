#include "capture/internal.h"

void cap_event(struct sensor *s, enum pf_event_level level, const char *fmt, ...)
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

int64_t cap_mono_ns(void)
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
int cap_hand_over(int dirfd, const char *path, uid_t uid, gid_t gid, pf_err *e)
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
            cap_event(s, PF_EV_WARN, "not running as root: -Z %s has nothing to drop", o->user);
        return 0;
    }
    if (o->user == NULL) {
        if (o->no_drop) {
            cap_event(s, PF_EV_WARN, "keeping root privileges (--no-drop)");
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
    if (cap_hand_over(s->spool_fd, o->spool, pw->pw_uid, pw->pw_gid, e) != 0 ||
        cap_hand_over(s->outbox_fd, o->outbox, pw->pw_uid, pw->pw_gid, e) != 0 ||
        cap_hand_over(s->state_fd, o->state, pw->pw_uid, pw->pw_gid, e) != 0)
        return -1;
    gid_t gid = pw->pw_gid;
    if (setgroups(1, &gid) != 0 || setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0)
        return pf_err_sys(e, errno, "cannot drop privileges to %s", o->user);
    if (setuid(0) == 0 || seteuid(0) == 0)
        return pf_err_set(e, PF_EENV, "privilege drop to %s did not stick", o->user);
    /* Nothing this process runs may gain privileges again. */
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        return pf_err_sys(e, errno, "PR_SET_NO_NEW_PRIVS failed");
    cap_event(s, PF_EV_INFO, "dropped privileges user=%s uid=%u gid=%u", o->user,
              (unsigned)pw->pw_uid, (unsigned)pw->pw_gid);
    return 0;
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
    if (!s->open && cap_open_file(s, cap_window_floor(ts, s->o->rotate_seconds), s->e) != 0) {
        s->failed = true;
        return;
    }
    /* Live, a packet stamped well before this window means the wall clock
     * went back (the kernel stamps packets with it): start a window on the
     * new clock instead of filing the packet under a time it is not from
     * (the forward case is the test below). */
    if (s->live && ts < s->fs.start_ns - CLOCK_JUMP_NS &&
        cap_rotate(s, "clock", s->last_ts > s->fs.start_ns ? s->last_ts : s->fs.start_ns,
                   cap_window_floor(ts, s->o->rotate_seconds), s->e) != 0) {
        s->failed = true;
        return;
    }
    /* A packet from the next window closes this one, live or not; the
     * timer only closes windows no packet crossed. */
    if (ts >= s->file_boundary &&
        cap_rotate(s, "time", s->file_boundary, cap_window_floor(ts, s->o->rotate_seconds), s->e) !=
            0) {
        s->failed = true;
        return;
    }
    /* -r: -C rotates before the next packet, not after a batch of 4096 */
    if (!s->live && s->rotate_now) {
        s->rotate_now = false;
        if (s->fs.saved > 0 && cap_rotate(s, "size", s->last_ts, ts, s->e) != 0) {
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
        if (cap_mono_ns() < s->disk_full_until) {
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
        cap_count_discarded(s);
        s->fs.not_saved_disk_full++;
        s->total_not_saved++;
        if (!s->disk_full)
            cap_event(s, PF_EV_WARN, "spool write failed (%s); packets are counted as not saved",
                      we.msg);
        s->disk_full = true;
        s->disk_full_until = cap_mono_ns() + 1000000000;
        return;
    }
    s->fs.saved++;
    s->total_saved++;
    if (s->o->rotate_bytes > 0 && s->w.bytes >= s->o->rotate_bytes)
        s->rotate_now = true;
}

/* ---------- status ---------- */

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
    cap_event(s, PF_EV_INFO,
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
            cap_event(s, PF_EV_WARN, "-i %s: %s", o->iface, pcap_statustostr(r));
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
    int64_t next_status = cap_mono_ns();
    if (cap_open_file(s, pf_now_ns(), e) != 0)
        return -1;
    /* Jumps are measured from here on, across files: a rotation must not
     * hide one (a packet-driven rotation used to reset this and swallow a
     * forward jump). */
    s->last_offset = s->fs.offset_start_ns;
    while (!s->sig->stop && !s->failed) {
        int64_t now = cap_mono_ns();
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
        now = cap_mono_ns();
        int64_t offset = pf_now_ns() - now;
        int64_t jump = offset - s->last_offset;
        if (jump > CLOCK_JUMP_NS || jump < -CLOCK_JUMP_NS) {
            s->fs.clock_jump_ns += jump;
            cap_event(s, PF_EV_WARN, "wall clock jumped by %+" PRId64 " ms", jump / 1000000);
        }
        s->last_offset = offset;
        int64_t wall = pf_now_ns();
        if (s->rotate_now || s->sig->rotate) {
            const char *why = s->rotate_now ? "size" : "signal";
            s->rotate_now = false;
            s->sig->rotate = 0;
            if (cap_rotate(s, why, wall, wall, e) != 0)
                return -1;
        } else if (now >= s->deadline_mono) {
            /* a quiet window closes on time; after a long gap or a clock
             * jump either way the next window starts at the current time
             * (continuing the old windows after a jump back would stall
             * rotation for as long as the jump) */
            int64_t g = (int64_t)s->o->rotate_seconds * 1000000000;
            int64_t d = wall - s->file_boundary;
            int64_t next = d >= -CLOCK_JUMP_NS && d < g
                               ? s->file_boundary
                               : cap_window_floor(wall, s->o->rotate_seconds);
            if (cap_rotate(s, "time", s->file_boundary, next, e) != 0)
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
    for (int64_t until = cap_mono_ns() + ROTATE_GRACE_NS; !s->failed;) {
        int64_t left = until - cap_mono_ns();
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
    return cap_close_file(s, "stop", pf_now_ns(), e);
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
            if (s->link_type != old_link && cap_close_file(s, "link-type", s->last_ts, e) != 0)
                return -1;
        }
        for (;;) {
            int n = pcap_dispatch(s->p, 4096, on_packet, (u_char *)(void *)s);
            if (s->failed)
                return -1;
            if (n == PCAP_ERROR) {
                cap_event(s, PF_EV_WARN, "%s: %s (keeping the packets read before)",
                          s->o->read_files[i], pcap_geterr(s->p));
                break;
            }
            if (n == 0 || s->sig->stop)
                break;
        }
    }
    return cap_close_file(s, "end of input", s->last_ts, e);
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
    if (cap_recover_spool(&s, e) != 0 || cap_finish_interrupted_seal(&s, e) != 0)
        goto out;
    s.capture_settings = settings_json(&s);
    if (pthread_create(&sealer, NULL, cap_sealer_main, &s) != 0) {
        pf_err_set(e, PF_EENV, "cannot start the sealer thread");
        goto out;
    }
    sealer_started = true;
    cap_notify_sealer(&s); /* files recovered or left from the last run */
    cap_event(&s, PF_EV_INFO,
              "capturing source=%s link_type=%d snaplen=%u ts=%s spool=%s outbox=%s",
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
