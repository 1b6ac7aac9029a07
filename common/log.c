#include "common/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

static enum pf_log_level threshold = PF_LOG_INFO;

enum sink { SINK_STDERR, SINK_JOURNAL, SINK_SYSLOG };
static enum sink sink = SINK_STDERR;

static const char *const level_names[] = {"error", "warning", "info", "debug"};
static const int level_prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};

void pf_log_set_level(enum pf_log_level level)
{
    threshold = level;
}

void pf_log(enum pf_log_level level, const char *fmt, ...)
{
    if (level > threshold)
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "pcapferry: %s: ", level_names[level]);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* systemd sets JOURNAL_STREAM=DEV:INODE when it connects stdout/stderr to
 * the journal; a child whose stderr was redirected elsewhere inherits the
 * variable, so the descriptor must match too (sd_journal_stream_fd(3)). */
static bool stderr_is_journal(void)
{
    const char *v = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;
    if (v == NULL || sscanf(v, "%llu:%llu", &dev, &ino) != 2 || fstat(STDERR_FILENO, &st) != 0)
        return false;
    return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void pf_log_open(bool use_syslog)
{
    if (use_syslog) {
        openlog("pcapferry", LOG_PID, LOG_DAEMON);
        sink = SINK_SYSLOG;
    } else {
        sink = stderr_is_journal() ? SINK_JOURNAL : SINK_STDERR;
    }
}

bool pf_log_to_syslog(void)
{
    return sink == SINK_SYSLOG;
}

void pf_log_line(enum pf_log_level level, const char *cmd, const char *line)
{
    if ((unsigned)level > PF_LOG_DEBUG)
        level = PF_LOG_ERROR;
    if (sink == SINK_SYSLOG) {
        syslog(level_prio[level], "%s: %s: %s", cmd, level_names[level], line);
        return;
    }
    /* one line, one write: the capture daemon's sealer thread logs too */
    char buf[2400];
    int n;
    if (sink == SINK_JOURNAL)
        n = snprintf(buf, sizeof buf, "<%d>pcapferry %s: %s: %s\n", level_prio[level], cmd,
                     level_names[level], line);
    else
        n = snprintf(buf, sizeof buf, "pcapferry %s: %s: %s\n", cmd, level_names[level], line);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof buf) { /* cut, but keep the newline */
        n = (int)sizeof buf - 1;
        buf[n - 1] = '\n';
    }
    fwrite(buf, 1, (size_t)n, stderr);
}
