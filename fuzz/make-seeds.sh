#!/usr/bin/env bash
# Writes the seed corpora of the fuzz harnesses: OUT/<harness>/ for each.
#
#   fuzz/make-seeds.sh [BUILD_DIR [OUT]]     (defaults: build-fuzz, fuzz/corpus)
#
# BUILD_DIR is a PCAPFERRY_FUZZ=ON build with fuzz_seedgen and pcapgen built.
# Small captures come from pcapgen (deterministic); fuzz_seedgen seals them
# with the harnesses' fixed keys into bundles, builds the tars inside them
# (honest and hostile), and writes key files, receipts, manifests, headers,
# capture files for the recovery walker and configuration files. Each
# OUT/<harness>/ is replaced as a whole. Output is the same on every run
# except the receipts, which carry the time they were written.
#
# Files from ../shared are never written here: scripts/fuzz copies them into
# its working corpus at run time.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-$root/build-fuzz}
out=${2:-$root/fuzz/corpus}
seedgen=$build/fuzz/fuzz_seedgen
pcapgen=$build/tests/tools/pcapgen

for tool in "$seedgen" "$pcapgen"; do
    if [[ ! -x "$tool" ]]; then
        echo "make-seeds: $tool missing: build the 'fuzz' and 'pcapgen' targets of $build" >&2
        exit 2
    fi
done

work=$(mktemp -d "${TMPDIR:-/tmp}/pf-seeds.XXXXXX")
trap 'rm -rf "$work"' EXIT

# Small on purpose: seeds are mutated millions of times.
"$pcapgen" --seed 1 --packets 12 --mix tiny "$work/a.pcap"
"$pcapgen" --seed 2 --packets 6 --mix dns --nano "$work/b.pcap"
"$pcapgen" --seed 3 --packets 4 --snaplen 96 "$work/c.pcap"
"$pcapgen" --seed 4 --packets 4 --mix tiny --big-endian "$work/d.pcap"
"$pcapgen" --seed 5 --packets 4 --mix tiny --pcapng "$work/e.pcapng"
# bundle create puts each file's mtime in the tar: fix it for stable seeds
touch -d @1700000000 "$work"/a.pcap "$work"/b.pcap "$work"/c.pcap "$work"/d.pcap "$work"/e.pcapng

mkdir -p "$work/out"
"$seedgen" "$work/out" "$work"/a.pcap "$work"/b.pcap "$work"/c.pcap "$work"/d.pcap \
    "$work"/e.pcapng

mkdir -p "$out"
for dir in "$work"/out/*/; do
    name=$(basename "$dir")
    rm -rf "${out:?}/$name"
    cp -r "$dir" "$out/$name"
done
# The scanner's seeds are the captures themselves, in every format.
mkdir -p "$out/fuzz_pcap_scan"
cp "$work"/a.pcap "$work"/b.pcap "$work"/c.pcap "$work"/d.pcap "$work"/e.pcapng "$out/fuzz_pcap_scan/"
rm -rf "$out/fuzz_pcap_check"
mkdir -p "$out/fuzz_pcap_check"
cp "$work"/a.pcap "$work"/b.pcap "$work"/c.pcap "$work"/d.pcap "$work"/e.pcapng "$out/fuzz_pcap_check/"
echo "make-seeds: $(find "$out" -type f | wc -l) files, $(du -sh "$out" | cut -f1) in $out"
