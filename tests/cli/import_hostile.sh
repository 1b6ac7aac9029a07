#!/usr/bin/env bash
# shellcheck disable=SC2317 # helpers run through the EXIT trap and race()
# pcapferry import against whoever can write its sources (the rsync account,
# a courier's stick): links, FIFOs, devices and directories named like
# bundles; a link to the central key or the state database planted in the
# incoming directory (with and without --watch); a link in place of a
# subdirectory or of the stick's receipts folder; a file swapped or
# rewritten between the importer's reads; the mode of quarantined copies;
# no signed receipt about unauthenticated bytes. Each of these worked as an
# attack on 0.1.0 (issue 12, items 1, 4 and 7; docs/ROBUSTNESS.md, "Threat
# model").
# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.sh
. "${PF_TESTLIB:-$(dirname "${BASH_SOURCE[0]}")/lib.sh}"

require_binaries
require_cmd b2sum mknod timeout

T=$PF_TMP
setup_keys plant-a central1
KEYS=$T/keys
expect_exit 0 -- "$PCAPFERRY" keys generate sensor plant-b --out "$KEYS" || die "keygen plant-b"
expect_exit 0 -- "$PCAPFERRY" keys trust "$KEYS/plant-b.pub" --keyring "$KEYRING" || die "trust"
chmod 600 "$CENTRAL_KEY"

WATCH_PID=""
STOPPED_PID=""
hostile_cleanup() {
    [[ -n "$STOPPED_PID" ]] && kill -CONT "$STOPPED_PID" 2>/dev/null
    [[ -n "$WATCH_PID" ]] && kill "$WATCH_PID" 2>/dev/null && wait "$WATCH_PID" 2>/dev/null
    return 0
}
# shellcheck disable=SC2154 # pf_rc is assigned inside the trap
trap 'pf_rc=$?; hostile_cleanup; (exit "$pf_rc"); pf_cleanup' EXIT

# seal SENSOR OUTDIR SEQ PCAP: sets BUNDLE
seal() {
    run "$PCAPFERRY" bundle create --key "$KEYS/$1.key" --to "$CENTRAL_PUB" --out "$2" \
        --seq "$3" --level 1 "$4"
    [[ "$PF_RC" == 0 ]] || {
        pf_show_last
        die "bundle create $*"
    }
    BUNDLE=$(cat "$PF_OUT")
}

imp() {
    local code=$1 st=$2 ing=$3
    shift 3
    expect_exit "$code" -- timeout 60 "$PCAPFERRY" import --key "$CENTRAL_KEY" \
        --keyring "$KEYRING" --state "$st" --ingest "$ing" --settle-ms 0 "$@"
}

# wait_until SECONDS cmd...: polls every 0.1 s; false on time-out.
wait_until() {
    local limit=$1 i
    shift
    for ((i = 0; i < $(pf_scaled "$limit") * 10; i++)); do
        "$@" && return 0
        sleep 0.1
    done
    "$@"
}

pcaps_in() { find "$1" -name '*.pcap' -type f 2>/dev/null | sort; }

make_pcap a1.pcap --packets 30 --seed 1 --start 1700000000
make_pcap a2.pcap --packets 30 --seed 2 --start 1700000060
make_pcap b1.pcap --packets 30 --seed 3 --start 1700000000
mkdir -p "$T/made"
seal plant-a "$T/made" 1 "$PF_IN/a1.pcap"
A1=$BUNDLE
seal plant-a "$T/made" 2 "$PF_IN/a2.pcap"
A2=$BUNDLE
seal plant-b "$T/made" 1 "$PF_IN/b1.pcap"
B1=$BUNDLE

STATE=$T/state
ING=$T/ingest
IN=$T/incoming
mkdir -p "$ING" "$IN"
imp 0 "$STATE" "$ING" "$(cp "$A1" "$IN/" && echo "$IN")"
expect_eq "first import delivered plant-a seq 1" 1 "$(pcaps_in "$ING/plant-a" | wc -l)"
key_sum=$(b2sum <"$CENTRAL_KEY")
db_sum=$(b2sum <"$STATE/pcapferry.db")

section "1. a link to the central key, named like a bundle, is never touched"
ln -s "$CENTRAL_KEY" "$IN/.t" && mv "$IN/.t" "$IN/x.pcapferry"
imp 0 "$STATE" "$ING" "$IN"
expect_stderr_contains "x.pcapferry skipped: not a regular file (a symbolic link)"
expect_eq "the central key is where it was, unchanged" "$key_sum" "$(b2sum <"$CENTRAL_KEY")"
expect_mode "the central key" 600 "$CENTRAL_KEY"
expect_true "the link itself is left alone" -- test -L "$IN/x.pcapferry"
expect_dir_empty "$STATE/quarantine/unknown"
rm -f "$IN/x.pcapferry"

section "1b. a link to the state database: the state stays, nothing is imported twice"
ln -s "$STATE/pcapferry.db" "$IN/.t" && mv "$IN/.t" "$IN/db.pcapferry"
imp 0 "$STATE" "$ING" "$IN"
expect_stderr_contains "db.pcapferry skipped: not a regular file (a symbolic link)"
expect_true "the database is still in the state directory" -- test -f "$STATE/pcapferry.db"
expect_stderr_contains "0 new, 1 already imported, 0 rejected"
expect_eq "still one pcap: nothing imported twice" 1 "$(pcaps_in "$ING" | wc -l)"
rm -f "$IN/db.pcapferry"
[[ -n "$db_sum" ]] || fail "no database checksum"

section "1c. a FIFO, a device and a directory named like bundles: skipped, no hang"
mkfifo "$IN/fifo.pcapferry"
mknod "$IN/null.pcapferry" c 1 3
mkdir "$IN/dir.pcapferry"
cp "$A2" "$IN/dir.pcapferry/"
imp 0 "$STATE" "$ING" "$IN"
expect_stderr_contains "fifo.pcapferry skipped: not a regular file (a FIFO)"
expect_stderr_contains "null.pcapferry skipped: not a regular file (a device or socket)"
expect_stderr_contains "dir.pcapferry skipped: not a regular file (a directory)"
expect_true "the FIFO is still there" -- test -p "$IN/fifo.pcapferry"
expect_true "the device is still there" -- test -c "$IN/null.pcapferry"
expect_eq "nothing from inside the directory was imported" 1 "$(pcaps_in "$ING" | wc -l)"
rm -rf "$IN/fifo.pcapferry" "$IN/null.pcapferry" "$IN/dir.pcapferry"

section "1d. a link in place of a subdirectory is not followed"
mkdir -p "$T/outside"
cp "$A2" "$T/outside/"
ln -s "$T/outside" "$IN/sub"
imp 0 "$STATE" "$ING" --delete-source "$IN"
expect_eq "nothing imported through the link" 1 "$(pcaps_in "$ING" | wc -l)"
expect_true "the bundle behind the link is untouched" -- test -f "$T/outside/$(basename "$A2")"
rm -f "$IN/sub"

section "1e. --watch: the same link planted while the importer runs"
WLOG=$T/watch.err
"$PCAPFERRY" import --key "$CENTRAL_KEY" --keyring "$KEYRING" --state "$STATE" --ingest "$ING" \
    --settle-ms 0 --watch --delete-source --rescan 1 -v "$IN" >/dev/null 2>"$WLOG" </dev/null &
WATCH_PID=$!
wait_until 20 grep -q "status=\|new," "$WLOG" || sleep 1
ln -s "$CENTRAL_KEY" "$IN/.t" && mv "$IN/.t" "$IN/x.pcapferry"
ln -s "$STATE/pcapferry.db" "$IN/.u" && mv "$IN/.u" "$IN/y.pcapferry"
cp "$A2" "$IN/.a2.part" && mv "$IN/.a2.part" "$IN/$(basename "$A2")"
wait_until 30 sh -c "[ \$(find '$ING/plant-a' -name '*.pcap' | wc -l) -ge 2 ]" || true
sleep 2 # one more rescan over the links
kill "$WATCH_PID"
wait "$WATCH_PID" 2>/dev/null
WATCH_PID=""
expect_true "watch: the link to the key was skipped" -- grep -q "x.pcapferry skipped: not a regular file" "$WLOG"
expect_eq "watch: the central key is unchanged" "$key_sum" "$(b2sum <"$CENTRAL_KEY")"
expect_true "watch: the state database stays" -- test -f "$STATE/pcapferry.db"
expect_eq "watch: the good bundle was delivered beside them" 2 "$(pcaps_in "$ING/plant-a" | wc -l)"
expect_dir_empty "$STATE/quarantine/unknown"
rm -f "$IN/x.pcapferry" "$IN/y.pcapferry"

section "1f. a quarantined copy is ours: 0640, whatever the source's mode"
head -c 4096 /dev/urandom >"$IN/junk.pcapferry"
chmod 666 "$IN/junk.pcapferry"
imp 1 "$STATE" "$ING" "$IN"
expect_mode "quarantined copy" 640 "$STATE/quarantine/unknown/junk.pcapferry"
expect_eq "owned by the importer" "$(id -u)" "$(stat -c %u "$STATE/quarantine/unknown/junk.pcapferry")"
expect_false "the source is removed" -- test -e "$IN/junk.pcapferry"

# race POINT TAG ACTION...: imports a copy of plant-a's seq 1 from $T/srcTAG
# into $T/stateTAG and $T/ingestTAG, stopped at pausepoint POINT while
# ACTION runs (with $AN the bundle's path); sets RACE_RC and RACE_ERR.
race() {
    local point=$1 tag=$2 pid
    shift 2
    mkdir -p "$T/ingest$tag" "$T/src$tag"
    cp "$A1" "$T/src$tag/"
    AN=$T/src$tag/$(basename "$A1")
    RACE_ERR=$T/r$tag.err
    PCAPFERRY_PAUSEPOINT=$point "$PCAPFERRY" import --key "$CENTRAL_KEY" --keyring "$KEYRING" \
        --state "$T/state$tag" --ingest "$T/ingest$tag" --settle-ms 0 "$T/src$tag" \
        >"$T/r$tag.out" 2>"$RACE_ERR" &
    pid=$!
    STOPPED_PID=$pid
    wait_until 20 sh -c "grep -q '^State:.*T' /proc/$pid/status"
    "$@"
    kill -CONT "$pid"
    STOPPED_PID=""
    wait "$pid"
    RACE_RC=$?
}
swap_in_b() { cp "$B1" "$T/src4/.swap" && mv "$T/src4/.swap" "$AN"; } # plant-b's under plant-a's name
rewrite_as_b() { cat "$B1" >"$AN"; }                                   # same inode, other bytes

section "4. swapped between the scan and the import: nothing lands under the wrong sensor"
race import-scanned 4 swap_in_b
expect_eq "swap after the scan: exit 75 (left for a later run)" 75 "$RACE_RC"
expect_true "it says the file changed" -- grep -q "changed since it was scanned" "$RACE_ERR"
expect_eq "nothing delivered" "" "$(pcaps_in "$T/ingest4")"
imp 0 "$T/state4" "$T/ingest4" "$T/src4"
expect_eq "the next run delivers it as what it is: plant-b" 1 "$(pcaps_in "$T/ingest4/plant-b" | wc -l)"
expect_eq "and nothing under plant-a" "" "$(pcaps_in "$T/ingest4/plant-a")"

section "4b. rewritten in place after it was judged: nothing delivered"
race import-judged 4b rewrite_as_b
expect_eq "rewritten in place: exit 75 (left for a later run)" 75 "$RACE_RC"
expect_true "it says the file was rewritten" -- grep -q "rewritten while it was read" "$RACE_ERR"
expect_eq "nothing delivered under plant-a" "" "$(pcaps_in "$T/ingest4b/plant-a")"
expect_eq "no staging file left" "" "$(find "$T/ingest4b" -name '.*' -type f)"

section "4c. the judged header forged in place before extraction: verified again, refused"
# The importer verifies a header once when it judges the bundle, and
# extraction skips that check only for the very bytes it judged: a header
# whose signature is changed after the judgement is verified and refused.
forge_header_sig() { flip_byte "$AN" $((233 + ${#A_SENSOR} - 20)); }
A_SENSOR=plant-a
race import-judged 4c forge_header_sig
expect_true "extraction refuses the forged header" -- grep -q "header signature is invalid" "$RACE_ERR"
expect_eq "nothing delivered under plant-a" "" "$(pcaps_in "$T/ingest4c/plant-a")"
expect_eq "no staging file left" "" "$(find "$T/ingest4c" -name '.*' -type f)"

section "7. a link in place of the stick's receipts folder is not followed"
STICK=$T/stick
mkdir -p "$STICK/pcapferry/plant-a" "$T/elsewhere"
cp "$A2" "$STICK/pcapferry/plant-a/"
ln -s "$T/elsewhere" "$STICK/pcapferry-receipts"
imp 75 "$T/state7" "$T/ingest7" "$(mkdir -p "$T/ingest7" && echo "$STICK")"
expect_stderr_contains "could not write a receipt"
expect_dir_empty "$T/elsewhere"

section "7b. no signed receipt about unauthenticated bytes"
expect_exit 0 -- "$PCAPFERRY" keys generate sensor rogue --out "$KEYS"
SRC7=$T/src7
mkdir -p "$SRC7" "$T/ingest7b"
run "$PCAPFERRY" bundle create --key "$KEYS/rogue.key" --to "$CENTRAL_PUB" --out "$SRC7" \
    --seq 1 --level 1 "$PF_IN/a1.pcap"
cp "$A2" "$SRC7/forged.pcapferry"
flip_byte "$SRC7/forged.pcapferry" 100 # inside the signed header
imp 1 "$T/state7b" "$T/ingest7b" --receipts "$T/receipts7b" "$SRC7"
expect_eq "no receipt for the untrusted key or the forged header" "" \
    "$(find "$T/receipts7b" -type f 2>/dev/null)"
expect_dir_empty "$T/state7b/quarantine/rogue"
expect_dir_empty "$T/state7b/quarantine/plant-a"
expect_eq "both quarantined as nobody's" 4 "$(find "$T/state7b/quarantine/unknown" -type f | wc -l)"

summary
