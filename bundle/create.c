#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bundle/bundle.h"
#include "bundle/stream.h"
#include "common/fsutil.h"

/* Upper bound of what a tar entry adds besides its data: a pax extended
 * header (512 + up to 1024 of records) and the ustar header. */
#define TAR_ENTRY_OVERHEAD 2048u
#define TAR_END_OVERHEAD   (1024u + 10240u)

struct source {
    const char *path;
    char name[PF_ENTRY_NAME_MAX + 1];
    int fd;
    struct stat st;
    bool unreadable;
    char reason[256];
};

struct writer {
    pf_sealer *sealer;
    pf_err *e;
};

static la_ssize_t tar_write_cb(struct archive *a, void *ctx, const void *buf, size_t len)
{
    struct writer *w = ctx;
    (void)a;
    if (pf_sealer_write(w->sealer, buf, len, w->e) != 0)
        return -1;
    return (la_ssize_t)len;
}

static int tar_sink(void *ctx, const uint8_t *data, size_t len, pf_err *e)
{
    struct archive *a = ctx;
    la_ssize_t n = archive_write_data(a, data, len);
    if (n < 0 || (size_t)n != len)
        return pf_err_set(e, PF_EENV, "archive write failed: %s", archive_error_string(a));
    return 0;
}

static uint64_t round512(uint64_t n)
{
    return (n + 511) & ~(uint64_t)511;
}

static int tar_header(struct archive *a, const char *name, uint64_t size, int64_t mtime, pf_err *e)
{
    struct archive_entry *ent = archive_entry_new();
    if (ent == NULL)
        return pf_err_set(e, PF_EENV, "out of memory");
    archive_entry_set_pathname(ent, name);
    archive_entry_set_size(ent, (la_int64_t)size);
    archive_entry_set_filetype(ent, AE_IFREG);
    archive_entry_set_perm(ent, 0644);
    archive_entry_set_mtime(ent, (time_t)mtime, 0);
    int r = archive_write_header(a, ent);
    archive_entry_free(ent);
    /* archive_write_header's failure is usually our sealer's, already in e */
    if (r != ARCHIVE_OK)
        return pf_err_set(e, PF_EENV, "%s: archive header failed: %s", name,
                          archive_error_string(a));
    return 0;
}

static int open_sources(const pf_create_opts *o, const pf_create_input *in, size_t n,
                        struct source *src, pf_err *e)
{
    for (size_t i = 0; i < n; i++) {
        struct source *s = &src[i];
        s->path = in[i].path;
        snprintf(s->name, sizeof s->name, "%s",
                 in[i].name != NULL ? in[i].name : pf_basename(in[i].path));
        if (!pf_entry_name_valid(s->name) || pf_entry_name_reserved(s->name) ||
            strlen(in[i].name != NULL ? in[i].name : pf_basename(in[i].path)) >= sizeof s->name)
            return pf_err_set(e, PF_EUSAGE,
                              "%s: cannot carry this file name in a bundle (dot name, control "
                              "characters, too long, or reserved)",
                              s->path);
        for (size_t j = 0; j < i; j++)
            if (strcmp(src[j].name, s->name) == 0)
                return pf_err_set(e, PF_EUSAGE, "%s and %s: two files with the same name",
                                  src[j].path, s->path);
        s->fd = in[i].use_fd ? fcntl(in[i].fd, F_DUPFD_CLOEXEC, 0)
                             : open(s->path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (s->fd < 0)
            return pf_err_sys(e, errno, "%s: cannot open", s->path);
        if (fstat(s->fd, &s->st) != 0)
            return pf_err_sys(e, errno, "%s: cannot stat", s->path);
        if (!S_ISREG(s->st.st_mode))
            return pf_err_set(e, PF_EUSAGE, "%s: not a regular file", s->path);
        if (!pf_pcap_probe(s->fd, s->reason, sizeof s->reason)) {
            if (!o->allow_unreadable)
                return pf_err_set(e, PF_EREJECT,
                                  "%s: libpcap cannot read it: %s (--allow-unreadable carries it "
                                  "anyway, marked unreadable)",
                                  s->path, s->reason);
            s->unreadable = true;
        }
    }
    return 0;
}

static int64_t bundle_start_ns(const pf_manifest *m, int64_t fallback)
{
    /* Negative stamps are damage, not time. */
    const int64_t latest = INT64_MAX; /* year 2262: the ns clock ends there */
    bool have = false;
    int64_t start = 0;
    for (size_t i = 0; i < m->nfiles; i++) {
        const pf_pcapinfo *f = &m->files[i].info;
        if (f->have_ts && f->min_ns >= 0 && f->min_ns <= latest && (!have || f->min_ns < start)) {
            start = f->min_ns;
            have = true;
        }
    }
    return have ? start : fallback;
}

int pf_bundle_create(const pf_create_opts *o, const pf_create_input *in, size_t n,
                     pf_create_result *res, pf_err *e)
{
    struct source *src = NULL;
    pf_seq_state state = {.lock_fd = -1};
    pf_sealer *sealer = NULL;
    struct archive *a = NULL;
    pf_manifest *m = NULL;
    char *mtext = NULL;
    char tmp[PF_BUNDLE_NAME_MAX + 32];
    char tmp_path[PATH_MAX]; /* names the file in the sealer's errors */
    int outfd = -1, dirfd = -1, rc = -1;
    bool tmp_made = false, have_state = false;
    pf_seal_params p;
    struct writer w = {.e = e};

    memset(res, 0, sizeof *res);
    memset(&p, 0, sizeof p);
    if (n == 0)
        return pf_err_set(e, PF_EUSAGE, "no capture files given");
    if (n > PF_MANIFEST_MAX_FILES)
        return pf_err_set(e, PF_EUSAGE, "too many files for one bundle (at most %d)",
                          PF_MANIFEST_MAX_FILES);
    src = calloc(n, sizeof *src);
    if (src == NULL)
        return pf_err_set(e, PF_EENV, "out of memory");
    for (size_t i = 0; i < n; i++)
        src[i].fd = -1;
    if (open_sources(o, in, n, src, e) != 0)
        goto out;

    p.plain_len_max =
        TAR_END_OVERHEAD + 2 * TAR_ENTRY_OVERHEAD + round512(PF_MANIFEST_MAX_BYTES) + 512;
    for (size_t i = 0; i < n; i++)
        p.plain_len_max += TAR_ENTRY_OVERHEAD + round512((uint64_t)src[i].st.st_size);

    if (o->use_outdir_fd) {
        dirfd = fcntl(o->outdir_fd, F_DUPFD_CLOEXEC, 0);
    } else {
        if (pf_mkdir_p(o->outdir, 0755, e) != 0)
            goto out;
        dirfd = open(o->outdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    }
    if (dirfd < 0) {
        pf_err_sys(e, errno, "%s: cannot open directory", o->outdir);
        goto out;
    }
    if (o->state_dir != NULL || o->use_state_fd) {
        int r = o->use_state_fd
                    ? pf_state_open_at(&state, o->state_fd, o->state_dir ? o->state_dir : "state",
                                       o->sensor->pub.name, e)
                    : pf_state_open(&state, o->state_dir, o->sensor->pub.name, e);
        if (r != 0)
            goto out;
        have_state = true;
        p.prev_seq = state.last_seq;
        memcpy(p.prev_hash, state.last_hash, PF_HASH_BYTES);
        if (pf_state_reserve(&state, &p.seq, e) != 0)
            goto out;
    } else {
        p.seq = o->seq;
        if (p.seq == 0) {
            pf_err_set(e, PF_EUSAGE, "a sequence number (--seq N, N >= 1) or --state is needed");
            goto out;
        }
    }
    p.created_ns = o->created_ns != 0 ? o->created_ns : pf_now_ns();
    p.chunk_size = o->chunk_size;
    p.level = o->level;
    p.workers = o->workers;

    snprintf(tmp, sizeof tmp, ".%s-%010llu.%08x.part", o->sensor->pub.name,
             (unsigned long long)p.seq, randombytes_random());
    outfd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (outfd < 0) {
        pf_err_sys(e, errno, "%s/%s: cannot create", o->outdir, tmp);
        goto out;
    }
    tmp_made = true;
    snprintf(tmp_path, sizeof tmp_path, "%s/%s", o->outdir, tmp);
    sealer = pf_sealer_new(o->sensor, o->central, &p, outfd, tmp_path, e);
    if (sealer == NULL)
        goto out;
    w.sealer = sealer;
    m = pf_manifest_new(pf_sealer_header(sealer));
    a = archive_write_new();
    if (m == NULL || a == NULL) {
        pf_err_set(e, PF_EENV, "out of memory");
        goto out;
    }
    if (o->capture != NULL)
        m->capture = json_incref(o->capture);
    else
        m->capture = json_pack("{s:s}", "source", "files");
    if (archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
        archive_write_set_bytes_per_block(a, 0) != ARCHIVE_OK ||
        archive_write_open(a, &w, NULL, tar_write_cb, NULL) != ARCHIVE_OK) {
        pf_err_set(e, PF_EENV, "archive setup failed: %s", archive_error_string(a));
        goto out;
    }

    for (size_t i = 0; i < n; i++) {
        pf_pcapinfo info;
        uint64_t size = (uint64_t)src[i].st.st_size;
        if (tar_header(a, src[i].name, size, src[i].st.st_mtim.tv_sec, e) != 0)
            goto out;
        if (pf_pcap_scan(src[i].fd, size, src[i].path, tar_sink, a, &info, e) != 0)
            goto out;
        json_t *stats = in[i].capture_stats;
        if (stats != NULL)
            json_incref(stats);
        if (pf_manifest_add(m, src[i].name, &info, stats, e) != 0)
            goto out;
        res->bytes_in += size;
        res->packets += info.packets;
        if (info.read_status == PF_READ_DAMAGED)
            res->damaged++;
        if (info.read_status == PF_READ_UNREADABLE)
            res->unreadable++;
    }

    size_t mlen = 0;
    uint8_t sig[PF_SIG_BYTES];
    if (pf_manifest_encode(m, &mtext, &mlen, e) != 0)
        goto out;
    pf_sign_ctx(sig, PF_SIGCTX_MANIFEST, (const uint8_t *)mtext, mlen, o->sensor->sign_sk);
    if (tar_header(a, PF_MANIFEST_NAME, mlen, p.created_ns / 1000000000, e) != 0 ||
        tar_sink(a, (const uint8_t *)mtext, mlen, e) != 0 ||
        tar_header(a, PF_MANIFEST_SIG_NAME, sizeof sig, p.created_ns / 1000000000, e) != 0 ||
        tar_sink(a, sig, sizeof sig, e) != 0)
        goto out;
    if (archive_write_close(a) != ARCHIVE_OK) {
        pf_err_set(e, PF_EENV, "archive close failed: %s", archive_error_string(a));
        goto out;
    }
    if (pf_sealer_finish(sealer, res->bundle_hash, &res->bytes_out, e) != 0)
        goto out;
    if (fsync(outfd) != 0) {
        pf_err_sys(e, errno, "%s/%s: fsync failed", o->outdir, tmp);
        goto out;
    }
    if (close(outfd) != 0) {
        outfd = -1;
        pf_err_sys(e, errno, "%s/%s: close failed", o->outdir, tmp);
        goto out;
    }
    outfd = -1;
    pf_bundle_filename(res->name, sizeof res->name, o->sensor->pub.name, p.seq,
                       bundle_start_ns(m, p.created_ns));
    if (pf_rename_noreplace(dirfd, tmp, dirfd, res->name) != 0) {
        if (errno == EEXIST)
            pf_err_set(e, PF_EUSAGE, "%s/%s: already exists (was seq %llu used twice?)", o->outdir,
                       res->name, (unsigned long long)p.seq);
        else
            pf_err_sys(e, errno, "%s/%s: cannot rename into place", o->outdir, res->name);
        goto out;
    }
    tmp_made = false;
    if (pf_fsync_dirfd(dirfd, o->outdir, e) != 0)
        goto out;
    if (have_state && pf_state_commit(&state, p.seq, res->bundle_hash, e) != 0)
        goto out;
    snprintf(res->path, sizeof res->path, "%s/%s", o->outdir, res->name);
    res->seq = p.seq;
    res->nfiles = n;
    rc = 0;
out:
    if (a != NULL)
        archive_write_free(a);
    pf_sealer_free(sealer);
    pf_manifest_free(m);
    free(mtext);
    if (outfd >= 0)
        close(outfd);
    if (tmp_made)
        unlinkat(dirfd, tmp, 0);
    if (dirfd >= 0)
        close(dirfd);
    if (have_state)
        pf_state_close(&state);
    for (size_t i = 0; src != NULL && i < n; i++)
        if (src[i].fd >= 0)
            close(src[i].fd);
    free(src);
    return rc;
}
