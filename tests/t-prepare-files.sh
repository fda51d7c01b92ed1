# prepare: the plain file edits (hostname, timezone, write, append-line,
# upload, mkdir, chmod, chown, link, delete) on the Debian fixture, through
# a copy-on-write overlay into qcow2 and VMDK, and --in-place; checked with
# e2fsck -fn (every filesystem clean) and debugfs (content, owner, mode);
# the source's SHA-256 unchanged.  Refusals: the quota feature, a
# symlinked parent with GV_NOFOLLOW.  needs_recovery over an empty
# journal is cleared.
. "$(dirname "$0")/lib.sh"
require python3 mkfs.ext4 sfdisk e2fsck debugfs qemu-img sha256sum
mk="$SRCDIR/tests/fixtures/mk-guest.py"
cd "$scratch"

python3 "$mk" debian g.raw 2>/dev/null || die "mk-guest"
sha256sum g.raw > g.sha
# partition offsets (sfdisk dump: start= in sectors)
off() { sfdisk -d "$1" | awk -v n="$2" '$1 ~ n" *$" || $1 == "'"$1"'"n { for (i = 1; i <= NF; i++) if ($i ~ /^start=/) { gsub(/[^0-9]/, "", $(i+1)); print $(i+1) * 512 } }'; }
boot=$(off g.raw 1) root=$(off g.raw 2) srv=$(off g.raw 5)
[ -n "$boot" ] && [ -n "$root" ] && [ -n "$srv" ] || die "offsets: $boot $root $srv"

fsck_all() { # RAW
    for o in $boot $root $srv; do
        e2fsck -fn "$1?offset=$o" > fsck.log 2>&1 || { cat fsck.log; die "e2fsck not clean at offset $o of $1"; }
    done
}
dbg() { debugfs -R "$2" "$1" 2>/dev/null; }

echo "host file" > up.txt
chmod 0640 up.txt
cat > edits.txt <<'EOT'
# an --edits file: the same words as the options
hostname web1
--write /etc/motd:Welcome
mkdir=/opt/a/b/c
append-line /etc/fstab:# added by vmferry
EOT
for fmt in qcow2 vmdk; do
    "$VMFERRY" prepare --append-line "/etc/hosts:127.0.1.1 deb12" \
        --edits edits.txt --upload up.txt:/root \
        --chmod 0600:/root/up.txt --chown 1000.1001:/opt/a \
        --link /usr/bin/true:/usr/bin/t1:/usr/bin/t2 \
        --write /boot/vmferry.txt:boot-file --timezone UTC \
        --delete /etc/apt --json -O $fmt g.raw out.$fmt > out.json 2> log.txt ||
        { cat log.txt; die "prepare -O $fmt failed"; }
    sha256sum -c --quiet g.sha || die "source changed"
    grep -q '^\[ *[0-9.]*\] Setting the host name to web1' log.txt || die "no change log"
    python3 -c "
import json; j = json.load(open('out.json'))
files = [c['file'] for c in j['changes']]
assert '/etc/hostname' in files and '/root/up.txt' in files, files
assert all(c['why'] for c in j['changes'])
" || die "JSON changes wrong"
    qemu-img check out.$fmt > /dev/null || die "qemu-img check $fmt"
    qemu-img convert -O raw out.$fmt out.raw
    fsck_all out.raw
    R="out.raw?offset=$root" B="out.raw?offset=$boot"
    [ "$(dbg "$R" "cat /etc/hostname")" = web1 ] || die "hostname"
    dbg "$R" "cat /etc/hosts" | grep -qw web1 || die "/etc/hosts not renamed"
    [ "$(dbg "$R" "cat /etc/motd")" = Welcome ] || die "motd"
    dbg "$R" "cat /etc/fstab" | tail -n 1 | grep -qx '# added by vmferry' || die "append-line"
    [ "$(dbg "$R" "cat /root/up.txt")" = "host file" ] || die "upload content"
    dbg "$R" "stat /root/up.txt" | grep -q "Mode:  0600" || die "chmod"
    dbg "$R" "stat /opt/a" | grep -q "User:  1000   Group:  1001" || die "chown"
    dbg "$R" "stat /opt/a/b/c" | grep -q "Type: directory" || die "mkdir -p"
    [ "$(dbg "$R" "stat /usr/bin/t2" | grep -o 'Fast link dest: .*')" = 'Fast link dest: "/usr/bin/true"' ] || die "link"
    dbg "$R" "stat /etc/apt" | grep -q "Inode:" && die "delete"
    [ "$(dbg "$B" "cat /vmferry.txt")" = boot-file ] || die "write on /boot"
    dbg "$R" "stat /etc/localtime" | grep -q 'zoneinfo/UTC' || die "timezone"
    echo "$fmt: ok"
done

# --in-place on a copy the user owns
cp g.raw own.raw
"$VMFERRY" prepare -q --hostname inplace --in-place own.raw || die "--in-place"
fsck_all own.raw
[ "$(dbg "own.raw?offset=$root" "cat /etc/hostname")" = inplace ] || die "in-place hostname"

# refusals: nothing written, a one-line reason
want_fail() { # PATTERN CMD...
    local pat=$1; shift
    if "$@" > err.txt 2>&1; then die "succeeded: $*"; fi
    grep -q "$pat" err.txt || { cat err.txt; die "no '$pat' in the error"; }
    [ "$(wc -l < err.txt)" -le 2 ] || { cat err.txt; die "error is not one line"; }
}
want_fail "needs an argument" "$VMFERRY" prepare --edits <(echo hostname) g.raw o1.qcow2
want_fail "unknown edit" "$VMFERRY" prepare --edits <(echo frobnicate x) g.raw o1.qcow2
want_fail "not a valid host name" "$VMFERRY" prepare --hostname 'bad name' g.raw o1.qcow2
[ -e o1.qcow2 ] && die "a failed prepare left its output"
# needs_recovery set over an empty journal (debugfs on a copy): the
# replay has nothing to write and clears the flag (t-prepare-journal
# tests real replays)
cp g.raw dirty.raw
debugfs -w -R "feature needs_recovery" "dirty.raw?offset=$root" >/dev/null 2>&1
"$VMFERRY" prepare --hostname x dirty.raw o2.raw 2> log.txt || { cat log.txt; die "dirty: prepare"; }
grep -q "Replayed the journal of .* (0 transactions, 0 blocks)" log.txt || { cat log.txt; die "dirty: no replay line"; }
fsck_all o2.raw
dumpe2fs -h "o2.raw?offset=$root" 2>/dev/null | grep -q needs_recovery && die "dirty: flag kept"
rm -f o2.raw dirty.raw
# a removed file's extended attributes in a block of their own (a value
# too large for the inode): the block is freed with it
cp g.raw ea.raw
debugfs -w -R "ea_set /etc/hostname user.big $(printf 'x%.0s' $(seq 300))" "ea.raw?offset=$root" >/dev/null 2>&1
dbg "ea.raw?offset=$root" "stat /etc/hostname" | grep -q 'File ACL: [1-9]' || die "no xattr block made"
"$VMFERRY" prepare -q --delete /etc/hostname ea.raw o4.raw || die "delete with an xattr block"
fsck_all o4.raw
rm -f ea.raw o4.raw
# quota: refused
cp g.raw quota.raw
tune2fs -O quota "quota.raw?offset=$root" >/dev/null 2>&1 || true
if dumpe2fs -h "quota.raw?offset=$root" 2>/dev/null | grep -q quota; then
    want_fail "quota" "$VMFERRY" prepare --hostname x quota.raw o3.raw
fi
sha256sum -c --quiet g.sha || die "source changed"
echo ok
