/* fuzz_header: the bundle's plaintext header and trailer on arbitrary bytes.
 *
 * pf_header_prefix_len and pf_header_decode see a bundle's first bytes
 * before anything is authenticated. Properties checked:
 *  - a decoded header re-encodes (pf_header_seal) to the same bytes, except
 *    for the signature, and its raw bytes are the input's first raw_len;
 *  - pf_header_prefix_len agrees with pf_header_decode about the length;
 *  - the input's last PF_TRAILER_BYTES go through pf_trailer_check against
 *    the decoded header, with the body hash computed as a reader would, so a
 *    whole (seed) bundle passes and its mutations exercise every check. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pf_header h;
    pf_err e;
    fz_init();
    fz_rng_reset(2);
    pf_err_clear(&e);

    (void)pf_header_prefix_plausible(data, size < PF_HEADER_PREFIX_BYTES ? size : 11);
    size_t total = 0;
    int prc = -1;
    if (size >= PF_HEADER_PREFIX_BYTES) {
        prc = pf_header_prefix_len(data, &total, &e);
        FZ_ASSERT(prc != 0 || (total > PF_HEADER_FIXED_BYTES && total <= PF_HEADER_MAX_BYTES),
                  "prefix length %zu out of bounds", total);
    }
    pf_err_clear(&e);
    int drc = pf_header_decode(data, size, &h, &e);
    fz_note("decode", drc, &e);
    if (drc != 0) {
        FZ_ASSERT(e.status != PF_OK, "decode failed without a status");
        return 0;
    }
    FZ_ASSERT(prc == 0 && total == h.raw_len, "decode took %zu bytes, prefix says %zu", h.raw_len,
              total);
    FZ_ASSERT(h.raw_len <= size && memcmp(h.raw, data, h.raw_len) == 0,
              "raw bytes are not the input's");
    FZ_ASSERT(pf_name_valid(h.sensor), "decoded an invalid sensor name");
    /* The name's length byte is raw[12]; the name may not end early. */
    bool nul_in_name = strlen(h.sensor) != h.raw[12];
    FZ_ASSERT(!nul_in_name || fz_known("header-nul-in-sensor-name"),
              "header accepted with a NUL byte inside its %u-byte sensor name ('%s')", h.raw[12],
              h.sensor);
    if (nul_in_name)
        return 0;

    /* Round trip: the same fields encode to the same bytes. */
    pf_header again = h;
    memset(again.raw, 0, sizeof again.raw);
    FZ_ASSERT(pf_header_seal(&again, fz.sensor->sign_sk, &e) == 0, "re-seal failed: %s", e.msg);
    FZ_ASSERT(again.raw_len == h.raw_len && memcmp(again.raw, h.raw, h.raw_len - PF_SIG_BYTES) == 0,
              "header does not re-encode to its own bytes");
    /* And the re-sealed one verifies with the sensor key and decodes. */
    pf_header back;
    FZ_ASSERT(pf_header_verify(&again, fz.sensor->pub.sign_pk, &e) == 0 ||
                  memcmp(h.signer_id, fz.sensor->pub.key_id, PF_KEYID_BYTES) != 0,
              "re-sealed header does not verify: %s", e.msg);
    FZ_ASSERT(pf_header_decode(again.raw, again.raw_len, &back, &e) == 0,
              "re-sealed header does not decode: %s", e.msg);
    (void)pf_header_verify(&h, fz.sensor->pub.sign_pk, &e);

    /* The trailer: the input's tail, as a reader finds it at the end. */
    if (size >= h.raw_len + PF_TRAILER_BYTES) {
        uint8_t hash[PF_HASH_BYTES];
        size_t body = size - PF_TRAILER_BYTES;
        crypto_generichash(hash, sizeof hash, data, body, NULL, 0);
        pf_err_clear(&e);
        int trc = pf_trailer_check(data + body, &h, body, hash, fz.sensor->pub.sign_pk, &e);
        fz_note("trailer", trc, &e);
    }
    return 0;
}
