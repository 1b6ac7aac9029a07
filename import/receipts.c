#include "import/internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fsutil.h"

/* A bundle found at ROOT/pcapferry/<sensor>/NAME came from an export to
 * removable media: its receipt goes back to ROOT/pcapferry-receipts/. */
void imp_note_receipt(pf_importer *imp, const char *sensor, const char *path, uint64_t seq,
                      const uint8_t hash[32], enum pf_receipt_status st, const char *reason)
{
    pf_err e;
    struct receipt_set *set = NULL;
    pf_err_clear(&e);
    for (size_t i = 0; i < imp->nrs; i++)
        if (strcmp(imp->rs[i].r->sensor, sensor) == 0)
            set = &imp->rs[i];
    if (set == NULL) {
        struct receipt_set *g = realloc(imp->rs, (imp->nrs + 1) * sizeof *g);
        if (g == NULL)
            return;
        imp->rs = g;
        set = &imp->rs[imp->nrs];
        memset(set, 0, sizeof *set);
        set->r = pf_receipt_new(sensor);
        if (set->r == NULL)
            return;
        imp->nrs++;
    }
    pf_receipt_add(set->r, seq, hash, st, reason, &e);
    char marker[PF_NAME_MAX + 16];
    snprintf(marker, sizeof marker, "/pcapferry/%s/", sensor);
    const char *at = strstr(path, marker);
    if (at == NULL || set->nroots >= MAX_RECEIPT_ROOTS)
        return;
    char *root = at == path ? strdup("/") : strndup(path, (size_t)(at - path));
    for (size_t i = 0; root != NULL && i < set->nroots; i++)
        if (strcmp(set->roots[i], root) == 0) {
            free(root);
            return;
        }
    if (root != NULL)
        set->roots[set->nroots++] = root;
}

static int delete_now(const char *path, pf_err *e)
{
    char dir[PATH_MAX];
    if (unlink(path) != 0 && errno != ENOENT) /* reached twice through nested sources */
        return pf_err_sys(e, errno, "%s: cannot delete source", path);
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash != NULL) {
        *slash = '\0';
        return pf_fsync_dir(dir[0] ? dir : "/", e);
    }
    return pf_fsync_dir(".", e);
}

static bool receipt_failed_for(const pf_importer *imp, const char *sensor)
{
    for (size_t i = 0; i < imp->nrs; i++)
        if (strcmp(imp->rs[i].r->sensor, sensor) == 0)
            return imp->rs[i].write_failed;
    return false;
}

/* Writes the receipts of the run, then deletes the sources (--delete-source)
 * whose sensor's receipts were all written. Counts what failed; returns -1
 * (e set) only when a deletion failed. */
int imp_acknowledge(pf_importer *imp, pf_import_counts *c, pf_err *e)
{
    int rc = 0;
    for (size_t i = 0; i < imp->nrs; i++) {
        struct receipt_set *set = &imp->rs[i];
        char dir[PATH_MAX], name[NAME_MAX + 1];
        for (size_t k = 0; k <= set->nroots; k++) {
            pf_err re;
            pf_err_clear(&re);
            if (k < set->nroots)
                snprintf(dir, sizeof dir, "%s/%s/%s", set->roots[k], PF_RECEIPTS_DIR,
                         set->r->sensor);
            else if (imp->o.receipts_dir != NULL)
                snprintf(dir, sizeof dir, "%s/%s", imp->o.receipts_dir, set->r->sensor);
            else
                continue;
            if (set->r->n == 0)
                continue;
            if (pf_receipt_write(set->r, imp->o.central, dir, name, sizeof name, &re) == 0) {
                imp_event(imp, PF_EV_INFO, "receipt=%s/%s sensor=%s bundles=%zu", dir, name,
                          set->r->sensor, set->r->n);
            } else {
                set->write_failed = true;
                if (c != NULL)
                    c->receipts_failed++;
                imp_event(imp, PF_EV_ERROR, "could not write a receipt to %s: %s", dir, re.msg);
            }
        }
    }
    for (size_t i = 0; i < imp->npd; i++) {
        struct pending_delete *d = &imp->pd[i];
        if (receipt_failed_for(imp, d->sensor)) {
            imp_event(imp, PF_EV_WARN, "bundle=%s kept: its receipt could not be written", d->path);
        } else {
            pf_err de;
            pf_err_clear(&de);
            if (delete_now(d->path, &de) != 0 && rc == 0) {
                *e = de;
                rc = -1;
            }
        }
        free(d->path);
    }
    free(imp->pd);
    imp->pd = NULL;
    imp->npd = 0;
    for (size_t i = 0; i < imp->nrs; i++) {
        pf_receipt_free(imp->rs[i].r);
        for (size_t k = 0; k < imp->rs[i].nroots; k++)
            free(imp->rs[i].roots[k]);
    }
    free(imp->rs);
    imp->rs = NULL;
    imp->nrs = 0;
    return rc;
}

int imp_delete_source(pf_importer *imp, const char *sensor, const char *path, pf_err *e)
{
    if (!imp->o.delete_source)
        return 0;
    struct pending_delete *g = realloc(imp->pd, (imp->npd + 1) * sizeof *g);
    char *copy = strdup(path);
    if (g == NULL || copy == NULL) {
        free(copy);
        if (g != NULL)
            imp->pd = g;
        return pf_err_set(e, PF_EENV, "out of memory");
    }
    imp->pd = g;
    imp->pd[imp->npd].path = copy;
    snprintf(imp->pd[imp->npd].sensor, sizeof imp->pd[imp->npd].sensor, "%s", sensor);
    imp->npd++;
    return 0;
}
