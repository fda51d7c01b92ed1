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

. "$TESTS_DIR/lib-hostile.sh"   # fail, run_one, want_rc, check_outdir

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

hostile_report
