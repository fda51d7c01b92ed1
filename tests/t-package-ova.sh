#!/bin/bash
# t-package-ova: vmferry package --target vmware and --target aws.  The
# OVA read back by outside tools: GNU tar lists the .ovf first, the VMDKs
# next, the manifest last; sha256sum / sha1sum of every extracted member
# match the manifest's lines and the digests in manifest.json (the VMDKs'
# were computed while they streamed into the archive); the bytes at the
# recorded offsets are the members; xmllint finds the descriptor well
# formed and its References, DiskSection (capacity = virtual size,
# populatedSize), NetworkSection, OperatingSystemSection and hardware
# items (CPU, memory, SCSI controller, disks, NIC, EFI firmware); the
# VMDKs pass qemu-img check and compare equal to the sources, vmdkinfo
# opens them.  A 9 GiB disk gets a header reserved for a pax size record
# and filled with a pax comment.  aws: import-image.json, and
# --aws-format vmdk / raw / vhd give those files (qemu-img info).  An
# I/O error at every I/O call of the archive leaves no OUTDIR nor
# working directory; kill -9 leaves no OUTDIR.
# test-timeout: 600
. "$(dirname "$0")/lib.sh"
require python3 tar xmllint qemu-img sha256sum sha1sum mkfs.ext4 sfdisk \
    "$VMFERRY"
mk="$SRCDIR/tests/fixtures/mk-guest.py"
cd "$scratch"

python3 "$mk" debian g.raw --conversion 2>/dev/null || die "mk-guest debian"
python3 "$mk" alpine a.raw --conversion 2>/dev/null || die "mk-guest alpine"
python3 "$mk" ubuntu u.raw --layout gpt-uefi --conversion 2>/dev/null ||
    die "mk-guest ubuntu uefi"
gen_pattern --seed 3 24m d2.raw d1m,h3m,d64k,z1m,h2m,d2m || die "gen-pattern"

# xp XPATH FILE: xmllint's answer, namespaces ignored through local-name()
xp() { xmllint --xpath "$1" "$2" 2>/dev/null; }
# e NAME: "*[local-name()='NAME']"
e() { echo "*[local-name()='$1']"; }
# a NAME: "@*[local-name()='NAME']"
a() { echo "@*[local-name()='$1']"; }
vsize() { qemu-img info --output=json "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])'; }

# check_ova DIR OVA ALG SOURCES...: the archive's layout, digests and
# disks
check_ova() {
    local dir=$1 ova=$2 alg=$3 n=0 i
    shift 3
    local base=${ova%.ova}
    [ -f "$dir/$ova" ] || die "$dir/$ova missing"
    tar -tf "$dir/$ova" > list 2> tar.err || die "GNU tar cannot list $ova: $(cat tar.err)"
    [ ! -s tar.err ] || die "GNU tar warns about $ova: $(cat tar.err)"
    local want="$base.ovf"
    if [ $# -eq 1 ]; then
        want="$want
$base.vmdk"
    else
        for i in $(seq 1 $#); do
            want="$want
$base-disk$i.vmdk"
        done
    fi
    want="$want
$base.mf"
    [ "$(cat list)" = "$want" ] || die "$ova members: $(tr '\n' ' ' < list), wanted $(echo "$want" | tr '\n' ' ')"
    # ustar headers
    [ "$(dd if="$dir/$ova" bs=1 skip=257 count=5 2>/dev/null)" = ustar ] ||
        die "$ova: not ustar"
    rm -rf x && mkdir x
    tar -C x -xf "$dir/$ova" || die "GNU tar cannot extract $ova"
    # the manifest: one OpenSSL-style line per file, matching the tools
    local tag=SHA256 sum=sha256sum hexlen=64
    [ "$alg" = sha1 ] && tag=SHA1 sum=sha1sum hexlen=40
    [ "$(wc -l < "x/$base.mf")" -eq $(( $(wc -l < list) - 1 )) ] ||
        die "$ova: manifest lines: $(cat "x/$base.mf")"
    while read -r f; do
        [ "$f" = "$base.mf" ] && continue
        local h
        h=$($sum < "x/$f") && h=${h%% *}
        grep -qxE "$tag\\($f\\)= [0-9a-f]{$hexlen}" "x/$base.mf" ||
            die "$ova: no $tag line for $f: $(cat "x/$base.mf")"
        grep -qx "$tag($f)= $h" "x/$base.mf" ||
            die "$ova: $f digest differs from $sum"
    done < list
    # manifest.json: the archive (size, SHA-256) and the members (offset,
    # size, digest as streamed)
    python3 - "$dir" "$ova" "$alg" <<'PY' || die "$ova: manifest.json"
import hashlib, json, os, sys
d, ova, alg = sys.argv[1:4]
m = json.load(open(os.path.join(d, "manifest.json")))
arts = [x for x in m["artifacts"] if x["name"] == ova]
assert len(arts) == 1 and arts[0]["role"] == "archive", m["artifacts"]
data = open(os.path.join(d, ova), "rb").read()
assert arts[0]["size"] == len(data), (arts[0]["size"], len(data))
assert arts[0]["sha256"] == hashlib.sha256(data).hexdigest()
for mem in m["metadata"]["ova-members"]:
    ext = open(os.path.join("x", mem["name"]), "rb").read()
    assert mem["size"] == len(ext), mem
    assert data[mem["offset"]:mem["offset"] + mem["size"]] == ext, mem["name"]
    assert mem[alg] == hashlib.new(alg, ext).hexdigest(), mem["name"]
PY
    local ovf="x/$base.ovf"
    xmllint --noout "$ovf" || die "$ova: descriptor not well formed"
    [ "$(xp "count(/$(e Envelope)/$(e References)/$(e File))" "$ovf")" -eq $# ] ||
        die "$ova: References"
    [ "$(xp "count(//$(e DiskSection)/$(e Disk))" "$ovf")" -eq $# ] ||
        die "$ova: DiskSection"
    i=0
    for src in "$@"; do
        i=$((i + 1))
        local f href size cap pop fmt
        href=$(xp "string(//$(e References)/$(e File)[$i]/$(a href))" "$ovf")
        size=$(xp "string(//$(e References)/$(e File)[$i]/$(a size))" "$ovf")
        [ -f "x/$href" ] || die "$ova: File $href not in the archive"
        [ "$size" = "$(stat -c %s "x/$href")" ] || die "$ova: File $href size $size"
        cap=$(xp "string(//$(e Disk)[$i]/$(a capacity))" "$ovf")
        pop=$(xp "string(//$(e Disk)[$i]/$(a populatedSize))" "$ovf")
        fmt=$(xp "string(//$(e Disk)[$i]/$(a format))" "$ovf")
        [ "$cap" = "$(vsize "$src")" ] || die "$ova: disk $i capacity $cap"
        [ "$(xp "string(//$(e Disk)[$i]/$(a capacityAllocationUnits))" "$ovf")" = byte ] ||
            die "$ova: disk $i capacity units"
        [ "$pop" -gt 0 ] && [ "$pop" -le "$cap" ] || die "$ova: disk $i populatedSize $pop"
        [ "$fmt" = "http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized" ] ||
            die "$ova: disk $i format $fmt"
        [ "$(xp "string(//$(e Disk)[$i]/$(a fileRef))" "$ovf")" = \
          "$(xp "string(//$(e File)[$i]/$(a id))" "$ovf")" ] || die "$ova: disk $i fileRef"
        # the hardware item of the disk, under the controller
        local did item parent
        did=$(xp "string(//$(e Disk)[$i]/$(a diskId))" "$ovf")
        item="//$(e Item)[$(e HostResource)='ovf:/disk/$did']"
        [ "$(xp "string($item/$(e ResourceType))" "$ovf")" = 17 ] ||
            die "$ova: no disk item for $did"
        parent=$(xp "string($item/$(e Parent))" "$ovf")
        [ "$(xp "string(//$(e Item)[$(e InstanceID)='$parent']/$(e ResourceType))" "$ovf")" = 6 ] ||
            die "$ova: disk $did not on a SCSI controller"
        # the VMDK
        qemu-img info --output=json "x/$href" | grep -q '"create-type": "streamOptimized"' ||
            die "$ova: $href is not streamOptimized"
        qemu-img check -q "x/$href" || die "$ova: qemu-img check $href"
        qemu-img compare -q "$src" "x/$href" || die "$ova: $href differs from $src"
        if command -v vmdkinfo >/dev/null; then
            vmdkinfo "x/$href" > vi.txt 2>&1 || die "$ova: vmdkinfo $href: $(cat vi.txt)"
        fi
        n=$((n + 1))
    done
    [ "$(xp "string(//$(e NetworkSection)/$(e Network)/$(a name))" "$ovf")" = "VM Network" ] ||
        die "$ova: NetworkSection"
    [ "$(xp "count(//$(e VirtualSystem)/$(e OperatingSystemSection))" "$ovf")" -eq 1 ] ||
        die "$ova: OperatingSystemSection"
    [ "$(xp "string(//$(e VirtualSystemType))" "$ovf")" = vmx-14 ] ||
        die "$ova: VirtualSystemType"
    local hw="//$(e VirtualHardwareSection)"
    [ "$(xp "count($hw/$(e Item)[$(e ResourceType)=3])" "$ovf")" -eq 1 ] || die "$ova: CPU item"
    [ "$(xp "count($hw/$(e Item)[$(e ResourceType)=4])" "$ovf")" -eq 1 ] || die "$ova: memory item"
    [ "$(xp "count($hw/$(e Item)[$(e ResourceType)=6])" "$ovf")" -ge 1 ] || die "$ova: controller item"
    [ "$(xp "count($hw/$(e Item)[$(e ResourceType)=17])" "$ovf")" -eq $# ] || die "$ova: disk items"
    [ "$(xp "count($hw/$(e Item)[$(e ResourceType)=10])" "$ovf")" -eq 1 ] || die "$ova: NIC item"
    [ "$(xp "string($hw/$(e Item)[$(e ResourceType)=10]/$(e Connection))" "$ovf")" = "VM Network" ] ||
        die "$ova: NIC connection"
}

# ---- vmware, one disk: Debian 12 with vmw_pvscsi in its initramfs ----
"$VMFERRY" package --target vmware --memory 1024 --vcpus 3 g.raw out1 > out1.log ||
    die "package vmware: $(cat out1.log)"
[ ! -e out1.vmferry-partial ] || die "working directory left behind"
check_ova out1 g.ova sha256 g.raw
ovf=x/g.ovf
hw="//$(e VirtualHardwareSection)"
[ "$(xp "string($hw/$(e Item)[$(e ResourceType)=3]/$(e VirtualQuantity))" $ovf)" = 3 ] || die "vcpus"
[ "$(xp "string($hw/$(e Item)[$(e ResourceType)=4]/$(e VirtualQuantity))" $ovf)" = 1024 ] || die "memory"
[ "$(xp "string($hw/$(e Item)[$(e ResourceType)=4]/$(e AllocationUnits))" $ovf)" = "byte * 2^20" ] ||
    die "memory units"
[ "$(xp "string($hw/$(e Item)[$(e ResourceType)=6]/$(e ResourceSubType))" $ovf)" = VirtualSCSI ] ||
    die "pvscsi controller for a guest with vmw_pvscsi at boot"
[ "$(xp "string($hw/$(e Item)[$(e ResourceType)=10]/$(e ResourceSubType))" $ovf)" = VmxNet3 ] ||
    die "vmxnet3 for a guest with vmxnet3"
[ "$(xp "string(//$(e OperatingSystemSection)/$(a osType))" $ovf)" = debian12_64Guest ] ||
    die "vmw:osType: $(xp "string(//$(e OperatingSystemSection)/$(a osType))" $ovf)"
[ "$(xp "string(//$(e OperatingSystemSection)/$(a id))" $ovf)" = 96 ] || die "CIM OS id"
[ "$(xp "string(//$(e VirtualSystem)/$(a id))" $ovf)" = g ] || die "VirtualSystem id"
[ "$(xp "count(//$(e Config))" $ovf)" -eq 0 ] || die "firmware config on a BIOS guest"
# the descriptor's space was reserved with the largest numbers: padded
# with spaces after the root element
python3 - $ovf <<'PY' || die "descriptor padding: $(tail -c 60 $ovf | od -c)"
import re, sys
t = open(sys.argv[1], "rb").read()
assert re.search(rb"</Envelope> +\n\Z", t), t[-80:]
PY
# Python's tarfile agrees
python3 - out1/g.ova <<'PY' || die "python tarfile"
import sys, tarfile
with tarfile.open(sys.argv[1]) as t:
    assert [m.name for m in t.getmembers()] == ["g.ovf", "g.vmdk", "g.mf"]
PY

# ---- vmware: Alpine (no vmw_pvscsi at boot, kernel "lts"), --name ----
# (names are A-Z a-z 0-9 . _ -: they name files and QEMU -drive options)
"$VMFERRY" package --target vmware --name 'web & db' a.raw bad 2> bad.log &&
    die "--name with '&' and spaces accepted"
[ ! -e bad ] || die "refused --name left a directory"
"$VMFERRY" package --target vmware --name web-db.1 a.raw out2 > out2.log ||
    die "package vmware alpine: $(cat out2.log)"
check_ova out2 'web-db.1.ova' sha256 a.raw
ovf="x/web-db.1.ovf"
[ "$(xp "string($hw/$(e Item)[$(e ResourceType)=6]/$(e ResourceSubType))" "$ovf")" = lsilogic ] ||
    die "lsilogic for a guest without vmw_pvscsi at boot"
[ "$(xp "string(//$(e OperatingSystemSection)/$(a osType))" "$ovf")" = other5xLinux64Guest ] ||
    die "alpine osType"
[ "$(xp "string(//$(e VirtualSystem)/$(a id))" "$ovf")" = 'web-db.1' ] || die "VirtualSystem id"
grep -q '"controller": "lsilogic"' out2/manifest.json || die "metadata controller"

# ---- vmware: two disks, a UEFI guest, a SHA-1 manifest ----
"$VMFERRY" package --target vmware --manifest sha1 --name two u.raw d2.raw out3 > out3.log ||
    die "package vmware two disks: $(cat out3.log)"
check_ova out3 two.ova sha1 u.raw d2.raw
ovf=x/two.ovf
[ "$(xp "string(//$(e Config)[$(a key)='firmware']/$(a value))" $ovf)" = efi ] ||
    die "vmw:Config firmware efi"
[ "$(xp "string(//$(e Config)/$(a required))" $ovf)" = false ] || die "Config required"
[ "$(xp "string(//$(e OperatingSystemSection)/$(a osType))" $ovf)" = ubuntu64Guest ] ||
    die "ubuntu osType"
[ "$(xp "string(//$(e Item)[$(e HostResource)='ovf:/disk/vmdisk2']/$(e AddressOnParent))" $ovf)" = 1 ] ||
    die "second disk's unit"
grep -q '^SHA256' x/two.mf && die "SHA256 line in a --manifest sha1 package"

# ---- vmware: a 9 GiB disk whose stream could pass 8 GiB: its header is
# reserved for a pax size record and filled with a pax comment ----
python3 - z.vmdk 9216 <<'PY' || die "mk z.vmdk"
# monolithicSparse, every grain of 9 GiB mapped to one grain of zeros:
# "data" to block status, so the stream's bound passes 8 GiB
import struct, sys
S, GS, GTES = 512, 128, 512
cap = int(sys.argv[2]) * 2048
ngt = -(-cap // (GS * GTES))
desc = ('# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\n'
        'createType="monolithicSparse"\n\n# Extent description\n'
        'RW %d SPARSE "z.vmdk"\n\n# The Disk Data Base\n#DDB\n\n'
        'ddb.virtualHWVersion = "4"\nddb.adapterType = "ide"\n' % cap).encode()
gd, gdsec = 21, -(-ngt * 4 // S)
gt0 = gd + gdsec
grain = -(-(gt0 + ngt * 4) // GS) * GS
h = bytearray(S)
h[0:4] = b"KDMV"
struct.pack_into("<IIQQQQIQQQ", h, 4, 1, 1, cap, GS, 1, 20, GTES, 0, gd, grain)
h[73:77] = b"\n \r\n"
with open(sys.argv[1], "wb") as f:
    f.write(h + desc.ljust(20 * S, b"\0"))
    f.write(struct.pack("<%dI" % ngt, *[gt0 + 4 * i for i in range(ngt)]).ljust(gdsec * S, b"\0"))
    n = cap // GS
    f.write(struct.pack("<%dI" % (ngt * GTES), *([grain] * n + [0] * (ngt * GTES - n))))
    f.seek(grain * S)
    f.write(bytes(GS * S))
PY
"$VMFERRY" measure -O vmdk -o subformat=streamOptimized z.vmdk | grep -q 'required size: 9[0-9]\{9\}$' ||
    die "z.vmdk: the bound is not over 8 GiB"
"$VMFERRY" package --target vmware z.vmdk out4 > out4.log 2>&1 ||
    die "package vmware 9 GiB: $(cat out4.log)"
tar -tvf out4/z.ova > list 2> tar.err || die "GNU tar: $(cat tar.err)"
[ ! -s tar.err ] || die "GNU tar warns: $(cat tar.err)"
[ "$(sed -n 2p list | awk '{print $6}')" = z.vmdk ] || die "9 GiB: members $(cat list)"
python3 - out4 <<'PY' || die "9 GiB: the reserved header"
import json, sys
d = sys.argv[1]
m = json.load(open(d + "/manifest.json"))["metadata"]["ova-members"]
data = open(d + "/z.ova", "rb").read()
v = m[1]
# after the .ovf: a pax header, its comment record, the ustar header
h = m[0]["offset"] + m[0]["size"]
h += -h % 512
assert v["offset"] - h == 3 * 512, (h, v["offset"])
assert data[h + 156:h + 157] == b"x", data[h:h + 512]
assert b" comment=" in data[h + 512:h + 1024]
assert data[h + 1024 + 156:h + 1024 + 157] == b"0"
assert int(data[h + 1024 + 124:h + 1024 + 135], 8) == v["size"] < 8 << 30
PY
rm -rf x && mkdir x && tar -C x -xf out4/z.ova || die "9 GiB: extract"
[ "$(vsize x/z.vmdk)" -eq $((9 << 30)) ] || die "9 GiB: virtual size"
qemu-img check -q x/z.vmdk || die "9 GiB: qemu-img check"
qemu-img map --output=json x/z.vmdk | grep -q '"data": true' && die "9 GiB: data in a disk of zeros"

# ---- aws: the OVA and import-image.json; the other disk forms ----
"$VMFERRY" package --target aws g.raw aws1 > aws1.log || die "package aws: $(cat aws1.log)"
check_ova aws1 g.ova sha256 g.raw
python3 - aws1/import-image.json ova g.ova <<'PY' || die "aws import-image.json"
import json, sys
j = json.load(open(sys.argv[1]))
assert j["Platform"] == "Linux" and j["Architecture"] == "x86_64", j
assert j["BootMode"] == "legacy-bios", j
dc = j["DiskContainers"]
assert len(dc) == 1 and dc[0]["Format"] == sys.argv[2], dc
assert dc[0]["UserBucket"]["S3Key"] == sys.argv[3] and dc[0]["UserBucket"]["S3Bucket"], dc
assert dc[0]["Description"]
PY
grep -q '"name": "import-image.json"' aws1/manifest.json || die "import-image.json not in manifest.json"
for f in vmdk:vmdk raw:raw vhd:vpc; do
    af=${f%%:*} qf=${f##*:}
    "$VMFERRY" package --target aws --aws-format "$af" --name two u.raw d2.raw "aws-$af" > aws.log ||
        die "package aws --aws-format $af: $(cat aws.log)"
    for i in 1 2; do
        img="aws-$af/two-disk$i.$af"
        src=u.raw && [ $i = 2 ] && src=d2.raw
        [ -f "$img" ] || die "$img missing: $(ls "aws-$af")"
        qemu-img info --output=json "$img" | grep -q "\"format\": \"$qf\"" || die "$img: not $qf"
        qemu-img compare -q "$src" "$img" || die "$img differs from $src"
    done
    [ "$af" = vmdk ] && { qemu-img info "aws-$af/two-disk1.vmdk" | grep -q 'create type: streamOptimized' ||
        die "aws vmdk: not streamOptimized"; }
    python3 - "aws-$af/import-image.json" "$af" <<'PY' || die "aws-$af import-image.json"
import json, sys
j = json.load(open(sys.argv[1]))
assert j["BootMode"] == "uefi", j
dc = j["DiskContainers"]
assert [d["Format"] for d in dc] == [sys.argv[2]] * 2, dc
assert [d["UserBucket"]["S3Key"] for d in dc] == ["two-disk1." + sys.argv[2], "two-disk2." + sys.argv[2]], dc
PY
done
expect_rc 1 "$VMFERRY" package --target aws --aws-format qcow2 g.raw aws-bad 2> err.txt
grep -q 'aws-format qcow2' err.txt || die "bad --aws-format message: $(cat err.txt)"
[ ! -e aws-bad ] && [ ! -e aws-bad.vmferry-partial ] || die "bad --aws-format left a directory"

# ---- an I/O error at each I/O call of the archive, in turn: no OUTDIR,
# no working directory; then the run that outlives them all ----
n=1
while :; do
    rc=0
    VMFERRY_TEST_FAIL_IO=$n "$VMFERRY" package --target vmware --name f g.raw fail \
        > /dev/null 2> err.txt || rc=$?
    [ $rc -eq 0 ] && break
    grep -q 'injected fault' err.txt || die "fault $n: $(cat err.txt)"
    [ ! -e fail ] || die "fault $n: OUTDIR exists"
    [ ! -e fail.vmferry-partial ] || die "fault $n: working directory left"
    n=$((n + 1))
    [ $n -le 200 ] || die "still failing after 200 faults"
done
[ $n -gt 5 ] || die "only $((n - 1)) I/O calls before the package was whole"
rm -rf x && mkdir x && tar -C x -xf fail/f.ova || die "the package after the faults"

# ---- kill -9 in the middle of a disk: no OUTDIR ----
truncate -s 4G big.raw
head -c 200M /dev/urandom | dd of=big.raw bs=1M seek=1024 conv=notrunc status=none
"$VMFERRY" package --target vmware -m 1 big.raw killed > /dev/null 2>&1 &
pid=$!
for _ in $(seq 1 400); do
    s=$(stat -c %s killed.vmferry-partial/big.ova 2>/dev/null || echo 0)
    [ "$s" -gt $((8 << 20)) ] && break
    sleep 0.05
done
kill -9 $pid 2>/dev/null || die "package ended before it could be killed"
wait $pid 2>/dev/null || true
[ "$s" -gt $((8 << 20)) ] || die "the archive never grew"
[ ! -e killed ] || die "kill -9 left OUTDIR"

echo "t-package-ova: ok"
