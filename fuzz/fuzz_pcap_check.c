/* fuzz_pcap_check: the importer's Arkime gate sees hostile bytes. It reads
 * each extracted capture with the record walk of bundle/pcapcheck.c (fed
 * in whatever pieces extraction hands it) and converts pcapng with its own
 * converter (import/arkime.c, pf_pcapng_split).
 *
 * The input is the capture. Checks:
 *  - the walk's result does not depend on how the bytes are cut into
 *    pieces (input bytes choose the piece sizes);
 *  - the trim point lies inside the file and what follows it is exactly
 *    the cut-off tail; a trimmed copy walks again to the same records, with
 *    nothing cut off;
 *  - the gate gives a reason whenever it holds or trims;
 *  - every classic pcap the converter writes walks cleanly: version 2.4,
 *    no cut-off record, as many records as it says it wrote, the link type
 *    of its interface, and one Arkime reads. */
#include "fuzz_common.h"

#include <fcntl.h>

#include "bundle/pcapcheck.h"
#include "import/arkime.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool same(const pf_pcapcheck *a, const pf_pcapcheck *b)
{
    return a->format == b->format && a->magic == b->magic && a->records == b->records &&
           a->good_end == b->good_end && a->cut_bytes == b->cut_bytes &&
           a->cut_header == b->cut_header && a->bad_any == b->bad_any &&
           a->bad_over == b->bad_over && a->link_type_raw == b->link_type_raw &&
           a->snaplen == b->snaplen && a->caplen_over_len.record == b->caplen_over_len.record &&
           a->caplen_under_len.count == b->caplen_under_len.count;
}

static char dir[PATH_MAX];
static int dirfd_ = -1;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!fz.ready) {
        fz_init();
        fz_subdir(dir, "check");
        dirfd_ = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dirfd_ < 0)
            fz_die(dir, strerror(errno));
    }
    pf_pcapcheck whole, pieces;
    pf_pcapcheck_init(&whole);
    pf_pcapcheck_update(&whole, data, size);
    pf_pcapcheck_final(&whole);

    pf_pcapcheck_init(&pieces);
    for (size_t off = 0, i = 0; off < size; i++) {
        size_t n = 1 + (size_t)data[i % size] % 23;
        if (n > size - off)
            n = size - off;
        pf_pcapcheck_update(&pieces, data + off, n);
        off += n;
    }
    pf_pcapcheck_final(&pieces);
    FZ_ASSERT(same(&whole, &pieces), "the walk depends on how the bytes are cut");
    FZ_ASSERT(whole.size == size, "size %llu, input %zu", (unsigned long long)whole.size, size);

    char reason[1024];
    enum pf_gate g = pf_arkime_gate(&whole, false, reason, sizeof reason);
    FZ_ASSERT((g != PF_GATE_HOLD && g != PF_GATE_TRIM) || reason[0] != '\0',
              "gate %d without a reason", (int)g);
    if (whole.format == PF_PCAPCHECK_PCAP) {
        FZ_ASSERT(whole.good_end <= size && whole.good_end >= PF_PCAP_FILE_HDR_BYTES,
                  "trim point %llu outside the file", (unsigned long long)whole.good_end);
        FZ_ASSERT(whole.cut_bytes == size - whole.good_end, "cut-off tail miscounted");
        FZ_ASSERT(whole.bad_any <= whole.records && whole.bad_over <= whole.bad_any,
                  "more bad records than records");
        pf_pcapcheck t;
        pf_pcapcheck_init(&t);
        pf_pcapcheck_update(&t, data, (size_t)whole.good_end);
        pf_pcapcheck_final(&t);
        FZ_ASSERT(t.records == whole.records && t.cut_bytes == 0 && t.bad_any == whole.bad_any,
                  "the trimmed prefix walks differently");
        FZ_ASSERT(g != PF_GATE_TRIM ||
                      pf_arkime_gate(&t, false, reason, sizeof reason) == PF_GATE_DELIVER,
                  "a trimmed capture would not be delivered");
    }
    if (whole.format != PF_PCAPCHECK_PCAPNG)
        return 0;

    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/in.pcapng", dir);
    fz_write_file(path, data, size, 0644);
    pf_split *s = malloc(sizeof *s);
    pf_err e;
    pf_err_clear(&e);
    if (s == NULL)
        fz_die("split", "out of memory");
    int rc = pf_pcapng_split(dirfd_, "in.pcapng", ".out-", s, "in.pcapng", &e);
    FZ_ASSERT(rc == 0, "split failed on a readable file: %s", e.msg);
    FZ_ASSERT(s->good_end <= size && s->cut_bytes <= size, "split offsets outside the file");
    uint64_t sum = 0;
    for (size_t i = 0; i < s->nifaces; i++) {
        pf_split_iface *f = &s->ifaces[i];
        sum += f->packets;
        if (!f->written)
            continue;
        int fd = openat(dirfd_, f->out_name, O_RDONLY | O_CLOEXEC);
        FZ_ASSERT(fd >= 0, "%s: written but not there", f->out_name);
        pf_pcapcheck k;
        FZ_ASSERT(pf_pcapcheck_fd(&k, fd) == 0, "cannot read %s back", f->out_name);
        close(fd);
        FZ_ASSERT(k.format == PF_PCAPCHECK_PCAP && k.version_major == 2 && k.version_minor == 4,
                  "%s is not a classic pcap 2.4", f->out_name);
        FZ_ASSERT(k.cut_bytes == 0 && k.records == f->packets,
                  "%s: %llu records, %llu cut bytes; the converter wrote %llu", f->out_name,
                  (unsigned long long)k.records, (unsigned long long)k.cut_bytes,
                  (unsigned long long)f->packets);
        FZ_ASSERT(k.link_type_raw == f->link_type && pf_arkime_link_type_ok(k.link_type_raw),
                  "%s: link type %u", f->out_name, (unsigned)k.link_type_raw);
        FZ_ASSERT(f->snaplen != 0 || k.caplen_over_snaplen.count == 0,
                  "%s: the snaplen written is below a packet", f->out_name);
        unlinkat(dirfd_, f->out_name, 0);
    }
    FZ_ASSERT(sum == s->packets, "interfaces count %llu packets, the split %llu",
              (unsigned long long)sum, (unsigned long long)s->packets);
    free(s);
    return 0;
}
