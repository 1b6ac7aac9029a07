#!/usr/bin/env bash
# Line coverage of the parsers reached by the fuzz corpora (llvm-cov).
#
#   fuzz/coverage.sh [HARNESS...]     (default: all)
#
# Builds build-fuzz-cov (PCAPFERRY_FUZZ_COVERAGE=ON), runs every input of
# build-fuzz/fuzz-corpus/<h> and fuzz/corpus/<h> once through its harness
# and prints llvm-cov's report for the files the harnesses aim at. The HTML
# version goes to build-fuzz-cov/coverage/.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
build=$root/build-fuzz-cov
harnesses=("$@")
((${#harnesses[@]})) || harnesses=(fuzz_header fuzz_manifest fuzz_bundle fuzz_archive
    fuzz_keyfile fuzz_receipt fuzz_pcap_recover fuzz_config)

profdata=$(command -v llvm-profdata || command -v llvm-profdata-14)
llvmcov=$(command -v llvm-cov || command -v llvm-cov-14)

CC=clang cmake -S . -B "$build" -DPCAPFERRY_FUZZ=ON -DPCAPFERRY_FUZZ_COVERAGE=ON \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(nproc)" --target "${harnesses[@]}" >/dev/null

prof=$build/profiles
rm -rf "$prof"
mkdir -p "$prof"
bins=()
for h in "${harnesses[@]}"; do
    dirs=()
    for d in build-fuzz/fuzz-corpus/$h fuzz/corpus/$h fuzz/regressions/$h; do
        [[ -d $d ]] && dirs+=("$d")
    done
    ((${#dirs[@]})) || continue
    LLVM_PROFILE_FILE=$prof/$h.profraw ASAN_OPTIONS=detect_leaks=0 \
        "$build/fuzz/$h" -runs=0 "${dirs[@]}" >"$prof/$h.log" 2>&1 || true
    bins+=("$build/fuzz/$h")
done
objects=("${bins[0]}")
for b in "${bins[@]:1}"; do
    objects+=(-object "$b")
done
"$profdata" merge -sparse "$prof"/*.profraw -o "$prof/all.profdata"
files=(bundle/header.c bundle/manifest.c bundle/open.c bundle/verify.c bundle/unseal.c
    bundle/receipt.c bundle/names.c keys/keyfile.c keys/keyring.c capture/pcapfile.c
    common/config.c common/text.c)
"$llvmcov" report "${objects[@]}" -instr-profile="$prof/all.profdata" \
    "${files[@]}"
"$llvmcov" show "${objects[@]}" -instr-profile="$prof/all.profdata" \
    -format=html -output-dir="$build/coverage" "${files[@]}" >/dev/null
echo "coverage: HTML in $build/coverage/index.html"
