# raw: sparse-aware convert, preallocation, digest and map against
# sha256sum and qemu-img map, source untouched.
. "$(dirname "$0")/lib.sh"
require qemu-img sha256sum
cd "$scratch"
gen_pattern 48M src.raw
before=$(sha256_of src.raw)

"$VMFERRY" convert -O raw src.raw out.raw
cmp src.raw out.raw || die "raw->raw content differs"
qemu-img compare -f raw -F raw src.raw out.raw >/dev/null || die "qemu-img compare"
# sparse: written zeros became holes, so the copy uses less space
a=$(du -k src.raw | cut -f1); b=$(du -k out.raw | cut -f1)
[ "$b" -le "$a" ] || die "output not sparse ($b KiB vs $a KiB)"

for p in off falloc full; do
    "$VMFERRY" convert -O raw -o preallocation=$p src.raw p-$p.raw
    cmp src.raw p-$p.raw || die "preallocation=$p content differs"
done
[ "$(du -k p-full.raw | cut -f1)" -ge 49000 ] || die "preallocation=full left holes"

# -S 0: no zero detection, everything written
"$VMFERRY" convert -S 0 -O raw src.raw s0.raw
cmp src.raw s0.raw || die "-S 0 content differs"

# digest = sha256sum of the raw bytes
d=$("$VMFERRY" digest src.raw | cut -d' ' -f1)
[ "$d" = "$(sha256_of src.raw)" ] || die "digest differs from sha256sum"

# map: data ranges agree with qemu-img map
"$VMFERRY" map --json out.raw > ours.json
qemu-img map -f raw --output=json out.raw > theirs.json
python3 - ours.json theirs.json <<'PY' || die "map differs from qemu-img map"
import json, sys
def data(p):
    out = []
    for e in json.load(open(p)):
        if e["data"]:
            if out and out[-1][1] == e["start"]:
                out[-1][1] = e["start"] + e["length"]
            else:
                out.append([e["start"], e["start"] + e["length"]])
    return out
a, b = data(sys.argv[1]), data(sys.argv[2])
if a != b:
    print("ours  ", a[:10]); print("theirs", b[:10]); sys.exit(1)
PY

# compare: identical, then one byte changed
"$VMFERRY" compare src.raw out.raw >/dev/null || die "compare said different"
printf 'X' | dd of=out.raw bs=1 seek=12345 conv=notrunc status=none
set +e; "$VMFERRY" compare src.raw out.raw > cmp.txt; rc=$?; set -e
[ $rc -eq 1 ] || die "compare exit $rc on different images"
grep -q 'offset 12345' cmp.txt || die "compare did not name offset 12345"

[ "$(sha256_of src.raw)" = "$before" ] || die "source changed"
echo ok
