/* The checked buffer module: every out-of-bounds read or write fails and
 * the failure sticks. */
#include "check.h"
#include "common/buf.h"

static void test_reads(void)
{
    const uint8_t data[] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b};
    pf_rbuf r;
    pf_rbuf_init(&r, data, sizeof data);
    CHECK(pf_rbuf_u8(&r) == 0x01);
    CHECK(pf_rbuf_u16(&r) == 0x0203);
    CHECK(pf_rbuf_u32(&r) == 0x04050607);
    CHECK(pf_rbuf_left(&r) == 4);
    CHECK(pf_rbuf_ok(&r));
    /* 8 bytes wanted, 4 left: fails, returns 0, and stays failed */
    CHECK(pf_rbuf_u64(&r) == 0);
    CHECK(!pf_rbuf_ok(&r));
    CHECK(pf_rbuf_left(&r) == 0);
    CHECK(pf_rbuf_u8(&r) == 0);
    CHECK(pf_rbuf_take(&r, 0) == NULL);

    pf_rbuf_init(&r, data, sizeof data);
    CHECK(pf_rbuf_take(&r, sizeof data) == data);
    CHECK(pf_rbuf_ok(&r) && pf_rbuf_left(&r) == 0);
    CHECK(pf_rbuf_take(&r, 1) == NULL && !pf_rbuf_ok(&r));

    /* huge lengths must not wrap around */
    pf_rbuf_init(&r, data, sizeof data);
    pf_rbuf_u8(&r);
    CHECK(pf_rbuf_take(&r, SIZE_MAX) == NULL && !pf_rbuf_ok(&r));

    uint8_t out[4] = {9, 9, 9, 9};
    pf_rbuf_init(&r, data, 2);
    pf_rbuf_copy(&r, out, sizeof out);
    CHECK(!pf_rbuf_ok(&r) && out[0] == 0 && out[3] == 0);

    pf_rbuf_init(&r, NULL, 100);
    CHECK(pf_rbuf_left(&r) == 0 && pf_rbuf_u8(&r) == 0 && !pf_rbuf_ok(&r));
}

static void test_writes(void)
{
    uint8_t buf[15];
    pf_wbuf w;
    pf_wbuf_init(&w, buf, sizeof buf);
    pf_wbuf_u8(&w, 0xaa);
    pf_wbuf_u16(&w, 0xbbcc);
    pf_wbuf_u32(&w, 0x01020304);
    pf_wbuf_u64(&w, 0x1122334455667788ULL);
    CHECK(pf_wbuf_ok(&w) && w.len == 15);
    CHECK(buf[0] == 0xaa && buf[1] == 0xbb && buf[2] == 0xcc && buf[3] == 0x01 && buf[7] == 0x11 &&
          buf[14] == 0x88);
    pf_wbuf_u8(&w, 1);
    CHECK(!pf_wbuf_ok(&w) && w.len == 15);
    pf_wbuf_init(&w, buf, 3);
    pf_wbuf_u32(&w, 1);
    CHECK(!pf_wbuf_ok(&w) && w.len == 0);

    pf_rbuf r;
    uint8_t b8[8];
    pf_store_u64(b8, 0xfedcba9876543210ULL);
    pf_rbuf_init(&r, b8, sizeof b8);
    CHECK(pf_rbuf_u64(&r) == 0xfedcba9876543210ULL && pf_load_u64(b8) == 0xfedcba9876543210ULL);
}

int main(void)
{
    test_reads();
    test_writes();
    return check_summary("test_buf");
}
