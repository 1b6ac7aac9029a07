/* Error reporting for the silent library floors.
 *
 * Library functions never print. They return 0 on success or -1 on failure
 * and describe the failure in a pf_err: a status (which decides the exit
 * code in main) and a message that names the file and the reason. */
#ifndef PF_ERR_H
#define PF_ERR_H

#include <stdbool.h>
#include <stddef.h>

enum pf_status {
    PF_OK = 0,
    PF_EREJECT,     /* input is forged, damaged or not acceptable: exit 1 */
    PF_EUSAGE,      /* bad arguments or configuration: exit 2 */
    PF_EENV,        /* I/O, permissions, missing files, out of memory: exit 2 */
    PF_EINCOMPLETE, /* input may still be arriving; retry later: exit 75 */
};

#define PF_ERR_MSG_BYTES 768

typedef struct pf_err {
    enum pf_status status;
    int sys_errno; /* the errno behind a PF_EENV, or 0 */
    char msg[PF_ERR_MSG_BYTES];
} pf_err;

/* A full disk or quota: the operation may succeed once space is back. */
bool pf_err_is_nospace(const pf_err *e);

void pf_err_clear(pf_err *e);

/* Records the failure (first one wins, so the root cause is kept) and
 * returns -1 so callers can write `return pf_err_set(...)`. */
int pf_err_set(pf_err *e, enum pf_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Like pf_err_set, with ": strerror(errnum)" appended. */
int pf_err_sys(pf_err *e, int errnum, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Prefixes an already recorded message with context ("FILE: "). */
void pf_err_prefix(pf_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Maps a status to the process exit code documented in README. */
int pf_err_exit_code(enum pf_status status);

/* Crash testing: when the environment variable PCAPFERRY_FAILPOINT names
 * this point, the process kills itself with SIGKILL right here, exactly as
 * a power cut or kill -9 would stop it. Costs one getenv otherwise.
 * PCAPFERRY_FAILPOINT_SKIP=N lets the first N hits of that point pass, so a
 * long-running process (the capture daemon) dies at a later one. */
void pf_failpoint(const char *name);

/* Race testing: when PCAPFERRY_PAUSEPOINT names this point, the process
 * stops itself (SIGSTOP) right here, so a test can change the world (swap
 * a file, plant a link) before it sends SIGCONT. */
void pf_pausepoint(const char *name);

#endif
