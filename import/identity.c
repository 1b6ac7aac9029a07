#include "import/identity.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct chain {
    bool vouches, refutes;
    uint64_t by_seq, by_prev;
};

static int chain_row(void *ctx, sqlite3_stmt *st, pf_err *e)
{
    struct chain *c = ctx;
    (void)e;
    /* columns: seq, prev_seq, vouches (1 when prev_hash is this bundle) */
    uint64_t seq = (uint64_t)sqlite3_column_int64(st, 0);
    uint64_t prev = (uint64_t)sqlite3_column_int64(st, 1);
    if (sqlite3_column_int(st, 2) != 0) {
        c->vouches = true;
    } else if (!c->refutes) {
        c->refutes = true;
        c->by_seq = seq;
        c->by_prev = prev;
    }
    return 0;
}

int pf_identity_check_revocation(pf_db *db, const pf_trust *t, int fd, const pf_header *h,
                                 uint8_t vouched[PF_HASH_BYTES], bool *has_vouched, pf_err *e)
{
    bool need = false;
    uint8_t th[PF_HASH_BYTES];
    char hex[2 * PF_HASH_BYTES + 1];
    struct chain c = {0};

    *has_vouched = false;
    if (pf_trust_check_seq(t, h->seq, &need, e) != 0)
        return -1;
    if (!need)
        return 0;
    /* The hash the trailer claims picks the chain link; extraction then
     * hashes the whole file and accepts nothing else. */
    if (pf_bundle_trailer_hash_fd(fd, th) != 0)
        return pf_err_set(e, PF_EINCOMPLETE,
                          "incomplete: no trailer at the end of the file (still being copied, "
                          "or truncated)");
    if (pf_trust_hash_allowed(t, th))
        return 0;
    pf_hex(hex, th, sizeof th);
    /* A later bundle of this sensor whose prev link spans this seq either
     * names this bundle (vouches) or proves that another one, or none, sat
     * there (prev_seq 0 names nothing and proves nothing). */
    if (pf_db_query(db, e, chain_row, &c,
                    "SELECT seq, prev_seq, (prev_seq = ? AND prev_hash = ?) FROM bundles "
                    "WHERE sensor = ? AND seq > ? AND prev_seq BETWEEN 1 AND ?",
                    "ussuu", h->seq, hex, h->sensor, h->seq, h->seq) != 0)
        return -1;
    if (c.vouches) {
        memcpy(vouched, th, PF_HASH_BYTES);
        *has_vouched = true;
        return 0;
    }
    char idhex[PF_KEYID_HEX_BYTES];
    pf_hex(idhex, t->key.key_id, PF_KEYID_BYTES);
    if (c.refutes && c.by_prev == h->seq)
        return pf_err_set(e, PF_EREJECT,
                          "signing key %s (%s) is revoked after seq %" PRIu64
                          "; this bundle (seq %" PRIu64 ") is not the one the imported bundle "
                          "seq %" PRIu64 " chains to (another hash): made with the key after the "
                          "revocation",
                          idhex, t->key.name, t->valid_through, h->seq, c.by_seq);
    if (c.refutes)
        return pf_err_set(e, PF_EREJECT,
                          "signing key %s (%s) is revoked after seq %" PRIu64
                          "; the imported bundle seq %" PRIu64 " chains to seq %" PRIu64
                          ", so the sensor never sent a seq %" PRIu64
                          " before it: made with the key after the revocation",
                          idhex, t->key.name, t->valid_through, c.by_seq, c.by_prev, h->seq);
    return pf_err_set(e, PF_EINCOMPLETE,
                      "signing key %s (%s) is revoked after seq %" PRIu64
                      "; this bundle (seq %" PRIu64 ") waits until an imported bundle names it "
                      "as prev_hash or 'keys revoke --allow' names its hash",
                      idhex, t->key.name, t->valid_through, h->seq);
}
