/* Logging for the command layer and daemons: one line per event, with
 * key=value fields. The library floors never call this.
 *
 * Event lines go to one of three places, chosen once by pf_log_open():
 *  - stderr, as "pcapferry CMD: LEVEL: fields" (interactive use, cron);
 *  - stderr with a "<N>" priority prefix when stderr is the systemd journal
 *    (JOURNAL_STREAM names it): journald strips the prefix and files the
 *    line at that priority; the journal adds the timestamp, we add none;
 *  - syslog(3), when asked (--syslog): ident "pcapferry", LOG_PID,
 *    LOG_DAEMON, the matching priority, message "CMD: LEVEL: fields". */
#ifndef PF_LOG_H
#define PF_LOG_H

#include <stdbool.h>

enum pf_log_level { PF_LOG_ERROR, PF_LOG_WARN, PF_LOG_INFO, PF_LOG_DEBUG };

void pf_log_set_level(enum pf_log_level level);
void pf_log(enum pf_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Chooses where pf_log_line() writes: syslog if use_syslog, else stderr
 * (with journal priority prefixes if stderr is the journal). */
void pf_log_open(bool use_syslog);
/* True once pf_log_open(true) has been called. */
bool pf_log_to_syslog(void);
/* One event line from command CMD ("capture", "import"), written with a
 * single write so threads never interleave. */
void pf_log_line(enum pf_log_level level, const char *cmd, const char *line);

#endif
