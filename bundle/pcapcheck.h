/* The record walk that decides what reaches Arkime: the bytes of a capture
 * file, not what its signed manifest claims about them. Fed the file in
 * pieces (the extraction pass that hashes it), in bounded memory: packet
 * data is counted, never kept. Sees hostile bytes (fuzz/fuzz_pcap_check.c). */
#ifndef PF_PCAPCHECK_H
#define PF_PCAPCHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PF_PCAP_FILE_HDR_BYTES   24u
#define PF_PCAP_RECORD_HDR_BYTES 16u

enum pf_pcapcheck_format {
    PF_PCAPCHECK_SHORT,  /* fewer than 24 bytes: no file header */
    PF_PCAPCHECK_PCAP,   /* a classic pcap magic (either order, us or ns) */
    PF_PCAPCHECK_PCAPNG, /* a pcapng section header block type; not walked */
    PF_PCAPCHECK_OTHER,  /* any other magic */
};

/* The first record that broke one rule, numbered from 1. */
typedef struct pf_pcapcheck_bad {
    uint64_t count;
    uint64_t record, offset;
    uint32_t caplen, len;
} pf_pcapcheck_bad;

typedef struct pf_pcapcheck {
    enum pf_pcapcheck_format format;
    uint32_t magic; /* the first four bytes, big-endian */
    bool big_endian, nanosecond;
    uint16_t version_major, version_minor;
    uint32_t link_type_raw; /* the whole 32-bit field, as Arkime reads it */
    uint32_t snaplen;
    uint64_t size;     /* bytes fed */
    uint64_t records;  /* complete records */
    uint64_t good_end; /* just past the last complete record (or the file header) */
    pf_pcapcheck_bad caplen_over_snaplen, caplen_over_len, caplen_under_len;
    uint64_t bad_over; /* records with caplen > snaplen or caplen > len */
    uint64_t bad_any;  /* those, and records with caplen < len */
    /* After pf_pcapcheck_final: what follows good_end, when the last record
     * is cut off. cut_header says whether its 16-byte header was whole (then
     * cut_caplen/cut_len are what it claims). */
    uint64_t cut_bytes;
    bool cut_header;
    uint32_t cut_caplen, cut_len;
    /* walk state */
    uint8_t hdr[PF_PCAP_FILE_HDR_BYTES];
    size_t have;
    uint64_t data_left; /* packet bytes still to come for the current record */
    bool in_data;
} pf_pcapcheck;

void pf_pcapcheck_init(pf_pcapcheck *k);
void pf_pcapcheck_update(pf_pcapcheck *k, const uint8_t *p, size_t n);
void pf_pcapcheck_final(pf_pcapcheck *k);

/* Convenience for a whole file on a descriptor (read with pread from 0). */
int pf_pcapcheck_fd(pf_pcapcheck *k, int fd);

/* The number of complete records that break a rule Arkime's reader holds
 * them to: caplen <= snaplen, caplen == len (caplen <= len when Arkime
 * runs with readTruncatedPackets=true). */
uint64_t pf_pcapcheck_violations(const pf_pcapcheck *k, bool read_truncated);

#endif
