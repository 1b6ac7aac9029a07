#include "common/cli.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

bool pf_cli_parse_bool(const char *v, bool *out)
{
    if (strcmp(v, "true") == 0 || strcmp(v, "yes") == 0 || strcmp(v, "1") == 0)
        *out = true;
    else if (strcmp(v, "false") == 0 || strcmp(v, "no") == 0 || strcmp(v, "0") == 0)
        *out = false;
    else
        return false;
    return true;
}

int pf_cli_set_str(char **slot, const char *v)
{
    free(*slot);
    *slot = strdup(v);
    return *slot != NULL ? 0 : -1;
}
