#include "common/cli.h"

#include <stdarg.h>
#include <stdio.h>

int pf_cli_fail(const pf_err *e)
{
    fprintf(stderr, "pcapferry: %s\n", e->msg[0] ? e->msg : "failed");
    return pf_err_exit_code(e->status);
}

int pf_cli_usage(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("pcapferry: ", stderr);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\nTry 'pcapferry help %s'.\n", cmd);
    va_end(ap);
    return 2;
}
