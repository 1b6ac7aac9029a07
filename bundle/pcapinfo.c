#include "bundle/pcapinfo.h"

#include "bundle/hasher.h"
#include "common/text.h"

#include <errno.h>
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SCAN_STDIO_BYTES (256u * 1024)

const char *pf_read_status_name(enum pf_read_status s)
{
    switch (s) {
    case PF_READ_COMPLETE:
        return "complete";
    case PF_READ_DAMAGED:
        return "damaged";
    case PF_READ_UNREADABLE:
        return "unreadable";
    }
    return "unknown";
}

/* libpcap reads through a stdio cookie whose read function also hashes the
 * bytes and hands them on, so the file is read once for everything. The
 * hash runs on its own thread over stdio's buffer while libpcap and the
 * sink work on the same bytes; the next read into that buffer waits for
 * it. */
struct tap {
    int fd;
    uint64_t off, size;
    pf_sink_fn sink;
    void *ctx;
    pf_hasher *hash;
    uint64_t hash_ticket; /* the last update, still reading its buffer */
    /* Reads into anything but these may be changed by the caller (libpcap
     * swaps fields in place), so they are hashed before returning. */
    const uint8_t *stable_buf;
    size_t stable_len;
    pf_err *e;
    const char *what;
    bool failed;
    uint8_t magic[4];
    size_t magic_len;
};

static int tap_feed(struct tap *t, const uint8_t *buf, size_t n)
{
    if (t->hash != NULL)
        t->hash_ticket = pf_hasher_update(t->hash, buf, n);
    for (size_t i = 0; i < n && t->magic_len < sizeof t->magic; i++)
        t->magic[t->magic_len++] = buf[i];
    int rc = t->sink != NULL ? t->sink(t->ctx, buf, n, t->e) : 0;
    uintptr_t at = (uintptr_t)buf, stable = (uintptr_t)t->stable_buf;
    if (t->hash != NULL && (at < stable || at + n > stable + t->stable_len || rc != 0))
        pf_hasher_wait(t->hash, t->hash_ticket);
    return rc;
}

static ssize_t tap_pread(struct tap *t, uint8_t *buf, size_t want)
{
    uint64_t left = t->size - t->off;
    size_t n = want < left ? want : (size_t)left;
    size_t got = 0;
    if (t->hash != NULL)
        pf_hasher_wait(t->hash, t->hash_ticket); /* buf may be the one being hashed */
    while (got < n) {
        ssize_t r = pread(t->fd, buf + got, n - got, (off_t)(t->off + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            pf_err_sys(t->e, errno, "%s: read failed", t->what);
            return -1;
        }
        if (r == 0) {
            pf_err_set(t->e, PF_EENV, "%s: file shrank while being read", t->what);
            return -1;
        }
        got += (size_t)r;
    }
    if (tap_feed(t, buf, n) != 0)
        return -1;
    t->off += n;
    return (ssize_t)n;
}

static ssize_t cookie_read(void *cookie, char *buf, size_t size)
{
    struct tap *t = cookie;
    if (t->failed)
        return -1;
    ssize_t n = tap_pread(t, (uint8_t *)buf, size);
    if (n < 0)
        t->failed = true;
    return n;
}

static int cookie_close(void *cookie)
{
    (void)cookie;
    return 0;
}

/* stdio_buf: SCAN_STDIO_BYTES for stdio, or NULL to let stdio allocate. */
static pcap_t *open_tap(struct tap *t, uint8_t *stdio_buf, FILE **fp_out,
                        char errbuf[PCAP_ERRBUF_SIZE])
{
    cookie_io_functions_t io = {.read = cookie_read, .close = cookie_close};
    FILE *fp = fopencookie(t, "r", io);
    *fp_out = NULL;
    if (fp == NULL) {
        snprintf(errbuf, PCAP_ERRBUF_SIZE, "out of memory");
        return NULL;
    }
    setvbuf(fp, (char *)stdio_buf, _IOFBF, SCAN_STDIO_BYTES);
    pcap_t *p = pcap_fopen_offline_with_tstamp_precision(fp, PCAP_TSTAMP_PRECISION_NANO, errbuf);
    if (p == NULL) {
        fclose(fp);
        return NULL;
    }
    *fp_out = fp; /* owned by p now: pcap_close() closes it */
    return p;
}

bool pf_pcap_probe(int fd, char *reason, size_t cap)
{
    pf_err e;
    char errbuf[PCAP_ERRBUF_SIZE] = "";
    FILE *fp = NULL;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        snprintf(reason, cap, "cannot stat: %s", strerror(errno));
        return false;
    }
    struct tap t = {.fd = fd, .size = (uint64_t)st.st_size, .e = &e, .what = ""};
    pf_err_clear(&e);
    pcap_t *p = open_tap(&t, NULL, &fp, errbuf);
    if (p == NULL) {
        snprintf(reason, cap, "%s", e.status != PF_OK ? e.msg : errbuf);
        return false;
    }
    pcap_close(p);
    return true;
}

static void describe_magic(pf_pcapinfo *info, const uint8_t m[4], size_t n)
{
    uint32_t be =
        n == 4 ? (uint32_t)m[0] << 24 | (uint32_t)m[1] << 16 | (uint32_t)m[2] << 8 | m[3] : 0;
    snprintf(info->format, sizeof info->format, "unknown");
    info->ts_resolution[0] = '\0';
    switch (be) {
    case 0xa1b2c3d4:
    case 0xd4c3b2a1:
        snprintf(info->format, sizeof info->format, "pcap");
        snprintf(info->ts_resolution, sizeof info->ts_resolution, "us");
        info->big_endian = be == 0xa1b2c3d4;
        break;
    case 0xa1b23c4d:
    case 0x4d3cb2a1:
        snprintf(info->format, sizeof info->format, "pcap");
        snprintf(info->ts_resolution, sizeof info->ts_resolution, "ns");
        info->big_endian = be == 0xa1b23c4d;
        break;
    case 0x0a0d0d0a:
        snprintf(info->format, sizeof info->format, "pcapng");
        snprintf(info->ts_resolution, sizeof info->ts_resolution, "per-interface");
        break;
    default:
        break;
    }
}

int pf_pcap_scan(int fd, uint64_t size, const char *what, pf_sink_fn sink, void *ctx,
                 pf_pcapinfo *info, pf_err *e)
{
    char errbuf[PCAP_ERRBUF_SIZE] = "";
    uint8_t *stdio_buf = NULL, *buf = NULL;
    FILE *fp = NULL;
    pcap_t *p = NULL;
    int rc = -1;
    struct tap t = {.fd = fd, .size = size, .sink = sink, .ctx = ctx, .e = e, .what = what};

    memset(info, 0, sizeof *info);
    info->size = size;
    info->link_type = -1;
    t.hash = pf_hasher_new();
    stdio_buf = malloc(SCAN_STDIO_BYTES);
    buf = malloc(SCAN_STDIO_BYTES);
    if (t.hash == NULL || stdio_buf == NULL || buf == NULL) {
        pf_err_set(e, PF_EENV, "%s: out of memory", what);
        goto out;
    }
    t.stable_buf = stdio_buf;
    t.stable_len = SCAN_STDIO_BYTES;
    p = open_tap(&t, stdio_buf, &fp, errbuf);
    if (t.failed)
        goto out;
    if (p == NULL) {
        info->read_status = PF_READ_UNREADABLE;
        snprintf(info->read_error, sizeof info->read_error, "%s", errbuf);
    } else {
        info->version_major = pcap_major_version(p);
        info->version_minor = pcap_minor_version(p);
        info->link_type = pcap_datalink(p);
        const char *ln = pcap_datalink_val_to_name(info->link_type);
        snprintf(info->link_type_name, sizeof info->link_type_name, "%s", ln ? ln : "");
        int snap = pcap_snapshot(p);
        info->snaplen = snap > 0 ? (uint32_t)snap : 0;
        for (;;) {
            struct pcap_pkthdr *ph;
            const u_char *data;
            int r = pcap_next_ex(p, &ph, &data);
            if (t.failed)
                goto out;
            if (r == PCAP_ERROR_BREAK)
                break;
            if (r != 1) {
                info->read_status = PF_READ_DAMAGED;
                snprintf(info->read_error, sizeof info->read_error, "%s", pcap_geterr(p));
                break;
            }
            int64_t ts = pf_ns_saturated((int64_t)ph->ts.tv_sec, (int64_t)ph->ts.tv_usec);
            if (!info->have_ts) {
                info->have_ts = true;
                info->first_ns = info->min_ns = info->max_ns = ts;
            }
            info->last_ns = ts;
            if (ts < info->min_ns)
                info->min_ns = ts;
            if (ts > info->max_ns)
                info->max_ns = ts;
            info->packets++;
            if (ph->caplen < ph->len)
                info->truncated_packets++;
        }
    }
    describe_magic(info, t.magic, t.magic_len);
    if (p != NULL && pcap_is_swapped(p) && strcmp(info->format, "pcapng") == 0)
        info->big_endian = true;
    /* Whatever libpcap did not read (a damaged tail, or all of an unreadable
     * file) still travels byte-exact. */
    t.stable_buf = buf;
    while (t.off < t.size) {
        if (tap_pread(&t, buf, SCAN_STDIO_BYTES) < 0)
            goto out;
    }
    pf_hasher_final(t.hash, info->blake2b);
    rc = 0;
out:
    /* The hasher may still be reading stdio_buf or buf: stop it first. */
    pf_hasher_free(t.hash);
    if (p != NULL)
        pcap_close(p);
    free(stdio_buf);
    free(buf);
    return rc;
}
