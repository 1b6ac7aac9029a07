#!/usr/bin/env bash
# Fault injection across the whole loop, with real traffic: a veth pair
# between two private network namespaces, tcpreplay of pcapgen captures on
# one end, the capture daemon (dropped to nobody, -G 1, --receipts on the
# stick) on the other. Every round replays a new capture and, while it
# flows, kills with SIGKILL
#   - the capture daemon: at a random moment, or (restarted with
#     PCAPFERRY_FAILPOINT) at a point of its sealer: seal-start, rename-before
#     / rename-after (the bundle's rename into the outbox), seal-created,
#     seal-pcap-removed, seal-done; or not at all (a control round);
#   - bundle export --central onto a "stick" directory: at a random moment or
#     at rename-before / rename-after (the copy's rename), export-copied,
#     export-verified, export-marked;
#   - pcapferry import of the stick: at a random moment or at import-staged,
#     import-intent, import-renamed, import-announced, import-delivered;
# then restarts each as an operator would. At the end: a clean SIGTERM stop,
# export, import, export --central and bundle prune. Invariants:
#   1. every packet that reached a sync point is delivered exactly once into
#      INGEST: packets in a rotated spool file (fdatasynced and renamed at
#      rotation), complete records of an .active file left by a kill (a
#      SIGKILL, unlike a power cut, keeps what was written), everything after
#      a clean stop. Packets are told apart by their bytes (pcapgen payloads
#      are random). No packet is delivered twice. Packets may be lost only in
#      rounds where the daemon was killed or restarted (its write buffer, the
#      kernel ring, the time it was down), beyond the drops it reports;
#   2. arkime_watch (Arkime's monitor mode) runs over INGEST the whole time:
#      it never sees a partial or vanished file, and every file it read is the
#      final one; a second announcement only where the importer said it
#      announced again after a kill; tcpdump reads every delivered file;
#   3. no (sensor, seq) names two bundles: every bundle ever seen in the
#      outbox or on the stick is kept (hard link) and inspected; the
#      importer's database agrees and it never reports equivocation;
#   4. a bundle disappears from the outbox only with a receipt confirming
#      its seq and hash already on the stick, or as a counted quota deletion
#      (gaps_before_this_bundle).
# PF_CHAOS_ROUNDS (default 21) and PF_CHAOS_SEED (default 1) make a run
# reproducible as far as timing allows; both are printed at the start.
# shellcheck source-path=SCRIPTDIR
# shellcheck disable=SC2317 # helpers run through wait_for and traps
# shellcheck source=lib.sh
. "${PF_TESTLIB:-$(dirname "${BASH_SOURCE[0]}")/lib.sh}"

require_binaries
require_json
require_cmd ip tcpreplay tcpdump jq python3 b2sum sqlite3 od
unset PCAP_INTERFACE PCAP_CAPTURE_SIZE PCAP_FILE_SIZE PCAP_BPF_FILTER PCAP_SENSOR_NAME \
    PCAP_FILE_ROTATE PCAPFERRY_FAILPOINT PCAPFERRY_FAILPOINT_SKIP
[[ "$(id -u)" == 0 ]] || skip "needs root (network namespaces, a veth pair, -Z)"
getent passwd nobody >/dev/null || skip "there is no user 'nobody' to drop to"
: "${ARKIME_WATCH:=$pf_lib_dir/../../build/tests/tools/arkime_watch}"
[[ -x "$ARKIME_WATCH" ]] || skip "ARKIME_WATCH=$ARKIME_WATCH is not an executable (build first)"

ROUNDS=${PF_CHAOS_ROUNDS:-21}
SEED=${PF_CHAOS_SEED:-1}
RANDOM=$SEED
T=$(cd "$PF_TMP" && pwd -P)
# the daemon runs as nobody and reads the receipts on the stick by path
chmod 755 "$T"
NSA=pfchaos-a-$$
NSB=pfchaos-b-$$
VA=pfxa$$
VB=pfxb$$
PIDS=()
WATCH_PID=
DPID=
STARTED=$(date +%s)
echo "chaos: PF_CHAOS_ROUNDS=$ROUNDS PF_CHAOS_SEED=$SEED (namespaces $NSA/$NSB)"

chaos_cleanup() {
    local p
    for p in "${PIDS[@]}" $DPID $WATCH_PID; do
        kill -9 "$p" 2>/dev/null
    done
    ip netns del "$NSA" 2>/dev/null
    ip netns del "$NSB" 2>/dev/null
    return 0
}
on_exit() {
    local rc=$?
    chaos_cleanup
    (exit "$rc")
    pf_cleanup
}
trap on_exit EXIT

if ! err=$(ip netns add "$NSA" 2>&1); then
    skip "cannot create a network namespace ('ip netns add' said: $err)"
fi
ip netns add "$NSB" 2>/dev/null || skip "cannot create a second network namespace"
{
    ip link add "$VA" type veth peer name "$VB" &&
        ip link set "$VA" netns "$NSA" &&
        ip link set "$VB" netns "$NSB" &&
        ip netns exec "$NSA" sysctl -qw "net.ipv6.conf.$VA.disable_ipv6=1" &&
        ip netns exec "$NSB" sysctl -qw "net.ipv6.conf.$VB.disable_ipv6=1" &&
        ip -n "$NSA" link set "$VA" mtu 9000 up &&
        ip -n "$NSB" link set "$VB" mtu 9000 up
} >"$T/setup.err" 2>&1 || {
    cat "$T/setup.err"
    skip "cannot set up a veth pair between private namespaces"
}
MAC_A=$(ip -n "$NSA" -o link show "$VA" | grep -o 'link/ether [0-9a-f:]*' | cut -d ' ' -f 2)
MAC_B=$(ip -n "$NSB" -o link show "$VB" | grep -o 'link/ether [0-9a-f:]*' | cut -d ' ' -f 2)
[[ -n "$MAC_A" && -n "$MAC_B" ]] || die "setup: no MAC address on the veth pair"
FILTER="not ether src $MAC_A and not ether src $MAC_B"

setup_keys chaos central1
pf_lsan_drop_setup
S=$SENSOR
EMPTY=$T/empty.conf
: >"$EMPTY"
SP=$T/sensor/spool
OB=$T/sensor/outbox
ST=$T/sensor/state
STICK=$T/stick
RCPT=$STICK/pcapferry-receipts
ING=$T/ingest
IST=$T/import-state
SEEN=$T/seen      # every bundle ever seen, hard-linked
SNAP=$T/snap      # spool files copied at kills
SENTD=$T/sent     # the replayed captures
LOGS=$T/logs
mkdir -p "$STICK" "$RCPT" "$ING/$S" "$SEEN" "$SNAP" "$SENTD" "$LOGS" "$IST"
chmod 755 "$STICK" "$RCPT"

# ------------------------------------------------------------------ helpers

wait_for() {
    local limit=$1 i
    shift
    for ((i = 0; i < limit * 10; i++)); do
        "$@" && return 0
        sleep 0.1
    done
    "$@"
}

alive() {
    local st
    st=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 1
    [[ -n "$st" && "$st" != Z ]]
}

dead() {
    ! alive "$1"
}

# rnd N: 0..N-1 from the seeded generator.
rnd() {
    echo $((RANDOM % $1))
}

# msleep MS
msleep() {
    sleep "$(awk -v ms="$1" 'BEGIN { printf "%.3f", ms / 1000 }')"
}

# The per-packet identity tool: one line "DIGEST FILE" per packet (BLAKE2b
# of the packet bytes, not the time stamp). --strict fails on a file that is
# not a whole classic pcap; otherwise a cut last record is ignored, as the
# daemon's recovery cuts it.
cat >"$T/pkts.py" <<'EOF'
import hashlib, struct, sys
strict = sys.argv[1] == "--strict"
bad = 0
for path in sys.argv[2:]:
    try:
        data = open(path, "rb").read()
    except OSError as e:
        print("ERROR %s %s" % (path, e), file=sys.stderr); bad = 1; continue
    if len(data) < 24:
        if strict:
            print("ERROR %s: no pcap header" % path, file=sys.stderr); bad = 1
        continue
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        e = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        e = ">"
    else:
        print("ERROR %s: not a classic pcap" % path, file=sys.stderr); bad = 1; continue
    off = 24
    while off + 16 <= len(data):
        _, _, incl, _ = struct.unpack(e + "IIII", data[off:off + 16])
        if off + 16 + incl > len(data):
            break
        pkt = data[off + 16:off + 16 + incl]
        print(hashlib.blake2b(pkt, digest_size=10).hexdigest(), path)
        off += 16 + incl
    if off != len(data) and strict:
        print("ERROR %s: %d bytes after the last complete record" % (path, len(data) - off),
              file=sys.stderr); bad = 1
sys.exit(bad)
EOF
pkts() {
    python3 "$T/pkts.py" "$@"
}

bundles_in() {
    find "$1" -maxdepth 1 -type f -name '*.pcapferry' ! -name '.*' -printf '%f\n' 2>/dev/null | sort
}

# see_bundles DIR: hard-links every bundle of DIR into SEEN (a later bundle
# with the same name but other bytes is kept as NAME.2, ...). Each inode is
# compared once.
declare -A SEEN_INO=()
see_bundles() {
    local b k ino
    for b in $(bundles_in "$1"); do
        ino=$(stat -c %d.%i "$1/$b" 2>/dev/null) || continue
        [[ -n "${SEEN_INO[$ino]:-}" ]] && continue
        SEEN_INO[$ino]=1
        [[ -e "$SEEN/$b" ]] && cmp -s "$SEEN/$b" "$1/$b" && continue
        k=2
        while [[ -e "$SEEN/$b.$k" ]] && ! cmp -s "$SEEN/$b.$k" "$1/$b"; do k=$((k + 1)); done
        if [[ -e "$SEEN/$b" ]]; then
            [[ -e "$SEEN/$b.$k" ]] || ln "$1/$b" "$SEEN/$b.$k" 2>/dev/null
        else
            ln "$1/$b" "$SEEN/$b" 2>/dev/null
        fi
    done
}

# snapshot LABEL: the outbox listing and the receipts on the stick at this
# moment (invariant 4), and every bundle seen (invariant 3).
NSNAP=0
snapshot() {
    NSNAP=$((NSNAP + 1))
    see_bundles "$OB"
    see_bundles "$STICK/pcapferry/$S"
    {
        echo "# $NSNAP $1"
        bundles_in "$OB" | sed 's/^/B /'
        find "$RCPT" -type f -name '*.receipt' 2>/dev/null | sort | sed 's/^/R /'
    } >>"$T/outbox.snaps"
}

# copy_spool DEST: the spool's files as they are now (ready pcaps, .active
# files); files that vanish meanwhile are skipped.
copy_spool() {
    mkdir -p "$1"
    find "$SP" -maxdepth 1 -type f \( -name '*.pcap' -o -name '.active-*' \) \
        -exec cp -p {} "$1/" \; 2>/dev/null
}

# daemon_start [ENV=VALUE...]: the capture daemon in namespace A, in the
# environment pf_lsan_drop_setup chose for runs that drop privileges (capture_live
# covers its paths with --no-drop where LeakSanitizer cannot follow -Z); sets DPID.
NDAEMON=0
daemon_start() {
    NDAEMON=$((NDAEMON + 1))
    DLOG=$LOGS/daemon.$NDAEMON.log
    rm -f "$T/dpid"
    # in a subshell that reaps it, so a kill prints no "Killed" job notice
    (
        ip netns exec "$NSA" "${PF_Z_ENV[@]}" env "$@" "$PCAPFERRY" capture -c "$EMPTY" -i "$VA" -Z nobody \
            --key "$SENSOR_KEY" --to "$CENTRAL_PUB" --spool "$SP" --outbox "$OB" --state "$ST" \
            --receipts "$RCPT" -G 1 --level 1 -v "$FILTER" >"$DLOG" 2>&1 </dev/null &
        echo $! >"$T/dpid"
        wait $!
    ) 2>/dev/null &
    DWRAP=$!
    wait_for 5 test -s "$T/dpid" || die "the daemon was not started"
    DPID=$(cat "$T/dpid")
    wait_for 15 grep -qs 'capturing source=' "$DLOG" && return 0
    fail "daemon did not start within 15 s ($DLOG)"
    pf_show daemon "$DLOG"
    return 1
}

# daemon_reap: waits for a dead daemon; sets DRC to its exit status.
daemon_reap() {
    wait "$DWRAP"
    DRC=$?
    DPID=
}

# daemon_stop: SIGTERM; exit 0 within 10 s.
daemon_stop() {
    local rc
    kill -TERM "$DPID" 2>/dev/null
    wait_for 10 dead "$DPID" || kill -9 "$DPID" 2>/dev/null
    daemon_reap
    rc=$DRC
    expect_eq "SIGTERM: daemon exit status ($(basename "$DLOG"))" 0 "$rc" || pf_show daemon "$DLOG"
}

# run_killed LOG PLAN -- cmd...: runs cmd in the background; PLAN is
# "random:MS" (kill -9 after MS ms) or "fp:NAME" (cmd runs with
# PCAPFERRY_FAILPOINT=NAME), or "none". Prints the exit status.
run_killed() {
    local log=$1 plan=$2 pid rc
    shift 3
    case $plan in
    fp:*) env PCAPFERRY_FAILPOINT="${plan#fp:}" "$@" >"$log" 2>&1 </dev/null & ;;
    *) "$@" >"$log" 2>&1 </dev/null & ;;
    esac
    pid=$!
    if [[ $plan == random:* ]]; then
        msleep "${plan#random:}"
        kill -9 "$pid" 2>/dev/null
    fi
    wait "$pid" 2>/dev/null
    rc=$?
    echo "$rc"
}

EXPORT=("$PCAPFERRY" bundle export --outbox "$OB" --key "$SENSOR_PUB" --central "$CENTRAL_PUB" "$STICK")
IMPORT=("$PCAPFERRY" import --key "$CENTRAL_KEY" --keyring "$KEYRING" --state "$IST"
    --ingest "$ING" --settle-ms 0 "$STICK")
NRUN=0
# step NAME PLAN WANT...: one run of export/import with its kill plan; the
# exit status must be one of WANT (137 is always fine after a kill plan).
# Sanitizer reports fail. Sets STEP_RC.
step() {
    local name=$1 plan=$2 log
    shift 2
    NRUN=$((NRUN + 1))
    log=$LOGS/$NRUN.$name.log
    if [[ $name == export* ]]; then
        STEP_RC=$(run_killed "$log" "$plan" -- "${EXPORT[@]}")
    else
        STEP_RC=$(run_killed "$log" "$plan" -- "${IMPORT[@]}")
    fi
    if grep -Eq 'ERROR: (Address|Leak|UndefinedBehavior)Sanitizer|runtime error:' "$log"; then
        fail "sanitizer report from $name ($log)"
        pf_show "$name" "$log"
    fi
    local w ok=0
    for w in "$@"; do [[ "$STEP_RC" == "$w" ]] && ok=1; done
    [[ $plan != none && "$STEP_RC" == 137 ]] && ok=1
    if ((ok)); then
        pass "$name ($plan) exit $STEP_RC"
    else
        fail "$name ($plan): exit $STEP_RC, expected $*"
        pf_show "$name" "$log"
    fi
}

# ---------------------------------------------------------------- the plan

SEAL_FPS=(seal-start rename-before rename-after seal-created seal-pcap-removed seal-done)
# shellcheck disable=SC2034 # read through plan_for's nameref
EXPORT_FPS=(rename-before rename-after export-copied export-verified export-marked)
# shellcheck disable=SC2034 # read through plan_for's nameref
IMPORT_FPS=(import-staged import-intent import-renamed import-announced import-delivered)

# daemon: a third of the rounds random, a third at a sealer failpoint, a
# third untouched (there, no packet may be lost)
# (random: at a random moment, or while a bundle is being written)
DPLAN=()
for ((r = 1; r <= ROUNDS; r++)); do
    case $((r % 3)) in
    1) DPLAN[r]=fp:${SEAL_FPS[((r / 3) % ${#SEAL_FPS[@]})]} ;;
    2) if (((r / 3) % 2)); then DPLAN[r]=midseal; else DPLAN[r]=random:$((300 + $(rnd 1500))); fi ;;
    0) DPLAN[r]=none ;;
    esac
done
plan_for() { # plan_for FPS_ARRAY_NAME ROUND
    local -n fps=$1
    if (($2 % 2)); then
        echo "fp:${fps[(($2 / 2) % ${#fps[@]})]}"
    else
        echo "random:$((50 + $(rnd 600)))"
    fi
}

# ---------------------------------------------------------------- run

: >"$T/watch.log"
"$ARKIME_WATCH" --recursive "$ING" "$T/watch.log" >"$T/watch.out" 2>"$T/watch.err" &
WATCH_PID=$!
wait_for 10 grep -qsx ready "$T/watch.out" || die "arkime_watch did not start"

daemon_start || die "the capture daemon did not start"
: >"$T/outbox.snaps"
: >"$T/rounds"
declare -A LOSS_OK=() # rounds where the daemon was killed or restarted
for ((r = 1; r <= ROUNDS; r++)); do
    dplan=${DPLAN[r]}
    eplan=$(plan_for EXPORT_FPS "$r")
    iplan=$(plan_for IMPORT_FPS "$((r + 1))")
    dwhat=none
    if [[ $dplan == fp:* ]]; then
        # an operator restart (clean), then the daemon runs armed
        daemon_stop
        skipn=$(rnd 2)
        daemon_start PCAPFERRY_FAILPOINT="${dplan#fp:}" PCAPFERRY_FAILPOINT_SKIP="$skipn" ||
            die "the daemon did not restart"
        LOSS_OK[$r]=1
    fi
    "$PCAPGEN" --packets 3000 --rate 1500 --seed $((SEED * 1000 + r)) --start $((1700000000 + 600 * r)) \
        "$SENTD/r$r.pcap" >/dev/null 2>&1 || die "pcapgen failed"
    ip netns exec "$NSB" tcpreplay -i "$VB" --pps 1500 "$SENTD/r$r.pcap" >"$LOGS/replay.$r" 2>&1 &
    RP=$!
    t0=$(date +%s%3N)
    snapshot "round $r start"
    step export.$r "$eplan" 0 75
    erc=$STEP_RC
    [[ $eplan != none && $erc == 137 ]] && step export.$r.again none 0 75
    snapshot "round $r after export"
    case $dplan in
    random:*)
        left=$((${dplan#random:} - ($(date +%s%3N) - t0)))
        ((left > 0)) && msleep "$left"
        copy_spool "$SNAP/r$r.before"
        kill -9 "$DPID" 2>/dev/null
        daemon_reap
        copy_spool "$SNAP/r$r.after"
        dwhat="kill -9 at $((${dplan#random:}))ms (exit $DRC)"
        LOSS_OK[$r]=1
        daemon_start || die "the daemon did not restart"
        ;;
    midseal)
        # kill -9 as soon as a bundle is being written (its .part file in
        # the outbox): in the middle of sealing
        copy_spool "$SNAP/r$r.before"
        shopt -s nullglob dotglob
        for ((k = 0; k < 400; k++)); do
            parts=("$OB"/.*.part)
            ((${#parts[@]} > 0)) && break
            sleep 0.005
        done
        shopt -u nullglob dotglob
        kill -9 "$DPID" 2>/dev/null
        daemon_reap
        copy_spool "$SNAP/r$r.after"
        dwhat="kill -9 while sealing ($((${#parts[@]})) .part in the outbox, exit $DRC)"
        LOSS_OK[$r]=1
        daemon_start || die "the daemon did not restart"
        ;;
    fp:*)
        if wait_for 8 dead "$DPID"; then
            daemon_reap
            copy_spool "$SNAP/r$r.after"
            dwhat="died at ${dplan#fp:}+$skipn (exit $DRC)"
            [[ $DRC == 137 ]] || fail "round $r: daemon exit $DRC at failpoint ${dplan#fp:}"
            grep -Eq 'ERROR: (Address|Leak|UndefinedBehavior)Sanitizer|runtime error:' "$DLOG" &&
                fail "sanitizer report in $DLOG"
            daemon_start || die "the daemon did not restart"
        else
            fail "round $r: the daemon did not reach failpoint ${dplan#fp:} within 8 s"
            dwhat="failpoint ${dplan#fp:} not reached"
            daemon_stop
            daemon_start || die "the daemon did not restart"
        fi
        ;;
    esac
    step import.$r "$iplan" 0
    irc=$STEP_RC
    [[ $iplan != none && $irc == 137 ]] && step import.$r.again none 0
    snapshot "round $r after import"
    wait "$RP"
    sent=$(sed -n 's/^[[:space:]]*Successful packets:[[:space:]]*\([0-9]*\).*/\1/p' "$LOGS/replay.$r")
    snapshot "round $r end"
    line="round $r: daemon ${dplan} -> $dwhat; export $eplan -> $erc; import $iplan -> $irc;"
    line+=" sent ${sent:-?}; outbox $(bundles_in "$OB" | grep -c .);"
    line+=" stick $(bundles_in "$STICK/pcapferry/$S" | grep -c .);"
    line+=" delivered $(find "$ING/$S" -maxdepth 1 -name '*.pcap' ! -name '.*' | grep -c .) files"
    echo "$line" | tee -a "$T/rounds"
done

section "clean stop, export, import, prune"
copy_spool "$SNAP/final.before"
daemon_stop
expect_eq "spool empty after SIGTERM" "" "$(find "$SP" -mindepth 1 -printf '%f ')"
expect_eq "no temp file left in the outbox (killed seals)" "" "$(find "$OB" -maxdepth 1 -name '.*.part' -printf '%f ')"
snapshot "after stop"
step export.final none 0
snapshot "after final export"
step import.final none 0
snapshot "after final import"
step export.prune none 0
snapshot "after export --central"
expect_exit 0 -- "$PCAPFERRY" bundle prune --outbox "$OB" --receipts "$RCPT" --central "$CENTRAL_PUB"
snapshot "after bundle prune"
expect_eq "outbox empty once every bundle has a receipt" "" "$(bundles_in "$OB" | tr '\n' ' ')"
step import.last none 0
expect_true "the last import finds nothing new" -- grep -q ' 0 new,' "$LOGS/$NRUN.import.last.log"

# watcher: let it drain, then stop
sleep 0.5
kill -TERM "$WATCH_PID" 2>/dev/null
wait "$WATCH_PID"
expect_eq "arkime_watch exit status" 0 "$?"
WATCH_PID=

# ------------------------------------------------------------------ checks
section "invariant 1: every synced packet delivered exactly once"
mapfile -t DELIV < <(find "$ING/$S" -maxdepth 1 -type f -name '*.pcap' ! -name '.*' | sort)
expect_true "files were delivered (${#DELIV[@]})" -- test "${#DELIV[@]}" -gt 0
pkts --strict "${DELIV[@]}" >"$T/delivered.pk" 2>"$T/delivered.err" ||
    fail "delivered files that are not whole classic pcaps: $(head -n 3 "$T/delivered.err")"
bad=
for f in "${DELIV[@]}"; do
    tcpdump -n -r "$f" >/dev/null 2>&1 || bad+=" $(basename "$f")"
done
expect_eq "tcpdump reads every delivered file" "" "$bad"
expect_eq "stray files in INGEST (dot, .part, not pcap)" "" \
    "$(find "$ING" -mindepth 1 \( -type f ! -name '*.pcap' -o -name '.*' \) -printf '%P ')"
for ((r = 1; r <= ROUNDS; r++)); do
    pkts --lax "$SENTD/r$r.pcap" | awk -v r="$r" '{ print $1, r }'
done >"$T/sent.pk"
sent_dup=$(cut -d ' ' -f 1 "$T/sent.pk" | sort | uniq -d | wc -l)
echo "sent $(wc -l <"$T/sent.pk") packets, $sent_dup identical ones (ignored below)"
# must: the complete packets of every spool file copied after a kill or
# before the final stop
mapfile -t MUSTF < <(find "$SNAP" -type f | sort)
if ((${#MUSTF[@]} > 0)); then
    pkts --lax "${MUSTF[@]}" >"$T/must.pk"
else
    : >"$T/must.pk"
fi
python3 - "$T/sent.pk" "$T/delivered.pk" "$T/must.pk" "$ROUNDS" "$(
    IFS=,
    echo "${!LOSS_OK[*]}"
)" >"$T/acct" <<'EOF'
import sys, collections
sent = collections.defaultdict(list)
for l in open(sys.argv[1]):
    d, r = l.split(); sent[d].append(int(r))
ambig = {d for d, v in sent.items() if len(v) > 1}
deliv = collections.defaultdict(list)
for l in open(sys.argv[2]):
    d, f = l.split(); deliv[d].append(f)
must = {l.split()[0] for l in open(sys.argv[3])}
rounds = int(sys.argv[4])
lossok = {int(x) for x in sys.argv[5].split(",") if x}
dups = [(d, v) for d, v in deliv.items() if len(v) > 1 and d not in ambig]
foreign = [d for d in deliv if d not in sent]
missing = [d for d in must if d not in deliv and d in sent and d not in ambig]
print("DUPS %d" % len(dups))
for d, v in dups[:10]:
    print("DUP %s %s" % (d, " ".join(x.rsplit("/", 1)[-1] for x in v)))
print("FOREIGN %d" % len(foreign))
print("MUST %d MISSING %d" % (len(must), len(missing)))
for d in missing[:10]:
    print("MISS %s round %s" % (d, sent[d]))
for r in range(1, rounds + 1):
    s = [d for d, v in sent.items() if v == [r]]
    got = sum(1 for d in s if d in deliv)
    print("ROUND %d sent %d delivered %d lost %d %s" % (r, len(s), got, len(s) - got,
          "loss-allowed" if r in lossok else "no-loss"))
EOF
sed -n '/^DUP /p;/^MISS /p' "$T/acct" | sed 's/^/  /'
expect_eq "packets delivered more than once" "DUPS 0" "$(grep '^DUPS' "$T/acct")"
expect_eq "packets delivered that were never sent" "FOREIGN 0" "$(grep '^FOREIGN' "$T/acct")"
expect_eq "synced packets (spool copies after kills) not delivered" 0 \
    "$(awk '/^MUST/ { print $4 }' "$T/acct")"
drops=$(jq -s '[.[].files[].capture_stats.dropped_kernel // 0] | add // 0' \
    "$IST"/manifests/"$S"/*.manifest.json 2>/dev/null)
drops=${drops:-0}
echo "sensor-reported kernel drops: $drops"
bad=$(awk -v drops="$drops" '/^ROUND/ && $9 == "no-loss" && $8 > drops { printf "round %s lost %s; ", $2, $8 }' "$T/acct")
expect_eq "no packet lost in rounds where the daemon ran untouched" "" "$bad"
awk '/^ROUND/ { print "  " $0 }' "$T/acct"
lost_total=$(awk '/^ROUND/ { t += $8 } END { print t + 0 }' "$T/acct")
rec=$(jq -s '[.[].files[].capture_stats | select(.recovered == true)] | length' \
    "$IST"/manifests/"$S"/*.manifest.json 2>/dev/null)
echo "lost in kill rounds: $lost_total packets; files sealed as recovered=true: ${rec:-0}"
"$PCAPFERRY" import --status --json --state "$IST" >"$T/status.json" 2>/dev/null
expect_eq "import --status: gaps" 0 "$(jq -r --arg s "$S" '.[] | select(.sensor == $s) | .gaps' "$T/status.json")"

section "invariant 2: Arkime never saw a partial file"
{
    grep -E '^(OVERFLOW|CREATE )' "$T/watch.log"
    awk '$3 == "PARTIAL" || $3 == "MISSING"' "$T/watch.log"
} >"$T/watch.bad"
expect_eq "watcher: no overflow, no in-place creation, no partial or vanished file" "" \
    "$(head -n 5 "$T/watch.bad" | tr '\n' ' ')"
bad=
while read -r path size hash; do
    [[ "$size" =~ ^[0-9]+$ ]] || continue
    if [[ ! -f "$path" ]]; then
        bad+=" $(basename "$path")(gone)"
    elif [[ "$(b2_256 "$path")" != "$hash" ]]; then
        bad+=" $(basename "$path")(other bytes)"
    fi
done <"$T/watch.log"
expect_eq "every file the watcher read is a final delivered file with those bytes" "" "$bad"
seen_names=$(awk '$2 ~ /^[0-9]+$/ { print $1 }' "$T/watch.log" | sort -u)
expect_eq "the watcher saw every delivered file" "$(printf '%s\n' "${DELIV[@]}")" "$seen_names"
again=$(cat "$LOGS"/*.import*.log | grep -o 'recovered=[^ ]* (announced again' | sed 's/recovered=//; s/ .*//' | sort -u)
bad=$(awk '$2 ~ /^[0-9]+$/ { n[$1]++ } END { for (p in n) if (n[p] > 1) print p, n[p] }' "$T/watch.log" |
    while read -r p n; do
        if ((n > 2)) || ! grep -qxF "$(basename "$p")" <<<"$again"; then echo -n "$(basename "$p") x$n "; fi
    done)
expect_eq "announced twice only where the importer said it announced again" "" "$bad"
echo "files announced again after an importer kill: $(grep -c . <<<"$again")"

section "invariant 3: no sequence number names two bundles"
mapfile -t SEENF < <(find "$SEEN" -type f | sort)
expect_true "bundles seen ($(printf '%s\n' "${SEENF[@]}" | grep -c .))" -- test "${#SEENF[@]}" -gt 0
"$PCAPFERRY" bundle verify --keyring "$KEYRING" "${SEENF[@]}" >"$T/verify.out" 2>&1
expect_eq "every bundle seen verifies" "${#SEENF[@]}" "$(grep -c ': OK sensor=' "$T/verify.out")"
sed -n 's/.* OK sensor=\([^ ]*\) seq=\([0-9]*\) .*hash=\([0-9a-f]*\).*/\1 \2 \3/p' "$T/verify.out" |
    sort -u >"$T/seen.seqs"
expect_eq "(sensor, seq) with more than one bundle hash" "" \
    "$(cut -d ' ' -f 1,2 "$T/seen.seqs" | uniq -d | tr '\n' ' ')"
for f in "${SEENF[@]}"; do
    "$PCAPFERRY" bundle inspect --json "$f" 2>/dev/null | jq -r '"\(.sensor) \(.seq) \(.header_blake2b_256)"'
done | sort -u >"$T/seen.headers"
expect_eq "(sensor, seq) with more than one header" "" \
    "$(cut -d ' ' -f 1,2 "$T/seen.headers" | uniq -d | tr '\n' ' ')"
sqlite3 -batch -noheader -separator ' ' "$IST/pcapferry.db" \
    "SELECT sensor, seq, bundle_hash FROM bundles WHERE status = 'committed' ORDER BY sensor, seq" |
    sort -u >"$T/db.seqs"
expect_eq "the importer committed exactly the bundles seen, with their hashes" \
    "$(sort "$T/seen.seqs")" "$(sort "$T/db.seqs")"
expect_eq "bundles not committed" 0 \
    "$(sqlite3 "$IST/pcapferry.db" "SELECT COUNT(*) FROM bundles WHERE status != 'committed'")"
expect_eq "rejections (equivocation or other)" 0 \
    "$(sqlite3 "$IST/pcapferry.db" "SELECT COUNT(*) FROM rejections")"
expect_eq "import logs mentioning equivocation" "" "$(grep -il equivocation "$LOGS"/*.import*.log)"
expect_eq "quarantine" "" "$(find "$IST" -path '*quarantine*' -type f -printf '%P ' 2>/dev/null)"

section "invariant 4: nothing leaves the outbox without a receipt"
# receipt -> "seq hash" of its committed entries
for f in $(find "$RCPT" -type f -name '*.receipt' | sort); do
    tail -n +3 "$f" | jq -r --arg f "$f" '.bundles[] | select(.status == "committed") | "\($f) \(.seq) \(.hash)"'
done >"$T/receipts.entries"
jq -r '.capture.gaps_before_this_bundle[]?.deleted' "$IST"/manifests/"$S"/*.manifest.json \
    2>/dev/null | sort -u >"$T/quota.deleted"
# A bundle in one outbox snapshot and not in the next must be confirmed
# (seq and hash) by a receipt on the stick at the time of the later one.
bad=$(awk -v seqs="$T/seen.seqs" -v ents="$T/receipts.entries" -v quota="$T/quota.deleted" '
    BEGIN {
        while ((getline l < seqs) > 0) { split(l, a, " "); h[a[2] + 0] = a[3] }
        while ((getline l < ents) > 0) { split(l, a, " "); ok[a[1], a[2] + 0, a[3]] = 1 }
        while ((getline l < quota) > 0) q[l] = 1
    }
    function check(b,   parts, s, r, found) {
        if (b in q) return
        split(b, parts, "-")
        s = parts[2] + 0
        found = 0
        for (r in rc) if ((r, s, h[s]) in ok) found = 1
        if (!found) printf "%s ", b
    }
    function finish(   b) {
        if (blocks++) for (b in prev) if (!(b in now)) check(b)
        delete prev
        for (b in now) prev[b] = 1
        delete now
        delete rc
    }
    /^# / { if (started) finish(); started = 1; next }
    $1 == "B" { now[$2] = 1; next }
    $1 == "R" { rc[$2] = 1; next }
    END { if (started) finish() }' "$T/outbox.snaps")
expect_eq "bundles that left the outbox without a receipt on the stick (or a counted quota deletion)" "" "$bad"
echo "bundles pruned by receipt: $(grep -h 'pruned bundle=' "$LOGS"/*.log | grep -c .)"

echo "chaos: $ROUNDS rounds in $(($(date +%s) - STARTED)) s (seed $SEED)"
summary
