/* A bounded hand-off of chunk buffers between two threads, so that
 * compression and encryption (sealing), or reading, hashing and
 * decryption and decompression (opening), use both cores. The buffers are
 * allocated once: memory stays bounded whatever the bundle size. */
#ifndef PF_PIPE_H
#define PF_PIPE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/pf_err.h"

#define PF_PIPE_BUFFERS 4

typedef struct pf_pipe_slot {
    uint8_t *buf;
    size_t len;
    unsigned char tag;
    bool end; /* nothing follows */
} pf_pipe_slot;

typedef struct pf_pipe {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t bufsize;
    size_t nbuf; /* buffers allocated: 1..PF_PIPE_BUFFERS */
    uint8_t *all[PF_PIPE_BUFFERS];
    uint8_t *free[PF_PIPE_BUFFERS];
    size_t nfree;
    pf_pipe_slot q[PF_PIPE_BUFFERS + 1];
    size_t head, count;
    bool failed, cancelled;
    pf_err err;
    /* Bytes at the start of each buffer that can have held plaintext, when
     * the user knows (pf_pipe_note); destroy wipes only those. A bundle of
     * 128 KB then wipes 128 KB per buffer, not the whole chunk size. */
    size_t used;
    bool used_known;
} pf_pipe;

int pf_pipe_init(pf_pipe *p, size_t bufsize, pf_err *e);
/* With nbuf (1..PF_PIPE_BUFFERS) buffers: one is enough when a single
 * thread takes, pushes, pops and gives back in turn. */
int pf_pipe_init_n(pf_pipe *p, size_t bufsize, size_t nbuf, pf_err *e);
/* Wipes and frees the buffers (they held plaintext). */
void pf_pipe_destroy(pf_pipe *p);
/* Says that len bytes were written at the start of a buffer (call it for
 * every write of plaintext, from the writing thread, before the buffer is
 * pushed or given back); once called, destroy wipes only the longest of
 * them. Never called: destroy wipes every buffer whole. */
void pf_pipe_note(pf_pipe *p, size_t len);

/* A free buffer, waiting if all are in flight; NULL once failed or
 * cancelled. */
uint8_t *pf_pipe_take(pf_pipe *p);
void pf_pipe_give_back(pf_pipe *p, uint8_t *buf);

void pf_pipe_push(pf_pipe *p, const pf_pipe_slot *slot);
/* The next slot in order; -1 with the other side's error (in *e) once it
 * failed, or when cancelled. */
int pf_pipe_pop(pf_pipe *p, pf_pipe_slot *out, pf_err *e);

/* Records the first failure and wakes both sides. */
void pf_pipe_fail(pf_pipe *p, const pf_err *e);
void pf_pipe_cancel(pf_pipe *p);
/* The recorded failure, if any. */
bool pf_pipe_failed(pf_pipe *p, pf_err *e);

#endif
