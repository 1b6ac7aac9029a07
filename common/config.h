/* "key = value" configuration files, as sensor.conf and import.conf use.
 * Blank lines and lines starting with '#' are ignored; a value may be
 * wrapped in double quotes to keep leading or trailing spaces. */
#ifndef PF_CONFIG_H
#define PF_CONFIG_H

#include <stdbool.h>

#include "common/pf_err.h"

#define PF_CONFIG_MAX_BYTES (256u * 1024)

typedef int (*pf_config_fn)(void *ctx, const char *key, const char *value, int lineno, pf_err *e);

/* Calls fn for each setting in file order. A missing file is an error
 * only when must_exist. */
int pf_config_load(const char *path, bool must_exist, pf_config_fn fn, void *ctx, pf_err *e);

#endif
