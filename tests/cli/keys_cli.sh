#!/usr/bin/env bash
# pcapferry keys: generate, show, trust, list, revoke, and how bundle create /
# bundle open treat secret key files (permissions, symlinks, corruption).
# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.sh
. "${PF_TESTLIB:-$(dirname "${BASH_SOURCE[0]}")/lib.sh}"

require_binaries
T=$PF_TMP
K=$T/keys

# ------------------------------------------------------------------ generate
section "generate sensor and central keys"
expect_exit 0 -- "$PCAPFERRY" keys generate sensor s1 --out "$K" || die "cannot generate a sensor key"
expect_stdout_contains "sensor (ed25519)"
gen_sensor_id=$(sed -n 's/^key id: *//p' "$PF_OUT")
gen_sensor_fp=$(sed -n 's/^fingerprint: *//p' "$PF_OUT")
expect_exit 0 -- "$PCAPFERRY" keys generate central c1 --out "$K" || die "cannot generate a central key"
expect_stdout_contains "central (x25519 + ed25519)"
gen_central_id=$(sed -n 's/^key id: *//p' "$PF_OUT")

for f in s1.key s1.pub c1.key c1.pub; do
    expect_true "$f exists and is not empty" -- test -s "$K/$f"
done
expect_mode "sensor secret key" 600 "$K/s1.key"
expect_mode "sensor public key" 644 "$K/s1.pub"
expect_mode "central secret key" 600 "$K/c1.key"
expect_mode "central public key" 644 "$K/c1.pub"
expect_false "a .pub file holds no secret" -- grep -q secret "$K/s1.pub" "$K/c1.pub"

section "keys show works on both files of a pair and agrees with generate"
for f in s1.key s1.pub; do
    expect_exit 0 -- "$PCAPFERRY" keys show "$K/$f"
    expect_stdout_matches '^type: +sensor \(ed25519\)$'
    expect_stdout_matches '^name: +s1$'
    expect_stdout_matches '^key id: +[0-9a-f]{32}$'
    expect_stdout_matches '^fingerprint: +pf1:[A-Za-z0-9+/]{43}$'
    expect_eq "key id shown for $f" "$gen_sensor_id" "$(sed -n 's/^key id: *//p' "$PF_OUT")"
    expect_eq "fingerprint shown for $f" "$gen_sensor_fp" "$(sed -n 's/^fingerprint: *//p' "$PF_OUT")"
    expect_stdout_lacks "secret:"
done
for f in c1.key c1.pub; do
    expect_exit 0 -- "$PCAPFERRY" keys show "$K/$f"
    expect_stdout_matches '^type: +central \(x25519 \+ ed25519\)$'
    expect_stdout_matches '^name: +c1$'
    expect_stdout_matches '^fingerprint: +pf1:'
    expect_eq "central key id shown for $f" "$gen_central_id" "$(sed -n 's/^key id: *//p' "$PF_OUT")"
done
expect_false "sensor and central key ids differ" -- test "$gen_sensor_id" = "$gen_central_id"

section "generating again never overwrites"
cp -p "$K/s1.key" "$T/s1.key.orig"
cp -p "$K/s1.pub" "$T/s1.pub.orig"
for role in sensor central; do
    expect_exit 2 -- "$PCAPFERRY" keys generate "$role" s1 --out "$K"
    expect_stderr_contains "already exists"
    expect_same_file "s1.key unchanged after a refused generate ($role)" "$T/s1.key.orig" "$K/s1.key"
    expect_same_file "s1.pub unchanged after a refused generate ($role)" "$T/s1.pub.orig" "$K/s1.pub"
done
expect_mode "s1.key still private" 600 "$K/s1.key"
# Only the .pub left behind: still refused, and no .key is created.
mkdir -p "$T/half"
cp "$K/s1.pub" "$T/half/s1.pub"
expect_exit 2 -- "$PCAPFERRY" keys generate sensor s1 --out "$T/half"
expect_stderr_contains "already exists"
expect_listing "a refused generate writes nothing" "$T/half" "s1.pub"

section "invalid key names"
long65=$(printf 'n%.0s' {1..65})
long64=$(printf 'n%.0s' {1..64})
mkdir -p "$T/names"
for name in "../x" "-a" "" "$long65" "a/b" "with space" ".hidden"; do
    expect_exit 2 -- "$PCAPFERRY" keys generate sensor "$name" --out "$T/names"
    expect_dir_empty "$T/names"
done
# after "--" a name like -a is not an option any more, and is still refused
expect_exit 2 -- "$PCAPFERRY" keys generate sensor --out "$T/names" -- -a
expect_stderr_contains "invalid key name"
expect_dir_empty "$T/names"
expect_exit 2 -- "$PCAPFERRY" keys generate sensor "$long65" --out "$T/names"
expect_stderr_contains "invalid key name"
expect_exit 2 -- "$PCAPFERRY" keys generate robot s9 --out "$T/names"
expect_dir_empty "$T/names"
# 64 characters is the limit, and allowed
expect_exit 0 -- "$PCAPFERRY" keys generate sensor "$long64" --out "$T/names"
expect_true "a 64-character name is accepted" -- test -f "$T/names/$long64.key"

# ------------------------------------------------------------------ trust/list
section "trust and list"
R=$T/ring
expect_exit 0 -- "$PCAPFERRY" keys trust "$K/s1.pub" --keyring "$R"
expect_stdout_contains "$gen_sensor_id"
expect_exit 0 -- "$PCAPFERRY" keys list --keyring "$R"
expect_stdout_matches "^s1 +sensor +$gen_sensor_id +trusted$"
# trusting twice is not an error and lists the key once
expect_exit 0 -- "$PCAPFERRY" keys trust "$K/s1.pub" --keyring "$R"
expect_exit 0 -- "$PCAPFERRY" keys list --keyring "$R"
expect_eq "keys list rows after trusting twice" 1 "$(grep -c "$gen_sensor_id" "$PF_OUT")"
expect_exit 2 -- "$PCAPFERRY" keys list
expect_stderr_contains "--keyring"

section "trust refuses a secret key file"
before=$(dir_listing "$R")
for f in s1.key c1.key; do
    expect_exit 2 -- "$PCAPFERRY" keys trust "$K/$f" --keyring "$R"
    expect_stderr_contains "secret key"
    expect_listing "keyring unchanged after trusting $f" "$R" "$before"
done
expect_false "no secret material in the keyring" -- grep -rq secret "$R"

section "trust accepts a public key whose name contains 'secret'"
# The name is the operator's choice; only the key type decides secrecy.
expect_exit 0 -- "$PCAPFERRY" keys generate sensor secretary --out "$K"
if expect_exit 0 -- "$PCAPFERRY" keys trust "$K/secretary.pub" --keyring "$T/ring-secretary"; then
    expect_exit 0 -- "$PCAPFERRY" keys list --keyring "$T/ring-secretary"
    expect_stdout_matches "^secretary +sensor +[0-9a-f]{32} +trusted$"
fi

# -------------------------------------------------- secret key file handling
make_pcap a.pcap --packets 20 --seed 1
B=$T/bundles
mkdir -p "$B"
expect_exit 0 -- "$PCAPFERRY" bundle create --key "$K/s1.key" --to "$K/c1.pub" --out "$B" --seq 1 "$PF_IN/a.pcap" ||
    die "cannot create a bundle with good keys"
bundle1=$(cat "$PF_OUT")

# create_refused CODE TEXT KEYFILE: bundle create with that sensor key fails
# and leaves the output directory empty.
create_refused() {
    local code=$1 text=$2 key=$3 out="$T/out-refused"
    rm -rf "$out"
    mkdir -p "$out"
    expect_exit "$code" -- "$PCAPFERRY" bundle create --key "$key" --to "$K/c1.pub" --out "$out" \
        --seq 7 "$PF_IN/a.pcap"
    expect_stderr_contains "$text"
    expect_dir_empty "$out"
}
# open_refused CODE TEXT KEYFILE: bundle open with that central key fails
# and writes nothing.
open_refused() {
    local code=$1 text=$2 key=$3 out="$T/open-refused"
    rm -rf "$out"
    mkdir -p "$out"
    expect_exit "$code" -- "$PCAPFERRY" bundle open --key "$key" --keyring "$R" --out "$out" "$bundle1"
    expect_stderr_contains "$text"
    expect_dir_empty "$out"
}

section "secret keys readable by group or others are refused"
mkdir -p "$T/perm"
for mode in 644 640 604 660 606 700 601; do
    cp "$K/s1.key" "$T/perm/s.key"
    cp "$K/c1.key" "$T/perm/c.key"
    chmod "$mode" "$T/perm/s.key" "$T/perm/c.key"
    if [[ "$mode" == 700 ]]; then
        # owner-only is fine whatever the owner bits are
        rm -rf "$T/out-700"
        expect_exit 0 -- "$PCAPFERRY" bundle create --key "$T/perm/s.key" --to "$K/c1.pub" \
            --out "$T/out-700" --seq 9 "$PF_IN/a.pcap"
        continue
    fi
    create_refused 2 "too open" "$T/perm/s.key"
    expect_stderr_contains "chmod 600"
    expect_stderr_contains "$T/perm/s.key"
    open_refused 2 "too open" "$T/perm/c.key"
    expect_stderr_contains "chmod 600"
    expect_stderr_contains "$T/perm/c.key"
    rm -f "$T/perm/s.key" "$T/perm/c.key"
done

section "keys show warns about a secret key others can read"
cp "$K/s1.key" "$T/perm/shown.key"
chmod 644 "$T/perm/shown.key"
expect_exit 0 -- "$PCAPFERRY" keys show "$T/perm/shown.key"
expect_stdout_matches "^key id: +$gen_sensor_id$"
expect_stderr_contains "too open"
chmod 600 "$T/perm/shown.key"
expect_exit 0 -- "$PCAPFERRY" keys show "$T/perm/shown.key"
expect_stderr_lacks "too open"

section "a secret key that is a symbolic link is refused"
ln -s "$K/s1.key" "$T/perm/link-s.key"
ln -s "$K/c1.key" "$T/perm/link-c.key"
create_refused 2 "symbolic link" "$T/perm/link-s.key"
open_refused 2 "symbolic link" "$T/perm/link-c.key"

section "wrong kind of key"
# private copies of the .pub files, so the mode check does not answer first
install -m 600 "$K/s1.pub" "$T/perm/s1-copy.pub"
install -m 600 "$K/c1.pub" "$T/perm/c1-copy.pub"
create_refused 2 "public key" "$T/perm/s1-copy.pub"
create_refused 2 "sensor key" "$K/c1.key"
open_refused 2 "public key" "$T/perm/c1-copy.pub"
open_refused 2 "central secret key" "$K/s1.key"
create_refused 2 "cannot open" "$K/missing.key"

section "corrupted key files are refused with a message naming the problem"
C=$T/corrupt
mkdir -p "$C"
# corrupt NAME SOURCE SED-SCRIPT: a private copy of SOURCE edited by sed
corrupt() {
    install -m 600 "$2" "$C/$1"
    sed -i -e "$3" "$C/$1"
    if cmp -s "$2" "$C/$1"; then
        fail "test setup: sed '$3' did not change $1"
    fi
}
# Replace the first base64 character of a field by another valid one: the
# text is still base64 but no longer the same key.
corrupt s-epub.key "$K/s1.key" '/^ed25519-public: /{s/: A/: B/;t;s/: [^A]/: A/}'
corrupt s-esec.key "$K/s1.key" '/^ed25519-secret: /{s/: A/: B/;t;s/: [^A]/: A/}'
corrupt s-notb64.key "$K/s1.key" 's/^\(ed25519-secret: ...\)./\1!/'
corrupt s-short.key "$K/s1.key" 's/^\(ed25519-secret: \)..../\1/'
corrupt s-keyid.key "$K/s1.key" "s/^key-id: .*/key-id: $gen_central_id/"
corrupt s-nokeyid.key "$K/s1.key" '/^key-id:/d'
corrupt s-nosec.key "$K/s1.key" '/^ed25519-secret:/d'
corrupt s-unknown.key "$K/s1.key" "\$a comment: hello"
corrupt s-twice.key "$K/s1.key" '/^name:/p'
corrupt s-type.key "$K/s1.key" '1s/.*/pcapferry-sensor-secret-key-v9/'
install -m 600 /dev/null "$C/s-empty.key"
corrupt c-xsec.key "$K/c1.key" '/^x25519-secret: /{s/: A/: B/;t;s/: [^A]/: A/}'
corrupt c-noxsec.key "$K/c1.key" '/^x25519-secret:/d'
corrupt c-keyid.key "$K/c1.key" "s/^key-id: .*/key-id: $gen_sensor_id/"
corrupt c-unknown.key "$K/c1.key" "\$a x25519-extra: AAAA"
corrupt s-belong.key "$K/s1.key" "\$a $(grep '^x25519-public:' "$K/c1.pub")"

# A broken --key is a configuration problem (exit 2), not a rejected input:
# exit 1 from create means "this capture was refused", from open "this
# bundle was refused", and a caller would set aside good captures or bundles.
while read -r file text; do
    create_refused 2 "$text" "$C/$file"
    expect_stderr_contains "$C/$file"
    # keys show reads only the public part, but must still refuse
    case $file in s-esec.key | s-notb64.key | s-short.key | s-nosec.key) continue ;; esac
    expect_exit 1 -- "$PCAPFERRY" keys show "$C/$file"
    expect_stderr_contains "$text"
done <<'EOF'
s-epub.key key-id does not match
s-esec.key halves do not match
s-notb64.key 'ed25519-secret' is not 64 bytes of base64
s-short.key 'ed25519-secret' is not 64 bytes of base64
s-keyid.key key-id does not match
s-nokeyid.key key-id does not match
s-nosec.key missing field 'ed25519-secret'
s-unknown.key unknown field 'comment'
s-twice.key appears twice
s-type.key not a pcapferry key file
s-belong.key does not belong in this key type
s-empty.key empty key file
EOF
while read -r file text; do
    open_refused 2 "$text" "$C/$file"
    expect_stderr_contains "$C/$file"
done <<'EOF'
c-xsec.key halves do not match
c-noxsec.key missing field 'x25519-secret'
c-keyid.key key-id does not match
c-unknown.key unknown field 'x25519-extra'
s-empty.key empty key file
EOF

section "corrupted public key files"
install -m 644 "$K/s1.pub" "$C/epub.pub"
sed -i '/^ed25519-public: /{s/: A/: B/;t;s/: [^A]/: A/}' "$C/epub.pub"
before=$(dir_listing "$R")
expect_exit 1 -- "$PCAPFERRY" keys trust "$C/epub.pub" --keyring "$R"
expect_stderr_contains "key-id does not match"
expect_listing "keyring unchanged after a refused trust" "$R" "$before"
# --to is configuration too
install -m 644 "$K/c1.pub" "$C/xpub.pub"
sed -i '/^x25519-public: /{s/: A/: B/;t;s/: [^A]/: A/}' "$C/xpub.pub"
rm -rf "$T/out-refused" && mkdir -p "$T/out-refused"
expect_exit 2 -- "$PCAPFERRY" bundle create --key "$K/s1.key" --to "$C/xpub.pub" --out "$T/out-refused" \
    --seq 7 "$PF_IN/a.pcap"
expect_stderr_contains "key-id does not match"
expect_dir_empty "$T/out-refused"

section "a damaged keyring is an environment error, not a verdict on the bundle"
cp -r "$R" "$T/ring-damaged"
sed -i 's/^name: .*/name: -damaged/' "$T/ring-damaged/$gen_sensor_id.pub"
expect_exit 2 -- "$PCAPFERRY" bundle verify --keyring "$T/ring-damaged" "$bundle1"
expect_stdout_contains "ERROR"
expect_stdout_lacks "REJECTED"

# ------------------------------------------------------------------- revoke
section "revoke --after-seq: later bundles refused, older ones only when vouched for"
for seq in 2 3; do
    expect_exit 0 -- "$PCAPFERRY" bundle create --key "$K/s1.key" --to "$K/c1.pub" --out "$B" \
        --seq "$seq" "$PF_IN/a.pcap" || die "cannot create bundle seq $seq"
    printf -v "bundle$seq" '%s' "$(cat "$PF_OUT")"
done
bundle2=${bundle2:?} bundle3=${bundle3:?}
expect_exit 0 -- "$PCAPFERRY" bundle verify --keyring "$R" "$bundle1" "$bundle2" "$bundle3"
expect_eq "OK lines before revoking" 3 "$(grep -c ': OK ' "$PF_OUT")"
grep -F "$bundle2: OK" "$PF_OUT" >"$T/verify-before.txt"

cp -r "$R" "$T/ring-after2"
expect_exit 0 -- "$PCAPFERRY" keys revoke "$K/s1.pub" --keyring "$T/ring-after2" --after-seq 2
expect_exit 0 -- "$PCAPFERRY" keys list --keyring "$T/ring-after2"
expect_stdout_matches "^s1 +sensor +$gen_sensor_id +revoked after seq 2$"
# Without import state, seq <= 2 is only accepted once its hash is named:
# the holder of a stolen key can number a new bundle 2 as well.
expect_exit 1 -- "$PCAPFERRY" bundle verify --keyring "$T/ring-after2" "$bundle2"
expect_stdout_contains "$bundle2: REJECTED"
expect_stdout_contains "is not vouched for"
hash2=$(sed -n 's/.* hash=\([0-9a-f]\{64\}\).*/\1/p' "$T/verify-before.txt")
expect_true "bundle verify printed seq 2's hash before the revocation" test -n "$hash2"
expect_exit 0 -- "$PCAPFERRY" keys revoke "$K/s1.pub" --keyring "$T/ring-after2" --after-seq 2 \
    --allow "$hash2"
expect_stdout_contains "bundles after seq 2 are refused"
expect_exit 0 -- "$PCAPFERRY" keys list --keyring "$T/ring-after2"
expect_stdout_matches "^s1 +sensor +$gen_sensor_id +revoked after seq 2, 1 hash allowed$"
expect_exit 0 -- "$PCAPFERRY" bundle verify --keyring "$T/ring-after2" "$bundle2"
expect_stdout_contains "$bundle2: OK sensor=s1 seq=2 "
expect_exit 1 -- "$PCAPFERRY" bundle verify --keyring "$T/ring-after2" "$bundle1"
expect_stdout_contains "is not vouched for"
expect_exit 1 -- "$PCAPFERRY" bundle verify --keyring "$T/ring-after2" "$bundle3"
expect_stdout_contains "$bundle3: REJECTED"
expect_stdout_contains "revoked"
expect_exit 1 -- "$PCAPFERRY" bundle verify --keyring "$T/ring-after2" "$bundle2" "$bundle3"
expect_stdout_contains "$bundle2: OK"
expect_stdout_contains "$bundle3: REJECTED"
mkdir -p "$T/open-rev"
expect_exit 1 -- "$PCAPFERRY" bundle open --key "$K/c1.key" --keyring "$T/ring-after2" --out "$T/open-rev" "$bundle3"
expect_stderr_contains "revoked"
expect_dir_empty "$T/open-rev"
expect_exit 0 -- "$PCAPFERRY" bundle open --key "$K/c1.key" --keyring "$T/ring-after2" --out "$T/open-rev" "$bundle2"
expect_same_file "bundle seq 2 opens under a revoke after seq 2" "$PF_IN/a.pcap" "$T/open-rev/a.pcap"

section "revoke without --after-seq rejects everything"
cp -r "$T/ring-after2" "$T/ring-all"
expect_exit 0 -- "$PCAPFERRY" keys revoke "$K/s1.pub" --keyring "$T/ring-all"
expect_exit 0 -- "$PCAPFERRY" keys list --keyring "$T/ring-all"
expect_stdout_matches "^s1 +sensor +$gen_sensor_id +revoked$"
for b in "$bundle1" "$bundle2" "$bundle3"; do
    expect_exit 1 -- "$PCAPFERRY" bundle verify --keyring "$T/ring-all" "$b"
    expect_stdout_contains "REJECTED"
    expect_stdout_contains "revoked"
done

section "a revocation can be tightened, never loosened"
expect_exit 2 -- "$PCAPFERRY" keys revoke "$K/s1.pub" --keyring "$T/ring-all" --after-seq 3
expect_stderr_contains "never loosened"
expect_exit 1 -- "$PCAPFERRY" bundle verify --keyring "$T/ring-all" "$bundle1"
expect_stdout_contains "revoked"
expect_exit 2 -- "$PCAPFERRY" keys revoke "$K/s1.pub" --keyring "$T/ring-after2" --after-seq 3
expect_stderr_contains "never loosened"
expect_exit 1 -- "$PCAPFERRY" bundle verify --keyring "$T/ring-after2" "$bundle3"
# trusting a revoked key again does not lift the revocation
expect_exit 0 -- "$PCAPFERRY" keys trust "$K/s1.pub" --keyring "$T/ring-after2"
expect_stdout_contains "revoked"
expect_exit 1 -- "$PCAPFERRY" bundle verify --keyring "$T/ring-after2" "$bundle3"
expect_stdout_contains "revoked"

section "revoke by key id"
cp -r "$R" "$T/ring-id"
expect_exit 0 -- "$PCAPFERRY" keys revoke "$gen_sensor_id" --keyring "$T/ring-id" --after-seq 1
expect_stdout_contains "$gen_sensor_id"
expect_exit 1 -- "$PCAPFERRY" bundle verify --keyring "$T/ring-id" "$bundle1"
expect_stdout_contains "is not vouched for"
expect_exit 1 -- "$PCAPFERRY" bundle verify --keyring "$T/ring-id" "$bundle2"
expect_stdout_contains "revoked"
expect_exit 0 -- "$PCAPFERRY" keys revoke "$gen_sensor_id" --keyring "$T/ring-id"
expect_exit 1 -- "$PCAPFERRY" bundle verify --keyring "$T/ring-id" "$bundle1"
expect_stdout_contains "revoked"
# the untouched keyring still accepts everything
expect_exit 0 -- "$PCAPFERRY" bundle verify --keyring "$R" "$bundle1" "$bundle2" "$bundle3"

section "revoke usage errors"
expect_exit 2 -- "$PCAPFERRY" keys revoke "$gen_sensor_id" --keyring "$T/ring-id" --after-seq abc
expect_exit 2 -- "$PCAPFERRY" keys revoke "$gen_sensor_id"
expect_exit 2 -- "$PCAPFERRY" keys revoke "$T/no-such.pub" --keyring "$T/ring-id"
expect_stderr_contains "not a key id"
expect_exit 2 -- "$PCAPFERRY" keys frobnicate
expect_stderr_contains "unknown keys command"

summary
