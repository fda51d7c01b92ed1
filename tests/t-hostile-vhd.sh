#!/bin/bash
# t-hostile-vhd: every crafted hostile VHD, VHDX and VDI image
# (tests/hostile/mk-vhd.py) goes through info, convert -O raw, check, map
# and digest, with the format forced (-f) so that the driver, not the
# probe, meets the damage.  Each run must:
#   - finish within 10 s, without a signal and without sanitizer reports;
#   - on failure, print exactly one line on stderr, starting "vmferry: "
#     and naming the file, and leave no output file behind;
#   - exit as the image's class in MANIFEST says:
#       open     info, convert, map, digest fail; check exits 1, 2 or 3
#       parent   as open, but check (which opens no parent) may pass
#       control  everything 0; content equal to qemu-img's reading (the
#                pending-log control, which qemu will not open read-only,
#                is checked against its spec content by t-vhdx-rw)
#       any      anything that is not a crash or a messy error
#   - leave the source's bytes unchanged.
. "$(dirname "$0")/lib.sh"
require python3 qemu-img sha256sum timeout "$VMFERRY"

hdir="$scratch/h"        # images one level down, so ../x exists
odir="$scratch/out"
mkdir -p "$hdir" "$odir"
echo "not an image" > "$scratch/x.vhd"
cp "$scratch/x.vhd" "$scratch/parent.vhdx"
python3 "$TESTS_DIR/hostile/mk-vhd.py" "$hdir" || die "mk-vhd.py failed"

failures=()
fail() { failures+=("$*"); echo "  FAIL: $*"; }
out="$scratch/stdout" err="$scratch/stderr"

# run_one FILE CMD...: run vmferry CMD... and judge its manners.
run_one() {
    local file=$1
    shift
    rc=0
    timeout -k 2 10 "$VMFERRY" "$@" >"$out" 2>"$err" </dev/null || rc=$?
    local what="$* (exit $rc)"
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
        fail "$what: took more than 10 s"
        return
    fi
    [ "$rc" -lt 128 ] || fail "$what: killed by signal $((rc - 128))"
    if grep -qE 'Sanitizer|runtime error' "$err"; then
        fail "$what: sanitizer report: $(grep -m1 -E 'Sanitizer|runtime error' "$err")"
    fi
    local n
    n=$(wc -l < "$err")
    if [ "$1" = check ] && { [ "$rc" -eq 2 ] || [ "$rc" -eq 3 ]; }; then
        if [ "$n" -gt 1 ]; then
            fail "$what: unexpected stderr: $(head -c 300 "$err" | tr '\n' '|')"
        fi
    elif [ "$rc" -ne 0 ]; then
        if [ "$n" -ne 1 ]; then
            fail "$what: $n lines on stderr, wanted 1: $(head -c 300 "$err" | tr '\n' '|')"
        elif ! grep -q '^vmferry: ' "$err"; then
            fail "$what: stderr does not start with 'vmferry: ': $(cat "$err")"
        elif ! grep -qF "$file" "$err"; then
            fail "$what: stderr does not name the file: $(cat "$err")"
        fi
    fi
    echo "    rc=$rc $1: $(head -n1 "$err")"
}

want_rc() {
    local what=$1 a
    shift
    for a in "$@"; do
        if [ "$a" = nz ]; then
            [ "$rc" -ge 1 ] && [ "$rc" -lt 124 ] && return 0
        elif [ "$rc" -eq "$a" ]; then
            return 0
        fi
    done
    fail "$what: exit $rc, wanted one of: $*"
}

check_outdir() {
    if [ "$rc" -ne 0 ] && [ -n "$(ls -A "$odir")" ]; then
        fail "$1: failed convert left files: $(ls -A "$odir" | tr '\n' ' ')"
    fi
    rm -rf "${odir:?}"/* "$odir"/.[!.]* 2>/dev/null || true
}

nfiles=0
while IFS=$'\t' read -r -u 3 name fmt cls what; do
    f="$hdir/$name"
    [ -e "$f" ] || die "mk-vhd.py did not write $f"
    nfiles=$((nfiles + 1))
    echo "$name ($cls): $what"
    before=$(sha256_of "$f")

    run_one "$f" info -f "$fmt" "$f"
    case $cls in
    open|parent) want_rc "info $name" 1 ;;
    control) want_rc "info $name" 0 ;;
    *) want_rc "info $name" 0 1 ;;
    esac

    run_one "$f" convert -f "$fmt" -O raw "$f" "$odir/out.raw"
    case $cls in
    open|parent) want_rc "convert $name" 1 ;;
    control) want_rc "convert $name" 0 ;;
    *) want_rc "convert $name" 0 1 ;;
    esac
    if [ "$cls" = control ] && [ "$rc" -eq 0 ] && [ "$name" != vhdx-log-control.vhdx ]
    then
        qemu-img convert -f "$fmt" -O raw "$f" "$scratch/ref.raw"
        cmp -s "$odir/out.raw" "$scratch/ref.raw" ||
            fail "convert $name: output differs from qemu-img convert's"
    fi
    check_outdir "convert $name"

    run_one "$f" check -f "$fmt" "$f"
    case $cls in
    open) want_rc "check $name" 1 2 3 ;;
    control) want_rc "check $name" 0 ;;
    *) want_rc "check $name" 0 1 2 3 ;;
    esac

    run_one "$f" map -f "$fmt" "$f"
    case $cls in
    open|parent) want_rc "map $name" nz ;;
    control) want_rc "map $name" 0 ;;
    *) want_rc "map $name" 0 1 ;;
    esac

    run_one "$f" digest -f "$fmt" "$f"
    case $cls in
    open|parent) want_rc "digest $name" nz ;;
    control) want_rc "digest $name" 0 ;;
    *) want_rc "digest $name" 0 1 ;;
    esac

    [ "$(sha256_of "$f")" = "$before" ] || fail "$name: the source changed"
done 3< "$hdir/MANIFEST"

[ "$nfiles" -ge 30 ] || die "only $nfiles images in the manifest"

# The parent path rule has an escape hatch: with it, ../x.vhd is opened
# (and refused as a VHD, since it is not one).
run_one "$hdir/vhd-parent-dotdot.vhd" info --allow-backing-path \
    "$hdir/vhd-parent-dotdot.vhd"
want_rc "info --allow-backing-path vhd-parent-dotdot" 1
grep -q 'x.vhd' "$err" || fail "--allow-backing-path did not follow ../x.vhd"

if [ ${#failures[@]} -gt 0 ]; then
    echo "failures:"
    printf '  %s\n' "${failures[@]}"
    die "${#failures[@]} failures over $nfiles images"
fi
echo "all $nfiles images handled"
