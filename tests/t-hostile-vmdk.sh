#!/bin/bash
# t-hostile-vmdk: every crafted hostile VMDK (tests/hostile/mk-vmdk.py)
# goes through info, convert -O raw, check, map and digest.  Each run must:
#   - finish within 10 s, without a signal (no crash, no core dump) and
#     without sanitizer reports;
#   - on failure, print exactly one line on stderr, starting "vmferry: "
#     and naming the file, and leave no output file behind;
#   - exit as the image's class in MANIFEST says (see mk-vmdk.py):
#       open     info 1, convert 1, check 1/2/3, map and digest non-zero
#       chain    info 1, convert 1, map and digest non-zero; check any
#       deep     convert 1, digest non-zero, check 1/2/3; info, map 0 or 1
#       payload  convert 1, digest non-zero; the rest may succeed
#       check    check 2; the rest succeeds
#       any      anything that is not a crash or a messy error
#       control  everything 0, content equal to qemu-img's reading
#   - leave the source's bytes unchanged.
# Then resize (grow far, shrink) runs on a copy of every image: refused
# with one line or done, never a crash.
# Controls made by qemu-img itself must succeed the same way.
. "$(dirname "$0")/lib.sh"

require python3 qemu-img sha256sum timeout "$VMFERRY"

hdir="$scratch/h"        # images live one level down so ../x exists
odir="$scratch/out"      # convert outputs: must stay empty on failure
mkdir -p "$hdir" "$odir"
echo "not an image" > "$scratch/x"
python3 "$TESTS_DIR/hostile/mk-vmdk.py" "$hdir" || die "mk-vmdk.py failed"

# Benign controls made by qemu-img from a pattern image.
gen_pattern --seed 3 4m "$scratch/pat.raw" d64k,h1m,d200k,z64k,h2m ||
    die "gen-pattern failed"
for sub in monolithicSparse streamOptimized monolithicFlat; do
    qemu-img convert -f raw -O vmdk -o subformat=$sub "$scratch/pat.raw" \
        "$hdir/qemu-$sub.vmdk"
    printf 'qemu-%s\tcontrol\tmade by qemu-img\n' "$sub" >> "$hdir/MANIFEST"
done

. "$TESTS_DIR/lib-hostile.sh"
hostile_run_manifest vmdk 2

# The confinement rule has an escape hatch: with it the extent may be
# any file (here a flat extent naming ../x).
run_one "$hdir/desc-extent-dotdot.vmdk" info --allow-backing-path \
    "$hdir/desc-extent-dotdot.vmdk"
want_rc "info --allow-backing-path desc-extent-dotdot" 0

# resize, on a copy of every image: growing far past the grain
# directory's room, then shrinking, may be refused (one line naming the
# file) but never crashes; what it leaves opens or is refused cleanly.
rdir="$scratch/r"
cp -a "$hdir" "$rdir"
while IFS=$'\t' read -r -u 3 name cls what; do
    [ "$cls" = aux ] && continue
    f="$rdir/$name.vmdk"
    run_one "$f" resize "$f" 40G
    want_rc "resize $name" 0 1
    run_one "$f" resize --shrink "$f" 512K
    want_rc "resize --shrink $name" 0 1
    run_one "$f" check "$f"
    want_rc "check after resize $name" 0 1 2 3
done 3< "$hdir/MANIFEST"

hostile_report
