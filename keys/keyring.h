/* The keyring: a directory of trusted public keys and revocations.
 *
 *   DIR/<key id hex>.pub      a trusted key (the .pub file, verbatim)
 *   DIR/<key id hex>.revoked  a revocation, optionally "valid through seq N"
 *
 * Files are named by key id so a lookup never scans or trusts a name. */
#ifndef PF_KEYRING_H
#define PF_KEYRING_H

#include <stdbool.h>
#include <stdint.h>

#include "keys/keyfile.h"

typedef struct pf_trust {
    pf_pubkey key;
    bool revoked;
    /* With revoked: bundles with seq <= valid_through stay valid, unless
     * revoked_all. */
    bool revoked_all;
    uint64_t valid_through;
} pf_trust;

int pf_keyring_trust(const char *dir, const char *pubpath, pf_pubkey *added, pf_err *e);

/* target is a public key file or a key id in hex. */
int pf_keyring_revoke(const char *dir, const char *target, bool has_after, uint64_t after_seq,
                      uint8_t revoked_id[PF_KEYID_BYTES], pf_err *e);

/* Finds a trusted key by id. An unknown id is PF_EREJECT. Revocation is
 * reported in out, not enforced: use pf_trust_allows_seq. */
__attribute__((warn_unused_result)) int
pf_keyring_lookup(const char *dir, const uint8_t key_id[PF_KEYID_BYTES], pf_trust *out, pf_err *e);

/* PF_EREJECT when the key's revocation covers seq. */
__attribute__((warn_unused_result)) int pf_trust_allows_seq(const pf_trust *t, uint64_t seq,
                                                            pf_err *e);

/* Every trusted key, sorted by name; *out is malloc'd. */
int pf_keyring_list(const char *dir, pf_trust **out, size_t *count, pf_err *e);

#endif
