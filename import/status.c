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

/* ---------- gaps and status ---------- */

struct seqrow {
    char sensor[PF_NAME_MAX + 1];
    uint64_t seq, prev_seq;
};

struct seqlist {
    struct seqrow *v;
    size_t n, cap;
};

static int seq_row(void *ctx, sqlite3_stmt *st, pf_err *e)
{
    struct seqlist *l = ctx;
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        struct seqrow *g = realloc(l->v, cap * sizeof *g);
        if (g == NULL)
            return pf_err_set(e, PF_EENV, "out of memory");
        l->v = g;
        l->cap = cap;
    }
    struct seqrow *r = &l->v[l->n++];
    snprintf(r->sensor, sizeof r->sensor, "%s", pf_db_text(st, 0));
    r->seq = (uint64_t)sqlite3_column_int64(st, 1);
    r->prev_seq = (uint64_t)sqlite3_column_int64(st, 2);
    return 0;
}

/* Missing seqs of one sensor's rows v[0..n) (sorted by seq): numbers below
 * the highest seq that no bundle filled and no bundle declared abandoned
 * (a bundle whose prev_seq skips numbers says they were never written). */
static uint64_t sensor_gaps(const struct seqrow *v, size_t n, char *list, size_t cap)
{
    uint64_t missing = 0, expect = 1;
    size_t used = 0;
    if (list != NULL && cap > 0)
        list[0] = '\0';
    /* Without any chain information, counting starts at the first seq. */
    bool chained = false;
    for (size_t i = 0; i < n; i++)
        chained |= v[i].prev_seq != 0 || v[i].seq == 1;
    if (!chained && n > 0)
        expect = v[0].seq;
    for (size_t i = 0; i < n; i++) {
        uint64_t lo = expect, hi = v[i].seq; /* [lo, hi) are candidates */
        /* Numbers after prev_seq were declared never written (a crash or a
         * failed write burnt them); numbers up to prev_seq are real bundles
         * and must arrive. (This used to count the declared ones as gaps
         * whenever prev_seq was the bundle just before: faults.sh, a full
         * outbox burning seqs.) */
        if (v[i].prev_seq != 0 && v[i].prev_seq + 1 < hi)
            hi = v[i].prev_seq + 1;
        /* in a chain, prev_seq 0 says no bundle was completed before */
        if (chained && v[i].prev_seq == 0)
            hi = lo;
        if (hi > lo) {
            missing += hi - lo;
            if (list != NULL && used + 48 < cap)
                used += (size_t)snprintf(list + used, cap - used,
                                         hi - lo == 1 ? "%s%" PRIu64 : "%s%" PRIu64 "-%" PRIu64,
                                         used ? ", " : "", lo, hi - 1);
        }
        expect = v[i].seq + 1;
    }
    return missing;
}

int pf_importer_count_gaps(pf_importer *imp, pf_import_counts *c, pf_err *e)
{
    struct seqlist l = {0};
    if (pf_db_query(&imp->db, e, seq_row, &l,
                    "SELECT sensor, seq, prev_seq FROM bundles ORDER BY sensor, seq", "") != 0) {
        free(l.v);
        return -1;
    }
    c->gaps = 0;
    for (size_t i = 0; i < l.n;) {
        size_t j = i;
        while (j < l.n && strcmp(l.v[j].sensor, l.v[i].sensor) == 0)
            j++;
        c->gaps += sensor_gaps(&l.v[i], j - i, NULL, 0);
        i = j;
    }
    free(l.v);
    return 0;
}

struct status_ctx {
    pf_sensor_status *v;
    size_t n, cap;
};

static pf_sensor_status *status_for(struct status_ctx *s, const char *sensor, pf_err *e)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i].sensor, sensor) == 0)
            return &s->v[i];
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 8;
        pf_sensor_status *g = realloc(s->v, cap * sizeof *g);
        if (g == NULL) {
            pf_err_set(e, PF_EENV, "out of memory");
            return NULL;
        }
        s->v = g;
        s->cap = cap;
    }
    pf_sensor_status *r = &s->v[s->n++];
    memset(r, 0, sizeof *r);
    snprintf(r->sensor, sizeof r->sensor, "%s", sensor);
    return r;
}

static int status_bundles(void *ctx, sqlite3_stmt *st, pf_err *e)
{
    pf_sensor_status *r = status_for(ctx, pf_db_text(st, 0), e);
    if (r == NULL)
        return -1;
    r->last_seq = (uint64_t)sqlite3_column_int64(st, 1);
    r->bundles = (uint64_t)sqlite3_column_int64(st, 2);
    r->files = (uint64_t)sqlite3_column_int64(st, 3);
    r->packets = (uint64_t)sqlite3_column_int64(st, 4);
    r->bytes = (uint64_t)sqlite3_column_int64(st, 5);
    r->first_ts = sqlite3_column_int64(st, 6);
    r->last_ts = sqlite3_column_int64(st, 7);
    r->drops = (uint64_t)sqlite3_column_int64(st, 8);
    return 0;
}

static int status_counts(void *ctx, sqlite3_stmt *st, pf_err *e)
{
    pf_sensor_status *r = status_for(ctx, pf_db_text(st, 0), e);
    if (r == NULL)
        return -1;
    if (sqlite3_column_int(st, 2) == 0)
        r->quarantined = (uint64_t)sqlite3_column_int64(st, 1);
    else
        r->held = (uint64_t)sqlite3_column_int64(st, 1);
    return 0;
}

int pf_import_status(const char *state_dir, pf_sensor_status **out, size_t *n, pf_err *e)
{
    pf_db db;
    struct status_ctx s = {0};
    struct seqlist l = {0};
    char path[PATH_MAX];
    int rc = -1;
    *out = NULL;
    *n = 0;
    if (pf_path_join(path, sizeof path, state_dir, "pcapferry.db", e) != 0)
        return -1;
    if (access(path, F_OK) != 0)
        return pf_err_set(e, PF_EUSAGE, "%s: no import state here yet", state_dir);
    if (pf_db_open(&db, state_dir, e) != 0)
        return -1;
    if (pf_db_query(&db, e, status_bundles, &s,
                    "SELECT sensor, MAX(seq), COUNT(*), SUM(files), SUM(packets), SUM(bytes), "
                    "MIN(NULLIF(first_ts, 0)), MAX(last_ts), SUM(drops) FROM bundles "
                    "GROUP BY sensor ORDER BY sensor",
                    "") != 0 ||
        pf_db_query(&db, e, status_counts, &s,
                    "SELECT COALESCE(sensor, 'unknown'), COUNT(*), 0 FROM rejections GROUP BY 1 "
                    "UNION ALL SELECT sensor, COUNT(*), 1 FROM deliveries WHERE state = 'held' "
                    "GROUP BY sensor",
                    "") != 0 ||
        pf_db_query(&db, e, seq_row, &l,
                    "SELECT sensor, seq, prev_seq FROM bundles ORDER BY sensor, seq", "") != 0)
        goto out;
    for (size_t i = 0; i < l.n;) {
        size_t j = i;
        while (j < l.n && strcmp(l.v[j].sensor, l.v[i].sensor) == 0)
            j++;
        pf_sensor_status *r = status_for(&s, l.v[i].sensor, e);
        if (r == NULL)
            goto out;
        r->ngaps = sensor_gaps(&l.v[i], j - i, r->gaps, sizeof r->gaps);
        i = j;
    }
    *out = s.v;
    *n = s.n;
    s.v = NULL;
    rc = 0;
out:
    free(s.v);
    free(l.v);
    pf_db_close(&db);
    return rc;
}
