/* BLAKE2b-256 on a thread of its own. Every byte of a bundle is hashed
 * twice on each side (the pcap for the manifest, the bundle for its
 * trailer), and one BLAKE2b pass costs about as much CPU as zstd level 1:
 * hashing beside the thread that produces the bytes is what lets sealing
 * and opening use the second core. Results are those of
 * crypto_generichash(…, PF_HASH_BYTES), in the order the bytes were given.
 *
 * The caller keeps a buffer it handed over unchanged until the ticket that
 * pf_hasher_update() returned for it has been waited for (or until the
 * next pf_hasher_final()). Buffers of up to PF_HASHER_INLINE_BYTES are
 * copied, so they may be reused at once. */
#ifndef PF_HASHER_H
#define PF_HASHER_H

#include <stddef.h>
#include <stdint.h>

#include "keys/keyfile.h"

#define PF_HASHER_INLINE_BYTES 256u

typedef struct pf_hasher pf_hasher;

/* NULL only when out of memory. Without a thread (pthread_create failed)
 * it hashes in the caller's thread, with the same results. */
pf_hasher *pf_hasher_new(void);
/* The same for about `bytes` of input: below PF_HASHER_THREAD_MIN_BYTES
 * the hashing stays in the caller's thread, where it costs less than
 * starting a thread and handing buffers over (a fleet's small bundles). */
#define PF_HASHER_THREAD_MIN_BYTES (1u << 20)
pf_hasher *pf_hasher_new_sized(uint64_t bytes);
uint64_t pf_hasher_update(pf_hasher *h, const void *buf, size_t len);
/* Returns once the update that gave ticket is done with its buffer. */
void pf_hasher_wait(pf_hasher *h, uint64_t ticket);
/* Waits for every update, writes the hash and starts a new one. */
void pf_hasher_final(pf_hasher *h, uint8_t out[PF_HASH_BYTES]);
void pf_hasher_free(pf_hasher *h);

#endif
