#!/bin/bash
# t-vmdk-stream: streamOptimized files with and without markers read the
# same: qemu-img's (no GT/GD markers, no footer), vmferry's canonical one
# (markers, GD at end, footer), and that file with its footer cut off
# (the map is rebuilt from grain markers).  qemu-img and vmdkinfo read
# vmferry's stream; vmferry's stream is not much larger than qemu-img's.
. "$(dirname "$0")/lib.sh"

require qemu-img python3 cmp "$VMFERRY"

cd "$scratch"
gen_pattern --seed 31 40m src.raw d4k,h60k,d100k,z64k,h3m,d8m,z1m,d512,h20m,d5m ||
    die "gen-pattern failed"
qemu-img convert -f raw -O vmdk -o subformat=streamOptimized src.raw q.vmdk
"$VMFERRY" convert -f raw -O vmdk -o subformat=streamOptimized src.raw v.vmdk ||
    die "vmferry stream write failed"
"$VMFERRY" convert -c -f raw -O vmdk -o subformat=streamOptimized src.raw c.vmdk ||
    die "-c stream write failed"

# Cut the footer marker, footer and EOS marker, and the GD: a stream
# whose writer died before the end (or a tool that writes no GD).
python3 - v.vmdk cut.vmdk <<'PY'
import struct, sys
d = open(sys.argv[1], 'rb').read()
gd = struct.unpack_from('<Q', d[-1024:], 56)[0]
open(sys.argv[2], 'wb').write(d[:(gd - 1) * 512])
PY

for f in q.vmdk v.vmdk c.vmdk cut.vmdk; do
    "$VMFERRY" convert -O raw "$f" "$f.raw" || die "$f: read failed"
    cmp -s src.raw "$f.raw" || die "$f: content differs"
done
qemu-img compare -q src.raw v.vmdk || die "qemu-img reads vmferry's stream differently"
qemu-img check -q v.vmdk || die "qemu-img check of vmferry's stream"
# the embedded descriptor's extent line names the file itself
head -c 65536 v.vmdk | grep -a >/dev/null '^RW [0-9]* SPARSE "v.vmdk"$' ||
    die "stream descriptor extent line: $(head -c 65536 v.vmdk | grep -a '^RW')"
if command -v vmdkinfo >/dev/null; then
    vmdkinfo v.vmdk | grep >/dev/null "($(stat -c %s src.raw) bytes)" ||
        die "vmdkinfo media size"
fi
"$VMFERRY" info --json v.vmdk | grep >/dev/null '"compressed-size"' ||
    die "info lacks compressed-size"
qs=$(stat -c %s q.vmdk) vs=$(stat -c %s v.vmdk)
[ "$vs" -le $((qs * 102 / 100)) ] ||
    die "vmferry stream $vs bytes, qemu-img's $qs: more than 2 % larger"
echo "stream sizes: vmferry $vs, qemu-img $qs"
