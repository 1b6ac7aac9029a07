/*
 * arkime_watch: what Arkime's `capture -m -R DIR` would see, for the import
 * tests.
 *
 *   arkime_watch DIR LOGFILE [SECONDS]
 *
 * Emulates capture's monitor mode (reader-scheme-file.c, Arkime 5.x/6.x):
 * - one inotify watch per directory with exactly IN_CLOSE_WRITE | IN_CREATE;
 * - at start, DIR and its existing subdirectories are watched (dot names
 *   skipped, as capture does when it walks a tree);
 * - IN_CREATE of a directory adds a watch on it (and on its subdirectories)
 *   at the moment the event is handled, so a file closed in a new directory
 *   before that is missed, as with capture;
 * - IN_CLOSE_WRITE of a name matching (?i)\.(pcap|cap)$ "ingests" the file.
 *   Dot names are not skipped: capture does not skip them on this event.
 *
 * For each ingested file it appends to LOGFILE one line
 *   PATH SIZE BLAKE2B-256      the file is a complete classic pcap
 *   PATH SIZE PARTIAL          it is not (bad magic, cut record, trailing bytes)
 *   PATH - MISSING             it could not be opened any more
 * and for IN_CREATE of a matching file name one line
 *   CREATE PATH
 * plus "OVERFLOW" if the kernel's event queue overflowed (events were lost,
 * so a test cannot trust the log). The digest is BLAKE2b-256, the same as
 * `b2sum -l 256`.
 *
 * ARKIME_WATCH_DIR_LAG_MS=N in the environment delays the handling of a new
 * directory by N ms, as a capture busy with a large pcap would: a file
 * announced in the new directory before then is missed (what the importer's
 * --settle-ms pause is for).
 *
 * Prints "ready" on stdout once the watches are set. Exits 0 after SECONDS
 * (default: never) or on SIGTERM/SIGINT; every line is flushed as written.
 * Self-contained on purpose: no libraries.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define WATCH_FLAGS (IN_CLOSE_WRITE | IN_CREATE)
#define MAX_DEPTH   16

/* ------------------------------------------------------------ BLAKE2b (RFC 7693) */

struct b2b {
    uint8_t b[128];
    uint64_t h[8];
    uint64_t t[2];
    size_t c;
    size_t outlen;
};

static const uint64_t b2b_iv[8] = {
    0x6A09E667F3BCC908ULL, 0xBB67AE8584CAA73BULL, 0x3C6EF372FE94F82BULL, 0xA54FF53A5F1D36F1ULL,
    0x510E527FADE682D1ULL, 0x9B05688C2B3E6C1FULL, 0x1F83D9ABFB41BD6BULL, 0x5BE0CD19137E2179ULL};

static const uint8_t b2b_sigma[12][16] = {{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
                                          {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3},
                                          {11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4},
                                          {7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8},
                                          {9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13},
                                          {2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9},
                                          {12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11},
                                          {13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10},
                                          {6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5},
                                          {10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0},
                                          {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
                                          {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3}};

static uint64_t rotr64(uint64_t x, unsigned n)
{
    return (x >> n) | (x << (64u - n));
}

static uint64_t load64le(const uint8_t *p)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8u * i);
    return v;
}

#define B2B_G(a, b, c, d, x, y)                                                                    \
    do {                                                                                           \
        v[a] = v[a] + v[b] + (x);                                                                  \
        v[d] = rotr64(v[d] ^ v[a], 32);                                                            \
        v[c] = v[c] + v[d];                                                                        \
        v[b] = rotr64(v[b] ^ v[c], 24);                                                            \
        v[a] = v[a] + v[b] + (y);                                                                  \
        v[d] = rotr64(v[d] ^ v[a], 16);                                                            \
        v[c] = v[c] + v[d];                                                                        \
        v[b] = rotr64(v[b] ^ v[c], 63);                                                            \
    } while (0)

static void b2b_compress(struct b2b *s, bool last)
{
    uint64_t v[16], m[16];
    for (unsigned i = 0; i < 8; i++) {
        v[i] = s->h[i];
        v[i + 8] = b2b_iv[i];
    }
    v[12] ^= s->t[0];
    v[13] ^= s->t[1];
    if (last)
        v[14] = ~v[14];
    for (unsigned i = 0; i < 16; i++)
        m[i] = load64le(&s->b[8 * i]);
    for (unsigned r = 0; r < 12; r++) {
        const uint8_t *sg = b2b_sigma[r];
        B2B_G(0, 4, 8, 12, m[sg[0]], m[sg[1]]);
        B2B_G(1, 5, 9, 13, m[sg[2]], m[sg[3]]);
        B2B_G(2, 6, 10, 14, m[sg[4]], m[sg[5]]);
        B2B_G(3, 7, 11, 15, m[sg[6]], m[sg[7]]);
        B2B_G(0, 5, 10, 15, m[sg[8]], m[sg[9]]);
        B2B_G(1, 6, 11, 12, m[sg[10]], m[sg[11]]);
        B2B_G(2, 7, 8, 13, m[sg[12]], m[sg[13]]);
        B2B_G(3, 4, 9, 14, m[sg[14]], m[sg[15]]);
    }
    for (unsigned i = 0; i < 8; i++)
        s->h[i] ^= v[i] ^ v[i + 8];
}

static void b2b_init(struct b2b *s, size_t outlen)
{
    memset(s, 0, sizeof *s);
    memcpy(s->h, b2b_iv, sizeof s->h);
    s->h[0] ^= 0x01010000ULL ^ (uint64_t)outlen; /* no key */
    s->outlen = outlen;
}

static void b2b_add_count(struct b2b *s, size_t n)
{
    s->t[0] += (uint64_t)n;
    if (s->t[0] < (uint64_t)n)
        s->t[1]++;
}

static void b2b_update(struct b2b *s, const uint8_t *in, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (s->c == sizeof s->b) {
            b2b_add_count(s, s->c);
            b2b_compress(s, false);
            s->c = 0;
        }
        s->b[s->c++] = in[i];
    }
}

static void b2b_final(struct b2b *s, uint8_t *out)
{
    b2b_add_count(s, s->c);
    while (s->c < sizeof s->b)
        s->b[s->c++] = 0;
    b2b_compress(s, true);
    for (size_t i = 0; i < s->outlen; i++)
        out[i] = (uint8_t)(s->h[i >> 3] >> (8u * (i & 7u)));
}

/* ------------------------------------------------------------------ the log */

static FILE *logf_;

/* One line: the words separated by spaces, flushed at once so a test can
 * poll the log while we run. */
static void log_line(const char *a, const char *b, const char *c)
{
    fputs(a, logf_);
    if (b != NULL)
        fprintf(logf_, " %s", b);
    if (c != NULL)
        fprintf(logf_, " %s", c);
    fputc('\n', logf_);
    fflush(logf_);
}

/* ---------------------------------------------------------- file checking */

static bool name_matches(const char *name)
{
    size_t n = strlen(name);
    const char *dot = strrchr(name, '.');
    if (dot == NULL || n < 4)
        return false;
    char ext[5] = "";
    size_t el = strlen(dot + 1);
    if (el < 3 || el > 4)
        return false;
    for (size_t i = 0; i < el; i++)
        ext[i] = (char)tolower((unsigned char)dot[1 + i]);
    ext[el] = '\0';
    return strcmp(ext, "pcap") == 0 || strcmp(ext, "cap") == 0;
}

static uint32_t rd32(const uint8_t *p, bool big)
{
    if (big)
        return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
    return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | (uint32_t)p[0];
}

static int read_full(int fd, uint8_t *buf, size_t len, off_t off)
{
    size_t got = 0;
    while (got < len) {
        ssize_t r = pread(fd, buf + got, len - got, off + (off_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    return 0;
}

/* Whether fd holds exactly one classic pcap: global header, then whole
 * records up to the end of the file and not a byte more. */
static bool pcap_complete(int fd, uint64_t size, char *why, size_t cap)
{
    uint8_t gh[24], rh[16];
    if (size < sizeof gh || read_full(fd, gh, sizeof gh, 0) != 0) {
        snprintf(why, cap, "shorter than a pcap header (%llu bytes)", (unsigned long long)size);
        return false;
    }
    uint32_t magic = rd32(gh, false);
    bool big;
    if (magic == 0xa1b2c3d4u || magic == 0xa1b23c4du)
        big = false;
    else if (magic == 0xd4c3b2a1u || magic == 0x4d3cb2a1u)
        big = true;
    else {
        snprintf(why, cap, "not a classic pcap (magic %08x)", magic);
        return false;
    }
    uint64_t off = sizeof gh, n = 0;
    while (off < size) {
        if (size - off < sizeof rh || read_full(fd, rh, sizeof rh, (off_t)off) != 0) {
            snprintf(why, cap, "record %llu: header cut at offset %llu", (unsigned long long)n,
                     (unsigned long long)off);
            return false;
        }
        uint32_t incl = rd32(rh + 8, big);
        if (incl > 0x1000000u) { /* 16 MiB: no link type has such packets */
            snprintf(why, cap, "record %llu at offset %llu: implausible length %u",
                     (unsigned long long)n, (unsigned long long)off, incl);
            return false;
        }
        off += sizeof rh;
        if (size - off < incl) {
            snprintf(why, cap, "record %llu: data cut (%u bytes wanted, %llu left)",
                     (unsigned long long)n, incl, (unsigned long long)(size - off));
            return false;
        }
        off += incl;
        n++;
    }
    return true;
}

static void ingest(const char *path)
{
    char why[256] = "";
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        log_line(path, "-", "MISSING");
        fprintf(stderr, "arkime_watch: %s: %s\n", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return;
    }
    char size[32];
    snprintf(size, sizeof size, "%llu", (unsigned long long)st.st_size);
    if (!S_ISREG(st.st_mode) || !pcap_complete(fd, (uint64_t)st.st_size, why, sizeof why)) {
        log_line(path, size, "PARTIAL");
        fprintf(stderr, "arkime_watch: %s: PARTIAL: %s\n", path,
                S_ISREG(st.st_mode) ? why : "not a regular file");
        close(fd);
        return;
    }
    struct b2b s;
    uint8_t buf[65536], out[32];
    char hex[65];
    b2b_init(&s, sizeof out);
    for (;;) {
        ssize_t r = read(fd, buf, sizeof buf);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            log_line(path, size, "PARTIAL");
            fprintf(stderr, "arkime_watch: %s: read: %s\n", path, strerror(errno));
            close(fd);
            return;
        }
        if (r == 0)
            break;
        b2b_update(&s, buf, (size_t)r);
    }
    close(fd);
    b2b_final(&s, out);
    for (size_t i = 0; i < sizeof out; i++)
        snprintf(hex + 2 * i, 3, "%02x", out[i]);
    log_line(path, size, hex);
}

/* ---------------------------------------------------------------- watches */

struct watch {
    int wd;
    char *path;
};

static struct watch *watches;
static size_t nwatches, capwatches;
static int ifd = -1;

static const char *watch_path(int wd)
{
    for (size_t i = 0; i < nwatches; i++)
        if (watches[i].wd == wd)
            return watches[i].path;
    return NULL;
}

/* capture's scheme_file_monitor_dir(): watch dir, then its subdirectories
 * (dot names skipped). */
static void monitor_dir(const char *dir, int depth)
{
    if (depth > MAX_DEPTH)
        return;
    int wd = inotify_add_watch(ifd, dir, WATCH_FLAGS);
    if (wd < 0) {
        fprintf(stderr, "arkime_watch: cannot watch %s: %s\n", dir, strerror(errno));
        return;
    }
    if (watch_path(wd) == NULL) {
        if (nwatches == capwatches) {
            size_t cap = capwatches ? 2 * capwatches : 16;
            struct watch *g = realloc(watches, cap * sizeof *g);
            if (g == NULL) {
                fprintf(stderr, "arkime_watch: out of memory\n");
                exit(2);
            }
            watches = g;
            capwatches = cap;
        }
        watches[nwatches].wd = wd;
        watches[nwatches].path = strdup(dir);
        if (watches[nwatches].path == NULL) {
            fprintf(stderr, "arkime_watch: out of memory\n");
            exit(2);
        }
        nwatches++;
    }
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        char path[PATH_MAX];
        struct stat st;
        if (de->d_name[0] == '.')
            continue;
        if (snprintf(path, sizeof path, "%s/%s", dir, de->d_name) >= (int)sizeof path)
            continue;
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
            monitor_dir(path, depth + 1);
    }
    closedir(d);
}

static long dir_lag_ms;

static void handle(const struct inotify_event *ev)
{
    if (ev->mask & IN_Q_OVERFLOW) {
        log_line("OVERFLOW", NULL, NULL);
        fprintf(stderr, "arkime_watch: event queue overflow: events were lost\n");
        return;
    }
    const char *dir = watch_path(ev->wd);
    if (dir == NULL || ev->len == 0)
        return; /* IN_IGNORED and events on the watched directory itself */
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/%s", dir, ev->name) >= (int)sizeof path)
        return;
    if (ev->mask & IN_CREATE) {
        struct stat st;
        /* capture tests the path, not IN_ISDIR, and does not skip dot names here */
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
            if (dir_lag_ms > 0) {
                struct timespec lag = {(time_t)(dir_lag_ms / 1000), (dir_lag_ms % 1000) * 1000000L};
                while (nanosleep(&lag, &lag) != 0 && errno == EINTR)
                    ;
            }
            monitor_dir(path, 1);
            return;
        }
        if (name_matches(ev->name))
            log_line("CREATE", path, NULL);
    }
    if ((ev->mask & IN_CLOSE_WRITE) && name_matches(ev->name))
        ingest(path);
}

/* ------------------------------------------------------------------- main */

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int main(int argc, char **argv)
{
    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: arkime_watch DIR LOGFILE [SECONDS]\n");
        return 2;
    }
    int64_t deadline = -1;
    if (argc == 4) {
        char *end;
        errno = 0;
        long secs = strtol(argv[3], &end, 10);
        if (errno != 0 || *end != '\0' || secs <= 0 || secs > 86400) {
            fprintf(stderr, "arkime_watch: SECONDS must be 1..86400\n");
            return 2;
        }
        deadline = now_ms() + (int64_t)secs * 1000;
    }
    const char *lag = getenv("ARKIME_WATCH_DIR_LAG_MS");
    if (lag != NULL && *lag != '\0') {
        char *end;
        errno = 0;
        dir_lag_ms = strtol(lag, &end, 10);
        if (errno != 0 || *end != '\0' || dir_lag_ms < 0 || dir_lag_ms > 60000) {
            fprintf(stderr, "arkime_watch: ARKIME_WATCH_DIR_LAG_MS must be 0..60000\n");
            return 2;
        }
    }
    logf_ = fopen(argv[2], "a");
    if (logf_ == NULL) {
        fprintf(stderr, "arkime_watch: %s: %s\n", argv[2], strerror(errno));
        return 2;
    }
    /* SIGTERM is only let through inside ppoll, so it cannot slip in
     * between the check of `stop` and the wait. */
    sigset_t block, waitmask;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigprocmask(SIG_BLOCK, &block, &waitmask);
    sigdelset(&waitmask, SIGTERM);
    sigdelset(&waitmask, SIGINT);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    if (ifd < 0) {
        fprintf(stderr, "arkime_watch: inotify: %s\n", strerror(errno));
        return 2;
    }
    struct stat st;
    if (stat(argv[1], &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "arkime_watch: %s is not a directory\n", argv[1]);
        return 2;
    }
    monitor_dir(argv[1], 0);
    if (nwatches == 0)
        return 2;
    printf("ready\n");
    fflush(stdout);

    static char buf[64 * (sizeof(struct inotify_event) + NAME_MAX + 1)]
        __attribute__((aligned(__alignof__(struct inotify_event))));
    int rc = 0;
    for (bool last = false; !last;) {
        last = stop != 0;
        struct timespec ts, *tsp = NULL;
        if (deadline >= 0) {
            int64_t left = deadline - now_ms();
            if (left <= 0) {
                left = 0;
                last = true;
            }
            ts.tv_sec = (time_t)(left / 1000);
            ts.tv_nsec = (long)(left % 1000) * 1000000L;
            tsp = &ts;
        }
        if (last) { /* stopping: only drain what the kernel has queued */
            ts.tv_sec = 0;
            ts.tv_nsec = 0;
            tsp = &ts;
        }
        struct pollfd p = {.fd = ifd, .events = POLLIN};
        int r = ppoll(&p, 1, tsp, &waitmask);
        if (r < 0 && errno != EINTR) {
            fprintf(stderr, "arkime_watch: poll: %s\n", strerror(errno));
            rc = 2;
            break;
        }
        /* The descriptor does not block: read whatever is queued, also
         * after a signal, so a stop loses no event that already happened. */
        for (;;) {
            ssize_t len = read(ifd, buf, sizeof buf);
            if (len < 0 && errno == EINTR)
                continue;
            if (len <= 0)
                break;
            for (char *q = buf; q < buf + len;) {
                const struct inotify_event *ev = (const struct inotify_event *)(void *)q;
                handle(ev);
                q += sizeof *ev + ev->len;
            }
        }
    }
    fflush(logf_);
    if (fclose(logf_) != 0)
        rc = 2;
    for (size_t i = 0; i < nwatches; i++)
        free(watches[i].path);
    free(watches);
    close(ifd);
    return rc;
}
