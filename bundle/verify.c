#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bundle/bundle.h"
#include "common/buf.h"
#include "common/fsutil.h"

int pf_bundle_read_header(const char *path, pf_header *out, uint64_t *file_size, pf_err *e)
{
    return pf_bundle_read_header_at(AT_FDCWD, path, out, file_size, e);
}

int pf_bundle_read_header_at(int dirfd, const char *path, pf_header *out, uint64_t *file_size,
                             pf_err *e)
{
    uint8_t raw[PF_HEADER_MAX_BYTES];
    size_t total = 0;
    struct stat st;
    int rc = -1;
    int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return pf_err_sys(e, errno, "%s: cannot open", path);
    if (fstat(fd, &st) != 0) {
        pf_err_sys(e, errno, "%s: cannot stat", path);
        goto out;
    }
    if (file_size != NULL)
        *file_size = (uint64_t)st.st_size;
    ssize_t got = pf_read_full(fd, raw, PF_HEADER_PREFIX_BYTES);
    if (got < 0) {
        pf_err_sys(e, errno, "%s: read failed", path);
        goto out;
    }
    if (got < PF_HEADER_PREFIX_BYTES) {
        if (!pf_header_prefix_plausible(raw, (size_t)got))
            pf_err_set(e, PF_EREJECT, "%s: not a pcapferry bundle (bad magic)", path);
        else
            pf_err_set(e, PF_EINCOMPLETE, "%s: incomplete: shorter than a bundle header", path);
        goto out;
    }
    if (pf_header_prefix_len(raw, &total, e) != 0) {
        pf_err_prefix(e, "%s: ", path);
        goto out;
    }
    got = pf_read_full(fd, raw + PF_HEADER_PREFIX_BYTES, total - PF_HEADER_PREFIX_BYTES);
    if (got < 0) {
        pf_err_sys(e, errno, "%s: read failed", path);
        goto out;
    }
    if (pf_header_decode(raw, PF_HEADER_PREFIX_BYTES + (size_t)got, out, e) != 0) {
        pf_err_prefix(e, "%s: ", path);
        goto out;
    }
    rc = 0;
out:
    close(fd);
    return rc;
}

/* Walks the chunk framing and hashes every byte: with public keys alone
 * this proves the bundle is whole and exactly what the sensor signed. */
static int verify_body(const char *path, const pf_trust *trust, pf_verified *out, pf_err *e);

int pf_bundle_verify(const char *path, const char *keyring, pf_verified *out, pf_err *e)
{
    pf_trust trust;
    memset(out, 0, sizeof *out);
    if (pf_bundle_read_header(path, &out->hdr, NULL, e) != 0)
        return -1;
    if (pf_keyring_lookup(keyring, out->hdr.signer_id, &trust, e) != 0 ||
        pf_trust_allows_seq(&trust, out->hdr.seq, e) != 0) {
        pf_err_prefix(e, "%s: ", path);
        return -1;
    }
    return verify_body(path, &trust, out, e);
}

int pf_bundle_verify_key(const char *path, const pf_pubkey *sensor, pf_verified *out, pf_err *e)
{
    pf_trust trust;
    memset(&trust, 0, sizeof trust);
    memset(out, 0, sizeof *out);
    trust.key = *sensor;
    if (pf_bundle_read_header(path, &out->hdr, NULL, e) != 0)
        return -1;
    return verify_body(path, &trust, out, e);
}

static int verify_body(const char *path, const pf_trust *t, pf_verified *out, pf_err *e)
{
    crypto_generichash_state hash;
    uint8_t *buf = NULL;
    uint8_t lenbuf[4], trailer[PF_TRAILER_BYTES], extra;
    pf_trust trust = *t;
    int fd = -1, rc = -1;
    const pf_header *h = &out->hdr;

    if (pf_header_verify(h, trust.key.sign_pk, e) != 0) {
        pf_err_prefix(e, "%s: ", path);
        return -1;
    }
    if (trust.key.role != PF_ROLE_SENSOR)
        return pf_err_set(e, PF_EREJECT, "%s: signed by a key that is not a sensor key", path);
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    buf = malloc((size_t)h->chunk_size + PF_CHUNK_ABYTES);
    if (fd < 0 || buf == NULL) {
        pf_err_sys(e, fd < 0 ? errno : ENOMEM, "%s: cannot open", path);
        goto out;
    }
    crypto_generichash_init(&hash, NULL, 0, PF_HASH_BYTES);
    if (pf_read_full(fd, buf, h->raw_len) != (ssize_t)h->raw_len) {
        pf_err_set(e, PF_EINCOMPLETE, "%s: incomplete: header", path);
        goto out;
    }
    crypto_generichash_update(&hash, buf, h->raw_len);
    out->bytes = h->raw_len;
    for (;;) {
        ssize_t got = pf_read_full(fd, lenbuf, sizeof lenbuf);
        if (got < 0) {
            pf_err_sys(e, errno, "%s: read failed", path);
            goto out;
        }
        if (got < (ssize_t)sizeof lenbuf) {
            pf_err_set(e, PF_EINCOMPLETE,
                       "%s: incomplete: file ends inside a chunk length (still being copied, "
                       "or truncated)",
                       path);
            goto out;
        }
        crypto_generichash_update(&hash, lenbuf, sizeof lenbuf);
        out->bytes += sizeof lenbuf;
        uint32_t clen = pf_load_u32(lenbuf);
        if (clen == 0)
            break;
        if (clen < PF_CHUNK_ABYTES || clen > h->chunk_size + PF_CHUNK_ABYTES) {
            pf_err_set(e, PF_EREJECT, "%s: chunk %llu has impossible length %u", path,
                       (unsigned long long)out->chunks, clen);
            goto out;
        }
        got = pf_read_full(fd, buf, clen);
        if (got < 0) {
            pf_err_sys(e, errno, "%s: read failed", path);
            goto out;
        }
        if ((size_t)got < clen) {
            pf_err_set(e, PF_EINCOMPLETE,
                       "%s: incomplete: file ends inside a chunk (still being copied, or "
                       "truncated)",
                       path);
            goto out;
        }
        crypto_generichash_update(&hash, buf, clen);
        out->bytes += clen;
        out->chunks++;
    }
    if (out->chunks == 0) {
        pf_err_set(e, PF_EREJECT, "%s: bundle has no chunks", path);
        goto out;
    }
    crypto_generichash_final(&hash, out->bundle_hash, PF_HASH_BYTES);
    ssize_t got = pf_read_full(fd, trailer, sizeof trailer);
    if (got < 0) {
        pf_err_sys(e, errno, "%s: read failed", path);
        goto out;
    }
    if ((size_t)got < sizeof trailer) {
        pf_err_set(e, PF_EINCOMPLETE,
                   "%s: incomplete: file ends inside the trailer (still being copied, or "
                   "truncated)",
                   path);
        goto out;
    }
    if (pf_trailer_check(trailer, h, out->bytes, out->bundle_hash, trust.key.sign_pk, e) != 0) {
        pf_err_prefix(e, "%s: ", path);
        goto out;
    }
    out->bytes += sizeof trailer;
    got = pf_read_full(fd, &extra, 1);
    if (got != 0) {
        if (got < 0)
            pf_err_sys(e, errno, "%s: read failed", path);
        else
            pf_err_set(e, PF_EREJECT, "%s: unexpected data after the trailer", path);
        goto out;
    }
    rc = 0;
out:
    free(buf);
    if (fd >= 0)
        close(fd);
    return rc;
}
