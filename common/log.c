#include "common/log.h"

#include <stdarg.h>
#include <stdio.h>

static enum pf_log_level threshold = PF_LOG_INFO;

void pf_log_set_level(enum pf_log_level level)
{
    threshold = level;
}

void pf_log(enum pf_log_level level, const char *fmt, ...)
{
    static const char *const names[] = {"error", "warning", "info", "debug"};
    if (level > threshold)
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "pcapferry: %s: ", names[level]);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}
