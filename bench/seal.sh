#!/usr/bin/env bash
# Sealing (the sensor side), in one run, interleaved, at each zstd level:
#   pf-L<l>-t<n>  pcapferry bundle create --level l --threads n   (n in 0 1 2)
#   pipe-L<l>     tar -cf - *.pcap | zstd -T1 -l | age -r CENTRAL > b.age
#                 && minisign -S -m b.age && sync b.age b.age.minisig DIR
#   nncp          nncp-file each pcap to the central node, nncp-xfer -tx to a
#                 directory standing in for the stick, sync (NNCP does not
#                 compress: no level)
#   zstd-L<l>-T1  zstd -l -T1 of the same pcaps to /dev/null: the limit
#   zstd-L<l>-T2  zstd -l -T2 likewise (the limit with two cores)
# Both sides are durable: pcapferry fsyncs its bundle and directory; the
# pipelines end with sync of exactly the files and directory they wrote (the
# same guarantee as a bare `sync`, without waiting for other jobs' dirty pages
# on a shared machine; NNCP fsyncs its packets itself and is synced too).
# Input pcaps are in the page cache for every contender (the sensor's spool is
# a tmpfs or was just written).
#
#   bench/seal.sh [SIZE]      (default 1G)
# Environment: PF_BENCH_RUNS (rounds, default 3), PF_BENCH_LEVELS ("1 3"),
# PF_BENCH_THREADS ("0 1 2"), PF_BENCH_WORK (/var/tmp/pcapferry-bench).
# Writes $PF_BENCH_WORK/results/seal-SIZE.md (table) and the raw data beside it.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$root/bench/lib.sh"

size=${1:-1G}
levels=${PF_BENCH_LEVELS:-1 3}
threads=${PF_BENCH_THREADS:-0 1 2}
bench_need hyperfine age age-keygen minisign nncp-cfgnew nncp-file nncp-xfer zstd jq tar /usr/bin/time
bench_build
corpus=$(bench_corpus "$size")
bench_keys
w=$BENCH_WORK/seal
res=$BENCH_WORK/results/seal-$size
mkdir -p "$w" "$res"
trap 'rm -rf "$w"' EXIT
bench_nncp "$w/nncp"
inbytes=$(cat "$corpus"/*.pcap | wc -c)
recipient=$(cat "$KEYS/age.pub")

for l in $levels; do
    for t in $threads; do
        o=$w/pf-L$l-t$t
        bench_add "pf-L$l-t$t" "rm -rf $o; mkdir -p $o; sync" \
            "\$STAGE $PF bundle create --key $KEYS/plant-a.key --to $KEYS/arkime.pub --out $o --seq 1 --level $l --threads $t $corpus/*.pcap >/dev/null 2>&1" "$o"
    done
    o=$w/pipe-L$l
    bench_add "pipe-L$l" "rm -rf $o; mkdir -p $o; sync" \
        "cd $corpus && \$STAGE tar -cf - *.pcap | \$STAGE zstd -q -T1 -$l | \$STAGE age -r $recipient >$o/b.age && \$STAGE minisign -S -s $KEYS/minisign.key -m $o/b.age >/dev/null && \$STAGE sync $o/b.age $o/b.age.minisig $o" "$o"
    bench_add "zstd-L$l-T1" "sync" "\$STAGE zstd -q -T1 -$l -c $corpus/*.pcap >/dev/null"
    bench_add "zstd-L$l-T2" "sync" "\$STAGE zstd -q -T2 -$l -c $corpus/*.pcap >/dev/null"
done
n=$w/nncp
bench_add nncp "rm -rf $n/sensor/spool $NNCP_STICK; mkdir -p $n/sensor/spool $NNCP_STICK; sync" \
    "for f in $corpus/*.pcap; do \$STAGE nncp-file -quiet -cfg $NNCP_SENSOR \"\$f\" central: || exit 1; done && \$STAGE nncp-xfer -quiet -cfg $NNCP_SENSOR -tx -mkdir $NNCP_STICK && \$STAGE sync \$(find $NNCP_STICK)" "$NNCP_STICK"

echo "bench: seal, corpus $corpus ($inbytes bytes), levels $levels, threads $threads, $BENCH_RUNS rounds" >&2
bench_machine >"$res/machine.txt"
bench_rounds "$res"
echo "load after: $(uptime | sed 's/.*load average: //')" >>"$res/machine.txt"

# ---------- table ----------
g() { bench_get "$res" "$@"; }
row() { # name label
    local nm=$1 label=$2 wall sd mn cpu rss out
    wall=$(g "$nm" 11) sd=$(g "$nm" 12) mn=$(g "$nm" 5)
    cpu=$(awk -v u="$(g "$nm" 6)" -v s="$(g "$nm" 7)" 'BEGIN {print u + s}')
    rss=$(g "$nm" 8) out=$(g "$nm" 10)
    awk -v l="$label" -v w="$wall" -v sd="$sd" -v mn="$mn" -v c="$cpu" -v r="$rss" -v o="$out" \
        -v b="$inbytes" -v pw="$pipe_wall" -v pc="$pipe_cpu" 'BEGIN {
        printf "| %s | %.2f (%.2f-%.2f) | %.0f | %.2f | %.1f | %s | %s | %s |\n", l, w, mn, sd, b / 1e6 / w,
            c / (b / 1e9), r / 1024, (o > 0 ? sprintf("%.4f", b / o) : "-"),
            (pw > 0 ? sprintf("%.2fx", pw / w) : "-"), (pc > 0 ? sprintf("%.2f", (c / (b / 1e9)) / pc) : "-") }'
}
{
    echo "### Sealing $size ($inbytes bytes of pcap, $(ls "$corpus"/*.pcap | wc -l) files), $BENCH_RUNS interleaved rounds"
    echo
    echo "Wall: median of the rounds (speed ratios use it); MB/s from the median; CPU: mean user+sys per GB (10^9 bytes) of pcap; peak RSS: all processes of a pipeline alive at once, summed."
    echo
    sed 's/^/    /' "$res/machine.txt"
    echo
    for l in $levels; do
        pipe_wall=$(g "pipe-L$l" 11)
        pipe_cpu=$(awk -v u="$(g "pipe-L$l" 6)" -v s="$(g "pipe-L$l" 7)" -v b="$inbytes" 'BEGIN {print (u + s) / (b / 1e9)}')
        echo "zstd level $l:"
        echo
        echo "| command | wall s, median (min-max) | MB/s pcap in | CPU s/GB | peak RSS MiB | ratio in/out | speed vs pipeline | CPU/GB vs pipeline |"
        echo "|---|---:|---:|---:|---:|---:|---:|---:|"
        for t in $threads; do row "pf-L$l-t$t" "pcapferry bundle create --level $l --threads $t"; done
        row "pipe-L$l" "tar \| zstd -T1 -$l \| age + minisign + sync"
        row nncp "nncp-file + nncp-xfer -tx + sync (no compression)"
        row "zstd-L$l-T1" "zstd -T1 -$l > /dev/null (limit)"
        row "zstd-L$l-T2" "zstd -T2 -$l > /dev/null (limit, 2 threads)"
        echo
        # targets: CPU/GB <= pipeline; wall ratio >= 1.5 (level 1), 1.1 (level 3)
        want=$(case $l in 1) echo 1.5 ;; 3) echo 1.1 ;; *) echo 1.0 ;; esac)
        for t in $threads; do
            awk -v t="$t" -v l="$l" -v want="$want" -v pw="$pipe_wall" -v pc="$pipe_cpu" -v b="$inbytes" \
                -v w="$(g "pf-L$l-t$t" 11)" -v u="$(g "pf-L$l-t$t" 6)" -v s="$(g "pf-L$l-t$t" 7)" 'BEGIN {
                c = (u + s) / (b / 1e9)
                printf "- threads %s: speed %.2fx the pipeline (target %.1fx: %s); CPU %.2f s/GB vs %.2f (target <=: %s)\n",
                    t, pw / w, want, (pw / w >= want ? "met" : sprintf("NOT met, %.0f%% short", 100 * (1 - (pw / w) / want))),
                    c, pc, (c <= pc ? "met" : sprintf("NOT met, %.0f%% more", 100 * (c / pc - 1))) }'
        done
        echo
    done
    echo "Speed vs the pipeline round by round (pipeline wall / pcapferry wall in the same round; load average at the round's start):"
    echo
    hdr="| round | load 1/5/15 min |"
    sep="|---|---|"
    for l in $levels; do for t in $threads; do hdr="$hdr L$l t$t |"; sep="$sep---:|"; done; done
    echo "$hdr"
    echo "$sep"
    while read -r r l1 l5 l15; do
        line="| $r | $l1 $l5 $l15 |"
        for l in $levels; do
            p=$(bench_round "$res" "$r" "pipe-L$l")
            for t in $threads; do
                line="$line $(awk -v p="$p" -v w="$(bench_round "$res" "$r" "pf-L$l-t$t")" 'BEGIN {printf "%.2fx", p / w}') |"
            done
        done
        echo "$line"
    done <"$res/rounds.txt"
    echo
    echo "Per-stage CPU and peak RSS in the resource run (label, wall, user, sys, max RSS KiB):"
    echo
    echo '```'
    cat "$res/res.txt.stages"
    echo '```'
} >"$res/seal.md"
cat "$res/seal.md"
