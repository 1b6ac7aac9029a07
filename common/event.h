/* How the silent floors report progress: one line per event, key=value
 * fields, handed to a callback the command layer prints or logs. */
#ifndef PF_EVENT_H
#define PF_EVENT_H

enum pf_event_level { PF_EV_ERROR, PF_EV_WARN, PF_EV_INFO, PF_EV_DEBUG };

typedef void (*pf_event_fn)(void *ctx, enum pf_event_level level, const char *line);

#endif
