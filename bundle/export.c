/* bundle export (removable media) and bundle prune (receipts). */
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
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "bundle/bundle.h"
#include "bundle/receipt.h"
#include "common/buf.h"
#include "common/fsutil.h"

#define EXPORTED_DIR       ".exported"
#define MSDOS_SUPER_MAGIC_ 0x4d44
#define FAT32_MAX_FILE     0xffffffffULL
/* Room left on the stick beyond the bundle: directory entries, the FAT. */
#define DEST_MARGIN (1u << 20)

static void say(pf_event_fn ev, void *ctx, enum pf_event_level level, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void say(pf_event_fn ev, void *ctx, enum pf_event_level level, const char *fmt, ...)
{
    char line[2048];
    va_list ap;
    if (ev == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    ev(ctx, level, line);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A killed or unplugged export leaves its ".NAME.XXXXXXXX.part" copy
 * behind: remove those of this bundle before copying it again. */
static void remove_stale_copies(const char *dir, const char *name)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    size_t nl = strlen(name);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *f = de->d_name;
        size_t fl = strlen(f);
        /* "." NAME "." 8 hex ".part", as pf_temp_name makes them */
        if (fl == 1 + nl + 1 + 8 + 5 && f[0] == '.' && strncmp(f + 1, name, nl) == 0 &&
            f[1 + nl] == '.' && strcmp(f + fl - 5, ".part") == 0)
            unlinkat(dirfd(d), f, 0);
    }
    closedir(d);
}

static void count_remaining(int outfd, char **names, size_t from, size_t n, pf_export_result *r)
{
    r->dest_full = true;
    for (size_t j = from; j < n; j++) {
        struct stat rs;
        if (fstatat(outfd, names[j], &rs, 0) == 0)
            r->bytes_remaining += (uint64_t)rs.st_size;
        r->remaining++;
    }
}

static void mark_exported(int outfd, const char *name)
{
    pf_err e;
    pf_err_clear(&e);
    mkdirat(outfd, EXPORTED_DIR, 0750);
    int d = openat(outfd, EXPORTED_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (d < 0)
        return;
    pf_atomic_write_at(d, EXPORTED_DIR, name, "", 0, 0640, false, &e);
    close(d);
}

int pf_bundle_export(const char *outbox, const char *dest, const pf_pubkey *sensor,
                     pf_event_fn event, pf_export_progress progress, void *ctx, pf_export_result *r,
                     pf_err *e)
{
    char **names = NULL;
    size_t n = 0;
    int outfd = -1, rc = -1;

    memset(r, 0, sizeof *r);
    struct stat st;
    if (stat(dest, &st) != 0 || !S_ISDIR(st.st_mode))
        return pf_err_set(e, PF_EUSAGE,
                          "%s: destination is not a directory (is the stick "
                          "mounted?)",
                          dest);
    outfd = open(outbox, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (outfd < 0)
        return pf_err_sys(e, errno, "%s: cannot open outbox", outbox);
    names = pf_list_names(outfd, PF_BUNDLE_SUFFIX, &n);
    for (size_t i = 0; i < n; i++) {
        char src[PATH_MAX], dir[PATH_MAX], copy[PATH_MAX];
        pf_header h;
        uint64_t size = 0;
        pf_err be;
        pf_err_clear(&be);
        snprintf(src, sizeof src, "%s/%s", outbox, names[i]);
        if (pf_bundle_read_header(src, &h, &size, &be) != 0) {
            say(event, ctx, PF_EV_WARN, "bundle=%s skipped: %s", src, be.msg);
            r->failed++;
            continue;
        }
        if (snprintf(dir, sizeof dir, "%s/pcapferry/%s", dest, h.sensor) >= (int)sizeof dir ||
            snprintf(copy, sizeof copy, "%s/%s", dir, names[i]) >= (int)sizeof copy) {
            pf_err_set(e, PF_EUSAGE, "%s: destination path too long", dest);
            goto out;
        }
        struct stat cs;
        if (stat(copy, &cs) == 0 && (uint64_t)cs.st_size == size) {
            r->already_there++;
            continue;
        }
        if (pf_mkdir_p(dir, 0755, e) != 0)
            goto out;
        struct statvfs vfs;
        struct statfs fsinfo;
        if (statfs(dir, &fsinfo) == 0 && fsinfo.f_type == MSDOS_SUPER_MAGIC_ &&
            size > FAT32_MAX_FILE) {
            say(event, ctx, PF_EV_ERROR,
                "bundle=%s is %" PRIu64 " bytes, over FAT32's 4 GiB file limit: use exFAT, or "
                "smaller bundles (--bundle-max-size)",
                names[i], size);
            r->failed++;
            continue;
        }
        if (statvfs(dir, &vfs) == 0 && (uint64_t)vfs.f_bavail * vfs.f_frsize < size + DEST_MARGIN) {
            count_remaining(outfd, names, i, n, r);
            break;
        }
        remove_stale_copies(dir, names[i]);
        pf_err ce;
        pf_err_clear(&ce);
        if (pf_copy_file(src, dir, names[i], &ce) != 0) {
            if (pf_err_is_nospace(&ce)) { /* the free-space figure was optimistic */
                count_remaining(outfd, names, i, n, r);
                break;
            }
            if (ce.sys_errno == EFBIG) { /* FAT through FUSE: the kernel says so late */
                say(event, ctx, PF_EV_ERROR,
                    "bundle=%s is %" PRIu64 " bytes, too large for the file system on %s "
                    "(FAT32 stops at 4 GiB): use exFAT, or smaller bundles",
                    names[i], size, dest);
                r->failed++;
                continue;
            }
            *e = ce;
            goto out;
        }
        pf_failpoint("export-copied"); /* on the stick, not yet read back nor marked */
        /* Read the copy back: a bad stick must not count as exported. */
        pf_verified v;
        pf_err ve;
        pf_err_clear(&ve);
        if (pf_bundle_verify_key(copy, sensor, &v, &ve) != 0) {
            say(event, ctx, PF_EV_ERROR, "bundle=%s copy on %s does not verify (%s): removed",
                names[i], dest, ve.msg);
            unlink(copy);
            r->failed++;
            continue;
        }
        pf_failpoint("export-verified");
        mark_exported(outfd, names[i]);
        pf_failpoint("export-marked");
        r->copied++;
        r->bytes_copied += size;
        char vh[2 * PF_HASH_BYTES + 1];
        pf_hex(vh, v.bundle_hash, PF_HASH_BYTES);
        say(event, ctx, PF_EV_INFO,
            "exported bundle=%s to=%s (read back and verified, hash=%.16s...)", names[i], copy, vh);
        if (progress != NULL)
            progress(ctx, i + 1, n, r->bytes_copied);
    }
    rc = 0;
out:
    pf_free_names(names, n);
    close(outfd);
    return rc;
}

/* The bundle hash a bundle's own trailer states, after checking that the
 * trailer sits where the file ends. */
static int trailer_hash(int dirfd, const char *name, uint8_t hash[PF_HASH_BYTES]);

int pf_bundle_trailer_hash(const char *path, uint8_t hash[PF_HASH_BYTES])
{
    return trailer_hash(AT_FDCWD, path, hash);
}

int pf_bundle_trailer_hash_at(int dirfd, const char *name, uint8_t hash[PF_HASH_BYTES])
{
    return trailer_hash(dirfd, name, hash);
}

static int trailer_hash(int dirfd, const char *name, uint8_t hash[PF_HASH_BYTES])
{
    int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = pf_bundle_trailer_hash_fd(fd, hash);
    close(fd);
    return rc;
}

int pf_bundle_trailer_hash_fd(int fd, uint8_t hash[PF_HASH_BYTES])
{
    uint8_t t[PF_TRAILER_BYTES];
    struct stat st;
    int rc = -1;
    if (fstat(fd, &st) == 0 && st.st_size > (off_t)PF_TRAILER_BYTES &&
        pread(fd, t, sizeof t, st.st_size - (off_t)sizeof t) == (ssize_t)sizeof t &&
        memcmp(t, PF_TRAILER_MAGIC, PF_TRAILER_MAGIC_BYTES) == 0 &&
        pf_load_u64(t + PF_TRAILER_MAGIC_BYTES) == (uint64_t)st.st_size - PF_TRAILER_BYTES) {
        memcpy(hash, t + PF_TRAILER_HASH_OFFSET, PF_HASH_BYTES);
        rc = 0;
    }
    return rc;
}

/* The trailer's bundle hash and the header hash of an outbox bundle, read
 * through one descriptor. */
static int bundle_ids(int dirfd, const char *name, uint8_t hash[PF_HASH_BYTES],
                      uint8_t header_hash[PF_HASH_BYTES])
{
    pf_header h;
    pf_err ignore;
    pf_err_clear(&ignore);
    int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = -1;
    if (pf_bundle_trailer_hash_fd(fd, hash) == 0 &&
        pf_bundle_read_header_fd(fd, name, &h, NULL, &ignore) == 0) {
        memcpy(header_hash, h.hash, PF_HASH_BYTES);
        rc = 0;
    }
    close(fd);
    return rc;
}

static void collect_receipts(const char *dir, int depth, char ***v, size_t *n, size_t *cap)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        char path[PATH_MAX];
        struct stat st;
        if (de->d_name[0] == '.' ||
            snprintf(path, sizeof path, "%s/%s", dir, de->d_name) >= (int)sizeof path ||
            lstat(path, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode) && depth < 3) {
            collect_receipts(path, depth + 1, v, n, cap);
            continue;
        }
        size_t len = strlen(de->d_name), sl = strlen(PF_RECEIPT_SUFFIX);
        if (!S_ISREG(st.st_mode) || len <= sl ||
            strcmp(de->d_name + len - sl, PF_RECEIPT_SUFFIX) != 0)
            continue;
        if (*n == *cap) {
            size_t c2 = *cap ? 2 * *cap : 16;
            char **g = realloc(*v, c2 * sizeof *g);
            if (g == NULL)
                break;
            *v = g;
            *cap = c2;
        }
        if (((*v)[*n] = strdup(path)) != NULL)
            (*n)++;
    }
    closedir(d);
}

int pf_bundle_prune(int outbox_fd, const char *outbox, const char *receipts_dir,
                    const pf_pubkey *central, pf_event_fn event, void *ctx, pf_prune_result *r,
                    pf_err *e)
{
    char **rc_paths = NULL, **names = NULL;
    size_t nr = 0, capr = 0, nb = 0;
    bool changed = false;

    memset(r, 0, sizeof *r);
    if (central->role != PF_ROLE_CENTRAL)
        return pf_err_set(e, PF_EUSAGE, "receipts are checked against the central public key");
    collect_receipts(receipts_dir, 0, &rc_paths, &nr, &capr);
    if (nr > 1)
        qsort(rc_paths, nr, sizeof *rc_paths, cmp_str);
    names = pf_list_names(outbox_fd, PF_BUNDLE_SUFFIX, &nb);
    for (size_t i = 0; i < nr; i++) {
        pf_receipt *rc = NULL;
        pf_err re;
        pf_err_clear(&re);
        r->receipts++;
        if (pf_receipt_read(rc_paths[i], central, &rc, &re) != 0) {
            r->receipts_bad++;
            say(event, ctx, PF_EV_WARN, "receipt refused, nothing deleted: %s", re.msg);
            continue;
        }
        for (size_t k = 0; k < rc->n; k++) {
            const pf_receipt_entry *x = &rc->v[k];
            char prefix[PF_NAME_MAX + 32];
            snprintf(prefix, sizeof prefix, "%s-%010" PRIu64 "-", rc->sensor, x->seq);
            if (x->status == PF_RCPT_REJECTED) {
                bool still_here = false;
                for (size_t b = 0; b < nb && !still_here; b++)
                    still_here = names[b] != NULL && strncmp(names[b], prefix, strlen(prefix)) == 0;
                if (!still_here)
                    continue; /* an old report about a bundle since pruned */
                r->rejected++;
                say(event, ctx, PF_EV_WARN,
                    "central rejected sensor=%s seq=%" PRIu64 " (%s): the bundle is kept; "
                    "export it again or investigate",
                    rc->sensor, x->seq, x->reason[0] ? x->reason : "no reason given");
                continue;
            }
            const char *match = NULL;
            for (size_t b = 0; b < nb && match == NULL; b++)
                if (names[b] != NULL && strncmp(names[b], prefix, strlen(prefix)) == 0)
                    match = names[b];
            if (match == NULL) {
                r->already_gone++;
                continue;
            }
            uint8_t have[PF_HASH_BYTES], have_header[PF_HASH_BYTES];
            if (bundle_ids(outbox_fd, match, have, have_header) != 0 ||
                sodium_memcmp(have, x->hash, PF_HASH_BYTES) != 0 ||
                (x->has_header_hash &&
                 sodium_memcmp(have_header, x->header_hash, PF_HASH_BYTES) != 0)) {
                char want[2 * PF_HASH_BYTES + 1];
                pf_hex(want, x->hash, PF_HASH_BYTES);
                r->hash_mismatch++;
                say(event, ctx, PF_EV_WARN,
                    "receipt %s confirms seq %" PRIu64 " with hash %.16s..., but %s/%s is "
                    "another bundle: kept",
                    rc_paths[i], x->seq, want, outbox, match);
                continue;
            }
            if (unlinkat(outbox_fd, match, 0) != 0 && errno != ENOENT) {
                pf_err_sys(e, errno, "%s/%s: cannot delete", outbox, match);
                pf_receipt_free(rc);
                goto out;
            }
            int ed = openat(outbox_fd, EXPORTED_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            if (ed >= 0) {
                unlinkat(ed, match, 0);
                close(ed);
            }
            say(event, ctx, PF_EV_INFO, "pruned bundle=%s/%s (committed on the central host)",
                outbox, match);
            for (size_t b = 0; b < nb; b++)
                if (names[b] == match) {
                    free(names[b]);
                    names[b] = NULL;
                }
            r->deleted++;
            changed = true;
        }
        pf_receipt_free(rc);
    }
    if (changed && pf_fsync_dirfd(outbox_fd, outbox, e) != 0)
        goto out;
    pf_free_names(rc_paths, nr);
    pf_free_names(names, nb);
    return 0;
out:
    pf_free_names(rc_paths, nr);
    pf_free_names(names, nb);
    return -1;
}
