#!/usr/bin/env bash
# Packaging (issue #8), quick checks that need nothing installed:
# - systemd-analyze verify accepts every unit in packaging/systemd (with
#   ExecStart= pointing at the binary under test);
# - the sysusers.d and tmpfiles.d files create the user and directories in a
#   scratch root (as root only);
# - every man page renders without a groff warning, and names every long
#   option its command's --help names;
# - every key in the example configurations is one the program accepts (the
#   program parses them for real), and every key the program accepts is in
#   the example; the environment file names only variables the unit or
#   capture reads;
# - `pcapferry help COMMAND` and --version; maintainer scripts parse;
#   compose.yaml parses (when python3-yaml is there).
# Each part skips cleanly when its tool is missing.
# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.sh
. "${PF_TESTLIB:-$(dirname "${BASH_SOURCE[0]}")/lib.sh}"

[[ -x "$PCAPFERRY" ]] || skip "PCAPFERRY=$PCAPFERRY is not an executable (build first)"
ROOT=$(cd "$pf_lib_dir/../.." && pwd)
PKG=$ROOT/packaging
T=$PF_TMP
ran_any=0
# Nothing from the caller's environment may leak into the config checks.
unset PCAP_INTERFACE PCAP_CAPTURE_SIZE PCAP_FILE_SIZE PCAP_BPF_FILTER PCAP_SENSOR_NAME \
    PCAP_FILE_ROTATE

# ------------------------------------------------------------------- units
section "systemd units"
if command -v systemd-analyze >/dev/null 2>&1; then
    ran_any=1
    mkdir -p "$T/units"
    bindir=$(cd "$(dirname "$PCAPFERRY")" && pwd)
    # the units name the binary "pcapferry"; the one under test may not be
    if [[ "$(basename "$PCAPFERRY")" != pcapferry ]]; then
        mkdir -p "$T/bin"
        ln -s "$PCAPFERRY" "$T/bin/pcapferry"
        bindir=$T/bin
    fi
    for f in "$PKG"/systemd/*.service.in "$PKG"/systemd/*.path; do
        u=$(basename "$f" .in)
        sed "s|@PF_BINDIR@|$bindir|g" "$f" >"$T/units/$u"
    done
    for u in "$T"/units/*; do
        expect_exit 0 -- systemd-analyze verify --man=no "$u"
        # verify prints problems but may still exit 0 for some of them
        expect_eq "systemd-analyze verify $(basename "$u"): no complaint" "" "$(cat "$PF_ERR")"
    done
    expect_eq "no @VAR@ left in the units" "" "$(grep -l '@[A-Z_]*@' "$T"/units/* || true)"
    # the instance name is used for the interface and the directories
    expect_true "capture@ passes -i %i" grep -q -- '-i %i' "$T/units/pcapferry-capture@.service"
    # exposure: the importers must stay well sandboxed
    if systemd-analyze security --offline=yes "$T/units/pcapferry-import.service" \
        >"$T/sec.txt" 2>&1; then
        score=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' "$T/sec.txt")
        expect_true "pcapferry-import.service exposure $score <= 1.0" \
            awk -v s="$score" 'BEGIN { exit !(s != "" && s <= 1.0) }'
    fi
else
    echo "SKIP: systemd-analyze not installed (Debian: systemd)"
fi

if ((EUID == 0)) && command -v systemd-sysusers >/dev/null 2>&1 &&
    command -v systemd-tmpfiles >/dev/null 2>&1; then
    ran_any=1
    R=$T/root
    mkdir -p "$R/etc"
    touch "$R/etc/passwd" "$R/etc/group" "$R/etc/shadow" "$R/etc/gshadow"
    expect_exit 0 -- systemd-sysusers --root="$R" "$PKG/systemd/pcapferry.sysusers"
    expect_true "sysusers: user pcapferry with nologin" \
        grep -q '^pcapferry:x:[0-9]*:[0-9]*:.*:/nonexistent:/usr/sbin/nologin$' "$R/etc/passwd"
    expect_exit 0 -- systemd-tmpfiles --root="$R" --create "$PKG/systemd/pcapferry.tmpfiles"
    # no one but root creates in incoming/: each sensor gets its own
    # incoming/SENSOR (pcapferry-add-uploader; tests/cli/perms.sh)
    expect_eq "tmpfiles: incoming is root's, traversable, not listable by others" "root 751" \
        "$(stat -c '%U %a' "$R/var/spool/pcapferry/incoming" 2>/dev/null)"
    expect_eq "tmpfiles: receipts/ traversable only" "711" \
        "$(stat -c %a "$R/var/spool/pcapferry/receipts" 2>/dev/null)"
    expect_eq "tmpfiles: /var/lib/pcapferry" "750" "$(stat -c %a "$R/var/lib/pcapferry" 2>/dev/null)"
else
    echo "SKIP: sysusers/tmpfiles check (needs root and systemd-sysusers, systemd-tmpfiles)"
fi

# --------------------------------------------------------------- man pages
section "man pages"
if command -v groff >/dev/null 2>&1; then
    ran_any=1
    for m in "$ROOT"/man/*.1; do
        expect_exit 0 -- groff -man -Tutf8 -ww -z "$m"
        expect_eq "groff -ww: no warning in $(basename "$m")" "" "$(cat "$PF_ERR")"
    done
    # every long option of `pcapferry help CMD` is in pcapferry-CMD.1
    for c in keys bundle capture import; do
        page=$ROOT/man/pcapferry-$c.1
        expect_true "man page for $c exists" test -f "$page" || continue
        missing=
        for o in $("$PCAPFERRY" help "$c" | grep -o -- '--[a-z][a-z-]*' | sort -u); do
            grep -qF -- "${o//-/\\-}" "$page" || missing+=" $o"
        done
        expect_eq "pcapferry-$c.1 names every option of 'pcapferry help $c'" "" "$missing"
    done
    if command -v man >/dev/null 2>&1; then
        # shellcheck disable=SC2016 # expanded by the inner bash
        expect_true "man -l renders pcapferry.1" \
            bash -c 'MANPAGER=cat man -l "$1" 2>/dev/null | grep -q "^NAME"' _ "$ROOT/man/pcapferry.1"
    fi
else
    echo "SKIP: groff not installed (Debian: groff-base)"
fi

# ----------------------------------------------------------------- configs
section "example configurations"
ran_any=1
# settings are written "#key = value" (no space after '#'); prose "# ..."
settings() { sed -n 's/^#\([a-z][a-z-]*\) = \(.*\)$/\1 = \2/p' "$1"; }
example_keys() { settings "$1" | sed 's/ = .*//' | sort -u; }

# keys the program accepts, from the parsing code
capture_keys=$(sed -n '/^static int apply(/,/^}/p' "$ROOT/capture/capture_cmd.c" |
    grep -o '"[a-z][a-z-]*"' | tr -d '"' | grep -vx -e stop -e drop-oldest | sort -u)
import_keys=$(sed -n '/^static int config_setting(/,/^}/p' "$ROOT/import/import_cmd.c" |
    grep -o 'strcmp(k, "[a-z-]*")' | sed 's/.*"\(.*\)".*/\1/' | sort -u)
expect_true "found capture's keys in capture_cmd.c" test "$(wc -l <<<"$capture_keys")" -ge 20
expect_true "found import's keys in import_cmd.c" test "$(wc -l <<<"$import_keys")" -ge 10
expect_eq "sensor.conf shows exactly the keys capture accepts" "$capture_keys" \
    "$(example_keys "$PKG/etc/sensor.conf")"
expect_eq "import.conf shows exactly the keys import accepts" "$import_keys" \
    "$(example_keys "$PKG/etc/import.conf")"

# The program parses the examples for real: every line uncommented, with the
# key pointing at a file that does not exist, so that the run stops right
# after the configuration was accepted, before anything starts.
settings "$PKG/etc/sensor.conf" | sed "s|^key = .*|key = $T/no-such-sensor.key|" >"$T/sensor.conf"
expect_exit 2 -- "$PCAPFERRY" capture -c "$T/sensor.conf"
expect_stderr_contains "$T/no-such-sensor.key"
expect_stderr_lacks "unknown setting"
expect_stderr_lacks "not a valid value"
settings "$PKG/etc/import.conf" | sed "s|^key = .*|key = $T/no-such-central.key|" >"$T/import.conf"
expect_exit 2 -- "$PCAPFERRY" import --config "$T/import.conf"
expect_stderr_contains "$T/no-such-central.key"
expect_stderr_lacks "unknown setting"
# and a wrong key is refused (so the two runs above did check the keys)
printf 'no-such-key = 1\n' >"$T/bad.conf"
expect_exit 2 -- "$PCAPFERRY" capture -c "$T/bad.conf"
expect_stderr_contains "unknown setting 'no-such-key'"
expect_exit 2 -- "$PCAPFERRY" import --config "$T/bad.conf"
expect_stderr_contains "unknown setting"

# capture.env: PCAPFERRY_* are the units', PCAP_* capture's own
while IFS= read -r v; do
    case "$v" in
    PCAPFERRY_*) expect_true "capture.env: \$$v is used by the capture unit" \
        grep -q "\${\{0,1\}$v" "$PKG/systemd/pcapferry-capture@.service.in" ;;
    *) expect_true "capture.env: $v is read by capture" \
        grep -q "\"$v\"" "$ROOT/capture/capture_cmd.c" ;;
    esac
done < <(sed -n 's/^#\{0,1\}\([A-Z_][A-Z_]*\)=.*/\1/p' "$PKG/etc/capture.env" | sort -u)

# -------------------------------------------------------- help and version
section "help and --version"
for c in keys bundle capture import; do
    expect_exit 0 -- "$PCAPFERRY" help "$c"
    expect_stdout_contains "usage: pcapferry $c"
done
expect_exit 0 -- "$PCAPFERRY" --version
for lib in libpcap libsodium libzstd libarchive jansson sqlite; do
    expect_stdout_contains "$lib"
done
expect_exit 0 -- "$PCAPFERRY" help capture
expect_stdout_contains "--syslog"
expect_exit 0 -- "$PCAPFERRY" help import
expect_stdout_contains "--syslog"

# ------------------------------------------------------------------ others
section "maintainer scripts, compose"
for s in postinst prerm postrm; do
    expect_exit 0 -- sh -n "$PKG/debian/$s"
    expect_true "$s is executable" test -x "$PKG/debian/$s"
done
expect_exit 0 -- sh -n "$PKG/sbin/pcapferry-add-uploader"
expect_true "pcapferry-add-uploader is executable" test -x "$PKG/sbin/pcapferry-add-uploader"
if command -v python3 >/dev/null 2>&1 && python3 -c 'import yaml' 2>/dev/null; then
    expect_exit 0 -- python3 -c '
import sys, yaml
d = yaml.safe_load(open(sys.argv[1]))
assert {"opensearch", "arkime-capture", "arkime-viewer", "pcapferry-import"} <= set(d["services"]), d["services"].keys()
' "$PKG/docker/compose.yaml"
else
    echo "SKIP: compose.yaml parse (needs python3 with yaml: python3-yaml)"
fi

((ran_any)) || skip "no tool to check with"
summary
