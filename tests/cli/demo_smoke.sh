#!/usr/bin/env bash
# Smoke test for scripts/demo: run it against the binaries ctest built
# (PCAPFERRY, PCAPGEN) and check that it succeeds and says what it should.
# --no-build needs nothing else (no deps, no build, no root); it skips the
# optional live capture in a network namespace.
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

# Each pattern is a line the demo must print (grep -E). In --no-build mode
# the live capture is skipped, so every number below is deterministic:
# pcapgen's 3 x 3000 packets, re-sealed by 'pcapferry capture -r -G 60' into
# 4 clock-aligned windows, with 181 DNS packets withheld by --dont-save.
expect=(
    '^== \[1/12\] Keys'
    '-> 3 files, 9000 packets'
    'sealed bundle=[^ ]+-0000000004-20231114T221600Z\.pcapferry seq=4 files=1 packets=965 '
    '"packets_seen": 9000,'
    '"packets_not_saved": 181,'
    '-> 4 bundles \(seq 1\.\.4\)'
    '^ +skipped: --no-build mode'
    ': OK sensor=[^ ]+ seq=1 '
    ': OK sensor=[^ ]+ seq=4 '
    'exported 4 bundle\(s\) .*, 0 already on stick, 0 failed$'
    'import: 4 new, 0 already imported, 0 rejected, 0 gaps \(4 files delivered, 0 held'
    '^ +plant-a +4 +4 +4 +8819 '
    '^ +pcapferry-receipt-v1$'
    'receipts: 1 read, 0 refused; bundles: 4 deleted, '
    'sensor/outbox is empty\.$'
    '^ +8819$'
    '/plant-a-0000000004-1-20231114T221600Z\.pcap: OK$'
    ': REJECTED: header signature is invalid'
    'status=rejected reason=.* quarantined=.*/quarantine/unknown/'
    '^ +rejected: header signature is invalid'
    '\(exit status 1, as expected\)'
    '^ +generated \(pcapgen; live: sent\) +9000$'
    '^ +seen by pcapferry capture +9000$'
    '^ +withheld by --dont-save +181$'
    '^ +saved \(sealed into bundles\) +8819$'
    '^ +delivered into central/ingest +8819$'
    '^ +dropped \(kernel \+ interface\) +0$'
    '^ +BUNDLES +made +exported +imported +pruned +left on sensor$'
    '^ +4 +4 +4 +4 +0$'
    '^ +tampered copy +REJECTED by verify, quarantined by import$'
    '^== \[12/12\] Coverage report'
    'pcapferry report: 1 sensor\(s\), .* file by file: 4 windows, 0 gaps, 0 drop windows, 1 rejected, 0 held'
    '^demo: OK '
    '^report: .*/central/report\.html$'
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
