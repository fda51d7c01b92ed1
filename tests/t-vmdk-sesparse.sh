#!/bin/bash
# t-vmdk-sesparse: an ESXi seSparse snapshot delta (descriptor plus
# -sesparse.vmdk extent crafted by tests/hostile/sesparse.py: allocated
# grains, some next to each other on disk and some at grain indices past
# 4096, zeroed and unmapped grains over parent data, a grain table the GD
# does not map, grain tables in another order than the GD's) over a
# monolithicSparse parent made by qemu-img.  Oracles: qemu-img 7.2 reads
# seSparse, and the script computes the bytes the delta must read as;
# vmferry's convert, digest and compare agree with both, and its map says
# the same per grain as qemu-img map.  info says createType seSparse,
# check is clean, and writing, resizing or creating seSparse is refused.
# The hostile seSparse files are in t-hostile-vmdk.
. "$(dirname "$0")/lib.sh"

require qemu-img python3 cmp "$VMFERRY"

cd "$scratch"
gen_pattern --seed 51 40m parent.raw d40m || die "gen-pattern failed"
qemu-img convert -q -f raw -O vmdk parent.raw parent.vmdk ||
    die "qemu-img convert failed"
python3 "$TESTS_DIR/hostile/sesparse.py" delta parent.raw parent.vmdk . delta ||
    die "sesparse.py failed"

# the oracles agree with each other first
qemu-img convert -O raw delta.vmdk qemu.raw || die "qemu-img cannot read it"
cmp qemu.raw delta.expected.raw ||
    die "qemu-img and the crafting script disagree (fixture broken)"

"$VMFERRY" convert -O raw delta.vmdk got.raw || die "vmferry cannot read it"
cmp got.raw delta.expected.raw || die "vmferry reads the delta wrong"
"$VMFERRY" compare delta.vmdk delta.expected.raw > /dev/null ||
    die "compare says it differs"
want=$(sha256_of delta.expected.raw)
got=$("$VMFERRY" digest delta.vmdk | awk '{ print $1 }')
[ "$got" = "$want" ] || die "digest $got, content hashes to $want"
# and to another format
"$VMFERRY" convert -O qcow2 delta.vmdk flat.qcow2 || die "convert to qcow2"
qemu-img compare -q -f raw delta.expected.raw flat.qcow2 ||
    die "qcow2 copy differs"

# block status per grain, as qemu-img map sees it
"$VMFERRY" map --json delta.vmdk > vf-map.json || die "map failed"
qemu-img map --output=json delta.vmdk > q-map.json
python3 - vf-map.json q-map.json <<'PY' || die "map differs from qemu-img map"
import json, sys
def grains(path):
    out = {}
    for r in json.load(open(path)):
        for off in range(r["start"], r["start"] + r["length"], 4096):
            out[off] = (r["depth"], r["present"], r["zero"], r["data"])
    return out
a, b = grains(sys.argv[1]), grains(sys.argv[2])
assert a.keys() == b.keys(), "ranges cover different offsets"
bad = [o for o in a if a[o] != b[o]]
assert not bad, ["0x%x: vmferry %s, qemu-img %s" % (o, a[o], b[o])
                 for o in bad[:5]]
PY

"$VMFERRY" info --json delta.vmdk > info.json || die "info failed"
python3 - info.json <<'PY' || die "info fields wrong"
import json, sys
j = json.load(open(sys.argv[1]))
d = j["format-specific"]["data"]
assert d["create-type"] == "seSparse", d
assert d["parent-file-name-hint"] == "parent.vmdk", d
e = d["extents"]
assert len(e) == 1 and e[0]["format"] == "SESPARSE", e
assert e[0]["filename"] == "delta-sesparse.vmdk", e
assert e[0]["cluster-size"] == 4096, e
assert j["virtual-size"] == 40 << 20, j
PY
"$VMFERRY" check delta.vmdk > check.txt || { cat check.txt; die "check not clean"; }
grep -q '^10/10240 = ' check.txt || { cat check.txt; die "check counts wrong"; }

# read-only: no write, no resize, no writer
before=$(sha256_of delta-sesparse.vmdk)
expect_rc 1 "$VMFERRY" convert -n -O vmdk parent.raw delta.vmdk 2> err.txt
grep -q 'seSparse VMDK extents are read-only' err.txt || die "convert -n: $(cat err.txt)"
expect_rc 1 "$VMFERRY" resize delta.vmdk 80M 2> err.txt
grep -q 'seSparse' err.txt || die "resize: $(cat err.txt)"
[ "$(sha256_of delta-sesparse.vmdk)" = "$before" ] || die "the extent changed"
expect_rc 1 "$VMFERRY" convert -O vmdk -o subformat=seSparse parent.raw x.vmdk \
    2> err.txt
grep -q 'seSparse is read-only' err.txt || die "create: $(cat err.txt)"
[ ! -e x.vmdk ] || die "a refused create left x.vmdk"
echo "seSparse: ok"
