/* --watch: inotify on the source directories. Arkime's own monitor mode
 * misses renamed files and never rescans; this loop does both. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bundle/names.h"
#include "common/fsutil.h"
#include "import/importer.h"

#define WATCH_MASK                                                                                 \
    (IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)
#define MAX_WATCHES 4096

struct watches {
    int fd;
    int wd[MAX_WATCHES];
    size_t root[MAX_WATCHES]; /* which source */
    char *rel[MAX_WATCHES];   /* the directory below it ("" the source itself) */
    size_t n;
};

/* Watches dirfd's directory, the one already opened without following
 * links: through /proc/self/fd the watch lands on exactly that directory,
 * even if its name is swapped for a link meanwhile. */
static int watch_dirfd(int ifd, int dirfd, const char *fallback)
{
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", dirfd);
    int wd = inotify_add_watch(ifd, proc, WATCH_MASK | IN_ONLYDIR);
    if (wd < 0) /* no /proc: the name, but never through a link */
        wd = inotify_add_watch(ifd, fallback, WATCH_MASK | IN_ONLYDIR | IN_DONT_FOLLOW);
    return wd;
}

static void add_tree(struct watches *w, size_t root, const char *rootpath, int dirfd,
                     const char *rel, int depth)
{
    char path[PATH_MAX];
    if (depth > 8 || w->n >= MAX_WATCHES)
        return;
    snprintf(path, sizeof path, "%s%s%s", rootpath, rel[0] ? "/" : "", rel);
    int wd = watch_dirfd(w->fd, dirfd, path);
    if (wd < 0)
        return;
    for (size_t i = 0; i < w->n; i++)
        if (w->wd[i] == wd)
            goto children; /* already watched */
    w->wd[w->n] = wd;
    w->root[w->n] = root;
    w->rel[w->n] = strdup(rel);
    if (w->rel[w->n] == NULL)
        return;
    w->n++;
children:;
    int dup_fd = dup(dirfd);
    DIR *d = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;
    if (d == NULL) {
        if (dup_fd >= 0)
            close(dup_fd);
        return;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        char sub[PATH_MAX];
        if (de->d_name[0] == '.')
            continue;
        if (snprintf(sub, sizeof sub, "%s%s%s", rel, rel[0] ? "/" : "", de->d_name) >=
            (int)sizeof sub)
            continue;
        int cfd = openat(dirfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (cfd < 0)
            continue; /* not a directory, or a link: not followed */
        add_tree(w, root, rootpath, cfd, sub, depth + 1);
        close(cfd);
    }
    closedir(d);
}

/* Opens REL below source root i without following links and watches it. */
static void add_rel(struct watches *w, char *const *sources, size_t i, const char *rel, int depth)
{
    int fd = open(sources[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    char part[PATH_MAX];
    snprintf(part, sizeof part, "%s", rel);
    char *save = NULL;
    for (char *tok = strtok_r(part, "/", &save); fd >= 0 && tok != NULL;
         tok = strtok_r(NULL, "/", &save)) {
        int next =
            tok[0] == '.' ? -1 : openat(fd, tok, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        close(fd);
        fd = next;
    }
    if (fd < 0)
        return;
    add_tree(w, i, sources[i], fd, rel, depth);
    close(fd);
}

static const struct watches *watch_of(const struct watches *w, int wd, size_t *k)
{
    for (size_t i = 0; i < w->n; i++)
        if (w->wd[i] == wd) {
            *k = i;
            return w;
        }
    return NULL;
}

static int64_t mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec;
}

int pf_importer_watch(pf_importer *imp, char *const *sources, size_t n, unsigned rescan_s,
                      volatile int *stop, pf_import_counts *c, pf_err *e)
{
    struct watches w = {.fd = -1};
    int rc = -1;
    char *buf = malloc(64 * 1024);

    w.fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    if (w.fd < 0 || buf == NULL) {
        pf_err_sys(e, errno ? errno : ENOMEM, "inotify unavailable");
        goto out;
    }
    /* Watch first, then scan: a bundle landing in between is seen twice
     * at worst, and the second time is a duplicate. */
    for (size_t i = 0; i < n; i++) {
        struct stat st;
        if (stat(sources[i], &st) != 0 || !S_ISDIR(st.st_mode)) {
            pf_err_set(e, PF_EUSAGE, "%s: --watch needs directories as sources", sources[i]);
            goto out;
        }
        add_rel(&w, sources, i, "", 0);
    }
    bool rescan = true;
    int64_t last_full = 0;
    while (!*stop) {
        if (rescan || mono_s() - last_full >= (int64_t)rescan_s) {
            rescan = false;
            last_full = mono_s();
            for (size_t i = 0; i < n; i++)
                add_rel(&w, sources, i, "", 0);
            c->incomplete = 0; /* each full pass counts what is still in flight */
            if (pf_importer_run(imp, sources, n, c, e) != 0 && e->status != PF_EINCOMPLETE)
                goto out;
            if (e->status == PF_EINCOMPLETE)
                pf_err_clear(e); /* disk full: try again at the next rescan */
        }
        struct pollfd p = {.fd = w.fd, .events = POLLIN};
        int r = poll(&p, 1, 1000);
        if (r < 0 && errno != EINTR) {
            pf_err_sys(e, errno, "poll failed");
            goto out;
        }
        if (r <= 0)
            continue;
        for (;;) {
            ssize_t len = read(w.fd, buf, 64 * 1024);
            if (len <= 0)
                break;
            for (char *p8 = buf; p8 < buf + len;) {
                struct inotify_event *ev = (struct inotify_event *)(void *)p8;
                p8 += sizeof *ev + ev->len;
                if (ev->mask & IN_Q_OVERFLOW) {
                    /* events were lost: say so (once per overflow), the
                     * full rescan finds what they named */
                    if (!rescan)
                        pf_importer_log(imp, PF_EV_WARN,
                                        "inotify event queue overflowed; rescanning the sources");
                    rescan = true;
                    continue;
                }
                size_t k;
                if (watch_of(&w, ev->wd, &k) == NULL || ev->len == 0)
                    continue;
                char rel[PATH_MAX];
                if (snprintf(rel, sizeof rel, "%s%s%s", w.rel[k], w.rel[k][0] ? "/" : "",
                             ev->name) >= (int)sizeof rel)
                    continue;
                if (ev->mask & IN_ISDIR) {
                    if (ev->name[0] != '.') {
                        add_rel(&w, sources, w.root[k], rel, 1);
                        rescan = true; /* files may have landed before the watch */
                    }
                    continue;
                }
                size_t nl = strlen(ev->name), sl = strlen(PF_BUNDLE_SUFFIX);
                if (!(ev->mask & (IN_CLOSE_WRITE | IN_MOVED_TO)) || pf_name_in_flight(ev->name) ||
                    nl <= sl || strcmp(ev->name + nl - sl, PF_BUNDLE_SUFFIX) != 0)
                    continue;
                size_t in_flight = c->incomplete;
                int r1 = pf_importer_run_below(imp, sources[w.root[k]], rel, c, e);
                c->incomplete = in_flight;
                if (r1 != 0) {
                    if (e->status != PF_EINCOMPLETE && e->status != PF_EENV)
                        goto out;
                    /* vanished, or the disk is full: the rescan retries */
                    pf_err_clear(e);
                }
            }
        }
    }
    rc = 0;
out:
    for (size_t i = 0; i < w.n; i++)
        free(w.rel[i]);
    if (w.fd >= 0)
        close(w.fd);
    free(buf);
    return rc;
}
