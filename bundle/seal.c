#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "bundle/hasher.h"
#include "bundle/pipe.h"
#include "bundle/stream.h"
#include "common/buf.h"
#include "common/fsutil.h"

#define PF_ZSTD_JOB_BYTES (2u << 20)

struct pf_sealer {
    int fd;
    const char *what;
    pf_header hdr;
    const uint8_t *sign_sk;                          /* borrowed from the caller's pf_seckey */
    crypto_secretstream_xchacha20poly1305_state *ss; /* sodium_malloc */
    pf_hasher *hash;                                 /* running BLAKE2b of the file */
    ZSTD_CCtx *zc;
    /* Compression fills plain; a writer thread encrypts, hashes and writes
     * full chunks while the next one is compressed. */
    pf_pipe pipe;
    bool pipe_ready;
    pthread_t writer;
    bool writer_running;
    uint8_t *plain; /* one chunk of compressed bytes waiting to be sealed */
    size_t plain_len;
    /* u32 length || ciphertext (writer thread): two, so one is encrypted
     * into while the hasher reads the other. */
    uint8_t *wire[2];
    uint64_t wire_ticket[2];
    unsigned wire_next;
    uint64_t content_in;
    bool exceed_bound;
    uint64_t bytes_out;
    pf_writeback wb;
    uint64_t chunks;
    bool finished;
};

int pf_stream_key(uint8_t key[32], const uint8_t session[32], const pf_header *h)
{
    /* Binding signer, recipient and seq into the key means a chunk can only
     * ever decrypt under the header it was made for. */
    uint8_t info[sizeof PF_KDF_STREAM + 2 * PF_KEYID_BYTES + 8];
    size_t n = sizeof PF_KDF_STREAM;
    memcpy(info, PF_KDF_STREAM, n);
    memcpy(info + n, h->signer_id, PF_KEYID_BYTES);
    memcpy(info + n + PF_KEYID_BYTES, h->recipient_id, PF_KEYID_BYTES);
    pf_store_u64(info + n + 2 * PF_KEYID_BYTES, h->seq);
    return crypto_generichash(key, 32, info, sizeof info, session, 32);
}

/* Writes and hashes data; the hasher reads it until *ticket is waited for. */
static int emit(pf_sealer *s, const void *data, size_t len, uint64_t *ticket, pf_err *e)
{
    *ticket = pf_hasher_update(s->hash, data, len);
    if (pf_write_all(s->fd, data, len, s->what, e) != 0)
        return -1;
    pf_writeback_note(s->fd, &s->wb, len);
    s->bytes_out += len;
    return 0;
}

static int encrypt_and_write(pf_sealer *s, const uint8_t *plain, size_t len, unsigned char tag,
                             pf_err *e)
{
    unsigned long long clen = 0;
    unsigned w = s->wire_next;
    uint8_t *wire = s->wire[w];
    pf_hasher_wait(s->hash, s->wire_ticket[w]);
    if (crypto_secretstream_xchacha20poly1305_push(s->ss, wire + 4, &clen, plain, len, s->hdr.hash,
                                                   sizeof s->hdr.hash, tag) != 0)
        return pf_err_set(e, PF_EENV, "%s: encryption failed", s->what);
    pf_store_u32(wire, (uint32_t)clen);
    s->chunks++;
    s->wire_next = 1 - w;
    return emit(s, wire, (size_t)clen + 4, &s->wire_ticket[w], e);
}

static void *writer_main(void *arg)
{
    pf_sealer *s = arg;
    for (;;) {
        pf_pipe_slot slot;
        pf_err e;
        pf_err_clear(&e);
        if (pf_pipe_pop(&s->pipe, &slot, NULL) != 0)
            break; /* cancelled */
        int r = encrypt_and_write(s, slot.buf, slot.len, slot.tag, &e);
        pf_pipe_give_back(&s->pipe, slot.buf);
        if (r != 0) {
            pf_pipe_fail(&s->pipe, &e);
            break;
        }
        if (slot.end)
            break;
    }
    return NULL;
}

/* Hands the full chunk to the writer and takes an empty buffer. */
static int seal_chunk(pf_sealer *s, unsigned char tag, pf_err *e)
{
    bool end = tag == crypto_secretstream_xchacha20poly1305_TAG_FINAL;
    pf_pipe_slot slot = {.buf = s->plain, .len = s->plain_len, .tag = tag, .end = end};
    pf_pipe_push(&s->pipe, &slot);
    s->plain = NULL;
    s->plain_len = 0;
    if (end)
        return 0;
    s->plain = pf_pipe_take(&s->pipe);
    if (s->plain == NULL) {
        pf_pipe_failed(&s->pipe, e);
        return -1;
    }
    return 0;
}

pf_sealer *pf_sealer_new(const pf_seckey *sensor, const pf_pubkey *central, const pf_seal_params *p,
                         int fd, const char *what, pf_err *e)
{
    pf_sealer *s = NULL;
    uint8_t *eph_sk = NULL, *session = NULL, *key = NULL;
    uint8_t rx[crypto_kx_SESSIONKEYBYTES];
    bool ok = false;

    if (sensor->pub.role != PF_ROLE_SENSOR || central->role != PF_ROLE_CENTRAL) {
        pf_err_set(e, PF_EUSAGE,
                   "bundles are signed with a sensor key and sealed to a central key");
        goto out;
    }
    s = calloc(1, sizeof *s);
    if (s == NULL)
        goto nomem;
    s->fd = fd;
    s->what = what;
    s->wb.flush_early = true; /* the caller fsyncs the bundle when it is sealed */
    s->sign_sk = sensor->sign_sk;
    s->exceed_bound = p->test_exceed_bound;
    pf_header *h = &s->hdr;
    snprintf(h->sensor, sizeof h->sensor, "%s",
             p->sensor_name != NULL ? p->sensor_name : sensor->pub.name);
    memcpy(h->signer_id, sensor->pub.key_id, PF_KEYID_BYTES);
    memcpy(h->recipient_id, central->key_id, PF_KEYID_BYTES);
    h->seq = p->seq;
    h->prev_seq = p->prev_seq;
    memcpy(h->prev_hash, p->prev_hash, PF_HASH_BYTES);
    h->created_ns = p->created_ns;
    h->chunk_size = p->chunk_size != 0 ? p->chunk_size : PF_CHUNK_DEFAULT_BYTES;
    h->plain_len_max = p->plain_len_max;
    if (h->chunk_size < PF_CHUNK_MIN_BYTES || h->chunk_size > PF_CHUNK_MAX_BYTES || h->seq == 0 ||
        h->plain_len_max == 0 || h->plain_len_max > PF_PLAIN_MAX_BYTES) {
        pf_err_set(e, PF_EUSAGE, "%s: invalid sealing parameters", what);
        goto out;
    }

    eph_sk = sodium_malloc(crypto_kx_SECRETKEYBYTES);
    session = sodium_malloc(crypto_kx_SESSIONKEYBYTES);
    key = sodium_malloc(crypto_secretstream_xchacha20poly1305_KEYBYTES);
    s->ss = sodium_malloc(sizeof *s->ss);
    s->hash = pf_hasher_new();
    s->wire[0] = malloc((size_t)h->chunk_size + PF_CHUNK_ABYTES + 4);
    s->wire[1] = malloc((size_t)h->chunk_size + PF_CHUNK_ABYTES + 4);
    if (!eph_sk || !session || !key || !s->ss || !s->hash || !s->wire[0] || !s->wire[1])
        goto nomem;
    s->pipe_ready = true; /* destroy copes with a half-made pipe */
    if (pf_pipe_init(&s->pipe, h->chunk_size, e) != 0)
        goto out;
    s->plain = pf_pipe_take(&s->pipe);
    if (crypto_kx_keypair(h->eph_pk, eph_sk) != 0 ||
        crypto_kx_client_session_keys(rx, session, h->eph_pk, eph_sk, central->box_pk) != 0) {
        pf_err_set(e, PF_EREJECT, "%s: key agreement with the central key failed (weak key?)",
                   what);
        goto out;
    }
    if (pf_stream_key(key, session, h) != 0 ||
        crypto_secretstream_xchacha20poly1305_init_push(s->ss, h->ss_header, key) != 0) {
        pf_err_set(e, PF_EENV, "%s: stream key setup failed", what);
        goto out;
    }
    if (pf_header_seal(h, sensor->sign_sk, e) != 0)
        goto out;

    s->zc = ZSTD_createCCtx();
    if (s->zc == NULL)
        goto nomem;
    /* Levels up to 19 keep zstd's window within 2^23 by default; above
     * that the window is pinned so every opener can decode with 8 MiB. */
    if (ZSTD_isError(ZSTD_CCtx_setParameter(s->zc, ZSTD_c_compressionLevel, p->level)) ||
        (p->level > 19 &&
         ZSTD_isError(ZSTD_CCtx_setParameter(s->zc, ZSTD_c_windowLog, PF_ZSTD_WINDOW_LOG_MAX))) ||
        (p->test_window_log > 0 &&
         ZSTD_isError(ZSTD_CCtx_setParameter(s->zc, ZSTD_c_windowLog, p->test_window_log))) ||
        (p->workers > 0 &&
         (ZSTD_isError(ZSTD_CCtx_setParameter(s->zc, ZSTD_c_nbWorkers, p->workers)) ||
          /* small jobs keep memory bounded (64 MiB for the whole process) */
          ZSTD_isError(ZSTD_CCtx_setParameter(s->zc, ZSTD_c_jobSize, PF_ZSTD_JOB_BYTES))))) {
        pf_err_set(e, PF_EUSAGE, "%s: zstd rejected level %d / %d workers", what, p->level,
                   p->workers);
        goto out;
    }
    uint64_t ticket; /* h->raw stays put while the sealer lives */
    if (emit(s, h->raw, h->raw_len, &ticket, e) != 0)
        goto out;
    if (pthread_create(&s->writer, NULL, writer_main, s) != 0) {
        pf_err_set(e, PF_EENV, "%s: cannot start the writer thread", what);
        goto out;
    }
    s->writer_running = true;
    ok = true;
    goto out;
nomem:
    pf_err_set(e, PF_EENV, "%s: out of memory", what);
out:
    sodium_memzero(rx, sizeof rx);
    sodium_free(eph_sk);
    sodium_free(session);
    sodium_free(key);
    if (!ok) {
        pf_sealer_free(s);
        s = NULL;
    }
    return s;
}

const pf_header *pf_sealer_header(const pf_sealer *s)
{
    return &s->hdr;
}

/* Runs zstd until it has consumed the input (or, ending, flushed all),
 * sealing each full chunk; the last chunk stays buffered so that finish can
 * tag it FINAL. */
static int compress(pf_sealer *s, ZSTD_inBuffer *in, ZSTD_EndDirective mode, pf_err *e)
{
    for (;;) {
        if (s->plain_len == s->hdr.chunk_size && seal_chunk(s, 0, e) != 0)
            return -1;
        ZSTD_outBuffer out = {s->plain, s->hdr.chunk_size, s->plain_len};
        size_t left = ZSTD_compressStream2(s->zc, &out, in, mode);
        if (ZSTD_isError(left))
            return pf_err_set(e, PF_EENV, "%s: compression failed: %s", s->what,
                              ZSTD_getErrorName(left));
        s->plain_len = out.pos;
        if (mode == ZSTD_e_end ? left == 0 : in->pos == in->size)
            return 0;
    }
}

int pf_sealer_write(pf_sealer *s, const void *data, size_t len, pf_err *e)
{
    if (s->finished)
        return pf_err_set(e, PF_EENV, "%s: write after finish", s->what);
    if (!s->exceed_bound && len > s->hdr.plain_len_max - s->content_in)
        return pf_err_set(e, PF_EENV, "%s: content exceeds the size declared in the header",
                          s->what);
    s->content_in += len;
    ZSTD_inBuffer in = {data, len, 0};
    return compress(s, &in, ZSTD_e_continue, e);
}

int pf_sealer_finish(pf_sealer *s, uint8_t bundle_hash[PF_HASH_BYTES], uint64_t *bytes_out,
                     pf_err *e)
{
    uint8_t marker[4] = {0, 0, 0, 0};
    uint8_t trailer[PF_TRAILER_BYTES];
    ZSTD_inBuffer in = {NULL, 0, 0};

    if (s->finished)
        return pf_err_set(e, PF_EENV, "%s: finished twice", s->what);
    s->finished = true;
    if (compress(s, &in, ZSTD_e_end, e) != 0)
        return -1;
    if (seal_chunk(s, crypto_secretstream_xchacha20poly1305_TAG_FINAL, e) != 0)
        return -1;
    /* The writer owns the hash until it has written the final chunk. */
    pthread_join(s->writer, NULL);
    s->writer_running = false;
    if (pf_pipe_failed(&s->pipe, e))
        return -1;
    uint64_t ticket;
    if (emit(s, marker, sizeof marker, &ticket, e) != 0)
        return -1;
    pf_hasher_wait(s->hash, ticket);
    uint64_t body_len = s->bytes_out;
    pf_hasher_final(s->hash, bundle_hash);
    pf_trailer_build(trailer, &s->hdr, body_len, bundle_hash, s->sign_sk);
    if (pf_write_all(s->fd, trailer, sizeof trailer, s->what, e) != 0)
        return -1;
    s->bytes_out += sizeof trailer;
    pf_writeback_end(&s->wb);
    if (bytes_out != NULL)
        *bytes_out = s->bytes_out;
    return 0;
}

void pf_sealer_free(pf_sealer *s)
{
    if (s == NULL)
        return;
    if (s->writer_running) {
        pf_pipe_cancel(&s->pipe);
        pthread_join(s->writer, NULL);
    }
    pf_writeback_end(&s->wb);
    if (s->pipe_ready)
        pf_pipe_destroy(&s->pipe); /* wipes the compressed plaintext */
    pf_hasher_free(s->hash);       /* before the buffers it may still read */
    sodium_free(s->ss);
    ZSTD_freeCCtx(s->zc);
    free(s->wire[0]);
    free(s->wire[1]);
    free(s);
}
