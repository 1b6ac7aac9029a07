/* The bundle's plaintext header and trailer (see docs/FORMAT.md). */
#ifndef PF_HEADER_H
#define PF_HEADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/pf_err.h"
#include "keys/keyfile.h"

#define PF_MAGIC          "PCFERRY"
#define PF_MAGIC_BYTES    7
#define PF_FORMAT_VERSION 1
/* magic+version, header_len, flags: enough to know how much more to read */
#define PF_HEADER_PREFIX_BYTES 12
#define PF_HEADER_FIXED_BYTES  233 /* everything but the sensor name */
#define PF_HEADER_MAX_BYTES    (PF_HEADER_FIXED_BYTES + PF_NAME_MAX)
#define PF_SS_HEADER_BYTES     crypto_secretstream_xchacha20poly1305_HEADERBYTES
#define PF_CHUNK_ABYTES        crypto_secretstream_xchacha20poly1305_ABYTES
#define PF_CHUNK_DEFAULT_BYTES (1u << 20)
#define PF_CHUNK_MIN_BYTES     4096u
#define PF_CHUNK_MAX_BYTES     (16u << 20)
#define PF_PLAIN_MAX_BYTES     (1ULL << 42) /* 4 TiB: far beyond any bundle */
#define PF_TRAILER_MAGIC       "pcapferry-end"
#define PF_TRAILER_MAGIC_BYTES 14 /* including the NUL */
#define PF_TRAILER_BYTES       (PF_TRAILER_MAGIC_BYTES + 8 + PF_HASH_BYTES + PF_SIG_BYTES)
#define PF_TRAILER_HASH_OFFSET (PF_TRAILER_MAGIC_BYTES + 8)

/* Domain-separation prefixes: every signature says what it signs. */
#define PF_SIGCTX_HEADER   "pcapferry-header-v1"
#define PF_SIGCTX_TRAILER  "pcapferry-trailer-v1"
#define PF_SIGCTX_MANIFEST "pcapferry-manifest-v1"
#define PF_KDF_STREAM      "pcapferry-stream-v1"

typedef struct pf_header {
    uint16_t flags;
    char sensor[PF_NAME_MAX + 1];
    uint8_t signer_id[PF_KEYID_BYTES];
    uint8_t recipient_id[PF_KEYID_BYTES];
    uint64_t seq;
    uint64_t prev_seq; /* 0: no predecessor named */
    uint8_t prev_hash[PF_HASH_BYTES];
    int64_t created_ns;
    uint32_t chunk_size;
    uint64_t plain_len_max;
    uint8_t eph_pk[PF_BOX_PK_BYTES];
    uint8_t ss_header[PF_SS_HEADER_BYTES];
    uint8_t sig[PF_SIG_BYTES];
    /* The exact bytes on the wire and their BLAKE2b-256, which chunks use
     * as additional data and the manifest names. */
    uint8_t raw[PF_HEADER_MAX_BYTES];
    size_t raw_len;
    uint8_t hash[PF_HASH_BYTES];
} pf_header;

/* Encodes the fields and signs them with the sensor's key. */
int pf_header_seal(pf_header *h, const uint8_t *sign_sk, pf_err *e);

/* Could these first n bytes (n < 12) begin a bundle? A short file that
 * cannot is garbage, not a bundle still being copied. */
bool pf_header_prefix_plausible(const uint8_t *buf, size_t n);

/* Checks the 12-byte prefix and returns the total header length. */
int pf_header_prefix_len(const uint8_t prefix[PF_HEADER_PREFIX_BYTES], size_t *total, pf_err *e);

/* Decodes and structurally checks a header. No signature check. */
__attribute__((warn_unused_result)) int pf_header_decode(const uint8_t *buf, size_t len,
                                                         pf_header *out, pf_err *e);

__attribute__((warn_unused_result)) int
pf_header_verify(const pf_header *h, const uint8_t sign_pk[PF_SIGN_PK_BYTES], pf_err *e);

/* What one successful header verification established: the header bytes
 * whose BLAKE2b-256 is `hash` carry a valid signature by `sign_pk`. The
 * importer verifies a header once when it judges the bundle; extraction
 * reads the header again from the file and skips the second Ed25519
 * verification only when what it read hashes to the same value and is
 * checked against the same key (BLAKE2b-256 is collision resistant: the
 * same hash means the same bytes, so the same signature verdict). Anything
 * else is verified in full. Only pf_header_verify_proof fills one in. */
typedef struct pf_header_proof {
    bool valid;
    uint8_t hash[PF_HASH_BYTES];
    uint8_t sign_pk[PF_SIGN_PK_BYTES];
} pf_header_proof;

/* pf_header_verify, recording what it proved in *proof (cleared first;
 * valid only on success). */
__attribute__((warn_unused_result)) int
pf_header_verify_proof(const pf_header *h, const uint8_t sign_pk[PF_SIGN_PK_BYTES],
                       pf_header_proof *proof, pf_err *e);
/* Was proof (NULL: none) made for exactly these header bytes and this key? */
bool pf_header_proof_covers(const pf_header_proof *proof, const pf_header *h,
                            const uint8_t sign_pk[PF_SIGN_PK_BYTES]);
/* pf_header_verify, unless proof (NULL: none) was made for exactly these
 * header bytes and this key. */
__attribute__((warn_unused_result)) int
pf_header_verify_once(const pf_header *h, const uint8_t sign_pk[PF_SIGN_PK_BYTES],
                      const pf_header_proof *proof, pf_err *e);

/* Trailer: builds or checks the 118 bytes after the end marker. */
void pf_trailer_build(uint8_t out[PF_TRAILER_BYTES], const pf_header *h, uint64_t body_len,
                      const uint8_t file_hash[PF_HASH_BYTES], const uint8_t *sign_sk);
__attribute__((warn_unused_result)) int pf_trailer_check(const uint8_t in[PF_TRAILER_BYTES],
                                                         const pf_header *h, uint64_t body_len,
                                                         const uint8_t file_hash[PF_HASH_BYTES],
                                                         const uint8_t sign_pk[PF_SIGN_PK_BYTES],
                                                         pf_err *e);

/* Ed25519 over prefix || NUL || msg, without copying msg. */
void pf_sign_ctx(uint8_t sig[PF_SIG_BYTES], const char *ctx, const uint8_t *msg, size_t len,
                 const uint8_t *sign_sk);
__attribute__((warn_unused_result)) bool pf_verify_ctx(const uint8_t sig[PF_SIG_BYTES],
                                                       const char *ctx, const uint8_t *msg,
                                                       size_t len, const uint8_t *sign_pk);

#endif
