/* The sensor's own pcap writer and crash recovery. Every write is checked;
 * a file is fdatasynced before it is handed to the sealer. */
#ifndef PF_PCAPFILE_H
#define PF_PCAPFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/fsutil.h"
#include "common/pf_err.h"

#define PF_PCAP_HEADER_BYTES        24
#define PF_PCAP_RECORD_HEADER_BYTES 16

typedef struct pf_pcapw {
    int fd;
    uint8_t *buf;
    size_t len, cap;
    uint64_t bytes; /* on disk plus buffered */
    uint64_t packets;
    uint64_t buffered;  /* packets in buf */
    uint64_t discarded; /* packets a failed flush threw away (the caller takes them) */
    bool nano;
    bool wedged; /* a failed write left bytes that could not be cut back */
    const char *name;
    pf_writeback wb;
} pf_pcapw;

/* Creates name in dirfd (O_EXCL) and writes the global header. */
int pf_pcapw_open(pf_pcapw *w, int dirfd, const char *name, int link_type, uint32_t snaplen,
                  bool nano, pf_err *e);
/* ts_frac is microseconds or nanoseconds, as opened. */
int pf_pcapw_write(pf_pcapw *w, int64_t ts_sec, uint32_t ts_frac, uint32_t caplen, uint32_t len,
                   const uint8_t *data, pf_err *e);
int pf_pcapw_flush(pf_pcapw *w, pf_err *e);
/* Flushes, fdatasyncs (sync) and closes. Safe on a never-opened writer. */
int pf_pcapw_close(pf_pcapw *w, bool sync, pf_err *e);

/* After a crash: cuts a classic pcap back to its last complete record
 * (the file may end inside a record header or its data) and fsyncs it.
 * Reports the packets kept and the bytes cut. A file too short for a
 * header, or with a foreign magic, is PF_EREJECT. */
int pf_pcap_recover(int dirfd, const char *name, uint64_t *packets, uint64_t *cut, pf_err *e);

#endif
