/* fuzz_pcap_scan: the sensor-side scanner `bundle create` and the capture
 * daemon's sealer run over every file they carry (libpcap through a stdio
 * cookie, the threaded BLAKE2b, the sink that feeds tar).
 *
 * The input is written as a capture file and scanned. Checks:
 *  - the scan succeeds whatever the bytes (only I/O fails it);
 *  - the sink saw exactly the input, once, in order, and the reported
 *    BLAKE2b-256 and size are the input's (b2sum -l 256 would agree);
 *  - an unreadable file counts no packets;
 *  - a sink that fails half way fails the scan with the sink's error. */
#include "fuzz_common.h"

#include <fcntl.h>

#include "bundle/pcapinfo.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct seen {
    const uint8_t *want;
    size_t want_len;
    size_t got;
    bool mismatch;
    size_t fail_at; /* SIZE_MAX: never */
};

static int sink(void *ctx, const uint8_t *buf, size_t len, pf_err *e)
{
    struct seen *s = ctx;
    if (s->got + len > s->want_len || memcmp(s->want + s->got, buf, len) != 0)
        s->mismatch = true;
    s->got += len;
    if (s->got >= s->fail_at)
        return pf_err_set(e, PF_EENV, "sink says stop");
    return 0;
}

static char dir[PATH_MAX];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!fz.ready) {
        fz_init();
        fz_subdir(dir, "scan");
    }
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/cap.pcap", dir);
    fz_write_file(path, data, size, 0644);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        fz_die(path, strerror(errno));

    uint8_t want[PF_HASH_BYTES];
    crypto_generichash(want, sizeof want, data, size, NULL, 0);

    pf_pcapinfo info;
    pf_err e;
    pf_err_clear(&e);
    struct seen s = {.want = data, .want_len = size, .fail_at = SIZE_MAX};
    int rc = pf_pcap_scan(fd, size, "cap.pcap", sink, &s, &info, &e);
    FZ_ASSERT(rc == 0, "scan of a regular file failed: %s", e.msg);
    FZ_ASSERT(!s.mismatch && s.got == size, "sink saw %zu bytes (mismatch %d), input has %zu",
              s.got, (int)s.mismatch, size);
    FZ_ASSERT(memcmp(info.blake2b, want, PF_HASH_BYTES) == 0, "BLAKE2b differs from the input's");
    FZ_ASSERT(info.size == size, "size %llu, input %zu", (unsigned long long)info.size, size);
    FZ_ASSERT(info.read_status != PF_READ_UNREADABLE || info.packets == 0,
              "an unreadable file counted %llu packets", (unsigned long long)info.packets);
    FZ_ASSERT(info.truncated_packets <= info.packets, "more truncated packets than packets");

    if (size > 1) {
        struct seen f = {.want = data, .want_len = size, .fail_at = size / 2};
        pf_err_clear(&e);
        rc = pf_pcap_scan(fd, size, "cap.pcap", sink, &f, &info, &e);
        FZ_ASSERT(rc != 0 && strstr(e.msg, "sink says stop") != NULL,
                  "a failing sink did not fail the scan (rc %d: %s)", rc, e.msg);
        FZ_ASSERT(!f.mismatch, "sink saw other bytes before failing");
    }
    close(fd);
    return 0;
}
