#!/usr/bin/env bash
# A day of a fleet on one stick (issue 14): many small bundles from many
# sensors, imported by pcapferry 0.1.0 (70eb8a0), by this tree's pcapferry
# (--jobs 1 and, when it has the option, the default and 2), and by NNCP
# tossing the same payloads as packets; then the same import with source,
# state and ingest on a loop-mounted ext4 image (a disk whose flushes reach
# the device: every fsync inside it becomes a flush of the image file).
#
#   bench/fleet.sh [N]        N bundles in all (default 10000; 300 is a quick check)
#
# Environment:
#   PF_BENCH_FLEET_SENSORS  sensors (default 20); N/SENSORS bundles each
#   PF_BENCH_FLEET_BYTES    pcap bytes per bundle (default 128K)
#   PF_BENCH_FLEET_STRACE   bundles in the fsync-counting run under strace
#                           (default 200, 0 skips it)
#   PF_BENCH_FLEET_LOOP     contenders also run on the loop image (default
#                           "head"; e.g. "head old nncp"; empty skips the image)
#   PF_BENCH_FLEET_JOBS     --jobs values for this tree's import (default "1 2"
#                           when import has --jobs)
#   PF_BENCH_FLEET_B1=0     skips this tree with --batch 1 --jobs 1
#   PF_BENCH_OLD_BIN        a 0.1.0 pcapferry binary; default: 70eb8a0 is
#                           exported with git archive into the work directory
#                           and built there (Release)
#   PF_BENCH_FLEET_PREPARE_ONLY=1  make the bundles and packets, run nothing
#   PF_BENCH_WORK, PF_BENCH_NO_BUILD as for the other scripts.
# Bundles and NNCP packets are made once per (N, sensors, bytes) and kept
# under $PF_BENCH_WORK/fleet-N/ (making 10,000 takes several minutes).
# Every contender is run once, one after the other, with warm inputs (the
# sources are read into the page cache first), fresh state and ingest
# directories; what each delivered is checked against the payloads (count
# and BLAKE2b of every file). Writes $PF_BENCH_WORK/results/fleet-N/fleet.md.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$root/bench/lib.sh"

n=${1:-10000}
nsens=${PF_BENCH_FLEET_SENSORS:-20}
pbytes=$(bench_bytes "${PF_BENCH_FLEET_BYTES:-128K}")
nstrace=${PF_BENCH_FLEET_STRACE:-200}
loop_set=${PF_BENCH_FLEET_LOOP-head}
per=$(((n + nsens - 1) / nsens))
npay=$((n < 64 ? n : 64)) # distinct payloads, used in turn

bench_need nncp-cfgnew nncp-file nncp-xfer nncp-toss strace b2sum /usr/bin/time mkfs.ext4
bench_build
w=$BENCH_WORK/fleet-$n
res=$BENCH_WORK/results/fleet-$n
mkdir -p "$w" "$res"

# ---------- the 0.1.0 binary ----------
OLD=${PF_BENCH_OLD_BIN:-}
if [[ -z $OLD ]]; then
    od=$BENCH_WORK/old-70eb8a0
    OLD=$od/build/pcapferry
    if [[ ! -x $OLD ]]; then
        echo "bench: fleet: building 0.1.0 (70eb8a0) in $od" >&2
        rm -rf "$od"
        mkdir -p "$od/src"
        git -C "$root" archive 70eb8a0 | tar -x -C "$od/src"
        { cmake -S "$od/src" -B "$od/build" -DCMAKE_BUILD_TYPE=Release &&
            cmake --build "$od/build" -j"$(nproc)" --target pcapferry; } >"$od/build.log" 2>&1 || {
            tail -20 "$od/build.log" >&2
            exit 1
        }
    fi
fi

# ---------- keys, payloads, bundles, NNCP packets (made once) ----------
params="fleet n=$n sensors=$nsens bytes=$pbytes payloads=$npay v1"
if [[ ! -f $w/.done || $(cat "$w/.done") != "$params" ]]; then
    echo "bench: fleet: making $n bundles of ~$pbytes bytes from $nsens sensors (once)" >&2
    find "$w" -mindepth 1 -maxdepth 1 ! -name 'old-*' -exec rm -rf {} +
    mkdir -p "$w/keys" "$w/pay" "$w/src/pcapferry"
    "$PF" keys generate central arkime --out "$w/keys" >/dev/null
    for s in $(seq -w 1 "$nsens"); do
        "$PF" keys generate sensor "s$s" --out "$w/keys" >/dev/null
        "$PF" keys trust "$w/keys/s$s.pub" --keyring "$w/keys/ring" >/dev/null
        "$OLD" keys trust "$w/keys/s$s.pub" --keyring "$w/keys/ring-old" >/dev/null
        mkdir -p "$w/src/pcapferry/s$s"
    done
    for i in $(seq 1 $npay); do
        "$PCAPGEN" --bytes "$pbytes" --seed "$((1000 + i))" --start $((1700000000 + i * 60)) \
            --rate 30 "$w/pay/p$i.pcap"
    done
    # one line per bundle: sensor seq payload
    k=0
    for q in $(seq 1 "$per"); do
        for s in $(seq -w 1 "$nsens"); do
            ((k < n)) || break
            echo "s$s $q $((k % npay + 1))"
            k=$((k + 1))
        done
    done >"$w/plan.txt"
    # shellcheck disable=SC2016 # expanded by the inner bash
    xargs -P "$(nproc)" -L 64 bash -c '
        while (($#)); do
            "$0" bundle create --key '"$w"'/keys/$1.key --to '"$w"'/keys/arkime.pub \
                --out '"$w"'/src/pcapferry/$1 --seq $2 --level 1 '"$w"'/pay/p$3.pcap >/dev/null || exit 1
            shift 3
        done' "$PF" <"$w/plan.txt"
    bench_nncp "$w/nncp"
    # the same payloads as packets, one per bundle, named after it
    # shellcheck disable=SC2016
    xargs -P "$(nproc)" -L 64 bash -c '
        while (($#)); do
            nncp-file -quiet -cfg "$0" '"$w"'/pay/p$3.pcap central:$1-$2.pcap || exit 1
            shift 3
        done' "$NNCP_SENSOR" <"$w/plan.txt"
    nncp-xfer -quiet -cfg "$NNCP_SENSOR" -tx -mkdir "$NNCP_STICK"
    # what each contender must deliver: the multiset of payload hashes
    awk '{print $3}' "$w/plan.txt" | sort | uniq -c | while read -r c p; do
        h=$(b2sum -l 256 "$w/pay/p$p.pcap" | cut -d' ' -f1)
        for ((j = 0; j < c; j++)); do echo "$h"; done
    done | sort >"$w/expect.b2"
    sync
    echo "$params" >"$w/.done"
fi
bench_nncp "$w/nncp"
[[ ${PF_BENCH_FLEET_PREPARE_ONLY:-0} == 1 ]] && exit 0
srcbytes=$(du -sb "$w/src" | awk '{print $1}')
paybytes=$(awk -v n="$n" -v w="$w" 'BEGIN { while ((getline l < (w "/plan.txt")) > 0) { split(l, f, " "); cmd = "stat -c %s " w "/pay/p" f[3] ".pcap"; if (!(f[3] in sz)) { cmd | getline sz[f[3]]; close(cmd) } t += sz[f[3]] } print t }')

# ---------- contenders ----------
has_jobs=0
"$PF" import --help 2>&1 | grep -q -- '--jobs' && has_jobs=1
jobs_set=${PF_BENCH_FLEET_JOBS:-}
[[ -z $jobs_set && $has_jobs == 1 ]] && jobs_set="1 2"

# run_pf LABEL BINARY RING BASE [EXTRA...]: import BASE/src into BASE/ing
run_pf() {
    local label=$1 bin=$2 ring=$3 base=$4
    shift 4
    rm -rf "$base/st" "$base/ing" "$base/src/pcapferry-receipts" "$base/src/pcapferry"/*/pcapferry-receipts
    mkdir -p "$base/ing"
    sync
    cat "$base"/src/pcapferry/*/* >/dev/null
    timed "$label" "$bin" import -q --key "$w/keys/arkime.key" --keyring "$ring" --state "$base/st" \
        --ingest "$base/ing" --settle-ms 0 "$@" "$base/src"
    check "$label" "$base/ing"
}
run_nncp() { # LABEL BASE (BASE/nncp-central: spool and incoming; the stick is shared)
    local label=$1 c=$2/nncp-central cfg
    rm -rf "$c"
    mkdir -p "$c/spool" "$c/incoming"
    cfg=$c/central.hjson
    sed -e "s|$w/nncp/central/spool|$c/spool|; s|$w/nncp/central/incoming|$c/incoming|; s|$w/nncp/central/log|$c/log|" \
        "$NNCP_CENTRAL" >"$cfg"
    sync
    cat "$NNCP_STICK"/*/*/* >/dev/null 2>&1 || true
    timed "$label" bash -c "nncp-xfer -quiet -keep -cfg $cfg -rx $NNCP_STICK && nncp-toss -quiet -cfg $cfg && find $c/incoming -type f -exec sync {} + && sync $c/incoming"
    check "$label" "$c/incoming"
}
timed() { # LABEL COMMAND...: one line "label wall user sys" in $res/times.txt
    local label=$1 t
    shift
    t=$(mktemp)
    echo "bench: fleet: $label ($(uptime | sed 's/.*load average: /load /'))" >&2
    /usr/bin/time -o "$t" -f "%e %U %S" "$@" >/dev/null 2>"$res/$label.err" || {
        echo "bench: fleet: $label failed:" >&2
        tail -5 "$res/$label.err" >&2
        exit 1
    }
    echo "$label $(tail -1 "$t")" >>"$res/times.txt"
    echo "bench: fleet:   $label: $(tail -1 "$t" | awk -v n="$n" '{printf "%.2f s, %.1f bundles/s", $1, n / $1}')" >&2
    rm -f "$t"
}
check() { # LABEL DIR: N files whose hashes are the payloads'
    local got
    got=$(find "$2" -type f -name '*.pcap' | wc -l)
    [[ $got == "$n" ]] || {
        echo "bench: fleet: $1 delivered $got files, not $n" >&2
        exit 1
    }
    find "$2" -type f -name '*.pcap' -print0 | xargs -0 b2sum -l 256 | cut -d' ' -f1 | sort |
        cmp -s - "$w/expect.b2" || {
        echo "bench: fleet: $1: delivered files differ from the payloads" >&2
        exit 1
    }
}

: >"$res/times.txt"
bench_machine >"$res/machine.txt"
echo "bench: fleet: $n bundles, $nsens sensors, $srcbytes bytes of bundles, $paybytes of pcap" >&2

pf_head() { # LABEL BASE
    local j
    if [[ -z $jobs_set ]]; then
        run_pf "$1" "$PF" "$w/keys/ring" "$2"
    else
        for j in $jobs_set; do run_pf "$1-j$j" "$PF" "$w/keys/ring" "$2" --jobs "$j"; done
    fi
}
run_pf old "$OLD" "$w/keys/ring-old" "$w"
# this tree without group commit or workers: what the rest of the changes give
"$PF" import --help 2>&1 | grep -q -- '--batch' && [[ ${PF_BENCH_FLEET_B1:-1} == 1 ]] &&
    run_pf head-b1 "$PF" "$w/keys/ring" "$w" --batch 1 $([[ $has_jobs == 1 ]] && echo --jobs 1)
pf_head head "$w"
run_nncp nncp "$w"

# ---------- the loop image ----------
if [[ -n $loop_set ]]; then
    img=$BENCH_WORK/fleet-loop.img mnt=$BENCH_WORK/fleet-loop
    mkdir -p "$mnt"
    mountpoint -q "$mnt" && umount "$mnt"
    rm -f "$img"
    # room for the bundles, one ingest copy and the state, with slack
    truncate -s $((srcbytes * 3 + (512 << 20))) "$img"
    mkfs.ext4 -q -F "$img"
    mount -o loop "$img" "$mnt"
    trap 'umount "$mnt" 2>/dev/null; rm -f "$img"' EXIT
    lo=$(findmnt -no SOURCE "$mnt")
    # one synced 4 KiB write: the cost of a flush here and on the host disk
    flush_us() { dd if=/dev/zero of="$1/ddtest" bs=4k count=500 oflag=dsync 2>&1 | awk '/copied/ {printf "%.0f", $(NF-3) / 500 * 1e6}' ; rm -f "$1/ddtest"; }
    echo "loop:    $lo on $img (ext4 in a file on $(findmnt -no SOURCE -T "$BENCH_WORK"), $(losetup -nO DIO "$lo" | awk '{print ($1 == 1 ? "direct I/O" : "buffered")}'))" >>"$res/machine.txt"
    echo "flush:   4 KiB O_DSYNC write: $(flush_us "$w") us on the host disk, $(flush_us "$mnt") us on the loop image" >>"$res/machine.txt"
    cp -a "$w/src" "$mnt/src"
    mkdir -p "$mnt/nncp"
    for c in $loop_set; do
        case $c in
        old) run_pf old-loop "$OLD" "$w/keys/ring-old" "$mnt" ;;
        head) pf_head head-loop "$mnt" ;;
        nncp)
            cp -a "$NNCP_STICK" "$mnt/stick"
            NNCP_STICK=$mnt/stick run_nncp nncp-loop "$mnt"
            ;;
        esac
        rm -rf "$mnt/ing" "$mnt/st" "$mnt/nncp-central"
    done
fi

# ---------- fsyncs per bundle (a smaller run under strace) ----------
if ((nstrace > 0)); then
    s=$w/strace
    rm -rf "$s"
    mkdir -p "$s/src/pcapferry"
    # the first nstrace bundles of the plan
    head -n "$nstrace" "$w/plan.txt" | while read -r sn q _; do
        mkdir -p "$s/src/pcapferry/$sn"
        cp "$w/src/pcapferry/$sn/$sn-$(printf %010d "$q")-"*.pcapferry "$s/src/pcapferry/$sn/"
    done
    count_sync() { # LABEL COMMAND...
        local label=$1 f=$s/$1.strace
        shift
        rm -rf "$s/st" "$s/ing"
        mkdir -p "$s/ing"
        strace -f -c -o "$f" -e trace=fsync,fdatasync,sync_file_range,syncfs,sync "$@" >/dev/null 2>&1 || true
        awk -v l="$label" -v n="$nstrace" '$NF ~ /^(fsync|fdatasync|sync_file_range|syncfs|sync)$/ { c[$NF] = $4; t += $4 }
            END { printf "%s %d %.2f fsync=%d fdatasync=%d\n", l, t, t / n, c["fsync"], c["fdatasync"] }' "$f" >>"$res/fsyncs.txt"
    }
    : >"$res/fsyncs.txt"
    count_sync old "$OLD" import -q --key "$w/keys/arkime.key" --keyring "$w/keys/ring-old" \
        --state "$s/st" --ingest "$s/ing" --settle-ms 0 "$s/src"
    rm -rf "$s"/src/pcapferry/*/pcapferry-receipts "$s/src/pcapferry-receipts"
    count_sync head "$PF" import -q --key "$w/keys/arkime.key" --keyring "$w/keys/ring" \
        --state "$s/st" --ingest "$s/ing" --settle-ms 0 "$s/src"
    # NNCP: the first nstrace packets of the stick
    c=$s/nncp-central
    mkdir -p "$c/spool" "$c/incoming" "$s/stick"
    sed -e "s|$w/nncp/central/spool|$c/spool|; s|$w/nncp/central/incoming|$c/incoming|; s|$w/nncp/central/log|$c/log|" \
        "$NNCP_CENTRAL" >"$c/central.hjson"
    cp -a "$NNCP_STICK/." "$s/stick/"
    find "$s/stick" -type f ! -name '.*' | sort | tail -n +$((nstrace + 1)) | xargs -r rm -f
    count_sync nncp bash -c "nncp-xfer -quiet -keep -cfg $c/central.hjson -rx $s/stick && nncp-toss -quiet -cfg $c/central.hjson"
    rm -rf "$s"
fi
echo "load after: $(uptime | sed 's/.*load average: //')" >>"$res/machine.txt"

# ---------- table ----------
t() { awk -v l="$1" -v f="$2" '$1 == l { print $f; exit }' "$res/times.txt"; }
old_wall=$(t old 2)
nncp_wall=$(t nncp 2)
head_label=head
[[ -n $jobs_set ]] && head_label=head-j$(echo "$jobs_set" | awk '{print $NF}')
head_wall=$(t "$head_label" 2)
{
    echo "### Fleet import: $n bundles from $nsens sensors ($pbytes bytes of pcap each)"
    echo
    sed 's/^/    /' "$res/machine.txt"
    echo
    echo "$srcbytes bytes of bundles, $paybytes bytes of pcap delivered by every contender (checked: count and BLAKE2b of every file). One run each, in the order listed; state and ingest fresh, sources in the page cache."
    echo
    echo "| contender | wall s | bundles/s | MB/s pcap | CPU s (user+sys) | vs 0.1.0 | vs NNCP |"
    echo "|---|---:|---:|---:|---:|---:|---:|"
    while read -r l wall u sy; do
        awk -v l="$l" -v w="$wall" -v u="$u" -v s="$sy" -v n="$n" -v b="$paybytes" -v o="$old_wall" -v nn="$nncp_wall" 'BEGIN {
            printf "| %s | %.2f | %.1f | %.1f | %.2f | %.2fx | %.2fx |\n", l, w, n / w, b / 1e6 / w, u + s, o / w, nn / w }'
    done <"$res/times.txt"
    echo
    echo "Labels: old = pcapferry 0.1.0 (70eb8a0); head = this tree (-jN: --jobs N; -b1: --batch 1 --jobs 1, one bundle at a time); nncp = nncp-xfer -rx + nncp-toss + sync of what it wrote; -loop = source, state and ingest on the loop image."
    if [[ -s $res/fsyncs.txt ]]; then
        echo
        echo "Sync calls per bundle (strace -f -c over an import of the first $nstrace bundles):"
        echo
        echo "| contender | sync calls | per bundle | split |"
        echo "|---|---:|---:|---|"
        awk '{printf "| %s | %d | %.2f | %s %s |\n", $1, $2, $3, $4, $5}' "$res/fsyncs.txt"
    fi
    echo
    awk -v o="$old_wall" -v nn="$nncp_wall" -v h="$head_wall" -v hl="$head_label" -v n="$n" 'BEGIN {
        printf "- %s: %.1fx the bundles/s of 0.1.0 (target 20x: %s); %.2fx NNCP (target > 1: %s)\n", hl, o / h,
            (o / h >= 20 ? "met" : "NOT met"), nn / h, (nn / h > 1 ? "met" : "NOT met") }'
    hl=$(t "head-loop${head_label#head}" 2)
    if [[ -n $hl ]]; then
        awk -v h="$head_wall" -v l="$hl" 'BEGIN {
            printf "- on the loop image: %.2f of the rate on the host disk (target >= 0.5: %s)\n", h / l, (h / l >= 0.5 ? "met" : "NOT met") }'
    fi
} >"$res/fleet.md"
cat "$res/fleet.md"
