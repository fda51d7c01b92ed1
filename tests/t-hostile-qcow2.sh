#!/bin/bash
# t-hostile-qcow2: every crafted hostile qcow2 (tests/hostile/mk-qcow2.py)
# goes through info, convert -O raw, check, map and digest.  Each run must:
#   - finish within 10 s, without a signal (no crash, no core dump) and
#     without sanitizer reports;
#   - on failure, print exactly one line on stderr, starting "vmferry: "
#     and naming the file, and leave no output file behind (check exiting
#     2 or 3 has run and reports on stdout, like qemu-img check);
#   - exit as the image's class in MANIFEST says (see mk-qcow2.py):
#       open     info 1, convert 1, check 1/2/3, map and digest non-zero
#       deep     convert 1, digest non-zero, check 1/2/3; info, map 0 or 1
#       payload  convert 1, digest non-zero; the rest may succeed
#       check    check 1/2/3; the rest may succeed
#       any      anything that is not a crash or a messy error
#       control  everything 0, content equal to qemu-img's reading
#   - leave the source's bytes unchanged.
# Controls made by qemu-img itself must succeed the same way.
. "$(dirname "$0")/lib.sh"

require python3 qemu-img sha256sum timeout "$VMFERRY"

hdir="$scratch/h"        # images live one level down so ../x exists
odir="$scratch/out"      # convert outputs: must stay empty on failure
mkdir -p "$hdir" "$odir"
echo "not an image" > "$scratch/x"
python3 "$TESTS_DIR/hostile/mk-qcow2.py" "$hdir" || die "mk-qcow2.py failed"

# Benign controls made by qemu-img from a pattern image.
gen_pattern --seed 3 4m "$scratch/pat.raw" ||
    die "gen-pattern failed"
qemu-img convert -f raw -O qcow2 "$scratch/pat.raw" "$hdir/qemu-default.qcow2"
qemu-img convert -f raw -O qcow2 -c -o cluster_size=512 \
    "$scratch/pat.raw" "$hdir/qemu-c512.qcow2"
qemu-img create -q -f qcow2 -b qemu-default.qcow2 -F qcow2 \
    "$hdir/qemu-overlay.qcow2"
if command -v qemu-io >/dev/null; then
    qemu-io -f qcow2 -c 'write -P 0xab 65024 9216' -c 'write -z 1m 64k' \
        "$hdir/qemu-overlay.qcow2" >/dev/null
fi
for f in qemu-default qemu-c512 qemu-overlay; do
    printf '%s\tcontrol\tmade by qemu-img\n' "$f" >> "$hdir/MANIFEST"
done

. "$TESTS_DIR/lib-hostile.sh"
hostile_run_manifest qcow2

# The backing path rule has an escape hatch; with it /etc/passwd is a
# (raw) backing file like any other.
if "$VMFERRY" info --help 2>&1 | grep -q -- --allow-backing-path; then
    run_one "$hdir/backing-etc-passwd.qcow2" info --allow-backing-path \
        "$hdir/backing-etc-passwd.qcow2"
    want_rc "info --allow-backing-path backing-etc-passwd" 0
fi

hostile_report
