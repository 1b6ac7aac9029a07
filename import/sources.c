/* Finding bundles in sources that a less trusted account can write (an
 * rsync incoming directory, a courier's stick). Every directory below a
 * source is opened with O_NOFOLLOW relative to its parent's descriptor,
 * every file once with O_NOFOLLOW | O_NONBLOCK and fstat'ed; names are only
 * ever used relative to those directory descriptors, so a link or a swap
 * planted between two steps can redirect nothing (docs/ROBUSTNESS.md,
 * "Threat model"). */
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

/* More directories than this in one run's sources is not a stick or an
 * incoming area but a mistake; each costs a descriptor. */
#define MAX_SOURCE_DIRS 4096

static int add_dir(struct cand_list *l, int fd, const char *path, const char *name, long parent,
                   pf_err *e)
{
    if (l->ndirs >= MAX_SOURCE_DIRS) {
        close(fd);
        return pf_err_set(e, PF_EENV, "%s: more than %d directories under the sources", path,
                          MAX_SOURCE_DIRS);
    }
    if (l->ndirs == l->capdirs) {
        size_t cap = l->capdirs ? 2 * l->capdirs : 16;
        struct src_dir *g = realloc(l->dirs, cap * sizeof *g);
        if (g == NULL) {
            close(fd);
            return pf_err_set(e, PF_EENV, "out of memory");
        }
        l->dirs = g;
        l->capdirs = cap;
    }
    struct src_dir *d = &l->dirs[l->ndirs];
    memset(d, 0, sizeof *d);
    d->fd = fd;
    d->parent = parent;
    d->path = strdup(path);
    snprintf(d->name, sizeof d->name, "%s", name);
    if (d->path == NULL) {
        close(fd);
        return pf_err_set(e, PF_EENV, "out of memory");
    }
    l->ndirs++;
    return (int)(l->ndirs - 1);
}

static bool is_bundle_name(const char *name)
{
    size_t n = strlen(name), s = strlen(PF_BUNDLE_SUFFIX);
    return !pf_name_in_flight(name) && n > s && strcmp(name + n - s, PF_BUNDLE_SUFFIX) == 0;
}

static void fill_path(char *out, size_t cap, const struct cand_list *l, size_t dir,
                      const char *name)
{
    const char *dp = l->dirs[dir].path;
    snprintf(out, cap, "%s%s%s", dp, strcmp(dp, "/") == 0 ? "" : "/", name);
}

/* Opens one bundle file, reads its header from that descriptor and keeps
 * what identifies the file (device, inode) so the import can tell when the
 * name was swapped since. Unreadable headers are dealt with here. */
static int add_file(pf_importer *imp, struct cand_list *l, size_t dir, const char *name,
                    pf_import_counts *c, pf_err *e)
{
    char path[PATH_MAX];
    struct stat st;
    pf_err oe, he;
    int rc = -1;
    fill_path(path, sizeof path, l, dir, name);
    pf_err_clear(&oe);
    int fd = pf_open_regular_at(l->dirs[dir].fd, name, path, &st, &oe);
    if (fd < 0) {
        if (oe.status == PF_EREJECT) {
            imp_event(imp, PF_EV_WARN, "bundle=%s skipped: %s", path, oe.msg);
            return 0;
        }
        if (oe.sys_errno == ENOENT) /* gone since the listing: someone else's business */
            return 0;
        *e = oe;
        return -1;
    }
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        struct candidate *g = realloc(l->v, cap * sizeof *g);
        if (g == NULL) {
            pf_err_set(e, PF_EENV, "out of memory");
            goto out;
        }
        l->v = g;
        l->cap = cap;
    }
    struct candidate *cand = &l->v[l->n];
    memset(cand, 0, sizeof *cand);
    cand->dir = dir;
    cand->dev = st.st_dev;
    cand->ino = st.st_ino;
    cand->name = strdup(name);
    cand->path = strdup(path);
    if (cand->name == NULL || cand->path == NULL) {
        free(cand->name);
        free(cand->path);
        pf_err_set(e, PF_EENV, "out of memory");
        goto out;
    }
    pf_err_clear(&he);
    if (pf_bundle_read_header_fd(fd, path, &cand->hdr, &cand->size, &he) == 0) {
        l->n++; /* headers first: cheap, and they give the delivery order */
        rc = 0;
        goto out;
    }
    if (he.status == PF_EINCOMPLETE) {
        c->incomplete++;
        imp_event(imp, PF_EV_DEBUG, "bundle=%s status=incomplete; left for a later run", path);
        rc = 0;
    } else if (he.status == PF_EREJECT) {
        c->rejected++;
        struct imp_source src = {l->dirs[dir].fd, name, path, fd, st};
        rc = imp_quarantine_bundle(imp, &src, NULL, 0, he.msg, false, NULL, e);
    } else {
        *e = he;
    }
    free(cand->name);
    free(cand->path);
out:
    close(fd);
    return rc;
}

static int scan_dir(pf_importer *imp, struct cand_list *l, size_t dir, int depth,
                    pf_import_counts *c, pf_err *e)
{
    int dfd = dup(l->dirs[dir].fd);
    DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
    if (d == NULL) {
        if (dfd >= 0)
            close(dfd);
        return pf_err_sys(e, errno, "%s: cannot read directory", l->dirs[dir].path);
    }
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(d)) != NULL) {
        char path[PATH_MAX];
        struct stat st;
        if (de->d_name[0] == '.') /* dot files and dirs: in flight or not ours */
            continue;
        if (fstatat(l->dirs[dir].fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue;
        fill_path(path, sizeof path, l, dir, de->d_name);
        bool bundle_name = is_bundle_name(de->d_name);
        if (S_ISDIR(st.st_mode) && !bundle_name) {
            if (depth >= MAX_SCAN_DEPTH)
                continue;
            pf_err oe;
            pf_err_clear(&oe);
            int sub = pf_open_dir_at(l->dirs[dir].fd, de->d_name, path, &oe);
            if (sub < 0)
                continue; /* swapped for something else since fstatat: skip it */
            int k = add_dir(l, sub, path, de->d_name, (long)dir, e);
            rc = k < 0 ? -1 : scan_dir(imp, l, (size_t)k, depth + 1, c, e);
        } else if (bundle_name && !S_ISREG(st.st_mode)) {
            imp_event(imp, PF_EV_WARN, "bundle=%s skipped: not a regular file (%s); not touched",
                      path,
                      S_ISLNK(st.st_mode)    ? "a symbolic link"
                      : S_ISDIR(st.st_mode)  ? "a directory"
                      : S_ISFIFO(st.st_mode) ? "a FIFO"
                                             : "a device or socket");
        } else if (bundle_name) {
            rc = add_file(imp, l, dir, de->d_name, c, e);
        }
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
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].path);
        free(l->v[i].name);
    }
    free(l->v);
    for (size_t i = 0; i < l->ndirs; i++) {
        if (l->dirs[i].fd >= 0)
            close(l->dirs[i].fd);
        free(l->dirs[i].path);
    }
    free(l->dirs);
    memset(l, 0, sizeof *l);
}

/* A source is the operator's own path: it is resolved as given (it may be
 * a link the operator made, such as a mount point). Below it nothing is. */
static int open_source(pf_importer *imp, struct cand_list *l, const char *source, const char *rel,
                       pf_import_counts *c, pf_err *e)
{
    struct stat st;
    char *src = realpath(source, NULL);
    int rc = -1;
    if (src == NULL || stat(src, &st) != 0) {
        pf_err_sys(e, errno, "%s: cannot access source", source);
        goto out;
    }
    const char *base = pf_basename(src);
    if (S_ISDIR(st.st_mode)) {
        int fd = open(src, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) {
            pf_err_sys(e, errno, "%s: cannot open source", source);
            goto out;
        }
        int k = add_dir(l, fd, src, base, -1, e);
        if (k < 0)
            goto out;
        if (rel == NULL) {
            rc = scan_dir(imp, l, (size_t)k, 0, c, e);
            goto out;
        }
        /* one file below the root (--watch): walk rel without links */
        char part[PATH_MAX], path[PATH_MAX];
        snprintf(part, sizeof part, "%s", rel);
        char *save = NULL, *tok = strtok_r(part, "/", &save), *next;
        for (; tok != NULL; tok = next) {
            next = strtok_r(NULL, "/", &save);
            if (strcmp(tok, ".") == 0 || strcmp(tok, "..") == 0 || tok[0] == '.') {
                rc = 0; /* in flight or not ours, as in a scan */
                goto out;
            }
            fill_path(path, sizeof path, l, (size_t)k, tok);
            if (next == NULL)
                break;
            pf_err oe;
            pf_err_clear(&oe);
            int sub = pf_open_dir_at(l->dirs[k].fd, tok, path, &oe);
            if (sub < 0) {
                imp_event(imp, PF_EV_DEBUG, "%s: %s; skipped", path, oe.msg);
                rc = 0;
                goto out;
            }
            k = add_dir(l, sub, path, tok, k, e);
            if (k < 0)
                goto out;
        }
        rc = tok != NULL && is_bundle_name(tok) ? add_file(imp, l, (size_t)k, tok, c, e) : 0;
        goto out;
    }
    /* A file named on the command line: taken whatever its name. */
    char *slash = strrchr(src, '/');
    char *dirpath = slash == src ? strdup("/") : strndup(src, (size_t)(slash - src));
    int fd = dirpath != NULL ? open(dirpath, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
    if (fd < 0) {
        pf_err_sys(e, dirpath != NULL ? errno : ENOMEM, "%s: cannot open its directory", source);
        free(dirpath);
        goto out;
    }
    int k = add_dir(l, fd, dirpath, pf_basename(dirpath), -1, e);
    free(dirpath);
    if (k >= 0)
        rc = add_file(imp, l, (size_t)k, base, c, e);
out:
    free(src);
    return rc;
}

int imp_collect(pf_importer *imp, const struct imp_source_spec *specs, size_t n,
                struct cand_list *l, pf_import_counts *c, pf_err *e)
{
    for (size_t i = 0; i < n; i++)
        if (open_source(imp, l, specs[i].root, specs[i].rel, c, e) != 0)
            return -1;
    if (l->n > 1)
        qsort(l->v, l->n, sizeof *l->v, cmp_candidate);
    return 0;
}

int imp_reopen(const struct cand_list *l, const struct candidate *cand, struct imp_source *src,
               pf_err *e)
{
    src->dirfd = l->dirs[cand->dir].fd;
    src->name = cand->name;
    src->path = cand->path;
    src->fd = pf_open_regular_at(src->dirfd, cand->name, cand->path, &src->st, e);
    if (src->fd < 0)
        return -1;
    if (src->st.st_dev != cand->dev || src->st.st_ino != cand->ino) {
        close(src->fd);
        src->fd = -1;
        return pf_err_set(e, PF_EINCOMPLETE, "%s: replaced by another file since it was scanned",
                          cand->path);
    }
    return 0;
}

bool imp_same_file(const struct imp_source *src)
{
    struct stat now;
    return fstatat(src->dirfd, src->name, &now, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(now.st_mode) &&
           now.st_dev == src->st.st_dev && now.st_ino == src->st.st_ino;
}

/* The directory a bundle's export layout starts at: a bundle found at
 * ROOT/pcapferry/<sensor>/NAME came from removable media and its receipt
 * goes back to ROOT/pcapferry-receipts/<sensor>/. -1 when not in one. */
int imp_export_root(struct cand_list *l, const struct candidate *cand)
{
    long d = (long)cand->dir, p;
    if (strcmp(l->dirs[d].name, cand->hdr.sensor) != 0)
        return -1;
    p = imp_dir_parent(l, (size_t)d);
    if (p < 0 || strcmp(l->dirs[p].name, IMP_EXPORT_DIR) != 0)
        return -1;
    return (int)imp_dir_parent(l, (size_t)p);
}

long imp_dir_parent(struct cand_list *l, size_t i)
{
    if (l->dirs[i].parent >= 0 || l->dirs[i].parent == -2)
        return l->dirs[i].parent;
    /* A source root: its parent is opened through "..", which names the
     * real parent of the directory we hold, never a link. */
    l->dirs[i].parent = -2;
    const char *path = l->dirs[i].path;
    if (strcmp(path, "/") == 0)
        return -2;
    const char *slash = strrchr(path, '/');
    char *pp = slash == path ? strdup("/") : strndup(path, (size_t)(slash - path));
    int fd = openat(l->dirs[i].fd, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    pf_err ignore;
    pf_err_clear(&ignore);
    if (pp == NULL || fd < 0) {
        free(pp);
        if (fd >= 0)
            close(fd);
        return -2;
    }
    int k = add_dir(l, fd, pp, pf_basename(pp), -1, &ignore);
    free(pp);
    if (k >= 0)
        l->dirs[i].parent = k;
    return l->dirs[i].parent;
}
