/*
 * lsan_probe: can LeakSanitizer check a process after it drops privileges
 * the way `pcapferry capture -Z USER` does? (issue 16)
 *
 *   lsan_probe            leaks one block and exits 0
 *   lsan_probe -Z USER    drops to USER first, exactly as capture/sensor.c
 *                         does (setgroups, setgid, setuid, no_new_privs)
 *
 * Built with the project's flags, so in a sanitizer build LeakSanitizer runs
 * at exit and must report the block leaked by lsan_probe_leak(); in other
 * builds nothing is reported. LeakSanitizer stops the process with a helper
 * task that runs with the process's credentials: after the drop it needs
 * USER to reach /proc/PID/task by path and to ptrace the threads. Where USER
 * cannot (a chroot whose / is mode 0700, say), LeakSanitizer ends with
 * "LeakSanitizer has encountered a fatal error" instead of a report.
 * tests/tools/lsan_after_drop.sh reads the two outcomes.
 *
 * Exit status: 0 (or the sanitizer's own), 2 usage, 3 the drop failed.
 * Self-contained on purpose: no project libraries.
 */
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

/* The leaked block is kept here first so the compiler cannot drop the
 * allocation; clearing it afterwards leaves no reference anywhere. */
static void *volatile probe_slot;

__attribute__((noinline)) static void lsan_probe_leak(void)
{
    char *p = malloc(48);
    if (p == NULL)
        return;
    memcpy(p, "pcapferry lsan_probe: deliberately leaked block", 48);
    probe_slot = p;
    probe_slot = NULL;
}

static int drop_to(const char *user)
{
    struct passwd *pw = getpwnam(user);
    if (pw == NULL) {
        fprintf(stderr, "lsan_probe: -Z %s: no such user\n", user);
        return -1;
    }
    gid_t gid = pw->pw_gid;
    if (setgroups(1, &gid) != 0 || setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0) {
        perror("lsan_probe: cannot drop privileges");
        return -1;
    }
    if (setuid(0) == 0 || seteuid(0) == 0) {
        fprintf(stderr, "lsan_probe: privilege drop to %s did not stick\n", user);
        return -1;
    }
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
        perror("lsan_probe: PR_SET_NO_NEW_PRIVS");
        return -1;
    }
    fprintf(stderr, "lsan_probe: dropped to uid=%u, dumpable=%d\n", (unsigned)getuid(),
            prctl(PR_GET_DUMPABLE, 0, 0, 0, 0));
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "-Z") == 0) {
        if (drop_to(argv[2]) != 0)
            return 3;
    } else if (argc != 1) {
        fprintf(stderr, "usage: lsan_probe [-Z USER]\n");
        return 2;
    }
    lsan_probe_leak();
    return 0;
}
