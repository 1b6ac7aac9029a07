#!/usr/bin/env bash
# The Arkime gate over every real capture in ../shared/testdata/pcaps: each
# is sealed by a sensor (whatever it is, --allow-unreadable) and imported.
# Every file must end delivered with the packets Arkime can read, held with
# a reason, or empty; what was delivered is checked with tools nobody here
# wrote (tcpdump, capinfos, tshark): it reads cleanly, every packet has
# caplen == len, and its link-type field is one Arkime's capture reads.
# GATE_TABLE=FILE writes the markdown table docs/IMPORT.md shows.
# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.sh
. "${PF_TESTLIB:-$(dirname "${BASH_SOURCE[0]}")/lib.sh}"

[[ -d "$PF_SHARED_PCAPS" ]] || skip "../shared/testdata not present (only in CI)"
require_binaries
require_cmd tcpdump capinfos tshark sqlite3 od

T=$PF_TMP
setup_keys gate-sensor central1
S=$SENSOR
OUT=$T/out ST=$T/state ING=$T/ingest
mkdir -p "$OUT" "$ING"

shopt -s nullglob
FILES=()
for f in "$PF_SHARED_PCAPS"/*; do
    case $(basename "$f") in INDEX.tsv | README.md) continue ;; esac
    [[ -f "$f" ]] && FILES+=("$f")
done
((${#FILES[@]} > 0)) || die "no capture files in $PF_SHARED_PCAPS"

section "seal each of the ${#FILES[@]} shared files in a bundle of its own"
seq=0
for f in "${FILES[@]}"; do
    seq=$((seq + 1))
    run "$PCAPFERRY" bundle create --key "$SENSOR_KEY" --to "$CENTRAL_PUB" --out "$OUT" \
        --seq "$seq" --level 1 --allow-unreadable "$f"
    [[ "$PF_RC" == 0 ]] || {
        pf_show_last
        die "bundle create $(basename "$f") failed"
    }
done
pass "${#FILES[@]} bundles sealed"

section "import them all"
expect_exit 0 -- "$PCAPFERRY" import --key "$CENTRAL_KEY" --keyring "$KEYRING" --state "$ST" \
    --ingest "$ING" --settle-ms 0 "$OUT"
cp "$PF_ERR" "$T/import.log"

# fields apart by US (0x1f): a tab in IFS would merge empty fields
db() { sqlite3 -batch -noheader -separator $'\x1f' "$ST/pcapferry.db" "$@"; }

# arkime_link FILE: the raw 32-bit link-type field of a classic pcap.
arkime_link() {
    local magic lt
    magic=$(od -An -tx1 -N4 "$1" | tr -d ' \n')
    case $magic in
    a1b2c3d4 | a1b23c4d) lt=$(od -An -tx1 -j20 -N4 "$1" | tr -d ' \n') ;;
    *) lt=$(od -An -tx1 -j20 -N4 "$1" | awk '{print $4 $3 $2 $1}') ;;
    esac
    echo $((16#$lt))
}
arkime_ok() {
    case $1 in 0 | 1 | 12 | 101 | 107 | 113 | 127 | 239 | 228 | 229 | 274 | 276) return 0 ;; esac
    return 1
}
# tview FILE: what tshark reads of FILE (up to any damage): time, lengths
# and an MD5 of the bytes of each packet (a packet without a time, a pcapng
# simple packet block, shows as time 0, as in classic pcap)
tview() {
    tshark -n -r "$1" -o frame.generate_md5_hash:TRUE -T fields -e frame.time_epoch \
        -e frame.len -e frame.cap_len -e frame.md5_hash 2>/dev/null |
        awk -F'\t' -v OFS='\t' '$1 == "" { $1 = "0.000000000" } { print }'
}
# libpcap's count of a file (what tcpdump reads before any error)
tcount() { tcpdump -n -r "$1" 2>/dev/null | wc -l; }

table=$T/table.md
{
    echo "| file | packets (capinfos) | what the importer did | packets delivered | reason (also in the held file's .reason) |"
    echo "|---|---|---|---|---|"
} >"$table"

section "every file: delivered readable, held with a reason, or empty"
seq=0
for f in "${FILES[@]}"; do
    seq=$((seq + 1))
    name=$(basename "$f")
    rows=$(db "SELECT n, state, final, IFNULL(packets, ''), trim_bytes, trim_packets,
                      IFNULL(interface, ''), IFNULL(evidence, ''), IFNULL(reason, '')
               FROM deliveries WHERE sensor = '$S' AND seq = $seq ORDER BY n")
    if [[ -z "$rows" ]]; then
        fail "$name: no deliveries row (rejected? see $T/import.log)"
        continue
    fi
    what="" delivered=0 parts=0 reason="" trimmed=0 split=0 kept="" last_final=""
    while IFS=$'\x1f' read -r n state final packets tb tp iface evidence why; do
        case $state in
        delivered)
            parts=$((parts + 1))
            p=$ING/$S/$final
            last_final=$final
            if [[ ! -f "$p" ]]; then
                fail "$name: row $n says delivered but $final is not there"
                continue
            fi
            expect_exit 0 -- tcpdump -n -r "$p" >/dev/null
            expect_eq "$name -> $final: capinfos counts the row's packets" "$packets" \
                "$(capinfos -M -c -T -r "$p" | awk -F'\t' '{print $2}')"
            bad=$(tshark -n -r "$p" -T fields -e frame.len -e frame.cap_len 2>/dev/null |
                awk '$1 != $2' | wc -l)
            expect_eq "$name -> $final: tshark sees caplen == len for every packet" 0 "$bad"
            lt=$(arkime_link "$p")
            if arkime_ok "$lt"; then
                pass "$name -> $final: link type $lt is one Arkime reads"
            else
                fail "$name -> $final: link type $lt is not one Arkime reads"
            fi
            # the packets themselves, as Wireshark reads the original: time,
            # lengths and dissection (a split part: its interface's only)
            # (tshark numbers interfaces per pcapng section, we over the whole
            # file: a part's packets must each be one of the original's)
            if [[ -n "$iface" ]]; then
                expect_eq "$name -> $final: every packet is one of the original's (tshark)" "" \
                    "$(comm -23 <(tview "$p" | sort) <(tview "$f" | sort) | head -3)"
            elif [[ -n "$evidence" || $(od -An -tx1 -N4 "$f" | tr -d ' \n') == 0a0d0d0a ]]; then
                expect_eq "$name -> $final: the original's packets, in order (tshark)" \
                    "$(tview "$f" | md5sum)" "$(tview "$p" | md5sum)"
            fi
            delivered=$((delivered + packets))
            if ((tb > 0)); then
                trimmed=1
                expect_true "$name: trim_packets is 0 or 1 ($tp)" -- test "$tp" -le 1
                expect_true "$name: trimmed, so the original is held as evidence" -- \
                    test -f "$evidence"
            fi
            if [[ -n "$evidence" ]]; then
                kept=", original held"
                expect_true "$name: the evidence kept is the signed original" -- \
                    cmp -s "$f" "$evidence"
            fi
            [[ -n "$iface" ]] && split=1
            [[ -n "$why" ]] && reason=$why
            ;;
        held)
            what="held"
            reason=$why
            held=$(find "$ST/quarantine/held/$S" -name "$S-$(printf %010d "$seq")-*" ! -name '*.reason')
            expect_true "$name: held file is the original" -- cmp -s "$f" "$held"
            expect_true "$name: held with a .reason" -- test -s "$held.reason"
            ;;
        empty)
            what="empty (nothing to index)"
            ;;
        *) fail "$name: row $n in state $state after the run" ;;
        esac
    done <<<"$rows"
    if ((parts > 0)); then
        if ((split && parts > 1)); then
            what="pcapng split into $parts classic pcaps, one per interface$kept"
        elif [[ $(od -An -tx1 -N4 "$f" | tr -d ' \n') == 0a0d0d0a ]]; then
            what="pcapng converted to classic pcap$kept"
        elif ((trimmed)); then
            what="delivered up to the cut-off last record$kept"
        else
            what="delivered as it is"
            expect_same_file "$name: delivered byte-identical" "$f" "$ING/$S/$last_final"
        fi
        if ((trimmed)); then
            expect_eq "$name: trimmed, yet every packet libpcap reads is delivered" \
                "$(tcount "$f")" "$delivered"
        fi
    fi
    reason=${reason//|/\\|}
    cap=$(capinfos -M -c -T -r "$f" 2>/dev/null | awk -F'\t' '{print $2}')
    printf '| %s | %s | %s | %s | %s |\n' "$name" "${cap:--}" "$what" "$delivered" \
        "${reason:-}" >>"$table"
done

section "nothing left staged"
left=$(find "$ING" -name '.*' -o -name '*.part')
expect_eq "no staging files in the ingest tree" "" "$left"

cat "$table"
if [[ -n "${GATE_TABLE:-}" ]]; then
    cp "$table" "$GATE_TABLE"
fi
summary
