# measure: qcow2 sizes equal qemu-img measure's (the independent oracle),
# for an empty disk and for a pattern image, at several cluster sizes; raw
# is the virtual size.  And every measured size is at least what convert
# really writes.
. "$(dirname "$0")/lib.sh"
require qemu-img
cd "$scratch"
gen_pattern 40M src.raw
for cs in 4k 64k 2M; do
    for what in "--size 40M" "src.raw"; do
        ours=$("$VMFERRY" measure -O qcow2 -o cluster_size=$cs $what)
        theirs=$(qemu-img measure -O qcow2 -o cluster_size=$cs $what |
                 grep -E '^(required|fully)')
        [ "$ours" = "$theirs" ] ||
            die "measure -O qcow2 cluster_size=$cs $what: ours [$ours] qemu-img [$theirs]"
    done
    "$VMFERRY" convert -O qcow2 -o cluster_size=$cs src.raw out-$cs.qcow2
    req=$("$VMFERRY" measure -O qcow2 -o cluster_size=$cs src.raw |
          sed -n 's/^required size: //p')
    [ "$(stat -c %s out-$cs.qcow2)" -le "$req" ] ||
        die "cluster_size=$cs: wrote $(stat -c %s out-$cs.qcow2) > measured $req"
done
[ "$("$VMFERRY" measure -O raw src.raw | sed -n 's/^required size: //p')" = 41943040 ] ||
    die "raw measure is not the virtual size"
echo ok
