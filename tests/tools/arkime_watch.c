/*
 * arkime_watch: what Arkime's `capture -m -R DIR` would see and do, for the
 * import tests. It follows Arkime's behaviour (checked against a real
 * capture 6.7.1, /work/shared/design/arkime-ingest.md), not pcapferry's code:
 *
 *   arkime_watch [CAPTURE-OPTIONS] [--sessions FILE] DIR LOGFILE [SECONDS]
 *   arkime_watch --check [CAPTURE-OPTIONS] [PATH...]
 *
 * CAPTURE-OPTIONS are capture's own spelling, so a test can pass the exact
 * command line of the docs: -m, -R DIR, --recursive, -c CONFIG, -n NODE,
 * -o KEY=VALUE, -t TAG, --copy, --delete, --flush, --debug, --ignoreerrors.
 *
 * Monitor mode (reader-scheme-file.c, Arkime 5.x/6.x):
 * - one inotify watch per directory with exactly IN_CLOSE_WRITE | IN_CREATE;
 * - DIR itself is watched; its sub-directories only with --recursive (at
 *   start, dot names skipped, and on IN_CREATE of a directory, at the moment
 *   the event is handled, so a file closed in a new directory before that is
 *   missed, as with capture). Without --recursive nothing below DIR is seen;
 * - IN_CLOSE_WRITE of a name matching (?i)\.(pcap|cap)$ "ingests" the file.
 *   Dot names are not skipped: capture does not skip them on this event.
 *   (Files present at start are not read: tests start on fresh directories.)
 *
 * Reading a file as capture's default reader does:
 * - a bad magic, a classic pcap whose raw 32-bit link-type field is not one
 *   capture reads on Linux (0 1 12 101 107 113 127 228 229 239 274 276: raw
 *   IP is 12 or 101, not 14; FCS bits set make e.g. 0x24000001, refused),
 *   any record with caplen != len (unless readTruncatedPackets=true), or a
 *   pcapng with more than one interface is FATAL: capture exits (LOGEXIT), so
 *   does this program (status 3), unless --ignoreerrors;
 * - a file whose last record is cut off is read up to that record without
 *   an error (logged PARTIAL, since the tests must know).
 *
 * config.ini is read the way capture reads it, with GLib's GKeyFile rules:
 * `[group]`, `key=value`, `#` comments; the [NODE] group (-n) wins over
 * [default]; -o KEY=VALUE wins over both and is not unescaped. Values are
 * unescaped with GKeyFile's escapes \s \n \t \r \\ (and \; in lists); any
 * other escape, e.g. \1, is invalid and the WHOLE value is dropped, as if the
 * key were absent (capture --debug shows filenameOps=(null)). filenameOps is a
 * ;-separated list of FIELD=REGEX%VALUE (split at the first '=' and the first
 * '%' after it); each REGEX is matched against the full path of the file,
 * \N in VALUE is group N. The regexes are compiled as POSIX ERE here (GLib
 * uses PCRE; write patterns valid in both, e.g. [.] and [0-9]).
 *
 * For each ingested file it appends to LOGFILE one line
 *   PATH SIZE BLAKE2B-256      the file is a complete capture Arkime reads
 *   PATH SIZE PARTIAL          its last record is cut (read up to there)
 *   PATH SIZE FATAL            capture would exit on it (see stderr)
 *   PATH - MISSING             it could not be opened any more
 * and for IN_CREATE of a matching file name one line
 *   CREATE PATH
 * plus "OVERFLOW" if the kernel's event queue overflowed (events were lost,
 * so a test cannot trust the log). The digest is BLAKE2b-256, the same as
 * `b2sum -l 256`. With --sessions FILE, one more line per file read there:
 *   PATH packets=N tags=TAG,TAG [FIELD=VALUE...]
 * i.e. what the file's sessions would carry (tags from -t and filenameOps).
 *
 * --check prints the settings capture would use (one line per filenameOps
 * entry, or "filenameOps=(null)"; readTruncatedPackets; the monitored
 * directory and whether sub-directories are watched) and, per PATH, the
 * line "PATH tags=..." a session from that file would get. It exits 1 where
 * capture would refuse to start (config file unreadable or not a key file, a
 * filenameOps entry capture rejects), 0 otherwise.
 *
 * --command-socket PATH (capture 5.4+, with --command-wait): listens on a
 * Unix socket for `add-file [--op F=V]... [--delete] [--notify] FILE` lines;
 * each file is read and logged as above and, with --notify, answered with
 * `file-done filename=FILE packets=N bytes=N` or `file-error filename=FILE
 * error=...`. On a FATAL file it closes the connection without an answer
 * and exits, as capture does. --op fields go to the --sessions line.
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
#include <regex.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define WATCH_FLAGS (IN_CLOSE_WRITE | IN_CREATE)
#define MAX_DEPTH   16
#define MAX_OPS     32
#define MAX_TAGS    64
#define EXIT_FATAL  3

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

static FILE *logf_, *sessf_;

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

static void *xalloc(void *p)
{
    if (p == NULL) {
        fprintf(stderr, "arkime_watch: out of memory\n");
        exit(2);
    }
    return p;
}

/* ------------------------------------------------- capture's options, config */

struct override {
    char *key, *value;
};

static struct {
    const char *monitor_dir; /* -R */
    bool recursive, ignore_errors;
    const char *config, *node;
    struct override ov[32];
    size_t nov;
    const char *tags[MAX_TAGS]; /* -t */
    size_t ntags;
    const char *command_socket;
} opt = {.node = NULL};

/* One key of the key file: its group, and the raw text after '='. */
struct kv {
    char *group, *key, *raw;
};
static struct kv *kvs;
static size_t nkv;

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        s[--n] = '\0';
    return s;
}

/* g_key_file_load_from_file(): a line is a comment, a group or a key=value
 * pair; anything else fails the whole file (capture then exits). */
static int load_key_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "arkime_watch: %s: %s\n", path, strerror(errno));
        return -1;
    }
    char line[8192], *group = NULL;
    unsigned lineno = 0;
    int rc = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        lineno++;
        char *l = trim(line);
        if (*l == '\0' || *l == '#')
            continue;
        if (*l == '[') {
            char *close = strchr(l, ']');
            if (close == NULL || close[1] != '\0') {
                fprintf(stderr, "arkime_watch: %s:%u: not a group, key=value or comment\n", path,
                        lineno);
                rc = -1;
                break;
            }
            *close = '\0';
            free(group);
            group = xalloc(strdup(l + 1));
            continue;
        }
        char *eq = strchr(l, '=');
        if (eq == NULL || eq == l || group == NULL) {
            fprintf(stderr, "arkime_watch: %s:%u: %s\n", path, lineno,
                    group == NULL ? "key outside a group" : "not a group, key=value or comment");
            rc = -1;
            break;
        }
        *eq = '\0';
        kvs = xalloc(realloc(kvs, (nkv + 1) * sizeof *kvs));
        kvs[nkv].group = xalloc(strdup(group));
        kvs[nkv].key = xalloc(strdup(trim(l)));
        kvs[nkv].raw = xalloc(strdup(trim(eq + 1)));
        nkv++;
    }
    free(group);
    fclose(f);
    return rc;
}

static const char *raw_value(const char *group, const char *key)
{
    const char *v = NULL;
    for (size_t i = 0; i < nkv; i++) /* the last one wins, as in GKeyFile */
        if (strcmp(kvs[i].group, group) == 0 && strcmp(kvs[i].key, key) == 0)
            v = kvs[i].raw;
    return v;
}

/* g_key_file_parse_value_as_string(): GKeyFile's escapes. In a list (';'
 * separated) "\;" is a literal ';' and a bare ';' ends an item (marked by
 * '\x1f' here). Any other escape makes the value invalid: NULL. */
static char *key_file_unescape(const char *raw, bool list, char **bad)
{
    char *out = xalloc(malloc(strlen(raw) + 1)), *q = out;
    for (const char *p = raw; *p != '\0'; p++) {
        if (*p == ';' && list) {
            *q++ = '\x1f';
            continue;
        }
        if (*p != '\\') {
            *q++ = *p;
            continue;
        }
        p++;
        switch (*p) {
        case 's':
            *q++ = ' ';
            break;
        case 'n':
            *q++ = '\n';
            break;
        case 't':
            *q++ = '\t';
            break;
        case 'r':
            *q++ = '\r';
            break;
        case '\\':
            *q++ = '\\';
            break;
        case ';':
            if (list) {
                *q++ = ';';
                break;
            }
            /* fall through */
        default:
            if (bad != NULL) {
                *bad = xalloc(malloc(3));
                (*bad)[0] = '\\';
                (*bad)[1] = *p;
                (*bad)[2] = '\0';
            }
            free(out);
            return NULL;
        }
        if (*p == '\0')
            break;
    }
    *q = '\0';
    return out;
}

/* capture's arkime_config_str(): -o, then the node's group, then
 * [default]. *from tells which; NULL when the key is absent or dropped. */
static char *setting(const char *key, bool list, const char **from)
{
    for (size_t i = opt.nov; i-- > 0;)
        if (strcmp(opt.ov[i].key, key) == 0) {
            *from = "-o";
            char *v = xalloc(strdup(opt.ov[i].value));
            if (list)
                for (char *p = v; *p != '\0'; p++)
                    if (*p == ';')
                        *p = '\x1f';
            return v;
        }
    const char *raw = NULL;
    *from = NULL;
    if (opt.node != NULL && (raw = raw_value(opt.node, key)) != NULL)
        *from = opt.node;
    else if ((raw = raw_value("default", key)) != NULL)
        *from = "default";
    if (raw == NULL)
        return NULL;
    char *bad = NULL;
    char *v = key_file_unescape(raw, list, &bad);
    if (v == NULL) {
        fprintf(stderr,
                "arkime_watch: [%s] %s: invalid escape sequence \"%s\": GKeyFile rejects the "
                "value, capture uses none (%s=(null))\n",
                *from, key, bad, key);
        free(bad);
    }
    return v;
}

/* ------------------------------------------------------------- filenameOps */

struct fop {
    char *field, *regex_src, *value;
    regex_t re;
};
static struct fop ops[MAX_OPS];
static size_t nops;
static bool read_truncated;

/* capture's parsing of filenameOps (main.c): FIELD=REGEX%VALUE, split at the
 * first '=' and the first '%' after it; an item shorter than 3 is skipped;
 * anything else malformed stops capture (CONFIGEXIT). */
static int load_settings(bool verbose)
{
    const char *from;
    char *v = setting("filenameOps", true, &from);
    if (v == NULL) {
        if (verbose)
            printf("filenameOps=(null)\n");
    } else {
        char *save = NULL;
        for (char *item = strtok_r(v, "\x1f", &save); item != NULL;
             item = strtok_r(NULL, "\x1f", &save)) {
            if (strlen(item) < 3)
                continue;
            char *eq = strchr(item, '='), *pct = eq ? strchr(eq + 1, '%') : NULL;
            if (eq == NULL || pct == NULL || eq == item || pct == eq + 1 || pct[1] == '\0') {
                fprintf(stderr, "arkime_watch: filenameOps: must be FieldExpr=regex%%value: '%s'\n",
                        item);
                free(v);
                return -1;
            }
            if (nops == MAX_OPS) {
                fprintf(stderr, "arkime_watch: filenameOps: more than %d entries\n", MAX_OPS);
                free(v);
                return -1;
            }
            *eq = *pct = '\0';
            struct fop *o = &ops[nops];
            o->field = xalloc(strdup(item));
            o->regex_src = xalloc(strdup(eq + 1));
            o->value = xalloc(strdup(pct + 1));
            int r = regcomp(&o->re, o->regex_src, REG_EXTENDED);
            if (r != 0) {
                char msg[256];
                regerror(r, &o->re, msg, sizeof msg);
                fprintf(stderr, "arkime_watch: filenameOps: couldn't compile regex '%s': %s\n",
                        o->regex_src, msg);
                free(o->field);
                free(o->regex_src);
                free(o->value);
                free(v);
                return -1;
            }
            nops++;
            if (verbose)
                printf("filenameOps[%zu] field=%s regex=%s value=%s (from %s)\n", nops - 1,
                       o->field, o->regex_src, o->value, from);
        }
        free(v);
    }
    char *rt = setting("readTruncatedPackets", false, &from);
    read_truncated = rt != NULL && (strcmp(rt, "true") == 0 || strcmp(rt, "1") == 0);
    free(rt);
    if (verbose)
        printf("readTruncatedPackets=%s\n", read_truncated ? "true" : "false");
    return 0;
}

/* g_match_info_expand_references(): \0..\9 are groups, \\ a backslash. */
static void expand(const char *tmpl, const char *subject, const regmatch_t *m, char *out,
                   size_t cap)
{
    size_t o = 0;
    for (const char *p = tmpl; *p != '\0' && o + 1 < cap; p++) {
        if (p[0] == '\\' && isdigit((unsigned char)p[1])) {
            int g = p[1] - '0';
            p++;
            if (m[g].rm_so < 0)
                continue;
            for (regoff_t i = m[g].rm_so; i < m[g].rm_eo && o + 1 < cap; i++)
                out[o++] = subject[i];
        } else if (p[0] == '\\' && p[1] == '\\') {
            out[o++] = '\\';
            p++;
        } else {
            out[o++] = *p;
        }
    }
    out[o] = '\0';
}

/* The tags and fields a session read from path gets: "tags=a,b f=v ...". */
static void session_fields(const char *path, char *out, size_t cap)
{
    char tags[4096] = "", fields[4096] = "";
    size_t tl = 0, fl = 0;
    for (size_t i = 0; i < opt.ntags; i++)
        tl += (size_t)snprintf(tags + tl, sizeof tags - tl, "%s%s", tl ? "," : "", opt.tags[i]);
    for (size_t i = 0; i < nops; i++) {
        regmatch_t m[10];
        if (regexec(&ops[i].re, path, 10, m, 0) != 0)
            continue;
        char val[1024];
        expand(ops[i].value, path, m, val, sizeof val);
        if (strcmp(ops[i].field, "tags") == 0) {
            if (tl < sizeof tags)
                tl += (size_t)snprintf(tags + tl, sizeof tags - tl, "%s%s", tl ? "," : "", val);
        } else if (fl < sizeof fields) {
            fl += (size_t)snprintf(fields + fl, sizeof fields - fl, " %s=%s", ops[i].field, val);
        }
    }
    snprintf(out, cap, "tags=%s%s", tags, fields);
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

static uint16_t rd16(const uint8_t *p, bool big)
{
    return (uint16_t)(big ? (unsigned)p[0] << 8 | p[1] : (unsigned)p[1] << 8 | p[0]);
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

/* Link types capture's pcap reader accepts on Linux (DLT values; raw IP is
 * 12 there, 14 is not); anything else stops capture. */
static bool link_type_ok(uint32_t lt)
{
    static const uint32_t ok[] = {0, 1, 12, 101, 107, 113, 127, 228, 229, 239, 274, 276};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (ok[i] == lt)
            return true;
    return false;
}

enum outcome { READ_WHOLE, READ_CUT, READ_FATAL, READ_MISSING };

/* Classic pcap: whole records to the end. */
static enum outcome read_pcap(int fd, uint64_t size, const uint8_t gh[24], bool big,
                              uint64_t *packets, char *why, size_t cap)
{
    uint32_t lt = rd32(gh + 20, big); /* the raw field: FCS bits are not masked */
    if (!link_type_ok(lt)) {
        snprintf(why, cap, "Unsupported pcap link type %u", lt);
        return READ_FATAL;
    }
    uint8_t rh[16];
    uint64_t off = 24;
    while (off < size) {
        if (size - off < sizeof rh || read_full(fd, rh, sizeof rh, (off_t)off) != 0) {
            snprintf(why, cap, "record %llu: header cut at offset %llu",
                     (unsigned long long)*packets, (unsigned long long)off);
            return READ_CUT;
        }
        uint32_t incl = rd32(rh + 8, big), orig = rd32(rh + 12, big);
        if (incl > 0x1000000u) { /* 16 MiB: libpcap stops reading there */
            snprintf(why, cap, "record %llu at offset %llu: implausible length %u",
                     (unsigned long long)*packets, (unsigned long long)off, incl);
            return READ_CUT;
        }
        off += sizeof rh;
        if (size - off < incl) {
            snprintf(why, cap, "record %llu: data cut (%u bytes wanted, %llu left)",
                     (unsigned long long)*packets, incl, (unsigned long long)(size - off));
            return READ_CUT;
        }
        if (incl != orig && !read_truncated) {
            snprintf(why, cap,
                     "record %llu: caplen %u != len %u: Arkime requires full packet captures "
                     "(readTruncatedPackets=false)",
                     (unsigned long long)*packets, incl, orig);
            return READ_FATAL;
        }
        off += incl;
        (*packets)++;
    }
    return READ_WHOLE;
}

/* pcapng: one interface only; enhanced packets' caplen must equal len. */
static enum outcome read_pcapng(int fd, uint64_t size, uint64_t *packets, char *why, size_t cap)
{
    uint8_t bh[28];
    uint64_t off = 0;
    bool big = false;
    unsigned ifaces = 0;
    while (off < size) {
        if (size - off < 12 || read_full(fd, bh, 12, (off_t)off) != 0) {
            snprintf(why, cap, "block at offset %llu cut", (unsigned long long)off);
            return READ_CUT;
        }
        uint32_t type = rd32(bh, false);
        if (type == 0x0A0D0D0Au) {
            uint32_t bom = rd32(bh + 8, false);
            if (bom != 0x1A2B3C4Du && bom != 0x4D3C2B1Au) {
                snprintf(why, cap, "pcapng: bad byte-order magic %08x", bom);
                return READ_FATAL;
            }
            big = bom == 0x4D3C2B1Au;
            ifaces = 0; /* a new section has its own interfaces */
        }
        type = rd32(bh, big);
        uint32_t len = rd32(bh + 4, big);
        if (len < 12 || len % 4 != 0) {
            snprintf(why, cap, "pcapng: block at offset %llu: bad length %u",
                     (unsigned long long)off, len);
            return READ_CUT;
        }
        if (size - off < len) {
            snprintf(why, cap, "pcapng: block at offset %llu cut (%u bytes, %llu left)",
                     (unsigned long long)off, len, (unsigned long long)(size - off));
            return READ_CUT;
        }
        if (type == 1) { /* interface description */
            if (len < 20 || read_full(fd, bh, 20, (off_t)off) != 0) {
                snprintf(why, cap, "pcapng: short interface block");
                return READ_CUT;
            }
            if (++ifaces > 1) {
                snprintf(why, cap, "Multiple interfaces in pcapNG files not supported");
                return READ_FATAL;
            }
            uint16_t lt = rd16(bh + 8, big);
            if (!link_type_ok(lt)) {
                snprintf(why, cap, "Unsupported pcap link type %u", lt);
                return READ_FATAL;
            }
        } else if (type == 6 || type == 3) { /* enhanced / simple packet */
            if (type == 6) {
                if (len < 32 || read_full(fd, bh, 28, (off_t)off) != 0) {
                    snprintf(why, cap, "pcapng: short packet block");
                    return READ_CUT;
                }
                uint32_t incl = rd32(bh + 20, big), orig = rd32(bh + 24, big);
                if (incl != orig && !read_truncated) {
                    snprintf(why, cap,
                             "packet %llu: caplen %u != len %u: Arkime requires full packet "
                             "captures (readTruncatedPackets=false)",
                             (unsigned long long)*packets, incl, orig);
                    return READ_FATAL;
                }
            }
            if (ifaces == 0) {
                snprintf(why, cap, "pcapng: packet before any interface");
                return READ_FATAL;
            }
            (*packets)++;
        }
        off += len;
    }
    return READ_WHOLE;
}

static bool fatal_seen;

/* Reads path as capture would; *packets and *bytes for the answer on the
 * command socket. extra: fields set with add-file --op, or NULL. */
static enum outcome ingest(const char *path, const char *extra, uint64_t *packets_out,
                           uint64_t *bytes_out)
{
    *packets_out = 0;
    *bytes_out = 0;
    char why[256] = "";
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        log_line(path, "-", "MISSING");
        fprintf(stderr, "arkime_watch: %s: %s\n", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return READ_MISSING;
    }
    char size[32];
    snprintf(size, sizeof size, "%llu", (unsigned long long)st.st_size);
    uint64_t packets = 0;
    enum outcome oc = READ_FATAL;
    uint8_t gh[24];
    if (!S_ISREG(st.st_mode)) {
        snprintf(why, sizeof why, "not a regular file");
    } else if (st.st_size < 24 || read_full(fd, gh, sizeof gh, 0) != 0) {
        snprintf(why, sizeof why, "shorter than a pcap header (%s bytes)", size);
    } else {
        uint32_t magic = rd32(gh, false);
        if (magic == 0xa1b2c3d4u || magic == 0xa1b23c4du)
            oc = read_pcap(fd, (uint64_t)st.st_size, gh, false, &packets, why, sizeof why);
        else if (magic == 0xd4c3b2a1u || magic == 0x4d3cb2a1u)
            oc = read_pcap(fd, (uint64_t)st.st_size, gh, true, &packets, why, sizeof why);
        else if (magic == 0x0A0D0D0Au)
            oc = read_pcapng(fd, (uint64_t)st.st_size, &packets, why, sizeof why);
        else
            snprintf(why, sizeof why, "Unknown pcap magic %08x", magic);
    }
    if (oc == READ_FATAL) {
        log_line(path, size, "FATAL");
        fprintf(stderr, "arkime_watch: %s: FATAL: %s: capture exits here%s\n", path, why,
                opt.ignore_errors ? " (not with --ignoreerrors)" : "");
        close(fd);
        if (!opt.ignore_errors)
            fatal_seen = true;
        return READ_FATAL;
    }
    char fields[8192];
    session_fields(path, fields, sizeof fields);
    *packets_out = packets;
    *bytes_out = (uint64_t)st.st_size;
    if (sessf_ != NULL) {
        fprintf(sessf_, "%s packets=%llu %s%s%s\n", path, (unsigned long long)packets, fields,
                extra != NULL ? " " : "", extra != NULL ? extra : "");
        fflush(sessf_);
    }
    if (oc == READ_CUT) {
        log_line(path, size, "PARTIAL");
        fprintf(stderr, "arkime_watch: %s: PARTIAL: %s (capture reads %llu packets, no error)\n",
                path, why, (unsigned long long)packets);
        close(fd);
        return READ_CUT;
    }
    struct b2b s;
    uint8_t buf[65536], out[32];
    char hex[65];
    b2b_init(&s, sizeof out);
    for (off_t off = 0;;) {
        ssize_t r = pread(fd, buf, sizeof buf, off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            log_line(path, size, "PARTIAL");
            fprintf(stderr, "arkime_watch: %s: read: %s\n", path, strerror(errno));
            close(fd);
            return READ_CUT;
        }
        if (r == 0)
            break;
        b2b_update(&s, buf, (size_t)r);
        off += r;
    }
    close(fd);
    b2b_final(&s, out);
    for (size_t i = 0; i < sizeof out; i++)
        snprintf(hex + 2 * i, 3, "%02x", out[i]);
    log_line(path, size, hex);
    return READ_WHOLE;
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

/* capture's scheme_file_monitor_dir(): watch dir, then, only with
 * --recursive, its subdirectories (dot names skipped). */
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
            watches = xalloc(realloc(watches, cap * sizeof *watches));
            capwatches = cap;
        }
        watches[nwatches].wd = wd;
        watches[nwatches].path = xalloc(strdup(dir));
        nwatches++;
    }
    if (!opt.recursive)
        return;
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
            if (!opt.recursive)
                return;
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
    if ((ev->mask & IN_CLOSE_WRITE) && name_matches(ev->name)) {
        uint64_t packets, bytes;
        ingest(path, NULL, &packets, &bytes);
    }
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

static int usage(void)
{
    fprintf(stderr,
            "usage: arkime_watch [capture options] [--sessions FILE] DIR LOGFILE [SECONDS]\n"
            "       arkime_watch --check [capture options] [PATH...]\n"
            "capture options: -m -R DIR --recursive -c CONFIG -n NODE -o KEY=VALUE -t TAG\n"
            "                 --copy --delete --flush --debug --ignoreerrors\n"
            "                 --command-socket PATH --command-wait\n"
            "With -R or --command-socket the positional arguments are LOGFILE [SECONDS].\n");
    return 2;
}

/* ---------------------------------------------------------- command socket */

static int lfd = -1;

static void answer(int cfd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void answer(int cfd, const char *fmt, ...)
{
    char buf[PATH_MAX + 256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n > 0 && (size_t)n < sizeof buf)
        (void)!send(cfd, buf, (size_t)n, MSG_NOSIGNAL);
}

/* One command line: `add-file [--op f=v]... [--delete] [--notify] FILE`. */
static void command(int cfd, char *line)
{
    char *tok[64], *save = NULL, extra[2048] = "";
    size_t n = 0, el = 0;
    for (char *t = strtok_r(line, " \t", &save); t != NULL && n < 64;
         t = strtok_r(NULL, " \t", &save))
        tok[n++] = t;
    if (n == 0)
        return;
    if (strcmp(tok[0], "add-file") != 0) {
        answer(cfd, "error unknown command %s\n", tok[0]);
        return;
    }
    bool notify = false;
    const char *file = NULL;
    for (size_t i = 1; i < n; i++) {
        if (strcmp(tok[i], "--notify") == 0)
            notify = true;
        else if (strcmp(tok[i], "--delete") == 0)
            ; /* not emulated: the tests inspect the files */
        else if (strcmp(tok[i], "--op") == 0 && i + 1 < n) {
            i++;
            if (el < sizeof extra)
                el +=
                    (size_t)snprintf(extra + el, sizeof extra - el, "%s%s", el ? " " : "", tok[i]);
        } else
            file = tok[i];
    }
    if (file == NULL) {
        answer(cfd, "error add-file needs a file\n");
        return;
    }
    uint64_t packets, bytes;
    enum outcome oc = ingest(file, el ? extra : NULL, &packets, &bytes);
    if (oc == READ_FATAL && !opt.ignore_errors)
        return; /* capture exits: the client sees the socket close, no answer */
    if (!notify)
        return;
    if (oc == READ_MISSING || oc == READ_FATAL)
        answer(cfd, "file-error filename=%s error=%s\n", file,
               oc == READ_MISSING ? "cannot-open" : "unreadable");
    else
        answer(cfd, "file-done filename=%s packets=%llu bytes=%llu\n", file,
               (unsigned long long)packets, (unsigned long long)bytes);
}

/* One client at a time, each line a command, until it closes. */
static void serve(void)
{
    int cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    if (cfd < 0)
        return;
    char buf[8192];
    size_t have = 0;
    for (;;) {
        struct pollfd p = {.fd = cfd, .events = POLLIN};
        if (poll(&p, 1, 5000) <= 0)
            break;
        ssize_t r = recv(cfd, buf + have, sizeof buf - 1 - have, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        have += (size_t)r;
        char *nl;
        while ((nl = memchr(buf, '\n', have)) != NULL) {
            *nl = '\0';
            command(cfd, buf);
            if (fatal_seen)
                goto out;
            size_t used = (size_t)(nl - buf) + 1;
            memmove(buf, nl + 1, have - used);
            have -= used;
        }
        if (have == sizeof buf - 1)
            break;
    }
out:
    close(cfd);
}

static int listen_on(const char *path)
{
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof sa.sun_path) {
        fprintf(stderr, "arkime_watch: %s: socket path too long\n", path);
        return -1;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    unlink(path);
    lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(lfd, 8) != 0) {
        fprintf(stderr, "arkime_watch: %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* The loop: events until SECONDS, a signal, or a file capture exits on. */
static int watch_loop(int64_t deadline)
{
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

    static char buf[64 * (sizeof(struct inotify_event) + NAME_MAX + 1)]
        __attribute__((aligned(__alignof__(struct inotify_event))));
    for (bool last = false; !last && !fatal_seen;) {
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
        struct pollfd p[2] = {{.fd = ifd, .events = POLLIN}, {.fd = lfd, .events = POLLIN}};
        int r = ppoll(p, 2, tsp, &waitmask);
        if (r < 0 && errno != EINTR) {
            fprintf(stderr, "arkime_watch: poll: %s\n", strerror(errno));
            return 2;
        }
        /* The descriptor does not block: read whatever is queued, also
         * after a signal, so a stop loses no event that already happened. */
        for (;;) {
            ssize_t len = read(ifd, buf, sizeof buf);
            if (len < 0 && errno == EINTR)
                continue;
            if (len <= 0)
                break;
            for (char *q = buf; q < buf + len && !fatal_seen;) {
                const struct inotify_event *ev = (const struct inotify_event *)(void *)q;
                handle(ev);
                q += sizeof *ev + ev->len;
            }
            if (fatal_seen)
                break;
        }
        if (r > 0 && (p[1].revents & POLLIN) && !fatal_seen)
            serve();
    }
    if (fatal_seen) {
        fprintf(stderr, "arkime_watch: exiting as capture does (LOGEXIT): nothing after this "
                        "file is ingested\n");
        return EXIT_FATAL;
    }
    return 0;
}

int main(int argc, char **argv)
{
    bool check = false;
    const char *sessions = NULL, *pos[3] = {NULL, NULL, NULL};
    char **paths = NULL;
    size_t npos = 0, npaths = 0;
    int rc = 2;

    paths = xalloc(calloc((size_t)argc, sizeof *paths));
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool more = i + 1 < argc;
        if (strcmp(a, "--check") == 0)
            check = true;
        else if (strcmp(a, "--recursive") == 0)
            opt.recursive = true;
        else if (strcmp(a, "--ignoreerrors") == 0)
            opt.ignore_errors = true;
        else if (strcmp(a, "-m") == 0 || strcmp(a, "--monitor") == 0 || strcmp(a, "--copy") == 0 ||
                 strcmp(a, "--delete") == 0 || strcmp(a, "--flush") == 0 ||
                 strcmp(a, "--debug") == 0 || strcmp(a, "-d") == 0)
            ; /* accepted; --delete's removal is not emulated (tests inspect the files) */
        else if (strcmp(a, "-R") == 0 && more)
            opt.monitor_dir = argv[++i];
        else if (strcmp(a, "-c") == 0 && more)
            opt.config = argv[++i];
        else if (strcmp(a, "-n") == 0 && more)
            opt.node = argv[++i];
        else if (strcmp(a, "-t") == 0 && more && opt.ntags < MAX_TAGS)
            opt.tags[opt.ntags++] = argv[++i];
        else if (strcmp(a, "--command-wait") == 0)
            ; /* capture waits for commands; so do we, until SECONDS or a signal */
        else if (strcmp(a, "--command-socket") == 0 && more)
            opt.command_socket = argv[++i];
        else if (strcmp(a, "--sessions") == 0 && more)
            sessions = argv[++i];
        else if (strcmp(a, "-o") == 0 && more && opt.nov < 32) {
            char *kv = argv[++i], *eq = strchr(kv, '=');
            if (eq == NULL || eq == kv) {
                fprintf(stderr, "arkime_watch: -o wants KEY=VALUE\n");
                goto out;
            }
            *eq = '\0';
            opt.ov[opt.nov].key = kv;
            opt.ov[opt.nov].value = eq + 1;
            opt.nov++;
        } else if (a[0] == '-' && a[1] != '\0') {
            fprintf(stderr, "arkime_watch: unknown or incomplete option %s\n", a);
            rc = usage();
            goto out;
        } else if (check)
            paths[npaths++] = argv[i];
        else if (npos < 3)
            pos[npos++] = a;
        else {
            rc = usage();
            goto out;
        }
    }
    if (opt.config != NULL && load_key_file(opt.config) != 0) {
        rc = check ? 1 : 2;
        goto out;
    }
    if (load_settings(check) != 0) {
        rc = check ? 1 : 2;
        goto out;
    }
    if (check) {
        printf("monitor=%s recursive=%s\n", opt.monitor_dir ? opt.monitor_dir : "(none)",
               opt.recursive ? "yes" : "no");
        for (size_t i = 0; i < npaths; i++) {
            char fields[8192];
            session_fields(paths[i], fields, sizeof fields);
            printf("%s %s\n", paths[i], fields);
        }
        rc = 0;
        goto out;
    }

    if (opt.monitor_dir == NULL && opt.command_socket == NULL && npos > 0)
        opt.monitor_dir = pos[0], memmove(pos, pos + 1, sizeof pos - sizeof pos[0]), npos--;
    if ((opt.monitor_dir == NULL && opt.command_socket == NULL) || npos < 1) {
        rc = usage();
        goto out;
    }
    int64_t deadline = -1;
    if (npos == 2) {
        char *end;
        errno = 0;
        long secs = strtol(pos[1], &end, 10);
        if (errno != 0 || *end != '\0' || secs <= 0 || secs > 86400) {
            fprintf(stderr, "arkime_watch: SECONDS must be 1..86400\n");
            goto out;
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
            goto out;
        }
    }
    logf_ = fopen(pos[0], "a");
    if (logf_ == NULL) {
        fprintf(stderr, "arkime_watch: %s: %s\n", pos[0], strerror(errno));
        goto out;
    }
    if (sessions != NULL && (sessf_ = fopen(sessions, "a")) == NULL) {
        fprintf(stderr, "arkime_watch: %s: %s\n", sessions, strerror(errno));
        goto out;
    }
    ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    if (ifd < 0) {
        fprintf(stderr, "arkime_watch: inotify: %s\n", strerror(errno));
        goto out;
    }
    struct stat st;
    if (opt.monitor_dir != NULL) {
        if (stat(opt.monitor_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
            fprintf(stderr, "arkime_watch: %s is not a directory\n", opt.monitor_dir);
            goto out;
        }
        monitor_dir(opt.monitor_dir, 0);
        if (nwatches == 0)
            goto out;
    }
    if (opt.command_socket != NULL && listen_on(opt.command_socket) != 0)
        goto out;
    printf("ready\n");
    fflush(stdout);
    rc = watch_loop(deadline);
out:
    if (logf_ != NULL && fclose(logf_) != 0 && rc == 0)
        rc = 2;
    if (sessf_ != NULL && fclose(sessf_) != 0 && rc == 0)
        rc = 2;
    for (size_t i = 0; i < nwatches; i++)
        free(watches[i].path);
    free(watches);
    for (size_t i = 0; i < nops; i++) {
        regfree(&ops[i].re);
        free(ops[i].field);
        free(ops[i].regex_src);
        free(ops[i].value);
    }
    for (size_t i = 0; i < nkv; i++) {
        free(kvs[i].group);
        free(kvs[i].key);
        free(kvs[i].raw);
    }
    free(kvs);
    free(paths);
    if (ifd >= 0)
        close(ifd);
    if (lfd >= 0) {
        close(lfd);
        unlink(opt.command_socket);
    }
    return rc;
}
