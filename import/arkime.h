/* What Arkime's capture can ingest, and how to hand it a file (see
 * docs/IMPORT.md: the facts come from Arkime's source, 6.x, and a run of
 * capture 6.7.1). Every decision here is made from the file's own bytes
 * (bundle/pcapcheck.h), never from the sensor's manifest. */
#ifndef PF_ARKIME_H
#define PF_ARKIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bundle/pcapcheck.h"
#include "common/pf_err.h"

enum pf_gate {
    PF_GATE_DELIVER, /* classic pcap Arkime reads as it is */
    PF_GATE_CONVERT, /* pcapng: rewrite as classic pcap, one per interface */
    PF_GATE_HOLD,    /* would stop or mislead Arkime: set aside with a reason */
    PF_GATE_EMPTY,   /* no packets: nothing to index (and old Arkime hangs on it) */
    PF_GATE_TRIM,    /* last record cut off: deliver up to it, hold the original */
};

/* Link types capture accepts on Linux, compared with the raw 32-bit header
 * field; anything else makes it exit. */
bool pf_arkime_link_type_ok(uint32_t link_type_raw);

enum pf_gate pf_arkime_gate(const pf_pcapcheck *k, bool read_truncated, char *reason, size_t cap);

#define PF_SPLIT_MAX_IFACES 64u
#define PF_SPLIT_STAGE_MAX  96u

typedef struct pf_split_iface {
    uint32_t link_type; /* the IDB's 16-bit link type */
    uint32_t snaplen;   /* 0: none given */
    uint64_t packets;
    uint64_t bad_ts; /* timestamps classic pcap cannot hold (before 1970, after 2106) */
    bool written;    /* out_name holds its packets */
    char out_name[PF_SPLIT_STAGE_MAX];
} pf_split_iface;

typedef struct pf_split {
    size_t nifaces; /* over all sections, in file order */
    pf_split_iface ifaces[PF_SPLIT_MAX_IFACES];
    uint64_t packets;   /* packet blocks read */
    uint64_t skipped;   /* packets on interfaces Arkime does not read */
    uint64_t secrets;   /* decryption secrets blocks (classic pcap has no room for them) */
    uint64_t good_end;  /* just past the last whole block */
    uint64_t cut_bytes; /* a last block cut off: bytes after good_end */
    bool damaged;       /* a block that is not cut off but wrong */
    char damage[200];
} pf_split;

/* Rewrites the pcapng in_name (in dirfd) as one classic nanosecond pcap per
 * interface whose link type Arkime reads, named <out_prefix><k>.part,
 * fsynced. Reads up to the first damaged or cut-off block and says so in
 * s. Returns -1 only when the file system fails (every output removed);
 * what the bytes say is in s. */
int pf_pcapng_split(int dirfd, const char *in_name, const char *out_prefix, pf_split *s,
                    const char *what, pf_err *e);

/* capture -m only queues a file on IN_CLOSE_WRITE, and a rename does not
 * make one: open the complete file for writing and close it. */
int pf_arkime_announce(int dirfd, const char *name, pf_err *e);

#endif
