# prepare on hostile guests (the Debian --system fixture changed with
# debugfs -w, an independent writer): a passwd line of 1 MiB, homes that
# are (or hold) symbolic links to /etc, symbolic-link loops in /etc, an
# fstab of 50 MiB.  Every run ends within 20 s with no signal and no
# sanitizer report; a refusal is exit 1 with one "vmferry: prepare: "
# line and no output file; a run that goes on says why in a warning and
# leaves every filesystem clean (e2fsck -fn); nothing is written through
# a link (debugfs shows /etc unchanged; an --in-place copy keeps its
# SHA-256).
. "$(dirname "$0")/lib.sh"
require python3 mkfs.ext4 sfdisk e2fsck debugfs sha256sum timeout
mk="$SRCDIR/tests/fixtures/mk-guest.py"
cd "$scratch"

off() { # IMG N: byte offset of partition N
    sfdisk -d "$1" | awk -v p="$1$2" '$1 == p { for (i = 1; i <= NF; i++) if ($i ~ /^start=/) { gsub(/[^0-9]/, "", $(i+1)); print $(i+1) * 512 } }'
}
dbg() { debugfs -R "$2" "$1" 2>/dev/null; }
exists() { dbg "$1" "stat $2" | grep -q '^Inode:'; }
fsck_img() { # IMG: every ext filesystem of the mbr layout
    local n
    for n in 1 2 5; do
        e2fsck -fn "$1?offset=$(off "$1" $n)" > fsck.log 2>&1 ||
            { cat fsck.log; die "e2fsck not clean: $1 partition $n"; }
    done
}
# run WANT_RC CMD...: vmferry with a time limit; judged as the header says
run() {
    local want=$1 rc=0
    shift
    timeout -k 2 20 "$VMFERRY" "$@" > out.txt 2> err.txt < /dev/null || rc=$?
    [ $rc -ne 124 ] && [ $rc -lt 128 ] || die "timed out or killed ($rc): $*"
    if grep -qE 'Sanitizer|runtime error' err.txt; then
        cat err.txt
        die "sanitizer report: $*"
    fi
    [ $rc -eq "$want" ] || { cat err.txt; die "exit $rc, wanted $want: $*"; }
    if [ "$want" -ne 0 ]; then
        [ "$(grep -vc '^\[' err.txt)" -eq 1 ] || { cat err.txt; die "not one error line: $*"; }
        grep -q '^vmferry: prepare: ' err.txt || { cat err.txt; die "not a vmferry error: $*"; }
    fi
}
# edit the fixture's root filesystem with debugfs commands on stdin
hack() { # IMG
    debugfs -w -f - "$1?offset=$(off "$1" 2)" > /dev/null 2>&1 || die "debugfs -w"
}

echo "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIVmferryTestKey idc@host" > key.pub
python3 "$mk" --system debian g.raw 2>/dev/null || die "mk-guest"

# ---- a passwd line of 1 MiB ----
cp g.raw long.raw
python3 -c '
import sys
sys.stdout.write("root:x:0:0:root:/root:/bin/bash\n" + "x:" + "A" * (1 << 20) + "\n"
                 + "alice:x:1000:1000::/home/alice:/bin/bash\n")' > passwd.long
hack long.raw <<EOF
cd /etc
rm passwd
write $scratch/passwd.long passwd
EOF
sha256sum long.raw > long.sha
run 1 prepare --user-add dave long.raw o.raw
grep -q '/etc/passwd: line 2 is 1048578 bytes long' err.txt || { cat err.txt; die "long line error"; }
run 1 prepare --ssh-inject alice:key.pub long.raw o.raw
grep -q '/etc/passwd: line 2 is' err.txt || die "long line error (ssh-inject)"
[ -e o.raw ] && die "refused run left its output"
# what does not read passwd still works
run 0 prepare -q --sysprep --password-lock alice long.raw o.raw
fsck_img o.raw
rm -f o.raw
sha256sum -c --quiet long.sha || die "source changed"
echo "long passwd line: ok"

# ---- homes that are, or hold, links to /etc ----
cp g.raw home.raw
{
    dbg "home.raw?offset=$(off home.raw 2)" "cat /etc/passwd"
    echo "mallory:x:1002:1002::/home/mallory:/bin/bash"
    echo "eve:x:1003:1003::/home/eve:/bin/bash"
    echo "trent:x:1004:1004::/home/trent:/bin/bash"
} > passwd.home
hack home.raw <<EOF
cd /etc
rm passwd
write $scratch/passwd.home passwd
write $scratch/key.pub .bash_history
symlink /home/mallory /etc
mkdir /home/eve
symlink /home/eve/.ssh /etc
mkdir /home/trent
mkdir /home/trent/.ssh
symlink /home/trent/.ssh/authorized_keys /etc/shadow
symlink /home/newbie /etc
symlink /var/log/evil /etc/passwd
EOF
R="home.raw?offset=$(off home.raw 2)"
dbg "$R" "ls -l /etc" > etc.before
dbg "$R" "stat /etc" | grep -E '^(User|Mode)|Mode:' > etcstat.before
sha256sum home.raw > home.sha
run 1 prepare --ssh-inject mallory:key.pub home.raw o.raw
grep -q "home /home/mallory is a symbolic link; not writing through it" err.txt || { cat err.txt; die "mallory"; }
run 1 prepare --ssh-inject eve:key.pub home.raw o.raw
grep -q "/home/eve/.ssh is a symbolic link" err.txt || { cat err.txt; die "eve"; }
run 1 prepare --ssh-inject trent:key.pub home.raw o.raw
grep -q "authorized_keys is a symbolic link" err.txt || { cat err.txt; die "trent"; }
[ -e o.raw ] && die "refused run left its output"
# in place on a copy: refused before anything is written
cp home.raw inplace.raw
run 1 prepare --ssh-inject mallory:key.pub --in-place inplace.raw
[ "$(sha256_of inplace.raw)" = "$(sha256_of home.raw)" ] || die "a refused in-place edit wrote something"
# what goes on: a new user whose home is already a link (skel not copied
# through it, nothing chowned), sysprep past links in /home and /var/log
run 0 prepare --user-add newbie --sysprep home.raw o.raw
grep -q "warning: /home/newbie already exists; not copying /etc/skel" err.txt || { cat err.txt; die "newbie warning"; }
fsck_img o.raw
O="o.raw?offset=$(off o.raw 2)"
dbg "$O" "ls -l /etc" | grep -vE ' (passwd|shadow|group|gshadow|motd~|passwd-|shadow-|group-|gshadow-|machine-id)$' |
    awk '{ print $2, $4, $5, $NF }' | sort > etc.after
grep -vE ' (passwd|shadow|group|gshadow|motd~|passwd-|shadow-|group-|gshadow-|machine-id)$' etc.before |
    awk '{ print $2, $4, $5, $NF }' | sort > etc.want
[ "$(wc -l < etc.want)" -gt 20 ] || die "etc listing empty"
diff etc.want etc.after > /dev/null || { diff etc.want etc.after; die "/etc changed through a link"; }
exists "$O" /etc/.bash_history || die "sysprep removed /etc/.bash_history through /home/mallory"
exists "$O" /etc/.ssh && die "/etc/.ssh made"
exists "$O" /etc/.bashrc && die "skel copied into /etc"
[ "$(dbg "$O" "stat /etc" | grep -E '^(User|Mode)|Mode:')" = "$(cat etcstat.before)" ] || die "/etc's owner or mode changed"
dbg "$O" "cat /etc/passwd" | grep -q '^alice:' || die "passwd emptied through /var/log/evil"
[ "$(dbg "$O" "cat /etc/shadow" | wc -l)" -ge 5 ] || die "shadow damaged"
sha256sum -c --quiet home.sha || die "source changed"
rm -f o.raw
echo "links to /etc: ok"

# ---- symbolic-link loops in /etc ----
cp g.raw loop.raw
hack loop.raw <<EOF
symlink /etc/loop1 /etc/loop2
symlink /etc/loop2 /etc/loop1
symlink /etc/systemd/system/multi-user.target.wants/loop.service /etc/systemd/system/multi-user.target.wants/loop.service
rm /etc/systemd/system/sshd.service
symlink /etc/systemd/system/sshd.service /etc/systemd/system/sshd.service
symlink /etc/init.d/loopy loopy
symlink /etc/skel/loop loop
symlink /etc/ssh/sshd_config.d/00-loop.conf 00-loop.conf
symlink /etc/systemd/system/default.target default.target
rm /etc/machine-id
symlink /etc/machine-id machine-id
EOF
run 0 prepare --sysprep --no-root-ssh --disable-service loop --disable-service sshd \
    --disable-service loopy --enable-service chronyd --user-add dave \
    --default-target multi-user loop.raw o.raw
fsck_img o.raw
O="o.raw?offset=$(off o.raw 2)"
grep -q 'warning: /etc/machine-id is a symbolic link; left alone' err.txt || die "machine-id loop"
grep -q 'warning: no service loopy in the guest' err.txt || die "loopy warning"
exists "$O" /etc/systemd/system/multi-user.target.wants/loop.service && die "loop.service wants link left"
dbg "$O" "stat /home/dave/loop" | grep -q 'Fast link dest: "loop"' || die "skel loop not copied as a link"
dbg "$O" "stat /etc/systemd/system/default.target" | grep -q 'multi-user.target' || die "default.target"
run 1 prepare --enable-service loopy loop.raw o2.raw
grep -q 'no unit file or init script for loopy' err.txt || die "loopy error"
rm -f o.raw
echo "link loops: ok"

# ---- an fstab of 50 MiB ----
python3 -c '
import sys
w = sys.stdout.write
w("UUID=11111111-2222-4333-8444-555555555501 / ext4 defaults 0 1\n")
line = "# " + "x" * 97 + "\n"
for _ in range(50 * 1024 * 1024 // len(line)):
    w(line)' > fstab.big
python3 "$mk" --system debian big.raw --fstab-file fstab.big --root-mb 90 --size-mb 140 2>/dev/null || die "mk-guest big fstab"
run 0 prepare --hostname big --sysprep --user-add dave big.raw o.raw
grep -q 'warning: inspection: /etc/fstab: size [0-9]* above the limit' err.txt || { cat err.txt; die "no fstab warning"; }
e2fsck -fn "o.raw?offset=$(off o.raw 2)" > fsck.log 2>&1 || { cat fsck.log; die "e2fsck"; }
[ "$(dbg "o.raw?offset=$(off o.raw 2)" "cat /etc/hostname")" = big ] || die "hostname"
echo "big fstab: ok"
echo ok
