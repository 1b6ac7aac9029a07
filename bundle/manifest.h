/* The signed manifest: what a bundle holds and where it came from. */
#ifndef PF_MANIFEST_H
#define PF_MANIFEST_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "bundle/header.h"
#include "bundle/names.h"
#include "bundle/pcapinfo.h"

#define PF_MANIFEST_VERSION   1
#define PF_MANIFEST_MAX_BYTES (4u << 20)
#define PF_MANIFEST_MAX_FILES 10000

typedef struct pf_manifest_file {
    char name[PF_ENTRY_NAME_MAX + 1];
    pf_pcapinfo info;      /* size and blake2b included */
    json_t *capture_stats; /* optional object from the capture daemon */
} pf_manifest_file;

typedef struct pf_manifest {
    char sensor[PF_NAME_MAX + 1];
    uint8_t signer_id[PF_KEYID_BYTES];
    uint8_t recipient_id[PF_KEYID_BYTES];
    uint64_t seq, prev_seq;
    uint8_t prev_hash[PF_HASH_BYTES];
    uint8_t header_hash[PF_HASH_BYTES];
    int64_t created_ns;
    json_t *capture; /* optional object: how the files were captured */
    pf_manifest_file *files;
    size_t nfiles, cap;
} pf_manifest;

pf_manifest *pf_manifest_new(const pf_header *h);
/* Appends a file; takes ownership of capture_stats (may be NULL). */
int pf_manifest_add(pf_manifest *m, const char *name, const pf_pcapinfo *info,
                    json_t *capture_stats, pf_err *e);
const pf_manifest_file *pf_manifest_find(const pf_manifest *m, const char *name);
void pf_manifest_free(pf_manifest *m);

/* Canonical JSON text; *out is malloc'd. */
int pf_manifest_encode(const pf_manifest *m, char **out, size_t *len, pf_err *e);

/* Strict parse of manifest text whose signature was already verified. */
__attribute__((warn_unused_result)) int pf_manifest_parse(const uint8_t *text, size_t len,
                                                          pf_manifest **out, pf_err *e);

/* Checks that the manifest speaks of this header (sensor, keys, seq, link,
 * header hash). */
__attribute__((warn_unused_result)) int pf_manifest_matches(const pf_manifest *m,
                                                            const pf_header *h, pf_err *e);

uint64_t pf_manifest_total_packets(const pf_manifest *m);
uint64_t pf_manifest_total_bytes(const pf_manifest *m);

#endif
