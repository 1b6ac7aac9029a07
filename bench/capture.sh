#!/usr/bin/env bash
# Capture: tcpreplay one pcap of the corpus (looped, preloaded) for a burst
# of PF_BENCH_DURATION seconds (default 10) into one end of a veth pair (MTU
# 9000: the corpus has jumbo frames) and capture on the other end, in two
# network namespaces made by this script and removed on exit. At each rate,
# two separate repetitions:
#   tcpdump    tcpdump -i VETH -B KIB -G 2 -w 'DIR/td-%Y%m%d-%H%M%S.pcap'
#              (drops privileges to its tcpdump user, as packaged)
#   pcapferry  pcapferry capture -i VETH -B KIB -G 2 -Z nobody ... : rotation
#              every 2 s, the sealer sealing each finished file into a bundle
#              while capture goes on, everything sealed at SIGINT
# Reported per run: packets sent (tcpreplay), saved (counted in what each
# wrote: capinfos over tcpdump's files; for pcapferry the packets the central
# host accounts for after `pcapferry import` of the outbox), dropped by the
# kernel and by the interface (tcpdump's exit report; pcapferry's
# STATE/status.json), lost elsewhere (sent - saved - dropped), CPU (user+sys,
# /usr/bin/time: for pcapferry this includes sealing), peak RSS, and the
# highest lossless rate of each.
# CPUs: tcpreplay is pinned to CPU 0 and the capture program (with its sealer)
# to the others (PF_BENCH_PIN=0: no pinning). veth delivers each packet to
# the packet socket in the sender's softirq, so CPU 0 also carries the
# kernel's receive path, as a NIC's interrupt core would; without pinning, a
# busy capture program takes CPU from the sender, which then cannot offer
# the asked rate, and a rate it never offered proves nothing. A run counts at
# a rate only if tcpreplay reached 95% of it ("sender short" otherwise).
# Both sides also run at nice -10 (PF_BENCH_NICE): on a shared machine, other
# jobs would otherwise take turns with the sender or the capture program and
# decide the result; a sensor's capture does not share its CPUs with a fuzzer.
#
#   bench/capture.sh [SIZE]   corpus SIZE to take the pcap from (default 1G:
#                             its first file, 128 MiB, ~148k packets)
# Environment: PF_BENCH_RATES ("50000 100000 150000 200000 max", pps; max =
# tcpreplay --topspeed), PF_BENCH_DURATION (10), PF_BENCH_BUFFER_KIB (65536),
# PF_BENCH_CAPTURE_LEVEL (zstd level; default: pcapferry's), PF_BENCH_SPOOL
# (pcapferry's spool directory; default on the same disk as tcpdump's files;
# CAPTURE.md recommends a tmpfs in production). Needs root.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$root/bench/lib.sh"

size=${1:-1G}
rates=${PF_BENCH_RATES:-50000 100000 150000 200000 max}
dur=${PF_BENCH_DURATION:-10}
bufkib=${PF_BENCH_BUFFER_KIB:-65536}
level=${PF_BENCH_CAPTURE_LEVEL:-}
pin=${PF_BENCH_PIN:-1}
nice=${PF_BENCH_NICE:--10}
ncpu=$(nproc)
send_pin=() cap_pin=()
if [[ $pin == 1 ]] && ((ncpu >= 2)); then
    cap_cpus=1
    ((ncpu > 2)) && cap_cpus=1-$((ncpu - 1))
    send_pin=(taskset -c 0 nice -n "$nice")
    cap_pin=(taskset -c "$cap_cpus" nice -n "$nice")
fi
((EUID == 0)) || {
    echo "bench: capture.sh needs root (network namespaces, veth)" >&2
    exit 2
}
bench_need tcpreplay tcpdump capinfos ip jq /usr/bin/time
bench_build
corpus=$(bench_corpus "$size")
bench_keys
slice=$(ls "$corpus"/*.pcap | head -1)
res=$BENCH_WORK/results/capture-$size
w=$BENCH_WORK/capture.$$
mkdir -p "$res"
rm -rf "$w"
mkdir -p "$w"
chmod 755 "$w"

tag=pfb$$
ns_s=${tag}S ns_r=${tag}R if_s=${tag}s if_r=${tag}r
pids=()
cleanup() {
    local p
    for p in ${pids[@]+"${pids[@]}"}; do
        pkill -TERM -P "$p" 2>/dev/null || true # the capture program, child of time
        kill -TERM "$p" 2>/dev/null || true
    done
    sleep 0.5
    ip netns del "$ns_s" 2>/dev/null || true
    ip netns del "$ns_r" 2>/dev/null || true
    rm -rf "$w"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
ip netns add "$ns_s"
ip netns add "$ns_r"
ip link add "$if_s" mtu 9000 netns "$ns_s" type veth peer name "$if_r" mtu 9000 netns "$ns_r"
for n in "$ns_s" "$ns_r"; do
    # no IPv6 autoconfiguration traffic: every packet on the wire is tcpreplay's
    ip netns exec "$n" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
done
ip -n "$ns_s" link set "$if_s" up
ip -n "$ns_r" link set "$if_r" up

# The capture program runs under /usr/bin/time (which ignores SIGINT), so the
# signal goes to its child, found by parent pid.
start_capture() { # errfile timefile cmd...
    local err=$1 tv=$2
    shift 2
    ip netns exec "$ns_r" "${cap_pin[@]}" /usr/bin/time -v -o "$tv" "$@" 2>"$err" &
    cap_pid=$!
    pids=("$cap_pid")
    local i
    for ((i = 0; i < 100; i++)); do
        grep -qE 'listening on|capturing source=' "$err" && return 0
        sleep 0.1
    done
    echo "bench: capture did not start:" >&2
    cat "$err" >&2
    return 1
}
stop_capture() {
    local child
    child=$(pgrep -P "$cap_pid" || true)
    [[ -n $child ]] && kill -INT "$child"
    wait "$cap_pid" || true
    pids=()
}
replay() { # rate; sets sent failed pps
    local how
    [[ $1 == max ]] && how=--topspeed || how=--pps=$1
    ip netns exec "$ns_s" "${send_pin[@]}" tcpreplay -K -i "$if_s" --loop=0 --duration="$dur" "$how" "$slice" \
        >"$w/replay.out" 2>&1 &
    local rp=$!
    pids+=("$rp")
    wait "$rp" || true
    pids=("${pids[@]:0:${#pids[@]}-1}")
    sent=$(awk '/Actual:/ {print $2; exit}' "$w/replay.out")
    failed=$(awk '/Failed packets:/ {print $3; exit}' "$w/replay.out")
    pps=$(awk '/Rated:/ {for (i = 1; i <= NF; i++) if ($i == "pps") print int($(i - 1)); exit}' "$w/replay.out")
    sent=${sent:-0} failed=${failed:-0} pps=${pps:-0}
}
timev() { awk -F': ' -v k="$2" '$0 ~ k {print $2; exit}' "$1"; }

lvl_opt=()
[[ -n $level ]] && lvl_opt=(--level "$level")
echo "rate tool sent failed achieved_pps saved dropped_kernel dropped_iface lost_other cpu_s rss_kib wall_s" >"$res/runs.txt"
bench_machine >"$res/machine.txt"
for rate in $rates; do
    # --- tcpdump ---
    d=$w/td
    rm -rf "$d"
    mkdir -p "$d"
    chown tcpdump:tcpdump "$d"
    start_capture "$w/td.err" "$w/td.time" tcpdump -i "$if_r" -B "$bufkib" -n -G 2 -w "$d/td-%Y%m%d-%H%M%S.pcap"
    replay "$rate"
    sleep 1
    stop_capture
    saved=0
    for f in "$d"/*.pcap; do
        [[ -e $f ]] || continue
        saved=$((saved + $(capinfos -c -M "$f" | awk -F': *' '/Number of packets/ {print $2}')))
    done
    dk=$(awk '/dropped by kernel/ {print $1}' "$w/td.err")
    di=$(awk '/dropped by interface/ {print $1}' "$w/td.err")
    dk=${dk:-0} di=${di:-0}
    cpu=$(awk -v u="$(timev "$w/td.time" 'User time')" -v s="$(timev "$w/td.time" 'System time')" 'BEGIN {print u + s}')
    rss=$(timev "$w/td.time" 'Maximum resident')
    wall=$(timev "$w/td.time" 'Elapsed' | awk -F: '{ s = 0; for (i = 1; i <= NF; i++) s = s * 60 + $i; print s }')
    echo "$rate tcpdump $sent $failed $pps $saved $dk $di $((sent - failed - saved - dk - di)) $cpu $rss $wall" | tee -a "$res/runs.txt" >&2
    rm -rf "$d"

    # --- pcapferry capture, sealer running ---
    d=$w/pf
    rm -rf "$d"
    spool=${PF_BENCH_SPOOL:-$d/spool}
    mkdir -p "$d/outbox" "$d/state" "$spool"
    : >"$d/empty.conf"
    start_capture "$w/pf.err" "$w/pf.time" "$PF" capture -c "$d/empty.conf" -i "$if_r" -B "$bufkib" -G 2 -Z nobody \
        "${lvl_opt[@]}" --key "$KEYS/plant-a.key" --to "$KEYS/arkime.pub" \
        --spool "$spool" --outbox "$d/outbox" --state "$d/state"
    replay "$rate"
    sleep 1
    stop_capture # seals what is left, then exits
    dk=$(jq .dropped_kernel "$d/state/status.json")
    di=$(jq .dropped_interface "$d/state/status.json")
    sensor_saved=$(jq .packets_saved "$d/state/status.json")
    cpu=$(awk -v u="$(timev "$w/pf.time" 'User time')" -v s="$(timev "$w/pf.time" 'System time')" 'BEGIN {print u + s}')
    rss=$(timev "$w/pf.time" 'Maximum resident')
    wall=$(timev "$w/pf.time" 'Elapsed' | awk -F: '{ s = 0; for (i = 1; i <= NF; i++) s = s * 60 + $i; print s }')
    # what the central host gets: import the outbox and count
    mkdir -p "$d/ingest"
    "$PF" import -q --key "$KEYS/arkime.key" --keyring "$KEYS/ring" --state "$d/central" \
        --ingest "$d/ingest" --settle-ms 0 "$d/outbox" >/dev/null 2>&1 || true
    saved=$("$PF" import --status --state "$d/central" --json | jq '[.[].packets] | add // 0')
    gaps=$("$PF" import --status --state "$d/central" --json | jq '[.[].gaps] | add // 0')
    [[ $saved == "$sensor_saved" && $gaps == 0 ]] ||
        echo "bench: warning: sensor says saved=$sensor_saved, central imported $saved (gaps $gaps)" >&2
    echo "$rate pcapferry $sent $failed $pps $saved $dk $di $((sent - failed - saved - dk - di)) $cpu $rss $wall" | tee -a "$res/runs.txt" >&2
    cp "$w/pf.err" "$res/pcapferry-$rate.log"
    rm -rf "$d"
    [[ -n ${PF_BENCH_SPOOL:-} ]] && rm -f "$spool"/* 2>/dev/null
done
echo "load after: $(uptime | sed 's/.*load average: //')" >>"$res/machine.txt"

{
    echo "### Capture: ${dur} s bursts of $(basename "$slice") (looped) over veth, -B $bufkib KiB, pcapferry level ${level:-default}"
    echo
    if ((${#send_pin[@]})); then
        echo "tcpreplay pinned to CPU 0 (which also runs the kernel's receive path), the capture program and its sealer to CPU $cap_cpus, both at nice $nice."
    else
        echo "No CPU pinning."
    fi
    echo "Lossless: saved = sent, no drop. A run counts at its rate only if tcpreplay reached 95% of it."
    echo
    sed 's/^/    /' "$res/machine.txt"
    echo
    echo "| rate pps asked (achieved) | tool | sent | saved | dropped kernel | dropped iface | lost elsewhere | CPU s | peak RSS MiB | lossless |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---|"
    awk 'NR > 1 {
        ok = ($6 == $3 - $4 && $7 == 0 && $8 == 0) ? "yes" : "**no**"
        if ($1 != "max" && $5 < 0.95 * $1) ok = ok ", sender short"
        printf "| %s (%s) | %s | %d | %d | %d | %d | %d | %.2f | %.1f | %s |\n", $1, $5, $2, $3 - $4, $6, $7, $8, $9, $10, $11 / 1024, ok }' "$res/runs.txt"
    echo
    for tool in tcpdump pcapferry; do
        awk -v t="$tool" 'NR > 1 && $2 == t && ($1 == "max" || $5 >= 0.95 * $1) {
                if ($6 == $3 - $4 && $7 == 0 && $8 == 0) { if ($5 > best) { best = $5; r = $1 } }
                else if (!lossy || $5 < lossy) { lossy = $5 } }
            END { if (best) printf "- %s: highest lossless rate %d pps (asked %s)", t, best, r; else printf "- %s: lossless at no rate tried", t
                  if (lossy) printf "; lost packets at %d pps", lossy; print "" }' "$res/runs.txt"
    done
    awk -v b="$bufkib" 'NR > 1 && $2 == "pcapferry" { if ($11 > m) m = $11 }
        END { printf "- pcapferry capture peak RSS %.1f MiB; target < 64 MiB + ring (%d KiB) = %.0f MiB: %s\n", m / 1024, b, 64 + b / 1024, (m / 1024 < 64 + b / 1024 ? "met" : "NOT met") }' "$res/runs.txt"
} >"$res/capture.md"
cat "$res/capture.md"
