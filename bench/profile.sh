#!/usr/bin/env bash
# Where the time goes: perf record (cpu-clock sampling, all threads) of
#   pcapferry bundle create --level 1 and --level 3 (--threads 0), and
#   pcapferry import --settle-ms 0 of the level-3 bundle,
# broken down by library (libzstd, libsodium, libpcap, libarchive, libc,
# pcapferry itself, the kernel) and, in the kernel, by symbol (page-cache
# copies of read and write, writeback, fsync). Debian's libsodium and libzstd
# carry no symbols, so libsodium's share is split between BLAKE2b and
# XChaCha20-Poly1305 with bench/primitives.c: the CPU cost per GB of each
# building block, same libraries, same 1 MiB chunks, on a pcap of the corpus.
#
#   bench/profile.sh [SIZE]   (default 1G)
# Writes $PF_BENCH_WORK/results/profile-SIZE/profile.md.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$root/bench/lib.sh"

size=${1:-1G}
bench_need perf cc jq /usr/bin/time
bench_build
corpus=$(bench_corpus "$size")
bench_keys
w=$BENCH_WORK/profile
res=$BENCH_WORK/results/profile-$size
rm -rf "$w"
mkdir -p "$w" "$res"
trap 'rm -rf "$w"' EXIT
inbytes=$(cat "$corpus"/*.pcap | wc -c)

cc -O2 -o "$w/primitives" "$root/bench/primitives.c" -lsodium -lzstd -lpcap
PRIM_DIR="$w" "$w/primitives" "$(ls "$corpus"/*.pcap | head -1)" 3 >"$res/primitives.txt" 2>/dev/null

# perf: by DSO, then the kernel's top symbols. Percentages of all samples.
profile() { # name command...
    local name=$1
    shift
    sync
    perf record -q -F 999 -g -o "$w/$name.data" -- /usr/bin/time -f "%e %U %S %M" -o "$w/$name.time" "$@" >/dev/null 2>&1
    perf report -i "$w/$name.data" --no-children --sort dso --stdio 2>/dev/null |
        awk '/^ +[0-9.]+%/ { sub(/%/, "", $1); print $1, $2 }' >"$w/$name.dso"
    perf report -i "$w/$name.data" --no-children --sort sym --stdio --dsos '[kernel.kallsyms]' 2>/dev/null |
        awk '/^ +[0-9.]+%/ { sub(/%/, "", $1); print $1, $3 }' | head -12 >"$w/$name.ksym"
    cp "$w/$name.dso" "$w/$name.ksym" "$w/$name.time" "$res/"
}
mkdir -p "$w/o1" "$w/o3"
profile create-L1 "$PF" bundle create --key "$KEYS/plant-a.key" --to "$KEYS/arkime.pub" --out "$w/o1" --seq 1 --level 1 --threads 0 "$corpus"/*.pcap
rm -rf "$w/o1"
profile create-L3 "$PF" bundle create --key "$KEYS/plant-a.key" --to "$KEYS/arkime.pub" --out "$w/o3" --seq 1 --level 3 --threads 0 "$corpus"/*.pcap
outbytes=$(stat -c %s "$w"/o3/*.pcapferry)
mkdir -p "$w/ingest"
profile import "$PF" import -q --key "$KEYS/arkime.key" --keyring "$KEYS/ring" --state "$w/state" --ingest "$w/ingest" --settle-ms 0 "$w/o3"

prim() { awk -v k="$1" 'index($0, k) == 1 { print $(NF - 1); exit }' "$res/primitives.txt"; }
b2=$(prim BLAKE2b) push=$(prim "XChaCha20-Poly1305 push") pull=$(prim "XChaCha20-Poly1305 pull")

table() { # name "libsodium: blake bytes, chacha bytes, chacha s/GB"
    local name=$1 bbytes=$2 cbytes=$3 cgb=$4 wall user sys
    read -r wall user sys _ <"$w/$name.time"
    local cpu
    cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN {print u + s}')
    echo "#### $name: $wall s wall, $cpu s CPU ($user user + $sys sys) for $inbytes bytes of pcap"
    echo
    echo "| where | share of samples | CPU s per GB of pcap |"
    echo "|---|---:|---:|"
    awk -v cpu="$cpu" -v b="$inbytes" -v bb="$bbytes" -v cb="$cbytes" -v b2="$b2" -v cg="$cgb" '
        { pct[$2] = $1 }
        END {
            gb = b / 1e9
            for (d in pct) {
                label = d
                if (d ~ /libzstd/) label = "zstd (libzstd)"
                else if (d ~ /libsodium/) continue
                else if (d ~ /libpcap/) label = "libpcap (pcap_next_ex over every record)"
                else if (d ~ /libarchive/) label = "libarchive (tar)"
                else if (d ~ /^libc/) label = "libc (memcpy, stdio)"
                else if (d ~ /kernel/) label = "kernel (read/write copies, page cache, writeback, fsync)"
                else if (d ~ /pcapferry/) label = "pcapferry itself"
                printf "| %s | %.1f%% | %.2f |\n", label, pct[d], pct[d] / 100 * cpu / gb
            }
            for (d in pct) if (d ~ /libsodium/) s = pct[d]
            if (s > 0) {
                eb = b2 * bb / 1e9; ec = cg * cb / 1e9     # expected seconds from the primitives
                fb = eb / (eb + ec)
                printf "| libsodium, of which BLAKE2b (%.2f GB hashed) ~%.0f%% and XChaCha20-Poly1305 (%.2f GB) ~%.0f%% | %.1f%% | %.2f (BLAKE2b ~%.2f, XChaCha20-Poly1305 ~%.2f) |\n",
                    bb / 1e9, 100 * fb, cb / 1e9, 100 * (1 - fb), s, s / 100 * cpu / gb, fb * s / 100 * cpu / gb, (1 - fb) * s / 100 * cpu / gb
            }
        }' "$w/$name.dso" | sort -t'|' -k3 -rn
    echo
    echo "kernel's top symbols (share of all samples): $(awk '{ printf "%s %s%%, ", $2, $1 }' "$w/$name.ksym" | sed 's/, $//')"
    echo
}
{
    echo "### Where the time goes ($size corpus, perf record -F 999, cpu-clock; --threads 0)"
    echo
    echo "Building blocks alone (bench/primitives.c, one core, CPU seconds per GB of input):"
    echo
    echo '```'
    cat "$res/primitives.txt"
    echo '```'
    echo
    # create: BLAKE2b over the pcaps (manifest) and over the bundle as written; XChaCha over the bundle
    table create-L1 "$((inbytes + outbytes))" "$outbytes" "$push"
    table create-L3 "$((inbytes + outbytes))" "$outbytes" "$push"
    # import hashes the pcaps only: the bundle hash comes from its verified
    # trailer (docs/FORMAT.md, "Which pass over the bytes")
    table import "$inbytes" "$outbytes" "$pull"
} >"$res/profile.md"
cat "$res/profile.md"
