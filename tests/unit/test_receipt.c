/* Signed receipts (bundle/receipt.c): what pf_receipt_write signs comes back
 * intact from pf_receipt_read, and every altered, forged, misdirected or
 * malformed receipt is refused with its specific reason. Malformed content
 * is signed correctly with the central key (pf_sign_ctx with the receipt
 * context), so only the parser stands between it and a prune. */
#include "fixture.h"

#include "bundle/receipt.h"

static fixture fx;
static pf_seckey *central2;
static char dir[PATH_MAX];
static unsigned mutant_no;

/* The bytes pf_receipt_read checks: magic line, base64 signature line, body,
 * final newline (not signed). */
static void write_signed_ctx(const char *path, const char *body, const uint8_t *sign_sk,
                             const char *ctx)
{
    uint8_t sig[PF_SIG_BYTES];
    char b64[sodium_base64_ENCODED_LEN(PF_SIG_BYTES, sodium_base64_VARIANT_ORIGINAL)];
    pf_sign_ctx(sig, ctx, (const uint8_t *)body, strlen(body), sign_sk);
    sodium_bin2base64(b64, sizeof b64, sig, sizeof sig, sodium_base64_VARIANT_ORIGINAL);
    FILE *f = fopen(path, "wb");
    if (f == NULL || fprintf(f, "%s\n%s\n%s\n", PF_SIGCTX_RECEIPT, b64, body) < 0 ||
        fclose(f) != 0) {
        perror(path);
        exit(2);
    }
}

/* A fresh path for one hand-made receipt. */
static const char *mutant_path(void)
{
    static char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/mutant-%03u%s", dir, ++mutant_no, PF_RECEIPT_SUFFIX);
    return path;
}

/* Signs body with the (first) central key as a real receipt would be. */
static const char *signed_body(const char *body)
{
    const char *p = mutant_path();
    write_signed_ctx(p, body, fx.central->sign_sk, PF_SIGCTX_RECEIPT);
    return p;
}

/* Reads path with the pinned central key; it must be refused with status
 * PF_EREJECT and a message containing needle, and hand back nothing. */
#define REFUSED(path, needle)                                                                      \
    do {                                                                                           \
        pf_receipt *r_ = (pf_receipt *)1;                                                          \
        pf_err e_;                                                                                 \
        pf_err_clear(&e_);                                                                         \
        int rc_ = pf_receipt_read((path), &fx.central->pub, &r_, &e_);                             \
        CHECK_MSG(rc_ == -1, "%s: read succeeded, wanted \"%s\"", (path), (needle));               \
        CHECK_ERR(e_, PF_EREJECT, (needle));                                                       \
        CHECK(r_ == NULL);                                                                         \
        if (rc_ == 0)                                                                              \
            pf_receipt_free(r_);                                                                   \
    } while (0)

static char central_id_hex[PF_KEYID_HEX_BYTES];
static const char *H1 = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

/* A receipt body with the given bundles array (JSON text). */
static const char *body_with(const char *bundles)
{
    static char body[8192];
    snprintf(body, sizeof body,
             "{\n  \"type\": \"pcapferry-receipt\",\n  \"version\": 1,\n  \"sensor\": "
             "\"sensor1\",\n  \"central_key_id\": \"%s\",\n  \"issued\": "
             "\"2024-01-01T00:00:00.000000000Z\",\n  \"issued_ns\": 1704067200000000000,\n  "
             "\"bundles\": %s\n}",
             central_id_hex, bundles);
    return body;
}

/* ------------------------------------------------------------ round trip */

static char good[PATH_MAX]; /* a genuine receipt, for the tampering cases */
static uint8_t h_a[PF_HASH_BYTES], h_b[PF_HASH_BYTES], h_c[PF_HASH_BYTES];

static void test_round_trip(void)
{
    pf_err e;
    char name[NAME_MAX + 1];
    pf_err_clear(&e);
    randombytes_buf(h_a, sizeof h_a);
    randombytes_buf(h_b, sizeof h_b);
    randombytes_buf(h_c, sizeof h_c);
    char longreason[400];
    memset(longreason, 'r', sizeof longreason - 1);
    longreason[sizeof longreason - 1] = '\0';

    pf_receipt *w = pf_receipt_new("sensor1");
    CHECK(w != NULL);
    CHECK(pf_receipt_add(w, 1, h_a, h_b, PF_RCPT_COMMITTED, NULL, &e) == 0);
    CHECK(pf_receipt_add(w, 2, h_b, NULL, PF_RCPT_REJECTED,
                         "sensor1-0000000002.pcapferry: chunk 3 failed authentication "
                         "(\"quoted\", back\\slash, ünïcode)",
                         &e) == 0);
    CHECK(pf_receipt_add(w, UINT64_C(9000000000000000000), h_c, NULL, PF_RCPT_REJECTED, longreason,
                         &e) == 0);
    /* more than the first allocation holds */
    for (uint64_t s = 10; s < 40; s++)
        CHECK(pf_receipt_add(w, s, h_a, h_c, PF_RCPT_COMMITTED, "", &e) == 0);
    CHECK(w->n == 33);

    CHECK(pf_receipt_write(w, fx.central, dir, name, sizeof name, &e) == 0);
    CHECK_MSG(e.status == PF_OK, "%s", e.msg);
    CHECK(strncmp(name, "sensor1-", 8) == 0);
    size_t nl = strlen(name), sl = strlen(PF_RECEIPT_SUFFIX);
    CHECK(nl > sl && strcmp(name + nl - sl, PF_RECEIPT_SUFFIX) == 0);
    CHECK(strchr(name, ':') == NULL); /* FAT refuses ':' */
    CHECK(w->issued_ns > 0);
    snprintf(good, sizeof good, "%s/%s", dir, name);

    /* the written text: magic, signature line, the JSON, a final newline */
    size_t len;
    uint8_t *raw = fx_slurp(good, &len);
    CHECK(len > 30 && memcmp(raw, "pcapferry-receipt-v1\n", 21) == 0);
    CHECK(raw[len - 1] == '\n');
    CHECK(strstr((char *)raw, "\"central_key_id\": \"") != NULL);
    free(raw);

    /* no temporary file left next to it */
    CHECK(fx_count_entries(dir) == 1);

    pf_receipt *r = NULL;
    pf_err_clear(&e);
    CHECK(pf_receipt_read(good, &fx.central->pub, &r, &e) == 0);
    CHECK_MSG(e.status == PF_OK, "%s", e.msg);
    if (r == NULL) {
        pf_receipt_free(w);
        return;
    }
    CHECK(strcmp(r->sensor, "sensor1") == 0);
    uint8_t want_id[PF_KEYID_BYTES];
    pf_key_id(want_id, fx.central->pub.sign_pk, PF_SIGN_PK_BYTES);
    CHECK(memcmp(r->central_id, want_id, PF_KEYID_BYTES) == 0);
    CHECK(memcmp(w->central_id, want_id, PF_KEYID_BYTES) == 0);
    CHECK(r->issued_ns == w->issued_ns);
    CHECK(r->n == w->n);
    for (size_t i = 0; i < r->n && i < w->n; i++) {
        CHECK_MSG(r->v[i].seq == w->v[i].seq, "entry %zu", i);
        CHECK_MSG(memcmp(r->v[i].hash, w->v[i].hash, PF_HASH_BYTES) == 0, "entry %zu", i);
        CHECK_MSG(r->v[i].status == w->v[i].status, "entry %zu", i);
        CHECK_MSG(r->v[i].has_header_hash == (r->v[i].status == PF_RCPT_COMMITTED), "entry %zu", i);
        CHECK_MSG(memcmp(r->v[i].header_hash, w->v[i].header_hash, PF_HASH_BYTES) == 0, "entry %zu",
                  i);
        CHECK_MSG(strcmp(r->v[i].reason, w->v[i].reason) == 0, "entry %zu: '%s' != '%s'", i,
                  r->v[i].reason, w->v[i].reason);
    }
    if (r->n >= 3) {
        CHECK(r->v[0].seq == 1 && r->v[0].status == PF_RCPT_COMMITTED && r->v[0].reason[0] == 0);
        CHECK(r->v[1].seq == 2 && r->v[1].status == PF_RCPT_REJECTED);
        CHECK(strstr(r->v[1].reason, "chunk 3 failed authentication") != NULL);
        CHECK(strstr(r->v[1].reason, "ünïcode") != NULL);
        CHECK(r->v[2].seq == UINT64_C(9000000000000000000));
        CHECK(memcmp(r->v[2].hash, h_c, PF_HASH_BYTES) == 0);
        /* a long reason is kept up to the field's size */
        CHECK(strlen(r->v[2].reason) == sizeof r->v[2].reason - 1);
    }
    pf_receipt_free(r);

    /* an empty receipt (nothing to acknowledge) still round-trips */
    pf_receipt *w0 = pf_receipt_new("sensor1");
    char sub[PATH_MAX], name0[NAME_MAX + 1], p0[PATH_MAX];
    snprintf(sub, sizeof sub, "%s/empty/sensor1", dir); /* made on demand */
    pf_err_clear(&e);
    CHECK(pf_receipt_write(w0, fx.central, sub, name0, sizeof name0, &e) == 0);
    snprintf(p0, sizeof p0, "%s/%s", sub, name0);
    r = NULL;
    CHECK(pf_receipt_read(p0, &fx.central->pub, &r, &e) == 0);
    CHECK(r != NULL && r->n == 0 && strcmp(r->sensor, "sensor1") == 0);
    pf_receipt_free(r);
    pf_receipt_free(w0);

    /* only the central key signs receipts */
    pf_err_clear(&e);
    CHECK(pf_receipt_write(w, fx.sensor, sub, name0, sizeof name0, &e) == -1);
    CHECK_ERR(e, PF_EUSAGE, "central key");
    pf_receipt_free(w);

    /* a commitment without the header it names is not written (version 2) */
    w = pf_receipt_new("sensor1");
    pf_err_clear(&e);
    CHECK(pf_receipt_add(w, 1, h_a, NULL, PF_RCPT_COMMITTED, NULL, &e) == 0);
    CHECK(pf_receipt_write(w, fx.central, sub, name0, sizeof name0, &e) == -1);
    CHECK_ERR(e, PF_EENV, "no header hash");
    pf_receipt_free(w);

    /* the hand-made writer below produces what pf_receipt_read accepts */
    char hand[4096];
    snprintf(hand, sizeof hand,
             "[{\"seq\": 5, \"hash\": \"%s\", \"status\": \"committed\"}, {\"seq\": 6, "
             "\"hash\": \"%s\", \"status\": \"rejected\", \"reason\": \"bad\"}]",
             H1, H1);
    const char *p = signed_body(body_with(hand));
    r = NULL;
    pf_err_clear(&e);
    CHECK(pf_receipt_read(p, &fx.central->pub, &r, &e) == 0);
    CHECK_MSG(e.status == PF_OK, "%s", e.msg);
    CHECK(r != NULL && r->n == 2 && r->v[0].seq == 5 && r->v[1].status == PF_RCPT_REJECTED &&
          strcmp(r->v[1].reason, "bad") == 0 && r->issued_ns == 1704067200000000000LL);
    pf_receipt_free(r);
}

/* ------------------------------------------------------------- tampering */

/* A copy of the genuine receipt with byte off XORed with x. */
static const char *flipped(size_t off, uint8_t x)
{
    size_t len;
    uint8_t *b = fx_slurp(good, &len);
    const char *p = mutant_path();
    if (off < len)
        b[off] ^= x;
    fx_spit(p, b, len);
    free(b);
    return p;
}

/* A copy with extra bytes at the end (or, with front, at the start). */
static const char *with_extra(const char *extra, bool front)
{
    size_t len;
    uint8_t *b = fx_slurp(good, &len);
    const char *p = mutant_path();
    size_t el = strlen(extra);
    uint8_t *n = malloc(len + el);
    if (n == NULL)
        exit(2);
    if (front) {
        memcpy(n, extra, el);
        memcpy(n + el, b, len);
    } else {
        memcpy(n, b, len);
        memcpy(n + len, extra, el);
    }
    fx_spit(p, n, len + el);
    free(n);
    free(b);
    return p;
}

static void test_tampering(void)
{
    size_t len;
    uint8_t *b = fx_slurp(good, &len);
    const char *t = (const char *)b;
    const char *sigline = t + strlen(PF_SIGCTX_RECEIPT) + 1;
    const char *body = strchr(sigline, '\n');
    if (body == NULL) {
        CHECK(body != NULL);
        free(b);
        return;
    }
    body++;
    size_t sig_off = (size_t)(sigline - t), body_off = (size_t)(body - t);
    const char *seqpos = strstr(body, "\"seq\": 1,");
    const char *hashpos = strstr(body, "\"hash\": \"");
    const char *statpos = strstr(body, "committed");

    /* the JSON body: anywhere, including the digit a prune would act on */
    REFUSED(flipped(body_off, 0x01), "signature is invalid");
    REFUSED(flipped(body_off + 3, 0x20), "signature is invalid");
    if (seqpos != NULL)
        REFUSED(flipped((size_t)(seqpos - t) + 7, 0x01), "signature is invalid"); /* seq 1->0 */
    if (hashpos != NULL)
        REFUSED(flipped((size_t)(hashpos - t) + 9, 0x01), "signature is invalid");
    if (statpos != NULL)
        REFUSED(flipped((size_t)(statpos - t), 0x20), "signature is invalid");
    REFUSED(flipped(len - 3, 0x01), "signature is invalid"); /* the closing brace area */

    /* the signature line: another valid base64 letter, or not base64 at all */
    char c0 = t[sig_off];
    uint8_t to_other = (uint8_t)(c0 == 'A' ? 'A' ^ 'B' : c0 ^ 'A');
    REFUSED(flipped(sig_off, to_other), "signature is invalid");
    REFUSED(flipped(sig_off + 10, (uint8_t)(t[sig_off + 10] ^ '!')), "signature line is malformed");
    REFUSED(flipped(body_off - 1, (uint8_t)('\n' ^ 'A')), "signature line is malformed");
    /* a truncated signature line */
    {
        const char *p = mutant_path();
        size_t cut = 20;
        uint8_t *n = malloc(len);
        if (n == NULL)
            exit(2);
        memcpy(n, b, sig_off + cut);
        memcpy(n + sig_off + cut, b + body_off - 1, len - (body_off - 1));
        fx_spit(p, n, len - (body_off - 1 - sig_off - cut));
        free(n);
        REFUSED(p, "signature line is malformed");
    }

    /* the magic line */
    REFUSED(flipped(0, 0x01), "not a pcapferry receipt");
    REFUSED(flipped(19, 0x01), "not a pcapferry receipt"); /* v1 -> v0 */
    REFUSED(flipped(sig_off - 1, (uint8_t)('\n' ^ ' ')), "not a pcapferry receipt");

    /* trailing junk (even one more newline), leading junk, truncation */
    REFUSED(with_extra("x", false), "signature is invalid");
    REFUSED(with_extra("\n", false), "signature is invalid");
    REFUSED(with_extra(" ", false), "signature is invalid");
    REFUSED(with_extra("{\"bundles\": []}\n", false), "signature is invalid");
    REFUSED(with_extra(" ", true), "not a pcapferry receipt");
    {
        const char *p = mutant_path();
        fx_spit(p, b, len - 2); /* loses the closing brace */
        REFUSED(p, "signature is invalid");
        p = mutant_path();
        fx_spit(p, b, body_off);
        REFUSED(p, "signature is invalid");
        p = mutant_path();
        fx_spit(p, b, sig_off);
        REFUSED(p, "not a pcapferry receipt");
        p = mutant_path();
        fx_spit(p, b, 0);
        REFUSED(p, "not a pcapferry receipt");
    }
    free(b);

    /* a receipt written by another central key, read with the pinned one */
    {
        pf_receipt *w = pf_receipt_new("sensor1");
        char sub[PATH_MAX], name[NAME_MAX + 1], p[PATH_MAX];
        pf_err e;
        pf_err_clear(&e);
        snprintf(sub, sizeof sub, "%s/other-central", dir);
        CHECK(pf_receipt_add(w, 1, h_a, h_b, PF_RCPT_COMMITTED, NULL, &e) == 0);
        CHECK(pf_receipt_write(w, central2, sub, name, sizeof name, &e) == 0);
        snprintf(p, sizeof p, "%s/%s", sub, name);
        REFUSED(p, "signature is invalid");
        /* ...which its own key accepts: the file itself is fine */
        pf_receipt *r = NULL;
        CHECK(pf_receipt_read(p, &central2->pub, &r, &e) == 0);
        pf_receipt_free(r);
        pf_receipt_free(w);
    }

    /* correctly signed by the pinned key, but naming another central key */
    {
        char other_hex[PF_KEYID_HEX_BYTES], saved[PF_KEYID_HEX_BYTES];
        uint8_t other_id[PF_KEYID_BYTES];
        pf_key_id(other_id, central2->pub.sign_pk, PF_SIGN_PK_BYTES);
        pf_hex(other_hex, other_id, PF_KEYID_BYTES);
        memcpy(saved, central_id_hex, sizeof saved);
        memcpy(central_id_hex, other_hex, sizeof central_id_hex);
        char arr[256];
        snprintf(arr, sizeof arr, "[{\"seq\": 1, \"hash\": \"%s\", \"status\": \"committed\"}]",
                 H1);
        REFUSED(signed_body(body_with(arr)), "names another central key");
        /* the encryption key's id instead of the signing key's */
        pf_hex(central_id_hex, fx.central->pub.key_id, PF_KEYID_BYTES);
        if (memcmp(fx.central->pub.key_id, other_id, PF_KEYID_BYTES) != 0)
            REFUSED(signed_body(body_with(arr)), "names another central key");
        memcpy(central_id_hex, saved, sizeof central_id_hex);
    }

    /* the right key and bytes, but a signature made for another purpose */
    {
        char arr[256];
        snprintf(arr, sizeof arr, "[{\"seq\": 1, \"hash\": \"%s\", \"status\": \"committed\"}]",
                 H1);
        const char *bd = body_with(arr);
        const char *ctxs[] = {PF_SIGCTX_MANIFEST, PF_SIGCTX_HEADER, PF_SIGCTX_TRAILER,
                              "pcapferry-receipt-v2", ""};
        for (size_t i = 0; i < sizeof ctxs / sizeof ctxs[0]; i++) {
            const char *p = mutant_path();
            write_signed_ctx(p, bd, fx.central->sign_sk, ctxs[i]);
            REFUSED(p, "signature is invalid");
        }
        /* plain Ed25519 over the body, no context at all */
        uint8_t sig[PF_SIG_BYTES];
        char b64[sodium_base64_ENCODED_LEN(PF_SIG_BYTES, sodium_base64_VARIANT_ORIGINAL)];
        crypto_sign_ed25519_detached(sig, NULL, (const uint8_t *)bd, strlen(bd),
                                     fx.central->sign_sk);
        sodium_bin2base64(b64, sizeof b64, sig, sizeof sig, sodium_base64_VARIANT_ORIGINAL);
        const char *p = mutant_path();
        FILE *f = fopen(p, "wb");
        if (f == NULL)
            exit(2);
        fprintf(f, "%s\n%s\n%s\n", PF_SIGCTX_RECEIPT, b64, bd);
        fclose(f);
        REFUSED(p, "signature is invalid");
    }
}

/* A real bundle's manifest signature (PF_SIGCTX_MANIFEST, by the sensor)
 * put in front of that very manifest as if it were a receipt: refused even
 * by a reader that pins the sensor's key. */
static void test_bundle_signature_reused(void)
{
    char pcap[PATH_MAX], bdir[PATH_MAX], odir[PATH_MAX];
    pf_create_result res;
    pf_extracted x;
    pf_err e;
    pf_err_clear(&e);
    fx_path(pcap, &fx, "a.pcap");
    fx_path(bdir, &fx, "bundles");
    fx_path(odir, &fx, "opened");
    mkdir(odir, 0755);
    fx_write_pcap(pcap, 20, 3, 200);
    const char *in[1] = {pcap};
    memset(&x, 0, sizeof x);
    if (fx_create(&fx, bdir, 1, in, 1, 0, &res, &e) != 0 ||
        pf_bundle_open(res.path, fx.central, fx.keyring, odir, &x, &e) != 0) {
        CHECK_MSG(0, "cannot make a bundle: %s", e.msg);
        return;
    }
    /* sanity: that signature does verify over the manifest in its context */
    CHECK(pf_verify_ctx(x.manifest_sig, PF_SIGCTX_MANIFEST, x.manifest_raw, x.manifest_len,
                        fx.sensor->pub.sign_pk));

    char b64[sodium_base64_ENCODED_LEN(PF_SIG_BYTES, sodium_base64_VARIANT_ORIGINAL)];
    sodium_bin2base64(b64, sizeof b64, x.manifest_sig, PF_SIG_BYTES,
                      sodium_base64_VARIANT_ORIGINAL);
    const char *p = mutant_path();
    FILE *f = fopen(p, "wb");
    if (f == NULL)
        exit(2);
    fprintf(f, "%s\n%s\n", PF_SIGCTX_RECEIPT, b64);
    fwrite(x.manifest_raw, 1, x.manifest_len, f);
    fclose(f);
    pf_receipt *r = (pf_receipt *)1;
    pf_err_clear(&e);
    CHECK(pf_receipt_read(p, &fx.sensor->pub, &r, &e) == -1);
    CHECK_ERR(e, PF_EREJECT, "signature is invalid");
    CHECK(r == NULL);
    REFUSED(p, "signature is invalid");

    /* the header signature too (PF_SIGCTX_HEADER over the header bytes) */
    size_t hsig_len = x.hdr.raw_len - PF_SIG_BYTES;
    sodium_bin2base64(b64, sizeof b64, x.hdr.raw + hsig_len, PF_SIG_BYTES,
                      sodium_base64_VARIANT_ORIGINAL);
    p = mutant_path();
    f = fopen(p, "wb");
    if (f == NULL)
        exit(2);
    fprintf(f, "%s\n%s\n", PF_SIGCTX_RECEIPT, b64);
    fwrite(x.hdr.raw, 1, hsig_len, f);
    fclose(f);
    r = (pf_receipt *)1;
    pf_err_clear(&e);
    CHECK(pf_receipt_read(p, &fx.sensor->pub, &r, &e) == -1);
    CHECK_ERR(e, PF_EREJECT, "signature is invalid");
    pf_extracted_clear(&x);
}

/* ------------------------------------------------ malformed, but signed */

/* tmpl with @ID@ (the pinned key's id), @ID31@ (one digit short) and @B@
 * (the bundles array) filled in. */
static void subst(char *out, size_t cap, const char *tmpl, const char *arr)
{
    size_t o = 0;
    for (const char *p = tmpl; *p != '\0' && o + 1 < cap;) {
        const char *rep = NULL;
        size_t skip = 0, rlen = 0;
        if (strncmp(p, "@ID31@", 6) == 0)
            rep = central_id_hex, skip = 6, rlen = strlen(central_id_hex) - 1;
        else if (strncmp(p, "@ID@", 4) == 0)
            rep = central_id_hex, skip = 4, rlen = strlen(central_id_hex);
        else if (strncmp(p, "@B@", 3) == 0)
            rep = arr, skip = 3, rlen = strlen(arr);
        if (rep == NULL) {
            out[o++] = *p++;
            continue;
        }
        for (size_t k = 0; k < rlen && o + 1 < cap; k++)
            out[o++] = rep[k];
        p += skip;
    }
    out[o] = '\0';
}

static void test_malformed_signed(void)
{
    char arr[1024];
    const char *H63 = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeef";
    const char *HZZ = "zz112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    const char *H66 = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff00";
    struct {
        const char *seq; /* what comes before "hash" */
        const char *hash;
        const char *status; /* what comes after it */
        const char *needle;
    } bad[] = {
        {"\"seq\": 0, ", H1, ", \"status\": \"committed\"", "entry 0 is malformed"},
        {"\"seq\": -1, ", H1, ", \"status\": \"committed\"", "entry 0 is malformed"},
        {"\"seq\": \"1\", ", H1, ", \"status\": \"committed\"", "entry 0 is malformed"},
        {"\"seq\": 1.5, ", H1, ", \"status\": \"committed\"", "entry 0 is malformed"},
        {"\"seq\": null, ", H1, ", \"status\": \"committed\"", "entry 0 is malformed"},
        {"", H1, ", \"status\": \"committed\"", "entry 0 is malformed"},
        {"\"seq\": 1, ", H63, ", \"status\": \"committed\"", "entry 0 is malformed"},
        {"\"seq\": 1, ", H66, ", \"status\": \"committed\"", "entry 0 is malformed"},
        {"\"seq\": 1, ", HZZ, ", \"status\": \"committed\"", "entry 0 is malformed"},
        {"\"seq\": 1, ", "", ", \"status\": \"committed\"", "entry 0 is malformed"},
        {"\"seq\": 1, ", H1, "", "entry 0 is malformed"},
        {"\"seq\": 1, ", H1, ", \"status\": 1", "entry 0 is malformed"},
        {"\"seq\": 1, ", H1, ", \"status\": \"deleted\"", "entry 0 has unknown status"},
        {"\"seq\": 1, ", H1, ", \"status\": \"Committed\"", "entry 0 has unknown status"},
        {"\"seq\": 1, ", H1, ", \"status\": \"\"", "entry 0 has unknown status"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char entry[512];
        snprintf(entry, sizeof entry, "{%s\"hash\": \"%s\"%s}", bad[i].seq, bad[i].hash,
                 bad[i].status);
        snprintf(arr, sizeof arr, "[%s]", entry);
        REFUSED(signed_body(body_with(arr)), bad[i].needle);
        /* after a good entry: the whole receipt goes, not just the tail */
        snprintf(arr, sizeof arr, "[{\"seq\": 1, \"hash\": \"%s\", \"status\": \"committed\"}, %s]",
                 H1, entry);
        const char *needle = strstr(bad[i].needle, "unknown") ? "entry 1 has unknown status"
                                                              : "entry 1 is malformed";
        REFUSED(signed_body(body_with(arr)), needle);
    }

    /* the envelope */
    char arr1[256];
    snprintf(arr1, sizeof arr1, "[{\"seq\": 1, \"hash\": \"%s\", \"status\": \"committed\"}]", H1);
    char body[4096];
    const char *fmts[] = {
        "{\"type\": \"pcapferry-manifest\", \"version\": 1, \"sensor\": \"sensor1\", "
        "\"central_key_id\": \"@ID@\", \"issued_ns\": 1, \"bundles\": @B@}",
        "{\"version\": 1, \"sensor\": \"sensor1\", \"central_key_id\": \"@ID@\", "
        "\"issued_ns\": 1, \"bundles\": @B@}",
        "{\"type\": \"pcapferry-receipt\", \"version\": 3, \"sensor\": \"sensor1\", "
        "\"central_key_id\": \"@ID@\", \"issued_ns\": 1, \"bundles\": @B@}",
        "{\"type\": \"pcapferry-receipt\", \"version\": 0, \"sensor\": \"sensor1\", "
        "\"central_key_id\": \"@ID@\", \"issued_ns\": 1, \"bundles\": @B@}",
        "{\"type\": \"pcapferry-receipt\", \"sensor\": \"sensor1\", "
        "\"central_key_id\": \"@ID@\", \"issued_ns\": 1, \"bundles\": @B@}",
        "{\"type\": \"pcapferry-receipt\", \"version\": 1, \"sensor\": \"../etc\", "
        "\"central_key_id\": \"@ID@\", \"issued_ns\": 1, \"bundles\": @B@}",
        "{\"type\": \"pcapferry-receipt\", \"version\": 1, \"sensor\": \"\", "
        "\"central_key_id\": \"@ID@\", \"issued_ns\": 1, \"bundles\": @B@}",
        "{\"type\": \"pcapferry-receipt\", \"version\": 1, "
        "\"central_key_id\": \"@ID@\", \"issued_ns\": 1, \"bundles\": @B@}",
        "{\"type\": \"pcapferry-receipt\", \"version\": 1, \"sensor\": \"sensor1\", "
        "\"central_key_id\": \"@ID31@\", \"issued_ns\": 1, \"bundles\": @B@}",
        "{\"type\": \"pcapferry-receipt\", \"version\": 1, \"sensor\": \"sensor1\", "
        "\"central_key_id\": \"@ID@\", \"bundles\": @B@}",
        "{\"type\": \"pcapferry-receipt\", \"version\": 1, \"sensor\": \"sensor1\", "
        "\"central_key_id\": \"@ID@\", \"issued_ns\": \"1\", \"bundles\": @B@}",
        "{\"type\": \"pcapferry-receipt\", \"version\": 1, \"sensor\": \"sensor1\", "
        "\"central_key_id\": \"@ID@\", \"issued_ns\": 1, \"bundles\": {\"0\": @B@}}",
        /* a second "bundles" key must not hide the first from anyone */
        "{\"type\": \"pcapferry-receipt\", \"version\": 1, \"sensor\": \"sensor1\", "
        "\"central_key_id\": \"@ID@\", \"issued_ns\": 1, \"bundles\": @B@, \"bundles\": []}",
        "[\"pcapferry-receipt\", \"@ID@\", @B@]",
        "{\"type\": \"pcapferry-receipt\", \"version\": 1, \"sensor\": \"sensor1\", "
        "\"central_key_id\": \"@ID@\", \"issued_ns\": 1, \"bundles\": @B@",
    };
    for (size_t i = 0; i < sizeof fmts / sizeof fmts[0]; i++) {
        subst(body, sizeof body, fmts[i], arr1);
        REFUSED(signed_body(body), "receipt content is malformed");
    }
    /* control: the same template, well formed, is accepted */
    subst(body, sizeof body,
          "{\"type\": \"pcapferry-receipt\", \"version\": 1, \"sensor\": \"sensor1\", "
          "\"central_key_id\": \"@ID@\", \"issued_ns\": 1, \"bundles\": @B@}",
          arr1);
    {
        pf_receipt *r = NULL;
        pf_err e;
        pf_err_clear(&e);
        CHECK(pf_receipt_read(signed_body(body), &fx.central->pub, &r, &e) == 0);
        CHECK_MSG(e.status == PF_OK, "%s", e.msg);
        CHECK(r != NULL && r->n == 1 && r->v[0].seq == 1 && !r->v[0].has_header_hash);
        pf_receipt_free(r);
    }
    /* version 2: a commitment must name its header hash, well formed; a
     * version 1 receipt knows no header hash (an old reader would ignore it) */
    const char *v2 = "{\"type\": \"pcapferry-receipt\", \"version\": 2, \"sensor\": "
                     "\"sensor1\", \"central_key_id\": \"@ID@\", \"issued_ns\": 1, "
                     "\"bundles\": @B@}";
    const char *v1 = "{\"type\": \"pcapferry-receipt\", \"version\": 1, \"sensor\": "
                     "\"sensor1\", \"central_key_id\": \"@ID@\", \"issued_ns\": 1, "
                     "\"bundles\": @B@}";
    subst(body, sizeof body, v2, arr1);
    REFUSED(signed_body(body), "entry 0 names no header hash");
    const char *badhh[] = {H63, HZZ, H66, ""};
    for (size_t i = 0; i < sizeof badhh / sizeof badhh[0]; i++) {
        snprintf(arr, sizeof arr,
                 "[{\"seq\": 1, \"hash\": \"%s\", \"header_hash\": \"%s\", \"status\": "
                 "\"committed\"}]",
                 H1, badhh[i]);
        subst(body, sizeof body, v2, arr);
        REFUSED(signed_body(body), "entry 0 is malformed");
    }
    snprintf(arr, sizeof arr,
             "[{\"seq\": 1, \"hash\": \"%s\", \"header_hash\": 7, \"status\": \"committed\"}]", H1);
    subst(body, sizeof body, v2, arr);
    REFUSED(signed_body(body), "entry 0 is malformed");
    snprintf(arr, sizeof arr,
             "[{\"seq\": 1, \"hash\": \"%s\", \"header_hash\": \"%s\", \"status\": "
             "\"committed\"}, {\"seq\": 2, \"hash\": \"%s\", \"status\": \"rejected\"}]",
             H1, "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100", H1);
    subst(body, sizeof body, v1, arr);
    REFUSED(signed_body(body), "entry 0 is malformed");
    subst(body, sizeof body, v2, arr);
    {
        pf_receipt *r = NULL;
        pf_err e;
        pf_err_clear(&e);
        CHECK(pf_receipt_read(signed_body(body), &fx.central->pub, &r, &e) == 0);
        CHECK_MSG(e.status == PF_OK, "%s", e.msg);
        CHECK(r != NULL && r->n == 2 && r->v[0].has_header_hash && r->v[0].header_hash[0] == 0xff &&
              r->v[0].header_hash[31] == 0x00 && !r->v[1].has_header_hash);
        pf_receipt_free(r);
    }
    REFUSED(signed_body("not json at all"), "receipt content is malformed");
    REFUSED(signed_body(""), "receipt content is malformed");
}

/* ------------------------------------------------------------- the file */

static void test_file_level(void)
{
    pf_receipt *r = (pf_receipt *)1;
    pf_err e;
    char p[PATH_MAX];

    /* missing: an environment error, not a forged receipt */
    snprintf(p, sizeof p, "%s/no-such%s", dir, PF_RECEIPT_SUFFIX);
    pf_err_clear(&e);
    CHECK(pf_receipt_read(p, &fx.central->pub, &r, &e) == -1);
    CHECK(e.status == PF_EENV && r == NULL);

    /* a symbolic link to a genuine receipt is not followed */
    snprintf(p, sizeof p, "%s/link%s", dir, PF_RECEIPT_SUFFIX);
    CHECK(symlink(good, p) == 0);
    r = (pf_receipt *)1;
    pf_err_clear(&e);
    CHECK(pf_receipt_read(p, &fx.central->pub, &r, &e) == -1);
    CHECK_ERR(e, PF_EENV, "symbolic link");
    CHECK(r == NULL);

    /* a directory */
    snprintf(p, sizeof p, "%s/adir%s", dir, PF_RECEIPT_SUFFIX);
    mkdir(p, 0755);
    r = (pf_receipt *)1;
    pf_err_clear(&e);
    CHECK(pf_receipt_read(p, &fx.central->pub, &r, &e) == -1);
    CHECK(r == NULL);

    /* larger than any receipt may be: refused unread */
    snprintf(p, sizeof p, "%s/huge%s", dir, PF_RECEIPT_SUFFIX);
    FILE *f = fopen(p, "wb");
    if (f == NULL)
        exit(2);
    fputs("pcapferry-receipt-v1\n", f);
    fclose(f);
    CHECK(truncate(p, (off_t)PF_RECEIPT_MAX_BYTES + 1) == 0);
    r = (pf_receipt *)1;
    pf_err_clear(&e);
    CHECK(pf_receipt_read(p, &fx.central->pub, &r, &e) == -1);
    CHECK_ERR(e, PF_EREJECT, "too large");
    CHECK(r == NULL);
}

int main(void)
{
    pf_err e;
    if (sodium_init() < 0)
        return 2;
    fx_init(&fx, "receipt");
    pf_err_clear(&e);
    central2 = pf_seckey_generate(PF_ROLE_CENTRAL, "central2", &e);
    if (central2 == NULL) {
        fprintf(stderr, "%s\n", e.msg);
        return 2;
    }
    uint8_t id[PF_KEYID_BYTES];
    pf_key_id(id, fx.central->pub.sign_pk, PF_SIGN_PK_BYTES);
    pf_hex(central_id_hex, id, PF_KEYID_BYTES);
    fx_path(dir, &fx, "receipts");
    mkdir(dir, 0755);

    test_round_trip();
    test_tampering();
    test_bundle_signature_reused();
    test_malformed_signed();
    test_file_level();

    pf_seckey_free(central2);
    fx_free(&fx);
    return check_summary("test_receipt");
}
