#!/bin/bash
# t-vhdx-rw: VHDX written by vmferry and read by qemu-img and vhdiinfo;
# written by qemu-img (block and log sizes) and read by vmferry; a crafted
# differencing chain; a crafted pending log replayed in memory (qemu-img
# check -r all on a copy is the oracle) with the source unchanged; info,
# check, map, measure, resize.
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

[ "$(sha256_of src.raw)" = "$before" ] || die "source changed"
echo ok
