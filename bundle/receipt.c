#include "bundle/receipt.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <unistd.h>
#include <fcntl.h>

#include "bundle/header.h"
#include "common/fsutil.h"
#include "common/text.h"

#define RECEIPT_MAGIC "pcapferry-receipt-v1\n"

pf_receipt *pf_receipt_new(const char *sensor)
{
    pf_receipt *r = calloc(1, sizeof *r);
    if (r != NULL)
        snprintf(r->sensor, sizeof r->sensor, "%s", sensor);
    return r;
}

int pf_receipt_add(pf_receipt *r, uint64_t seq, const uint8_t hash[PF_HASH_BYTES],
                   const uint8_t *header_hash, enum pf_receipt_status status, const char *reason,
                   pf_err *e)
{
    if (r->n == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 16;
        pf_receipt_entry *g = realloc(r->v, cap * sizeof *g);
        if (g == NULL)
            return pf_err_set(e, PF_EENV, "out of memory");
        r->v = g;
        r->cap = cap;
    }
    pf_receipt_entry *x = &r->v[r->n++];
    memset(x, 0, sizeof *x);
    x->seq = seq;
    memcpy(x->hash, hash, PF_HASH_BYTES);
    if (header_hash != NULL) {
        memcpy(x->header_hash, header_hash, PF_HASH_BYTES);
        x->has_header_hash = true;
    }
    x->status = status;
    snprintf(x->reason, sizeof x->reason, "%s", reason != NULL ? reason : "");
    return 0;
}

void pf_receipt_free(pf_receipt *r)
{
    if (r == NULL)
        return;
    free(r->v);
    free(r);
}

int pf_receipt_write(pf_receipt *r, const pf_seckey *central, const char *dir, char *name,
                     size_t cap, pf_err *e)
{
    if (pf_mkdir_p(dir, 0755, e) != 0)
        return -1;
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return pf_err_sys(e, errno, "%s: cannot open directory", dir);
    int rc = pf_receipt_write_at(r, central, dfd, dir, name, cap, e);
    close(dfd);
    return rc;
}

int pf_receipt_write_at(pf_receipt *r, const pf_seckey *central, int dirfd, const char *dir,
                        char *name, size_t cap, pf_err *e)
{
    char iso[PF_ISOTIME_BYTES], when[32], idhex[PF_KEYID_HEX_BYTES], hhex[2 * PF_HASH_BYTES + 1];
    char b64[sodium_base64_ENCODED_LEN(PF_SIG_BYTES, sodium_base64_VARIANT_ORIGINAL)];
    uint8_t sig[PF_SIG_BYTES];
    json_t *root = NULL, *arr = NULL;
    char *body = NULL, *text = NULL;
    int rc = -1;

    if (central->pub.role != PF_ROLE_CENTRAL)
        return pf_err_set(e, PF_EUSAGE, "receipts are signed with the central key");
    arr = json_array();
    r->issued_ns = pf_now_ns();
    pf_key_id(r->central_id, central->pub.sign_pk, PF_SIGN_PK_BYTES);
    pf_hex(idhex, r->central_id, PF_KEYID_BYTES);
    pf_isotime_ns(iso, sizeof iso, r->issued_ns);
    for (size_t i = 0; i < r->n; i++) {
        if (r->v[i].status == PF_RCPT_COMMITTED && !r->v[i].has_header_hash) {
            pf_err_set(e, PF_EENV, "internal error: receipt entry for seq %llu has no header hash",
                       (unsigned long long)r->v[i].seq);
            goto out;
        }
        pf_hex(hhex, r->v[i].hash, PF_HASH_BYTES);
        json_t *o =
            json_pack("{s:I, s:s, s:s}", "seq", (json_int_t)r->v[i].seq, "hash", hhex, "status",
                      r->v[i].status == PF_RCPT_COMMITTED ? "committed" : "rejected");
        if (r->v[i].has_header_hash) {
            pf_hex(hhex, r->v[i].header_hash, PF_HASH_BYTES);
            json_object_set_new(o, "header_hash", json_string(hhex));
        }
        if (r->v[i].reason[0] != '\0')
            json_object_set_new(o, "reason", json_string(r->v[i].reason));
        json_array_append_new(arr, o);
    }
    root = json_pack("{s:s, s:i, s:s, s:s, s:s, s:I, s:o}", "type", "pcapferry-receipt", "version",
                     2, "sensor", r->sensor, "central_key_id", idhex, "issued", iso, "issued_ns",
                     (json_int_t)r->issued_ns, "bundles", arr);
    arr = NULL;
    body = root != NULL ? json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    if (body == NULL) {
        pf_err_set(e, PF_EENV, "out of memory");
        goto out;
    }
    pf_sign_ctx(sig, PF_SIGCTX_RECEIPT, (const uint8_t *)body, strlen(body), central->sign_sk);
    sodium_bin2base64(b64, sizeof b64, sig, sizeof sig, sodium_base64_VARIANT_ORIGINAL);
    size_t tlen = strlen(RECEIPT_MAGIC) + strlen(b64) + 1 + strlen(body) + 2;
    text = malloc(tlen);
    if (text == NULL) {
        pf_err_set(e, PF_EENV, "out of memory");
        goto out;
    }
    snprintf(text, tlen, "%s%s\n%s\n", RECEIPT_MAGIC, b64, body);
    pf_compact_time(when, sizeof when, r->issued_ns);
    snprintf(name, cap, "%s-%s-%08x%s", r->sensor, when, randombytes_random(), PF_RECEIPT_SUFFIX);
    if (pf_atomic_write_at(dirfd, dir, name, text, strlen(text), 0644, true, e) != 0)
        goto out;
    rc = 0;
out:
    json_decref(arr);
    json_decref(root);
    free(body);
    free(text);
    return rc;
}

int pf_receipt_read(const char *path, const pf_pubkey *central, pf_receipt **out, pf_err *e)
{
    uint8_t *raw = NULL, sig[PF_SIG_BYTES];
    size_t len = 0, siglen = 0;
    json_t *root = NULL;
    pf_receipt *r = NULL;
    int rc = -1;

    *out = NULL;
    if (pf_read_file(path, PF_RECEIPT_MAX_BYTES, 0, &raw, &len, e) != 0)
        return -1;
    size_t mlen = strlen(RECEIPT_MAGIC);
    const char *t = (const char *)raw;
    const char *nl = len > mlen ? memchr(t + mlen, '\n', len - mlen) : NULL;
    if (len <= mlen || memcmp(t, RECEIPT_MAGIC, mlen) != 0 || nl == NULL) {
        pf_err_set(e, PF_EREJECT, "%s: not a pcapferry receipt", path);
        goto out;
    }
    const char *end = NULL;
    if (sodium_base642bin(sig, sizeof sig, t + mlen, (size_t)(nl - (t + mlen)), NULL, &siglen, &end,
                          sodium_base64_VARIANT_ORIGINAL) != 0 ||
        siglen != sizeof sig || end != nl) {
        pf_err_set(e, PF_EREJECT, "%s: receipt signature line is malformed", path);
        goto out;
    }
    const uint8_t *body = (const uint8_t *)nl + 1;
    size_t blen = len - (size_t)(body - raw);
    if (blen > 0 && body[blen - 1] == '\n')
        blen--; /* the writer's final newline is not signed */
    /* verify before parse */
    if (!pf_verify_ctx(sig, PF_SIGCTX_RECEIPT, body, blen, central->sign_pk)) {
        pf_err_set(e, PF_EREJECT,
                   "%s: receipt signature is invalid (forged, altered, or from another central "
                   "key)",
                   path);
        goto out;
    }
    json_error_t jerr;
    root = json_loadb((const char *)body, blen, JSON_REJECT_DUPLICATES, &jerr);
    const char *type = json_string_value(json_object_get(root, "type"));
    const char *sensor = json_string_value(json_object_get(root, "sensor"));
    const char *cid = json_string_value(json_object_get(root, "central_key_id"));
    json_t *bundles = json_object_get(root, "bundles");
    json_t *issued = json_object_get(root, "issued_ns");
    json_int_t version = json_integer_value(json_object_get(root, "version"));
    r = sensor != NULL ? pf_receipt_new(sensor) : NULL;
    if (root == NULL || type == NULL || strcmp(type, "pcapferry-receipt") != 0 ||
        (version != 1 && version != 2) || r == NULL || !pf_name_valid(sensor) || cid == NULL ||
        !pf_unhex(r->central_id, PF_KEYID_BYTES, cid) || !json_is_array(bundles) ||
        !json_is_integer(issued)) {
        pf_err_set(e, PF_EREJECT, "%s: receipt content is malformed", path);
        goto out;
    }
    uint8_t want[PF_KEYID_BYTES];
    pf_key_id(want, central->sign_pk, PF_SIGN_PK_BYTES);
    if (memcmp(want, r->central_id, PF_KEYID_BYTES) != 0) {
        pf_err_set(e, PF_EREJECT, "%s: receipt names another central key", path);
        goto out;
    }
    r->issued_ns = (int64_t)json_integer_value(issued);
    size_t i;
    json_t *b;
    json_array_foreach(bundles, i, b)
    {
        json_t *seq = json_object_get(b, "seq");
        const char *hash = json_string_value(json_object_get(b, "hash"));
        const char *status = json_string_value(json_object_get(b, "status"));
        const char *reason = json_string_value(json_object_get(b, "reason"));
        json_t *hh = json_object_get(b, "header_hash");
        uint8_t h[PF_HASH_BYTES], hdr[PF_HASH_BYTES];
        enum pf_receipt_status st;
        if (!json_is_integer(seq) || json_integer_value(seq) <= 0 || hash == NULL ||
            !pf_unhex(h, PF_HASH_BYTES, hash) || status == NULL ||
            (hh != NULL && (version < 2 || json_string_value(hh) == NULL ||
                            !pf_unhex(hdr, PF_HASH_BYTES, json_string_value(hh))))) {
            pf_err_set(e, PF_EREJECT, "%s: receipt entry %zu is malformed", path, i);
            goto out;
        }
        if (strcmp(status, "committed") == 0)
            st = PF_RCPT_COMMITTED;
        else if (strcmp(status, "rejected") == 0)
            st = PF_RCPT_REJECTED;
        else {
            pf_err_set(e, PF_EREJECT, "%s: receipt entry %zu has unknown status", path, i);
            goto out;
        }
        /* From version 2 on, a commitment that does not name the header
         * would let a trailer's claim alone delete a bundle. */
        if (version >= 2 && st == PF_RCPT_COMMITTED && hh == NULL) {
            pf_err_set(e, PF_EREJECT, "%s: receipt entry %zu names no header hash", path, i);
            goto out;
        }
        if (pf_receipt_add(r, (uint64_t)json_integer_value(seq), h, hh != NULL ? hdr : NULL, st,
                           reason, e) != 0)
            goto out;
    }
    *out = r;
    r = NULL;
    rc = 0;
out:
    json_decref(root);
    pf_receipt_free(r);
    pf_free_file(raw, false);
    return rc;
}
