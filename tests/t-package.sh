#!/bin/bash
# t-package: vmferry package for the targets that are disks plus a
# metadata document: local/libvirt (virt-xml-validate on the domain XML,
# run.sh parsed by bash), openstack (glance.json against inspection),
# cloudstack-kvm/xen/hyperv (register-template.json, its checksum by
# sha256sum, --bz2 by bzip2), azure (whole MiB + 512, conectix, fixed),
# hyperv, virtualbox; every disk proved by qemu-img check / compare;
# manifest.json sizes and digests by stat and sha256sum; a failing
# preflight rule stops with its message and leaves nothing; the source
# never changes.
. "$(dirname "$0")/lib.sh"
require python3 mkfs.ext4 sfdisk qemu-img sha256sum virt-xml-validate \
    xmllint bzip2 cpio
mk="$SRCDIR/tests/fixtures/mk-guest.py"
cd "$scratch"

python3 "$mk" debian g.raw --conversion 2>/dev/null || die "mk-guest debian"
qemu-img convert -f raw -O vmdk g.raw g.vmdk
src_sum=$(sha256sum < g.vmdk)
"$VMFERRY" inspect --json g.vmdk > insp.json || die "inspect"

# manifest.json: every artifact's size and sha256 as stat/sha256sum see them
check_manifest() { # DIR
    python3 - "$1" <<'PY' || die "manifest of $1"
import hashlib, json, os, sys
d = sys.argv[1]
m = json.load(open(os.path.join(d, "manifest.json")))
names = sorted(a["name"] for a in m["artifacts"])
files = sorted(f for f in os.listdir(d) if f != "manifest.json")
assert names == files, (names, files)
for a in m["artifacts"]:
    p = os.path.join(d, a["name"])
    assert os.path.getsize(p) == a["size"], a
    h = hashlib.sha256(open(p, "rb").read()).hexdigest()
    assert h == a["sha256"], a
PY
}
same() { # IMG FMT
    qemu-img compare -f raw -F "$2" g.raw "$1" >/dev/null || die "$1 differs from the source"
}

# ---- local / libvirt ----
"$VMFERRY" package --target local --name web1 --memory 1024 --vcpus 3 g.vmdk loc > loc.out || die "package local"
[ ! -e loc.vmferry-partial ] || die "working directory left behind"
for f in web1.qcow2 web1.xml run.sh manifest.json; do [ -f "loc/$f" ] || die "local: no $f"; done
virt-xml-validate loc/web1.xml domain > val.log 2>&1 || { cat val.log; die "virt-xml-validate"; }
x() { xmllint --xpath "$1" loc/web1.xml; }
[ "$(x 'string(/domain/name)')" = web1 ] || die "name"
[ "$(x 'string(/domain/memory)')" = 1024 ] || die "memory"
[ "$(x 'string(/domain/memory/@unit)')" = MiB ] || die "memory unit"
[ "$(x 'string(/domain/vcpu)')" = 3 ] || die "vcpus"
[ "$(x 'string(/domain/devices/disk/target/@bus)')" = virtio ] || die "disk bus (guest has virtio_blk at boot)"
[ "$(x 'string(/domain/devices/disk/driver/@type)')" = qcow2 ] || die "disk driver type"
[ "$(x 'string(/domain/devices/disk/source/@file)')" = "$scratch/loc/web1.qcow2" ] || die "disk path: $(x 'string(/domain/devices/disk/source/@file)')"
[ "$(x 'string(/domain/devices/interface/model/@type)')" = virtio ] || die "nic model"
[ "$(x 'count(/domain/devices/serial)')" = 1 ] || die "serial console"
[ -x loc/run.sh ] && bash -n loc/run.sh || die "run.sh"
grep -q -- '-device virtio-blk-pci,drive=disk0' loc/run.sh || die "run.sh disk"
grep -q -- '-m "${VMFERRY_MEMORY:-1024}" -smp 3' loc/run.sh || die "run.sh memory/cpus"
qemu-img check -q loc/web1.qcow2 || die "qemu-img check"
same loc/web1.qcow2 qcow2
check_manifest loc
python3 - loc/manifest.json insp.json <<'PY' || die "manifest vm facts"
import json, sys
m, i = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
os_ = i["operatingsystems"][0]
assert m["target"] == "local" and m["name"] == "web1"
vm = m["vm"]
assert vm["memory-mb"] == 1024 and vm["vcpus"] == 3
assert vm["distro"] == os_["distro"] and vm["version"] == os_["version"]
assert vm["firmware"] == i["firmware"]["type"]
PY

# raw, preallocated; an empty OUTDIR is fine, a non-empty one is refused
mkdir loc2
"$VMFERRY" package -q --target libvirt -O raw --preallocation falloc g.vmdk loc2 || die "package -O raw"
[ "$(xmllint --xpath 'string(/domain/devices/disk/driver/@type)' loc2/g.xml)" = raw ] || die "raw driver type"
virt-xml-validate loc2/g.xml domain >/dev/null 2>&1 || die "raw: virt-xml-validate"
[ $(( $(stat -c %b loc2/g.img) * 512 )) -ge "$(stat -c %s loc2/g.img)" ] || die "falloc: not allocated"
same loc2/g.img raw
"$VMFERRY" package -q --target local g.vmdk loc2 2> err && die "non-empty OUTDIR accepted"
grep -q 'already exists' err || die "message: $(cat err)"
"$VMFERRY" package -q --target local --name 'bad name' g.vmdk bad 2> err && die "bad --name accepted"
[ ! -e bad ] || die "bad name left a directory"

# a guest without virtio in its initramfs: SATA disk, still a virtio NIC
python3 "$mk" debian nv.raw --no-virtio-initrd 2>/dev/null || die "mk-guest --no-virtio-initrd"
"$VMFERRY" package -q --target local nv.raw nv || die "package nv"
[ "$(xmllint --xpath 'string(/domain/devices/disk/target/@bus)' nv/nv.xml)" = sata ] || die "no virtio: disk bus not sata"
[ "$(xmllint --xpath 'string(/domain/devices/disk/target/@dev)' nv/nv.xml)" = sda ] || die "sata dev name"
virt-xml-validate nv/nv.xml domain >/dev/null 2>&1 || die "nv: virt-xml-validate"
grep -q 'ide-hd,drive=disk0' nv/run.sh || die "run.sh sata"

# ---- openstack ----
"$VMFERRY" package -q --target openstack --memory 512 g.vmdk os || die "package openstack"
same os/g.qcow2 qcow2
check_manifest os
python3 - os/glance.json insp.json <<'PY' || die "glance.json"
import json, sys
g, i = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
os_ = i["operatingsystems"][0]
assert g["disk_format"] == "qcow2" and g["container_format"] == "bare"
vs = i["disks"][0]["virtual-size"]
assert g["min_disk"] == (vs + (1 << 30) - 1) >> 30
assert g["min_ram"] == 512
p = g["properties"]
for k in ("hw_disk_bus", "hw_vif_model", "hw_firmware_type",
          "hw_machine_type", "os_type", "os_distro", "os_version",
          "architecture", "hypervisor_type", "vm_mode"):
    assert k in p, k
assert p["hw_disk_bus"] == "virtio" and p["hw_vif_model"] == "virtio"
assert p["hw_firmware_type"] == i["firmware"]["type"]
assert p["os_type"] == "linux" and p["architecture"] == os_["arch"]
assert p["os_distro"] == "debian%d" % os_["major-version"]
assert p["os_version"] == os_["version"]
PY
# a VMDK for Glance is streamOptimized
"$VMFERRY" package -q --target openstack -O vmdk g.vmdk osv || die "openstack -O vmdk"
qemu-img info osv/g.vmdk | grep -q 'create type: streamOptimized' || die "openstack vmdk not streamOptimized"
grep -q '"disk_format": "vmdk"' osv/glance.json || die "glance disk_format vmdk"

# ---- cloudstack ----
cs_check() { # DIR FILE FORMAT HYPERVISOR
    python3 - "$1" "$2" "$3" "$4" <<'PY' || die "register-template.json in $1"
import hashlib, json, os, sys
d, f, fmt, hv = sys.argv[1:5]
t = json.load(open(os.path.join(d, "register-template.json")))
for k in ("name", "displaytext", "format", "hypervisor", "ostype",
          "passwordenabled", "sshkeyenabled", "isdynamicallyscalable",
          "requireshvm", "checksum"):
    assert k in t, k
assert t["format"] == fmt and t["hypervisor"] == hv, t
h = hashlib.sha256(open(os.path.join(d, f), "rb").read()).hexdigest()
assert t["checksum"] == "{SHA-256}" + h, t["checksum"]
assert t["file"] == f
assert t["ostype"].startswith("Debian GNU/Linux 12"), t["ostype"]
PY
}
"$VMFERRY" package -q --target cloudstack-kvm g.vmdk cs-kvm || die "cloudstack-kvm"
cs_check cs-kvm g.qcow2 QCOW2 KVM
same cs-kvm/g.qcow2 qcow2
"$VMFERRY" package -q --target cloudstack-xen g.vmdk cs-xen || die "cloudstack-xen"
cs_check cs-xen g.vhd VHD XenServer
qemu-img info cs-xen/g.vhd | grep -q 'file format: vpc' || die "xen: not a VHD"
same cs-xen/g.vhd vpc
"$VMFERRY" package -q --target cloudstack-hyperv --bz2 g.vmdk cs-hv || die "cloudstack-hyperv --bz2"
cs_check cs-hv g.vhdx.bz2 VHDX Hyper-V
[ ! -e cs-hv/g.vhdx ] || die "--bz2 kept the uncompressed file"
bzip2 -t cs-hv/g.vhdx.bz2 || die "bzip2 -t"
bzip2 -dc cs-hv/g.vhdx.bz2 > hv.vhdx
same hv.vhdx vhdx
check_manifest cs-hv
"$VMFERRY" package -q --target cloudstack-kvm g.vmdk g.vmdk cs2 2> err && die "two-disk template accepted"
grep -q 'one disk' err || die "two disks message: $(cat err)"
[ ! -e cs2 ] && [ ! -e cs2.vmferry-partial ] || die "failed package left files"

# ---- azure: Hyper-V drivers needed (a preflight error), then added ----
"$VMFERRY" package -q --target azure g.vmdk az 2> err && die "azure without hv drivers accepted"
grep -q 'azure-hyperv-initramfs' err || die "azure message: $(cat err)"
[ ! -e az ] && [ ! -e az.vmferry-partial ] || die "failed azure package left files"
"$VMFERRY" package -q --target azure --add-drivers hv_vmbus,hv_storvsc,hv_netvsc g.vmdk az || die "azure with drivers"
sz=$(stat -c %s az/g.vhd)
[ $(( (sz - 512) % (1 << 20) )) -eq 0 ] || die "azure size $sz not a whole MiB + 512"
[ "$(tail -c 512 az/g.vhd | head -c 8)" = conectix ] || die "azure: no conectix footer"
# (qemu-img never probes a fixed VHD: it is named with -f vpc)
qemu-img info -f vpc az/g.vhd | grep -q "virtual size: .*($(stat -c %s g.raw) bytes)" || die "azure: qemu-img -f vpc size"
# the edits changed the guest: qemu-img's reading must equal ours
qemu-img convert -f vpc -O raw az/g.vhd az.raw
"$VMFERRY" compare az/g.vhd az.raw >/dev/null || die "azure: qemu-img reads the VHD differently"
"$VMFERRY" info --json az/g.vhd | grep -q '"subformat": "fixed"' || die "azure: not fixed"
"$VMFERRY" inspect --json az/g.vhd | python3 -c '
import json, sys
i = json.load(sys.stdin)
d = i["operatingsystems"][0]["kernels"][0]["drivers"]
assert d["hv_storvsc"]["initramfs"] and d["hv_vmbus"]["initramfs"], d' || die "azure: drivers not in the packaged initramfs"

# ---- hyperv, virtualbox ----
"$VMFERRY" package -q --target hyperv g.vmdk hv || die "hyperv"
qemu-img check -q hv/g.vhdx 2>/dev/null; same hv/g.vhdx vhdx
"$VMFERRY" package -q --target virtualbox g.vmdk vb || die "virtualbox"
qemu-img check -q vb/g.vdi || die "vdi check"
same vb/g.vdi vdi
check_manifest vb

# VirtualBox's OVF flavour: .ovf first, a streamOptimized VMDK, a SATA
# (AHCI) controller
"$VMFERRY" package -q --target virtualbox --ova g.vmdk vbo || die "virtualbox --ova"
[ "$(tar -tf vbo/g.ova | head -1)" = g.ovf ] || die "vbox OVA: .ovf not first"
mkdir vbx && tar -C vbx -xf vbo/g.ova
xmllint --noout vbx/g.ovf || die "vbox OVF not well-formed"
grep -q 'virtualbox-2.2' vbx/g.ovf || die "vbox OVF: VirtualSystemType"
grep -q 'AHCI' vbx/g.ovf || die "vbox OVF: no AHCI controller"
qemu-img check -q vbx/g.vmdk || die "vbox vmdk check"
same vbx/g.vmdk vmdk
(cd vbx && sha256sum -c --quiet <(sed -n 's/^SHA256(\(.*\))= \(.*\)$/\2  \1/p' g.mf)) || die "vbox manifest"

# ---- sce: the fixture has /srv too, so the seed rule fails ----
"$VMFERRY" package -q --target sce g.vmdk sce 2> err && die "sce accepted /srv"
grep -q 'sce-partitions' err || die "sce message: $(cat err)"

# SIGTERM while writing: the working directory goes with the process
"$BUILDDIR/gen-pattern" 2g big.raw > /dev/null
"$VMFERRY" package -q --target vmware big.raw sig &
pid=$!
for _ in $(seq 100); do [ -d sig.vmferry-partial ] && break; sleep 0.05; done
sleep 0.3
kill -TERM "$pid" 2>/dev/null
rc=0; wait "$pid" || rc=$?
[ "$rc" -ne 0 ] || die "SIGTERM: package finished first (make the source bigger)"
[ ! -e sig ] && [ ! -e sig.vmferry-partial ] || die "SIGTERM left $(ls -d sig*)"
rm -f big.raw

"$VMFERRY" package --target nowhere g.vmdk x 2> err && die "unknown target accepted"
grep -q 'unknown target nowhere' err || die "unknown target message"
[ "$(sha256sum < g.vmdk)" = "$src_sum" ] || die "the source changed"
echo "t-package: ok"
