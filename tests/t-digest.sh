# digest: the same SHA-256 as sha256sum of the raw bytes, for the same
# content in every format (each written by qemu-img, the independent
# writer), and chains hash as their flattened content.
. "$(dirname "$0")/lib.sh"
require qemu-img sha256sum
cd "$scratch"
gen_pattern 24M src.raw
want=$(sha256_of src.raw)
for spec in raw qcow2 "qcow2 -c" vmdk "vmdk -o subformat=streamOptimized" \
            "vmdk -o subformat=monolithicFlat" "vpc -o subformat=fixed" \
            "vpc -o subformat=dynamic" vhdx "vhdx -o subformat=fixed" vdi \
            "vdi -o static=on"; do
    set -- $spec
    fmt=$1; shift
    out="img-$fmt-$(echo "$*" | tr -c 'a-zA-Z0-9' _).$fmt"
    qemu-img convert -f raw -O "$fmt" "$@" src.raw "$out"
    # vpc rounds the size up to its geometry: hash what qemu-img reads
    ref=$want
    if [ "$fmt" = vpc ]; then
        qemu-img convert -f vpc -O raw "$out" ref.raw
        ref=$(sha256_of ref.raw)
    fi
    got=$("$VMFERRY" digest "$out" | cut -d' ' -f1)
    [ "$got" = "$ref" ] || die "digest of $out ($spec) is $got, want $ref"
done
# a chain: base raw, qcow2 overlay with writes of its own
qemu-img create -q -f qcow2 -b src.raw -F raw top.qcow2
qemu-io -f qcow2 -c 'write -P 0x5a 1M 64k' -c 'write -z 3M 1M' top.qcow2 >/dev/null
qemu-img convert -O raw top.qcow2 flat.raw
[ "$("$VMFERRY" digest top.qcow2 | cut -d' ' -f1)" = "$(sha256_of flat.raw)" ] ||
    die "digest of a chain differs from its flattened content"
echo ok
