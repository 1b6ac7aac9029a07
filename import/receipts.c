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

/* Gathers what this run says to a sensor. A bundle found at
 * ROOT/pcapferry/<sensor>/NAME came from an export to removable media: its
 * receipt also goes back to ROOT/pcapferry-receipts/<sensor>/, written
 * through ROOT's descriptor. */
void imp_note_receipt(pf_importer *imp, struct cand_list *l, const struct candidate *cand,
                      const char *sensor, uint64_t seq, const uint8_t hash[32],
                      enum pf_receipt_status st, const char *reason)
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
    /* A commitment names the header that was judged and imported (the
     * same header hash as the state's row) beside the bundle hash. */
    pf_receipt_add(set->r, seq, hash, st == PF_RCPT_COMMITTED ? cand->hdr.hash : NULL, st, reason,
                   &e);
    int root = imp_export_root(l, cand);
    if (root < 0 || set->nroots >= MAX_RECEIPT_ROOTS)
        return;
    for (size_t i = 0; i < set->nroots; i++)
        if (set->roots[i] == root)
            return;
    set->roots[set->nroots++] = root;
}

static int delete_now(const struct pending_delete *d, pf_err *e)
{
    struct stat now;
    /* only the file that was imported, even if the name was reused */
    if (fstatat(d->dirfd, d->name, &now, AT_SYMLINK_NOFOLLOW) != 0)
        return 0; /* gone already (reached twice through nested sources) */
    if (!S_ISREG(now.st_mode) || now.st_dev != d->dev || now.st_ino != d->ino)
        return pf_err_set(e, PF_EENV, "%s: now holds another file; not deleted", d->path);
    if (unlinkat(d->dirfd, d->name, 0) != 0 && errno != ENOENT)
        return pf_err_sys(e, errno, "%s: cannot delete source", d->path);
    return pf_fsync_dirfd(d->dirfd, d->path, e);
}

static bool receipt_failed_for(const pf_importer *imp, const char *sensor)
{
    for (size_t i = 0; i < imp->nrs; i++)
        if (strcmp(imp->rs[i].r->sensor, sensor) == 0)
            return imp->rs[i].write_failed;
    return false;
}

static int write_one(pf_importer *imp, struct receipt_set *set, int basefd, const char *base,
                     const char *rel, mode_t mode, pf_import_counts *c)
{
    char dir[PATH_MAX], name[NAME_MAX + 1];
    pf_err re;
    pf_err_clear(&re);
    snprintf(dir, sizeof dir, "%s/%s", base, rel);
    int dfd = pf_mkdirs_at(basefd, base, rel, mode, &re);
    if (dfd >= 0 &&
        pf_receipt_write_at(set->r, imp->o.central, dfd, dir, name, sizeof name, &re) == 0) {
        imp_event(imp, PF_EV_INFO, "receipt=%s/%s sensor=%s bundles=%zu", dir, name, set->r->sensor,
                  set->r->n);
        close(dfd);
        return 0;
    }
    if (dfd >= 0)
        close(dfd);
    set->write_failed = true;
    if (c != NULL)
        c->receipts_failed++;
    imp_event(imp, PF_EV_ERROR, "could not write a receipt to %s: %s", dir, re.msg);
    return -1;
}

/* Writes the receipts of the run, then deletes the sources (--delete-source)
 * whose sensor's receipts were all written. Counts what failed; returns -1
 * (e set) only when a deletion failed. */
int imp_acknowledge(pf_importer *imp, struct cand_list *l, pf_import_counts *c, pf_err *e)
{
    int rc = 0;
    int rfd = -1;
    if (imp->o.receipts_dir != NULL && imp->nrs > 0) {
        pf_err re;
        pf_err_clear(&re);
        /* the operator's own directory: made as named */
        if (pf_mkdir_p(imp->o.receipts_dir, 0755, &re) == 0)
            rfd = open(imp->o.receipts_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    }
    for (size_t i = 0; i < imp->nrs; i++) {
        struct receipt_set *set = &imp->rs[i];
        char rel[PF_NAME_MAX + sizeof PF_RECEIPTS_DIR + 2];
        if (set->r->n == 0)
            continue;
        snprintf(rel, sizeof rel, "%s/%s", PF_RECEIPTS_DIR, set->r->sensor);
        for (size_t k = 0; k < set->nroots; k++)
            write_one(imp, set, l->dirs[set->roots[k]].fd, l->dirs[set->roots[k]].path, rel, 0755,
                      c);
        if (imp->o.receipts_dir != NULL) {
            if (rfd >= 0) {
                /* 0750: pcapferry-add-uploader hands SENSOR/ to that sensor's
                 * upload account; until then nobody else reads it */
                write_one(imp, set, rfd, imp->o.receipts_dir, set->r->sensor, 0750, c);
            } else {
                set->write_failed = true;
                if (c != NULL)
                    c->receipts_failed++;
                imp_event(imp, PF_EV_ERROR, "could not write a receipt to %s: cannot open it",
                          imp->o.receipts_dir);
            }
        }
    }
    if (rfd >= 0)
        close(rfd);
    for (size_t i = 0; i < imp->npd; i++) {
        struct pending_delete *d = &imp->pd[i];
        if (receipt_failed_for(imp, d->sensor)) {
            imp_event(imp, PF_EV_WARN, "bundle=%s kept: its receipt could not be written", d->path);
        } else {
            pf_err de;
            pf_err_clear(&de);
            if (delete_now(d, &de) != 0 && rc == 0) {
                *e = de;
                rc = -1;
            }
        }
        free(d->path);
        free(d->name);
    }
    free(imp->pd);
    imp->pd = NULL;
    imp->npd = 0;
    for (size_t i = 0; i < imp->nrs; i++)
        pf_receipt_free(imp->rs[i].r);
    free(imp->rs);
    imp->rs = NULL;
    imp->nrs = 0;
    return rc;
}

int imp_delete_source(pf_importer *imp, const char *sensor, const struct imp_source *src, pf_err *e)
{
    if (!imp->o.delete_source)
        return 0;
    struct pending_delete *g = realloc(imp->pd, (imp->npd + 1) * sizeof *g);
    if (g == NULL)
        return pf_err_set(e, PF_EENV, "out of memory");
    imp->pd = g;
    struct pending_delete *d = &imp->pd[imp->npd];
    memset(d, 0, sizeof *d);
    d->dirfd = src->dirfd;
    d->dev = src->st.st_dev;
    d->ino = src->st.st_ino;
    d->path = strdup(src->path);
    d->name = strdup(src->name);
    if (d->path == NULL || d->name == NULL) {
        free(d->path);
        free(d->name);
        return pf_err_set(e, PF_EENV, "out of memory");
    }
    snprintf(d->sensor, sizeof d->sensor, "%s", sensor);
    imp->npd++;
    return 0;
}
