# Shared helpers for the bench/ scripts (sourced, not run).
# Everything heavy lives under $BENCH_WORK (default /var/tmp/pcapferry-bench):
# not /tmp (often a small tmpfs) and not the checkout.
# shellcheck shell=bash
# shellcheck disable=SC2034 # KEYS, NNCP_*, STAGE are set here for the scripts that source this

BENCH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_WORK=${PF_BENCH_WORK:-/var/tmp/pcapferry-bench}
BENCH_BUILD=${PF_BENCH_BUILD:-$BENCH_ROOT/build-bench}
PF=$BENCH_BUILD/pcapferry
PCAPGEN=$BENCH_BUILD/tests/tools/pcapgen
BENCH_RUNS=${PF_BENCH_RUNS:-3}
mkdir -p "$BENCH_WORK"

# Release build with the tests' tools (pcapgen). PF_BENCH_NO_BUILD=1 skips it.
bench_build() {
    [[ ${PF_BENCH_NO_BUILD:-0} == 1 && -x $PF && -x $PCAPGEN ]] && return 0
    local log=$BENCH_WORK/build.log
    { cmake -S "$BENCH_ROOT" -B "$BENCH_BUILD" -DCMAKE_BUILD_TYPE=Release -DPCAPFERRY_TESTS=ON &&
        cmake --build "$BENCH_BUILD" -j"$(nproc)"; } >"$log" 2>&1 || {
        tail -30 "$log" >&2
        echo "bench: build failed (log: $log)" >&2
        return 1
    }
}

# 1G -> 1073741824 (K, M, G: powers of 1024, as pcapgen)
bench_bytes() {
    local s=$1 n m=1
    case $s in
    *[kK]) m=1024 ;;
    *[mM]) m=$((1 << 20)) ;;
    *[gG]) m=$((1 << 30)) ;;
    esac
    n=${s%[kKmMgG]}
    [[ $n =~ ^[0-9]+$ ]] || {
        echo "bench: bad size '$s'" >&2
        return 2
    }
    echo $((n * m))
}

# Tools the benchmarks need; name what is missing and stop.
bench_need() {
    local t missing=()
    for t in "$@"; do command -v "$t" >/dev/null || missing+=("$t"); done
    if ((${#missing[@]})); then
        echo "bench: missing tools: ${missing[*]} (apt-get install hyperfine age minisign nncp tcpreplay tcpdump zstd time jq)" >&2
        return 2
    fi
}

# The corpus directory for SIZE (built if needed).
bench_corpus() {
    "$BENCH_ROOT/bench/corpus.sh" "$1"
}

# Keys for both sides, made once per work directory: pcapferry sensor and
# central keys plus keyring, an age identity, a password-less minisign key.
bench_keys() {
    local k=$BENCH_WORK/keys
    if [[ ! -f $k/.done ]]; then
        rm -rf "$k"
        mkdir -p "$k"
        "$PF" keys generate sensor plant-a --out "$k" >/dev/null
        "$PF" keys generate central arkime --out "$k" >/dev/null
        "$PF" keys trust "$k/plant-a.pub" --keyring "$k/ring" >/dev/null
        age-keygen -o "$k/age.key" 2>/dev/null
        age-keygen -y "$k/age.key" >"$k/age.pub"
        minisign -G -W -p "$k/minisign.pub" -s "$k/minisign.key" >/dev/null
        touch "$k/.done"
    fi
    KEYS=$k
}

# A throwaway NNCP world with two nodes, sensor and central, that know each
# other; spools under $1. Sets NNCP_SENSOR / NNCP_CENTRAL (config paths) and
# NNCP_STICK (the directory standing in for the USB stick).
bench_nncp() {
    local d=$1
    mkdir -p "$d"
    if [[ ! -f $d/.done ]]; then
        nncp-cfgnew -nocomments >"$d/sensor.gen"
        nncp-cfgnew -nocomments >"$d/central.gen"
        _nncp_cfg "$d" sensor central >"$d/sensor.hjson"
        _nncp_cfg "$d" central sensor >"$d/central.hjson"
        touch "$d/.done"
    fi
    mkdir -p "$d/sensor/spool" "$d/central/spool" "$d/central/incoming" "$d/stick"
    NNCP_SENSOR=$d/sensor.hjson
    NNCP_CENTRAL=$d/central.hjson
    NNCP_STICK=$d/stick
}

_nncp_field() { awk -v k="$2:" '$1 == k {print $2; exit}' "$1"; }

_nncp_cfg() { # dir self peer
    local d=$1 me=$2 peer=$3 f
    echo "{"
    echo "  spool: $d/$me/spool"
    echo "  log: $d/$me/log"
    echo "  self: {"
    sed -n '/^  self: {/,/^  }/p' "$d/$me.gen" | sed '1d;$d'
    echo "  }"
    echo "  neigh: {"
    echo "    self: {"
    for f in id exchpub signpub noisepub; do echo "      $f: $(_nncp_field "$d/$me.gen" $f)"; done
    echo "    }"
    echo "    $peer: {"
    for f in id exchpub signpub noisepub; do echo "      $f: $(_nncp_field "$d/$peer.gen" $f)"; done
    echo "      incoming: $d/$me/incoming"
    echo "    }"
    echo "  }"
    echo "}"
}

# Wrapper used inside pipelines for the resource run: appends, per stage,
# "label start_ns end_ns wall user sys maxrss_kib" to $PF_RES (one write per
# line, O_APPEND: stages running at once do not interleave).
bench_wrapper() {
    local w=$BENCH_WORK/stage
    cat >"$w" <<'EOF2'
#!/bin/bash
t=$(mktemp "${PF_RES}.XXXXXX")
s=$(date +%s%N)
/usr/bin/time -o "$t" -f "%e %U %S %M" "$@"
rc=$?
e=$(date +%s%N)
echo "$(basename "$1") $s $e $(tail -1 "$t")" >>"$PF_RES"
rm -f "$t"
exit $rc
EOF2
    chmod +x "$w"
    STAGE=$w
}

# bench_time LABEL OUTFILE COMMAND-STRING
# One extra run of COMMAND-STRING (bash) outside hyperfine, for CPU and memory:
# /usr/bin/time -v over the whole command (user+sys of every process it
# waited for) plus, through $STAGE, each stage's own figures. The peak RSS of
# a command is the largest sum of the peaks of stages alive at the same time
# (tar | zstd | age add up; steps run one after the other do not): an upper
# bound, since each stage is counted at its own peak.
# Appends "label wall user sys rss_peak_kib rss_max_single_kib" to OUTFILE and
# the stages to OUTFILE.stages.
bench_time() {
    local label=$1 out=$2 cmd=$3 res tv
    res=$(mktemp "$BENCH_WORK/res.XXXXXX")
    tv=$(mktemp "$BENCH_WORK/tv.XXXXXX")
    : >"$res"
    PF_RES=$res STAGE=$STAGE /usr/bin/time -v -o "$tv" bash -c "$cmd" >/dev/null
    local wall user sys maxrss peak
    user=$(awk -F': ' '/User time/ {print $2}' "$tv")
    sys=$(awk -F': ' '/System time/ {print $2}' "$tv")
    maxrss=$(awk -F': ' '/Maximum resident/ {print $2}' "$tv")
    wall=$(awk -F': ' '/Elapsed \(wall/ {print $2}' "$tv" |
        awk -F: '{ s = 0; for (i = 1; i <= NF; i++) s = s * 60 + $i; print s }')
    # sweep over stage start/end events: largest concurrent sum of peaks
    peak=$(awk '{ print $2, 1, $7; print $3, -1, $7 }' "$res" | sort -k1,1n -k2,2n |
        awk '{ cur += $2 * $3; if (cur > m) m = cur } END { print m + 0 }')
    ((peak > 0)) || peak=$maxrss
    echo "$label $wall $user $sys $peak $maxrss" >>"$out"
    awk -v l="$label" '{ printf "%s %s %s %s %s %s\n", l, $1, $4, $5, $6, $7 }' "$res" >>"$out.stages"
    rm -f "$res" "$tv"
}

# Wall time of NAME in round R: bench_round DIR R NAME
bench_round() { jq -r --arg c "$3" '.results[] | select(.command == $c) | .mean' "$1/round-$2.json"; }

# Mean wall time (s) of one command in a hyperfine JSON export.
bench_mean() { jq -r --arg c "$2" '.results[] | select(.command == $c) | .mean' "$1"; }
bench_stddev() { jq -r --arg c "$2" '.results[] | select(.command == $c) | .stddev' "$1"; }

# Machine and load, for the record.
bench_machine() {
    echo "date:    $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "host:    $(nproc) CPUs, $(lscpu | awk -F': +' '/Model name/ {print $2; exit}'), $(free -h | awk '/Mem:/ {print $2}') RAM"
    echo "kernel:  $(uname -r)"
    echo "disk:    $(df -h "$BENCH_WORK" | awk 'NR == 2 {print $1, $2, "(" $5, "used), fs", ""}')$(findmnt -no FSTYPE -T "$BENCH_WORK")"
    echo "load:    $(uptime | sed 's/.*load average: //') (1, 5, 15 min)"
    echo "commit:  $(git -C "$BENCH_ROOT" rev-parse --short HEAD)$(git -C "$BENCH_ROOT" diff --quiet HEAD -- . 2>/dev/null || echo ' (+ uncommitted changes in the tree)')"
}

# ---------- interleaved rounds ----------
# Contenders are registered with bench_add NAME PREPARE COMMAND [OUTDIR]
# (bash strings; COMMAND may prefix each process with $STAGE, empty in the
# timed runs). bench_rounds DIR then:
#  1. runs each contender once under /usr/bin/time (bench_time: per-stage
#     CPU and peak RSS; also warms the page cache), recording OUTDIR's size;
#  2. runs $BENCH_RUNS rounds; each round is one hyperfine call with
#     --runs 1 over every contender, the order rotated by one each round, so
#     that contenders share the same moments of a machine whose load changes
#     (other jobs may run on it) instead of one getting a quiet minute;
#  3. writes DIR/summary.tsv: name n wall_mean wall_sd wall_min user sys
#     rss_peak_kib rss_max_kib out_bytes wall_median wall_max (times in
#     seconds over the rounds;
#     user/sys as hyperfine measures them: every process the command waited for).
B_NAME=() B_PREP=() B_CMD=() B_OUT=()
bench_add() {
    B_NAME+=("$1")
    B_PREP+=("$2")
    B_CMD+=("$3")
    B_OUT+=("${4:-}")
}

bench_rounds() {
    local dir=$1 i r n=${#B_NAME[@]}
    mkdir -p "$dir"
    rm -f "$dir"/round-*.json "$dir/res.txt" "$dir/res.txt.stages" "$dir/out.txt" "$dir/rounds.txt"
    bench_wrapper
    echo "bench: resource run (CPU per stage, peak RSS), $n commands" >&2
    for ((i = 0; i < n; i++)); do
        bash -c "${B_PREP[i]}"
        bench_time "${B_NAME[i]}" "$dir/res.txt" "${B_CMD[i]}"
        local ob=0
        [[ -n ${B_OUT[i]} && -e ${B_OUT[i]} ]] && ob=$(du -sb "${B_OUT[i]}" | awk '{print $1}')
        echo "${B_NAME[i]} $ob" >>"$dir/out.txt"
        echo "bench:   ${B_NAME[i]}: $(tail -1 "$dir/res.txt" | awk '{printf "%.2f s wall, %.2f s CPU, %.1f MiB", $2, $3 + $4, $5 / 1024}')" >&2
    done
    for ((r = 1; r <= BENCH_RUNS; r++)); do
        local args=()
        for ((i = 0; i < n; i++)); do
            local j=$(((i + r - 1) % n))
            args+=(-n "${B_NAME[j]}" --prepare "${B_PREP[j]}" "${B_CMD[j]}")
        done
        echo "bench: round $r/$BENCH_RUNS ($(uptime | sed 's/.*load average: /load /'))" >&2
        echo "$r $(uptime | sed 's/.*load average: //; s/,//g')" >>"$dir/rounds.txt"
        env -u STAGE hyperfine --runs 1 --shell=bash --style none \
            --export-json "$dir/round-$r.json" "${args[@]}" >/dev/null
    done
    jq -r -s '[.[].results[]] | group_by(.command)[] |
        (map(.mean)) as $w | ($w | add / length) as $m | ($w | sort) as $s | ($w | length) as $n |
        [.[0].command, $n, $m,
         (if $n > 1 then (($w | map((. - $m) * (. - $m)) | add) / ($n - 1) | sqrt) else 0 end),
         ($w | min), (map(.user) | add / length), (map(.system) | add / length),
         (if $n % 2 == 1 then $s[($n - 1) / 2] else ($s[$n / 2 - 1] + $s[$n / 2]) / 2 end),
         ($w | max)] | @tsv' \
        "$dir"/round-*.json | sort >"$dir/.walls"
    awk 'NR == FNR { rss[$1] = $5 "\t" $6; next }
         FILENAME ~ /out.txt$/ { ob[$1] = $2; next }
         { print $1 "\t" $2 "\t" $3 "\t" $4 "\t" $5 "\t" $6 "\t" $7 "\t" rss[$1] "\t" (($1 in ob) ? ob[$1] : 0) "\t" $8 "\t" $9 }' \
        "$dir/res.txt" "$dir/out.txt" "$dir/.walls" >"$dir/summary.tsv"
    rm -f "$dir/.walls"
}

# Field of summary.tsv for NAME: bench_get DIR NAME FIELD (1-based after name:
# 2 n, 3 wall mean, 4 sd, 5 min, 6 user, 7 sys (means), 8 rss_peak, 9 rss_max,
# 10 out_bytes, 11 wall median, 12 wall max)
bench_get() { awk -F'\t' -v n="$2" -v f="$3" '$1 == n { print $f; exit }' "$1/summary.tsv"; }
