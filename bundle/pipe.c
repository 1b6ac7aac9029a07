#include "bundle/pipe.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

int pf_pipe_init(pf_pipe *p, size_t bufsize, pf_err *e)
{
    return pf_pipe_init_n(p, bufsize, PF_PIPE_BUFFERS, e);
}

int pf_pipe_init_n(pf_pipe *p, size_t bufsize, size_t nbuf, pf_err *e)
{
    memset(p, 0, sizeof *p);
    p->bufsize = bufsize;
    p->nbuf = nbuf < 1 ? 1 : nbuf > PF_PIPE_BUFFERS ? PF_PIPE_BUFFERS : nbuf;
    if (pthread_mutex_init(&p->mu, NULL) != 0 || pthread_cond_init(&p->cv, NULL) != 0)
        return pf_err_set(e, PF_EENV, "cannot set up a thread hand-off");
    for (size_t i = 0; i < p->nbuf; i++) {
        p->all[i] = malloc(bufsize);
        if (p->all[i] == NULL)
            return pf_err_set(e, PF_EENV, "out of memory");
        p->free[p->nfree++] = p->all[i];
    }
    return 0;
}

void pf_pipe_note(pf_pipe *p, size_t len)
{
    pthread_mutex_lock(&p->mu);
    p->used_known = true;
    if (len > p->used)
        p->used = len;
    pthread_mutex_unlock(&p->mu);
}

void pf_pipe_destroy(pf_pipe *p)
{
    size_t wipe = p->used_known && p->used < p->bufsize ? p->used : p->bufsize;
    for (size_t i = 0; i < PF_PIPE_BUFFERS; i++) {
        if (p->all[i] != NULL)
            sodium_memzero(p->all[i], wipe);
        free(p->all[i]);
        p->all[i] = NULL;
    }
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
}

uint8_t *pf_pipe_take(pf_pipe *p)
{
    uint8_t *b = NULL;
    pthread_mutex_lock(&p->mu);
    while (p->nfree == 0 && !p->failed && !p->cancelled)
        pthread_cond_wait(&p->cv, &p->mu);
    if (!p->failed && !p->cancelled)
        b = p->free[--p->nfree];
    pthread_mutex_unlock(&p->mu);
    return b;
}

void pf_pipe_give_back(pf_pipe *p, uint8_t *buf)
{
    if (buf == NULL)
        return;
    pthread_mutex_lock(&p->mu);
    p->free[p->nfree++] = buf;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

void pf_pipe_push(pf_pipe *p, const pf_pipe_slot *slot)
{
    pthread_mutex_lock(&p->mu);
    /* Never full: there are as many slots as buffers, plus one for the
     * buffer-less end marker. */
    p->q[(p->head + p->count) % (PF_PIPE_BUFFERS + 1)] = *slot;
    p->count++;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

int pf_pipe_pop(pf_pipe *p, pf_pipe_slot *out, pf_err *e)
{
    int rc = 0;
    pthread_mutex_lock(&p->mu);
    while (p->count == 0 && !p->failed && !p->cancelled)
        pthread_cond_wait(&p->cv, &p->mu);
    if (p->count > 0) {
        /* What was queued before a failure is still delivered in order:
         * the error surfaces exactly where it happened in the stream. */
        *out = p->q[p->head];
        p->head = (p->head + 1) % (PF_PIPE_BUFFERS + 1);
        p->count--;
        pthread_cond_broadcast(&p->cv);
    } else {
        if (p->failed && e != NULL)
            *e = p->err;
        else if (e != NULL)
            pf_err_set(e, PF_EENV, "stream cancelled");
        rc = -1;
    }
    pthread_mutex_unlock(&p->mu);
    return rc;
}

void pf_pipe_fail(pf_pipe *p, const pf_err *e)
{
    pthread_mutex_lock(&p->mu);
    if (!p->failed) {
        p->failed = true;
        p->err = *e;
    }
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

void pf_pipe_cancel(pf_pipe *p)
{
    pthread_mutex_lock(&p->mu);
    p->cancelled = true;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

bool pf_pipe_failed(pf_pipe *p, pf_err *e)
{
    pthread_mutex_lock(&p->mu);
    bool f = p->failed;
    if (f && e != NULL)
        *e = p->err;
    pthread_mutex_unlock(&p->mu);
    return f;
}
