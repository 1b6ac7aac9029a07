/* Provenance of one capture file, offline: given the file, the kept signed
 * manifest (<sensor>-<seq>.manifest.json + .manifest.sig, optionally the
 * .header) and the sensor's public key, say which manifest entry it is and
 * whether its bytes are the ones the sensor signed. Needs no database and
 * no secret: exactly what a chain-of-custody form attaches. */
#ifndef PF_PROVENANCE_H
#define PF_PROVENANCE_H

#include <stdbool.h>
#include <stdint.h>

#include "bundle/header.h"
#include "bundle/manifest.h"
#include "bundle/pcapinfo.h"

enum pf_prov_match {
    PF_PROV_EXACT,      /* the file's BLAKE2b-256 is the signed one */
    PF_PROV_CONVERTED,  /* signed entry is pcapng, this is a pcap with the same packet count
                           and first/last timestamps: the importer's conversion */
    PF_PROV_MISMATCH,   /* an entry was identified, the bytes differ */
    PF_PROV_NOT_LISTED, /* the manifest has no entry for this file */
};

typedef struct pf_provenance {
    /* the file as it is now */
    pf_pcapinfo file;
    /* the signed manifest, parsed only after its signature verified */
    pf_manifest *manifest;
    pf_pubkey key; /* the key that verified it */
    bool have_header;
    pf_header header; /* verified with the same key, bound to the manifest */
    long entry;       /* index into manifest->files, or -1 */
    enum pf_prov_match match;
    char why[256]; /* for CONVERTED and MISMATCH: what was compared */
} pf_provenance;

/* Verifies sig over manifest_text (PF_SIGCTX_MANIFEST) with each of keys
 * until one succeeds; a header (NULL: none) must verify with that key and
 * hash to the manifest's header_blake2b_256. hint_n (0: none) is the
 * 1-based entry the caller knows the file to be (import state, or the
 * delivered name <sensor>-<seq>-<n>-<time>.pcap). Returns -1 with
 * PF_EREJECT when nothing verifies, PF_EENV/PF_EUSAGE on I/O; otherwise 0
 * with the match in out (which may be a MISMATCH). */
__attribute__((warn_unused_result)) int
pf_provenance_check(const char *file, const uint8_t *manifest_text, size_t manifest_len,
                    const uint8_t sig[PF_SIG_BYTES], const uint8_t *header_raw, size_t header_len,
                    const pf_pubkey *keys, size_t nkeys, size_t hint_n, pf_provenance *out,
                    pf_err *e);
void pf_provenance_free(pf_provenance *p);

/* The n of a delivered name "<sensor>-<10 digits seq>-<n>-<time>.pcap" when
 * sensor and seq are the manifest's; 0 otherwise. */
size_t pf_provenance_delivered_n(const char *name, const char *sensor, uint64_t seq);

#endif
