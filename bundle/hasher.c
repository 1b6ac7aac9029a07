#include "bundle/hasher.h"

#include <pthread.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* A few jobs in flight let small updates (chunk lengths, headers) queue
 * behind a large one instead of waiting for it. */
#define QUEUE_JOBS 8u

struct job {
    const uint8_t *buf; /* the caller's, or inline */
    size_t len;
    uint8_t inline_bytes[PF_HASHER_INLINE_BYTES];
};

struct pf_hasher {
    crypto_generichash_state state; /* first: its 64-byte alignment */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    bool threaded, quit;
    struct job jobs[QUEUE_JOBS];
    uint64_t issued; /* tickets handed out; job t sits in jobs[(t - 1) % QUEUE_JOBS] */
    uint64_t done;   /* tickets whose bytes are in the state */
};

static void *hasher_main(void *arg)
{
    pf_hasher *h = arg;
    pthread_mutex_lock(&h->mu);
    for (;;) {
        while (h->done == h->issued && !h->quit)
            pthread_cond_wait(&h->cv, &h->mu);
        if (h->quit)
            break; /* jobs left are abandoned: their buffers may be gone */
        struct job *j = &h->jobs[h->done % QUEUE_JOBS];
        pthread_mutex_unlock(&h->mu);
        crypto_generichash_update(&h->state, j->buf, j->len);
        pthread_mutex_lock(&h->mu);
        h->done++;
        pthread_cond_broadcast(&h->cv);
    }
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

pf_hasher *pf_hasher_new(void)
{
    return pf_hasher_new_sized(UINT64_MAX);
}

pf_hasher *pf_hasher_new_sized(uint64_t bytes)
{
    pf_hasher *h = NULL;
    if (posix_memalign((void **)&h, 64, sizeof *h) != 0)
        return NULL;
    memset(h, 0, sizeof *h);
    crypto_generichash_init(&h->state, NULL, 0, PF_HASH_BYTES);
    if (pthread_mutex_init(&h->mu, NULL) != 0) {
        free(h);
        return NULL;
    }
    if (pthread_cond_init(&h->cv, NULL) != 0) {
        pthread_mutex_destroy(&h->mu);
        free(h);
        return NULL;
    }
    h->threaded = bytes >= PF_HASHER_THREAD_MIN_BYTES &&
                  pthread_create(&h->thread, NULL, hasher_main, h) == 0;
    return h;
}

uint64_t pf_hasher_update(pf_hasher *h, const void *buf, size_t len)
{
    if (!h->threaded) {
        crypto_generichash_update(&h->state, buf, len);
        return 0;
    }
    pthread_mutex_lock(&h->mu);
    while (h->issued - h->done == QUEUE_JOBS)
        pthread_cond_wait(&h->cv, &h->mu);
    struct job *j = &h->jobs[h->issued % QUEUE_JOBS];
    j->len = len;
    if (len <= sizeof j->inline_bytes) {
        if (len > 0)
            memcpy(j->inline_bytes, buf, len);
        j->buf = j->inline_bytes;
    } else {
        j->buf = buf;
    }
    uint64_t ticket = ++h->issued;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
    return ticket;
}

void pf_hasher_wait(pf_hasher *h, uint64_t ticket)
{
    if (!h->threaded)
        return;
    pthread_mutex_lock(&h->mu);
    while (h->done < ticket)
        pthread_cond_wait(&h->cv, &h->mu);
    pthread_mutex_unlock(&h->mu);
}

void pf_hasher_final(pf_hasher *h, uint8_t out[PF_HASH_BYTES])
{
    pf_hasher_wait(h, h->issued);
    /* The mutex in pf_hasher_wait orders the thread's writes to the state
     * before these. */
    crypto_generichash_final(&h->state, out, PF_HASH_BYTES);
    crypto_generichash_init(&h->state, NULL, 0, PF_HASH_BYTES);
}

void pf_hasher_free(pf_hasher *h)
{
    if (h == NULL)
        return;
    if (h->threaded) {
        pthread_mutex_lock(&h->mu);
        h->quit = true;
        pthread_cond_broadcast(&h->cv);
        pthread_mutex_unlock(&h->mu);
        pthread_join(h->thread, NULL);
    }
    pthread_cond_destroy(&h->cv);
    pthread_mutex_destroy(&h->mu);
    sodium_memzero(h, sizeof *h);
    free(h);
}
