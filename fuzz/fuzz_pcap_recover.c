/* fuzz_pcap_recover: the sensor's crash-recovery record walker.
 *
 * The input is written as a capture file and cut back by pf_pcap_recover.
 * Checks, against an independent walk of the input:
 *  - on success the file is a prefix of the input, `cut` is what was
 *    removed and `packets` the records kept;
 *  - every kept record is complete (header and caplen bytes), and the kept
 *    part is maximal: the input's next record is incomplete or over the
 *    walker's 1 MiB record bound;
 *  - on failure (too short, foreign magic) the file is untouched. */
#include "fuzz_common.h"

#include "capture/pcapfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* capture/pcapfile.c's MAX_RECORD_BYTES: a record larger than any this
 * sensor writes ends the walk. */
#define RECOVER_MAX_RECORD (1u << 20)

static char dir[PATH_MAX];
static int dirfd_ = -1;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint64_t packets = 0, cut = 0;
    pf_err e;
    if (!fz.ready) {
        fz_init();
        fz_subdir(dir, "recover");
        dirfd_ = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dirfd_ < 0)
            fz_die(dir, strerror(errno));
    }
    fz_rng_reset(8);
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/cap.pcap", dir);
    fz_write_file(path, data, size, 0644);

    pf_err_clear(&e);
    int rc = pf_pcap_recover(dirfd_, "cap.pcap", &packets, &cut, &e);
    fz_note("recover", rc, &e);

    uint8_t *out = NULL;
    size_t olen = 0;
    pf_err re;
    pf_err_clear(&re);
    if (pf_read_file(path, size + 1, 0, &out, &olen, &re) != 0)
        fz_die(path, re.msg);
    FZ_ASSERT(olen <= size && (olen == 0 || memcmp(out, data, olen) == 0),
              "output (%zu bytes) is not a prefix of the input (%zu bytes)", olen, size);

    if (rc != 0) {
        FZ_ASSERT(olen == size, "failed recovery (%s) changed the file", e.msg);
        FZ_ASSERT(size < PF_PCAP_HEADER_BYTES || (memcmp(data, "\xd4\xc3\xb2\xa1", 4) != 0 &&
                                                  memcmp(data, "\x4d\x3c\xb2\xa1", 4) != 0),
                  "refused a file with a good header: %s", e.msg);
        pf_free_file(out, false);
        return 0;
    }
    FZ_ASSERT(olen >= PF_PCAP_HEADER_BYTES, "recovered file shorter than a header");
    FZ_ASSERT(cut == size - olen, "cut %llu, but %zu bytes went", (unsigned long long)cut,
              size - olen);
    /* Independent walk of the input (records in host byte order, as the
     * sensor writes them). */
    size_t pos = PF_PCAP_HEADER_BYTES;
    uint64_t n = 0;
    for (;;) {
        if (size - pos < PF_PCAP_RECORD_HEADER_BYTES)
            break;
        uint32_t caplen;
        memcpy(&caplen, data + pos + 8, 4);
        if (caplen > RECOVER_MAX_RECORD || size - pos - PF_PCAP_RECORD_HEADER_BYTES < caplen)
            break;
        pos += PF_PCAP_RECORD_HEADER_BYTES + caplen;
        n++;
    }
    FZ_ASSERT(olen == pos, "kept %zu bytes, complete records end at %zu", olen, pos);
    FZ_ASSERT(packets == n, "reported %llu packets, kept %llu", (unsigned long long)packets,
              (unsigned long long)n);
    pf_free_file(out, false);
    return 0;
}
