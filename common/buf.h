/* Checked buffers: the only way the project reads or writes binary
 * structures. Every read is bounds-checked; a failure is sticky, so a
 * sequence of reads is checked once at the end with pf_rbuf_ok(). Integers
 * are big-endian (network order) on the wire. */
#ifndef PF_BUF_H
#define PF_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct pf_rbuf {
    const uint8_t *data;
    size_t len;
    size_t off;
    bool failed;
} pf_rbuf;

void pf_rbuf_init(pf_rbuf *b, const void *data, size_t len);
bool pf_rbuf_ok(const pf_rbuf *b);
size_t pf_rbuf_left(const pf_rbuf *b);
uint8_t pf_rbuf_u8(pf_rbuf *b);
uint16_t pf_rbuf_u16(pf_rbuf *b);
uint32_t pf_rbuf_u32(pf_rbuf *b);
uint64_t pf_rbuf_u64(pf_rbuf *b);
/* Copies n bytes out; on failure fills out with zeros. */
void pf_rbuf_copy(pf_rbuf *b, void *out, size_t n);
/* Returns a pointer to the next n bytes, or NULL (and fails) if short. */
const uint8_t *pf_rbuf_take(pf_rbuf *b, size_t n);

typedef struct pf_wbuf {
    uint8_t *data;
    size_t cap;
    size_t len;
    bool failed;
} pf_wbuf;

void pf_wbuf_init(pf_wbuf *b, void *data, size_t cap);
bool pf_wbuf_ok(const pf_wbuf *b);
void pf_wbuf_u8(pf_wbuf *b, uint8_t v);
void pf_wbuf_u16(pf_wbuf *b, uint16_t v);
void pf_wbuf_u32(pf_wbuf *b, uint32_t v);
void pf_wbuf_u64(pf_wbuf *b, uint64_t v);
void pf_wbuf_bytes(pf_wbuf *b, const void *src, size_t n);

void pf_store_u32(uint8_t out[4], uint32_t v);
uint32_t pf_load_u32(const uint8_t in[4]);
void pf_store_u64(uint8_t out[8], uint64_t v);
uint64_t pf_load_u64(const uint8_t in[8]);

#endif
