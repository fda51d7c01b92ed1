#!/bin/bash
# t-vpc-rw: VHD ("vpc") written by vmferry and read by qemu-img and libyal's
# vhdiinfo; written by qemu-img and read by vmferry; differencing chains;
# the Azure mode; info, check, map, measure, resize.
. "$(dirname "$0")/lib.sh"
require qemu-img qemu-io python3
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

# 6. resize past the BAT's room: a 48 MiB dynamic VHD's BAT (one sector,
# 128 entries) indexes 256 MiB; 100 GiB needs 200 KiB of BAT, so the
# blocks after it move to the end.  Oracles: qemu-img (info, compare
# against the truncated raw), vhdiinfo, and data qemu writes past the old
# room, read back by vmferry.
vinfo() {
    qemu-img info -f vpc --output=json "$1" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])'
}
# resized IMAGE SIZE RAW: the oracles agree that IMAGE is RAW cut or
# extended with zeros to SIZE
resized() {
    [ "$(vinfo "$1")" = "$2" ] || die "qemu-img: $1 is $(vinfo "$1") bytes, not $2"
    cp "$3" ref.raw
    truncate -s "$2" ref.raw
    qemu-img compare -f raw -F vpc ref.raw "$1" >/dev/null ||
        die "qemu-img compare: $1 differs from the truncated raw"
    "$VMFERRY" compare ref.raw "$1" >/dev/null || die "vmferry compare: $1"
    "$VMFERRY" check "$1" >/dev/null || die "check after resizing $1"
    if [ $have_vhdi = 1 ]; then
        out_has "Media size.*($2 bytes)" vhdiinfo "$1" || die "vhdiinfo size of $1"
    fi
    if [ "$(head -c 8 "$1" | tr -d '\000')" = conectix ]; then
        cmp -s <(head -c 512 "$1") <(tail -c 512 "$1") || die "footer copy of $1"
    fi
}
cp dyn.vhd big.vhd
"$VMFERRY" resize big.vhd 100G || die "resize to 100G"
resized big.vhd $((100 << 30)) src.raw
python3 - big.vhd <<'PY' || die "BAT did not grow in place"
import struct, sys
f = open(sys.argv[1], "rb").read()
dyn = struct.unpack(">Q", f[16:24])[0]
bat = struct.unpack(">Q", f[dyn + 16:dyn + 24])[0]
n = struct.unpack(">I", f[dyn + 28:dyn + 32])[0]
assert bat == 1536 and n == 51200, (bat, n)
PY
qemu-io -f vpc -c 'write -P 0xa5 99G 3M' -c 'write -P 0x5a 1M 64k' big.vhd >/dev/null
cp ref.raw big-want.raw
python3 - big-want.raw <<'PY'
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(99 << 30); f.write(b"\xa5" * (3 << 20))
    f.seek(1 << 20); f.write(b"\x5a" * (64 << 10))
PY
"$VMFERRY" compare big-want.raw big.vhd >/dev/null ||
    die "vmferry reads data qemu wrote past the old BAT's room wrongly"
qemu-img compare -f raw -F vpc big-want.raw big.vhd >/dev/null || die "qemu after writes"
# fixed: both ways; the footer moves, the old one becomes zeros
cp fixed.vhd fx.vhd
"$VMFERRY" resize fx.vhd 80M || die "grow fixed"
resized fx.vhd $((80 << 20)) src.raw
"$VMFERRY" resize --shrink fx.vhd 52M || die "shrink fixed"
resized fx.vhd $((52 << 20)) src.raw
[ "$(stat -c %s fx.vhd)" = $((52 * 1024 * 1024 + 512)) ] || die "fixed file size"
# a differencing disk grows over its parent.  qemu 7.2 ignores VHD
# parents, but this child holds every difference from its parent, so it
# reads alone as the chain does; libvhdi reads the chain's old range
cp diff.vhd dgrow.vhd
"$VMFERRY" resize dgrow.vhd 300M || die "grow differencing"
resized dgrow.vhd $((300 << 20)) top.raw
if /usr/bin/python3 -c 'import pyvhdi' 2>/dev/null; then
    /usr/bin/python3 - dgrow.vhd dyn.vhd top.raw <<'PY' || die "libvhdi reads the grown chain wrong"
import pyvhdi, sys
p = pyvhdi.file(); p.open(sys.argv[2])
c = pyvhdi.file(); c.open(sys.argv[1]); c.set_parent(p)
want = open(sys.argv[3], "rb").read()
c.seek_offset(0, 0)
assert c.read_buffer(len(want)) == want
PY
fi
# a parent larger than the child (its size set to 40.25 MiB by hand, its
# blocks past that freed): the grown range must read zeros, not the
# parent's data; vmferry and libvhdi read the chain
gen_pattern --seed 12 64M p64.raw d64m >/dev/null
"$VMFERRY" convert -O vpc p64.raw pv.vhd
python3 - p64.raw cv.raw cvw.raw <<'PY'
import random, sys
d = bytearray(open(sys.argv[1], "rb").read())
d[5 << 20:(5 << 20) + 9000] = random.Random(1).randbytes(9000)
open(sys.argv[2], "wb").write(d)
cut = (40 << 20) + (256 << 10)
open(sys.argv[3], "wb").write(d[:cut] + bytes((64 << 20) - cut))
PY
"$VMFERRY" convert -O vpc -B pv.vhd -F vpc cv.raw cv.vhd
python3 - cv.vhd <<'PY'
import struct, sys
f = open(sys.argv[1], "r+b"); d = f.read()
size = (40 << 20) + (256 << 10)
for off in (0, len(d) - 512):
    ft = bytearray(d[off:off + 512])
    struct.pack_into(">QQ", ft, 40, size, size)
    struct.pack_into(">I", ft, 64, 0)
    struct.pack_into(">I", ft, 64, ~sum(ft) & 0xffffffff)
    f.seek(off); f.write(ft)
dyn = struct.unpack_from(">Q", d, 16)[0]
bat = struct.unpack_from(">Q", d, dyn + 16)[0]
f.seek(bat + 4 * 20); f.write(b"\xff" * 4 * 12)
PY
"$VMFERRY" resize cv.vhd 64M || die "grow a differencing VHD over a larger parent"
"$VMFERRY" compare cvw.raw cv.vhd >/dev/null || die "grown range shows the parent's data"
if /usr/bin/python3 -c 'import pyvhdi' 2>/dev/null; then
    /usr/bin/python3 - cv.vhd pv.vhd cvw.raw <<'PY' || die "libvhdi: grown range shows the parent's data"
import pyvhdi, sys
p = pyvhdi.file(); p.open(sys.argv[2])
c = pyvhdi.file(); c.open(sys.argv[1]); c.set_parent(p)
want = open(sys.argv[3], "rb").read()
c.seek_offset(0, 0)
assert c.read_buffer(len(want)) == want
PY
fi
# shrink: only with --shrink, never over data; then blocks past the end
# are dropped and the file is cut
cp dyn.vhd sh.vhd
h=$(sha256_of sh.vhd)
expect_rc 1 "$VMFERRY" resize sh.vhd 40M 2>/dev/null
expect_rc 1 "$VMFERRY" resize --shrink sh.vhd 20M 2>/dev/null
[ "$(sha256_of sh.vhd)" = "$h" ] || die "refused shrink changed the image"
qemu-img convert -f raw -O vpc -o force_size=on -S 0 src.raw sh.vhd
"$VMFERRY" resize --shrink sh.vhd 46M || die "shrink dynamic"
resized sh.vhd $((46 << 20)) src.raw
[ "$(stat -c %s sh.vhd)" -lt $((48 << 20)) ] || die "shrink left the file $(stat -c %s sh.vhd) bytes"
# impossible sizes: one line naming the file and the value, nothing
# written
# (dynamic: 2040 GiB, the BAT's u32 sector offsets; fixed: 32 TiB, ours)
for bad in dyn.vhd:3T fixed.vhd:33T dyn.vhd:100000001 fixed.vhd:100000001 dyn.vhd:+16E; do
    img=${bad%%:*} bad=${bad#*:}
    {
        h=$(sha256_of $img)
        rc=0; "$VMFERRY" resize $img $bad 2>err || rc=$?
        [ $rc -ne 0 ] || die "resize $img $bad succeeded"
        [ "$(wc -l < err)" = 1 ] && grep -q "$img" err &&
            grep -q "$(numfmt --from=iec "$bad" 2>/dev/null || echo "${bad#+}")" err ||
            die "message: $(cat err)"
        [ "$(sha256_of $img)" = "$h" ] || die "failed resize changed $img"
    }
done

[ "$(sha256_of src.raw)" = "$before" ] || die "source changed"
echo ok
