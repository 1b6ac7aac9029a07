#!/usr/bin/env bash
# Importing (the central side), in one run, interleaved:
#   pf-import  pcapferry import --settle-ms 0 (verify, decrypt, deliver into
#              INGEST/<sensor>/, state database, signed manifests kept)
#   pf-open    pcapferry bundle open (verify, decrypt, extract)
#   pipe       minisign -V -m b.age && age -d -i key b.age | zstd -d | tar -x -C DIR
#              && sync DIR/*.pcap DIR
#   nncp       nncp-xfer -rx (from the stick directory) + nncp-toss + sync
#   dd         dd if=/dev/zero bs=1M count=<pcap MiB> conv=fsync: the disk's
#              durable write bandwidth for the bytes delivered
# The bundle, b.age and the NNCP stick are made once beforehand from the same
# corpus (zstd level PF_BENCH_OPEN_LEVEL, default 3, pcapferry's default) and
# are in the page cache for every contender. Every output is compared with the
# corpus afterwards (cmp).
#
#   bench/open.sh [SIZE]      (default 1G)
# Environment: PF_BENCH_RUNS (rounds, default 3), PF_BENCH_OPEN_LEVEL,
# PF_BENCH_WORK. Writes $PF_BENCH_WORK/results/open-SIZE/open.md.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$root/bench/lib.sh"

size=${1:-1G}
level=${PF_BENCH_OPEN_LEVEL:-3}
bench_need hyperfine age age-keygen minisign nncp-cfgnew nncp-file nncp-xfer nncp-toss zstd jq tar /usr/bin/time
bench_build
corpus=$(bench_corpus "$size")
bench_keys
w=$BENCH_WORK/open
res=$BENCH_WORK/results/open-$size
rm -rf "$w"
mkdir -p "$w/src/pf" "$w/src/age" "$res"
trap 'rm -rf "$w"' EXIT
bench_nncp "$w/nncp"
inbytes=$(cat "$corpus"/*.pcap | wc -c)
mib=$(((inbytes + (1 << 20) - 1) >> 20))

echo "bench: open: making the bundle, b.age and the NNCP stick (level $level)" >&2
"$PF" bundle create --key "$KEYS/plant-a.key" --to "$KEYS/arkime.pub" --out "$w/src/pf" --seq 1 \
    --level "$level" --threads 2 "$corpus"/*.pcap >/dev/null 2>&1
bundle=$(ls "$w"/src/pf/*.pcapferry)
(cd "$corpus" && tar -cf - *.pcap | zstd -q -T1 -"$level" | age -r "$(cat "$KEYS/age.pub")" >"$w/src/age/b.age")
minisign -S -s "$KEYS/minisign.key" -m "$w/src/age/b.age" >/dev/null
for f in "$corpus"/*.pcap; do nncp-file -quiet -cfg "$NNCP_SENSOR" "$f" central:; done
nncp-xfer -quiet -cfg "$NNCP_SENSOR" -tx -mkdir "$NNCP_STICK"
sync

st=$w/pf-state ing=$w/pf-ingest
bench_add pf-import "rm -rf $st $ing $w/src/pf/pcapferry-receipts; mkdir -p $ing; sync" \
    "\$STAGE $PF import -q --key $KEYS/arkime.key --keyring $KEYS/ring --state $st --ingest $ing --settle-ms 0 $w/src/pf >/dev/null 2>&1" "$ing"
o=$w/pf-open
bench_add pf-open "rm -rf $o; sync" \
    "\$STAGE $PF bundle open --key $KEYS/arkime.key --keyring $KEYS/ring --out $o $bundle >/dev/null 2>&1" "$o"
o=$w/pipe
bench_add pipe "rm -rf $o; mkdir -p $o; sync" \
    "\$STAGE minisign -Vq -p $KEYS/minisign.pub -m $w/src/age/b.age && \$STAGE age -d -i $KEYS/age.key $w/src/age/b.age | \$STAGE zstd -q -d | \$STAGE tar -x -C $o && \$STAGE sync $o/*.pcap $o" "$o"
n=$w/nncp/central
bench_add nncp "rm -rf $n/spool $n/incoming; mkdir -p $n/spool $n/incoming; sync" \
    "\$STAGE nncp-xfer -quiet -keep -cfg $NNCP_CENTRAL -rx $NNCP_STICK && \$STAGE nncp-toss -quiet -cfg $NNCP_CENTRAL && \$STAGE sync \$(find $n/incoming)" "$n/incoming"
bench_add dd "rm -f $w/dd.out; sync" \
    "\$STAGE dd if=/dev/zero of=$w/dd.out bs=1M count=$mib conv=fsync status=none" "$w/dd.out"

echo "bench: open, corpus $corpus ($inbytes bytes), bundle $(stat -c %s "$bundle") bytes, $BENCH_RUNS rounds" >&2
bench_machine >"$res/machine.txt"
bench_rounds "$res"
echo "load after: $(uptime | sed 's/.*load average: //')" >>"$res/machine.txt"

# every contender delivered the corpus, byte for byte (the last round's output)
check() { # label dir: same base names as the corpus
    local f
    for f in "$corpus"/*.pcap; do
        cmp -s "$f" "$2/$(basename "$f")" || {
            echo "bench: $1: $2/$(basename "$f") differs from $f" >&2
            exit 1
        }
    done
}
check pipe "$w/pipe"
check pf-open "$w/pf-open"
check nncp "$w/nncp/central/incoming"
# import delivers plant-a-<seq>-<n>-<UTC start>.pcap, in corpus order
i=0
for f in "$corpus"/*.pcap; do
    i=$((i + 1))
    cmp -s "$f" "$(ls "$ing"/plant-a/plant-a-0000000001-$i-*.pcap)" || {
        echo "bench: pf-import: file $i differs from $f" >&2
        exit 1
    }
done
echo "bench: every output is byte-identical to the corpus" >&2

g() { bench_get "$res" "$@"; }
pipe_wall=$(g pipe 11) nncp_wall=$(g nncp 11) dd_wall=$(g dd 11)
ddmb=$(awk -v m="$mib" -v w="$dd_wall" 'BEGIN {print m * 1048576 / 1e6 / w}')
row() { # name label bytes
    local nm=$1
    awk -v l="$2" -v b="$3" -v w="$(g "$nm" 11)" -v sd="$(g "$nm" 12)" -v mn="$(g "$nm" 5)" \
        -v u="$(g "$nm" 6)" -v s="$(g "$nm" 7)" -v r="$(g "$nm" 8)" -v pw="$pipe_wall" -v nw="$nncp_wall" \
        -v dd="$ddmb" 'BEGIN {
        printf "| %s | %.2f (%.2f-%.2f) | %.0f | %.2f | %.1f | %.2fx | %.2fx | %.2f |\n", l, w, mn, sd,
            b / 1e6 / w, (u + s) / (b / 1e9), r / 1024, pw / w, nw / w, (b / 1e6 / w) / dd }'
}
{
    echo "### Import $size ($inbytes bytes of pcap delivered; bundle $(stat -c %s "$bundle") bytes, level $level), $BENCH_RUNS interleaved rounds"
    echo
    sed 's/^/    /' "$res/machine.txt"
    echo
    echo "Wall: median of the rounds (ratios use it); MB/s of pcap delivered from the median; CPU: mean user+sys per GB (10^9 bytes)."
    echo
    echo "| command | wall s, median (min-max) | MB/s pcap out | CPU s/GB | peak RSS MiB | speed vs pipeline | speed vs NNCP | vs dd fsync MB/s |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|"
    row pf-import "pcapferry import --settle-ms 0" "$inbytes"
    row pf-open "pcapferry bundle open" "$inbytes"
    row pipe "minisign -V && age -d \| zstd -d \| tar -x && sync" "$inbytes"
    row nncp "nncp-xfer -rx + nncp-toss + sync" "$inbytes"
    row dd "dd if=/dev/zero bs=1M count=$mib conv=fsync" "$((mib << 20))"
    echo
    for nm in pf-import pf-open; do
        awk -v nm="$nm" -v b="$inbytes" -v w="$(g "$nm" 11)" -v pw="$pipe_wall" -v nw="$nncp_wall" -v dd="$ddmb" 'BEGIN {
            v = b / 1e6 / w
            printf "- %s: %.2fx the pipeline (target 1.5x: %s); %.2fx NNCP (target 2x: %s); %.0f MB/s = %.2f of dd fsync %.0f MB/s (target 0.8: %s)\n",
                nm, pw / w, (pw / w >= 1.5 ? "met" : sprintf("NOT met, %.0f%% short", 100 * (1 - pw / w / 1.5))),
                nw / w, (nw / w >= 2 ? "met" : sprintf("NOT met, %.0f%% short", 100 * (1 - nw / w / 2))),
                v, v / dd, dd, (v / dd >= 0.8 ? "met" : sprintf("NOT met, %.0f%% short", 100 * (1 - v / dd / 0.8))) }'
    done
    echo
    echo "Per-stage CPU and peak RSS in the resource run (label, stage, wall, user, sys, max RSS KiB):"
    echo
    echo '```'
    cat "$res/res.txt.stages"
    echo '```'
} >"$res/open.md"
cat "$res/open.md"
