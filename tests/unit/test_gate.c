/* The Arkime gate reads the file, not the sensor's word (issue 12 item 6,
 * issue 13 items 3, 4, 5, 7).
 *
 * Every bundle here is validly sealed and signed by the trusted test sensor
 * through the library's own sealer, and its signed manifest lies: it says
 * each capture is a complete classic Ethernet pcap without truncated
 * packets. The first file of each bundle is one that stops Arkime's capture
 * (or one it reads only in part), the second an honest capture. The import
 * must hold the first with a reason naming what Arkime would do, and still
 * deliver the second; a cut-off capture is delivered trimmed and a
 * multi-interface pcapng split, each with the original held beside them.
 * A control bundle whose first file is good delivers both, so each hold is
 * the gate's doing. Last, a state database as 0.1.0 wrote it gets the new
 * columns on open. */

#include "fixture.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <sqlite3.h>
#include <time.h>

#include "import/importer.h"

#define CREATED_NS 1700000000000000000LL

/* ---------------------------------------------------------------- bytes */

typedef struct bytes {
    uint8_t *p;
    size_t n, cap;
    bool big;
} bytes;

static void b_put(bytes *b, const void *data, size_t len)
{
    if (b->n + len > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + len)
            cap *= 2;
        uint8_t *g = realloc(b->p, cap);
        if (g == NULL)
            exit(2);
        b->p = g;
        b->cap = cap;
    }
    if (len > 0)
        memcpy(b->p + b->n, data, len);
    b->n += len;
}

static void b_u32(bytes *b, uint32_t v)
{
    uint8_t x[4];
    for (int i = 0; i < 4; i++)
        x[b->big ? 3 - i : i] = (uint8_t)(v >> (8 * i));
    b_put(b, x, 4);
}

static void b_u16(bytes *b, uint16_t v)
{
    uint8_t x[2] = {(uint8_t)(b->big ? v >> 8 : v), (uint8_t)(b->big ? v : v >> 8)};
    b_put(b, x, 2);
}

static void b_free(bytes *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

/* A classic pcap file header with the raw fields given. */
static void pcap_hdr(bytes *b, bool big, bool ns, uint16_t vmaj, uint16_t vmin, uint32_t snaplen,
                     uint32_t link_raw)
{
    b->big = big;
    b_u32(b, ns ? 0xa1b23c4d : 0xa1b2c3d4);
    b_u16(b, vmaj);
    b_u16(b, vmin);
    b_u32(b, 0);
    b_u32(b, 0);
    b_u32(b, snaplen);
    b_u32(b, link_raw);
}

/* One record; data is caplen bytes of an Ethernet/IPv4 look-alike. */
static void pcap_rec(bytes *b, uint32_t i, uint32_t caplen, uint32_t len)
{
    b_u32(b, 1700000000 + i);
    b_u32(b, i * 1000);
    b_u32(b, caplen);
    b_u32(b, len);
    for (uint32_t k = 0; k < caplen; k++) {
        uint8_t v = k == 12 ? 0x08 : (uint8_t)(i * 31 + k);
        b_put(b, &v, 1);
    }
}

static void good_pcap(bytes *b, uint32_t link_raw, unsigned n)
{
    pcap_hdr(b, false, false, 2, 4, 262144, link_raw);
    for (unsigned i = 0; i < n; i++)
        pcap_rec(b, i, 60 + i, 60 + i);
}

/* pcapng, little-endian: SHB, IDBs, EPBs. */
static void ng_block(bytes *b, uint32_t type, const bytes *body)
{
    uint32_t len = (uint32_t)(12 + ((body->n + 3) & ~(size_t)3));
    static const uint8_t pad[4] = {0};
    b_u32(b, type);
    b_u32(b, len);
    b_put(b, body->p, body->n);
    b_put(b, pad, (4 - body->n % 4) % 4);
    b_u32(b, len);
}

static void ng_shb(bytes *b)
{
    bytes body = {0};
    b_u32(&body, 0x1a2b3c4d);
    b_u16(&body, 1);
    b_u16(&body, 0);
    b_u32(&body, 0xffffffff);
    b_u32(&body, 0xffffffff);
    ng_block(b, 0x0a0d0d0a, &body);
    b_free(&body);
}

static void ng_idb(bytes *b, uint16_t link, uint32_t snaplen)
{
    bytes body = {0};
    b_u16(&body, link);
    b_u16(&body, 0);
    b_u32(&body, snaplen);
    ng_block(b, 1, &body);
    b_free(&body);
}

static void ng_epb(bytes *b, uint32_t iface, uint32_t i, uint32_t caplen, uint32_t len)
{
    bytes body = {0};
    uint64_t ts = (uint64_t)(1700000000 + i) * 1000000u;
    b_u32(&body, iface);
    b_u32(&body, (uint32_t)(ts >> 32));
    b_u32(&body, (uint32_t)ts);
    b_u32(&body, caplen);
    b_u32(&body, len);
    for (uint32_t k = 0; k < caplen; k++) {
        uint8_t v = (uint8_t)(k + i);
        b_put(&body, &v, 1);
    }
    ng_block(b, 6, &body);
    b_free(&body);
}

/* -------------------------------------------------------------- bundles */

typedef struct bld {
    const fixture *fx;
    char path[PATH_MAX];
    int fd;
    pf_sealer *sealer;
    struct archive *a;
    pf_manifest *m;
} bld;

static void die(const char *what, const char *why)
{
    fprintf(stderr, "builder: %s: %s\n", what, why != NULL ? why : "(no reason)");
    exit(2);
}

static la_ssize_t write_cb(struct archive *a, void *ctx, const void *buf, size_t len)
{
    bld *b = ctx;
    pf_err e;
    pf_err_clear(&e);
    if (pf_sealer_write(b->sealer, buf, len, &e) != 0) {
        archive_set_error(a, EIO, "%s", e.msg);
        return -1;
    }
    return (la_ssize_t)len;
}

static void bld_begin(bld *b, const fixture *fx, const char *dir, uint64_t seq)
{
    pf_seal_params p;
    pf_err e;
    memset(b, 0, sizeof *b);
    memset(&p, 0, sizeof p);
    pf_err_clear(&e);
    b->fx = fx;
    snprintf(b->path, sizeof b->path, "%s/sensor1-%010llu.pcapferry", dir, (unsigned long long)seq);
    p.seq = seq;
    p.created_ns = CREATED_NS;
    p.level = 1;
    p.plain_len_max = 64u * 1024 * 1024;
    b->fd = open(b->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (b->fd < 0)
        die(b->path, strerror(errno));
    b->sealer = pf_sealer_new(fx->sensor, &fx->central->pub, &p, b->fd, b->path, &e);
    if (b->sealer == NULL)
        die(b->path, e.msg);
    b->m = pf_manifest_new(pf_sealer_header(b->sealer));
    b->a = archive_write_new();
    if (b->m == NULL || b->a == NULL)
        die(b->path, "out of memory");
    if (archive_write_set_format(b->a, ARCHIVE_FORMAT_TAR_PAX_RESTRICTED) != ARCHIVE_OK ||
        archive_write_set_bytes_per_block(b->a, 0) != ARCHIVE_OK ||
        archive_write_open(b->a, b, NULL, write_cb, NULL) != ARCHIVE_OK)
        die(b->path, archive_error_string(b->a));
}

static void bld_put(bld *b, const char *name, const void *data, size_t len)
{
    struct archive_entry *ent = archive_entry_new();
    archive_entry_set_pathname(ent, name);
    archive_entry_set_filetype(ent, AE_IFREG);
    archive_entry_set_perm(ent, 0644);
    archive_entry_set_mtime(ent, (time_t)(CREATED_NS / 1000000000), 0);
    archive_entry_set_size(ent, (la_int64_t)len);
    if (archive_write_header(b->a, ent) != ARCHIVE_OK)
        die(name, archive_error_string(b->a));
    archive_entry_free(ent);
    if (len > 0 && archive_write_data(b->a, data, len) != (la_ssize_t)len)
        die(name, archive_error_string(b->a));
}

/* The file, and the manifest's lie about it: a complete classic Ethernet
 * pcap, three packets, none truncated. Only size and hash are true (the
 * extraction checks those). */
static void bld_file(bld *b, const char *name, const bytes *data)
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
    info.packets = 3;
    info.read_status = PF_READ_COMPLETE;
    info.size = data->n;
    crypto_generichash(info.blake2b, sizeof info.blake2b, data->p, data->n, NULL, 0);
    bld_put(b, name, data->p, data->n);
    if (pf_manifest_add(b->m, name, &info, NULL, &e) != 0)
        die(name, e.msg);
}

static void bld_finish(bld *b)
{
    uint8_t sig[PF_SIG_BYTES], hash[PF_HASH_BYTES];
    char *text = NULL;
    size_t len = 0;
    pf_err e;
    pf_err_clear(&e);
    if (pf_manifest_encode(b->m, &text, &len, &e) != 0)
        die("manifest", e.msg);
    pf_sign_ctx(sig, PF_SIGCTX_MANIFEST, (const uint8_t *)text, len, b->fx->sensor->sign_sk);
    bld_put(b, PF_MANIFEST_NAME, text, len);
    bld_put(b, PF_MANIFEST_SIG_NAME, sig, PF_SIG_BYTES);
    free(text);
    if (archive_write_close(b->a) != ARCHIVE_OK)
        die("archive close", archive_error_string(b->a));
    archive_write_free(b->a);
    if (pf_sealer_finish(b->sealer, hash, NULL, &e) != 0)
        die(b->path, e.msg);
    if (close(b->fd) != 0)
        die(b->path, strerror(errno));
    pf_sealer_free(b->sealer);
    pf_manifest_free(b->m);
}

/* ---------------------------------------------------------------- cases */

enum want { W_HOLD, W_DELIVER, W_TRIM, W_SPLIT, W_CONVERT, W_CONVERT_CUT };

typedef struct gcase {
    const char *tag;
    void (*make)(bytes *b);
    enum want want;
    const char *needle; /* in the held reason (or the evidence note) */
} gcase;

static void mk_control(bytes *b)
{
    good_pcap(b, 1, 3);
}
static void mk_bad_magic(bytes *b)
{
    b_put(b, "this is not a capture file at all, only text\n", 45);
}
static void mk_empty_file(bytes *b)
{
    (void)b;
}
static void mk_version(bytes *b)
{
    pcap_hdr(b, false, false, 1, 4, 65535, 1);
    pcap_rec(b, 0, 60, 60);
}
static void mk_link_147(bytes *b)
{
    good_pcap(b, 147, 3);
}
static void mk_link_fcs(bytes *b) /* issue 13.4: libpcap reads it as Ethernet */
{
    good_pcap(b, 0x24000001, 3);
}
static void mk_link_14(bytes *b) /* issue 13.5 */
{
    good_pcap(b, 14, 3);
}
static void mk_caplen_gt_len(bytes *b) /* issue 13.3: "caplen: 64 pktlen: 57" */
{
    pcap_hdr(b, false, false, 2, 4, 262144, 1);
    pcap_rec(b, 0, 60, 60);
    pcap_rec(b, 1, 64, 57);
    pcap_rec(b, 2, 60, 60);
}
static void mk_truncated(bytes *b)
{
    pcap_hdr(b, true, true, 2, 4, 68, 1); /* big-endian, ns: walked the same */
    pcap_rec(b, 0, 68, 74);
    pcap_rec(b, 1, 60, 60);
}
static void mk_over_snaplen(bytes *b)
{
    pcap_hdr(b, false, false, 2, 4, 64, 1);
    pcap_rec(b, 0, 60, 60);
    pcap_rec(b, 1, 100, 100);
}
static void mk_cut_record(bytes *b)
{
    good_pcap(b, 1, 4);
    b->n -= 20; /* the fourth record's data is cut short */
}
static void mk_cut_header(bytes *b)
{
    good_pcap(b, 1, 3);
    uint8_t stray[7] = {1, 2, 3, 4, 5, 6, 7};
    b_put(b, stray, sizeof stray);
}
static void mk_only_cut(bytes *b)
{
    pcap_hdr(b, false, false, 2, 4, 262144, 1);
    uint8_t stray[10] = {0};
    b_put(b, stray, sizeof stray);
}
static void mk_ng_one(bytes *b)
{
    ng_shb(b);
    ng_idb(b, 1, 0);
    for (uint32_t i = 0; i < 3; i++)
        ng_epb(b, 0, i, 60, 60);
}
static void mk_ng_cut(bytes *b) /* one interface, the last block cut off */
{
    mk_ng_one(b);
    b->n -= 10;
}
static void mk_ng_secrets(bytes *b) /* TLS keys in a decryption secrets block */
{
    bytes body = {0};
    ng_shb(b);
    ng_idb(b, 1, 0);
    b_u32(&body, 0x544c534b); /* TLSKeyLog */
    b_u32(&body, 8);
    b_put(&body, "CLIENT_R", 8);
    ng_block(b, 10, &body);
    b_free(&body);
    ng_epb(b, 0, 0, 60, 60);
    ng_epb(b, 0, 1, 60, 60);
}
static void mk_ng_multi(bytes *b) /* issue 13.7: Ethernet, IPoIB (not read), SLL */
{
    ng_shb(b);
    ng_idb(b, 1, 0);
    ng_idb(b, 242, 0);
    ng_idb(b, 113, 65535);
    for (uint32_t i = 0; i < 9; i++)
        ng_epb(b, i % 3, i, 60, 60);
}
static void mk_ng_caplen_gt_len(bytes *b)
{
    ng_shb(b);
    ng_idb(b, 1, 0);
    ng_epb(b, 0, 0, 64, 57);
}
static void mk_ng_link_14(bytes *b)
{
    ng_shb(b);
    ng_idb(b, 14, 0);
    ng_epb(b, 0, 0, 60, 60);
}

static const gcase cases[] = {
    {"control", mk_control, W_DELIVER, NULL},
    {"bad-magic", mk_bad_magic, W_HOLD, "bad magic"},
    {"zero-bytes", mk_empty_file, W_HOLD, "shorter than a pcap file header"},
    {"version-1.4", mk_version, W_HOLD, "version 1.4"},
    {"link-147", mk_link_147, W_HOLD, "Unsupported pcap link type 147"},
    {"link-fcs-bits", mk_link_fcs, W_HOLD, "Unsupported pcap link type 603979777"},
    {"link-14", mk_link_14, W_HOLD, "Unsupported pcap link type 14"},
    {"caplen-gt-len", mk_caplen_gt_len, W_HOLD, "caplen 64 > len 57"},
    {"truncated", mk_truncated, W_HOLD, "readTruncatedPackets=true"},
    {"caplen-gt-snaplen", mk_over_snaplen, W_HOLD, "caplen 100 > the file's snaplen 64"},
    {"only-a-cut-record", mk_only_cut, W_HOLD, "no complete record"},
    {"cut-record", mk_cut_record, W_TRIM, "last record cut off: record 4"},
    {"cut-header", mk_cut_header, W_TRIM, "7 byte(s) of a record header"},
    {"pcapng-one", mk_ng_one, W_CONVERT, NULL},
    {"pcapng-cut", mk_ng_cut, W_CONVERT_CUT, "last block cut off"},
    {"pcapng-secrets", mk_ng_secrets, W_CONVERT_CUT, "1 decryption secrets block(s)"},
    {"pcapng-multi", mk_ng_multi, W_SPLIT, "interface 1: link type 242 (3 packets)"},
    {"pcapng-caplen-gt-len", mk_ng_caplen_gt_len, W_HOLD, "caplen 64 > len 57"},
    {"pcapng-link-14", mk_ng_link_14, W_HOLD, "link type 14"},
};
#define NCASES (sizeof cases / sizeof cases[0])

/* --------------------------------------------------------------- checks */

typedef struct row {
    char state[16], final[256], reason[1024], evidence[PATH_MAX];
    long long packets, trim_bytes, trim_packets, iface;
    bool iface_null;
} row;

typedef struct rows {
    row v[16];
    int n;
} rows;

static void db_rows(const char *state_dir, uint64_t seq, int file, rows *out)
{
    char path[PATH_MAX];
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    memset(out, 0, sizeof *out);
    snprintf(path, sizeof path, "%s/pcapferry.db", state_dir);
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db,
                           "SELECT d.state, d.final, IFNULL(d.reason, ''), IFNULL(d.evidence, ''),"
                           " IFNULL(d.packets, -1), d.trim_bytes, d.trim_packets, d.interface "
                           "FROM deliveries d WHERE d.seq = ? AND d.name = ? ORDER BY d.n",
                           -1, &st, NULL) != SQLITE_OK)
        die(path, sqlite3_errmsg(db));
    sqlite3_bind_int64(st, 1, (sqlite3_int64)seq);
    sqlite3_bind_text(st, 2, file == 0 ? "first.pcap" : "second.pcap", -1, SQLITE_STATIC);
    while (sqlite3_step(st) == SQLITE_ROW && out->n < 16) {
        row *r = &out->v[out->n++];
        snprintf(r->state, sizeof r->state, "%s", (const char *)sqlite3_column_text(st, 0));
        snprintf(r->final, sizeof r->final, "%s", (const char *)sqlite3_column_text(st, 1));
        snprintf(r->reason, sizeof r->reason, "%s", (const char *)sqlite3_column_text(st, 2));
        snprintf(r->evidence, sizeof r->evidence, "%s", (const char *)sqlite3_column_text(st, 3));
        r->packets = sqlite3_column_int64(st, 4);
        r->trim_bytes = sqlite3_column_int64(st, 5);
        r->trim_packets = sqlite3_column_int64(st, 6);
        r->iface_null = sqlite3_column_type(st, 7) == SQLITE_NULL;
        r->iface = sqlite3_column_int64(st, 7);
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static bool file_is(const char *path, const uint8_t *data, size_t len)
{
    size_t got = 0;
    struct stat st;
    if (stat(path, &st) != 0 || (size_t)st.st_size != len)
        return false;
    uint8_t *buf = fx_slurp(path, &got);
    bool same = got == len && (len == 0 || memcmp(buf, data, len) == 0);
    pf_free_file(buf, false);
    return same;
}

/* What is delivered must read whole: a classic pcap every record of which
 * passes (checked here by walking it record by record by hand). */
static bool classic_ok(const char *path, long long want_packets)
{
    size_t len = 0;
    uint8_t *p = fx_slurp(path, &len);
    bool ok = len >= 24;
    long long n = 0;
    if (ok) {
        uint32_t magic =
            (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
        ok = magic == 0xa1b2c3d4 || magic == 0xa1b23c4d; /* written little-endian */
        uint32_t snap, link;
        memcpy(&snap, p + 16, 4);
        memcpy(&link, p + 20, 4);
        ok = ok && (link == 1 || link == 113 || link == 12 || link == 101);
        for (size_t off = 24; ok && off < len; n++) {
            uint32_t cap, wire;
            if (off + 16 > len) {
                ok = false;
                break;
            }
            memcpy(&cap, p + off + 8, 4);
            memcpy(&wire, p + off + 12, 4);
            ok = cap == wire && cap <= snap && off + 16 + cap <= len;
            off += 16 + (size_t)cap;
        }
    }
    pf_free_file(p, false);
    return ok && n == want_packets;
}

static int run_import(const fixture *fx, const char *src, const char *state, const char *ingest,
                      bool read_truncated, pf_import_counts *c)
{
    pf_err e;
    pf_err_clear(&e);
    memset(c, 0, sizeof *c);
    pf_import_opts o = {.central = fx->central,
                        .keyring = fx->keyring,
                        .state_dir = state,
                        .ingest_dir = ingest,
                        .read_truncated = read_truncated,
                        .settle_ms = 0};
    pf_importer *imp = pf_importer_open(&o, &e);
    if (imp == NULL) {
        fprintf(stderr, "import open: %s\n", e.msg);
        return -1;
    }
    char *srcs[1] = {(char *)src};
    int rc = pf_importer_run(imp, srcs, 1, c, &e);
    if (rc != 0)
        fprintf(stderr, "import run: %s\n", e.msg);
    pf_importer_close(imp);
    return rc;
}

static void case_lying_manifests(const fixture *fx)
{
    char src[PATH_MAX], state[PATH_MAX], ingest[PATH_MAX], p[PATH_MAX];
    bytes data[NCASES], good = {0};
    pf_import_counts c;
    fx_path(src, fx, "src");
    fx_path(state, fx, "state");
    fx_path(ingest, fx, "ingest");
    mkdir(src, 0755);
    mkdir(ingest, 0755);
    good_pcap(&good, 1, 5);
    for (size_t i = 0; i < NCASES; i++) {
        bld b;
        memset(&data[i], 0, sizeof data[i]);
        cases[i].make(&data[i]);
        bld_begin(&b, fx, src, i + 1);
        bld_file(&b, "first.pcap", &data[i]);
        bld_file(&b, "second.pcap", &good);
        bld_finish(&b);
    }
    CHECK(run_import(fx, src, state, ingest, false, &c) == 0);
    CHECK_MSG(c.imported == NCASES, "imported %zu of %zu", c.imported, NCASES);
    CHECK(c.rejected == 0);

    for (size_t i = 0; i < NCASES; i++) {
        const gcase *k = &cases[i];
        rows first, second;
        db_rows(state, i + 1, 0, &first);
        db_rows(state, i + 1, 1, &second);
        /* the honest file after it is delivered whatever the first was */
        CHECK_MSG(second.n == 1 && strcmp(second.v[0].state, "delivered") == 0,
                  "%s: second file not delivered", k->tag);
        if (second.n == 1) {
            snprintf(p, sizeof p, "%s/sensor1/%s", ingest, second.v[0].final);
            CHECK_MSG(file_is(p, good.p, good.n), "%s: second file not delivered as it is", k->tag);
        }
        switch (k->want) {
        case W_HOLD: {
            CHECK_MSG(first.n == 1 && strcmp(first.v[0].state, "held") == 0, "%s: not held",
                      k->tag);
            CHECK_MSG(strstr(first.v[0].reason, k->needle) != NULL,
                      "%s: reason \"%s\" lacks \"%s\"", k->tag, first.v[0].reason, k->needle);
            snprintf(p, sizeof p, "%s/quarantine/held/sensor1/sensor1-%010zu-1-first.pcap", state,
                     i + 1);
            CHECK_MSG(file_is(p, data[i].p, data[i].n), "%s: held file is not the original",
                      k->tag);
            char rp[PATH_MAX + 8];
            snprintf(rp, sizeof rp, "%s.reason", p);
            size_t rl = 0;
            uint8_t *rt = fx_slurp(rp, &rl);
            CHECK_MSG(rl > 0 && memmem(rt, rl, k->needle, strlen(k->needle)) != NULL,
                      "%s: .reason file lacks \"%s\"", k->tag, k->needle);
            pf_free_file(rt, false);
            snprintf(p, sizeof p, "%s/sensor1/%s", ingest, first.v[0].final);
            CHECK_MSG(access(p, F_OK) != 0, "%s: held file reached the ingest directory", k->tag);
            break;
        }
        case W_DELIVER:
            CHECK_MSG(first.n == 1 && strcmp(first.v[0].state, "delivered") == 0 &&
                          first.v[0].packets == 3 && first.v[0].evidence[0] == '\0',
                      "%s: not delivered as it is", k->tag);
            snprintf(p, sizeof p, "%s/sensor1/%s", ingest, first.v[0].final);
            CHECK_MSG(file_is(p, data[i].p, data[i].n), "%s: delivered file differs", k->tag);
            break;
        case W_TRIM: {
            CHECK_MSG(first.n == 1 && strcmp(first.v[0].state, "delivered") == 0,
                      "%s: not "
                      "delivered",
                      k->tag);
            const row *r = &first.v[0];
            CHECK_MSG(strstr(r->reason, k->needle) != NULL, "%s: reason \"%s\" lacks \"%s\"",
                      k->tag, r->reason, k->needle);
            snprintf(p, sizeof p, "%s/sensor1/%s", ingest, r->final);
            CHECK_MSG(classic_ok(p, r->packets) && r->packets == 3,
                      "%s: trimmed file not whole (%lld packets)", k->tag, r->packets);
            CHECK_MSG(r->trim_bytes > 0 && (size_t)r->trim_bytes < data[i].n, "%s: trim_bytes %lld",
                      k->tag, r->trim_bytes);
            CHECK_MSG(r->trim_packets == (strstr(k->tag, "header") != NULL ? 0 : 1),
                      "%s: trim_packets %lld", k->tag, r->trim_packets);
            size_t dl = 0;
            uint8_t *d = fx_slurp(p, &dl);
            CHECK_MSG(dl + (size_t)r->trim_bytes == data[i].n && memcmp(d, data[i].p, dl) == 0,
                      "%s: trimmed file is not the original's prefix", k->tag);
            pf_free_file(d, false);
            CHECK_MSG(file_is(r->evidence, data[i].p, data[i].n),
                      "%s: original not held as evidence (%s)", k->tag, r->evidence);
            break;
        }
        case W_CONVERT:
            CHECK_MSG(first.n == 1 && strcmp(first.v[0].state, "delivered") == 0 &&
                          first.v[0].iface_null && first.v[0].evidence[0] == '\0',
                      "%s: not converted plainly", k->tag);
            snprintf(p, sizeof p, "%s/sensor1/%s", ingest, first.v[0].final);
            CHECK_MSG(classic_ok(p, 3), "%s: converted file is not a whole classic pcap", k->tag);
            break;
        case W_CONVERT_CUT: {
            const row *r = &first.v[0];
            CHECK_MSG(first.n == 1 && strcmp(r->state, "delivered") == 0 && r->iface_null &&
                          strstr(r->final, "-if") == NULL,
                      "%s: not converted under its plain name", k->tag);
            CHECK_MSG(strstr(r->reason, k->needle) != NULL, "%s: note \"%s\" lacks \"%s\"", k->tag,
                      r->reason, k->needle);
            bool cut = strstr(k->needle, "cut") != NULL;
            CHECK_MSG(cut ? r->trim_bytes > 0 && r->trim_packets == 1 : r->trim_bytes == 0,
                      "%s: trim %lld recorded", k->tag, r->trim_bytes);
            snprintf(p, sizeof p, "%s/sensor1/%s", ingest, r->final);
            CHECK_MSG(classic_ok(p, 2) && r->packets == 2, "%s: want the 2 whole packets", k->tag);
            CHECK_MSG(file_is(r->evidence, data[i].p, data[i].n),
                      "%s: original not held as evidence", k->tag);
            break;
        }
        case W_SPLIT: {
            /* Ethernet and SLL delivered, IPoIB not: named in the note */
            CHECK_MSG(first.n == 2, "%s: %d rows, want 2", k->tag, first.n);
            long long total = 0;
            for (int j = 0; j < first.n; j++) {
                const row *r = &first.v[j];
                CHECK_MSG(strcmp(r->state, "delivered") == 0 && !r->iface_null,
                          "%s: part %d not delivered", k->tag, j);
                CHECK_MSG(strstr(r->reason, k->needle) != NULL, "%s: note \"%s\" lacks \"%s\"",
                          k->tag, r->reason, k->needle);
                snprintf(p, sizeof p, "%s/sensor1/%s", ingest, r->final);
                CHECK_MSG(classic_ok(p, r->packets), "%s: part %s not whole", k->tag, r->final);
                CHECK_MSG(file_is(r->evidence, data[i].p, data[i].n),
                          "%s: original not held as evidence", k->tag);
                total += r->packets;
            }
            CHECK_MSG(first.n == 2 && first.v[0].iface == 0 && first.v[1].iface == 2,
                      "%s: wrong interfaces", k->tag);
            CHECK_MSG(total == 6, "%s: %lld packets delivered, want 6", k->tag, total);
            break;
        }
        }
    }
    CHECK(c.files_trimmed == 2);
    CHECK(c.files_split == 1);

    /* Nothing staged is left in the directory Arkime watches. */
    snprintf(p, sizeof p, "%s/sensor1", ingest);
    DIR *d = opendir(p);
    struct dirent *de;
    int stray = 0;
    while (d != NULL && (de = readdir(d)) != NULL)
        stray +=
            de->d_name[0] == '.' && strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
    if (d != NULL)
        closedir(d);
    CHECK_MSG(stray == 0, "%d staging files left in the ingest directory", stray);

    /* With readTruncatedPackets=true the truncated capture is delivered,
     * but caplen > len still stops Arkime: still held. */
    char state2[PATH_MAX], ingest2[PATH_MAX];
    fx_path(state2, fx, "state2");
    fx_path(ingest2, fx, "ingest2");
    mkdir(ingest2, 0755);
    CHECK(run_import(fx, src, state2, ingest2, true, &c) == 0);
    for (size_t i = 0; i < NCASES; i++) {
        rows first;
        db_rows(state2, i + 1, 0, &first);
        if (strcmp(cases[i].tag, "truncated") == 0)
            CHECK_MSG(first.n == 1 && strcmp(first.v[0].state, "delivered") == 0,
                      "truncated: not delivered with --arkime-read-truncated");
        if (strstr(cases[i].tag, "caplen-gt-len") != NULL)
            CHECK_MSG(first.n == 1 && strcmp(first.v[0].state, "held") == 0,
                      "%s: delivered with --arkime-read-truncated", cases[i].tag);
    }
    for (size_t i = 0; i < NCASES; i++)
        b_free(&data[i]);
    b_free(&good);
}

/* A state directory written by 0.1.0: the new columns are added on open,
 * the rows already there kept. */
static void case_migration(const fixture *fx)
{
    char state[PATH_MAX], ingest[PATH_MAX], path[PATH_MAX];
    sqlite3 *db = NULL;
    fx_path(state, fx, "old-state");
    fx_path(ingest, fx, "old-ingest");
    mkdir(state, 0750);
    mkdir(ingest, 0755);
    snprintf(path, sizeof path, "%s/pcapferry.db", state);
    CHECK(sqlite3_open(path, &db) == SQLITE_OK);
    CHECK(sqlite3_exec(
              db,
              "CREATE TABLE bundles (sensor TEXT NOT NULL, seq INTEGER NOT NULL,"
              " header_hash TEXT NOT NULL, bundle_hash TEXT NOT NULL,"
              " prev_seq INTEGER NOT NULL, prev_hash TEXT,"
              " status TEXT NOT NULL CHECK (status IN ('delivering', 'committed')),"
              " source TEXT, imported_at INTEGER NOT NULL,"
              " files INTEGER NOT NULL, packets INTEGER NOT NULL, bytes INTEGER NOT NULL,"
              " first_ts INTEGER, last_ts INTEGER, drops INTEGER NOT NULL DEFAULT 0,"
              " PRIMARY KEY (sensor, seq));"
              "CREATE TABLE deliveries (sensor TEXT NOT NULL, seq INTEGER NOT NULL,"
              " n INTEGER NOT NULL, name TEXT NOT NULL, stage TEXT NOT NULL, final TEXT NOT NULL,"
              " state TEXT NOT NULL CHECK (state IN ('staged', 'delivered', 'held', 'empty')),"
              " blake2b TEXT, converted INTEGER NOT NULL DEFAULT 0, reason TEXT,"
              " exec_status INTEGER, exec_attempts INTEGER NOT NULL DEFAULT 0,"
              " PRIMARY KEY (sensor, seq, n));"
              "INSERT INTO bundles VALUES ('old', 1, 'h', 'b', 0, NULL, 'committed', 'x', 1, 1,"
              " 3, 100, 0, 0, 0);"
              "INSERT INTO deliveries VALUES ('old', 1, 1, 'a.pcap', '', 'old-1.pcap',"
              " 'delivered', NULL, 0, NULL, NULL, 0);",
              NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(db);

    pf_err e;
    pf_err_clear(&e);
    pf_import_opts o = {
        .central = fx->central, .keyring = fx->keyring, .state_dir = state, .ingest_dir = ingest};
    pf_importer *imp = pf_importer_open(&o, &e);
    CHECK_MSG(imp != NULL, "open 0.1.0 state: %s", e.msg);
    pf_importer_close(imp);

    sqlite3_stmt *st = NULL;
    CHECK(sqlite3_open(path, &db) == SQLITE_OK);
    CHECK(sqlite3_prepare_v2(db,
                             "SELECT final, trim_bytes, trim_packets, packets IS NULL,"
                             " interface IS NULL, link_type IS NULL, evidence IS NULL "
                             "FROM deliveries WHERE sensor = 'old'",
                             -1, &st, NULL) == SQLITE_OK);
    CHECK(sqlite3_step(st) == SQLITE_ROW);
    CHECK(strcmp((const char *)sqlite3_column_text(st, 0), "old-1.pcap") == 0);
    CHECK(sqlite3_column_int(st, 1) == 0 && sqlite3_column_int(st, 2) == 0);
    CHECK(sqlite3_column_int(st, 3) == 1 && sqlite3_column_int(st, 4) == 1 &&
          sqlite3_column_int(st, 5) == 1 && sqlite3_column_int(st, 6) == 1);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

int main(void)
{
    fixture fx;
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (sodium_init() < 0)
        return 2;
    fx_init(&fx, "gate");
    case_lying_manifests(&fx);
    case_migration(&fx);
    fx_free(&fx);
    return check_summary("test_gate");
}
