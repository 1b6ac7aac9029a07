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

/* ---------- recovery ---------- */

struct pending {
    char sensor[PF_NAME_MAX + 1];
    uint64_t seq;
    int64_t n;
    char stage[PF_STAGE_NAME_MAX + 16];
    char final[NAME_MAX + 1];
};

struct pending_list {
    struct pending *v;
    size_t n, cap;
};

static int pending_row(void *ctx, sqlite3_stmt *st, pf_err *e)
{
    struct pending_list *l = ctx;
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 16;
        struct pending *g = realloc(l->v, cap * sizeof *g);
        if (g == NULL)
            return pf_err_set(e, PF_EENV, "out of memory");
        l->v = g;
        l->cap = cap;
    }
    struct pending *p = &l->v[l->n++];
    snprintf(p->sensor, sizeof p->sensor, "%s", pf_db_text(st, 0));
    p->seq = (uint64_t)sqlite3_column_int64(st, 1);
    p->n = sqlite3_column_int64(st, 2);
    snprintf(p->stage, sizeof p->stage, "%s", pf_db_text(st, 3));
    snprintf(p->final, sizeof p->final, "%s", pf_db_text(st, 4));
    return 0;
}

/* Staging files a killed run left in INGEST/<sensor>/. Arkime's account may
 * write there: sensor directories are opened without following links. */
static int remove_stale_staging(pf_importer *imp, pf_err *e)
{
    int ifd = open(imp->o.ingest_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = ifd >= 0 ? fdopendir(ifd) : NULL;
    if (d == NULL) {
        if (ifd >= 0)
            close(ifd);
        return pf_err_sys(e, errno, "%s: cannot read ingest directory", imp->o.ingest_dir);
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.' || !pf_name_valid(de->d_name))
            continue;
        int sfd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        DIR *s = sfd >= 0 ? fdopendir(sfd) : NULL;
        if (s == NULL) {
            if (sfd >= 0)
                close(sfd);
            continue;
        }
        struct dirent *f;
        while ((f = readdir(s)) != NULL) {
            size_t len = strlen(f->d_name);
            if (strncmp(f->d_name, STAGE_PREFIX, strlen(STAGE_PREFIX)) == 0 && len > 5 &&
                strcmp(f->d_name + len - 5, ".part") == 0)
                unlinkat(dirfd(s), f->d_name, 0);
        }
        closedir(s);
    }
    closedir(d);
    return 0;
}

int imp_recover(pf_importer *imp, pf_err *e)
{
    struct pending_list l = {0};
    int rc = -1;
    if (pf_db_query(&imp->db, e, pending_row, &l,
                    "SELECT d.sensor, d.seq, d.n, d.stage, d.final FROM deliveries d "
                    "JOIN bundles b ON b.sensor = d.sensor AND b.seq = d.seq "
                    "WHERE b.status = 'delivering' AND d.state = 'staged' "
                    "ORDER BY d.sensor, d.seq, d.n",
                    "") != 0)
        goto out;
    for (size_t i = 0; i < l.n; i++) {
        struct pending *p = &l.v[i];
        bool created, again;
        int dirfd = imp_open_sensor_dir(imp, p->sensor, &created, e);
        if (dirfd < 0)
            goto out;
        int r =
            imp_finish_delivery(imp, dirfd, p->sensor, p->seq, p->n, p->stage, p->final, &again, e);
        close(dirfd);
        if (r != 0)
            goto out;
        imp_event(imp, again ? PF_EV_WARN : PF_EV_INFO, "sensor=%s seq=%" PRIu64 " recovered=%s%s",
                  p->sensor, p->seq, p->final,
                  again ? " (announced again after an interrupted run: Arkime may index it twice)"
                        : "");
    }
    if (pf_db_exec(&imp->db, e,
                   "UPDATE bundles SET status = 'committed' WHERE status = 'delivering' AND "
                   "NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.sensor = bundles.sensor AND "
                   "d.seq = bundles.seq AND d.state = 'staged')",
                   "") != 0)
        goto out;
    if (remove_stale_staging(imp, e) != 0)
        goto out;
    rc = 0;
out:
    free(l.v);
    return rc;
}

int imp_retry_execs(pf_importer *imp, pf_import_counts *c, pf_err *e)
{
    struct pending_list l = {0};
    int rc = -1;
    if (imp->o.exec_argv == NULL)
        return 0;
    /* exec_attempts = -1 marks "wanted, never run" (killed before it ran) */
    if (pf_db_query(&imp->db, e, pending_row, &l,
                    "SELECT sensor, seq, n, stage, final FROM deliveries WHERE state = "
                    "'delivered' AND exec_attempts != 0 AND (exec_status IS NULL OR "
                    "exec_status != 0) ORDER BY sensor, seq, n",
                    "") != 0)
        goto out;
    for (size_t i = 0; i < l.n; i++)
        if (imp_exec_and_record(imp, l.v[i].sensor, l.v[i].seq, l.v[i].n, l.v[i].final, c, e) != 0)
            goto out;
    rc = 0;
out:
    free(l.v);
    return rc;
}
