# inspect: volumes: LVM2 (PV labels and text metadata written by
# mk-guest.py from the on-disk format; root striped over two PVs, home
# linear; both read as block devices, the OS found on the striped LV;
# fstab's /dev/mapper names resolved), a segment beyond its PV (reported,
# LV not readable), MD RAID members, LUKS 1/2 and BitLocker (detected,
# reported as encrypted, not opened).
. "$(dirname "$0")/lib.sh"
require python3 mkfs.ext4 sfdisk cpio xz sqlite3
mk="$SRCDIR/tests/fixtures/mk-guest.py"
cd "$scratch"
python3 "$mk" rhel lvm.raw 2>/dev/null
"$VMFERRY" inspect --json lvm.raw > lvm.json || die "inspect lvm"
python3 - lvm.json <<'PY' || die "LVM facts wrong"
import json, sys
r = json.load(open(sys.argv[1]))
vg = r["volumes"]["lvm"][0]
assert vg["vg"] == "rhel" and vg["extent-size"] == 1 << 20, vg
assert [p["device"] for p in vg["pvs"]] == ["/dev/sda2", "/dev/sda3"], vg["pvs"]
lv = {l["name"]: l for l in vg["lvs"]}
assert lv["root"]["readable"] and lv["root"]["size"] == 28 << 20
assert lv["root"]["segments"][0]["stripes"] == 2 and lv["root"]["segments"][0]["stripe-size"] == 65536
assert lv["home"]["segments"][0]["stripes"] == 1
fs = {f["device"]: f for f in r["filesystems"]}
assert fs["/dev/rhel/root"]["readable"] and fs["/dev/rhel/home"]["uuid"].endswith("505")
o = r["operatingsystems"][0]
assert o["root"] == "/dev/rhel/root" and o["distro"] == "rhel" and o["version"] == "9.3"
mp = {m["mountpoint"]: m for m in o["mountpoints"]}
assert mp["/"]["device"] == "/dev/rhel/root" and mp["/home"]["device"] == "/dev/rhel/home"
assert mp["/boot"]["device"] == "/dev/sda1"
# files read through the striped LV: packages from rpmdb.sqlite, kernels
# from /boot on sda1
assert o["packages"]["count"] == 4 and o["kernels"][0]["version"].startswith("5.14.0")
PY

python3 "$mk" rhel bad.raw --lvm-bad-segment 2>/dev/null
"$VMFERRY" inspect --json bad.raw > bad.json || die "inspect bad lvm"
python3 - bad.json <<'PY' || die "bad segment not reported"
import json, sys
r = json.load(open(sys.argv[1]))
lv = {l["name"]: l for l in r["volumes"]["lvm"][0]["lvs"]}
assert not lv["root"]["readable"] and "beyond the PV" in lv["root"]["error"], lv["root"]
assert lv["home"]["readable"]
assert any("beyond the PV" in w for w in r["warnings"])
assert r["operatingsystems"] == []
PY

# MD 1.2 member, LUKS1, LUKS2, BitLocker, each in a partition
python3 - vols.raw <<'PY'
import struct, subprocess, sys
p = sys.argv[1]
with open(p, "wb") as f:
    f.truncate(24 << 20)
subprocess.run(["sfdisk", "-q", p], check=True, input=b"label: dos\n"
               b"start=1MiB,size=4MiB,type=fd\nstart=5MiB,size=4MiB,type=83\n"
               b"start=9MiB,size=4MiB,type=83\nstart=13MiB,size=4MiB,type=7\n")
with open(p, "r+b") as f:
    md = bytearray(256)
    md[0:4] = struct.pack("<I", 0xa92b4efc); md[4:8] = struct.pack("<I", 1)
    md[16:32] = bytes(range(16)); md[32:39] = b"host:md"
    md[72:76] = struct.pack("<i", 1); md[92:96] = struct.pack("<I", 2)
    md[128:136] = struct.pack("<Q", 2048)
    md[136:144] = struct.pack("<Q", 6144)
    f.seek((1 << 20) + 4096); f.write(md)
    # the RAID1 array's data: an ext2 at the member's data offset
    subprocess.run(["mkfs.ext2", "-q", "-F", "-U", "99999999-8888-4777-8666-555555555555",
                    "md.img", "3M"], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    f.seek(2 << 20); f.write(open("md.img", "rb").read())
    for off, ver in ((5 << 20, 1), (9 << 20, 2)):
        h = bytearray(592)
        h[0:6] = b"LUKS\xba\xbe"; h[6:8] = struct.pack(">H", ver)
        h[168:204] = b"5d6b4f6a-1111-2222-3333-%012d" % ver
        f.seek(off); f.write(h)
    bl = bytearray(512); bl[0:3] = b"\xeb\x58\x90"; bl[3:11] = b"-FVE-FS-"
    bl[510:512] = b"\x55\xaa"
    f.seek(13 << 20); f.write(bl)
PY
"$VMFERRY" inspect --json vols.raw > vols.json || die "inspect vols"
python3 - vols.json <<'PY' || die "MD/LUKS/BitLocker detection wrong"
import json, sys
r = json.load(open(sys.argv[1]))
v = r["volumes"]
assert v["md"][0]["device"] == "/dev/sda1" and v["md"][0]["raid-level"] == 1, v["md"]
enc = {e["device"]: e["type"] for e in v["encrypted"]}
assert enc == {"/dev/sda2": "crypto_LUKS", "/dev/sda3": "crypto_LUKS2",
               "/dev/sda4": "BitLocker"}, enc
assert all(e["encrypted"] for e in v["encrypted"])
assert v["md"][0]["readable"] and v["md"][0]["array"] == "/dev/md0"
assert [(f["device"], f["type"], f["uuid"]) for f in r["filesystems"]] == [
    ("/dev/md0", "ext2", "99999999-8888-4777-8666-555555555555")], r["filesystems"]
PY
"$VMFERRY" inspect vols.raw | grep -q "encrypted /dev/sda3: crypto_LUKS2" || die "text output lacks LUKS2"
echo ok
