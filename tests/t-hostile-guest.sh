# inspect on hostile guests (tests/hostile/mk-guest-hostile.py): GPT with
# 2^32 entries, bad CRCs, arrays beyond the disk, an EBR loop, an MBR
# partition beyond the disk, LVM metadata text of 100 MB, garbage and
# 5000-deep nesting, a segment beyond its PV, a cpio name length of 4 GB,
# a truncated xz initramfs, a 50 MB fstab, an ext superblock over
# garbage.  Each gives its warning, inspect still succeeds, and (in
# sanitizer builds) no sanitizer report; preflight still answers.
. "$(dirname "$0")/lib.sh"
require python3 sfdisk mkfs.ext4 cpio xz sqlite3
cd "$scratch"
python3 "$SRCDIR/tests/hostile/mk-guest-hostile.py" hz || die "mk-guest-hostile failed"
n=0
while IFS=$'\t' read -r name expect; do
    rc=0
    "$VMFERRY" inspect --json "hz/$name" > out.json 2> err.txt || rc=$?
    [ "$rc" -eq 0 ] || { cat err.txt; die "$name: inspect exit $rc"; }
    ! grep -qE 'Sanitizer|runtime error' err.txt || { cat err.txt; die "$name: sanitizer report"; }
    python3 - out.json "$expect" <<'PY' || die "$name: no warning containing '$expect'"
import json, sys
r = json.load(open(sys.argv[1]))
texts = list(r["warnings"])
for d in r["disks"]:
    t = d["partition-table"]
    texts += [t.get("error", ""), t.get("primary-error", "")]
for f in r["filesystems"]:
    texts.append(f.get("not-readable-reason", ""))
for o in r["operatingsystems"]:
    for k in o["kernels"]:
        texts.append(k.get("initramfs-contents", {}).get("error", ""))
sys.exit(0 if any(sys.argv[2] in t for t in texts) else 1)
PY
    rc=0
    "$VMFERRY" preflight --target kvm "hz/$name" > /dev/null 2> err.txt || rc=$?
    [ "$rc" -le 1 ] || die "$name: preflight exit $rc"
    ! grep -qE 'Sanitizer|runtime error' err.txt || { cat err.txt; die "$name: sanitizer report (preflight)"; }
    n=$((n + 1))
done < hz/MANIFEST
[ "$n" -ge 14 ] || die "only $n hostile images"
echo "$n hostile guests ok"
