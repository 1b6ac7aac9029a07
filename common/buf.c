#include "common/buf.h"

#include <string.h>

void pf_rbuf_init(pf_rbuf *b, const void *data, size_t len)
{
    b->data = data;
    b->len = data != NULL ? len : 0;
    b->off = 0;
    b->failed = false;
}

bool pf_rbuf_ok(const pf_rbuf *b)
{
    return !b->failed;
}

size_t pf_rbuf_left(const pf_rbuf *b)
{
    return b->failed ? 0 : b->len - b->off;
}

const uint8_t *pf_rbuf_take(pf_rbuf *b, size_t n)
{
    if (b->failed || n > b->len - b->off) {
        b->failed = true;
        return NULL;
    }
    const uint8_t *p = b->data + b->off;
    b->off += n;
    return p;
}

void pf_rbuf_copy(pf_rbuf *b, void *out, size_t n)
{
    const uint8_t *p = pf_rbuf_take(b, n);
    if (p == NULL) {
        memset(out, 0, n);
        return;
    }
    memcpy(out, p, n);
}

uint8_t pf_rbuf_u8(pf_rbuf *b)
{
    const uint8_t *p = pf_rbuf_take(b, 1);
    return p != NULL ? p[0] : 0;
}

uint16_t pf_rbuf_u16(pf_rbuf *b)
{
    const uint8_t *p = pf_rbuf_take(b, 2);
    return p != NULL ? (uint16_t)((unsigned)p[0] << 8 | p[1]) : 0;
}

uint32_t pf_rbuf_u32(pf_rbuf *b)
{
    const uint8_t *p = pf_rbuf_take(b, 4);
    return p != NULL ? pf_load_u32(p) : 0;
}

uint64_t pf_rbuf_u64(pf_rbuf *b)
{
    const uint8_t *p = pf_rbuf_take(b, 8);
    return p != NULL ? pf_load_u64(p) : 0;
}

void pf_wbuf_init(pf_wbuf *b, void *data, size_t cap)
{
    b->data = data;
    b->cap = data != NULL ? cap : 0;
    b->len = 0;
    b->failed = false;
}

bool pf_wbuf_ok(const pf_wbuf *b)
{
    return !b->failed;
}

void pf_wbuf_bytes(pf_wbuf *b, const void *src, size_t n)
{
    if (b->failed || n > b->cap - b->len) {
        b->failed = true;
        return;
    }
    if (n > 0)
        memcpy(b->data + b->len, src, n);
    b->len += n;
}

void pf_wbuf_u8(pf_wbuf *b, uint8_t v)
{
    pf_wbuf_bytes(b, &v, 1);
}

void pf_wbuf_u16(pf_wbuf *b, uint16_t v)
{
    uint8_t t[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    pf_wbuf_bytes(b, t, 2);
}

void pf_wbuf_u32(pf_wbuf *b, uint32_t v)
{
    uint8_t t[4];
    pf_store_u32(t, v);
    pf_wbuf_bytes(b, t, 4);
}

void pf_wbuf_u64(pf_wbuf *b, uint64_t v)
{
    uint8_t t[8];
    pf_store_u64(t, v);
    pf_wbuf_bytes(b, t, 8);
}

void pf_store_u32(uint8_t out[4], uint32_t v)
{
    out[0] = (uint8_t)(v >> 24);
    out[1] = (uint8_t)(v >> 16);
    out[2] = (uint8_t)(v >> 8);
    out[3] = (uint8_t)v;
}

uint32_t pf_load_u32(const uint8_t in[4])
{
    return (uint32_t)in[0] << 24 | (uint32_t)in[1] << 16 | (uint32_t)in[2] << 8 | in[3];
}

void pf_store_u64(uint8_t out[8], uint64_t v)
{
    pf_store_u32(out, (uint32_t)(v >> 32));
    pf_store_u32(out + 4, (uint32_t)v);
}

uint64_t pf_load_u64(const uint8_t in[8])
{
    return (uint64_t)pf_load_u32(in) << 32 | pf_load_u32(in + 4);
}
