/* Hostile archives inside validly sealed bundles.
 *
 * Every bundle here is sealed by the trusted test sensor through the
 * library's own sealer and carries a tar written by libarchive, so the
 * stream layer (header, chunks, trailer) is flawless and pf_bundle_verify
 * accepts it. What is hostile is the archive or the manifest inside it, and
 * both pf_bundle_extract and pf_bundle_open must refuse each one with
 * PF_EREJECT and a message naming the specific check, leaving nothing
 * behind. A control bundle made with the same builder opens cleanly, so
 * each rejection is the gate's doing, not the builder's. */

#include "fixture.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <sys/resource.h>
#include <sys/sysmacros.h>
#include <time.h>

#define KiB        1024u
#define MiB        (1024u * 1024u)
#define CREATED_NS 1700000000000000000LL

/* ------------------------------------------------------------------------
 * The builder: one bundle at a time, entries in the order they are added.
 *   ev_begin        sealer + pax tar writer + empty manifest for its header
 *                   (ev_begin_format: another tar dialect)
 *   ev_put          a regular entry the manifest does not speak of
 *                   (ev_put_zeros: a large one; ev_put_sparse: a sparse one)
 *   ev_list         a manifest record (name, size, BLAKE2b of given bytes)
 *   ev_file         both: an honest regular entry
 *   ev_special      symlink, hard link, device, directory, FIFO entries
 *   ev_put_manifest manifest.json + manifest.sig with the given text/sig
 *   ev_seal_manifest the honest manifest, signed as the sensor does
 *   ev_end_tar      the tar's end-of-archive blocks
 *   ev_tail         raw bytes into the sealed content after the tar
 *   ev_cut          the tar stops here, mid-entry
 *   ev_finish       seals the stream (final chunk, trailer); the path
 * Builder failures are the test's own breakage: they exit at once.
 * ------------------------------------------------------------------------ */

typedef struct ev {
    const fixture *fx;
    char path[PATH_MAX];
    int fd;
    pf_sealer *sealer;
    struct archive *a;
    pf_manifest *m;
    bool tar_ended;
    bool cut; /* the tar writer's further output is dropped */
} ev;

static void ev_fail(const char *what, const char *why)
{
    fprintf(stderr, "builder: %s: %s\n", what, why != NULL ? why : "(no reason)");
    exit(2);
}

static la_ssize_t ev_write_cb(struct archive *a, void *ctx, const void *buf, size_t len)
{
    ev *b = ctx;
    pf_err e;
    pf_err_clear(&e);
    if (b->cut)
        return (la_ssize_t)len;
    if (pf_sealer_write(b->sealer, buf, len, &e) != 0) {
        archive_set_error(a, EIO, "%s", e.msg);
        return -1;
    }
    return (la_ssize_t)len;
}

/* The honest bound for everything but the bombs. */
#define EV_PLAIN_MAX (16u * MiB)

/* format: ARCHIVE_FORMAT_TAR_PAX_RESTRICTED as the sensor writes, or
 * another tar dialect when an entry needs one to be expressed. */
static void ev_begin_format(ev *b, const fixture *fx, const char *tag, uint64_t plain_len_max,
                            int format)
{
    pf_seal_params p;
    pf_err e;
    memset(b, 0, sizeof *b);
    memset(&p, 0, sizeof p);
    pf_err_clear(&e);
    b->fx = fx;
    snprintf(b->path, sizeof b->path, "%s/%s.pcapferry", fx->dir, tag);
    p.seq = 1;
    p.created_ns = CREATED_NS;
    p.chunk_size = 64 * KiB;
    p.plain_len_max = plain_len_max;
    p.level = 1;
    b->fd = open(b->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (b->fd < 0)
        ev_fail(b->path, strerror(errno));
    b->sealer = pf_sealer_new(fx->sensor, &fx->central->pub, &p, b->fd, b->path, &e);
    if (b->sealer == NULL)
        ev_fail(b->path, e.msg);
    b->m = pf_manifest_new(pf_sealer_header(b->sealer));
    b->a = archive_write_new();
    if (b->m == NULL || b->a == NULL)
        ev_fail(b->path, "out of memory");
    b->m->capture = json_pack("{s:s}", "source", "test_evil_archive");
    if (archive_write_set_format(b->a, format) != ARCHIVE_OK ||
        archive_write_set_bytes_per_block(b->a, 0) != ARCHIVE_OK ||
        archive_write_open(b->a, b, NULL, ev_write_cb, NULL) != ARCHIVE_OK)
        ev_fail(b->path, archive_error_string(b->a));
}

static void ev_begin(ev *b, const fixture *fx, const char *tag, uint64_t plain_len_max)
{
    ev_begin_format(b, fx, tag, plain_len_max, ARCHIVE_FORMAT_TAR_PAX_RESTRICTED);
}

/* The sealer refuses content beyond the bound its header declares, and a
 * decompression bomb is exactly that. The header is signed and written by
 * pf_sealer_new, so raising the sealer's in-memory copy of the bound lifts
 * the guard without changing a byte the opener sees (the bomb case checks
 * the header on disk still declares the small bound). */
static void ev_lift_sealer_guard(ev *b)
{
    ((pf_header *)pf_sealer_header(b->sealer))->plain_len_max = PF_PLAIN_MAX_BYTES;
}

static struct archive_entry *ev_new_entry(const char *name, unsigned type, uint64_t size)
{
    struct archive_entry *ent = archive_entry_new();
    if (ent == NULL)
        ev_fail(name, "out of memory");
    archive_entry_set_pathname(ent, name);
    archive_entry_set_filetype(ent, type);
    archive_entry_set_perm(ent, type == AE_IFDIR ? 0755 : 0644);
    archive_entry_set_mtime(ent, (time_t)(CREATED_NS / 1000000000), 0);
    archive_entry_set_size(ent, (la_int64_t)size);
    return ent;
}

static void ev_write_header(ev *b, struct archive_entry *ent)
{
    if (archive_write_header(b->a, ent) != ARCHIVE_OK)
        ev_fail(archive_entry_pathname(ent), archive_error_string(b->a));
    archive_entry_free(ent);
}

static void ev_write_data(ev *b, const void *data, size_t len)
{
    la_ssize_t n = archive_write_data(b->a, data, len);
    if (n < 0 || (size_t)n != len)
        ev_fail("archive data", archive_error_string(b->a));
}

static void ev_put(ev *b, const char *name, const void *data, size_t len)
{
    ev_write_header(b, ev_new_entry(name, AE_IFREG, len));
    if (len > 0)
        ev_write_data(b, data, len);
}

/* A regular entry of size bytes, all zero, written in pieces. */
static void ev_put_zeros(ev *b, const char *name, uint64_t size)
{
    static const uint8_t zeros[64 * 1024];
    ev_write_header(b, ev_new_entry(name, AE_IFREG, size));
    for (uint64_t done = 0; done < size;) {
        size_t n = size - done < sizeof zeros ? (size_t)(size - done) : sizeof zeros;
        ev_write_data(b, zeros, n);
        done += n;
    }
}

static void ev_list_hash(ev *b, const char *name, uint64_t size, const uint8_t hash[PF_HASH_BYTES])
{
    pf_pcapinfo info;
    pf_err e;
    memset(&info, 0, sizeof info);
    pf_err_clear(&e);
    snprintf(info.format, sizeof info.format, "pcap");
    snprintf(info.ts_resolution, sizeof info.ts_resolution, "us");
    snprintf(info.link_type_name, sizeof info.link_type_name, "EN10MB");
    info.version_major = 2;
    info.version_minor = 4;
    info.link_type = 1;
    info.snaplen = 262144;
    info.read_status = PF_READ_COMPLETE;
    info.size = size;
    memcpy(info.blake2b, hash, PF_HASH_BYTES);
    if (pf_manifest_add(b->m, name, &info, NULL, &e) != 0)
        ev_fail(name, e.msg);
}

static void ev_list(ev *b, const char *name, const void *data, size_t len)
{
    uint8_t hash[PF_HASH_BYTES];
    crypto_generichash(hash, sizeof hash, data, len, NULL, 0);
    ev_list_hash(b, name, len, hash);
}

static void ev_file(ev *b, const char *name, const void *data, size_t len)
{
    ev_put(b, name, data, len);
    ev_list(b, name, data, len);
}

enum ev_kind { EV_SYMLINK, EV_HARDLINK, EV_CHARDEV, EV_DIR, EV_FIFO };

static void ev_special(ev *b, enum ev_kind kind, const char *name, const char *target)
{
    static const unsigned types[] = {
        [EV_SYMLINK] = AE_IFLNK, [EV_HARDLINK] = AE_IFREG, [EV_CHARDEV] = AE_IFCHR,
        [EV_DIR] = AE_IFDIR,     [EV_FIFO] = AE_IFIFO,
    };
    struct archive_entry *ent = ev_new_entry(name, types[kind], 0);
    if (kind == EV_SYMLINK)
        archive_entry_set_symlink(ent, target);
    if (kind == EV_HARDLINK)
        archive_entry_set_hardlink(ent, target);
    if (kind == EV_CHARDEV)
        archive_entry_set_rdev(ent, makedev(1, 3)); /* /dev/null */
    ev_write_header(b, ent);
}

/* A sparse regular entry: data at [0, 4 KiB) and [32 KiB, 36 KiB) of a
 * 64 KiB file; *expanded gets the file as it reads back (malloc'd). */
static void ev_put_sparse(ev *b, const char *name, uint8_t **expanded, size_t *len)
{
    enum { SIZE = 64 * 1024, PIECE = 4096, SECOND = 32 * 1024 };
    uint8_t data[2 * PIECE];
    memset(data, 'S', sizeof data);
    struct archive_entry *ent = ev_new_entry(name, AE_IFREG, SIZE);
    archive_entry_sparse_add_entry(ent, 0, PIECE);
    archive_entry_sparse_add_entry(ent, SECOND, PIECE);
    ev_write_header(b, ent);
    ev_write_data(b, data, sizeof data);
    *expanded = calloc(1, SIZE);
    if (*expanded == NULL)
        ev_fail(name, "out of memory");
    memset(*expanded, 'S', PIECE);
    memset(*expanded + SECOND, 'S', PIECE);
    *len = SIZE;
}

/* The manifest as the sensor writes it (malloc'd). */
static char *ev_manifest_text(const ev *b, size_t *len)
{
    char *text = NULL;
    pf_err e;
    pf_err_clear(&e);
    if (pf_manifest_encode(b->m, &text, len, &e) != 0)
        ev_fail("manifest", e.msg);
    return text;
}

static void ev_sign(const ev *b, uint8_t sig[PF_SIG_BYTES], const void *text, size_t len)
{
    pf_sign_ctx(sig, PF_SIGCTX_MANIFEST, text, len, b->fx->sensor->sign_sk);
}

static void ev_put_manifest(ev *b, const void *text, size_t len, const uint8_t sig[PF_SIG_BYTES])
{
    ev_put(b, PF_MANIFEST_NAME, text, len);
    ev_put(b, PF_MANIFEST_SIG_NAME, sig, PF_SIG_BYTES);
}

static void ev_seal_manifest(ev *b)
{
    uint8_t sig[PF_SIG_BYTES];
    size_t len = 0;
    char *text = ev_manifest_text(b, &len);
    ev_sign(b, sig, text, len);
    ev_put_manifest(b, text, len, sig);
    free(text);
}

static void ev_end_tar(ev *b)
{
    if (!b->tar_ended && archive_write_close(b->a) != ARCHIVE_OK)
        ev_fail("archive close", archive_error_string(b->a));
    b->tar_ended = true;
}

static void ev_tail(ev *b, const void *data, size_t len)
{
    pf_err e;
    pf_err_clear(&e);
    ev_end_tar(b);
    if (pf_sealer_write(b->sealer, data, len, &e) != 0)
        ev_fail("tail", e.msg);
}

/* Stops the tar where it is, mid-entry: whatever libarchive writes after
 * this (the entry's rest, padding, end blocks) never reaches the sealer.
 * The writer is unbuffered (bytes_per_block 0), so all before it did. */
static void ev_cut(ev *b)
{
    b->cut = true;
    ev_end_tar(b);
}

static const char *ev_finish(ev *b)
{
    uint8_t hash[PF_HASH_BYTES];
    pf_err e;
    pf_err_clear(&e);
    ev_end_tar(b);
    archive_write_free(b->a);
    if (pf_sealer_finish(b->sealer, hash, NULL, &e) != 0)
        ev_fail(b->path, e.msg);
    if (close(b->fd) != 0)
        ev_fail(b->path, strerror(errno));
    pf_sealer_free(b->sealer);
    pf_manifest_free(b->m);
    b->a = NULL;
    b->sealer = NULL;
    b->m = NULL;
    b->fd = -1;
    return b->path;
}

/* ------------------------------------------------------------------------
 * Shared payloads and the rejection check.
 * ------------------------------------------------------------------------ */

static struct {
    uint8_t *a, *b;
    size_t alen, blen;
} cap;

static void load_captures(const fixture *fx)
{
    char pa[PATH_MAX], pb[PATH_MAX];
    fx_path(pa, fx, "a.pcap");
    fx_path(pb, fx, "b.pcap");
    fx_write_pcap(pa, 20, 1, 100);
    fx_write_pcap(pb, 7, 2, 300);
    cap.a = fx_slurp(pa, &cap.alen);
    cap.b = fx_slurp(pb, &cap.blen);
}

static int file_equals(const char *dir, const char *name, const void *data, size_t len)
{
    char path[PATH_MAX];
    size_t got = 0;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (access(path, F_OK) != 0)
        return 0;
    uint8_t *buf = fx_slurp(path, &got);
    int same = got == len && (len == 0 || memcmp(buf, data, len) == 0);
    pf_free_file(buf, false);
    return same;
}

/* One line per case: which one failed (after its CHECK lines), or what the
 * library said. Messages name hostile entries; the log shows them without
 * their control and non-ASCII bytes. */
static void report_case(const char *label, int failures_before, const char *what)
{
    char shown[PF_ERR_MSG_BYTES];
    size_t i = 0;
    if (check_failures != failures_before) {
        fprintf(stderr, "  ^ in case '%s'\n", label);
        return;
    }
    for (; what[i] != '\0' && i + 1 < sizeof shown; i++)
        shown[i] = what[i] >= 0x20 && what[i] < 0x7f ? what[i] : '?';
    shown[i] = '\0';
    printf("ok  %-28s %s\n", label, shown);
}

static void out_dir(char *out, const fixture *fx, const char *label)
{
    snprintf(out, PATH_MAX, "%s/out-%s", fx->dir, label);
}

/* The bundle must be whole and signed (so the rejection is the archive
 * layer's). Both entry points must refuse it with PF_EREJECT naming the
 * check: pf_bundle_extract must take back everything it staged, and
 * pf_bundle_open must leave outdir as it found it (entries_before
 * entries, its own staging directory gone too). */
static void expect_reject_in(const fixture *fx, const char *label, const char *bundle,
                             const char *outdir, int entries_before, const char *needle)
{
    char stage[PATH_MAX];
    pf_extracted x;
    pf_verified v;
    pf_err e;
    int before = check_failures;

    pf_err_clear(&e);
    CHECK_MSG(pf_bundle_verify(bundle, fx->keyring, &v, &e) == 0, "not validly signed: %s", e.msg);

    snprintf(stage, sizeof stage, "%s/stage-%s", fx->dir, label);
    int fd = open(bundle, O_RDONLY | O_CLOEXEC);
    int dfd = mkdir(stage, 0700) == 0 ? open(stage, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
    if (fd < 0 || dfd < 0)
        ev_fail(stage, strerror(errno));
    pf_err_clear(&e);
    int rc = pf_bundle_extract(fd, bundle, fx->central, fx->keyring, dfd, ".evil-", &x, &e);
    CHECK(rc == -1);
    CHECK_ERR(e, PF_EREJECT, needle);
    CHECK_MSG(fx_count_entries(stage) == 0, "%d entries left in %s", fx_count_entries(stage),
              stage);
    pf_extracted_clear(&x);
    close(dfd);
    close(fd);

    pf_err_clear(&e);
    rc = pf_bundle_open(bundle, fx->central, fx->keyring, outdir, &x, &e);
    CHECK(rc == -1);
    CHECK_ERR(e, PF_EREJECT, needle);
    CHECK_MSG(fx_count_entries(outdir) == entries_before, "%d entries in %s, want %d",
              fx_count_entries(outdir), outdir, entries_before);
    pf_extracted_clear(&x);
    report_case(label, before, e.msg);
}

static void expect_reject(const fixture *fx, const char *label, const char *bundle,
                          const char *needle)
{
    char outdir[PATH_MAX];
    out_dir(outdir, fx, label);
    expect_reject_in(fx, label, bundle, outdir, 0, needle);
}

/* ------------------------------------------------------------------------
 * Cases.
 * ------------------------------------------------------------------------ */

/* The builder is right: an honest bundle extracts and opens, yielding
 * exactly its files, byte for byte, plus the manifest and its signature. */
static void case_control(const fixture *fx)
{
    char outdir[PATH_MAX], stage[PATH_MAX];
    pf_extracted x;
    pf_err e;
    ev b;
    int before = check_failures;

    ev_begin(&b, fx, "control", EV_PLAIN_MAX);
    ev_file(&b, "a.pcap", cap.a, cap.alen);
    ev_file(&b, "b.pcap", cap.b, cap.blen);
    ev_seal_manifest(&b);
    const char *bundle = ev_finish(&b);

    /* The staging entry point, as expect_reject uses it. */
    snprintf(stage, sizeof stage, "%s/stage-control", fx->dir);
    int fd = open(bundle, O_RDONLY | O_CLOEXEC);
    int dfd = mkdir(stage, 0700) == 0 ? open(stage, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
    if (fd < 0 || dfd < 0)
        ev_fail(stage, strerror(errno));
    pf_err_clear(&e);
    int rc = pf_bundle_extract(fd, bundle, fx->central, fx->keyring, dfd, ".evil-", &x, &e);
    CHECK_MSG(rc == 0, "%s", e.msg);
    CHECK(fx_count_entries(stage) == 2);
    if (rc == 0 && x.manifest != NULL && x.manifest->nfiles == 2 && x.staged != NULL) {
        CHECK(strcmp(x.manifest->files[0].name, "a.pcap") == 0);
        CHECK(file_equals(stage, x.staged[0], cap.a, cap.alen));
        CHECK(file_equals(stage, x.staged[1], cap.b, cap.blen));
    } else {
        CHECK(!"pf_bundle_extract handed back its manifest and staged names");
    }
    pf_extracted_clear(&x);
    close(dfd);
    close(fd);

    out_dir(outdir, fx, "control");
    pf_err_clear(&e);
    rc = pf_bundle_open(bundle, fx->central, fx->keyring, outdir, &x, &e);
    CHECK_MSG(rc == 0, "%s", e.msg);
    CHECK(fx_count_entries(outdir) == 4);
    CHECK(file_equals(outdir, "a.pcap", cap.a, cap.alen));
    CHECK(file_equals(outdir, "b.pcap", cap.b, cap.blen));
    if (rc == 0) {
        uint8_t sig[PF_SIG_BYTES];
        CHECK(x.manifest != NULL && x.manifest->nfiles == 2);
        CHECK(x.hdr.seq == 1 && strcmp(x.hdr.sensor, "sensor1") == 0);
        CHECK(file_equals(outdir, "sensor1-0000000001.manifest.json", x.manifest_raw,
                          x.manifest_len));
        CHECK(file_equals(outdir, "sensor1-0000000001.manifest.sig", x.manifest_sig, PF_SIG_BYTES));
        ev_sign(&b, sig, x.manifest_raw, x.manifest_len);
        CHECK(memcmp(sig, x.manifest_sig, PF_SIG_BYTES) == 0);
    }
    pf_extracted_clear(&x);
    report_case("control", before,
                "extracted and opened: a.pcap, b.pcap, manifest.json, manifest.sig");
}

/* 1, 2, 12: names that climb out, are absolute, nest, hide, carry control
 * characters, or leave printable ASCII (docs/FORMAT.md: "1 to 200 bytes of
 * printable ASCII"). Each is listed in the manifest too where the manifest
 * can hold it (not over 200 bytes, valid UTF-8 for JSON), so nothing but
 * the name rule stands in the way. libarchive's pax writer refuses
 * non-ASCII names in the C locale, so those go in a ustar archive. */
static void case_unsafe_names(const fixture *fx)
{
    enum { PAX = ARCHIVE_FORMAT_TAR_PAX_RESTRICTED, USTAR = ARCHIVE_FORMAT_TAR_USTAR };
    static char long_name[PF_ENTRY_NAME_MAX + 2];
    memset(long_name, 'n', PF_ENTRY_NAME_MAX + 1);
    const struct {
        const char *label, *name;
        int format;
        bool listed;
    } cases[] = {
        {"name-dotdot", "../x", PAX, true},
        {"name-absolute", "/tmp/x", PAX, true},
        {"name-subdir", "sub/x.pcap", PAX, true},
        {"name-backslash", "..\\x.pcap", PAX, true},
        {"name-dot-hidden", ".hidden", PAX, true},
        {"name-control-char", "a\001b.pcap", PAX, true},
        {"name-newline", "a\nb.pcap", PAX, true},
        {"name-del", "a\177b.pcap", PAX, true},
        {"name-too-long", long_name, PAX, false},
        {"name-c1-control",
         "a\xc2\x85"
         "b.pcap",
         USTAR, true}, /* U+0085 NEXT LINE */
        {"name-bidi-override",
         "a\xe2\x80\xae"
         "pacp.exe",
         USTAR, true}, /* U+202E: shows as "aexe.pcap" */
        {"name-not-utf8",
         "a\xff"
         "b.pcap",
         USTAR, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char needle[256];
        ev b;
        ev_begin_format(&b, fx, cases[i].label, EV_PLAIN_MAX, cases[i].format);
        ev_file(&b, "a.pcap", cap.a, cap.alen);
        ev_put(&b, cases[i].name, cap.b, cap.blen);
        if (cases[i].listed)
            ev_list(&b, cases[i].name, cap.b, cap.blen);
        ev_seal_manifest(&b);
        snprintf(needle, sizeof needle, "archive entry '%.100s' has an unsafe name", cases[i].name);
        expect_reject(fx, cases[i].label, ev_finish(&b), needle);
    }
}

/* 3, 4, 5: only regular files may come out. */
static void case_special_entries(const fixture *fx)
{
    static const struct {
        const char *label;
        enum ev_kind kind;
        const char *name, *target, *needle;
    } cases[] = {
        {"symlink", EV_SYMLINK, "link.pcap", "/etc/passwd",
         "archive entry 'link.pcap' is a symbolic link"},
        {"symlink-dangling", EV_SYMLINK, "dangle.pcap", "../../outside",
         "archive entry 'dangle.pcap' is a symbolic link"},
        {"hardlink", EV_HARDLINK, "b.pcap", "a.pcap", "archive entry 'b.pcap' is a hard link"},
        {"hardlink-outside", EV_HARDLINK, "c.pcap", "/etc/passwd",
         "archive entry 'c.pcap' is a hard link"},
        {"chardev", EV_CHARDEV, "null.pcap", NULL, "archive entry 'null.pcap' is a device node"},
        {"directory", EV_DIR, "sub", NULL, "archive entry 'sub/' is a directory"},
        {"fifo", EV_FIFO, "fifo.pcap", NULL, "archive entry 'fifo.pcap' is a FIFO"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ev b;
        ev_begin(&b, fx, cases[i].label, EV_PLAIN_MAX);
        ev_file(&b, "a.pcap", cap.a, cap.alen);
        ev_special(&b, cases[i].kind, cases[i].name, cases[i].target);
        /* Listed as if it were a.pcap's copy, so only the type gate stands
         * in the way. */
        if (cases[i].kind == EV_HARDLINK)
            ev_list(&b, cases[i].name, cap.a, cap.alen);
        ev_seal_manifest(&b);
        expect_reject(fx, cases[i].label, ev_finish(&b), cases[i].needle);
    }
}

/* 6: the same name twice; the second copy would replace the first. */
static void case_duplicate(const fixture *fx)
{
    ev b;
    ev_begin(&b, fx, "duplicate", EV_PLAIN_MAX);
    ev_file(&b, "a.pcap", cap.a, cap.alen);
    ev_put(&b, "a.pcap", cap.b, cap.blen);
    ev_seal_manifest(&b);
    expect_reject(fx, "duplicate", ev_finish(&b), "archive holds 'a.pcap' twice");

    /* Identical bytes twice: still one name too many. */
    ev_begin(&b, fx, "duplicate-same", EV_PLAIN_MAX);
    ev_file(&b, "a.pcap", cap.a, cap.alen);
    ev_put(&b, "a.pcap", cap.a, cap.alen);
    ev_seal_manifest(&b);
    expect_reject(fx, "duplicate-same", ev_finish(&b), "archive holds 'a.pcap' twice");
}

/* 7, 8, 9, 10: the manifest must list exactly what was carried. */
static void case_manifest_mismatch(const fixture *fx)
{
    char needle[256], want[2 * PF_HASH_BYTES + 1], got[2 * PF_HASH_BYTES + 1];
    uint8_t hash[PF_HASH_BYTES];
    ev b;

    ev_begin(&b, fx, "unlisted-entry", EV_PLAIN_MAX);
    ev_file(&b, "a.pcap", cap.a, cap.alen);
    ev_put(&b, "extra.pcap", cap.b, cap.blen);
    ev_seal_manifest(&b);
    expect_reject(fx, "unlisted-entry", ev_finish(&b),
                  "archive holds 'extra.pcap', which the manifest does not list");

    ev_begin(&b, fx, "missing-file", EV_PLAIN_MAX);
    ev_file(&b, "a.pcap", cap.a, cap.alen);
    ev_list(&b, "ghost.pcap", cap.b, cap.blen);
    ev_seal_manifest(&b);
    expect_reject(fx, "missing-file", ev_finish(&b),
                  "manifest lists 'ghost.pcap', which the archive does not hold");

    /* The manifest claims one byte less than the archive carries. */
    ev_begin(&b, fx, "size-mismatch", EV_PLAIN_MAX);
    ev_put(&b, "a.pcap", cap.a, cap.alen);
    ev_list(&b, "a.pcap", cap.a, cap.alen - 1);
    ev_seal_manifest(&b);
    snprintf(needle, sizeof needle, "'a.pcap' is %zu bytes but the manifest says %zu", cap.alen,
             cap.alen - 1);
    expect_reject(fx, "size-mismatch", ev_finish(&b), needle);

    /* Same size, one bit different. */
    uint8_t *other = malloc(cap.alen);
    if (other == NULL)
        ev_fail("hash-mismatch", "out of memory");
    memcpy(other, cap.a, cap.alen);
    other[cap.alen / 2] ^= 0x01;
    ev_begin(&b, fx, "hash-mismatch", EV_PLAIN_MAX);
    ev_put(&b, "a.pcap", cap.a, cap.alen);
    ev_list(&b, "a.pcap", other, cap.alen);
    ev_seal_manifest(&b);
    crypto_generichash(hash, sizeof hash, cap.a, cap.alen, NULL, 0);
    pf_hex(got, hash, PF_HASH_BYTES);
    crypto_generichash(hash, sizeof hash, other, cap.alen, NULL, 0);
    pf_hex(want, hash, PF_HASH_BYTES);
    snprintf(needle, sizeof needle, "'a.pcap' has BLAKE2b-256 %s but the manifest says %s", got,
             want);
    expect_reject(fx, "hash-mismatch", ev_finish(&b), needle);
    free(other);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long max_rss_kib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

/* 11: the header promises a little content; the chunks inflate to 64 MiB
 * of zeros. Everything else about the bundle is honest (the manifest
 * lists the 64 MiB file with its true hash), so only the bound stops it. */
static void bomb(const fixture *fx, const char *label, uint64_t declared, uint64_t inflated)
{
    crypto_generichash_state st;
    static const uint8_t zeros[64 * 1024];
    uint8_t hash[PF_HASH_BYTES];
    pf_header h;
    pf_err e;
    ev b;

    ev_begin(&b, fx, label, declared);
    ev_lift_sealer_guard(&b);
    ev_put_zeros(&b, "bomb.pcap", inflated);
    crypto_generichash_init(&st, NULL, 0, PF_HASH_BYTES);
    for (uint64_t done = 0; done < inflated; done += sizeof zeros)
        crypto_generichash_update(&st, zeros, sizeof zeros);
    crypto_generichash_final(&st, hash, PF_HASH_BYTES);
    ev_list_hash(&b, "bomb.pcap", inflated, hash);
    ev_seal_manifest(&b);
    const char *bundle = ev_finish(&b);

    pf_err_clear(&e);
    CHECK(pf_bundle_read_header(bundle, &h, NULL, &e) == 0 && h.plain_len_max == declared);

    long rss0 = max_rss_kib();
    double t0 = now_s();
    expect_reject(fx, label, bundle, "declares (decompression bomb)");
    double secs = now_s() - t0;
    long grown = max_rss_kib() - rss0;
    CHECK_MSG(secs < 10.0, "%s took %.1f s", label, secs);
    CHECK_MSG(grown < 32 * 1024, "%s grew peak memory by %ld KiB", label, grown);
}

static void case_bomb(const fixture *fx)
{
    /* Over the bound in the very first read. */
    bomb(fx, "bomb-64k", 64 * KiB, 64ull * MiB);
    /* Over the bound partway through a file already being staged. */
    bomb(fx, "bomb-mid-file", 4ull * MiB, 64ull * MiB);
}

/* 13: the manifest's own signature and binding. */
static void case_manifest_signature(const fixture *fx)
{
    uint8_t sig[PF_SIG_BYTES];
    size_t len = 0;
    char *text;
    ev b;

    ev_begin(&b, fx, "sig-bit-flipped", EV_PLAIN_MAX);
    ev_file(&b, "a.pcap", cap.a, cap.alen);
    text = ev_manifest_text(&b, &len);
    ev_sign(&b, sig, text, len);
    sig[17] ^= 0x04;
    ev_put_manifest(&b, text, len, sig);
    free(text);
    expect_reject(fx, "sig-bit-flipped", ev_finish(&b), "manifest signature is invalid");

    /* A valid signature by the right key, but over the header's context. */
    ev_begin(&b, fx, "sig-wrong-context", EV_PLAIN_MAX);
    ev_file(&b, "a.pcap", cap.a, cap.alen);
    text = ev_manifest_text(&b, &len);
    pf_sign_ctx(sig, PF_SIGCTX_HEADER, (const uint8_t *)text, len, fx->sensor->sign_sk);
    ev_put_manifest(&b, text, len, sig);
    free(text);
    expect_reject(fx, "sig-wrong-context", ev_finish(&b), "manifest signature is invalid");

    /* Plain Ed25519 over the bytes, no context at all. */
    ev_begin(&b, fx, "sig-no-context", EV_PLAIN_MAX);
    ev_file(&b, "a.pcap", cap.a, cap.alen);
    text = ev_manifest_text(&b, &len);
    crypto_sign_ed25519_detached(sig, NULL, (const uint8_t *)text, len, fx->sensor->sign_sk);
    ev_put_manifest(&b, text, len, sig);
    free(text);
    expect_reject(fx, "sig-no-context", ev_finish(&b), "manifest signature is invalid");

    /* Signed correctly, but names the header of another bundle with the
     * same sensor, keys and seq (a manifest lifted from a sibling). */
    ev other;
    ev_begin(&other, fx, "sibling", EV_PLAIN_MAX);
    ev_begin(&b, fx, "manifest-other-header", EV_PLAIN_MAX);
    ev_file(&b, "a.pcap", cap.a, cap.alen);
    memcpy(b.m->header_hash, pf_sealer_header(other.sealer)->hash, PF_HASH_BYTES);
    ev_seal_manifest(&b);
    ev_finish(&other);
    expect_reject(fx, "manifest-other-header", ev_finish(&b),
                  "manifest is bound to another bundle header");

    /* Signed correctly, but for another seq. */
    ev_begin(&b, fx, "manifest-other-seq", EV_PLAIN_MAX);
    ev_file(&b, "a.pcap", cap.a, cap.alen);
    b.m->seq = 2;
    ev_seal_manifest(&b);
    expect_reject(fx, "manifest-other-seq", ev_finish(&b), "manifest describes another bundle");
}

/* 14: the manifest and its signature close the archive, in that order,
 * once each. */
static void case_manifest_order(const fixture *fx)
{
    uint8_t sig[PF_SIG_BYTES];
    size_t len = 0;
    char *text;
    ev b;

    ev_begin(&b, fx, "entry-after-sig", EV_PLAIN_MAX);
    ev_file(&b, "a.pcap", cap.a, cap.alen);
    ev_seal_manifest(&b);
    ev_put(&b, "late.pcap", cap.b, cap.blen);
    expect_reject(fx, "entry-after-sig", ev_finish(&b),
                  "archive holds entries after the manifest signature");

    ev_begin(&b, fx, "sig-before-manifest", EV_PLAIN_MAX);
    ev_file(&b, "a.pcap", cap.a, cap.alen);
    text = ev_manifest_text(&b, &len);
    ev_sign(&b, sig, text, len);
    ev_put(&b, PF_MANIFEST_SIG_NAME, sig, sizeof sig);
    ev_put(&b, PF_MANIFEST_NAME, text, len);
    free(text);
    expect_reject(fx, "sig-before-manifest", ev_finish(&b),
                  "archive entry 'manifest.sig' is out of place");

    ev_begin(&b, fx, "entry-between", EV_PLAIN_MAX);
    ev_file(&b, "a.pcap", cap.a, cap.alen);
    text = ev_manifest_text(&b, &len);
    ev_sign(&b, sig, text, len);
    ev_put(&b, PF_MANIFEST_NAME, text, len);
    ev_put(&b, "late.pcap", cap.b, cap.blen);
    ev_put(&b, PF_MANIFEST_SIG_NAME, sig, sizeof sig);
    free(text);
    expect_reject(fx, "entry-between", ev_finish(&b), "archive entry 'late.pcap' is out of place");

    ev_begin(&b, fx, "manifest-twice", EV_PLAIN_MAX);
    ev_file(&b, "a.pcap", cap.a, cap.alen);
    text = ev_manifest_text(&b, &len);
    ev_sign(&b, sig, text, len);
    ev_put(&b, PF_MANIFEST_NAME, text, len);
    ev_put_manifest(&b, text, len, sig);
    free(text);
    expect_reject(fx, "manifest-twice", ev_finish(&b),
                  "archive entry 'manifest.json' is out of place");

    ev_begin(&b, fx, "no-manifest", EV_PLAIN_MAX);
    ev_file(&b, "a.pcap", cap.a, cap.alen);
    expect_reject(fx, "no-manifest", ev_finish(&b), "archive has no signed manifest");

    ev_begin(&b, fx, "manifest-unsigned", EV_PLAIN_MAX);
    ev_file(&b, "a.pcap", cap.a, cap.alen);
    text = ev_manifest_text(&b, &len);
    ev_put(&b, PF_MANIFEST_NAME, text, len);
    free(text);
    expect_reject(fx, "manifest-unsigned", ev_finish(&b), "archive has no signed manifest");

    ev_begin(&b, fx, "sig-too-short", EV_PLAIN_MAX);
    ev_file(&b, "a.pcap", cap.a, cap.alen);
    text = ev_manifest_text(&b, &len);
    ev_sign(&b, sig, text, len);
    ev_put(&b, PF_MANIFEST_NAME, text, len);
    ev_put(&b, PF_MANIFEST_SIG_NAME, sig, sizeof sig - 1);
    free(text);
    expect_reject(fx, "sig-too-short", ev_finish(&b), "manifest signature has the wrong size");

    ev_begin(&b, fx, "sig-too-long", EV_PLAIN_MAX);
    ev_file(&b, "a.pcap", cap.a, cap.alen);
    uint8_t longsig[PF_SIG_BYTES + 1] = {0};
    text = ev_manifest_text(&b, &len);
    ev_sign(&b, longsig, text, len);
    ev_put(&b, PF_MANIFEST_NAME, text, len);
    ev_put(&b, PF_MANIFEST_SIG_NAME, longsig, sizeof longsig);
    free(text);
    expect_reject(fx, "sig-too-long", ev_finish(&b), "manifest.sig is larger than allowed");
}

/* 15: whatever follows the tar's end must be zeros. The garbage sits right
 * after the end-of-archive blocks, and again after a long zero run (beyond
 * what the tar reader reads ahead). */
static void case_trailing_data(const fixture *fx)
{
    static const char garbage[] = "hidden payload after the end of the tar";
    ev b;

    ev_begin(&b, fx, "tail-right-after-end", EV_PLAIN_MAX);
    ev_file(&b, "a.pcap", cap.a, cap.alen);
    ev_seal_manifest(&b);
    ev_tail(&b, garbage, sizeof garbage - 1);
    expect_reject(fx, "tail-right-after-end", ev_finish(&b), "data after the end of the archive");

    ev_begin(&b, fx, "tail-after-zeros", EV_PLAIN_MAX);
    ev_file(&b, "a.pcap", cap.a, cap.alen);
    ev_seal_manifest(&b);
    uint8_t *pad = calloc(1, 2 * MiB);
    if (pad == NULL)
        ev_fail("tail", "out of memory");
    ev_tail(&b, pad, 2 * MiB);
    free(pad);
    ev_tail(&b, garbage, sizeof garbage - 1);
    expect_reject(fx, "tail-after-zeros", ev_finish(&b), "data after the end of the archive");
}

/* 16: a sparse entry expands to more than it carries. Listed with its
 * expanded bytes, so only the sparse gate stands in the way. */
static void case_sparse(const fixture *fx)
{
    uint8_t *expanded = NULL;
    size_t len = 0;
    ev b;

    ev_begin(&b, fx, "sparse", EV_PLAIN_MAX);
    ev_file(&b, "a.pcap", cap.a, cap.alen);
    ev_put_sparse(&b, "sparse.pcap", &expanded, &len);
    ev_list(&b, "sparse.pcap", expanded, len);
    ev_seal_manifest(&b);
    free(expanded);
    expect_reject(fx, "sparse", ev_finish(&b), "archive entry 'sparse.pcap' is sparse");
}

/* 17: the signature is right, the text is not a manifest. */
static void case_manifest_json(const fixture *fx)
{
    static const char broken[] = "{\"type\": \"pcapferry-manifest\", \"version\": 1,";
    uint8_t sig[PF_SIG_BYTES];
    size_t len = 0;
    ev b;

    ev_begin(&b, fx, "manifest-not-json", EV_PLAIN_MAX);
    ev_file(&b, "a.pcap", cap.a, cap.alen);
    ev_sign(&b, sig, broken, sizeof broken - 1);
    ev_put_manifest(&b, broken, sizeof broken - 1, sig);
    expect_reject(fx, "manifest-not-json", ev_finish(&b), "manifest is not valid JSON");

    /* The honest manifest with a second "files" key listing nothing: a
     * parser that kept the last key would see a different bundle. */
    ev_begin(&b, fx, "manifest-duplicate-key", EV_PLAIN_MAX);
    ev_file(&b, "a.pcap", cap.a, cap.alen);
    char *text = ev_manifest_text(&b, &len);
    char *end = strrchr(text, '}');
    if (end == NULL)
        ev_fail("manifest", "no closing brace");
    static const char dup[] = ",\n  \"files\": []\n}";
    char *twisted = malloc((size_t)(end - text) + sizeof dup);
    if (twisted == NULL)
        ev_fail("manifest", "out of memory");
    memcpy(twisted, text, (size_t)(end - text));
    /* drop the newline before the brace so the comma follows the value */
    size_t keep = (size_t)(end - text);
    while (keep > 0 && (twisted[keep - 1] == '\n' || twisted[keep - 1] == ' '))
        keep--;
    memcpy(twisted + keep, dup, sizeof dup);
    size_t tlen = keep + sizeof dup - 1;
    ev_sign(&b, sig, twisted, tlen);
    ev_put_manifest(&b, twisted, tlen, sig);
    free(text);
    free(twisted);
    expect_reject(fx, "manifest-duplicate-key", ev_finish(&b),
                  "manifest is not valid JSON: duplicate object key");
}

/* A rejection in a directory that already holds something: the unrelated
 * file survives unchanged, even when the bundle carries a file of the same
 * name, and nothing else appears. */
static void case_existing_outdir(const fixture *fx)
{
    static const char keep[] = "not part of any bundle\n";
    char outdir[PATH_MAX], path[PATH_MAX];
    pf_err e;
    ev b;

    out_dir(outdir, fx, "existing");
    pf_err_clear(&e);
    if (pf_mkdir_p(outdir, 0755, &e) != 0)
        ev_fail(outdir, e.msg);
    snprintf(path, sizeof path, "%s/keep.txt", outdir);
    fx_spit(path, (const uint8_t *)keep, sizeof keep - 1);

    ev_begin(&b, fx, "existing", EV_PLAIN_MAX);
    ev_file(&b, "a.pcap", cap.a, cap.alen);
    ev_file(&b, "keep.txt", cap.b, cap.blen);
    ev_put(&b, "extra.pcap", cap.b, cap.blen);
    ev_seal_manifest(&b);
    expect_reject_in(fx, "existing-outdir", ev_finish(&b), outdir, 1,
                     "archive holds 'extra.pcap', which the manifest does not list");
    CHECK(file_equals(outdir, "keep.txt", keep, sizeof keep - 1));

    /* The same directory, a bundle rejected only at the very end (after
     * every file was staged). */
    ev_begin(&b, fx, "existing-late", EV_PLAIN_MAX);
    ev_file(&b, "a.pcap", cap.a, cap.alen);
    ev_file(&b, "b.pcap", cap.b, cap.blen);
    ev_list(&b, "ghost.pcap", cap.b, cap.blen);
    ev_seal_manifest(&b);
    expect_reject_in(fx, "existing-outdir-late", ev_finish(&b), outdir, 1,
                     "manifest lists 'ghost.pcap', which the archive does not hold");
    CHECK(file_equals(outdir, "keep.txt", keep, sizeof keep - 1));
}

/* The content ends inside an entry's data: the file is never complete,
 * and what was staged of it must go. */
static void case_truncated_entry(const fixture *fx)
{
    ev b;
    ev_begin(&b, fx, "truncated-entry", EV_PLAIN_MAX);
    ev_file(&b, "a.pcap", cap.a, cap.alen);
    ev_write_header(&b, ev_new_entry("b.pcap", AE_IFREG, cap.blen));
    ev_write_data(&b, cap.b, 100);
    ev_list(&b, "b.pcap", cap.b, cap.blen);
    ev_cut(&b);
    expect_reject(fx, "truncated-entry", ev_finish(&b), "b.pcap: Truncated tar archive");
}

/* A capture named like the provenance file pf_bundle_open writes beside
 * the captures (<sensor>-<seq>.manifest.json). pf_bundle_extract has no
 * reason to refuse it; pf_bundle_open must not let either file replace the
 * other, and must leave nothing behind. (Today it fails with PF_EENV,
 * "cannot move into place: File exists", after moving the capture in and
 * taking it back: a status for I/O trouble, for a bundle that can never
 * open. See the report that came with this test.) */
static void case_provenance_name(const fixture *fx)
{
    char outdir[PATH_MAX];
    pf_extracted x;
    pf_err e;
    ev b;
    int before = check_failures;

    ev_begin(&b, fx, "provenance-name", EV_PLAIN_MAX);
    ev_file(&b, "a.pcap", cap.a, cap.alen);
    ev_file(&b, "sensor1-0000000001.manifest.json", cap.b, cap.blen);
    ev_seal_manifest(&b);
    out_dir(outdir, fx, "provenance-name");
    pf_err_clear(&e);
    int rc = pf_bundle_open(ev_finish(&b), fx->central, fx->keyring, outdir, &x, &e);
    CHECK(rc == -1);
    CHECK_MSG(fx_count_entries(outdir) == 0, "%d entries in %s", fx_count_entries(outdir), outdir);
    pf_extracted_clear(&x);
    report_case("provenance-name", before, e.msg);
}

int main(void)
{
    fixture fx;
    setvbuf(stdout, NULL, _IOLBF, 0); /* in step with CHECK's stderr */
    if (sodium_init() < 0)
        return 2;
    fx_init(&fx, "evil-archive");
    load_captures(&fx);

    case_control(&fx);
    case_unsafe_names(&fx);
    case_special_entries(&fx);
    case_duplicate(&fx);
    case_manifest_mismatch(&fx);
    case_bomb(&fx);
    case_manifest_signature(&fx);
    case_manifest_order(&fx);
    case_trailing_data(&fx);
    case_sparse(&fx);
    case_manifest_json(&fx);
    case_truncated_entry(&fx);
    case_provenance_name(&fx);
    case_existing_outdir(&fx);

    pf_free_file(cap.a, false);
    pf_free_file(cap.b, false);
    fx_free(&fx);
    return check_summary("test_evil_archive");
}
