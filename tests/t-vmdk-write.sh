#!/bin/bash
# t-vmdk-write: every VMDK subformat vmferry writes is read back right by
# two independent readers.  For each: qemu-img check is clean (where
# qemu-img checks that kind), qemu-img compare says identical to the
# source, libyal's vmdkinfo opens it and reports the right media size, and
# vmferry reads it back bit for bit.  Options (adapter_type, hwversion,
# compat6, toolsversion, zeroed_grain) land in the descriptor / header.
# A 5 GiB sparse disk with data across the 2 GiB boundaries checks the
# twoGbMaxExtent splitting.
. "$(dirname "$0")/lib.sh"

require qemu-img vmdkinfo cmp "$VMFERRY"

src="$scratch/src.raw"
gen_pattern --seed 7 70m "$src" d4k,h60k,d100k,z64k,h3m,d8m,z1m,d512,h20m,d10m ||
    die "gen-pattern failed"

# check_out SUB FILE SRC: the oracles on one output.
check_out() {
    local sub=$1 f=$2 s=$3
    local size
    size=$(stat -c %s "$s")
    qemu-img compare -q -f raw -F vmdk "$s" "$f" ||
        die "$sub: qemu-img compare differs"
    if [ "$sub" != vmfs ]; then
        qemu-img check -q -f vmdk "$f" || die "$sub: qemu-img check failed"
    fi
    vmdkinfo "$f" > "$scratch/vi.txt" 2>&1 || {
        cat "$scratch/vi.txt" >&2
        die "$sub: vmdkinfo cannot open it"
    }
    grep -q "Media size:.*($size bytes)" "$scratch/vi.txt" || {
        cat "$scratch/vi.txt" >&2
        die "$sub: vmdkinfo reports the wrong media size"
    }
    "$VMFERRY" convert -O raw "$f" "$scratch/back.raw" ||
        die "$sub: vmferry cannot read its own output"
    cmp -s "$s" "$scratch/back.raw" || die "$sub: read back differs"
    rm -f "$scratch/back.raw"
    "$VMFERRY" check "$f" >/dev/null || die "$sub: vmferry check fails"
}

for sub in monolithicSparse streamOptimized monolithicFlat \
           twoGbMaxExtentSparse twoGbMaxExtentFlat vmfs; do
    d="$scratch/$sub"
    mkdir -p "$d"
    "$VMFERRY" convert -f raw -O vmdk -o subformat=$sub "$src" "$d/out.vmdk" ||
        die "$sub: convert failed"
    check_out "$sub" "$d/out.vmdk" "$src"
    "$VMFERRY" info --json "$d/out.vmdk" | grep >/dev/null "\"create-type\": \"$sub\"" ||
        die "$sub: info does not show createType"
    ls "$d" | grep >/dev/null '\.tmp$' && die "$sub: temporary file left behind"
    echo "$sub: ok"
done

# The files each kind is made of.
[ -e "$scratch/monolithicFlat/out-flat.vmdk" ] || die "no out-flat.vmdk"
[ -e "$scratch/vmfs/out-flat.vmdk" ] || die "no vmfs out-flat.vmdk"
[ -e "$scratch/twoGbMaxExtentSparse/out-s001.vmdk" ] || die "no out-s001.vmdk"
[ -e "$scratch/twoGbMaxExtentFlat/out-f001.vmdk" ] || die "no out-f001.vmdk"
grep -q '^RW 143360 VMFS "out-flat.vmdk"$' "$scratch/vmfs/out.vmdk" ||
    die "vmfs descriptor extent line wrong"

# streamOptimized is the canonical layout: version 3, GD at end, footer
# and end-of-stream marker as the last two sectors.
so="$scratch/streamOptimized/out.vmdk"
python3 - "$so" <<'PY' || die "streamOptimized layout is not canonical"
import struct, sys
d = open(sys.argv[1], 'rb').read()
assert d[:4] == b'KDMV'
ver, flags = struct.unpack_from('<II', d, 4)
assert ver == 3, ver
assert flags & 0x30000 == 0x30000, hex(flags)
assert struct.unpack_from('<Q', d, 56)[0] == 0xffffffffffffffff
assert len(d) % 512 == 0
assert d[-512:] == bytes(512), 'no EOS marker'
foot = d[-1024:-512]
assert foot[:4] == b'KDMV'
gd = struct.unpack_from('<Q', foot, 56)[0]
assert gd * 512 < len(d)
m = d[-1536:-1024]
assert struct.unpack_from('<QII', m, 0) == (1, 0, 3), 'footer marker'
gm = d[(gd - 1) * 512:gd * 512]
assert struct.unpack_from('<II', gm, 8) == (0, 2), 'GD marker'
PY

# Options.
d="$scratch/opts"
mkdir -p "$d"
"$VMFERRY" convert -f raw -O vmdk \
    -o adapter_type=lsilogic,hwversion=10,toolsversion=10304,zeroed_grain=on \
    "$src" "$d/a.vmdk" || die "convert with options failed"
check_out opts "$d/a.vmdk" "$src"
strings "$d/a.vmdk" | grep >/dev/null 'ddb.adapterType = "lsilogic"' || die "adapter"
strings "$d/a.vmdk" | grep >/dev/null 'ddb.virtualHWVersion = "10"' || die "hwversion"
strings "$d/a.vmdk" | grep >/dev/null 'ddb.toolsVersion = "10304"' || die "tools"
strings "$d/a.vmdk" | grep >/dev/null 'ddb.geometry.heads = "255"' || die "heads"
"$VMFERRY" info --json "$d/a.vmdk" | grep >/dev/null '"zeroed-grain": true' ||
    die "zeroed_grain not in the header"
"$VMFERRY" convert -f raw -O vmdk -o compat6=on,adapter_type=pvscsi \
    "$src" "$d/b.vmdk" || die "compat6 failed"
strings "$d/b.vmdk" | grep >/dev/null 'ddb.virtualHWVersion = "6"' || die "compat6"
expect_rc 1 "$VMFERRY" convert -f raw -O vmdk -o compat6=on,hwversion=7 \
    "$src" "$d/c.vmdk" 2>/dev/null
expect_rc 1 "$VMFERRY" convert -f raw -O vmdk -o adapter_type=floppy \
    "$src" "$d/c.vmdk" 2>/dev/null
expect_rc 1 "$VMFERRY" convert -f raw -O vmdk -o subformat=bogus \
    "$src" "$d/c.vmdk" 2>/dev/null
[ -e "$d/c.vmdk" ] && die "a refused create left a file"

# 5 GiB, data on both sides of each 2 GiB boundary: three extents.
big="$scratch/big.raw"
gen_pattern --seed 9 5g "$big" d1m,h2045m,d4m,h2044m,d2m,h1m,d3m || die "gen big"
for sub in twoGbMaxExtentSparse twoGbMaxExtentFlat monolithicSparse; do
    d="$scratch/big-$sub"
    mkdir -p "$d"
    "$VMFERRY" convert -f raw -O vmdk -o subformat=$sub "$big" "$d/big.vmdk" ||
        die "big $sub: convert failed"
    qemu-img compare -q -f raw -F vmdk "$big" "$d/big.vmdk" ||
        die "big $sub: differs"
    [ "$sub" = twoGbMaxExtentFlat ] ||
        qemu-img check -q "$d/big.vmdk" || die "big $sub: check"
    vmdkinfo "$d/big.vmdk" | grep >/dev/null "(5368709120 bytes)" ||
        die "big $sub: vmdkinfo size"
    rm -rf "$d"
done
echo "all subformats ok"
