# preflight: every rule of every target, once passing and once failing.
# The fixture guests are inspected once; each case edits a copy of a
# report (the fact the rule looks at) and runs
# `vmferry preflight --from-report`, so a rule is tested on exactly the
# evidence it reads.  t-preflight-images.sh runs targets on real images.
. "$(dirname "$0")/lib.sh"
require python3 mkfs.ext4 sfdisk cpio zstd lz4 xz bzip2 sqlite3
mk="$SRCDIR/tests/fixtures/mk-guest.py"
cd "$scratch"
for d in debian ubuntu rhel; do
    python3 "$mk" "$d" "$d.raw" 2>/dev/null || die "mk $d"
    "$VMFERRY" inspect --json "$d.raw" > "$d.json" || die "inspect $d"
done
python3 - "$VMFERRY" <<'PY' || die "a rule gave the wrong result"
import copy, json, subprocess, sys
vmferry = sys.argv[1]
base = {d: json.load(open(d + ".json")) for d in ("debian", "ubuntu", "rhel")}
GiB, TiB = 1 << 30, 1 << 40

def fmt(f, **spec):
    def m(r):
        for d in r["disks"]:
            d["format"] = f
            if spec:
                d["format-specific"] = {k.replace("_", "-"): v for k, v in spec.items()}
    return m
def size(n):
    def m(r):
        r["disks"][0]["virtual-size"] = n
    return m
def setos(k, v):
    def m(r):
        r["operatingsystems"][0][k] = v
    return m
def disk0(k, v):
    def m(r):
        r["disks"][0][k] = v
    return m
def ndisks(n):
    def m(r):
        r["disks"] = [dict(r["disks"][0], device="/dev/sd" + chr(97 + i)) for i in range(n)]
    return m
def root_on_sdb(r):
    r["disks"].append(dict(r["disks"][0], device="/dev/sdb"))
    r["operatingsystems"][0]["root"] = "/dev/sdb1"
def fstype(t, dev=None):
    def m(r):
        for f in r["filesystems"]:
            if dev is None or f["device"] == dev:
                f["type"] = t
    return m
def no_bootable(r):
    for p in r["disks"][0]["partition-table"]["partitions"]:
        p["bootable"] = False
def only_root_boot(r):
    o = r["operatingsystems"][0]
    o["mountpoints"] = [m for m in o["mountpoints"] if m["mountpoint"] in ("/", "/boot", "swap")]
def encrypted(r):
    r["volumes"]["encrypted"].append({"device": "/dev/sda6", "type": "crypto_LUKS2", "encrypted": True})
def windows(r):
    r["operatingsystems"] = []
    r["filesystems"] = [{"device": "/dev/sda2", "type": "ntfs"}]
def uefi(loader, key=True):
    def m(r):
        fw = r["firmware"]
        fw["type"] = "uefi"
        fw.pop("bios-boot-partition", None)
        if key:
            fw["uefi-fallback-loader"] = loader
        else:
            fw.pop("uefi-fallback-loader", None)
    return m
def none(r):
    pass
def both(*ms):
    def m(r):
        for x in ms:
            x(r)
    return m

# (target, rule, base, edit that makes it pass, edit that makes it fail[, extra args])
cases = [
    ("aws", "aws-size", "debian", none, size(16 * TiB)),
    ("aws", "aws-format", "debian", fmt("vpc", subformat="dynamic"), fmt("qcow2")),
    ("aws", "aws-format", "debian", fmt("vmdk", create_type="streamOptimized"), fmt("vmdk", create_type="monolithicSparse")),
    ("aws", "aws-64bit-os", "debian", none, setos("arch", "i386")),
    ("aws", "aws-64bit-os", "debian", none, lambda r: r.update(operatingsystems=[])),
    ("aws", "aws-boot-mode", "debian", none, None, "ubuntu"),
    ("aws", "aws-boot-mode", "ubuntu", uefi("/EFI/BOOT/BOOTX64.EFI"), uefi(None)),
    # a report from before the ESP was read passes, saying so
    ("aws", "aws-boot-mode", "ubuntu", uefi(None, key=False), uefi(None)),
    ("aws", "aws-root-on-boot-disk", "rhel", none, root_on_sdb),
    ("aws", "aws-filesystems", "debian", none, fstype("zfs", "/dev/sda5")),
    ("aws", "aws-no-sesparse", "debian", fmt("vmdk", create_type="monolithicSparse"), fmt("vmdk", create_type="seSparse")),
    ("aws", "aws-max-disks", "debian", ndisks(21), ndisks(22)),
    ("azure", "azure-fixed-vhd", "ubuntu", fmt("vpc", subformat="fixed"), fmt("vpc", subformat="dynamic")),
    ("azure", "azure-size-mib", "ubuntu", none, size(64 * 2**20 + 512)),
    ("azure", "azure-cookie", "ubuntu", fmt("vpc", subformat="fixed"), none),
    ("azure", "azure-size", "ubuntu", size(32 * TiB), size(33 * TiB)),
    ("azure", "azure-hyperv-initramfs", "ubuntu", none, None, "debian"),
    ("gce", "gce-raw", "debian", none, fmt("vpc")),
    ("gce", "gce-size-gb", "debian", size(10 * GiB), none),
    ("gce", "gce-bootable", "debian", none, no_bootable),
    ("gce", "gce-bootable", "ubuntu", none, disk0("partition-table", {"type": "none", "partitions": []})),
    ("gce", "gce-virtio", "debian", none, None, "rhel"),
    ("openstack", "openstack-format", "debian", fmt("vdi"), fmt("qed")),
    ("openstack", "openstack-no-data-file", "debian", fmt("qcow2", compat="1.1"), fmt("qcow2", data_file="d.raw")),
    ("openstack", "openstack-vmdk-type", "debian", fmt("vmdk", create_type="monolithicSparse"), fmt("vmdk", create_type="twoGbMaxExtentSparse")),
    ("openstack", "openstack-no-backing", "debian", none, disk0("backing-file", "base.qcow2")),
    ("openstack", "openstack-virtio", "debian", none, None, "rhel"),
    ("cloudstack-kvm", "cloudstack-kvm-format", "debian", fmt("qcow2"), fmt("vhdx")),
    ("cloudstack-kvm", "cloudstack-kvm-no-backing", "debian", none, disk0("backing-file", "b")),
    ("cloudstack-xen", "cloudstack-xen-format", "debian", fmt("vpc"), none),
    ("cloudstack-xen", "cloudstack-xen-no-backing", "debian", fmt("vpc"), both(fmt("vpc"), disk0("backing-file", "p.vhd"))),
    ("cloudstack-vmware", "cloudstack-vmware-format", "debian", fmt("vmdk", create_type="streamOptimized"), fmt("vmdk", create_type="monolithicFlat")),
    ("cloudstack-vmware", "cloudstack-vmware-no-backing", "debian", none, disk0("backing-file", "p.vmdk")),
    ("cloudstack-hyperv", "cloudstack-hyperv-format", "debian", fmt("vhdx"), none),
    ("cloudstack-hyperv", "cloudstack-hyperv-no-backing", "debian", none, disk0("backing-file", "p.vhdx")),
    ("vmware", "vmware-stream-vmdk", "debian", fmt("vmdk", create_type="streamOptimized"), none),
    ("vmware", "vmware-controller-driver", "debian", none, None, "ubuntu"),
    ("kvm", "kvm-format", "rhel", fmt("qcow2"), fmt("parallels")),
    ("kvm", "kvm-virtio", "debian", none, None, "rhel"),
    ("sce", "sce-raw", "debian", none, fmt("qcow2")),
    ("sce", "sce-partitions", "debian", only_root_boot, none),
    ("sce", "sce-ext3", "debian", both(only_root_boot, fstype("ext3")), none),
    ("sce", "sce-not-encrypted", "debian", none, encrypted),
    ("sce", "sce-size", "debian", size(60 * GiB), size(61 * GiB)),
    ("sce", "sce-no-lvm", "debian", none, None, "rhel"),
    ("sce", "sce-not-windows", "debian", none, windows),
    ("sce", "sce-virtio", "debian", none, None, "rhel"),
]

def run(target, report, extra=()):
    with open("case.json", "w") as f:
        json.dump(report, f)
    p = subprocess.run([vmferry, "preflight", "--target", target, "--json",
                        "--from-report", "case.json", *extra],
                       stdout=subprocess.PIPE, check=False)
    out = json.loads(p.stdout)
    assert (p.returncode == 0) == (out["verdict"] == "pass"), (p.returncode, out["verdict"])
    assert p.returncode == (0 if out["errors"] == 0 else 1)
    return out

bad = 0
tested = set()
for c in cases:
    target, rule, b, ok_edit, bad_edit = c[:5]
    other = c[5] if len(c) > 5 else None
    for want, edit, src in (("pass", ok_edit, b), ("fail", bad_edit, other or b)):
        r = copy.deepcopy(base[src])
        if edit:
            edit(r)
        out = run(target, r)
        got = [x for x in out["rules"] if x["id"] == rule]
        if not got or got[0]["result"] != want:
            print("FAIL %s %s: wanted %s, got %s" % (target, rule, want, got))
            bad += 1
        elif want == "fail" and not got[0]["fix"]:
            print("FAIL %s %s: failed without a fix command" % (target, rule))
            bad += 1
    tested.add(rule)

# every rule of every target is covered
for target in ("aws", "azure", "gce", "openstack", "cloudstack-kvm", "cloudstack-xen",
               "cloudstack-vmware", "cloudstack-hyperv", "vmware", "kvm", "sce"):
    out = run(target, base["debian"])
    for x in out["rules"]:
        if x["id"] not in tested:
            print("FAIL rule %s has no test" % x["id"])
            bad += 1
        for k in ("id", "statement", "severity", "result", "evidence", "fix"):
            assert k in x, (x, k)

# options: --disk-bus makes openstack-virtio n/a; --controller lsilogic passes
out = run("openstack", base["rhel"], ["--disk-bus", "sata"])
assert [x["result"] for x in out["rules"] if x["id"] == "openstack-virtio"] == ["n/a"]
out = run("vmware", base["ubuntu"], ["--controller", "lsilogic"])
assert [x["result"] for x in out["rules"] if x["id"] == "vmware-controller-driver"] == ["pass"]
# a warning-level failure does not fail the verdict
out = run("kvm", base["rhel"])
assert out["verdict"] == "pass" and out["warnings"] == 1, out
print("%d cases" % (2 * len(cases)))
sys.exit(1 if bad else 0)
PY
echo ok
