#include "import/arkime.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

bool pf_arkime_link_type_ok(uint32_t link_type_raw)
{
    /* NULL, Ethernet, RAW (12, 101: on Linux 14 is not raw IP and stops
     * capture), Frame Relay, Linux SLL, radiotap, NFLOG, IPv4, IPv6,
     * 802.3br mPacket, SLL2 */
    static const uint32_t ok[] = {0, 1, 12, 101, 107, 113, 127, 239, 228, 229, 274, 276};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (ok[i] == link_type_raw)
            return true;
    return false;
}

static const char *magic_hint(uint32_t magic)
{
    if (magic >> 16 == 0x1f8b)
        return " (gzip-compressed; Arkime does not decompress)";
    if (magic == 0x28b52ffd)
        return " (zstd-compressed; Arkime does not decompress)";
    return "";
}

static void link_reason(const pf_pcapcheck *k, char *reason, size_t cap)
{
    uint32_t lt = k->link_type_raw;
    if ((lt & 0x03ff0000) != 0)
        snprintf(reason, cap,
                 "link type field 0x%08" PRIx32 " has reserved bits set (libpcap refuses it): "
                 "Arkime's capture would exit (\"Unsupported pcap link type %" PRIu32 "\")",
                 lt, lt);
    else if (lt > 0xffff)
        snprintf(reason, cap,
                 "link type field 0x%08" PRIx32 " has its FCS-length bits set (libpcap reads it "
                 "as link type %" PRIu32 "): Arkime's capture uses the whole field and would "
                 "exit (\"Unsupported pcap link type %" PRIu32 "\")",
                 lt, lt & 0xffff, lt);
    else if (lt == 14)
        snprintf(reason, cap,
                 "link type 14 (raw IP as some BSDs write it): Arkime's capture on Linux reads raw "
                 "IP only as 12 or 101 and would exit (\"Unsupported pcap link type 14\")");
    else
        snprintf(reason, cap,
                 "link type %" PRIu32 " is not one Arkime's capture reads; it would exit "
                 "(\"Unsupported pcap link type %" PRIu32 "\")",
                 lt, lt);
}

enum pf_gate pf_arkime_gate(const pf_pcapcheck *k, bool read_truncated, char *reason, size_t cap)
{
    reason[0] = '\0';
    switch (k->format) {
    case PF_PCAPCHECK_SHORT:
        snprintf(reason, cap,
                 "only %" PRIu64 " bytes, shorter than a pcap file header: Arkime's capture "
                 "would exit on it (bad magic)",
                 k->size);
        return PF_GATE_HOLD;
    case PF_PCAPCHECK_OTHER:
        snprintf(reason, cap,
                 "magic 0x%08" PRIx32 " is neither pcap nor pcapng%s: Arkime's capture would exit "
                 "on it (bad magic)",
                 k->magic, magic_hint(k->magic));
        return PF_GATE_HOLD;
    case PF_PCAPCHECK_PCAPNG:
        return PF_GATE_CONVERT;
    case PF_PCAPCHECK_PCAP:
        break;
    }
    if (k->version_major != 2 || k->version_minor != 4) {
        snprintf(reason, cap,
                 "pcap version %u.%u, not 2.4: libpcap refuses it and Arkime's capture would "
                 "exit on it",
                 k->version_major, k->version_minor);
        return PF_GATE_HOLD;
    }
    if (!pf_arkime_link_type_ok(k->link_type_raw)) {
        link_reason(k, reason, cap);
        return PF_GATE_HOLD;
    }
    if (k->caplen_over_len.count > 0) {
        const pf_pcapcheck_bad *b = &k->caplen_over_len;
        snprintf(reason, cap,
                 "record %" PRIu64 " (offset %" PRIu64 ") has caplen %" PRIu32 " > len %" PRIu32
                 " (%" PRIu64 " such records): Arkime's capture would exit (\"requires full "
                 "packet captures\")",
                 b->record, b->offset, b->caplen, b->len, b->count);
        return PF_GATE_HOLD;
    }
    if (k->caplen_over_snaplen.count > 0) {
        const pf_pcapcheck_bad *b = &k->caplen_over_snaplen;
        snprintf(reason, cap,
                 "record %" PRIu64 " (offset %" PRIu64 ") has caplen %" PRIu32
                 " > the file's snaplen %" PRIu32 " (%" PRIu64
                 " such records): a damaged record header; readers stop or misread there",
                 b->record, b->offset, b->caplen, k->snaplen, b->count);
        return PF_GATE_HOLD;
    }
    if (k->caplen_under_len.count > 0 && !read_truncated) {
        const pf_pcapcheck_bad *b = &k->caplen_under_len;
        snprintf(reason, cap,
                 "%" PRIu64 " packets are truncated (caplen < len, first: record %" PRIu64
                 ", caplen %" PRIu32 " len %" PRIu32 "); Arkime's capture exits on them unless "
                 "readTruncatedPackets=true (then run the importer with "
                 "--arkime-read-truncated)",
                 b->count, b->record, b->caplen, b->len);
        return PF_GATE_HOLD;
    }
    if (k->records == 0) {
        if (k->cut_bytes > 0) {
            snprintf(reason, cap,
                     "no complete record: only %" PRIu64 " bytes of a cut-off record follow "
                     "the file header",
                     k->cut_bytes);
            return PF_GATE_HOLD;
        }
        snprintf(reason, cap, "no packets");
        return PF_GATE_EMPTY;
    }
    if (k->cut_bytes > 0) {
        if (k->cut_header && (k->cut_caplen > k->snaplen || k->cut_caplen != k->cut_len))
            snprintf(reason, cap,
                     "last record damaged and cut off: record %" PRIu64 " claims caplen %" PRIu32
                     " len %" PRIu32 " (snaplen %" PRIu32 ") and only %" PRIu64
                     " bytes follow; delivered up to record %" PRIu64
                     " (Arkime reads it that far), the original held",
                     k->records + 1, k->cut_caplen, k->cut_len, k->snaplen, k->cut_bytes,
                     k->records);
        else if (k->cut_header)
            snprintf(reason, cap,
                     "last record cut off: record %" PRIu64 " claims caplen %" PRIu32
                     " len %" PRIu32 " but only %" PRIu64
                     " bytes of it are in the file; delivered up to record %" PRIu64
                     " (Arkime reads it that far), the original held",
                     k->records + 1, k->cut_caplen, k->cut_len, k->cut_bytes, k->records);
        else
            snprintf(reason, cap,
                     "last record cut off: %" PRIu64 " byte(s) of a record header after record "
                     "%" PRIu64 "; delivered up to record %" PRIu64
                     " (Arkime reads it that far), the original held",
                     k->cut_bytes, k->records, k->records);
        return PF_GATE_TRIM;
    }
    return PF_GATE_DELIVER;
}

/* ---------- pcapng -> classic pcap, one per interface ---------- */

#define BLOCK_MAX_BYTES  (16u * 1024 * 1024) /* libpcap's own ceiling */
#define SNAPLEN_FALLBACK 262144u

#define BT_SHB 0x0a0d0d0au
#define BT_IDB 1u
#define BT_PB  2u /* obsolete packet block */
#define BT_SPB 3u
#define BT_EPB 6u
#define BT_DSB 10u /* decryption secrets */

struct iface_rt {
    uint64_t units;   /* timestamp units per second */
    int64_t offset_s; /* if_tsoffset */
    uint32_t max_cap; /* largest caplen written */
    FILE *out;
};

struct ng {
    int fd;
    uint64_t off, size;
    bool big;
    size_t section_base; /* global index of this section's interface 0 */
    pf_split *s;
    struct iface_rt rt[PF_SPLIT_MAX_IFACES];
    uint8_t *blk;
    size_t blk_cap;
};

static uint32_t ng32(const struct ng *g, const uint8_t *p)
{
    if (g->big)
        return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
    return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

static uint16_t ng16(const struct ng *g, const uint8_t *p)
{
    unsigned v = g->big ? (unsigned)p[0] << 8 | p[1] : (unsigned)p[1] << 8 | p[0];
    return (uint16_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static int read_at(int fd, uint8_t *buf, size_t n, uint64_t off)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, buf + got, n - got, (off_t)(off + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return r == 0 ? 1 : -1;
        got += (size_t)r;
    }
    return 0;
}

static void damage(struct ng *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void damage(struct ng *g, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    g->s->damaged = true;
    vsnprintf(g->s->damage, sizeof g->s->damage, fmt, ap);
    va_end(ap);
}

static int parse_idb(struct ng *g, const uint8_t *body, size_t len)
{
    pf_split *s = g->s;
    if (len < 8) {
        damage(g,
               "interface description block at offset %" PRIu64 " is too short (%" PRIu64 " bytes)",
               g->off, (uint64_t)len);
        return 1;
    }
    if (s->nifaces == PF_SPLIT_MAX_IFACES) {
        damage(g, "more than %" PRIu64 " interfaces (offset %" PRIu64 ")",
               (uint64_t)PF_SPLIT_MAX_IFACES, g->off);
        return 1;
    }
    pf_split_iface *f = &s->ifaces[s->nifaces];
    struct iface_rt *rt = &g->rt[s->nifaces];
    f->link_type = ng16(g, body);
    f->snaplen = ng32(g, body + 4);
    rt->units = 1000000;
    for (size_t o = 8; o + 4 <= len;) {
        uint16_t code = ng16(g, body + o), olen = ng16(g, body + o + 2);
        if (code == 0)
            break;
        size_t padded = ((size_t)olen + 3) & ~(size_t)3;
        if (o + 4 + padded > len) {
            damage(g,
                   "interface description block at offset %" PRIu64
                   " has an option overrunning it (length %" PRIu64 ")",
                   g->off, (uint64_t)olen);
            return 1;
        }
        const uint8_t *v = body + o + 4;
        if (code == 9 && olen == 1) { /* if_tsresol */
            unsigned x = v[0] & 0x7f;
            if ((v[0] & 0x80) ? x > 63 : x > 19) {
                damage(g,
                       "interface at offset %" PRIu64 " has timestamp resolution 0x%02" PRIx64
                       " beyond 64 bits",
                       g->off, (uint64_t)v[0]);
                return 1;
            }
            uint64_t u = 1;
            for (unsigned i = 0; i < x; i++)
                u *= (v[0] & 0x80) ? 2 : 10;
            rt->units = u;
        } else if (code == 14 && olen == 8) { /* if_tsoffset, seconds */
            uint64_t hi = ng32(g, g->big ? v : v + 4), lo = ng32(g, g->big ? v + 4 : v);
            rt->offset_s = (int64_t)(hi << 32 | lo);
        }
        o += 4 + padded;
    }
    s->nifaces++;
    return 0;
}

static int write_packet(struct ng *g, size_t iface, uint64_t ts, uint32_t caplen, uint32_t len,
                        const uint8_t *data, const char *prefix, int dirfd, pf_err *e)
{
    pf_split *s = g->s;
    pf_split_iface *f = &s->ifaces[iface];
    struct iface_rt *rt = &g->rt[iface];
    s->packets++;
    f->packets++;
    if (!pf_arkime_link_type_ok(f->link_type)) {
        s->skipped++;
        return 0;
    }
    if (rt->out == NULL) {
        uint8_t h[PF_PCAP_FILE_HDR_BYTES] = {0x4d, 0x3c, 0xb2, 0xa1, 2, 0, 4, 0};
        snprintf(f->out_name, sizeof f->out_name, "%s%zu.part", prefix, iface);
        int fd =
            openat(dirfd, f->out_name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd < 0)
            return pf_err_sys(e, errno, "%s: cannot create", f->out_name);
        rt->out = fdopen(fd, "wb");
        if (rt->out == NULL) {
            close(fd);
            return pf_err_sys(e, errno, "%s: cannot create", f->out_name);
        }
        f->written = true;
        put32(h + 16, f->snaplen != 0 ? f->snaplen : SNAPLEN_FALLBACK);
        put32(h + 20, f->link_type);
        fwrite(h, 1, sizeof h, rt->out);
    }
    uint64_t sec = ts / rt->units, frac = ts % rt->units;
    uint32_t ns = (uint32_t)((unsigned __int128)frac * 1000000000u / rt->units);
    int64_t when = (int64_t)(sec > INT64_MAX / 2 ? INT64_MAX / 2 : sec);
    if (rt->offset_s > 0 && when > INT64_MAX / 2 - rt->offset_s)
        when = INT64_MAX / 2;
    else if (rt->offset_s < 0 && when < INT64_MIN / 2 - rt->offset_s)
        when = INT64_MIN / 2;
    else
        when += rt->offset_s;
    if (when < 0 || when > (int64_t)UINT32_MAX) {
        f->bad_ts++;
        when = when < 0 ? 0 : (int64_t)UINT32_MAX;
    }
    uint8_t rh[PF_PCAP_RECORD_HDR_BYTES];
    put32(rh, (uint32_t)when);
    put32(rh + 4, ns);
    put32(rh + 8, caplen);
    put32(rh + 12, len);
    fwrite(rh, 1, sizeof rh, rt->out);
    fwrite(data, 1, caplen, rt->out);
    if (caplen > rt->max_cap)
        rt->max_cap = caplen;
    if (ferror(rt->out))
        return pf_err_sys(e, errno ? errno : EIO, "%s: write failed", f->out_name);
    return 0;
}

/* One block: 0 done, 1 stop (s says why), -1 file system error. */
static int one_block(struct ng *g, int dirfd, const char *prefix, pf_err *e)
{
    uint8_t h[12];
    pf_split *s = g->s;
    uint64_t left = g->size - g->off;
    if (left < 12) {
        s->cut_bytes = left;
        return 1;
    }
    if (read_at(g->fd, h, sizeof h, g->off) != 0)
        return pf_err_sys(e, errno ? errno : EIO, "read failed");
    uint32_t type = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
    if (type == BT_SHB) {
        uint32_t bom = (uint32_t)h[8] << 24 | (uint32_t)h[9] << 16 | (uint32_t)h[10] << 8 | h[11];
        if (bom != 0x1a2b3c4d && bom != 0x4d3c2b1a) {
            damage(g, "section header at offset %" PRIu64 " has byte-order magic 0x%08" PRIx64,
                   g->off, (uint64_t)bom);
            return 1;
        }
        g->big = bom == 0x1a2b3c4d;
        g->section_base = s->nifaces;
    } else if (g->off == 0) {
        damage(g,
               "does not start with a section header (block type 0x%08" PRIx64 ", offset %" PRIu64
               ")",
               (uint64_t)type, (uint64_t)0);
        return 1;
    } else {
        type = ng32(g, h);
    }
    uint32_t blen = ng32(g, h + 4);
    if (blen < 12 || blen % 4 != 0 || blen > BLOCK_MAX_BYTES) {
        damage(g, "block at offset %" PRIu64 " has an impossible length %" PRIu64, g->off,
               (uint64_t)blen);
        return 1;
    }
    if (blen > left) {
        s->cut_bytes = left;
        return 1;
    }
    if (blen > g->blk_cap) {
        uint8_t *nb = realloc(g->blk, blen);
        if (nb == NULL)
            return pf_err_set(e, PF_EENV, "out of memory");
        g->blk = nb;
        g->blk_cap = blen;
    }
    if (read_at(g->fd, g->blk, blen, g->off) != 0)
        return pf_err_sys(e, errno ? errno : EIO, "read failed");
    if (ng32(g, g->blk + blen - 4) != blen) {
        damage(g, "block at offset %" PRIu64 " has a trailing length other than its %" PRIu64,
               g->off, (uint64_t)blen);
        return 1;
    }
    const uint8_t *body = g->blk + 8;
    size_t blen_body = blen - 12;
    int r = 0;
    if (type == BT_IDB) {
        r = parse_idb(g, body, blen_body);
    } else if (type == BT_EPB || type == BT_PB) {
        if (blen_body < 20) {
            damage(g, "packet block at offset %" PRIu64 " is too short (%" PRIu64 " bytes)", g->off,
                   (uint64_t)blen_body);
            return 1;
        }
        size_t id = type == BT_EPB ? ng32(g, body) : ng16(g, body);
        uint64_t ts = (uint64_t)ng32(g, body + 4) << 32 | ng32(g, body + 8);
        uint32_t caplen = ng32(g, body + 12), len = ng32(g, body + 16);
        if (g->section_base + id >= s->nifaces) {
            damage(g,
                   "packet block at offset %" PRIu64 " names interface %" PRIu64
                   ", which its section did not describe",
                   g->off, (uint64_t)id);
            return 1;
        }
        if (caplen > blen_body - 20) {
            damage(g,
                   "packet block at offset %" PRIu64 " claims caplen %" PRIu64
                   ", longer than the block",
                   g->off, (uint64_t)caplen);
            return 1;
        }
        r = write_packet(g, g->section_base + id, ts, caplen, len, body + 20, prefix, dirfd, e);
    } else if (type == BT_DSB) {
        s->secrets++;
    } else if (type == BT_SPB) {
        if (blen_body < 4 || g->section_base >= s->nifaces) {
            damage(g,
                   "simple packet block at offset %" PRIu64 " is too short or has no "
                   "interface (%" PRIu64 ")",
                   g->off, (uint64_t)blen_body);
            return 1;
        }
        uint32_t len = ng32(g, body), caplen = len;
        uint32_t snap = s->ifaces[g->section_base].snaplen;
        if (snap != 0 && caplen > snap)
            caplen = snap;
        if (caplen > blen_body - 4)
            caplen = (uint32_t)(blen_body - 4);
        r = write_packet(g, g->section_base, 0, caplen, len, body + 4, prefix, dirfd, e);
    }
    if (r != 0)
        return r;
    g->off += blen;
    s->good_end = g->off;
    return 0;
}

int pf_pcapng_split(int dirfd, const char *in_name, const char *out_prefix, pf_split *s,
                    const char *what, pf_err *e)
{
    struct ng g;
    struct stat st;
    int rc = -1;
    memset(s, 0, sizeof *s);
    memset(&g, 0, sizeof g);
    g.s = s;
    g.fd = openat(dirfd, in_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (g.fd < 0 || fstat(g.fd, &st) != 0) {
        pf_err_sys(e, errno, "%s: cannot open staged file", what);
        goto out;
    }
    g.size = (uint64_t)st.st_size;
    for (;;) {
        int r = one_block(&g, dirfd, out_prefix, e);
        if (r < 0) {
            pf_err_prefix(e, "%s: ", what);
            goto out;
        }
        if (r > 0 || g.off == g.size)
            break;
    }
    rc = 0;
out:
    for (size_t i = 0; i < s->nifaces; i++) {
        struct iface_rt *rt = &g.rt[i];
        if (rt->out == NULL)
            continue;
        if (rc == 0) {
            /* a snaplen below the largest packet would make the output lie */
            uint32_t snap = s->ifaces[i].snaplen != 0 ? s->ifaces[i].snaplen : SNAPLEN_FALLBACK;
            if (s->ifaces[i].snaplen == 0 && rt->max_cap > snap) {
                uint8_t b[4];
                put32(b, rt->max_cap);
                if (fflush(rt->out) != 0 || pwrite(fileno(rt->out), b, 4, 16) != 4)
                    rc = pf_err_sys(e, errno ? errno : EIO, "%s: write failed", what);
            }
            if (rc == 0 && (fflush(rt->out) != 0 || fsync(fileno(rt->out)) != 0))
                rc = pf_err_sys(e, errno ? errno : EIO, "%s: writing the converted file failed",
                                what);
        }
        if (fclose(rt->out) != 0 && rc == 0)
            rc = pf_err_sys(e, errno ? errno : EIO, "%s: writing the converted file failed", what);
    }
    if (rc != 0)
        for (size_t i = 0; i < s->nifaces; i++)
            if (s->ifaces[i].written)
                unlinkat(dirfd, s->ifaces[i].out_name, 0);
    free(g.blk);
    if (g.fd >= 0)
        close(g.fd);
    return rc;
}

int pf_arkime_announce(int dirfd, const char *name, pf_err *e)
{
    int fd = openat(dirfd, name, O_WRONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return pf_err_sys(e, errno, "%s: cannot announce to Arkime", name);
    if (close(fd) != 0)
        return pf_err_sys(e, errno, "%s: cannot announce to Arkime", name);
    return 0;
}
