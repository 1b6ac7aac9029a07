/* Shared by the *_cmd.c files: the only code that prints. */
#ifndef PF_CLI_H
#define PF_CLI_H

#include <stdbool.h>

#include "common/pf_err.h"

/* Prints "pcapferry: MESSAGE" and returns the exit code for e's status. */
int pf_cli_fail(const pf_err *e);
/* Prints a usage error with a hint, returns 2. */
int pf_cli_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* true/yes/1, false/no/0 */
bool pf_cli_parse_bool(const char *v, bool *out);
/* Replaces *slot with a copy of v; -1 when out of memory. */
int pf_cli_set_str(char **slot, const char *v);

#endif
