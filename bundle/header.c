#include "bundle/header.h"

#include <stdlib.h>
#include <string.h>

#include "common/buf.h"

#define INCOMPLETE_HEADER                                                                          \
    "incomplete: file ends inside the header (still being copied, or truncated)"

/* Signed messages are short (headers, trailers) or bounded (manifests, at
 * most a few MiB), so building ctx || NUL || msg in memory is fine. */
static uint8_t *with_ctx(const char *ctx, const uint8_t *msg, size_t len, size_t *total)
{
    size_t clen = strlen(ctx) + 1;
    uint8_t *buf = malloc(clen + len);
    if (buf == NULL)
        return NULL;
    memcpy(buf, ctx, clen);
    if (len > 0)
        memcpy(buf + clen, msg, len);
    *total = clen + len;
    return buf;
}

void pf_sign_ctx(uint8_t sig[PF_SIG_BYTES], const char *ctx, const uint8_t *msg, size_t len,
                 const uint8_t *sign_sk)
{
    size_t total = 0;
    uint8_t *buf = with_ctx(ctx, msg, len, &total);
    if (buf == NULL || crypto_sign_ed25519_detached(sig, NULL, buf, total, sign_sk) != 0)
        memset(sig, 0, PF_SIG_BYTES); /* an all-zero signature never verifies */
    free(buf);
}

bool pf_verify_ctx(const uint8_t sig[PF_SIG_BYTES], const char *ctx, const uint8_t *msg, size_t len,
                   const uint8_t *sign_pk)
{
    size_t total = 0;
    uint8_t *buf = with_ctx(ctx, msg, len, &total);
    bool ok = buf != NULL && crypto_sign_ed25519_verify_detached(sig, buf, total, sign_pk) == 0;
    free(buf);
    return ok;
}

static void encode_unsigned(pf_wbuf *w, const pf_header *h, size_t total_len)
{
    size_t nlen = strlen(h->sensor);
    pf_wbuf_bytes(w, PF_MAGIC, PF_MAGIC_BYTES);
    pf_wbuf_u8(w, PF_FORMAT_VERSION);
    pf_wbuf_u16(w, (uint16_t)total_len);
    pf_wbuf_u16(w, h->flags);
    pf_wbuf_u8(w, (uint8_t)nlen);
    pf_wbuf_bytes(w, h->sensor, nlen);
    pf_wbuf_bytes(w, h->signer_id, sizeof h->signer_id);
    pf_wbuf_bytes(w, h->recipient_id, sizeof h->recipient_id);
    pf_wbuf_u64(w, h->seq);
    pf_wbuf_u64(w, h->prev_seq);
    pf_wbuf_bytes(w, h->prev_hash, sizeof h->prev_hash);
    pf_wbuf_u64(w, (uint64_t)h->created_ns);
    pf_wbuf_u32(w, h->chunk_size);
    pf_wbuf_u64(w, h->plain_len_max);
    pf_wbuf_bytes(w, h->eph_pk, sizeof h->eph_pk);
    pf_wbuf_bytes(w, h->ss_header, sizeof h->ss_header);
}

int pf_header_seal(pf_header *h, const uint8_t *sign_sk, pf_err *e)
{
    pf_wbuf w;
    size_t total = PF_HEADER_FIXED_BYTES + strlen(h->sensor);
    if (!pf_name_valid(h->sensor))
        return pf_err_set(e, PF_EUSAGE, "invalid sensor name '%s'", h->sensor);
    pf_wbuf_init(&w, h->raw, sizeof h->raw);
    encode_unsigned(&w, h, total);
    if (!pf_wbuf_ok(&w) || w.len + PF_SIG_BYTES != total)
        return pf_err_set(e, PF_EENV, "internal error: header encoding");
    pf_sign_ctx(h->sig, PF_SIGCTX_HEADER, h->raw, w.len, sign_sk);
    pf_wbuf_bytes(&w, h->sig, sizeof h->sig);
    h->raw_len = w.len;
    crypto_generichash(h->hash, sizeof h->hash, h->raw, h->raw_len, NULL, 0);
    return 0;
}

bool pf_header_prefix_plausible(const uint8_t *buf, size_t n)
{
    static const uint8_t magic[PF_MAGIC_BYTES + 1] = {'P', 'C', 'F', 'E',
                                                      'R', 'R', 'Y', PF_FORMAT_VERSION};
    size_t m = n < sizeof magic ? n : sizeof magic;
    return memcmp(buf, magic, m) == 0;
}

int pf_header_prefix_len(const uint8_t prefix[PF_HEADER_PREFIX_BYTES], size_t *total, pf_err *e)
{
    if (memcmp(prefix, PF_MAGIC, PF_MAGIC_BYTES) != 0)
        return pf_err_set(e, PF_EREJECT, "not a pcapferry bundle (bad magic)");
    if (prefix[PF_MAGIC_BYTES] != PF_FORMAT_VERSION)
        return pf_err_set(e, PF_EREJECT, "unsupported bundle format version %u (this is %u)",
                          prefix[PF_MAGIC_BYTES], PF_FORMAT_VERSION);
    size_t len = (size_t)prefix[8] << 8 | prefix[9];
    uint16_t flags = (uint16_t)(prefix[10] << 8 | prefix[11]);
    if (flags != 0)
        return pf_err_set(e, PF_EREJECT, "unknown header flags 0x%04x", flags);
    if (len < PF_HEADER_FIXED_BYTES + 1 || len > PF_HEADER_MAX_BYTES)
        return pf_err_set(e, PF_EREJECT, "bad header length %zu", len);
    *total = len;
    return 0;
}

int pf_header_decode(const uint8_t *buf, size_t len, pf_header *h, pf_err *e)
{
    pf_rbuf r;
    size_t total = 0;
    memset(h, 0, sizeof *h);
    if (len < PF_HEADER_PREFIX_BYTES)
        return pf_err_set(e, PF_EINCOMPLETE, INCOMPLETE_HEADER);
    if (pf_header_prefix_len(buf, &total, e) != 0)
        return -1;
    if (len < total)
        return pf_err_set(e, PF_EINCOMPLETE, INCOMPLETE_HEADER);
    pf_rbuf_init(&r, buf, total);
    pf_rbuf_take(&r, PF_HEADER_PREFIX_BYTES - 2);
    h->flags = pf_rbuf_u16(&r);
    size_t nlen = pf_rbuf_u8(&r);
    if (nlen == 0 || nlen > PF_NAME_MAX || total != PF_HEADER_FIXED_BYTES + nlen)
        return pf_err_set(e, PF_EREJECT, "header length does not match its sensor name length");
    pf_rbuf_copy(&r, h->sensor, nlen);
    h->sensor[nlen] = '\0';
    /* A NUL inside would make two different headers name one sensor. */
    if (strlen(h->sensor) != nlen)
        return pf_err_set(e, PF_EREJECT, "header names an invalid sensor name");
    pf_rbuf_copy(&r, h->signer_id, sizeof h->signer_id);
    pf_rbuf_copy(&r, h->recipient_id, sizeof h->recipient_id);
    h->seq = pf_rbuf_u64(&r);
    h->prev_seq = pf_rbuf_u64(&r);
    pf_rbuf_copy(&r, h->prev_hash, sizeof h->prev_hash);
    h->created_ns = (int64_t)pf_rbuf_u64(&r);
    h->chunk_size = pf_rbuf_u32(&r);
    h->plain_len_max = pf_rbuf_u64(&r);
    pf_rbuf_copy(&r, h->eph_pk, sizeof h->eph_pk);
    pf_rbuf_copy(&r, h->ss_header, sizeof h->ss_header);
    pf_rbuf_copy(&r, h->sig, sizeof h->sig);
    if (!pf_rbuf_ok(&r) || pf_rbuf_left(&r) != 0)
        return pf_err_set(e, PF_EREJECT, "malformed header");
    if (!pf_name_valid(h->sensor))
        return pf_err_set(e, PF_EREJECT, "header names an invalid sensor name");
    if (h->seq == 0)
        return pf_err_set(e, PF_EREJECT, "header has sequence number 0");
    uint8_t zero[PF_HASH_BYTES] = {0};
    bool no_prev_hash = sodium_memcmp(h->prev_hash, zero, sizeof zero) == 0;
    if (h->prev_seq >= h->seq || (h->prev_seq == 0) != no_prev_hash)
        return pf_err_set(e, PF_EREJECT, "header has an inconsistent previous-bundle link");
    if (h->chunk_size < PF_CHUNK_MIN_BYTES || h->chunk_size > PF_CHUNK_MAX_BYTES)
        return pf_err_set(e, PF_EREJECT, "header has chunk size %u outside %u..%u", h->chunk_size,
                          PF_CHUNK_MIN_BYTES, PF_CHUNK_MAX_BYTES);
    if (h->plain_len_max == 0 || h->plain_len_max > PF_PLAIN_MAX_BYTES)
        return pf_err_set(e, PF_EREJECT, "header declares an impossible content size");
    memcpy(h->raw, buf, total);
    h->raw_len = total;
    crypto_generichash(h->hash, sizeof h->hash, h->raw, h->raw_len, NULL, 0);
    return 0;
}

int pf_header_verify(const pf_header *h, const uint8_t sign_pk[PF_SIGN_PK_BYTES], pf_err *e)
{
    uint8_t id[PF_KEYID_BYTES];
    pf_key_id(id, sign_pk, PF_SIGN_PK_BYTES);
    if (sodium_memcmp(id, h->signer_id, sizeof id) != 0)
        return pf_err_set(e, PF_EREJECT, "header names another signing key");
    if (h->raw_len < PF_SIG_BYTES ||
        !pf_verify_ctx(h->sig, PF_SIGCTX_HEADER, h->raw, h->raw_len - PF_SIG_BYTES, sign_pk))
        return pf_err_set(e, PF_EREJECT, "header signature is invalid (forged or modified)");
    return 0;
}

int pf_header_verify_proof(const pf_header *h, const uint8_t sign_pk[PF_SIGN_PK_BYTES],
                           pf_header_proof *proof, pf_err *e)
{
    memset(proof, 0, sizeof *proof);
    if (pf_header_verify(h, sign_pk, e) != 0)
        return -1;
    /* the hash of the bytes just verified, not the one the struct carries:
     * a caller may have built h by hand */
    crypto_generichash(proof->hash, sizeof proof->hash, h->raw, h->raw_len, NULL, 0);
    memcpy(proof->sign_pk, sign_pk, sizeof proof->sign_pk);
    proof->valid = true;
    return 0;
}

bool pf_header_proof_covers(const pf_header_proof *proof, const pf_header *h,
                            const uint8_t sign_pk[PF_SIGN_PK_BYTES])
{
    uint8_t hash[PF_HASH_BYTES];
    if (proof == NULL || !proof->valid || h->raw_len > sizeof h->raw)
        return false;
    /* hashed here from the bytes the signature check would read */
    crypto_generichash(hash, sizeof hash, h->raw, h->raw_len, NULL, 0);
    return sodium_memcmp(hash, proof->hash, sizeof hash) == 0 &&
           sodium_memcmp(sign_pk, proof->sign_pk, PF_SIGN_PK_BYTES) == 0;
}

int pf_header_verify_once(const pf_header *h, const uint8_t sign_pk[PF_SIGN_PK_BYTES],
                          const pf_header_proof *proof, pf_err *e)
{
    if (pf_header_proof_covers(proof, h, sign_pk))
        return 0;
    return pf_header_verify(h, sign_pk, e);
}

static size_t trailer_signed_part(uint8_t *out, const pf_header *h, const uint8_t *trailer)
{
    /* trailer fields || header hash: ties the trailer to this header. */
    size_t n = PF_TRAILER_BYTES - PF_SIG_BYTES;
    memcpy(out, trailer, n);
    memcpy(out + n, h->hash, PF_HASH_BYTES);
    return n + PF_HASH_BYTES;
}

void pf_trailer_build(uint8_t out[PF_TRAILER_BYTES], const pf_header *h, uint64_t body_len,
                      const uint8_t file_hash[PF_HASH_BYTES], const uint8_t *sign_sk)
{
    uint8_t msg[PF_TRAILER_BYTES + PF_HASH_BYTES];
    memcpy(out, PF_TRAILER_MAGIC, PF_TRAILER_MAGIC_BYTES);
    pf_store_u64(out + PF_TRAILER_MAGIC_BYTES, body_len);
    memcpy(out + PF_TRAILER_HASH_OFFSET, file_hash, PF_HASH_BYTES);
    size_t mlen = trailer_signed_part(msg, h, out);
    pf_sign_ctx(out + PF_TRAILER_BYTES - PF_SIG_BYTES, PF_SIGCTX_TRAILER, msg, mlen, sign_sk);
}

int pf_trailer_check(const uint8_t in[PF_TRAILER_BYTES], const pf_header *h, uint64_t body_len,
                     const uint8_t file_hash[PF_HASH_BYTES],
                     const uint8_t sign_pk[PF_SIGN_PK_BYTES], pf_err *e)
{
    uint8_t msg[PF_TRAILER_BYTES + PF_HASH_BYTES];
    if (memcmp(in, PF_TRAILER_MAGIC, PF_TRAILER_MAGIC_BYTES) != 0)
        return pf_err_set(e, PF_EREJECT, "trailer is damaged (bad trailer magic)");
    if (pf_load_u64(in + PF_TRAILER_MAGIC_BYTES) != body_len)
        return pf_err_set(e, PF_EREJECT, "trailer length field does not match the bundle");
    if (sodium_memcmp(in + PF_TRAILER_HASH_OFFSET, file_hash, PF_HASH_BYTES) != 0)
        return pf_err_set(
            e, PF_EREJECT,
            "trailer hash does not match the bundle's bytes (modified after sealing)");
    size_t mlen = trailer_signed_part(msg, h, in);
    if (!pf_verify_ctx(in + PF_TRAILER_BYTES - PF_SIG_BYTES, PF_SIGCTX_TRAILER, msg, mlen, sign_pk))
        return pf_err_set(e, PF_EREJECT, "trailer signature is invalid (forged or modified)");
    return 0;
}
