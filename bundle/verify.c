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
    int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return pf_err_sys(e, errno, "%s: cannot open", path);
    int rc = pf_bundle_read_header_fd(fd, path, out, file_size, e);
    close(fd);
    return rc;
}

static ssize_t pread_full(int fd, void *buf, size_t n, off_t at)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, (uint8_t *)buf + got, n - got, at + (off_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

int pf_bundle_read_header_fd(int fd, const char *path, pf_header *out, uint64_t *file_size,
                             pf_err *e)
{
    uint8_t raw[PF_HEADER_MAX_BYTES];
    size_t total = 0;
    struct stat st;
    if (fstat(fd, &st) != 0)
        return pf_err_sys(e, errno, "%s: cannot stat", path);
    if (file_size != NULL)
        *file_size = (uint64_t)st.st_size;
    /* pread: the descriptor's position stays where the caller left it */
    ssize_t got = pread_full(fd, raw, PF_HEADER_PREFIX_BYTES, 0);
    if (got < 0)
        return pf_err_sys(e, errno, "%s: read failed", path);
    if (got < PF_HEADER_PREFIX_BYTES) {
        if (!pf_header_prefix_plausible(raw, (size_t)got))
            return pf_err_set(e, PF_EREJECT, "%s: not a pcapferry bundle (bad magic)", path);
        return pf_err_set(e, PF_EINCOMPLETE, "%s: incomplete: shorter than a bundle header", path);
    }
    if (pf_header_prefix_len(raw, &total, e) != 0) {
        pf_err_prefix(e, "%s: ", path);
        return -1;
    }
    got = pread_full(fd, raw + PF_HEADER_PREFIX_BYTES, total - PF_HEADER_PREFIX_BYTES,
                     PF_HEADER_PREFIX_BYTES);
    if (got < 0)
        return pf_err_sys(e, errno, "%s: read failed", path);
    if (pf_header_decode(raw, PF_HEADER_PREFIX_BYTES + (size_t)got, out, e) != 0) {
        pf_err_prefix(e, "%s: ", path);
        return -1;
    }
    return 0;
}

/* Walks the chunk framing and hashes every byte: with public keys alone
 * this proves the bundle is whole and exactly what the sensor signed. */
static int verify_body(int fd, const char *path, const pf_trust *trust, pf_verified *out,
                       pf_err *e);

/* One open for the header and the body: what is judged is what is read. */
static int open_bundle(const char *path, pf_verified *out, pf_err *e)
{
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    struct stat st;
    if (fd < 0)
        return pf_err_sys(e, errno, "%s: cannot open", path);
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return pf_err_set(e, PF_EREJECT, "%s: not a regular file", path);
    }
    if (pf_bundle_read_header_fd(fd, path, &out->hdr, NULL, e) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int pf_bundle_trust(const char *keyring, const pf_header *h, pf_trust *t, bool *need_vouch,
                    pf_err *e)
{
    return pf_bundle_trust_proved(keyring, h, NULL, NULL, t, need_vouch, e);
}

int pf_bundle_trust_proved(const char *keyring, const pf_header *h, const pf_header_proof *proof,
                           pf_header_proof *made, pf_trust *t, bool *need_vouch, pf_err *e)
{
    pf_header_proof mine;
    if (made != NULL)
        memset(made, 0, sizeof *made);
    *need_vouch = false;
    if (pf_keyring_lookup(keyring, h->signer_id, t, e) != 0)
        return -1;
    if (t->key.role != PF_ROLE_SENSOR)
        return pf_err_set(e, PF_EREJECT, "signed by a key that is not a sensor key");
    /* The signature first: a name changed in transit is damage, and only
     * a name the key really signed is held against its sensor. */
    if (!pf_header_proof_covers(proof, h, t->key.sign_pk)) {
        if (pf_header_verify_proof(h, t->key.sign_pk, &mine, e) != 0)
            return -1;
        proof = &mine;
    }
    if (pf_trust_allows_sensor(t, h->sensor, e) != 0 ||
        pf_trust_check_seq(t, h->seq, need_vouch, e) != 0)
        return -1;
    if (made != NULL)
        *made = *proof;
    return 0;
}

int pf_bundle_not_vouched(const char *what, const pf_trust *t, const pf_header *h, pf_err *e)
{
    char idhex[PF_KEYID_HEX_BYTES];
    pf_hex(idhex, t->key.key_id, PF_KEYID_BYTES);
    return pf_err_set(e, PF_EREJECT,
                      "%s: signing key %s (%s) is revoked after seq %llu; this bundle (seq %llu) "
                      "is not vouched for, so nothing tells it from one made with the key after "
                      "the revocation (keys revoke --allow names genuine bundle hashes; import "
                      "also accepts one that an imported bundle names as prev_hash)",
                      what, idhex, t->key.name, (unsigned long long)t->valid_through,
                      (unsigned long long)h->seq);
}

int pf_bundle_fd_hash(int fd, const char *what, uint8_t hash[PF_HASH_BYTES], pf_err *e)
{
    uint8_t t[PF_TRAILER_BYTES];
    crypto_generichash_state st;
    struct stat sb;
    uint8_t *buf = NULL;
    int rc = -1;

    if (fstat(fd, &sb) != 0)
        return pf_err_sys(e, errno, "%s: cannot stat", what);
    if (!S_ISREG(sb.st_mode))
        return pf_err_set(e, PF_EREJECT, "%s: not a regular file", what);
    /* Only a complete file has a trailer that says where it ends. */
    if (sb.st_size <= (off_t)PF_TRAILER_BYTES ||
        pread(fd, t, sizeof t, sb.st_size - (off_t)sizeof t) != (ssize_t)sizeof t ||
        memcmp(t, PF_TRAILER_MAGIC, PF_TRAILER_MAGIC_BYTES) != 0 ||
        pf_load_u64(t + PF_TRAILER_MAGIC_BYTES) != (uint64_t)sb.st_size - PF_TRAILER_BYTES)
        return pf_err_set(e, PF_EINCOMPLETE,
                          "%s: incomplete: no trailer at the end of the file (still being "
                          "copied, or truncated)",
                          what);
    buf = malloc(1u << 20);
    if (buf == NULL)
        return pf_err_set(e, PF_EENV, "out of memory");
    crypto_generichash_init(&st, NULL, 0, PF_HASH_BYTES);
    uint64_t left = (uint64_t)sb.st_size - PF_TRAILER_BYTES;
    off_t off = 0;
    while (left > 0) {
        size_t want = left < (1u << 20) ? (size_t)left : (1u << 20);
        ssize_t got = pread(fd, buf, want, off);
        if (got <= 0) {
            if (got < 0)
                pf_err_sys(e, errno, "%s: read failed", what);
            else
                pf_err_set(e, PF_EINCOMPLETE, "%s: incomplete: file shrank while read", what);
            goto out;
        }
        crypto_generichash_update(&st, buf, (size_t)got);
        left -= (uint64_t)got;
        off += got;
    }
    crypto_generichash_final(&st, hash, PF_HASH_BYTES);
    rc = 0;
out:
    free(buf);
    return rc;
}

int pf_bundle_verify(const char *path, const char *keyring, pf_verified *out, pf_err *e)
{
    pf_trust *trust = NULL;
    bool need_vouch = false;
    int rc = -1;
    memset(out, 0, sizeof *out);
    int fd = open_bundle(path, out, e);
    if (fd < 0)
        return -1;
    trust = malloc(sizeof *trust);
    if (trust == NULL) {
        close(fd);
        return pf_err_set(e, PF_EENV, "out of memory");
    }
    if (pf_bundle_trust(keyring, &out->hdr, trust, &need_vouch, e) != 0) {
        pf_err_prefix(e, "%s: ", path);
        goto out;
    }
    if (verify_body(fd, path, trust, out, e) != 0)
        goto out;
    /* No import state here: only the operator's list can vouch. */
    if (need_vouch && !pf_trust_hash_allowed(trust, out->bundle_hash)) {
        pf_bundle_not_vouched(path, trust, &out->hdr, e);
        goto out;
    }
    rc = 0;
out:
    free(trust);
    close(fd);
    return rc;
}

int pf_bundle_verify_key(const char *path, const pf_pubkey *sensor, pf_verified *out, pf_err *e)
{
    pf_trust *trust = calloc(1, sizeof *trust);
    int rc = -1;
    memset(out, 0, sizeof *out);
    if (trust == NULL)
        return pf_err_set(e, PF_EENV, "out of memory");
    trust->key = *sensor;
    int fd = open_bundle(path, out, e);
    if (fd >= 0) {
        rc = verify_body(fd, path, trust, out, e);
        close(fd);
    }
    free(trust);
    return rc;
}

static int verify_body(int fd, const char *path, const pf_trust *trust_in, pf_verified *out,
                       pf_err *e)
{
    crypto_generichash_state hash;
    uint8_t *buf = NULL;
    uint8_t lenbuf[4], trailer[PF_TRAILER_BYTES], extra;
    const pf_trust *t = trust_in;
    int rc = -1;
    const pf_header *h = &out->hdr;

    if (pf_header_verify(h, t->key.sign_pk, e) != 0) {
        pf_err_prefix(e, "%s: ", path);
        return -1;
    }
    if (t->key.role != PF_ROLE_SENSOR)
        return pf_err_set(e, PF_EREJECT, "%s: signed by a key that is not a sensor key", path);
    buf = malloc((size_t)h->chunk_size + PF_CHUNK_ABYTES);
    if (buf == NULL || lseek(fd, 0, SEEK_SET) != 0) {
        pf_err_sys(e, buf == NULL ? ENOMEM : errno, "%s: cannot read", path);
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
    if (pf_trailer_check(trailer, h, out->bytes, out->bundle_hash, t->key.sign_pk, e) != 0) {
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
    return rc;
}
