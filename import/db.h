/* The importer's state: SQLite in WAL mode, one transaction per bundle.
 * A thin layer: statements with typed bindings, so the SQL stays readable
 * where it is used. */
#ifndef PF_IMPORT_DB_H
#define PF_IMPORT_DB_H

#include <sqlite3.h>
#include <stdint.h>

#include "common/pf_err.h"

#include <stdbool.h>

/* Prepared statements kept for reuse, by SQL text: parsing was a tenth of
 * the importer's CPU on a fleet's small bundles. */
#define PF_DB_STMT_CACHE 48

typedef struct pf_db {
    sqlite3 *sql;
    char path[4096];
    struct {
        char *sql;
        sqlite3_stmt *st;
        bool busy; /* in use (a row callback may run the same SQL: it gets its own) */
    } cache[PF_DB_STMT_CACHE];
    size_t ncache;
} pf_db;

int pf_db_open(pf_db *db, const char *state_dir, pf_err *e);
void pf_db_close(pf_db *db);

/* Bindings are given by a format string: 's' text (NULL binds NULL),
 * 'i' int64_t, 'u' uint64_t. */
int pf_db_exec(pf_db *db, pf_err *e, const char *sql, const char *fmt, ...);

/* Like pf_db_exec, calling row(ctx, stmt) for each result row. */
typedef int (*pf_db_row_fn)(void *ctx, sqlite3_stmt *st, pf_err *e);
int pf_db_query(pf_db *db, pf_err *e, pf_db_row_fn row, void *ctx, const char *sql, const char *fmt,
                ...);

int pf_db_begin(pf_db *db, pf_err *e);
int pf_db_commit(pf_db *db, pf_err *e);
void pf_db_rollback(pf_db *db);

/* Column helpers that never return NULL. */
const char *pf_db_text(sqlite3_stmt *st, int col);

#endif
