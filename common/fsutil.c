#include "common/fsutil.h"

#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/types.h>
#include <limits.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int pf_write_all(int fd, const void *buf, size_t len, const char *what, pf_err *e)
{
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return pf_err_sys(e, errno, "%s: write failed", what);
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

ssize_t pf_read_full(int fd, void *buf, size_t n)
{
    uint8_t *p = buf;
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, p + got, n - got);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

int pf_fsync_dirfd(int dirfd, const char *what, pf_err *e)
{
    if (fsync(dirfd) != 0 && errno != EINVAL)
        return pf_err_sys(e, errno, "%s: fsync of directory failed", what);
    return 0;
}

int pf_fsync_dir(const char *dir, pf_err *e)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return pf_err_sys(e, errno, "%s: cannot open directory", dir);
    int rc = pf_fsync_dirfd(fd, dir, e);
    close(fd);
    return rc;
}

int pf_temp_name(char *out, size_t cap, const char *name)
{
    int n = snprintf(out, cap, ".%s.%08x.part", name, randombytes_random());
    return (n < 0 || (size_t)n >= cap) ? -1 : 0;
}

static int rename_noreplace(int olddirfd, const char *oldname, int newdirfd, const char *newname);

/* The failpoints land a crash test's kill just before and just after the
 * rename that publishes a file (a bundle in the outbox or on a stick). */
int pf_rename_noreplace(int olddirfd, const char *oldname, int newdirfd, const char *newname)
{
    pf_failpoint("rename-before");
    int r = rename_noreplace(olddirfd, oldname, newdirfd, newname);
    if (r == 0)
        pf_failpoint("rename-after");
    return r;
}

static int rename_noreplace(int olddirfd, const char *oldname, int newdirfd, const char *newname)
{
    if (renameat2(olddirfd, oldname, newdirfd, newname, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno != EINVAL && errno != ENOSYS)
        return -1;
    /* FUSE and some older filesystems: link() refuses an existing target. */
    if (linkat(olddirfd, oldname, newdirfd, newname, 0) == 0) {
        unlinkat(olddirfd, oldname, 0);
        return 0;
    }
    if (errno != EPERM && errno != ENOTSUP && errno != EOPNOTSUPP)
        return -1;
    /* FAT has neither; the check-then-rename window is accepted there. */
    struct stat st;
    if (fstatat(newdirfd, newname, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        errno = EEXIST;
        return -1;
    }
    return renameat(olddirfd, oldname, newdirfd, newname);
}

int pf_atomic_write(const char *dir, const char *name, const void *data, size_t len, mode_t mode,
                    bool no_replace, pf_err *e)
{
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return pf_err_sys(e, errno, "%s: cannot open directory", dir);
    int rc = pf_atomic_write_at(dfd, dir, name, data, len, mode, no_replace, e);
    close(dfd);
    return rc;
}

/* umask must not widen or narrow what the caller asked for. FAT (vfat,
 * FUSE) has no modes to set: accept what it gives as long as it grants
 * group and others nothing we did not ask for. */
static int set_mode(int fd, mode_t mode)
{
    if (fchmod(fd, mode) == 0)
        return 0;
    int err = errno;
    struct stat fst;
    if ((err == ENOSYS || err == EPERM || err == ENOTSUP || err == EOPNOTSUPP) &&
        fstat(fd, &fst) == 0 && (fst.st_mode & 077 & ~mode) == 0)
        return 0;
    errno = err;
    return -1;
}

int pf_atomic_write_at(int dfd, const char *dir, const char *name, const void *data, size_t len,
                       mode_t mode, bool no_replace, pf_err *e)
{
    return pf_atomic_write_flags(dfd, dir, name, data, len, mode, no_replace ? PF_AW_NO_REPLACE : 0,
                                 e);
}

int pf_atomic_write_flags(int dfd, const char *dir, const char *name, const void *data, size_t len,
                          mode_t mode, unsigned flags, pf_err *e)
{
    bool no_replace = (flags & PF_AW_NO_REPLACE) != 0, sync = (flags & PF_AW_NO_SYNC) == 0;
    char tmp[NAME_MAX + 1];
    int fd = -1, rc = -1;
    bool tmp_made = false;

    if (pf_temp_name(tmp, sizeof tmp, name) != 0) {
        pf_err_set(e, PF_EUSAGE, "%s/%s: file name too long", dir, name);
        goto out;
    }
    if (no_replace && faccessat(dfd, name, F_OK, AT_SYMLINK_NOFOLLOW) == 0) {
        pf_err_set(e, PF_EENV, "%s/%s: already exists; refusing to overwrite it", dir, name);
        goto out;
    }
    fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0) {
        pf_err_sys(e, errno, "%s/%s: cannot create", dir, tmp);
        goto out;
    }
    tmp_made = true;
    if (set_mode(fd, mode) != 0) {
        pf_err_sys(e, errno, "%s/%s: chmod failed", dir, tmp);
        goto out;
    }
    if (pf_write_all(fd, data, len, name, e) != 0)
        goto out;
    if (sync && fsync(fd) != 0) {
        pf_err_sys(e, errno, "%s/%s: fsync failed", dir, tmp);
        goto out;
    }
    if (close(fd) != 0) {
        fd = -1;
        pf_err_sys(e, errno, "%s/%s: close failed", dir, tmp);
        goto out;
    }
    fd = -1;
    int r = no_replace ? pf_rename_noreplace(dfd, tmp, dfd, name) : renameat(dfd, tmp, dfd, name);
    if (r != 0) {
        if (errno == EEXIST)
            pf_err_set(e, PF_EENV, "%s/%s: already exists; refusing to overwrite it", dir, name);
        else
            pf_err_sys(e, errno, "%s/%s: rename failed", dir, name);
        goto out;
    }
    tmp_made = false;
    if (sync && pf_fsync_dirfd(dfd, dir, e) != 0)
        goto out;
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    if (tmp_made)
        unlinkat(dfd, tmp, 0);
    return rc;
}

void pf_free_file(uint8_t *buf, bool secure)
{
    if (buf == NULL)
        return;
    if (secure)
        sodium_free(buf);
    else
        free(buf);
}

int pf_read_file(const char *path, size_t max, unsigned flags, uint8_t **out, size_t *len,
                 pf_err *e)
{
    return pf_read_file_at(AT_FDCWD, path, path, max, flags, out, len, e);
}

int pf_read_file_at(int dirfd, const char *name, const char *path, size_t max, unsigned flags,
                    uint8_t **out, size_t *len, pf_err *e)
{
    bool secure = (flags & PF_READ_SECURE) != 0;
    int fd = -1, rc = -1;
    uint8_t *buf = NULL;
    struct stat st;

    *out = NULL;
    *len = 0;
    fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        if (errno == ELOOP)
            pf_err_set(e, PF_EENV, "%s: is a symbolic link; refusing to follow it", path);
        else
            pf_err_sys(e, errno, "%s: cannot open", path);
        goto out;
    }
    if (fstat(fd, &st) != 0) {
        pf_err_sys(e, errno, "%s: cannot stat", path);
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        pf_err_set(e, PF_EENV, "%s: not a regular file", path);
        goto out;
    }
    if ((flags & PF_READ_PRIVATE) != 0 && (st.st_mode & 077) != 0) {
        pf_err_set(e, PF_EENV,
                   "%s: permissions %04o are too open: a secret key must not be accessible by "
                   "group or others (fix with: chmod 600 %s)",
                   path, (unsigned)(st.st_mode & 07777), path);
        goto out;
    }
    if ((uint64_t)st.st_size > max) {
        pf_err_set(e, PF_EREJECT, "%s: too large (%lld bytes, at most %zu expected)", path,
                   (long long)st.st_size, max);
        goto out;
    }
    /* One spare byte lets us notice a file that grew after fstat. */
    size_t cap = (size_t)st.st_size + 1;
    buf = secure ? sodium_malloc(cap) : malloc(cap);
    if (buf == NULL) {
        pf_err_set(e, PF_EENV, "%s: out of memory", path);
        goto out;
    }
    ssize_t got = pf_read_full(fd, buf, cap);
    if (got < 0) {
        pf_err_sys(e, errno, "%s: read failed", path);
        goto out;
    }
    if ((size_t)got == cap) {
        pf_err_set(e, PF_EENV, "%s: changed while being read", path);
        goto out;
    }
    *out = buf;
    *len = (size_t)got;
    buf = NULL;
    rc = 0;
out:
    if (buf != NULL) {
        sodium_memzero(buf, (size_t)st.st_size);
        pf_free_file(buf, secure);
    }
    if (fd >= 0)
        close(fd);
    return rc;
}

int pf_mkdir_p(const char *path, mode_t mode, pf_err *e)
{
    char tmp[PATH_MAX];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof tmp)
        return pf_err_set(e, PF_EUSAGE, "%s: bad directory path", path);
    memcpy(tmp, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (tmp[i] != '/' && tmp[i] != '\0')
            continue;
        char c = tmp[i];
        tmp[i] = '\0';
        if (mkdir(tmp, mode) != 0 && errno != EEXIST)
            return pf_err_sys(e, errno, "%s: cannot create directory", tmp);
        tmp[i] = c;
    }
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return pf_err_set(e, PF_EENV, "%s: not a directory", path);
    return 0;
}

int pf_path_join(char *out, size_t cap, const char *dir, const char *name, pf_err *e)
{
    int n = snprintf(out, cap, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= cap)
        return pf_err_set(e, PF_EUSAGE, "%s/%s: path too long", dir, name);
    return 0;
}

const char *pf_basename(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash != NULL ? slash + 1 : path;
}

int pf_copy_file(const char *src, const char *dstdir, const char *name, pf_err *e)
{
    int in = -1, dfd = -1, rc = -1;
    in = open(src, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (in < 0) {
        pf_err_sys(e, errno, "%s: cannot open", src);
        goto out;
    }
    dfd = open(dstdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        pf_err_sys(e, errno, "%s: cannot open directory", dstdir);
        goto out;
    }
    rc = pf_copy_fd_at(in, src, dfd, dstdir, name, 0644, e);
out:
    if (dfd >= 0)
        close(dfd);
    if (in >= 0)
        close(in);
    return rc;
}

int pf_copy_fd_at(int in, const char *src, int dfd, const char *dstdir, const char *name,
                  mode_t mode, pf_err *e)
{
    char tmp[NAME_MAX + 1];
    int out = -1, rc = -1;
    uint8_t *buf = NULL;
    bool tmp_made = false;
    pf_writeback wb = {.flush_early = true}; /* fsynced below */
    off_t at = 0;

    if (pf_temp_name(tmp, sizeof tmp, name) != 0)
        return pf_err_set(e, PF_EUSAGE, "%s: name too long", name);
    out = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (out < 0) {
        pf_err_sys(e, errno, "%s/%s: cannot create", dstdir, tmp);
        goto out;
    }
    tmp_made = true;
    if (set_mode(out, mode) != 0) {
        pf_err_sys(e, errno, "%s/%s: chmod failed", dstdir, tmp);
        goto out;
    }
    buf = malloc(1u << 20);
    if (buf == NULL) {
        pf_err_set(e, PF_EENV, "out of memory");
        goto out;
    }
    /* pread from the start: the caller may already have read from in */
    for (;;) {
        ssize_t n = pread(in, buf, 1u << 20, at);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            pf_err_sys(e, errno, "%s: read failed", src);
            goto out;
        }
        if (n == 0)
            break;
        if (pf_write_all(out, buf, (size_t)n, name, e) != 0)
            goto out;
        pf_writeback_note(out, &wb, (size_t)n);
        at += n;
    }
    pf_writeback_end(&wb);
    if (fsync(out) != 0) {
        pf_err_sys(e, errno, "%s/%s: fsync failed", dstdir, tmp);
        goto out;
    }
    if (close(out) != 0) {
        out = -1;
        pf_err_sys(e, errno, "%s/%s: close failed", dstdir, tmp);
        goto out;
    }
    out = -1;
    if (pf_rename_noreplace(dfd, tmp, dfd, name) != 0) {
        pf_err_sys(e, errno, "%s/%s: cannot rename into place", dstdir, name);
        goto out;
    }
    tmp_made = false;
    if (pf_fsync_dirfd(dfd, dstdir, e) != 0)
        goto out;
    rc = 0;
out:
    pf_writeback_end(&wb);
    free(buf);
    if (out >= 0)
        close(out);
    if (tmp_made)
        unlinkat(dfd, tmp, 0);
    return rc;
}

int pf_hash_fd(int fd, const char *what, uint8_t out[32], pf_err *e)
{
    crypto_generichash_state st;
    uint8_t *buf = malloc(1u << 20);
    off_t at = 0;
    int rc = -1;
    if (buf == NULL)
        return pf_err_set(e, PF_EENV, "out of memory");
    crypto_generichash_init(&st, NULL, 0, 32);
    for (;;) {
        ssize_t n = pread(fd, buf, 1u << 20, at);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            pf_err_sys(e, errno, "%s: read failed", what);
            goto out;
        }
        if (n == 0)
            break;
        crypto_generichash_update(&st, buf, (size_t)n);
        at += n;
    }
    crypto_generichash_final(&st, out, 32);
    rc = 0;
out:
    free(buf);
    return rc;
}

int pf_open_regular_at(int dirfd, const char *name, const char *what, struct stat *st, pf_err *e)
{
    /* O_NONBLOCK: a FIFO planted under a bundle's name must not hang us
     * in open(); it is refused by the fstat below. */
    int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ELOOP)
            return pf_err_set(e, PF_EREJECT, "%s: is a symbolic link; not followed", what);
        return pf_err_sys(e, errno, "%s: cannot open", what);
    }
    if (fstat(fd, st) != 0) {
        int err = errno;
        close(fd);
        return pf_err_sys(e, err, "%s: cannot stat", what);
    }
    if (!S_ISREG(st->st_mode)) {
        close(fd);
        return pf_err_set(e, PF_EREJECT, "%s: not a regular file (%s); not touched", what,
                          S_ISDIR(st->st_mode)                           ? "a directory"
                          : S_ISFIFO(st->st_mode)                        ? "a FIFO"
                          : S_ISCHR(st->st_mode) || S_ISBLK(st->st_mode) ? "a device"
                          : S_ISSOCK(st->st_mode)                        ? "a socket"
                                                                         : "not a file");
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0)
        (void)fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    return fd;
}

int pf_open_dir_at(int dirfd, const char *name, const char *what, pf_err *e)
{
    int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ELOOP || errno == ENOTDIR)
            return pf_err_set(e, PF_EREJECT, "%s: not a directory (a link is not followed)", what);
        return pf_err_sys(e, errno, "%s: cannot open directory", what);
    }
    return fd;
}

int pf_mkdirs_at(int dirfd, const char *dirname, const char *rel, mode_t mode, pf_err *e)
{
    char part[NAME_MAX + 1], what[PATH_MAX];
    int cur = dup(dirfd);
    if (cur < 0)
        return pf_err_sys(e, errno, "%s: cannot open directory", dirname);
    snprintf(what, sizeof what, "%s", dirname);
    for (const char *p = rel; *p != '\0';) {
        const char *slash = strchr(p, '/');
        size_t len = slash != NULL ? (size_t)(slash - p) : strlen(p);
        if (len == 0 || len > NAME_MAX || (len == 1 && p[0] == '.') ||
            (len == 2 && p[0] == '.' && p[1] == '.')) {
            close(cur);
            return pf_err_set(e, PF_EUSAGE, "%s/%s: bad directory name", dirname, rel);
        }
        memcpy(part, p, len);
        part[len] = '\0';
        size_t wl = strlen(what);
        snprintf(what + wl, sizeof what - wl, "/%s", part);
        if (mkdirat(cur, part, mode) == 0) {
            if (pf_fsync_dirfd(cur, what, e) != 0) {
                close(cur);
                return -1;
            }
        } else if (errno != EEXIST) {
            int err = errno;
            close(cur);
            return pf_err_sys(e, err, "%s: cannot create directory", what);
        }
        int next = pf_open_dir_at(cur, part, what, e);
        close(cur);
        if (next < 0)
            return -1;
        cur = next;
        p += len;
        while (*p == '/')
            p++;
    }
    return cur;
}

int pf_hash_file(const char *path, uint8_t out[32], pf_err *e)
{
    crypto_generichash_state st;
    uint8_t *buf = malloc(1u << 20);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY), rc = -1;
    if (fd < 0 || buf == NULL) {
        pf_err_sys(e, fd < 0 ? errno : ENOMEM, "%s: cannot open", path);
        goto out;
    }
    crypto_generichash_init(&st, NULL, 0, 32);
    for (;;) {
        ssize_t n = pf_read_full(fd, buf, 1u << 20);
        if (n < 0) {
            pf_err_sys(e, errno, "%s: read failed", path);
            goto out;
        }
        if (n == 0)
            break;
        crypto_generichash_update(&st, buf, (size_t)n);
    }
    crypto_generichash_final(&st, out, 32);
    rc = 0;
out:
    free(buf);
    if (fd >= 0)
        close(fd);
    return rc;
}

struct pf_flusher {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int fd; /* a dup: the writer may close its own at any time */
    bool pending, stop;
};

static void *flusher_main(void *arg)
{
    struct pf_flusher *f = arg;
    pthread_mutex_lock(&f->mu);
    for (;;) {
        while (!f->pending && !f->stop)
            pthread_cond_wait(&f->cv, &f->mu);
        if (!f->pending)
            break; /* stopped, nothing asked for */
        f->pending = false;
        pthread_mutex_unlock(&f->mu);
        (void)fdatasync(f->fd); /* a hint: the caller's own fsync reports errors */
        pthread_mutex_lock(&f->mu);
        if (f->stop)
            break;
    }
    pthread_mutex_unlock(&f->mu);
    return NULL;
}

static struct pf_flusher *flusher_start(int fd)
{
    struct pf_flusher *f = calloc(1, sizeof *f);
    if (f == NULL)
        return NULL;
    f->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (f->fd < 0)
        goto fail;
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->cv, NULL);
    if (pthread_create(&f->thread, NULL, flusher_main, f) != 0) {
        pthread_cond_destroy(&f->cv);
        pthread_mutex_destroy(&f->mu);
        close(f->fd);
        goto fail;
    }
    return f;
fail:
    free(f);
    return NULL;
}

void pf_writeback_end(pf_writeback *wb)
{
    struct pf_flusher *f = wb->flusher;
    if (f == NULL)
        return;
    pthread_mutex_lock(&f->mu);
    f->stop = true;
    f->pending = false; /* the caller's fsync follows: no need to start another */
    pthread_cond_signal(&f->cv);
    pthread_mutex_unlock(&f->mu);
    pthread_join(f->thread, NULL);
    pthread_cond_destroy(&f->cv);
    pthread_mutex_destroy(&f->mu);
    close(f->fd);
    free(f);
    wb->flusher = NULL;
}

void pf_writeback_note(int fd, pf_writeback *wb, size_t n)
{
    wb->written += n;
    if (wb->flush_early && wb->written - wb->flushed >= PF_FLUSH_STEP) {
        if (wb->flusher == NULL)
            wb->flusher = flusher_start(fd); /* NULL: no early flushes, same result */
        if (wb->flusher != NULL) {
            pthread_mutex_lock(&wb->flusher->mu);
            wb->flusher->pending = true; /* one flush under way is enough: they merge */
            pthread_cond_signal(&wb->flusher->cv);
            pthread_mutex_unlock(&wb->flusher->mu);
        }
        wb->flushed = wb->written;
    }
    if (wb->written - wb->done < PF_WRITEBACK_STEP)
        return;
    uint64_t len = wb->written - wb->done;
    /* Start writing the new range; wait for the previous one. Errors are
     * left to the fsync that follows: this is only a hint. */
    sync_file_range(fd, (off_t)wb->done, (off_t)len, SYNC_FILE_RANGE_WRITE);
    if (wb->done >= PF_WRITEBACK_STEP)
        sync_file_range(fd, (off_t)(wb->done - PF_WRITEBACK_STEP), PF_WRITEBACK_STEP,
                        SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
                            SYNC_FILE_RANGE_WAIT_AFTER);
    wb->done = wb->written;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

char **pf_list_names(int dirfd, const char *suffix, size_t *count)
{
    char **v = NULL;
    size_t n = 0, cap = 0, sl = strlen(suffix);
    *count = 0;
    int dup = fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
    DIR *d = dup >= 0 ? fdopendir(dup) : NULL;
    if (d == NULL) {
        if (dup >= 0)
            close(dup);
        return NULL;
    }
    rewinddir(d); /* a dup shares its read position with every other one */
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        if (de->d_name[0] == '.' || len <= sl || strcmp(de->d_name + len - sl, suffix) != 0 ||
            (len > 5 && strcmp(de->d_name + len - 5, ".part") == 0))
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            char **g = realloc(v, cap * sizeof *g);
            if (g == NULL)
                break;
            v = g;
        }
        if ((v[n] = strdup(de->d_name)) != NULL)
            n++;
    }
    closedir(d);
    if (n > 1)
        qsort(v, n, sizeof *v, cmp_names);
    *count = n;
    return v;
}

void pf_free_names(char **names, size_t count)
{
    for (size_t i = 0; names != NULL && i < count; i++)
        free(names[i]);
    free(names);
}
