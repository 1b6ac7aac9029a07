#!/usr/bin/env bash
# import --jobs scaling (issue 14 item 2): --jobs 1 against --jobs 2 (or
# PF_BENCH_FLEET_JOBS) on small and on large bundles, each in one run of
# bench/fleet.sh beside 0.1.0 and NNCP:
#   small: N bundles of 128 KiB from 20 sensors   (default N 2000)
#   large: 8 bundles of 64 MiB from 4 sensors      (512 MiB of pcap)
#
#   bench/jobs.sh [N]
# Environment: as bench/fleet.sh; PF_BENCH_JOBS_LARGE (bytes per large
# bundle, default 64M), PF_BENCH_JOBS_LARGE_N (default 8).
# Writes $PF_BENCH_WORK/results/jobs/jobs.md.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$root/bench/lib.sh"
n=${1:-2000}
res=$BENCH_WORK/results/jobs
mkdir -p "$res"
export PF_BENCH_FLEET_JOBS=${PF_BENCH_FLEET_JOBS:-1 2} PF_BENCH_FLEET_LOOP= PF_BENCH_FLEET_STRACE=0 PF_BENCH_FLEET_B1=0
{
    echo "## import --jobs scaling"
    echo
    PF_BENCH_FLEET_SENSORS=20 PF_BENCH_FLEET_BYTES=128K "$root/bench/fleet.sh" "$n"
    echo
    PF_BENCH_FLEET_SENSORS=4 PF_BENCH_FLEET_BYTES=${PF_BENCH_JOBS_LARGE:-64M} \
        PF_BENCH_WORK=$BENCH_WORK/large "$root/bench/fleet.sh" "${PF_BENCH_JOBS_LARGE_N:-8}"
} >"$res/jobs.md"
cat "$res/jobs.md"
