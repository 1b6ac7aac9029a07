/* What Arkime's capture can ingest, and how to hand it a file (see
 * docs/IMPORT.md: the facts come from Arkime's source, 6.x). */
#ifndef PF_ARKIME_H
#define PF_ARKIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bundle/pcapinfo.h"
#include "common/pf_err.h"

enum pf_gate {
    PF_GATE_DELIVER, /* classic pcap Arkime reads as it is */
    PF_GATE_CONVERT, /* pcapng with one link type: rewrite as classic pcap */
    PF_GATE_HOLD,    /* would stop or mislead Arkime: set aside with a reason */
    PF_GATE_EMPTY,   /* no packets: nothing to index (and old Arkime hangs on it) */
};

/* Link types capture accepts; anything else makes it exit. */
bool pf_arkime_link_type_ok(int link_type);

enum pf_gate pf_arkime_gate(const pf_pcapinfo *info, bool read_truncated, char *reason, size_t cap);

/* Rewrites pcapng in_name as classic nanosecond pcap out_name in dirfd,
 * fsynced. Packets and timestamps are kept; pcapng options are not (the
 * original stays in the bundle and its signed manifest). */
int pf_pcapng_to_pcap(int dirfd, const char *in_name, const char *out_name, uint64_t want_packets,
                      const char *what, pf_err *e);

/* capture -m only queues a file on IN_CLOSE_WRITE, and a rename does not
 * make one: open the complete file for writing and close it. */
int pf_arkime_announce(int dirfd, const char *name, pf_err *e);

#endif
