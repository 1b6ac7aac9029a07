#include "import/arkime_socket.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* capture splits a command at spaces and has no quoting: a path with a
 * space or a control character cannot be sent as one word. */
static bool sendable(const char *file)
{
    for (const unsigned char *p = (const unsigned char *)file; *p != '\0'; p++)
        if (*p <= ' ' || *p == 0x7f)
            return false;
    return *file == '/';
}

int pf_arkime_socket_add(const char *sock_path, const char *file, unsigned timeout_s,
                         uint64_t *packets, bool *refused, pf_err *e)
{
    struct sockaddr_un sa;
    char cmd[4200], line[4096];
    size_t have = 0;
    int fd = -1, rc = -1;

    *packets = 0;
    *refused = true;
    if (!sendable(file))
        return pf_err_set(e, PF_EUSAGE,
                          "%s: Arkime's command socket takes an absolute path without spaces "
                          "or control characters",
                          file);
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    if (strlen(sock_path) >= sizeof sa.sun_path)
        return pf_err_set(e, PF_EUSAGE, "%s: socket path too long", sock_path);
    memcpy(sa.sun_path, sock_path, strlen(sock_path) + 1);
    int n = snprintf(cmd, sizeof cmd, "add-file --notify %s\n", file);
    if (n < 0 || (size_t)n >= sizeof cmd)
        return pf_err_set(e, PF_EUSAGE, "%s: path too long for Arkime's command socket", file);

    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        pf_err_sys(e, errno,
                   "%s: cannot reach Arkime's command socket (is capture running with "
                   "--command-socket and --command-wait?)",
                   sock_path);
        e->status = PF_EINCOMPLETE;
        goto out;
    }
    for (size_t off = 0; off < (size_t)n;) {
        ssize_t w = send(fd, cmd + off, (size_t)n - off, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            pf_err_sys(e, errno, "%s: sending add-file for %s", sock_path, file);
            e->status = PF_EINCOMPLETE;
            goto out;
        }
        off += (size_t)w;
    }
    *refused = false; /* sent: capture may be reading it */
    /* Lines until capture's verdict on this file; anything else (a banner,
     * an acknowledgment) is skipped. */
    int64_t deadline = mono_ms() + (int64_t)timeout_s * 1000;
    for (;;) {
        char *nl = memchr(line, '\n', have);
        if (nl != NULL) {
            *nl = '\0';
            if (nl > line && nl[-1] == '\r')
                nl[-1] = '\0';
            if (strncmp(line, "file-done", 9) == 0 && (line[9] == ' ' || line[9] == '\0')) {
                const char *p = strstr(line, " packets=");
                if (p != NULL)
                    *packets = strtoull(p + 9, NULL, 10);
                rc = 0;
                goto out;
            }
            if (strncmp(line, "file-error", 10) == 0 && (line[10] == ' ' || line[10] == '\0')) {
                *refused = true;
                pf_err_set(e, PF_EREJECT, "%s: Arkime's capture refused it: %.300s", file, line);
                goto out;
            }
            size_t used = (size_t)(nl - line) + 1;
            memmove(line, nl + 1, have - used);
            have -= used;
            continue;
        }
        if (have == sizeof line - 1) {
            pf_err_set(e, PF_EINCOMPLETE, "%s: an answer line longer than %zu bytes", sock_path,
                       sizeof line);
            goto out;
        }
        int64_t left = deadline - mono_ms();
        if (left <= 0) {
            pf_err_set(e, PF_EINCOMPLETE, "%s: no answer from Arkime within %u s for %s", sock_path,
                       timeout_s, file);
            goto out;
        }
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int r = poll(&p, 1, left > 60000 ? 60000 : (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            pf_err_sys(e, errno, "%s: waiting for Arkime", sock_path);
            e->status = PF_EINCOMPLETE;
            goto out;
        }
        if (r == 0)
            continue;
        ssize_t got = recv(fd, line + have, sizeof line - 1 - have, 0);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0) {
            *refused = true;
            pf_err_set(e, PF_EINCOMPLETE,
                       "%s: Arkime closed the command socket without an answer for %s "
                       "(did capture stop on it?)",
                       sock_path, file);
            goto out;
        }
        have += (size_t)got;
    }
out:
    if (fd >= 0)
        close(fd);
    return rc;
}
