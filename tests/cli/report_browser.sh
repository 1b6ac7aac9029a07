#!/usr/bin/env bash
# The coverage report in a real browser (headless Debian chromium): the page
# is laid out, the sensors' rows, a gap and a drop window sit where the data
# puts them on the time axis (the browser's own layout, measured with
# getBoundingClientRect, and the screenshot's pixels), the "was it
# capturing at" look-up answers, and a screenshot is kept in the test
# output (build-test/tests/report_browser/report.png).
# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.sh
. "${PF_TESTLIB:-$(dirname "${BASH_SOURCE[0]}")/lib.sh}"

require_binaries
require_cmd python3
: "${STATEGEN:=$(dirname "$PCAPGEN")/stategen}"
[[ -x "$STATEGEN" ]] || skip "STATEGEN=$STATEGEN is not an executable (build first)"
CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
if [[ -z "$CHROMIUM" ]]; then
    # CI installs it (scripts/deps): there it must run
    [[ -n "${CI:-}" ]] && die "chromium is not installed (scripts/deps installs it)"
    skip "chromium is not installed (scripts/deps installs it)"
fi
ARTIFACTS=${PF_ARTIFACTS:-$PWD}/report_browser
mkdir -p "$ARTIFACTS" || die "cannot create $ARTIFACTS"

T=$PF_TMP
cd "$T" || die "cannot cd"
: >import.conf

# Two sensors, one-minute bundles from 22:13:20 (period 60 s, packets from
# +1 s to +59 s): plant-a loses seq 20-21, plant-b drops 99 packets in seq 40.
start=1700000000
expect_exit 0 -- "$STATEGEN" --state st --names plant-a,plant-b --bundles 60 --start "$start" \
    --skip 0:20 --skip 0:21 --drops 1:40:99 || die "stategen failed"
from=$start to=$((start + 3600))
gap_a=$((start + 18 * 60 + 59)) gap_b=$((start + 21 * 60 + 1)) # seq 19's last, seq 22's first
drop_a=$((start + 39 * 60)) drop_b=$((start + 40 * 60))        # seq 40's capture window
expect_exit 0 -- "$PCAPFERRY" report --config import.conf --state st --from "@$from" --to "@$to" \
    --out r.html || die "report failed"

browser() {
    "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync \
        --hide-scrollbars --force-device-scale-factor=1 --user-data-dir="$T/profile" \
        --window-size=1240,900 "$@" 2>"$T/chromium.log"
}

section "layout measured by the browser"
: >pixels
# A copy of the page with a probe appended: it types a time into the
# look-up, presses the button, and writes what the browser laid out.
drop_mid=$(date -u -d "@$(((drop_a + drop_b) / 2))" '+%Y-%m-%d %H:%M:%S')
cat >probe.js <<EOF
(function(){
 var at=document.getElementById("at");at.value="$drop_mid";
 document.getElementById("go").click();
 function box(e){var r=e.getBoundingClientRect();return [r.left,r.right,r.top,r.bottom];}
 var o={plot:box(document.getElementById("plot")),rows:[],marks:[],
        answer:document.getElementById("answer").textContent};
 document.querySelectorAll("#timeline g.row").forEach(function(g){
   o.rows.push([g.getAttribute("data-s")].concat(box(g.querySelector("text"))));});
 document.querySelectorAll("#timeline .m").forEach(function(m){
   o.marks.push([m.getAttribute("class"),m.getAttribute("data-s")].concat(box(m)));});
 var p=document.createElement("pre");p.id="layout";p.textContent=JSON.stringify(o);
 document.body.appendChild(p);})();
EOF
grep -v '^</body></html>$' r.html >probe.html
{ printf '<script>'; cat probe.js; printf '</script></body></html>\n'; } >>probe.html
run browser --virtual-time-budget=3000 --dump-dom "file://$T/probe.html"
[[ "$PF_RC" == 0 ]] || {
    cat "$T/chromium.log"
    die "chromium --dump-dom failed (exit $PF_RC)"
}
cp "$PF_OUT" dom.html
python3 - dom.html "$from" "$to" "$gap_a" "$gap_b" "$drop_a" "$drop_b" >check.out 2>&1 <<'EOF'
import html, json, re, sys
dom = open(sys.argv[1]).read()
m = re.search(r'<pre id="layout">(.*?)</pre>', dom, re.S)
if not m:
    print("FAIL no layout: the page's script did not run"); sys.exit(0)
o = json.loads(html.unescape(m.group(1)))
frm, to, ga, gb, da, db = map(int, sys.argv[2:])
left, right, top, bottom = o["plot"]
x = lambda t: left + (t - frm) * (right - left) / (to - frm)
rows = {r[0]: r for r in o["rows"]}
def say(ok, what): print(("ok " if ok else "FAIL ") + what)
say(list(rows) == ["plant-a", "plant-b"], "rows: %s" % list(rows))
say(rows["plant-a"][3] < rows["plant-b"][3], "plant-a above plant-b")
def row_of(mark):
    mid = (mark[4] + mark[5]) / 2
    return min(rows, key=lambda s: abs((rows[s][3] + rows[s][4]) / 2 - mid))
def near(a, b): return abs(a - b) <= 1.5
gaps = [mk for mk in o["marks"] if "gap" in mk[0].split()]
say(len(gaps) == 1, "one gap mark (%d)" % len(gaps))
if gaps:
    g = gaps[0]
    say(g[1] == "plant-a" and row_of(g) == "plant-a", "gap in plant-a's row")
    say(near(g[2], x(ga)) and near(g[3], x(gb)),
        "gap spans x %.1f..%.1f, data says %.1f..%.1f" % (g[2], g[3], x(ga), x(gb)))
    print("pixel gap %d %d" % ((g[2] + g[3]) / 2, (g[4] + g[5]) / 2))
drops = [mk for mk in o["marks"] if "drop" in mk[0].split()]
say(len(drops) == 1, "one drop mark (%d)" % len(drops))
if drops:
    d = drops[0]
    say(d[1] == "plant-b" and row_of(d) == "plant-b", "drop in plant-b's row")
    say(near(d[2], x(da)) and near(d[3], x(db)),
        "drop spans x %.1f..%.1f, data says %.1f..%.1f" % (d[2], d[3], x(da), x(db)))
    print("pixel drop %d %d" % ((d[2] + d[3]) / 2, (d[4] + d[5]) / 2))
cov = [mk for mk in o["marks"] if "cov" in mk[0].split()]
say(len(cov) == 118, "118 captured windows drawn (%d)" % len(cov))
inside = all(left - 0.01 <= mk[2] and mk[3] <= right + 0.01 for mk in o["marks"])
say(inside, "every mark inside the plot")
a = o["answer"]
say("plant-b seq 40" in a and "99 kernel" in a, "look-up names plant-b seq 40 and its 99 drops")
say("plant-a seq 40" in a, "look-up names plant-a's window too")
EOF
while read -r verdict rest; do
    case "$verdict" in
    ok) pass "$rest" ;;
    FAIL) fail "$rest" ;;
    pixel) echo "$rest" >>pixels ;;
    *) fail "probe: $verdict $rest" ;;
    esac
done <check.out

section "screenshot: the pixels where the data says"
# the probe page: the same layout as measured, look-up answer included
run browser --screenshot="$ARTIFACTS/report.png" "file://$T/probe.html"
[[ -s "$ARTIFACTS/report.png" ]] || die "no screenshot (chromium exit $PF_RC)"
echo "screenshot: $ARTIFACTS/report.png"
# A small PNG reader (zlib only): the colour at each probed point.
python3 - "$ARTIFACTS/report.png" pixels <<'EOF' >pix.out 2>&1
import struct, sys, zlib
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n"
pos, idat = 8, b""
while pos < len(data):
    n, kind = struct.unpack(">I4s", data[pos:pos + 8])
    body = data[pos + 8:pos + 8 + n]
    if kind == b"IHDR":
        w, h, depth, ctype, _, _, inter = struct.unpack(">IIBBBBB", body)
    elif kind == b"IDAT":
        idat += body
    pos += 12 + n
assert depth == 8 and ctype in (2, 6) and inter == 0, (depth, ctype, inter)
bpp = 3 if ctype == 2 else 4
raw, stride, rows, prev = zlib.decompress(idat), w * bpp, [], bytearray(w * bpp)
for y in range(h):
    f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
    for i in range(stride):
        a = line[i - bpp] if i >= bpp else 0
        b, c = prev[i], prev[i - bpp] if i >= bpp else 0
        if f == 1: line[i] = (line[i] + a) & 255
        elif f == 2: line[i] = (line[i] + b) & 255
        elif f == 3: line[i] = (line[i] + (a + b) // 2) & 255
        elif f == 4:
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    rows.append(line)
    prev = line
for l in open(sys.argv[2]):
    kind, x, y = l.split()
    x, y = int(x), int(y)
    print(kind, *rows[y][x * bpp:x * bpp + 3])
EOF
while read -r kind r g b; do
    case "$kind" in
    gap) # #d62828 at 55% over the plot: red dominates
        expect_true "gap pixel is red (rgb $r $g $b)" test "$r" -gt 200 -a "$g" -lt 150 -a "$b" -lt 150 ;;
    drop) # #f08c00
        expect_true "drop pixel is orange (rgb $r $g $b)" test "$r" -gt 220 -a "$g" -gt 110 -a "$g" -lt 170 -a "$b" -lt 40 ;;
    *) fail "png reader: $kind $r $g $b" ;;
    esac
done <pix.out
[[ -s pix.out ]] || fail "no pixels were checked"

summary
