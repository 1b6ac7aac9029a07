#!/usr/bin/env bash
# Permissions of the documented central-host deployment (issue 12 item 5):
# lays the layout out under a scratch root exactly as the package does
# (packaging/systemd/pcapferry.tmpfiles, then pcapferry-add-uploader for two
# sensors), with throwaway accounts standing in for pcapferry, two sensors'
# upload accounts, Arkime's account and an unrelated local user; runs a real
# import as the importer's account; then tries, as each account (setpriv),
# what it must and must not be able to do:
# - an upload account writes its own incoming area, and cannot list, write,
#   delete or rename another sensor's, nor list incoming/;
# - it reads its own receipts and not another sensor's;
# - it cannot read anything decrypted: /var/lib/pcapferry (import state,
#   held captures) or the ingest directory;
# - Arkime's account reads and deletes (capture --delete) delivered pcaps,
#   and reads nothing else of ours; an unrelated user reads nothing.
# The helper refuses an upload account that is in the importer's group, and
# postinst makes the same directories as tmpfiles.
#
# PF_PERMS_TREE=DIR judges another tree's packaging/ instead (e.g. an old
# commit's, `git archive 70eb8a0 packaging docs | tar -x -C DIR`); a tree
# without pcapferry-add-uploader gets its docs/DEPLOY.md layout of then: one
# rsync account in group pcapferry writing incoming/, ingest 0755.
# Runs only as root (useradd); every account it made is removed on exit.
# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.sh
. "${PF_TESTLIB:-$(dirname "${BASH_SOURCE[0]}")/lib.sh}"

require_binaries
((EUID == 0)) || skip "needs root (makes throwaway accounts and runs commands as them)"
require_cmd useradd userdel groupdel usermod setpriv systemd-tmpfiles rsync getent stat awk cmp

ROOT=$(cd "$pf_lib_dir/../.." && pwd)
TREE=${PF_PERMS_TREE:-$ROOT}
TMPFILES=$TREE/packaging/systemd/pcapferry.tmpfiles
POSTINST=$TREE/packaging/debian/postinst
HELPER=$TREE/packaging/sbin/pcapferry-add-uploader
[[ -f "$TMPFILES" ]] || die "no $TMPFILES"

# Short, unique account names (useradd allows 32 characters).
P=pfp$$
IMP=${P}i # pcapferry: capture drop user and importer
UPA=${P}a # sensor plant-a's upload account
UPB=${P}b # sensor plant-b's upload account
ARK=${P}k # Arkime's capture (its group: Arkime's group)
OTH=${P}o # a local user with nothing to do with pcapferry
BAD=${P}x # an upload account wrongly put in the importer's group
MADE=()
# shellcheck disable=SC2317 # run by the EXIT trap
perms_exit() {
    local rc=$? u
    for u in "${MADE[@]}"; do
        userdel "$u" >/dev/null 2>&1
        groupdel "$u" >/dev/null 2>&1
    done
    (exit "$rc") # pf_cleanup reads the status from $?
    pf_cleanup
}
trap perms_exit EXIT
for u in "$IMP" "$UPA" "$UPB" "$ARK" "$OTH" "$BAD"; do
    getent passwd "$u" >/dev/null && die "account $u exists already"
    useradd --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$u" ||
        die "useradd $u failed"
    MADE+=("$u")
done
usermod -a -G "$IMP" "$BAD" || die "usermod $BAD failed"

# as USER cmd...: run cmd as USER with its own groups, nothing of root's.
as() {
    local u=$1
    shift
    setpriv --reuid="$u" --regid="$(id -g "$u")" --init-groups -- "$@"
}

T=$PF_TMP
chmod 0711 "$T" # the accounts must reach the scratch root below
R=$T/root
BIN=$T/bin/pcapferry
mkdir -p "$T/bin" "$R/etc/pcapferry" "$R/data"
install -m 0755 "$PCAPFERRY" "$BIN" || die "cannot copy $PCAPFERRY"
# LeakSanitizer cannot always trace a process that changed its uid; leaks
# are the other suites' business.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"

# -------------------------------------------------------------------- layout
section "layout (from $TREE)"
# tmpfiles.d with the throwaway importer for pcapferry, by number (the
# scratch root has no passwd file of its own).
awk -v u="$(id -u "$IMP")" -v g="$(id -g "$IMP")" '
    $1 == "d" { if ($4 == "pcapferry") $4 = u; if ($4 == "root") $4 = 0
                if ($5 == "pcapferry") $5 = g; if ($5 == "root") $5 = 0 }
    { print }' "$TMPFILES" >"$T/layout.tmpfiles"
expect_exit 0 -- systemd-tmpfiles --create --root="$R" "$T/layout.tmpfiles" ||
    die "systemd-tmpfiles --create failed"
# what the import units' StateDirectory=pcapferry/import makes
install -d -o "$IMP" -g "$IMP" -m 0750 "$R/var/lib/pcapferry/import"
IN=$R/var/spool/pcapferry/incoming
RCPT=$R/var/spool/pcapferry/receipts
INGEST=$R/data/ingest
if [[ -x "$HELPER" ]]; then
    for s in a b; do
        u=$UPA
        [[ $s == b ]] && u=$UPB
        expect_exit 0 -- "$HELPER" --root "$R" --importer "$IMP" --arkime-group "$ARK" \
            --user "$u" "plant-$s" || die "pcapferry-add-uploader plant-$s failed"
    done
    IN_A=$IN/plant-a IN_B=$IN/plant-b
    # shellcheck disable=SC2054 # one rsync option
    RSYNC_UP=(rsync -rtO --chmod=D2770,F640 --partial-dir=.rsync-partial --exclude=.exported)

    section "the helper refuses what would undo the layout"
    expect_exit 1 -- "$HELPER" --root "$R" --importer "$IMP" --arkime-group "$ARK" \
        --user "$BAD" plant-x
    expect_stderr_contains "$BAD is in group $IMP, which can read decrypted captures"
    expect_exit 1 -- "$HELPER" --root "$R" --importer "$IMP" --arkime-group "$ARK" \
        --user "$UPA" ../plant-x
    expect_stderr_contains "not a sensor name"
    expect_false "no plant-x directory was made" test -e "$IN/plant-x"
else
    echo "no pcapferry-add-uploader in $TREE: the old DEPLOY.md layout"
    for u in "$UPA" "$UPB"; do
        usermod -a -G "$IMP" "$u" || die "usermod $u failed"
    done
    install -d -o "$IMP" -g "$IMP" -m 0755 "$INGEST"
    IN_A=$IN IN_B=$IN
    RSYNC_UP=(rsync -rtO --partial-dir=.rsync-partial --exclude=.exported)
fi

# ----------------------------------------------------------------- bundles
section "bundles"
K=$T/keys
for n in plant-a plant-b; do
    expect_exit 0 -- "$BIN" keys generate sensor "$n" --out "$K" || die "keys generate $n"
    expect_exit 0 -- "$BIN" keys trust "$K/$n.pub" --keyring "$R/etc/pcapferry/keyring" ||
        die "keys trust $n"
done
expect_exit 0 -- "$BIN" keys generate central arkime --out "$R/etc/pcapferry" || die "central key"
chown "$IMP:" "$R/etc/pcapferry/arkime.key"
mkdir -p "$T/pcaps"
"$PCAPGEN" --packets 50 --seed 1 "$T/pcaps/a.pcap" >/dev/null || die "pcapgen"
"$PCAPGEN" --packets 50 --seed 2 "$T/pcaps/b.pcap" >/dev/null || die "pcapgen"
# snaplen 64: truncated packets, which the importer holds (decrypted) in
# quarantine/held/ instead of delivering
"$PCAPGEN" --packets 50 --seed 3 --snaplen 64 --start 1700000100 "$T/pcaps/held.pcap" \
    >/dev/null || die "pcapgen"
for s in a b; do
    files=("$T/pcaps/$s.pcap")
    [[ $s == b ]] && files+=("$T/pcaps/held.pcap")
    expect_exit 0 -- "$BIN" bundle create --key "$K/plant-$s.key" --to "$R/etc/pcapferry/arkime.pub" \
        --out "$T/outbox-$s" --seq 1 "${files[@]}" || die "bundle create plant-$s"
done
chmod -R a+rX "$T/outbox-a" "$T/outbox-b" # the sensors' outboxes, as rsync's source
BUNDLE_B=$(cd "$T/outbox-b" && ls -- *.pcapferry)

# ----------------------------------------------------------------- uploads
section "uploads"
expect_true "B uploads into its incoming area" as "$UPB" "${RSYNC_UP[@]}" "$T/outbox-b/" "$IN_B/"
expect_true "A uploads into its incoming area" as "$UPA" "${RSYNC_UP[@]}" "$T/outbox-a/" "$IN_A/"
expect_true "B's upload belongs to the importer's group" \
    test "$(stat -c %G "$IN_B/$BUNDLE_B" 2>/dev/null)" = "$IMP"
expect_false "A cannot list B's incoming area" as "$UPA" ls "$IN_B"
expect_false "A cannot read B's bundle" as "$UPA" cat "$IN_B/$BUNDLE_B"
expect_false "A cannot write into B's incoming area" as "$UPA" cp "$T/outbox-a/$(cd "$T/outbox-a" && ls)" \
    "$IN_B/.planted.pcapferry"
rm -f "$IN_B/.planted.pcapferry"
expect_false "A cannot delete B's bundle" as "$UPA" rm -f "$IN_B/$BUNDLE_B"
expect_false "A cannot rename B's bundle away" as "$UPA" mv "$IN_B/$BUNDLE_B" "$IN_B/.x"
expect_false "A cannot rename B's incoming area away" as "$UPA" mv "$IN_B" "$IN_B.x"
expect_false "A cannot list incoming/ (other sensors' names)" as "$UPA" ls "$IN"
expect_true "B's bundle is still there" test -f "$IN_B/$BUNDLE_B" ||
    as "$UPB" "${RSYNC_UP[@]}" "$T/outbox-b/" "$IN_B/" # so that the checks below still run

# ------------------------------------------------------------------ import
section "import, as the importer's account"
# the import units: User=pcapferry, UMask=0022
expect_exit 0 -- as "$IMP" sh -c 'umask 022 && exec "$@"' _ "$BIN" import \
    --key "$R/etc/pcapferry/arkime.key" --keyring "$R/etc/pcapferry/keyring" \
    --state "$R/var/lib/pcapferry/import" --ingest "$INGEST" --settle-ms 0 \
    --receipts "$RCPT" --delete-source "$IN"
[[ $PF_RC == 0 ]] || pf_show_last
expect_true "the importer removed A's bundle" test -z "$(ls "$IN_A"/*.pcapferry 2>/dev/null)"
expect_true "the importer removed B's bundle" test ! -e "$IN_B/$BUNDLE_B"
PCAP_A=$(find "$INGEST/plant-a" -name '*.pcap' 2>/dev/null | head -n 1)
PCAP_B=$(find "$INGEST/plant-b" -name '*.pcap' 2>/dev/null | head -n 1)
HELD=$(find "$R/var/lib/pcapferry" -path '*held*' -type f -name '*.pcap' 2>/dev/null | head -n 1)
STATEF=$(find "$R/var/lib/pcapferry/import" -type f -size +0 -name '*.manifest.json' ! -path '*held*' 2>/dev/null | head -n 1)
RCPT_A=$(find "$RCPT/plant-a" -type f 2>/dev/null | head -n 1)
[[ -n "$PCAP_A" && -n "$PCAP_B" ]] || die "no pcap delivered for plant-a and plant-b"
[[ -n "$HELD" ]] || die "no held capture under /var/lib/pcapferry"
[[ -n "$STATEF" ]] || die "no import state file"
[[ -n "$RCPT_A" ]] || die "no receipt for plant-a"
expect_true "a delivered pcap is the original" cmp "$PCAP_A" "$T/pcaps/a.pcap"

# ------------------------------------------------- nothing decrypted for them
section "upload accounts: no decrypted data, no one else's receipts"
for u in "$UPA" "$UPB"; do
    expect_false "$u cannot list /var/lib/pcapferry" as "$u" ls "$R/var/lib/pcapferry"
    expect_false "$u cannot read the import state ($STATEF)" as "$u" cat "$STATEF"
    expect_false "$u cannot read a held capture" as "$u" cat "$HELD"
    expect_false "$u cannot list the ingest directory" as "$u" ls "$INGEST"
    expect_false "$u cannot read its own sensor's delivered pcap" as "$u" cat "$PCAP_A"
    expect_false "$u cannot read another sensor's delivered pcap" as "$u" cat "$PCAP_B"
done
expect_true "A reads its own receipts" as "$UPA" cat "$RCPT_A"
expect_false "B cannot read A's receipts" as "$UPB" cat "$RCPT_A"
expect_false "B cannot list A's receipts" as "$UPB" ls "$RCPT/plant-a"
expect_false "A cannot list receipts/ (other sensors' names)" as "$UPA" ls "$RCPT"
expect_false "A cannot write into A's receipts" as "$UPA" touch "$RCPT/plant-a/.planted"

section "Arkime's account: ingest, and nothing else of ours"
as "$ARK" cat "$PCAP_A" >"$T/ark.pcap" 2>/dev/null
expect_true "Arkime reads a delivered pcap" cmp "$T/ark.pcap" "$T/pcaps/a.pcap"
expect_true "Arkime lists the ingest directory (capture -m -R)" as "$ARK" ls "$INGEST" "$INGEST/plant-a"
expect_true "Arkime deletes a pcap it has read (capture --copy --delete)" as "$ARK" rm "$PCAP_B"
expect_false "Arkime cannot list /var/lib/pcapferry" as "$ARK" ls "$R/var/lib/pcapferry"
expect_false "Arkime cannot read a held capture" as "$ARK" cat "$HELD"
expect_false "Arkime cannot read the import state" as "$ARK" cat "$STATEF"
expect_false "Arkime cannot list an incoming area" as "$ARK" ls "$IN_A"
expect_false "Arkime cannot read receipts" as "$ARK" cat "$RCPT_A"
expect_false "Arkime cannot write into an incoming area" as "$ARK" touch "$IN_A/x.pcapferry"

section "an unrelated local account: nothing"
expect_false "a local user cannot read a delivered pcap" as "$OTH" cat "$PCAP_A"
expect_false "a local user cannot list the ingest directory" as "$OTH" ls "$INGEST"
expect_false "a local user cannot read a held capture" as "$OTH" cat "$HELD"
expect_false "a local user cannot read receipts" as "$OTH" cat "$RCPT_A"

section "the importer keeps working in the layout"
expect_true "A uploads again after the import" as "$UPA" "${RSYNC_UP[@]}" "$T/outbox-a/" "$IN_A/"
expect_exit 0 -- as "$IMP" "$BIN" import --key "$R/etc/pcapferry/arkime.key" \
    --keyring "$R/etc/pcapferry/keyring" --state "$R/var/lib/pcapferry/import" \
    --ingest "$INGEST" --settle-ms 0 --receipts "$RCPT" --delete-source "$IN"
expect_true "the importer removed the re-upload (a duplicate)" \
    test -z "$(ls "$IN_A"/*.pcapferry 2>/dev/null)"

# ------------------------------------------------------ postinst = tmpfiles
section "postinst makes the directories tmpfiles makes"
if [[ -f "$POSTINST" ]]; then
    from_postinst=$(sed -n 's/^ *\(mkdir\|dir\)_owned \(\/[^ ]*\) \([^ ]*\) \([^ ]*\) 0*\([0-7]*\)$/\2 \3 \4 \5/p' \
        "$POSTINST" | sort)
    from_tmpfiles=$(awk '$1 == "d" { m = $3; sub(/^0+/, "", m); print $2, $4, $5, m }' "$TMPFILES" | sort)
    expect_eq "postinst's directories" "$from_tmpfiles" "$from_postinst"
fi

summary
