/* seedgen: writes the seed corpora of every harness, with the same fixed
 * keys and deterministic randomness the harnesses use (fuzz_common.h).
 *
 *   seedgen OUTDIR PCAP...
 *
 * OUTDIR/<harness>/ gets small files: real bundles sealed by the library
 * (pf_bundle_create), the tars inside them built as bundle/create.c builds
 * them (with a manifest bound to the archive harness's fixed header and
 * signed by the test sensor), hostile tars and their sealed bundles, key
 * files, receipts (pf_receipt_write), capture files for the recovery walker
 * and configuration files. Everything but the receipts (which carry the
 * time of writing) comes out byte for byte the same on every run. */
#include "fuzz_common.h"

#include <archive.h>
#include <archive_entry.h>
#include <sys/sysmacros.h>

#include "bundle/receipt.h"

static const char *outdir;
static char scratch[PATH_MAX];
static unsigned nwritten;

static void put(const char *harness, const char *name, const void *data, size_t len)
{
    char dir[PATH_MAX], path[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/%s", outdir, harness);
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        fz_die(dir, strerror(errno));
    snprintf(path, sizeof path, "%s/%s", dir, name);
    fz_write_file(path, data, len, 0644);
    nwritten++;
}

static uint8_t *slurp(const char *path, size_t *len)
{
    uint8_t *buf = NULL;
    pf_err e;
    pf_err_clear(&e);
    if (pf_read_file(path, 64u << 20, 0, &buf, len, &e) != 0)
        fz_die(path, e.msg);
    return buf;
}

static void put_file(const char *harness, const char *name, const char *path, size_t max)
{
    size_t len = 0;
    uint8_t *buf = slurp(path, &len);
    put(harness, name, buf, len < max ? len : max);
    pf_free_file(buf, false);
}

/* ---- tar builder: the archive the way bundle/create.c writes it ---- */

typedef struct tb {
    struct archive *a;
    uint8_t *buf;
    size_t len, cap;
    pf_manifest *m;
    bool closed;
} tb;

static pf_header archive_hdr; /* fz_archive_sealer's header */

static la_ssize_t tb_write_cb(struct archive *a, void *ctx, const void *data, size_t len)
{
    tb *t = ctx;
    (void)a;
    if (t->len + len > t->cap) {
        size_t cap = t->cap ? t->cap : 65536;
        while (cap < t->len + len)
            cap *= 2;
        uint8_t *g = realloc(t->buf, cap);
        if (g == NULL)
            fz_die("tar", "out of memory");
        t->buf = g;
        t->cap = cap;
    }
    memcpy(t->buf + t->len, data, len);
    t->len += len;
    return (la_ssize_t)len;
}

static void tb_begin(tb *t, int format)
{
    memset(t, 0, sizeof *t);
    t->m = pf_manifest_new(&archive_hdr);
    t->a = archive_write_new();
    if (t->m == NULL || t->a == NULL)
        fz_die("tar", "out of memory");
    t->m->capture = json_pack("{s:s}", "source", "files");
    if (archive_write_set_format(t->a, format) != ARCHIVE_OK ||
        archive_write_set_bytes_per_block(t->a, 0) != ARCHIVE_OK ||
        archive_write_open(t->a, t, NULL, tb_write_cb, NULL) != ARCHIVE_OK)
        fz_die("tar", archive_error_string(t->a));
}

static struct archive_entry *tb_entry(const char *name, unsigned type, uint64_t size)
{
    struct archive_entry *ent = archive_entry_new();
    archive_entry_set_pathname(ent, name);
    archive_entry_set_filetype(ent, type);
    archive_entry_set_perm(ent, type == AE_IFDIR ? 0755 : 0644);
    archive_entry_set_mtime(ent, (time_t)(FZ_ARCHIVE_CREATED_NS / 1000000000), 0);
    archive_entry_set_size(ent, (la_int64_t)size);
    return ent;
}

static void tb_header(tb *t, struct archive_entry *ent)
{
    if (archive_write_header(t->a, ent) != ARCHIVE_OK)
        fz_die(archive_entry_pathname(ent), archive_error_string(t->a));
    archive_entry_free(ent);
}

static void tb_data(tb *t, const void *data, size_t len)
{
    if (len > 0 && archive_write_data(t->a, data, len) != (la_ssize_t)len)
        fz_die("tar data", archive_error_string(t->a));
}

static int tb_sink(void *ctx, const uint8_t *data, size_t len, pf_err *e)
{
    (void)e;
    tb_data(ctx, data, len);
    return 0;
}

/* A capture file, entry and manifest record, as create.c does it. */
static void tb_pcap(tb *t, const char *name, const char *path)
{
    pf_pcapinfo info;
    struct stat st;
    pf_err e;
    pf_err_clear(&e);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) != 0)
        fz_die(path, strerror(errno));
    tb_header(t, tb_entry(name, AE_IFREG, (uint64_t)st.st_size));
    if (pf_pcap_scan(fd, (uint64_t)st.st_size, path, tb_sink, t, &info, &e) != 0 ||
        pf_manifest_add(t->m, name, &info, NULL, &e) != 0)
        fz_die(path, e.msg);
    close(fd);
}

static void tb_put(tb *t, const char *name, const void *data, size_t len)
{
    tb_header(t, tb_entry(name, AE_IFREG, len));
    tb_data(t, data, len);
}

static void tb_list(tb *t, const char *name, const void *data, size_t len)
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
    info.size = len;
    crypto_generichash(info.blake2b, sizeof info.blake2b, data, len, NULL, 0);
    if (pf_manifest_add(t->m, name, &info, NULL, &e) != 0)
        fz_die(name, e.msg);
}

static void tb_file(tb *t, const char *name, const void *data, size_t len)
{
    tb_put(t, name, data, len);
    tb_list(t, name, data, len);
}

static void tb_manifest_text(tb *t, const void *text, size_t len, bool with_sig, size_t siglen)
{
    uint8_t sig[PF_SIG_BYTES + 8];
    memset(sig, 0x5a, sizeof sig);
    pf_sign_ctx(sig, PF_SIGCTX_MANIFEST, text, len, fz.sensor->sign_sk);
    tb_put(t, PF_MANIFEST_NAME, text, len);
    if (with_sig)
        tb_put(t, PF_MANIFEST_SIG_NAME, sig, siglen);
}

static char *tb_encode(tb *t, size_t *len)
{
    char *text = NULL;
    pf_err e;
    pf_err_clear(&e);
    if (pf_manifest_encode(t->m, &text, len, &e) != 0)
        fz_die("manifest", e.msg);
    return text;
}

/* The honest manifest and its signature. */
static void tb_manifest(tb *t)
{
    size_t len = 0;
    char *text = tb_encode(t, &len);
    tb_manifest_text(t, text, len, true, PF_SIG_BYTES);
    free(text);
}

static void tb_close(tb *t)
{
    if (!t->closed && archive_write_close(t->a) != ARCHIVE_OK)
        fz_die("tar close", archive_error_string(t->a));
    t->closed = true;
}

/* Writes the tar to archive/<name>.tar and, sealed, to
 * bundle/<name>.pcapferry; frees the builder. */
static void tb_finish(tb *t, const char *name, const void *tail, size_t tail_len)
{
    char fname[PATH_MAX], bpath[PATH_MAX];
    tb_close(t);
    if (tail_len > 0)
        tb_write_cb(NULL, t, tail, tail_len);
    snprintf(fname, sizeof fname, "%s.tar", name);
    put("fuzz_archive", fname, t->buf, t->len);
    snprintf(bpath, sizeof bpath, "%s/sealed.pcapferry", scratch);
    fz_seal_content(bpath, t->buf, t->len);
    snprintf(fname, sizeof fname, "archive-%s.pcapferry", name);
    put_file("fuzz_bundle", fname, bpath, SIZE_MAX);
    archive_write_free(t->a);
    pf_manifest_free(t->m);
    free(t->buf);
    memset(t, 0, sizeof *t);
}

static void special(tb *t, const char *name, unsigned type, const char *link, bool hard)
{
    struct archive_entry *ent = tb_entry(name, type, 0);
    if (link != NULL && hard)
        archive_entry_set_hardlink(ent, link);
    else if (link != NULL)
        archive_entry_set_symlink(ent, link);
    if (type == AE_IFCHR)
        archive_entry_set_rdev(ent, makedev(1, 3));
    tb_header(t, ent);
}

static void archive_seeds(const char *pa, const char *pb)
{
    static const uint8_t small[] = "\xd4\xc3\xb2\xa1\x02\x00\x04\x00"
                                   "\x00\x00\x00\x00\x00\x00\x00\x00"
                                   "\x00\x00\x04\x00\x01\x00\x00\x00";
    const size_t slen = sizeof small - 1;
    static const uint8_t zeros[1024];
    tb t;

    /* The sealed header every archive-harness input gets. */
    char hpath[PATH_MAX];
    pf_err e;
    pf_err_clear(&e);
    snprintf(hpath, sizeof hpath, "%s/header.pcapferry", scratch);
    int fd = open(hpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    pf_sealer *s = fd >= 0 ? fz_archive_sealer(fd, hpath, &e) : NULL;
    if (s == NULL)
        fz_die(hpath, e.msg);
    archive_hdr = *pf_sealer_header(s);
    pf_sealer_free(s);
    close(fd);

    /* Valid ones, in the tar dialects libarchive reads. */
    static const struct {
        const char *name;
        int format;
    } formats[] = {
        {"valid-pax", ARCHIVE_FORMAT_TAR_PAX_RESTRICTED},
        {"valid-pax-full", ARCHIVE_FORMAT_TAR_PAX_INTERCHANGE},
        {"valid-ustar", ARCHIVE_FORMAT_TAR_USTAR},
        {"valid-gnutar", ARCHIVE_FORMAT_TAR_GNUTAR},
        {"valid-v7", ARCHIVE_FORMAT_TAR},
    };
    for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++) {
        tb_begin(&t, formats[i].format);
        tb_pcap(&t, "a.pcap", pa);
        tb_manifest(&t);
        tb_finish(&t, formats[i].name, NULL, 0);
    }
    tb_begin(&t, ARCHIVE_FORMAT_TAR_PAX_RESTRICTED);
    tb_pcap(&t, "a.pcap", pa);
    tb_pcap(&t, "b.pcap", pb);
    tb_manifest(&t);
    tb_finish(&t, "valid-two", NULL, 0);

    tb_begin(&t, ARCHIVE_FORMAT_TAR_PAX_RESTRICTED);
    tb_file(&t, "empty.pcap", "", 0);
    tb_file(&t, "hdr.pcap", small, slen);
    tb_manifest(&t);
    tb_finish(&t, "valid-tiny", NULL, 0);

    tb_begin(&t, ARCHIVE_FORMAT_TAR_PAX_RESTRICTED);
    tb_manifest(&t);
    tb_finish(&t, "valid-no-files", NULL, 0);

    /* A long name (pax path record) that is still valid. */
    char longname[PF_ENTRY_NAME_MAX + 1];
    memset(longname, 'n', PF_ENTRY_NAME_MAX);
    memcpy(longname + PF_ENTRY_NAME_MAX - 5, ".pcap", 6);
    tb_begin(&t, ARCHIVE_FORMAT_TAR_PAX_RESTRICTED);
    tb_file(&t, longname, small, slen);
    tb_manifest(&t);
    tb_finish(&t, "valid-long-name", NULL, 0);
    tb_begin(&t, ARCHIVE_FORMAT_TAR_GNUTAR);
    tb_file(&t, longname, small, slen);
    tb_manifest(&t);
    tb_finish(&t, "valid-gnu-long-name", NULL, 0);

    /* Hostile entries. */
    static const struct {
        const char *name, *entry, *link;
        unsigned type;
        bool hard;
    } specials[] = {
        {"symlink", "link.pcap", "/etc/passwd", AE_IFLNK, false},
        {"hardlink", "b.pcap", "hdr.pcap", AE_IFREG, true},
        {"directory", "sub", NULL, AE_IFDIR, false},
        {"fifo", "fifo.pcap", NULL, AE_IFIFO, false},
        {"chardev", "null.pcap", NULL, AE_IFCHR, false},
    };
    for (size_t i = 0; i < sizeof specials / sizeof specials[0]; i++) {
        tb_begin(&t, ARCHIVE_FORMAT_TAR_PAX_RESTRICTED);
        tb_file(&t, "hdr.pcap", small, slen);
        special(&t, specials[i].entry, specials[i].type, specials[i].link, specials[i].hard);
        tb_manifest(&t);
        tb_finish(&t, specials[i].name, NULL, 0);
    }
    /* (pax would need the non-ASCII name translated to UTF-8) */
    static const struct {
        const char *name, *entry;
        int format;
    } names[] = {
        {"name-dotdot", "../x.pcap", ARCHIVE_FORMAT_TAR_PAX_RESTRICTED},
        {"name-absolute", "/tmp/x.pcap", ARCHIVE_FORMAT_TAR_PAX_RESTRICTED},
        {"name-subdir", "sub/x.pcap", ARCHIVE_FORMAT_TAR_PAX_RESTRICTED},
        {"name-hidden", ".x.pcap", ARCHIVE_FORMAT_TAR_PAX_RESTRICTED},
        {"name-control", "a\001b.pcap", ARCHIVE_FORMAT_TAR_PAX_RESTRICTED},
        {"name-utf8", "a\xe2\x80\xae.pcap", ARCHIVE_FORMAT_TAR_USTAR},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        tb_begin(&t, names[i].format);
        tb_put(&t, names[i].entry, small, slen);
        tb_manifest(&t);
        tb_finish(&t, names[i].name, NULL, 0);
    }

    tb_begin(&t, ARCHIVE_FORMAT_TAR_PAX_RESTRICTED);
    tb_file(&t, "a.pcap", small, slen);
    tb_put(&t, "a.pcap", small, slen);
    tb_manifest(&t);
    tb_finish(&t, "duplicate", NULL, 0);

    tb_begin(&t, ARCHIVE_FORMAT_TAR_PAX_RESTRICTED);
    tb_file(&t, "a.pcap", small, slen);
    tb_put(&t, "extra.pcap", small, slen);
    tb_manifest(&t);
    tb_finish(&t, "unlisted", NULL, 0);

    tb_begin(&t, ARCHIVE_FORMAT_TAR_PAX_RESTRICTED);
    tb_file(&t, "a.pcap", small, slen);
    tb_list(&t, "gone.pcap", small, slen);
    tb_manifest(&t);
    tb_finish(&t, "missing", NULL, 0);

    tb_begin(&t, ARCHIVE_FORMAT_TAR_PAX_RESTRICTED);
    tb_put(&t, "a.pcap", small, slen);
    tb_list(&t, "a.pcap", small, slen - 1);
    tb_manifest(&t);
    tb_finish(&t, "size-mismatch", NULL, 0);

    tb_begin(&t, ARCHIVE_FORMAT_TAR_PAX_RESTRICTED);
    tb_file(&t, "a.pcap", small, slen);
    tb_manifest(&t);
    tb_put(&t, "late.pcap", small, slen);
    tb_finish(&t, "entry-after-sig", NULL, 0);

    tb_begin(&t, ARCHIVE_FORMAT_TAR_PAX_RESTRICTED);
    tb_file(&t, "a.pcap", small, slen);
    tb_put(&t, PF_MANIFEST_SIG_NAME, zeros, PF_SIG_BYTES);
    tb_manifest(&t);
    tb_finish(&t, "sig-before-manifest", NULL, 0);

    tb_begin(&t, ARCHIVE_FORMAT_TAR_PAX_RESTRICTED);
    tb_file(&t, "a.pcap", small, slen);
    {
        size_t len = 0;
        char *text = tb_encode(&t, &len);
        tb_manifest_text(&t, text, len, false, 0);
        tb_put(&t, "between.pcap", small, slen);
        tb_manifest_text(&t, text, len, true, PF_SIG_BYTES - 1);
        free(text);
    }
    tb_finish(&t, "entry-between-short-sig", NULL, 0);

    tb_begin(&t, ARCHIVE_FORMAT_TAR_PAX_RESTRICTED);
    tb_file(&t, "a.pcap", small, slen);
    tb_finish(&t, "no-manifest", NULL, 0);

    tb_begin(&t, ARCHIVE_FORMAT_TAR_PAX_RESTRICTED);
    tb_file(&t, "a.pcap", small, slen);
    tb_manifest(&t);
    tb_finish(&t, "tail-after-end", "garbage", 7);

    tb_begin(&t, ARCHIVE_FORMAT_TAR_PAX_RESTRICTED);
    tb_file(&t, "a.pcap", small, slen);
    tb_manifest(&t);
    tb_finish(&t, "zeros-after-end", zeros, sizeof zeros);

    tb_begin(&t, ARCHIVE_FORMAT_TAR_PAX_RESTRICTED);
    {
        static const char *texts[] = {
            "not json",
            "{\"type\":\"pcapferry-manifest\",\"type\":\"x\"}",
            "{\"type\":\"pcapferry-manifest\",\"version\":1,\"files\":[]}",
        };
        tb_file(&t, "a.pcap", small, slen);
        tb_manifest_text(&t, texts[0], strlen(texts[0]), true, PF_SIG_BYTES);
        tb_finish(&t, "manifest-not-json", NULL, 0);
        tb_begin(&t, ARCHIVE_FORMAT_TAR_PAX_RESTRICTED);
        tb_manifest_text(&t, texts[1], strlen(texts[1]), true, PF_SIG_BYTES);
        tb_finish(&t, "manifest-duplicate-key", NULL, 0);
        tb_begin(&t, ARCHIVE_FORMAT_TAR_PAX_RESTRICTED);
        tb_manifest_text(&t, texts[2], strlen(texts[2]), true, PF_SIG_BYTES);
        tb_finish(&t, "manifest-fields-missing", NULL, 0);
    }

    /* A sparse entry (pax GNU.sparse records). */
    tb_begin(&t, ARCHIVE_FORMAT_TAR_PAX_INTERCHANGE);
    {
        uint8_t piece[4096];
        memset(piece, 'S', sizeof piece);
        struct archive_entry *ent = tb_entry("sparse.pcap", AE_IFREG, 16384);
        archive_entry_sparse_add_entry(ent, 0, 4096);
        archive_entry_sparse_add_entry(ent, 8192, 4096);
        tb_header(&t, ent);
        tb_data(&t, piece, sizeof piece);
        tb_data(&t, piece, sizeof piece);
        tb_manifest(&t);
    }
    tb_finish(&t, "sparse", NULL, 0);

    /* A capture that ends early: the tar stops mid-entry. */
    tb_begin(&t, ARCHIVE_FORMAT_TAR_PAX_RESTRICTED);
    tb_file(&t, "a.pcap", small, slen);
    tb_manifest(&t);
    tb_close(&t);
    t.len = 512 + 512 / 2; /* first header and half its data block */
    tb_finish(&t, "truncated-entry", NULL, 0);

    /* The provenance copy's name, taken by a capture. */
    tb_begin(&t, ARCHIVE_FORMAT_TAR_PAX_RESTRICTED);
    {
        char pname[PF_NAME_MAX + 64];
        snprintf(pname, sizeof pname, "%s-%010llu.manifest.json", FZ_SENSOR_NAME,
                 (unsigned long long)FZ_ARCHIVE_SEQ);
        tb_file(&t, pname, small, slen);
        tb_manifest(&t);
    }
    tb_finish(&t, "provenance-name", NULL, 0);
}

/* ---- real bundles from pf_bundle_create ---- */

static void create_bundle(const char *label, const char *const *paths, size_t n, uint32_t chunk,
                          uint64_t seq)
{
    pf_create_input in[8];
    pf_create_result res;
    pf_err e;
    char odir[PATH_MAX];
    memset(in, 0, sizeof in);
    for (size_t i = 0; i < n; i++)
        in[i].path = paths[i];
    snprintf(odir, sizeof odir, "%s/create-%s", scratch, label);
    pf_create_opts o = {.sensor = fz.sensor,
                        .central = &fz.central->pub,
                        .outdir = odir,
                        .seq = seq,
                        .level = 3,
                        .chunk_size = chunk,
                        .created_ns = 1700000000000000000LL + (int64_t)seq};
    pf_err_clear(&e);
    fz_rng_reset(100 + seq);
    if (pf_bundle_create(&o, in, n, &res, &e) != 0)
        fz_die(label, e.msg);

    char name[PATH_MAX];
    snprintf(name, sizeof name, "create-%s.pcapferry", label);
    put_file("fuzz_bundle", name, res.path, SIZE_MAX);
    /* Whole bundles for the header harness, whose trailer check then
     * passes, and the bare header. */
    snprintf(name, sizeof name, "bundle-%s", label);
    put_file("fuzz_header", name, res.path, SIZE_MAX);
    pf_header h;
    if (pf_bundle_read_header(res.path, &h, NULL, &e) != 0)
        fz_die(res.path, e.msg);
    snprintf(name, sizeof name, "header-%s", label);
    put("fuzz_header", name, h.raw, h.raw_len);

    /* The manifest text, as signed. */
    pf_extracted x;
    char xdir[PATH_MAX];
    snprintf(xdir, sizeof xdir, "%s/open-%s", scratch, label);
    if (pf_bundle_open(res.path, fz.central, fz.keyring, xdir, &x, &e) != 0)
        fz_die(res.path, e.msg);
    snprintf(name, sizeof name, "manifest-%s.json", label);
    put("fuzz_manifest", name, x.manifest_raw, x.manifest_len);
    pf_extracted_clear(&x);
}

static void manifest_seeds(void)
{
    /* Hand-made variations the sensor never writes but the parser reads. */
    static const char *const texts[] = {
        "{\"type\":\"pcapferry-manifest\",\"version\":1,\"sensor\":\"s1\","
        "\"sensor_key_id\":\"00112233445566778899aabbccddeeff\","
        "\"recipient_key_id\":\"00112233445566778899aabbccddeeff\",\"seq\":3,\"prev_seq\":2,"
        "\"prev_hash\":\"0000000000000000000000000000000000000000000000000000000000000001\","
        "\"header_blake2b_256\":"
        "\"ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff\","
        "\"created_ns\":1,\"capture\":{\"source\":\"live\",\"interface\":\"eth0\"},"
        "\"files\":[{\"name\":\"x.pcap\",\"size\":0,\"blake2b_256\":"
        "\"0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8\","
        "\"format\":\"unknown\",\"byte_order\":\"little\",\"version\":null,"
        "\"ts_resolution\":\"us\",\"link_type\":null,\"link_type_name\":\"\",\"snaplen\":null,"
        "\"packets\":0,\"truncated_packets\":0,\"first_ts_ns\":null,\"last_ts_ns\":null,"
        "\"min_ts_ns\":null,\"max_ts_ns\":null,\"read_status\":\"unreadable\","
        "\"read_error\":\"unknown file format\",\"capture_stats\":{\"dropped\":5}}]}",
        "{\"type\":\"pcapferry-manifest\",\"version\":1,\"sensor\":\"s\","
        "\"sensor_key_id\":\"00112233445566778899aabbccddeeff\","
        "\"recipient_key_id\":\"00112233445566778899aabbccddeeff\",\"seq\":1,\"prev_seq\":0,"
        "\"prev_hash\":null,\"header_blake2b_256\":"
        "\"ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff\","
        "\"created_ns\":9223372036854775807,\"capture\":null,\"files\":[{\"name\":\"d.pcap\","
        "\"size\":9223372036854775807,\"blake2b_256\":"
        "\"0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8\","
        "\"format\":\"pcapng\",\"byte_order\":\"big\",\"version\":\"1.0\","
        "\"ts_resolution\":\"per-interface\",\"link_type\":-1,\"link_type_name\":\"x\","
        "\"snaplen\":-1,\"packets\":1,\"truncated_packets\":1,\"first_ts_ns\":-1,"
        "\"last_ts_ns\":-9223372036854775808,\"min_ts_ns\":0,\"max_ts_ns\":1,"
        "\"read_status\":\"damaged\",\"read_error\":null}]}",
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        char name[64];
        snprintf(name, sizeof name, "hand-%zu.json", i);
        put("fuzz_manifest", name, texts[i], strlen(texts[i]));
    }
}

static void key_seeds(void)
{
    static const char *const names[] = {FZ_SENSOR_NAME ".key", FZ_SENSOR_NAME ".pub",
                                        FZ_CENTRAL_NAME ".key", FZ_CENTRAL_NAME ".pub"};
    for (size_t i = 0; i < 4; i++) {
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", fz.keys, names[i]);
        put_file("fuzz_keyfile", names[i], path, SIZE_MAX);
    }
}

static void receipt_seeds(void)
{
    char rdir[PATH_MAX], name[256], path[PATH_MAX];
    uint8_t h1[PF_HASH_BYTES], h2[PF_HASH_BYTES];
    pf_err e;
    pf_err_clear(&e);
    memset(h1, 0x11, sizeof h1);
    memset(h2, 0x22, sizeof h2);
    snprintf(rdir, sizeof rdir, "%s/receipts", scratch);
    for (int i = 0; i < 3; i++) {
        pf_receipt *r = pf_receipt_new(FZ_SENSOR_NAME);
        if (r == NULL)
            fz_die("receipt", "out of memory");
        if (i >= 1 && (pf_receipt_add(r, 1, h1, h2, PF_RCPT_COMMITTED, NULL, &e) != 0 ||
                       pf_receipt_add(r, 2, h2, h1, PF_RCPT_COMMITTED, NULL, &e) != 0))
            fz_die("receipt", e.msg);
        if (i == 2 && pf_receipt_add(r, 3, h1, NULL, PF_RCPT_REJECTED,
                                     "manifest signature is invalid", &e) != 0)
            fz_die("receipt", e.msg);
        fz_rng_reset(200 + (uint64_t)i);
        if (pf_receipt_write(r, fz.central, rdir, name, sizeof name, &e) != 0)
            fz_die("receipt", e.msg);
        snprintf(path, sizeof path, "%s/%s", rdir, name);
        char seed[64];
        snprintf(seed, sizeof seed, "receipt-%d.receipt", i);
        put_file("fuzz_receipt", seed, path, SIZE_MAX);
        pf_receipt_free(r);
    }
}

static void recover_seeds(const char *const *pcaps, size_t n)
{
    static const uint8_t nano_hdr[] = "\x4d\x3c\xb2\xa1\x02\x00\x04\x00"
                                      "\x00\x00\x00\x00\x00\x00\x00\x00"
                                      "\x00\x00\x04\x00\x01\x00\x00\x00";
    for (size_t i = 0; i < n; i++) {
        size_t len = 0;
        uint8_t *buf = slurp(pcaps[i], &len);
        char name[64];
        size_t keep = len < 8192 ? len : 8192;
        snprintf(name, sizeof name, "pcap-%zu.pcap", i);
        put("fuzz_pcap_recover", name, buf, keep);
        /* Cut inside the second record's header and inside its data. */
        if (len >= 24 + 16) {
            uint32_t caplen0;
            memcpy(&caplen0, buf + 24 + 8, 4);
            size_t r1 = 24 + 16 + (size_t)caplen0;
            if (r1 + 8 <= keep) {
                snprintf(name, sizeof name, "pcap-%zu-cut-header.pcap", i);
                put("fuzz_pcap_recover", name, buf, r1 + 8);
            }
            if (r1 + 16 + 5 <= keep) {
                snprintf(name, sizeof name, "pcap-%zu-cut-data.pcap", i);
                put("fuzz_pcap_recover", name, buf, r1 + 16 + 5);
            }
        }
        pf_free_file(buf, false);
    }
    put("fuzz_pcap_recover", "header-only.pcap", nano_hdr, sizeof nano_hdr - 1);
    put("fuzz_pcap_recover", "short.pcap", nano_hdr, 10);
}

static void config_seeds(void)
{
    static const char sensor_conf[] = "# sensor.conf\n"
                                      "interface = eth0\n"
                                      "snaplen = 262144\n"
                                      "rotate-size = 64\n"
                                      "rotate-seconds = 300\n"
                                      "key = /etc/pcapferry/sensor1.key\n"
                                      "to = /etc/pcapferry/central.pub\n"
                                      "filter = \" not port 22 \"\n"
                                      "dont-save = tcp port 443\n"
                                      "\n"
                                      "   when-full = drop-oldest   \n";
    static const char import_conf[] = "keyring = /var/lib/pcapferry/keyring\r\n"
                                      "ingest=/data/ingest\r\n"
                                      "quarantine = \"\"\r\n"
                                      "rescan = 30\n"
                                      "refuse = me\n"
                                      "no equals sign here\n";
    put("fuzz_config", "sensor.conf", sensor_conf, sizeof sensor_conf - 1);
    put("fuzz_config", "import.conf", import_conf, sizeof import_conf - 1);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: seedgen OUTDIR PCAP...\n");
        return 2;
    }
    outdir = argv[1];
    const char *const *pcaps = (const char *const *)argv + 2;
    size_t npcaps = (size_t)argc - 2;
    fz_init();
    snprintf(scratch, sizeof scratch, "%s/seedgen", fz.dir);
    if (mkdir(outdir, 0755) != 0 && errno != EEXIST)
        fz_die(outdir, strerror(errno));
    if (mkdir(scratch, 0700) != 0)
        fz_die(scratch, strerror(errno));

    create_bundle("one", pcaps, 1, 4096, 1);
    create_bundle("all", pcaps, npcaps > 8 ? 8 : npcaps, 0, 2);
    if (npcaps > 1)
        create_bundle("second", pcaps + 1, 1, 65536, 3);
    archive_seeds(pcaps[0], pcaps[npcaps > 1 ? 1 : 0]);
    manifest_seeds();
    key_seeds();
    receipt_seeds();
    recover_seeds(pcaps, npcaps);
    config_seeds();
    printf("seedgen: %u seed files in %s\n", nwritten, outdir);
    return 0;
}
