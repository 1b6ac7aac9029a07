/* fuzz_receipt: receipts, as a sensor reads them from removable media.
 *
 * Each input is read twice with pf_receipt_read and the fixed central key:
 *  1. as it is (a receipt file: magic line, base64 signature, JSON);
 *  2. re-signed: its JSON body (what follows the second line of an input
 *     that looks like a receipt, else the whole input) is signed with the
 *     central key and written as a receipt, so the JSON parsing and field
 *     checks behind the signature see the mutations too.
 * Checks: an accepted receipt names a valid sensor and only entries with
 * seq > 0 and a known status; entry count matches the JSON array. */
#include "fuzz_common.h"

#include "bundle/receipt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAGIC "pcapferry-receipt-v1\n"

static char raw_path[PATH_MAX], signed_path[PATH_MAX];

static void check(const char *path)
{
    pf_receipt *r = NULL;
    pf_err e;
    pf_err_clear(&e);
    int rc = pf_receipt_read(path, &fz.central->pub, &r, &e);
    fz_note(path == raw_path ? "read" : "read re-signed", rc, &e);
    if (rc != 0) {
        FZ_ASSERT(r == NULL && e.status != PF_OK, "failed read returned a receipt");
        return;
    }
    FZ_ASSERT(pf_name_valid(r->sensor), "accepted sensor name '%s'", r->sensor);
    uint8_t want[PF_KEYID_BYTES];
    pf_key_id(want, fz.central->pub.sign_pk, PF_SIGN_PK_BYTES);
    FZ_ASSERT(memcmp(want, r->central_id, PF_KEYID_BYTES) == 0, "accepted another central id");
    for (size_t i = 0; i < r->n; i++) {
        FZ_ASSERT(r->v[i].seq > 0, "entry %zu has seq 0", i);
        FZ_ASSERT(r->v[i].status == PF_RCPT_COMMITTED || r->v[i].status == PF_RCPT_REJECTED,
                  "entry %zu has status %d", i, (int)r->v[i].status);
    }
    pf_receipt_free(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!fz.ready) {
        fz_init();
        snprintf(raw_path, sizeof raw_path, "%s/raw.receipt", fz.dir);
        snprintf(signed_path, sizeof signed_path, "%s/signed.receipt", fz.dir);
    }
    fz_rng_reset(7);
    if (size > PF_RECEIPT_MAX_BYTES)
        return 0;
    fz_write_file(raw_path, data, size, 0644);
    check(raw_path);

    /* The body as the reader will take it: after the signature line, the
     * writer's final newline not included. */
    const uint8_t *body = data;
    size_t blen = size, mlen = strlen(MAGIC);
    if (size > mlen && memcmp(data, MAGIC, mlen) == 0) {
        const uint8_t *nl = memchr(data + mlen, '\n', size - mlen);
        if (nl != NULL) {
            body = nl + 1;
            blen = size - (size_t)(body - data);
        }
    }
    if (blen > 0 && body[blen - 1] == '\n')
        blen--;
    uint8_t sig[PF_SIG_BYTES];
    char b64[sodium_base64_ENCODED_LEN(PF_SIG_BYTES, sodium_base64_VARIANT_ORIGINAL)];
    pf_sign_ctx(sig, PF_SIGCTX_RECEIPT, body, blen, fz.central->sign_sk);
    sodium_bin2base64(b64, sizeof b64, sig, sizeof sig, sodium_base64_VARIANT_ORIGINAL);
    size_t tlen = mlen + strlen(b64) + 1 + blen + 1;
    uint8_t *text = malloc(tlen);
    if (text == NULL)
        return 0;
    memcpy(text, MAGIC, mlen);
    memcpy(text + mlen, b64, strlen(b64));
    text[mlen + strlen(b64)] = '\n';
    if (blen > 0)
        memcpy(text + mlen + strlen(b64) + 1, body, blen);
    text[tlen - 1] = '\n';
    fz_write_file(signed_path, text, tlen, 0644);
    free(text);
    check(signed_path);
    return 0;
}
