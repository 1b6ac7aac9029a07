#!/usr/bin/env bash
# The importer's crash window around the Arkime announcement, counted, not
# timed (docs/IMPORT.md "Crash windows", docs/ROBUSTNESS.md):
# N times: a fresh import of 12 one-file bundles runs under strace with every
# fsync/fdatasync delayed by 20 ms (a slow disk), is killed with SIGKILL at a
# random moment (50..949 ms), and a clean run recovers. The Arkime stand-in
# (monitor mode, --recursive) watches throughout; per round it counts files
# it read twice. Prints: kills, kills that left an announcement begun and
# not recorded done, recoveries that announced again, files indexed twice.
#
#   bench/announce-window.sh [N]      (default 60)
# Environment: PCAPFERRY, PCAPGEN, ARKIME_WATCH (default: build-test/), PF_SEED.
# Needs strace (fault injection with delay_enter) and sqlite3.
set -u
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
: "${PCAPFERRY:=$root/build-test/pcapferry}"
: "${PCAPGEN:=$root/build-test/tests/tools/pcapgen}"
: "${ARKIME_WATCH:=$root/build-test/tests/tools/arkime_watch}"
export PCAPFERRY PCAPGEN
. "$root/tests/cli/lib.sh"
require_cmd strace sqlite3
N=${1:-60}
RANDOM=${PF_SEED:-$$}
T=$(cd "$PF_TMP" && pwd -P)
setup_keys edge-01 central1 >/dev/null
mkdir -p "$T/out" "$T/p"
for seq in $(seq 1 12); do
    "$PCAPGEN" --packets 200 --seed "$seq" --start $((1700000000 + seq * 3600)) "$T/p/$seq.pcap" \
        >/dev/null 2>&1 || die "pcapgen failed"
    "$PCAPFERRY" bundle create --key "$T/keys/edge-01.key" --to "$CENTRAL_PUB" --out "$T/out" \
        --seq "$seq" "$T/p/$seq.pcap" >/dev/null 2>&1 || die "bundle create failed"
done
mkdir -p "$T/ingest/edge-01"
: >"$T/watch.log"
"$ARKIME_WATCH" --recursive "$T/ingest" "$T/watch.log" 86400 >"$T/w.out" 2>"$T/w.err" &
WP=$!
wait_for() { for ((j = 0; j < 100; j++)); do grep -qx ready "$T/w.out" && return 0; sleep 0.05; done; return 1; }
wait_for || die "arkime_watch did not start"
imp=("$PCAPFERRY" import --key "$CENTRAL_KEY" --keyring "$KEYRING" --state "$T/state"
    --ingest "$T/ingest" "$T/out")
inwin=0 again=0
for ((i = 1; i <= N; i++)); do
    rm -rf "$T/state" "$T/ingest/edge-01/"*
    # its own process group, so one kill stops strace and the importer alike
    setsid strace -f -qq -o /dev/null -e trace=fsync,fdatasync \
        -e inject=fsync,fdatasync:delay_enter=20000 "${imp[@]}" --settle-ms 0 >/dev/null 2>&1 &
    bp=$!
    sleep "0.$(printf '%03d' $((RANDOM % 900 + 50)))"
    kill -9 -- "-$bp" 2>/dev/null
    wait "$bp" 2>/dev/null
    while pgrep -g "$bp" >/dev/null; do sleep 0.05; done
    w=$(sqlite3 "$T/state/pcapferry.db" "SELECT COUNT(*) FROM announcing" 2>/dev/null) || w=0
    ((${w:-0} > 0)) && inwin=$((inwin + 1))
    "${imp[@]}" --settle-ms 1000 >/dev/null 2>"$T/rec.err" || die "round $i: recovery failed: $(cat "$T/rec.err")"
    grep -q 'announced again' "$T/rec.err" && again=$((again + 1))
    echo "---round $i" >>"$T/watch.log"
done
kill -TERM "$WP"
wait "$WP"
twice=$(awk '/^---round/ { delete c; next } NF == 3 { if (++c[$1] == 2) n++ } END { print n + 0 }' "$T/watch.log")
echo "kills: $N; left an announcement begun, not recorded done: $inwin; recoveries that announced again: $again; files indexed twice: $twice"
PF_SUMMARY_DONE=1
