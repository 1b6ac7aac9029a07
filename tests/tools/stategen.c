/* stategen: a synthetic import state for the report tests and benchmark.
 *
 * Writes the importer's own schema (import/db.c) with rows as the importer
 * would record them, and, unless --no-manifests, a kept manifest per bundle
 * (unsigned: the report reads the state it trusts, it does not verify it).
 * Each sensor gets one bundle of one file per --period seconds from
 * --start; packets run from 1 s after the window opens to 1 s before it
 * closes. Events are placed by (sensor index, seq):
 *
 *   --skip I:SEQ        the bundle never arrived (a gap)
 *   --drops I:SEQ:N     N kernel drops in that file
 *   --clock I:SEQ:SECS  a clock jump recorded in that file
 *   --quiet I:SEQ       packets only in the first tenth of the window
 *   --reject I:SEQ      a quarantined copy of that (skipped) bundle
 *
 * usage: stategen --state DIR [--sensors N | --names a,b,..] --bundles M
 *                 [--start UNIX] [--period SECS] [--no-manifests] [events] */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bundle/manifest.h"
#include "common/fsutil.h"
#include "common/text.h"
#include "import/db.h"

#define MAX_EVENTS 256
#define NS         1000000000LL

struct event {
    char kind;
    long sensor;
    uint64_t seq;
    long long v;
};

static struct event events[MAX_EVENTS];
static size_t nevents;

static const struct event *find(char kind, long sensor, uint64_t seq)
{
    for (size_t i = 0; i < nevents; i++)
        if (events[i].kind == kind && events[i].sensor == sensor && events[i].seq == seq)
            return &events[i];
    return NULL;
}

static int add_event(char kind, const char *arg)
{
    if (nevents == MAX_EVENTS)
        return -1;
    struct event *ev = &events[nevents];
    unsigned long long seq = 0;
    int n = sscanf(arg, "%ld:%llu:%lld", &ev->sensor, &seq, &ev->v);
    if (n < 2 || ((kind == 'd' || kind == 'c') && n < 3))
        return -1;
    ev->seq = seq;
    ev->kind = kind;
    nevents++;
    return 0;
}

static int write_manifest(const char *state, const char *sensor, uint64_t seq, uint64_t prev,
                          int64_t ws, int64_t we, int64_t first, int64_t last, uint64_t packets,
                          long long drops, long long jump, pf_err *e)
{
    pf_header h;
    memset(&h, 0, sizeof h);
    snprintf(h.sensor, sizeof h.sensor, "%s", sensor);
    h.seq = seq;
    h.prev_seq = prev;
    if (prev != 0)
        memset(h.prev_hash, 0xab, sizeof h.prev_hash);
    h.created_ns = we;
    pf_manifest *m = pf_manifest_new(&h);
    if (m == NULL)
        return pf_err_set(e, PF_EENV, "out of memory");
    m->capture = json_pack("{s:s, s:s, s:i, s:s}", "interface", "eth1", "filter", "not port 22",
                           "snaplen", 262144, "source", "live");
    pf_pcapinfo info;
    memset(&info, 0, sizeof info);
    snprintf(info.format, sizeof info.format, "pcap");
    snprintf(info.ts_resolution, sizeof info.ts_resolution, "us");
    snprintf(info.link_type_name, sizeof info.link_type_name, "EN10MB");
    info.version_major = 2;
    info.version_minor = 4;
    info.link_type = 1;
    info.snaplen = 262144;
    info.packets = packets;
    info.have_ts = packets > 0;
    info.first_ns = info.min_ns = first;
    info.last_ns = info.max_ns = last;
    info.size = 24 + packets * 100;
    crypto_generichash(info.blake2b, sizeof info.blake2b, (const uint8_t *)&seq, sizeof seq,
                       (const uint8_t *)sensor, strlen(sensor));
    char a[PF_ISOTIME_BYTES], b[PF_ISOTIME_BYTES], name[128];
    pf_isotime_ns(a, sizeof a, ws);
    pf_isotime_ns(b, sizeof b, we);
    pf_compact_time(name, sizeof name, ws);
    char fname[160];
    snprintf(fname, sizeof fname, "%s-%s.pcap", sensor, name);
    json_t *stats =
        json_pack("{s:s, s:s, s:I, s:I, s:s, s:I, s:I, s:I, s:I, s:I, s:I}", "window_start", a,
                  "window_end", b, "window_start_ns", (json_int_t)ws, "window_end_ns",
                  (json_int_t)we, "rotated_by", jump != 0 ? "clock" : "time", "packets_seen",
                  (json_int_t)packets, "packets_saved", (json_int_t)packets, "received",
                  (json_int_t)(packets + (uint64_t)drops), "dropped_kernel", (json_int_t)drops,
                  "dropped_interface", (json_int_t)0, "clock_jump_ns", (json_int_t)jump * NS);
    json_object_set_new(stats, "wall_minus_monotonic_ns", json_integer(1700000000LL * NS));
    char *text = NULL, dir[4096], file[256];
    size_t len = 0;
    int rc = -1;
    if (pf_manifest_add(m, fname, &info, stats, e) != 0 || pf_manifest_encode(m, &text, &len, e))
        goto out;
    snprintf(dir, sizeof dir, "%s/manifests/%s", state, sensor);
    snprintf(file, sizeof file, "%s-%010" PRIu64 ".manifest.json", sensor, seq);
    if (pf_mkdir_p(dir, 0750, e) != 0 || pf_atomic_write(dir, file, text, len, 0640, false, e))
        goto out;
    rc = 0;
out:
    free(text);
    pf_manifest_free(m);
    return rc;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"state", required_argument, NULL, 's'},
                                         {"sensors", required_argument, NULL, 'n'},
                                         {"names", required_argument, NULL, 'N'},
                                         {"bundles", required_argument, NULL, 'b'},
                                         {"start", required_argument, NULL, 't'},
                                         {"period", required_argument, NULL, 'p'},
                                         {"no-manifests", no_argument, NULL, 'M'},
                                         {"skip", required_argument, NULL, 'k'},
                                         {"drops", required_argument, NULL, 'd'},
                                         {"clock", required_argument, NULL, 'c'},
                                         {"quiet", required_argument, NULL, 'q'},
                                         {"reject", required_argument, NULL, 'r'},
                                         {NULL, 0, NULL, 0}};
    const char *state = NULL;
    char *names[64];
    long nsensors = 1;
    unsigned long long bundles = 10;
    long long start = 1700000000, period = 60;
    bool manifests = true, named = false;
    int c;
    pf_err e;
    pf_err_clear(&e);
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 's':
            state = optarg;
            break;
        case 'n':
            nsensors = atol(optarg);
            break;
        case 'N': {
            nsensors = 0;
            named = true;
            for (char *t = strtok(optarg, ","); t != NULL && nsensors < 64; t = strtok(NULL, ","))
                names[nsensors++] = t;
            break;
        }
        case 'b':
            bundles = strtoull(optarg, NULL, 10);
            break;
        case 't':
            start = atoll(optarg);
            break;
        case 'p':
            period = atoll(optarg);
            break;
        case 'M':
            manifests = false;
            break;
        case 'k':
        case 'd':
        case 'c':
        case 'q':
        case 'r':
            if (add_event((char)c, optarg) != 0) {
                fprintf(stderr, "stategen: bad event '%s'\n", optarg);
                return 2;
            }
            break;
        default:
            fprintf(stderr, "usage: see the comment at the top of stategen.c\n");
            return 2;
        }
    }
    if (state == NULL || nsensors < 1 || nsensors > 64 || period < 3 || bundles < 1) {
        fprintf(stderr, "stategen: --state DIR, 1..64 sensors, --period >= 3 are needed\n");
        return 2;
    }
    pf_db db;
    if (pf_mkdir_p(state, 0750, &e) != 0 || pf_db_open(&db, state, &e) != 0) {
        fprintf(stderr, "stategen: %s\n", e.msg);
        return 2;
    }
    sqlite3_exec(db.sql, "PRAGMA synchronous=OFF", NULL, NULL, NULL);
    sqlite3_stmt *ib = NULL, *id = NULL;
    if (pf_db_begin(&db, &e) != 0 ||
        sqlite3_prepare_v2(db.sql,
                           "INSERT INTO bundles (sensor, seq, header_hash, bundle_hash, prev_seq, "
                           "prev_hash, status, source, imported_at, files, packets, bytes, "
                           "first_ts, last_ts, drops) VALUES (?, ?, ?, ?, ?, ?, 'committed', "
                           "'/media/usb', ?, 1, ?, ?, ?, ?, ?)",
                           -1, &ib, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db.sql,
                           "INSERT INTO deliveries (sensor, seq, n, name, stage, final, state, "
                           "blake2b, converted, reason, exec_status, exec_attempts) VALUES "
                           "(?, ?, 1, ?, '', ?, 'delivered', ?, 0, NULL, NULL, 0)",
                           -1, &id, NULL) != SQLITE_OK) {
        fprintf(stderr, "stategen: %s\n", sqlite3_errmsg(db.sql));
        return 2;
    }
    char hex[65];
    memset(hex, 'a', 64);
    hex[64] = '\0';
    for (long s = 0; s < nsensors; s++) {
        char sensor[PF_NAME_MAX + 1];
        if (named)
            snprintf(sensor, sizeof sensor, "%s", names[s]);
        else
            snprintf(sensor, sizeof sensor, "sensor-%02ld", s + 1);
        for (uint64_t seq = 1; seq <= bundles; seq++) {
            /* the sensor made every bundle: each names the one before */
            uint64_t prev = seq - 1;
            int64_t ws = (start + (long long)(seq - 1) * period) * NS, we = ws + period * NS;
            const struct event *ev;
            if (find('k', s, seq) != NULL) {
                if (find('r', s, seq) != NULL) {
                    char q[512], when[32];
                    pf_compact_time(when, sizeof when, ws);
                    snprintf(q, sizeof q, "%s/quarantine/%s/%s-%010" PRIu64 "-%s.pcapferry", state,
                             sensor, sensor, seq, when);
                    char fh[65];
                    snprintf(fh, sizeof fh, "%064" PRIu64, seq * 1000 + (uint64_t)s);
                    pf_db_exec(&db, &e,
                               "INSERT INTO rejections (file_hash, sensor, seq, reason, "
                               "equivocation, quarantined_as, at) VALUES (?, ?, ?, "
                               "'header signature is invalid (forged or modified)', 0, ?, ?)",
                               "ssusi", fh, sensor, seq, q, (int64_t)start + 86400);
                }
                continue;
            }
            int64_t first = ws + NS, last = we - NS;
            if (find('q', s, seq) != NULL)
                last = ws + period * NS / 10;
            ev = find('d', s, seq);
            long long drops = ev ? ev->v : 0;
            ev = find('c', s, seq);
            long long jump = ev ? ev->v : 0;
            uint64_t packets = (uint64_t)period * 10;
            char bh[65], fname[200], final[200], when[32];
            snprintf(bh, sizeof bh, "%016" PRIx64 "%016lx%032d", seq, (unsigned long)s, 0);
            pf_compact_time(when, sizeof when, first);
            snprintf(fname, sizeof fname, "%s-%s.pcap", sensor, when);
            snprintf(final, sizeof final, "%s-%010" PRIu64 "-1-%s.pcap", sensor, seq, when);
            sqlite3_reset(ib);
            sqlite3_bind_text(ib, 1, sensor, -1, SQLITE_TRANSIENT);
            sqlite3_bind_int64(ib, 2, (sqlite3_int64)seq);
            sqlite3_bind_text(ib, 3, hex, -1, SQLITE_STATIC);
            sqlite3_bind_text(ib, 4, bh, -1, SQLITE_TRANSIENT);
            sqlite3_bind_int64(ib, 5, (sqlite3_int64)prev);
            if (prev != 0)
                sqlite3_bind_text(ib, 6, hex, -1, SQLITE_STATIC);
            else
                sqlite3_bind_null(ib, 6);
            sqlite3_bind_int64(ib, 7, start + 86400);
            sqlite3_bind_int64(ib, 8, (sqlite3_int64)packets);
            sqlite3_bind_int64(ib, 9, (sqlite3_int64)(24 + packets * 100));
            sqlite3_bind_int64(ib, 10, first);
            sqlite3_bind_int64(ib, 11, last);
            sqlite3_bind_int64(ib, 12, drops);
            sqlite3_reset(id);
            sqlite3_bind_text(id, 1, sensor, -1, SQLITE_TRANSIENT);
            sqlite3_bind_int64(id, 2, (sqlite3_int64)seq);
            sqlite3_bind_text(id, 3, fname, -1, SQLITE_TRANSIENT);
            sqlite3_bind_text(id, 4, final, -1, SQLITE_TRANSIENT);
            sqlite3_bind_text(id, 5, hex, -1, SQLITE_STATIC);
            if (sqlite3_step(ib) != SQLITE_DONE || sqlite3_step(id) != SQLITE_DONE) {
                fprintf(stderr, "stategen: %s\n", sqlite3_errmsg(db.sql));
                return 2;
            }
            if (manifests && write_manifest(state, sensor, seq, prev, ws, we, first, last, packets,
                                            drops, jump, &e) != 0) {
                fprintf(stderr, "stategen: %s\n", e.msg);
                return 2;
            }
        }
    }
    sqlite3_finalize(ib);
    sqlite3_finalize(id);
    if (pf_db_commit(&db, &e) != 0) {
        fprintf(stderr, "stategen: %s\n", e.msg);
        return 2;
    }
    pf_db_close(&db);
    return 0;
}
