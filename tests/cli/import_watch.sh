#!/usr/bin/env bash
# shellcheck disable=SC2317 # helpers run through wait_for and the EXIT trap
# pcapferry import --watch on an rsync target, with Arkime's monitor mode
# emulated by tests/tools/arkime_watch (inotify, exactly IN_CLOSE_WRITE |
# IN_CREATE) on the ingest directory:
#   (a) bundles rsynced in (rsync writes .NAME.XXXXXX, then renames): each
#       imported once, the incoming directory empties (--delete-source);
#   (b) an rsync interrupted half way through a 50 MB bundle
#       (--partial-dir=.rsync-partial), then resumed: nothing partial is
#       imported, the bundle is imported once;
#   (c) a bundle copied in place with cp under its final name is imported,
#       also when it is written so slowly that a rescan finds it incomplete;
#   (d) a new sensor's first bundle: its INGEST/<sensor>/ directory is made,
#       and the pause after it (--settle-ms 200) lets Arkime watch it in time
#       (the watcher here handles a new directory 50 ms late, like a busy
#       capture; a control run with --settle-ms 0 and a 1 s lag shows that
#       such a file is otherwise missed);
#   (e) SIGTERM: exit 0 within 5 s, with the summary;
#   (f) SIGTERM during that pause: the bundle is still delivered after the
#       whole pause, so Arkime sees it, and the importer exits 0 within 5 s.
# Throughout, the watcher must see each delivered pcap once, whole.
# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.sh
. "${PF_TESTLIB:-$(dirname "${BASH_SOURCE[0]}")/lib.sh}"

require_binaries
require_cmd b2sum rsync date awk find
: "${ARKIME_WATCH:=$pf_lib_dir/../../build/tests/tools/arkime_watch}"
[[ -x "$ARKIME_WATCH" ]] || skip "ARKIME_WATCH=$ARKIME_WATCH is not an executable (build first)"

# Without symlinks: the importer names sources by their real path.
T=$(cd "$PF_TMP" && pwd -P)
WATCH_PID=
IMP_PID=
RSYNC_PID=
watch_cleanup() {
    local p
    for p in "$RSYNC_PID" "$IMP_PID" "$WATCH_PID"; do
        [[ -n "$p" ]] && kill -9 "$p" 2>/dev/null
    done
    return 0
}
watch_exit() {
    local rc=$?
    watch_cleanup
    (exit "$rc") # pf_cleanup reads the status from $?
    pf_cleanup
}
trap watch_exit EXIT

# wait_for WHAT SECONDS cmd...: polls cmd every 0.1 s; fails after SECONDS.
wait_for() {
    local what=$1 secs=$2 i
    shift 2
    # PF_TIME_SCALE (lib.sh) stretches the limit for slow runs (valgrind)
    for ((i = 0; i < $(pf_scaled "$secs") * 10; i++)); do
        "$@" >/dev/null 2>&1 && {
            pass "$what"
            return 0
        }
        if [[ -n "$IMP_PID" ]] && ! kill -0 "$IMP_PID" 2>/dev/null; then
            wait "$IMP_PID" 2>/dev/null
            fail "$what: the importer exited (status $?) instead"
            IMP_PID=
            pf_show "importer log" "$IMP_ERR"
            die "the importer died"
        fi
        sleep 0.1
    done
    fail "$what: not after $(pf_scaled "$secs") s"
    return 1
}

# stop_pid PID SECONDS: SIGTERM, then waits; sets STOP_RC to the exit
# status, or to "timeout" (and kills it) if it still runs after SECONDS.
# (Not in $(...): a subshell cannot wait for our children.)
stop_pid() {
    local pid=$1 secs=$2 i
    kill -TERM "$pid" 2>/dev/null
    for ((i = 0; i < secs * 20; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    if kill -0 "$pid" 2>/dev/null; then
        kill -9 "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        STOP_RC=timeout
        return
    fi
    wait "$pid" 2>/dev/null
    STOP_RC=$?
}

final_name() {
    printf '%s-%010d-%d-%s.pcap' "$1" "$2" "$3" "$(date -u -d "@$4" +%Y%m%dT%H%M%SZ)"
}

# make_bundle OUTDIR SENSOR SEQ NFILES START SIZE: as in import_crash.sh;
# appends "SENSOR/FINAL_NAME BLAKE2B" lines to $EXP and sets BUNDLE to the
# bundle's path. SIZE: packets, or bytes with a K or M suffix.
make_bundle() {
    local outdir=$1 sensor=$2 seq=$3 nfiles=$4 start=$5 size=(--packets "$6")
    local dir=$T/pcaps/$sensor-$seq n files=() s
    [[ $6 == *[KM] ]] && size=(--bytes "$6")
    mkdir -p "$dir" "$outdir"
    for ((n = 1; n <= nfiles; n++)); do
        s=$((start + 100 * (n - 1)))
        "$PCAPGEN" "${size[@]}" --seed $((${sensor##*-} * 10000 + seq * 10 + n)) --start "$s" "$dir/f$n.pcap" >/dev/null 2>&1 ||
            die "pcapgen failed"
        files+=("$dir/f$n.pcap")
        echo "$sensor/$(final_name "$sensor" "$seq" "$n" "$s") $(b2_256 "$dir/f$n.pcap")" >>"$EXP"
    done
    BUNDLE=$("$PCAPFERRY" bundle create --key "$T/keys/$sensor.key" --to "$CENTRAL_PUB" \
        --out "$outdir" --seq "$seq" "${files[@]}" 2>"$T/create.err") ||
        die "bundle create $sensor seq $seq failed: $(cat "$T/create.err")"
}

# imported_count BUNDLE_BASENAME: "status=imported" lines for it so far.
imported_count() {
    grep -F "bundle=$IN/$1 " "$IMP_ERR" | grep -c ' status=imported '
}
is_imported_once() { [[ $(imported_count "$1") == 1 ]]; }
# logged PATH: the watcher read PATH (whole or not) at least once.
logged() { awk -v p="$1" '$1 == p { f = 1 } END { exit !f }' "$WLOG"; }
no_bundles_in() { [[ -z $(find "$1" -maxdepth 1 -name '*.pcapferry' ! -name '.*') ]]; }

# check_watch_log LABEL EXPECT: every expected final name seen exactly once
# and whole; nothing else, nothing partial.
check_watch_log() {
    local label=$1 expect=$2 errs
    errs=$(awk -v ingest="$INGEST" '
        FNR == NR { want[$1] = $2; names[++nn] = $1; next }
        $0 == "OVERFLOW" { print "the inotify queue overflowed"; next }
        $1 == "CREATE" { print $2 " was created in place (IN_CREATE on a pcap name)"; next }
        {
            rel = substr($1, length(ingest) + 2)
            if (index($1, ingest "/") != 1) { print "unexpected path " $1; next }
            if ($3 == "PARTIAL") { print "Arkime was handed a partial file: " rel; next }
            if ($3 == "MISSING") { print "Arkime was handed a vanished file: " rel; next }
            if (!(rel in want)) { print "Arkime was handed a name that is no delivery: " rel; next }
            if ($3 != want[rel]) print "Arkime read " rel " with other bytes"
            cnt[rel]++
        }
        END {
            for (i = 1; i <= nn; i++)
                if (cnt[names[i]] != 1)
                    print names[i] " seen " cnt[names[i]] + 0 " times, expected once"
        }' "$expect" "$WLOG")
    if [[ -z "$errs" ]]; then
        pass "$label: the watcher saw every delivered pcap once, whole, and nothing else"
    else
        while IFS= read -r line; do fail "$label: $line"; done <<<"$errs"
    fi
}

# check_ingest LABEL EXPECT: INGEST holds exactly the expected files, each
# byte-identical to its original, and no dot file.
check_ingest() {
    local label=$1 expect=$2 rel hash bad=0
    expect_eq "$label: INGEST holds exactly the expected final names" \
        "$(cut -d ' ' -f 1 "$expect" | sort)" \
        "$(cd "$INGEST" && find . -mindepth 1 -type f -printf '%P\n' | sort)"
    expect_eq "$label: no staging or other dot file in INGEST" "" \
        "$(find "$INGEST" -mindepth 1 -name '.*' -printf '%P\n')"
    while read -r rel hash; do
        [[ -f "$INGEST/$rel" && $(b2_256 "$INGEST/$rel") == "$hash" ]] || {
            fail "$label: $rel missing or not byte-identical to the original"
            bad=1
        }
    done <"$expect"
    ((bad)) || pass "$label: every delivered pcap is byte-identical to its original"
}

# ---------------------------------------------------------------------- setup

setup_keys edge-01 central1
expect_exit 0 -- "$PCAPFERRY" keys generate sensor edge-02 --out "$T/keys" ||
    die "setup: cannot generate the second sensor key"
expect_exit 0 -- "$PCAPFERRY" keys trust "$T/keys/edge-02.pub" --keyring "$KEYRING" ||
    die "setup: cannot trust the second sensor key"

OUTBOX=$T/outbox
IN=$T/incoming
INGEST=$T/ingest
STATE=$T/state
EXP=$T/expected
WLOG=$T/watch.log
IMP_ERR=$T/import.err
mkdir -p "$IN" "$INGEST"
: >"$EXP"

make_bundle "$OUTBOX/a" edge-01 1 1 1700000000 300
make_bundle "$OUTBOX/a" edge-01 2 2 1700003600 300
make_bundle "$OUTBOX/a" edge-01 3 1 1700007200 300
make_bundle "$OUTBOX/a" edge-01 4 1 1700010800 300
EXP_A=$(cat "$EXP")
make_bundle "$OUTBOX/b" edge-01 5 1 1700014400 50M
BIG=$BUNDLE
make_bundle "$OUTBOX/c" edge-01 6 1 1700018000 300
CP_BUNDLE=$BUNDLE
make_bundle "$OUTBOX/c" edge-01 7 1 1700021600 8M
SLOW_BUNDLE=$BUNDLE
make_bundle "$OUTBOX/d" edge-02 1 1 1700000000 300
NEW_SENSOR=$BUNDLE

# The ingest directory starts empty: the importer makes edge-01/ (in (a))
# and edge-02/ (in (d)) while Arkime watches.
ARKIME_WATCH_DIR_LAG_MS=50 "$ARKIME_WATCH" --recursive "$INGEST" "$WLOG" 300 >"$WLOG.out" 2>"$WLOG.err" &
WATCH_PID=$!
wait_for "arkime_watch is watching $INGEST" 10 grep -qx ready "$WLOG.out" ||
    die "arkime_watch did not start: $(cat "$WLOG.err")"

"$PCAPFERRY" import --key "$CENTRAL_KEY" --keyring "$KEYRING" --state "$STATE" --ingest "$INGEST" \
    --watch --delete-source --rescan 2 --settle-ms 200 -v "$IN" >"$T/import.out" 2>"$IMP_ERR" </dev/null &
IMP_PID=$!
wait_for "the importer opened its state" 20 test -e "$STATE/pcapferry.db" ||
    die "the importer did not start: $(cat "$IMP_ERR")"

# ------------------------------------------------------------ (a) rsync

section "(a) bundles rsynced in (temp names, then rename) are each imported once"
expect_exit 0 -- rsync "$OUTBOX"/a/*.pcapferry "$IN/"
for b in "$OUTBOX"/a/*.pcapferry; do
    wait_for "$(basename "$b") imported" 20 is_imported_once "$(basename "$b")"
done
wait_for "the incoming directory empties (--delete-source)" 20 no_bundles_in "$IN"
expect_dir_empty "$IN"
while read -r rel _; do
    wait_for "the watcher saw $rel" 20 logged "$INGEST/$rel"
done <<<"$EXP_A"

# --------------------------------------------------- (b) interrupted rsync

section "(b) an rsync interrupted half way through a 50 MB bundle, then resumed"
BIGN=$(basename "$BIG")
BIGSIZE=$(file_size "$BIG")
rsync --partial-dir=.rsync-partial --bwlimit=8000 "$BIG" "$IN/" >"$T/rsync.out" 2>&1 &
RSYNC_PID=$!
tmp_size() { find "$IN" -maxdepth 1 -name ".$BIGN.*" -printf '%s\n' | head -n 1; }
half_way() { local s; s=$(tmp_size); [[ -n "$s" ]] && ((s >= 8 * 1024 * 1024)); }
wait_for "rsync wrote 8 MB of $BIGSIZE into its temp file" 20 half_way
stop_pid "$RSYNC_PID" 10
RSYNC_PID=
expect_eq "rsync was interrupted (exit 20: killed by a signal)" 20 "$STOP_RC"
PART=$IN/.rsync-partial/$BIGN
# rsync's receiver, a child that outlives the killed parent for a moment,
# moves its temp file into the partial dir.
partial_saved() { [[ -f "$PART" && -z "$(tmp_size)" ]]; }
wait_for "rsync kept the partial file in its partial dir" 10 partial_saved
expect_true "the partial file is shorter than the bundle" -- test "$(file_size "$PART")" -lt "$BIGSIZE"
expect_false "no bundle under its final name in the incoming dir" -- test -e "$IN/$BIGN"
# Negative check: nothing may happen for one full rescan period (2 s).
sleep 2.5
expect_eq "the partial bundle was not imported" 0 "$(grep -c "seq=5 " "$IMP_ERR")"
expect_eq "the importer saw no incomplete bundle" 0 "$(grep -c "status=incomplete" "$IMP_ERR")"
expect_eq "nothing from seq 5 in INGEST" "" "$(find "$INGEST" -name '*-0000000005-*')"
expect_eq "the watcher saw nothing from seq 5" 0 "$(grep -c -- '-0000000005-' "$WLOG")"
expect_exit 0 -- rsync --partial-dir=.rsync-partial "$BIG" "$IN/"
wait_for "the resumed bundle imported" 30 is_imported_once "$BIGN"
BIGREL=$(grep -F -- "edge-01-0000000005-" "$EXP" | cut -d ' ' -f 1)
wait_for "the watcher saw its pcap" 20 logged "$INGEST/$BIGREL"
wait_for "the incoming directory empties (partial dir included)" 20 \
    test -z "$(dir_listing "$IN")"
expect_dir_empty "$IN"

# ---------------------------------------------------------- (c) cp in place

section "(c) a bundle copied in place under its final name (IN_CLOSE_WRITE) is imported"
CPN=$(basename "$CP_BUNDLE")
expect_exit 0 -- cp "$CP_BUNDLE" "$IN/$CPN"
wait_for "$CPN imported" 20 is_imported_once "$CPN"
CPREL=$(grep -F -- "edge-01-0000000006-" "$EXP" | cut -d ' ' -f 1)
wait_for "the watcher saw its pcap" 20 logged "$INGEST/$CPREL"
wait_for "the incoming directory empties" 20 test -z "$(dir_listing "$IN")"

# A slow cp (from a slow USB stick): one open, 1 MB every 0.5 s, one close.
# The bundle has its final name for 4 s while incomplete, so a rescan (every
# 2 s) finds it; it must be left alone until its writer closes it.
SLOWN=$(basename "$SLOW_BUNDLE")
slow_cp() {
    local i mb=$((($(file_size "$1") + 1048575) / 1048576))
    for ((i = 0; i < mb; i++)); do
        dd if="$1" bs=1M skip="$i" count=1 status=none || return 1
        sleep 0.5
    done >"$2"
}
expect_exit 0 -- slow_cp "$SLOW_BUNDLE" "$IN/$SLOWN"
wait_for "$SLOWN imported" 20 is_imported_once "$SLOWN"
SLOWREL=$(grep -F -- "edge-01-0000000007-" "$EXP" | cut -d ' ' -f 1)
wait_for "the watcher saw its pcap" 20 logged "$INGEST/$SLOWREL"
wait_for "the incoming directory empties" 20 test -z "$(dir_listing "$IN")"
echo "  (the importer found $SLOWN incomplete $(grep -cF "bundle=$IN/$SLOWN status=incomplete" "$IMP_ERR") time(s) while it was written)"

# --------------------------------------------------------- (d) new sensor

section "(d) a new sensor's first bundle: a new ingest directory Arkime must watch in time"
expect_false "no edge-02 directory in INGEST yet" -- test -e "$INGEST/edge-02"
NSN=$(basename "$NEW_SENSOR")
expect_exit 0 -- rsync "$NEW_SENSOR" "$IN/"
wait_for "$NSN imported" 20 is_imported_once "$NSN"
expect_true "the importer made INGEST/edge-02" -- test -d "$INGEST/edge-02"
NSREL=$(grep -F -- "edge-02/" "$EXP" | cut -d ' ' -f 1)
wait_for "the watcher (which watches a new directory on IN_CREATE) saw $NSREL" 20 \
    logged "$INGEST/$NSREL"

# ------------------------------------------------------------- (e) SIGTERM

section "(e) SIGTERM: exit 0 within 5 s, with the summary"
stop_pid "$IMP_PID" 5
IMP_PID=
expect_eq "importer exit status after SIGTERM (within 5 s)" 0 "$STOP_RC"
SUMMARY=$(grep '^pcapferry import: [0-9]* new' "$IMP_ERR")
expect_eq "one summary line" 1 "$(grep -c . <<<"$SUMMARY")"
expect_true "summary: 8 new, 0 rejected, 0 gaps" -- \
    grep -q '^pcapferry import: 8 new, [0-9]* already imported, 0 rejected, 0 gaps' <<<"$SUMMARY"
expect_true "summary: 9 files delivered, 0 held" -- \
    grep -q '(9 files delivered, 0 held, ' <<<"$SUMMARY"
if grep -Eq 'ERROR: (Address|Leak|UndefinedBehavior)Sanitizer|runtime error:' "$IMP_ERR"; then
    fail "importer: sanitizer report"
    sed -n '1,30s/^/  | /p' "$IMP_ERR"
fi
for b in "$OUTBOX"/*/*.pcapferry; do
    expect_eq "$(basename "$b") imported exactly once" 1 "$(imported_count "$(basename "$b")")"
done

section "what Arkime saw over the whole session"
stop_pid "$WATCH_PID" 5
WATCH_PID=
expect_eq "arkime_watch exit status" 0 "$STOP_RC"
expect_false "arkime_watch: no sanitizer report" -- \
    grep -Eq 'ERROR: (Address|Leak|UndefinedBehavior)Sanitizer|runtime error:' "$WLOG.err"
check_ingest "watch session" "$EXP"
check_watch_log "watch session" "$EXP"

# ------------------------------------------------------------------ control

section "control: without the pause, a file in a new directory is missed by a lagging capture"
expect_exit 0 -- "$PCAPFERRY" keys generate sensor edge-03 --out "$T/keys"
expect_exit 0 -- "$PCAPFERRY" keys trust "$T/keys/edge-03.pub" --keyring "$KEYRING"
EXP_ALL=$EXP
EXP=$T/expected.control
: >"$EXP"
make_bundle "$OUTBOX/control" edge-03 1 1 1700000000 300
CTL_INGEST=$T/ingest-control
CTL_LOG=$T/watch-control.log
mkdir -p "$CTL_INGEST"
ARKIME_WATCH_DIR_LAG_MS=1000 "$ARKIME_WATCH" --recursive "$CTL_INGEST" "$CTL_LOG" 60 >"$CTL_LOG.out" 2>"$CTL_LOG.err" &
WATCH_PID=$!
wait_for "a watcher that handles new directories 1 s late" 10 grep -qx ready "$CTL_LOG.out"
expect_exit 0 -- "$PCAPFERRY" import --key "$CENTRAL_KEY" --keyring "$KEYRING" --state "$T/state-control" \
    --ingest "$CTL_INGEST" --settle-ms 0 "$OUTBOX/control"
CTLREL=$(cut -d ' ' -f 1 "$EXP")
expect_true "the file was delivered" -- test -f "$CTL_INGEST/$CTLREL"
sleep 1.2 # the watcher's lag, so that it has its watch on edge-03/
stop_pid "$WATCH_PID" 5
WATCH_PID=
expect_eq "the lagging watcher missed it (as Arkime would): (d) does test --settle-ms" 0 \
    "$(grep -c . "$CTL_LOG")"

# ------------------------------------------------ (f) SIGTERM in the pause

section "(f) SIGTERM during the pause after a new directory: the pause is honoured"
F=$T/f
mkdir -p "$F/in" "$F/ingest"
FLOG=$F/watch.log
# The watcher takes 1.2 s to watch a new directory, the importer pauses 2.5 s:
# only a pause cut short by the signal delivers before the watch is there.
ARKIME_WATCH_DIR_LAG_MS=1200 "$ARKIME_WATCH" --recursive "$F/ingest" "$FLOG" 60 >"$FLOG.out" 2>"$FLOG.err" &
WATCH_PID=$!
wait_for "a watcher that handles new directories 1.2 s late" 10 grep -qx ready "$FLOG.out"
IMP_ERR=$F/import.err
"$PCAPFERRY" import --key "$CENTRAL_KEY" --keyring "$KEYRING" --state "$F/state" --ingest "$F/ingest" \
    --watch --rescan 60 --settle-ms 2500 "$F/in" >/dev/null 2>"$IMP_ERR" </dev/null &
IMP_PID=$!
wait_for "the importer opened its state" 20 test -e "$F/state/pcapferry.db"
cp "$OUTBOX"/control/*.pcapferry "$F/in/"
wait_for "the importer made INGEST/edge-03 (and pauses 2.5 s)" 20 test -d "$F/ingest/edge-03"
sleep 0.3 # past the fsync of INGEST that precedes the pause: the signal lands in the pause
stop_pid "$IMP_PID" 5
IMP_PID=
expect_eq "importer exit status after SIGTERM in the pause (within 5 s)" 0 "$STOP_RC"
expect_true "the bundle in progress was delivered" -- test -f "$F/ingest/$CTLREL"
stop_pid "$WATCH_PID" 5
WATCH_PID=
expect_eq "the lagging watcher saw it: the pause was not cut short by the signal" 1 \
    "$(awk -v p="$F/ingest/$CTLREL" '$1 == p && NF == 3' "$FLOG" | grep -c .)"
EXP=$EXP_ALL
IMP_ERR=$T/import.err

if [[ "$PF_FAILED" != 0 ]]; then
    pf_show "importer log" "$IMP_ERR"
    pf_show "watcher log" "$WLOG"
fi
summary
