/*
 * faultio: an LD_PRELOAD shim for the fault-injection tests
 * (tests/cli/faults.sh). Two independent parts, each off unless its
 * environment variable is set.
 *
 * I/O faults, on files whose path contains FAULTIO_PATH:
 *   FAULTIO_PATH=SUBSTRING  matched against the file's absolute path when it
 *                           is opened (open, openat, creat; the path is read
 *                           back from /proc/self/fd, so relative names and
 *                           directory descriptors work); descriptors this shim
 *                           did not see opened are looked up on every call
 *   FAULTIO_OPS=LIST        comma-separated: write, pwrite, fsync, fdatasync,
 *                           read, pread, syncfs (default: write,pwrite)
 *   FAULTIO_AFTER=N         let N matching calls succeed first (default 0)
 *   FAULTIO_TIMES=N         fail N calls, then succeed again (default: all)
 *   FAULTIO_ERRNO=NAME      EIO (default), ENOSPC, EDQUOT, or a number
 *   FAULTIO_SHORT=1         the first faulted write writes half its bytes and
 *                           returns that short count, as a filling disk does
 *   FAULTIO_LOG=FILE        one line per injected fault: "OP PATH ERRNO"
 *
 * A shifted wall clock:
 *   FAKECLOCK_FILE=FILE     holds an offset in whole seconds (may be
 *                           negative), re-read every 20 ms: clock_gettime
 *                           (CLOCK_REALTIME and its coarse variant),
 *                           gettimeofday and time add it, and so do the time
 *                           stamps of packets handed out by pcap_dispatch (the
 *                           kernel stamps packets with the wall clock, so a
 *                           real jump moves both)
 *
 * Built without sanitizers: with an ASan build of pcapferry, run with
 * ASAN_OPTIONS=verify_asan_link_order=0.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pcap/pcap.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define MAX_FDS 65536

enum op { OP_WRITE, OP_PWRITE, OP_FSYNC, OP_FDATASYNC, OP_READ, OP_PREAD, OP_SYNCFS, OP_COUNT };
static const char *const op_names[OP_COUNT] = {"write", "pwrite", "fsync", "fdatasync",
                                               "read",  "pread",  "syncfs"};

/* per descriptor: 0 not opened through us, 1 matches, 2 does not */
static _Atomic unsigned char fd_state[MAX_FDS];

static pthread_once_t once = PTHREAD_ONCE_INIT;
static const char *pattern;
static bool ops_on[OP_COUNT];
static long after, times = -1;
static int fault_errno = EIO;
static bool short_first;
static const char *log_path;
static const char *clock_file;
static atomic_long calls, faults;

typedef ssize_t (*write_fn)(int, const void *, size_t);
typedef ssize_t (*pwrite_fn)(int, const void *, size_t, off_t);
typedef ssize_t (*read_fn)(int, void *, size_t);
typedef ssize_t (*pread_fn)(int, void *, size_t, off_t);
typedef int (*fd_fn)(int);
typedef int (*open_fn)(const char *, int, ...);
typedef int (*openat_fn)(int, const char *, int, ...);
typedef int (*creat_fn)(const char *, mode_t);
typedef int (*clock_fn)(clockid_t, struct timespec *);
typedef int (*gtod_fn)(struct timeval *, void *);
typedef time_t (*time_fn)(time_t *);
typedef int (*dispatch_fn)(pcap_t *, int, pcap_handler, u_char *);

static write_fn real_write;
static pwrite_fn real_pwrite, real_pwrite64;
static read_fn real_read;
static pread_fn real_pread, real_pread64;
static fd_fn real_fsync, real_fdatasync, real_syncfs, real_close;
static open_fn real_open, real_open64;
static openat_fn real_openat, real_openat64;
static creat_fn real_creat;
static clock_fn real_clock_gettime;
static gtod_fn real_gettimeofday;
static time_fn real_time;
static dispatch_fn real_dispatch;

static void *next_sym(const char *name)
{
    return dlsym(RTLD_NEXT, name);
}

static void init(void)
{
    real_write = (write_fn)next_sym("write");
    real_pwrite = (pwrite_fn)next_sym("pwrite");
    real_pwrite64 = (pwrite_fn)next_sym("pwrite64");
    real_read = (read_fn)next_sym("read");
    real_pread = (pread_fn)next_sym("pread");
    real_pread64 = (pread_fn)next_sym("pread64");
    real_fsync = (fd_fn)next_sym("fsync");
    real_fdatasync = (fd_fn)next_sym("fdatasync");
    real_syncfs = (fd_fn)next_sym("syncfs");
    real_close = (fd_fn)next_sym("close");
    real_open = (open_fn)next_sym("open");
    real_open64 = (open_fn)next_sym("open64");
    real_openat = (openat_fn)next_sym("openat");
    real_openat64 = (openat_fn)next_sym("openat64");
    real_creat = (creat_fn)next_sym("creat");
    real_clock_gettime = (clock_fn)next_sym("clock_gettime");
    real_gettimeofday = (gtod_fn)next_sym("gettimeofday");
    real_time = (time_fn)next_sym("time");
    real_dispatch = (dispatch_fn)next_sym("pcap_dispatch");

    const char *p = getenv("FAULTIO_PATH");
    pattern = p != NULL && p[0] != '\0' ? p : NULL;
    const char *ops = getenv("FAULTIO_OPS");
    if (ops == NULL || ops[0] == '\0')
        ops = "write,pwrite";
    for (int i = 0; i < OP_COUNT; i++) {
        size_t n = strlen(op_names[i]);
        for (const char *s = ops; (s = strstr(s, op_names[i])) != NULL; s += n)
            if ((s == ops || s[-1] == ',') && (s[n] == '\0' || s[n] == ','))
                ops_on[i] = true;
    }
    const char *v;
    if ((v = getenv("FAULTIO_AFTER")) != NULL)
        after = strtol(v, NULL, 10);
    if ((v = getenv("FAULTIO_TIMES")) != NULL)
        times = strtol(v, NULL, 10);
    if ((v = getenv("FAULTIO_ERRNO")) != NULL) {
        if (strcmp(v, "ENOSPC") == 0)
            fault_errno = ENOSPC;
        else if (strcmp(v, "EDQUOT") == 0)
            fault_errno = EDQUOT;
        else if (strcmp(v, "EIO") == 0)
            fault_errno = EIO;
        else if (atoi(v) > 0)
            fault_errno = atoi(v);
    }
    v = getenv("FAULTIO_SHORT");
    short_first = v != NULL && v[0] == '1';
    log_path = getenv("FAULTIO_LOG");
    clock_file = getenv("FAKECLOCK_FILE");
    if (clock_file != NULL && clock_file[0] == '\0')
        clock_file = NULL;
}

static void setup(void)
{
    pthread_once(&once, init);
}

/* ---------------------------------------------------------------- I/O */

static bool path_of(int fd, char *out, size_t cap)
{
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, out, cap - 1);
    if (n < 0)
        return false;
    out[n] = '\0';
    return true;
}

static void note_open(int fd)
{
    char path[PATH_MAX];
    if (fd < 0 || fd >= MAX_FDS || pattern == NULL)
        return;
    bool hit = path_of(fd, path, sizeof path) && strstr(path, pattern) != NULL;
    atomic_store(&fd_state[fd], hit ? 1 : 2);
}

static bool matches(int fd)
{
    char path[PATH_MAX];
    if (pattern == NULL || fd < 0)
        return false;
    unsigned char st = fd < MAX_FDS ? atomic_load(&fd_state[fd]) : 0;
    if (st != 0)
        return st == 1;
    return path_of(fd, path, sizeof path) && strstr(path, pattern) != NULL;
}

static void log_fault(enum op op, int fd, int err)
{
    char path[PATH_MAX], line[PATH_MAX + 64];
    if (log_path == NULL)
        return;
    if (!path_of(fd, path, sizeof path))
        snprintf(path, sizeof path, "fd%d", fd);
    int n = snprintf(line, sizeof line, "%s %s %d\n", op_names[op], path, err);
    int lfd = real_open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (lfd < 0)
        return;
    if (n > 0)
        (void)!real_write(lfd, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
    real_close(lfd);
}

/* 0: let the call through; 1: fail it; 2: fail it with a short write */
static int should_fail(enum op op, int fd)
{
    setup();
    if (!ops_on[op] || !matches(fd))
        return 0;
    long k = atomic_fetch_add(&calls, 1);
    if (k < after)
        return 0;
    long f = atomic_fetch_add(&faults, 1);
    if (times >= 0 && f >= times)
        return 0;
    return f == 0 && short_first && (op == OP_WRITE || op == OP_PWRITE) ? 2 : 1;
}

ssize_t write(int fd, const void *buf, size_t len)
{
    int f = should_fail(OP_WRITE, fd);
    if (f == 2 && len > 1) {
        log_fault(OP_WRITE, fd, 0);
        return real_write(fd, buf, len / 2);
    }
    if (f != 0) {
        log_fault(OP_WRITE, fd, fault_errno);
        errno = fault_errno;
        return -1;
    }
    return real_write(fd, buf, len);
}

static ssize_t do_pwrite(pwrite_fn fn, int fd, const void *buf, size_t len, off_t off)
{
    int f = should_fail(OP_PWRITE, fd);
    if (f == 2 && len > 1) {
        log_fault(OP_PWRITE, fd, 0);
        return fn(fd, buf, len / 2, off);
    }
    if (f != 0) {
        log_fault(OP_PWRITE, fd, fault_errno);
        errno = fault_errno;
        return -1;
    }
    return fn(fd, buf, len, off);
}

ssize_t pwrite(int fd, const void *buf, size_t len, off_t off)
{
    setup();
    return do_pwrite(real_pwrite, fd, buf, len, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t len, off_t off)
{
    setup();
    return do_pwrite(real_pwrite64, fd, buf, len, off);
}

ssize_t read(int fd, void *buf, size_t len)
{
    if (should_fail(OP_READ, fd) != 0) {
        log_fault(OP_READ, fd, fault_errno);
        errno = fault_errno;
        return -1;
    }
    return real_read(fd, buf, len);
}

static ssize_t do_pread(pread_fn fn, int fd, void *buf, size_t len, off_t off)
{
    if (should_fail(OP_PREAD, fd) != 0) {
        log_fault(OP_PREAD, fd, fault_errno);
        errno = fault_errno;
        return -1;
    }
    return fn(fd, buf, len, off);
}

ssize_t pread(int fd, void *buf, size_t len, off_t off)
{
    setup();
    return do_pread(real_pread, fd, buf, len, off);
}

ssize_t pread64(int fd, void *buf, size_t len, off_t off)
{
    setup();
    return do_pread(real_pread64, fd, buf, len, off);
}

int fsync(int fd)
{
    if (should_fail(OP_FSYNC, fd) != 0) {
        log_fault(OP_FSYNC, fd, fault_errno);
        errno = fault_errno;
        return -1;
    }
    return real_fsync(fd);
}

int fdatasync(int fd)
{
    if (should_fail(OP_FDATASYNC, fd) != 0) {
        log_fault(OP_FDATASYNC, fd, fault_errno);
        errno = fault_errno;
        return -1;
    }
    return real_fdatasync(fd);
}

int syncfs(int fd)
{
    if (should_fail(OP_SYNCFS, fd) != 0) {
        log_fault(OP_SYNCFS, fd, fault_errno);
        errno = fault_errno;
        return -1;
    }
    return real_syncfs(fd);
}

int close(int fd)
{
    setup();
    if (fd >= 0 && fd < MAX_FDS)
        atomic_store(&fd_state[fd], 0);
    return real_close(fd);
}

static mode_t mode_arg(int flags, va_list ap)
{
    return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ? (mode_t)va_arg(ap, unsigned) : 0;
}

int open(const char *path, int flags, ...)
{
    va_list ap;
    setup();
    va_start(ap, flags);
    mode_t mode = mode_arg(flags, ap);
    va_end(ap);
    int fd = real_open(path, flags, mode);
    note_open(fd);
    return fd;
}

int open64(const char *path, int flags, ...)
{
    va_list ap;
    setup();
    va_start(ap, flags);
    mode_t mode = mode_arg(flags, ap);
    va_end(ap);
    int fd = (real_open64 ? real_open64 : real_open)(path, flags, mode);
    note_open(fd);
    return fd;
}

int openat(int dirfd, const char *path, int flags, ...)
{
    va_list ap;
    setup();
    va_start(ap, flags);
    mode_t mode = mode_arg(flags, ap);
    va_end(ap);
    int fd = real_openat(dirfd, path, flags, mode);
    note_open(fd);
    return fd;
}

int openat64(int dirfd, const char *path, int flags, ...)
{
    va_list ap;
    setup();
    va_start(ap, flags);
    mode_t mode = mode_arg(flags, ap);
    va_end(ap);
    int fd = (real_openat64 ? real_openat64 : real_openat)(dirfd, path, flags, mode);
    note_open(fd);
    return fd;
}

int creat(const char *path, mode_t mode)
{
    setup();
    int fd = real_creat(path, mode);
    note_open(fd);
    return fd;
}

/* ---------------------------------------------------------------- the clock */

static _Atomic long long offset_s;
static _Atomic long long next_read_ns;

static long long mono_ns(void)
{
    struct timespec ts;
    real_clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static long long clock_offset(void)
{
    setup();
    if (clock_file == NULL)
        return 0;
    long long now = mono_ns();
    if (now >= atomic_load(&next_read_ns)) {
        atomic_store(&next_read_ns, now + 20000000LL);
        char buf[64];
        int fd = real_open(clock_file, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            ssize_t n = real_read(fd, buf, sizeof buf - 1);
            real_close(fd);
            if (n > 0) {
                buf[n] = '\0';
                atomic_store(&offset_s, strtoll(buf, NULL, 10));
            }
        }
    }
    return atomic_load(&offset_s);
}

int clock_gettime(clockid_t id, struct timespec *ts)
{
    setup();
    int r = real_clock_gettime(id, ts);
    if (r == 0 && (id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE))
        ts->tv_sec += (time_t)clock_offset();
    return r;
}

int gettimeofday(struct timeval *restrict tv, void *restrict tz)
{
    setup();
    int r = real_gettimeofday(tv, tz);
    struct timeval *volatile out = tv; /* declared nonnull, but NULL is accepted */
    if (r == 0 && out != NULL)
        out->tv_sec += (time_t)clock_offset();
    return r;
}

time_t time(time_t *t)
{
    setup();
    time_t now = real_time(NULL) + (time_t)clock_offset();
    if (t != NULL)
        *t = now;
    return now;
}

struct shifted {
    pcap_handler cb;
    u_char *user;
    long long off;
};

static void shift_packet(u_char *user, const struct pcap_pkthdr *h, const u_char *data)
{
    struct shifted *s = (struct shifted *)(void *)user;
    struct pcap_pkthdr copy = *h;
    copy.ts.tv_sec += (time_t)s->off;
    s->cb(s->user, &copy, data);
}

int pcap_dispatch(pcap_t *p, int cnt, pcap_handler cb, u_char *user)
{
    setup();
    long long off = clock_offset();
    if (off == 0)
        return real_dispatch(p, cnt, cb, user);
    struct shifted s = {.cb = cb, .user = user, .off = off};
    return real_dispatch(p, cnt, shift_packet, (u_char *)(void *)&s);
}
