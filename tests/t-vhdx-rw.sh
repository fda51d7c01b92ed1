#!/bin/bash
# t-vhdx-rw: VHDX written by vmferry and read by qemu-img and vhdiinfo;
# written by qemu-img (block and log sizes) and read by vmferry; a crafted
# differencing chain; a crafted pending log replayed in memory (qemu-img
# check -r all on a copy is the oracle) with the source unchanged; info,
# check, map, measure, resize.
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
gen_pattern --seed 7 40M src.raw d3m,h5m,d1k,h2m,z9m,d7m,h4m,d512 >/dev/null
before=$(sha256_of src.raw)
have_vhdi=0
command -v vhdiinfo >/dev/null && have_vhdi=1
vsize() {
    qemu-img info -f vhdx --output=json "$1" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])'
}

# 1. vmferry writes; qemu-img checks and compares; vhdiinfo reads the size
for o in subformat=dynamic subformat=fixed block_size=1M,log_size=2M \
         block_size=32M block_size=256M,log_size=4M \
         block_size=2M,logical_sector_size=4096; do
    rm -f out.vhdx
    "$VMFERRY" convert -O vhdx -o "$o" src.raw out.vhdx || die "convert -o $o"
    if [ "$o" != "${o%4096}" ]; then
        # qemu reads 512-byte logical sectors only: vmferry and libyal read it
        "$VMFERRY" compare src.raw out.vhdx >/dev/null || die "content for $o"
    else
        qemu-img check -f vhdx out.vhdx >/dev/null || die "qemu-img check for $o"
        qemu-img compare -f raw -F vhdx src.raw out.vhdx >/dev/null ||
            die "qemu-img compare for $o"
        [ "$(vsize out.vhdx)" = 41943040 ] || die "qemu-img size for $o"
    fi
    if [ $have_vhdi = 1 ]; then
        out_has 'Media size.*(41943040 bytes)' vhdiinfo out.vhdx ||
            die "vhdiinfo: wrong size for -o $o"
    fi
    "$VMFERRY" check out.vhdx >/dev/null || die "check for $o"
done
out_has 'file format: vhdx' "$VMFERRY" info out.vhdx || die "probe"

# 2. qemu-img writes, vmferry reads
for o in subformat=dynamic subformat=fixed block_size=1M,log_size=1M \
         block_size=8M,log_size=8M block_size=64M,log_size=2M \
         block_state_zero=off; do
    rm -f q.vhdx
    qemu-img convert -f raw -O vhdx -o "$o" src.raw q.vhdx
    "$VMFERRY" compare src.raw q.vhdx >/dev/null || die "reading qemu's $o"
    "$VMFERRY" convert -O raw q.vhdx q.raw
    cmp -s q.raw src.raw || die "convert of qemu's $o"
    "$VMFERRY" check q.vhdx >/dev/null || die "check of qemu's $o"
done
# block status from the BAT: a mostly empty disk maps mostly as holes
qemu-img convert -f raw -O vhdx -o block_size=1M src.raw q.vhdx
"$VMFERRY" map --json q.vhdx > map.json
python3 - map.json <<'PY' || die "map of a dynamic VHDX"
import json, sys
m = json.load(open(sys.argv[1]))
data = sum(e["length"] for e in m if e["data"])
assert 0 < data <= 14 << 20, data
PY

# 3. differencing chains: built by vmferry (-B), read flattened
gen_pattern --seed 8 40M l1.raw h2m,d1m,z4m,h9m,d3m >/dev/null
gen_pattern --seed 9 40M l2.raw d5k,h20m,d1m >/dev/null
"$VMFERRY" convert -O vhdx -o block_size=1M src.raw c0.vhdx
"$VMFERRY" convert -O vhdx -B c0.vhdx -F vhdx l1.raw c1.vhdx || die "convert -B"
"$VMFERRY" convert -O vhdx -B c1.vhdx -F vhdx l2.raw c2.vhdx || die "convert -B"
out_has 'backing file: c1.vhdx' "$VMFERRY" info c2.vhdx || die "no parent"
"$VMFERRY" convert -O raw c2.vhdx c2.raw && cmp -s c2.raw l2.raw ||
    die "flattened VHDX chain differs"
[ $have_vhdi = 0 ] || out_has 'Disk type.*Differential' vhdiinfo c2.vhdx ||
    die "vhdiinfo does not see a differencing disk"
if [ $have_vhdi = 1 ]; then
    # parent_linkage is the parent's DataWriteGuid, which libvhdi shows
    # as the parent's identifier
    id=$(vhdiinfo c1.vhdx | sed -n 's/^[[:space:]]*Identifier[[:space:]]*: //p')
    out_has "Parent identifier.*$id" vhdiinfo c2.vhdx ||
        die "parent_linkage is not the parent's DataWriteGuid"
fi
# ... and crafted, with full, partial, zero and absent blocks
mkdir chains
python3 "$TESTS_DIR/hostile/mk-vhd.py" chains chains
"$VMFERRY" convert -O raw chains/top.vhdx chains/out.raw
cmp -s chains/out.raw chains/vhdx-chain.raw || die "VHDX chain content"
out_has 'backing file: base.vhdx' "$VMFERRY" info chains/top.vhdx || die "parent"

# 4. a pending log, replayed in memory; the source is never written
python3 "$TESTS_DIR/hostile/mk-vhd.py" pending-log log.vhdx log-want.raw
h0=$(sha256_of log.vhdx)
out_has 'log-pending: true' "$VMFERRY" info log.vhdx || die "info: no pending log"
"$VMFERRY" convert -O raw log.vhdx log.raw || die "convert of a pending log"
cmp -s log.raw log-want.raw || die "replayed content differs from the spec's"
cp log.vhdx log-q.vhdx
qemu-img check -r all -f vhdx log-q.vhdx >/dev/null 2>&1 || true
qemu-img compare -f raw -F vhdx log.raw log-q.vhdx >/dev/null ||
    die "our replay differs from qemu's"
[ "$(sha256_of log.vhdx)" = "$h0" ] || die "the pending-log source changed"
rc=0; "$VMFERRY" resize log.vhdx 16M 2>/dev/null || rc=$?
[ $rc -ne 0 ] || die "resize wrote to an image with a pending log"
[ "$(sha256_of log.vhdx)" = "$h0" ] || die "the pending-log source changed"

# measure, resize
out_has 'required size: 46137344' "$VMFERRY" measure -O vhdx -o subformat=fixed,block_size=8M src.raw || die "measure fixed"
"$VMFERRY" convert -O vhdx src.raw grow.vhdx
"$VMFERRY" resize grow.vhdx 56M || die "resize"
[ "$(vsize grow.vhdx)" = 58720256 ] || die "resized size"
qemu-img check -f vhdx grow.vhdx >/dev/null || die "qemu-img check after resize"
"$VMFERRY" compare grow.vhdx src.raw >/dev/null || die "resized content"

# 5. resize, every kind.  Oracles: qemu-img check/info/compare (qemu-img
# dd for ranges of huge images: qemu reads every byte of a VHDX),
# vhdiinfo, and tests/vhdx-read.py (from the spec) for differencing
# disks, which qemu 7.2 does not open.
# resized IMAGE SIZE RAW: qemu and libyal see RAW cut or extended with
# zeros to SIZE
resized() {
    qemu-img check -f vhdx "$1" >/dev/null || die "qemu-img check of $1"
    [ "$(vsize "$1")" = "$2" ] || die "qemu-img: $1 is $(vsize "$1") bytes, not $2"
    cp "$3" ref.raw
    truncate -s "$2" ref.raw
    if [ "$2" -le $((1 << 30)) ]; then
        qemu-img compare -f raw -F vhdx ref.raw "$1" >/dev/null ||
            die "qemu-img compare: $1"
    else
        # the old content and the tail, through qemu
        qemu-img dd -f vhdx -O raw if="$1" of=head.raw bs=1M count=64
        cmp -s head.raw <(head -c 64M ref.raw) || die "qemu reads $1's old content wrong"
        qemu-img dd -f vhdx -O raw if="$1" of=tail.raw bs=1M skip=$(($2 / 1048576 - 4))
        cmp -s tail.raw <(head -c 4M /dev/zero) || die "qemu reads $1's tail wrong"
    fi
    "$VMFERRY" compare ref.raw "$1" >/dev/null || die "vmferry compare: $1"
    "$VMFERRY" check "$1" >/dev/null || die "check after resizing $1"
    if [ $have_vhdi = 1 ]; then
        out_has "Media size.*($2 bytes)" vhdiinfo "$1" || die "vhdiinfo size of $1"
    fi
}
gen_pattern --seed 10 64M r.raw d3m,h5m,d1k,h40m,d2m >/dev/null
# dynamic, 1 MiB blocks: the 1 MiB BAT region indexes 128 GiB; 200 GiB
# needs 2 MiB, so the blocks after it move to the end
"$VMFERRY" convert -O vhdx -o block_size=1M r.raw big.vhdx
"$VMFERRY" resize big.vhdx 200G || die "resize dynamic to 200G"
resized big.vhdx $((200 << 30)) r.raw
# qemu's layout has the metadata region right after the BAT: it moves
qemu-img convert -f raw -O vhdx -o block_size=1M r.raw qbig.vhdx
"$VMFERRY" resize qbig.vhdx 200G || die "resize qemu's VHDX to 200G"
resized qbig.vhdx $((200 << 30)) r.raw
# and data written after the growth, past the old BAT's reach, by qemu
qemu-io -f vhdx -c 'write -P 0xa5 199G 2M' qbig.vhdx >/dev/null
cp ref.raw qbig-want.raw
python3 - qbig-want.raw <<'PY'
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(199 << 30); f.write(b"\xa5" * (2 << 20))
PY
"$VMFERRY" compare qbig-want.raw qbig.vhdx >/dev/null ||
    die "vmferry reads qemu's writes past the old BAT wrongly"
qemu-img check -f vhdx qbig.vhdx >/dev/null || die "qemu-img check after writes"
# fixed: grown blocks are allocated (fixed stays fixed), both ways
"$VMFERRY" convert -O vhdx -o subformat=fixed,block_size=8M src.raw fx.vhdx
"$VMFERRY" resize fx.vhdx 100M || die "grow fixed"
resized fx.vhdx $((100 << 20)) src.raw
out_has 'subformat: fixed' "$VMFERRY" info fx.vhdx || die "grown VHDX not fixed"
[ $have_vhdi = 0 ] || out_has 'Disk type.*Fixed' vhdiinfo fx.vhdx || die "vhdiinfo: not fixed"
"$VMFERRY" map --json fx.vhdx | python3 -c '
import json, sys
m = json.load(sys.stdin)
assert all(e["present"] for e in m), m' || die "fixed VHDX has unallocated blocks after growing"
[ "$(stat -c %s fx.vhdx)" -ge $((100 << 20)) ] || die "fixed file too small"
"$VMFERRY" resize --shrink fx.vhdx 48M || die "shrink fixed"
resized fx.vhdx $((48 << 20)) src.raw
[ "$(stat -c %s fx.vhdx)" -le $((56 << 20)) ] || die "shrunk fixed file is $(stat -c %s fx.vhdx)"
qemu-img convert -f raw -O vhdx -o subformat=fixed src.raw qfx.vhdx
"$VMFERRY" resize qfx.vhdx 72M || die "grow qemu's fixed"
resized qfx.vhdx $((72 << 20)) src.raw
# shrink a dynamic VHDX: --shrink only, never over data
cp grow.vhdx sh.vhdx
h=$(sha256_of sh.vhdx)
expect_rc 1 "$VMFERRY" resize sh.vhdx 20M 2>/dev/null
expect_rc 1 "$VMFERRY" resize --shrink sh.vhdx 20M 2>/dev/null
[ "$(sha256_of sh.vhdx)" = "$h" ] || die "refused shrink changed the image"
"$VMFERRY" resize --shrink sh.vhdx 34M || die "shrink dynamic"
resized sh.vhdx $((34 << 20)) src.raw

# differencing: grown over its parent, flattened by the spec reader; the
# old range also by libvhdi (which fails past the parent's end)
gen_pattern --seed 11 40M p.raw d40m >/dev/null
python3 - p.raw d.raw <<'PY'
import random, sys
d = bytearray(open(sys.argv[1], "rb").read())
r = random.Random(3)
for off in (0, 10 << 20, (39 << 20) + 4096):
    d[off:off + 70000] = bytes(r.getrandbits(8) for _ in range(70000))
open(sys.argv[2], "wb").write(d[:40 << 20])
PY
"$VMFERRY" convert -O vhdx -o block_size=1M p.raw p.vhdx
"$VMFERRY" convert -O vhdx -B p.vhdx -F vhdx d.raw d.vhdx
"$VMFERRY" resize d.vhdx 300M || die "grow differencing"
cp d.raw dwant.raw
truncate -s 300M dwant.raw
python3 "$TESTS_DIR/vhdx-read.py" d.vhdx p.vhdx dflat.raw
cmp -s dflat.raw dwant.raw || die "grown differencing VHDX reads wrong (spec reader)"
"$VMFERRY" compare dwant.raw d.vhdx >/dev/null || die "grown differencing VHDX (vmferry)"
"$VMFERRY" check d.vhdx >/dev/null || die "check of the grown differencing VHDX"
if [ $have_vhdi = 1 ]; then
    out_has "Media size.*($((300 << 20)) bytes)" vhdiinfo d.vhdx || die "vhdiinfo size"
fi
if /usr/bin/python3 -c 'import pyvhdi' 2>/dev/null; then
    /usr/bin/python3 - d.vhdx p.vhdx d.raw <<'PY' || die "libvhdi reads the old range wrong"
import pyvhdi, sys
p = pyvhdi.file(); p.open(sys.argv[2])
c = pyvhdi.file(); c.open(sys.argv[1]); c.set_parent(p)
want = open(sys.argv[3], "rb").read()
c.seek_offset(0, 0)
assert c.read_buffer(len(want)) == want
PY
fi
# a parent larger than the child: the grown range must not show the
# parent's data (PAYLOAD_BLOCK_ZERO, not NOT_PRESENT); the child's size
# is set to 20.5 MiB by hand (its BAT still covers 40 MiB)
"$VMFERRY" convert -O vhdx -B p.vhdx -F vhdx d.raw d2.vhdx
python3 - d2.vhdx <<'PY'
import struct, sys
f = open(sys.argv[1], "r+b"); d = f.read()
rt = 192 * 1024
for i in range(struct.unpack_from("<I", d, rt + 8)[0]):
    g, off = struct.unpack_from("<16sQ", d, rt + 16 + 32 * i)
    if g.hex().startswith("06a27c8b"):
        meta = off
for i in range(struct.unpack_from("<H", d, meta + 10)[0]):
    g, o = struct.unpack_from("<16sI", d, meta + 32 + 32 * i)
    if g.hex() == "2442a52f1bcd7648b2115dbed83bf4b8":
        f.seek(meta + o); f.write(struct.pack("<Q", (20 << 20) + (512 << 10)))
PY
"$VMFERRY" resize d2.vhdx 64M || die "grow a differencing VHDX over a larger parent"
head -c $(((20 << 20) + (512 << 10))) d.raw > d2want.raw
truncate -s 64M d2want.raw
python3 "$TESTS_DIR/vhdx-read.py" d2.vhdx p.vhdx d2flat.raw
cmp -s d2flat.raw d2want.raw || die "grown range shows the parent's data (spec reader)"
"$VMFERRY" compare d2want.raw d2.vhdx >/dev/null || die "grown range shows the parent (vmferry)"
# shrink it back: tail zeros through the chain
"$VMFERRY" resize --shrink d.vhdx 40M || die "shrink differencing"
python3 "$TESTS_DIR/vhdx-read.py" d.vhdx p.vhdx dflat.raw
cmp -s dflat.raw d.raw || die "shrunk differencing VHDX reads wrong"

# impossible sizes: one line naming the file and the value, nothing
# written (64 TiB is VHDX's maximum; sizes are whole logical sectors)
for bad in grow.vhdx:65T fx.vhdx:65T d.vhdx:65T grow.vhdx:100000001 \
           grow.vhdx:+16E; do
    img=${bad%%:*} bad=${bad#*:}
    h=$(sha256_of "$img")
    rc=0; "$VMFERRY" resize "$img" "$bad" 2>err || rc=$?
    [ $rc -ne 0 ] || die "resize $img $bad succeeded"
    [ "$(wc -l < err)" = 1 ] && grep -q "$img" err &&
        grep -q "$(numfmt --from=iec "$bad" 2>/dev/null || echo "${bad#+}")" err ||
        die "message: $(cat err)"
    [ "$(sha256_of "$img")" = "$h" ] || die "failed resize changed $img"
done

[ "$(sha256_of src.raw)" = "$before" ] || die "source changed"
echo ok
