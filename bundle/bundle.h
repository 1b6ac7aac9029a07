/* pcapferry's bundle library: the one contract between the sensor side
 * (capture, bundle create) and the central side (import, bundle open). */
#ifndef PF_BUNDLE_H
#define PF_BUNDLE_H

#include <jansson.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "bundle/header.h"
#include "bundle/manifest.h"
#include "bundle/names.h"
#include "bundle/pcapcheck.h"
#include "bundle/pcapinfo.h"
#include "common/event.h"
#include "keys/keyring.h"

#define PF_DEFAULT_LEVEL 1

typedef struct pf_create_input {
    const char *path;
    const char *name;      /* name inside the bundle; NULL: basename of path */
    json_t *capture_stats; /* optional (borrowed) */
    bool use_fd;           /* read from fd (not closed), path names it */
    int fd;
} pf_create_input;

typedef struct pf_create_opts {
    const pf_seckey *sensor;
    const pf_pubkey *central;
    const char *outdir;
    const char *state_dir; /* sequence state; NULL: use seq */
    uint64_t seq;
    int level;
    int workers;
    uint32_t chunk_size; /* 0: default */
    bool allow_unreadable;
    json_t *capture;    /* optional capture settings (borrowed) */
    int64_t created_ns; /* 0: now */
    /* A daemon that dropped privileges works in directories it opened
     * before: with these set, outdir and state_dir only name them. */
    bool use_outdir_fd, use_state_fd;
    int outdir_fd, state_fd;
} pf_create_opts;

typedef struct pf_create_result {
    char path[PATH_MAX];
    char name[PF_BUNDLE_NAME_MAX];
    uint64_t seq;
    uint8_t bundle_hash[PF_HASH_BYTES];
    uint64_t bytes_in, bytes_out, packets;
    size_t nfiles, damaged, unreadable;
} pf_create_result;

/* Packs capture files into one bundle in outdir, atomically. */
int pf_bundle_create(const pf_create_opts *o, const pf_create_input *in, size_t n,
                     pf_create_result *res, pf_err *e);

#define PF_STAGE_NAME_MAX 128

/* What a successful extraction hands back. */
typedef struct pf_extracted {
    pf_header hdr;
    pf_manifest *manifest;
    uint8_t *manifest_raw; /* the signed bytes, kept for provenance */
    size_t manifest_len;
    uint8_t manifest_sig[PF_SIG_BYTES];
    uint8_t bundle_hash[PF_HASH_BYTES];
    uint64_t bundle_bytes;
    /* staged[i]: the name manifest file i was written under in the staging
     * directory (stage_prefix, a number, ".part"). */
    char (*staged)[PF_STAGE_NAME_MAX];
    /* checks[i]: the record walk over the bytes of manifest file i, made
     * while it was extracted (what the gate trusts, not the manifest). */
    pf_pcapcheck *checks;
} pf_extracted;

void pf_extracted_clear(pf_extracted *x);

/* Full verification and extraction of the bundle on fd into stage_dirfd.
 * Files are staged as <stage_prefix><n>.part, never under their own names,
 * so a watcher of that directory (Arkime) cannot pick up an unverified file
 * when stage_prefix starts with a dot. On failure everything it created
 * there is removed. The caller decides where the files finally go. */
__attribute__((warn_unused_result)) int
pf_bundle_extract(int fd, const char *what, const pf_seckey *central, const char *keyring,
                  int stage_dirfd, const char *stage_prefix, pf_extracted *out, pf_err *e);
/* What the importer adds to pf_bundle_extract; zero-initialised: nothing. */
typedef struct pf_extract_opts {
    /* A bundle hash the caller's own state vouches for (NULL: none), e.g.
     * the importer's hash chain: a bundle of a key revoked after seq N with
     * seq <= N is accepted only when its hash, computed before anything is
     * decrypted, is vouched for here or in the revocation. */
    const uint8_t *vouched;
    /* The caller's own verification of the header signature (NULL: none,
     * pf_header_verify_proof): the header read from fd is verified again
     * unless it is byte for byte the one proved, under the same key. */
    const pf_header_proof *proof;
    /* Parts reused from one bundle to the next (NULL: none). */
    struct pf_unseal_ctx *reuse;
    unsigned flags; /* PF_EXTRACT_* */
} pf_extract_opts;

__attribute__((warn_unused_result)) int
pf_bundle_extract_opts(int fd, const char *what, const pf_seckey *central, const char *keyring,
                       int stage_dirfd, const char *stage_prefix, const pf_extract_opts *o,
                       pf_extracted *out, pf_err *e);
/* flags: the caller makes the staged files durable itself (the importer's
 * group commit: one syncfs for a batch of bundles), so each is not fsynced
 * here. Without it every staged file is fsynced before this returns. */
#define PF_EXTRACT_NO_FSYNC 1u
/* flags: out->bundle_hash is the one the verified trailer states, not
 * computed (one BLAKE2b pass less). The chunk AEAD already proves the bytes
 * are the signer's; a caller that acknowledges bundles by this hash must
 * also name the header hash (receipts v2): a stolen signing key can sign a
 * trailer naming any hash (docs/FORMAT.md). */
#define PF_EXTRACT_HASH_FROM_TRAILER 2u

/* bundle open: extract into outdir, all or nothing. */
__attribute__((warn_unused_result)) int pf_bundle_open(const char *path, const pf_seckey *central,
                                                       const char *keyring, const char *outdir,
                                                       pf_extracted *out, pf_err *e);

/* Trust for every central path (verify, open, import): the signing key is
 * a trusted sensor key, the header's sensor name is the one that key is
 * pinned to, and its revocation does not refuse the seq outright. Sets
 * *need_vouch when the bundle's hash must also be vouched for. Checks
 * the header signature (and only that one). */
__attribute__((warn_unused_result)) int pf_bundle_trust(const char *keyring, const pf_header *h,
                                                        pf_trust *t, bool *need_vouch, pf_err *e);
/* The same, where the header signature is not verified again when proof
 * (NULL: none) was made for exactly these header bytes and the key found
 * (pf_header_proof_covers). On success *made (NULL: not wanted) proves the
 * header for whoever reads it next. */
__attribute__((warn_unused_result)) int
pf_bundle_trust_proved(const char *keyring, const pf_header *h, const pf_header_proof *proof,
                       pf_header_proof *made, pf_trust *t, bool *need_vouch, pf_err *e);
/* The error for a revoked key's bundle that nothing vouches for. */
int pf_bundle_not_vouched(const char *what, const pf_trust *t, const pf_header *h, pf_err *e);
/* The bundle hash of the complete bundle on fd (pread: the offset does not
 * move); PF_EINCOMPLETE when no trailer ends the file. */
int pf_bundle_fd_hash(int fd, const char *what, uint8_t hash[PF_HASH_BYTES], pf_err *e);

/* Public-key verification: complete, unmodified, signed by a trusted
 * sensor under its pinned name, and not refused by a revocation. No secret
 * key involved. */
typedef struct pf_verified {
    pf_header hdr;
    uint8_t bundle_hash[PF_HASH_BYTES];
    uint64_t bytes, chunks;
} pf_verified;

__attribute__((warn_unused_result)) int pf_bundle_verify(const char *path, const char *keyring,
                                                         pf_verified *out, pf_err *e);
/* The same against one given sensor key (a sensor checking its own
 * bundles, e.g. on a USB stick after export). */
__attribute__((warn_unused_result)) int
pf_bundle_verify_key(const char *path, const pf_pubkey *sensor, pf_verified *out, pf_err *e);

/* Export to removable media: DEST/pcapferry/<sensor>/, oldest first, each
 * copy written under a dot .part name, fsynced, renamed, and read back and
 * verified before it counts as exported (OUTBOX/.exported/<name>). */
typedef struct pf_export_result {
    size_t copied, already_there, failed, remaining;
    uint64_t bytes_copied, bytes_remaining;
    bool dest_full;
} pf_export_result;

typedef void (*pf_export_progress)(void *ctx, size_t done, size_t total, uint64_t bytes);

int pf_bundle_export(const char *outbox, const char *dest, const pf_pubkey *sensor,
                     pf_event_fn event, pf_export_progress progress, void *ctx, pf_export_result *r,
                     pf_err *e);

/* Deletes exactly the outbox bundles that verified receipts (signed by the
 * pinned central key) confirm as committed, by seq and bundle hash.
 * Forged or altered receipts, and receipts naming a hash the outbox does
 * not hold, delete nothing and are reported through event. */
typedef struct pf_prune_result {
    size_t receipts, receipts_bad, deleted, already_gone, hash_mismatch, rejected;
} pf_prune_result;

int pf_bundle_prune(int outbox_fd, const char *outbox, const char *receipts_dir,
                    const pf_pubkey *central, pf_event_fn event, void *ctx, pf_prune_result *r,
                    pf_err *e);

/* The bundle hash a bundle's trailer states (unverified: a cheap way to
 * tell two copies apart). */
int pf_bundle_trailer_hash(const char *path, uint8_t hash[PF_HASH_BYTES]);
/* The same for NAME in an open directory (after a privilege drop the
 * directory's path may be out of reach). */
int pf_bundle_trailer_hash_at(int dirfd, const char *name, uint8_t hash[PF_HASH_BYTES]);
/* The same from an open descriptor. */
int pf_bundle_trailer_hash_fd(int fd, uint8_t hash[PF_HASH_BYTES]);

/* Reads only the plaintext header (no keys). */
__attribute__((warn_unused_result)) int pf_bundle_read_header(const char *path, pf_header *out,
                                                              uint64_t *file_size, pf_err *e);
/* The same, for NAME in the directory dirfd (a daemon that dropped its
 * privileges keeps directory descriptors, not paths). */
__attribute__((warn_unused_result)) int pf_bundle_read_header_at(int dirfd, const char *name,
                                                                 pf_header *out,
                                                                 uint64_t *file_size, pf_err *e);

/* The same from an open descriptor (pread: its position is not moved), so
 * that what is judged and what is then read are one file. */
__attribute__((warn_unused_result)) int
pf_bundle_read_header_fd(int fd, const char *what, pf_header *out, uint64_t *file_size, pf_err *e);

/* Sensor sequence state (see docs/FORMAT.md, "Sequence numbers"). */
typedef struct pf_seq_state {
    int lock_fd;
    int dir_fd;
    bool own_dir_fd;
    char dir[PATH_MAX];
    char sensor[PF_NAME_MAX + 1];
    uint64_t next_seq;
    uint64_t last_seq;
    uint8_t last_hash[PF_HASH_BYTES];
} pf_seq_state;

/* Locks dir (one writer at a time) and loads the state, or starts one. */
int pf_state_open(pf_seq_state *st, const char *dir, const char *sensor, pf_err *e);
/* The same in an open directory (not closed by pf_state_close). */
int pf_state_open_at(pf_seq_state *st, int dirfd, const char *dirname, const char *sensor,
                     pf_err *e);
/* Takes the next seq and makes it durable before it is used, so a crash
 * can never lead to the same seq twice. */
int pf_state_reserve(pf_seq_state *st, uint64_t *seq, pf_err *e);
/* Records seq as the last bundle written, with its hash. */
int pf_state_commit(pf_seq_state *st, uint64_t seq, const uint8_t hash[PF_HASH_BYTES], pf_err *e);
void pf_state_close(pf_seq_state *st);

#endif
