#!/usr/bin/env bash
# Every real-world capture in PF_SHARED_PCAPS (whatever files are there: no
# names or counts are assumed) goes through bundle create and bundle open.
#
# libpcap itself is the judge of what is readable, asked through tcpdump:
#  * tcpdump prints "reading from file NAME, link-type ..." right after
#    pcap_open_offline() succeeds, so a file without that line is one libpcap
#    cannot open at all; tcpdump's "tcpdump: REASON" line is libpcap's reason.
#  * an error that libpcap reports while reading records reaches tcpdump
#    through pcap_loop ("tcpdump: pcap_loop: REASON"): the file has a damaged
#    tail after the packets it printed. (tcpdump exits 1 in both cases, so the
#    exit status alone cannot tell them apart.)
#  * any other error after the open (e.g. "unknown data link type") is
#    tcpdump's own: libpcap read the file fine.
# Readable files must round-trip byte-identically with the manifest agreeing
# with libpcap (packet count, damaged + read_error); unreadable ones must be
# refused with libpcap's reason, and carried when --allow-unreadable is given.
# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.sh
. "${PF_TESTLIB:-$(dirname "${BASH_SOURCE[0]}")/lib.sh}"

[[ -d "$PF_SHARED_PCAPS" ]] || skip "../shared/testdata not present (only in CI)"
require_binaries
require_json
require_cmd tcpdump b2sum

T=$PF_TMP
SENSOR_NAME=shared-sensor
setup_keys "$SENSOR_NAME" central1

manifest_name() {
    printf '%s-%010d.manifest.json' "$SENSOR_NAME" "$1"
}

# tcpdump_run FILE OUTFILE: tcpdump -n -r as run from the file's directory,
# so the output names the file the same way for the original and the copy.
# stdout and stderr go to OUTFILE.out / OUTFILE.err.
tcpdump_run() {
    local dir name
    dir=$(dirname "$1")
    name=$(basename "$1")
    (cd "$dir" && tcpdump -n -r "./$name") >"$2.out" 2>"$2.err"
}

# Packet count as libpcap delivers it. tcpdump --count needs a printer for
# the link type; when tcpdump has none, ask libpcap directly through python.
libpcap_count() {
    local n
    n=$(tcpdump -n -r "$1" --count 2>/dev/null | sed -nE 's/^([0-9]+) packets?$/\1/p')
    if [[ -n "$n" ]]; then
        echo "$n"
        return 0
    fi
    command -v python3 >/dev/null 2>&1 || return 1
    python3 - "$1" <<'EOF'
import ctypes, ctypes.util, sys
lib = ctypes.CDLL(ctypes.util.find_library("pcap") or "libpcap.so.0.8")
lib.pcap_open_offline.restype = ctypes.c_void_p
lib.pcap_open_offline.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
lib.pcap_next_ex.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
lib.pcap_close.argtypes = [ctypes.c_void_p]
err = ctypes.create_string_buffer(512)
p = lib.pcap_open_offline(sys.argv[1].encode(), err)
if not p:
    sys.exit(1)
h, d, n = ctypes.c_void_p(), ctypes.c_void_p(), 0
while lib.pcap_next_ex(p, ctypes.byref(h), ctypes.byref(d)) == 1:
    n += 1
lib.pcap_close(p)
print(n)
EOF
}

shopt -s nullglob
FILES=()
for f in "$PF_SHARED_PCAPS"/*; do
    case $(basename "$f") in INDEX.tsv | README.md) continue ;; esac
    if [[ ! -f "$f" ]]; then
        echo "note: $(basename "$f") is not a regular file; not a capture"
        continue
    fi
    FILES+=("$f")
done
((${#FILES[@]} > 0)) || die "no capture files in $PF_SHARED_PCAPS"
echo "testing ${#FILES[@]} files from $PF_SHARED_PCAPS"

READABLE=()
total_packets=0
counts_known=1

# check_file SEQ FILE: one capture, one bundle.
check_file() {
    local seq=$1 f=$2
    local name w td reason loop_err man bundle packets sum
    name=$(basename "$f")
    w=$T/files/$seq
    mkdir -p "$w/out" "$w/open"
    td=$w/td-orig
    tcpdump_run "$f" "$td"
    reason=$(sed -n 's/^tcpdump: //p' "$td.err" | head -n 1)
    loop_err=$(sed -n 's/^tcpdump: pcap_loop: //p' "$td.err" | head -n 1)
    man=$w/open/$(manifest_name "$seq")

    if ! grep -q '^reading from file ' "$td.err"; then
        # ------------------------------------------------ libpcap cannot open it
        if [[ -z "$reason" ]]; then
            fail "$name: tcpdump neither opened the file nor said why"
            pf_show "tcpdump stderr" "$td.err"
            return
        fi
        echo "$name: unreadable by libpcap ($reason)"
        expect_exit 1 -- "$PCAPFERRY" bundle create --key "$SENSOR_KEY" --to "$CENTRAL_PUB" \
            --out "$w/out" --seq "$seq" "$f"
        expect_stderr_contains "$f"
        expect_stderr_contains "$reason"
        expect_dir_empty "$w/out"
        expect_exit 0 -- "$PCAPFERRY" bundle create --key "$SENSOR_KEY" --to "$CENTRAL_PUB" \
            --out "$w/out" --seq "$seq" --allow-unreadable "$f" || return
        bundle=$(cat "$PF_OUT")
        expect_exit 0 -- "$PCAPFERRY" bundle open --key "$CENTRAL_KEY" --keyring "$KEYRING" \
            --out "$w/open" "$bundle" || return
        manifest_load "$man" "$name"
        expect_eq "$name: listed once in the manifest" 1 "${MF[_count]-}"
        expect_same_file "$name: carried byte-identical" "$f" "$w/open/$name"
        expect_eq "$name: manifest blake2b_256" "$(b2_256 "$f")" "${MF[blake2b_256]-}"
        expect_eq "$name: manifest read_status" unreadable "${MF[read_status]-}"
        expect_eq "$name: manifest packets" 0 "${MF[packets]-}"
        expect_eq "$name: manifest read_error" "$reason" "${MF[read_error]-}"
    else
        # ------------------------------------------------ libpcap reads it
        READABLE+=("$f")
        packets=$(libpcap_count "$f")
        if [[ -n "$loop_err" ]]; then
            echo "$name: readable, ${packets:-?} packets, then damaged ($loop_err)"
        else
            echo "$name: readable, ${packets:-?} packets"
        fi
        expect_exit 0 -- "$PCAPFERRY" bundle create --key "$SENSOR_KEY" --to "$CENTRAL_PUB" \
            --out "$w/out" --seq "$seq" "$f" || return
        bundle=$(cat "$PF_OUT")
        expect_listing "$name: out dir holds the bundle only" "$w/out" "$(basename "$bundle")"
        expect_exit 0 -- "$PCAPFERRY" bundle open --key "$CENTRAL_KEY" --keyring "$KEYRING" \
            --out "$w/open" "$bundle" || return
        manifest_load "$man" "$name"
        expect_eq "$name: listed once in the manifest" 1 "${MF[_count]-}"
        expect_same_file "$name: opened byte-identical" "$f" "$w/open/$name"
        sum=$(b2_256 "$f")
        expect_eq "$name: b2sum of the opened file" "$sum" "$(b2_256 "$w/open/$name")"
        expect_eq "$name: manifest blake2b_256" "$sum" "${MF[blake2b_256]-}"
        expect_eq "$name: manifest size" "$(file_size "$f")" "${MF[size]-}"
        tcpdump_run "$w/open/$name" "$w/td-open"
        expect_same_file "$name: tcpdump stdout of the opened file" "$td.out" "$w/td-open.out"
        expect_same_file "$name: tcpdump stderr of the opened file" "$td.err" "$w/td-open.err"
        if [[ -n "$packets" ]]; then
            expect_eq "$name: manifest packets = libpcap's count" "$packets" \
                "${MF[packets]-}"
            total_packets=$((total_packets + packets))
        else
            counts_known=0
            echo "note: $name: no way to count its packets independently (no python3)"
        fi
        if [[ -n "$loop_err" ]]; then
            expect_eq "$name: manifest read_status" damaged "${MF[read_status]-}"
            expect_eq "$name: manifest read_error = libpcap's" "$loop_err" \
                "${MF[read_error]-}"
        else
            expect_eq "$name: manifest read_status" complete "${MF[read_status]-}"
            expect_eq "$name: manifest read_error" null "${MF[read_error]-}"
        fi
    fi
}

seq=0
for f in "${FILES[@]}"; do
    seq=$((seq + 1))
    failed_before=$PF_FAILED
    check_file "$seq" "$f"
    if ((PF_FAILED > failed_before)); then
        echo "FAIL: $(basename "$f"): $((PF_FAILED - failed_before)) check(s) failed"
    fi
done

section "all ${#READABLE[@]} readable files in one bundle"
if ((${#READABLE[@]} == 0)); then
    echo "note: no readable file in the set"
else
    all=$T/all
    mkdir -p "$all/out" "$all/open"
    if expect_exit 0 -- "$PCAPFERRY" bundle create --key "$SENSOR_KEY" --to "$CENTRAL_PUB" \
        --out "$all/out" --seq 100000 "${READABLE[@]}"; then
        bundle=$(cat "$PF_OUT")
        expect_exit 0 -- "$PCAPFERRY" bundle verify --keyring "$KEYRING" "$bundle"
        if expect_exit 0 -- "$PCAPFERRY" bundle open --key "$CENTRAL_KEY" --keyring "$KEYRING" \
            --out "$all/open" "$bundle"; then
            man=$all/open/$(manifest_name 100000)
            expect_eq "one output line per file" "${#READABLE[@]}" "$(wc -l <"$PF_OUT")"
            expect_eq "manifest lists every file" "${#READABLE[@]}" "$(json_get "$man" totals files)"
            if ((counts_known)); then
                expect_eq "manifest packet total" "$total_packets" "$(json_get "$man" totals packets)"
            fi
            for f in "${READABLE[@]}"; do
                expect_same_file "$(basename "$f"): byte-identical from the shared bundle" \
                    "$f" "$all/open/$(basename "$f")"
            done
            expect_eq "nothing else in the open dir" $((${#READABLE[@]} + 2)) \
                "$(dir_listing "$all/open" | wc -l)"
        fi
    fi
fi

summary
