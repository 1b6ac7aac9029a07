#!/usr/bin/env bash
# pcapferry import: exactly-once delivery into Arkime's ingest directory when
# the importer is killed (kill -9) at every step of the delivery protocol, at
# random moments, and when the ingest filesystem is full.
#
# Arkime's `capture -m -R` is emulated by tests/tools/arkime_watch (inotify
# with exactly IN_CLOSE_WRITE | IN_CREATE). One watcher instance runs per
# importer run, so its log tells which run announced what. Invariants after
# the final run:
#   - the files in INGEST are exactly the expected final names, byte-identical
#     to the sensor's originals, with no staging (.part) or other dot file left;
#   - the watcher never saw a partial file nor a name that is not a delivery,
#     and every file it read had the original bytes;
#   - it saw every final name at least once, never twice in one run, and a
#     second time only after a run that was killed (the recovery re-announces
#     a file whose announcement had begun only if Arkime has not read it by
#     then); exactly once at every failpoint: after a kill past the
#     "announcing" commit, the file's atime (Arkime read it) decides;
#   - the state database has every bundle committed and every file delivered.
# The same with --arkime-socket (the stand-in speaking capture's command-socket
# protocol): killed before and after the add-file, and capture not running.
# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.sh
. "${PF_TESTLIB:-$(dirname "${BASH_SOURCE[0]}")/lib.sh}"

require_binaries
require_cmd b2sum date awk find
: "${ARKIME_WATCH:=$pf_lib_dir/../../build/tests/tools/arkime_watch}"
[[ -x "$ARKIME_WATCH" ]] || skip "ARKIME_WATCH=$ARKIME_WATCH is not an executable (build first)"

# Without symlinks: the importer names sources by their real path.
T=$(cd "$PF_TMP" && pwd -P)
WATCH_PID=
BG_PID=
DF_MNT=

# shellcheck disable=SC2317 # run from the EXIT trap
crash_cleanup() {
    [[ -n "$BG_PID" ]] && kill -9 "$BG_PID" 2>/dev/null
    [[ -n "$WATCH_PID" ]] && kill -9 "$WATCH_PID" 2>/dev/null
    if [[ -n "$DF_MNT" ]] && mountpoint -q "$DF_MNT" 2>/dev/null; then
        umount "$DF_MNT" 2>/dev/null || umount -l "$DF_MNT" 2>/dev/null
    fi
    return 0
}
# shellcheck disable=SC2317 # run from the EXIT trap
crash_exit() {
    local rc=$?
    crash_cleanup
    (exit "$rc") # pf_cleanup reads the status from $?
    pf_cleanup
}
trap crash_exit EXIT

# -------------------------------------------------------------------- helpers

# The state database, read with the sqlite3 shell or python3 (either may be
# missing on a user's machine; the checks that need it are then skipped).
db_query() {
    local db=$1/pcapferry.db sql=$2
    if command -v sqlite3 >/dev/null 2>&1; then
        sqlite3 -batch -noheader "$db" "$sql"
    elif command -v python3 >/dev/null 2>&1; then
        python3 -c 'import sqlite3, sys
for r in sqlite3.connect(sys.argv[1]).execute(sys.argv[2]):
    print("|".join("" if v is None else str(v) for v in r))' "$db" "$sql"
    else
        echo "NO-SQLITE"
    fi
}
# Does a read move an atime of 0 here (relatime, strictatime) or not
# (noatime)? The importer's crash recovery asks the file that question.
probe=$T/atime-probe
echo x >"$probe" && touch -a -d @0 "$probe" && cat "$probe" >/dev/null
ATIME_WORKS=1
[[ $(stat -c %X "$probe") == 0 ]] && ATIME_WORKS=0
((ATIME_WORKS)) || echo "  NOTE: reads do not update atime under $T (noatime): a file read before a kill is announced again"
HAVE_DB=1
command -v sqlite3 >/dev/null 2>&1 || command -v python3 >/dev/null 2>&1 || HAVE_DB=0

# watch_start INGEST LOG: an arkime_watch on INGEST writing LOG; waits for it
# to have set its watches.
watch_start() {
    local ingest=$1 log=$2 i
    : >"$log"
    "$ARKIME_WATCH" --recursive "$ingest" "$log" 120 >"$log.out" 2>"$log.err" &
    WATCH_PID=$!
    for ((i = 0; i < 200; i++)); do
        grep -qx ready "$log.out" 2>/dev/null && return 0
        kill -0 "$WATCH_PID" 2>/dev/null || break
        sleep 0.05
    done
    die "arkime_watch did not start on $ingest: $(cat "$log.err")"
}

# watch_stop: SIGTERM, the watcher drains what the kernel queued and exits.
watch_stop() {
    local i rc
    [[ -n "$WATCH_PID" ]] || return 0
    kill -TERM "$WATCH_PID" 2>/dev/null
    for ((i = 0; i < 100; i++)); do
        kill -0 "$WATCH_PID" 2>/dev/null || break
        sleep 0.05
    done
    kill -0 "$WATCH_PID" 2>/dev/null && kill -9 "$WATCH_PID" 2>/dev/null
    wait "$WATCH_PID"
    rc=$?
    WATCH_PID=
    expect_eq "arkime_watch exit status" 0 "$rc"
    if grep -Eq 'ERROR: (Address|Leak|UndefinedBehavior)Sanitizer|runtime error:' "$LAST_WATCH_LOG.err"; then
        fail "arkime_watch: sanitizer report"
        sed -n '1,20s/^/  | /p' "$LAST_WATCH_LOG.err"
    fi
}

# watched_run LOG EXPECTED_STATUS -- cmd...: cmd with a watcher around it.
watched_run() {
    local log=$1 want=$2
    shift 3
    LAST_WATCH_LOG=$log
    watch_start "$INGEST" "$log"
    expect_exit "$want" -- "$@" 2>/dev/null # no "Killed" job notice
    watch_stop
}

# The final name the importer gives file N of a bundle: the first packet's
# time (pcapgen --start) in UTC.
final_name() {
    printf '%s-%010d-%d-%s.pcap' "$1" "$2" "$3" "$(date -u -d "@$4" +%Y%m%dT%H%M%SZ)"
}

# make_bundle OUTBOX EXPECT SENSOR SEQ NFILES START SIZE: pcaps from
# pcapgen (seeded by sensor, seq and file), one bundle into OUTBOX, and one
# line "SENSOR/FINAL_NAME BLAKE2B" per file appended to EXPECT. SIZE is a
# packet count, or bytes with a K or M suffix.
make_bundle() {
    local outbox=$1 expect=$2 sensor=$3 seq=$4 nfiles=$5 start=$6 size=(--packets "$7")
    local dir=$T/pcaps/$sensor-$seq n files=() s seed
    [[ $7 == *[KM] ]] && size=(--bytes "$7")
    mkdir -p "$dir" "$outbox"
    for ((n = 1; n <= nfiles; n++)); do
        s=$((start + 100 * (n - 1)))
        seed=$((${sensor##*-} * 10000 + seq * 10 + n))
        "$PCAPGEN" "${size[@]}" --seed "$seed" --start "$s" "$dir/f$n.pcap" >/dev/null 2>&1 ||
            die "pcapgen failed"
        files+=("$dir/f$n.pcap")
        echo "$sensor/$(final_name "$sensor" "$seq" "$n" "$s") $(b2_256 "$dir/f$n.pcap")" >>"$expect"
    done
    "$PCAPFERRY" bundle create --key "$T/keys/$sensor.key" --to "$CENTRAL_PUB" --out "$outbox" \
        --seq "$seq" "${files[@]}" >/dev/null 2>"$T/create.err" ||
        die "bundle create $sensor seq $seq failed: $(cat "$T/create.err")"
}

# fresh_ingest DIR SENSOR...: an empty ingest directory with the sensors'
# directories made ahead of time, as the Arkime notes advise (with
# --settle-ms 0 a directory the importer makes could be watched too late;
# import_watch.sh tests that pause).
fresh_ingest() {
    local dir=$1 s
    shift
    rm -rf "$dir"
    mkdir -p "$dir"
    for s in "$@"; do mkdir "$dir/$s"; done
}

# count_logged LOG PATH: how many times the watcher ingested PATH.
count_logged() {
    awk -v p="$2" '$1 == p && NF == 3 { n++ } END { print n + 0 }' "$1"
}

# check_delivery LABEL EXPECT MIN MAX STATUSES LOG...
#   STATUSES: the exit status of each run, in order, space separated; LOG i
#   is the watcher log of run i. Checks every invariant listed at the top and
#   prints how often each file was announced.
check_delivery() {
    local label=$1 expect=$2 min=$3 max=$4 statuses=$5
    shift 5
    local want have bad=0 rel hash got
    want=$(cut -d ' ' -f 1 "$expect" | sort)
    have=$(cd "$INGEST" && find . -mindepth 1 -type f -printf '%P\n' | sort)
    if [[ "$want" == "$have" ]]; then
        pass "$label: INGEST holds exactly the expected final names"
    else
        fail "$label: INGEST does not hold exactly the expected final names"
        diff <(echo "$want") <(echo "$have") | sed -n '1,20s/^/  | /p'
    fi
    local dots
    dots=$(find "$INGEST" -mindepth 1 -name '.*' -printf '%P\n')
    expect_eq "$label: no staging or other dot file left in INGEST" "" "$dots"
    while read -r rel hash; do
        [[ -f "$INGEST/$rel" ]] || continue
        got=$(b2_256 "$INGEST/$rel")
        [[ "$got" == "$hash" ]] || {
            fail "$label: $rel differs from the sensor's original"
            bad=1
        }
    done <"$expect"
    ((bad)) || pass "$label: every delivered pcap is byte-identical to its original"

    local report
    report=$(printf '%s\n' "$statuses" | tr ' ' '\n' |
        awk -v ingest="$INGEST" -v min="$min" -v max="$max" '
        FNR == 1 { fi++ }
        fi == 1 { want[$1] = $2; names[++nn] = $1; next }
        fi == 2 { st[++nr] = $1; next }
        {
            run = fi - 2
            if ($0 == "OVERFLOW") { print "ERR run " run ": the inotify queue overflowed"; next }
            if ($1 == "CREATE") {
                print "ERR run " run ": " $2 " was created in place (IN_CREATE on a pcap name)"
                next
            }
            if (index($1, ingest "/") != 1) { print "ERR run " run ": unexpected path " $1; next }
            rel = substr($1, length(ingest) + 2)
            if ($3 == "PARTIAL") { print "ERR run " run ": Arkime was handed a partial file: " rel; next }
            if ($3 == "MISSING") { print "ERR run " run ": Arkime was handed a vanished file: " rel; next }
            if (!(rel in want)) { print "ERR run " run ": Arkime was handed a name that is no delivery: " rel; next }
            if ($3 != want[rel]) print "ERR run " run ": Arkime read " rel " with other bytes"
            cnt[rel]++
            per[rel, run]++
            last[rel] = run
        }
        END {
            for (i = 1; i <= nn; i++) {
                r = names[i]
                if (cnt[r] < min || cnt[r] > max)
                    print "ERR " r " announced " cnt[r] + 0 " times, expected " min (max > min ? ".." max : "")
                runs = ""
                for (k = 1; k <= nr; k++) {
                    if (per[r, k] == "") continue
                    runs = runs " " k
                    if (per[r, k] > 1) print "ERR " r " announced " per[r, k] " times in run " k
                    if (k != last[r] && st[k] != 137)
                        print "ERR " r " announced in run " k " (exit " st[k] ") and again in a later run"
                }
                print "SEEN " cnt[r] + 0 " " r " runs:" runs
            }
        }' "$expect" - "$@")
    local errs
    errs=$(grep '^ERR ' <<<"$report")
    if [[ -z "$errs" ]]; then
        pass "$label: the watcher saw every final name, whole, never twice in one run"
    else
        while IFS= read -r line; do fail "$label: ${line#ERR }"; done <<<"$errs"
    fi
    local once twice
    once=$(grep -c '^SEEN 1 ' <<<"$report")
    twice=$(grep '^SEEN ' <<<"$report" | grep -vc '^SEEN 1 ')
    echo "  $label: watcher saw $once file(s) once and $twice more than once (allowed: $min..$max)"
    grep '^SEEN ' <<<"$report" | grep -v '^SEEN [01] ' | sed 's/^SEEN \([0-9]*\) /  announced \1 times: /'
    if ((HAVE_DB)); then
        expect_eq "$label: bundles not committed" 0 \
            "$(db_query "$STATE" "SELECT COUNT(*) FROM bundles WHERE status != 'committed'")"
        expect_eq "$label: files not delivered" 0 \
            "$(db_query "$STATE" "SELECT COUNT(*) FROM deliveries WHERE state != 'delivered'")"
        expect_eq "$label: files recorded" "$(wc -l <"$expect")" \
            "$(db_query "$STATE" "SELECT COUNT(*) FROM deliveries")"
    fi
}

# ---------------------------------------------------------------------- setup

setup_keys edge-01 central1
expect_exit 0 -- "$PCAPFERRY" keys generate sensor edge-02 --out "$T/keys" ||
    die "setup: cannot generate the second sensor key"
expect_exit 0 -- "$PCAPFERRY" keys trust "$T/keys/edge-02.pub" --keyring "$KEYRING" ||
    die "setup: cannot trust the second sensor key"

# Two sensors x 3 bundles; the first bundle of each sensor in import order
# (edge-01 seq 1) and one more carry two files.
OUT=$T/outbox
EXP=$T/expected
: >"$EXP"
make_bundle "$OUT" "$EXP" edge-01 1 2 1700000000 400
make_bundle "$OUT" "$EXP" edge-01 2 1 1700003600 300
make_bundle "$OUT" "$EXP" edge-01 3 1 1700007200 300
make_bundle "$OUT" "$EXP" edge-02 1 1 1700000000 300
make_bundle "$OUT" "$EXP" edge-02 2 2 1700003600 300
make_bundle "$OUT" "$EXP" edge-02 3 1 1700007200 300
FIRST1=edge-01/$(final_name edge-01 1 1 1700000000)
FIRST2=edge-01/$(final_name edge-01 1 2 1700000100)

import_cmd() {
    IMPORT=("$PCAPFERRY" import --key "$CENTRAL_KEY" --keyring "$KEYRING" --state "$STATE"
        --ingest "$INGEST" --settle-ms 0 "$@")
}

# ------------------------------------------------------------ each failpoint

# One bundle at a time (--batch 1): every step durable before the next
# bundle starts, a failpoint per file. The group commit has its own section.
for fp in import-staged import-intent import-renamed import-announcing import-announced \
    import-delivered; do
    section "killed at $fp, then a clean run"
    STATE=$T/fp/$fp/state
    INGEST=$T/fp/$fp/ingest
    L=$T/fp/$fp/watch
    fresh_ingest "$INGEST" edge-01 edge-02
    import_cmd --jobs 1 --batch 1 "$OUT"
    watched_run "$L.1" 137 -- env PCAPFERRY_FAILPOINT="$fp" "${IMPORT[@]}"

    # Where the kill landed: the first file of edge-01 seq 1 is the first
    # delivery of the run.
    staged=$(find "$INGEST" -name '.pcapferry-*.part' | wc -l)
    finals=$(find "$INGEST" -name '*.pcap' ! -name '.*' | wc -l)
    row=$( ((HAVE_DB)) && db_query "$STATE" "SELECT status FROM bundles WHERE sensor = 'edge-01' AND seq = 1")
    case $fp in
    import-staged)
        expect_true "$fp: staged files left by the kill" -- test "$staged" -gt 0
        expect_eq "$fp: no final name yet" 0 "$finals"
        ((HAVE_DB)) && expect_eq "$fp: no intent recorded" "" "$row"
        ;;
    import-intent)
        expect_eq "$fp: both files of edge-01 seq 1 still staged" 2 "$staged"
        expect_eq "$fp: no final name yet" 0 "$finals"
        ((HAVE_DB)) && expect_eq "$fp: intent recorded" delivering "$row"
        ;;
    import-renamed | import-announcing | import-announced)
        expect_eq "$fp: one file renamed" 1 "$finals"
        expect_true "$fp: the renamed file is edge-01 seq 1 file 1" -- test -f "$INGEST/$FIRST1"
        expect_eq "$fp: the second file still staged" 1 "$staged"
        want=$([[ $fp == import-announced ]] && echo 1 || echo 0)
        expect_eq "$fp: announcements before the kill" "$want" "$(count_logged "$L.1" "$INGEST/$FIRST1")"
        ((HAVE_DB)) && expect_eq "$fp: file 1 not yet recorded as delivered" staged \
            "$(db_query "$STATE" "SELECT state FROM deliveries WHERE sensor = 'edge-01' AND seq = 1 AND n = 1")"
        ((HAVE_DB)) && expect_eq "$fp: announcement of file 1 recorded as begun" \
            "$([[ $fp == import-renamed ]] && echo 0 || echo 1)" \
            "$(db_query "$STATE" "SELECT COUNT(*) FROM announcing WHERE sensor = 'edge-01' AND seq = 1 AND n = 1")"
        if [[ $fp == import-announced ]] && ((ATIME_WORKS)); then
            atime=$(stat -c %X "$INGEST/$FIRST1")
            expect_true "$fp: Arkime's read moved the file's atime off the importer's mark 0 ($atime)" -- \
                test "$atime" -gt 0
        elif [[ $fp != import-announced ]]; then
            expect_eq "$fp: nobody read the file: atime still the importer's mark" 0 \
                "$(stat -c %X "$INGEST/$FIRST1")"
        fi
        ;;
    import-delivered)
        expect_eq "$fp: both files of edge-01 seq 1 delivered" 2 "$finals"
        expect_eq "$fp: nothing staged" 0 "$staged"
        expect_eq "$fp: file 1 announced once" 1 "$(count_logged "$L.1" "$INGEST/$FIRST1")"
        expect_eq "$fp: file 2 announced once" 1 "$(count_logged "$L.1" "$INGEST/$FIRST2")"
        ((HAVE_DB)) && expect_eq "$fp: bundle not yet committed" delivering "$row"
        ;;
    esac

    watched_run "$L.2" 0 -- "${IMPORT[@]}"
    if [[ $fp == import-staged ]]; then
        expect_stderr_contains "6 new, 0 already imported" # nothing was recorded
    else
        expect_stderr_contains "5 new, 1 already imported" # finished by the recovery
    fi
    case $fp in
    import-announced)
        if ((ATIME_WORKS)); then
            # announced and read by Arkime (atime): recorded, not announced again
            expect_stderr_matches "recovered=$(basename "$FIRST1")\$"
            expect_stderr_lacks "announced again"
        else
            expect_stderr_contains "recovered=$(basename "$FIRST1") (announced again"
        fi
        ;;
    import-intent | import-renamed)
        # renamed, never announced: announced now, no doubt
        expect_stderr_matches "recovered=$(basename "$FIRST1")\$"
        expect_stderr_lacks "announced again"
        ;;
    import-announcing)
        # begun, not read: announced again (the open never happened here)
        expect_stderr_contains "recovered=$(basename "$FIRST1") (announced again"
        expect_stderr_matches "recovered=$(basename "$FIRST2")\$"
        ;;
    esac
    # A third run finds nothing to do and announces nothing.
    watched_run "$L.3" 0 -- "${IMPORT[@]}"
    expect_stderr_contains "0 new, 6 already imported"
    expect_eq "$fp: third run announced nothing" 0 "$(grep -c . "$L.3")"

    if [[ $fp == import-announced ]] && ((!ATIME_WORKS)); then
        echo "  $fp: no atime here: announced again, at most twice"
        check_delivery "$fp" "$EXP" 1 2 "137 0 0" "$L.1" "$L.2" "$L.3"
    else
        echo "  $fp: exactly once"
        check_delivery "$fp" "$EXP" 1 1 "137 0 0" "$L.1" "$L.2" "$L.3"
    fi
done

# ------------------------------------------------------- the command socket

# sock_start LOG [OPTION...]: the stand-in speaking capture's command-socket protocol
# (capture --command-socket PATH --command-wait), no monitor mode.
SOCK=$T/capture.sock
sock_start() {
    local log=$1 i
    shift
    : >"$log"
    LAST_WATCH_LOG=$log
    "$ARKIME_WATCH" --command-socket "$SOCK" --command-wait "$@" "$log" 120 >"$log.out" 2>"$log.err" &
    WATCH_PID=$!
    for ((i = 0; i < 200; i++)); do
        grep -qx ready "$log.out" 2>/dev/null && return 0
        kill -0 "$WATCH_PID" 2>/dev/null || break
        sleep 0.05
    done
    die "arkime_watch --command-socket did not start: $(cat "$log.err")"
}

for how in clean import-announcing import-announced arkime-down; do
    section "--arkime-socket: $how, then a clean run"
    STATE=$T/sock/$how/state
    INGEST=$T/sock/$how/ingest
    L=$T/sock/$how/watch
    fresh_ingest "$INGEST" edge-01 edge-02
    import_cmd --jobs 1 --batch 1 --arkime-socket "$SOCK" "$OUT"
    logs=("$L.1")
    case $how in
    clean)
        sock_start "$L.1"
        expect_exit 0 -- "${IMPORT[@]}"
        watch_stop
        statuses="0"
        ;;
    arkime-down)
        rm -f "$SOCK"
        : >"$L.1"
        expect_exit 75 -- "${IMPORT[@]}"
        expect_stderr_contains "cannot reach Arkime's command socket"
        ((HAVE_DB)) && expect_eq "$how: nothing sent, so no announcement left begun" 0 \
            "$(db_query "$STATE" "SELECT COUNT(*) FROM announcing")"
        expect_eq "$how: one file renamed, waiting for Arkime" 1 \
            "$(find "$INGEST" -name '*.pcap' ! -name '.*' | wc -l)"
        statuses="75"
        ;;
    *)
        sock_start "$L.1"
        expect_exit 137 -- env PCAPFERRY_FAILPOINT="$how" "${IMPORT[@]}" 2>/dev/null
        watch_stop
        expect_eq "$how: capture was handed file 1 before the kill" \
            "$([[ $how == import-announced ]] && echo 1 || echo 0)" \
            "$(count_logged "$L.1" "$INGEST/$FIRST1")"
        statuses="137"
        ;;
    esac
    if [[ $how != clean ]]; then
        sock_start "$L.2"
        expect_exit 0 -- "${IMPORT[@]}"
        watch_stop
        logs+=("$L.2")
        statuses+=" 0"
        if [[ $how == import-announced ]] && ((ATIME_WORKS)); then
            expect_stderr_lacks "announced again"
        elif [[ $how == arkime-down ]]; then
            # nothing was sent: handed over now, without a doubt
            expect_stderr_matches "recovered=$(basename "$FIRST1")\$"
            expect_stderr_lacks "announced again"
        else
            expect_stderr_contains "recovered=$(basename "$FIRST1") (announced again"
        fi
    fi
    if [[ -f $SOCK ]] || [[ -S $SOCK ]]; then
        fail "$how: the stand-in left its socket behind"
    fi
    max=1
    [[ $how == import-announced ]] && ((!ATIME_WORKS)) && max=2
    check_delivery "socket $how" "$EXP" 1 "$max" "$statuses" "${logs[@]}"
done

section "--arkime-socket: capture refuses a file (truncated packets it was not told to read)"
# The importer is told readTruncatedPackets=true (--arkime-read-truncated),
# capture is not: it exits on the file (no answer: exit 75) or, with
# --ignoreerrors, answers file-error (exit 1). Either way capture did not
# take the file, so the next run hands it over again, with no warning; once
# capture reads truncated packets, it is delivered.
OUT4=$T/outbox4
mkdir -p "$T/pcaps/trunc" "$OUT4"
"$PCAPGEN" --packets 50 --snaplen 64 --seed 77 --start 1700500000 "$T/pcaps/trunc/t.pcap" \
    >/dev/null 2>&1 || die "pcapgen failed"
"$PCAPFERRY" bundle create --key "$T/keys/edge-01.key" --to "$CENTRAL_PUB" --out "$OUT4" \
    --seq 1 "$T/pcaps/trunc/t.pcap" >/dev/null 2>&1 || die "bundle create failed"
STATE=$T/sock/refused/state
INGEST=$T/sock/refused/ingest
L=$T/sock/refused/watch
TFILE=$INGEST/edge-01/$(final_name edge-01 1 1 1700500000)
fresh_ingest "$INGEST" edge-01
import_cmd --arkime-socket "$SOCK" --arkime-read-truncated "$OUT4"
sock_start "$L.1"
expect_exit 75 -- "${IMPORT[@]}"
expect_stderr_contains "Arkime closed the command socket without an answer"
wait "$WATCH_PID"
expect_eq "the stand-in exited on the file, as capture does" 3 "$?"
WATCH_PID=
expect_eq "capture read it as FATAL" "$TFILE FATAL" "$(awk 'NF == 3 { print $1, $3 }' "$L.1")"
((HAVE_DB)) && expect_eq "not taken: no announcement left begun" "0 staged" \
    "$(db_query "$STATE" "SELECT (SELECT COUNT(*) FROM announcing), state FROM deliveries" | tr '|' ' ')"
sock_start "$L.2" --ignoreerrors
expect_exit 1 -- "${IMPORT[@]}"
expect_stderr_contains "Arkime's capture refused it: file-error filename=$TFILE"
expect_stderr_lacks "announced again"
watch_stop
sock_start "$L.3" -o readTruncatedPackets=true
expect_exit 0 -- "${IMPORT[@]}"
expect_stderr_lacks "announced again"
watch_stop
expect_eq "handed over three times, read whole the third" "FATAL FATAL $(b2_256 "$T/pcaps/trunc/t.pcap")" \
    "$(cat "$L.1" "$L.2" "$L.3" | awk -v p="$TFILE" '$1 == p { printf "%s%s", sep, $3; sep = " " }')"
((HAVE_DB)) && expect_eq "recorded as delivered" delivered \
    "$(db_query "$STATE" "SELECT state FROM deliveries")"

# ------------------------------------------------- inside a group commit

# The default --batch takes all six bundles (8 files) into one group
# commit (one worker: --jobs 1 keeps both sensors in it): each step is taken for the whole batch, so a kill between two
# steps, or in the middle of one, leaves every bundle of the batch at the
# same point. The next run finishes them all, each file announced once.
for fp in import-staged import-intent import-batch-renamed import-renamed import-announcing \
    import-announced import-delivered; do
    section "killed inside a batch at $fp, then a clean run"
    STATE=$T/batch/$fp/state
    INGEST=$T/batch/$fp/ingest
    L=$T/batch/$fp/watch
    fresh_ingest "$INGEST" edge-01 edge-02
    import_cmd --jobs 1 "$OUT"
    watched_run "$L.1" 137 -- env PCAPFERRY_FAILPOINT="$fp" "${IMPORT[@]}"
    staged=$(find "$INGEST" -name '.pcapferry-*.part' | wc -l)
    finals=$(find "$INGEST" -name '*.pcap' ! -name '.*' | wc -l)
    announced=$(grep -c . "$L.1")
    if ((HAVE_DB)); then
        rows=$(db_query "$STATE" "SELECT status || ' ' || COUNT(*) FROM bundles GROUP BY status")
        begun=$(db_query "$STATE" "SELECT COUNT(*) FROM announcing")
    fi
    want_finals=8 want_staged=0 want_rows="delivering 6" want_begun=0 want_ann=0
    case $fp in
    import-staged) want_finals=0 want_staged=2 want_rows="" ;; # edge-01 seq 1: two files
    import-intent) want_finals=0 want_staged=8 ;;
    import-batch-renamed) want_finals=1 want_staged=7 ;;
    import-renamed) ;;
    import-announcing) want_begun=8 ;;
    import-announced) want_begun=8 want_ann=1 ;;
    import-delivered) want_rows="committed 6" want_ann=8 ;;
    esac
    expect_eq "$fp: files under their final names" "$want_finals" "$finals"
    expect_eq "$fp: files still staged" "$want_staged" "$staged"
    expect_eq "$fp: announcements before the kill" "$want_ann" "$announced"
    if ((HAVE_DB)); then
        expect_eq "$fp: bundle rows" "$want_rows" "$rows"
        expect_eq "$fp: announcements recorded as begun" "$want_begun" "$begun"
    fi
    watched_run "$L.2" 0 -- "${IMPORT[@]}"
    if [[ $fp == import-staged ]]; then
        expect_stderr_contains "6 new, 0 already imported" # nothing was recorded
    else
        expect_stderr_contains "0 new, 6 already imported" # the recovery finished the batch
    fi
    watched_run "$L.3" 0 -- "${IMPORT[@]}"
    expect_stderr_contains "0 new, 6 already imported"
    expect_eq "$fp: third run announced nothing" 0 "$(grep -c . "$L.3")"
    if [[ $fp == import-announced ]] && ((!ATIME_WORKS)); then
        check_delivery "batch $fp" "$EXP" 1 2 "137 0 0" "$L.1" "$L.2" "$L.3"
    else
        check_delivery "batch $fp" "$EXP" 1 1 "137 0 0" "$L.1" "$L.2" "$L.3"
    fi
done

# ------------------------------------------------------------------ --jobs

section "--jobs 2: the two sensors side by side, each one's files in seq order"
STATE=$T/jobs/state
INGEST=$T/jobs/ingest
L=$T/jobs/watch
fresh_ingest "$INGEST" edge-01 edge-02
import_cmd --jobs 2 "$OUT"
watched_run "$L.1" 0 -- "${IMPORT[@]}"
expect_stderr_contains "6 new, 0 already imported, 0 rejected, 0 gaps (8 files delivered"
for s in edge-01 edge-02; do
    # final names sort by seq, then n: the order a sensor's files must reach Arkime in
    seen=$(awk -v d="$INGEST/$s/" 'NF == 3 && index($1, d) == 1 { print $1 }' "$L.1")
    expect_eq "$s: announced in seq and file order" "$(sort <<<"$seen")" "$seen"
    expect_eq "$s: every file announced" "$(grep -c "^$s/" "$EXP")" "$(grep -c . <<<"$seen")"
done
check_delivery "--jobs 2" "$EXP" 1 1 "0" "$L.1"

section "--jobs 2: a worker killed inside its batch is the import killed; then a clean run"
STATE=$T/jobs-k/state
INGEST=$T/jobs-k/ingest
L=$T/jobs-k/watch
fresh_ingest "$INGEST" edge-01 edge-02
import_cmd --jobs 2 "$OUT"
watched_run "$L.1" 137 -- env PCAPFERRY_FAILPOINT=import-batch-renamed "${IMPORT[@]}"
expect_eq "no worker left running" "" "$(pgrep -f -- "--state $STATE" || true)"
watched_run "$L.2" 0 -- "${IMPORT[@]}"
expect_stderr_contains "already imported, 0 rejected, 0 gaps"
check_delivery "--jobs 2, killed" "$EXP" 1 1 "137 0" "$L.1" "$L.2"

# ------------------------------------------------------------ random kills

section "kill -9 at random moments, 10 times, then a clean run"
# 20 bundles, 26 files of 1.5 MB: a whole import takes about a second here,
# so the kills land in every phase (each run resumes where the last one died).
OUT2=$T/outbox2
EXP2=$T/expected2
: >"$EXP2"
for seq in 1 2 3 4 5 6 7 8 9 10; do
    nf=$((seq % 3 == 0 ? 2 : 1))
    make_bundle "$OUT2" "$EXP2" edge-01 "$seq" "$nf" $((1700000000 + 3600 * seq)) 1500K
    make_bundle "$OUT2" "$EXP2" edge-02 "$seq" "$nf" $((1700000000 + 3600 * seq)) 1500K
done
STATE=$T/rk/state
INGEST=$T/rk/ingest
fresh_ingest "$INGEST" edge-01 edge-02
import_cmd "$OUT2"
RANDOM=${PF_SEED:-$$}
echo "  random seed $RANDOM (rerun with PF_SEED=... to repeat the delays)"
statuses=""
logs=()
killed=0
in_window=0
for ((i = 1; i <= 10; i++)); do
    ms=$((10 + RANDOM % 291))
    L=$T/rk/watch.$i
    LAST_WATCH_LOG=$L
    watch_start "$INGEST" "$L"
    "${IMPORT[@]}" >"$L.import.out" 2>"$L.import.err" </dev/null &
    BG_PID=$!
    sleep "$(printf '0.%03d' "$ms")"
    kill -9 "$BG_PID" 2>/dev/null
    wait "$BG_PID" 2>/dev/null
    rc=$?
    BG_PID=
    watch_stop
    inwin=$( ((HAVE_DB)) && db_query "$STATE" "SELECT COUNT(*) FROM announcing")
    [[ ${inwin:-0} =~ ^[0-9]+$ ]] && ((inwin > 0)) && in_window=$((in_window + 1))
    echo "  run $i: killed after ${ms} ms: exit $rc, $(grep -c . "$L") announcement(s)," \
        "${inwin:-?} announcement(s) begun and not recorded done"
    case $rc in
    137) killed=$((killed + 1)) ;;
    0) ;;
    *)
        fail "random kill run $i: exit status $rc (expected 137 or 0)"
        sed -n '1,10s/^/  | /p' "$L.import.err"
        ;;
    esac
    if grep -Eq 'ERROR: (Address|Leak|UndefinedBehavior)Sanitizer|runtime error:' "$L.import.err"; then
        fail "random kill run $i: sanitizer report"
    fi
    statuses+="$rc "
    logs+=("$L")
done
expect_true "at least one of the random kills interrupted an import" -- test "$killed" -gt 0
echo "  $in_window of $killed kills landed between an \"announcing\" commit and its \"delivered\" one"
L=$T/rk/watch.final
watched_run "$L" 0 -- "${IMPORT[@]}"
expect_stderr_contains " rejected, 0 gaps"
statuses+="0"
logs+=("$L")
check_delivery "random kills" "$EXP2" 1 $((1 + killed)) "$statuses" "${logs[@]}"
expect_exit 0 -- "$PCAPFERRY" import --status --state "$STATE"
expect_stdout_matches '^edge-01 +10 +10 '
expect_stdout_matches '^edge-02 +10 +10 '

# --------------------------------------------------------------- disk full

section "ingest filesystem full: exit 75, nothing partial, then a clean run"
DF=$T/df
mkdir -p "$DF/ingest"
if ! mount -t tmpfs -o size=3M tmpfs "$DF/ingest" 2>"$DF/mount.err"; then
    echo "SKIPPED (this section only): cannot mount a 3 MB tmpfs for the full-disk test" \
        "(needs root or CAP_SYS_ADMIN): $(cat "$DF/mount.err")"
else
    DF_MNT=$DF/ingest
    OUT3=$T/outbox3
    EXP3=$T/expected3
    : >"$EXP3"
    # seq 1 fits; seq 2's two files (1.6 MB each) do not fit beside it.
    make_bundle "$OUT3" "$EXP3" edge-01 1 1 1700100000 400K
    make_bundle "$OUT3" "$EXP3" edge-01 2 2 1700200000 1600K
    make_bundle "$OUT3" "$EXP3" edge-01 3 1 1700300000 300K
    STATE=$T/df/state
    INGEST=$DF_MNT
    mkdir "$INGEST/edge-01"
    src_before=$(cd "$OUT3" && b2sum -l 256 -- *)
    import_cmd "$OUT3"
    watched_run "$DF/watch.1" 75 -- "${IMPORT[@]}"
    expect_stderr_contains "No space left on device"
    expect_eq "sources left in place, unchanged" "$src_before" "$(cd "$OUT3" && b2sum -l 256 -- *)"
    expect_eq "no staging or other dot file left on the full disk" "" \
        "$(find "$INGEST" -mindepth 1 -name '.*' -printf '%P\n')"
    SEQ1=edge-01/$(final_name edge-01 1 1 1700100000)
    expect_eq "only seq 1 was delivered" "$SEQ1" "$(cd "$INGEST" && find . -type f -printf '%P\n')"
    expect_eq "seq 1 delivered whole" "$(grep -F "$SEQ1 " "$EXP3" | cut -d ' ' -f 2)" "$(b2_256 "$INGEST/$SEQ1")"
    expect_eq "the watcher saw seq 1 once, and nothing else" "$INGEST/$SEQ1" \
        "$(awk 'NF == 3 { print $1 }' "$DF/watch.1")"
    if ((HAVE_DB)); then
        expect_eq "no state row for the bundle that did not fit" "" \
            "$(db_query "$STATE" "SELECT status FROM bundles WHERE sensor = 'edge-01' AND seq = 2")"
        expect_eq "no delivery rows for it" 0 \
            "$(db_query "$STATE" "SELECT COUNT(*) FROM deliveries WHERE sensor = 'edge-01' AND seq = 2")"
    fi
    if mount -o remount,size=64M "$DF_MNT" 2>"$DF/mount.err"; then
        watched_run "$DF/watch.2" 0 -- "${IMPORT[@]}"
        expect_stderr_contains "1 already imported"
        check_delivery "disk full, then room" "$EXP3" 1 1 "75 0" "$DF/watch.1" "$DF/watch.2"
    else
        fail "cannot grow the tmpfs: $(cat "$DF/mount.err")"
    fi
    umount "$DF_MNT" && DF_MNT=
fi

summary
