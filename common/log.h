/* Logging for the command layer and daemons: one line per event, with
 * key=value fields. The library floors never call this. */
#ifndef PF_LOG_H
#define PF_LOG_H

enum pf_log_level { PF_LOG_ERROR, PF_LOG_WARN, PF_LOG_INFO, PF_LOG_DEBUG };

void pf_log_set_level(enum pf_log_level level);
void pf_log(enum pf_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
