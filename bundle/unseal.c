#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zstd.h>

#include "bundle/hasher.h"
#include "bundle/pipe.h"
#include "bundle/stream.h"
#include "common/buf.h"
#include "common/fsutil.h"

/* Below this many bytes of bundle the reader runs in the caller's thread:
 * starting a thread, and the hand-off, cost more than the overlap of
 * decryption with decompression gains on a bundle of a chunk or two (a
 * fleet's small bundles). The threshold is the hasher's, for the same
 * reason. */
#define PF_UNSEAL_THREAD_MIN_BYTES PF_HASHER_THREAD_MIN_BYTES

/* Every secret of one bundle in one sodium_malloc area: each area costs
 * mmap, mlock and mprotect calls, which a small bundle notices. */
struct unseal_secrets {
    crypto_secretstream_xchacha20poly1305_state ss;
    uint8_t session[crypto_kx_SESSIONKEYBYTES];
    uint8_t key[crypto_secretstream_xchacha20poly1305_KEYBYTES];
};

/* What one unsealer after another can borrow instead of making its own
 * (pf_unseal_ctx_new): the secret area, the zstd context and the
 * ciphertext buffers. */
struct pf_unseal_ctx {
    struct unseal_secrets *sec; /* sodium_malloc; wiped when each bundle is done */
    ZSTD_DCtx *zd;
    uint8_t *wire[2]; /* ciphertext only: never wiped */
    size_t wire_cap;
    bool busy; /* lent to an unsealer now */
};

struct pf_unsealer {
    int fd;
    pf_unseal_ctx *ctx; /* lent its parts to this unsealer, or NULL */
    const char *what;
    pf_header hdr;
    uint8_t sign_pk[PF_SIGN_PK_BYTES];
    struct unseal_secrets *sec;                      /* sodium_malloc */
    crypto_secretstream_xchacha20poly1305_state *ss; /* in sec */
    bool inline_reader;     /* the reader's steps run in the caller's thread */
    pf_hasher *hash;        /* BLAKE2b of every byte before the trailer */
    bool hash_from_trailer; /* the bundle hash is the verified trailer's, not computed */
    ZSTD_DCtx *zd;
    /* A reader thread reads, hashes and decrypts chunks ahead; the caller's
     * thread decompresses them. The reader's fields: */
    /* Ciphertext of one chunk; two, so the next is read and decrypted
     * while the hasher reads the last. */
    uint8_t *wire[2];
    uint64_t wire_ticket[2];
    unsigned wire_next;
    uint64_t bytes_in;
    uint64_t chunks;
    bool final_seen;
    pf_pipe pipe;
    bool pipe_ready;
    pthread_t reader;
    bool reader_running;
    /* The caller's: */
    uint8_t *plain; /* the decrypted (still compressed) chunk being used */
    size_t plain_len, plain_pos;
    bool plain_is_final;
    uint64_t content_out;
    bool begun, ended, failed;
    size_t zstd_left; /* last ZSTD_decompressStream hint; 0 = frame complete */
    uint8_t bundle_hash[PF_HASH_BYTES];
};

/* Reads exactly n bytes; a short read means the file is still arriving.
 * The hasher reads buf until *ticket is waited for. */
static int take(pf_unsealer *u, void *buf, size_t n, uint64_t *ticket, const char *where, pf_err *e)
{
    *ticket = 0;
    ssize_t got = pf_read_full(u->fd, buf, n);
    if (got < 0)
        return pf_err_sys(e, errno, "%s: read failed", u->what);
    if ((size_t)got < n)
        return pf_err_set(e, PF_EINCOMPLETE,
                          "%s: incomplete: file ends inside %s (still being copied, or truncated)",
                          u->what, where);
    if (!u->hash_from_trailer)
        *ticket = pf_hasher_update(u->hash, buf, n);
    u->bytes_in += n;
    return 0;
}

pf_unseal_ctx *pf_unseal_ctx_new(void)
{
    pf_unseal_ctx *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->sec = sodium_malloc(sizeof *c->sec);
    c->zd = ZSTD_createDCtx();
    if (c->sec == NULL || c->zd == NULL) {
        pf_unseal_ctx_free(c);
        return NULL;
    }
    return c;
}

void pf_unseal_ctx_free(pf_unseal_ctx *c)
{
    if (c == NULL)
        return;
    sodium_free(c->sec);
    ZSTD_freeDCtx(c->zd);
    free(c->wire[0]);
    free(c->wire[1]);
    free(c);
}

pf_unsealer *pf_unsealer_new(int fd, const char *what, pf_err *e)
{
    return pf_unsealer_new_ctx(fd, what, NULL, e);
}

pf_unsealer *pf_unsealer_new_ctx(int fd, const char *what, pf_unseal_ctx *ctx, pf_err *e)
{
    uint8_t raw[PF_HEADER_MAX_BYTES];
    size_t total = 0;
    pf_unsealer *u = calloc(1, sizeof *u);
    if (u == NULL) {
        pf_err_set(e, PF_EENV, "%s: out of memory", what);
        return NULL;
    }
    u->fd = fd;
    u->what = what;
    struct stat fst;
    uint64_t size =
        fstat(fd, &fst) == 0 && S_ISREG(fst.st_mode) ? (uint64_t)fst.st_size : UINT64_MAX;
    u->hash = pf_hasher_new_sized(size);
    /* a file still growing only loses the overlap, never a check */
    u->inline_reader = size < PF_UNSEAL_THREAD_MIN_BYTES;
    if (ctx != NULL && !ctx->busy) {
        ctx->busy = true;
        u->ctx = ctx;
        u->sec = ctx->sec;
    } else {
        u->sec = sodium_malloc(sizeof *u->sec);
    }
    if (u->hash == NULL || u->sec == NULL) {
        pf_err_set(e, PF_EENV, "out of memory");
        goto fail;
    }
    u->ss = &u->sec->ss;
    ssize_t got = pf_read_full(fd, raw, PF_HEADER_PREFIX_BYTES);
    if (got < 0) {
        pf_err_sys(e, errno, "read failed");
        goto fail;
    }
    if (got < PF_HEADER_PREFIX_BYTES) {
        if (!pf_header_prefix_plausible(raw, (size_t)got))
            pf_err_set(e, PF_EREJECT, "not a pcapferry bundle (bad magic)");
        else
            pf_err_set(e, PF_EINCOMPLETE,
                       "incomplete: file ends inside the header (still being copied, or "
                       "truncated)");
        goto fail;
    }
    uint64_t ticket = pf_hasher_update(u->hash, raw, PF_HEADER_PREFIX_BYTES);
    u->bytes_in += PF_HEADER_PREFIX_BYTES;
    if (pf_header_prefix_len(raw, &total, e) != 0)
        goto fail;
    int r = take(u, raw + PF_HEADER_PREFIX_BYTES, total - PF_HEADER_PREFIX_BYTES, &ticket,
                 "the header", e);
    pf_hasher_wait(u->hash, ticket); /* raw is on this stack */
    if (r != 0)
        goto fail_named; /* take() names the file itself */
    if (pf_header_decode(raw, total, &u->hdr, e) != 0)
        goto fail;
    return u;
fail:
    pf_err_prefix(e, "%s: ", what);
fail_named:
    pf_unsealer_free(u);
    return NULL;
}

const pf_header *pf_unsealer_header(const pf_unsealer *u)
{
    return &u->hdr;
}

void pf_unsealer_hash_from_trailer(pf_unsealer *u)
{
    if (!u->begun)
        u->hash_from_trailer = true;
}

static void *reader_main(void *arg);

int pf_unsealer_begin(pf_unsealer *u, const pf_pubkey *sensor, const pf_seckey *central, pf_err *e)
{
    return pf_unsealer_begin_proved(u, sensor, central, NULL, e);
}

int pf_unsealer_begin_proved(pf_unsealer *u, const pf_pubkey *sensor, const pf_seckey *central,
                             const pf_header_proof *proof, pf_err *e)
{
    uint8_t tx[crypto_kx_SESSIONKEYBYTES];
    int rc = -1;
    const pf_header *h = &u->hdr;
    uint8_t *session = u->sec->session, *key = u->sec->key;

    if (central->pub.role != PF_ROLE_CENTRAL) {
        pf_err_set(e, PF_EUSAGE, "opening a bundle needs the central secret key");
        goto out;
    }
    if (sodium_memcmp(h->recipient_id, central->pub.key_id, PF_KEYID_BYTES) != 0) {
        char id[PF_KEYID_HEX_BYTES];
        pf_hex(id, h->recipient_id, PF_KEYID_BYTES);
        pf_err_set(e, PF_EREJECT, "%s: sealed to another central key (%s), not ours", u->what, id);
        goto out;
    }
    if (pf_header_verify_once(h, sensor->sign_pk, proof, e) != 0) {
        pf_err_prefix(e, "%s: ", u->what);
        goto out;
    }
    memcpy(u->sign_pk, sensor->sign_pk, sizeof u->sign_pk);
    size_t wire_len = (size_t)h->chunk_size + PF_CHUNK_ABYTES;
    if (u->ctx != NULL) {
        pf_unseal_ctx *c = u->ctx;
        if (c->wire_cap < wire_len) {
            free(c->wire[0]);
            free(c->wire[1]);
            c->wire[0] = malloc(wire_len);
            c->wire[1] = malloc(wire_len);
            c->wire_cap = c->wire[0] != NULL && c->wire[1] != NULL ? wire_len : 0;
        }
        if (c->wire_cap >= wire_len) {
            u->wire[0] = c->wire[0];
            u->wire[1] = c->wire[1];
        }
        /* the last bundle's frame and parameters are forgotten */
        if (!ZSTD_isError(ZSTD_DCtx_reset(c->zd, ZSTD_reset_session_and_parameters)))
            u->zd = c->zd;
    } else {
        u->wire[0] = malloc(wire_len);
        u->wire[1] = malloc(wire_len);
        u->zd = ZSTD_createDCtx();
    }
    u->pipe_ready = true; /* destroy copes with a half-made pipe */
    /* inline, each chunk is given back before the next is decrypted */
    if (pf_pipe_init_n(&u->pipe, h->chunk_size, u->inline_reader ? 1 : PF_PIPE_BUFFERS, e) != 0)
        goto out;
    if (!u->wire[0] || !u->wire[1] || !u->zd) {
        pf_err_set(e, PF_EENV, "%s: out of memory", u->what);
        goto out;
    }
    if (crypto_kx_server_session_keys(session, tx, central->pub.box_pk, central->box_sk,
                                      h->eph_pk) != 0) {
        pf_err_set(e, PF_EREJECT, "%s: key agreement failed (invalid ephemeral key)", u->what);
        goto out;
    }
    if (pf_stream_key(key, session, h) != 0 ||
        crypto_secretstream_xchacha20poly1305_init_pull(u->ss, h->ss_header, key) != 0) {
        pf_err_set(e, PF_EREJECT, "%s: invalid stream header", u->what);
        goto out;
    }
    if (ZSTD_isError(ZSTD_DCtx_setParameter(u->zd, ZSTD_d_windowLogMax, PF_ZSTD_WINDOW_LOG_MAX))) {
        pf_err_set(e, PF_EENV, "%s: zstd setup failed", u->what);
        goto out;
    }
    if (!u->inline_reader) {
        if (pthread_create(&u->reader, NULL, reader_main, u) != 0) {
            pf_err_set(e, PF_EENV, "%s: cannot start the reader thread", u->what);
            goto out;
        }
        u->reader_running = true;
    }
    u->begun = true;
    rc = 0;
out:
    /* the stream state holds all that is needed from here on */
    sodium_memzero(tx, sizeof tx);
    sodium_memzero(session, crypto_kx_SESSIONKEYBYTES);
    sodium_memzero(key, crypto_secretstream_xchacha20poly1305_KEYBYTES);
    return rc;
}

/* After the final chunk: end marker, trailer, and nothing more. */
static int read_trailer(pf_unsealer *u, pf_err *e)
{
    uint8_t trailer[PF_TRAILER_BYTES], extra;
    uint64_t body_len = u->bytes_in;
    if (!u->hash_from_trailer)
        pf_hasher_final(u->hash, u->bundle_hash);
    ssize_t got = pf_read_full(u->fd, trailer, sizeof trailer);
    if (got < 0)
        return pf_err_sys(e, errno, "%s: read failed", u->what);
    if ((size_t)got < sizeof trailer)
        return pf_err_set(e, PF_EINCOMPLETE,
                          "%s: incomplete: file ends inside the trailer (still being copied, or "
                          "truncated)",
                          u->what);
    u->bytes_in += sizeof trailer;
    /* Every chunk authenticated under this header's stream key and the
     * length checked below: the bytes before the trailer are the ones the
     * signer hashed (docs/FORMAT.md, "Which pass over the bytes"). The
     * signature check below still covers the hash taken here. */
    if (u->hash_from_trailer)
        memcpy(u->bundle_hash, trailer + PF_TRAILER_HASH_OFFSET, PF_HASH_BYTES);
    if (pf_trailer_check(trailer, &u->hdr, body_len, u->bundle_hash, u->sign_pk, e) != 0) {
        pf_err_prefix(e, "%s: ", u->what);
        return -1;
    }
    got = pf_read_full(u->fd, &extra, 1);
    if (got < 0)
        return pf_err_sys(e, errno, "%s: read failed", u->what);
    if (got > 0)
        return pf_err_set(e, PF_EREJECT, "%s: unexpected data after the trailer", u->what);
    return 0;
}

static int next_chunk(pf_unsealer *u, uint8_t *out, pf_pipe_slot *slot, pf_err *e)
{
    uint8_t lenbuf[4];
    unsigned long long mlen = 0;
    unsigned char tag = 0;

    uint64_t ticket; /* lenbuf is copied: small */
    if (take(u, lenbuf, sizeof lenbuf, &ticket, "a chunk length", e) != 0)
        return -1;
    uint32_t clen = pf_load_u32(lenbuf);
    if (u->final_seen) {
        if (clen != 0)
            return pf_err_set(e, PF_EREJECT, "%s: data after the final chunk", u->what);
        slot->end = true;
        return read_trailer(u, e);
    }
    if (clen == 0)
        return pf_err_set(e, PF_EREJECT,
                          "%s: end marker before the final chunk (chunks removed or truncated "
                          "and re-terminated)",
                          u->what);
    if (clen < PF_CHUNK_ABYTES || clen > u->hdr.chunk_size + PF_CHUNK_ABYTES)
        return pf_err_set(e, PF_EREJECT, "%s: chunk %llu has impossible length %u", u->what,
                          (unsigned long long)u->chunks, clen);
    unsigned w = u->wire_next;
    uint8_t *wire = u->wire[w];
    pf_hasher_wait(u->hash, u->wire_ticket[w]);
    u->wire_next = 1 - w;
    if (take(u, wire, clen, &u->wire_ticket[w], "a chunk", e) != 0)
        return -1;
    if (crypto_secretstream_xchacha20poly1305_pull(u->ss, out, &mlen, &tag, wire, clen, u->hdr.hash,
                                                   sizeof u->hdr.hash) != 0)
        return pf_err_set(e, PF_EREJECT,
                          "%s: chunk %llu fails authentication (modified, reordered, or from "
                          "another bundle)",
                          u->what, (unsigned long long)u->chunks);
    /* pull writes plaintext only after the tag verified */
    pf_pipe_note(&u->pipe, (size_t)mlen);
    if (tag == crypto_secretstream_xchacha20poly1305_TAG_FINAL)
        u->final_seen = true;
    else if (tag != crypto_secretstream_xchacha20poly1305_TAG_MESSAGE)
        return pf_err_set(e, PF_EREJECT, "%s: chunk %llu carries an unexpected tag %u", u->what,
                          (unsigned long long)u->chunks, tag);
    u->chunks++;
    slot->buf = out;
    slot->len = (size_t)mlen;
    slot->tag = tag;
    return 0;
}

/* One step of the reader: the next chunk (or the end, or the error) into
 * the pipe. False once there is nothing more to read. */
static bool reader_step(pf_unsealer *u)
{
    pf_pipe_slot slot = {0};
    pf_err e;
    pf_err_clear(&e);
    uint8_t *buf = pf_pipe_take(&u->pipe);
    if (buf == NULL)
        return false; /* cancelled */
    if (next_chunk(u, buf, &slot, &e) != 0) {
        pf_pipe_give_back(&u->pipe, buf);
        pf_pipe_fail(&u->pipe, &e);
        return false;
    }
    if (slot.end) {
        pf_pipe_give_back(&u->pipe, buf);
        slot.buf = NULL;
        pf_pipe_push(&u->pipe, &slot);
        return false;
    }
    pf_pipe_push(&u->pipe, &slot);
    return true;
}

static void *reader_main(void *arg)
{
    pf_unsealer *u = arg;
    while (reader_step(u))
        ;
    return NULL;
}

static void stop_reader(pf_unsealer *u)
{
    if (!u->reader_running)
        return;
    pf_pipe_cancel(&u->pipe);
    pthread_join(u->reader, NULL);
    u->reader_running = false;
}

/* The next decrypted chunk from the reader, in order; its error, if the
 * reader stopped there. */
static int next_plain(pf_unsealer *u, pf_err *e)
{
    pf_pipe_slot slot;
    /* Inline, the one buffer is free here (the last chunk was given back),
     * and after the end or an error the caller reads no more. */
    if (u->inline_reader)
        (void)reader_step(u);
    if (pf_pipe_pop(&u->pipe, &slot, e) != 0)
        return -1;
    if (slot.end) { /* only ever after the final chunk */
        if (!u->plain_is_final)
            return pf_err_set(e, PF_EENV, "%s: internal error: stream ended early", u->what);
        u->ended = true;
        if (u->reader_running)
            pthread_join(u->reader, NULL);
        u->reader_running = false;
        return 0;
    }
    u->plain = slot.buf;
    u->plain_len = slot.len;
    u->plain_pos = 0;
    u->plain_is_final = slot.tag == crypto_secretstream_xchacha20poly1305_TAG_FINAL;
    return 0;
}

ssize_t pf_unsealer_read(pf_unsealer *u, void *buf, size_t len, pf_err *e)
{
    if (!u->begun || u->failed)
        return pf_err_set(e, PF_EENV, "%s: read from an unauthenticated or failed stream", u->what);
    if (u->ended || len == 0)
        return 0;
    for (;;) {
        if (u->plain != NULL) {
            ZSTD_inBuffer in = {u->plain, u->plain_len, u->plain_pos};
            ZSTD_outBuffer out = {buf, len, 0};
            if (in.pos < in.size || u->zstd_left != 0) {
                size_t r = ZSTD_decompressStream(u->zd, &out, &in);
                if (ZSTD_isError(r)) {
                    u->failed = true;
                    return pf_err_set(e, PF_EREJECT, "%s: content does not decompress: %s", u->what,
                                      ZSTD_getErrorName(r));
                }
                u->zstd_left = r;
                u->plain_pos = in.pos;
                if (out.pos > 0) {
                    if (out.pos > u->hdr.plain_len_max - u->content_out) {
                        u->failed = true;
                        return pf_err_set(e, PF_EREJECT,
                                          "%s: content decompresses beyond the %llu bytes its "
                                          "header declares (decompression bomb)",
                                          u->what, (unsigned long long)u->hdr.plain_len_max);
                    }
                    u->content_out += out.pos;
                    return (ssize_t)out.pos;
                }
                if (u->plain_pos < u->plain_len)
                    continue;
            }
            /* This chunk is used up and zstd wants more input. */
            pf_pipe_give_back(&u->pipe, u->plain);
            u->plain = NULL;
            if (u->plain_is_final && u->zstd_left != 0) {
                u->failed = true;
                return pf_err_set(e, PF_EREJECT, "%s: compressed content ends mid-frame", u->what);
            }
        }
        if (next_plain(u, e) != 0) {
            u->failed = true;
            return -1;
        }
        if (u->ended)
            return 0;
    }
}

void pf_unsealer_result(const pf_unsealer *u, uint8_t bundle_hash[PF_HASH_BYTES],
                        uint64_t *bytes_in)
{
    memcpy(bundle_hash, u->bundle_hash, PF_HASH_BYTES);
    if (bytes_in != NULL)
        *bytes_in = u->bytes_in;
}

void pf_unsealer_free(pf_unsealer *u)
{
    if (u == NULL)
        return;
    stop_reader(u);
    if (u->pipe_ready)
        pf_pipe_destroy(&u->pipe); /* wipes the decrypted chunks */
    pf_hasher_free(u->hash);       /* before the buffers it may still read */
    if (u->ctx != NULL) {
        /* lent: wiped for the next bundle, not freed */
        sodium_memzero(u->sec, sizeof *u->sec);
        u->ctx->busy = false;
    } else {
        sodium_free(u->sec); /* wipes the stream state */
        ZSTD_freeDCtx(u->zd);
        free(u->wire[0]);
        free(u->wire[1]);
    }
    free(u);
}
