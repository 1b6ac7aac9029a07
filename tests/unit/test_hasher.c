/* The threaded hasher must give exactly crypto_generichash's BLAKE2b-256
 * for any split of the input, honour its buffer contract (small updates
 * are copied; large ones are read until their ticket is waited for), and
 * start afresh after every final. */
#include <sodium.h>

#include "bundle/hasher.h"
#include "check.h"

#define DATA_BYTES (3u << 20)

static void reference(const uint8_t *data, size_t len, uint8_t out[PF_HASH_BYTES])
{
    crypto_generichash(out, PF_HASH_BYTES, data, len, NULL, 0);
}

/* Random splits, each piece hashed from a scratch copy that is reused as
 * soon as its ticket allows (two scratch buffers, like the sealer's). */
/* threaded: pf_hasher_new(); in the caller's thread: sized below the
 * threshold. Same results either way. */
static void test_random_splits(const uint8_t *data, bool threaded)
{
    pf_hasher *h = threaded ? pf_hasher_new() : pf_hasher_new_sized(PF_HASHER_THREAD_MIN_BYTES - 1);
    uint8_t *scratch[2] = {malloc(DATA_BYTES), malloc(DATA_BYTES)};
    CHECK(h != NULL && scratch[0] != NULL && scratch[1] != NULL);
    if (h == NULL || scratch[0] == NULL || scratch[1] == NULL)
        goto out;
    for (int round = 0; round < 40; round++) {
        size_t len = randombytes_uniform(DATA_BYTES) + (round == 0 ? 0 : 1);
        if (round == 0)
            len = 0;
        uint64_t ticket[2] = {0, 0};
        unsigned w = 0;
        size_t off = 0;
        while (off < len) {
            /* mostly small pieces some rounds, large ones others */
            size_t cap = round % 3 == 0 ? PF_HASHER_INLINE_BYTES + 2 : 1u << 20;
            size_t n = randombytes_uniform((uint32_t)cap) + 1;
            if (n > len - off)
                n = len - off;
            pf_hasher_wait(h, ticket[w]);
            memcpy(scratch[w], data + off, n);
            ticket[w] = pf_hasher_update(h, scratch[w], n);
            if (n <= PF_HASHER_INLINE_BYTES)
                memset(scratch[w], 0xa5, n); /* copied: may change at once */
            w = 1 - w;
            off += n;
        }
        uint8_t got[PF_HASH_BYTES], want[PF_HASH_BYTES];
        pf_hasher_final(h, got);
        reference(data, len, want);
        CHECK_MSG(memcmp(got, want, PF_HASH_BYTES) == 0, "round %d, %zu bytes", round, len);
    }
out:
    pf_hasher_free(h);
    free(scratch[0]);
    free(scratch[1]);
}

/* A hasher freed with updates still queued must not touch them (their
 * buffers may be gone), and freeing NULL is fine. */
static void test_free_with_work_queued(const uint8_t *data)
{
    for (int i = 0; i < 20; i++) {
        pf_hasher *h = pf_hasher_new();
        CHECK(h != NULL);
        if (h == NULL)
            return;
        uint8_t *copy = malloc(DATA_BYTES);
        CHECK(copy != NULL);
        if (copy != NULL) {
            memcpy(copy, data, DATA_BYTES);
            for (int j = 0; j < 8; j++)
                pf_hasher_update(h, copy + (size_t)j * (DATA_BYTES / 8), DATA_BYTES / 8);
        }
        pf_hasher_free(h); /* joins the thread: nothing reads copy after this */
        free(copy);
    }
    pf_hasher_free(NULL);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    uint8_t *data = malloc(DATA_BYTES);
    if (data == NULL)
        return 1;
    randombytes_buf(data, DATA_BYTES);
    test_random_splits(data, true);
    test_random_splits(data, false);
    test_free_with_work_queued(data);
    free(data);
    return check_summary("test_hasher");
}
