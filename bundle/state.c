#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "bundle/bundle.h"
#include "common/fsutil.h"

#define STATE_FILE      "sequence"
#define STATE_TYPE      "pcapferry-sensor-state-v1"
#define STATE_MAX_BYTES 1024

static int save(const pf_seq_state *st, pf_err *e)
{
    char text[STATE_MAX_BYTES], hash[2 * PF_HASH_BYTES + 1];
    uint8_t zero[PF_HASH_BYTES] = {0};
    if (memcmp(st->last_hash, zero, sizeof zero) == 0)
        snprintf(hash, sizeof hash, "-");
    else
        pf_hex(hash, st->last_hash, PF_HASH_BYTES);
    int n =
        snprintf(text, sizeof text,
                 "%s\nsensor: %s\nnext-seq: %" PRIu64 "\nlast-seq: %" PRIu64 "\nlast-hash: %s\n",
                 STATE_TYPE, st->sensor, st->next_seq, st->last_seq, hash);
    return pf_atomic_write_at(st->dir_fd, st->dir, STATE_FILE, text, (size_t)n, 0600, false, e);
}

static int field(const char *text, const char *name, char *out, size_t cap)
{
    char key[64];
    snprintf(key, sizeof key, "\n%s: ", name);
    const char *p = strstr(text, key);
    if (p == NULL)
        return -1;
    p += strlen(key);
    size_t n = strcspn(p, "\n");
    if (n >= cap)
        return -1;
    memcpy(out, p, n);
    out[n] = '\0';
    return 0;
}

static int load(pf_seq_state *st, pf_err *e)
{
    uint8_t *raw = NULL;
    size_t len = 0;
    char path[PATH_MAX + sizeof STATE_FILE + 1];
    snprintf(path, sizeof path, "%s/%s", st->dir, STATE_FILE);
    char text[STATE_MAX_BYTES + 1], sensor[PF_NAME_MAX + 1], next[32], last[32], hash[80];
    int rc = -1;
    /* through the directory descriptor: after a privilege drop the path
     * may be out of reach */
    if (pf_read_file_at(st->dir_fd, STATE_FILE, path, STATE_MAX_BYTES, 0, &raw, &len, e) != 0)
        goto out;
    memcpy(text, raw, len);
    text[len] = '\0';
    if (strncmp(text, STATE_TYPE "\n", strlen(STATE_TYPE) + 1) != 0 ||
        field(text, "sensor", sensor, sizeof sensor) ||
        field(text, "next-seq", next, sizeof next) || field(text, "last-seq", last, sizeof last) ||
        field(text, "last-hash", hash, sizeof hash) || !pf_parse_u64(next, &st->next_seq) ||
        !pf_parse_u64(last, &st->last_seq) ||
        (strcmp(hash, "-") != 0 && !pf_unhex(st->last_hash, PF_HASH_BYTES, hash)) ||
        st->next_seq <= st->last_seq) {
        pf_err_set(e, PF_EENV, "%s: sequence state is damaged; refusing to guess a sequence number",
                   path);
        goto out;
    }
    if (strcmp(sensor, st->sensor) != 0) {
        pf_err_set(e, PF_EUSAGE, "%s: state belongs to sensor '%s', not '%s'", path, sensor,
                   st->sensor);
        goto out;
    }
    rc = 0;
out:
    pf_free_file(raw, false);
    return rc;
}

int pf_state_open(pf_seq_state *st, const char *dir, const char *sensor, pf_err *e)
{
    if (pf_mkdir_p(dir, 0700, e) != 0)
        return -1;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return pf_err_sys(e, errno, "%s: cannot open directory", dir);
    if (pf_state_open_at(st, fd, dir, sensor, e) != 0) {
        close(fd);
        return -1;
    }
    st->own_dir_fd = true;
    return 0;
}

int pf_state_open_at(pf_seq_state *st, int dirfd, const char *dir, const char *sensor, pf_err *e)
{
    memset(st, 0, sizeof *st);
    st->lock_fd = -1;
    st->dir_fd = dirfd;
    snprintf(st->sensor, sizeof st->sensor, "%s", sensor);
    if (snprintf(st->dir, sizeof st->dir, "%s", dir) >= (int)sizeof st->dir)
        return pf_err_set(e, PF_EUSAGE, "%s: path too long", dir);
    st->lock_fd = openat(dirfd, "lock", O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (st->lock_fd < 0)
        return pf_err_sys(e, errno, "%s/lock: cannot open lock", dir);
    if (flock(st->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        int err = errno;
        pf_state_close(st);
        if (err == EWOULDBLOCK)
            return pf_err_set(e, PF_EENV, "%s: another pcapferry holds this state directory", dir);
        return pf_err_sys(e, err, "%s/lock: cannot lock", dir);
    }
    if (faccessat(dirfd, STATE_FILE, F_OK, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno != ENOENT) {
            pf_err_sys(e, errno, "%s/%s: cannot access", dir, STATE_FILE);
            goto fail;
        }
        st->next_seq = 1;
        return 0;
    }
    if (load(st, e) != 0)
        goto fail;
    return 0;
fail:
    pf_state_close(st);
    return -1;
}

int pf_state_reserve(pf_seq_state *st, uint64_t *seq, pf_err *e)
{
    *seq = st->next_seq;
    st->next_seq++;
    if (save(st, e) != 0) {
        st->next_seq--;
        return -1;
    }
    return 0;
}

int pf_state_commit(pf_seq_state *st, uint64_t seq, const uint8_t hash[PF_HASH_BYTES], pf_err *e)
{
    st->last_seq = seq;
    memcpy(st->last_hash, hash, PF_HASH_BYTES);
    return save(st, e);
}

void pf_state_close(pf_seq_state *st)
{
    if (st->lock_fd >= 0)
        close(st->lock_fd); /* releases the flock */
    st->lock_fd = -1;
    if (st->own_dir_fd && st->dir_fd >= 0)
        close(st->dir_fd);
    st->own_dir_fd = false;
    st->dir_fd = -1;
}
