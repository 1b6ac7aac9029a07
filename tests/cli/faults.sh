#!/usr/bin/env bash
# Fault injection (issue 7): every fault below must be handled as documented,
# with at most a counted and logged gap.
#
#   1. ENOSPC where import_crash.sh (ingest) and loop_cli.sh (stick) do not
#      already look: `bundle create` into a full directory, the capture spool
#      full (-r, tmpfs), the sensor's outbox full while sealing, the import
#      state directory (SQLite, provenance copies) full, the receipts
#      directory full. Each: the right exit status, a message naming the
#      place and the reason, no partial file under a non-dot name, and after
#      making room a clean run that delivers everything, losses counted.
#   2. EIO (and short writes) from an LD_PRELOAD shim (tests/tools/faultio.c)
#      on chosen files after N calls: bundle create, export, import, capture.
#   3. A full inotify queue under `import --watch` (max_queued_events
#      lowered for the importer's instance, restored at once and in the
#      trap): IN_Q_OVERFLOW is logged, the rescan imports every bundle
#      exactly once.
#   4. The sensor's wall clock jumping back (and forward again) while it
#      captures on a veth pair between two private network namespaces: the
#      same shim shifts CLOCK_REALTIME and the packet time stamps, as a real
#      jump does. No packet lost, no file sealed twice, no seq reused, every
#      window at most -G long and holding only its own packets, the jump
#      logged and recorded in capture_stats.clock_jump_ns.
#
# The tmpfs, inotify and namespace parts need root and say SKIPPED (that part
# only) without it; the shim parts run anywhere.
# shellcheck source-path=SCRIPTDIR
# shellcheck disable=SC2317 # helpers run through traps and wait_for
# shellcheck source=lib.sh
. "${PF_TESTLIB:-$(dirname "${BASH_SOURCE[0]}")/lib.sh}"

require_binaries
require_json
require_cmd tcpdump jq awk find b2sum
unset PCAP_INTERFACE PCAP_CAPTURE_SIZE PCAP_FILE_SIZE PCAP_BPF_FILTER PCAP_SENSOR_NAME \
    PCAP_FILE_ROTATE
: "${FAULTIO:=$(dirname "$PCAPGEN")/libfaultio.so}"
[[ -f "$FAULTIO" ]] || skip "FAULTIO=$FAULTIO does not exist (build tests/tools first)"

T=$(cd "$PF_TMP" && pwd -P)
ROOT=0
[[ "$(id -u)" == 0 ]] && ROOT=1
MOUNTS=()
PIDS=()
NETNS=()
QUEUED_OLD=
QUEUED_FILE=/proc/sys/fs/inotify/max_queued_events

# shellcheck disable=SC2317 # run from the EXIT trap
faults_cleanup() {
    local m p
    for p in "${PIDS[@]}"; do
        kill -9 "$p" 2>/dev/null
    done
    [[ -n "$QUEUED_OLD" ]] && echo "$QUEUED_OLD" >"$QUEUED_FILE" 2>/dev/null
    for m in "${NETNS[@]}"; do
        ip netns del "$m" 2>/dev/null # takes the veth pair with it
    done
    for m in "${MOUNTS[@]}"; do
        if mountpoint -q "$m" 2>/dev/null; then
            umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
        fi
    done
    return 0
}
# shellcheck disable=SC2317 # run from the EXIT trap
on_exit() {
    local rc=$?
    faults_cleanup
    (exit "$rc")
    pf_cleanup
}
trap on_exit EXIT

setup_keys fault-1 central1
S=$SENSOR
EMPTY=$T/empty.conf
: >"$EMPTY"
SECONDS=0

# a.pcap: 5000 packets over 10 s of packet time, about 4.6 MB.
make_pcap a.pcap --packets 5000 --seed 31 --rate 500
make_pcap small.pcap --packets 50 --seed 32 --start 1700000500
for i in 1 2 3 4; do
    make_pcap "p$i.pcap" --packets 200 --seed $((40 + i)) --start $((1700001000 + 100 * i))
done
A=$PF_IN/a.pcap
SMALL=$PF_IN/small.pcap

# ---------------------------------------------------------------- helpers

# tmpfs DIR SIZE: a tmpfs of SIZE at DIR (unmounted by the trap). False,
# with the reason in $T/mount.err, if that is not permitted.
tmpfs() {
    mkdir -p "$1"
    mount -t tmpfs -o "size=$2" tmpfs "$1" 2>"$T/mount.err" || return 1
    MOUNTS+=("$1")
}

# fill DIR [LEAVE_KB]: fills DIR's filesystem with DIR/.filler, then frees
# LEAVE_KB (default 0) of it.
fill() {
    local leave=${2:-0} size
    dd if=/dev/zero of="$1/.filler" bs=64k status=none 2>/dev/null
    size=$(stat -c %s "$1/.filler")
    if ((leave > 0)); then
        truncate -s $((size > leave * 1024 ? size - leave * 1024 : 0)) "$1/.filler"
    fi
}

# visible DIR: names in DIR (recursively) a reader would take: not starting
# with a dot, not *.part, not the filler.
visible() {
    find "$1" -mindepth 1 -type f ! -name '.*' ! -name '*.part' -printf '%P\n' 2>/dev/null | sort
}

# dot_files DIR: dot and .part files in DIR (recursively), the filler aside.
dot_files() {
    find "$1" -mindepth 1 -type f \( -name '.*' -o -name '*.part' \) ! -name .filler \
        ! -path '*/.exported/*' -printf '%P\n' 2>/dev/null | sort
}

bundles_in() {
    find "$1" -maxdepth 1 -type f -name '*.pcapferry' ! -name '.*' -printf '%f\n' 2>/dev/null |
        sort
}

count() {
    local f n=0 c
    for f in "$@"; do
        c=$(tcpdump -n -r "$f" 2>/dev/null | wc -l)
        n=$((n + c))
    done
    echo "$n"
}

# view FILE...: what must survive, per packet: time (µs), headers, bytes.
view() {
    local f
    for f in "$@"; do
        tcpdump --time-stamp-precision=micro -n -S -tt -xx -r "$f" 2>/dev/null
    done
}

# bytes_view FILE...: each packet's bytes only ("--" between packets).
bytes_view() {
    local f
    for f in "$@"; do
        tcpdump -n -t -xx -r "$f" 2>/dev/null | sed 's/^[^[:space:]].*/--/'
    done
}

# clean_read FILE...: tcpdump reads each to the end without complaint.
clean_read() {
    local f
    for f in "$@"; do
        if tcpdump -n -r "$f" 2>&1 >/dev/null | grep -Eqi 'truncated|bogus|error'; then
            echo "$f"
        fi
    done
}

# open_outbox OUTBOX DIR: every bundle into its own directory under DIR, its
# manifest copied to DIR; DIR.list lists the pcaps in seq order.
open_outbox() {
    local ob=$1 dir=$2 b sub bad=
    rm -rf "$dir"
    mkdir -p "$dir"
    : >"$dir.raw"
    for b in $(bundles_in "$ob"); do
        sub=$dir/${b%.pcapferry}
        mkdir -p "$sub"
        if "$PCAPFERRY" bundle open --key "$CENTRAL_KEY" --keyring "$KEYRING" --out "$sub" \
            "$ob/$b" >>"$dir.raw" 2>"$dir.err"; then
            cp "$sub"/*.manifest.json "$dir/"
        else
            bad+=" $b($(tail -n 1 "$dir.err"))"
        fi
    done
    cut -f 1 "$dir.raw" >"$dir.list"
    expect_eq "bundles of $(basename "$ob") that do not open" "" "$bad"
}

# stat_sum DIR FIELD: sum of capture_stats.FIELD over the manifests in DIR.
stat_sum() {
    jq -s --arg f "$2" '[.[].files[].capture_stats[$f] // 0] | add // 0' "$1"/*.manifest.json
}

# seqs_of OUTBOX: the seqs of its bundles (from the names), one line each.
seqs_of() {
    bundles_in "$1" | awk -F- '{ print $(NF - 1) + 0 }'
}

# strictly_increasing: stdin numbers, each larger than the one before.
strictly_increasing() {
    awk 'NR > 1 && $1 <= p { bad = 1 } { p = $1 } END { exit bad }'
}

cap() {
    local code=$1
    shift
    expect_exit "$code" -- "$PCAPFERRY" capture -c "$EMPTY" --no-drop --key "$SENSOR_KEY" \
        --to "$CENTRAL_PUB" --spool "$SP" --outbox "$OB" --state "$ST" "$@"
}

# import_into STATE INGEST SOURCE... [extra options before --]: the importer.
imp() {
    local code=$1 st=$2 ing=$3
    shift 3
    mkdir -p "$ing"
    expect_exit "$code" -- "$PCAPFERRY" import --key "$CENTRAL_KEY" --keyring "$KEYRING" \
        --state "$st" --ingest "$ing" --settle-ms 0 "$@"
}

# shim cmd...: runs cmd with the faultio shim preloaded (FAULTIO_* and
# FAKECLOCK_FILE come from the caller's environment).
shim() {
    ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}:verify_asan_link_order=0" \
        LD_PRELOAD="$FAULTIO" "$@"
}

# ================================================================ 1. ENOSPC

if ((ROOT == 0)); then
    echo "SKIPPED (part 1, ENOSPC): mounting a tmpfs needs root"
fi

# ---------------------------------------------------------------- bundle create
if ((ROOT)); then
    section "ENOSPC: bundle create into a full directory"
    OUT=$T/c1/out
    if ! tmpfs "$OUT" 512k; then
        echo "SKIPPED (this section): cannot mount a tmpfs: $(cat "$T/mount.err")"
    else
        fill "$OUT" 16
        expect_exit 75 -- "$PCAPFERRY" bundle create --key "$SENSOR_KEY" --to "$CENTRAL_PUB" \
            --out "$OUT" --state "$T/c1/state" "$PF_IN/p1.pcap"
        expect_stderr_contains "$OUT"
        expect_stderr_contains "No space left on device"
        expect_eq "nothing visible in the full directory" "" "$(visible "$OUT")"
        expect_eq "no partial (dot) file left in it" "" "$(dot_files "$OUT")"
        rm -f "$OUT/.filler"
        expect_exit 0 -- "$PCAPFERRY" bundle create --key "$SENSOR_KEY" --to "$CENTRAL_PUB" \
            --out "$OUT" --state "$T/c1/state" "$PF_IN/p1.pcap"
        # The failed run reserved seq 1 durably (a number is never reused):
        # the bundle is seq 2 and names no predecessor, so central sees a
        # declared skip, not a gap.
        expect_eq "after making room: one bundle, seq 2 (seq 1 burnt, never reused)" 2 \
            "$(seqs_of "$OUT" | tr '\n' ' ' | sed 's/ $//')"
        imp 0 "$T/c1/istate" "$T/c1/ingest" "$OUT"
        expect_stderr_contains "1 new, 0 already imported, 0 rejected, 0 gaps (1 files delivered"
        expect_eq "the delivered pcap is the original" "$(b2_256 "$PF_IN/p1.pcap")" \
            "$(b2_256 "$(find "$T/c1/ingest/$S" -name '*.pcap' | head -n 1)")"
    fi
fi

# ---------------------------------------------------------------- capture spool
if ((ROOT)); then
    section "ENOSPC: capture spool full (-r, 768 KiB tmpfs spool)"
    SP=$T/c2/spool
    OB=$T/c2/outbox
    ST=$T/c2/state
    if ! tmpfs "$SP" 768k; then
        echo "SKIPPED (this section): cannot mount a tmpfs: $(cat "$T/mount.err")"
    else
        # -G 10: one 4.6 MB window; the 1 MiB write buffer cannot be
        # flushed into 768 KiB, so the spool is full from the first flush.
        cap 0 -G 10 -r "$A"
        cp "$PF_ERR" "$T/c2.log"
        expect_stderr_contains "spool write failed"
        expect_stderr_contains "No space left on device"
        expect_stderr_contains "packets are counted as not saved"
        # whatever is left in the spool is sealed once there is room
        mount -o remount,size=64m "$SP"
        cap 0 -r "$SMALL"
        cat "$PF_ERR" >>"$T/c2.log"
        expect_eq "spool empty after a run with room" "" "$(find "$SP" -mindepth 1 -printf '%P ')"
        open_outbox "$OB" "$T/c2/open"
        mapfile -t files <"$T/c2/open.list"
        seen=$(stat_sum "$T/c2/open" packets_seen)
        saved=$(stat_sum "$T/c2/open" packets_saved)
        full=$(stat_sum "$T/c2/open" not_saved_disk_full)
        echo "spool full: seen $seen, saved $saved, not_saved_disk_full $full"
        expect_eq "every packet read was seen" 5050 "$seen"
        expect_true "packets were lost to the full spool and counted ($full)" -- test "$full" -gt 0
        expect_eq "seen = saved + not_saved_disk_full" "$seen" $((saved + full))
        expect_eq "the pcaps hold exactly the packets counted as saved" "$saved" \
            "$(count "${files[@]}")"
        expect_eq "every pcap reads cleanly (no half record inside)" "" \
            "$(clean_read "${files[@]}")"
        expect_eq "manifests read_status" "complete" \
            "$(jq -rs '[.[].files[].read_status] | unique | join(" ")' "$T/c2/open"/*.manifest.json)"
        # the saved packets are a.pcap's, in order: a subsequence of it
        view "$A" "$SMALL" | awk '/^[0-9]/ { print $1 }' >"$T/c2.orig"
        view "${files[@]}" | awk '/^[0-9]/ { print $1 }' >"$T/c2.got"
        expect_eq "the saved packets are original ones, in order" "$(wc -l <"$T/c2.got")" \
            "$(awk 'NR == FNR { want[NR] = $1; n = NR; next } { while (i < n && want[++i] != $1) ; if (want[i] == $1) k++ } END { print k + 0 }' "$T/c2.orig" "$T/c2.got")"
    fi
fi

# ---------------------------------------------------------------- sensor outbox
if ((ROOT)); then
    section "ENOSPC: the sensor's outbox full while sealing"
    SP=$T/c3/spool
    OB=$T/c3/outbox
    ST=$T/c3/state
    if ! tmpfs "$OB" 1536k; then
        echo "SKIPPED (this section): cannot mount a tmpfs: $(cat "$T/mount.err")"
    else
        # -G 2: five bundles of about 0.9 MB; one fits.
        t0=$SECONDS
        expect_exit 0 -- timeout -s KILL 60 "$PCAPFERRY" capture -c "$EMPTY" --no-drop \
            --key "$SENSOR_KEY" --to "$CENTRAL_PUB" --spool "$SP" --outbox "$OB" --state "$ST" \
            -G 2 -r "$A"
        cp "$PF_ERR" "$T/c3.log"
        expect_true "the daemon stopped on its own within 30 s ($((SECONDS - t0)) s)" -- \
            test $((SECONDS - t0)) -le 30
        # a bundle sealed before the outbox filled; the next ones wait
        # without trying (and burning seqs) once the free space is too small
        expect_stderr_contains "outbox file system full"
        expect_stderr_contains "sealing waits for room"
        expect_stderr_contains "left in the spool"
        first=$(bundles_in "$OB")
        expect_true "some bundles were sealed before the outbox filled" -- test -n "$first"
        expect_eq "no partial bundle left in the outbox" "" "$(dot_files "$OB")"
        expect_exit 0 -- "$PCAPFERRY" bundle verify --keyring "$KEYRING" "$OB"/*.pcapferry
        left=$(find "$SP" -maxdepth 1 -name '*.pcap' ! -name '.*' | wc -l)
        expect_true "capture files wait in the spool ($left)" -- test "$left" -gt 0
        # room again
        mount -o remount,size=64m "$OB"
        cap 0 -r "$SMALL"
        expect_eq "spool empty after a run with room" "" "$(find "$SP" -mindepth 1 -printf '%P ')"
        open_outbox "$OB" "$T/c3/open"
        mapfile -t files <"$T/c3/open.list"
        view "$A" "$SMALL" >"$T/c3.orig"
        view "${files[@]}" >"$T/c3.got"
        expect_same_file "every packet arrived, in order (nothing lost to the full outbox)" \
            "$T/c3.orig" "$T/c3.got"
        expect_eq "not_saved_disk_full" 0 "$(stat_sum "$T/c3/open" not_saved_disk_full)"
        expect_true "seqs strictly increase (no seq reused)" -- strictly_increasing < <(seqs_of "$OB")
        # sealing waited instead of failing: no number was burnt
        expect_eq "seqs are 1..N without holes" "$(seqs_of "$OB" | wc -l)" "$(seqs_of "$OB" | sort -n | tail -1)"
        imp 0 "$T/c3/istate" "$T/c3/ingest" "$OB"
        expect_stderr_contains "0 rejected, 0 gaps"
    fi
fi

# ---------------------------------------------------------------- import state
# four small bundles, seq 1..4, for the import cases
IOB=$T/imp-outbox
mkdir -p "$IOB"
for i in 1 2 3 4; do
    "$PCAPFERRY" bundle create --key "$SENSOR_KEY" --to "$CENTRAL_PUB" --out "$IOB" --seq "$i" \
        "$PF_IN/p$i.pcap" >/dev/null 2>"$T/create.err" || die "bundle create: $(cat "$T/create.err")"
done

# delivered_ok INGEST: the ingest holds exactly p1..p4, each once, intact.
delivered_ok() {
    local ing=$1 label=$2 want have
    want=$(for i in 1 2 3 4; do b2_256 "$PF_IN/p$i.pcap"; done | sort)
    have=$(find "$ing" -type f -name '*.pcap' ! -name '.*' -exec b2sum -l 256 {} + | cut -d ' ' -f 1 | sort)
    expect_eq "$label: the ingest holds exactly the four pcaps, once each, intact" "$want" "$have"
    expect_eq "$label: no staging or dot file left in the ingest" "" "$(dot_files "$ing")"
}

if ((ROOT)); then
    section "ENOSPC: the import state directory (SQLite) full"
    IST=$T/c4/state
    ING=$T/c4/ingest
    if ! tmpfs "$IST" 1m; then
        echo "SKIPPED (this section): cannot mount a tmpfs: $(cat "$T/mount.err")"
    else
        imp 0 "$IST" "$ING" "$IOB/$(bundles_in "$IOB" | head -n 1)"
        fill "$IST"
        imp 75 "$IST" "$ING" "$IOB"
        cp "$PF_ERR" "$T/c4.log"
        expect_stderr_matches "$IST.*(No space left on device|database or disk is full)"
        expect_eq "no staging or dot file left in the ingest" "" "$(dot_files "$ING")"
        rm -f "$IST/.filler"
        imp 0 "$IST" "$ING" "$IOB"
        expect_stderr_contains "0 rejected, 0 gaps"
        delivered_ok "$ING" "state full, then room"
    fi
fi

# ---------------------------------------------------------------- receipts
if ((ROOT)); then
    section "ENOSPC: the receipts directory full"
    RC=$T/c5/receipts
    if ! tmpfs "$RC" 64k; then
        echo "SKIPPED (this section): cannot mount a tmpfs: $(cat "$T/mount.err")"
    else
        mkdir -p "$RC/$S"
        fill "$RC"
        # The bundles are delivered, but the run is not done until they are
        # acknowledged: exit 75, and --delete-source keeps the sources (a
        # deleted source could never be acknowledged again). A rerun
        # acknowledges the bundles again (already imported) and deletes.
        cp -a "$IOB" "$T/c5/src"
        imp 75 "$T/c5/state" "$T/c5/ingest" --receipts "$RC" --delete-source "$T/c5/src"
        expect_stderr_contains "could not write a receipt to $RC/$S"
        expect_stderr_contains "No space left on device"
        expect_stderr_contains "4 new, 0 already imported"
        expect_stderr_contains "1 receipt(s) NOT written: sources kept"
        expect_eq "no receipt, whole or partial, in the full directory" "" \
            "$(find "$RC" -mindepth 1 -type f ! -name .filler -printf '%P ')"
        expect_eq "the sources are kept for the next run" 4 "$(bundles_in "$T/c5/src" | wc -l)"
        delivered_ok "$T/c5/ingest" "receipts full"
        rm -f "$RC/.filler"
        imp 0 "$T/c5/state" "$T/c5/ingest" --receipts "$RC" --delete-source "$T/c5/src"
        expect_stderr_contains "0 new, 4 already imported"
        expect_eq "sources deleted once acknowledged" "" "$(bundles_in "$T/c5/src")"
        expect_eq "one receipt written on the rerun" 1 "$(find "$RC/$S" -type f ! -name '.*' | wc -l)"
        cp -a "$IOB" "$T/c5/outbox"
        expect_exit 0 -- "$PCAPFERRY" bundle prune --outbox "$T/c5/outbox" --receipts "$RC/$S" \
            --central "$CENTRAL_PUB"
        expect_eq "the receipt confirms all four bundles: the outbox is pruned" "" \
            "$(bundles_in "$T/c5/outbox")"
    fi
fi

echo "(part 1 took $SECONDS s)"
T1=$SECONDS

# ================================================================ 2. EIO (shim)

section "EIO: bundle create (write, fsync of the bundle; read of a capture)"
E1=$T/e1
mkdir -p "$E1/out"
CREATE=("$PCAPFERRY" bundle create --key "$SENSOR_KEY" --to "$CENTRAL_PUB" --out "$E1/out"
    --state "$E1/state")
FAULTIO_PATH=$E1/out FAULTIO_AFTER=3 FAULTIO_LOG=$E1/faults \
    expect_exit 2 -- shim "${CREATE[@]}" "$PF_IN/p1.pcap"
expect_stderr_contains "$E1/out"
expect_stderr_contains "write failed: Input/output error"
expect_true "the shim injected the fault" -- grep -q "^write $E1/out/" "$E1/faults"
expect_eq "write EIO: nothing left in the output directory" "" "$(find "$E1/out" -mindepth 1)"
FAULTIO_PATH=$E1/out FAULTIO_OPS=fsync expect_exit 2 -- shim "${CREATE[@]}" "$PF_IN/p1.pcap"
expect_stderr_matches "$E1/out/\.[^ ]*\.part: fsync failed: Input/output error"
expect_eq "fsync EIO: nothing left in the output directory" "" "$(find "$E1/out" -mindepth 1)"
FAULTIO_PATH=$E1/out FAULTIO_SHORT=1 FAULTIO_AFTER=2 \
    expect_exit 2 -- shim "${CREATE[@]}" "$PF_IN/p1.pcap"
expect_eq "a short write then EIO: nothing left" "" "$(find "$E1/out" -mindepth 1)"
FAULTIO_PATH=$PF_IN/p2.pcap FAULTIO_OPS=read,pread FAULTIO_AFTER=1 \
    expect_exit 2 -- shim "${CREATE[@]}" "$PF_IN/p2.pcap"
expect_stderr_contains "Input/output error"
expect_stderr_contains "p2.pcap"
expect_eq "read EIO on a capture: nothing left in the output directory" "" \
    "$(find "$E1/out" -mindepth 1)"
expect_exit 0 -- "${CREATE[@]}" "$PF_IN/p1.pcap"
expect_exit 0 -- "${CREATE[@]}" "$PF_IN/p2.pcap"
expect_true "after the faults: seqs strictly increase (failed runs burn, never reuse)" -- \
    strictly_increasing < <(seqs_of "$E1/out")
imp 0 "$E1/istate" "$E1/ingest" "$E1/out"
expect_stderr_contains "2 new, 0 already imported, 0 rejected, 0 gaps (2 files delivered"

section "EIO: bundle export (write to the stick; read-back verification)"
E2=$T/e2
cp -a "$IOB" "$E2-outbox"
EXPORT=("$PCAPFERRY" bundle export --outbox "$E2-outbox" --key "$SENSOR_PUB")
mkdir -p "$E2/stick"
FAULTIO_PATH=$E2/stick FAULTIO_AFTER=3 FAULTIO_TIMES=1 FAULTIO_LOG=$E2/faults \
    run shim "${EXPORT[@]}" "$E2/stick"
expect_true "write EIO on the stick: non-zero exit ($PF_RC)" -- test "$PF_RC" != 0
expect_false "no sanitizer report" -- pf_sanitizer_report
expect_true "the shim injected the fault" -- grep -q "^write $E2/stick/" "$E2/faults"
expect_stderr_contains "Input/output error"
expect_eq "no partial copy on the stick" "" "$(dot_files "$E2/stick")"
nstick=$(bundles_in "$E2/stick/pcapferry/$S" | wc -l)
nexp=$(find "$E2-outbox/.exported" -mindepth 1 2>/dev/null | wc -l)
expect_eq "exactly the bundles on the stick are marked exported" "$nstick" "$nexp"
expect_exit 0 -- "$PCAPFERRY" bundle verify --keyring "$KEYRING" "$E2/stick/pcapferry/$S"/*.pcapferry
FAULTIO_PATH=$E2/stick2 FAULTIO_OPS=read,pread mkdir -p "$E2/stick2"
FAULTIO_PATH=$E2/stick2 FAULTIO_OPS=read,pread FAULTIO_AFTER=0 FAULTIO_TIMES=2 \
    run shim "${EXPORT[@]}" "$E2/stick2"
expect_true "read EIO while verifying the copy: non-zero exit ($PF_RC)" -- test "$PF_RC" != 0
expect_stderr_contains "Input/output error"
expect_eq "no partial copy on the second stick" "" "$(dot_files "$E2/stick2")"
expect_exit 0 -- "${EXPORT[@]}" "$E2/stick"
expect_eq "rerun: all four bundles on the stick" 4 "$(bundles_in "$E2/stick/pcapferry/$S" | wc -l)"
imp 0 "$E2/istate" "$E2/ingest" "$E2/stick"
expect_stderr_contains "4 new, 0 already imported, 0 rejected, 0 gaps"
delivered_ok "$E2/ingest" "after export EIO"

section "EIO: import (staging writes; reading the source; the state database)"
E3=$T/e3
mkdir -p "$E3/ingest"
B2=$(bundles_in "$IOB" | sed -n 2p)
FAULTIO_PATH=$IOB/$B2 FAULTIO_OPS=read,pread FAULTIO_AFTER=2 FAULTIO_LOG=$E3/faults run shim "$PCAPFERRY" import \
    --key "$CENTRAL_KEY" --keyring "$KEYRING" --state "$E3/state" --ingest "$E3/ingest" \
    --settle-ms 0 "$IOB"
cp "$PF_ERR" "$E3/read.log"
expect_true "the shim failed a read of $B2" -- grep -Eq "^p?read.* $IOB/$B2 " "$E3/faults"
expect_true "source read EIO: non-zero exit ($PF_RC), not 1 (rejected)" -- \
    test "$PF_RC" != 0 -a "$PF_RC" != 1
expect_stderr_contains "Input/output error"
expect_eq "a bundle that could not be read is not quarantined" "" \
    "$(find "$E3/state/quarantine" -type f 2>/dev/null)"
expect_eq "source read EIO: no staging file left" "" "$(dot_files "$E3/ingest")"
FAULTIO_PATH=$E3/ingest FAULTIO_AFTER=2 expect_exit 2 -- shim "$PCAPFERRY" import \
    --key "$CENTRAL_KEY" --keyring "$KEYRING" --state "$E3/state" --ingest "$E3/ingest" \
    --settle-ms 0 "$IOB"
expect_stderr_contains "Input/output error"
expect_eq "ingest write EIO: no staging file left" "" "$(dot_files "$E3/ingest")"
# the group commit's one flush of the batch fails: nothing is recorded, the
# staged files go, the bundles stay for the next run
before=$(find "$E3/ingest" -type f | sort)
FAULTIO_PATH=$E3/ingest FAULTIO_OPS=syncfs FAULTIO_LOG=$E3/syncfs.faults expect_exit 2 -- \
    shim "$PCAPFERRY" import --key "$CENTRAL_KEY" --keyring "$KEYRING" --state "$E3/state" \
    --ingest "$E3/ingest" --settle-ms 0 "$IOB"
expect_true "the shim failed a syncfs of the ingest filesystem" -- grep -q "^syncfs $E3/ingest" "$E3/syncfs.faults"
expect_stderr_contains "$E3/ingest: syncfs failed: Input/output error"
expect_eq "syncfs EIO: no staging file left" "" "$(dot_files "$E3/ingest")"
expect_eq "syncfs EIO: nothing more delivered" "$before" "$(find "$E3/ingest" -type f | sort)"
FAULTIO_PATH=$E3/state/pcapferry.db FAULTIO_OPS=pwrite,write,fsync,fdatasync FAULTIO_AFTER=4 \
    expect_exit 2 -- shim "$PCAPFERRY" import --key "$CENTRAL_KEY" --keyring "$KEYRING" \
    --state "$E3/state" --ingest "$E3/ingest" --settle-ms 0 "$IOB"
expect_stderr_contains "$E3/state/pcapferry.db"
expect_stderr_matches "disk I/O error|Input/output error"
expect_eq "database EIO: no staging file left" "" "$(dot_files "$E3/ingest")"
imp 0 "$E3/state" "$E3/ingest" "$IOB"
expect_stderr_contains "0 rejected, 0 gaps"
delivered_ok "$E3/ingest" "after import EIO"

section "EIO: capture spool (a short write, then EIO; fdatasync EIO at rotation)"
SP=$T/e4/spool
OB=$T/e4/outbox
ST=$T/e4/state
mkdir -p "$SP"
# -C 1: every 1 MB file is one flush of the 1 MiB buffer at rotation; the
# second flush is cut short, the next write fails.
FAULTIO_PATH=$SP/.active- FAULTIO_SHORT=1 FAULTIO_AFTER=1 FAULTIO_TIMES=2 FAULTIO_LOG=$T/e4.faults \
    expect_exit 0 -- shim "$PCAPFERRY" capture -c "$EMPTY" --no-drop --key "$SENSOR_KEY" \
    --to "$CENTRAL_PUB" --spool "$SP" --outbox "$OB" --state "$ST" -C 1 -r "$A"
cp "$PF_ERR" "$T/e4.log"
expect_true "the shim cut a spool write short and failed the next" -- \
    test "$(grep -c "^write $SP/.active-" "$T/e4.faults")" = 2
expect_stderr_contains "Input/output error"
FAULTIO_PATH=$SP FAULTIO_OPS=fdatasync FAULTIO_TIMES=1 \
    expect_exit 0 -- shim "$PCAPFERRY" capture -c "$EMPTY" --no-drop --key "$SENSOR_KEY" \
    --to "$CENTRAL_PUB" --spool "$SP" --outbox "$OB" --state "$ST" -C 1 -r "$SMALL"
cat "$PF_ERR" >>"$T/e4.log"
expect_stderr_contains "fdatasync failed: Input/output error"
expect_eq "spool empty" "" "$(find "$SP" -mindepth 1 -printf '%P ')"
open_outbox "$OB" "$T/e4/open"
mapfile -t files <"$T/e4/open.list"
seen=$(stat_sum "$T/e4/open" packets_seen)
saved=$(stat_sum "$T/e4/open" packets_saved)
full=$(stat_sum "$T/e4/open" not_saved_disk_full)
echo "spool EIO: seen $seen, saved $saved, not_saved_disk_full $full"
expect_eq "every packet read was seen" 5050 "$seen"
expect_true "packets lost to the failed writes are counted ($full)" -- test "$full" -gt 0
expect_eq "seen = saved + not_saved_disk_full" "$seen" $((saved + full))
expect_eq "the pcaps hold exactly the packets counted as saved" "$saved" "$(count "${files[@]}")"
expect_eq "every pcap reads cleanly (no half record inside)" "" "$(clean_read "${files[@]}")"

section "EIO: the spool refuses the statistics file at rotation (kept in memory, not lost)"
SP=$T/e5/spool
OB=$T/e5/outbox
ST=$T/e5/state
FAULTIO_PATH=.stats.json FAULTIO_TIMES=2 \
    expect_exit 0 -- shim "$PCAPFERRY" capture -c "$EMPTY" --no-drop --key "$SENSOR_KEY" \
    --to "$CENTRAL_PUB" --spool "$SP" --outbox "$OB" --state "$ST" -G 2 -r "$A"
expect_stderr_matches "statistics kept in memory: .*stats\.json.*Input/output error"
expect_eq "spool empty" "" "$(find "$SP" -mindepth 1 -printf '%P ')"
open_outbox "$OB" "$T/e5/open"
expect_eq "every file has its capture statistics" 0 \
    "$(jq -s '[.[].files[] | select(.capture_stats.packets_seen == null)] | length' "$T/e5/open"/*.manifest.json)"
expect_eq "packets_saved over all files" 5000 "$(stat_sum "$T/e5/open" packets_saved)"
echo "(part 2 took $((SECONDS - T1)) s)"
T2=$SECONDS

# ================================================================ 3. inotify

section "a full inotify queue under import --watch: overflow noticed, rescan, exactly once"
if ((ROOT == 0)) || [[ ! -w "$QUEUED_FILE" ]]; then
    echo "SKIPPED (this section): lowering $QUEUED_FILE needs root"
else
    W=$T/w
    mkdir -p "$W/incoming" "$W/ingest/$S" "$W/stage" "$W/pcaps"
    NW=40
    for ((i = 1; i <= NW; i++)); do
        "$PCAPGEN" --packets 20 --seed $((100 + i)) --start $((1700100000 + 10 * i)) \
            "$W/pcaps/w$i.pcap" >/dev/null 2>&1 || die "pcapgen failed"
    done
    "$PCAPFERRY" bundle create --key "$SENSOR_KEY" --to "$CENTRAL_PUB" --out "$W/stage" \
        --state "$W/sstate" "$W/pcaps/w1.pcap" >/dev/null 2>&1 || die "bundle create failed"
    for ((i = 2; i <= NW; i++)); do
        "$PCAPFERRY" bundle create --key "$SENSOR_KEY" --to "$CENTRAL_PUB" --out "$W/stage" \
            --state "$W/sstate" "$W/pcaps/w$i.pcap" >/dev/null 2>&1 || die "bundle create failed"
    done
    QUEUED_OLD=$(cat "$QUEUED_FILE")
    # the limit is taken when the importer makes its inotify instance
    echo 4 >"$QUEUED_FILE"
    "$PCAPFERRY" import --key "$CENTRAL_KEY" --keyring "$KEYRING" --state "$W/state" \
        --ingest "$W/ingest" --settle-ms 0 --watch --delete-source --rescan 3600 \
        "$W/incoming" >"$W/watch.log" 2>&1 </dev/null &
    WPID=$!
    PIDS+=("$WPID")
    sleep 1.5
    echo "$QUEUED_OLD" >"$QUEUED_FILE"
    QUEUED_OLD=
    # 40 renames into place at once, as rsync would: far more events than 4
    mv "$W/stage"/*.pcapferry "$W/incoming/"
    delivered() { (($(find "$W/ingest/$S" -name '*.pcap' ! -name '.*' | wc -l) >= NW)); }
    for ((i = 0; i < 300; i++)); do
        delivered && break
        sleep 0.1
    done
    sleep 0.5 # anything delivered twice would show by now
    kill -TERM "$WPID"
    wait "$WPID"
    expect_eq "import --watch exit status after SIGTERM" 0 "$?"
    expect_true "the overflow is logged" -- grep -q "inotify event queue overflowed; rescanning" \
        "$W/watch.log"
    expect_eq "every bundle delivered, each once" "$NW" \
        "$(find "$W/ingest/$S" -name '*.pcap' ! -name '.*' | wc -l)"
    expect_eq "each bundle imported once" "$NW" \
        "$(grep -c 'status=imported' "$W/watch.log")"
    expect_eq "no staging file left" "" "$(dot_files "$W/ingest")"
    expect_eq "incoming emptied (--delete-source)" "" "$(visible "$W/incoming")"
    want=$(for ((i = 1; i <= NW; i++)); do b2_256 "$W/pcaps/w$i.pcap"; done | sort)
    have=$(find "$W/ingest/$S" -name '*.pcap' -exec b2sum -l 256 {} + | cut -d ' ' -f 1 | sort)
    expect_eq "the delivered pcaps are the originals" "$want" "$have"
    if grep -Eq 'ERROR: (Address|Leak|UndefinedBehavior)Sanitizer|runtime error:' "$W/watch.log"; then
        fail "sanitizer report from import --watch"
    fi
fi
echo "(part 3 took $((SECONDS - T2)) s)"
T3=$SECONDS

# ================================================================ 4. clock jump

section "the sensor's wall clock jumps back 30 s, then forward again, during live capture"
if ((ROOT == 0)); then
    echo "SKIPPED (this section): network namespaces need root"
elif ! command -v ip >/dev/null || ! command -v tcpreplay >/dev/null; then
    echo "SKIPPED (this section): needs ip and tcpreplay"
elif ! ip netns add "pff-a-$$" 2>"$T/netns.err"; then
    echo "SKIPPED (this section): cannot create a network namespace: $(cat "$T/netns.err")"
else
    NSA=pff-a-$$
    NSB=pff-b-$$
    VA=pffa$$
    VB=pffb$$
    NETNS+=("$NSA")
    ip netns add "$NSB" && NETNS+=("$NSB")
    {
        ip link add "$VA" type veth peer name "$VB" &&
            ip link set "$VA" netns "$NSA" &&
            ip link set "$VB" netns "$NSB" &&
            ip netns exec "$NSA" sysctl -qw "net.ipv6.conf.$VA.disable_ipv6=1" &&
            ip netns exec "$NSB" sysctl -qw "net.ipv6.conf.$VB.disable_ipv6=1" &&
            ip -n "$NSA" link set "$VA" mtu 9000 up &&
            ip -n "$NSB" link set "$VB" mtu 9000 up
    } >"$T/veth.err" 2>&1 || die "cannot set up the veth pair: $(cat "$T/veth.err")"
    MAC_A=$(ip -n "$NSA" -o link show "$VA" | grep -o 'link/ether [0-9a-f:]*' | cut -d ' ' -f 2)
    MAC_B=$(ip -n "$NSB" -o link show "$VB" | grep -o 'link/ether [0-9a-f:]*' | cut -d ' ' -f 2)
    FILTER="not ether src $MAC_A and not ether src $MAC_B"
    SP=$T/k/spool
    OB=$T/k/outbox
    ST=$T/k/state
    OFF=$T/k/offset
    mkdir -p "$T/k"
    echo 0 >"$OFF"
    KLOG=$T/k/daemon.log
    # env, not the shim function: $! must be the daemon (ip netns exec execs)
    env FAKECLOCK_FILE="$OFF" LD_PRELOAD="$FAULTIO" \
        ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}:verify_asan_link_order=0" \
        ip netns exec "$NSA" "$PCAPFERRY" capture -c "$EMPTY" -i "$VA" \
        --no-drop --key "$SENSOR_KEY" --to "$CENTRAL_PUB" --spool "$SP" --outbox "$OB" \
        --state "$ST" -G 2 "$FILTER" >"$KLOG" 2>&1 </dev/null &
    KPID=$!
    PIDS+=("$KPID")
    for ((i = 0; i < 150; i++)); do
        grep -qs 'capturing source=' "$KLOG" && break
        sleep 0.1
    done
    make_pcap live.pcap --packets 1600 --seed 51
    ip netns exec "$NSB" tcpreplay -i "$VB" --pps 200 "$PF_IN/live.pcap" >"$T/k/replay.out" 2>&1 &
    RPID=$!
    PIDS+=("$RPID")
    sleep 2.5
    echo -30 >"$OFF" # back 30 s
    sleep 3
    echo 0 >"$OFF" # and forward again
    wait "$RPID"
    sleep 0.5
    kill -TERM "$KPID"
    wait "$KPID"
    expect_eq "daemon exit status after SIGTERM" 0 "$?" || pf_show daemon.log "$KLOG"
    sent=$(sed -n 's/^[[:space:]]*Successful packets:[[:space:]]*\([0-9]*\).*/\1/p' "$T/k/replay.out")
    expect_eq "tcpreplay sent every packet" 1600 "$sent"
    expect_true "the backward jump is logged" -- grep -Eq 'wall clock jumped by -(29|30|31)[0-9]{3} ms' "$KLOG"
    expect_true "the forward jump is logged" -- grep -Eq 'wall clock jumped by \+(29|30|31)[0-9]{3} ms' "$KLOG"
    open_outbox "$OB" "$T/k/open"
    mapfile -t files <"$T/k/open.list"
    M=("$T/k/open"/*.manifest.json)
    expect_eq "the jumps are recorded in capture_stats.clock_jump_ns" "-30 30" \
        "$(jq -s '[.[].files[].capture_stats.clock_jump_ns | select(. != 0) | . / 1e9 | round] | join(" ")' -r "${M[@]}")"
    expect_eq "bundles = sealed log lines (nothing sealed twice)" "$(bundles_in "$OB" | wc -l)" \
        "$(grep -c 'sealed bundle=' "$KLOG")"
    expect_eq "no pcap name twice" "" \
        "$(jq -r '.files[].name' "${M[@]}" | sort | uniq -d)"
    expect_true "seqs strictly increase" -- strictly_increasing < <(seqs_of "$OB")
    expect_eq "packets captured = packets sent" "$sent" "$(count "${files[@]}")"
    bytes_view "$PF_IN/live.pcap" >"$T/k/sent.view"
    bytes_view "${files[@]}" >"$T/k/got.view"
    expect_same_file "captured packets are the sent ones, in order" "$T/k/sent.view" "$T/k/got.view"
    # every file's window is at most -G (2 s, plus the 250 ms grace) and
    # holds only packets stamped inside it
    bad=$(jq -r '.seq as $s | .files[] | .capture_stats as $c |
        select(($c.window_end_ns - $c.window_start_ns) > 2300000000 or
               (.packets > 0 and (.first_ts_ns < $c.window_start_ns or .last_ts_ns > $c.window_end_ns + 300000000)))
        | "seq \($s): \($c.window_start)..\($c.window_end) packets \(.first_ts_ns)..\(.last_ts_ns) by \($c.rotated_by); "' "${M[@]}")
    expect_eq "windows at most -G long, holding only their own packets" "" "$bad"
    nfiles=${#files[@]}
    expect_true "rotation neither stalled nor stormed: $nfiles files for about 9 s at -G 2" -- \
        test "$nfiles" -ge 4 -a "$nfiles" -le 12
fi
echo "(part 4 took $((SECONDS - T3)) s; total $SECONDS s)"
summary
