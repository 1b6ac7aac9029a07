#!/usr/bin/env bash
# The coverage report on a large history: SENSORS sensors x BUNDLES
# one-minute bundles of one file each (default 20 x 525600: a year, about
# 10.5 million files), written straight into the importer's schema by
# tests/tools/stategen (no manifests: at this size the report aggregates
# in SQL and reads none). One gap and one drop window are planted.
#
# Measured with /usr/bin/time (wall, CPU, peak RSS), each PF_BENCH_RUNS
# times: the whole year as HTML (aggregated, from the hourly roll-up), as
# JSON, one sensor, two weeks (half-hour buckets, from the bundles), and a
# one-hour zoom (file by file; reads no manifest here, so it shows the SQL
# cost only). Not a test: nothing is checked against a time limit.
#
#   bench/report.sh [SENSORS [BUNDLES]]
# Environment: PF_BENCH_RUNS (default 3), PF_BENCH_WORK. Writes
# $PF_BENCH_WORK/results/report/report.md.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$root/bench/lib.sh"

sensors=${1:-20}
bundles=${2:-525600}
bench_need /usr/bin/time
bench_build
STATEGEN=$BENCH_BUILD/tests/tools/stategen
start=1672531200 # 2023-01-01T00:00:00Z
w=$BENCH_WORK/report-$sensors-$bundles
res=$BENCH_WORK/results/report
mkdir -p "$res"
if [[ ! -f $w/state/pcapferry.db ]]; then
    rm -rf "$w"
    mkdir -p "$w"
    echo "report: generating $sensors x $bundles bundles in $w/state"
    /usr/bin/time -f '%e s wall, %M KiB peak' "$STATEGEN" --state "$w/state" --sensors "$sensors" \
        --bundles "$bundles" --start "$start" --no-manifests --skip 3:100000 --skip 3:100001 \
        --drops 5:200000:17
fi
: >"$w/empty.conf"
# an import opening the state adds the roll-up to a state made before it
# (once; docs/REPORT.md), and checkpoints it, so no measured run pays that
/usr/bin/time -f 'state opened by import --status: %e s wall' "$PF" import --status --state "$w/state" >/dev/null
db=$(du -sm "$w/state" | cut -f 1)

one() { # LABEL ARGS...: PF_BENCH_RUNS runs, one line each
    local label=$1 i out
    shift
    for ((i = 1; i <= BENCH_RUNS; i++)); do
        out=$(/usr/bin/time -f '%e %U %S %M' "$PF" report --config "$w/empty.conf" --state "$w/state" \
            "$@" 2>&1 >/dev/null | tail -n 1 || true)
        read -r wall user sys rss <<<"$out"
        printf '| %s | %d | %s | %s | %s | %d |\n' "$label" "$i" "$wall" "$user" "$sys" \
            $((rss / 1024))
    done
}
{
    echo "Report on $sensors sensors x $bundles one-minute bundles ($((sensors * bundles)) files), state $db MiB"
    echo
    echo '| run | # | wall s | user s | sys s | peak RSS MiB |'
    echo '|---|---|---|---|---|---|'
    one "year, HTML" --out "$w/year.html"
    one "year, --json" --json --out "$w/year.json"
    one "year, one sensor, HTML" --sensor sensor-04 --out "$w/s4.html"
    one "two weeks, all sensors, HTML" --from "@$((start + 86400 * 60))" --to "@$((start + 86400 * 74))" \
        --out "$w/weeks.html"
    one "one hour, all sensors, HTML" --from "@$((start + 86400 * 69))" --to "@$((start + 86400 * 69 + 3600))" \
        --out "$w/hour.html"
    echo
    echo "sizes: year.html $(du -k "$w/year.html" | cut -f 1) KiB, year.json $(du -k "$w/year.json" | cut -f 1) KiB," \
        "s4.html $(du -k "$w/s4.html" | cut -f 1) KiB, weeks.html $(du -k "$w/weeks.html" | cut -f 1) KiB, hour.html $(du -k "$w/hour.html" | cut -f 1) KiB"
} | tee "$res/report.md"
