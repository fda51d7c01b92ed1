#!/bin/bash
# t-migrate: vmferry migrate end to end on fixture guests: an OVA made by
# the test (qemu-img's streamOptimized VMDK, a handwritten OVF, a
# sha256sum manifest, GNU tar) migrated to local; an OVA made by vmferry
# migrated back (the round trip gives the same disk); a corrupted OVA
# member caught by its manifest; a .vmx and a libvirt domain as inputs;
# the preflight gate (stops, --force goes on); --json's document; the
# default ./NAME output.  Oracles: qemu-img compare/check,
# virt-xml-validate, sha256sum, python's json/tarfile.
. "$(dirname "$0")/lib.sh"
require python3 mkfs.ext4 sfdisk qemu-img sha256sum virt-xml-validate tar cpio
mk="$SRCDIR/tests/fixtures/mk-guest.py"
cd "$scratch"

python3 "$mk" debian g.raw --conversion 2>/dev/null || die "mk-guest debian"
qemu-img convert -f raw -O vmdk -o subformat=streamOptimized g.raw g.vmdk
size=$(stat -c %s g.raw)
cat > g.ovf <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData" xmlns:vssd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData">
  <References><File ovf:href="g.vmdk" ovf:id="file1"/></References>
  <DiskSection><Info>disks</Info>
    <Disk ovf:capacity="$size" ovf:capacityAllocationUnits="byte" ovf:diskId="vmdisk1" ovf:fileRef="file1" ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/>
  </DiskSection>
  <VirtualSystem ovf:id="web server 01"><Info>a VM</Info><Name>web server 01</Name>
    <VirtualHardwareSection><Info>hw</Info>
      <Item><rasd:InstanceID>1</rasd:InstanceID><rasd:ResourceType>3</rasd:ResourceType><rasd:VirtualQuantity>3</rasd:VirtualQuantity></Item>
      <Item><rasd:AllocationUnits>byte * 2^20</rasd:AllocationUnits><rasd:InstanceID>2</rasd:InstanceID><rasd:ResourceType>4</rasd:ResourceType><rasd:VirtualQuantity>768</rasd:VirtualQuantity></Item>
      <Item><rasd:InstanceID>3</rasd:InstanceID><rasd:ResourceSubType>lsilogic</rasd:ResourceSubType><rasd:ResourceType>6</rasd:ResourceType></Item>
      <Item><rasd:AddressOnParent>0</rasd:AddressOnParent><rasd:HostResource>ovf:/disk/vmdisk1</rasd:HostResource><rasd:InstanceID>4</rasd:InstanceID><rasd:Parent>3</rasd:Parent><rasd:ResourceType>17</rasd:ResourceType></Item>
    </VirtualHardwareSection>
  </VirtualSystem>
</Envelope>
EOF
printf 'SHA256(g.ovf)= %s\nSHA256(g.vmdk)= %s\n' "$(sha256sum < g.ovf | cut -d' ' -f1)" \
    "$(sha256sum < g.vmdk | cut -d' ' -f1)" > g.mf
tar --format=ustar -cf g.ova g.ovf g.vmdk g.mf
ova_sum=$(sha256sum < g.ova)

# ---- the test's OVA to local: name, memory, CPUs from the OVF ----
"$VMFERRY" migrate g.ova -o loc > sum.txt 2> log.txt || { cat log.txt; die "migrate g.ova"; }
grep -q '^Migrated web_server_01 to local in loc' sum.txt || die "summary: $(head -1 sum.txt)"
grep -q 'Copying disk 1/1' log.txt || die "no copy line"
grep -q 'Time per stage: inspect' sum.txt || die "no stage times"
virt-xml-validate loc/web_server_01.xml domain >/dev/null || die "virt-xml-validate"
[ "$(xmllint --xpath 'string(/domain/memory)' loc/web_server_01.xml)" = 768 ] || die "memory from the OVF"
[ "$(xmllint --xpath 'string(/domain/vcpu)' loc/web_server_01.xml)" = 3 ] || die "vcpus from the OVF"
qemu-img check -q loc/web_server_01.qcow2 || die "qemu-img check"
[ "$(sha256sum < g.ova)" = "$ova_sum" ] || die "the source OVA changed"
# the conversion edits are in the output, not in the source
qemu-img compare -q -f raw -F qcow2 g.raw loc/web_server_01.qcow2 && die "no edit made"

# ---- an OVA by vmferry, migrated back: the same disk ----
"$VMFERRY" package -q --target vmware loc/web_server_01.qcow2 pk || die "package vmware"
"$VMFERRY" migrate --json pk/web_server_01.ova -o back > back.json || die "migrate vmferry's OVA"
python3 - back.json <<'PY' || die "migrate --json document"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["target"] == "local" and r["source-kind"] == "ova"
assert [s["stage"] for s in r["stages"]] == ["inspect", "preflight", "prepare", "package", "verify"], r["stages"]
assert r["preflight"]["verdict"] == "pass"
assert all(v["sha256-ok"] for v in r["verify"])
assert any(v.get("content-ok") for v in r["verify"])
names = [a["name"] for a in r["artifacts"]]
assert "web_server_01.qcow2" in names and "run.sh" in names, names
PY
# the guest was already converted: migrating it again changes nothing
qemu-img compare -q -f qcow2 -F qcow2 loc/web_server_01.qcow2 back/web_server_01.qcow2 ||
    die "round trip through vmferry's OVA changed the disk"

# ---- a corrupted member is caught by the manifest ----
cp g.ova bad.ova
off=$(python3 -c '
import tarfile
t = tarfile.open("bad.ova")
m = t.getmember("g.vmdk")
print(m.offset_data + 70000)')
printf '\xff' | dd of=bad.ova bs=1 seek="$off" conv=notrunc 2>/dev/null
"$VMFERRY" migrate bad.ova -o badout 2> err && die "corrupted OVA accepted"
grep -q 'g.vmdk' err || die "message does not name the member: $(cat err)"
[ ! -e badout ] && [ ! -e badout.vmferry-partial ] || die "failed migrate left files"

# ---- a .vmx and a libvirt domain as inputs ----
mkdir vm && cp g.vmdk vm/disk.vmdk
cat > vm/web.vmx <<'EOF'
.encoding = "UTF-8"
config.version = "8"
virtualHW.version = "19"
displayName = "vmx-guest"
memsize = "1024"
numvcpus = "2"
scsi0.present = "TRUE"
scsi0.virtualDev = "pvscsi"
scsi0:0.present = "TRUE"
scsi0:0.fileName = "disk.vmdk"
ethernet0.present = "TRUE"
ethernet0.virtualDev = "vmxnet3"
EOF
"$VMFERRY" migrate -q vm/web.vmx --to openstack -o os || die "migrate .vmx --to openstack"
python3 - os/glance.json <<'PY' || die "glance.json from the .vmx"
import json, sys
g = json.load(open(sys.argv[1]))
assert g["name"] == "vmx-guest" and g["min_ram"] == 1024, g
assert g["properties"]["hw_disk_bus"] == "virtio"
PY
"$VMFERRY" migrate -q loc/web_server_01.xml -o fromxml || die "migrate a libvirt domain"
[ -f fromxml/web_server_01.qcow2 ] || die "libvirt input: no disk"
qemu-img compare -q fromxml/web_server_01.qcow2 loc/web_server_01.qcow2 || die "libvirt input: disk differs"

# ---- the preflight gate: sce refuses /srv; --force goes on ----
"$VMFERRY" migrate -q g.raw --to sce -o sce 2> err && die "sce gate passed"
grep -q 'sce-partitions' err || die "gate message: $(cat err)"
[ ! -e sce ] && [ ! -e sce.vmferry-partial ] || die "gate left files"
"$VMFERRY" migrate -q --force g.raw --to sce -o sce || die "--force"
[ -f sce/g.img ] || die "--force: no image"

# ---- default output ./NAME ----
mkdir cwd && (cd cwd && "$VMFERRY" migrate -q ../g.raw) || die "default output"
[ -f cwd/g/g.qcow2 ] && [ -f cwd/g/manifest.json ] || die "no ./g package"
echo "t-migrate: ok"
