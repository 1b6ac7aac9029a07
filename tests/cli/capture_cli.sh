#!/usr/bin/env bash
# pcapferry capture without a network: -r input (re-sealing captures) drives
# the same daemon code as live capture: rotation by packet time (-G) and by
# size (-C), BPF filters, --dont-save, usage errors, the BalanceTonPCAP
# environment and the config file, recovery of .active-* files left by a
# crash, and the outbox quota (--when-full drop-oldest | stop).
#
# What was captured is checked independently: bundles are opened (or
# imported) with the central key and their pcaps read with tcpdump, whose
# output is compared with tcpdump's output for the original capture.
# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.sh
. "${PF_TESTLIB:-$(dirname "${BASH_SOURCE[0]}")/lib.sh}"

require_binaries
require_cmd tcpdump jq awk sort find
unset PCAP_INTERFACE PCAP_CAPTURE_SIZE PCAP_FILE_SIZE PCAP_BPF_FILTER PCAP_SENSOR_NAME \
    PCAP_FILE_ROTATE

T=$PF_TMP
BG_PID=
# shellcheck disable=SC2317 # run from the EXIT trap
cli_cleanup() {
    [[ -n "$BG_PID" ]] && kill "$BG_PID" 2>/dev/null
    return 0
}
# shellcheck disable=SC2317 # run from the EXIT trap
on_exit() {
    local rc=$?
    cli_cleanup
    (exit "$rc")
    pf_cleanup
}
trap on_exit EXIT

setup_keys edge-7 central1
EMPTY=$T/empty.conf
: >"$EMPTY"

# a.pcap: 5000 packets over 10 s of packet time (1700000000.000 .. 1700000009.998),
# the realistic mix (TCP, UDP, 130 DNS packets in 65 flows, ARP).
make_pcap a.pcap --packets 5000 --seed 11 --rate 500
# b.pcap: 1500 packets, 100 s later, 3 s long.
make_pcap b.pcap --packets 1500 --seed 12 --rate 500 --start 1700000100
make_pcap small.pcap --packets 50 --seed 13
make_pcap c.pcap --packets 200 --seed 14
A=$PF_IN/a.pcap
B=$PF_IN/b.pcap
SMALL=$PF_IN/small.pcap

# ---------------------------------------------------------------- helpers

# use_dirs NAME: SP, OB, ST (spool, outbox, state) under $T/NAME.
use_dirs() {
    SP=$T/$1/spool
    OB=$T/$1/outbox
    ST=$T/$1/state
}

# cap CODE [args...]: pcapferry capture with the keys, SP/OB/ST and an empty
# config must exit CODE. --no-drop is the caller's choice.
cap() {
    local code=$1
    shift
    expect_exit "$code" -- "$PCAPFERRY" capture -c "$EMPTY" --key "$SENSOR_KEY" \
        --to "$CENTRAL_PUB" --spool "$SP" --outbox "$OB" --state "$ST" "$@"
}

# capz CODE [args...]: cap dropping to nobody, in the environment
# pf_lsan_drop_setup (lib.sh) chose for runs that drop privileges.
capz() {
    local code=$1
    shift
    expect_exit "$code" -- "${PF_Z_ENV[@]}" "$PCAPFERRY" capture -c "$EMPTY" --key "$SENSOR_KEY" \
        --to "$CENTRAL_PUB" --spool "$SP" --outbox "$OB" --state "$ST" -Z nobody "$@"
}

# bundles_in DIR: bundle names, sorted (= seq order: the seq is zero-padded).
bundles_in() {
    find "$1" -maxdepth 1 -type f -name '*.pcapferry' -printf '%f\n' 2>/dev/null | sort
}

# open_outbox OUTBOX DIR: opens every bundle (seq order) into its own
# directory under DIR (pcap names may repeat across runs) and copies its
# manifest to DIR; DIR.list lists the pcaps in delivery order. One check
# for the whole outbox.
open_outbox() {
    local ob=$1 dir=$2 b sub bad=
    mkdir -p "$dir"
    : >"$dir.raw"
    for b in $(bundles_in "$ob"); do
        sub=$dir/${b%.pcapferry}
        mkdir -p "$sub"
        if "$PCAPFERRY" bundle open --key "$CENTRAL_KEY" --keyring "$KEYRING" --out "$sub" \
            "$ob/$b" >>"$dir.raw" 2>"$dir.err"; then
            cp "$sub"/*.manifest.json "$dir/"
        else
            bad="$bad $b($(tail -n 1 "$dir.err"))"
        fi
    done
    cut -f 1 "$dir.raw" >"$dir.list"
    if [[ -z "$bad" ]]; then
        pass "every bundle in $ob opens"
    else
        fail "bundles that do not open:$bad"
    fi
}

# view FILE...: what must survive, per packet: time (µs), headers, bytes.
view() {
    local f
    for f in "$@"; do
        tcpdump --time-stamp-precision=micro -n -S -tt -xx -r "$f" 2>/dev/null
    done
}

# view_filtered FILTER FILE...
view_filtered() {
    local filter=$1 f
    shift
    for f in "$@"; do
        tcpdump --time-stamp-precision=micro -n -S -tt -xx -r "$f" "$filter" 2>/dev/null
    done
}

count() {
    local f n=0 c
    for f in "$@"; do
        c=$(tcpdump -n -r "$f" 2>/dev/null | wc -l)
        n=$((n + c))
    done
    echo "$n"
}

count_filtered() {
    local filter=$1 f n=0 c
    shift
    for f in "$@"; do
        c=$(tcpdump -n -r "$f" "$filter" 2>/dev/null | wc -l)
        n=$((n + c))
    done
    echo "$n"
}

# list_files DIR: the pcaps of DIR.list as words.
list_files() {
    cat "$1.list"
}

# stat_sum DIR FIELD: sum of capture_stats.FIELD over every manifest in DIR.
stat_sum() {
    jq -s --arg f "$2" '[.[].files[].capture_stats[$f] // 0] | add // 0' "$1"/*.manifest.json
}

# expected_files FIRST_SEC LAST_SEC G: windows of G seconds touched.
expected_files() {
    echo $(($2 / $3 - $1 / $3 + 1))
}

# same_view WHAT ORIG_VIEW GOT_VIEW
same_view() {
    if [[ ! -s "$2" ]]; then
        fail "$1: the original view is empty"
        return 1
    fi
    expect_same_file "$1" "$2" "$3"
}

# ---------------------------------------------------------------- usage
section "usage errors exit 2 with a clear message"
use_dirs usage
K=(--key "$SENSOR_KEY")
TO=(--to "$CENTRAL_PUB")
DIRS=(--spool "$SP" --outbox "$OB" --state "$ST")
ALL=("${K[@]}" "${TO[@]}" "${DIRS[@]}")
usage_err() {
    local text=$1
    shift
    [[ "${1:-}" == "--" ]] && shift
    expect_exit 2 -- "$PCAPFERRY" capture "$@"
    expect_stderr_contains "$text"
}
usage_err "capture needs -i IFACE or -r FILE" -- -c "$EMPTY" "${ALL[@]}" --no-drop
usage_err "-i and -r exclude each other" -- -c "$EMPTY" "${ALL[@]}" --no-drop -i lo -r "$A"
usage_err "-i and -r exclude each other" -- -c "$EMPTY" "${ALL[@]}" --no-drop -r "$A" -i lo
usage_err "-i any" -- -c "$EMPTY" "${ALL[@]}" --no-drop -i any
expect_stderr_contains "cooked"
expect_stderr_contains "link layer"
expect_stderr_contains "--allow-any"
NEED="capture needs --key, --to, --spool, --outbox and --state"
usage_err "$NEED" -- -c "$EMPTY" "${TO[@]}" "${DIRS[@]}" --no-drop -r "$A"
usage_err "$NEED" -- -c "$EMPTY" "${K[@]}" "${DIRS[@]}" --no-drop -r "$A"
usage_err "$NEED" -- -c "$EMPTY" "${K[@]}" "${TO[@]}" --outbox "$OB" --state "$ST" --no-drop -r "$A"
usage_err "$NEED" -- -c "$EMPTY" "${K[@]}" "${TO[@]}" --spool "$SP" --state "$ST" --no-drop -r "$A"
usage_err "$NEED" -- -c "$EMPTY" "${K[@]}" "${TO[@]}" --spool "$SP" --outbox "$OB" --no-drop -r "$A"
usage_err "-Z and --no-drop exclude each other" -- -c "$EMPTY" "${ALL[@]}" -Z nobody --no-drop -r "$A"
usage_err "expected 'BPF:N'" -- -c "$EMPTY" "${ALL[@]}" --no-drop --dont-save 'udp port 53' -r "$A"
usage_err "expected 'BPF:N'" -- -c "$EMPTY" "${ALL[@]}" --no-drop --dont-save 'udp port 53:x' -r "$A"
usage_err "expected 'BPF:N'" -- -c "$EMPTY" "${ALL[@]}" --no-drop --dont-save ':5' -r "$A"
usage_err "--dont-save 'udpx port 53'" -- -c "$EMPTY" "${ALL[@]}" --no-drop --dont-save 'udpx port 53:1' -r "$A"
usage_err "when-full: 'sometimes' is drop-oldest or stop" -- -c "$EMPTY" "${ALL[@]}" --no-drop --when-full sometimes -r "$A"
usage_err "filter 'tcpx'" -- -c "$EMPTY" "${ALL[@]}" --no-drop -r "$A" tcpx
usage_err "a sensor secret key is needed here" -- -c "$EMPTY" --key "$CENTRAL_KEY" "${TO[@]}" "${DIRS[@]}" --no-drop -r "$A"
usage_err "--to takes the central host's public key" -- -c "$EMPTY" "${K[@]}" --to "$SENSOR_PUB" "${DIRS[@]}" --no-drop -r "$A"
usage_err "bad option" -- -c "$EMPTY" "${ALL[@]}" --no-drop --frobnicate -r "$A"
printf '# a comment\n\nlevel = 3\nfrobnicate = 1\n' >"$T/bad.conf"
usage_err "$T/bad.conf:4: unknown setting 'frobnicate'" -- -c "$T/bad.conf" "${ALL[@]}" --no-drop -r "$A"
printf 'snaplen = lots\n' >"$T/bad2.conf"
usage_err "$T/bad2.conf:1: snaplen" -- -c "$T/bad2.conf" "${ALL[@]}" --no-drop -r "$A"
usage_err "no-such.conf" -- -c "$T/no-such.conf" "${ALL[@]}" --no-drop -r "$A"
PCAP_SENSOR_NAME=other-sensor usage_err "PCAP_SENSOR_NAME=other-sensor" -- -c "$EMPTY" "${ALL[@]}" --no-drop -r "$A"
expect_stderr_contains "'edge-7'"
if [[ "$(id -u)" == 0 ]]; then
    usage_err "refusing to capture as root" -- -c "$EMPTY" "${ALL[@]}" -r "$A"
    expect_stderr_contains "-Z"
    expect_eq "the refused run sealed nothing" "" "$(bundles_in "$OB")"
else
    echo "note: not root; the 'refusing to capture as root' check needs root"
fi
expect_exit 0 -- "$PCAPFERRY" capture --help
expect_stdout_contains "PCAP_FILE_SIZE"
expect_false "usage errors made no bundle" -- test -n "$(bundles_in "$OB")"

# ---------------------------------------------------------------- -r -G 2
section "-r with -G 2: one bundle per 2 s of packet time, spool empty, same packets"
use_dirs g2
cap 0 --no-drop -G 2 -r "$A" || die "capture -r failed"
expect_stderr_contains "keeping root privileges (--no-drop)"
expect_dir_empty "$SP"
nb=$(bundles_in "$OB" | wc -l)
# a.pcap spans 1700000000.000 .. 1700000009.998: windows [0,2) [2,4) .. [8,10)
expect_eq "bundles for 10 s of packets with -G 2" "$(expected_files 1700000000 1700000009 2)" "$nb"
expect_exit 0 -- "$PCAPFERRY" bundle verify --keyring "$KEYRING" "$OB"/*.pcapferry
expect_eq "every bundle verifies" "$nb" "$(grep -c ': OK sensor=edge-7 ' "$PF_OUT")"

# the importer, as central would run it
IMP_ST=$T/g2/import-state
ING=$T/g2/ingest
mkdir -p "$ING"
expect_exit 0 -- "$PCAPFERRY" import --key "$CENTRAL_KEY" --keyring "$KEYRING" --state "$IMP_ST" \
    --ingest "$ING" --settle-ms 0 "$OB"
expect_stderr_contains "$nb new, 0 already imported, 0 rejected, 0 gaps ($nb files delivered, 0 held"
mapfile -t delivered < <(find "$ING/edge-7" -maxdepth 1 -type f -name '*.pcap' | sort)
expect_eq "delivered files" "$nb" "${#delivered[@]}"
view "$A" >"$T/g2.orig"
view "${delivered[@]}" >"$T/g2.got"
same_view "delivered pcaps, in seq order, hold exactly a.pcap's packets (time, bytes)" \
    "$T/g2.orig" "$T/g2.got"
expect_eq "packets delivered" 5000 "$(count "${delivered[@]}")"

open_outbox "$OB" "$T/g2/open"
mapfile -t files < <(list_files "$T/g2/open")
expect_eq "opened files" "$nb" "${#files[@]}"
M1=$T/g2/open/edge-7-0000000001.manifest.json
expect_eq "capture.source" files "$(json_get "$M1" capture source)"
expect_eq "capture.interface" null "$(json_get "$M1" capture interface)"
expect_eq "capture.filter" null "$(json_get "$M1" capture filter)"
expect_eq "capture.snaplen" 262144 "$(json_get "$M1" capture snaplen)"
expect_eq "capture.rotate_seconds" 2 "$(json_get "$M1" capture rotate_seconds)"
expect_eq "capture.dont_save" "[]" "$(json_get "$M1" capture dont_save)"
expect_eq "capture.link_type" 1 "$(json_get "$M1" capture link_type)"
expect_eq "no gaps recorded" null "$(json_get "$M1" capture gaps_before_this_bundle)"
expect_eq "packets_saved over all files" 5000 "$(stat_sum "$T/g2/open" packets_saved)"
expect_eq "packets_seen over all files" 5000 "$(stat_sum "$T/g2/open" packets_seen)"
expect_eq "recovered files" 0 "$(jq -s '[.[].files[] | select(.capture_stats.recovered)] | length' "$T/g2/open"/*.manifest.json)"
# per file: counts agree, rotated by time except the last, inside one window
bad=
for m in "$T/g2/open"/*.manifest.json; do
    bad+=$(jq -r --argjson g 2000000000 '.seq as $s | .files[] |
        .capture_stats as $c |
        (if $c.packets_saved != .packets then "seq \($s): saved \($c.packets_saved) != packets \(.packets); " else empty end),
        (if $c.packets_seen != $c.packets_saved then "seq \($s): seen != saved; " else empty end),
        (if (.first_ts_ns / $g | floor) != (.last_ts_ns / $g | floor) then "seq \($s): packets from two windows; " else empty end),
        (if ($c | has("wall_minus_monotonic_ns") and has("clock_jump_ns") and has("not_saved_disk_full") and has("not_saved_paused"))
         then empty else "seq \($s): counters missing; " end)' "$m")
done
expect_eq "per-file counters and windows" "" "$bad"
expect_eq "rotated_by of the files" "time time time time end of input" \
    "$(jq -rs '[.[].files[].capture_stats.rotated_by] | join(" ")' "$T/g2/open"/*.manifest.json)"
# The sealer takes spool files in name order, and Arkime and people sort by
# name too: the names must sort in capture order.
expect_eq "pcap names sort in capture (seq) order" "$(printf '%s\n' "${files[@]##*/}")" \
    "$(printf '%s\n' "${files[@]##*/}" | sort)"
# A file's window is one clock: packet time for -r (window_end - window_start
# is at most -G, not the years between the capture and now).
bad=$(jq -rs '.[] | .seq as $s | .files[] | .capture_stats |
    select(.window_end_ns < .window_start_ns or .window_end_ns - .window_start_ns > 2000000000)
    | "seq \($s): \(.window_start) .. \(.window_end); "' "$T/g2/open"/*.manifest.json)
expect_eq "capture windows are at most -G long and not reversed" "" "$bad"
# status file
expect_true "status.json is JSON" -- json_valid "$ST/status.json"
expect_eq "status packets_seen" 5000 "$(json_get "$ST/status.json" packets_seen)"
expect_eq "status packets_saved" 5000 "$(json_get "$ST/status.json" packets_saved)"
expect_eq "status last_seq" "$nb" "$(json_get "$ST/status.json" last_seq)"
expect_eq "status source" files "$(json_get "$ST/status.json" source)"

section "a second run continues the sequence"
cap 0 --no-drop -q -r "$SMALL"
expect_eq "one more bundle" $((nb + 1)) "$(bundles_in "$OB" | wc -l)"
expect_true "its seq is the next one" -- test -n "$(bundles_in "$OB" | grep "^edge-7-$(printf '%010d' $((nb + 1)))-")"
expect_dir_empty "$SP"

# ---------------------------------------------------------------- -C 1
section "-C 1: files of about 1 MB"
use_dirs c1
cap 0 --no-drop -q -C 1 -r "$A" || die "capture -C 1 failed"
expect_dir_empty "$SP"
open_outbox "$OB" "$T/c1/open"
mapfile -t files < <(list_files "$T/c1/open")
view "${files[@]}" >"$T/c1.got"
same_view "size-rotated pcaps hold exactly a.pcap's packets" "$T/g2.orig" "$T/c1.got"
total=$(stat -c %s "$A")
# a.pcap is 4.6 MB: 4 full files and a remainder
if ((${#files[@]} >= 4 && ${#files[@]} <= 6)); then
    pass "${#files[@]} files for $total bytes with -C 1"
else
    fail "${#files[@]} files for $total bytes with -C 1 (expected about $((total / 1000000 + 1)))"
fi
bad=
last=$((${#files[@]} - 1))
# rotation happens once a file reaches 1,000,000 bytes: at most one packet
# beyond (the mix has 9000-byte jumbo frames: 9016 bytes with the record header)
for i in "${!files[@]}"; do
    sz=$(stat -c %s "${files[$i]}")
    if ((i < last)); then
        ((sz >= 1000000 && sz <= 1000000 + 9016)) || bad+="${files[$i]##*/}=$sz "
    else
        ((sz <= 1000000 + 9016)) || bad+="${files[$i]##*/}=$sz(last) "
    fi
done
expect_eq "file sizes (1,000,000 bytes plus at most one packet)" "" "$bad"
expect_eq "rotated_by" "size" \
    "$(jq -rs '[.[].files[].capture_stats.rotated_by] | unique | map(select(. != "end of input")) | join(" ")' "$T/c1/open"/*.manifest.json)"
expect_eq "capture.rotate_bytes" 1000000 "$(json_get "$T/c1/open/edge-7-0000000001.manifest.json" capture rotate_bytes)"

# ---------------------------------------------------------------- several -r
section "several -r files"
use_dirs multi
cap 0 --no-drop -q -G 2 -r "$A" -r "$B" || die "capture -r A -r B failed"
expect_dir_empty "$SP"
open_outbox "$OB" "$T/multi/open"
mapfile -t files < <(list_files "$T/multi/open")
# a: 5 windows; b (1700000100.0 .. 1700000102.998): 2 windows
expect_eq "files for both inputs" $(($(expected_files 1700000000 1700000009 2) + $(expected_files 1700000100 1700000102 2))) "${#files[@]}"
view "$A" "$B" >"$T/multi.orig"
view "${files[@]}" >"$T/multi.got"
same_view "pcaps hold a.pcap's then b.pcap's packets" "$T/multi.orig" "$T/multi.got"
expect_eq "packets_saved" 6500 "$(stat_sum "$T/multi/open" packets_saved)"

SLL=$PF_SHARED_PCAPS/pcpp__sll.pcap
if [[ -r "$SLL" ]] && [[ "$(tcpdump -n -r "$SLL" 2>&1 >/dev/null | grep -c 'LINUX_SLL')" -gt 0 ]]; then
    section "several -r files of different link types"
    use_dirs multilink
    cap 0 --no-drop -q -r "$SMALL" -r "$SLL" -r "$PF_IN/c.pcap"
    expect_dir_empty "$SP"
    open_outbox "$OB" "$T/multilink/open"
    expect_eq "one bundle per run of one link type" 3 "$(bundles_in "$OB" | wc -l)"
    expect_eq "link types of the files" "1 113 1" \
        "$(jq -rs '[.[].files[].link_type] | map(tostring) | join(" ")' "$T/multilink/open"/*.manifest.json)"
    # The manifest's capture settings describe that bundle's capture.
    expect_eq "capture.link_type of each bundle" "1 113 1" \
        "$(jq -rs '[.[].capture.link_type] | map(tostring) | join(" ")' "$T/multilink/open"/*.manifest.json)"
    expect_eq "packets" "$(count "$SMALL" "$SLL" "$PF_IN/c.pcap")" "$(stat_sum "$T/multilink/open" packets_saved)"
else
    echo "note: $SLL not available; the mixed link type check is skipped"
fi

# ---------------------------------------------------------------- filter
section "a BPF filter as trailing words keeps only matching packets"
use_dirs filter
cap 0 --no-drop -q -r "$A" udp or arp || die "capture with a filter failed"
open_outbox "$OB" "$T/filter/open"
mapfile -t files < <(list_files "$T/filter/open")
want=$(count_filtered 'udp or arp' "$A")
expect_true "the filter matches some but not all packets ($want)" -- test "$want" -gt 0 -a "$want" -lt 5000
expect_eq "packets kept" "$want" "$(count "${files[@]}")"
view_filtered 'udp or arp' "$A" >"$T/filter.orig"
view "${files[@]}" >"$T/filter.got"
same_view "kept packets are exactly tcpdump's matches" "$T/filter.orig" "$T/filter.got"
expect_eq "capture.filter" "udp or arp" "$(json_get "$T/filter/open/edge-7-0000000001.manifest.json" capture filter)"

use_dirs filter-f
cap 0 --no-drop -q -r "$A" -f tcp
open_outbox "$OB" "$T/filter-f/open"
mapfile -t files < <(list_files "$T/filter-f/open")
expect_eq "-f tcp: packets kept" "$(count_filtered tcp "$A")" "$(count "${files[@]}")"

# ---------------------------------------------------------------- dont-save
section "--dont-save 'udp port 53:1' keeps the first packet of each DNS flow"
use_dirs dont
cap 0 --no-drop -q -r "$A" --dont-save 'udp port 53:1' || die "capture --dont-save failed"
expect_dir_empty "$SP"
open_outbox "$OB" "$T/dont/open"
mapfile -t files < <(list_files "$T/dont/open")
dns=$(count_filtered 'udp port 53' "$A")
# flows: both directions of a 5-tuple are one flow
flows=$(tcpdump -n -r "$A" 'udp port 53' 2>/dev/null |
    awk '{ s = $3; d = $5; sub(/:$/, "", d); print (s < d ? s " " d : d " " s) }' | sort -u | wc -l)
expect_true "a.pcap has DNS flows with more than one packet ($dns packets, $flows flows)" -- \
    test "$flows" -gt 0 -a "$dns" -gt "$flows"
expect_eq "DNS packets kept (one per flow)" "$flows" "$(count_filtered 'udp port 53' "${files[@]}")"
expect_eq "other packets all kept" "$(count_filtered 'not (udp port 53)' "$A")" \
    "$(count_filtered 'not (udp port 53)' "${files[@]}")"
view_filtered 'not (udp port 53)' "$A" >"$T/dont.orig"
view_filtered 'not (udp port 53)' "${files[@]}" >"$T/dont.got"
same_view "non-DNS packets unchanged" "$T/dont.orig" "$T/dont.got"
expect_eq "not_saved_dont_save = DNS packets - flows" $((dns - flows)) "$(stat_sum "$T/dont/open" not_saved_dont_save)"
expect_eq "packets_seen" 5000 "$(stat_sum "$T/dont/open" packets_seen)"
expect_eq "packets_saved" $((5000 - dns + flows)) "$(stat_sum "$T/dont/open" packets_saved)"
expect_eq "capture.dont_save" '[{"bpf":"udp port 53","keep":1}]' \
    "$(json_get "$T/dont/open/edge-7-0000000001.manifest.json" capture dont_save)"
# every kept DNS packet is its flow's first
tcpdump -n -tt -r "$A" 'udp port 53' 2>/dev/null |
    awk '{ s = $3; d = $5; sub(/:$/, "", d); k = (s < d ? s " " d : d " " s); if (!(k in seen)) { seen[k] = 1; print $1 } }' \
        >"$T/dont.first"
for f in "${files[@]}"; do tcpdump --time-stamp-precision=micro -n -tt -r "$f" 'udp port 53' 2>/dev/null; done |
    awk '{ print $1 }' >"$T/dont.kept"
expect_same_file "the kept DNS packets are the first of each flow" "$T/dont.first" "$T/dont.kept"

# ---------------------------------------------------------------- environment
section "environment: PCAP_FILE_SIZE (seconds), PCAP_BPF_FILTER, PCAP_SENSOR_NAME"
use_dirs env
PCAP_FILE_SIZE=5 PCAP_BPF_FILTER=tcp PCAP_SENSOR_NAME=edge-7 PCAP_FILE_ROTATE=100 cap 0 --no-drop -r "$A"
expect_stderr_contains "PCAP_FILE_ROTATE ignored"
open_outbox "$OB" "$T/env/open"
mapfile -t files < <(list_files "$T/env/open")
expect_eq "PCAP_FILE_SIZE=5 acts as -G 5: files" "$(expected_files 1700000000 1700000009 5)" "${#files[@]}"
expect_eq "capture.rotate_seconds" 5 "$(json_get "$T/env/open/edge-7-0000000001.manifest.json" capture rotate_seconds)"
expect_eq "PCAP_BPF_FILTER=tcp: packets" "$(count_filtered tcp "$A")" "$(count "${files[@]}")"
expect_eq "capture.filter" tcp "$(json_get "$T/env/open/edge-7-0000000001.manifest.json" capture filter)"

use_dirs env2
PCAP_FILE_SIZE=5 PCAP_BPF_FILTER=tcp cap 0 --no-drop -q -G 10 -r "$A" udp
open_outbox "$OB" "$T/env2/open"
mapfile -t files < <(list_files "$T/env2/open")
expect_eq "-G 10 overrides PCAP_FILE_SIZE" 1 "${#files[@]}"
expect_eq "a trailing filter overrides PCAP_BPF_FILTER" "$(count_filtered udp "$A")" "$(count "${files[@]}")"

# ---------------------------------------------------------------- config file
section "config file keys, overridden by the command line"
use_dirs conf
CONF=$T/sensor.conf
cat >"$CONF" <<EOF
# pcapferry capture settings
key = $SENSOR_KEY
to = "$CENTRAL_PUB"
spool = $SP
outbox = $OB
state = $ST
no-drop = yes
rotate-seconds = 2
filter = udp
level = 1
dont-save = udp port 53:1
EOF
expect_exit 0 -- "$PCAPFERRY" capture -c "$CONF" -q -r "$A"
open_outbox "$OB" "$T/conf/open"
mapfile -t files < <(list_files "$T/conf/open")
M=$T/conf/open/edge-7-0000000001.manifest.json
expect_eq "rotate-seconds = 2: files" "$(expected_files 1700000000 1700000009 2)" "${#files[@]}"
expect_eq "filter = udp (and dont-save): packets" \
    "$(($(count_filtered udp "$A") - $(stat_sum "$T/conf/open" not_saved_dont_save)))" "$(count "${files[@]}")"
expect_eq "capture.filter from the file" udp "$(json_get "$M" capture filter)"
expect_eq "capture.dont_save from the file" '[{"bpf":"udp port 53","keep":1}]' "$(json_get "$M" capture dont_save)"
expect_dir_empty "$SP"

use_dirs conf2
expect_exit 0 -- "$PCAPFERRY" capture -c "$CONF" -q --spool "$SP" --outbox "$OB" --state "$ST" \
    -G 5 -r "$A" tcp
open_outbox "$OB" "$T/conf2/open"
mapfile -t files < <(list_files "$T/conf2/open")
expect_eq "-G 5 overrides rotate-seconds = 2" "$(expected_files 1700000000 1700000009 5)" "${#files[@]}"
expect_eq "trailing 'tcp' overrides filter = udp" "$(count_filtered tcp "$A")" "$(count "${files[@]}")"
expect_eq "--outbox overrides the file's outbox: nothing new there" \
    "$(bundles_in "$T/conf/outbox" | wc -l)" "$(expected_files 1700000000 1700000009 2)"
PCAP_FILE_SIZE=5 expect_exit 0 -- "$PCAPFERRY" capture -c "$CONF" -q --spool "$SP" \
    --outbox "$T/conf3/outbox" --state "$ST" -r "$A"
expect_eq "PCAP_FILE_SIZE overrides rotate-seconds in the file" \
    "$(expected_files 1700000000 1700000009 5)" "$(bundles_in "$T/conf3/outbox" | wc -l)"

# ---------------------------------------------------------------- recovery
section "crash recovery: an .active-* file is cut back, sealed, flagged"
use_dirs rec
mkdir -p "$SP"
C=$PF_IN/c.pcap
csize=$(stat -c %s "$C")
ACTIVE=.active-edge-7-20240101T000000Z-0000.pcap
RECNAME=edge-7-20240101T000000Z-0000.pcap
head -c $((csize - 300)) "$C" >"$SP/$ACTIVE"
complete=$(tcpdump -n -r "$SP/$ACTIVE" 2>/dev/null | wc -l)
expect_true "the cut file ends in the middle of a record" -- \
    bash -c "tcpdump -n -r '$SP/$ACTIVE' 2>&1 >/dev/null | grep -q truncated"
# a header-only file and a non-pcap: nothing to seal
head -c 24 "$C" >"$SP/.active-edge-7-20240101T000001Z-0000.pcap"
echo "not a capture" >"$SP/.active-edge-7-20240101T000002Z-0000.pcap"
cap 0 --no-drop -r "$SMALL" || die "capture after a crash failed"
expect_stderr_contains "recovered file=$RECNAME packets=$complete"
expect_stderr_contains "not recoverable"
expect_dir_empty "$SP"
expect_eq "two bundles: the recovered file and the new capture" 2 "$(bundles_in "$OB" | wc -l)"
open_outbox "$OB" "$T/rec/open"
MR=$(grep -l "\"$RECNAME\"" "$T/rec/open"/*.manifest.json | head -n 1)
if [[ -n "$MR" ]]; then
    pass "the recovered file is in $(basename "$MR")"
    manifest_load "$MR" "$RECNAME"
    expect_eq "recovered entry count" 1 "${MF[_count]}"
    expect_eq "recovered packets" "$complete" "${MF[packets]}"
    expect_eq "read_status" complete "${MF[read_status]}"
    expect_eq "capture_stats.recovered" true "$(jq -r --arg n "$RECNAME" '.files[] | select(.name == $n) | .capture_stats.recovered' "$MR")"
    expect_eq "capture_stats.packets_saved" "$complete" "$(jq -r --arg n "$RECNAME" '.files[] | select(.name == $n) | .capture_stats.packets_saved' "$MR")"
    R=$(grep "/$RECNAME\$" "$T/rec/open.list")
    expect_true "tcpdump reads the recovered file without error" -- tcpdump -n -r "$R"
    expect_false "no truncation reported" -- bash -c "tcpdump -n -r '$R' 2>&1 >/dev/null | grep -qi truncated"
    expect_eq "tcpdump's packet count" "$complete" "$(count "$R")"
    head -c "$(stat -c %s "$R")" "$C" >"$T/rec.prefix"
    expect_same_file "the recovered file is the original's complete records" "$T/rec.prefix" "$R"
    expect_eq "it is whole records: the cut is inside one" 1 \
        "$(($(stat -c %s "$R") < csize - 300 && csize - 300 - $(stat -c %s "$R") < 1530))"
else
    fail "no manifest lists $RECNAME"
fi
MN=$(grep -L "\"$RECNAME\"" "$T/rec/open"/*.manifest.json | head -n 1)
expect_eq "the new capture's file is not flagged" false \
    "$(jq -r '.files[0].capture_stats.recovered' "${MN:-/dev/null}" 2>/dev/null)"

if [[ "$(id -u)" == 0 ]] && getent passwd nobody >/dev/null; then
    pf_lsan_drop_setup
    section "crash recovery when the daemon drops to nobody (-Z)"
    use_dirs recz
    mkdir -p "$SP"
    head -c $((csize - 300)) "$C" >"$SP/$ACTIVE"
    capz 0 -r "$SMALL"
    expect_stderr_contains "dropped privileges user=nobody"
    expect_stderr_contains "recovered file=$RECNAME packets=$complete"
    expect_dir_empty "$SP"
    expect_eq "two bundles: the recovered file and the new capture" 2 "$(bundles_in "$OB" | wc -l)"
    open_outbox "$OB" "$T/recz/open"
    expect_eq "the recovered file is sealed, flagged recovered" true \
        "$(jq -r --arg n "$RECNAME" '.files[] | select(.name == $n) | .capture_stats.recovered' "$T/recz/open"/*.manifest.json)"

    section "-Z nobody with several -r files only root can read"
    use_dirs zmulti
    capz 0 -q -r "$SMALL" -r "$PF_IN/c.pcap"
    expect_dir_empty "$SP"
    open_outbox "$OB" "$T/zmulti/open"
    mapfile -t files < <(list_files "$T/zmulti/open")
    expect_eq "packets of both files" $(($(count "$SMALL") + $(count "$PF_IN/c.pcap"))) "$(count "${files[@]}")"

    if ! pf_lsan_after_drop; then
        # Everything but the drop itself, which scripts/valgrind checks.
        section "the two -Z runs again with --no-drop, leak-checked (LeakSanitizer cannot follow -Z here)"
        use_dirs recz-root
        mkdir -p "$SP"
        head -c $((csize - 300)) "$C" >"$SP/$ACTIVE"
        cap 0 --no-drop -r "$SMALL"
        expect_stderr_contains "recovered file=$RECNAME packets=$complete"
        expect_eq "two bundles: the recovered file and the new capture" 2 "$(bundles_in "$OB" | wc -l)"
        use_dirs zmulti-root
        cap 0 -q --no-drop -r "$SMALL" -r "$PF_IN/c.pcap"
        open_outbox "$OB" "$T/zmulti-root/open"
        mapfile -t files < <(list_files "$T/zmulti-root/open")
        expect_eq "packets of both files" $(($(count "$SMALL") + $(count "$PF_IN/c.pcap"))) "$(count "${files[@]}")"
    fi
else
    echo "note: not root (or no user nobody); the -Z checks need root"
fi

# ---------------------------------------------------------------- quota
section "--outbox-max with --when-full drop-oldest"
use_dirs dropold
MAXB=$((1024 * 1024))
mkdir -p "$OB"
# sample the outbox while the capture runs
(
    peak=0
    while :; do
        s=$(find "$OB" -maxdepth 1 -type f -printf '%s\n' 2>/dev/null | awk '{ t += $1 } END { print t + 0 }')
        ((s > peak)) && peak=$s && echo "$peak" >"$T/dropold.peak"
        sleep 0.01
    done
) &
BG_PID=$!
cap 0 --no-drop -G 1 -r "$A" --outbox-max 1M --when-full drop-oldest
kill "$BG_PID" 2>/dev/null
wait "$BG_PID" 2>/dev/null
BG_PID=
cp "$PF_ERR" "$T/dropold.log"
expect_stderr_contains "deleted oldest bundle="
expect_stderr_contains "--when-full drop-oldest"
expect_dir_empty "$SP"
mapfile -t deleted < <(sed -n 's/.*deleted oldest bundle=\([^ ]*\).*/\1/p' "$T/dropold.log")
mapfile -t kept < <(bundles_in "$OB")
made=$(grep -c 'sealed bundle=' "$T/dropold.log")
expect_eq "bundles made (one per second of packet time)" "$(expected_files 1700000000 1700000009 1)" "$made"
expect_eq "kept + deleted = made" "$made" $((${#kept[@]} + ${#deleted[@]}))
expect_true "some bundles were deleted (${#deleted[@]})" -- test "${#deleted[@]}" -gt 0
used=$(find "$OB" -maxdepth 1 -type f -printf '%s\n' | awk '{ t += $1 } END { print t + 0 }')
expect_true "outbox ($used bytes) is within --outbox-max" -- test "$used" -le "$MAXB"
peak=$(cat "$T/dropold.peak" 2>/dev/null || echo 0)
expect_true "outbox never seen above --outbox-max (peak $peak)" -- test "$peak" -le "$MAXB"
# the oldest went: what is kept are the newest seqs
seqs_kept=$(printf '%s\n' "${kept[@]}" | awk -F- '{ print $3 + 0 }' | tr '\n' ' ')
expect_eq "the newest bundles are kept" "$(seq $((made - ${#kept[@]} + 1)) "$made" | tr '\n' ' ')" "$seqs_kept"
bad=
for d in "${deleted[@]}"; do
    [[ -e "$OB/$d" ]] && bad+="$d "
done
expect_eq "deleted bundles are gone" "" "$bad"
open_outbox "$OB" "$T/dropold/open"
first_kept=$(printf '%s\n' "${kept[0]}" | awk -F- '{ print $3 + 0 }')
MK=$T/dropold/open/edge-7-$(printf '%010d' "$first_kept").manifest.json
gaps=$(json_get "$MK" capture gaps_before_this_bundle)
expect_true "the first kept bundle's manifest lists deleted bundles" -- test "$gaps" != null
bad=$(jq -rs --argjson d "$(printf '%s\n' "${deleted[@]}" | jq -R . | jq -s .)" '
    [.[].capture.gaps_before_this_bundle // [] | .[]] |
    map(select((.deleted as $n | $d | index($n)) == null or .reason != "outbox full"
               or (.deleted | split("-")[2] | tonumber) != .seq)) | map(.deleted) | join(" ")' \
    "$T/dropold/open"/*.manifest.json)
expect_eq "gap entries name deleted bundles, their seq and 'outbox full'" "" "$bad"
# Central must learn why every missing seq is missing: the kept bundles'
# manifests account for every deleted bundle, not only the last ones (the
# others' gap lists were in bundles that were deleted in turn).
listed=$(jq -rs '[.[].capture.gaps_before_this_bundle // [] | .[].seq] | sort | map(tostring) | join(" ")' \
    "$T/dropold/open"/*.manifest.json)
expect_eq "deleted seqs listed in the kept manifests" \
    "$(printf '%s\n' "${deleted[@]}" | awk -F- '{ print $3 + 0 }' | sort -n | tr '\n' ' ' | sed 's/ $//')" "$listed"

section "--outbox-max with --when-full stop: pause, count, delete nothing"
use_dirs stop
STOP=(--no-drop -G 1 --outbox-max 1M --when-full stop)
cap 0 "${STOP[@]}" -r "$A"
expect_stderr_contains "capture paused"
expect_stderr_contains "--when-full stop"
expect_stderr_lacks "deleted"
expect_stderr_contains "left in the spool"
first_bundles=$(bundles_in "$OB")
used=$(find "$OB" -maxdepth 1 -type f -printf '%s\n' | awk '{ t += $1 } END { print t + 0 }')
expect_true "outbox ($used bytes) within --outbox-max" -- test "$used" -le "$MAXB"
expect_true "capture files wait in the spool" -- test -n "$(find "$SP" -name '*.pcap')"
# Now the outbox is full from the start: the sealer pauses capture at once,
# so packets are counted but not written.
make_pcap big.pcap --packets 100000 --seed 15 --rate 10000 --mix tiny --start 1700001000
cap 0 "${STOP[@]}" -r "$PF_IN/big.pcap"
expect_stderr_contains "capture paused"
expect_stderr_lacks "deleted"
expect_listing "nothing deleted, nothing added while full" "$OB" "$first_bundles"
# room again (no --outbox-max): everything left is sealed, with its counters
cap 0 --no-drop -q -r "$SMALL"
expect_dir_empty "$SP"
expect_true "the first bundles are still there" -- bash -c "cd '$OB' && ls $(echo "$first_bundles" | tr '\n' ' ') >/dev/null"
open_outbox "$OB" "$T/stop/open"
paused=$(stat_sum "$T/stop/open" not_saved_paused)
seen=$(stat_sum "$T/stop/open" packets_seen)
saved=$(stat_sum "$T/stop/open" packets_saved)
expect_true "packets counted as not_saved_paused ($paused)" -- test "$paused" -gt 0
expect_eq "seen = saved + not_saved_paused" "$seen" $((saved + paused))
expect_eq "every packet read was seen" $((5000 + 100000 + 50)) "$seen"
mapfile -t files < <(list_files "$T/stop/open")
expect_eq "the pcaps hold exactly the saved packets" "$saved" "$(count "${files[@]}")"

summary
