/* The sealed stream: header, zstd-compressed and secretstream-encrypted
 * chunks, end marker and signed trailer. The tar and manifest layer sits
 * above this; tests use it directly to seal hand-made (hostile) content. */
#ifndef PF_STREAM_H
#define PF_STREAM_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "bundle/header.h"

/* zstd's window is capped so an opener never needs more than 8 MiB for it. */
#define PF_ZSTD_WINDOW_LOG_MAX 23

typedef struct pf_seal_params {
    const char *sensor_name; /* defaults to the sensor key's name */
    uint64_t seq;
    uint64_t prev_seq;
    uint8_t prev_hash[PF_HASH_BYTES];
    int64_t created_ns;
    uint32_t chunk_size;    /* 0: PF_CHUNK_DEFAULT_BYTES */
    uint64_t plain_len_max; /* bound on the uncompressed content */
    int level;              /* zstd level */
    int workers;            /* zstd worker threads; 0 = compress inline */
    /* For the test suite only, to make hostile bundles: a zstd window log
     * to force (0: zstd's choice), and permission to write more content
     * than plain_len_max declares. */
    int test_window_log;
    bool test_exceed_bound;
} pf_seal_params;

typedef struct pf_sealer pf_sealer;

/* Derives the stream key from the X25519 shared secret and both key ids. */
__attribute__((warn_unused_result)) int pf_stream_key(uint8_t key[32], const uint8_t session[32],
                                                      const pf_header *h);

/* Writes the header to fd. what names the output in messages. */
pf_sealer *pf_sealer_new(const pf_seckey *sensor, const pf_pubkey *central, const pf_seal_params *p,
                         int fd, const char *what, pf_err *e);
const pf_header *pf_sealer_header(const pf_sealer *s);
int pf_sealer_write(pf_sealer *s, const void *data, size_t len, pf_err *e);
/* Flushes, writes the final chunk, end marker and trailer. The bundle hash
 * is BLAKE2b-256 of every byte before the trailer magic. */
int pf_sealer_finish(pf_sealer *s, uint8_t bundle_hash[PF_HASH_BYTES], uint64_t *bytes_out,
                     pf_err *e);
void pf_sealer_free(pf_sealer *s);

typedef struct pf_unsealer pf_unsealer;

/* Parts one unsealer after another can reuse (an import of many small
 * bundles): the sodium_malloc area for the stream state and keys, wiped
 * after every bundle, the zstd context and the ciphertext buffers. One
 * unsealer at a time borrows them; another one meanwhile makes its own.
 * NULL only when out of memory. */
typedef struct pf_unseal_ctx pf_unseal_ctx;
pf_unseal_ctx *pf_unseal_ctx_new(void);
/* After every unsealer that borrowed from it is freed. */
void pf_unseal_ctx_free(pf_unseal_ctx *c);

/* Reads and decodes the header; nothing is trusted yet. */
pf_unsealer *pf_unsealer_new(int fd, const char *what, pf_err *e);
/* The same, borrowing ctx's parts (NULL: none) until pf_unsealer_free. */
pf_unsealer *pf_unsealer_new_ctx(int fd, const char *what, pf_unseal_ctx *ctx, pf_err *e);
const pf_header *pf_unsealer_header(const pf_unsealer *u);
/* Before pf_unsealer_begin: take the bundle hash from the trailer, once
 * its signature verified, instead of hashing every byte. Sound only for a
 * reader that authenticates every chunk with the stream key (this one);
 * what the hash may then be used for is in docs/FORMAT.md. */
void pf_unsealer_hash_from_trailer(pf_unsealer *u);
/* Checks recipient and signer ids, the header signature, and derives the
 * stream key. Must succeed before pf_unsealer_read. */
__attribute__((warn_unused_result)) int pf_unsealer_begin(pf_unsealer *u, const pf_pubkey *sensor,
                                                          const pf_seckey *central, pf_err *e);
/* The same, where the header signature is not verified again when proof
 * (NULL: none) was made for exactly the header bytes this unsealer read and
 * for sensor's key (pf_header_verify_once). */
__attribute__((warn_unused_result)) int
pf_unsealer_begin_proved(pf_unsealer *u, const pf_pubkey *sensor, const pf_seckey *central,
                         const pf_header_proof *proof, pf_err *e);
/* Authenticated, decompressed content. Returns 0 only once the trailer has
 * been verified and the file has ended exactly there. */
__attribute__((warn_unused_result)) ssize_t pf_unsealer_read(pf_unsealer *u, void *buf, size_t len,
                                                             pf_err *e);
/* After the end: the bundle hash and file length. */
void pf_unsealer_result(const pf_unsealer *u, uint8_t bundle_hash[PF_HASH_BYTES],
                        uint64_t *bytes_in);
void pf_unsealer_free(pf_unsealer *u);

#endif
