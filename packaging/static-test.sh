#!/usr/bin/env bash
# Build the fully static pcapferry (-DPCAPFERRY_STATIC=ON) and prove it runs
# where nothing is installed. Manual, not part of CI (it links ~38 MB, and
# needs the static archives of the -dev packages docs/DEPLOY.md lists). As root:
#
#   packaging/static-test.sh            build build-static/, check, run the loop
#   packaging/static-test.sh --no-build use build-static/ as it is
#   packaging/static-test.sh --ctest    also run the CLI test suites against
#                                       the static binary (a few minutes)
#
# Checks: `file` says statically linked and `ldd` says not a dynamic
# executable; then the sensor -> USB -> central -> receipts loop (keys,
# capture -r with -Z, bundle export, bundle verify, import, import --status,
# export --central pruning the outbox) runs with every shared library of the
# machine hidden (a mount namespace with a tmpfs over /usr/lib/x86_64-linux-gnu,
# where the dynamic loader lives too), so only the static binary can run there; the packets
# delivered to the ingest directory are counted against the input.
set -uo pipefail
export LC_ALL=C

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${PF_STATIC_BUILD:-$root/build-static}
do_build=1
do_ctest=0
for a in "$@"; do
    case "$a" in
    --no-build) do_build=0 ;;
    --ctest) do_ctest=1 ;;
    -h | --help)
        sed -n '2,16p' "${BASH_SOURCE[0]}"
        exit 0
        ;;
    *)
        echo "static-test: unknown argument '$a'" >&2
        exit 2
        ;;
    esac
done

passed=0
failed=0
ok() {
    passed=$((passed + 1))
    echo "ok: $*"
}
bad() {
    failed=$((failed + 1))
    echo "FAIL: $*"
}
check() { # check WHAT cmd...
    local what=$1
    shift
    if "$@"; then ok "$what"; else bad "$what"; fi
}

if ((do_build)); then
    echo "static-test: configure $build"
    cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DPCAPFERRY_STATIC=ON >/dev/null ||
        exit 2
    echo "static-test: build pcapferry, pcapgen, arkime_watch"
    cmake --build "$build" -j"$(nproc)" --target pcapferry pcapgen arkime_watch >/dev/null ||
        exit 2
fi
bin=$build/pcapferry
pcapgen=$build/tests/tools/pcapgen
[[ -x "$bin" && -x "$pcapgen" ]] || {
    echo "static-test: $bin or $pcapgen missing (build first)" >&2
    exit 2
}

# ------------------------------------------------------------ the binary
what=$(file -b "$bin")
check "file: statically linked ($what)" grep -q "statically linked" <<<"$what"
lddout=$(ldd "$bin" 2>&1)
check "ldd: not a dynamic executable ($lddout)" grep -q "not a dynamic executable" <<<"$lddout"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/pcapferry-static.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
chmod 0755 "$tmp"
strip -o "$tmp/pcapferry.stripped" "$bin"
echo "size: $(stat -c %s "$bin") bytes, stripped $(stat -c %s "$tmp/pcapferry.stripped")," \
    "gzip -9 $(gzip -9c "$tmp/pcapferry.stripped" | wc -c)"
"$bin" --version | sed 's/^/  /'

# ------------------------------------------------------- the loop, no libs
if ! "$pcapgen" --packets 3000 --rate 1000 --seed 1 "$tmp/a.pcap" >/dev/null ||
    ! "$pcapgen" --packets 2000 --rate 1000 --seed 2 --start 1700000010 --nano "$tmp/b.pcap" \
        >/dev/null; then
    echo "static-test: pcapgen failed" >&2
    exit 2
fi
: >"$tmp/empty.conf"
mkdir -p "$tmp/stick" "$tmp/ingest"
user_opt=--no-drop
if ((EUID == 0)); then
    user_opt="-Z nobody"
fi

# Runs in the namespace: bash builtins and the static binary only.
cat >"$tmp/loop.sh" <<'EOF'
set -u
T=$1 P=$2 U=$3
n=0 f=0
step() { # step WHAT EXPECTED_RC cmd...
    local what=$1 want=$2 rc
    shift 2
    "$@" >"$T/out.$n" 2>"$T/err.$n"
    rc=$?
    if [[ $rc == "$want" ]]; then echo "ok: (no shared libraries) $what"; else
        echo "FAIL: (no shared libraries) $what: exit $rc, expected $want"
        while IFS= read -r l; do echo "    $l"; done <"$T/err.$n"
        f=$((f + 1))
    fi
    n=$((n + 1))
}
# a dynamic program cannot start here: the hiding works
if /usr/bin/true 2>/dev/null; then echo "FAIL: shared libraries are still visible"; f=$((f + 1)); else
    echo "ok: /usr/bin/true cannot run (shared libraries hidden)"; fi
step "keys generate sensor" 0 "$P" keys generate sensor edge-01 --out "$T/keys"
step "keys generate central" 0 "$P" keys generate central hq --out "$T/keys"
step "keys trust" 0 "$P" keys trust "$T/keys/edge-01.pub" --keyring "$T/keyring"
# shellcheck disable=SC2086 # U is "-Z nobody" or "--no-drop"
step "capture -r a.pcap -r b.pcap ($U)" 0 "$P" capture -c "$T/empty.conf" $U -G 2 \
    --key "$T/keys/edge-01.key" --to "$T/keys/hq.pub" --spool "$T/spool" \
    --outbox "$T/outbox" --state "$T/state" -r "$T/a.pcap" -r "$T/b.pcap"
step "bundle export to the stick" 0 "$P" bundle export --outbox "$T/outbox" \
    --key "$T/keys/edge-01.pub" "$T/stick"
step "bundle verify on the stick" 0 "$P" bundle verify --keyring "$T/keyring" \
    "$T"/stick/pcapferry/edge-01/*.pcapferry
step "import from the stick" 0 "$P" import --config "$T/empty.conf" --key "$T/keys/hq.key" \
    --keyring "$T/keyring" --state "$T/import" --ingest "$T/ingest" --settle-ms 0 "$T/stick"
step "import --status" 0 "$P" import --status --json --state "$T/import"
step "export --central consumes the receipts" 0 "$P" bundle export --outbox "$T/outbox" \
    --key "$T/keys/edge-01.pub" --central "$T/keys/hq.pub" "$T/stick"
left=("$T"/outbox/*.pcapferry)
if [[ -e "${left[0]}" ]]; then echo "FAIL: outbox not pruned: ${#left[@]} bundle(s) left"; f=$((f + 1)); else
    echo "ok: (no shared libraries) the outbox is empty: every bundle confirmed by a receipt"; fi
exit "$f"
EOF

if ((EUID == 0)) && command -v unshare >/dev/null; then
    # /usr/lib64/ld-linux-x86-64.so.2 points into /usr/lib/x86_64-linux-gnu:
    # one empty tmpfs there hides the loader and every library.
    # shellcheck disable=SC2016 # expanded by the inner bash
    unshare -m -- bash -c '
        mount -t tmpfs -o ro,size=1m none /usr/lib/x86_64-linux-gnu &&
        . "$1" "$2" "$3" "$4"' _ "$tmp/loop.sh" "$tmp" "$bin" "$user_opt" | tee "$tmp/loop.log"
else
    echo "static-test: not root: the loop runs with the shared libraries visible"
    bash "$tmp/loop.sh" "$tmp" "$bin" "$user_opt" | tee "$tmp/loop.log"
fi
passed=$((passed + $(grep -c '^ok:' "$tmp/loop.log")))
failed=$((failed + $(grep -c '^FAIL:' "$tmp/loop.log")))
if ((EUID == 0)); then
    # -Z resolved the user through the static glibc's built-in files module
    check "capture -Z nobody: getpwnam worked without NSS modules" \
        grep -q "dropped privileges user=nobody" "$tmp/err.3"
fi

# Everything captured was delivered (counted with the machine's tools again).
if command -v tcpdump >/dev/null; then
    want=$((3000 + 2000))
    got=0
    while IFS= read -r f; do
        got=$((got + $(tcpdump -n -r "$f" 2>/dev/null | wc -l)))
    done < <(find "$tmp/ingest" -type f -name '*.pcap')
    check "packets delivered to the ingest directory = packets captured ($got of $want)" \
        test "$got" -eq "$want"
    check "import --status counts $want packets" \
        grep -q "\"packets\": $want" "$tmp/out.7"
fi

if ((do_ctest)); then
    echo "static-test: CLI suites against the static binary"
    if ctest --test-dir "$build" --output-on-failure \
        -R '^(keys_cli|bundle_cli|loop_cli|import_cli|import_crash|import_watch|capture_cli|capture_live)$'; then
        ok "ctest: CLI suites"
    else
        bad "ctest: CLI suites"
    fi
fi

echo "$passed passed, $failed failed"
((failed == 0))
