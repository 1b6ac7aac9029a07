/* Receipts: the central host's signed word that it committed (or
 * rejected) a sensor's bundles, so the sensor deletes only what arrived.
 *
 *   pcapferry-receipt-v1\n
 *   <base64 Ed25519 signature over "pcapferry-receipt-v1\0" || JSON>\n
 *   <JSON>
 *
 * The JSON's "version" is 2 since committed entries name the header hash
 * too; version 1 receipts (bundle hash only) are still read.
 *
 * signed with the central key's Ed25519 half, verified with the pinned
 * central public key (the sensor's --to file). */
#ifndef PF_RECEIPT_H
#define PF_RECEIPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keys/keyfile.h"

#define PF_SIGCTX_RECEIPT    "pcapferry-receipt-v1"
#define PF_RECEIPT_SUFFIX    ".receipt"
#define PF_RECEIPT_MAX_BYTES (4u << 20)
#define PF_RECEIPTS_DIR      "pcapferry-receipts"

enum pf_receipt_status { PF_RCPT_COMMITTED, PF_RCPT_REJECTED };

typedef struct pf_receipt_entry {
    uint64_t seq;
    uint8_t hash[PF_HASH_BYTES]; /* the bundle hash (committed) or file hash (rejected) */
    /* Version 2, committed: the header hash. The importer takes the bundle
     * hash from the signed trailer, which a stolen sensor key could make
     * name another bundle's hash; the header (its ephemeral key) nobody but
     * the sealer can reuse for other content. Prune matches both. */
    uint8_t header_hash[PF_HASH_BYTES];
    bool has_header_hash;
    enum pf_receipt_status status;
    char reason[256]; /* rejected: why */
} pf_receipt_entry;

typedef struct pf_receipt {
    char sensor[PF_NAME_MAX + 1];
    uint8_t central_id[PF_KEYID_BYTES]; /* BLAKE2b-128 of the signing key */
    int64_t issued_ns;
    pf_receipt_entry *v;
    size_t n, cap;
} pf_receipt;

pf_receipt *pf_receipt_new(const char *sensor);
/* header_hash: NULL for none (rejected entries); committed entries need
 * it (a version 2 receipt refuses to be written without). */
int pf_receipt_add(pf_receipt *r, uint64_t seq, const uint8_t hash[PF_HASH_BYTES],
                   const uint8_t *header_hash, enum pf_receipt_status status, const char *reason,
                   pf_err *e);
void pf_receipt_free(pf_receipt *r);

/* Signs and writes DIR/<sensor>-<issued>-<random>.receipt atomically. */
int pf_receipt_write(pf_receipt *r, const pf_seckey *central, const char *dir, char *name,
                     size_t cap, pf_err *e);
/* The same into an open directory (one opened without following links:
 * the importer writes receipts onto a courier's stick). */
int pf_receipt_write_at(pf_receipt *r, const pf_seckey *central, int dirfd, const char *dir,
                        char *name, size_t cap, pf_err *e);

/* Verifies with the pinned central key before parsing anything. */
__attribute__((warn_unused_result)) int pf_receipt_read(const char *path, const pf_pubkey *central,
                                                        pf_receipt **out, pf_err *e);

#endif
