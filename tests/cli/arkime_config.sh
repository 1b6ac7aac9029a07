#!/usr/bin/env bash
# Arkime as it really behaves (issue 13 items 1 and 2, issue 15 item 3):
#   1. the documented configuration TEXT itself: every capture command line
#      and every filenameOps line in docs/IMPORT.md, docs/DEPLOY.md, the man
#      pages and packaging/ is extracted as written and fed to the stand-in's
#      copy of capture's option and config.ini parsing (GLib key-file escapes,
#      filenameOps). They must watch sub-directories (--recursive) and give a
#      file /data/ingest/plant-a/plant-a-0000000042-1-....pcap the tags
#      sensor:plant-a and bundle:42. (The text of 70eb8a0 fails here: no
#      --recursive, and \1, which GLib rejects, dropping the whole setting.)
#      PF_DOCS_ROOT=DIR checks another copy of docs/ man/ packaging/.
#   2. the stand-in (tests/tools/arkime_watch) behaves like capture 6.7.1 on
#      each point of the issue: sub-directories only with --recursive; a bad
#      magic, a raw link-type field with FCS bits, link type 14, caplen != len
#      (both ways) and multi-interface pcapng stop it (exit 3, as capture's
#      LOGEXIT), unless readTruncatedPackets=true for caplen != len; a cut
#      last record is read up to there without an error.
#   3. end to end: the importer delivers a bundle with seq 42 into a watched
#      ingest directory configured with the documented lines; the session
#      tags are sensor:<sensor> and bundle:42.
# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.sh
. "${PF_TESTLIB:-$(dirname "${BASH_SOURCE[0]}")/lib.sh}"

require_binaries
require_cmd awk sed grep tcpdump editcap mergecap capinfos
: "${ARKIME_WATCH:=$pf_lib_dir/../../build/tests/tools/arkime_watch}"
[[ -x "$ARKIME_WATCH" ]] || skip "ARKIME_WATCH=$ARKIME_WATCH is not an executable (build first)"
ROOT=${PF_DOCS_ROOT:-$pf_lib_dir/../..}
T=$(cd "$PF_TMP" && pwd -P)
WATCH_PID=
# shellcheck disable=SC2317 # run from the EXIT trap
ac_exit() {
    local rc=$?
    [[ -n "$WATCH_PID" ]] && kill -9 "$WATCH_PID" 2>/dev/null
    (exit "$rc")
    pf_cleanup
}
trap ac_exit EXIT

SAMPLE=/data/ingest/plant-a/plant-a-0000000042-1-20231114T221320Z.pcap

# roff's escapes in the man pages' examples: \- is -, \e is a backslash.
unroff() { sed -e 's/\\-/-/g' -e 's/\\e/\\/g' -e 's/\\(aq/'"'"'/g'; }

# as_text FILE: FILE as a reader sees it (man pages unescaped).
as_text() {
    if [[ $1 == *.1 ]]; then unroff <"$1"; else cat "$1"; fi
}

# capture_lines FILE: each /opt/arkime/bin/capture command of FILE, joined
# over its backslash-continued lines, one per output line.
capture_lines() {
    local f=$1
    as_text "$f" |
        awk '/^[[:space:]]*\/opt\/arkime\/bin\/capture / || cont {
                 line = cont ? line " " $0 : $0
                 if ($0 ~ /\\$/) { sub(/\\$/, "", line); cont = 1; next }
                 cont = 0; print line
             }'
}

# filenameops_lines FILE: every line that sets filenameOps (in a config
# block, or commented out in import.conf), as written.
filenameops_lines() {
    local f=$1
    as_text "$f" |
        sed -n 's/^[[:space:]#]*\(filenameOps=.*\)$/\1/p'
}

# ------------------------------------------------------------------- part 1

section "the documented capture command lines watch the per-sensor directories"
n_cmd=0
for f in docs/IMPORT.md docs/DEPLOY.md man/pcapferry-import.1 man/pcapferry.1; do
    [[ -f $ROOT/$f ]] || {
        fail "$f: missing"
        continue
    }
    mapfile -t lines < <(capture_lines "$ROOT/$f")
    expect_true "$f has a capture command line" -- test "${#lines[@]}" -gt 0
    for l in "${lines[@]}"; do
        read -r -a words <<<"$l"
        # -c names the config.ini of the host: the one shipped stands in for it
        for ((i = 1; i < ${#words[@]}; i++)); do
            [[ ${words[i - 1]} == -c ]] && words[i]=$ROOT/packaging/docker/arkime-config.ini
        done
        expect_exit 0 -- "$ARKIME_WATCH" --check "${words[@]:1}"
        if [[ " ${words[*]} " == *" --command-socket "* ]]; then
            # command-socket mode: no directory is watched, files are handed over
            if [[ " ${words[*]} " == *" --command-wait "* ]] && ! grep -q '^monitor=/' "$PF_OUT"; then
                pass "$f: '$l' waits for add-file commands, no monitor mode"
            else
                fail "$f: '$l': a command socket needs --command-wait, and no -m -R beside it"
            fi
        elif grep -qx 'monitor=/data/ingest recursive=yes' "$PF_OUT"; then
            pass "$f: '$l' watches /data/ingest and its sub-directories"
        else
            fail "$f: '$l' does not watch the sub-directories of /data/ingest ($(grep '^monitor=' "$PF_OUT"))"
        fi
        n_cmd=$((n_cmd + 1))
    done
done
# compose.yaml: the arkime-capture service's command, after "--".
if [[ -f $ROOT/packaging/docker/compose.yaml ]]; then
    cmd=$(awk '/^  arkime-capture:/ { s = 1 } s && /command:/ { c = 1 }
               c { print } c && /\]/ { exit }' "$ROOT/packaging/docker/compose.yaml" |
        tr -d '\n' | sed -e 's/.*\[//' -e 's/\].*//' -e 's/"//g' -e 's/,/ /g' -e 's/.* -- //')
    read -r -a words <<<"$cmd"
    expect_true "compose.yaml: arkime-capture has a command" -- test "${#words[@]}" -gt 0
    expect_exit 0 -- "$ARKIME_WATCH" --check "${words[@]}"
    expect_stdout_contains "monitor=/data/ingest recursive=yes"
    n_cmd=$((n_cmd + 1))
else
    fail "packaging/docker/compose.yaml: missing"
fi
echo "  $n_cmd capture command lines checked"

section "the documented filenameOps lines, parsed as capture parses config.ini"
n_ops=0
for f in docs/IMPORT.md docs/DEPLOY.md man/pcapferry-import.1 man/pcapferry.1 \
    packaging/etc/import.conf packaging/docker/arkime-config.ini; do
    [[ -f $ROOT/$f ]] || {
        fail "$f: missing"
        continue
    }
    mapfile -t lines < <(filenameops_lines "$ROOT/$f")
    expect_true "$f shows a filenameOps line" -- test "${#lines[@]}" -gt 0
    for l in "${lines[@]}"; do
        printf '[default]\n%s\n' "$l" >"$T/config.ini"
        expect_exit 0 -- "$ARKIME_WATCH" --check -c "$T/config.ini" "$SAMPLE"
        got=$(awk -v p="$SAMPLE" '$1 == p { print $2 }' "$PF_OUT")
        if [[ $got == "tags=sensor:plant-a,bundle:42" ]]; then
            pass "$f: a session from $SAMPLE gets $got"
        else
            fail "$f: '$l' gives '$got', not tags=sensor:plant-a,bundle:42"
            sed -n '1,5s/^/  | /p' "$PF_ERR" "$PF_OUT"
        fi
        n_ops=$((n_ops + 1))
    done
done
# Also the real config file as a whole, as capture loads it.
if [[ -f $ROOT/packaging/docker/arkime-config.ini ]]; then
    expect_exit 0 -- "$ARKIME_WATCH" --check -c "$ROOT/packaging/docker/arkime-config.ini" \
        -n arkime "$SAMPLE" /data/ingest/plant-a/notes.txt
    expect_stdout_contains "$SAMPLE tags=sensor:plant-a,bundle:42"
    expect_stdout_contains "/data/ingest/plant-a/notes.txt tags=sensor:plant-a"
fi
echo "  $n_ops filenameOps lines checked"

# ------------------------------------------------------------------- part 2

section "the stand-in parses config.ini as GLib does"
cfg() { printf '[default]\n%s\n' "$@" >"$T/c.ini"; }
cfg 'filenameOps=tags=/data/ingest/([^/]+)/%sensor:\1'
expect_exit 0 -- "$ARKIME_WATCH" --check -c "$T/c.ini" "$SAMPLE"
expect_stdout_contains "filenameOps=(null)"
expect_stdout_contains "$SAMPLE tags="
expect_stderr_contains 'invalid escape sequence "\1"'
cfg 'filenameOps=tags=/data/ingest/([^/]+)/[^/]*\.pcap%sensor:\\1'
expect_exit 0 -- "$ARKIME_WATCH" --check -c "$T/c.ini" "$SAMPLE"
expect_stdout_contains "filenameOps=(null)" # \. is invalid too
cfg 'filenameOps=tags=/data/ingest/([^/]+)/%sensor:\\1'
expect_exit 0 -- "$ARKIME_WATCH" --check -c "$T/c.ini" "$SAMPLE"
expect_stdout_contains "$SAMPLE tags=sensor:plant-a"
cfg 'filenameOps=tags=/data/ingest/([^/]+)/%sensor:\\1\sx'
expect_exit 0 -- "$ARKIME_WATCH" --check -c "$T/c.ini" "$SAMPLE"
expect_stdout_contains "$SAMPLE tags=sensor:plant-a x"
# -o is not a key file: a single backslash is right there.
expect_exit 0 -- "$ARKIME_WATCH" --check -o 'filenameOps=tags=/data/ingest/([^/]+)/%sensor:\1' "$SAMPLE"
expect_stdout_contains "$SAMPLE tags=sensor:plant-a"
# The node's group wins over [default].
printf '[default]\nfilenameOps=tags=/(data)/%%d:\\\\1\n[n1]\nfilenameOps=tags=/(ingest)/%%i:\\\\1\n' >"$T/c.ini"
expect_exit 0 -- "$ARKIME_WATCH" --check -c "$T/c.ini" -n n1 "$SAMPLE"
expect_stdout_contains "$SAMPLE tags=i:ingest"
# What capture refuses to start with.
cfg 'filenameOps=tags/data/ingest/%x'
expect_exit 1 -- "$ARKIME_WATCH" --check -c "$T/c.ini"
expect_stderr_contains "must be FieldExpr=regex%value"
printf 'filenameOps=tags=x%%y\n' >"$T/c.ini"
expect_exit 1 -- "$ARKIME_WATCH" --check -c "$T/c.ini"
expect_stderr_contains "key outside a group"

section "the stand-in watches sub-directories only with --recursive"
# watch_start LOG ARGS...: a stand-in in the background, ready.
watch_start() {
    local log=$1 i
    shift
    : >"$log"
    "$ARKIME_WATCH" "$@" "$log" 60 >"$log.out" 2>"$log.err" &
    WATCH_PID=$!
    for ((i = 0; i < 200; i++)); do
        grep -qx ready "$log.out" 2>/dev/null && return 0
        kill -0 "$WATCH_PID" 2>/dev/null || break
        sleep 0.05
    done
    die "arkime_watch did not start: $(cat "$log.err")"
}
# watch_stop: SIGTERM; sets WATCH_RC.
watch_stop() {
    kill -TERM "$WATCH_PID" 2>/dev/null
    wait "$WATCH_PID"
    WATCH_RC=$?
    WATCH_PID=
}
# deliver FILE DEST: stage under a dot name, rename, announce (open/close).
deliver() {
    cp "$1" "$(dirname "$2")/.x.part" && mv "$(dirname "$2")/.x.part" "$2" && : >>"$2"
}
# wait_log LOG N: until LOG has N lines (or 5 s).
wait_log() {
    local i
    for ((i = 0; i < 100; i++)); do
        (($(grep -c . "$1") >= $2)) && return 0
        sleep 0.05
    done
    return 0
}
"$PCAPGEN" --packets 50 --seed 3 "$T/good.pcap" >/dev/null 2>&1 || die "pcapgen failed"
GOOD_B2=$(b2_256 "$T/good.pcap")
for mode in flat recursive; do
    W=$T/w-$mode
    mkdir -p "$W/ingest/old-sensor"
    args=(-m -R "$W/ingest")
    [[ $mode == recursive ]] && args+=(--recursive)
    watch_start "$W/log" "${args[@]}"
    mkdir "$W/ingest/new-sensor"
    sleep 0.3
    deliver "$T/good.pcap" "$W/ingest/old-sensor/a.pcap"
    deliver "$T/good.pcap" "$W/ingest/new-sensor/b.pcap"
    deliver "$T/good.pcap" "$W/ingest/top.pcap"
    wait_log "$W/log" "$([[ $mode == recursive ]] && echo 3 || echo 1)"
    sleep 0.2
    watch_stop
    expect_eq "$mode: exit status" 0 "$WATCH_RC"
    expect_eq "$mode: the file in DIR itself is read, whole" 1 \
        "$(awk -v p="$W/ingest/top.pcap" -v h="$GOOD_B2" '$1 == p && $3 == h' "$W/log" | wc -l)"
    seen=$(awk -v h="$GOOD_B2" '$3 == h' "$W/log" | wc -l)
    if [[ $mode == recursive ]]; then
        expect_eq "recursive: all 3 files read (DIR, an old and a new sub-directory)" 3 "$seen"
    else
        expect_eq "without --recursive: only the file in DIR itself is read (Arkime 6.7.1: 0 of 27 per-sensor files)" 1 "$seen"
    fi
done

section "the stand-in reads files as capture's reader does"
# try NAME EXPECTED_EXIT EXPECTED_OUTCOME [stand-in options]: deliver
# $T/NAME into a watched directory; OUTCOME is the log's third word (a
# digest = read whole).
try() {
    local name=$1 want_rc=$2 want=$3
    shift 3
    local W=$T/try-$name-$#
    mkdir -p "$W/ingest"
    watch_start "$W/log" "$@" "$W/ingest"
    deliver "$T/$name" "$W/ingest/$name"
    wait_log "$W/log" 1
    # after a FATAL file the stand-in must have stopped: a later file is not read
    deliver "$T/good.pcap" "$W/ingest/later.pcap"
    sleep 0.3
    watch_stop
    local got
    got=$(awk -v p="$W/ingest/$name" '$1 == p { print $3 }' "$W/log")
    [[ $got =~ ^[0-9a-f]{64}$ ]] && got=WHOLE
    expect_eq "$name ${*:-(defaults)}: read as" "$want" "$got"
    expect_eq "$name ${*:-(defaults)}: exit status" "$want_rc" "$WATCH_RC"
    if [[ $want_rc == 3 ]]; then
        expect_eq "$name: nothing read after it" "" "$(awk -v p="$W/ingest/later.pcap" '$1 == p' "$W/log")"
    fi
    cp "$W/log.err" "$T/last.err"
}
# le32 FILE OFFSET VALUE: overwrite 4 bytes, little-endian.
le32() {
    printf '%b' "$(printf '\\x%02x\\x%02x\\x%02x\\x%02x' $(($3 & 255)) $(($3 >> 8 & 255)) \
        $(($3 >> 16 & 255)) $(($3 >> 24 & 255)))" |
        dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}
cp "$T/good.pcap" "$T/good-copy.pcap"
try good-copy.pcap 0 WHOLE
# The raw link-type field with FCS-length bits: libpcap (tcpdump) reads it as
# Ethernet, capture refuses it.
cp "$T/good.pcap" "$T/fcs.pcap"
le32 "$T/fcs.pcap" 20 $((0x24000001))
expect_eq "tcpdump reads the FCS-bits file as Ethernet" 50 "$(tcpdump -n -r "$T/fcs.pcap" 2>/dev/null | wc -l)"
try fcs.pcap 3 FATAL
expect_true "FCS bits: 'Unsupported pcap link type 603979777'" -- \
    grep -q "Unsupported pcap link type 603979777" "$T/last.err"
for lt in 12 101 14; do
    cp "$T/good.pcap" "$T/lt$lt.pcap"
    le32 "$T/lt$lt.pcap" 20 "$lt"
done
try lt12.pcap 0 WHOLE
try lt101.pcap 0 WHOLE
try lt14.pcap 3 FATAL # raw IP is 12 on Linux; 14 is OpenBSD's
"$PCAPGEN" --packets 40 --snaplen 64 "$T/snap.pcap" >/dev/null 2>&1 || die "pcapgen failed"
expect_true "capinfos: the snaplen-64 file has packets cut (caplen < len)" -- \
    sh -c "capinfos -l '$T/snap.pcap' | grep -q 64"
try snap.pcap 3 FATAL
try snap.pcap 0 WHOLE -o readTruncatedPackets=true
printf '[default]\nreadTruncatedPackets=true\n' >"$T/rt.ini"
try snap.pcap 0 WHOLE -c "$T/rt.ini"
# caplen > len is refused as well (the first record: caplen at 32, len at 36)
cp "$T/good.pcap" "$T/bigcap.pcap"
first_len=$(od -An -tu4 -j 36 -N 4 "$T/good.pcap" | tr -d ' ')
le32 "$T/bigcap.pcap" 36 $((first_len - 1))
try bigcap.pcap 3 FATAL
head -c 100 /dev/urandom >"$T/junk.pcap"
printf 'XXXX' | dd of="$T/junk.pcap" bs=1 conv=notrunc status=none
try junk.pcap 3 FATAL
try junk.pcap 0 FATAL --ignoreerrors
# A cut last record: read up to there, no error.
size=$(stat -c %s "$T/good.pcap")
head -c $((size - 7)) "$T/good.pcap" >"$T/cut.pcap"
try cut.pcap 0 PARTIAL
expect_true "cut last record: 49 of 50 packets read, no error" -- \
    grep -q "capture reads 49 packets, no error" "$T/last.err"
# pcapng: one interface is read; two interfaces stop capture.
"$PCAPGEN" --packets 30 --pcapng "$T/one.pcap" >/dev/null 2>&1 || die "pcapgen failed"
try one.pcap 0 WHOLE
editcap -T rawip "$T/good.pcap" "$T/raw.pcap" 2>/dev/null || die "editcap failed"
mergecap -F pcapng -w "$T/two.pcap" "$T/good.pcap" "$T/raw.pcap" 2>/dev/null || die "mergecap failed"
expect_eq "capinfos: the merged pcapng has 2 interfaces" 2 \
    "$(capinfos -M "$T/two.pcap" | sed -n 's/^Number of interfaces in file: *//p')"
try two.pcap 3 FATAL
expect_true "two interfaces: 'Multiple interfaces in pcapNG'" -- \
    grep -q "Multiple interfaces in pcapNG" "$T/last.err"

# ------------------------------------------------------------------- part 3

section "end to end: the documented configuration tags sessions by sensor and bundle"
setup_keys plant-a central1
E=$T/e2e
mkdir -p "$E/ingest" "$E/out" "$E/state"
"$PCAPGEN" --packets 20 --seed 42 --start 1700000000 "$E/a.pcap" >/dev/null 2>&1 || die "pcapgen failed"
"$PCAPGEN" --packets 20 --seed 43 --start 1700000100 "$E/b.pcap" >/dev/null 2>&1 || die "pcapgen failed"
expect_exit 0 -- "$PCAPFERRY" bundle create --key "$T/keys/plant-a.key" --to "$CENTRAL_PUB" \
    --out "$E/out" --seq 42 "$E/a.pcap" "$E/b.pcap"
# The docker config as shipped, with the ingest path of this test.
sed "s|/data/ingest|$E/ingest|g" "$ROOT/packaging/docker/arkime-config.ini" >"$E/config.ini"
watch_start "$E/log" -c "$E/config.ini" -m -R "$E/ingest" --recursive --copy --delete \
    --sessions "$E/sessions"
expect_exit 0 -- "$PCAPFERRY" import --key "$CENTRAL_KEY" --keyring "$KEYRING" --state "$E/state" \
    --ingest "$E/ingest" --settle-ms 300 "$E/out"
wait_log "$E/sessions" 2
watch_stop
expect_eq "stand-in exit status" 0 "$WATCH_RC"
expect_eq "both files read, each with sensor:plant-a and bundle:42" \
    "2" "$(grep -c ' packets=20 tags=sensor:plant-a,bundle:42$' "$E/sessions")"
sed 's/^/  /' "$E/sessions"

summary
