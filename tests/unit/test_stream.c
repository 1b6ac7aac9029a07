/* The sealed stream below the tar layer: round trips across chunk
 * boundaries, the zstd window bound, the content bound, and keys. */
#include "fixture.h"
#include "bundle/hasher.h"

static fixture fx;

/* Seals content into path; returns 0 on success. */
static int seal(const char *path, const uint8_t *data, size_t len, pf_seal_params *p,
                const pf_pubkey *central)
{
    pf_err e;
    uint8_t hash[PF_HASH_BYTES];
    pf_err_clear(&e);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    pf_sealer *s = pf_sealer_new(fx.sensor, central, p, fd, path, &e);
    int rc = -1;
    if (s == NULL)
        goto out;
    /* odd-sized writes exercise the chunking */
    for (size_t off = 0; off < len;) {
        size_t n = len - off < 777 ? len - off : 777;
        if (pf_sealer_write(s, data + off, n, &e) != 0)
            goto out;
        off += n;
    }
    rc = pf_sealer_finish(s, hash, NULL, &e);
out:
    if (rc != 0)
        fprintf(stderr, "seal: %s\n", e.msg);
    pf_sealer_free(s);
    close(fd);
    return rc;
}

static void params(pf_seal_params *p, uint64_t bound)
{
    memset(p, 0, sizeof *p);
    p->seq = 1;
    p->created_ns = 1;
    p->chunk_size = PF_CHUNK_MIN_BYTES;
    p->plain_len_max = bound;
    p->level = 1;
}

static pf_unseal_ctx *reuse; /* when set, every unseal borrows from it */

/* Reads the whole content back; returns bytes read or -1 with e set.
 * With proof, the header signature check is the one proof may spare; with
 * from_trailer, the bundle hash comes from the verified trailer; hash (may
 * be NULL) gets the bundle hash either way. */
static ssize_t unseal_full(const char *path, uint8_t *out, size_t cap, const pf_header_proof *proof,
                           bool from_trailer, uint8_t *hash, pf_err *e)
{
    pf_trust t;
    ssize_t total = -1;
    int fd = open(path, O_RDONLY);
    pf_err_clear(e);
    pf_unsealer *u = pf_unsealer_new_ctx(fd, path, reuse, e);
    if (u == NULL)
        goto out;
    if (from_trailer)
        pf_unsealer_hash_from_trailer(u);
    if (pf_keyring_lookup(fx.keyring, pf_unsealer_header(u)->signer_id, &t, e) != 0 ||
        pf_unsealer_begin_proved(u, &t.key, fx.central, proof, e) != 0)
        goto out;
    size_t got = 0;
    for (;;) {
        uint8_t buf[1000];
        ssize_t n = pf_unsealer_read(u, buf, sizeof buf, e);
        if (n < 0)
            goto out;
        if (n == 0)
            break;
        if (got + (size_t)n > cap) {
            pf_err_set(e, PF_EENV, "test buffer too small");
            goto out;
        }
        memcpy(out + got, buf, (size_t)n);
        got += (size_t)n;
    }
    total = (ssize_t)got;
    if (hash != NULL)
        pf_unsealer_result(u, hash, NULL);
out:
    pf_unsealer_free(u);
    close(fd);
    return total;
}

static ssize_t unseal_proved(const char *path, uint8_t *out, size_t cap,
                             const pf_header_proof *proof, pf_err *e)
{
    return unseal_full(path, out, cap, proof, false, NULL, e);
}

static ssize_t unseal_hash(const char *path, uint8_t *out, size_t cap, bool from_trailer,
                           uint8_t *hash, pf_err *e)
{
    return unseal_full(path, out, cap, NULL, from_trailer, hash, e);
}

static ssize_t unseal(const char *path, uint8_t *out, size_t cap, pf_err *e)
{
    return unseal_full(path, out, cap, NULL, false, NULL, e);
}

/* The header of the bundle at path, as a reader decodes it. */
static int read_header(const char *path, pf_header *h)
{
    pf_err e;
    pf_err_clear(&e);
    int fd = open(path, O_RDONLY);
    pf_unsealer *u = pf_unsealer_new(fd, path, &e);
    if (u != NULL)
        *h = *pf_unsealer_header(u);
    pf_unsealer_free(u);
    close(fd);
    return u != NULL ? 0 : -1;
}

static void flip_byte(const char *path, off_t at)
{
    uint8_t b;
    int fd = open(path, O_RDWR);
    CHECK(pread(fd, &b, 1, at) == 1);
    b ^= 0x40;
    CHECK(pwrite(fd, &b, 1, at) == 1);
    close(fd);
}

/* Taking the bundle hash from the trailer (the importer's way) refuses
 * everything hashing refuses, except a trailer its signer re-signed with
 * another hash: that one the AEAD cannot see, which is why receipts name
 * the header hash too (test_receipt, import_hostile.sh). */
static void test_hash_from_trailer(const uint8_t *data, size_t len, uint8_t *back)
{
    char path[PATH_MAX], bad[PATH_MAX];
    pf_seal_params p;
    pf_err e;
    uint8_t sealed_hash[PF_HASH_BYTES], h1[PF_HASH_BYTES], h2[PF_HASH_BYTES];
    fx_path(path, &fx, "t.bin");
    fx_path(bad, &fx, "t-bad.bin");
    params(&p, len + 1);
    {
        pf_err_clear(&e);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        pf_sealer *s = pf_sealer_new(fx.sensor, &fx.central->pub, &p, fd, path, &e);
        CHECK(s != NULL && pf_sealer_write(s, data, len, &e) == 0 &&
              pf_sealer_finish(s, sealed_hash, NULL, &e) == 0);
        pf_sealer_free(s);
        close(fd);
    }
    CHECK(unseal_hash(path, back, len + 1, false, h1, &e) == (ssize_t)len);
    CHECK(unseal_hash(path, back, len + 1, true, h2, &e) == (ssize_t)len);
    CHECK(memcmp(back, data, len) == 0);
    CHECK(memcmp(h1, sealed_hash, sizeof h1) == 0 && memcmp(h2, sealed_hash, sizeof h2) == 0);

    size_t blen;
    uint8_t *b = fx_slurp(path, &blen);
    size_t hlen = 0;
    pf_header h;
    CHECK(pf_header_prefix_len(b, &hlen, &e) == 0 && pf_header_decode(b, hlen, &h, &e) == 0);
    size_t toff = blen - PF_TRAILER_BYTES;
    /* every ciphertext byte, the length fields and the end marker: the chunk
     * AEAD (or the framing) refuses, with no hash computed */
    for (size_t pos = hlen; pos < toff; pos += 97) {
        b[pos] ^= 0x04;
        fx_spit(bad, b, blen);
        b[pos] ^= 0x04;
        CHECK_MSG(unseal_hash(bad, back, len + 1, true, NULL, &e) < 0, "byte %zu", pos);
        CHECK_MSG(e.status == PF_EREJECT || e.status == PF_EINCOMPLETE, "byte %zu: %s", pos, e.msg);
    }
    /* the trailer's hash field: its signature covers it */
    b[toff + PF_TRAILER_HASH_OFFSET + 5] ^= 0x01;
    fx_spit(bad, b, blen);
    b[toff + PF_TRAILER_HASH_OFFSET + 5] ^= 0x01;
    CHECK(unseal_hash(bad, back, len + 1, false, NULL, &e) < 0);
    CHECK_ERR(e, PF_EREJECT, "trailer hash does not match");
    CHECK(unseal_hash(bad, back, len + 1, true, NULL, &e) < 0);
    CHECK_ERR(e, PF_EREJECT, "trailer signature is invalid");
    /* a trailer re-signed by the sensor's key, naming another hash: only
     * hashing sees it; from the trailer, the claim is what comes back */
    uint8_t other[PF_HASH_BYTES];
    memset(other, 0xab, sizeof other);
    pf_trailer_build(b + toff, &h, toff, other, fx.sensor->sign_sk);
    fx_spit(bad, b, blen);
    CHECK(unseal_hash(bad, back, len + 1, false, NULL, &e) < 0);
    CHECK_ERR(e, PF_EREJECT, "trailer hash does not match");
    CHECK(unseal_hash(bad, back, len + 1, true, h2, &e) == (ssize_t)len);
    CHECK(memcmp(h2, other, sizeof other) == 0);
    /* ...but its length field it cannot move: the body is what it is */
    pf_trailer_build(b + toff, &h, toff - 1, sealed_hash, fx.sensor->sign_sk);
    fx_spit(bad, b, blen);
    CHECK(unseal_hash(bad, back, len + 1, true, NULL, &e) < 0);
    CHECK_ERR(e, PF_EREJECT, "trailer length field");
    free(b);
}

int main(void)
{
    pf_err e;
    pf_seal_params p;
    char path[PATH_MAX];
    if (sodium_init() < 0)
        return 2;
    fx_init(&fx, "stream");
    fx_path(path, &fx, "s.bin");
    size_t big = 6 * PF_CHUNK_MIN_BYTES + 123;
    uint8_t *data = malloc(big), *back = malloc(big + 1);
    randombytes_buf_deterministic(data, big, (const uint8_t *)"0123456789abcdef0123456789abcdef");

    const size_t sizes[] = {0, 1, 4095, 4096, 4097, 3 * 4096 + 5, big};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        params(&p, sizes[i] + 1);
        CHECK(seal(path, data, sizes[i], &p, &fx.central->pub) == 0);
        ssize_t n = unseal(path, back, big + 1, &e);
        CHECK_MSG(n == (ssize_t)sizes[i] && memcmp(back, data, sizes[i]) == 0,
                  "size %zu: got %zd (%s)", sizes[i], n, e.msg);
    }
    /* with workers, the output is still one valid stream */
    params(&p, big);
    p.workers = 2;
    CHECK(seal(path, data, big, &p, &fx.central->pub) == 0);
    CHECK(unseal(path, back, big + 1, &e) == (ssize_t)big && memcmp(back, data, big) == 0);

    test_hash_from_trailer(data, 3 * PF_CHUNK_MIN_BYTES + 11, back);

    /* Over 1 MiB of bundle the reader runs on a thread of its own, with
     * every pipe buffer in flight (4 KiB chunks); below, in the caller's
     * thread: both paths read the same content and refuse the same damage. */
    size_t huge = (3u << 19) + 4321;
    uint8_t *hdata = malloc(huge), *hback = malloc(huge + 1);
    randombytes_buf_deterministic(hdata, huge, (const uint8_t *)"abcdef0123456789abcdef0123456789");
    params(&p, huge);
    CHECK(seal(path, hdata, huge, &p, &fx.central->pub) == 0);
    struct stat sb;
    CHECK(stat(path, &sb) == 0 && sb.st_size > (off_t)PF_HASHER_THREAD_MIN_BYTES);
    ssize_t hn = unseal(path, hback, huge + 1, &e);
    CHECK_MSG(hn == (ssize_t)huge && memcmp(hback, hdata, huge) == 0, "threaded: got %zd (%s)", hn,
              e.msg);
    flip_byte(path, sb.st_size / 2);
    CHECK(unseal(path, hback, huge + 1, &e) < 0);
    CHECK_ERR(e, PF_EREJECT, "fails authentication");
    params(&p, big);
    CHECK(seal(path, data, big, &p, &fx.central->pub) == 0);
    CHECK(stat(path, &sb) == 0 && sb.st_size < (off_t)PF_HASHER_THREAD_MIN_BYTES);
    flip_byte(path, sb.st_size / 2);
    CHECK(unseal(path, back, big + 1, &e) < 0);
    CHECK_ERR(e, PF_EREJECT, "fails authentication");
    free(hdata);
    free(hback);

    /* A proof of the header spares the unsealer only that header under that
     * key: a forged header with the genuine header's proof is refused. */
    pf_header genuine;
    pf_header_proof proof;
    params(&p, big);
    CHECK(seal(path, data, big, &p, &fx.central->pub) == 0);
    CHECK(read_header(path, &genuine) == 0);
    pf_err_clear(&e);
    CHECK(pf_header_verify_proof(&genuine, fx.sensor->pub.sign_pk, &proof, &e) == 0);
    CHECK(unseal_proved(path, back, big + 1, &proof, &e) == (ssize_t)big &&
          memcmp(back, data, big) == 0);
    flip_byte(path, (off_t)genuine.raw_len - 1); /* the header signature */
    CHECK(unseal_proved(path, back, big + 1, &proof, &e) < 0);
    CHECK_ERR(e, PF_EREJECT, "header signature is invalid");
    /* ... and so is one whose proof names another key */
    pf_header forged;
    CHECK(read_header(path, &forged) == 0);
    proof.valid = true;
    crypto_generichash(proof.hash, sizeof proof.hash, forged.raw, forged.raw_len, NULL, 0);
    memcpy(proof.sign_pk, fx.central->pub.sign_pk, sizeof proof.sign_pk);
    CHECK(unseal_proved(path, back, big + 1, &proof, &e) < 0);
    CHECK_ERR(e, PF_EREJECT, "header signature is invalid");

    /* One reused context for bundle after bundle: a failure (tampered
     * chunk, bomb) in between leaves nothing behind for the next one, a
     * larger chunk size gets larger buffers, and a second unsealer while
     * one borrows makes its own parts. */
    reuse = pf_unseal_ctx_new();
    CHECK(reuse != NULL);
    for (int round = 0; round < 2; round++) {
        params(&p, big);
        p.chunk_size = round == 0 ? PF_CHUNK_MIN_BYTES : 4 * PF_CHUNK_MIN_BYTES;
        CHECK(seal(path, data, big, &p, &fx.central->pub) == 0);
        ssize_t n = unseal(path, back, big + 1, &e);
        CHECK_MSG(n == (ssize_t)big && memcmp(back, data, big) == 0, "reused, round %d: %s", round,
                  e.msg);
        CHECK(stat(path, &sb) == 0);
        flip_byte(path, sb.st_size / 2);
        CHECK(unseal(path, back, big + 1, &e) < 0);
        CHECK_ERR(e, PF_EREJECT, "fails authentication");
    }
    params(&p, big);
    CHECK(seal(path, data, big, &p, &fx.central->pub) == 0);
    int fd1 = open(path, O_RDONLY), fd2 = open(path, O_RDONLY);
    pf_err e2;
    pf_err_clear(&e);
    pf_err_clear(&e2);
    pf_unsealer *u1 = pf_unsealer_new_ctx(fd1, path, reuse, &e);
    pf_unsealer *u2 = pf_unsealer_new_ctx(fd2, path, reuse, &e2);
    pf_trust tr;
    CHECK(u1 != NULL && u2 != NULL);
    CHECK(pf_keyring_lookup(fx.keyring, pf_unsealer_header(u1)->signer_id, &tr, &e) == 0);
    CHECK(pf_unsealer_begin(u1, &tr.key, fx.central, &e) == 0);
    CHECK(pf_unsealer_begin(u2, &tr.key, fx.central, &e2) == 0);
    size_t got1 = 0, got2 = 0;
    for (bool more = true; more;) {
        uint8_t b1[700], b2[900];
        ssize_t n1 = pf_unsealer_read(u1, b1, sizeof b1, &e);
        ssize_t n2 = pf_unsealer_read(u2, b2, sizeof b2, &e2);
        CHECK(n1 >= 0 && n2 >= 0);
        if (n1 > 0) {
            CHECK(got1 + (size_t)n1 <= big && memcmp(b1, data + got1, (size_t)n1) == 0);
            got1 += (size_t)n1;
        }
        if (n2 > 0) {
            CHECK(got2 + (size_t)n2 <= big && memcmp(b2, data + got2, (size_t)n2) == 0);
            got2 += (size_t)n2;
        }
        more = n1 > 0 || n2 > 0;
    }
    CHECK(got1 == big && got2 == big);
    pf_unsealer_free(u1);
    pf_unsealer_free(u2);
    close(fd1);
    close(fd2);
    CHECK(unseal(path, back, big + 1, &e) == (ssize_t)big && memcmp(back, data, big) == 0);
    pf_unseal_ctx_free(reuse);
    reuse = NULL;

    /* the sealer itself refuses to exceed its declared bound */
    params(&p, 100);
    pf_err_clear(&e);
    int fd = open(path, O_WRONLY | O_TRUNC);
    pf_sealer *s = pf_sealer_new(fx.sensor, &fx.central->pub, &p, fd, path, &e);
    CHECK(s != NULL && pf_sealer_write(s, data, 101, &e) != 0);
    CHECK_ERR(e, PF_EENV, "exceeds the size declared");
    pf_sealer_free(s);
    close(fd);

    /* a lying sealer: more content than declared is a decompression bomb */
    params(&p, 4096);
    p.test_exceed_bound = true;
    memset(data, 0, big);
    CHECK(seal(path, data, big, &p, &fx.central->pub) == 0);
    CHECK(unseal(path, back, big + 1, &e) < 0);
    CHECK_ERR(e, PF_EREJECT, "decompression bomb");

    /* a frame that needs a window beyond 2^23 is refused before zstd
     * allocates it */
    params(&p, big);
    p.test_window_log = 27;
    CHECK(seal(path, data, big, &p, &fx.central->pub) == 0);
    CHECK(unseal(path, back, big + 1, &e) < 0);
    CHECK_ERR(e, PF_EREJECT, "does not decompress");

    /* sealing needs a sensor key and a central key, in that order */
    params(&p, 10);
    pf_err_clear(&e);
    CHECK(pf_sealer_new(fx.sensor, &fx.sensor->pub, &p, -1, path, &e) == NULL);
    CHECK_ERR(e, PF_EUSAGE, "central key");
    /* a central key whose X25519 half is a low-order point */
    pf_pubkey weak = fx.central->pub;
    memset(weak.box_pk, 0, sizeof weak.box_pk);
    pf_err_clear(&e);
    fd = open(path, O_WRONLY | O_TRUNC);
    CHECK(pf_sealer_new(fx.sensor, &weak, &p, fd, path, &e) == NULL);
    CHECK_ERR(e, PF_EREJECT, "key agreement");
    close(fd);
    /* invalid parameters */
    params(&p, 10);
    p.seq = 0;
    pf_err_clear(&e);
    CHECK(pf_sealer_new(fx.sensor, &fx.central->pub, &p, -1, path, &e) == NULL);
    CHECK_ERR(e, PF_EUSAGE, "invalid sealing parameters");

    free(data);
    free(back);
    fx_free(&fx);
    return check_summary("test_stream");
}
