/* Early writeback and flushing (common/fsutil.c): a file written with
 * flush_early gets its fdatasyncs on a thread of its own while it is being
 * written, and whatever happens the bytes are the bytes written; the
 * flusher is gone after pf_writeback_end, which is safe to repeat. */
#include <fcntl.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "common/fsutil.h"

#define CHUNK (1u << 20)

int main(void)
{
    char dir[] = "/tmp/pf-test-fsutil.XXXXXX", path[256], copy_name[] = "copy.bin";
    pf_err e;
    if (mkdtemp(dir) == NULL)
        return 2;
    snprintf(path, sizeof path, "%s/a.bin", dir);
    uint8_t *buf = malloc(CHUNK), *back = malloc(CHUNK);
    if (buf == NULL || back == NULL)
        return 2;

    /* never started: end is a no-op, twice */
    pf_writeback idle = {.flush_early = true};
    pf_writeback_end(&idle);
    pf_writeback_end(&idle);
    CHECK(idle.flusher == NULL);

    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    CHECK(fd >= 0);
    pf_writeback wb = {.flush_early = true};
    bool started = false;
    const unsigned chunks = (3 * PF_FLUSH_STEP) / CHUNK + 5;
    for (unsigned i = 0; i < chunks; i++) {
        memset(buf, (int)(i & 0xff), CHUNK);
        pf_err_clear(&e);
        CHECK(pf_write_all(fd, buf, CHUNK, path, &e) == 0);
        pf_writeback_note(fd, &wb, CHUNK);
        if (wb.written < PF_FLUSH_STEP)
            CHECK(wb.flusher == NULL); /* small files never start a thread */
        started = started || wb.flusher != NULL;
    }
    CHECK(started);
    CHECK(wb.written == (uint64_t)chunks * CHUNK);
    pf_writeback_end(&wb);
    CHECK(wb.flusher == NULL);
    pf_writeback_end(&wb);
    CHECK(fsync(fd) == 0 && close(fd) == 0);

    /* without flush_early no thread, the same bytes */
    pf_writeback plain = {0};
    int fd2 = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
    for (unsigned i = 0; i < 20; i++) {
        CHECK(pf_write_all(fd2, buf, CHUNK, path, &e) == 0);
        pf_writeback_note(fd2, &plain, CHUNK);
        CHECK(plain.flusher == NULL);
    }
    pf_writeback_end(&plain);
    close(fd2);

    /* a copy (which flushes early) is byte for byte the original */
    int in = open(path, O_RDONLY | O_CLOEXEC), dfd = open(dir, O_RDONLY | O_DIRECTORY);
    pf_err_clear(&e);
    CHECK(pf_copy_fd_at(in, path, dfd, dir, copy_name, 0640, &e) == 0);
    char cpath[300];
    snprintf(cpath, sizeof cpath, "%s/%s", dir, copy_name);
    int a = open(path, O_RDONLY), b = open(cpath, O_RDONLY);
    struct stat sa, sb;
    CHECK(fstat(a, &sa) == 0 && fstat(b, &sb) == 0 && sa.st_size == sb.st_size);
    CHECK(sa.st_size == (off_t)(chunks + 20) * CHUNK);
    CHECK((sb.st_mode & 07777) == 0640);
    bool same = true;
    for (off_t off = 0; off < sa.st_size && same; off += CHUNK)
        same = pread(a, buf, CHUNK, off) == CHUNK && pread(b, back, CHUNK, off) == CHUNK &&
               memcmp(buf, back, CHUNK) == 0;
    CHECK(same);
    close(a);
    close(b);
    close(in);
    unlinkat(dfd, "a.bin", 0);
    unlinkat(dfd, copy_name, 0);
    close(dfd);
    rmdir(dir);
    free(buf);
    free(back);
    return check_summary("test_fsutil");
}
