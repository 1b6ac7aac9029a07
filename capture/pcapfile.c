#include "capture/pcapfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fsutil.h"

#define WRITE_BUF_BYTES (1u << 20)
/* Larger records are damage: no link carries frames near this size. */
#define MAX_RECORD_BYTES (1u << 20)

static void put32(uint8_t *p, uint32_t v)
{
    memcpy(p, &v, 4); /* host order, as the magic says */
}

int pf_pcapw_open(pf_pcapw *w, int dirfd, const char *name, int link_type, uint32_t snaplen,
                  bool nano, pf_err *e)
{
    uint8_t h[PF_PCAP_HEADER_BYTES];
    memset(w, 0, sizeof *w);
    w->fd = -1;
    w->nano = nano;
    w->name = name;
    w->cap = WRITE_BUF_BYTES;
    w->buf = malloc(w->cap);
    if (w->buf == NULL)
        return pf_err_set(e, PF_EENV, "out of memory");
    w->fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (w->fd < 0) {
        int err = errno;
        free(w->buf);
        w->buf = NULL;
        return pf_err_sys(e, err, "%s: cannot create capture file", name);
    }
    put32(h, nano ? 0xa1b23c4d : 0xa1b2c3d4);
    uint16_t major = 2, minor = 4;
    memcpy(h + 4, &major, 2);
    memcpy(h + 6, &minor, 2);
    memset(h + 8, 0, 8); /* thiszone, sigfigs */
    put32(h + 16, snaplen);
    put32(h + 20, (uint32_t)link_type);
    memcpy(w->buf, h, sizeof h);
    w->len = sizeof h;
    w->bytes = sizeof h;
    return 0;
}

/* After a failed write: the file ends at off again (no half record for the
 * next write to land after), or the writer refuses further writes. */
static void cut_back(pf_pcapw *w, uint64_t off)
{
    if (ftruncate(w->fd, (off_t)off) != 0 || lseek(w->fd, (off_t)off, SEEK_SET) < 0)
        w->wedged = true;
}

int pf_pcapw_flush(pf_pcapw *w, pf_err *e)
{
    if (w->len == 0)
        return 0;
    if (pf_write_all(w->fd, w->buf, w->len, w->name, e) != 0) {
        /* keep nothing half-buffered: what failed is lost and counted. A
         * full disk often takes part of the buffer first (a short write):
         * cut that back, or the next flush would land after half a record
         * and the rest of the file would be unreadable. */
        uint64_t on_disk = w->bytes - w->len;
        size_t keep = on_disk == 0 ? PF_PCAP_HEADER_BYTES : 0; /* the header stays buffered */
        w->len = keep;
        w->bytes = on_disk + keep;
        w->packets -= w->buffered;
        w->discarded += w->buffered;
        w->buffered = 0;
        cut_back(w, on_disk);
        return -1;
    }
    pf_writeback_note(w->fd, &w->wb, w->len);
    w->len = 0;
    w->buffered = 0;
    return 0;
}

int pf_pcapw_write(pf_pcapw *w, int64_t ts_sec, uint32_t ts_frac, uint32_t caplen, uint32_t len,
                   const uint8_t *data, pf_err *e)
{
    size_t need = PF_PCAP_RECORD_HEADER_BYTES + caplen;
    if (w->wedged)
        return pf_err_set(e, PF_EENV, "%s: a failed write could not be cut back", w->name);
    if (w->len + need > w->cap && pf_pcapw_flush(w, e) != 0)
        return -1;
    if (need > w->cap) { /* a record larger than the buffer goes straight out */
        uint8_t h[PF_PCAP_RECORD_HEADER_BYTES];
        put32(h, (uint32_t)ts_sec);
        put32(h + 4, ts_frac);
        put32(h + 8, caplen);
        put32(h + 12, len);
        if (pf_write_all(w->fd, h, sizeof h, w->name, e) != 0 ||
            pf_write_all(w->fd, data, caplen, w->name, e) != 0) {
            cut_back(w, w->bytes);
            return -1;
        }
    } else {
        uint8_t *p = w->buf + w->len;
        put32(p, (uint32_t)ts_sec);
        put32(p + 4, ts_frac);
        put32(p + 8, caplen);
        put32(p + 12, len);
        memcpy(p + PF_PCAP_RECORD_HEADER_BYTES, data, caplen);
        w->len += need;
        w->buffered++;
    }
    w->bytes += need;
    w->packets++;
    return 0;
}

int pf_pcapw_close(pf_pcapw *w, bool sync, pf_err *e)
{
    int rc = 0;
    if (w->fd >= 0) {
        if (pf_pcapw_flush(w, e) != 0)
            rc = -1;
        if (sync && rc == 0 && fdatasync(w->fd) != 0)
            rc = pf_err_sys(e, errno, "%s: fdatasync failed", w->name);
        if (close(w->fd) != 0 && rc == 0)
            rc = pf_err_sys(e, errno, "%s: close failed", w->name);
        w->fd = -1;
    }
    free(w->buf);
    w->buf = NULL;
    return rc;
}

int pf_pcap_recover(int dirfd, const char *name, uint64_t *packets, uint64_t *cut, pf_err *e)
{
    uint8_t h[PF_PCAP_HEADER_BYTES], rec[PF_PCAP_RECORD_HEADER_BYTES];
    struct stat st;
    int rc = -1;
    *packets = 0;
    *cut = 0;
    int fd = openat(dirfd, name, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return pf_err_sys(e, errno, "%s: cannot open for recovery", name);
    if (fstat(fd, &st) != 0) {
        pf_err_sys(e, errno, "%s: cannot stat", name);
        goto out;
    }
    uint64_t size = (uint64_t)st.st_size;
    if (pf_read_full(fd, h, sizeof h) != (ssize_t)sizeof h) {
        pf_err_set(e, PF_EREJECT, "%s: shorter than a pcap header", name);
        goto out;
    }
    uint32_t magic;
    memcpy(&magic, h, 4);
    if (magic != 0xa1b2c3d4 && magic != 0xa1b23c4d) {
        pf_err_set(e, PF_EREJECT, "%s: not a pcap written by this sensor", name);
        goto out;
    }
    uint64_t good = sizeof h;
    for (;;) {
        ssize_t n = pf_read_full(fd, rec, sizeof rec);
        if (n < 0) {
            pf_err_sys(e, errno, "%s: read failed", name);
            goto out;
        }
        if ((size_t)n < sizeof rec)
            break;
        uint32_t caplen;
        memcpy(&caplen, rec + 8, 4);
        if (caplen > MAX_RECORD_BYTES || good + sizeof rec + caplen > size)
            break;
        if (lseek(fd, (off_t)caplen, SEEK_CUR) < 0) {
            pf_err_sys(e, errno, "%s: seek failed", name);
            goto out;
        }
        good += sizeof rec + caplen;
        (*packets)++;
    }
    if (good < size) {
        if (ftruncate(fd, (off_t)good) != 0) {
            pf_err_sys(e, errno, "%s: cannot cut back to the last complete record", name);
            goto out;
        }
        *cut = size - good;
    }
    if (fsync(fd) != 0) {
        pf_err_sys(e, errno, "%s: fsync failed", name);
        goto out;
    }
    rc = 0;
out:
    close(fd);
    return rc;
}
