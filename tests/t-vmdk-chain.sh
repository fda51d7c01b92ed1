#!/bin/bash
# t-vmdk-chain: a snapshot chain (a base plus two delta links made by
# qemu-img and written by qemu-io) reads as the flattened disk; a CID
# mismatch in the chain is a warning in info and check, not an error;
# vmferry writes a delta disk with -B that qemu-img reads as the same
# disk; a parent name with ".." is refused unless --allow-backing-path.
. "$(dirname "$0")/lib.sh"

require qemu-img qemu-io python3 cmp "$VMFERRY"

cd "$scratch"
gen_pattern --seed 21 40m src.raw d4k,h60k,d100k,z64k,h3m,d8m,z1m,d512,h20m,d5m ||
    die "gen-pattern failed"
qemu-img convert -q -f raw -O vmdk src.raw base.vmdk
qemu-img create -q -f vmdk -b base.vmdk -F vmdk d1.vmdk
qemu-io -f vmdk -c 'write -P 0xab 1000k 300k' -c 'write -P 0xcd 30m 64k' \
    d1.vmdk >/dev/null
qemu-img create -q -f vmdk -b d1.vmdk -F vmdk d2.vmdk
qemu-io -f vmdk -c 'write -P 0xef 1100k 4k' -c 'write -z 5m 128k' \
    -c 'write -P 0x11 39m 1k' d2.vmdk >/dev/null

qemu-img convert -O raw d2.vmdk want.raw
"$VMFERRY" convert -O raw d2.vmdk got.raw || die "vmferry cannot read chain"
cmp -s want.raw got.raw || die "flattened chain differs"
"$VMFERRY" compare d2.vmdk want.raw > /dev/null || die "compare differs"
"$VMFERRY" info --backing-chain d2.vmdk | grep >/dev/null 'base.vmdk' ||
    die "info does not show the chain"

# vmferry writes a delta on top of the chain's middle link.
"$VMFERRY" convert -O vmdk -B d1.vmdk -F vmdk d2.vmdk top.vmdk ||
    die "convert -B failed"
grep -a -q 'parentFileNameHint="d1.vmdk"' top.vmdk || die "no parent hint"
qemu-img check -q top.vmdk || die "qemu-img check of the delta failed"
qemu-img compare -q d2.vmdk top.vmdk || die "delta reads differently"
[ "$(stat -c %s top.vmdk)" -lt 4000000 ] || die "delta holds the whole disk"

# A CID mismatch: rewrite d1's CID in its embedded descriptor.
# (qemu writes the CID with %x: fewer than 8 digits when it starts with
# zeros; the new one keeps the length so nothing after it moves)
bad=$(python3 - d1.vmdk <<'PY'
import re, sys
p = sys.argv[1]
d = bytearray(open(p, 'rb').read())
m = re.search(rb'\nCID=([0-9a-f]{1,8})\n', bytes(d))
new = b'0badc1d0'[8 - (m.end(1) - m.start(1)):]
d[m.start(1):m.end(1)] = new
open(p, 'wb').write(d)
print("%08x" % int(new, 16))
PY
)
"$VMFERRY" convert -O raw d2.vmdk got2.raw || die "CID mismatch is fatal"
cmp -s want.raw got2.raw || die "content after CID edit differs"
"$VMFERRY" info --json d2.vmdk | grep >/dev/null "\"parent-cid-mismatch\": \"$bad\"" ||
    die "info does not report the CID mismatch"
"$VMFERRY" check d2.vmdk > check.txt 2>&1 || die "check failed on CID mismatch"
grep -q 'does not match' check.txt || die "check does not warn about the CID"

# Confinement of parent names.
mkdir sub
cp d2.vmdk sub/
python3 - sub/d2.vmdk <<'PY'
import sys
p = sys.argv[1]
d = open(p, 'rb').read()
i = d.index(b'parentFileNameHint="d1.vmdk"')
end = d.index(b'\0', i)            # the descriptor's NUL padding
d = d[:i] + b'parentFileNameHint="../d1.vmdk"' + d[i + 28:end] + d[end + 3:]
open(p, 'wb').write(d)
PY
expect_rc 1 "$VMFERRY" convert -O raw sub/d2.vmdk x.raw 2>err.txt
grep -q 'allow-backing-path' err.txt || die "no hint about --allow-backing-path"
[ -e x.raw ] && die "refused convert left output"
"$VMFERRY" convert --allow-backing-path -O raw sub/d2.vmdk x.raw ||
    die "--allow-backing-path did not allow it"
cmp -s want.raw x.raw || die "allowed chain differs"
