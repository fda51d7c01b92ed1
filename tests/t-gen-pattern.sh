#!/bin/bash
# t-gen-pattern: the test-image generator itself: deterministic per seed,
# every data word holds its offset, everything else reads as zeros, the
# --map layout covers the file exactly, and the two zero modes do what
# they say.
. "$(dirname "$0")/lib.sh"
require python3

gen_pattern --map 8m "$scratch/a.raw" > "$scratch/a.map"
gen_pattern 8m "$scratch/b.raw"
gen_pattern --seed 9 8m "$scratch/c.raw"
cmp -s "$scratch/a.raw" "$scratch/b.raw" || die "same seed, different files"
cmp -s "$scratch/a.raw" "$scratch/c.raw" && die "seeds 1 and 9 gave one file"
[ "$(stat -c %s "$scratch/a.raw")" -eq $((8 << 20)) ] || die "wrong size"

# Content against the map: data words = offsets, the rest zeros; runs
# contiguous, covering the file, of every kind, not all 4 KiB aligned.
python3 - "$scratch/a.raw" "$scratch/a.map" <<'PY' || die "content check failed"
import struct, sys
data = open(sys.argv[1], "rb").read()
pos, kinds, odd = 0, set(), 0
for line in open(sys.argv[2]):
    kind, off, length = line.split()
    off, length = int(off), int(length)
    assert off == pos, "gap or overlap at %d" % off
    kinds.add(kind)
    odd += off % 4096 != 0
    run = data[off:off + length]
    if kind == "data":
        for i in range(0, length - length % 8, 8):
            w, = struct.unpack_from("<Q", run, i)
            assert w == off + i, "word at %d is %d" % (off + i, w)
    else:
        assert run.count(0) == length, "%s run at %d not zero" % (kind, off)
    pos = off + length
assert pos == len(data), "map ends at %d of %d" % (pos, len(data))
assert kinds == {"data", "zero", "hole"}, kinds
assert odd > 0, "every run is 4 KiB aligned"
PY

# SPEC layouts, odd sizes, and the zero modes.
gen_pattern --map 100001 "$scratch/s.raw" 'h1k,d4k,z512,d13' > "$scratch/s.map"
printf 'hole 0 1024\ndata 1024 4096\nzero 5120 512\ndata 5632 13\nhole 5645 94356\n' |
    cmp -s - "$scratch/s.map" || die "SPEC map: $(cat "$scratch/s.map")"
gen_pattern --map --zeros-as-holes 1m "$scratch/h.raw" > "$scratch/h.map"
grep -q '^zero' "$scratch/h.map" && die "--zeros-as-holes left zero runs"
gen_pattern --map --zeros-written 1m "$scratch/w.raw" > "$scratch/w.map"
grep -q '^hole' "$scratch/w.map" && die "--zeros-written left holes"
cmp -s "$scratch/h.raw" "$scratch/w.raw" || die "zero modes changed content"
# A fully written file has no holes on disk (allocated blocks cover it).
[ $(($(stat -c '%b * %B' "$scratch/w.raw"))) -ge $((1 << 20)) ] ||
    die "--zeros-written file is sparse"

# Bad arguments are refused.
expect_rc 2 gen_pattern 1m "$scratch/x.raw" 'q4k'
expect_rc 2 gen_pattern --zeros-as-holes --zeros-written 1m "$scratch/x.raw"
expect_rc 2 gen_pattern 12x "$scratch/x.raw"
echo ok
