/* pcapferry capture: the sensor daemon. A capture thread that never waits
 * for compression or crypto writes rotated pcaps into the spool; a sealer
 * thread turns them into bundles in the outbox and removes the plaintext.
 * Silent: it reports through pf_err and the event callback. */
#ifndef PF_SENSOR_H
#define PF_SENSOR_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "capture/flows.h"
#include "common/event.h"
#include "common/pf_err.h"
#include "keys/keyfile.h"

typedef struct pf_sensor_opts {
    const char *iface;       /* live capture, or */
    char *const *read_files; /* -r: re-seal existing captures */
    size_t nread;
    uint32_t snaplen;
    int buffer_kib; /* 0: libpcap's default */
    bool promisc;
    const char *filter;      /* BPF, may be NULL */
    const char *user;        /* -Z */
    bool no_drop;            /* stay root (refused otherwise) */
    bool allow_any;          /* accept -i any */
    uint64_t rotate_bytes;   /* -C; 0: none */
    unsigned rotate_seconds; /* -G; 0: none; clock aligned */
    bool seal_empty;
    const pf_seckey *sensor;
    const pf_pubkey *central;
    const char *spool, *outbox, *state;
    int level, workers;
    uint64_t bundle_max; /* group pcaps up to this size; 0: one per bundle */
    pf_dont_save rules[PF_DONT_SAVE_MAX];
    size_t nrules;
    uint64_t outbox_max, min_free;
    bool when_full_stop; /* else drop-oldest */
    unsigned status_seconds;
    const char *receipts_dir; /* receipts dropped here prune the outbox */
    pf_event_fn event;
    void *ctx;
} pf_sensor_opts;

typedef struct pf_sensor_signals {
    volatile sig_atomic_t stop, rotate, report;
} pf_sensor_signals;

/* Runs until sig->stop (live) or the end of the -r files, then seals what
 * is left and returns 0. */
int pf_sensor_run(const pf_sensor_opts *o, pf_sensor_signals *sig, pf_err *e);

#endif
