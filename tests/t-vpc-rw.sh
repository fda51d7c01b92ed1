#!/bin/bash
# t-vpc-rw: VHD ("vpc") written by vmferry and read by qemu-img and libyal's
# vhdiinfo; written by qemu-img and read by vmferry; differencing chains;
# the Azure mode; info, check, map, measure, resize.
. "$(dirname "$0")/lib.sh"
require qemu-img python3
cd "$scratch"
# out_has PATTERN CMD...: CMD's output matches PATTERN (no grep -q in a
# pipe: under pipefail the writer's SIGPIPE would fail the test)
out_has() {
    local pat=$1 out
    shift
    out=$("$@") || return 1
    grep -q -- "$pat" <<<"$out"
}
gen_pattern --seed 5 48M src.raw d3m,h5m,d1k,h2m,z1m,d7m,h4m,d512 >/dev/null
before=$(sha256_of src.raw)
have_vhdi=0
command -v vhdiinfo >/dev/null && have_vhdi=1

# 1. vmferry writes, qemu-img and vhdiinfo read
for o in subformat=fixed subformat=dynamic subformat=dynamic,block_size=512K \
         subformat=fixed,force_size=on; do
    rm -f out.vhd
    "$VMFERRY" convert -O vpc -o "$o" src.raw out.vhd || die "convert -o $o"
    qemu-img compare -f raw -F vpc src.raw out.vhd >/dev/null ||
        die "qemu-img compare differs for -o $o"
    vs=$(qemu-img info -f vpc --output=json out.vhd |
         python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])')
    [ "$vs" = 50331648 ] || die "qemu-img sees $vs bytes for -o $o (CHS size?)"
    if [ $have_vhdi = 1 ]; then
        out_has 'Media size.*(50331648 bytes)' vhdiinfo out.vhd ||
            die "vhdiinfo: wrong size for -o $o"
    fi
    "$VMFERRY" check out.vhd >/dev/null || die "check -o $o"
    # the footer copy at 0 equals the end footer (AWS: Footers not identical)
    if [ "${o%%,*}" = subformat=dynamic ]; then
        cmp -s <(head -c 512 out.vhd) <(tail -c 512 out.vhd) ||
            die "footer copy differs from the footer"
    fi
done
# probing: a fixed VHD is found by its footer, never taken for raw
"$VMFERRY" convert -O vpc -o subformat=fixed src.raw fixed.vhd
out_has 'file format: vpc' "$VMFERRY" info fixed.vhd || die "fixed VHD probed as raw"
out_has '(50331648 bytes)' "$VMFERRY" info fixed.vhd || die "fixed VHD size"

# 2. qemu-img writes, vmferry reads (with and without force_size)
for o in subformat=fixed subformat=dynamic subformat=fixed,force_size=on \
         subformat=dynamic,force_size=on; do
    rm -f q.vhd
    qemu-img convert -f raw -O vpc -o "$o" src.raw q.vhd
    "$VMFERRY" convert -O raw q.vhd q.raw
    want=$(qemu-img info -f vpc --output=json q.vhd |
           python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])')
    [ "$(stat -c %s q.raw)" = "$want" ] || die "size differs from qemu's for $o"
    qemu-img compare -f raw -F vpc q.raw q.vhd >/dev/null || die "content for $o"
    "$VMFERRY" compare src.raw q.vhd >/dev/null || die "compare for $o"
done

# map agrees with the allocation: data only where the source had some
"$VMFERRY" convert -O vpc src.raw dyn.vhd
"$VMFERRY" map --json dyn.vhd > map.json
python3 - map.json <<'PY' || die "map of a dynamic VHD"
import json, sys
m = json.load(open(sys.argv[1]))
data = sum(e["length"] for e in m if e["data"])
assert 0 < data < 48 << 20, data
PY

# 3. differencing: a chain built by vmferry (-B), read flattened
gen_pattern --seed 6 48M top.raw h2m,d1m,z4m,h9m,d3m >/dev/null
"$VMFERRY" convert -O vpc -B dyn.vhd -F vpc top.raw diff.vhd || die "convert -B"
out_has 'backing file: dyn.vhd' "$VMFERRY" info diff.vhd || die "no parent"
"$VMFERRY" compare top.raw diff.vhd >/dev/null || die "diff chain content"
"$VMFERRY" convert -O raw diff.vhd flat.raw && cmp -s flat.raw top.raw ||
    die "flattened chain differs"
[ $have_vhdi = 0 ] || out_has 'Parent filename.*dyn.vhd' vhdiinfo diff.vhd ||
    die "vhdiinfo does not see the parent"
if [ $have_vhdi = 1 ]; then
    id=$(vhdiinfo dyn.vhd | sed -n 's/^[[:space:]]*Identifier[[:space:]]*: //p')
    out_has "Parent identifier.*$id" vhdiinfo diff.vhd ||
        die "parent UUID is not the parent's footer UUID"
fi
# a crafted 3-level chain with partial sector bitmaps and W2ku/W2ru/Mac X
mkdir chains
python3 "$TESTS_DIR/hostile/mk-vhd.py" chains chains
"$VMFERRY" convert -O raw chains/top.vhd chains/out.raw
cmp -s chains/out.raw chains/vhd-chain.raw || die "3-level chain content"

# 5. Azure: 10 GiB + 1 byte -> 10 GiB + 1 MiB + 512 bytes, conectix
truncate -s $((10 * 1024 * 1024 * 1024 + 1)) big.raw
"$VMFERRY" convert -O vpc -o azure=on big.raw az.vhd || die "azure=on"
[ "$(stat -c %s az.vhd)" = $((10 * 1024 * 1024 * 1024 + 1024 * 1024 + 512)) ] ||
    die "Azure file size $(stat -c %s az.vhd)"
[ "$(tail -c 512 az.vhd | head -c 8)" = conectix ] || die "no conectix cookie"
vs=$(qemu-img info -f vpc --output=json az.vhd |
     python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])')
[ "$vs" = $((10 * 1024 * 1024 * 1024 + 1024 * 1024)) ] || die "Azure vsize $vs"
rc=0
"$VMFERRY" convert -O vpc -o azure=on,align=strict big.raw az2.vhd 2> err || rc=$?
[ $rc -ne 0 ] || die "align=strict accepted an unaligned size"
grep -q 'whole number of MiB' err || die "align=strict message: $(cat err)"
[ ! -e az2.vhd ] || die "refused output left behind"

# 4. measure, resize, check
out_has "required size: 50332160" "$VMFERRY" measure -O vpc -o subformat=fixed src.raw ||
    die "measure fixed"
cp dyn.vhd grow.vhd
"$VMFERRY" resize grow.vhd 64M || die "resize dynamic"
out_has '(67108864 bytes)' "$VMFERRY" info grow.vhd || die "resized size"
qemu-img compare -f vpc -F raw grow.vhd src.raw >/dev/null 2>&1 || true
"$VMFERRY" compare grow.vhd src.raw >/dev/null || die "resized content"
cp fixed.vhd growf.vhd
"$VMFERRY" resize growf.vhd 64M || die "resize fixed"
[ "$(stat -c %s growf.vhd)" = $((64 * 1024 * 1024 + 512)) ] || die "fixed file size"
"$VMFERRY" compare growf.vhd src.raw >/dev/null || die "fixed resized content"
# a damaged footer copy is reported by check
cp dyn.vhd bad.vhd
printf 'X' | dd of=bad.vhd bs=1 seek=100 conv=notrunc status=none
rc=0; "$VMFERRY" check bad.vhd > chk.txt 2>&1 || rc=$?
[ $rc -ne 0 ] && grep -q 'Footers not identical' chk.txt || die "check missed the footer copy"

[ "$(sha256_of src.raw)" = "$before" ] || die "source changed"
echo ok
