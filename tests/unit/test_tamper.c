/* signify-style: a forged or damaged bundle for every check the reader
 * makes. Each mutation must be refused by both the public-key verifier and
 * the full opener, with the specific reason, and nothing may be left in the
 * output directory. */
#include "fixture.h"

static fixture fx;
static char outdir[PATH_MAX], mutant[PATH_MAX];

struct layout {
    size_t header_len;
    size_t nchunks;
    size_t chunk_off[4096]; /* offset of each chunk's length field */
    size_t chunk_len[4096]; /* length field value */
    size_t marker_off;      /* the zero end marker */
    size_t trailer_off;
    size_t total;
};

static void parse_layout(const uint8_t *b, size_t len, struct layout *l)
{
    memset(l, 0, sizeof *l);
    l->total = len;
    l->header_len = (size_t)b[8] << 8 | b[9];
    size_t off = l->header_len;
    for (;;) {
        uint32_t clen = pf_load_u32(b + off);
        if (clen == 0)
            break;
        l->chunk_off[l->nchunks] = off;
        l->chunk_len[l->nchunks] = clen;
        l->nchunks++;
        off += 4 + clen;
    }
    l->marker_off = off;
    l->trailer_off = off + 4;
    if (l->trailer_off + PF_TRAILER_BYTES != len) {
        fprintf(stderr, "layout: unexpected bundle shape\n");
        exit(2);
    }
}

/* What the two readers said about one file. */
struct verdict {
    pf_err verify, open;
    int leftovers;
};

static void judge(const char *path, struct verdict *v)
{
    pf_verified pv;
    pf_extracted x;
    pf_err_clear(&v->verify);
    pf_err_clear(&v->open);
    if (pf_bundle_verify(path, fx.keyring, &pv, &v->verify) == 0)
        v->verify.status = PF_OK;
    if (pf_bundle_open(path, fx.central, fx.keyring, outdir, &x, &v->open) == 0) {
        v->open.status = PF_OK;
        pf_extracted_clear(&x);
    }
    v->leftovers = fx_count_entries(outdir);
    fx_rm_rf(outdir);
    mkdir(outdir, 0755);
}

static void mutate_and_judge(const uint8_t *orig, size_t len, struct verdict *v,
                             void (*edit)(uint8_t *, size_t *, size_t), size_t arg)
{
    uint8_t *b = malloc(len + 4096);
    size_t n = len;
    memcpy(b, orig, len);
    edit(b, &n, arg);
    fx_spit(mutant, b, n);
    free(b);
    judge(mutant, v);
}

static void flip(uint8_t *b, size_t *n, size_t pos)
{
    (void)n;
    b[pos] ^= 0x01;
}

static void truncate_at(uint8_t *b, size_t *n, size_t pos)
{
    (void)b;
    *n = pos;
}

static void append_garbage(uint8_t *b, size_t *n, size_t count)
{
    for (size_t i = 0; i < count; i++)
        b[*n + i] = (uint8_t)(0xa5 ^ i);
    *n += count;
}

/* Both readers refuse, with the same kind of error, and leave nothing. */
#define EXPECT_BOTH(v, st, needle_verify, needle_open, what)                                       \
    do {                                                                                           \
        CHECK_MSG((v).verify.status == (st) && strstr((v).verify.msg, needle_verify),              \
                  "%s: verify said %d: %s", what, (int)(v).verify.status, (v).verify.msg);         \
        CHECK_MSG((v).open.status == (st) && strstr((v).open.msg, needle_open),                    \
                  "%s: open said %d: %s", what, (int)(v).open.status, (v).open.msg);               \
        CHECK_MSG((v).leftovers == 0, "%s: %d entries left in the output dir", what,               \
                  (v).leftovers);                                                                  \
    } while (0)

/* The reasons a flipped header byte may be refused for: the field's own
 * structural check where it has one, else the signature. */
static bool header_reason_ok(size_t pos, size_t name_len, const char *msg)
{
    size_t f = 13 + name_len; /* first byte after the sensor name */
    const char *want[3] = {"signature is invalid", NULL, NULL};
    if (pos < 7)
        want[0] = "bad magic";
    else if (pos == 7)
        want[0] = "unsupported bundle format version";
    else if (pos < 10)
        want[0] = "header length";
    else if (pos < 12)
        want[0] = "unknown header flags";
    else if (pos == 12)
        want[0] = "header length does not match";
    else if (pos < f)
        want[1] = "invalid sensor name";
    else if (pos < f + 16)
        want[0] = "not trusted"; /* the signer id now names an unknown key */
    else if (pos < f + 32)
        want[1] = "another central key"; /* the opener checks the recipient first */
    else if (pos < f + 40)
        want[1] = "sequence number 0";
    else if (pos < f + 80)
        want[1] = "inconsistent previous-bundle link";
    else if (pos >= f + 88 && pos < f + 92)
        want[1] = "chunk size";
    else if (pos >= f + 92 && pos < f + 100)
        want[1] = "impossible content size";
    for (int i = 0; i < 3; i++)
        if (want[i] != NULL && strstr(msg, want[i]) != NULL)
            return true;
    return false;
}

static void test_header_flips(const uint8_t *b, size_t len, const struct layout *l)
{
    size_t name_len = b[12];
    for (size_t pos = 0; pos < l->header_len; pos++) {
        struct verdict v;
        char what[64];
        mutate_and_judge(b, len, &v, flip, pos);
        snprintf(what, sizeof what, "header byte %zu", pos);
        CHECK_MSG(v.verify.status == PF_EREJECT && header_reason_ok(pos, name_len, v.verify.msg),
                  "%s: verify said %d: %s", what, (int)v.verify.status, v.verify.msg);
        CHECK_MSG(v.open.status == PF_EREJECT && header_reason_ok(pos, name_len, v.open.msg),
                  "%s: open said %d: %s", what, (int)v.open.status, v.open.msg);
        CHECK_MSG(v.leftovers == 0, "%s: leftovers", what);
    }
}

static void test_chunk_flips(const uint8_t *b, size_t len, const struct layout *l)
{
    for (size_t c = 0; c < l->nchunks; c++) {
        size_t body = l->chunk_off[c] + 4;
        size_t clen = l->chunk_len[c];
        size_t positions[] = {body, body + clen / 3, body + clen / 2, body + clen - 1};
        for (size_t i = 0; i < sizeof positions / sizeof positions[0]; i++) {
            struct verdict v;
            char what[64];
            snprintf(what, sizeof what, "chunk %zu byte %zu", c, positions[i] - body);
            mutate_and_judge(b, len, &v, flip, positions[i]);
            EXPECT_BOTH(v, PF_EREJECT, "trailer hash does not match", "fails authentication", what);
        }
        /* The length word: misframing is refused; it may also look like a
         * cut-short file to the public walker, but never like a good one. */
        for (size_t bit = 0; bit < 4; bit++) {
            struct verdict v;
            char what[64];
            snprintf(what, sizeof what, "chunk %zu length byte %zu", c, bit);
            mutate_and_judge(b, len, &v, flip, l->chunk_off[c] + bit);
            CHECK_MSG(v.verify.status == PF_EREJECT || v.verify.status == PF_EINCOMPLETE,
                      "%s: verify said %d: %s", what, (int)v.verify.status, v.verify.msg);
            CHECK_MSG(v.open.status == PF_EREJECT || v.open.status == PF_EINCOMPLETE,
                      "%s: open said %d: %s", what, (int)v.open.status, v.open.msg);
            CHECK_MSG(v.leftovers == 0, "%s: leftovers", what);
        }
    }
}

static void test_trailer_flips(const uint8_t *b, size_t len, const struct layout *l)
{
    for (size_t pos = l->marker_off; pos < len; pos++) {
        struct verdict v;
        char what[64];
        snprintf(what, sizeof what, "trailer byte %zu", pos - l->trailer_off);
        mutate_and_judge(b, len, &v, flip, pos);
        size_t t = pos - l->trailer_off;
        if (pos < l->trailer_off) {
            CHECK_MSG(v.open.status == PF_EREJECT &&
                          strstr(v.open.msg, "data after the final chunk") != NULL,
                      "%s: open said %s", what, v.open.msg);
            CHECK_MSG(v.verify.status == PF_EREJECT || v.verify.status == PF_EINCOMPLETE,
                      "%s: verify said %s", what, v.verify.msg);
            CHECK(v.leftovers == 0);
            continue;
        }
        const char *want = t < PF_TRAILER_MAGIC_BYTES        ? "bad trailer magic"
                           : t < PF_TRAILER_MAGIC_BYTES + 8  ? "trailer length field"
                           : t < PF_TRAILER_MAGIC_BYTES + 40 ? "trailer hash does not match"
                                                             : "trailer signature is invalid";
        EXPECT_BOTH(v, PF_EREJECT, want, want, what);
    }
}

static void test_truncations(const uint8_t *b, size_t len, const struct layout *l)
{
    size_t cuts[8192], n = 0;
    cuts[n++] = 0;
    cuts[n++] = 5;
    cuts[n++] = PF_HEADER_PREFIX_BYTES;
    cuts[n++] = l->header_len - 1;
    for (size_t c = 0; c < l->nchunks; c++) {
        size_t off = l->chunk_off[c];
        cuts[n++] = off;     /* at the boundary */
        cuts[n++] = off + 2; /* inside the length word */
        cuts[n++] = off + 4; /* length read, no body */
        cuts[n++] = off + 4 + l->chunk_len[c] / 2;
        cuts[n++] = off + 4 + l->chunk_len[c] - 1;
    }
    cuts[n++] = l->marker_off;
    cuts[n++] = l->marker_off + 2;
    cuts[n++] = l->trailer_off;
    cuts[n++] = l->trailer_off + PF_TRAILER_BYTES / 2;
    cuts[n++] = len - 1;
    for (size_t i = 0; i < n; i++) {
        struct verdict v;
        char what[64];
        snprintf(what, sizeof what, "cut at %zu of %zu", cuts[i], len);
        mutate_and_judge(b, len, &v, truncate_at, cuts[i]);
        EXPECT_BOTH(v, PF_EINCOMPLETE, "incomplete", "incomplete", what);
    }
}

/* Rearranging whole chunks keeps every length valid: only the AEAD chain
 * (open) and the trailer hash (verify) can tell. */
static void rebuild(const uint8_t *b, const struct layout *l, const size_t *order, size_t norder,
                    uint8_t *out, size_t *outlen)
{
    size_t n = 0;
    memcpy(out, b, l->header_len);
    n = l->header_len;
    for (size_t i = 0; i < norder; i++) {
        size_t c = order[i];
        memcpy(out + n, b + l->chunk_off[c], 4 + l->chunk_len[c]);
        n += 4 + l->chunk_len[c];
    }
    memcpy(out + n, b + l->marker_off, 4 + PF_TRAILER_BYTES);
    n += 4 + PF_TRAILER_BYTES;
    *outlen = n;
}

static void judge_buffer(const uint8_t *buf, size_t n, struct verdict *v)
{
    fx_spit(mutant, buf, n);
    judge(mutant, v);
}

static void test_reordering(const uint8_t *b, size_t len, const struct layout *l)
{
    uint8_t *out = malloc(2 * len);
    size_t order[4096], n, outlen;
    struct verdict v;
    CHECK(l->nchunks >= 4);
    /* swap two neighbours */
    for (size_t i = 0; i < l->nchunks; i++)
        order[i] = i;
    order[1] = 2;
    order[2] = 1;
    rebuild(b, l, order, l->nchunks, out, &outlen);
    judge_buffer(out, outlen, &v);
    EXPECT_BOTH(v, PF_EREJECT, "trailer hash does not match", "fails authentication", "swap");
    /* drop a middle chunk */
    n = 0;
    for (size_t i = 0; i < l->nchunks; i++)
        if (i != 1)
            order[n++] = i;
    rebuild(b, l, order, n, out, &outlen);
    judge_buffer(out, outlen, &v);
    EXPECT_BOTH(v, PF_EREJECT, "trailer length field", "fails authentication", "drop");
    /* drop the final chunk */
    for (size_t i = 0; i < l->nchunks; i++)
        order[i] = i;
    rebuild(b, l, order, l->nchunks - 1, out, &outlen);
    judge_buffer(out, outlen, &v);
    EXPECT_BOTH(v, PF_EREJECT, "trailer length field", "end marker before the final chunk",
                "drop final");
    /* duplicate a chunk */
    n = 0;
    for (size_t i = 0; i < l->nchunks; i++) {
        order[n++] = i;
        if (i == 0)
            order[n++] = 0;
    }
    rebuild(b, l, order, n, out, &outlen);
    judge_buffer(out, outlen, &v);
    EXPECT_BOTH(v, PF_EREJECT, "trailer length field", "fails authentication", "duplicate");
    /* garbage after the trailer */
    mutate_and_judge(b, len, &v, append_garbage, 1);
    EXPECT_BOTH(v, PF_EREJECT, "after the trailer", "after the trailer", "garbage 1 byte");
    mutate_and_judge(b, len, &v, append_garbage, 3000);
    EXPECT_BOTH(v, PF_EREJECT, "after the trailer", "after the trailer", "garbage 3000 bytes");
    free(out);
}

/* A well-signed header glued onto another bundle's body. */
static void test_header_swap(const uint8_t *a, size_t alen, const struct layout *la,
                             const uint8_t *b, size_t blen, const struct layout *lb)
{
    uint8_t *out = malloc(alen + blen);
    struct verdict v;
    memcpy(out, a, la->header_len);
    memcpy(out + la->header_len, b + lb->header_len, blen - lb->header_len);
    judge_buffer(out, la->header_len + blen - lb->header_len, &v);
    EXPECT_BOTH(v, PF_EREJECT, "trailer", "fails authentication", "header of A on body of B");
    free(out);
}

static void test_keys_and_trust(const char *pcap)
{
    pf_err e;
    pf_create_result res;
    struct verdict v;
    const char *paths[1] = {pcap};
    char dir[PATH_MAX];

    /* A bundle for another central host: only that host may open it. */
    pf_seckey *other = pf_seckey_generate(PF_ROLE_CENTRAL, "elsewhere", &e);
    pf_create_opts o = {
        .sensor = fx.sensor, .central = &other->pub, .seq = 10, .level = 1, .chunk_size = 4096};
    pf_create_input in = {.path = pcap};
    fx_path(dir, &fx, "other-central");
    o.outdir = dir;
    pf_err_clear(&e);
    CHECK(pf_bundle_create(&o, &in, 1, &res, &e) == 0);
    judge(res.path, &v);
    CHECK_MSG(v.verify.status == PF_OK, "public verify is recipient-blind: %s", v.verify.msg);
    CHECK_ERR(v.open, PF_EREJECT, "another central key");
    CHECK(v.leftovers == 0);
    pf_seckey_free(other);

    /* A sensor nobody trusted. */
    pf_seckey *stranger = pf_seckey_generate(PF_ROLE_SENSOR, "sensor1", &e);
    o.sensor = stranger;
    o.central = &fx.central->pub;
    fx_path(dir, &fx, "stranger");
    o.outdir = dir;
    CHECK(pf_bundle_create(&o, &in, 1, &res, &e) == 0);
    judge(res.path, &v);
    EXPECT_BOTH(v, PF_EREJECT, "not trusted", "not trusted", "untrusted sensor");
    pf_seckey_free(stranger);

    /* Revoked after seq 1: seq 2 is refused; seq 1 only once its hash is
     * vouched for (verify and open have no import state to chain from). */
    char b1[PATH_MAX], b2[PATH_MAX], idhex[PF_KEYID_HEX_BYTES];
    uint8_t id[PF_KEYID_BYTES], h1[1][PF_HASH_BYTES], h2[1][PF_HASH_BYTES];
    fx_path(dir, &fx, "revoked");
    CHECK(fx_create(&fx, dir, 1, paths, 1, 4096, &res, &e) == 0);
    snprintf(b1, sizeof b1, "%s", res.path);
    memcpy(h1[0], res.bundle_hash, PF_HASH_BYTES);
    CHECK(fx_create(&fx, dir, 2, paths, 1, 4096, &res, &e) == 0);
    snprintf(b2, sizeof b2, "%s", res.path);
    memcpy(h2[0], res.bundle_hash, PF_HASH_BYTES);
    pf_hex(idhex, fx.sensor->pub.key_id, PF_KEYID_BYTES);
    CHECK(pf_keyring_revoke(fx.keyring, idhex, true, 1, NULL, 0, id, &e) == 0);
    judge(b1, &v);
    EXPECT_BOTH(v, PF_EREJECT, "not vouched for", "not vouched for", "seq 1 unvouched");
    /* vouching for seq 2's hash does not lift the cut-off */
    CHECK(pf_keyring_revoke(fx.keyring, idhex, true, 1, (const uint8_t(*)[PF_HASH_BYTES])h2, 1, id,
                            &e) == 0);
    judge(b2, &v);
    EXPECT_BOTH(v, PF_EREJECT, "revoked after seq 1", "revoked after seq 1", "revoked seq 2");
    judge(b1, &v);
    EXPECT_BOTH(v, PF_EREJECT, "not vouched for", "not vouched for", "seq 1, other hash allowed");
    CHECK(pf_keyring_revoke(fx.keyring, idhex, true, 1, (const uint8_t(*)[PF_HASH_BYTES])h1, 1, id,
                            &e) == 0);
    judge(b1, &v);
    CHECK_MSG(v.verify.status == PF_OK && v.open.status == PF_OK, "seq 1 vouched for: %s %s",
              v.verify.msg, v.open.msg);
    judge(b2, &v);
    EXPECT_BOTH(v, PF_EREJECT, "revoked after seq 1", "revoked after seq 1", "revoked seq 2");
    CHECK(pf_keyring_revoke(fx.keyring, idhex, false, 0, NULL, 0, id, &e) == 0);
    judge(b1, &v);
    EXPECT_BOTH(v, PF_EREJECT, "is revoked", "is revoked", "revoked entirely");
}

int main(void)
{
    pf_err e;
    pf_create_result ra, rb;
    struct layout la, lb;
    char pcap_a[PATH_MAX], pcap_b[PATH_MAX], dir[PATH_MAX];
    size_t alen, blen;

    if (sodium_init() < 0)
        return 2;
    fx_init(&fx, "tamper");
    fx_path(outdir, &fx, "out");
    fx_path(mutant, &fx, "mutant.pcapferry");
    mkdir(outdir, 0755);
    fx_path(pcap_a, &fx, "a.pcap");
    fx_path(pcap_b, &fx, "b.pcap");
    /* Random payloads do not compress: with 4 KiB chunks this gives a
     * dozen chunks to cut, flip and shuffle. */
    fx_write_pcap(pcap_a, 40, 1, 1000);
    fx_write_pcap(pcap_b, 40, 2, 1000);
    fx_path(dir, &fx, "bundles");
    const char *pa[1] = {pcap_a}, *pb[1] = {pcap_b};
    pf_err_clear(&e);
    if (fx_create(&fx, dir, 1, pa, 1, 4096, &ra, &e) != 0 ||
        fx_create(&fx, dir, 2, pb, 1, 4096, &rb, &e) != 0) {
        fprintf(stderr, "create: %s\n", e.msg);
        return 2;
    }
    uint8_t *a = fx_slurp(ra.path, &alen);
    uint8_t *b = fx_slurp(rb.path, &blen);
    parse_layout(a, alen, &la);
    parse_layout(b, blen, &lb);

    /* Control: the untouched bundle passes both readers. */
    struct verdict v;
    judge(ra.path, &v);
    CHECK_MSG(v.verify.status == PF_OK, "%s", v.verify.msg);
    CHECK_MSG(v.open.status == PF_OK, "%s", v.open.msg);

    test_header_flips(a, alen, &la);
    test_chunk_flips(a, alen, &la);
    test_trailer_flips(a, alen, &la);
    test_truncations(a, alen, &la);
    test_reordering(a, alen, &la);
    test_header_swap(a, alen, &la, b, blen, &lb);
    test_keys_and_trust(pcap_a);

    free(a);
    free(b);
    fx_free(&fx);
    return check_summary("test_tamper");
}
