#!/usr/bin/env bash
# pcapferry bundle: usage errors, create/inspect/verify/open round trip,
# sequence state chaining, and the exit status of every kind of failure
# (75 incomplete, 1 rejected, 2 usage/environment), with the promise that a
# failed create or open leaves nothing behind.
# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.sh
. "${PF_TESTLIB:-$(dirname "${BASH_SOURCE[0]}")/lib.sh}"

require_binaries
require_json
require_cmd b2sum
HAVE_TCPDUMP=0
command -v tcpdump >/dev/null 2>&1 && HAVE_TCPDUMP=1

T=$PF_TMP
setup_keys edge-01 central1
expect_exit 0 -- "$PCAPFERRY" keys show "$CENTRAL_PUB"
CENTRAL_ID=$(sed -n 's/^key id: *//p' "$PF_OUT")

make_pcap a.pcap --packets 300 --seed 7
make_pcap b.pcapng --packets 120 --seed 8 --pcapng --mix dns
make_pcap c.pcap --packets 80 --seed 9 --nano --big-endian --mix tls
A=$PF_IN/a.pcap
INPUTS=("$PF_IN/a.pcap" "$PF_IN/b.pcapng" "$PF_IN/c.pcap")
NAME_RE='^edge-01-[0-9]{10}-[0-9]{8}T[0-9]{6}Z\.pcapferry$'

PF=("$PCAPFERRY")
CREATE=("$PCAPFERRY" bundle create --key "$SENSOR_KEY" --to "$CENTRAL_PUB")
OPEN=("$PCAPFERRY" bundle open --key "$CENTRAL_KEY" --keyring "$KEYRING")

# tcpdump_same A B: tcpdump prints the same for both (run from each file's
# directory so the "reading from file NAME" line matches when names do).
tcpdump_same() {
    local a=$1 b=$2
    if [[ "$HAVE_TCPDUMP" != 1 ]]; then
        echo "note: tcpdump not installed; not comparing its output for $b"
        return 0
    fi
    (cd "$(dirname "$a")" && tcpdump -n -r "$(basename "$a")") >"$T/td.a" 2>&1
    (cd "$(dirname "$b")" && tcpdump -n -r "$(basename "$b")") >"$T/td.b" 2>&1
    if [[ ! -s "$T/td.a" ]]; then
        fail "tcpdump printed nothing for $a"
        return 1
    fi
    expect_same_file "tcpdump output of $(basename "$b") matches the original" "$T/td.a" "$T/td.b"
}

# open_fails CODE TEXT OUTDIR BUNDLE [open options]: bundle open fails with
# CODE, says TEXT, and OUTDIR has no new entry afterwards.
open_fails() {
    local code=$1 text=$2 out=$3 bundle=$4
    shift 4
    mkdir -p "$out"
    local before
    before=$(dir_listing "$out")
    expect_exit "$code" -- "$PCAPFERRY" bundle open --key "$CENTRAL_KEY" --keyring "$KEYRING" "$@" \
        --out "$out" "$bundle"
    expect_stderr_contains "$text"
    expect_listing "failed open adds nothing to $(basename "$out")" "$out" "$before"
}

# ---------------------------------------------------------------- usage
section "usage errors exit 2 and create nothing"
U=$T/usage-out
usage_err() {
    local text=$1
    shift
    [[ "${1:-}" == "--" ]] && shift
    expect_exit 2 -- "$PCAPFERRY" bundle "$@"
    expect_stderr_contains "$text"
}
K=(--key "$SENSOR_KEY")
TO=(--to "$CENTRAL_PUB")
usage_err "needs --key, --to and --out" -- create "${TO[@]}" --out "$U" --seq 1 "$A"
usage_err "needs --key, --to and --out" -- create "${K[@]}" --out "$U" --seq 1 "$A"
usage_err "needs --key, --to and --out" -- create "${K[@]}" "${TO[@]}" --seq 1 "$A"
usage_err "exactly one of --seq N or --state DIR" -- create "${K[@]}" "${TO[@]}" --out "$U" --seq 1 --state "$T/usage-state" "$A"
usage_err "exactly one of --seq N or --state DIR" -- create "${K[@]}" "${TO[@]}" --out "$U" "$A"
usage_err "at least one capture file" -- create "${K[@]}" "${TO[@]}" --out "$U" --seq 1
for bad in 0 -1 abc 1x ""; do
    usage_err "--seq" -- create "${K[@]}" "${TO[@]}" --out "$U" --seq "$bad" "$A"
done
for bad in 0 20 abc -3 3.5 ""; do
    usage_err "--level" -- create "${K[@]}" "${TO[@]}" --out "$U" --seq 1 --level "$bad" "$A"
done
usage_err "--threads" -- create "${K[@]}" "${TO[@]}" --out "$U" --seq 1 --threads 65 "$A"
usage_err "bad option" -- create "${K[@]}" "${TO[@]}" --out "$U" --seq 1 --frobnicate "$A"
usage_err "unknown bundle command 'frobnicate'" -- frobnicate "$A"
usage_err "usage:"
usage_err "inspect takes one bundle" -- inspect
usage_err "inspect takes one bundle" -- inspect "$A" "$A"
usage_err "needs --keyring" -- verify "$A"
usage_err "at least one bundle" -- verify --keyring "$KEYRING"
usage_err "needs --key, --keyring and --out" -- open --keyring "$KEYRING" --out "$U" "$A"
usage_err "needs --key, --keyring and --out" -- open --key "$CENTRAL_KEY" --out "$U" "$A"
usage_err "needs --key, --keyring and --out" -- open --key "$CENTRAL_KEY" --keyring "$KEYRING" "$A"
usage_err "open takes one bundle" -- open --key "$CENTRAL_KEY" --keyring "$KEYRING" --out "$U" "$A" "$A"
usage_err "--to takes the central host's public key" -- create "${K[@]}" --to "$SENSOR_PUB" --out "$U" --seq 1 "$A"
expect_false "usage errors create no output directory" -- test -e "$U"
expect_false "usage errors create no state directory" -- test -e "$T/usage-state"
expect_exit 0 -- "$PCAPFERRY" bundle --help
expect_stdout_contains "Exit status"

# ---------------------------------------------------------------- create
section "create: prints exactly the bundle path"
O1=$T/out1
expect_exit 0 -- "${CREATE[@]}" --out "$O1" --seq 1 "${INPUTS[@]}" || die "bundle create failed"
expect_eq "create prints one line" 1 "$(wc -l <"$PF_OUT")"
B1=$(cat "$PF_OUT")
name1=$(basename "$B1")
expect_eq "printed path" "$O1/$name1" "$B1"
if [[ "$name1" =~ $NAME_RE ]]; then pass "bundle name $name1"; else fail "bundle name '$name1' does not match $NAME_RE"; fi
expect_true "bundle exists" -- test -f "$B1"
expect_listing "out dir holds only the bundle (no temp file)" "$O1" "$name1"
expect_stderr_contains "sealed 3 file(s), 500 packets"
expect_stderr_contains "seq 1"

section "inspect"
expect_exit 0 -- "${PF[@]}" bundle inspect "$B1"
expect_stdout_matches '^sensor: +edge-01$'
expect_stdout_matches '^seq: +1$'
expect_stdout_matches "^signing key id: +$SENSOR_ID$"
expect_stdout_matches "^recipient key id: +$CENTRAL_ID$"
expect_stdout_matches '^previous bundle: +none named$'
expect_stdout_contains "($(file_size "$B1") bytes)"
expect_exit 0 -- "${PF[@]}" bundle inspect --json "$B1"
cp "$PF_OUT" "$T/inspect1.json"
expect_true "inspect --json is valid JSON" -- json_valid "$T/inspect1.json"
expect_eq "json sensor" edge-01 "$(json_get "$T/inspect1.json" sensor)"
expect_eq "json seq" 1 "$(json_get "$T/inspect1.json" seq)"
expect_eq "json prev_seq" 0 "$(json_get "$T/inspect1.json" prev_seq)"
expect_eq "json prev_hash" null "$(json_get "$T/inspect1.json" prev_hash)"
expect_eq "json signing_key_id" "$SENSOR_ID" "$(json_get "$T/inspect1.json" signing_key_id)"
expect_eq "json recipient_key_id" "$CENTRAL_ID" "$(json_get "$T/inspect1.json" recipient_key_id)"
expect_eq "json file_size" "$(file_size "$B1")" "$(json_get "$T/inspect1.json" file_size)"
expect_eq "json file" "$B1" "$(json_get "$T/inspect1.json" file)"

section "verify"
expect_exit 0 -- "${PF[@]}" bundle verify --keyring "$KEYRING" "$B1"
expect_eq "verify prints one line" 1 "$(wc -l <"$PF_OUT")"
expect_stdout_matches "^$B1: OK sensor=edge-01 seq=1 bytes=$(file_size "$B1") hash=[0-9a-f]{64}$"

section "open: byte-identical captures plus the signed manifest"
D1=$T/open1
expect_exit 0 -- "${OPEN[@]}" --out "$D1" "$B1" || die "bundle open failed"
expect_eq "open prints one line per capture" 3 "$(wc -l <"$PF_OUT")"
expect_stdout_matches "^$D1/a\.pcap	[0-9]+ bytes	300 packets	complete$"
expect_stderr_contains "3 file(s) verified"
M1=$D1/edge-01-0000000001.manifest.json
expected_listing=$(printf '%s\n' a.pcap b.pcapng c.pcap edge-01-0000000001.manifest.json \
    edge-01-0000000001.manifest.sig | sort)
expect_listing "opened directory holds the captures, manifest and signature only" "$D1" "$expected_listing"
expect_eq "manifest signature size" 64 "$(file_size "$D1/edge-01-0000000001.manifest.sig" 2>/dev/null)"
expect_true "manifest is valid JSON" -- json_valid "$M1"
expect_eq "manifest sensor" edge-01 "$(json_get "$M1" sensor)"
expect_eq "manifest seq" 1 "$(json_get "$M1" seq)"
expect_eq "manifest header hash = inspect's" "$(json_get "$T/inspect1.json" header_blake2b_256)" \
    "$(json_get "$M1" header_blake2b_256)"
expect_eq "manifest file count" 3 "$(json_get "$M1" totals files)"
expect_eq "manifest packet total" 500 "$(json_get "$M1" totals packets)"
declare -A PACKETS=([a.pcap]=300 [b.pcapng]=120 [c.pcap]=80)
declare -A FORMAT=([a.pcap]=pcap [b.pcapng]=pcapng [c.pcap]=pcap)
min_ns=""
for f in "${INPUTS[@]}"; do
    n=$(basename "$f")
    want=$(b2_256 "$f")
    manifest_load "$M1" "$n"
    expect_same_file "$n opened byte-identical" "$f" "$D1/$n"
    expect_eq "b2sum of opened $n" "$want" "$(b2_256 "$D1/$n")"
    expect_eq "manifest blake2b_256 of $n = b2sum -l 256 of the original" "$want" \
        "${MF[blake2b_256]-}"
    expect_eq "manifest size of $n" "$(file_size "$f")" "${MF[size]-}"
    expect_eq "manifest packets of $n" "${PACKETS[$n]}" "${MF[packets]-}"
    expect_eq "manifest format of $n" "${FORMAT[$n]}" "${MF[format]-}"
    expect_eq "manifest read_status of $n" complete "${MF[read_status]-}"
    expect_eq "manifest read_error of $n" null "${MF[read_error]-}"
    ns=${MF[min_ts_ns]-0}
    if [[ -z "$min_ns" ]] || ((ns < min_ns)); then min_ns=$ns; fi
    tcpdump_same "$f" "$D1/$n"
done
expect_eq "c.pcap is recorded as big-endian" big "$(manifest_file_field "$M1" c.pcap byte_order)"
expect_eq "c.pcap is recorded as nanosecond" ns "$(manifest_file_field "$M1" c.pcap ts_resolution)"
expect_eq "bundle name carries the first packet's time" \
    "$(date -u -d "@$((min_ns / 1000000000))" +%Y%m%dT%H%M%SZ)" \
    "$(sed -E 's/^.*-([0-9]{8}T[0-9]{6}Z)\.pcapferry$/\1/' <<<"$name1")"

section "--state: seq 1, 2, 3 chained by prev_seq and prev_hash"
S=$T/state
O2=$T/out-chain
declare -a CHAIN HASH
for i in 1 2 3; do
    expect_exit 0 -- "${CREATE[@]}" --out "$O2" --state "$S" --level 1 "$A" || die "create --state #$i failed"
    CHAIN[i]=$(cat "$PF_OUT")
    expect_exit 0 -- "${PF[@]}" bundle inspect --json "${CHAIN[i]}"
    cp "$PF_OUT" "$T/chain$i.json"
    expect_eq "bundle #$i seq" "$i" "$(json_get "$T/chain$i.json" seq)"
    expect_eq "bundle #$i prev_seq" "$((i - 1))" "$(json_get "$T/chain$i.json" prev_seq)"
    expect_exit 0 -- "${PF[@]}" bundle verify --keyring "$KEYRING" "${CHAIN[i]}"
    HASH[i]=$(sed -n 's/.* hash=\([0-9a-f]\{64\}\)$/\1/p' "$PF_OUT")
    [[ "${HASH[i]}" =~ ^[0-9a-f]{64}$ ]] || fail "no hash= in verify output for bundle #$i"
done
expect_eq "bundle #1 names no predecessor" null "$(json_get "$T/chain1.json" prev_hash)"
expect_eq "prev_hash of #2 = verify hash of #1" "${HASH[1]}" "$(json_get "$T/chain2.json" prev_hash)"
expect_eq "prev_hash of #3 = verify hash of #2" "${HASH[2]}" "$(json_get "$T/chain3.json" prev_hash)"
expect_false "hashes of #1 and #2 differ" -- test "${HASH[1]}" = "${HASH[2]}"
expect_eq "three distinct bundles" 3 "$(dir_listing "$O2" | grep -cE "$NAME_RE")"
expect_eq "chain out dir holds bundles only" 3 "$(dir_listing "$O2" | wc -l)"
expect_exit 0 -- "${OPEN[@]}" --out "$T/open-chain3" "${CHAIN[3]}"
expect_eq "opened manifest #3 prev_seq" 2 "$(json_get "$T/open-chain3/edge-01-0000000003.manifest.json" prev_seq)"
expect_eq "opened manifest #3 prev_hash" "${HASH[2]}" \
    "$(json_get "$T/open-chain3/edge-01-0000000003.manifest.json" prev_hash)"
expect_exit 0 -- "${PF[@]}" bundle inspect "${CHAIN[2]}"
expect_stdout_matches "^previous bundle: +seq 1, ${HASH[1]}$"

# ---------------------------------------------------------------- failures
section "truncated bundles are incomplete (75), for verify and open"
size1=$(file_size "$B1")
for cut in 0 10 12 100 $((size1 / 2)) $((size1 - 200)) $((size1 - 1)); do
    tb=$T/trunc/$cut/$name1
    mkdir -p "$(dirname "$tb")"
    head -c "$cut" "$B1" >"$tb"
    expect_exit 75 -- "${PF[@]}" bundle verify --keyring "$KEYRING" "$tb"
    expect_stdout_contains "$tb: INCOMPLETE"
    open_fails 75 "incomplete" "$T/open-trunc-$cut" "$tb"
done

section "a short file that cannot begin a bundle is garbage (1), not incomplete"
GB=$T/garbage/short.pcapferry
mkdir -p "$(dirname "$GB")"
printf 'GARBAGE!!\n' >"$GB"
expect_exit 1 -- "${PF[@]}" bundle verify --keyring "$KEYRING" "$GB"
expect_stdout_contains "$GB: REJECTED"
open_fails 1 "not a pcapferry bundle" "$T/open-garbage" "$GB"

section "a modified bundle is rejected (1)"
for off in 40 $((size1 / 2)) $((size1 - 1)); do
    fb=$T/flip/$off/$name1
    mkdir -p "$(dirname "$fb")"
    cp "$B1" "$fb"
    flip_byte "$fb" "$off" || fail "cannot flip byte $off"
    expect_false "byte $off differs" -- cmp -s "$B1" "$fb"
    expect_exit 1 -- "${PF[@]}" bundle verify --keyring "$KEYRING" "$fb"
    expect_stdout_contains "$fb: REJECTED"
    open_fails 1 "$fb" "$T/open-flip-$off" "$fb"
done
FLIPPED=$T/flip/$((size1 / 2))/$name1
XB=$T/extra/$name1
mkdir -p "$(dirname "$XB")"
{ cat "$B1"; printf 'x'; } >"$XB"
expect_exit 1 -- "${PF[@]}" bundle verify --keyring "$KEYRING" "$XB"
expect_stdout_contains "$XB: REJECTED"
open_fails 1 "unexpected data after the trailer" "$T/open-extra" "$XB"
expect_exit 1 -- "${PF[@]}" bundle verify --keyring "$KEYRING" "$A"
expect_stdout_contains "REJECTED"

section "untrusted sensor, wrong central key"
mkdir -p "$T/empty-ring"
expect_exit 1 -- "${PF[@]}" bundle verify --keyring "$T/empty-ring" "$B1"
expect_stdout_contains "not trusted"
open_fails 1 "not trusted" "$T/open-untrusted" "$B1" --keyring "$T/empty-ring"
expect_exit 0 -- "${PF[@]}" keys generate central central2 --out "$T/keys2"
open_fails 1 "another central key" "$T/open-other" "$B1" --key "$T/keys2/central2.key"
# A keyring directory that does not exist is a configuration error, not a
# verdict on the bundle: exit 1 would make an importer set good bundles aside.
expect_exit 2 -- "${PF[@]}" bundle verify --keyring "$T/no-such-ring" "$B1"
expect_stdout_contains "ERROR"

section "verify several bundles: one line each, exit status is the worst"
TB=$T/trunc/$((size1 / 2))/$name1
multi() {
    local code=$1
    shift
    expect_exit "$code" -- "${PF[@]}" bundle verify --keyring "$KEYRING" "$@"
    expect_eq "one line per bundle" "$#" "$(wc -l <"$PF_OUT")"
    local i=1 b
    for b in "$@"; do
        expect_true "line $i names $b" -- test "$(sed -n "${i}p" "$PF_OUT" | cut -c1-$((${#b} + 1)))" = "$b:"
        i=$((i + 1))
    done
}
multi 75 "$B1" "$TB"
expect_stdout_contains "$B1: OK"
multi 75 "$TB" "$B1"
expect_stdout_contains "$B1: OK"
multi 1 "$B1" "$FLIPPED" "$TB"
expect_stdout_contains "$TB: INCOMPLETE"
multi 1 "$TB" "$FLIPPED"
multi 2 "$FLIPPED" "$T/no-such.pcapferry" "$B1" "$TB"
expect_stdout_contains "$T/no-such.pcapferry: ERROR"
expect_stdout_contains "$B1: OK"
multi 0 "$B1" "${CHAIN[1]}" "${CHAIN[2]}"

section "open never overwrites"
D2=$T/open-collide
mkdir -p "$D2"
echo "precious, not a capture" >"$D2/b.pcapng"
cp "$D2/b.pcapng" "$T/precious.orig"
open_fails 2 "already exists" "$D2" "$B1"
expect_stderr_contains "b.pcapng"
expect_same_file "existing file untouched" "$T/precious.orig" "$D2/b.pcapng"
D3=$T/open-collide-manifest
mkdir -p "$D3"
echo x >"$D3/edge-01-0000000001.manifest.sig"
open_fails 2 "already exists" "$D3" "$B1"
# opening the same bundle twice into one directory
expect_exit 0 -- "${OPEN[@]}" --out "$T/open-twice" "$B1"
listing=$(dir_listing "$T/open-twice")
open_fails 2 "already exists" "$T/open-twice" "$B1"
expect_listing "second open changed nothing" "$T/open-twice" "$listing"
expect_same_file "a.pcap still the first open's" "$A" "$T/open-twice/a.pcap"

section "unreadable capture: refused unless --allow-unreadable"
printf 'This is a text file, not a capture. It is long enough for a header.\n' >"$PF_IN/notes.txt"
O3=$T/out-unreadable
mkdir -p "$O3"
expect_exit 1 -- "${CREATE[@]}" --out "$O3" --seq 5 "$PF_IN/notes.txt"
expect_stderr_contains "$PF_IN/notes.txt"
expect_stderr_contains "unknown file format"
expect_stderr_contains "--allow-unreadable"
expect_dir_empty "$O3"
expect_exit 1 -- "${CREATE[@]}" --out "$O3" --state "$T/state-unreadable" "$A" "$PF_IN/notes.txt"
expect_stderr_contains "$PF_IN/notes.txt"
expect_dir_empty "$O3"
: >"$PF_IN/empty.pcap"
expect_exit 1 -- "${CREATE[@]}" --out "$O3" --seq 5 "$PF_IN/empty.pcap"
expect_stderr_contains "$PF_IN/empty.pcap"
expect_dir_empty "$O3"
expect_exit 0 -- "${CREATE[@]}" --out "$O3" --seq 5 --allow-unreadable "$A" "$PF_IN/notes.txt" "$PF_IN/empty.pcap"
B3=$(cat "$PF_OUT")
expect_stderr_contains "unreadable"
expect_exit 0 -- "${OPEN[@]}" --out "$T/open-unreadable" "$B3"
M3=$T/open-unreadable/edge-01-0000000005.manifest.json
for n in notes.txt empty.pcap; do
    expect_same_file "unreadable $n carried byte-identical" "$PF_IN/$n" "$T/open-unreadable/$n"
    expect_eq "$n read_status" unreadable "$(manifest_file_field "$M3" "$n" read_status)"
    expect_eq "$n packets" 0 "$(manifest_file_field "$M3" "$n" packets)"
    expect_eq "$n blake2b_256" "$(b2_256 "$PF_IN/$n")" "$(manifest_file_field "$M3" "$n" blake2b_256)"
    expect_false "$n has a read_error" -- test "$(manifest_file_field "$M3" "$n" read_error)" = null
done
expect_true "notes.txt read_error is libpcap's reason" -- \
    grep -q "unknown file format" <<<"$(manifest_file_field "$M3" notes.txt read_error)"
expect_eq "a.pcap beside them is complete" complete "$(manifest_file_field "$M3" a.pcap read_status)"

section "capture with a damaged tail is carried and marked damaged"
head -c "$(($(file_size "$A") - 30))" "$A" >"$PF_IN/cut.pcap"
expect_exit 0 -- "${CREATE[@]}" --out "$T/out-cut" --seq 6 "$PF_IN/cut.pcap"
B4=$(cat "$PF_OUT")
expect_stderr_contains "damaged"
expect_exit 0 -- "${OPEN[@]}" --out "$T/open-cut" "$B4"
M4=$T/open-cut/edge-01-0000000006.manifest.json
expect_same_file "damaged capture carried byte-identical" "$PF_IN/cut.pcap" "$T/open-cut/cut.pcap"
expect_eq "cut.pcap read_status" damaged "$(manifest_file_field "$M4" cut.pcap read_status)"
expect_true "cut.pcap read_error says truncated" -- \
    grep -q "truncated" <<<"$(manifest_file_field "$M4" cut.pcap read_error)"
expect_eq "cut.pcap packets" 299 "$(manifest_file_field "$M4" cut.pcap packets)"
tcpdump_same "$PF_IN/cut.pcap" "$T/open-cut/cut.pcap"

section "file names a bundle cannot carry"
O5=$T/out-names
mkdir -p "$O5" "$PF_IN/d1" "$PF_IN/d2"
cp "$A" "$PF_IN/d1/same.pcap"
cp "$PF_IN/b.pcapng" "$PF_IN/d2/same.pcap"
cp "$A" "$PF_IN/.hidden.pcap"
cp "$A" "$PF_IN/manifest.json"
expect_exit 2 -- "${CREATE[@]}" --out "$O5" --seq 1 "$PF_IN/d1/same.pcap" "$PF_IN/d2/same.pcap"
expect_stderr_contains "same name"
expect_dir_empty "$O5"
expect_exit 2 -- "${CREATE[@]}" --out "$O5" --seq 1 "$A" "$PF_IN/.hidden.pcap"
expect_stderr_contains "$PF_IN/.hidden.pcap"
expect_dir_empty "$O5"
expect_exit 2 -- "${CREATE[@]}" --out "$O5" --seq 1 "$PF_IN/manifest.json"
expect_dir_empty "$O5"
expect_exit 2 -- "${CREATE[@]}" --out "$O5" --seq 1 "$PF_IN/d1"
expect_stderr_contains "not a regular file"
expect_exit 2 -- "${CREATE[@]}" --out "$O5" --seq 1 "$PF_IN/no-such.pcap"
expect_stderr_contains "$PF_IN/no-such.pcap"
expect_dir_empty "$O5"

summary
