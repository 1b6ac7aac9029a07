#!/usr/bin/env bash
# Issue 16: LeakSanitizer after a privilege drop (-Z), and the suite's answer.
#
# LeakSanitizer checks a process at exit through a helper task with the
# process's credentials; after `capture -Z nobody` that is nobody, who must
# reach /proc/PID/task by path. In a chroot whose / is mode 0700 (debootstrap
# into `mktemp -d`) nobody cannot, and the sanitizer gives up with exit 134.
# This test builds two roots in a private mount namespace, from this
# machine's own /usr and /etc, the build and source trees bind-mounted at the
# same paths:
#   closed   / is 0700: the issue's environment
#   open     / is 0755: the same, where LeakSanitizer works after the drop
# and checks in each, against what a real `capture -Z nobody` run does there,
# that tests/tools/lsan_after_drop.sh and lib.sh's pf_lsan_drop_setup decide
# right:
#   - closed: the plain -Z run fails exactly as in the issue; the verdict is
#     "no: <LeakSanitizer's reason>"; PF_Z_ENV turns leak checks off for -Z
#     runs only, and with it the -Z run passes; runs without -Z are still
#     leak-checked (the probe's known leak is reported, --no-drop passes);
#   - open: the -Z run passes under LeakSanitizer, a known leak after the
#     drop is reported, the verdict is "yes" and PF_Z_ENV is empty.
# Skips (77) when not root, without user nobody, unshare or chroot, when the
# mount namespace cannot be made, or when the build has no leak checking.
# shellcheck source-path=SCRIPTDIR
# shellcheck disable=SC2016 # the bash -c scripts expand their own arguments
# shellcheck disable=SC2317 # leak_reported runs through expect_true
# shellcheck source=lib.sh
. "${PF_TESTLIB:-$(dirname "${BASH_SOURCE[0]}")/lib.sh}"

require_binaries
require_cmd unshare chroot mount realpath
[[ "$(id -u)" == 0 ]] || skip "needs root (mount namespace, chroot, -Z)"
getent passwd nobody >/dev/null || skip "there is no user 'nobody' to drop to"
[[ -x "$LSAN_PROBE" ]] || skip "LSAN_PROBE=$LSAN_PROBE is not an executable (build first)"
VERDICT_SH=$(realpath "$pf_lib_dir/../tools/lsan_after_drop.sh")
TESTLIB=$(realpath "$pf_lib_dir/lib.sh")
unset PF_LSAN_AFTER_DROP # each root decides for itself

here=$(bash "$VERDICT_SH" "$LSAN_PROBE" nobody)
case $here in
off*) skip "no leak checking to follow here ($here)" ;;
error*) die "lsan_after_drop.sh on this machine: $here" ;;
esac
echo "this machine, outside any chroot: $here"
unshare -m --propagation private true 2>/dev/null || skip "cannot make a private mount namespace"

T=$(cd "$PF_TMP" && pwd -P)
SRC=$(realpath "$pf_lib_dir/../..")
BIN=$(realpath "$PCAPFERRY")
PROBE=$(realpath "$LSAN_PROBE")
SCRATCH=$T/work # the same path inside the roots
mkdir -p "$SCRATCH"
chmod 755 "$T" "$SCRATCH"
setup_keys lsan central1
make_pcap small.pcap --packets 50 --seed 31
: >"$T/empty.conf"
# everything the runs inside read, under $SCRATCH
cp -r "$T/keys" "$PF_IN/small.pcap" "$T/empty.conf" "$SCRATCH/"

# The driver runs inside a root; it writes NAME.rc, NAME.err, verdict, zenv
# into $SCRATCH/res.ROOT.
cat >"$SCRATCH/driver.sh" <<'EOF'
set -u
S=$1 RES=$2 BIN=$3 PROBE=$4 VERDICT_SH=$5 TESTLIB=$6
mkdir -p "$RES"
cd "$S" || exit 1
# cap NAME [prefix...] -- args: one capture, stdout/stderr/status kept
cap() {
    local name=$1 rc
    shift
    local -a pre=()
    while [[ $1 != -- ]]; do pre+=("$1"); shift; done
    shift
    rm -rf "$S/$name" && mkdir -p "$S/$name"
    { "${pre[@]}" "$BIN" capture -c "$S/empty.conf" --key "$S/keys/lsan.key" \
        --to "$S/keys/central1.pub" --spool "$S/$name/sp" --outbox "$S/$name/ob" \
        --state "$S/$name/st" -r "$S/small.pcap" "$@" >"$RES/$name.out" 2>"$RES/$name.err"; } 2>/dev/null
    rc=$?
    echo "$rc" >"$RES/$name.rc"
}
bash "$VERDICT_SH" "$PROBE" nobody >"$RES/verdict" 2>&1
# the probe directly: its known leak after the drop, and without it
{ "$PROBE" -Z nobody >"$RES/probe_z.err" 2>&1; } 2>/dev/null
{ "$PROBE" >"$RES/probe.err" 2>&1; } 2>/dev/null
cap plain -- -Z nobody
cap nodrop -- --no-drop
# lib.sh's decision, as a test script sourcing it would make it here
TMPDIR=$S bash -c '. "$1"; pf_lsan_drop_setup >"$2/setup.out"
    for a in "${PF_Z_ENV[@]}"; do printf "%s\n" "$a"; done >"$2/zenv"; PF_SUMMARY_DONE=1' \
    sh "$TESTLIB" "$RES" >"$RES/setup.err" 2>&1
mapfile -t zenv <"$RES/zenv"
cap zenv "${zenv[@]}" -- -Z nobody
exit 0
EOF

# in_root MODE NAME: builds root NAME with / of MODE in a private mount
# namespace and runs the driver in it. 0 when it ran, 50 when a mount or the
# chroot itself failed.
in_root() {
    local mode=$1 name=$2 r=$T/root.$2
    mkdir -p "$r"
    chmod "$mode" "$r"
    unshare -m --propagation private bash -s -- "$r" "$SRC" "$(dirname "$BIN")" "$SCRATCH" \
        "$SCRATCH/res.$name" "$BIN" "$PROBE" "$VERDICT_SH" "$TESTLIB" <<'EOF'
set -u
r=$1 src=$2 bindir=$3 scratch=$4
shift 4
bindm() { # SRC TARGET-IN-ROOT [ro]
    mkdir -p "$r$2" && mount --bind "$1" "$r$2" || exit 50
    if [[ ${3:-} == ro ]]; then mount -o remount,bind,ro "$r$2" || exit 50; fi
}
for d in bin sbin lib lib32 lib64 libx32; do
    if [[ -L /$d ]]; then
        ln -s "$(readlink "/$d")" "$r/$d" || exit 50
    elif [[ -d /$d ]]; then
        bindm "/$d" "/$d" ro
    fi
done
bindm /usr /usr ro
bindm /etc /etc ro
bindm /dev /dev
bindm /proc /proc
mkdir -p "$r/tmp" && chmod 1777 "$r/tmp"
bindm "$src" "$src" ro
case $bindir/ in "$src"/*) ;; *) bindm "$bindir" "$bindir" ro ;; esac
bindm "$scratch" "$scratch"
chroot "$r" /bin/bash "$scratch/driver.sh" "$scratch" "$@" || exit 50
EOF
}

# no_mounts_left: the roots' bind mounts (/usr, /etc) lived only in the
# namespace; if one were visible here, removing the scratch directory would
# reach into it, so keep it and stop.
no_mounts_left() {
    if grep -qF " $T/" /proc/self/mountinfo; then
        PF_KEEP_TMP=1
        die "a mount under $T is visible outside its namespace"
    fi
}
rc=0
in_root 0700 closed || rc=$?
no_mounts_left
[[ $rc == 0 ]] || skip "cannot build a chroot in a private mount namespace (status $rc)"
in_root 0755 open || rc=$?
no_mounts_left
[[ $rc == 0 ]] || skip "cannot build the second chroot (status $rc)"

# result ROOT NAME: sets PF_OUT/PF_ERR/PF_RC/PF_LAST_CMD to that run's.
result() {
    local d=$SCRATCH/res.$1
    PF_LAST_CMD="pcapferry capture ... ($2 in the $1 root)"
    PF_OUT=$d/$2.out
    PF_ERR=$d/$2.err
    PF_RC=$(cat "$d/$2.rc" 2>/dev/null || echo missing)
}
leak_reported() {
    grep -q 'ERROR: LeakSanitizer: detected memory leaks' "$1" && grep -q 'Direct leak of 48 byte' "$1"
}

section "closed root (/ is 0700): the issue's environment"
C=$SCRATCH/res.closed
result closed plain
expect_eq "capture -Z nobody under LeakSanitizer: exit status" 134 "$PF_RC" || pf_show_last
expect_stderr_contains "dropped privileges user=nobody"
expect_stderr_contains "LeakSanitizer has encountered a fatal error"
verdict=$(cat "$C/verdict")
echo "verdict in the closed root: $verdict"
expect_true "the verdict is 'no: REASON' (got '$verdict')" -- \
    bash -c '[[ $1 =~ ^no:\ .+ ]]' sh "$verdict"
# process ids differ between the two runs
expect_true "the reason is LeakSanitizer's line from the -Z run's stderr" -- \
    bash -c 'sed -E "s/[0-9]+/N/g" "$2" | grep -qF -- "$(sed -E "s/^no: //; s/[0-9]+/N/g" "$1")"' \
    sh "$C/verdict" "$PF_ERR"
expect_true "the probe's leak after the drop is not reported there" -- \
    bash -c '! grep -q "Direct leak of 48 byte" "$1"' sh "$C/probe_z.err"
expect_true "without a drop the probe's leak is still reported there" -- leak_reported "$C/probe.err"
expect_true "pf_lsan_drop_setup says so" -- \
    grep -q 'LeakSanitizer cannot check a process after it drops privileges' "$C/setup.out"
expect_eq "PF_Z_ENV ends with detect_leaks=0" "detect_leaks=0" "$(tail -n 1 "$C/zenv" | sed 's/.*://')"
expect_eq "PF_Z_ENV keeps the caller's ASAN_OPTIONS in front" \
    "env ASAN_OPTIONS=${ASAN_OPTIONS:-}:detect_leaks=0" "$(head -n 2 "$C/zenv" | tr '\n' ' ' | sed 's/ $//')"
result closed zenv
expect_eq "capture -Z nobody in PF_Z_ENV: exit status" 0 "$PF_RC" || pf_show_last
expect_stderr_contains "dropped privileges user=nobody"
expect_stderr_lacks "Sanitizer"
expect_true "it sealed a bundle" -- bash -c 'ls "$1"/*.pcapferry' sh "$SCRATCH/zenv/ob"
result closed nodrop
expect_eq "capture --no-drop there, leak-checked: exit status" 0 "$PF_RC" || pf_show_last
expect_stderr_lacks "Sanitizer"

section "open root (/ is 0755): LeakSanitizer follows the drop"
O=$SCRATCH/res.open
result open plain
expect_eq "capture -Z nobody under LeakSanitizer: exit status" 0 "$PF_RC" || pf_show_last
expect_stderr_contains "dropped privileges user=nobody"
expect_stderr_lacks "Sanitizer"
expect_true "a known leak after the drop is reported" -- leak_reported "$O/probe_z.err"
expect_eq "the verdict" yes "$(cat "$O/verdict")"
expect_eq "PF_Z_ENV is empty" "" "$(tr -d '\n' <"$O/zenv")"
expect_true "pf_lsan_drop_setup prints no note" -- test ! -s "$O/setup.out"
result open zenv
expect_eq "the same run through pf_lsan_drop_setup: exit status" 0 "$PF_RC" || pf_show_last

summary
