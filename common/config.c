#include "common/config.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/fsutil.h"

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

int pf_config_load(const char *path, bool must_exist, pf_config_fn fn, void *ctx, pf_err *e)
{
    uint8_t *raw = NULL;
    size_t len = 0;
    int rc = -1, lineno = 0;

    if (!must_exist && access(path, F_OK) != 0 && errno == ENOENT)
        return 0;
    if (pf_read_file(path, PF_CONFIG_MAX_BYTES, 0, &raw, &len, e) != 0)
        return -1;
    char *text = (char *)raw;
    if (memchr(text, '\0', len) != NULL) {
        pf_err_set(e, PF_EUSAGE, "%s: not a text file", path);
        goto out;
    }
    text[len] = '\0'; /* pf_read_file leaves one spare byte */
    char *save = NULL;
    for (char *line = text; line != NULL; line = save) {
        char *nl = strchr(line, '\n');
        save = nl != NULL ? nl + 1 : NULL;
        if (nl != NULL)
            *nl = '\0';
        lineno++;
        char *s = trim(line);
        if (*s == '\0' || *s == '#')
            continue;
        char *eq = strchr(s, '=');
        if (eq == NULL) {
            pf_err_set(e, PF_EUSAGE, "%s:%d: expected 'key = value'", path, lineno);
            goto out;
        }
        *eq = '\0';
        char *key = trim(s), *value = trim(eq + 1);
        size_t vlen = strlen(value);
        if (vlen >= 2 && value[0] == '"' && value[vlen - 1] == '"') {
            value[vlen - 1] = '\0';
            value++;
        }
        if (*key == '\0') {
            pf_err_set(e, PF_EUSAGE, "%s:%d: empty key", path, lineno);
            goto out;
        }
        if (fn(ctx, key, value, lineno, e) != 0) {
            pf_err_prefix(e, "%s:%d: ", path, lineno);
            goto out;
        }
    }
    rc = 0;
out:
    pf_free_file(raw, false);
    return rc;
}
