#!/bin/bash
# fuzz/mk-corpus-source.sh: regenerate fuzz/corpus/source/, the seeds of
# fuzz-source: a small OVA (an OVF with two disk items, memory, CPUs, a
# NIC and efi firmware; a SHA256 manifest; two streamOptimized VMDKs of
# 64 KiB made by qemu-img, mostly padding), the same with a SHA1 manifest
# in sha1sum --tag spacing, a .vmx naming its own file as a disk and a
# CD-ROM, and a libvirt domain with a relative file disk.  The disks the
# .vmx and the domain name are the seed file itself ("in", the harness's
# file name).  Needs qemu-img, tar, sha256sum, sha1sum and gen-pattern
# (from BUILDDIR, or compiled here from tests/gen-pattern.c).
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
builddir=${1:-$src/build}
out=$src/fuzz/corpus/source
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
gp=$builddir/gen-pattern
if [ ! -x "$gp" ]; then
    gp=$tmp/gen-pattern
    cc -O2 -o "$gp" "$src/tests/gen-pattern.c"
fi
rm -rf "$out"
mkdir -p "$out"
cd "$tmp"

"$gp" --seed 1 64k a.raw 'h4k,d4k,z4k,h20k,d1k' > /dev/null
"$gp" --seed 2 64k b.raw 'd2k,h60k' > /dev/null
qemu-img convert -q -f raw -O vmdk -o subformat=streamOptimized a.raw a.vmdk
qemu-img convert -q -f raw -O vmdk -o subformat=streamOptimized b.raw b.vmdk
cat > s.ovf <<'OVF'
<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData" xmlns:vmw="http://www.vmware.com/schema/ovf">
<References><File ovf:href="a.vmdk" ovf:id="f1"/><File ovf:href="b.vmdk" ovf:id="f2"/></References>
<DiskSection><Disk ovf:capacity="64" ovf:capacityAllocationUnits="byte * 2^10" ovf:diskId="d1" ovf:fileRef="f1"/><Disk ovf:capacity="65536" ovf:diskId="d2" ovf:fileRef="f2"/></DiskSection>
<VirtualSystem ovf:id="s"><Name>s</Name>
<OperatingSystemSection ovf:id="96" vmw:osType="debian12_64Guest"><Description>Debian</Description></OperatingSystemSection>
<VirtualHardwareSection>
<Item><rasd:InstanceID>1</rasd:InstanceID><rasd:ResourceType>3</rasd:ResourceType><rasd:VirtualQuantity>2</rasd:VirtualQuantity></Item>
<Item><rasd:AllocationUnits>MegaBytes</rasd:AllocationUnits><rasd:InstanceID>2</rasd:InstanceID><rasd:ResourceType>4</rasd:ResourceType><rasd:VirtualQuantity>512</rasd:VirtualQuantity></Item>
<Item><rasd:InstanceID>3</rasd:InstanceID><rasd:ResourceSubType>lsilogic</rasd:ResourceSubType><rasd:ResourceType>6</rasd:ResourceType></Item>
<Item><rasd:InstanceID>4</rasd:InstanceID><rasd:ResourceType>20</rasd:ResourceType><rasd:ResourceSubType>AHCI</rasd:ResourceSubType></Item>
<Item><rasd:AddressOnParent>0</rasd:AddressOnParent><rasd:HostResource>ovf:/disk/d2</rasd:HostResource><rasd:InstanceID>5</rasd:InstanceID><rasd:Parent>4</rasd:Parent><rasd:ResourceType>17</rasd:ResourceType></Item>
<Item><rasd:AddressOnParent>0</rasd:AddressOnParent><rasd:HostResource>ovf:/disk/d1</rasd:HostResource><rasd:InstanceID>6</rasd:InstanceID><rasd:Parent>3</rasd:Parent><rasd:ResourceType>17</rasd:ResourceType></Item>
<Item><rasd:Connection>net</rasd:Connection><rasd:InstanceID>7</rasd:InstanceID><rasd:ResourceSubType>E1000</rasd:ResourceSubType><rasd:ResourceType>10</rasd:ResourceType></Item>
<vmw:Config ovf:required="false" vmw:key="firmware" vmw:value="efi"/>
</VirtualHardwareSection></VirtualSystem></Envelope>
OVF
sha256sum --tag s.ovf a.vmdk b.vmdk | sed 's/^SHA256 (\(.*\)) = /SHA256(\1)= /' > s.mf
tar --format=ustar -cf "$out/sha256.ova" s.ovf a.vmdk b.vmdk s.mf
sha1sum --tag s.ovf a.vmdk b.vmdk > s.mf
tar --format=ustar -cf "$out/sha1.ova" s.ovf a.vmdk b.vmdk s.mf
cat > "$out/machine.vmx" <<'VMX'
.encoding = "UTF-8"
config.version = "8"
virtualHW.version = "19"
displayName = "a |22b|22"
memsize = "1024"
numvcpus = "2"
firmware = "efi"
scsi0.present = "TRUE"
scsi0.virtualDev = "lsilogic"
scsi0:0.present = "TRUE"
scsi0:0.deviceType = "scsi-hardDisk"
scsi0:0.fileName = "in"
ide1:0.present = "TRUE"
ide1:0.deviceType = "cdrom-image"
ide1:0.fileName = "x.iso"
ethernet0.present = "TRUE"
ethernet0.virtualDev = "vmxnet3"
ethernet0.generatedAddress = "00:0c:29:00:00:01"
VMX
cat > "$out/domain.xml" <<'XML'
<?xml version="1.0"?>
<!-- libvirt -->
<domain type='kvm'>
  <name>d</name>
  <memory unit='GiB'>1</memory>
  <vcpu current='1'>2</vcpu>
  <os firmware='efi'><type arch='x86_64' machine='q35'>hvm</type><loader type='pflash'>x</loader></os>
  <devices>
    <disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='in'/><target dev='vda' bus='virtio'/><boot order='1'/></disk>
    <disk type='file' device='cdrom'><source file='x.iso'/><target dev='sda'/></disk>
    <interface type='network'><mac address='52:54:00:00:00:01'/><source network='default'/><model type='virtio'/></interface>
  </devices>
</domain>
XML
ls -l "$out"
