#!/bin/bash
# t-vmdk-misc: info fields, check findings, measure and writing into
# existing images for VMDK.
#   info   createType, adapter, CID, extents with their files, and the
#          compressed size of a streamOptimized file;
#   check  finds a grain-table entry past end of file, overlapping grains,
#          a grain on top of a grain table, and a redundant GT that
#          disagrees with the primary (images from hostile/mk-vmdk.py);
#          a clean image checks clean;
#   measure  not below what convert really writes, per subformat;
#   convert -n  writes into existing images (resize is t-vmdk-resize).
. "$(dirname "$0")/lib.sh"

require qemu-img python3 cmp "$VMFERRY"

cd "$scratch"
gen_pattern --seed 41 70m src.raw d4k,h60k,d100k,z64k,h3m,d8m,z1m,d512,h20m,d10m ||
    die "gen-pattern failed"

# ---- info ----
"$VMFERRY" convert -f raw -O vmdk -o subformat=twoGbMaxExtentFlat,adapter_type=buslogic \
    src.raw two.vmdk || die "convert failed"
"$VMFERRY" info --json two.vmdk > info.json || die "info failed"
python3 - info.json <<'PY' || die "info fields wrong"
import json, sys
d = json.load(open(sys.argv[1]))["format-specific"]["data"]
assert d["create-type"] == "twoGbMaxExtentFlat", d
assert d["adapter-type"] == "buslogic", d
assert len(d["cid"]) == 8, d
e = d["extents"]
assert len(e) == 1 and e[0]["filename"] == "two-f001.vmdk", e
assert e[0]["format"] == "FLAT" and e[0]["virtual-size"] == 73400320, e
PY
"$VMFERRY" convert -f raw -O vmdk -o subformat=streamOptimized src.raw so.vmdk
"$VMFERRY" info --json so.vmdk > so.json || die "info failed"
python3 - so.json so.vmdk <<'PY' || die "stream info wrong"
import json, os, sys
d = json.load(open(sys.argv[1]))["format-specific"]["data"]
assert d["create-type"] == "streamOptimized", d
assert d["compressed-size"] == os.path.getsize(sys.argv[2]), d
assert d["extents"][0]["compressed"] is True
assert d["extents"][0]["version"] == 3
PY

# ---- check ----
mkdir h
python3 "$TESTS_DIR/hostile/mk-vmdk.py" h || die "mk-vmdk.py failed"
for f in ctl-sparse ctl-stream; do
    "$VMFERRY" check "h/$f.vmdk" > out.txt || die "check of $f not clean"
done
want_check() { # IMAGE PATTERN
    local rc=0
    "$VMFERRY" check "h/$1.vmdk" > out.txt 2>&1 || rc=$?
    [ "$rc" -eq 2 ] || die "check $1: exit $rc, wanted 2"
    grep -E "$2" out.txt > /dev/null || { cat out.txt; die "check $1: no '$2'"; }
}
want_check gte-past-eof 'beyond end of file'
want_check grains-overlap 'overlaps'
want_check grain-over-gt 'overlaps'
want_check rgt-mismatch 'redundant grain table 0 differs'
want_check hdr-gd-past-eof-rgd-ok 'using the redundant copy'
# and the primary's damage does not stop reading through the RGD
"$VMFERRY" compare h/hdr-gd-past-eof-rgd-ok.vmdk h/ctl-sparse.vmdk > /dev/null ||
    die "RGD fallback reads differently"

# A COWD (vmfsSparse) extent: guest sector 3 holds the pattern.
"$VMFERRY" convert -O raw h/ctl-cowd.vmdk cowd.raw || die "COWD read failed"
python3 - cowd.raw <<'PY' || die "COWD content wrong"
import struct, sys
d = open(sys.argv[1], 'rb').read()
assert len(d) == 1 << 20
assert d[:1536] == bytes(1536)
assert struct.unpack_from('<Q', d, 1536)[0] == 1536
assert d[2048:] == bytes(len(d) - 2048)
PY

# ---- measure ----
for sub in monolithicSparse streamOptimized monolithicFlat twoGbMaxExtentSparse \
           twoGbMaxExtentFlat vmfs; do
    req=$("$VMFERRY" measure -O vmdk -o subformat=$sub src.raw |
          awk '/^required size:/ { print $3 }')
    [ -n "$req" ] || die "measure $sub printed no required size"
    mkdir "m-$sub"
    "$VMFERRY" convert -f raw -O vmdk -o subformat=$sub src.raw "m-$sub/m.vmdk"
    got=$(du -cB1 --apparent-size "m-$sub"/* | tail -n 1 | cut -f1)
    [ "$got" -le "$req" ] || die "measure $sub: $req, convert wrote $got"
done

# ---- writing into existing images (convert -n) ----
gen_pattern --seed 43 70m other.raw d1m,h3m,d2m,z5m,h10m,d1m || die "gen other"
for o in "" "zeroed_grain=on" "subformat=twoGbMaxExtentSparse" \
         "subformat=monolithicFlat"; do
    rm -rf n && mkdir n
    qemu-img create -q -f vmdk ${o:+-o $o} n/n.vmdk 70M
    "$VMFERRY" convert -n -O vmdk src.raw n/n.vmdk || die "convert -n $o"
    qemu-img check -q n/n.vmdk || die "convert -n $o: qemu-img check"
    qemu-img compare -q src.raw n/n.vmdk || die "convert -n $o: content"
    # and over it again: old grains are rewritten or zeroed
    "$VMFERRY" convert -n -O vmdk other.raw n/n.vmdk || die "rewrite $o"
    qemu-img check -q n/n.vmdk || die "rewrite $o: qemu-img check"
    qemu-img compare -q other.raw n/n.vmdk || die "rewrite $o: content"
done
