#include "import/report.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bundle/manifest.h"
#include "common/fsutil.h"
#include "common/text.h"

/* A silent stretch inside a capture window (sensor up, no packet) is shown
 * when it lasts at least this long and at least a tenth of the window. */
#define SILENT_MIN_NS 1000000000LL

struct ctx {
    const pf_report_opts *o;
    pf_err *e;
    sqlite3 *db;
    char dbpath[PATH_MAX];
    char quarantine[PATH_MAX];
    int64_t from, to;
    bool hourly; /* the state has bundles_hourly (import/db.c) */
    json_t *sensors, *windows, *buckets, *drops, *gaps, *silent, *clock, *rejected, *held;
};

/* ------------------------------------------------------------ helpers */

static void set_time(json_t *o, const char *k, bool have, int64_t ns)
{
    char key[64], iso[PF_ISOTIME_BYTES];
    snprintf(key, sizeof key, "%s_ns", k);
    if (!have) {
        json_object_set_new(o, k, json_null());
        json_object_set_new(o, key, json_null());
        return;
    }
    pf_isotime_ns(iso, sizeof iso, ns);
    json_object_set_new(o, k, json_string(iso));
    json_object_set_new(o, key, json_integer((json_int_t)ns));
}

static void set_int(json_t *o, const char *k, int64_t v)
{
    json_object_set_new(o, k, json_integer((json_int_t)v));
}

static int64_t jget_i64(json_t *o, const char *k, bool *have)
{
    json_t *v = json_object_get(o, k);
    *have = json_is_integer(v);
    return *have ? (int64_t)json_integer_value(v) : 0;
}

static bool wanted(const struct ctx *c, const char *sensor)
{
    if (c->o->nsensors == 0)
        return true;
    for (size_t i = 0; i < c->o->nsensors; i++)
        if (strcmp(c->o->sensors[i], sensor) == 0)
            return true;
    return false;
}

static bool overlaps(const struct ctx *c, bool have_a, int64_t a, bool have_b, int64_t b)
{
    return (!have_a || a <= c->to) && (!have_b || b >= c->from);
}

static sqlite3_stmt *prep(struct ctx *c, const char *sql)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK) {
        pf_err_set(c->e, PF_EENV, "%s: %s (in: %.60s)", c->dbpath, sqlite3_errmsg(c->db), sql);
        sqlite3_finalize(st);
        return NULL;
    }
    return st;
}

/* Rows to aggregate, with the columns of bundles_hourly. A state written
 * before that table existed (and opened read-only since) gives the same
 * columns one bundle per row: right, only slower. */
#define HOUR_NS 3600000000000LL
static const char *src(const struct ctx *c)
{
    return c->hourly ? "bundles_hourly"
                     : "(SELECT sensor, first_ts / 3600000000000 AS hour, 1 AS bundles, files, "
                       "packets, bytes, drops, last_ts - first_ts AS covered_ns, first_ts, "
                       "last_ts, seq AS min_seq, seq AS max_seq, last_ts - first_ts AS "
                       "max_span_ns FROM bundles WHERE first_ts <> 0)";
}

static const char *per_bundle_src(void)
{
    return "(SELECT sensor, first_ts / 3600000000000 AS hour, 1 AS bundles, files, packets, "
           "bytes, drops, last_ts - first_ts AS covered_ns, first_ts, last_ts, seq AS min_seq, "
           "seq AS max_seq, last_ts - first_ts AS max_span_ns FROM bundles WHERE first_ts <> 0)";
}

/* SQLITE_ROW: 1, SQLITE_DONE: 0, anything else: -1 with the error set. */
static int next_row(struct ctx *c, sqlite3_stmt *st)
{
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW)
        return 1;
    if (r == SQLITE_DONE)
        return 0;
    pf_err_set(c->e, PF_EENV, "%s: %s", c->dbpath, sqlite3_errmsg(c->db));
    return -1;
}

static const char *col_text(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t != NULL ? (const char *)t : "";
}

static json_t *find_sensor(struct ctx *c, const char *name)
{
    size_t i;
    json_t *s;
    json_array_foreach(c->sensors, i, s)
    {
        if (strcmp(json_string_value(json_object_get(s, "sensor")), name) == 0)
            return s;
    }
    return NULL;
}

/* The kept manifest of (sensor, seq); NULL when missing or unreadable (the
 * report then falls back to what the database holds). */
static pf_manifest *load_manifest(struct ctx *c, const char *sensor, int64_t seq)
{
    char path[PATH_MAX];
    uint8_t *buf = NULL;
    size_t len = 0;
    pf_manifest *m = NULL;
    pf_err ignored;
    if (snprintf(path, sizeof path, "%s/manifests/%s/%s-%010" PRId64 ".manifest.json",
                 c->o->state_dir, sensor, sensor, seq) >= (int)sizeof path)
        return NULL;
    if (pf_read_file(path, PF_MANIFEST_MAX_BYTES, 0, &buf, &len, &ignored) != 0)
        return NULL;
    if (pf_manifest_parse(buf, len, &m, &ignored) != 0)
        m = NULL;
    pf_free_file(buf, false);
    return m;
}

static const char *capture_str(const pf_manifest *m, const char *k)
{
    json_t *v = m != NULL && m->capture != NULL ? json_object_get(m->capture, k) : NULL;
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* --------------------------------------------------------- per sensor */

static int load_sensors(struct ctx *c)
{
    /* A skip scan over the primary key: one probe per sensor, not a scan
     * of every bundle. */
    static const char names_sql[] =
        "WITH RECURSIVE s(x) AS (SELECT MIN(sensor) FROM bundles UNION ALL "
        "SELECT (SELECT MIN(sensor) FROM bundles WHERE sensor > x) FROM s WHERE x IS NOT NULL) "
        "SELECT x FROM s WHERE x IS NOT NULL "
        "UNION SELECT sensor FROM rejections WHERE sensor IS NOT NULL ORDER BY 1";
    char sum_sql[2048];
    snprintf(sum_sql, sizeof sum_sql,
             "SELECT COALESCE(h.n, 0) + z.n, (SELECT MIN(seq) FROM bundles WHERE sensor = ?1), "
             "(SELECT MAX(seq) FROM bundles WHERE sensor = ?1), COALESCE(h.files, 0) + "
             "COALESCE(z.files, 0), COALESCE(h.packets, 0), COALESCE(h.bytes, 0) + "
             "COALESCE(z.bytes, 0), COALESCE(h.drops, 0) + COALESCE(z.drops, 0), h.first, h.last, "
             "COALESCE(h.span, 0) FROM (SELECT SUM(bundles) AS n, SUM(files) AS files, "
             "SUM(packets) AS packets, SUM(bytes) AS bytes, SUM(drops) AS drops, MIN(first_ts) AS "
             "first, MAX(last_ts) AS last, MAX(max_span_ns) AS span FROM %s WHERE sensor = ?1) h, "
             "(SELECT COUNT(*) AS n, SUM(files) AS files, SUM(bytes) AS bytes, SUM(drops) AS drops "
             "FROM bundles WHERE sensor = ?1 AND first_ts = 0) z",
             src(c));
    sqlite3_stmt *st = prep(c, names_sql), *sum = prep(c, sum_sql);
    int rc = -1, r;
    if (st == NULL || sum == NULL)
        goto out;
    while ((r = next_row(c, st)) == 1) {
        const char *name = col_text(st, 0);
        if (!wanted(c, name))
            continue;
        json_t *s = json_object();
        json_object_set_new(s, "sensor", json_string(name));
        sqlite3_reset(sum);
        sqlite3_bind_text(sum, 1, name, -1, SQLITE_TRANSIENT);
        if (next_row(c, sum) != 1) {
            json_decref(s);
            goto out;
        }
        int64_t n = sqlite3_column_int64(sum, 0);
        set_int(s, "bundles", n);
        json_object_set_new(s, "first_seq",
                            n ? json_integer(sqlite3_column_int64(sum, 1)) : json_null());
        json_object_set_new(s, "last_seq",
                            n ? json_integer(sqlite3_column_int64(sum, 2)) : json_null());
        set_int(s, "files", sqlite3_column_int64(sum, 3));
        set_int(s, "packets", sqlite3_column_int64(sum, 4));
        set_int(s, "bytes", sqlite3_column_int64(sum, 5));
        set_int(s, "drops", sqlite3_column_int64(sum, 6));
        set_time(s, "first_packet", sqlite3_column_type(sum, 7) != SQLITE_NULL,
                 sqlite3_column_int64(sum, 7));
        set_time(s, "last_packet", sqlite3_column_type(sum, 8) != SQLITE_NULL,
                 sqlite3_column_int64(sum, 8));
        set_int(s, "longest_bundle_ns", sqlite3_column_int64(sum, 9));
        set_int(s, "missing", 0);
        set_int(s, "rejected", 0);
        set_int(s, "held", 0);
        /* How the sensor captures, from its latest manifest. */
        pf_manifest *m = n ? load_manifest(c, name, sqlite3_column_int64(sum, 2)) : NULL;
        const char *ifc = capture_str(m, "interface"), *filter = capture_str(m, "filter");
        json_object_set_new(s, "interface", ifc ? json_string(ifc) : json_null());
        json_object_set_new(s, "filter", filter ? json_string(filter) : json_null());
        pf_manifest_free(m);
        json_array_append_new(c->sensors, s);
    }
    rc = r < 0 ? -1 : 0;
out:
    sqlite3_finalize(st);
    sqlite3_finalize(sum);
    return rc;
}

static int choose_range(struct ctx *c)
{
    bool any = false;
    int64_t lo = 0, hi = 0;
    size_t i;
    json_t *s;
    json_array_foreach(c->sensors, i, s)
    {
        bool h1, h2;
        int64_t a = jget_i64(s, "first_packet_ns", &h1), b = jget_i64(s, "last_packet_ns", &h2);
        if (h1 && (!any || a < lo))
            lo = a;
        if (h2 && (!any || b > hi))
            hi = b;
        any |= h1 && h2;
    }
    /* a margin, so the first and last windows do not touch the frame */
    int64_t pad = (hi - lo) / 50;
    c->from = c->o->have_from ? c->o->from_ns : lo - pad;
    c->to = c->o->have_to ? c->o->to_ns : hi + pad;
    if (!any && !c->o->have_from && !c->o->have_to) {
        c->from = c->o->now_ns - 3600LL * 1000000000LL;
        c->to = c->o->now_ns;
    }
    if (c->to <= c->from) {
        if (c->o->have_from && c->o->have_to)
            return pf_err_set(c->e, PF_EUSAGE, "--to must be later than --from");
        c->to = c->from + 60LL * 1000000000LL;
    }
    return 0;
}

/* Bundles of a sensor that can overlap [from, to] start at most its
 * longest bundle before `from`: that bound lets the (sensor, first_ts)
 * index skip the rest of the history. */
static int64_t lookback(json_t *s, int64_t from)
{
    bool have;
    int64_t span = jget_i64(s, "longest_bundle_ns", &have);
    int64_t start = from - (have && span > 0 ? span : 0);
    return start > 0 ? start : 1;
}

/* ?1 sensor, ?2 from, ?3 to, ?4 its lookback: the per-sensor window the
 * queries below share. */
static void bind_sensor_window(sqlite3_stmt *st, const struct ctx *c, json_t *s)
{
    sqlite3_reset(st);
    sqlite3_bind_text(st, 1, json_string_value(json_object_get(s, "sensor")), -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, c->from);
    sqlite3_bind_int64(st, 3, c->to);
    sqlite3_bind_int64(st, 4, lookback(s, c->from));
}

static int count_in_range(struct ctx *c, size_t detail_max, int64_t *n)
{
    /* The hourly roll-up counts whole hours: enough to see that a range is
     * far too large to draw file by file without counting its bundles. */
    if (c->hourly && c->o->nsensors == 0) {
        sqlite3_stmt *h = prep(c, "SELECT COALESCE(SUM(bundles), 0) FROM bundles_hourly WHERE "
                                  "hour BETWEEN ?1 / 3600000000000 AND ?2 / 3600000000000 AND "
                                  "last_ts >= ?1");
        if (h == NULL)
            return -1;
        sqlite3_bind_int64(h, 1, c->from);
        sqlite3_bind_int64(h, 2, c->to);
        int r = next_row(c, h);
        int64_t estimate = r == 1 ? sqlite3_column_int64(h, 0) : 0;
        sqlite3_finalize(h);
        if (r != 1)
            return -1;
        if (estimate > 4 * (int64_t)detail_max) {
            *n = estimate;
            return 0;
        }
    }
    sqlite3_stmt *st = prep(c, "SELECT COUNT(*) FROM bundles WHERE sensor = ?1 AND "
                               "first_ts BETWEEN ?4 AND ?3 AND last_ts >= ?2");
    size_t i;
    json_t *s;
    *n = 0;
    if (st == NULL)
        return -1;
    json_array_foreach(c->sensors, i, s)
    {
        bind_sensor_window(st, c, s);
        if (next_row(c, st) != 1) {
            sqlite3_finalize(st);
            return -1;
        }
        *n += sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    return 0;
}

/* ------------------------------------------------------ file by file */

static void add_file_window(struct ctx *c, const char *sensor, int64_t seq, const char *bhash,
                            const pf_manifest *m, size_t idx, sqlite3_stmt *dv)
{
    const pf_manifest_file *f = &m->files[idx];
    json_t *s = f->capture_stats;
    bool hk, hi, hws, hwe, hj, hoff, hrecv;
    int64_t dk = jget_i64(s, "dropped_kernel", &hk), di = jget_i64(s, "dropped_interface", &hi);
    int64_t ws = jget_i64(s, "window_start_ns", &hws), we = jget_i64(s, "window_end_ns", &hwe);
    int64_t jump = jget_i64(s, "clock_jump_ns", &hj);
    int64_t off = jget_i64(s, "wall_minus_monotonic_ns", &hoff);
    int64_t recv = jget_i64(s, "received", &hrecv);
    json_t *rot = s != NULL ? json_object_get(s, "rotated_by") : NULL;
    bool have_ts = f->info.have_ts;
    int64_t first = f->info.min_ns, last = f->info.max_ns;

    /* Outside the range in both packet time and capture window: skip. */
    if (!(have_ts && overlaps(c, true, first, true, last)) &&
        !(hws && hwe && overlaps(c, true, ws, true, we)))
        return;

    json_t *w = json_object();
    json_object_set_new(w, "sensor", json_string(sensor));
    set_int(w, "seq", seq);
    set_int(w, "n", (int64_t)idx + 1);
    json_object_set_new(w, "file", json_string(f->name));
    /* What the importer did with it: the deliveries row of this file. */
    const char *state = "unknown", *final = NULL, *reason = NULL;
    bool converted = false;
    sqlite3_reset(dv);
    sqlite3_bind_text(dv, 1, sensor, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(dv, 2, seq);
    sqlite3_bind_int64(dv, 3, (sqlite3_int64)idx + 1);
    if (sqlite3_step(dv) == SQLITE_ROW) {
        state = col_text(dv, 0);
        final = col_text(dv, 1);
        converted = sqlite3_column_int(dv, 2) != 0;
        reason = sqlite3_column_type(dv, 3) != SQLITE_NULL ? col_text(dv, 3) : NULL;
    }
    json_object_set_new(w, "state", json_string(state));
    if (final != NULL && (strcmp(state, "delivered") == 0 || strcmp(state, "staged") == 0)) {
        char path[PATH_MAX * 2];
        if (c->o->ingest_dir != NULL)
            snprintf(path, sizeof path, "%s/%s/%s", c->o->ingest_dir, sensor, final);
        else
            snprintf(path, sizeof path, "%s/%s", sensor, final);
        json_object_set_new(w, "delivered", json_string(path));
    } else {
        json_object_set_new(w, "delivered", json_null());
    }
    json_object_set_new(w, "converted", json_boolean(converted));
    json_object_set_new(w, "reason", reason ? json_string(reason) : json_null());
    set_int(w, "packets", (int64_t)f->info.packets);
    json_object_set_new(w, "received", hrecv ? json_integer(recv) : json_null());
    json_object_set_new(w, "drops_kernel", hk ? json_integer(dk) : json_null());
    json_object_set_new(w, "drops_interface", hi ? json_integer(di) : json_null());
    set_time(w, "start", have_ts, first);
    set_time(w, "end", have_ts, last);
    set_time(w, "window_start", hws, ws);
    set_time(w, "window_end", hwe, we);
    json_object_set_new(w, "rotated_by", json_is_string(rot) ? json_incref(rot) : json_null());
    json_object_set_new(w, "clock_jump_ns", hj ? json_integer(jump) : json_null());
    json_object_set_new(w, "wall_minus_monotonic_ns", hoff ? json_integer(off) : json_null());
    json_object_set_new(w, "read_status", json_string(pf_read_status_name(f->info.read_status)));
    json_object_set_new(w, "bundle_hash", json_string(bhash));
    char hex[2 * PF_HASH_BYTES + 1];
    pf_hex(hex, f->info.blake2b, PF_HASH_BYTES);
    json_object_set_new(w, "blake2b_256", json_string(hex));
    json_array_append(c->windows, w);

    int64_t a = hws ? ws : first, b = hwe ? we : last;
    if ((hk && dk > 0) || (hi && di > 0)) {
        json_t *d = json_object();
        json_object_set_new(d, "sensor", json_string(sensor));
        set_int(d, "seq", seq);
        json_object_set_new(d, "file", json_string(f->name));
        set_time(d, "start", true, a);
        set_time(d, "end", true, b);
        set_int(d, "kernel", hk ? dk : 0);
        set_int(d, "interface", hi ? di : 0);
        json_array_append_new(c->drops, d);
    }
    if (hws && hwe && we > ws) {
        int64_t min = (we - ws) / 10 > SILENT_MIN_NS ? (we - ws) / 10 : SILENT_MIN_NS;
        int64_t spans[2][2] = {{ws, have_ts ? first : we}, {have_ts ? last : we, we}};
        for (int k = 0; k < 2; k++) {
            if (spans[k][1] - spans[k][0] < min || (k == 1 && !have_ts))
                continue;
            json_t *q = json_object();
            json_object_set_new(q, "sensor", json_string(sensor));
            set_int(q, "seq", seq);
            json_object_set_new(q, "file", json_string(f->name));
            set_time(q, "start", true, spans[k][0]);
            set_time(q, "end", true, spans[k][1]);
            json_array_append_new(c->silent, q);
        }
    }
    bool by_clock = json_is_string(rot) && strcmp(json_string_value(rot), "clock") == 0;
    if ((hj && jump != 0) || by_clock) {
        json_t *k = json_object();
        json_object_set_new(k, "sensor", json_string(sensor));
        set_int(k, "seq", seq);
        json_object_set_new(k, "file", json_string(f->name));
        set_time(k, "at", true, hws ? ws : first);
        json_object_set_new(k, "jump_ns", hj ? json_integer(jump) : json_null());
        json_object_set_new(k, "wall_minus_monotonic_ns", hoff ? json_integer(off) : json_null());
        json_object_set_new(k, "rotated_by", json_is_string(rot) ? json_incref(rot) : json_null());
        json_array_append_new(c->clock, k);
    }
    json_decref(w);
}

/* A bundle whose manifest is not at hand: one window from the database. */
static void add_bundle_window(struct ctx *c, const char *sensor, int64_t seq, const char *bhash,
                              sqlite3_stmt *b)
{
    json_t *w = json_object();
    json_object_set_new(w, "sensor", json_string(sensor));
    set_int(w, "seq", seq);
    json_object_set_new(w, "n", json_null());
    json_object_set_new(w, "file", json_null());
    json_object_set_new(w, "state", json_string("unknown"));
    json_object_set_new(w, "delivered", json_null());
    set_int(w, "packets", sqlite3_column_int64(b, 6));
    set_int(w, "drops_total", sqlite3_column_int64(b, 5));
    bool have = sqlite3_column_int64(b, 3) != 0;
    set_time(w, "start", have, sqlite3_column_int64(b, 3));
    set_time(w, "end", have, sqlite3_column_int64(b, 4));
    json_object_set_new(w, "bundle_hash", json_string(bhash));
    json_object_set_new(w, "note", json_string("kept manifest missing or unreadable"));
    json_array_append_new(c->windows, w);
}

static int load_files(struct ctx *c)
{
    /* two branches, each an index range (an OR would read every bundle) */
    sqlite3_stmt *b = prep(c, "SELECT sensor, seq, bundle_hash, first_ts, last_ts, drops, packets "
                              "FROM bundles WHERE sensor = ?1 AND first_ts = 0 UNION ALL "
                              "SELECT sensor, seq, bundle_hash, first_ts, last_ts, drops, packets "
                              "FROM bundles WHERE sensor = ?1 AND first_ts BETWEEN ?4 AND ?3 AND "
                              "last_ts >= ?2");
    sqlite3_stmt *dv = prep(c, "SELECT state, final, converted, reason FROM deliveries "
                               "WHERE sensor = ? AND seq = ? AND n = ?");
    int rc = -1, r;
    if (b == NULL || dv == NULL)
        goto out;
    size_t si;
    json_t *sj;
    r = 0;
    json_array_foreach(c->sensors, si, sj)
    {
        bind_sensor_window(b, c, sj);
        while ((r = next_row(c, b)) == 1) {
            char sensor[PF_NAME_MAX + 1], bhash[65];
            snprintf(sensor, sizeof sensor, "%s", col_text(b, 0));
            int64_t seq = sqlite3_column_int64(b, 1);
            snprintf(bhash, sizeof bhash, "%s", col_text(b, 2));
            pf_manifest *m = load_manifest(c, sensor, seq);
            if (m == NULL) {
                if (sqlite3_column_int64(b, 3) != 0)
                    add_bundle_window(c, sensor, seq, bhash, b);
                continue;
            }
            for (size_t i = 0; i < m->nfiles; i++)
                add_file_window(c, sensor, seq, bhash, m, i, dv);
            pf_manifest_free(m);
        }
        if (r < 0)
            break;
    }
    rc = r < 0 ? -1 : 0;
out:
    sqlite3_finalize(b);
    sqlite3_finalize(dv);
    return rc;
}

/* ------------------------------------------------------- aggregated */

static int64_t bucket_width(int64_t span, unsigned n)
{
    static const int64_t steps[] = {1,     2,     5,     10,    15,     30,    60,
                                    120,   300,   600,   900,   1800,   3600,  7200,
                                    10800, 21600, 43200, 86400, 172800, 604800};
    int64_t want = span / (int64_t)n + 1;
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++)
        if (steps[i] * 1000000000LL >= want)
            return steps[i] * 1000000000LL;
    return (want / 604800000000000LL + 1) * 604800000000000LL;
}

static int load_buckets(struct ctx *c, int64_t width)
{
    /* One index range per sensor, aggregated by SQLite: from the hourly
     * roll-up when buckets are whole hours (a year of one-minute bundles
     * is 8760 rows per sensor), else from the bundles in range. */
    char sql[2048];
    bool hours = c->hourly && width % HOUR_NS == 0;
    snprintf(sql, sizeof sql,
             "SELECT sensor, first_ts / ?2 AS b, SUM(bundles), SUM(files), "
             "SUM(packets), SUM(drops), SUM(covered_ns), MIN(first_ts), MAX(last_ts), "
             "MIN(min_seq), MAX(max_seq) FROM %s WHERE sensor = ?4 AND %s AND last_ts >= ?1 "
             "GROUP BY b",
             hours ? "bundles_hourly" : per_bundle_src(),
             hours ? "hour BETWEEN ?5 / 3600000000000 AND ?3 / 3600000000000"
                   : "first_ts BETWEEN ?5 AND ?3");
    sqlite3_stmt *st = prep(c, sql);
    int r = 0;
    size_t si;
    json_t *sj;
    if (st == NULL)
        return -1;
    json_array_foreach(c->sensors, si, sj)
    {
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, c->from);
        sqlite3_bind_int64(st, 2, width);
        sqlite3_bind_int64(st, 3, c->to);
        sqlite3_bind_text(st, 4, json_string_value(json_object_get(sj, "sensor")), -1,
                          SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 5, lookback(sj, c->from));
        while ((r = next_row(c, st)) == 1) {
            const char *sensor = col_text(st, 0);
            /* buckets sit on multiples of their width since the epoch, as hours do */
            int64_t start = sqlite3_column_int64(st, 1) * width;
            json_t *k = json_object();
            json_object_set_new(k, "sensor", json_string(sensor));
            set_time(k, "start", true, start);
            set_time(k, "end", true, start + width);
            set_int(k, "bundles", sqlite3_column_int64(st, 2));
            set_int(k, "files", sqlite3_column_int64(st, 3));
            set_int(k, "packets", sqlite3_column_int64(st, 4));
            set_int(k, "drops", sqlite3_column_int64(st, 5));
            set_int(k, "covered_ns", sqlite3_column_int64(st, 6));
            set_time(k, "first_packet", true, sqlite3_column_int64(st, 7));
            set_time(k, "last_packet", true, sqlite3_column_int64(st, 8));
            set_int(k, "first_seq", sqlite3_column_int64(st, 9));
            set_int(k, "last_seq", sqlite3_column_int64(st, 10));
            if (sqlite3_column_int64(st, 5) > 0) {
                json_t *d = json_object();
                json_object_set_new(d, "sensor", json_string(sensor));
                json_object_set_new(d, "seq", json_null());
                json_object_set_new(d, "file", json_null());
                set_time(d, "start", true, start);
                set_time(d, "end", true, start + width);
                set_int(d, "total", sqlite3_column_int64(st, 5));
                json_array_append_new(c->drops, d);
            }
            json_array_append_new(c->buckets, k);
        }
        if (r < 0)
            break;
    }
    sqlite3_finalize(st);
    return r < 0 ? -1 : 0;
}

/* ------------------------------------------------------------- gaps */

/* Seqs the rejections table names for this sensor in [lo, hi]. */
static json_t *rejected_in(struct ctx *c, const char *sensor, int64_t lo, int64_t hi)
{
    json_t *a = json_array();
    sqlite3_stmt *st = prep(c, "SELECT DISTINCT seq FROM rejections WHERE sensor = ? AND "
                               "seq BETWEEN ? AND ? ORDER BY seq");
    if (st == NULL)
        return a;
    sqlite3_bind_text(st, 1, sensor, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, lo);
    sqlite3_bind_int64(st, 3, hi);
    while (sqlite3_step(st) == SQLITE_ROW)
        json_array_append_new(a, json_integer(sqlite3_column_int64(st, 0)));
    sqlite3_finalize(st);
    return a;
}

/* What the next bundle's manifest says the sensor deleted for space. */
static json_t *deleted_before(struct ctx *c, const char *sensor, int64_t seq)
{
    json_t *a = json_array();
    pf_manifest *m = load_manifest(c, sensor, seq);
    json_t *g = m != NULL && m->capture != NULL
                    ? json_object_get(m->capture, "gaps_before_this_bundle")
                    : NULL;
    size_t i;
    json_t *v;
    json_array_foreach(g, i, v)
    {
        if (json_is_object(v))
            json_array_append(a, v);
    }
    pf_manifest_free(m);
    return a;
}

struct ranges {
    int64_t (*v)[2];
    size_t n, cap;
};

static int add_range(struct ranges *r, int64_t a, int64_t b)
{
    if (r->n > 0 && r->v[r->n - 1][1] == a - 1) {
        r->v[r->n - 1][1] = b;
        return 0;
    }
    if (r->n == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 16;
        int64_t(*g)[2] = realloc(r->v, cap * sizeof *g);
        if (g == NULL)
            return -1;
        r->v = g;
        r->cap = cap;
    }
    r->v[r->n][0] = a;
    r->v[r->n][1] = b;
    r->n++;
    return 0;
}

static int count_seqs(struct ctx *c, sqlite3_stmt *cnt, const char *sensor, int64_t lo, int64_t hi,
                      int64_t *n)
{
    sqlite3_reset(cnt);
    sqlite3_bind_text(cnt, 1, sensor, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(cnt, 2, lo);
    sqlite3_bind_int64(cnt, 3, hi);
    if (next_row(c, cnt) != 1)
        return -1;
    *n = sqlite3_column_int64(cnt, 0);
    return 0;
}

/* The missing seqs in [lo, hi], of which `present` exist: halves are
 * counted on the primary key's index only, so a sensor without gaps costs
 * nothing and each gap about log2(bundles) small counts, instead of
 * reading every bundle in seq order. */
static int bisect(struct ctx *c, sqlite3_stmt *cnt, const char *sensor, int64_t lo, int64_t hi,
                  int64_t present, struct ranges *out)
{
    if (lo > hi || present >= hi - lo + 1)
        return 0;
    if (present == 0)
        return add_range(out, lo, hi) == 0 ? 0 : pf_err_set(c->e, PF_EENV, "out of memory");
    /* both halves counted: `present` may come from the hourly roll-up */
    int64_t mid = lo + (hi - lo) / 2, left = 0, right = 0;
    if (count_seqs(c, cnt, sensor, lo, mid, &left) != 0 ||
        count_seqs(c, cnt, sensor, mid + 1, hi, &right) != 0 ||
        bisect(c, cnt, sensor, lo, mid, left, out) != 0)
        return -1;
    return bisect(c, cnt, sensor, mid + 1, hi, right, out);
}

struct brow {
    bool found;
    int64_t prev_seq, first_ts, last_ts;
};

static int bundle_row(struct ctx *c, sqlite3_stmt *one, const char *sensor, int64_t seq,
                      struct brow *b)
{
    memset(b, 0, sizeof *b);
    sqlite3_reset(one);
    sqlite3_bind_text(one, 1, sensor, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(one, 2, seq);
    int r = next_row(c, one);
    if (r < 0)
        return -1;
    if (r == 1) {
        b->found = true;
        b->prev_seq = sqlite3_column_int64(one, 0);
        b->first_ts = sqlite3_column_int64(one, 1);
        b->last_ts = sqlite3_column_int64(one, 2);
    }
    return 0;
}

static int sensor_gaps(struct ctx *c, json_t *s, sqlite3_stmt *cnt, sqlite3_stmt *one,
                       sqlite3_stmt *chain)
{
    const char *sensor = json_string_value(json_object_get(s, "sensor"));
    bool h1, h2, h3;
    int64_t n = jget_i64(s, "bundles", &h1), first = jget_i64(s, "first_seq", &h2),
            last = jget_i64(s, "last_seq", &h3);
    struct ranges rg = {0};
    int rc = -1;
    if (!h1 || !h2 || !h3 || n == 0)
        return 0;
    /* Without any chain information, counting starts at the first seq. */
    sqlite3_reset(chain);
    sqlite3_bind_text(chain, 1, sensor, -1, SQLITE_TRANSIENT);
    if (next_row(c, chain) != 1)
        return -1;
    bool chained = sqlite3_column_int(chain, 0) != 0;
    if (chained && first > 1 && add_range(&rg, 1, first - 1) != 0) {
        pf_err_set(c->e, PF_EENV, "out of memory");
        goto out;
    }
    if (bisect(c, cnt, sensor, first, last, n, &rg) != 0)
        goto out;
    for (size_t i = 0; i < rg.n; i++) {
        struct brow before, after;
        int64_t lo = rg.v[i][0], hi = rg.v[i][1] + 1; /* [lo, hi) */
        if (bundle_row(c, one, sensor, lo - 1, &before) != 0 ||
            bundle_row(c, one, sensor, hi, &after) != 0)
            goto out;
        /* The same rule as import --status: numbers after a bundle's
         * prev_seq were declared never written (burnt by a crash); numbers
         * up to it are real bundles that must arrive. */
        if (after.prev_seq != 0 && after.prev_seq + 1 < hi)
            hi = after.prev_seq + 1;
        if (chained && after.found && after.prev_seq == 0)
            hi = lo;
        if (hi <= lo)
            continue;
        set_int(s, "missing", json_integer_value(json_object_get(s, "missing")) + (hi - lo));
        bool ha = before.found && before.last_ts != 0, hb = after.found && after.first_ts != 0;
        if (!overlaps(c, ha, before.last_ts, hb, after.first_ts))
            continue;
        json_t *g = json_object();
        json_object_set_new(g, "sensor", json_string(sensor));
        set_int(g, "first_missing", lo);
        set_int(g, "last_missing", hi - 1);
        set_int(g, "count", hi - lo);
        json_object_set_new(g, "after_seq", before.found ? json_integer(lo - 1) : json_null());
        set_int(g, "before_seq", rg.v[i][1] + 1);
        set_time(g, "start", ha, before.last_ts);
        set_time(g, "end", hb, after.first_ts);
        json_object_set_new(g, "rejected_seqs", rejected_in(c, sensor, lo, hi - 1));
        json_object_set_new(g, "deleted_on_sensor", deleted_before(c, sensor, rg.v[i][1] + 1));
        json_array_append_new(c->gaps, g);
    }
    rc = 0;
out:
    free(rg.v);
    return rc;
}

static int load_gaps(struct ctx *c)
{
    sqlite3_stmt *cnt = prep(c, "SELECT COUNT(*) FROM bundles WHERE sensor = ? AND "
                                "seq BETWEEN ? AND ?");
    sqlite3_stmt *one = prep(c, "SELECT prev_seq, first_ts, last_ts FROM bundles "
                                "WHERE sensor = ? AND seq = ?");
    sqlite3_stmt *chain = prep(c, "SELECT EXISTS (SELECT 1 FROM bundles WHERE sensor = ? AND "
                                  "(prev_seq <> 0 OR seq = 1))");
    int rc = -1;
    size_t i;
    json_t *s;
    if (cnt == NULL || one == NULL || chain == NULL)
        goto out;
    json_array_foreach(c->sensors, i, s)
    {
        if (sensor_gaps(c, s, cnt, one, chain) != 0)
            goto out;
    }
    rc = 0;
out:
    sqlite3_finalize(cnt);
    sqlite3_finalize(one);
    sqlite3_finalize(chain);
    return rc;
}

/* -------------------------------------------------- rejected, held */

/* Bundle names end in the first packet's time (-YYYYmmddTHHMMSSZ): for a
 * rejected bundle that is all there is, and it is the sender's claim. */
static bool name_time(const char *path, int64_t *ns)
{
    const char *base = pf_basename(path), *dot = strstr(base, ".pcapferry");
    struct tm tm;
    if (dot == NULL || dot - base < 17 || dot[-17] != '-')
        return false;
    memset(&tm, 0, sizeof tm);
    const char *end = strptime(dot - 16, "%Y%m%dT%H%M%SZ", &tm);
    if (end != dot)
        return false;
    *ns = (int64_t)timegm(&tm) * 1000000000LL;
    return true;
}

static int load_rejected(struct ctx *c)
{
    sqlite3_stmt *st = prep(c, "SELECT file_hash, sensor, seq, reason, equivocation, "
                               "quarantined_as, at FROM rejections ORDER BY at, file_hash");
    int r;
    if (st == NULL)
        return -1;
    while ((r = next_row(c, st)) == 1) {
        bool has_sensor = sqlite3_column_type(st, 1) != SQLITE_NULL;
        const char *sensor = has_sensor ? col_text(st, 1) : NULL;
        if (c->o->nsensors > 0 && (sensor == NULL || !wanted(c, sensor)))
            continue;
        const char *qa = sqlite3_column_type(st, 5) != SQLITE_NULL ? col_text(st, 5) : NULL;
        int64_t t = 0;
        bool have_t = qa != NULL && name_time(qa, &t);
        if (have_t && !overlaps(c, true, t, true, t))
            continue;
        json_t *j = json_object();
        json_object_set_new(j, "sensor", sensor ? json_string(sensor) : json_null());
        json_object_set_new(j, "seq",
                            sensor && sqlite3_column_int64(st, 2) > 0
                                ? json_integer(sqlite3_column_int64(st, 2))
                                : json_null());
        json_object_set_new(j, "file_hash", json_string(col_text(st, 0)));
        json_object_set_new(j, "reason", json_string(col_text(st, 3)));
        json_object_set_new(j, "equivocation", json_boolean(sqlite3_column_int(st, 4) != 0));
        json_object_set_new(j, "quarantined_as", qa ? json_string(qa) : json_null());
        set_time(j, "rejected_at", true, sqlite3_column_int64(st, 6) * 1000000000LL);
        set_time(j, "claimed_start", have_t, t);
        json_array_append_new(c->rejected, j);
        json_t *s = sensor ? find_sensor(c, sensor) : NULL;
        if (s != NULL)
            set_int(s, "rejected", json_integer_value(json_object_get(s, "rejected")) + 1);
    }
    sqlite3_finalize(st);
    return r < 0 ? -1 : 0;
}

static int load_held(struct ctx *c)
{
    sqlite3_stmt *st =
        prep(c, "SELECT d.sensor, d.seq, d.n, d.name, d.reason, b.first_ts, b.last_ts, d.blake2b "
                "FROM deliveries d JOIN bundles b ON b.sensor = d.sensor AND b.seq = d.seq "
                "WHERE d.state = 'held' ORDER BY d.sensor, d.seq");
    int r;
    if (st == NULL)
        return -1;
    while ((r = next_row(c, st)) == 1) {
        const char *sensor = col_text(st, 0);
        if (!wanted(c, sensor))
            continue;
        int64_t seq = sqlite3_column_int64(st, 1), n = sqlite3_column_int64(st, 2);
        int64_t a = sqlite3_column_int64(st, 5), b = sqlite3_column_int64(st, 6);
        json_t *s = find_sensor(c, sensor);
        if (s != NULL)
            set_int(s, "held", json_integer_value(json_object_get(s, "held")) + 1);
        if (a != 0 && !overlaps(c, true, a, true, b))
            continue;
        char path[PATH_MAX * 2];
        snprintf(path, sizeof path, "%s/held/%s/%.64s-%010" PRId64 "-%" PRId64 "-%.150s",
                 c->quarantine, sensor, sensor, seq, n, col_text(st, 3));
        json_t *j = json_object();
        json_object_set_new(j, "sensor", json_string(sensor));
        set_int(j, "seq", seq);
        set_int(j, "n", n);
        json_object_set_new(j, "file", json_string(col_text(st, 3)));
        json_object_set_new(j, "reason", json_string(col_text(st, 4)));
        json_object_set_new(j, "held_as", json_string(path));
        json_object_set_new(j, "blake2b_256", json_string(col_text(st, 7)));
        set_time(j, "start", a != 0, a);
        set_time(j, "end", a != 0, b);
        json_array_append_new(c->held, j);
    }
    sqlite3_finalize(st);
    return r < 0 ? -1 : 0;
}

/* ------------------------------------------------------------- build */

int pf_report_build(const pf_report_opts *o, json_t **out, pf_err *e)
{
    struct ctx c = {.o = o, .e = e};
    json_t *doc = NULL;
    int rc = -1;
    int64_t n = 0;
    *out = NULL;

    if (pf_path_join(c.dbpath, sizeof c.dbpath, o->state_dir, "pcapferry.db", e) != 0)
        return -1;
    if (o->quarantine_dir != NULL)
        snprintf(c.quarantine, sizeof c.quarantine, "%s", o->quarantine_dir);
    else if (snprintf(c.quarantine, sizeof c.quarantine, "%s/quarantine", o->state_dir) >=
             (int)sizeof c.quarantine)
        return pf_err_set(e, PF_EUSAGE, "%s: path too long", o->state_dir);
    if (access(c.dbpath, R_OK) != 0)
        return pf_err_sys(e, errno, "%s: no import state here (no pcapferry.db)", o->state_dir);
    /* Read-only: the report never changes the importer's state. */
    if (sqlite3_open_v2(c.dbpath, &c.db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        pf_err_set(e, PF_EENV, "%s: cannot open state database: %s", c.dbpath,
                   c.db ? sqlite3_errmsg(c.db) : "out of memory");
        goto out;
    }
    sqlite3_busy_timeout(c.db, 10000);
    c.hourly = sqlite3_table_column_metadata(c.db, NULL, "bundles_hourly", "max_span_ns", NULL,
                                             NULL, NULL, NULL, NULL) == SQLITE_OK;
    doc = json_object();
    c.sensors = json_array();
    c.windows = json_array();
    c.buckets = json_array();
    c.drops = json_array();
    c.gaps = json_array();
    c.silent = json_array();
    c.clock = json_array();
    c.rejected = json_array();
    c.held = json_array();
    if (doc == NULL || c.held == NULL) {
        pf_err_set(e, PF_EENV, "out of memory");
        goto out;
    }
    /* One read transaction: every query sees the same state even while an
     * import commits. */
    if (sqlite3_exec(c.db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK || load_sensors(&c) != 0 ||
        choose_range(&c) != 0 ||
        count_in_range(&c, o->detail_max ? o->detail_max : PF_REPORT_DETAIL_MAX, &n) != 0)
        goto out;
    size_t detail_max = o->detail_max ? o->detail_max : PF_REPORT_DETAIL_MAX;
    bool files = (size_t)n <= detail_max;
    int64_t width =
        files ? 0 : bucket_width(c.to - c.from, o->buckets ? o->buckets : PF_REPORT_BUCKETS);
    if ((files ? load_files(&c) : load_buckets(&c, width)) != 0 || load_gaps(&c) != 0 ||
        load_rejected(&c) != 0 || load_held(&c) != 0)
        goto out;

    json_object_set_new(doc, "type", json_string("pcapferry-report"));
    set_int(doc, "version", PF_REPORT_VERSION);
    set_time(doc, "generated", true, o->now_ns);
    json_object_set_new(doc, "state", json_string(o->state_dir));
    json_object_set_new(doc, "ingest", o->ingest_dir ? json_string(o->ingest_dir) : json_null());
    set_time(doc, "from", true, c.from);
    set_time(doc, "to", true, c.to);
    json_object_set_new(doc, "mode", json_string(files ? "files" : "buckets"));
    set_int(doc, "bundles_in_range", n);
    set_int(doc, "bucket_ns", width);
    json_object_set_new(doc, "sensors", c.sensors);
    json_object_set_new(doc, "windows", c.windows);
    json_object_set_new(doc, "buckets", c.buckets);
    json_object_set_new(doc, "drops", c.drops);
    json_object_set_new(doc, "gaps", c.gaps);
    json_object_set_new(doc, "silent", c.silent);
    json_object_set_new(doc, "clock", c.clock);
    json_object_set_new(doc, "rejected", c.rejected);
    json_object_set_new(doc, "held", c.held);
    c.sensors = c.windows = c.buckets = c.drops = c.gaps = c.silent = c.clock = c.rejected =
        c.held = NULL;
    *out = doc;
    doc = NULL;
    rc = 0;
out:
    if (c.db != NULL) {
        sqlite3_exec(c.db, "COMMIT", NULL, NULL, NULL);
        sqlite3_close(c.db);
    }
    json_decref(doc);
    json_decref(c.sensors);
    json_decref(c.windows);
    json_decref(c.buckets);
    json_decref(c.drops);
    json_decref(c.gaps);
    json_decref(c.silent);
    json_decref(c.clock);
    json_decref(c.rejected);
    json_decref(c.held);
    return rc;
}

bool pf_report_parse_time(const char *s, int64_t *ns)
{
    static const char *const formats[] = {"%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S",
                                          "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%d"};
    uint64_t u;
    if (s[0] == '@')
        return pf_parse_u64(s + 1, &u) && u < (uint64_t)INT64_MAX / 1000000000u &&
               (*ns = (int64_t)u * 1000000000LL, true);
    for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++) {
        struct tm tm;
        memset(&tm, 0, sizeof tm);
        const char *end = strptime(s, formats[i], &tm);
        if (end == NULL)
            continue;
        int64_t frac = 0;
        if (*end == '.' && i < 2) {
            int digits = 0;
            for (end++; isdigit((unsigned char)*end); end++, digits++)
                if (digits < 9)
                    frac = frac * 10 + (*end - '0');
            if (digits == 0)
                continue;
            for (; digits < 9; digits++)
                frac *= 10;
        }
        if (*end == 'Z')
            end++;
        if (*end != '\0')
            continue;
        *ns = (int64_t)timegm(&tm) * 1000000000LL + frac;
        return true;
    }
    return false;
}

/* ----------------------------------------------------------- locate */

static bool delivered_key(const char *base, char *sensor, int64_t *seq, int64_t *n)
{
    for (const char *p = strchr(base, '-'); p != NULL; p = strchr(p + 1, '-')) {
        size_t len = (size_t)(p - base);
        bool digits = true;
        for (int i = 1; i <= 10 && digits; i++)
            digits = isdigit((unsigned char)p[i]) != 0;
        if (!digits || p[11] != '-' || !isdigit((unsigned char)p[12]) || len == 0 ||
            len > PF_NAME_MAX)
            continue;
        memcpy(sensor, base, len);
        sensor[len] = '\0';
        *seq = strtoll(p + 1, NULL, 10);
        *n = strtoll(p + 12, NULL, 10);
        return true;
    }
    return false;
}

int pf_report_locate(const char *state_dir, const char *file, const char *hash_hex, pf_located *out,
                     pf_err *e)
{
    struct ctx c = {.e = e};
    sqlite3_stmt *st = NULL;
    int rc = -1, r = 0;
    memset(out, 0, sizeof *out);
    if (pf_path_join(c.dbpath, sizeof c.dbpath, state_dir, "pcapferry.db", e) != 0)
        return -1;
    if (access(c.dbpath, R_OK) != 0)
        return pf_err_sys(e, errno, "%s: no import state here (no pcapferry.db)", state_dir);
    if (sqlite3_open_v2(c.dbpath, &c.db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        pf_err_set(e, PF_EENV, "%s: cannot open state database: %s", c.dbpath,
                   c.db ? sqlite3_errmsg(c.db) : "out of memory");
        goto out;
    }
    sqlite3_busy_timeout(c.db, 10000);
    /* The delivered name is unique (sensor, seq and n are in it); a copy
     * renamed by whoever passed it on is found by its hash instead, which
     * only works for files that were not converted. */
    for (int pass = 0; pass < 2 && r == 0; pass++) {
        if (pass == 1 && hash_hex == NULL)
            break;
        sqlite3_finalize(st);
        st = prep(&c, pass == 0
                          ? "SELECT d.sensor, d.seq, d.n, d.converted, d.state, b.bundle_hash, "
                            "b.header_hash, b.source, b.imported_at FROM deliveries d JOIN "
                            "bundles b ON b.sensor = d.sensor AND b.seq = d.seq WHERE "
                            "d.sensor = ?2 AND d.seq = ?3 AND d.n = ?4 AND d.final = ?1"
                          : "SELECT d.sensor, d.seq, d.n, d.converted, d.state, b.bundle_hash, "
                            "b.header_hash, b.source, b.imported_at FROM deliveries d JOIN "
                            "bundles b ON b.sensor = d.sensor AND b.seq = d.seq "
                            "WHERE d.blake2b = ? AND d.converted = 0");
        if (st == NULL)
            goto out;
        sqlite3_bind_text(st, 1, pass == 0 ? pf_basename(file) : hash_hex, -1, SQLITE_TRANSIENT);
        if (pass == 0) {
            /* The delivered name carries its key: <sensor>-<seq, 10
             * digits>-<n>-<time>.pcap, so the lookup is one primary-key
             * probe, not a scan of every delivery. */
            char sensor[PF_NAME_MAX + 1];
            int64_t seq = 0, n = 0;
            if (!delivered_key(pf_basename(file), sensor, &seq, &n))
                continue;
            sqlite3_bind_text(st, 2, sensor, -1, SQLITE_TRANSIENT);
            sqlite3_bind_int64(st, 3, seq);
            sqlite3_bind_int64(st, 4, n);
        }
        r = next_row(&c, st);
        if (r < 0)
            goto out;
    }
    if (r == 0) {
        rc = 1;
        goto out;
    }
    snprintf(out->sensor, sizeof out->sensor, "%s", col_text(st, 0));
    out->seq = sqlite3_column_int64(st, 1);
    out->n = sqlite3_column_int64(st, 2);
    out->converted = sqlite3_column_int(st, 3) != 0;
    snprintf(out->state, sizeof out->state, "%s", col_text(st, 4));
    snprintf(out->bundle_hash, sizeof out->bundle_hash, "%s", col_text(st, 5));
    snprintf(out->header_hash, sizeof out->header_hash, "%s", col_text(st, 6));
    snprintf(out->source, sizeof out->source, "%s", col_text(st, 7));
    out->imported_at = sqlite3_column_int64(st, 8);
    const char *ext[] = {"manifest.json", "manifest.sig", "header"};
    char *dst[] = {out->manifest, out->sig, out->header};
    for (int i = 0; i < 3; i++)
        if (snprintf(dst[i], sizeof out->manifest, "%s/manifests/%s/%s-%010" PRId64 ".%s",
                     state_dir, out->sensor, out->sensor, out->seq,
                     ext[i]) >= (int)sizeof out->manifest) {
            pf_err_set(e, PF_EUSAGE, "%s: path too long", state_dir);
            goto out;
        }
    rc = 0;
out:
    sqlite3_finalize(st);
    sqlite3_close(c.db);
    return rc;
}
