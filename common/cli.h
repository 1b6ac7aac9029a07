/* Shared by the *_cmd.c files: the only code that prints. */
#ifndef PF_CLI_H
#define PF_CLI_H

#include "common/pf_err.h"

/* Prints "pcapferry: MESSAGE" and returns the exit code for e's status. */
int pf_cli_fail(const pf_err *e);
/* Prints a usage error with a hint, returns 2. */
int pf_cli_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
