/* The keyring: a directory of trusted public keys and revocations.
 *
 *   DIR/<key id hex>.pub          a trusted key; its name line is the sensor
 *                                 name the key is pinned to (keys trust)
 *   DIR/<key id hex>.same-sensor  the operator said this key is another key
 *                                 of the sensor already pinned to that name
 *   DIR/<key id hex>.revoked      a revocation, optionally "valid through seq
 *                                 N" and the bundle hashes still vouched for
 *
 * Files are named by key id so a lookup never scans or trusts a name. A
 * sensor is its key: the name in a bundle header is only accepted when it is
 * the name the signing key was pinned to here. */
#ifndef PF_KEYRING_H
#define PF_KEYRING_H

#include <stdbool.h>
#include <stdint.h>

#include "keys/keyfile.h"

/* Bundle hashes one revocation can vouch for (keys revoke --allow). */
#define PF_REVOKE_ALLOW_MAX 64

typedef struct pf_trust {
    pf_pubkey key; /* key.name is the pinned sensor name */
    bool same_sensor;
    /* Shares its name with another key and nobody said they are one
     * sensor (only pf_keyring_list reports this; lookup refuses). */
    bool ambiguous;
    bool revoked;
    /* With revoked: bundles with seq > valid_through, or any when
     * revoked_all, are refused; those with seq <= valid_through only when
     * their bundle hash is vouched for (allow, or the importer's chain). */
    bool revoked_all;
    uint64_t valid_through;
    size_t nallow;
    uint8_t allow[PF_REVOKE_ALLOW_MAX][PF_HASH_BYTES];
} pf_trust;

/* Trusts the key in pubpath under the sensor name `name` (NULL: the name in
 * the file). A name already pinned by another key is refused unless
 * same_sensor says the new key belongs to that sensor (a key rotation).
 * Trusting an already trusted key again with same_sensor records that. */
int pf_keyring_trust(const char *dir, const char *pubpath, const char *name, bool same_sensor,
                     pf_pubkey *added, pf_err *e);

/* target is a public key file or a key id in hex. allow: nallow bundle
 * hashes the operator vouches for (only with has_after). */
int pf_keyring_revoke(const char *dir, const char *target, bool has_after, uint64_t after_seq,
                      const uint8_t (*allow)[PF_HASH_BYTES], size_t nallow,
                      uint8_t revoked_id[PF_KEYID_BYTES], pf_err *e);

/* Finds a trusted key by id. An unknown id is PF_EREJECT; a name shared
 * with another key without a same-sensor record (a 0.1.0 keyring) is
 * PF_EENV. Revocation is reported in out, not enforced. */
__attribute__((warn_unused_result)) int
pf_keyring_lookup(const char *dir, const uint8_t key_id[PF_KEYID_BYTES], pf_trust *out, pf_err *e);

/* A long-running reader of one keyring (the importer) may turn on a cache
 * of successful lookups: a lookup then costs a stat of the directory, not
 * a read of every key file in it (the name check reads them all). The
 * cache is dropped whenever the directory's identity, mtime or ctime
 * changes, which every keys trust / revoke does (they rename files into
 * it), and by pf_keyring_cache_reset, which the importer calls at the start
 * of every pass, so a change made some other way (a file edited in place)
 * takes effect at the next pass at the latest. Off by default. */
void pf_keyring_cache_enable(bool on);
void pf_keyring_cache_reset(void);

/* PF_EREJECT unless `sensor` (a bundle header's name) is the name the key
 * is pinned to. */
__attribute__((warn_unused_result)) int pf_trust_allows_sensor(const pf_trust *t,
                                                               const char *sensor, pf_err *e);

/* PF_EREJECT when the key's revocation refuses seq outright. Sets
 * *need_vouch when the bundle is acceptable only if its hash is vouched
 * for: see pf_trust_hash_allowed. */
__attribute__((warn_unused_result)) int pf_trust_check_seq(const pf_trust *t, uint64_t seq,
                                                           bool *need_vouch, pf_err *e);

/* Did the operator name this bundle hash in the revocation? */
bool pf_trust_hash_allowed(const pf_trust *t, const uint8_t hash[PF_HASH_BYTES]);

/* Every trusted key, sorted by name; *out is malloc'd. */
int pf_keyring_list(const char *dir, pf_trust **out, size_t *count, pf_err *e);

#endif
