#!/usr/bin/env bash
# Peak resident memory of `pcapferry import` of one large bundle (default a
# 3 GiB capture), measured with /usr/bin/time -v; bench/memory.sh does the
# same for bundle create / verify / open. Memory must not grow with the bundle.
#   bench/memory-import.sh [SIZE]      e.g. bench/memory-import.sh 3G
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$root/bench/lib.sh"
size=${1:-3G}
bench_build
bench_keys
w=$(mktemp -d "$BENCH_WORK/mem-import.XXXXXX")
trap 'rm -rf "$w"' EXIT
"$PCAPGEN" --bytes "$size" --seed 3 "$w/big.pcap"
"$PF" bundle create --key "$KEYS/plant-a.key" --to "$KEYS/arkime.pub" --out "$w/src" --seq 1 --level 1 "$w/big.pcap" >/dev/null 2>&1
mkdir -p "$w/ingest"
/usr/bin/time -v -o "$w/time.txt" "$PF" import -q --key "$KEYS/arkime.key" --keyring "$KEYS/ring" \
    --state "$w/state" --ingest "$w/ingest" --settle-ms 0 "$w/src" >/dev/null 2>&1
rss=$(awk -F': ' '/Maximum resident/ {print $2}' "$w/time.txt")
wall=$(awk -F': ' '/Elapsed \(wall/ {print $2}' "$w/time.txt")
cmp "$w/big.pcap" "$w"/ingest/plant-a/*.pcap
printf '| %-14s | %10s | %8.1f MiB | %s |\n' "import" "$(stat -c %s "$w/big.pcap")" \
    "$(awk -v k="$rss" 'BEGIN {print k / 1024}')" "$wall"
echo "delivered file is byte-identical"
