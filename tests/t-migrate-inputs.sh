#!/bin/bash
# t-migrate-inputs: migrate's sources through src_open (tests/src-open):
# an OVA made here with qemu-img (streamOptimized VMDKs), a handwritten
# OVF and a sha256sum / sha1sum manifest, packed by GNU tar: the disks
# read in place give the digests qemu-img's raw conversion gives, in the
# OVF's order, with memory, CPUs, firmware and NICs; a corrupted member,
# missing or escaping names, compressed members and a bad manifest are
# refused naming what; a .vmx with disks on scsi0:0 and sata0:1 and a
# CD-ROM; libvirt domain XML (vmferry package's own and a handwritten one
# with unit='GiB'); plain disks; hostile descriptions (a 100 MB .ovf, a
# 1 MB .vmx line, a bad tar checksum, an XML entity bomb).
. "$(dirname "$0")/lib.sh"
require qemu-img tar sha256sum sha1sum python3
SO="$BUILDDIR/src-open"
[ -x "$SO" ] || die "$SO is not built"
cd "$scratch"

# jget FILE EXPR: a Python expression over the JSON in FILE (as d)
jget() {
    python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}
# fails PATTERN ARGS...: src-open must exit 1 with PATTERN (grep -E) in
# its message (exit 1, not a sanitizer's abort)
fails() {
    local pat=$1 rc=0
    shift
    "$SO" "$@" > out.json 2> err.txt || rc=$?
    [ "$rc" -eq 1 ] || { cat err.txt; die "exit $rc (wanted 1): src-open $*"; }
    grep -Eq -- "$pat" err.txt || die "message for src-open $* lacks '$pat': $(cat err.txt)"
}
# opens ARGS...: src-open must succeed, its JSON in out.json
opens() {
    "$SO" "$@" > out.json 2> err.txt || { cat err.txt; die "src-open $* failed"; }
}

# ---- the guest's disks ----
python3 "$SRCDIR/tests/fixtures/mk-guest.py" debian g.raw --conversion 2>/dev/null || die "mk-guest debian"
gen_pattern --seed 7 48m d2.raw d1m,h5m,d3m,z2m,d1m,h20m,d64k > /dev/null
qemu-img convert -f raw -O vmdk -o subformat=streamOptimized g.raw d1.vmdk
qemu-img convert -f raw -O vmdk -o subformat=streamOptimized d2.raw d2.vmdk
want1=$(raw_digest d1.vmdk)
want2=$(raw_digest d2.vmdk)
[ "$want1" != "$want2" ] || die "the two disks are alike"

# mkovf OUT [HREF1] [EXTRA-FILE-ATTRS]: the descriptor.  The disk items
# come in reverse order: AddressOnParent puts d1 first.
mkovf() {
    local href1=${2:-d1.vmdk} attrs=${3:-}
    cat > "$1" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData" xmlns:vssd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData" xmlns:vmw="http://www.vmware.com/schema/ovf">
  <References>
    <File ovf:href="$href1" ovf:id="file1"$attrs/>
    <File ovf:href="d2.vmdk" ovf:id="file2"/>
  </References>
  <DiskSection>
    <Info>Virtual disk information</Info>
    <Disk ovf:capacity="64" ovf:capacityAllocationUnits="byte * 2^20" ovf:diskId="vmdisk1" ovf:fileRef="file1" ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/>
    <Disk ovf:capacity="48" ovf:capacityAllocationUnits="byte * 2^20" ovf:diskId="vmdisk2" ovf:fileRef="file2" ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/>
  </DiskSection>
  <NetworkSection>
    <Info>Networks</Info>
    <Network ovf:name="VM Network"/>
  </NetworkSection>
  <VirtualSystem ovf:id="web-1">
    <Info>A virtual machine</Info>
    <Name>web1</Name>
    <OperatingSystemSection ovf:id="96" vmw:osType="debian12_64Guest">
      <Info>Guest OS</Info>
      <Description>Debian GNU/Linux 12 (64-bit)</Description>
    </OperatingSystemSection>
    <VirtualHardwareSection>
      <Info>Virtual hardware requirements</Info>
      <System>
        <vssd:ElementName>Virtual Hardware Family</vssd:ElementName>
        <vssd:InstanceID>0</vssd:InstanceID>
        <vssd:VirtualSystemType>vmx-19</vssd:VirtualSystemType>
      </System>
      <Item>
        <rasd:AllocationUnits>hertz * 10^6</rasd:AllocationUnits>
        <rasd:ElementName>2 virtual CPU(s)</rasd:ElementName>
        <rasd:InstanceID>1</rasd:InstanceID>
        <rasd:ResourceType>3</rasd:ResourceType>
        <rasd:VirtualQuantity>2</rasd:VirtualQuantity>
      </Item>
      <Item>
        <rasd:AllocationUnits>byte * 2^20</rasd:AllocationUnits>
        <rasd:ElementName>1024MB of memory</rasd:ElementName>
        <rasd:InstanceID>2</rasd:InstanceID>
        <rasd:ResourceType>4</rasd:ResourceType>
        <rasd:VirtualQuantity>1024</rasd:VirtualQuantity>
      </Item>
      <Item>
        <rasd:Address>0</rasd:Address>
        <rasd:ElementName>SCSI controller 0</rasd:ElementName>
        <rasd:InstanceID>3</rasd:InstanceID>
        <rasd:ResourceSubType>lsilogic</rasd:ResourceSubType>
        <rasd:ResourceType>6</rasd:ResourceType>
      </Item>
      <Item>
        <rasd:AddressOnParent>1</rasd:AddressOnParent>
        <rasd:ElementName>Hard disk 2</rasd:ElementName>
        <rasd:HostResource>ovf:/disk/vmdisk2</rasd:HostResource>
        <rasd:InstanceID>5</rasd:InstanceID>
        <rasd:Parent>3</rasd:Parent>
        <rasd:ResourceType>17</rasd:ResourceType>
      </Item>
      <Item>
        <rasd:AddressOnParent>0</rasd:AddressOnParent>
        <rasd:ElementName>Hard disk 1</rasd:ElementName>
        <rasd:HostResource>ovf:/disk/vmdisk1</rasd:HostResource>
        <rasd:InstanceID>4</rasd:InstanceID>
        <rasd:Parent>3</rasd:Parent>
        <rasd:ResourceType>17</rasd:ResourceType>
      </Item>
      <Item>
        <rasd:AddressOnParent>7</rasd:AddressOnParent>
        <rasd:Connection>VM Network</rasd:Connection>
        <rasd:ElementName>Network adapter 1</rasd:ElementName>
        <rasd:InstanceID>6</rasd:InstanceID>
        <rasd:ResourceSubType>VmxNet3</rasd:ResourceSubType>
        <rasd:ResourceType>10</rasd:ResourceType>
      </Item>
      <Item ovf:required="false">
        <rasd:AddressOnParent>0</rasd:AddressOnParent>
        <rasd:ElementName>CD/DVD drive 1</rasd:ElementName>
        <rasd:InstanceID>7</rasd:InstanceID>
        <rasd:ResourceType>15</rasd:ResourceType>
      </Item>
      <vmw:Config ovf:required="false" vmw:key="firmware" vmw:value="efi"/>
    </VirtualHardwareSection>
  </VirtualSystem>
</Envelope>
EOF
}
# mf256 FILES...: an OpenSSL-style manifest (what ovftool writes)
mf256() { sha256sum --tag "$@" | sed 's/^SHA256 (\(.*\)) = /SHA256(\1)= /'; }
# member_off OVA NAME: the offset of NAME's data in OVA
member_off() {
    python3 -c 'import sys, tarfile
t = tarfile.open(sys.argv[1])
print(t.getmember(sys.argv[2]).offset_data)' "$1" "$2"
}

mkovf x.ovf
mf256 x.ovf d1.vmdk d2.vmdk > x.mf
tar --format=ustar -cf x.ova x.ovf d1.vmdk d2.vmdk x.mf

# ---- OVA with a SHA256 manifest: the oracle is qemu-img ----
opens x.ova
[ "$(jget out.json 'd["kind"]')" = ova ] || die "kind"
[ "$(jget out.json 'd["name"]')" = web1 ] || die "name: $(jget out.json 'd["name"]')"
[ "$(jget out.json 'd["memory-mb"]')" = 1024 ] || die "memory"
[ "$(jget out.json 'd["vcpus"]')" = 2 ] || die "vcpus"
[ "$(jget out.json 'd["firmware"]')" = uefi ] || die "firmware"
[ "$(jget out.json 'len(d["disks"])')" = 2 ] || die "disk count"
[ "$(jget out.json 'd["disks"][0]["name"]')" = d1.vmdk ] || die "disk order: $(jget out.json '[x["name"] for x in d["disks"]]')"
[ "$(jget out.json 'd["disks"][0]["digest"]')" = "$want1" ] || die "d1.vmdk digest differs from qemu-img's"
[ "$(jget out.json 'd["disks"][1]["digest"]')" = "$want2" ] || die "d2.vmdk digest differs from qemu-img's"
[ "$(jget out.json 'd["disks"][1]["virtual-size"]')" = $((48 << 20)) ] || die "d2 virtual size"
[ "$(jget out.json 'd["facts"]["manifest"]["algorithm"]')" = SHA256 ] || die "manifest algorithm"
[ "$(jget out.json 'sorted(d["facts"]["manifest"]["verified"])')" = "['d1.vmdk', 'd2.vmdk', 'x.ovf']" ] || die "verified members"
[ "$(jget out.json 'd["facts"]["ovf-first"]')" = True ] || die "ovf-first"
[ "$(jget out.json 'd["facts"]["nics"][0]["model"]')" = VmxNet3 ] || die "nic model"
[ "$(jget out.json 'd["facts"]["nics"][0]["network"]')" = "VM Network" ] || die "nic network"
[ "$(jget out.json 'd["facts"]["controllers"][0]["type"]')" = scsi ] || die "controller"
[ "$(jget out.json 'd["facts"]["os"]["os-type"]')" = debian12_64Guest ] || die "os type"
[ "$(jget out.json 'd["facts"]["virtual-system-type"]')" = vmx-19 ] || die "system type"
[ "$(jget out.json '"notes" in d["facts"]')" = False ] || die "unexpected notes: $(jget out.json 'd["facts"]["notes"]')"
# in place: nothing was extracted beside the OVA
[ "$(ls | grep -c vmdk)" = 2 ] || die "files appeared: $(ls)"

# ---- SHA1 manifest, sha1sum --tag spacing; .ovf not first ----
sha1sum --tag x.ovf d1.vmdk d2.vmdk > s1.mf
grep -q '^SHA1 (x.ovf) = ' s1.mf || die "sha1sum --tag format changed"
tar --format=ustar -cf s1.ova d2.vmdk x.ovf d1.vmdk s1.mf
opens s1.ova
[ "$(jget out.json 'd["facts"]["manifest"]["algorithm"]')" = SHA1 ] || die "SHA1 manifest algorithm"
[ "$(jget out.json 'len(d["facts"]["manifest"]["verified"])')" = 3 ] || die "SHA1: verified"
[ "$(jget out.json 'd["disks"][0]["digest"]')" = "$want1" ] || die "SHA1 OVA: d1 digest"
[ "$(jget out.json 'd["facts"]["ovf-first"]')" = False ] || die "ovf-first for an .ovf second"
jget out.json 'd["facts"]["notes"]' | grep -q 'not the archive' || die "no note on .ovf order"

# ---- no manifest: allowed, with a note ----
tar --format=ustar -cf nomf.ova x.ovf d1.vmdk d2.vmdk
opens nomf.ova
[ "$(jget out.json 'd["facts"]["manifest"]')" = None ] || die "manifest fact without .mf"
jget out.json 'd["facts"]["notes"]' | grep -q 'no manifest' || die "no-manifest note"
# a member not listed in the manifest is noted
mf256 x.ovf d1.vmdk > part.mf
tar --format=ustar -cf part.ova x.ovf d1.vmdk d2.vmdk part.mf
opens part.ova
[ "$(jget out.json 'd["facts"]["manifest"]["not-listed"]')" = "['d2.vmdk']" ] || die "not-listed"

# ---- content, not the extension ----
cp x.ova x.bin
opens x.bin
[ "$(jget out.json 'd["kind"]')" = ova ] || die "OVA by content"

# ---- a corrupted member byte: named, with both digests ----
cp x.ova bad.ova
off=$(member_off bad.ova d2.vmdk)
printf '\x55' | dd of=bad.ova bs=1 seek=$((off + 70000)) conv=notrunc 2>/dev/null
fails "member 'd2.vmdk' has SHA256 [0-9a-f]{64}, but x.mf says $(sed -n 's/^SHA256(d2.vmdk)= //p' x.mf)" bad.ova
grep -q '^src-open: bad.ova: ' err.txt || die "message does not start with the file: $(cat err.txt)"

# ---- manifest problems ----
{ cat x.mf; echo "SHA256(d3.vmdk)= $(printf '0%.0s' {1..64})"; } > m3.mf
tar --format=ustar -cf m3.ova x.ovf d1.vmdk d2.vmdk m3.mf
fails "lists 'd3.vmdk', which is not in the archive" m3.ova
sed 's/^SHA256(x.ovf)= \(.*\)/SHA256(x.ovf)= \1ff/' x.mf > m4.mf
tar --format=ustar -cf m4.ova x.ovf d1.vmdk d2.vmdk m4.mf
fails "digest of 'x.ovf' has 66 hex digits" m4.ova
{ echo "MD5(x.ovf)= 00112233445566778899aabbccddeeff"; } > m5.mf
tar --format=ustar -cf m5.ova x.ovf d1.vmdk d2.vmdk m5.mf
fails "algorithm 'MD5' not supported" m5.ova
echo "x.ovf: 1234" > m6.mf
tar --format=ustar -cf m6.ova x.ovf d1.vmdk d2.vmdk m6.mf
fails "m6.mf line 1 is not" m6.ova
{ echo "SHA256(../x.ovf)= $(sha256_of x.ovf)"; } > m7.mf
tar --format=ustar -cf m7.ova x.ovf d1.vmdk d2.vmdk m7.mf
fails "'../x.ovf' is not a plain member name" m7.ova

# ---- the OVF names a missing member, an escaping one, a compressed one ----
mkovf miss.ovf d3.vmdk
tar --format=ustar -cf miss.ova miss.ovf d1.vmdk d2.vmdk
fails "names file 'd3.vmdk', which is not in the archive" miss.ova
mkovf esc.ovf ../d1.vmdk
tar --format=ustar -cf esc.ova esc.ovf d1.vmdk d2.vmdk
fails "href '../d1.vmdk' is not a plain member name" esc.ova
mkovf sub.ovf dir/d1.vmdk
tar --format=ustar -cf sub.ova sub.ovf d1.vmdk d2.vmdk
fails "href 'dir/d1.vmdk' is not a plain member name" sub.ova
gzip -c d1.vmdk > d1z.vmdk
mkovf gz.ovf d1z.vmdk ' ovf:compression="gzip"'
tar --format=ustar -cf gz.ova gz.ovf d1z.vmdk d2.vmdk
fails "File 'd1z.vmdk' is gzip-compressed: compressed OVA disks are not supported" gz.ova
mkovf gz2.ovf d1z.vmdk
tar --format=ustar -cf gz2.ova gz2.ovf d1z.vmdk d2.vmdk
fails "member 'd1z.vmdk' is gzip data" gz2.ova
cp g.raw d1r.vmdk
mkovf raw.ovf d1r.vmdk
tar --format=ustar -cf raw.ova raw.ovf d1r.vmdk d2.vmdk
fails "member 'd1r.vmdk' is not a sparse VMDK" raw.ova
# a delta VMDK (a parent outside the archive) is refused
qemu-img create -q -f vmdk -b d1.vmdk -F vmdk delta.vmdk
mkovf delta.ovf delta.vmdk
tar --format=ustar -cf delta.ova delta.ovf delta.vmdk d2.vmdk
fails "member 'delta.vmdk' is a delta disk of 'd1.vmdk'" delta.ova
# a tar without an .ovf, two .ovf
tar --format=ustar -cf noovf.ova d1.vmdk
fails "without an .ovf descriptor" noovf.ova
cp x.ovf y.ovf
tar --format=ustar -cf two.ova x.ovf y.ovf d1.vmdk d2.vmdk
fails "several .ovf members" two.ova

# ---- hostile archives ----
# a bad header checksum: the first header, and d1.vmdk's
cp x.ova ck1.ova
printf 'Y' | dd of=ck1.ova bs=1 seek=3 conv=notrunc 2>/dev/null
fails "tar header at offset 0: tar header checksum" ck1.ova
cp x.ova ck2.ova
hdr=$(( $(member_off x.ova d1.vmdk) - 512 ))
printf 'Y' | dd of=ck2.ova bs=1 seek=$((hdr + 1)) conv=notrunc 2>/dev/null
fails "tar header at offset $hdr: tar header checksum" ck2.ova
# truncated inside a member
head -c $(( $(member_off x.ova d2.vmdk) + 1000 )) x.ova > trunc.ova
fails "member 'd2.vmdk' of [0-9]+ bytes runs past the end of the archive" trunc.ova
# an .ovf of 100 MB
{ cat x.ovf; head -c $((100 * 1000 * 1000)) /dev/zero | tr '\0' ' '; } > big.ovf
tar --format=ustar -cf big.ova big.ovf d1.vmdk
rm -f big.ovf
fails "big.ovf of [0-9]+ bytes is larger than the 16384 KiB allowed" big.ova
rm -f big.ova
# an XML entity bomb
{ echo '<?xml version="1.0"?><!DOCTYPE Envelope [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
  sed 1d x.ovf | sed 's|<Name>web1</Name>|<Name>\&b;</Name>|'; } > bomb.ovf
tar --format=ustar -cf bomb.ova bomb.ovf d1.vmdk d2.vmdk
fails "bomb.ovf declares XML entities, refused" bomb.ova
# not well-formed
head -c 2000 x.ovf > cut.ovf
tar --format=ustar -cf cut.ova cut.ovf d1.vmdk d2.vmdk
fails "cut.ovf is not well-formed XML \(line [0-9]+" cut.ova
# absurd memory, a VirtualSystemCollection
sed 's|<rasd:VirtualQuantity>1024</rasd:VirtualQuantity>|<rasd:VirtualQuantity>99999999999999</rasd:VirtualQuantity>|' x.ovf > mem.ovf
tar --format=ustar -cf mem.ova mem.ovf d1.vmdk d2.vmdk
fails "memory of 99999999999999 x 2\^20 bytes out of range" mem.ova
sed 's|byte \* 2^20</rasd:AllocationUnits>|furlongs</rasd:AllocationUnits>|' x.ovf > mu.ovf
tar --format=ustar -cf mu.ova mu.ovf d1.vmdk d2.vmdk
fails "memory AllocationUnits 'furlongs' not understood" mu.ova
sed 's|<rasd:AllocationUnits>byte \* 2^20</rasd:AllocationUnits>|<rasd:AllocationUnits>byte * 2^30</rasd:AllocationUnits>|; s|<rasd:VirtualQuantity>1024</rasd:VirtualQuantity>|<rasd:VirtualQuantity>3</rasd:VirtualQuantity>|' x.ovf > gib.ovf
tar --format=ustar -cf gib.ova gib.ovf d1.vmdk d2.vmdk
opens gib.ova
[ "$(jget out.json 'd["memory-mb"]')" = 3072 ] || die "byte * 2^30 memory"
sed 's|<VirtualSystem |<VirtualSystemCollection ovf:id="c"><VirtualSystem |; s|</VirtualSystem>|</VirtualSystem></VirtualSystemCollection>|' x.ovf > coll.ovf
tar --format=ustar -cf coll.ova coll.ovf d1.vmdk d2.vmdk
fails "several virtual systems" coll.ova

# ---- a .vmx ----
mkdir vm
qemu-img convert -f raw -O vmdk g.raw vm/disk1.vmdk
qemu-img convert -f raw -O qcow2 d2.raw vm/disk2.qcow2
cat > vm/web.vmx <<'EOF'
.encoding = "UTF-8"
config.version = "8"
virtualHW.version = "19"
displayName = "web |22one|22"
guestOS = "debian12-64"
memsize = "2048"
numvcpus = "4"
firmware = "efi"
# the SATA disk comes first in the file, the SCSI disk boots
sata0.present = "TRUE"
sata0:1.present = "TRUE"
sata0:1.fileName = "disk2.qcow2"
scsi0.present = "TRUE"
scsi0.virtualDev = "pvscsi"
SCSI0:0.Present = "TRUE"
scsi0:0.fileName = "disk1.vmdk"
scsi0:0.deviceType = "scsi-hardDisk"
scsi0:1.present = "FALSE"
scsi0:1.fileName = "absent.vmdk"
ide1:0.present = "TRUE"
ide1:0.deviceType = "cdrom-image"
ide1:0.fileName = "/isos/debian.iso"
ethernet0.present = "TRUE"
ethernet0.virtualDev = "vmxnet3"
ethernet0.networkName = "VM Network"
ethernet0.addressType = "generated"
ethernet0.generatedAddress = "00:0c:29:aa:bb:cc"
EOF
wantv1=$(raw_digest vm/disk1.vmdk)
wantv2=$(raw_digest vm/disk2.qcow2)
opens vm/web.vmx
[ "$(jget out.json 'd["kind"]')" = vmx ] || die "vmx kind"
[ "$(jget out.json 'd["name"]')" = 'web "one"' ] || die "vmx name (|22): $(jget out.json 'd["name"]')"
[ "$(jget out.json 'd["memory-mb"]')" = 2048 ] || die "vmx memory"
[ "$(jget out.json 'd["vcpus"]')" = 4 ] || die "vmx vcpus"
[ "$(jget out.json 'd["firmware"]')" = uefi ] || die "vmx firmware"
[ "$(jget out.json '[x["name"] for x in d["disks"]]')" = "['vm/disk1.vmdk', 'vm/disk2.qcow2']" ] || die "vmx disks: $(jget out.json '[x["name"] for x in d["disks"]]')"
[ "$(jget out.json 'd["disks"][0]["digest"]')" = "$wantv1" ] || die "vmx disk1 digest"
[ "$(jget out.json 'd["disks"][1]["digest"]')" = "$wantv2" ] || die "vmx disk2 digest"
[ "$(jget out.json 'd["facts"]["cdroms"][0]["device"]')" = ide1:0 ] || die "vmx cdrom"
[ "$(jget out.json 'd["facts"]["nics"][0]["model"]')" = vmxnet3 ] || die "vmx nic"
[ "$(jget out.json 'd["facts"]["nics"][0]["mac"]')" = 00:0c:29:aa:bb:cc ] || die "vmx mac"
[ "$(jget out.json '[c["id"] for c in d["facts"]["controllers"]]')" = "['scsi0', 'sata0']" ] || die "vmx controllers"
[ "$(jget out.json 'd["facts"]["guest-os"]')" = debian12-64 ] || die "vmx guest os"
# by content, whatever the name; numvcpus defaults to 1
grep -v numvcpus vm/web.vmx > vm/machine.cfg
opens vm/machine.cfg
[ "$(jget out.json 'd["kind"]')" = vmx ] || die "vmx by content"
[ "$(jget out.json 'd["vcpus"]')" = 1 ] || die "vmx default vcpus"
# a disk outside the directory: refused, unless allowed
mkdir other
cp vm/disk2.qcow2 other/
sed 's|"disk2.qcow2"|"../other/disk2.qcow2"|' vm/web.vmx > vm/out1.vmx
fails "disk sata0:1 file '../other/disk2.qcow2' is outside the .vmx's directory, refused" vm/out1.vmx
opens --allow-backing-path vm/out1.vmx
[ "$(jget out.json 'd["disks"][1]["digest"]')" = "$wantv2" ] || die "allowed outside disk"
sed "s|\"disk2.qcow2\"|\"$scratch/other/disk2.qcow2\"|" vm/web.vmx > vm/out2.vmx
fails "file '$scratch/other/disk2.qcow2' is outside the .vmx's directory" vm/out2.vmx
# a missing disk file, a raw device mapping, bad values
sed 's|"disk2.qcow2"|"nothere.vmdk"|' vm/web.vmx > vm/miss.vmx
fails "vm/miss.vmx: disk sata0:1: vm/nothere.vmdk: " vm/miss.vmx
sed 's|scsi-hardDisk|rawDisk|' vm/web.vmx > vm/rdm.vmx
fails "scsi0:0 is a raw device mapping: not supported" vm/rdm.vmx
sed 's|memsize = "2048"|memsize = "lots"|' vm/web.vmx > vm/mem.vmx
fails "memsize 'lots' is not a size in MiB" vm/mem.vmx
sed 's#displayName = "web |22one|22"#displayName = "web |zzone"#' vm/web.vmx > vm/esc.vmx
fails "line 4: '\|' escape not followed by two hex digits" vm/esc.vmx
printf 'config.version = "8"\nthis is not a vmx line\n' > vm/junk.vmx
fails "line 2 is not 'key = \"value\"'" vm/junk.vmx
# hostile: a 1 MB line, a file over 1 MiB
{ echo 'config.version = "8"'; printf 'annotation = "'; head -c 1000000 /dev/zero | tr '\0' a; echo '"'; } > vm/long.vmx
fails "vm/long.vmx: line 2 is longer than 65536 bytes" vm/long.vmx
{ echo 'config.version = "8"'; for i in $(seq 1 40000); do echo "annotation$i = \"some text\""; done; } > vm/huge.vmx
fails "the file of [0-9]+ bytes is larger than the 1024 KiB allowed" vm/huge.vmx

# ---- libvirt: what vmferry package --target local wrote ----
"$VMFERRY" package -q --target local g.raw pkg > /dev/null || die "vmferry package"
opens pkg/g.xml
[ "$(jget out.json 'd["kind"]')" = libvirt ] || die "libvirt kind"
[ "$(jget out.json 'd["name"]')" = g ] || die "libvirt name"
mem_mib=$(python3 -c 'import sys, xml.etree.ElementTree as E
m = E.parse(sys.argv[1]).getroot().find("memory")
assert m.get("unit") == "MiB"; print(m.text)' pkg/g.xml)
[ "$(jget out.json 'd["memory-mb"]')" = "$mem_mib" ] || die "libvirt memory"
[ "$(jget out.json 'd["disks"][0]["name"]')" = "$scratch/pkg/g.qcow2" ] || die "libvirt disk path"
[ "$(jget out.json 'd["disks"][0]["format"]')" = qcow2 ] || die "libvirt disk format"
[ "$(jget out.json 'd["disks"][0]["digest"]')" = "$(raw_digest pkg/g.qcow2)" ] || die "libvirt disk digest"
[ "$(jget out.json 'd["facts"]["nics"][0]["model"]')" = virtio ] || die "libvirt nic"

# ---- libvirt: handwritten, GiB, boot order, a cdrom, efi ----
mkdir lv
cp vm/disk2.qcow2 lv/data.qcow2
cp g.raw lv/root.img
cat > lv/dom.txt <<'EOF'
<?xml version="1.0"?>
<!-- written by hand -->
<domain type='kvm'>
  <name>db-1</name>
  <uuid>2f7d3c1a-0000-4000-8000-000000000001</uuid>
  <memory unit='GiB'>2</memory>
  <currentMemory unit='GiB'>1</currentMemory>
  <vcpu placement='static' current='2'>3</vcpu>
  <os firmware='efi'>
    <type arch='x86_64' machine='q35'>hvm</type>
  </os>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='data.qcow2'/>
      <target dev='vdb' bus='virtio'/>
      <boot order='2'/>
    </disk>
    <disk type='file' device='cdrom'>
      <source file='/isos/x.iso'/>
      <target dev='sda' bus='sata'/>
    </disk>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='root.img'/>
      <target dev='vda' bus='virtio'/>
      <boot order='1'/>
    </disk>
    <interface type='bridge'>
      <mac address='52:54:00:12:34:56'/>
      <source bridge='br0'/>
      <model type='e1000'/>
    </interface>
  </devices>
</domain>
EOF
opens lv/dom.txt
[ "$(jget out.json 'd["kind"]')" = libvirt ] || die "libvirt by content"
[ "$(jget out.json 'd["name"]')" = db-1 ] || die "libvirt handwritten name"
[ "$(jget out.json 'd["memory-mb"]')" = 2048 ] || die "unit='GiB' memory: $(jget out.json 'd["memory-mb"]')"
[ "$(jget out.json 'd["vcpus"]')" = 3 ] || die "libvirt vcpus"
[ "$(jget out.json 'd["firmware"]')" = uefi ] || die "libvirt firmware"
[ "$(jget out.json '[x["name"] for x in d["disks"]]')" = "['lv/root.img', 'lv/data.qcow2']" ] || die "libvirt boot order: $(jget out.json '[x["name"] for x in d["disks"]]')"
[ "$(jget out.json 'd["disks"][0]["digest"]')" = "$want1" ] || die "libvirt root digest"
[ "$(jget out.json 'd["disks"][1]["digest"]')" = "$want2" ] || die "libvirt data digest"
[ "$(jget out.json 'd["facts"]["nics"][0]["bridge"]')" = br0 ] || die "libvirt nic bridge"
# default unit KiB, a pflash loader
sed "s|<memory unit='GiB'>2</memory>|<memory>1048576</memory>|; s|<os firmware='efi'>|<os><loader readonly='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE.fd</loader>|" lv/dom.txt > lv/kib.xml
opens lv/kib.xml
[ "$(jget out.json 'd["memory-mb"]')" = 1024 ] || die "KiB memory"
[ "$(jget out.json 'd["firmware"]')" = uefi ] || die "pflash firmware"
# a block disk, an unknown driver type, a unit libvirt does not know
sed "0,/<disk type='file' device='disk'>/s//<disk type='block' device='disk'>/" lv/dom.txt > lv/blk.xml
fails "disk vdb of type 'block' is not supported" lv/blk.xml
sed "s|type='qcow2'|type='qed'|" lv/dom.txt > lv/qed.xml
fails "disk vdb driver type 'qed' is not a format" lv/qed.xml
sed "s|unit='GiB'|unit='parsecs'|" lv/dom.txt > lv/unit.xml
fails "memory unit 'parsecs' not understood" lv/unit.xml
# a FIFO would block the read: refused
mkfifo lv/pipe
sed "s|source file='root.img'|source file='pipe'|" lv/dom.txt > lv/fifo.xml
fails "disk vda: lv/pipe is not a regular file or block device" lv/fifo.xml
# an XML root that is not a domain
echo '<network><name>x</name></network>' > lv/net.xml
fails "XML root element <network> is not a libvirt <domain>" lv/net.xml
cp x.ovf lv/bare.ovf
fails "a bare OVF descriptor is not supported" lv/bare.ovf

# ---- plain disks, several ----
opens vm/disk1.vmdk d2.raw
[ "$(jget out.json 'd["kind"]')" = disks ] || die "disks kind"
[ "$(jget out.json 'd["name"]')" = None ] || die "disks name"
[ "$(jget out.json '[x["digest"] for x in d["disks"]]')" = "['$wantv1', '$want2']" ] || die "disks digests"
[ "$(jget out.json 'd["facts"]["formats"]')" = "['vmdk', 'raw']" ] || die "disks formats"
fails "x.ova: an OVA description names the whole guest: give it alone" d2.raw x.ova
# -f forces every argument to be a disk image of that format
opens -f raw x.ova
[ "$(jget out.json 'd["kind"]')" = disks ] || die "-f raw on an OVA"
echo "t-migrate-inputs: ok"
