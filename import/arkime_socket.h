/* Arkime's command socket (capture 5.4+, `capture --command-socket PATH
 * --command-wait`): hand capture one file and wait for its answer, so the
 * importer knows that capture read it instead of guessing (docs/IMPORT.md). */
#ifndef PF_ARKIME_SOCKET_H
#define PF_ARKIME_SOCKET_H

#include <stdbool.h>
#include <stdint.h>

#include "common/pf_err.h"

#define PF_ARKIME_SOCKET_TIMEOUT_S 600 /* capture reads one large pcap well within this */

/* Sends `add-file --notify FILE` on the socket at sock_path and waits for
 * `file-done filename=... packets=N bytes=N` (0, *packets set) or
 * `file-error ...` (PF_EREJECT, Arkime's words in the message). No answer
 * (capture not running, closed, timed out): PF_EINCOMPLETE, retry later.
 * *refused is set when capture certainly did not take the file: not
 * reachable, file-error, or the socket closed without an answer (capture
 * exits on a file it cannot read); not on a timeout. */
int pf_arkime_socket_add(const char *sock_path, const char *file, unsigned timeout_s,
                         uint64_t *packets, bool *refused, pf_err *e)
    __attribute__((warn_unused_result));

#endif
