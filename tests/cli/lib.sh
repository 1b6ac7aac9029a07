# shellcheck shell=bash
# Helpers for the command-line tests in tests/cli. Sourced, never run.
#
# ctest runs `bash tests/cli/NAME.sh` with
#   PCAPFERRY        the binary under test
#   PCAPGEN          the deterministic capture generator (tests/tools/pcapgen.c)
#   PF_SHARED_PCAPS  real-world captures (may not exist on a user's clone)
#   PF_TESTLIB       this file
# Set PF_KEEP_TMP=1 to keep the scratch directory for a post-mortem, and
# PF_VERBOSE=1 to see every passing check.
#
# Every check counts one pass or one failure; a failure prints what was
# expected and what happened, and the script goes on so one run shows all
# failures. `summary` prints "N passed, M failed" and sets the exit status.
# Exit 77 means skipped (ctest's SKIP_RETURN_CODE).

set -u
set -o pipefail
export LC_ALL=C

# Turn sanitizer reports into failures ctest cannot mistake for a pass, unless
# the caller chose otherwise (scripts/test sets its own).
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1}"

# PF_TIME_SCALE=N (a whole number, default 1) stretches the time limits of
# the checks that wait for, or time, the program: scripts/valgrind sets it,
# since every pcapferry process then runs many times slower.
if [[ ! "${PF_TIME_SCALE:-1}" =~ ^[1-9][0-9]*$ ]]; then
    echo "FATAL: PF_TIME_SCALE=$PF_TIME_SCALE is not a whole number >= 1" >&2
    exit 2
fi
PF_TIME_SCALE=${PF_TIME_SCALE:-1}
# pf_scaled N: N (seconds, milliseconds, poll counts) times PF_TIME_SCALE.
pf_scaled() {
    echo $(($1 * PF_TIME_SCALE))
}

PF_PASSED=0
PF_FAILED=0
PF_SUMMARY_DONE=0
PF_SCRIPT_NAME=$(basename "${0:-test}")

pf_lib_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${PCAPFERRY:=$pf_lib_dir/../../build/pcapferry}"
: "${PCAPGEN:=$pf_lib_dir/../../build/tests/tools/pcapgen}"
: "${PF_SHARED_PCAPS:=$pf_lib_dir/../../../shared/testdata/pcaps}"
export PCAPFERRY PCAPGEN PF_SHARED_PCAPS

# ---------------------------------------------------------------- scratch dir

PF_TMP=$(mktemp -d "${TMPDIR:-/tmp}/pcapferry-${PF_SCRIPT_NAME%.sh}.XXXXXX") || {
    echo "FATAL: mktemp -d failed" >&2
    exit 2
}
# Last command's output, for expect_stdout_contains and friends.
PF_OUT="$PF_TMP/.last.stdout"
PF_ERR="$PF_TMP/.last.stderr"
: >"$PF_OUT"
: >"$PF_ERR"
PF_LAST_CMD=""

pf_cleanup() {
    local rc=$?
    if [[ "$PF_SUMMARY_DONE" != 1 && "$rc" != 77 ]]; then
        echo "FAIL: $PF_SCRIPT_NAME ended (status $rc) before its summary" >&2
        [[ "$rc" == 0 ]] && rc=1
    fi
    if [[ -n "${PF_KEEP_TMP:-}" ]]; then
        echo "kept scratch directory: $PF_TMP" >&2
    else
        # Tests make read-only and mode-000 things; make them removable.
        chmod -R u+rwX "$PF_TMP" 2>/dev/null
        rm -rf "$PF_TMP"
    fi
    exit "$rc"
}
trap pf_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ------------------------------------------------------------------ reporting

section() {
    echo "== $*"
}

pass() {
    PF_PASSED=$((PF_PASSED + 1))
    if [[ -n "${PF_VERBOSE:-}" ]]; then
        echo "ok: $*"
    fi
    return 0
}

# fail MSG: counts a failure and says why. Returns 1 so `|| return` works.
fail() {
    PF_FAILED=$((PF_FAILED + 1))
    echo "FAIL: $*"
    return 1
}

# skip MSG: the whole script is skipped (exit 77).
skip() {
    echo "SKIPPED: $*"
    PF_SUMMARY_DONE=1
    exit 77
}

# die MSG: a setup step failed, so the checks after it would be noise.
die() {
    fail "$*"
    echo "aborting: later checks depend on this step"
    summary
}

summary() {
    PF_SUMMARY_DONE=1
    echo "$PF_PASSED passed, $PF_FAILED failed"
    if ((PF_FAILED > 0)); then
        exit 1
    fi
    if ((PF_PASSED == 0)); then
        echo "FAIL: no check ran"
        exit 1
    fi
    exit 0
}

# Shows a file's content indented, at most 40 lines.
pf_show() {
    local label=$1 file=$2
    local n
    n=$(wc -l <"$file")
    echo "  --- $label ($n lines) ---"
    sed -n '1,40s/^/  | /p' "$file"
    if ((n > 40)); then
        echo "  | ... ($((n - 40)) more lines)"
    fi
}

pf_show_last() {
    echo "  command: $PF_LAST_CMD"
    pf_show stdout "$PF_OUT"
    pf_show stderr "$PF_ERR"
}

# --------------------------------------------------------------------- checks

# run cmd...: runs it, keeps stdout/stderr in $PF_OUT/$PF_ERR, sets PF_RC.
run() {
    PF_LAST_CMD=$(printf '%q ' "$@")
    "$@" >"$PF_OUT" 2>"$PF_ERR" </dev/null
    PF_RC=$?
    return 0
}

# True if the last command's stderr holds a sanitizer report.
pf_sanitizer_report() {
    grep -Eq 'ERROR: (Address|Leak|Memory|Thread|UndefinedBehavior)Sanitizer|runtime error:' \
        "$PF_ERR"
}

# expect_exit CODE -- cmd...: runs cmd and checks its exit status.
expect_exit() {
    local want=$1
    shift
    if [[ "${1:-}" != "--" ]]; then
        fail "expect_exit: usage: expect_exit CODE -- cmd..."
        return 1
    fi
    shift
    run "$@"
    if pf_sanitizer_report; then
        fail "sanitizer report (exit $PF_RC) from: $PF_LAST_CMD"
        pf_show_last
        return 1
    fi
    if [[ "$PF_RC" != "$want" ]]; then
        fail "exit status $PF_RC, expected $want"
        pf_show_last
        return 1
    fi
    pass "exit $want: $PF_LAST_CMD"
}

pf_expect_in() {
    local which=$1 file=$2 text=$3
    if grep -qF -- "$text" "$file"; then
        pass "$which contains '$text'"
        return 0
    fi
    fail "$which does not contain '$text'"
    pf_show_last
    return 1
}

pf_expect_not_in() {
    local which=$1 file=$2 text=$3
    if ! grep -qF -- "$text" "$file"; then
        pass "$which lacks '$text'"
        return 0
    fi
    fail "$which contains '$text', which it must not"
    pf_show_last
    return 1
}

expect_stdout_contains() { pf_expect_in stdout "$PF_OUT" "$1"; }
expect_stderr_contains() { pf_expect_in stderr "$PF_ERR" "$1"; }
expect_stdout_lacks() { pf_expect_not_in stdout "$PF_OUT" "$1"; }
expect_stderr_lacks() { pf_expect_not_in stderr "$PF_ERR" "$1"; }

# expect_stderr_matches ERE / expect_stdout_matches ERE
expect_stderr_matches() {
    if grep -qE -- "$1" "$PF_ERR"; then
        pass "stderr matches /$1/"
        return 0
    fi
    fail "stderr does not match /$1/"
    pf_show_last
    return 1
}
expect_stdout_matches() {
    if grep -qE -- "$1" "$PF_OUT"; then
        pass "stdout matches /$1/"
        return 0
    fi
    fail "stdout does not match /$1/"
    pf_show_last
    return 1
}

# expect_eq WHAT EXPECTED ACTUAL
expect_eq() {
    if [[ "$2" == "$3" ]]; then
        pass "$1 = '$3'"
        return 0
    fi
    fail "$1: expected '$2', got '$3'"
    return 1
}

# expect_true WHAT -- cmd...: the command must succeed (its output is shown
# if it does not).
expect_true() {
    local what=$1
    shift
    [[ "${1:-}" == "--" ]] && shift
    local out
    if out=$("$@" 2>&1); then
        pass "$what"
        return 0
    fi
    fail "$what (command failed: $(printf '%q ' "$@"))"
    [[ -n "$out" ]] && printf '%s\n' "$out" | sed -n '1,20s/^/  | /p'
    return 1
}

# expect_false WHAT -- cmd...: the command must fail.
expect_false() {
    local what=$1
    shift
    [[ "${1:-}" == "--" ]] && shift
    if ! "$@" >/dev/null 2>&1; then
        pass "$what"
        return 0
    fi
    fail "$what (command succeeded: $(printf '%q ' "$@"))"
    return 1
}

# expect_same_file WHAT A B: byte-identical.
expect_same_file() {
    if cmp -s -- "$2" "$3"; then
        pass "$1"
        return 0
    fi
    fail "$1: $2 and $3 differ ($(cmp -- "$2" "$3" 2>&1 | head -n 1))"
    return 1
}

# expect_mode WHAT OCTAL FILE
expect_mode() {
    local got
    got=$(stat -c %a -- "$3" 2>&1)
    expect_eq "$1: mode of $3" "$2" "$got"
}

# Directory listing (ls -A), one name a line: for "nothing new" checks.
dir_listing() {
    ls -A -- "$1" 2>/dev/null
}

# expect_dir_empty DIR (a missing directory counts as empty)
expect_dir_empty() {
    local left
    left=$(dir_listing "$1")
    if [[ -z "$left" ]]; then
        pass "$1 is empty"
        return 0
    fi
    fail "$1 should be empty but holds: $(printf '%s' "$left" | tr '\n' ' ')"
    return 1
}

# expect_listing WHAT DIR EXPECTED_LISTING (from dir_listing)
expect_listing() {
    local now
    now=$(dir_listing "$2")
    if [[ "$now" == "$3" ]]; then
        pass "$1"
        return 0
    fi
    fail "$1: $2 changed; before: [$(printf '%s' "$3" | tr '\n' ' ')] now: [$(printf '%s' "$now" | tr '\n' ' ')]"
    return 1
}

# ----------------------------------------------------------------------- tools

require_cmd() {
    local c
    for c in "$@"; do
        command -v "$c" >/dev/null 2>&1 || skip "'$c' is not installed (see scripts/deps)"
    done
}

require_binaries() {
    [[ -x "$PCAPFERRY" ]] || skip "PCAPFERRY=$PCAPFERRY is not an executable (build first)"
    [[ -x "$PCAPGEN" ]] || skip "PCAPGEN=$PCAPGEN is not an executable (build first)"
}

# ------------------------------------------------------ leak checks after -Z
# LeakSanitizer checks a process at exit through a helper task with the
# process's credentials: after `capture -Z nobody` that is nobody, who must
# reach /proc/PID/task by path and ptrace the threads. Where nobody cannot (a
# chroot whose / is mode 0700, as debootstrap into `mktemp -d` leaves it), it
# gives up with a fatal error and exit 134 although nothing leaked (issue 16).
#
# pf_lsan_drop_setup decides once per test: PF_LSAN_AFTER_DROP as scripts/test
# found it (or as the caller forces it, e.g. "no" to try the fallback), else
# tests/tools/lsan_after_drop.sh. It sets PF_Z_ENV, the prefix for every
# pcapferry run that drops privileges: empty where leak checks work after the
# drop, else `env ASAN_OPTIONS=...:detect_leaks=0` (memory errors and UB still
# abort). pf_lsan_after_drop is false in that case, and the tests then run the
# same paths again with --no-drop, leak-checked.
: "${LSAN_PROBE:=$pf_lib_dir/../../build/tests/tools/lsan_probe}"
export LSAN_PROBE
# shellcheck disable=SC2034 # PF_Z_ENV is read by the test scripts
PF_Z_ENV=()
pf_lsan_drop_setup() {
    if [[ -z "${PF_LSAN_AFTER_DROP:-}" ]]; then
        PF_LSAN_AFTER_DROP=$(bash "$pf_lib_dir/../tools/lsan_after_drop.sh" "$LSAN_PROBE" nobody) ||
            die "cannot tell whether LeakSanitizer works after a privilege drop: $PF_LSAN_AFTER_DROP"
    fi
    PF_Z_ENV=()
    case $PF_LSAN_AFTER_DROP in
    yes | off*) ;;
    no*)
        local why=${PF_LSAN_AFTER_DROP#no}
        why=${why#: }
        # the last detect_leaks= in ASAN_OPTIONS wins
        # shellcheck disable=SC2034
        PF_Z_ENV=(env "ASAN_OPTIONS=${ASAN_OPTIONS:-}:detect_leaks=0")
        echo "note: LeakSanitizer cannot check a process after it drops privileges here" \
            "(${why:-PF_LSAN_AFTER_DROP=no}); the -Z runs are checked without it, their" \
            "paths again with --no-drop"
        ;;
    *) die "PF_LSAN_AFTER_DROP='$PF_LSAN_AFTER_DROP': expected yes, no or off" ;;
    esac
}
pf_lsan_after_drop() {
    [[ "${PF_LSAN_AFTER_DROP:-}" != no* ]]
}

# b2sum of a file as BLAKE2b-256 hex, the digest the manifest records.
b2_256() {
    b2sum -l 256 -- "$1" | cut -d ' ' -f 1
}

file_size() {
    stat -c %s -- "$1"
}

# flip_byte FILE OFFSET: XORs one byte with 0x01, in place.
flip_byte() {
    local file=$1 off=$2 byte
    byte=$(od -An -tu1 -j "$off" -N 1 -- "$file" | tr -d ' ')
    [[ -n "$byte" ]] || return 1
    # shellcheck disable=SC2059 # the format is the escaped byte itself
    printf "$(printf '\\%03o' $((byte ^ 1)))" |
        dd of="$file" bs=1 seek="$off" conv=notrunc status=none
}

# ------------------------------------------------------------------------ JSON
# jq is not in scripts/deps; python3 is the fallback.

# PF_JSON_TOOL=python3 forces the fallback (to test it where jq exists).
if [[ -n "${PF_JSON_TOOL:-}" ]]; then
    PF_JSON=$PF_JSON_TOOL
elif command -v jq >/dev/null 2>&1; then
    PF_JSON=jq
elif command -v python3 >/dev/null 2>&1; then
    PF_JSON=python3
else
    PF_JSON=
fi

require_json() {
    [[ -n "$PF_JSON" ]] || skip "neither jq nor python3 is installed (needed to read JSON)"
}

# json_valid FILE: parses as JSON.
json_valid() {
    if [[ "$PF_JSON" == jq ]]; then
        jq -e . "$1" >/dev/null 2>&1
    else
        python3 -m json.tool "$1" >/dev/null 2>&1
    fi
}

# json_get FILE KEY...: the value at that path (numbers index arrays). Strings
# print raw, null and a missing key print "null", objects/arrays as JSON.
json_get() {
    local file=$1
    shift
    if [[ "$PF_JSON" == jq ]]; then
        jq -r '$ARGS.positional as $p
               | getpath($p | map(if test("^[0-9]+$") then tonumber else . end))
               | if type == "object" or type == "array" then tojson else . end' \
            "$file" --args "$@"
    else
        python3 - "$file" "$@" <<'EOF'
import json, sys
v = json.load(open(sys.argv[1]))
for k in sys.argv[2:]:
    if isinstance(v, list):
        v = v[int(k)] if int(k) < len(v) else None
    elif isinstance(v, dict):
        v = v.get(k)
    else:
        v = None
if v is None:
    print("null")
elif isinstance(v, bool):
    print("true" if v else "false")
elif isinstance(v, (dict, list)):
    print(json.dumps(v))
else:
    print(v)
EOF
    fi
}

# manifest_file_field MANIFEST NAME FIELD: FIELD of the one files[] entry
# called NAME ("MISSING" if there is not exactly one).
manifest_file_field() {
    if [[ "$PF_JSON" == jq ]]; then
        jq -r --arg n "$2" --arg f "$3" \
            '[.files[] | select(.name == $n)]
             | if length == 1 then .[0][$f] | if . == null then "null" else tostring end
               else "MISSING" end' "$1"
    else
        python3 - "$1" "$2" "$3" <<'EOF'
import json, sys
m = json.load(open(sys.argv[1]))
fs = [f for f in m.get("files", []) if f.get("name") == sys.argv[2]]
if len(fs) != 1:
    print("MISSING")
else:
    v = fs[0].get(sys.argv[3])
    print("null" if v is None else ("true" if v is True else "false" if v is False else v))
EOF
    fi
}

# manifest_load MANIFEST NAME: loads the scalar fields of the files[] entry
# called NAME into the associative array MF (one JSON parse instead of one per
# field); MF[_count] is how many entries have that name.
# shellcheck disable=SC2034 # MF is read by the test scripts
declare -gA MF=()
manifest_load() {
    MF=()
    local k v
    while IFS= read -r k && IFS= read -r v; do
        # shellcheck disable=SC2034
        MF[$k]=$v
    done < <(
        if [[ "$PF_JSON" == jq ]]; then
            jq -r --arg n "$2" '[.files[] | select(.name == $n)] as $m
                | "_count", ($m | length),
                  ($m[0] // {} | to_entries[]
                   | .key, (.value | if . == null then "null"
                                     elif type == "string" then gsub("\n"; "\\n")
                                     else tojson end))' "$1"
        else
            python3 - "$1" "$2" <<'PYEOF'
import json, sys
m = json.load(open(sys.argv[1]))
fs = [f for f in m.get("files", []) if f.get("name") == sys.argv[2]]
print("_count"); print(len(fs))
for k, v in (fs[0] if fs else {}).items():
    print(k)
    if v is None: print("null")
    elif isinstance(v, str): print(v.replace("\n", "\\n"))
    else: print(json.dumps(v))
PYEOF
        fi
    )
}

# ------------------------------------------------------------------------ keys

# setup_keys [SENSOR_NAME] [CENTRAL_NAME]: a sensor and a central key pair in
# $PF_TMP/keys and a keyring that trusts the sensor. Sets SENSOR, SENSOR_KEY,
# SENSOR_PUB, CENTRAL_KEY, CENTRAL_PUB, KEYRING, SENSOR_ID.
# shellcheck disable=SC2034 # these are for the scripts that source us
setup_keys() {
    SENSOR=${1:-sensor1}
    local central=${2:-central1}
    local dir="$PF_TMP/keys"
    SENSOR_KEY="$dir/$SENSOR.key"
    SENSOR_PUB="$dir/$SENSOR.pub"
    CENTRAL_KEY="$dir/$central.key"
    CENTRAL_PUB="$dir/$central.pub"
    KEYRING="$PF_TMP/keyring"
    expect_exit 0 -- "$PCAPFERRY" keys generate sensor "$SENSOR" --out "$dir" ||
        die "setup: cannot generate the sensor key"
    SENSOR_ID=$(sed -n 's/^key id: *//p' "$PF_OUT")
    expect_exit 0 -- "$PCAPFERRY" keys generate central "$central" --out "$dir" ||
        die "setup: cannot generate the central key"
    expect_exit 0 -- "$PCAPFERRY" keys trust "$SENSOR_PUB" --keyring "$KEYRING" ||
        die "setup: cannot trust the sensor key"
    [[ "$SENSOR_ID" =~ ^[0-9a-f]{32}$ ]] || die "setup: no key id in 'keys generate' output"
}

# make_pcap NAME [pcapgen options...]: a deterministic capture at $PF_IN/NAME.
PF_IN="$PF_TMP/in"
make_pcap() {
    local name=$1
    shift
    mkdir -p "$PF_IN"
    "$PCAPGEN" "$@" "$PF_IN/$name" >/dev/null 2>&1 || die "pcapgen $* $PF_IN/$name failed"
}
