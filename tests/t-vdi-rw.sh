#!/bin/bash
# t-vdi-rw: VDI static and dynamic, written by vmferry and checked by
# qemu-img, written by qemu-img and read by vmferry; block map states;
# info, check, map, measure, resize.
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

[ "$(sha256_of src.raw)" = "$before" ] || die "source changed"
echo ok
