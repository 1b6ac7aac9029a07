#!/usr/bin/env bash
# Issue 12, items 2 and 3: a sensor is its key, and a revocation cannot be
# backdated. Each attack from the review runs against verify, open and
# import: a sensor renaming itself in its own key file, a 0.1.0 keyring
# where two keys share a name, a key rotation, and bundles made with a
# revoked key and numbered below the cut-off.
# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.sh
. "${PF_TESTLIB:-$(dirname "${BASH_SOURCE[0]}")/lib.sh}"

require_binaries
require_cmd b2sum
T=$PF_TMP
setup_keys plantA central1
KEYS=$T/keys
ID_A=$SENSOR_ID
make_pcap a.pcap
make_pcap b.pcap --seed 2

imp() {
    local code=$1 st=$2 ing=$3
    shift 3
    expect_exit "$code" -- "$PCAPFERRY" import --key "$CENTRAL_KEY" --keyring "$KEYRING" \
        --state "$st" --ingest "$ing" --settle-ms 0 "$@"
}
# seal KEYFILE OUT ARGS...: BUNDLE is the printed path.
seal() {
    local key=$1 out=$2
    shift 2
    expect_exit 0 -- "$PCAPFERRY" bundle create --key "$key" --to "$CENTRAL_PUB" --out "$out" \
        --level 1 "$@" || die "bundle create $* failed"
    BUNDLE=$(cat "$PF_OUT")
}
# bundle_hash FILE: BLAKE2b-256 of everything before the 118-byte trailer,
# by b2sum, not by us.
bundle_hash() {
    local size
    size=$(file_size "$1")
    head -c $((size - 118)) "$1" | b2sum -l 256 | cut -d' ' -f1
}
# only_bundle NAME FILE: a directory holding just that bundle, for import.
only_bundle() {
    rm -rf "${T:?}/src-$1"
    mkdir -p "$T/src-$1"
    cp "$2" "$T/src-$1/"
    SRC=$T/src-$1
}

# ------------------------------------------------------------ pinned names
section "keys trust pins the name; keys list shows it"
expect_exit 0 -- "$PCAPFERRY" keys generate sensor plantB --out "$KEYS"
ID_B=$(sed -n 's/^key id: *//p' "$PF_OUT")
expect_exit 0 -- "$PCAPFERRY" keys trust "$KEYS/plantB.pub" --keyring "$KEYRING"
expect_stdout_contains "pinned to:   sensor 'plantB'"
expect_exit 0 -- "$PCAPFERRY" keys list --keyring "$KEYRING"
expect_stdout_matches "^plantA +sensor +$ID_A +trusted$"
expect_stdout_matches "^plantB +sensor +$ID_B +trusted$"
# --name overrides the name in the file, which is only a suggestion
expect_exit 0 -- "$PCAPFERRY" keys generate sensor hull-7 --out "$KEYS"
expect_exit 0 -- "$PCAPFERRY" keys trust "$KEYS/hull-7.pub" --keyring "$T/ring-named" --name ship-7
expect_stdout_contains "pinned to:   sensor 'ship-7'"
expect_exit 0 -- "$PCAPFERRY" keys list --keyring "$T/ring-named"
expect_stdout_matches "^ship-7 +sensor +[0-9a-f]{32} +trusted$"
expect_stdout_lacks "hull-7"
expect_exit 2 -- "$PCAPFERRY" keys trust "$KEYS/hull-7.pub" --keyring "$T/ring-named" --name hull-7
expect_stderr_contains "already trusted as sensor 'ship-7'; a pinned name never changes"
expect_exit 2 -- "$PCAPFERRY" keys trust "$KEYS/plantB.pub" --keyring "$T/ring-named" --name ../x
expect_stderr_contains "--name"
# a bundle from hull-7's key says hull-7: refused under the pinned ship-7
seal "$KEYS/hull-7.key" "$T/b-hull" --seq 1 "$PF_IN/a.pcap"
expect_exit 1 -- "$PCAPFERRY" bundle verify --keyring "$T/ring-named" "$BUNDLE"
expect_stdout_contains "bundle says sensor 'hull-7' but its signing key"
expect_stdout_contains "is trusted as sensor 'ship-7'"

section "a second key under a pinned name needs --same-sensor"
mkdir -p "$T/keys2"
expect_exit 0 -- "$PCAPFERRY" keys generate sensor plantA --out "$T/keys2"
ID_A2=$(sed -n 's/^key id: *//p' "$PF_OUT")
before=$(dir_listing "$KEYRING")
expect_exit 2 -- "$PCAPFERRY" keys trust "$T/keys2/plantA.pub" --keyring "$KEYRING"
expect_stderr_contains "sensor name 'plantA' is already pinned to key $ID_A"
expect_stderr_contains "--same-sensor"
expect_listing "keyring unchanged after a refused trust" "$KEYRING" "$before"
expect_exit 2 -- "$PCAPFERRY" keys trust "$T/keys2/plantA.pub" --keyring "$KEYRING" --name nobody \
    --same-sensor
expect_stderr_contains "no key is trusted as sensor 'nobody'"

# ------------------------------------------- the review's attack (item 2)
section "sensor A renames itself plantB in its own key file: refused everywhere"
mkdir -p "$T/evil"
sed 's/^name: plantA$/name: plantB/' "$SENSOR_KEY" >"$T/evil/plantB.key"
chmod 600 "$T/evil/plantB.key"
grep -q '^name: plantB$' "$T/evil/plantB.key" || die "could not rename the key file"
seal "$T/evil/plantB.key" "$T/b-evil" --seq 1 "$PF_IN/a.pcap"
EVIL1=$BUNDLE
seal "$T/evil/plantB.key" "$T/b-evil" --seq 5 "$PF_IN/a.pcap"
EVIL5=$BUNDLE
msg="bundle says sensor 'plantB' but its signing key $ID_A is trusted as sensor 'plantA'"
expect_exit 1 -- "$PCAPFERRY" bundle verify --keyring "$KEYRING" "$EVIL1"
expect_stdout_contains "$EVIL1: REJECTED: $msg"
mkdir -p "$T/open-evil"
expect_exit 1 -- "$PCAPFERRY" bundle open --key "$CENTRAL_KEY" --keyring "$KEYRING" \
    --out "$T/open-evil" "$EVIL1"
expect_stderr_contains "$msg"
expect_dir_empty "$T/open-evil"
ST=$T/state1 ING=$T/ingest1
mkdir -p "$ING"
only_bundle evil "$EVIL1"
cp "$EVIL5" "$SRC/"
imp 1 "$ST" "$ING" "$SRC"
expect_stderr_contains "$msg"
expect_stderr_contains "2 rejected, 0 gaps"
expect_stderr_lacks "EQUIVOCATION"
expect_false "no INGEST/plantB from A's bundles" test -e "$ING/plantB"
# quarantined under the sensor whose key signed them
expect_true "quarantined under plantA" test -e "$ST/quarantine/plantA/$(basename "$EVIL1")"
expect_false "nothing quarantined under plantB" test -e "$ST/quarantine/plantB"
# plantB's genuine seq 1 then imports: no equivocation blamed on B, no gap
seal "$KEYS/plantB.key" "$T/b-plantB" --seq 1 "$PF_IN/b.pcap"
only_bundle b1 "$BUNDLE"
imp 0 "$ST" "$ING" "$SRC"
expect_stderr_contains "1 new, 0 already imported, 0 rejected, 0 gaps"
expect_stderr_lacks "EQUIVOCATION"
expect_same_file "plantB's own capture delivered" "$PF_IN/b.pcap" "$(ls "$ING"/plantB/*)"
expect_exit 0 -- "$PCAPFERRY" import --state "$ST" --status
expect_stdout_contains "plantB"

# ----------------------------------------------------------- key rotation
section "key rotation: a new key of plantA, --same-sensor, sequence carrying on"
SS=$T/sensor-state
seal "$SENSOR_KEY" "$T/b-rot" --state "$SS" "$PF_IN/a.pcap"
R1=$BUNDLE
expect_exit 0 -- "$PCAPFERRY" keys trust "$T/keys2/plantA.pub" --keyring "$KEYRING" --same-sensor
expect_stdout_contains "pinned to:   sensor 'plantA' (another key of the same sensor)"
expect_exit 0 -- "$PCAPFERRY" keys list --keyring "$KEYRING"
expect_stdout_matches "^plantA +sensor +$ID_A2 +trusted, same sensor$"
expect_stdout_matches "^plantA +sensor +$ID_A +trusted$"
seal "$T/keys2/plantA.key" "$T/b-rot" --state "$SS" "$PF_IN/b.pcap"
R2=$BUNDLE
expect_exit 0 -- "$PCAPFERRY" bundle verify --keyring "$KEYRING" "$R1" "$R2"
expect_stdout_contains "OK sensor=plantA seq=1 "
expect_stdout_contains "OK sensor=plantA seq=2 "
only_bundle rot "$R1"
cp "$R2" "$SRC/"
imp 0 "$ST" "$ING" "$SRC"
expect_stderr_contains "2 new, 0 already imported, 0 rejected, 0 gaps"
expect_eq "both keys' captures in INGEST/plantA" 2 "$(find "$ING/plantA" -type f | wc -l)"

# ------------------------------------------------------ 0.1.0 keyrings
section "a 0.1.0 keyring with two keys under one name fails clearly until pinned"
mkdir -p "$T/ring-010"
cp "$KEYRING/$ID_A.pub" "$KEYRING/$ID_A2.pub" "$T/ring-010/"
expect_exit 2 -- "$PCAPFERRY" bundle verify --keyring "$T/ring-010" "$R1"
expect_stdout_contains "nothing says they are the same sensor"
expect_stdout_contains "Upgrading from 0.1.0"
expect_exit 0 -- "$PCAPFERRY" keys list --keyring "$T/ring-010"
expect_stdout_contains "AMBIGUOUS"
expect_exit 0 -- "$PCAPFERRY" keys trust "$T/keys2/plantA.pub" --keyring "$T/ring-010" --same-sensor
expect_exit 0 -- "$PCAPFERRY" bundle verify --keyring "$T/ring-010" "$R1" "$R2"
expect_exit 0 -- "$PCAPFERRY" keys list --keyring "$T/ring-010"
expect_stdout_lacks "AMBIGUOUS"

# ------------------------------------------- backdated revocation (item 3)
section "revoked after seq 3: a bundle the thief numbers 2 is refused, the genuine 2 is not"
expect_exit 0 -- "$PCAPFERRY" keys generate sensor plantC --out "$KEYS"
expect_exit 0 -- "$PCAPFERRY" keys trust "$KEYS/plantC.pub" --keyring "$KEYRING"
CS=$T/plantC-state
seal "$KEYS/plantC.key" "$T/b-c" --state "$CS" "$PF_IN/a.pcap"
C1=$BUNDLE
cp -r "$CS" "$T/stolen-state" # the thief's copy of the sensor's disk
seal "$KEYS/plantC.key" "$T/b-c" --state "$CS" "$PF_IN/b.pcap"
C2=$BUNDLE
seal "$KEYS/plantC.key" "$T/b-c" --state "$CS" "$PF_IN/a.pcap"
C3=$BUNDLE
ST2=$T/state2 ING2=$T/ingest2
mkdir -p "$ING2"
only_bundle c1 "$C1"
cp "$C3" "$SRC/" # bundle 2 still in transit
imp 0 "$ST2" "$ING2" "$SRC"
expect_stderr_contains "2 new, 0 already imported, 0 rejected, 1 gaps"
cp -r "$KEYRING" "$T/ring-pre-revoke"
expect_exit 0 -- "$PCAPFERRY" keys revoke "$KEYS/plantC.pub" --keyring "$KEYRING" --after-seq 3
# after the revocation, with the stolen key: a new "seq 2" chained to seq 1
seal "$KEYS/plantC.key" "$T/b-thief" --state "$T/stolen-state" "$PF_IN/b.pcap"
FORGED2=$BUNDLE
[[ "$FORGED2" == *plantC-0000000002-* ]] || die "the forged bundle is not seq 2: $FORGED2"
seal "$KEYS/plantC.key" "$T/b-thief" --seq 4 "$PF_IN/b.pcap"
FORGED4=$BUNDLE
only_bundle forged2 "$FORGED2"
imp 1 "$ST2" "$ING2" "$SRC"
expect_stderr_contains "is not the one the imported bundle seq 3 chains to"
expect_stderr_contains "1 rejected"
expect_eq "nothing delivered from the forged seq 2" 2 "$(find "$ING2/plantC" -type f | wc -l)"
only_bundle forged4 "$FORGED4"
imp 1 "$ST2" "$ING2" "$SRC"
expect_stderr_contains "is revoked after seq 3; this bundle has seq 4"
# the genuine seq 2 arrives: vouched for by seq 3's prev_hash
only_bundle c2 "$C2"
imp 0 "$ST2" "$ING2" "$SRC"
expect_stderr_contains "1 new, 0 already imported, 0 rejected, 0 gaps"
expect_eq "the genuine seq 2 delivered" 3 "$(find "$ING2/plantC" -type f | wc -l)"

section "revoked after seq 3, nothing imported after seq 1: bundles wait until vouched for"
ST3=$T/state3 ING3=$T/ingest3
mkdir -p "$ING3"
KR=$KEYRING
KEYRING=$T/ring-pre-revoke
only_bundle c1b "$C1"
imp 0 "$ST3" "$ING3" "$SRC"
KEYRING=$KR
# nothing on the central host tells seq 2 or 3 from what the thief makes now
only_bundle c23 "$C2"
cp "$C3" "$SRC/"
imp 75 "$ST3" "$ING3" "$SRC"
expect_stderr_contains "status=waiting"
expect_stderr_contains "waits until an imported bundle names it as prev_hash"
expect_stderr_contains "0 new, 0 already imported, 0 rejected, 0 gaps"
expect_eq "nothing delivered while waiting" 1 "$(find "$ING3/plantC" -type f | wc -l)"
expect_true "waiting bundles stay where they are" test -f "$SRC/$(basename "$C3")"
# bundle verify has no import state: only the operator's list vouches
expect_exit 1 -- "$PCAPFERRY" bundle verify --keyring "$KEYRING" "$C3"
expect_stdout_contains "is not vouched for"
# the operator names the hash the sensor reported for its last bundle
H3=$(bundle_hash "$C3")
expect_eq "the sensor's state names the same hash as b2sum" "$H3" \
    "$(sed -n 's/^last-hash: //p' "$CS/sequence")"
expect_exit 2 -- "$PCAPFERRY" keys revoke "$KEYS/plantC.pub" --keyring "$KEYRING" --allow "$H3"
expect_stderr_contains "--allow needs --after-seq"
expect_exit 2 -- "$PCAPFERRY" keys revoke "$KEYS/plantC.pub" --keyring "$KEYRING" --after-seq 3 \
    --allow 1234
expect_stderr_contains "not a bundle hash"
expect_exit 0 -- "$PCAPFERRY" keys revoke "$KEYS/plantC.pub" --keyring "$KEYRING" --after-seq 3 \
    --allow "$H3"
expect_exit 0 -- "$PCAPFERRY" keys list --keyring "$KEYRING"
expect_stdout_matches "^plantC +sensor +[0-9a-f]{32} +revoked after seq 3, 1 hash allowed$"
expect_exit 0 -- "$PCAPFERRY" bundle verify --keyring "$KEYRING" "$C3"
expect_stdout_contains "OK sensor=plantC seq=3 "
expect_exit 1 -- "$PCAPFERRY" bundle verify --keyring "$KEYRING" "$C2" "$FORGED2"
expect_eq "verify: neither seq 2 is vouched for" 2 "$(grep -c 'is not vouched for' "$PF_OUT")"
mkdir -p "$T/open-c"
expect_exit 1 -- "$PCAPFERRY" bundle open --key "$CENTRAL_KEY" --keyring "$KEYRING" \
    --out "$T/open-c" "$FORGED2"
expect_stderr_contains "is not vouched for"
expect_dir_empty "$T/open-c"
expect_exit 0 -- "$PCAPFERRY" bundle open --key "$CENTRAL_KEY" --keyring "$KEYRING" \
    --out "$T/open-c" "$C3"
# one run: seq 2 sorts first and waits, seq 3 is allowed; the next run
# takes seq 2 through seq 3's chain, and the forged 2 is refused
mkdir -p "$T/src-forged2b"
cp "$FORGED2" "$T/src-forged2b/"
imp 75 "$ST3" "$ING3" "$SRC"
expect_stderr_contains "1 new, 0 already imported, 0 rejected"
imp 0 "$ST3" "$ING3" "$SRC"
expect_stderr_contains "1 new, 1 already imported, 0 rejected, 0 gaps"
imp 1 "$ST3" "$ING3" "$T/src-forged2b"
expect_stderr_contains "EQUIVOCATION"
expect_eq "plantC's three genuine captures delivered" 3 "$(find "$ING3/plantC" -type f | wc -l)"

section "revoked entirely: even an allowed hash is refused"
expect_exit 0 -- "$PCAPFERRY" keys revoke "$KEYS/plantC.pub" --keyring "$KEYRING"
expect_exit 1 -- "$PCAPFERRY" bundle verify --keyring "$KEYRING" "$C3"
expect_stdout_contains "is revoked"
expect_exit 0 -- "$PCAPFERRY" keys list --keyring "$KEYRING"
expect_stdout_matches "^plantC +sensor +[0-9a-f]{32} +revoked$"

summary
