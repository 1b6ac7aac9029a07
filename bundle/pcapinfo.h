/* What libpcap says about a capture file, gathered while the file's bytes
 * stream into a bundle, so each file is read once. */
#ifndef PF_PCAPINFO_H
#define PF_PCAPINFO_H

#include <stdbool.h>
#include <stdint.h>

#include "common/pf_err.h"
#include "keys/keyfile.h"

enum pf_read_status {
    PF_READ_COMPLETE,   /* libpcap read to a clean end */
    PF_READ_DAMAGED,    /* libpcap read some packets, then failed */
    PF_READ_UNREADABLE, /* libpcap could not open it; carried on request */
};

typedef struct pf_pcapinfo {
    char format[16];        /* "pcap", "pcapng", "unknown" */
    char ts_resolution[16]; /* "us", "ns", or "per-interface" for pcapng */
    bool big_endian;
    int version_major, version_minor;
    int link_type;
    char link_type_name[32];
    uint32_t snaplen;
    uint64_t packets;
    uint64_t truncated_packets; /* caplen < len */
    bool have_ts;
    int64_t first_ns, last_ns, min_ns, max_ns;
    enum pf_read_status read_status;
    char read_error[256];
    uint64_t size;
    uint8_t blake2b[PF_HASH_BYTES];
} pf_pcapinfo;

const char *pf_read_status_name(enum pf_read_status s);

/* Can libpcap open this file at all? Fills reason when not. */
bool pf_pcap_probe(int fd, char *reason, size_t cap);

typedef int (*pf_sink_fn)(void *ctx, const uint8_t *data, size_t len, pf_err *e);

/* Streams the first size bytes of fd (read with pread) through libpcap and
 * the hash into sink, exactly once each, and describes the file. */
int pf_pcap_scan(int fd, uint64_t size, const char *what, pf_sink_fn sink, void *ctx,
                 pf_pcapinfo *out, pf_err *e);

#endif
