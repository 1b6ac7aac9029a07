#!/usr/bin/env bash
# lsan_after_drop.sh PROBE [USER]: can LeakSanitizer check a pcapferry
# process after it drops privileges to USER (default nobody) here? (issue 16)
#
# PROBE is tests/tools/lsan_probe of the same build. It runs twice with the
# caller's ASAN_OPTIONS: as it is (the control) and with -Z USER; each leaks
# one 48-byte block. Prints one line and exits 0:
#   yes             both runs reported the leak
#   no: REASON      the control reported it, the dropped run ended in
#                   LeakSanitizer's fatal error instead; REASON is the
#                   sanitizer's own line (e.g. "Can't open /proc/N/task for
#                   reading."): its helper task runs as USER and USER cannot
#                   reach /proc/PID/task or ptrace here
#   off: REASON     nothing to decide: not root (no run drops privileges), no
#                   such USER, or leak checking is not active at all (not a
#                   sanitizer build, or detect_leaks=0 in ASAN_OPTIONS)
# Anything else (a probe that crashes, a drop that fails) prints
# "error: ..." and exits 1: the caller must not quietly give up leak checks.
set -u

probe=${1:?usage: lsan_after_drop.sh PROBE [USER]}
user=${2:-nobody}

if [[ ! -x "$probe" ]]; then
    echo "error: $probe is not an executable (build first)"
    exit 1
fi
if [[ "$(id -u)" != 0 ]]; then
    echo "off: not root, so no test run drops privileges"
    exit 0
fi
if ! getent passwd "$user" >/dev/null; then
    echo "off: there is no user '$user' to drop to"
    exit 0
fi

out=$(mktemp -d "${TMPDIR:-/tmp}/lsan-after-drop.XXXXXX") || exit 1
trap 'rm -rf "$out"' EXIT

# reported FILE: LeakSanitizer reported the probe's block.
reported() {
    grep -q 'ERROR: LeakSanitizer: detected memory leaks' "$1" &&
        grep -q 'Direct leak of 48 byte(s)' "$1"
}
fatal() {
    grep -q 'LeakSanitizer has encountered a fatal error' "$1"
}
show() {
    sed -n '1,12s/^/  | /p' "$1"
}

# In braces with stderr closed over them: with abort_on_error=1 both runs end
# in SIGABRT, and the shell's "Aborted" notice is noise here.
{
    "$probe" >"$out/control" 2>&1 </dev/null
    rc_control=$?
    "$probe" -Z "$user" >"$out/dropped" 2>&1 </dev/null
    rc_dropped=$?
} 2>/dev/null

if ! reported "$out/control"; then
    if fatal "$out/control" || grep -q 'Sanitizer' "$out/control"; then
        echo "error: LeakSanitizer fails even without a privilege drop (exit $rc_control):"
        show "$out/control"
        exit 1
    fi
    echo "off: no leak report for a known leak (not a sanitizer build, or detect_leaks=0)"
    exit 0
fi
if reported "$out/dropped"; then
    echo yes
    exit 0
fi
if fatal "$out/dropped"; then
    # The line LeakSanitizer printed before giving up, without its ==PID==.
    reason=$(grep -E '^==[0-9]+==' "$out/dropped" | grep -v -e 'fatal error' -e 'HINT:' |
        head -n 1 | sed -E 's/^==[0-9]+==//')
    echo "no: ${reason:-LeakSanitizer has encountered a fatal error}"
    exit 0
fi
echo "error: the probe run with -Z $user exited $rc_dropped without a leak report" \
    "or LeakSanitizer's fatal error:"
show "$out/dropped"
exit 1
