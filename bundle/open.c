#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bundle/bundle.h"
#include "bundle/hasher.h"
#include "bundle/pcapcheck.h"
#include "bundle/stream.h"
#include "common/fsutil.h"

#define READ_BUF_BYTES (256u * 1024)
/* One buffer for libarchive's reads, two that extraction alternates
 * between so the hasher reads one while the next is filled. */
#define READ_BUFS 3u

struct reader {
    pf_unsealer *u;
    pf_err *e; /* the unsealer's own error outranks libarchive's */
    uint8_t *buf;
    pf_hasher *hash; /* of each extracted file */
    bool failed;
    uint64_t delivered;   /* content bytes handed to libarchive */
    uint64_t nonzero_end; /* offset just past the last non-zero one of them */
    bool sync;            /* fsync each staged file (else the caller does) */
    size_t used;          /* longest write into any of buf's READ_BUFS parts */
};

/* n < 0: a failed read may have written anything: wipe the parts whole */
static void reader_note(struct reader *r, ssize_t n)
{
    size_t len = n < 0 ? READ_BUF_BYTES : (size_t)n;
    if (len > r->used)
        r->used = len;
}

static la_ssize_t tar_read_cb(struct archive *a, void *ctx, const void **out)
{
    struct reader *r = ctx;
    ssize_t n = pf_unsealer_read(r->u, r->buf, READ_BUF_BYTES, r->e);
    reader_note(r, n);
    if (n < 0) {
        r->failed = true;
        archive_set_error(a, EIO, "bundle stream failed");
        return -1;
    }
    for (ssize_t i = n; i > 0; i--)
        if (r->buf[i - 1] != 0) {
            r->nonzero_end = r->delivered + (uint64_t)i;
            break;
        }
    r->delivered += (uint64_t)n;
    *out = r->buf;
    return (la_ssize_t)n;
}

struct staged {
    char name[PF_ENTRY_NAME_MAX + 1];
    char stage[PF_STAGE_NAME_MAX];
    uint64_t size;
    uint8_t hash[PF_HASH_BYTES];
    pf_pcapcheck check;
};

void pf_extracted_clear(pf_extracted *x)
{
    if (x == NULL)
        return;
    pf_manifest_free(x->manifest);
    free(x->manifest_raw);
    free(x->staged);
    free(x->checks);
    memset(x, 0, sizeof *x);
}

static const char *entry_kind(struct archive_entry *ent)
{
    switch (archive_entry_filetype(ent)) {
    case AE_IFLNK:
        return "a symbolic link";
    case AE_IFDIR:
        return "a directory";
    case AE_IFCHR:
    case AE_IFBLK:
        return "a device node";
    case AE_IFIFO:
        return "a FIFO";
    case AE_IFSOCK:
        return "a socket";
    default:
        return "not a regular file";
    }
}

/* Only plain regular files with safe names get past here. */
static int gate_entry(struct archive_entry *ent, const char *what, pf_err *e)
{
    const char *name = archive_entry_pathname(ent);
    if (name == NULL)
        return pf_err_set(e, PF_EREJECT, "%s: archive entry without a name", what);
    if (archive_entry_hardlink(ent) != NULL)
        return pf_err_set(e, PF_EREJECT, "%s: archive entry '%.100s' is a hard link", what, name);
    if (archive_entry_symlink(ent) != NULL || archive_entry_filetype(ent) != AE_IFREG)
        return pf_err_set(e, PF_EREJECT, "%s: archive entry '%.100s' is %s", what, name,
                          entry_kind(ent));
    if (!pf_entry_name_valid(name))
        return pf_err_set(e, PF_EREJECT,
                          "%s: archive entry '%.100s' has an unsafe name (a path, a dot name, "
                          "control or non-ASCII characters, or over 200 bytes)",
                          what, name);
    if (archive_entry_sparse_count(ent) > 0)
        return pf_err_set(e, PF_EREJECT, "%s: archive entry '%.100s' is sparse", what, name);
    if (!archive_entry_size_is_set(ent) || archive_entry_size(ent) < 0)
        return pf_err_set(e, PF_EREJECT, "%s: archive entry '%.100s' has no size", what, name);
    return 0;
}

static int read_small(struct archive *a, struct reader *r, uint8_t *out, size_t cap, size_t *len,
                      const char *what, const char *name, pf_err *e)
{
    size_t got = 0;
    for (;;) {
        la_ssize_t n = archive_read_data(a, out + got, cap - got);
        if (n < 0 || r->failed)
            return r->failed ? -1
                             : pf_err_set(e, PF_EREJECT, "%s: %s: %s", what, name,
                                          archive_error_string(a));
        if (n == 0)
            break;
        got += (size_t)n;
        if (got == cap)
            return pf_err_set(e, PF_EREJECT, "%s: %s is larger than allowed", what, name);
    }
    *len = got;
    return 0;
}

static int extract_file(struct archive *a, struct reader *r, int dirfd, struct staged *s,
                        const char *what, pf_err *e)
{
    int fd = -1, rc = -1;
    uint64_t total = 0, ticket[2] = {0, 0};
    unsigned next = 0;
    /* flushed early whether this file is fsynced here or (the importer's
     * batches) with its file system */
    pf_writeback wb = {.flush_early = true};
    pf_pcapcheck_init(&s->check);
    fd = openat(dirfd, s->stage, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) {
        pf_err_sys(e, errno, "%s: cannot create staged file %s", what, s->stage);
        goto out;
    }
    for (;;) {
        uint8_t *buf = r->buf + (1 + next) * READ_BUF_BYTES;
        pf_hasher_wait(r->hash, ticket[next]);
        la_ssize_t n = archive_read_data(a, buf, READ_BUF_BYTES);
        reader_note(r, (ssize_t)n);
        if (r->failed)
            goto out;
        if (n < 0) {
            pf_err_set(e, PF_EREJECT, "%s: %s: %s", what, s->name, archive_error_string(a));
            goto out;
        }
        if (n == 0)
            break;
        ticket[next] = pf_hasher_update(r->hash, buf, (size_t)n);
        next = 1 - next;
        /* the record walk rides on the same pass: every byte is read once */
        pf_pcapcheck_update(&s->check, buf, (size_t)n);
        if (pf_write_all(fd, buf, (size_t)n, s->name, e) != 0)
            goto out;
        pf_writeback_note(fd, &wb, (size_t)n);
        total += (uint64_t)n;
    }
    if (total != s->size) {
        pf_err_set(e, PF_EREJECT, "%s: %s: archive entry is shorter than its header says", what,
                   s->name);
        goto out;
    }
    pf_writeback_end(&wb);
    if (r->sync && fsync(fd) != 0) {
        pf_err_sys(e, errno, "%s: fsync failed", s->name);
        goto out;
    }
    pf_pcapcheck_final(&s->check);
    rc = 0;
out:
    pf_writeback_end(&wb);
    /* Also after a failure: the next file starts from a fresh hash. */
    pf_hasher_final(r->hash, s->hash);
    if (fd >= 0 && close(fd) != 0 && rc == 0)
        rc = pf_err_sys(e, errno, "%s: close failed", s->name);
    return rc;
}

/* The manifest must list exactly the files that were carried, byte for
 * byte. */
static int check_against_manifest(const pf_manifest *m, const struct staged *st, size_t n,
                                  const char *what, pf_err *e)
{
    char want[2 * PF_HASH_BYTES + 1], got[2 * PF_HASH_BYTES + 1];
    for (size_t i = 0; i < n; i++) {
        const pf_manifest_file *f = pf_manifest_find(m, st[i].name);
        if (f == NULL)
            return pf_err_set(e, PF_EREJECT,
                              "%s: archive holds '%s', which the manifest does "
                              "not list",
                              what, st[i].name);
        if (f->info.size != st[i].size)
            return pf_err_set(e, PF_EREJECT, "%s: '%s' is %llu bytes but the manifest says %llu",
                              what, st[i].name, (unsigned long long)st[i].size,
                              (unsigned long long)f->info.size);
        if (sodium_memcmp(f->info.blake2b, st[i].hash, PF_HASH_BYTES) != 0) {
            pf_hex(want, f->info.blake2b, PF_HASH_BYTES);
            pf_hex(got, st[i].hash, PF_HASH_BYTES);
            return pf_err_set(e, PF_EREJECT, "%s: '%s' has BLAKE2b-256 %s but the manifest says %s",
                              what, st[i].name, got, want);
        }
    }
    if (m->nfiles != n) {
        for (size_t i = 0; i < m->nfiles; i++) {
            bool found = false;
            for (size_t j = 0; j < n && !found; j++)
                found = strcmp(m->files[i].name, st[j].name) == 0;
            if (!found)
                return pf_err_set(e, PF_EREJECT,
                                  "%s: manifest lists '%s', which the archive does not hold", what,
                                  m->files[i].name);
        }
    }
    return 0;
}

int pf_bundle_extract(int fd, const char *what, const pf_seckey *central, const char *keyring,
                      int stage_dirfd, const char *stage_prefix, pf_extracted *out, pf_err *e)
{
    const pf_extract_opts none = {0};
    return pf_bundle_extract_opts(fd, what, central, keyring, stage_dirfd, stage_prefix, &none, out,
                                  e);
}

int pf_bundle_extract_opts(int fd, const char *what, const pf_seckey *central, const char *keyring,
                           int stage_dirfd, const char *stage_prefix, const pf_extract_opts *o,
                           pf_extracted *out, pf_err *e)
{
    pf_unsealer *u = NULL;
    struct archive *a = NULL;
    struct staged *st = NULL;
    size_t nst = 0, capst = 0;
    uint8_t *mraw = NULL, sig[PF_SIG_BYTES + 1];
    size_t mlen = 0, siglen = 0;
    bool have_manifest = false, have_sig = false;
    pf_trust *trustp = NULL;
    bool need_vouch = false;
    uint8_t vouched_bh[PF_HASH_BYTES];
    struct reader r = {.e = e, .sync = (o->flags & PF_EXTRACT_NO_FSYNC) == 0};
    const uint8_t *vouched = o->vouched;
    int rc = -1;

    memset(out, 0, sizeof *out);
    /* Cheapest checks first: header shape, recipient, trust, signature. */
    u = pf_unsealer_new_ctx(fd, what, o->reuse, e);
    if (u == NULL)
        goto out;
    const pf_header *h = pf_unsealer_header(u);
    if (sodium_memcmp(h->recipient_id, central->pub.key_id, PF_KEYID_BYTES) != 0) {
        char id[PF_KEYID_HEX_BYTES];
        pf_hex(id, h->recipient_id, PF_KEYID_BYTES);
        pf_err_set(e, PF_EREJECT, "%s: sealed to another central key (%s), not ours", what, id);
        goto out;
    }
    trustp = malloc(sizeof *trustp);
    if (trustp == NULL) {
        pf_err_set(e, PF_EENV, "out of memory");
        goto out;
    }
    const pf_trust *trust = trustp;
    pf_header_proof proved; /* the header u read, under trust->key */
    if (pf_bundle_trust_proved(keyring, h, o->proof, &proved, trustp, &need_vouch, e) != 0) {
        pf_err_prefix(e, "%s: ", what);
        goto out;
    }
    if (need_vouch) {
        /* The whole file is hashed before anything is decrypted: the
         * holder of a revoked key must not get its content parsed. */
        uint8_t *bh = vouched_bh;
        if (pf_bundle_fd_hash(fd, what, bh, e) != 0)
            goto out;
        if (!pf_trust_hash_allowed(trust, bh) &&
            (vouched == NULL || sodium_memcmp(bh, vouched, PF_HASH_BYTES) != 0)) {
            pf_bundle_not_vouched(what, trust, h, e);
            goto out;
        }
    }
    /* A revoked key's bundle keeps the computed hash: it is compared with
     * the one vouched for, which was hashed before decryption. */
    if ((o->flags & PF_EXTRACT_HASH_FROM_TRAILER) != 0 && !need_vouch)
        pf_unsealer_hash_from_trailer(u);
    /* h is the unsealer's own header: verified once above, not again */
    if (pf_unsealer_begin_proved(u, &trust->key, central, &proved, e) != 0)
        goto out;

    r.u = u;
    r.buf = malloc(READ_BUFS * READ_BUF_BYTES);
    /* the content is about the file's size (it compresses little) */
    struct stat fst;
    r.hash = pf_hasher_new_sized(
        fstat(fd, &fst) == 0 && S_ISREG(fst.st_mode) ? (uint64_t)fst.st_size : UINT64_MAX);
    mraw = malloc(PF_MANIFEST_MAX_BYTES + 1);
    a = archive_read_new();
    if (r.buf == NULL || r.hash == NULL || mraw == NULL || a == NULL) {
        pf_err_set(e, PF_EENV, "out of memory");
        goto out;
    }
    if (archive_read_support_format_tar(a) != ARCHIVE_OK ||
        archive_read_open(a, &r, NULL, tar_read_cb, NULL) != ARCHIVE_OK) {
        if (!r.failed)
            pf_err_set(e, PF_EREJECT, "%s: content is not a valid archive: %s", what,
                       archive_error_string(a));
        goto out;
    }
    for (;;) {
        struct archive_entry *ent;
        int ar = archive_read_next_header(a, &ent);
        if (r.failed)
            goto out;
        if (ar == ARCHIVE_EOF)
            break;
        if (ar != ARCHIVE_OK) {
            pf_err_set(e, PF_EREJECT, "%s: damaged archive: %s", what, archive_error_string(a));
            goto out;
        }
        if (have_sig) {
            pf_err_set(e, PF_EREJECT, "%s: archive holds entries after the manifest signature",
                       what);
            goto out;
        }
        if (gate_entry(ent, what, e) != 0)
            goto out;
        const char *name = archive_entry_pathname(ent);
        uint64_t size = (uint64_t)archive_entry_size(ent);
        if (strcmp(name, PF_MANIFEST_NAME) == 0 && !have_manifest) {
            if (read_small(a, &r, mraw, PF_MANIFEST_MAX_BYTES + 1, &mlen, what, name, e) != 0)
                goto out;
            have_manifest = true;
            continue;
        }
        if (strcmp(name, PF_MANIFEST_SIG_NAME) == 0 && have_manifest) {
            if (read_small(a, &r, sig, sizeof sig, &siglen, what, name, e) != 0)
                goto out;
            if (siglen != PF_SIG_BYTES) {
                pf_err_set(e, PF_EREJECT, "%s: manifest signature has the wrong size", what);
                goto out;
            }
            have_sig = true;
            continue;
        }
        if (have_manifest || pf_entry_name_reserved(name)) {
            pf_err_set(e, PF_EREJECT, "%s: archive entry '%.100s' is out of place", what, name);
            goto out;
        }
        for (size_t i = 0; i < nst; i++)
            if (strcmp(st[i].name, name) == 0) {
                pf_err_set(e, PF_EREJECT, "%s: archive holds '%.100s' twice", what, name);
                goto out;
            }
        if (nst == capst) {
            size_t cap = capst ? 2 * capst : 8;
            if (cap > PF_MANIFEST_MAX_FILES + 8) {
                pf_err_set(e, PF_EREJECT, "%s: archive holds too many files", what);
                goto out;
            }
            struct staged *grown = realloc(st, cap * sizeof *grown);
            if (grown == NULL) {
                pf_err_set(e, PF_EENV, "out of memory");
                goto out;
            }
            st = grown;
            capst = cap;
        }
        struct staged *s = &st[nst];
        memset(s, 0, sizeof *s);
        snprintf(s->name, sizeof s->name, "%s", name);
        snprintf(s->stage, sizeof s->stage, "%s%zu.part", stage_prefix, nst);
        s->size = size;
        nst++; /* counted before writing, so cleanup removes a partial file */
        if (extract_file(a, &r, stage_dirfd, s, what, e) != 0)
            goto out;
    }
    /* libarchive stops at the end-of-archive blocks but may already hold
     * content it read ahead beyond them, which the loop below never sees:
     * those bytes must be zeros too. */
    la_int64_t end = archive_filter_bytes(a, 0);
    if (end < 0 || r.nonzero_end > (uint64_t)end) {
        pf_err_set(e, PF_EREJECT, "%s: data after the end of the archive", what);
        goto out;
    }
    if (!have_manifest || !have_sig) {
        pf_err_set(e, PF_EREJECT, "%s: archive has no signed manifest", what);
        goto out;
    }
    /* Whatever follows the archive's end must be its zero padding, and the
     * stream must end with a verified trailer. */
    for (;;) {
        ssize_t n = pf_unsealer_read(u, r.buf, READ_BUF_BYTES, e);
        reader_note(&r, n);
        if (n < 0)
            goto out;
        if (n == 0)
            break;
        for (ssize_t i = 0; i < n; i++)
            if (r.buf[i] != 0) {
                pf_err_set(e, PF_EREJECT, "%s: data after the end of the archive", what);
                goto out;
            }
    }
    /* Verify before parse: the manifest's signature is checked on its raw
     * bytes before the JSON parser sees them. */
    if (!pf_verify_ctx(sig, PF_SIGCTX_MANIFEST, mraw, mlen, trust->key.sign_pk)) {
        pf_err_set(e, PF_EREJECT, "%s: manifest signature is invalid", what);
        goto out;
    }
    if (pf_manifest_parse(mraw, mlen, &out->manifest, e) != 0 ||
        pf_manifest_matches(out->manifest, h, e) != 0) {
        pf_err_prefix(e, "%s: ", what);
        goto out;
    }
    if (check_against_manifest(out->manifest, st, nst, what, e) != 0)
        goto out;
    /* Hand back where each manifest file was staged, in manifest order. */
    out->staged = calloc(out->manifest->nfiles + 1, sizeof *out->staged);
    out->checks = calloc(out->manifest->nfiles + 1, sizeof *out->checks);
    if (out->staged == NULL || out->checks == NULL) {
        pf_err_set(e, PF_EENV, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < out->manifest->nfiles; i++)
        for (size_t j = 0; j < nst; j++)
            if (strcmp(out->manifest->files[i].name, st[j].name) == 0) {
                snprintf(out->staged[i], sizeof out->staged[i], "%s", st[j].stage);
                out->checks[i] = st[j].check;
            }
    out->hdr = *h;
    out->manifest_raw = mraw;
    out->manifest_len = mlen;
    mraw = NULL;
    memcpy(out->manifest_sig, sig, PF_SIG_BYTES);
    pf_unsealer_result(u, out->bundle_hash, &out->bundle_bytes);
    /* The bytes decrypted must be the bytes vouched for, even if someone
     * rewrote the file between the two passes. */
    if (need_vouch && sodium_memcmp(out->bundle_hash, vouched_bh, PF_HASH_BYTES) != 0) {
        pf_err_set(e, PF_EREJECT, "%s: changed while it was read (not the bundle vouched for)",
                   what);
        goto out;
    }
    rc = 0;
out:
    if (a != NULL)
        archive_read_free(a);
    if (rc != 0) {
        for (size_t i = 0; i < nst; i++)
            unlinkat(stage_dirfd, st[i].stage, 0);
        pf_extracted_clear(out);
    }
    free(st);
    free(mraw);
    free(trustp);
    pf_hasher_free(r.hash); /* before the buffers it may read */
    if (r.buf != NULL) {
        /* every write starts a part: wiping each part's first `used`
         * bytes wipes all plaintext (the whole of it for a large bundle) */
        for (size_t i = 0; i < READ_BUFS; i++)
            sodium_memzero(r.buf + i * READ_BUF_BYTES, r.used);
        free(r.buf);
    }
    pf_unsealer_free(u);
    return rc;
}

static int remove_tree_flat(int dirfd, const char *name)
{
    /* The staging directory only ever holds plain files we created. */
    int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0) {
        DIR *d = fdopendir(fd);
        if (d != NULL) {
            struct dirent *de;
            while ((de = readdir(d)) != NULL)
                if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
                    unlinkat(fd, de->d_name, 0);
            closedir(d);
        } else {
            close(fd);
        }
    }
    return unlinkat(dirfd, name, AT_REMOVEDIR);
}

int pf_bundle_open(const char *path, const pf_seckey *central, const char *keyring,
                   const char *outdir, pf_extracted *out, pf_err *e)
{
    char stage[64], mname[PF_NAME_MAX + 64], sname[PF_NAME_MAX + 64];
    int fd = -1, outfd = -1, stagefd = -1, rc = -1;
    bool stage_made = false;
    size_t moved = 0;
    pf_extracted x;

    memset(&x, 0, sizeof x);
    memset(out, 0, sizeof *out);
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        pf_err_sys(e, errno, "%s: cannot open", path);
        goto out;
    }
    if (pf_mkdir_p(outdir, 0755, e) != 0)
        goto out;
    outfd = open(outdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (outfd < 0) {
        pf_err_sys(e, errno, "%s: cannot open directory", outdir);
        goto out;
    }
    snprintf(stage, sizeof stage, ".pcapferry-open-%08x", randombytes_random());
    if (mkdirat(outfd, stage, 0700) != 0) {
        pf_err_sys(e, errno, "%s/%s: cannot create staging directory", outdir, stage);
        goto out;
    }
    stage_made = true;
    stagefd = openat(outfd, stage, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (stagefd < 0) {
        pf_err_sys(e, errno, "%s/%s: cannot open staging directory", outdir, stage);
        goto out;
    }
    if (pf_bundle_extract(fd, path, central, keyring, stagefd, ".f", &x, e) != 0)
        goto out;

    /* Manifest and signature beside the captures, named by sensor and seq,
     * so an analyst can re-check provenance with b2sum later. */
    snprintf(mname, sizeof mname, "%s-%010llu.manifest.json", x.hdr.sensor,
             (unsigned long long)x.hdr.seq);
    snprintf(sname, sizeof sname, "%s-%010llu.manifest.sig", x.hdr.sensor,
             (unsigned long long)x.hdr.seq);
    /* A capture may not take the name of the manifest copy. */
    if (pf_manifest_find(x.manifest, mname) != NULL ||
        pf_manifest_find(x.manifest, sname) != NULL) {
        pf_err_set(e, PF_EREJECT, "%s: carries a file named like its own manifest copy (%s)", path,
                   pf_manifest_find(x.manifest, mname) != NULL ? mname : sname);
        goto out;
    }
    for (int i = 0; i < 2; i++) {
        const char *nm = i == 0 ? mname : sname;
        const uint8_t *data = i == 0 ? x.manifest_raw : x.manifest_sig;
        size_t len = i == 0 ? x.manifest_len : PF_SIG_BYTES;
        int mfd = openat(stagefd, nm, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (mfd < 0) {
            pf_err_sys(e, errno, "%s: cannot stage %s", outdir, nm);
            goto out;
        }
        int wr = pf_write_all(mfd, data, len, nm, e);
        if (wr == 0 && fsync(mfd) != 0)
            wr = pf_err_sys(e, errno, "%s: fsync failed", nm);
        close(mfd);
        if (wr != 0)
            goto out;
    }
    /* Refuse before moving anything if a name is taken. */
    size_t total = x.manifest->nfiles + 2;
    for (size_t i = 0; i < total; i++) {
        const char *nm = i < x.manifest->nfiles ? x.manifest->files[i].name
                                                : (i == x.manifest->nfiles ? mname : sname);
        if (faccessat(outfd, nm, F_OK, AT_SYMLINK_NOFOLLOW) == 0) {
            pf_err_set(e, PF_EENV, "%s/%s: already exists; refusing to overwrite it", outdir, nm);
            goto out;
        }
    }
    for (; moved < total; moved++) {
        const char *nm = moved < x.manifest->nfiles ? x.manifest->files[moved].name
                                                    : (moved == x.manifest->nfiles ? mname : sname);
        const char *from = moved < x.manifest->nfiles ? x.staged[moved] : nm;
        if (pf_rename_noreplace(stagefd, from, outfd, nm) != 0) {
            pf_err_sys(e, errno, "%s/%s: cannot move into place", outdir, nm);
            goto out;
        }
    }
    if (pf_fsync_dirfd(outfd, outdir, e) != 0)
        goto out;
    *out = x;
    memset(&x, 0, sizeof x);
    rc = 0;
out:
    if (rc != 0 && outfd >= 0 && x.manifest != NULL) {
        /* All or nothing: take back what was already moved. */
        for (size_t i = 0; i < moved; i++) {
            const char *nm = i < x.manifest->nfiles ? x.manifest->files[i].name
                                                    : (i == x.manifest->nfiles ? mname : sname);
            unlinkat(outfd, nm, 0);
        }
    }
    if (stagefd >= 0)
        close(stagefd);
    if (stage_made)
        remove_tree_flat(outfd, stage);
    if (outfd >= 0)
        close(outfd);
    if (fd >= 0)
        close(fd);
    pf_extracted_clear(&x);
    return rc;
}
