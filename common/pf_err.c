#include "common/pf_err.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void pf_err_clear(pf_err *e)
{
    if (e == NULL)
        return;
    e->status = PF_OK;
    e->sys_errno = 0;
    e->msg[0] = '\0';
}

__attribute__((format(printf, 3, 0))) static void set_va(pf_err *e, enum pf_status status,
                                                         const char *fmt, va_list ap)
{
    if (e == NULL || e->status != PF_OK)
        return;
    e->status = status;
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
}

int pf_err_set(pf_err *e, enum pf_status status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set_va(e, status, fmt, ap);
    va_end(ap);
    return -1;
}

int pf_err_sys(pf_err *e, int errnum, const char *fmt, ...)
{
    va_list ap;
    if (e == NULL || e->status != PF_OK)
        return -1;
    va_start(ap, fmt);
    set_va(e, PF_EENV, fmt, ap);
    va_end(ap);
    e->sys_errno = errnum;
    size_t used = strlen(e->msg);
    snprintf(e->msg + used, sizeof e->msg - used, ": %s", strerror(errnum));
    return -1;
}

void pf_err_prefix(pf_err *e, const char *fmt, ...)
{
    char prefix[PF_ERR_MSG_BYTES];
    char old[PF_ERR_MSG_BYTES];
    va_list ap;
    if (e == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, e->msg, sizeof old);
    size_t plen = strlen(prefix);
    if (plen >= sizeof e->msg)
        plen = sizeof e->msg - 1;
    memcpy(e->msg, prefix, plen);
    size_t olen = strnlen(old, sizeof old - 1);
    if (olen > sizeof e->msg - 1 - plen)
        olen = sizeof e->msg - 1 - plen;
    memcpy(e->msg + plen, old, olen);
    e->msg[plen + olen] = '\0';
}

int pf_err_exit_code(enum pf_status status)
{
    switch (status) {
    case PF_OK:
        return 0;
    case PF_EREJECT:
        return 1;
    case PF_EINCOMPLETE:
        return 75;
    case PF_EUSAGE:
    case PF_EENV:
        return 2;
    }
    return 2;
}

bool pf_err_is_nospace(const pf_err *e)
{
    return e->sys_errno == ENOSPC || e->sys_errno == EDQUOT;
}

void pf_failpoint(const char *name)
{
    /* hits of the named point so far (the sealer thread may count too) */
    static atomic_ulong hits;
    const char *want = getenv("PCAPFERRY_FAILPOINT");
    if (want == NULL || strcmp(want, name) != 0)
        return;
    const char *skip = getenv("PCAPFERRY_FAILPOINT_SKIP");
    unsigned long n = skip != NULL ? strtoul(skip, NULL, 10) : 0;
    if (atomic_fetch_add(&hits, 1) >= n)
        kill(getpid(), SIGKILL);
}

void pf_pausepoint(const char *name)
{
    const char *want = getenv("PCAPFERRY_PAUSEPOINT");
    if (want != NULL && strcmp(want, name) == 0)
        kill(getpid(), SIGSTOP);
}
