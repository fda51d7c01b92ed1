#!/bin/bash
# t-vdi-rw: VDI static and dynamic, written by vmferry and checked by
# qemu-img, written by qemu-img and read by vmferry; block map states;
# info, check, map, measure, resize.
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
gen_pattern --seed 9 24M src.raw d3m,h5m,d1k,h2m,z3m,d7m,d512 >/dev/null
before=$(sha256_of src.raw)

for o in static=off static=on; do
    rm -f out.vdi
    "$VMFERRY" convert -O vdi -o "$o" src.raw out.vdi || die "convert -o $o"
    qemu-img check -f vdi out.vdi >/dev/null || die "qemu-img check for $o"
    qemu-img compare -f raw -F vdi src.raw out.vdi >/dev/null ||
        die "qemu-img compare for $o"
    "$VMFERRY" check out.vdi >/dev/null || die "check for $o"
    "$VMFERRY" info --json out.vdi > info.json
    python3 - info.json "$o" <<'PY' || die "info for $o"
import json, sys
d = json.load(open(sys.argv[1]))
s = d["format-specific"]["data"]
assert s["subformat"] == ("static" if sys.argv[2] == "static=on" else "dynamic")
assert s["uuid"] != "00000000-0000-0000-0000-000000000000"
assert d["virtual-size"] == 24 << 20
PY
done

for o in static=off static=on; do
    rm -f q.vdi
    qemu-img convert -f raw -O vdi -o "$o" src.raw q.vdi
    "$VMFERRY" compare src.raw q.vdi >/dev/null || die "reading qemu's $o"
    "$VMFERRY" check q.vdi >/dev/null || die "check of qemu's $o"
done

# block map states: unallocated (hole), discarded (zero), data
python3 - st.vdi <<'PY'
import struct, sys
MIB = 1 << 20
h = bytearray(512)
h[0:40] = b"<<< Oracle VM VirtualBox Disk Image >>>\n"
struct.pack_into("<IIII", h, 0x40, 0xBEDA107F, 0x00010001, 0x180, 1)
struct.pack_into("<II", h, 0x154, 512, 1024)
struct.pack_into("<I", h, 0x168, 512)
struct.pack_into("<QIIII", h, 0x170, 3 * MIB, MIB, 0, 3, 1)
m = struct.pack("<III", 0xFFFFFFFF, 0xFFFFFFFE, 0).ljust(512, b"\0")
open(sys.argv[1], "wb").write(h + m + b"\x5a" * MIB)
PY
"$VMFERRY" map --json st.vdi > map.json
python3 - map.json <<'PY' || die "VDI map states"
import json, sys
m = json.load(open(sys.argv[1]))
data = [(e["start"], e["length"]) for e in m if e["data"]]
assert data == [(2 << 20, 1 << 20)], m
zero = [e for e in m if not e["data"] and e["zero"]]
assert zero, m
PY
qemu-img compare -f vdi st.vdi -F vdi st.vdi >/dev/null
"$VMFERRY" convert -O raw st.vdi st.raw
qemu-img convert -f vdi -O raw st.vdi st-q.raw
cmp -s st.raw st-q.raw || die "block states read differently from qemu"

out_has 'required size' "$VMFERRY" measure -O vdi -o static=on src.raw || die measure
"$VMFERRY" convert -O vdi src.raw grow.vdi
"$VMFERRY" resize grow.vdi 32M || die "resize"
qemu-img check -f vdi grow.vdi >/dev/null || die "qemu-img check after resize"
[ "$(qemu-img info -f vdi --output=json grow.vdi |
     python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])')" = 33554432 ] ||
    die "resized size"
"$VMFERRY" compare grow.vdi src.raw >/dev/null || die "resized content"

# resize.  Oracles: qemu-img check (block map, allocation count), info,
# compare against the truncated raw.
vinfo() {
    qemu-img info -f vdi --output=json "$1" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])'
}
resized() {
    qemu-img check -f vdi "$1" >/dev/null 2>&1 || die "qemu-img check of $1"
    [ "$(vinfo "$1")" = "$2" ] || die "qemu-img: $1 is $(vinfo "$1") bytes, not $2"
    cp "$3" ref.raw
    truncate -s "$2" ref.raw
    qemu-img compare -f raw -F vdi ref.raw "$1" >/dev/null || die "qemu-img compare: $1"
    "$VMFERRY" compare ref.raw "$1" >/dev/null || die "vmferry compare: $1"
    "$VMFERRY" check "$1" >/dev/null || die "check of $1"
}
# qemu's VDI has its map right before the data (no room): 100 GiB needs
# 400 KiB of map, so the data area moves up and the blocks in the way go
# to the end; then qemu writes far past the old map's reach
qemu-img convert -f raw -O vdi src.raw big.vdi
"$VMFERRY" resize big.vdi 100G || die "grow qemu's VDI to 100G"
resized big.vdi $((100 << 30)) src.raw
qemu-io -f vdi -c 'write -P 0xa5 99G 2M' -c 'write -P 0x5a 1M 4k' big.vdi >/dev/null
cp ref.raw big-want.raw
python3 - big-want.raw <<'PY'
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(99 << 30); f.write(b"\xa5" * (2 << 20))
    f.seek(1 << 20); f.write(b"\x5a" * 4096)
PY
"$VMFERRY" compare big-want.raw big.vdi >/dev/null || die "vmferry reads qemu's writes wrong"
qemu-img check -f vdi big.vdi >/dev/null 2>&1 || die "qemu-img check after writes"
# static stays static: the new blocks get their slots
"$VMFERRY" convert -O vdi -o static=on src.raw st.vdi
"$VMFERRY" resize st.vdi 40M || die "grow static"
resized st.vdi $((40 << 20)) src.raw
out_has 'subformat: static' "$VMFERRY" info st.vdi || die "grown VDI is not static"
out_has 'blocks-allocated: 40' "$VMFERRY" info st.vdi || die "static blocks not allocated"
qemu-img convert -f raw -O vdi -o static=on src.raw qst.vdi
"$VMFERRY" resize qst.vdi 300M || die "grow qemu's static VDI past its map"
resized qst.vdi $((300 << 20)) src.raw
# shrink: --shrink only, never over data; allocated blocks past the end
# are dropped and the kept ones fill their slots (qemu's check counts)
qemu-img create -q -f vdi sh.vdi 16M
qemu-io -f vdi -c 'write -P 0 14M 1M' -c 'write -P 0x11 0 1M' \
    -c 'write -P 0 15M 1M' -c 'write -P 0x22 3M 1M' sh.vdi >/dev/null
h=$(sha256_of sh.vdi)
expect_rc 1 "$VMFERRY" resize sh.vdi 8M 2>/dev/null
expect_rc 1 "$VMFERRY" resize --shrink sh.vdi 3M 2>/dev/null
[ "$(sha256_of sh.vdi)" = "$h" ] || die "refused shrink changed the image"
qemu-img convert -f vdi -O raw sh.vdi sh.raw
"$VMFERRY" resize --shrink sh.vdi 8M || die "shrink"
resized sh.vdi $((8 << 20)) sh.raw
out_has 'blocks-allocated: 2' "$VMFERRY" info sh.vdi || die "dropped blocks still counted"
[ "$(stat -c %s sh.vdi)" -lt $((3 << 20)) ] || die "shrunk file is $(stat -c %s sh.vdi) bytes"
# impossible sizes: one line naming the file and the value, nothing
# written (256 TiB is what we allow, VirtualBox's limit)
for bad in grow.vdi:300T st.vdi:300T grow.vdi:100000001 grow.vdi:+16E; do
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
