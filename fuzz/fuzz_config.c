/* fuzz_config: "key = value" configuration files (sensor.conf, import.conf).
 *
 * The input is written to a file and loaded with a callback that accepts
 * every setting (and one that refuses a given key, for the error path).
 * Checks on what reaches the callback: keys are non-empty and trimmed,
 * neither holds a newline, line numbers only grow and stay within the
 * file's line count. */
#include "fuzz_common.h"

#include <ctype.h>

#include "common/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char conf_path[PATH_MAX];

struct seen {
    int last_line, max_line, settings;
    bool refuse;
};

static int accept_all(void *ctx, const char *key, const char *value, int lineno, pf_err *e)
{
    struct seen *s = ctx;
    size_t kl = strlen(key);
    FZ_ASSERT(kl > 0, "empty key reached the callback");
    FZ_ASSERT(!isspace((unsigned char)key[0]) && !isspace((unsigned char)key[kl - 1]),
              "key '%s' is not trimmed", key);
    FZ_ASSERT(strchr(key, '\n') == NULL && strchr(value, '\n') == NULL, "newline in a setting");
    FZ_ASSERT(strchr(key, '=') == NULL, "key '%s' holds '='", key);
    FZ_ASSERT(lineno > s->last_line && lineno <= s->max_line, "line %d after %d (of %d)", lineno,
              s->last_line, s->max_line);
    s->last_line = lineno;
    s->settings++;
    if (s->refuse && strcmp(key, "refuse") == 0)
        return pf_err_set(e, PF_EUSAGE, "refused");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pf_err e;
    if (!fz.ready) {
        fz_init();
        snprintf(conf_path, sizeof conf_path, "%s/input.conf", fz.dir);
    }
    fz_rng_reset(9);
    if (size > PF_CONFIG_MAX_BYTES)
        return 0;
    fz_write_file(conf_path, data, size, 0644);
    struct seen s = {0, 1, 0, false};
    for (size_t i = 0; i < size; i++)
        s.max_line += data[i] == '\n';
    pf_err_clear(&e);
    int rc = pf_config_load(conf_path, true, accept_all, &s, &e);
    fz_note("config", rc, &e);
    FZ_ASSERT(rc == 0 || e.status != PF_OK, "failed load without a status");
    bool has_nul = memchr(data, '\0', size) != NULL;
    FZ_ASSERT(!has_nul || (rc != 0 && s.settings == 0), "a file with a NUL byte was read");

    struct seen r = {0, s.max_line, 0, true};
    pf_err_clear(&e);
    (void)pf_config_load(conf_path, true, accept_all, &r, &e);
    return 0;
}
