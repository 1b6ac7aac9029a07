/* fuzz_manifest: pf_manifest_parse on arbitrary text, then a round trip.
 *
 * The manifest reaches the parser only after its signature verified, but
 * "a signed mistake must still not crash or mislead the reader". Whatever
 * the parser accepts must encode (pf_manifest_encode), the encoding must
 * parse again with the same files, and encoding that again must give the
 * same text (the canonical form is a fixed point). */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void same_manifest(const pf_manifest *a, const pf_manifest *b)
{
    FZ_ASSERT(a->nfiles == b->nfiles, "%zu files, re-parsed %zu", a->nfiles, b->nfiles);
    FZ_ASSERT(strcmp(a->sensor, b->sensor) == 0 && a->seq == b->seq && a->prev_seq == b->prev_seq &&
                  a->created_ns == b->created_ns &&
                  memcmp(a->signer_id, b->signer_id, PF_KEYID_BYTES) == 0 &&
                  memcmp(a->recipient_id, b->recipient_id, PF_KEYID_BYTES) == 0 &&
                  memcmp(a->prev_hash, b->prev_hash, PF_HASH_BYTES) == 0 &&
                  memcmp(a->header_hash, b->header_hash, PF_HASH_BYTES) == 0,
              "top-level fields changed in the round trip");
    for (size_t i = 0; i < a->nfiles; i++) {
        const pf_manifest_file *x = &a->files[i], *y = &b->files[i];
        FZ_ASSERT(strcmp(x->name, y->name) == 0 && x->info.size == y->info.size &&
                      x->info.packets == y->info.packets &&
                      x->info.truncated_packets == y->info.truncated_packets &&
                      x->info.read_status == y->info.read_status &&
                      memcmp(x->info.blake2b, y->info.blake2b, PF_HASH_BYTES) == 0,
                  "file %zu ('%s') changed in the round trip", i, x->name);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pf_manifest *m = NULL, *m2 = NULL, *m3 = NULL;
    char *t1 = NULL, *t2 = NULL;
    size_t l1 = 0, l2 = 0;
    pf_err e;
    fz_init();
    fz_rng_reset(3);
    pf_err_clear(&e);

    int rc = pf_manifest_parse(data, size, &m, &e);
    fz_note("parse", rc, &e);
    if (rc != 0) {
        FZ_ASSERT(m == NULL, "failed parse returned a manifest");
        return 0;
    }
    FZ_ASSERT(m != NULL, "parse succeeded without a manifest");
    for (size_t i = 0; i < m->nfiles; i++)
        FZ_ASSERT(pf_entry_name_valid(m->files[i].name) &&
                      !pf_entry_name_reserved(m->files[i].name),
                  "accepted file name '%s'", m->files[i].name);
    (void)pf_manifest_total_bytes(m);
    (void)pf_manifest_total_packets(m);

    /* Canonical text can be a little longer than what was parsed; only
     * the size limit may refuse it. */
    if (pf_manifest_encode(m, &t1, &l1, &e) != 0) {
        FZ_ASSERT(e.status == PF_EUSAGE, "encode failed: %s", e.msg);
        goto out;
    }
    FZ_ASSERT(pf_manifest_parse((const uint8_t *)t1, l1, &m2, &e) == 0,
              "encoded manifest does not parse: %s\n%.2000s", e.msg, t1);
    same_manifest(m, m2);
    FZ_ASSERT(pf_manifest_encode(m2, &t2, &l2, &e) == 0, "re-encode failed: %s", e.msg);
    FZ_ASSERT(l1 == l2 && memcmp(t1, t2, l1) == 0,
              "canonical text is not a fixed point:\n%.2000s\n----\n%.2000s", t1, t2);
    FZ_ASSERT(pf_manifest_parse((const uint8_t *)t2, l2, &m3, &e) == 0, "third parse failed");
    same_manifest(m2, m3);
out:
    free(t1);
    free(t2);
    pf_manifest_free(m);
    pf_manifest_free(m2);
    pf_manifest_free(m3);
    return 0;
}
