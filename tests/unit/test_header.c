/* Header encode/decode, field validation, signatures and domain
 * separation. */
#include "fixture.h"

static pf_seckey *sensor;

static void make(pf_header *h)
{
    memset(h, 0, sizeof *h);
    snprintf(h->sensor, sizeof h->sensor, "plant-7");
    memcpy(h->signer_id, sensor->pub.key_id, PF_KEYID_BYTES);
    memset(h->recipient_id, 0x42, PF_KEYID_BYTES);
    h->seq = 12;
    h->prev_seq = 11;
    memset(h->prev_hash, 0x11, PF_HASH_BYTES);
    h->created_ns = 1700000000123456789LL;
    h->chunk_size = PF_CHUNK_DEFAULT_BYTES;
    h->plain_len_max = 123456789;
    memset(h->eph_pk, 0x33, sizeof h->eph_pk);
    memset(h->ss_header, 0x44, sizeof h->ss_header);
}

/* Re-signs after editing a field, so only the structural check can catch
 * the problem. */
static int decode_edited(void (*edit)(pf_header *), pf_err *e)
{
    pf_header h, out;
    make(&h);
    edit(&h);
    pf_err_clear(e);
    if (pf_header_seal(&h, sensor->sign_sk, e) != 0)
        return -1;
    return pf_header_decode(h.raw, h.raw_len, &out, e);
}

static void seq0(pf_header *h)
{
    h->seq = 0;
}
static void prev_ahead(pf_header *h)
{
    h->prev_seq = h->seq;
}
static void prev_no_hash(pf_header *h)
{
    memset(h->prev_hash, 0, PF_HASH_BYTES);
}
static void hash_no_prev(pf_header *h)
{
    h->prev_seq = 0;
}
static void chunk_small(pf_header *h)
{
    h->chunk_size = PF_CHUNK_MIN_BYTES - 1;
}
static void chunk_big(pf_header *h)
{
    h->chunk_size = PF_CHUNK_MAX_BYTES + 1;
}
static void plain_zero(pf_header *h)
{
    h->plain_len_max = 0;
}
static void plain_huge(pf_header *h)
{
    h->plain_len_max = PF_PLAIN_MAX_BYTES + 1;
}
static void flags_set(pf_header *h)
{
    h->flags = 1;
}

int main(void)
{
    pf_err e;
    pf_header h, d;
    if (sodium_init() < 0)
        return 2;
    pf_err_clear(&e);
    sensor = pf_seckey_generate(PF_ROLE_SENSOR, "plant-7", &e);

    make(&h);
    CHECK(pf_header_seal(&h, sensor->sign_sk, &e) == 0);
    CHECK(h.raw_len == PF_HEADER_FIXED_BYTES + strlen("plant-7"));
    CHECK(memcmp(h.raw, "PCFERRY\x01", 8) == 0);
    CHECK(pf_header_decode(h.raw, h.raw_len, &d, &e) == 0);
    CHECK(strcmp(d.sensor, "plant-7") == 0 && d.seq == 12 && d.prev_seq == 11 &&
          d.created_ns == h.created_ns && d.chunk_size == h.chunk_size &&
          d.plain_len_max == h.plain_len_max && memcmp(d.hash, h.hash, 32) == 0 &&
          memcmp(d.eph_pk, h.eph_pk, 32) == 0 && memcmp(d.ss_header, h.ss_header, 24) == 0);
    CHECK(pf_header_verify(&d, sensor->pub.sign_pk, &e) == 0);

    /* short input is "incomplete", never a crash */
    for (size_t n = 0; n < h.raw_len; n++) {
        pf_err_clear(&e);
        CHECK(pf_header_decode(h.raw, n, &d, &e) != 0 && e.status != PF_OK);
    }
    pf_err_clear(&e);
    CHECK(pf_header_decode(h.raw, 20, &d, &e) != 0 && e.status == PF_EINCOMPLETE);

    /* each structural rule, with a valid signature */
    struct {
        void (*edit)(pf_header *);
        const char *needle;
    } cases[] = {
        {seq0, "sequence number 0"},
        {prev_ahead, "inconsistent previous-bundle link"},
        {prev_no_hash, "inconsistent previous-bundle link"},
        {hash_no_prev, "inconsistent previous-bundle link"},
        {chunk_small, "chunk size"},
        {chunk_big, "chunk size"},
        {plain_zero, "impossible content size"},
        {plain_huge, "impossible content size"},
        {flags_set, "unknown header flags"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CHECK(decode_edited(cases[i].edit, &e) != 0);
        CHECK_ERR(e, PF_EREJECT, cases[i].needle);
    }

    /* a NUL inside the sensor name (found by fuzz_header): two different
     * headers must never name the same sensor */
    make(&h);
    CHECK(pf_header_seal(&h, sensor->sign_sk, &e) == 0);
    uint8_t nul[PF_HEADER_MAX_BYTES];
    memcpy(nul, h.raw, h.raw_len);
    nul[13 + 2] = '\0'; /* "pl\0nt-7" */
    pf_err_clear(&e);
    CHECK(pf_header_decode(nul, h.raw_len, &d, &e) != 0);
    CHECK_ERR(e, PF_EREJECT, "invalid sensor name");

    /* an unknown format version */
    uint8_t raw[PF_HEADER_MAX_BYTES];
    memcpy(raw, h.raw, h.raw_len);
    raw[7] = 2;
    pf_err_clear(&e);
    CHECK(pf_header_decode(raw, h.raw_len, &d, &e) != 0);
    CHECK_ERR(e, PF_EREJECT, "unsupported bundle format version 2");

    /* the signature of one kind of object never verifies as another */
    uint8_t sig[PF_SIG_BYTES];
    const uint8_t msg[] = "same bytes";
    pf_sign_ctx(sig, PF_SIGCTX_HEADER, msg, sizeof msg, sensor->sign_sk);
    CHECK(pf_verify_ctx(sig, PF_SIGCTX_HEADER, msg, sizeof msg, sensor->pub.sign_pk));
    CHECK(!pf_verify_ctx(sig, PF_SIGCTX_MANIFEST, msg, sizeof msg, sensor->pub.sign_pk));
    CHECK(!pf_verify_ctx(sig, PF_SIGCTX_TRAILER, msg, sizeof msg, sensor->pub.sign_pk));
    CHECK(!pf_verify_ctx(sig, PF_SIGCTX_HEADER, msg, sizeof msg - 1, sensor->pub.sign_pk));

    /* another key: the signer id no longer matches */
    pf_seckey *other = pf_seckey_generate(PF_ROLE_SENSOR, "x", &e);
    pf_err_clear(&e);
    CHECK(pf_header_verify(&h, other->pub.sign_pk, &e) != 0);
    CHECK_ERR(e, PF_EREJECT, "another signing key");

    /* A proof covers exactly the header bytes it was made for, under the
     * key it was made with; anything else is verified in full. */
    pf_header_proof proof, forged_proof;
    pf_err_clear(&e);
    CHECK(pf_header_verify_proof(&h, sensor->pub.sign_pk, &proof, &e) == 0 && proof.valid);
    CHECK(pf_header_proof_covers(&proof, &h, sensor->pub.sign_pk));
    CHECK(!pf_header_proof_covers(&proof, &h, other->pub.sign_pk));
    CHECK(!pf_header_proof_covers(NULL, &h, sensor->pub.sign_pk));
    CHECK(pf_header_verify_once(&h, sensor->pub.sign_pk, &proof, &e) == 0);
    /* a failed verification proves nothing */
    pf_err_clear(&e);
    CHECK(pf_header_verify_proof(&h, other->pub.sign_pk, &forged_proof, &e) != 0);
    CHECK(!forged_proof.valid && !pf_header_proof_covers(&forged_proof, &h, other->pub.sign_pk));
    /* a header one signature byte away from the proved one: refused */
    pf_header forged;
    memcpy(raw, h.raw, h.raw_len);
    raw[h.raw_len - 1] ^= 1;
    pf_err_clear(&e);
    CHECK(pf_header_decode(raw, h.raw_len, &forged, &e) == 0);
    CHECK(!pf_header_proof_covers(&proof, &forged, sensor->pub.sign_pk));
    pf_err_clear(&e);
    CHECK(pf_header_verify_once(&forged, sensor->pub.sign_pk, &proof, &e) != 0);
    CHECK_ERR(e, PF_EREJECT, "header signature is invalid");
    /* a signed field changed (the seq), the signature kept: refused */
    memcpy(raw, h.raw, h.raw_len);
    raw[PF_HEADER_PREFIX_BYTES + 1 + strlen("plant-7") + 2 * PF_KEYID_BYTES + 7] ^= 2;
    pf_err_clear(&e);
    CHECK(pf_header_decode(raw, h.raw_len, &forged, &e) == 0 && forged.seq != h.seq);
    pf_err_clear(&e);
    CHECK(pf_header_verify_once(&forged, sensor->pub.sign_pk, &proof, &e) != 0);
    CHECK_ERR(e, PF_EREJECT, "header signature is invalid");
    /* the hash a header struct carries is not taken on trust: a struct
     * whose hash field claims the proved header's is hashed again */
    memcpy(forged.hash, h.hash, sizeof forged.hash);
    CHECK(!pf_header_proof_covers(&proof, &forged, sensor->pub.sign_pk));
    pf_err_clear(&e);
    CHECK(pf_header_verify_once(&forged, sensor->pub.sign_pk, &proof, &e) != 0);
    CHECK_ERR(e, PF_EREJECT, "header signature is invalid");
    /* a proof for another key does not cover the genuine header either */
    forged_proof = proof;
    memcpy(forged_proof.sign_pk, other->pub.sign_pk, sizeof forged_proof.sign_pk);
    CHECK(!pf_header_proof_covers(&forged_proof, &h, sensor->pub.sign_pk));

    /* trailer round trip and each field */
    uint8_t tr[PF_TRAILER_BYTES], fh[PF_HASH_BYTES];
    memset(fh, 0x5a, sizeof fh);
    pf_trailer_build(tr, &h, 1000, fh, sensor->sign_sk);
    pf_err_clear(&e);
    CHECK(pf_trailer_check(tr, &h, 1000, fh, sensor->pub.sign_pk, &e) == 0);
    CHECK(pf_trailer_check(tr, &h, 1001, fh, sensor->pub.sign_pk, &e) != 0);
    CHECK_ERR(e, PF_EREJECT, "length field");
    fh[0] ^= 1;
    pf_err_clear(&e);
    CHECK(pf_trailer_check(tr, &h, 1000, fh, sensor->pub.sign_pk, &e) != 0);
    CHECK_ERR(e, PF_EREJECT, "hash does not match");
    /* a trailer is bound to its header */
    pf_header h2 = h;
    h2.hash[0] ^= 1;
    fh[0] ^= 1;
    pf_err_clear(&e);
    CHECK(pf_trailer_check(tr, &h2, 1000, fh, sensor->pub.sign_pk, &e) != 0);
    CHECK_ERR(e, PF_EREJECT, "trailer signature is invalid");

    pf_seckey_free(other);
    pf_seckey_free(sensor);
    return check_summary("test_header");
}
