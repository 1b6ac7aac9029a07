/* File helpers that make durability and atomicity the default: every file
 * that becomes visible was written under a dot-named temporary name,
 * fsynced, renamed and its directory fsynced. */
#ifndef PF_FSUTIL_H
#define PF_FSUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/pf_err.h"

/* Early writeback for large files written then fsynced: without it the
 * kernel keeps gigabytes dirty and the final fsync writes them all while
 * nothing else happens. Every PF_WRITEBACK_STEP bytes the new range is
 * handed to the disk, and the range before it is waited for, so writing
 * overlaps computing and dirty memory stays bounded. */
#define PF_WRITEBACK_STEP (8u << 20)
/* With flush_early, also every PF_FLUSH_STEP bytes an fdatasync on a thread
 * of its own: handing pages to the disk is not the end of it when the disk
 * (or the host of a VM) keeps them in a volatile cache, and the fsync after
 * the last byte then waits for the whole file's cache flush while the CPU
 * idles (~0.8-1 s per GB here). Durability is still the caller's own
 * fsync's: these flushes only start the work early, and their errors are
 * left to it. */
#define PF_FLUSH_STEP (16u << 20)
struct pf_flusher;
typedef struct pf_writeback {
    uint64_t done;              /* bytes up to here have been handed to the disk */
    uint64_t written;           /* bytes written so far */
    bool flush_early;           /* set by the caller, before the first note */
    uint64_t flushed;           /* bytes up to here have been handed to the flusher */
    struct pf_flusher *flusher; /* started at the first PF_FLUSH_STEP */
} pf_writeback;
void pf_writeback_note(int fd, pf_writeback *wb, size_t n);
/* Stops the flusher, waiting for a flush under way. Call it before the
 * file's own fsync and close; safe on a pf_writeback that never started
 * one, and twice. */
void pf_writeback_end(pf_writeback *wb);

/* Writes all of buf or fails; `what` names the file in the message. */
int pf_write_all(int fd, const void *buf, size_t len, const char *what, pf_err *e);

/* Reads until n bytes or end of file. Returns the count, or -1 with errno. */
ssize_t pf_read_full(int fd, void *buf, size_t n);

int pf_fsync_dir(const char *dir, pf_err *e);
int pf_fsync_dirfd(int dirfd, const char *what, pf_err *e);

/* ".NAME.<random>.part": dot first and .part last, so rsync, Arkime and our
 * own importer all skip it. */
int pf_temp_name(char *out, size_t cap, const char *name);

/* Renames without ever replacing an existing target (EEXIST instead). Falls
 * back to link+unlink where the filesystem lacks RENAME_NOREPLACE. */
int pf_rename_noreplace(int olddirfd, const char *oldname, int newdirfd, const char *newname);

/* Creates DIR/NAME atomically with the given mode. With no_replace an
 * existing NAME is an error and is never touched. */
int pf_atomic_write(const char *dir, const char *name, const void *data, size_t len, mode_t mode,
                    bool no_replace, pf_err *e);
/* The same inside an open directory; dirname only names it in messages. */
int pf_atomic_write_at(int dirfd, const char *dirname, const char *name, const void *data,
                       size_t len, mode_t mode, bool no_replace, pf_err *e);
/* The same with flags. PF_AW_NO_SYNC: neither the file nor the directory is
 * fsynced; only for a caller that makes the whole filesystem durable itself
 * (syncfs) before anything relies on the file, and that rewrites it if a
 * crash comes first (the importer's group commit). */
#define PF_AW_NO_REPLACE 1u
#define PF_AW_NO_SYNC    2u
int pf_atomic_write_flags(int dirfd, const char *dirname, const char *name, const void *data,
                          size_t len, mode_t mode, unsigned flags, pf_err *e);

/* pf_read_file flags. SECURE: the buffer comes from sodium_malloc (for
 * secrets) and must be released with pf_free_file(buf, true). PRIVATE: the
 * file must not be accessible by group or others (ssh's rule for keys). */
#define PF_READ_SECURE  1u
#define PF_READ_PRIVATE 2u

/* Reads a whole regular file of at most max bytes (no symlinks followed at
 * the last component). */
int pf_read_file(const char *path, size_t max, unsigned flags, uint8_t **out, size_t *len,
                 pf_err *e);
/* The same for NAME in an open directory; path names it in messages. */
int pf_read_file_at(int dirfd, const char *name, const char *path, size_t max, unsigned flags,
                    uint8_t **out, size_t *len, pf_err *e);
void pf_free_file(uint8_t *buf, bool secure);

int pf_mkdir_p(const char *path, mode_t mode, pf_err *e);

/* Copies src to dstdir/name the atomic way (temp, fsync, rename without
 * replacing, fsync dir), in bounded memory. */
int pf_copy_file(const char *src, const char *dstdir, const char *name, pf_err *e);

/* The same from an open file (read with pread from offset 0, whatever its
 * position) into dirfd, created with exactly mode: a copy is made from the
 * descriptor that was checked, never by reopening a path. */
int pf_copy_fd_at(int in, const char *src, int dirfd, const char *dstdir, const char *name,
                  mode_t mode, pf_err *e);

/* Opens NAME in dirfd for reading the way hostile directories need: never
 * through a symbolic link, never blocking on a FIFO, and only a regular
 * file (anything else: PF_EREJECT, closed untouched). Fills st. */
struct stat;
int pf_open_regular_at(int dirfd, const char *name, const char *what, struct stat *st, pf_err *e);

/* Opens directory NAME in dirfd without following a link (PF_EREJECT). */
int pf_open_dir_at(int dirfd, const char *name, const char *what, pf_err *e);

/* mkdir -p of rel ("a/b") below dirfd, each component created or opened
 * without following links; returns the last one's descriptor. */
int pf_mkdirs_at(int dirfd, const char *dirname, const char *rel, mode_t mode, pf_err *e);

/* BLAKE2b-256 of an open file from offset 0 (pread). */
int pf_hash_fd(int fd, const char *what, uint8_t out[32], pf_err *e);

/* BLAKE2b-256 of a whole file, streamed. */
int pf_hash_file(const char *path, uint8_t out[32], pf_err *e);

/* Names in dirfd ending in suffix, sorted, skipping copies in flight
 * (dot names and *.part). NULL with *count 0 when empty or unreadable. */
char **pf_list_names(int dirfd, const char *suffix, size_t *count);
void pf_free_names(char **names, size_t count);

/* DIR/NAME into out; fails if it does not fit. */
int pf_path_join(char *out, size_t cap, const char *dir, const char *name, pf_err *e);

/* The part after the last '/'. */
const char *pf_basename(const char *path);

#endif
