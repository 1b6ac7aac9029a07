#!/usr/bin/env bash
# The whole sensor -> central -> sensor loop with the real tools: capture -r
# seals bundles into an outbox, bundle export copies them onto a "stick",
# import delivers them and writes signed receipts back onto the stick, and
# export --central / bundle prune / the capture daemon's --receipts delete
# exactly the bundles those receipts confirm. On a plain directory and on a
# real FAT image (fusefat); an export killed half way; a full stick (a 4 MiB
# tmpfs, and one that runs out of directory entries); forged receipts,
# receipts from another central key, receipts naming another bundle, and a
# bundle the central host rejected; the rsync path, with an rsync killed in
# the middle of a large bundle.
# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.sh
. "${PF_TESTLIB:-$(dirname "${BASH_SOURCE[0]}")/lib.sh}"

require_binaries
require_json
require_cmd tcpdump rsync setsid jq

T=$PF_TMP
setup_keys edge-01 central1
S=$SENSOR
KEYS=$T/keys
EMPTY=$T/empty.conf
: >"$EMPTY"
expect_exit 0 -- "$PCAPFERRY" keys generate central central2 --out "$KEYS" ||
    die "cannot generate a second central key"
CENTRAL2_KEY=$KEYS/central2.key
CENTRAL2_PUB=$KEYS/central2.pub

# Mounts made here (tmpfs sticks, the FAT image): undone whatever happens,
# before lib.sh removes the scratch directory. Background jobs are killed.
MOUNTS=()
BG_PIDS=()
# shellcheck disable=SC2317 # called from the EXIT trap
undo_mounts() {
    local m p
    for p in "${BG_PIDS[@]}"; do
        kill -9 -- "-$p" 2>/dev/null || kill -9 "$p" 2>/dev/null
    done
    for m in "${MOUNTS[@]}"; do
        if mountpoint -q "$m" 2>/dev/null; then
            if [[ "$(stat -f -c %T "$m" 2>/dev/null)" == fuse* ]]; then
                fusermount -u "$m" 2>/dev/null || fusermount -u -z "$m" 2>/dev/null
            fi
            umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
        fi
    done
    MOUNTS=()
}
# shellcheck disable=SC2154 # pf_rc is assigned inside the trap
trap 'pf_rc=$?; undo_mounts; (exit "$pf_rc"); pf_cleanup' EXIT

# ------------------------------------------------------------------ helpers

# bundles_in DIR: bundle names directly in DIR, sorted (= seq order).
bundles_in() {
    find "$1" -maxdepth 1 -type f -name '*.pcapferry' ! -name '.*' -printf '%f\n' 2>/dev/null |
        sort
}
nbundles() {
    bundles_in "$1" | grep -c .
}
# exported_in OUTBOX: the names marked in OUTBOX/.exported, sorted.
exported_in() {
    find "$1/.exported" -mindepth 1 -maxdepth 1 -printf '%f\n' 2>/dev/null | sort
}
# receipts_in DIR: how many receipt files below DIR.
receipts_in() {
    find "$1" -type f -name '*.receipt' 2>/dev/null | grep -c .
}
# packets in all pcaps below DIR (or in the given files), as tcpdump counts.
pkts_in() {
    local n=0 f c
    while IFS= read -r f; do
        c=$(tcpdump -n -r "$f" 2>/dev/null | wc -l)
        n=$((n + c))
    done < <(if [[ -d "$1" ]]; then find "$1" -type f -name '*.pcap'; else printf '%s\n' "$@"; fi)
    echo "$n"
}
# pcaps_in DIR: delivered capture files below DIR.
pcaps_in() {
    find "$1" -type f -name '*.pcap' 2>/dev/null | grep -c .
}

# expect_no_partial WHAT DIR: no dot file and no *.part anywhere below DIR.
expect_no_partial() {
    local left
    left=$(find "$2" -mindepth 1 \( -name '.*' -o -name '*.part' \) 2>/dev/null)
    if [[ -z "$left" ]]; then
        pass "$1: no dot or .part file under $2"
        return 0
    fi
    fail "$1: partial or temporary files left under $2: $(printf '%s' "$left" | tr '\n' ' ')"
    return 1
}

# expect_all_verify WHAT N FILE...: bundle verify says OK for each of the N.
expect_all_verify() {
    local what=$1 want=$2
    shift 2
    if (($# != want)); then
        fail "$what: $# bundle(s), expected $want"
        return 1
    fi
    ((want == 0)) && return 0
    expect_exit 0 -- "$PCAPFERRY" bundle verify --keyring "$KEYRING" "$@" || return 1
    expect_eq "$what: bundles that verify" "$want" "$(grep -c ": OK sensor=$S " "$PF_OUT")"
}

# stick_bundles STICK: paths of the bundles on a stick (no temp files).
stick_bundles() {
    find "$1/pcapferry" -type f -name '*.pcapferry' ! -name '.*' 2>/dev/null | sort
}

# capture_r DIR FILE [args...]: pcapferry capture -r FILE into DIR/{spool,
# outbox,state}, rotating every 2 s of packet time.
capture_r() {
    local d=$1 file=$2
    shift 2
    expect_exit 0 -- "$PCAPFERRY" capture -c "$EMPTY" --key "$SENSOR_KEY" --to "$CENTRAL_PUB" \
        --spool "$d/spool" --outbox "$d/outbox" --state "$d/state" --no-drop -G 2 "$@" -r "$file"
}

# imp CODE STATE INGEST ARGS...: import with the central key.
imp() {
    local code=$1 st=$2 ing=$3
    shift 3
    mkdir -p "$ing"
    expect_exit "$code" -- "$PCAPFERRY" import --key "$CENTRAL_KEY" --keyring "$KEYRING" \
        --state "$st" --ingest "$ing" --settle-ms 0 "$@"
}

# seal OUTDIR [--to PUB] CREATE_ARGS...: bundle create with the sensor key.
seal() {
    local out=$1 to=$CENTRAL_PUB
    shift
    if [[ "${1:-}" == --to ]]; then
        to=$2
        shift 2
    fi
    run "$PCAPFERRY" bundle create --key "$SENSOR_KEY" --to "$to" --out "$out" --level 1 "$@"
    if [[ "$PF_RC" != 0 ]]; then
        pf_show_last
        die "bundle create $* failed"
    fi
}

# export_ CODE OUTBOX STICK [--central]: bundle export with the sensor's
# public key (what a sensor keeps beside its secret key).
export_() {
    local code=$1 ob=$2 stick=$3
    shift 3
    local central=()
    [[ "${1:-}" == --central ]] && central=(--central "$CENTRAL_PUB")
    expect_exit "$code" -- "$PCAPFERRY" bundle export --outbox "$ob" --key "$SENSOR_PUB" \
        "${central[@]}" "$stick"
}

# prune CODE OUTBOX RECEIPTS [CENTRAL_PUB]
prune() {
    expect_exit "$1" -- "$PCAPFERRY" bundle prune --outbox "$2" --receipts "$3" \
        --central "${4:-$CENTRAL_PUB}"
}

# Inputs: 6 s and 4 s of packets, rotated every 2 s: 3 + 2 bundles.
make_pcap a.pcap --packets 3000 --rate 500 --seed 1 --start 1700000000
make_pcap b.pcap --packets 2000 --rate 500 --seed 2 --start 1700000100
A_PCAP=$PF_IN/a.pcap
B_PCAP=$PF_IN/b.pcap
A_PKTS=$(pkts_in "$A_PCAP")
B_PKTS=$(pkts_in "$B_PCAP")
expect_eq "tcpdump reads a.pcap" 3000 "$A_PKTS"
expect_eq "tcpdump reads b.pcap" 2000 "$B_PKTS"

# ================================================ 1. the USB loop, twice
# usb_loop NAME STICK: capture -> export -> import (receipts onto the
# stick) -> capture --receipts prunes -> export -> import -> export
# --central prunes. Everything captured is delivered, the outbox ends empty.
usb_loop() {
    local name=$1 stick=$2
    local d=$T/$name
    local OB=$d/outbox ING=$d/ingest IST=$d/import-state
    local RC=$stick/pcapferry-receipts

    capture_r "$d" "$A_PCAP" || return 1
    expect_eq "$name: capture -r a.pcap -G 2: bundles" 3 "$(nbundles "$OB")"
    local first
    first=$(bundles_in "$OB")

    export_ 0 "$OB" "$stick" || return 1
    expect_stderr_contains "exported 3 bundle(s)"
    expect_stderr_contains "0 already on $stick, 0 failed"
    expect_stderr_contains "run 'sync' and wait for it to return before unmounting $stick"
    expect_eq "$name: every exported bundle is marked in .exported" "$first" "$(exported_in "$OB")"
    expect_eq "$name: the outbox keeps its bundles until a receipt" 3 "$(nbundles "$OB")"
    mapfile -t on_stick < <(stick_bundles "$stick")
    expect_all_verify "$name: copies on the stick" 3 "${on_stick[@]}"
    expect_eq "$name: copies sit in STICK/pcapferry/<sensor>/" "$first" \
        "$(bundles_in "$stick/pcapferry/$S")"
    expect_no_partial "$name: after export" "$stick"

    # central
    imp 0 "$IST" "$ING" "$stick" || return 1
    expect_stderr_contains "3 new, 0 already imported, 0 rejected, 0 gaps (3 files delivered"
    expect_stderr_lacks "could not write a receipt"
    expect_eq "$name: one receipt written back onto the stick, under pcapferry-receipts/$S/" 1 \
        "$(receipts_in "$RC/$S")" || return 1
    expect_eq "$name: packets delivered so far" "$A_PKTS" "$(pkts_in "$ING")"

    # back on the sensor: the capture daemon reads the receipts inbox
    capture_r "$d" "$B_PCAP" --receipts "$RC" || return 1
    expect_stderr_contains "pruned bundle=$OB/"
    local now
    now=$(bundles_in "$OB")
    expect_eq "$name: capture --receipts deleted the 3 confirmed bundles, kept the 2 new" 2 \
        "$(nbundles "$OB")"
    expect_eq "$name: none of the first bundles is left" "" "$(comm -12 <(echo "$first") <(echo "$now"))"
    expect_eq "$name: .exported marks of pruned bundles are gone" "" "$(exported_in "$OB")"

    # second trip: export (with --central: the old receipt finds nothing)
    export_ 0 "$OB" "$stick" --central || return 1
    expect_stderr_contains "exported 2 bundle(s)"
    expect_stderr_contains "0 already on $stick"
    expect_stderr_contains "1 read, 0 refused; bundles: 0 deleted, 3 already gone, 0 kept"
    expect_eq "$name: nothing deleted before central saw it" 2 "$(nbundles "$OB")"
    imp 0 "$IST" "$ING" "$stick" || return 1
    expect_stderr_contains "2 new, 3 already imported, 0 rejected, 0 gaps (2 files delivered"
    expect_eq "$name: receipts on the stick" 2 "$(receipts_in "$RC/$S")"
    export_ 0 "$OB" "$stick" --central || return 1
    expect_stderr_contains "exported 0 bundle(s)"
    expect_stderr_contains "2 read, 0 refused; bundles: 2 deleted"
    expect_eq "$name: the outbox holds no bundle" 0 "$(nbundles "$OB")"
    expect_eq "$name: no file left in the outbox (nor marks in .exported)" "" "$(find "$OB" -type f)"
    expect_eq "$name: packets delivered = packets captured (tcpdump)" "$((A_PKTS + B_PKTS))" \
        "$(pkts_in "$ING")"
    expect_eq "$name: one delivered pcap per bundle" 5 "$(pcaps_in "$ING")"
    "$PCAPFERRY" import --status --json --state "$IST" >"$d/status.json" 2>/dev/null
    expect_eq "$name: import --status: bundles" 5 "$(jq -r --arg s "$S" '.[] | select(.sensor == $s) | .bundles' "$d/status.json")"
    expect_eq "$name: import --status: gaps" 0 "$(jq -r --arg s "$S" '.[] | select(.sensor == $s) | .gaps' "$d/status.json")"
    # a third export is a no-op that still exits 0
    export_ 0 "$OB" "$stick" --central
    expect_stderr_contains "0 deleted"
}

section "1a. the USB loop through a plain directory"
STICK=$T/stick
mkdir -p "$STICK"
usb_loop dirloop "$STICK"

section "1b. the USB loop through a FAT file system (fusefat)"
FAT_OK=0
FAT_WHY=""
if ! command -v fusefat >/dev/null 2>&1; then
    FAT_WHY="fusefat is not installed (Debian package fusefat)"
elif ! command -v mkfs.vfat >/dev/null 2>&1; then
    FAT_WHY="mkfs.vfat is not installed (Debian package dosfstools)"
elif ! command -v fusermount >/dev/null 2>&1; then
    FAT_WHY="fusermount is not installed (Debian package fuse)"
elif [[ ! -c /dev/fuse ]]; then
    FAT_WHY="/dev/fuse is not available"
else
    FATIMG=$T/fat.img
    FATMNT=$T/fat
    mkdir -p "$FATMNT"
    if truncate -s 64M "$FATIMG" && mkfs.vfat "$FATIMG" >/dev/null 2>&1; then
        MOUNTS+=("$FATMNT")
        fusefat -o rw+ "$FATIMG" "$FATMNT" >"$T/fusefat.log" 2>&1
        for _ in $(seq 50); do
            mountpoint -q "$FATMNT" && break
            sleep 0.1
        done
        if mountpoint -q "$FATMNT"; then
            FAT_OK=1
        else
            FAT_WHY="fusefat could not mount the image (FUSE not permitted?): $(tail -n 1 "$T/fusefat.log")"
        fi
    else
        FAT_WHY="could not make a FAT image"
    fi
fi
if [[ "$FAT_OK" == 1 ]]; then
    expect_eq "the FAT stick is a FUSE mount (the magic export checks)" 65735546 "$(stat -f -c %t "$FATMNT")"
    usb_loop fatloop "$FATMNT"
    expect_no_partial "FAT stick at the end" "$FATMNT"
    fusermount -u "$FATMNT" 2>/dev/null
    # what the next plug-in sees: the stick is consistent (fsck)
    if command -v fsck.vfat >/dev/null 2>&1; then
        expect_true "fsck.vfat finds the FAT image clean" -- fsck.vfat -n "$FATIMG"
    fi
else
    echo "SKIP (part 1b only): FAT stick: $FAT_WHY"
fi

# ============================================== 2. an export killed half way
section "2. export killed with SIGKILL half way, then run again"
OBK=$T/killed/outbox
STK=$T/killed/stick
mkdir -p "$STK"
for i in 1 2 3 4 5; do
    make_pcap "big$i.pcap" --bytes 20M --mix tls --seed "$((100 + i))" --start "$((1700001000 + 100 * i))"
    seal "$OBK" --state "$T/killed/seq" "$PF_IN/big$i.pcap"
    rm -f "$PF_IN/big$i.pcap"
done
expect_eq "five ~20 MB bundles" 5 "$(nbundles "$OBK")"
SDK=$STK/pcapferry/$S
killed=0
for attempt in 1 2 3; do
    rm -rf "$STK/pcapferry" "$OBK/.exported"
    "$PCAPFERRY" bundle export --outbox "$OBK" --key "$SENSOR_PUB" "$STK" \
        >"$T/killed/export.out" 2>"$T/killed/export.err" &
    epid=$!
    BG_PIDS+=("$epid")
    # at least one bundle exported and the next being copied: kill -9
    {
        for _ in $(seq 4000); do
            shopt -s nullglob dotglob
            parts=("$SDK"/.*.part)
            marks=("$OBK/.exported"/*)
            shopt -u nullglob dotglob
            if ((${#marks[@]} >= 1 && ${#parts[@]} >= 1)); then
                kill -9 "$epid"
                break
            fi
            kill -0 "$epid" || break
            sleep 0.005
        done
        wait "$epid"
        erc=$?
    } 2>/dev/null # no "Killed" line from bash
    BG_PIDS=()
    if [[ "$erc" == 137 ]]; then
        killed=1
        break
    fi
done
if [[ "$killed" == 1 ]]; then
    pass "export was killed after $(exported_in "$OBK" | grep -c .) of 5 bundles (attempt $attempt)"
else
    echo "note: export finished before it could be killed (exit $erc); checking the end state only"
fi
# Right after the kill: what counts as exported is on the stick and whole;
# whatever has its final name on the stick is whole.
bad=""
for n in $(exported_in "$OBK"); do
    "$PCAPFERRY" bundle verify --keyring "$KEYRING" "$SDK/$n" >/dev/null 2>&1 || bad+=" $n"
done
expect_eq "after the kill, every bundle marked exported verifies on the stick" "" "$bad"
mapfile -t on_stick < <(stick_bundles "$STK")
expect_all_verify "after the kill, bundles under their final name on the stick" \
    "${#on_stick[@]}" "${on_stick[@]}"
if [[ "$killed" == 1 ]]; then
    expect_false "the kill came before the last bundle was exported" -- \
        test "$(exported_in "$OBK" | grep -c .)" -ge 5
fi
export_ 0 "$OBK" "$STK"
expect_stderr_matches "exported [0-9]+ bundle\(s\) .*, [0-9]+ already on $STK, 0 failed"
mapfile -t on_stick < <(stick_bundles "$STK")
expect_all_verify "after the second export, all five on the stick" 5 "${on_stick[@]}"
bad=""
for n in $(exported_in "$OBK"); do
    [[ -f "$SDK/$n" ]] || bad+=" $n"
done
expect_eq "no bundle is marked exported without its copy on the stick" "" "$bad"
# A killed copy leaves its dot .part file; a later export must not leave
# that dead weight (up to a whole bundle) on the stick for ever.
expect_no_partial "after the second export" "$STK"
rm -rf "$T/killed"

# ========================================================= 3. a full stick
section "3. destination full: export stops cleanly, exit 75, says what remains"
OBF=$T/full/outbox
for i in 1 2 3 4; do
    make_pcap "f$i.pcap" --bytes 1200K --mix tls --seed "$((200 + i))" --start "$((1700002000 + 100 * i))"
    seal "$OBF" --state "$T/full/seq" "$PF_IN/f$i.pcap"
done
expect_eq "four ~1.2 MB bundles" 4 "$(nbundles "$OBF")"

# check_full STICK: exit 75 seen; N bundles and their bytes remain; no
# partial file; what is on the stick verifies and is marked exported.
check_full() {
    local stick=$1 rem_n=0 rem_b=0 n
    for n in $(bundles_in "$OBF"); do
        if [[ ! -f "$stick/pcapferry/$S/$n" ]]; then
            rem_n=$((rem_n + 1))
            rem_b=$((rem_b + $(file_size "$OBF/$n")))
        fi
    done
    expect_true "some bundles fitted and some did not ($rem_n remain)" -- test "$rem_n" -ge 1 -a "$rem_n" -le 3
    expect_stderr_contains "pcapferry: $stick is full: $rem_n bundle(s), $rem_b bytes remain for the next stick"
    expect_stderr_contains "run 'sync'"
    expect_no_partial "full stick" "$stick"
    mapfile -t on_stick < <(stick_bundles "$stick")
    expect_all_verify "what fitted on the full stick" "$((4 - rem_n))" "${on_stick[@]}"
    expect_eq "exactly the bundles on the stick are marked exported" \
        "$(bundles_in "$stick/pcapferry/$S")" "$(exported_in "$OBF")"
    expect_eq "the outbox keeps all four" 4 "$(nbundles "$OBF")"
}

FULL=$T/full/stick
mkdir -p "$FULL"
if mount -t tmpfs -o size=4M tmpfs "$FULL" 2>/dev/null; then
    MOUNTS+=("$FULL")
    export_ 75 "$OBF" "$FULL"
    check_full "$FULL"
    # a new stick: everything not on it yet, whatever .exported says
    umount "$FULL"
    mkdir -p "$T/full/stick2"
    export_ 0 "$OBF" "$T/full/stick2"
    expect_stderr_contains "exported 4 bundle(s)"
else
    echo "SKIP (part 3, 4 MiB stick): mounting a tmpfs is not permitted here"
fi

# The free-space check passes but the copy hits ENOSPC anyway (a FAT root
# directory out of entries, a stick filled meanwhile): a tmpfs with room for
# five inodes holds its root, pcapferry/, <sensor>/ and two bundles.
FULL2=$T/full/stick3
mkdir -p "$FULL2"
rm -rf "$OBF/.exported"
if mount -t tmpfs -o size=64M,nr_inodes=5 tmpfs "$FULL2" 2>/dev/null; then
    MOUNTS+=("$FULL2")
    export_ 75 "$OBF" "$FULL2"
    expect_stderr_contains "exported 2 bundle(s)"
    check_full "$FULL2"
    umount "$FULL2"
else
    echo "SKIP (part 3, stick out of inodes): mounting a tmpfs is not permitted here"
fi
rm -rf "$T/full"

# ================================================= 4. receipts that lie
section "4a. a forged receipt deletes nothing"
OBX=$T/forge/outbox
RX=$T/forge/receipts
make_pcap x1.pcap --packets 200 --seed 31 --start 1700003000
make_pcap x2.pcap --packets 200 --seed 32 --start 1700003100
seal "$OBX" --seq 1 "$PF_IN/x1.pcap"
seal "$OBX" --seq 2 "$PF_IN/x2.pcap"
imp 0 "$T/forge/istate" "$T/forge/ingest" --receipts "$RX" "$OBX"
expect_stderr_contains "2 new"
expect_eq "import --receipts DIR: one receipt in DIR/<sensor>/" 1 "$(receipts_in "$RX/$S")"
GOOD_RCPT=$(find "$RX/$S" -name '*.receipt' | head -n 1)
before=$(dir_listing "$OBX")
# the flipped byte: in the JSON (a hash digit), then in the signature line
for what in body signature; do
    F=$T/forge/$what
    mkdir -p "$F/$S"
    cp "$GOOD_RCPT" "$F/$S/"
    fr=$F/$S/$(basename "$GOOD_RCPT")
    if [[ "$what" == body ]]; then
        off=$(grep -bo '"hash": "' "$fr" | head -n 1 | cut -d: -f1)
        off=$((off + 12))
    else
        off=$(($(head -n 1 "$fr" | wc -c) + 5))
    fi
    flip_byte "$fr" "$off"
    prune 1 "$OBX" "$F"
    expect_stderr_contains "receipt refused, nothing deleted"
    expect_stderr_contains "1 read, 1 refused; bundles: 0 deleted"
    expect_listing "forged receipt ($what): the outbox is untouched" "$OBX" "$before"
done
# control: the genuine receipt deletes both
prune 0 "$OBX" "$RX"
expect_stderr_contains "1 read, 0 refused; bundles: 2 deleted"
expect_eq "the genuine receipt emptied the outbox" 0 "$(nbundles "$OBX")"

section "4b. a receipt from another central key deletes nothing"
OBW=$T/wrong/outbox
KR2=$T/wrong/keyring
seal "$OBW" --to "$CENTRAL2_PUB" --seq 1 "$PF_IN/x1.pcap"
seal "$OBW" --to "$CENTRAL2_PUB" --seq 2 "$PF_IN/x2.pcap"
expect_exit 0 -- "$PCAPFERRY" keys trust "$SENSOR_PUB" --keyring "$KR2"
mkdir -p "$T/wrong/ingest"
expect_exit 0 -- "$PCAPFERRY" import --key "$CENTRAL2_KEY" --keyring "$KR2" \
    --state "$T/wrong/state" --ingest "$T/wrong/ingest" --settle-ms 0 \
    --receipts "$T/wrong/receipts" "$OBW"
expect_stderr_contains "2 new"
expect_eq "central2 wrote a receipt" 1 "$(receipts_in "$T/wrong/receipts")"
before=$(dir_listing "$OBW")
prune 1 "$OBW" "$T/wrong/receipts"
expect_stderr_contains "receipt refused, nothing deleted"
expect_stderr_contains "from another central key"
expect_stderr_contains "0 deleted"
expect_listing "receipt from another central key: the outbox is untouched" "$OBW" "$before"
# control: the same receipt with its own key would have deleted them
prune 0 "$OBW" "$T/wrong/receipts" "$CENTRAL2_PUB"
expect_stderr_contains "2 deleted"

section "4c. a receipt naming another bundle with the same seq keeps ours"
OBA=$T/hash/outbox-a
OBB=$T/hash/outbox-b
seal "$OBA" --seq 7 "$PF_IN/x1.pcap"
seal "$OBB" --seq 7 "$PF_IN/x2.pcap"
expect_eq "two outboxes, each with its own seq 7" "1 1" "$(nbundles "$OBA") $(nbundles "$OBB")"
imp 0 "$T/hash/state" "$T/hash/ingest" --receipts "$T/hash/receipts" "$OBA"
before=$(dir_listing "$OBB")
prune 1 "$OBB" "$T/hash/receipts"
expect_stderr_contains "is another bundle: kept"
expect_stderr_contains "0 deleted, 0 already gone, 1 kept (hash differs)"
expect_listing "hash differs: the other outbox is untouched" "$OBB" "$before"
prune 0 "$OBA" "$T/hash/receipts"
expect_stderr_contains "1 deleted"

section "4c2. a stolen key's bundle whose trailer names ours: the receipt names its header, ours is kept"
# The importer takes the bundle hash from the signed trailer (every chunk
# authenticated: docs/FORMAT.md). A thief of the sensor key signs a trailer
# naming the genuine seq 8's hash; the receipt also names the header the
# importer judged, which the thief cannot share with the genuine bundle.
OBG=$T/stolen/outbox
OBK=$T/stolen/thief
seal "$OBG" --seq 8 "$PF_IN/x1.pcap"
seal "$OBK" --seq 8 "$PF_IN/x2.pcap"
GNAME=$(bundles_in "$OBG")
KNAME=$(bundles_in "$OBK")
gsize=$(file_size "$OBG/$GNAME")
# bundle hash and header hash, computed by b2sum (docs/FORMAT.md: the bytes
# before the 118-byte trailer; the 233 + name length header bytes)
G_HASH=$(head -c $((gsize - 118)) "$OBG/$GNAME" | b2sum -l 256 | cut -d ' ' -f 1)
G_HDR=$(head -c $((233 + ${#S})) "$OBG/$GNAME" | b2sum -l 256 | cut -d ' ' -f 1)
K_HDR=$(head -c $((233 + ${#S})) "$OBK/$KNAME" | b2sum -l 256 | cut -d ' ' -f 1)
expect_true "retrail re-signs the thief's trailer" -- "$RETRAIL" "$OBK/$KNAME" "$SENSOR_KEY" "$G_HASH"
# bundle verify hashes the bytes (public keys only: no AEAD to rely on)
expect_exit 1 -- "$PCAPFERRY" bundle verify --keyring "$KEYRING" "$OBK/$KNAME"
expect_stdout_contains "REJECTED: trailer hash does not match"
imp 0 "$T/stolen/state" "$T/stolen/ingest" --receipts "$T/stolen/receipts" "$OBK"
expect_stderr_contains "1 new"
KR=$(find "$T/stolen/receipts" -name '*.receipt' | head -n 1)
expect_true "the receipt is version 2" -- grep -q '"version": 2' "$KR"
expect_true "the receipt carries the trailer's claim" -- grep -q "\"hash\": \"$G_HASH\"" "$KR"
expect_true "...and the thief's header hash" -- grep -q "\"header_hash\": \"$K_HDR\"" "$KR"
expect_false "...not the genuine header's" -- grep -q "$G_HDR" "$KR"
before=$(dir_listing "$OBG")
prune 1 "$OBG" "$T/stolen/receipts"
expect_stderr_contains "is another bundle: kept"
expect_stderr_contains "0 deleted, 0 already gone, 1 kept (hash differs)"
expect_listing "stolen key: the genuine bundle stays in the outbox" "$OBG" "$before"
# the genuine bundle, when it arrives, is the equivocation it is
imp 1 "$T/stolen/state" "$T/stolen/ingest" --receipts "$T/stolen/receipts" "$OBG"
expect_stderr_contains "signed two different bundles with seq 8"

section "4d. a bundle the central host rejected is reported and kept"
OBJ=$T/rej/outbox
STJ=$T/rej/stick
mkdir -p "$STJ"
seal "$OBJ" --seq 1 "$PF_IN/x1.pcap"
JNAME=$(bundles_in "$OBJ")
export_ 0 "$OBJ" "$STJ"
# the stick damages the copy after export (a flipped bit in the middle)
flip_byte "$STJ/pcapferry/$S/$JNAME" "$(($(file_size "$STJ/pcapferry/$S/$JNAME") / 2))"
imp 1 "$T/rej/state" "$T/rej/ingest" "$STJ"
expect_stderr_contains "1 rejected"
expect_eq "a receipt for the rejected bundle is on the stick" 1 "$(receipts_in "$STJ/pcapferry-receipts/$S")"
expect_true "the receipt says rejected" -- grep -q '"status": "rejected"' "$STJ/pcapferry-receipts/$S"/*.receipt
expect_eq "nothing delivered" 0 "$(pcaps_in "$T/rej/ingest")"
prune 0 "$OBJ" "$STJ/pcapferry-receipts"
expect_stderr_contains "central rejected sensor=$S seq=1"
expect_stderr_contains "the bundle is kept"
expect_stderr_contains "0 deleted, 0 already gone, 0 kept (hash differs), 1 reported rejected"
expect_eq "the rejected bundle is still in the outbox" "$JNAME" "$(bundles_in "$OBJ")"
# export it again (the bad copy went to quarantine), import, prune
export_ 0 "$OBJ" "$STJ" --central
expect_stderr_contains "exported 1 bundle(s)"
expect_eq "still kept after re-export" 1 "$(nbundles "$OBJ")"
imp 0 "$T/rej/state" "$T/rej/ingest" "$STJ"
expect_stderr_contains "1 new"
export_ 0 "$OBJ" "$STJ" --central
expect_stderr_contains "1 deleted"
expect_eq "the outbox is empty once the good copy was committed" 0 "$(nbundles "$OBJ")"

# ============================================================== 5. rsync
section "5. rsync: killed in the middle of a large bundle, then resumed"
OBR=$T/rsync/outbox
INC=$T/rsync/incoming
RR=$T/rsync/receipts
INBOX=$T/rsync/sensor-inbox
ISR=$T/rsync/state
INGR=$T/rsync/ingest
mkdir -p "$INC" "$INBOX"
make_pcap r3.pcap --bytes 20M --mix tls --seed 43 --start 1700004200
seal "$OBR" --state "$T/rsync/seq" "$PF_IN/x1.pcap"  # seq 1
seal "$OBR" --state "$T/rsync/seq" "$PF_IN/x2.pcap"  # seq 2
seal "$OBR" --state "$T/rsync/seq" "$PF_IN/r3.pcap"  # seq 3: ~20 MB
seal "$OBR" --state "$T/rsync/seq" "$PF_IN/a.pcap"   # seq 4
R_PKTS=$(pkts_in "$PF_IN/x1.pcap" "$PF_IN/x2.pcap" "$PF_IN/r3.pcap" "$A_PCAP")
rm -f "$PF_IN/r3.pcap"
mkdir -p "$OBR/.exported"
touch "$OBR/.exported/marker"
BIG=$(bundles_in "$OBR" | sed -n 3p)
RSYNC=(rsync -a --partial-dir=.rsync-partial --exclude=.exported)
setsid "${RSYNC[@]}" --bwlimit=8000 "$OBR/" "$INC/" >"$T/rsync/rsync1.log" 2>&1 &
rpid=$!
BG_PIDS+=("$rpid")
got=0
for _ in $(seq 3000); do
    shopt -s nullglob dotglob
    tmp=("$INC"/."$BIG".*)
    shopt -u nullglob dotglob
    if ((${#tmp[@]} >= 1)) && (($(stat -c %s "${tmp[0]}" 2>/dev/null || echo 0) > 2000000)); then
        got=1
        break
    fi
    kill -0 "$rpid" 2>/dev/null || break
    sleep 0.01
done
{
    kill -9 -- "-$rpid" || kill -9 "$rpid"
    wait "$rpid"
} 2>/dev/null # no "Killed" line from bash
BG_PIDS=()
expect_eq "rsync was killed while the large bundle was in flight" 1 "$got"
expect_false "the large bundle has no final name in INCOMING yet" -- test -e "$INC/$BIG"
expect_false "rsync copied no .exported marks" -- test -e "$INC/.exported"
# the importer between the two rsyncs: the complete bundles only, and an
# exit status that says "fine" or "come back later"
mkdir -p "$INGR"
run "$PCAPFERRY" import --key "$CENTRAL_KEY" --keyring "$KEYRING" --state "$ISR" \
    --ingest "$INGR" --settle-ms 0 --receipts "$RR" "$INC"
if [[ "$PF_RC" == 0 || "$PF_RC" == 75 ]] && ! pf_sanitizer_report; then
    pass "import between the two rsyncs exits $PF_RC"
else
    fail "import between the two rsyncs: exit $PF_RC, expected 0 or 75"
    pf_show_last
fi
expect_stderr_contains "2 new, 0 already imported, 0 rejected"
expect_eq "only the two complete bundles were delivered" 2 "$(pcaps_in "$INGR")"
expect_eq "nothing of seq 3 reached INGEST" "" "$(find "$INGR" -name "$S-0000000003-*")"
expect_no_partial "INGEST after the interrupted transfer" "$INGR"
# resume and finish
expect_exit 0 -- "${RSYNC[@]}" "$OBR/" "$INC/"
bad=""
for n in $(bundles_in "$OBR"); do
    cmp -s "$OBR/$n" "$INC/$n" || bad+=" $n"
done
expect_eq "after the resumed rsync INCOMING holds identical copies" "" "$bad"
imp 0 "$ISR" "$INGR" --receipts "$RR" "$INC"
expect_stderr_contains "2 new, 2 already imported, 0 rejected, 0 gaps (2 files delivered"
expect_eq "every bundle delivered once" 4 "$(pcaps_in "$INGR")"
for q in 1 2 3 4; do
    expect_eq "seq $q delivered exactly once" 1 \
        "$(find "$INGR" -type f -name "$S-000000000$q-*.pcap" | grep -c .)"
done
"$PCAPFERRY" import --status --json --state "$ISR" >"$T/rsync/status.json" 2>/dev/null
expect_eq "import --status: 4 bundles, 0 gaps" "4 0" \
    "$(jq -r --arg s "$S" '.[] | select(.sensor == $s) | "\(.bundles) \(.gaps)"' "$T/rsync/status.json")"
# receipts go back the same way and prune the outbox
expect_exit 0 -- rsync -a "$RR/" "$INBOX/"
prune 0 "$OBR" "$INBOX"
expect_stderr_contains "2 read, 0 refused; bundles: 4 deleted"
expect_eq "the outbox is empty after the rsync round trip" 0 "$(nbundles "$OBR")"
expect_eq "packets delivered over rsync = packets sealed (tcpdump)" "$R_PKTS" "$(pkts_in "$INGR")"

summary
