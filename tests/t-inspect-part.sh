# inspect: partition tables: MBR with an extended partition and a logical
# one, GPT (types, names, GUIDs, attributes), a damaged primary GPT
# recovered from the backup (and reported), a damaged backup reported,
# hybrid MBR, UEFI vs BIOS firmware, a bare filesystem without a table.
. "$(dirname "$0")/lib.sh"
require python3 mkfs.ext4 sfdisk cpio zstd lz4 bzip2
mk="$SRCDIR/tests/fixtures/mk-guest.py"
cd "$scratch"
python3 "$mk" debian mbr.raw 2>/dev/null
python3 "$mk" ubuntu gpt.raw 2>/dev/null
python3 "$mk" ubuntu uefi.raw --layout gpt-uefi 2>/dev/null

check() {   # check FILE PYTHON-ASSERTIONS (r = report, t = first table)
    python3 - "$1" "$2" <<'PY' || die "$1: $2"
import json, sys
r = json.load(open(sys.argv[1]))
t = r["disks"][0]["partition-table"]
p = {x["device"]: x for x in t["partitions"]}
exec(sys.argv[2])
PY
}

"$VMFERRY" inspect --json mbr.raw > mbr.json
check mbr.json '
assert t["type"] == "mbr" and t["disk-signature"] == "0x1234abcd"
assert sorted(p) == ["/dev/sda1", "/dev/sda2", "/dev/sda3", "/dev/sda4", "/dev/sda5"], sorted(p)
assert p["/dev/sda5"]["logical"] and p["/dev/sda5"]["start"] == (18 + 28) * 2**20 + 512 or p["/dev/sda5"]["start"] >= (18 + 28) * 2**20
assert p["/dev/sda1"]["bootable"] and p["/dev/sda3"]["type"] == "0x82"
assert r["firmware"]["type"] == "bios" and r["firmware"]["mbr"][0]["boot-code"] == "grub"
'

"$VMFERRY" inspect --json gpt.raw > gpt.json
check gpt.json '
assert t["type"] == "gpt" and t["primary-ok"] and t["backup-ok"] and not t["hybrid-mbr"]
assert t["disk-guid"] == "6A1A7B64-1D73-4D8F-9A0E-0000000000FF"
assert p["/dev/sda2"]["type-name"] == "EFI System" and p["/dev/sda2"]["name"] == "EFI System"
assert p["/dev/sda1"]["type-name"] == "BIOS boot"
assert p["/dev/sda3"]["guid"] == "6A1A7B64-1D73-4D8F-9A0E-000000000003"
assert r["firmware"]["type"] == "bios" and r["firmware"]["uefi-capable"]
'
"$VMFERRY" inspect --json uefi.raw > uefi.json
check uefi.json 'assert r["firmware"]["type"] == "uefi" and r["firmware"]["esp"] == ["/dev/sda2"]'

# damage the primary header: recovered from the backup, reported
cp gpt.raw bad1.raw
printf 'X' | dd of=bad1.raw bs=1 seek=$((512 + 100)) conv=notrunc status=none
printf '\x01' | dd of=bad1.raw bs=1 seek=$((512 + 20)) conv=notrunc status=none
"$VMFERRY" inspect --json bad1.raw > bad1.json
check bad1.json '
assert t["recovered-from-backup"] and not t["primary-ok"] and t["backup-ok"], t
assert "CRC" in t["primary-error"], t["primary-error"]
assert len(p) == 4 and r["operatingsystems"][0]["distro"] == "ubuntu"
assert any("recovered from the backup" in w for w in r["warnings"])
'
# damage the primary entry array: same
cp gpt.raw bad2.raw
printf 'junk' | dd of=bad2.raw bs=1 seek=$((1024 + 200)) conv=notrunc status=none
"$VMFERRY" inspect --json bad2.raw > bad2.json
check bad2.json 'assert t["recovered-from-backup"] and "entry array CRC" in t["primary-error"] and len(p) == 4'
# damage the backup header: primary used, backup reported
cp gpt.raw bad3.raw
size=$(stat -c %s bad3.raw)
printf 'X' | dd of=bad3.raw bs=1 seek=$((size - 512 + 30)) conv=notrunc status=none
"$VMFERRY" inspect --json bad3.raw > bad3.json
check bad3.json 'assert t["primary-ok"] and not t["backup-ok"] and "backup-error" in t and len(p) == 4'

# hybrid MBR: an 0x83 entry beside the protective 0xEE one
cp gpt.raw hyb.raw
python3 - hyb.raw <<'PY'
import struct, sys
with open(sys.argv[1], "r+b") as f:
    f.seek(446 + 16)
    f.write(struct.pack("<B3sB3sII", 0, b"\0\0\0", 0x83, b"\0\0\0", 6 * 2048, 28 * 2048))
PY
"$VMFERRY" inspect --json hyb.raw > hyb.json
check hyb.json 'assert t["type"] == "gpt" and t["hybrid-mbr"] and any("hybrid" in w for w in r["warnings"])'

# a bare filesystem (no partition table) is inspected as /dev/sda
mkdir -p tree/etc tree/bin
echo "ID=debian" > tree/etc/os-release; echo "x /" > tree/etc/fstab
mkfs.ext4 -q -F -d tree bare.raw 16M
"$VMFERRY" inspect --json bare.raw > bare.json
python3 - bare.json <<'PY' || die "bare filesystem not inspected"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["disks"][0]["partition-table"]["type"] == "none"
assert r["filesystems"][0]["device"] == "/dev/sda"
assert r["operatingsystems"][0]["root"] == "/dev/sda"
f = r["filesystems"][0]
assert f["state"] == "clean" and not f["needs-recovery"] and "has_journal" in f["features"]
PY
# a journal that needs recovery is reported (and the fs still read)
python3 - bare.raw <<'PY'
import struct, sys
with open(sys.argv[1], "r+b") as f:
    f.seek(1024 + 96)
    v = struct.unpack("<I", f.read(4))[0]
    f.seek(1024 + 96)
    f.write(struct.pack("<I", v | 4))
PY
"$VMFERRY" inspect --json bare.raw > dirty.json
python3 - dirty.json <<'PY' || die "needs_recovery not reported"
import json, sys
r = json.load(open(sys.argv[1]))
f = r["filesystems"][0]
assert f["needs-recovery"] and f["state"] == "needs journal recovery", f
assert "needs_recovery" in f["features"]
PY
"$VMFERRY" inspect bare.raw | grep -q 'journal needs recovery' || die "text lacks the dirty journal"
echo ok
