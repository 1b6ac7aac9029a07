#!/usr/bin/env bash
# Peak resident memory of bundle create / verify / open on one large capture
# (default 3 GiB), measured with /usr/bin/time -v. Memory must not grow with
# the bundle: the streaming design keeps it at a few MiB.
#   bench/memory.sh [SIZE]      e.g. bench/memory.sh 3G
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
size=${1:-3G}
build=$root/build-bench
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j"$(nproc)" >/dev/null
pf=$build/pcapferry
gen=$build/tests/tools/pcapgen
work=$(mktemp -d "${TMPDIR:-/var/tmp}/pf-mem.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"
"$gen" --bytes "$size" --seed 3 big.pcap
"$pf" keys generate sensor s --out k >/dev/null
"$pf" keys generate central c --out k >/dev/null
"$pf" keys trust k/s.pub --keyring ring >/dev/null

measure() { # label, command...
    local label=$1
    shift
    /usr/bin/time -v "$@" >/dev/null 2>"$work/time.txt"
    local rss wall
    rss=$(awk -F': ' '/Maximum resident/ {print $2}' "$work/time.txt")
    wall=$(awk -F': ' '/Elapsed \(wall/ {print $2}' "$work/time.txt")
    printf '| %-14s | %10s | %8.1f MiB | %s |\n' "$label" "$(stat -c %s big.pcap)" \
        "$(awk -v k="$rss" 'BEGIN {print k / 1024}')" "$wall"
}
echo "| step           | pcap bytes | peak RSS     | wall |"
echo "|---|---|---|---|"
measure "bundle create" "$pf" bundle create --key k/s.key --to k/c.pub --out out --seq 1 --level 1 big.pcap
b=$(ls out/*.pcapferry)
measure "bundle verify" "$pf" bundle verify --keyring ring "$b"
measure "bundle open" "$pf" bundle open --key k/c.key --keyring ring --out opened "$b"
cmp big.pcap opened/big.pcap
echo "opened file is byte-identical"
