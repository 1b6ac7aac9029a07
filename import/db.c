#include "import/db.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fsutil.h"

/* Rows are keyed by what the sensor signed: (sensor, seq) for bundles, and
 * the file hash for rejected bundles, so re-running over the same USB
 * stick finds everything again. */
static const char schema[] =
    "CREATE TABLE IF NOT EXISTS bundles ("
    " sensor TEXT NOT NULL, seq INTEGER NOT NULL,"
    " header_hash TEXT NOT NULL, bundle_hash TEXT NOT NULL,"
    " prev_seq INTEGER NOT NULL, prev_hash TEXT,"
    " status TEXT NOT NULL CHECK (status IN ('delivering', 'committed')),"
    " source TEXT, imported_at INTEGER NOT NULL,"
    " files INTEGER NOT NULL, packets INTEGER NOT NULL, bytes INTEGER NOT NULL,"
    " first_ts INTEGER, last_ts INTEGER, drops INTEGER NOT NULL DEFAULT 0,"
    " PRIMARY KEY (sensor, seq));"
    "CREATE TABLE IF NOT EXISTS deliveries ("
    " sensor TEXT NOT NULL, seq INTEGER NOT NULL, n INTEGER NOT NULL,"
    " name TEXT NOT NULL, stage TEXT NOT NULL, final TEXT NOT NULL,"
    " state TEXT NOT NULL CHECK (state IN ('staged', 'delivered', 'held', 'empty')),"
    " blake2b TEXT, converted INTEGER NOT NULL DEFAULT 0, reason TEXT,"
    " exec_status INTEGER, exec_attempts INTEGER NOT NULL DEFAULT 0,"
    " PRIMARY KEY (sensor, seq, n));"
    /* A row here: the announcement of that delivery has begun (committed
     * before the open/close) and is not yet recorded as done. */
    "CREATE TABLE IF NOT EXISTS announcing ("
    " sensor TEXT NOT NULL, seq INTEGER NOT NULL, n INTEGER NOT NULL,"
    " PRIMARY KEY (sensor, seq, n));"
    "CREATE TABLE IF NOT EXISTS rejections ("
    " file_hash TEXT PRIMARY KEY, sensor TEXT, seq INTEGER, reason TEXT NOT NULL,"
    " equivocation INTEGER NOT NULL DEFAULT 0, quarantined_as TEXT, at INTEGER NOT NULL);"
    /* For pcapferry report (docs/REPORT.md): an hourly roll-up of the
     * bundles, kept by a trigger, so a year of one-minute bundles (ten
     * million rows) is drawn from 175,000 rows; the first open of an older
     * state fills it once. An index on the time range for the zoomed-in
     * queries, and one that finds held files without reading every
     * delivery. Bundles rows are never deleted, so no delete trigger. */
    "CREATE TABLE IF NOT EXISTS bundles_hourly ("
    " sensor TEXT NOT NULL, hour INTEGER NOT NULL, bundles INTEGER NOT NULL,"
    " files INTEGER NOT NULL, packets INTEGER NOT NULL, bytes INTEGER NOT NULL,"
    " drops INTEGER NOT NULL, covered_ns INTEGER NOT NULL, first_ts INTEGER NOT NULL,"
    " last_ts INTEGER NOT NULL, min_seq INTEGER NOT NULL, max_seq INTEGER NOT NULL,"
    " max_span_ns INTEGER NOT NULL, PRIMARY KEY (sensor, hour));"
    "INSERT INTO bundles_hourly SELECT sensor, first_ts / 3600000000000, COUNT(*), SUM(files),"
    " SUM(packets), SUM(bytes), SUM(drops), SUM(last_ts - first_ts), MIN(first_ts), MAX(last_ts),"
    " MIN(seq), MAX(seq), MAX(last_ts - first_ts) FROM bundles WHERE first_ts <> 0 AND NOT EXISTS "
    "(SELECT 1 FROM"
    " bundles_hourly) AND NOT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'trigger' AND"
    " name = 'bundles_hourly_add') GROUP BY 1, 2;"
    "CREATE TRIGGER IF NOT EXISTS bundles_hourly_add AFTER INSERT ON bundles"
    " WHEN NEW.first_ts <> 0 BEGIN"
    " INSERT INTO bundles_hourly VALUES (NEW.sensor, NEW.first_ts / 3600000000000, 1, NEW.files,"
    " NEW.packets, NEW.bytes, NEW.drops, NEW.last_ts - NEW.first_ts, NEW.first_ts, NEW.last_ts,"
    " NEW.seq, NEW.seq, NEW.last_ts - NEW.first_ts) ON CONFLICT (sensor, hour) DO UPDATE SET "
    "bundles = bundles + 1,"
    " files = files + excluded.files, packets = packets + excluded.packets,"
    " bytes = bytes + excluded.bytes, drops = drops + excluded.drops,"
    " covered_ns = covered_ns + excluded.covered_ns, first_ts = MIN(first_ts, excluded.first_ts),"
    " last_ts = MAX(last_ts, excluded.last_ts), min_seq = MIN(min_seq, excluded.min_seq),"
    " max_seq = MAX(max_seq, excluded.max_seq),"
    " max_span_ns = MAX(max_span_ns, excluded.max_span_ns); END;"
    "CREATE INDEX IF NOT EXISTS bundles_time ON bundles (sensor, first_ts, last_ts);"
    "CREATE INDEX IF NOT EXISTS deliveries_held ON deliveries (sensor, seq) WHERE state = 'held';";

static int db_error(pf_db *db, pf_err *e, const char *sql);

/* Columns added after 0.1.0, with what they record. A state directory
 * written by 0.1.0 gets them on its first open (rows already there keep
 * NULL or the default: nothing was trimmed or split then). */
static const struct {
    const char *table, *column, *decl;
} added_columns[] = {
    /* packets in the delivered file, counted from its bytes */
    {"deliveries", "packets", "INTEGER"},
    /* a cut-off last record: bytes and records left out of the delivered file */
    {"deliveries", "trim_bytes", "INTEGER NOT NULL DEFAULT 0"},
    {"deliveries", "trim_packets", "INTEGER NOT NULL DEFAULT 0"},
    /* a split pcapng: the interface (in file order, from 0) this file holds */
    {"deliveries", "interface", "INTEGER"},
    /* the raw 32-bit link-type field of the delivered file */
    {"deliveries", "link_type", "INTEGER"},
    /* where the signed original was held when what was delivered differs */
    {"deliveries", "evidence", "TEXT"},
};

static int has_column(pf_db *db, const char *table, const char *column)
{
    char sql[128];
    sqlite3_stmt *st = NULL;
    int found = 0;
    snprintf(sql, sizeof sql, "PRAGMA table_info(%s)", table);
    if (sqlite3_prepare_v2(db->sql, sql, -1, &st, NULL) != SQLITE_OK)
        return -1;
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        const unsigned char *name = sqlite3_column_text(st, 1);
        if (name != NULL && strcmp((const char *)name, column) == 0)
            found = 1;
    }
    sqlite3_finalize(st);
    return r == SQLITE_DONE ? found : -1;
}

static int migrate(pf_db *db, pf_err *e)
{
    for (size_t i = 0; i < sizeof added_columns / sizeof added_columns[0]; i++) {
        char sql[256];
        int h = has_column(db, added_columns[i].table, added_columns[i].column);
        if (h < 0)
            return db_error(db, e, "PRAGMA table_info");
        if (h == 1)
            continue;
        snprintf(sql, sizeof sql, "ALTER TABLE %s ADD COLUMN %s %s", added_columns[i].table,
                 added_columns[i].column, added_columns[i].decl);
        if (sqlite3_exec(db->sql, sql, NULL, NULL, NULL) != SQLITE_OK)
            return db_error(db, e, sql);
    }
    return 0;
}

int pf_db_open(pf_db *db, const char *state_dir, pf_err *e)
{
    memset(db, 0, sizeof *db);
    if (pf_path_join(db->path, sizeof db->path, state_dir, "pcapferry.db", e) != 0)
        return -1;
    if (sqlite3_open_v2(db->path, &db->sql, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK) {
        pf_err_set(e, PF_EENV, "%s: cannot open state database: %s", db->path,
                   db->sql ? sqlite3_errmsg(db->sql) : "out of memory");
        pf_db_close(db);
        return -1;
    }
    sqlite3_busy_timeout(db->sql, 10000);
    /* WAL + FULL: a committed bundle survives a power cut. */
    if (pf_db_exec(db, e, "PRAGMA journal_mode=WAL", "") != 0 ||
        pf_db_exec(db, e, "PRAGMA synchronous=FULL", "") != 0 ||
        sqlite3_exec(db->sql, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_exec(db->sql, schema, NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_exec(db->sql, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        db_error(db, e, "the schema");
        pf_db_close(db);
        return -1;
    }
    if (migrate(db, e) != 0) {
        pf_db_close(db);
        return -1;
    }
    return 0;
}

void pf_db_close(pf_db *db)
{
    if (db == NULL || db->sql == NULL)
        return;
    for (size_t i = 0; i < db->ncache; i++) {
        sqlite3_finalize(db->cache[i].st);
        free(db->cache[i].sql);
    }
    db->ncache = 0;
    sqlite3_close(db->sql);
    db->sql = NULL;
}

/* A full disk shows up as SQLITE_FULL, or, when the database is opened
 * or its WAL index cannot grow, as a "disk I/O error" whose system errno is
 * ENOSPC (faults.sh fills the state directory). Either way the caller
 * retries later (exit 75), and the message says the disk is full. */
static int db_error(pf_db *db, pf_err *e, const char *sql)
{
    int xc = sqlite3_extended_errcode(db->sql), se = sqlite3_system_errno(db->sql);
    bool full = (xc & 0xff) == SQLITE_FULL || se == ENOSPC || se == EDQUOT;
    pf_err_set(e, full ? PF_EINCOMPLETE : PF_EENV, "%s: %s%s%s%s%s%.80s%s", db->path,
               sqlite3_errmsg(db->sql), se != 0 ? " (" : "", se != 0 ? strerror(se) : "",
               se != 0 ? ")" : "", sql != NULL ? " (in: " : "", sql != NULL ? sql : "",
               sql != NULL ? ")" : "");
    if (full && e != NULL)
        e->sys_errno = se != 0 ? se : ENOSPC;
    return -1;
}

static void release(pf_db *db, sqlite3_stmt *st, long slot)
{
    if (slot < 0) {
        sqlite3_finalize(st);
        return;
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    db->cache[slot].busy = false;
}

/* *slot: the cache entry *st came from, or -1 (finalize it after use) */
static int prepare(pf_db *db, pf_err *e, sqlite3_stmt **st, long *slot, const char *sql,
                   const char *fmt, va_list ap)
{
    *slot = -1;
    *st = NULL;
    for (size_t i = 0; i < db->ncache; i++)
        if (!db->cache[i].busy && strcmp(db->cache[i].sql, sql) == 0) {
            *st = db->cache[i].st;
            *slot = (long)i;
            db->cache[i].busy = true;
            break;
        }
    if (*st == NULL) {
        bool keep = db->ncache < PF_DB_STMT_CACHE;
        if (sqlite3_prepare_v3(db->sql, sql, -1, keep ? SQLITE_PREPARE_PERSISTENT : 0, st, NULL) !=
            SQLITE_OK)
            return db_error(db, e, sql);
        char *copy = keep ? strdup(sql) : NULL;
        if (copy != NULL) {
            db->cache[db->ncache].sql = copy;
            db->cache[db->ncache].st = *st;
            db->cache[db->ncache].busy = true;
            *slot = (long)db->ncache++;
        }
    }
    for (int i = 0; fmt[i] != '\0'; i++) {
        int rc = SQLITE_OK;
        switch (fmt[i]) {
        case 's': {
            const char *s = va_arg(ap, const char *);
            rc = s ? sqlite3_bind_text(*st, i + 1, s, -1, SQLITE_TRANSIENT)
                   : sqlite3_bind_null(*st, i + 1);
            break;
        }
        case 'i':
            rc = sqlite3_bind_int64(*st, i + 1, (sqlite3_int64)va_arg(ap, int64_t));
            break;
        case 'u':
            rc = sqlite3_bind_int64(*st, i + 1, (sqlite3_int64)va_arg(ap, uint64_t));
            break;
        default:
            rc = SQLITE_MISUSE;
        }
        if (rc != SQLITE_OK) {
            release(db, *st, *slot);
            *st = NULL;
            return pf_err_set(e, PF_EENV, "%s: cannot bind parameter %d", db->path, i + 1);
        }
    }
    return 0;
}

static int run(pf_db *db, pf_err *e, pf_db_row_fn row, void *ctx, const char *sql, const char *fmt,
               va_list ap)
{
    sqlite3_stmt *st = NULL;
    long slot = -1;
    int rc = -1;
    if (prepare(db, e, &st, &slot, sql, fmt, ap) != 0)
        return -1;
    for (;;) {
        int r = sqlite3_step(st);
        if (r == SQLITE_DONE)
            break;
        if (r == SQLITE_ROW) {
            if (row != NULL && row(ctx, st, e) != 0)
                goto out;
            continue;
        }
        db_error(db, e, NULL);
        goto out;
    }
    rc = 0;
out:
    release(db, st, slot);
    return rc;
}

int pf_db_exec(pf_db *db, pf_err *e, const char *sql, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = run(db, e, NULL, NULL, sql, fmt, ap);
    va_end(ap);
    return rc;
}

int pf_db_query(pf_db *db, pf_err *e, pf_db_row_fn row, void *ctx, const char *sql, const char *fmt,
                ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = run(db, e, row, ctx, sql, fmt, ap);
    va_end(ap);
    return rc;
}

int pf_db_begin(pf_db *db, pf_err *e)
{
    return pf_db_exec(db, e, "BEGIN IMMEDIATE", "");
}

int pf_db_commit(pf_db *db, pf_err *e)
{
    return pf_db_exec(db, e, "COMMIT", "");
}

void pf_db_rollback(pf_db *db)
{
    sqlite3_exec(db->sql, "ROLLBACK", NULL, NULL, NULL);
}

const char *pf_db_text(sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    return t != NULL ? (const char *)t : "";
}
