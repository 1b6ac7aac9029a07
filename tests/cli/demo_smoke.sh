#!/usr/bin/env bash
# Smoke test for scripts/demo: run it against the binaries ctest built
# (PCAPFERRY, PCAPGEN) and check that it succeeds and says what it should.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
: "${PCAPFERRY:?PCAPFERRY must name the pcapferry binary (ctest sets it)}"
: "${PCAPGEN:?PCAPGEN must name the pcapgen binary (ctest sets it)}"
export PCAPFERRY PCAPGEN

log=$(mktemp -t pcapferry-demo-smoke.XXXXXX)
trap 'rm -f "$log"' EXIT

problems=()
set +e
bash "$root/scripts/demo" --no-build >"$log" 2>&1
rc=$?
set -e
((rc == 0)) || problems+=("scripts/demo --no-build exited $rc, expected 0")

# Each pattern is a line the demo must print (grep -E).
expect=(
    ': OK sensor=[^ ]+ seq=1 '
    ': OK sensor=[^ ]+ seq=2 '
    ': OK sensor=[^ ]+ seq=3 '
    'tampered\.pcapferry: REJECTED: '
    'truncated\.pcapferry: INCOMPLETE: '
    '\(exit status 75, as expected\)'
    '^ +[^ ]+\.pcap: OK$'
    '^ +BUNDLE +SEQ +FILES +PACKETS'
    '^ +total +5 +7500 .* 3/3 OK$'
    '^ +tampered copy +REJECTED$'
    '^ +truncated copy +INCOMPLETE$'
    '^demo: OK '
)
for re in "${expect[@]}"; do
    grep -Eq -- "$re" "$log" || problems+=("output lacks a line matching: $re")
done
if grep -q '^demo: FAILED' "$log"; then
    problems+=("the demo reported a failure")
fi

if ((${#problems[@]} == 0)); then
    echo "ok - scripts/demo --no-build"
    echo "1 passed, 0 failed"
    exit 0
fi
echo "--- scripts/demo output ---"
cat "$log"
echo "---"
for p in "${problems[@]}"; do echo "FAIL: $p"; done
echo "not ok - scripts/demo --no-build"
echo "0 passed, 1 failed"
exit 1
