#!/usr/bin/env bash
# pcapferry capture on a live interface: a veth pair between two private
# network namespaces (nothing else on the machine is touched), tcpreplay on
# one end, the daemon on the other, dropped to nobody.
#
#   - replayed packets (a pcapgen capture, then every Ethernet classic pcap
#     of PF_SHARED_PCAPS that libpcap reads) arrive byte-identical, in order,
#     in bundles that verify and import; the manifests carry drop counters;
#   - the daemon runs as uid 65534 with no capabilities and no_new_privs;
#   - SIGHUP rotates now; a quiet link rotates on time (--seal-empty seals
#     empty windows at the -G boundaries; without it nothing is sealed);
#   - SIGTERM seals the last file and exits 0 within 5 s, spool empty;
#   - status.json is rewritten every few seconds;
#   - kill -9 mid-replay, then a restart: the .active-* file is recovered,
#     sealed with recovered=true, and no seq is reused.
# shellcheck source-path=SCRIPTDIR
# shellcheck disable=SC2317 # helpers run through wait_for and traps
# shellcheck source=lib.sh
. "${PF_TESTLIB:-$(dirname "${BASH_SOURCE[0]}")/lib.sh}"

require_binaries
require_cmd ip tcpreplay tcpdump jq awk od
unset PCAP_INTERFACE PCAP_CAPTURE_SIZE PCAP_FILE_SIZE PCAP_BPF_FILTER PCAP_SENSOR_NAME \
    PCAP_FILE_ROTATE
[[ "$(id -u)" == 0 ]] || skip "live capture needs root (network namespaces, a veth pair, -Z)"
getent passwd nobody >/dev/null || skip "there is no user 'nobody' to drop to"

T=$PF_TMP
SUFFIX=$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
NSA=pfcap-a-$SUFFIX # the sensor's side
NSB=pfcap-b-$SUFFIX # the replaying side
VA=pfca$SUFFIX
VB=pfcb$SUFFIX
PIDS=()

# shellcheck disable=SC2317 # run from the EXIT trap
live_cleanup() {
    local p
    for p in "${PIDS[@]}"; do
        kill -9 "$p" 2>/dev/null
    done
    # Deleting the namespaces deletes the veth pair with them.
    ip netns del "$NSA" 2>/dev/null
    ip netns del "$NSB" 2>/dev/null
    return 0
}
# shellcheck disable=SC2317 # run from the EXIT trap
on_exit() {
    local rc=$?
    live_cleanup
    (exit "$rc")
    pf_cleanup
}
trap on_exit EXIT

if ! err=$(ip netns add "$NSA" 2>&1); then
    skip "cannot create a network namespace ('ip netns add' said: $err)"
fi
ip netns add "$NSB" 2>/dev/null || skip "cannot create a second network namespace"
# No IPv6 on either end: the kernel sends no ND/MLD when the link comes up.
# The capture filter below also drops anything the two ends send themselves.
{
    ip link add "$VA" type veth peer name "$VB" &&
        ip link set "$VA" netns "$NSA" &&
        ip link set "$VB" netns "$NSB" &&
        ip netns exec "$NSA" sysctl -qw "net.ipv6.conf.$VA.disable_ipv6=1" &&
        ip netns exec "$NSB" sysctl -qw "net.ipv6.conf.$VB.disable_ipv6=1" &&
        ip -n "$NSA" link set "$VA" mtu 9000 up &&
        ip -n "$NSB" link set "$VB" mtu 9000 up
} >"$T/setup.err" 2>&1 || {
    cat "$T/setup.err"
    skip "cannot set up a veth pair between private namespaces"
}
MAC_A=$(ip -n "$NSA" -o link show "$VA" | grep -o 'link/ether [0-9a-f:]*' | cut -d ' ' -f 2)
MAC_B=$(ip -n "$NSB" -o link show "$VB" | grep -o 'link/ether [0-9a-f:]*' | cut -d ' ' -f 2)
[[ -n "$MAC_A" && -n "$MAC_B" ]] || die "setup: no MAC address on the veth pair"
FILTER="not ether src $MAC_A and not ether src $MAC_B"
echo "namespaces $NSA/$NSB, veth $VA/$VB, filter: $FILTER"

setup_keys edge-live central1
pf_lsan_drop_setup
EMPTY=$T/empty.conf
: >"$EMPTY"

# ---------------------------------------------------------------- helpers

# wait_for SECONDS cmd...: polls every 0.1 s; false on time-out.
wait_for() {
    local limit=$1 i
    shift
    # PF_TIME_SCALE (lib.sh) stretches the limit for slow runs (valgrind)
    for ((i = 0; i < $(pf_scaled "$limit") * 10; i++)); do
        "$@" && return 0
        sleep 0.1
    done
    "$@"
}

# alive PID: running (a zombie is not).
alive() {
    local st
    st=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 1
    [[ -n "$st" && "$st" != Z ]]
}

gone() {
    ! alive "$1"
}

# after_boundary: waits (< 2.2 s) until just after an even second, so the
# next -G 2 rotation is more than 1.5 s away.
after_boundary() {
    local ns frac
    ns=$(date +%s%N)
    frac=$(((ns / 1000000) % 2000))
    if ((frac > 200)); then
        sleep "$(awk -v ms=$((2000 - frac + 100)) 'BEGIN { printf "%.3f", ms / 1000 }')"
    fi
}

# daemon_start LOG SPOOL OUTBOX STATE args...: the daemon in namespace A on
# VA, as nobody (DAEMON_DROP), in the environment pf_lsan_drop_setup chose for
# runs that drop privileges; sets DPID.
DAEMON_DROP=(-Z nobody)
daemon_start() {
    local log=$1 sp=$2 ob=$3 st=$4
    local -a pre=()
    shift 4
    [[ "${DAEMON_DROP[0]}" == -Z ]] && pre=("${PF_Z_ENV[@]}")
    ip netns exec "$NSA" "${pre[@]}" "$PCAPFERRY" capture -c "$EMPTY" -i "$VA" "${DAEMON_DROP[@]}" \
        --key "$SENSOR_KEY" --to "$CENTRAL_PUB" --spool "$sp" --outbox "$ob" --state "$st" \
        "$@" "$FILTER" >"$log" 2>&1 </dev/null &
    DPID=$!
    PIDS+=("$DPID")
    if wait_for 15 grep -qs 'capturing source=' "$log"; then
        pass "daemon $DPID is capturing ($(basename "$log"))"
    else
        fail "daemon did not start within 15 s"
        pf_show "$(basename "$log")" "$log"
        return 1
    fi
}

# daemon_stop PID LOG: SIGTERM; must exit 0 within 5 s, without sanitizer
# reports.
daemon_stop() {
    local pid=$1 log=$2 rc
    kill -TERM "$pid" 2>/dev/null
    if wait_for 5 gone "$pid"; then
        pass "SIGTERM: daemon $pid exited within 5 s"
    else
        fail "SIGTERM: daemon $pid still running after 5 s"
        kill -9 "$pid" 2>/dev/null
    fi
    wait "$pid"
    rc=$?
    expect_eq "daemon $pid exit status" 0 "$rc" || pf_show "$(basename "$log")" "$log"
    if grep -Eq 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$log"; then
        fail "sanitizer report in $(basename "$log")"
        pf_show "$(basename "$log")" "$log"
    fi
}

# replay FILE: tcpreplay from namespace B; adds to SENT (successful packets)
# and FAILED, and appends FILE to REPLAYED.
SENT=0
FAILED=0
REPLAYED=()
replay() {
    local f=$1 out ok bad
    out=$(ip netns exec "$NSB" tcpreplay -i "$VB" --pps 2000 "$f" 2>&1)
    ok=$(printf '%s\n' "$out" | sed -n 's/^[[:space:]]*Successful packets:[[:space:]]*\([0-9]*\).*/\1/p')
    bad=$(printf '%s\n' "$out" | sed -n 's/^[[:space:]]*Failed packets:[[:space:]]*\([0-9]*\).*/\1/p')
    if [[ -z "$ok" ]]; then
        fail "tcpreplay of $(basename "$f") printed no packet counts"
        printf '%s\n' "$out" | sed -n '1,10s/^/  | /p'
        return 1
    fi
    SENT=$((SENT + ok))
    FAILED=$((FAILED + ${bad:-0}))
    REPLAYED+=("$f")
    echo "replayed $(basename "$f"): $ok sent, ${bad:-0} failed"
}

# bytes_view FILE...: each packet's bytes (tcpdump -xx), "--" between
# packets; no time stamps, so sent and captured compare.
bytes_view() {
    local f
    for f in "$@"; do
        tcpdump -n -t -xx -r "$f" 2>/dev/null | sed 's/^[^[:space:]].*/--/'
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

bundles_in() {
    find "$1" -maxdepth 1 -type f -name '*.pcapferry' -printf '%f\n' 2>/dev/null | sort
}

# sealed_packets LOG: packets in the bundles the daemon reports sealed.
sealed_packets() {
    sed -n 's/.*sealed bundle=.* packets=\([0-9]*\) .*/\1/p' "$1" | awk '{ t += $1 } END { print t + 0 }'
}

sealed_at_least() {
    (($(sealed_packets "$1") >= $2))
}

# more_lines_than N TEXT FILE
more_lines_than() {
    (($(grep -c -- "$2" "$3") > $1))
}

only_active_in() {
    [[ -z "$(find "$1" -type f ! -name '.active-*')" ]]
}

active_bigger_than() {
    [[ -n "$(find "$1" -name '.active-*' -size "+$2")" ]]
}

# open_outbox OUTBOX DIR: every bundle (seq order) into DIR; DIR.list holds
# the pcaps in delivery order.
open_outbox() {
    local ob=$1 dir=$2 b bad=
    mkdir -p "$dir"
    : >"$dir.raw"
    for b in $(bundles_in "$ob"); do
        "$PCAPFERRY" bundle open --key "$CENTRAL_KEY" --keyring "$KEYRING" --out "$dir" \
            "$ob/$b" >>"$dir.raw" 2>"$dir.err" || bad+=" $b"
    done
    cut -f 1 "$dir.raw" >"$dir.list"
    expect_eq "bundles of $(basename "$ob") that do not open" "" "$bad"
}

# classic_ether_pcap FILE: a classic pcap, link type Ethernet, with packets,
# that libpcap reads to the end.
classic_ether_pcap() {
    local magic hdr
    magic=$(od -An -tx1 -N4 "$1" 2>/dev/null | tr -d ' ')
    case $magic in
    a1b2c3d4 | d4c3b2a1 | a1b23c4d | 4d3cb2a1) ;;
    *) return 1 ;;
    esac
    hdr=$(tcpdump -n -r "$1" 2>&1 >/dev/null) || return 1
    [[ "$hdr" == *"link-type EN10MB"* ]] || return 1
    [[ "$(tcpdump -n -c 1 -r "$1" 2>/dev/null | wc -l)" -gt 0 ]]
}

# ---------------------------------------------------------------- the daemon
section "daemon on $VA as nobody, -G 2"
SP=$T/d1/spool
OB=$T/d1/outbox
ST=$T/d1/state
LOG1=$T/d1.log
daemon_start "$LOG1" "$SP" "$OB" "$ST" -v -G 2 || die "the capture daemon did not start"
D1=$DPID
expect_true "log says privileges were dropped" -- grep -q 'dropped privileges user=nobody uid=65534' "$LOG1"
PROC=$(cat "/proc/$D1/status" 2>/dev/null)
expect_eq "Uid of the daemon" "65534 65534 65534 65534" \
    "$(printf '%s\n' "$PROC" | awk '/^Uid:/ { print $2, $3, $4, $5 }')"
expect_eq "Gid of the daemon" "65534 65534 65534 65534" \
    "$(printf '%s\n' "$PROC" | awk '/^Gid:/ { print $2, $3, $4, $5 }')"
expect_eq "CapEff" 0000000000000000 "$(printf '%s\n' "$PROC" | awk '/^CapEff:/ { print $2 }')"
expect_eq "CapPrm" 0000000000000000 "$(printf '%s\n' "$PROC" | awk '/^CapPrm:/ { print $2 }')"
expect_eq "NoNewPrivs" 1 "$(printf '%s\n' "$PROC" | awk '/^NoNewPrivs:/ { print $2 }')"
expect_eq "supplementary groups" 65534 "$(printf '%s\n' "$PROC" | awk '/^Groups:/ { print $2 }')"

# status.json: sample its time stamp every 0.5 s for the daemon's lifetime
while :; do
    jq -r '"\(.time) \(.packets_seen)"' "$ST/status.json" >>"$T/status.raw" 2>/dev/null
    sleep 0.5
done &
SAMPLER=$!
PIDS+=("$SAMPLER")
expect_true "status.json is written at start" -- wait_for 5 test -s "$ST/status.json"

section "replayed packets"
make_pcap gen.pcap --packets 3000 --seed 21 --rate 2000
replay "$PF_IN/gen.pcap"
SHARED=()
if [[ -d "$PF_SHARED_PCAPS" ]]; then
    while IFS= read -r f; do
        classic_ether_pcap "$f" && SHARED+=("$f")
    done < <(find "$PF_SHARED_PCAPS" -maxdepth 1 -type f | sort)
    echo "replaying ${#SHARED[@]} Ethernet classic pcaps from $PF_SHARED_PCAPS"
    expect_true "the shared set has Ethernet classic pcaps" -- test "${#SHARED[@]}" -gt 0
    for f in "${SHARED[@]}"; do
        replay "$f"
    done
else
    echo "note: $PF_SHARED_PCAPS does not exist; replaying the generated capture only"
fi

section "SIGHUP rotates now"
make_pcap burst.pcap --packets 40 --seed 22
hup_ok=0
for _ in 1 2 3; do
    after_boundary # so that -G cannot rotate first
    replay "$PF_IN/burst.pcap"
    sleep 0.3 # the ring hands packets over within its 100 ms time-out
    nsig=$(grep -c 'by=signal' "$LOG1")
    kill -HUP "$D1"
    if wait_for 3 more_lines_than "$nsig" 'by=signal' "$LOG1"; then
        hup_ok=1
        break
    fi
done
expect_eq "a file rotated by=signal after SIGHUP" 1 "$hup_ok"
HUPFILE=$(sed -n 's/.*rotated file=\([^ ]*\) .*by=signal.*/\1/p' "$LOG1" | tail -n 1)

section "everything sent is sealed while the daemon runs"
if wait_for 15 sealed_at_least "$LOG1" "$SENT"; then
    pass "sealed packets reached $SENT"
else
    fail "sealed packets: $(sealed_packets "$LOG1") of $SENT sent, after 15 s"
fi
expect_true "only the active file is left in the spool" -- \
    wait_for 5 only_active_in "$SP"

section "a quiet link: -G 2 rotates on time; empty windows sealed only with --seal-empty"
SP2=$T/d2/spool
OB2=$T/d2/outbox
ST2=$T/d2/state
LOG2=$T/d2.log
before_quiet=$(bundles_in "$OB")
daemon_start "$LOG2" "$SP2" "$OB2" "$ST2" -G 2 --seal-empty
D2=$DPID
# 5 s of silence: nothing may happen in D1's outbox; in D2's, note when
# each bundle appears (ms after the last even second)
appear=()
seen_b=0
end_ms=$(($(date +%s%3N) + 5000))
while (($(date +%s%3N) < end_ms)); do
    n=$(bundles_in "$OB2" | wc -l)
    if ((n > seen_b)); then
        appear+=($(($(date +%s%3N) % 2000)))
        seen_b=$n
    fi
    sleep 0.05
done
echo "--seal-empty bundles appeared at ${appear[*]} ms after a 2 s boundary"
expect_true "--seal-empty: bundles appeared during 5 quiet seconds (${#appear[@]})" -- \
    test "${#appear[@]}" -ge 2
late=
for a in "${appear[@]}"; do
    ((a <= 1500)) || late+="$a "
done
expect_eq "quiet windows are sealed on time (within 1.5 s of the boundary)" "" "$late"
expect_listing "without --seal-empty a quiet link makes no bundles" "$OB" "$before_quiet"
daemon_stop "$D2" "$LOG2"
open_outbox "$OB2" "$T/d2/open"
rot=$(jq -rs '[.[].files[].capture_stats.rotated_by] | join(" ")' "$T/d2/open"/*.manifest.json 2>/dev/null)
ntime=$(grep -o time <<<"$rot" | wc -l)
expect_true "--seal-empty: at least 2 windows rotated by time in 5 s (got: $rot)" -- test "$ntime" -ge 2
expect_eq "--seal-empty: the last file was rotated by stop" stop "${rot##* }"
expect_eq "--seal-empty: the windows are empty" 0 \
    "$(jq -s '[.[].files[].packets] | add' "$T/d2/open"/*.manifest.json 2>/dev/null)"
# the windows are the clock-aligned ones (even seconds for -G 2)
bad=$(jq -r '.files[].capture_stats | select(.rotated_by == "time") | .window_end' \
    "$T/d2/open"/*.manifest.json 2>/dev/null |
    awk '{ s = substr($0, 18, 2) + 0; f = substr($0, 20, 4) + 0;
           ms = (s % 2) * 1000 + (f - int(f)) * 1000;
           if (ms > 500) printf "%s ", $0 }')
expect_eq "time-rotated windows end at a 2 s boundary" "" "$bad"

section "SIGTERM seals the last file and exits"
# a last few packets, caught in the file that SIGTERM closes
after_boundary
replay "$PF_IN/burst.pcap"
sleep 0.3
daemon_stop "$D1" "$LOG1"
kill "$SAMPLER" 2>/dev/null
wait "$SAMPLER" 2>/dev/null
awk '!seen[$1]++' "$T/status.raw" >"$T/status.samples" 2>/dev/null
expect_dir_empty "$SP"
expect_true "the log has the final statistics" -- grep -q 'stats seen=' "$LOG1"
echo "sent $SENT packets ($FAILED failed) in ${#REPLAYED[@]} replays"

section "the bundles verify, import, and hold exactly the packets sent"
mapfile -t B1 < <(bundles_in "$OB")
expect_true "bundles were made (${#B1[@]})" -- test "${#B1[@]}" -gt 1
expect_exit 0 -- "$PCAPFERRY" bundle verify --keyring "$KEYRING" "${B1[@]/#/$OB/}"
expect_eq "every bundle verifies" "${#B1[@]}" "$(grep -c ': OK sensor=edge-live ' "$PF_OUT")"
ING=$T/ingest
mkdir -p "$ING"
expect_exit 0 -- "$PCAPFERRY" import --key "$CENTRAL_KEY" --keyring "$KEYRING" --state "$T/import" \
    --ingest "$ING" --settle-ms 0 "$OB"
expect_stderr_contains "${#B1[@]} new, 0 already imported, 0 rejected, 0 gaps"
mapfile -t delivered < <(find "$ING/edge-live" -maxdepth 1 -type f -name '*.pcap' | sort)
got=$(count "${delivered[@]}")
drops=0
open_outbox "$OB" "$T/d1/open"
drops=$(jq -s '[.[].files[].capture_stats.dropped_kernel // 0] | add' "$T/d1/open"/*.manifest.json)
expect_eq "failed sends" 0 "$FAILED"
expect_eq "kernel drops" 0 "$drops"
expect_eq "packets delivered = packets sent" "$SENT" "$got"
bytes_view "${REPLAYED[@]}" >"$T/sent.view"
bytes_view "${delivered[@]}" >"$T/got.view"
expect_same_file "delivered packets are the sent ones, byte for byte, in order" "$T/sent.view" "$T/got.view"
for f in "${delivered[@]}"; do
    if ! tcpdump -n -r "$f" >/dev/null 2>"$T/td.err"; then
        fail "tcpdump cannot read $(basename "$f"): $(tail -n 1 "$T/td.err")"
    fi
done
pass "tcpdump reads every delivered file"

section "the manifests"
M1=$T/d1/open/edge-live-0000000001.manifest.json
expect_eq "capture.source" live "$(json_get "$M1" capture source)"
expect_eq "capture.interface" "$VA" "$(json_get "$M1" capture interface)"
expect_eq "capture.filter" "$FILTER" "$(json_get "$M1" capture filter)"
expect_eq "capture.snaplen" 262144 "$(json_get "$M1" capture snaplen)"
expect_eq "capture.rotate_seconds" 2 "$(json_get "$M1" capture rotate_seconds)"
expect_eq "capture.promiscuous" true "$(json_get "$M1" capture promiscuous)"
missing=$(jq -rs '.[] | .seq as $s | .files[] | .capture_stats |
    [ "received", "dropped_kernel", "dropped_interface", "packets_seen", "packets_saved",
      "not_saved_dont_save", "not_saved_paused", "not_saved_disk_full", "rotated_by",
      "window_start", "window_end", "wall_minus_monotonic_ns", "clock_jump_ns", "recovered" ]
    - keys | select(length > 0) | "seq \($s): \(join(","))"' "$T/d1/open"/*.manifest.json)
expect_eq "every file has the drop counters and the other capture_stats" "" "$missing"
expect_eq "packets_saved = packets in the files" "$got" \
    "$(jq -s '[.[].files[].capture_stats.packets_saved] | add' "$T/d1/open"/*.manifest.json)"
expect_eq "packets_seen = packets_saved (no --dont-save)" "$got" \
    "$(jq -s '[.[].files[].capture_stats.packets_seen] | add' "$T/d1/open"/*.manifest.json)"
expect_eq "drop counters are non-negative numbers" "" \
    "$(jq -rs '.[] | .seq as $s | .files[] | .capture_stats |
        select([.received, .dropped_kernel, .dropped_interface] | any(type != "number" or . < 0))
        | "seq \($s) "' "$T/d1/open"/*.manifest.json)"
expect_eq "rotated_by values" "signal stop time" \
    "$(jq -rs '[.[].files[].capture_stats.rotated_by] | unique | join(" ")' "$T/d1/open"/*.manifest.json)"
if [[ -n "$HUPFILE" ]]; then
    expect_eq "the SIGHUP file in a manifest, rotated_by signal" signal \
        "$(jq -r --arg n "$HUPFILE" '.files[] | select(.name == $n) | .capture_stats.rotated_by' "$T/d1/open"/*.manifest.json)"
fi
bad=$(jq -rs '.[] | .seq as $s | .files[] | .capture_stats |
    select(.rotated_by == "time" and (.window_end_ns - .window_start_ns) > 2500000000)
    | "seq \($s) "' "$T/d1/open"/*.manifest.json)
expect_eq "time-rotated windows are at most -G (2 s) long" "" "$bad"

section "status.json was rewritten every few seconds"
nstat=$(wc -l <"$T/status.samples")
expect_true "status.json rewritten several times ($nstat distinct)" -- test "$nstat" -ge 3
maxgap=$(awk '{ split($1, a, /[T:Z]/); t = a[2] * 3600 + a[3] * 60 + a[4];
                if (NR > 1 && t - p > m) m = t - p; p = t } END { printf "%d", m * 1000 }' "$T/status.samples")
expect_true "at most 6.5 s between rewrites (default --status-interval 5; max ${maxgap} ms)" -- \
    test "$maxgap" -le 6500
expect_true "status packet counts grow" -- \
    test "$(awk 'NR == 1 { print $2 }' "$T/status.samples")" -lt "$(awk 'END { print $2 }' "$T/status.samples")"
expect_eq "final status packets_seen" "$SENT" "$(json_get "$ST/status.json" packets_seen)"
expect_eq "final status last_seq" "${#B1[@]}" "$(json_get "$ST/status.json" last_seq)"
expect_eq "final status dropped_kernel" 0 "$(json_get "$ST/status.json" dropped_kernel)"

# ---------------------------------------------------------------- kill -9
section "kill -9 mid-replay, then restart: recovered, sealed, no seq reused"
make_pcap long.pcap --packets 8000 --seed 23
LOG3=$T/d3.log
daemon_start "$LOG3" "$SP" "$OB" "$ST" -v || die "the daemon did not restart"
D3=$DPID
ip netns exec "$NSB" tcpreplay -i "$VB" --pps 2000 "$PF_IN/long.pcap" >"$T/long.replay" 2>&1 &
RP=$!
PIDS+=("$RP")
# kill once more than 2 MB (two 1 MiB buffer flushes) are in the file
if wait_for 15 active_bigger_than "$SP" 2000k; then
    pass "the active file grew past 2 MB"
else
    fail "the active file did not grow past 2 MB in 15 s"
fi
kill -9 "$D3"
wait "$D3" 2>/dev/null
kill "$RP" 2>/dev/null
wait "$RP" 2>/dev/null
mapfile -t active < <(find "$SP" -maxdepth 1 -name '.active-*' -printf '%f\n')
expect_eq "one .active file left by the crash" 1 "${#active[@]}"
ACTIVE=${active[0]:-none}
RECNAME=${ACTIVE#.active-}
cp "$SP/$ACTIVE" "$T/crashed.pcap" 2>/dev/null
complete=$(count "$T/crashed.pcap")
expect_true "the crashed file has complete records ($complete)" -- test "$complete" -gt 0
seq_before=$(bundles_in "$OB" | tail -n 1 | awk -F- '{ print $3 + 0 }')

LOG4=$T/d4.log
daemon_start "$LOG4" "$SP" "$OB" "$ST" -G 2 || die "the daemon did not start after the crash"
D4=$DPID
expect_true "log: recovered file=$RECNAME packets=$complete" -- \
    grep -q "recovered file=$RECNAME packets=$complete " "$LOG4"
expect_true "the recovered file is sealed" -- wait_for 15 grep -q 'sealed bundle=' "$LOG4"
daemon_stop "$D4" "$LOG4"
expect_dir_empty "$SP"
mapfile -t B2 < <(bundles_in "$OB")
expect_eq "one bundle more: the recovered file" $((${#B1[@]} + 1)) "${#B2[@]}"
# seqs from the bundle headers, in name order: strictly increasing
seqs=()
for b in "${B2[@]}"; do
    "$PCAPFERRY" bundle inspect --json "$OB/$b" >"$T/inspect.json" 2>/dev/null
    seqs+=("$(json_get "$T/inspect.json" seq)")
done
bad=
for ((i = 1; i < ${#seqs[@]}; i++)); do
    ((seqs[i] > seqs[i - 1])) || bad+="${seqs[i - 1]}->${seqs[i]} "
done
expect_eq "seqs strictly increase across the crash and restart" "" "$bad"
expect_true "the recovered bundle's seq (${seqs[-1]}) is after every earlier one ($seq_before)" -- \
    test "${seqs[-1]}" -gt "$seq_before"
expect_exit 0 -- "$PCAPFERRY" bundle verify --keyring "$KEYRING" "$OB/${B2[-1]}"
expect_exit 0 -- "$PCAPFERRY" import --key "$CENTRAL_KEY" --keyring "$KEYRING" --state "$T/import" \
    --ingest "$ING" --settle-ms 0 "$OB"
expect_stderr_contains "1 new, ${#B1[@]} already imported, 0 rejected"
open_outbox "$OB" "$T/d4/open"
MR=$(grep -l "\"$RECNAME\"" "$T/d4/open"/*.manifest.json | head -n 1)
if [[ -n "$MR" ]]; then
    manifest_load "$MR" "$RECNAME"
    expect_eq "recovered file in one manifest entry" 1 "${MF[_count]}"
    expect_eq "recovered file packets" "$complete" "${MF[packets]}"
    expect_eq "capture_stats.recovered" true \
        "$(jq -r --arg n "$RECNAME" '.files[] | select(.name == $n) | .capture_stats.recovered' "$MR")"
    R=$T/d4/open/$RECNAME
    expect_true "tcpdump reads the recovered file without error" -- tcpdump -n -r "$R"
    expect_eq "tcpdump count of the recovered file" "$complete" "$(count "$R")"
    bytes_view "$PF_IN/long.pcap" | awk -v n="$complete" '/^--$/ { k++ } k <= n' >"$T/long.prefix"
    bytes_view "$R" >"$T/rec.view"
    expect_same_file "the recovered packets are the first ones replayed" "$T/long.prefix" "$T/rec.view"
else
    fail "no manifest lists the recovered file $RECNAME"
fi

if ! pf_lsan_after_drop; then
    # Everything but the drop itself, which scripts/valgrind checks: live
    # packets, SIGHUP and -G rotations, sealing, the SIGTERM stop.
    section "the live daemon again with --no-drop, leak-checked (LeakSanitizer cannot follow -Z here)"
    DAEMON_DROP=(--no-drop)
    LOG5=$T/d5.log
    daemon_start "$LOG5" "$T/d5/spool" "$T/d5/outbox" "$T/d5/state" -v -G 2 ||
        die "the --no-drop daemon did not start"
    D5=$DPID
    SENT=0
    replay "$PF_IN/gen.pcap"
    sleep 0.3
    kill -HUP "$D5"
    expect_true "SIGHUP rotated" -- wait_for 3 grep -q 'by=signal' "$LOG5"
    expect_true "everything sent ($SENT) is sealed" -- wait_for 15 sealed_at_least "$LOG5" "$SENT"
    daemon_stop "$D5" "$LOG5"
    expect_true "log says root privileges were kept" -- grep -q 'keeping root privileges' "$LOG5"
fi

summary
