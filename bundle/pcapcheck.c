#include "bundle/pcapcheck.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

void pf_pcapcheck_init(pf_pcapcheck *k)
{
    memset(k, 0, sizeof *k);
    k->format = PF_PCAPCHECK_SHORT;
}

static uint32_t get32(const pf_pcapcheck *k, const uint8_t *p)
{
    if (k->big_endian)
        return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
    return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

static uint16_t get16(const pf_pcapcheck *k, const uint8_t *p)
{
    unsigned v = k->big_endian ? (unsigned)p[0] << 8 | p[1] : (unsigned)p[1] << 8 | p[0];
    return (uint16_t)v;
}

static void file_header(pf_pcapcheck *k)
{
    const uint8_t *h = k->hdr;
    k->magic = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
    switch (k->magic) {
    case 0xa1b2c3d4:
    case 0xa1b23c4d:
        k->big_endian = true;
        k->format = PF_PCAPCHECK_PCAP;
        break;
    case 0xd4c3b2a1:
    case 0x4d3cb2a1:
        k->format = PF_PCAPCHECK_PCAP;
        break;
    case 0x0a0d0d0a:
        k->format = PF_PCAPCHECK_PCAPNG;
        return;
    default:
        k->format = PF_PCAPCHECK_OTHER;
        return;
    }
    k->nanosecond = k->magic == 0xa1b23c4d || k->magic == 0x4d3cb2a1;
    k->version_major = get16(k, h + 4);
    k->version_minor = get16(k, h + 6);
    k->snaplen = get32(k, h + 16);
    k->link_type_raw = get32(k, h + 20);
    k->good_end = PF_PCAP_FILE_HDR_BYTES;
}

static void note(pf_pcapcheck_bad *b, const pf_pcapcheck *k, uint32_t caplen, uint32_t len)
{
    if (b->count++ == 0) {
        b->record = k->records;
        b->offset = k->good_end;
        b->caplen = caplen;
        b->len = len;
    }
}

/* A record counts, and is judged, only once its last byte has arrived: a
 * cut-off final record is trimmed, not held against the file. */
static void record_done(pf_pcapcheck *k)
{
    uint32_t caplen = get32(k, k->hdr + 8), len = get32(k, k->hdr + 12);
    k->records++;
    if (caplen > k->snaplen)
        note(&k->caplen_over_snaplen, k, caplen, len);
    if (caplen > len)
        note(&k->caplen_over_len, k, caplen, len);
    if (caplen < len)
        note(&k->caplen_under_len, k, caplen, len);
    bool over = caplen > k->snaplen || caplen > len;
    k->bad_over += over;
    k->bad_any += over || caplen < len;
    k->good_end += PF_PCAP_RECORD_HDR_BYTES + (uint64_t)caplen;
    k->have = 0;
    k->in_data = false;
}

void pf_pcapcheck_update(pf_pcapcheck *k, const uint8_t *p, size_t n)
{
    k->size += n;
    while (n > 0) {
        if (k->format == PF_PCAPCHECK_SHORT) {
            size_t take = PF_PCAP_FILE_HDR_BYTES - k->have;
            if (take > n)
                take = n;
            memcpy(k->hdr + k->have, p, take);
            k->have += take;
            p += take;
            n -= take;
            if (k->have == PF_PCAP_FILE_HDR_BYTES) {
                k->have = 0;
                file_header(k);
            }
            continue;
        }
        if (k->format != PF_PCAPCHECK_PCAP)
            return; /* only classic pcap is walked here */
        if (k->in_data) {
            size_t take = k->data_left < n ? (size_t)k->data_left : n;
            k->data_left -= take;
            p += take;
            n -= take;
            if (k->data_left == 0)
                record_done(k);
            continue;
        }
        size_t take = PF_PCAP_RECORD_HDR_BYTES - k->have;
        if (take > n)
            take = n;
        memcpy(k->hdr + k->have, p, take);
        k->have += take;
        p += take;
        n -= take;
        if (k->have == PF_PCAP_RECORD_HDR_BYTES) {
            k->data_left = get32(k, k->hdr + 8);
            k->in_data = true;
            if (k->data_left == 0)
                record_done(k);
        }
    }
}

void pf_pcapcheck_final(pf_pcapcheck *k)
{
    if (k->format != PF_PCAPCHECK_PCAP)
        return;
    k->cut_bytes = k->size - k->good_end;
    k->cut_header = k->in_data;
    if (k->in_data) {
        k->cut_caplen = get32(k, k->hdr + 8);
        k->cut_len = get32(k, k->hdr + 12);
    }
}

int pf_pcapcheck_fd(pf_pcapcheck *k, int fd)
{
    uint8_t buf[64 * 1024];
    uint64_t off = 0;
    pf_pcapcheck_init(k);
    for (;;) {
        ssize_t r = pread(fd, buf, sizeof buf, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            break;
        pf_pcapcheck_update(k, buf, (size_t)r);
        off += (uint64_t)r;
    }
    pf_pcapcheck_final(k);
    return 0;
}

uint64_t pf_pcapcheck_violations(const pf_pcapcheck *k, bool read_truncated)
{
    return read_truncated ? k->bad_over : k->bad_any;
}
