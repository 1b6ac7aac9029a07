#include "bundle/provenance.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fsutil.h"

void pf_provenance_free(pf_provenance *p)
{
    if (p == NULL)
        return;
    pf_manifest_free(p->manifest);
    p->manifest = NULL;
}

size_t pf_provenance_delivered_n(const char *name, const char *sensor, uint64_t seq)
{
    char prefix[PF_NAME_MAX + 32];
    const char *base = pf_basename(name);
    int n = snprintf(prefix, sizeof prefix, "%s-%010" PRIu64 "-", sensor, seq);
    if (n < 0 || (size_t)n >= sizeof prefix || strncmp(base, prefix, (size_t)n) != 0)
        return 0;
    char *end = NULL;
    errno = 0;
    unsigned long v = strtoul(base + n, &end, 10);
    if (errno != 0 || end == base + n || *end != '-' || v == 0 || v > PF_MANIFEST_MAX_FILES)
        return 0;
    return (size_t)v;
}

/* Reads the file once: its hash and what libpcap says about it. O_NOFOLLOW:
 * the file named is the file checked. */
static int scan_file(const char *path, pf_pcapinfo *info, pf_err *e)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC), rc = -1;
    if (fd < 0)
        return pf_err_sys(e, errno, "%s: cannot open", path);
    if (fstat(fd, &st) != 0) {
        pf_err_sys(e, errno, "%s: cannot stat", path);
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        pf_err_set(e, PF_EUSAGE, "%s: not a regular file", path);
        goto out;
    }
    rc = pf_pcap_scan(fd, (uint64_t)st.st_size, path, NULL, NULL, info, e);
out:
    close(fd);
    return rc;
}

static void classify(pf_provenance *p, size_t hint_n)
{
    const pf_manifest *m = p->manifest;
    p->entry = -1;
    for (size_t i = 0; i < m->nfiles; i++)
        if (sodium_memcmp(m->files[i].info.blake2b, p->file.blake2b, PF_HASH_BYTES) == 0) {
            p->entry = (long)i;
            p->match = PF_PROV_EXACT;
            return;
        }
    if (hint_n >= 1 && hint_n <= m->nfiles)
        p->entry = (long)hint_n - 1;
    else if (m->nfiles == 1)
        p->entry = 0;
    if (p->entry < 0) {
        p->match = PF_PROV_NOT_LISTED;
        snprintf(p->why, sizeof p->why,
                 "no file in the manifest has this BLAKE2b-256, and the file name does not say "
                 "which entry it is");
        return;
    }
    const pf_pcapinfo *s = &m->files[p->entry].info, *f = &p->file;
    /* The importer converts pcapng to pcap for Arkime, so the delivered
     * bytes were never signed. What survives conversion and can still be
     * compared: the packet count and the first and last timestamps. */
    bool same_packets = s->packets == f->packets && s->have_ts == f->have_ts &&
                        (!s->have_ts || (s->first_ns == f->first_ns && s->last_ns == f->last_ns &&
                                         s->min_ns == f->min_ns && s->max_ns == f->max_ns));
    if (strcmp(s->format, "pcapng") == 0 && strcmp(f->format, "pcap") == 0 && same_packets &&
        f->read_status == PF_READ_COMPLETE) {
        p->match = PF_PROV_CONVERTED;
        snprintf(p->why, sizeof p->why,
                 "this pcap (the importer's conversion) has the same %" PRIu64
                 " packets and the same first and last timestamps",
                 f->packets);
        return;
    }
    p->match = PF_PROV_MISMATCH;
    snprintf(p->why, sizeof p->why,
             "%s: signed %" PRIu64 " bytes, %" PRIu64 " packets (%s); this file %" PRIu64
             " bytes, %" PRIu64 " packets (%s)",
             same_packets ? "same packets and timestamps, different bytes"
                          : "packets or timestamps differ",
             s->size, s->packets, s->format, f->size, f->packets, f->format);
}

int pf_provenance_check(const char *file, const uint8_t *manifest_text, size_t manifest_len,
                        const uint8_t sig[PF_SIG_BYTES], const uint8_t *header_raw,
                        size_t header_len, const pf_pubkey *keys, size_t nkeys, size_t hint_n,
                        pf_provenance *out, pf_err *e)
{
    memset(out, 0, sizeof *out);
    out->entry = -1;
    const pf_pubkey *key = NULL;
    /* Verify before parse: the JSON parser sees only signed bytes. */
    for (size_t i = 0; i < nkeys && key == NULL; i++)
        if (keys[i].role == PF_ROLE_SENSOR &&
            pf_verify_ctx(sig, PF_SIGCTX_MANIFEST, manifest_text, manifest_len, keys[i].sign_pk))
            key = &keys[i];
    if (key == NULL && nkeys == 1)
        return pf_err_set(e, PF_EREJECT,
                          "manifest signature does not verify with key %s (%s): forged, "
                          "modified, or signed by another sensor",
                          keys[0].name, "the key given");
    if (key == NULL)
        return pf_err_set(e, PF_EREJECT,
                          "manifest signature does not verify with any of the %zu keys in the "
                          "keyring: forged, modified, or signed by an unknown sensor",
                          nkeys);
    out->key = *key;
    if (pf_manifest_parse(manifest_text, manifest_len, &out->manifest, e) != 0)
        return -1;
    if (sodium_memcmp(out->manifest->signer_id, key->key_id, PF_KEYID_BYTES) != 0) {
        pf_provenance_free(out);
        return pf_err_set(e, PF_EREJECT, "manifest names another signing key than %s", key->name);
    }
    if (header_raw != NULL) {
        if (pf_header_decode(header_raw, header_len, &out->header, e) != 0 ||
            pf_header_verify(&out->header, key->sign_pk, e) != 0) {
            pf_err_prefix(e, "header: ");
            pf_provenance_free(out);
            return -1;
        }
        if (pf_manifest_matches(out->manifest, &out->header, e) != 0) {
            pf_provenance_free(out);
            return -1;
        }
        out->have_header = true;
    }
    if (scan_file(file, &out->file, e) != 0) {
        pf_provenance_free(out);
        return -1;
    }
    if (hint_n == 0)
        hint_n = pf_provenance_delivered_n(file, out->manifest->sensor, out->manifest->seq);
    classify(out, hint_n);
    return 0;
}
