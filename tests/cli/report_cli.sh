#!/usr/bin/env bash
# pcapferry report and pcapferry provenance, on a real import state: capture
# -r seals four one-minute windows, bundle create adds a pcapng, seq 3 never
# arrives but a tampered copy of it is quarantined. Then: the report's JSON
# (windows, the gap and the time it must cover, the rejection, silent
# stretches), HTML and SVG that need no network, a synthetic state for
# drops, clock jumps, held files and the aggregated mode, and provenance on
# the central host and offline (file + kept manifest + .sig + .pub),
# checked against b2sum and openssl as well as against forgeries.
# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.sh
. "${PF_TESTLIB:-$(dirname "${BASH_SOURCE[0]}")/lib.sh}"

require_binaries
require_json
require_cmd b2sum python3
: "${STATEGEN:=$(dirname "$PCAPGEN")/stategen}"
[[ -x "$STATEGEN" ]] || skip "STATEGEN=$STATEGEN is not an executable (build first)"

T=$PF_TMP
# check_eq WANT GOT WHAT: expect_eq in the order these checks read best.
check_eq() { expect_eq "$3" "$1" "$2"; }
setup_keys plant-a arkime
cd "$T" || die "cannot cd to $T"
: >sensor.conf
: >import.conf

section "a real import state: seq 1, 2, 4, 5 delivered, 3 missing and its forgery rejected"
for i in 1 2 3 4; do
    make_pcap "f$i.pcap" --seed "$i" --start $((1700000000 + (i - 1) * 60)) --rate 50 --packets 2000
done
make_pcap f5.pcapng --pcapng --seed 9 --start 1700000300 --rate 50 --packets 1000
expect_exit 0 -- "$PCAPFERRY" capture -c sensor.conf --no-drop -G 60 --key "$SENSOR_KEY" \
    --to "$CENTRAL_PUB" --spool spool --outbox outbox --state sstate \
    -r "$PF_IN/f1.pcap" -r "$PF_IN/f2.pcap" -r "$PF_IN/f3.pcap" -r "$PF_IN/f4.pcap" ||
    die "capture -r failed"
expect_exit 0 -- "$PCAPFERRY" bundle create --key "$SENSOR_KEY" --to "$CENTRAL_PUB" --out outbox \
    --state sstate "$PF_IN/f5.pcapng" || die "bundle create failed"
mkdir -p stick suspect ingest
cp outbox/*-000000000[1245]-*.pcapferry stick/
cp outbox/*-0000000003-*.pcapferry suspect/
# A byte of the body: the header is still authentic, so the rejection is
# plant-a's seq 3 (a forged header would be nobody's: QUARANTINE/unknown).
flip_byte "$(echo suspect/*.pcapferry)" 1000
imp=("$PCAPFERRY" import --config import.conf --key "$CENTRAL_KEY" --keyring "$KEYRING"
    --state cstate --ingest ingest)
expect_exit 0 -- "${imp[@]}" stick || die "import failed"
expect_exit 1 -- "${imp[@]}" suspect
mapfile -t delivered < <(find ingest -name '*.pcap' | sort)
check_eq 4 "${#delivered[@]}" "delivered files"

section "report --json: windows, gap, rejection, silent windows"
expect_exit 0 -- "$PCAPFERRY" report --config import.conf --state cstate --ingest "$T/ingest" --json
cp "$PF_OUT" r.json
expect_true "report --json is valid JSON" json_valid r.json
check_eq pcapferry-report "$(json_get r.json type)" "type"
check_eq files "$(json_get r.json mode)" "mode"
check_eq plant-a "$(json_get r.json sensors 0 sensor)" "sensor"
check_eq 4 "$(json_get r.json sensors 0 bundles)" "bundles"
check_eq 1 "$(json_get r.json sensors 0 missing)" "missing"
check_eq 1 "$(json_get r.json sensors 0 rejected)" "rejected"
check_eq 4 "$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["windows"]))' r.json)" \
    "one window per delivered file"
check_eq 3 "$(json_get r.json gaps 0 first_missing)" "gap: first missing seq"
check_eq 3 "$(json_get r.json gaps 0 last_missing)" "gap: last missing seq"
check_eq '[3]' "$(json_get r.json gaps 0 rejected_seqs)" "gap: seq 3 was rejected"
# The gap must cover from seq 2's last packet to seq 4's first, which
# tcpdump reads from the delivered files themselves.
last2=$(tcpdump -n -tt -r "${delivered[1]}" 2>/dev/null | tail -n 1 | cut -d ' ' -f 1)
first4=$(tcpdump -n -tt -r "${delivered[2]}" 2>/dev/null | head -n 1 | cut -d ' ' -f 1)
check_eq "${last2%.*}" "$(($(json_get r.json gaps 0 start_ns) / 1000000000))" \
    "gap starts at seq 2's last packet (tcpdump)"
check_eq "${first4%.*}" "$(($(json_get r.json gaps 0 end_ns) / 1000000000))" \
    "gap ends at seq 4's first packet (tcpdump)"
check_eq 3 "$(json_get r.json rejected 0 seq)" "rejected seq"
expect_stdout_contains "fails authentication"
check_eq 2023-11-14T22:15:20.000000000Z "$(json_get r.json rejected 0 claimed_start)" \
    "rejected bundle placed by its name's time"
# every delivered path the report gives exists, and its hash is the signed one
for i in 0 1 2; do
    p=$(json_get r.json windows "$i" delivered)
    expect_true "window $i: delivered file $p exists" test -f "$p"
    check_eq "$(b2_256 "$p")" "$(json_get r.json windows "$i" blake2b_256)" "window $i hash (b2sum)"
done
check_eq true "$(json_get r.json windows 3 converted)" "the pcapng was converted"
# capture -r windows start on the minute, packets 20 s later: silent
check_eq 2023-11-14T22:13:00.000000000Z "$(json_get r.json silent 0 start)" "silent start"
check_eq 2023-11-14T22:13:20 "$(json_get r.json silent 0 end | cut -c 1-19)" "silent end"
check_eq '[]' "$(json_get r.json drops)" "no drops recorded"
expect_stderr_contains "1 sensor(s)"

section "--from/--to/--sensor filters"
expect_exit 0 -- "$PCAPFERRY" report --config import.conf --state cstate --json \
    --from '2023-11-14 22:17:30' --to 2023-11-14T22:20:00Z
cp "$PF_OUT" f.json
check_eq 1 "$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["windows"]))' f.json)" \
    "only seq 5 in 22:17:30..22:20"
check_eq '[]' "$(json_get f.json gaps)" "the gap is outside the range"
expect_exit 0 -- "$PCAPFERRY" report --config import.conf --state cstate --json --sensor nobody
cp "$PF_OUT" n.json
check_eq '[]' "$(json_get n.json sensors)" "--sensor nobody: no sensors"

section "HTML and SVG: self-contained, well-formed, the data on the page"
expect_exit 2 -- "$PCAPFERRY" report --config import.conf --state cstate --out missing/dir/r.html
mkdir -p out
expect_exit 0 -- "$PCAPFERRY" report --config import.conf --state cstate --out out/r.html \
    --svg out/r.svg
expect_stdout_contains "out/r.html"
expect_stdout_contains "out/r.svg"
expect_true "SVG is well-formed XML" python3 -c 'import sys, xml.dom.minidom as m; m.parse(sys.argv[1])' out/r.svg
expect_false "HTML loads nothing from elsewhere" grep -Eq '(src|href)=|url\(|@import' out/r.html
check_eq 1 "$(grep -o 'http[s]*://[^"]*' out/r.html | sort -u | wc -l)" "only the SVG namespace URI"
expect_true "HTML names the sensor" grep -q 'data-s="plant-a"' out/r.html
expect_true "HTML draws the gap" grep -q 'class="m gap"' out/r.html
expect_true "HTML lists the rejection reason" grep -q 'fails authentication' out/r.html

section "synthetic state: drops, clock jumps, held files, aggregated mode"
expect_exit 0 -- "$STATEGEN" --state syn --names plant-a,plant-b --bundles 120 \
    --skip 0:10 --skip 0:11 --drops 1:5:42 --clock 1:20:-7 --quiet 0:25
expect_exit 0 -- "$PCAPFERRY" report --state syn --config import.conf --json
cp "$PF_OUT" s.json
check_eq 42 "$(json_get s.json drops 0 kernel)" "drops: 42 kernel"
check_eq plant-b "$(json_get s.json drops 0 sensor)" "drops: sensor"
check_eq 2023-11-14T22:17:20.000000000Z "$(json_get s.json drops 0 start)" "drop window start"
check_eq -7000000000 "$(json_get s.json clock 0 jump_ns)" "clock jump"
check_eq 25 "$(json_get s.json silent 0 seq)" "quiet window is silent"
check_eq 2 "$(json_get s.json gaps 0 count)" "two missing"
expect_exit 0 -- "$PCAPFERRY" report --state syn --config import.conf --json --detail-max 50
cp "$PF_OUT" a.json
check_eq buckets "$(json_get a.json mode)" "over --detail-max: aggregated"
total=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(sum(b["bundles"] for b in d["buckets"]), sum(b["drops"] for b in d["buckets"]))' a.json)
check_eq "238 42" "$total" "buckets add up to every bundle and drop"
check_eq 2 "$(json_get a.json gaps 0 count)" "aggregated: the gap is still named"
sqlite3_held() {
    python3 - "$1" <<'EOF'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1] + "/pcapferry.db")
db.execute("UPDATE deliveries SET state='held', reason='link type 147 (USER0) is not one Arkime reads' WHERE sensor='plant-b' AND seq=7")
db.commit()
EOF
}
sqlite3_held syn
expect_exit 0 -- "$PCAPFERRY" report --state syn --config import.conf --json
cp "$PF_OUT" h.json
check_eq 7 "$(json_get h.json held 0 seq)" "held file"
expect_true "held path under quarantine/held/<sensor>" \
    grep -q '"held_as": "syn/quarantine/held/plant-b/plant-b-0000000007-1-' h.json

section "the hourly roll-up (import/db.c) agrees with the bundles it sums"
rollup_check() {
    python3 - "$1/pcapferry.db" <<'EOF'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
a = db.execute("SELECT sensor, COUNT(*), SUM(files), SUM(packets), SUM(drops), MIN(first_ts), MAX(last_ts) FROM bundles WHERE first_ts <> 0 GROUP BY sensor ORDER BY sensor").fetchall()
b = db.execute("SELECT sensor, SUM(bundles), SUM(files), SUM(packets), SUM(drops), MIN(first_ts), MAX(last_ts) FROM bundles_hourly GROUP BY sensor ORDER BY sensor").fetchall()
print("same" if a == b and a else "differ: %r != %r" % (a, b))
EOF
}
check_eq same "$(rollup_check cstate)" "roll-up of the real import"
check_eq same "$(rollup_check syn)" "roll-up of the synthetic state"
# A state from before the roll-up (opened read-only since): the same report.
cp -r syn old
python3 -c 'import sqlite3,sys; d=sqlite3.connect(sys.argv[1]); d.executescript("DROP TRIGGER bundles_hourly_add; DROP TABLE bundles_hourly; DROP INDEX bundles_time;")' old/pcapferry.db
for mode in "" "--detail-max 50" "--detail-max 50 --to @1702160000"; do
    # shellcheck disable=SC2086 # mode is one or two words on purpose
    expect_exit 0 -- "$PCAPFERRY" report --state syn --config import.conf --json --from @1700000000 --to @1700007200 $mode
    grep -v '"generated' "$PF_OUT" | sed 's#"state": "[a-z]*"##' >new.json
    # shellcheck disable=SC2086
    expect_exit 0 -- "$PCAPFERRY" report --state old --config import.conf --json --from @1700000000 --to @1700007200 $mode
    grep -v '"generated' "$PF_OUT" | sed 's#"state": "[a-z]*"##; s#old/quarantine#syn/quarantine#' >old.json
    expect_true "without the roll-up, the same report (${mode:-file by file})" cmp -s new.json old.json
done

section "report: usage and environment errors"
expect_exit 2 -- "$PCAPFERRY" report --config import.conf
expect_stderr_contains "--state"
expect_exit 2 -- "$PCAPFERRY" report --config import.conf --state nowhere
expect_stderr_contains "nowhere"
expect_exit 2 -- "$PCAPFERRY" report --config import.conf --state cstate --from yesterday
expect_stderr_contains "cannot read 'yesterday'"
expect_exit 2 -- "$PCAPFERRY" report --config import.conf --state cstate --from 2023-11-15 --to 2023-11-14
expect_exit 2 -- "$PCAPFERRY" report --config import.conf --state cstate --sensor '../x'

section "provenance on the central host"
prov=("$PCAPFERRY" provenance --config import.conf --state cstate --keyring "$KEYRING")
expect_exit 0 -- "${prov[@]}" "${delivered[1]}"
expect_stdout_contains "VERIFIED"
expect_stdout_contains "seq:             2"
expect_stdout_contains "$(b2_256 "${delivered[1]}")"
expect_stdout_contains "$(python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("select bundle_hash from bundles where seq=2").fetchone()[0])' cstate/pcapferry.db)"
expect_exit 0 -- "${prov[@]}" --json "${delivered[1]}"
cp "$PF_OUT" p.json
check_eq verified "$(json_get p.json result)" "--json result"
check_eq 2000 "$(json_get p.json packets)" "--json packets"
check_eq 2023-11-14T22:14:00.000000000Z "$(json_get p.json window_start)" "--json window"
expect_exit 0 -- "${prov[@]}" "${delivered[3]}"
expect_stdout_contains "CONVERTED"
expect_stdout_contains "f5.pcapng"
cp "${delivered[0]}" renamed.pcap
expect_exit 0 -- "${prov[@]}" renamed.pcap
expect_stdout_contains "VERIFIED"
expect_exit 2 -- "${prov[@]}" "$PF_IN/f1.pcap"
expect_stderr_contains "knows no delivered file"

section "provenance offline: the file, the kept manifest + .sig, the sensor's .pub"
mkdir -p coc
cp cstate/manifests/plant-a/plant-a-0000000002.manifest.json \
    cstate/manifests/plant-a/plant-a-0000000002.manifest.sig "$SENSOR_PUB" coc/
cp "${delivered[1]}" coc/evidence.pcap
off=(--manifest coc/plant-a-0000000002.manifest.json --pub coc/plant-a.pub)
expect_exit 0 -- "$PCAPFERRY" provenance "${off[@]}" coc/evidence.pcap
expect_stdout_contains "VERIFIED"
expect_stdout_contains "not known offline"
cp coc/evidence.pcap coc/altered.pcap
flip_byte coc/altered.pcap 5000
expect_exit 1 -- "$PCAPFERRY" provenance "${off[@]}" coc/altered.pcap
expect_stdout_contains "MISMATCH"
expect_stderr_contains "does NOT match"
cp coc/plant-a-0000000002.manifest.json coc/forged.manifest.json
cp coc/plant-a-0000000002.manifest.sig coc/forged.manifest.sig
sed -i 's/"packets": 2000/"packets": 2001/' coc/forged.manifest.json
expect_exit 1 -- "$PCAPFERRY" provenance --manifest coc/forged.manifest.json --pub coc/plant-a.pub coc/evidence.pcap
expect_stderr_contains "signature does not verify"
expect_exit 0 -- "$PCAPFERRY" keys generate sensor plant-a --out other
expect_exit 1 -- "$PCAPFERRY" provenance "${off[0]}" "${off[1]}" --pub other/plant-a.pub coc/evidence.pcap
expect_stderr_contains "signature does not verify"
# the header, when kept beside the manifest, is checked too
cp cstate/manifests/plant-a/plant-a-0000000002.header coc/
expect_exit 0 -- "$PCAPFERRY" provenance "${off[@]}" coc/evidence.pcap
expect_stdout_contains "header signature verified"
cp cstate/manifests/plant-a/plant-a-0000000001.header coc/plant-a-0000000002.header
expect_exit 1 -- "$PCAPFERRY" provenance "${off[@]}" coc/evidence.pcap
expect_stderr_contains "manifest"
expect_exit 2 -- "$PCAPFERRY" provenance --manifest coc/plant-a-0000000002.manifest.json coc/evidence.pcap
expect_exit 2 -- "$PCAPFERRY" provenance "${off[@]}"

section "the documented third-party check: b2sum and openssl (docs/REPORT.md)"
expect_true "b2sum -l 256 finds the signed hash in the manifest" \
    grep -q "\"blake2b_256\": \"$(b2_256 coc/evidence.pcap)\"" coc/plant-a-0000000002.manifest.json
if command -v openssl >/dev/null 2>&1; then
    pk=$(sed -n 's/^ed25519-public: //p' coc/plant-a.pub)
    { printf '\060\052\060\005\006\003\053\145\160\003\041\000'; printf '%s' "$pk" | base64 -d; } >coc/plant-a.der
    expect_exit 0 -- openssl pkey -pubin -inform DER -in coc/plant-a.der -out coc/plant-a.pem
    { printf 'pcapferry-manifest-v1\0'; cat coc/plant-a-0000000002.manifest.json; } >coc/signed.bin
    expect_exit 0 -- openssl pkeyutl -verify -pubin -inkey coc/plant-a.pem -rawin -in coc/signed.bin \
        -sigfile coc/plant-a-0000000002.manifest.sig
    { printf 'pcapferry-manifest-v1\0'; cat coc/forged.manifest.json; } >coc/forged.bin
    expect_exit 1 -- openssl pkeyutl -verify -pubin -inkey coc/plant-a.pem -rawin -in coc/forged.bin \
        -sigfile coc/plant-a-0000000002.manifest.sig
else
    echo "note: openssl not installed; the openssl steps were not run"
fi

summary
