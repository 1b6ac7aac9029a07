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

static int add_candidate(struct cand_list *l, const char *path, pf_err *e)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        struct candidate *g = realloc(l->v, cap * sizeof *g);
        if (g == NULL)
            return pf_err_set(e, PF_EENV, "out of memory");
        l->v = g;
        l->cap = cap;
    }
    struct candidate *c = &l->v[l->n];
    memset(c, 0, sizeof *c);
    c->path = strdup(path);
    if (c->path == NULL)
        return pf_err_set(e, PF_EENV, "out of memory");
    l->n++;
    return 0;
}

static bool is_bundle_name(const char *name)
{
    size_t n = strlen(name), s = strlen(PF_BUNDLE_SUFFIX);
    return !pf_name_in_flight(name) && n > s && strcmp(name + n - s, PF_BUNDLE_SUFFIX) == 0;
}

static int scan_dir(const char *dir, int depth, struct cand_list *l, pf_err *e)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return pf_err_sys(e, errno, "%s: cannot read directory", dir);
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(d)) != NULL) {
        char path[PATH_MAX];
        struct stat st;
        if (de->d_name[0] == '.') /* dot files and dirs: in flight or not ours */
            continue;
        if (snprintf(path, sizeof path, "%s/%s", dir, de->d_name) >= (int)sizeof path)
            continue;
        if (lstat(path, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode) && depth < MAX_SCAN_DEPTH)
            rc = scan_dir(path, depth + 1, l, e);
        else if (S_ISREG(st.st_mode) && is_bundle_name(de->d_name))
            rc = add_candidate(l, path, e);
    }
    closedir(d);
    return rc;
}

static int cmp_candidate(const void *a, const void *b)
{
    const struct candidate *x = a, *y = b;
    int c = strcmp(x->hdr.sensor, y->hdr.sensor);
    if (c != 0)
        return c;
    return x->hdr.seq < y->hdr.seq ? -1 : x->hdr.seq > y->hdr.seq;
}

void imp_cand_list_free(struct cand_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i].path);
    free(l->v);
    memset(l, 0, sizeof *l);
}

int imp_collect(pf_importer *imp, char *const *sources, size_t n, struct cand_list *l,
                pf_import_counts *c, pf_err *e)
{
    for (size_t i = 0; i < n; i++) {
        struct stat st;
        /* Absolute paths: messages name files plainly, and a relative
         * source inside an export layout still finds its way back for
         * the receipt. */
        char *src = realpath(sources[i], NULL);
        if (src == NULL || stat(src, &st) != 0) {
            pf_err_sys(e, errno, "%s: cannot access source", sources[i]);
            free(src);
            return -1;
        }
        int r = S_ISDIR(st.st_mode) ? scan_dir(src, 0, l, e) : add_candidate(l, src, e);
        free(src);
        if (r != 0)
            return -1;
    }
    /* Headers first: cheap, and they give the delivery order. */
    size_t good = 0;
    for (size_t i = 0; i < l->n; i++) {
        pf_err he;
        pf_err_clear(&he);
        struct candidate *cand = &l->v[i];
        if (pf_bundle_read_header(cand->path, &cand->hdr, &cand->size, &he) == 0) {
            l->v[good] = *cand;
            good++;
            continue;
        }
        if (he.status == PF_EINCOMPLETE) {
            c->incomplete++;
            imp_event(imp, PF_EV_DEBUG, "bundle=%s status=incomplete; left for a later run",
                      cand->path);
        } else if (he.status == PF_EREJECT) {
            c->rejected++;
            if (imp_quarantine_bundle(imp, cand->path, NULL, 0, he.msg, false, e) != 0)
                return -1;
        } else {
            *e = he;
            return -1;
        }
        free(cand->path);
    }
    for (size_t i = good; i < l->n; i++)
        l->v[i].path = NULL;
    l->n = good;
    if (l->n > 1)
        qsort(l->v, l->n, sizeof *l->v, cmp_candidate);
    return 0;
}
