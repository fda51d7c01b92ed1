# prepare: SELinux labels.  In a guest that uses SELinux (mk-guest.py's
# RHEL --system fixture: /etc/selinux/config enforcing, a small targeted
# file_contexts with .homedirs, .local and .subs_dist), what the edits
# make or rewrite gets the context its policy gives it, stored as
# security.selinux with its NUL; a file that had a label keeps it; a file
# no edit touched stays as it was.  Unusable file contexts (missing
# fields, a bad regex, a context that is not one, an unknown file type,
# no file_contexts, a SELINUXTYPE that is not a name): a warning and
# /.autorelabel.  SELINUX=disabled and a Debian guest: no attribute
# written.  A filesystem without ext_attr: a warning.  128-byte inodes
# (labels in attribute blocks), a written file removed by a later edit.
# Oracles: debugfs ea_get / ea_list / stat, e2fsck -fn on every edited
# filesystem; the host copies of the contexts are gone afterwards.
. "$(dirname "$0")/lib.sh"
require python3 mkfs.ext4 sfdisk e2fsck debugfs
mk="$SRCDIR/tests/fixtures/mk-guest.py"
cd "$scratch"

MIB=1048576
dbg() { debugfs -R "$2" "$1" 2>/dev/null; }
# the security.selinux value of PATH in FS (its trailing NUL removed)
label() { dbg "$1" "ea_get -V $2 security.selinux" | tr -d '\0'; }
want_label() { # FS PATH CONTEXT
    local got
    got=$(label "$1" "$2")
    [ "$got" = "$3" ] || die "$2: label '$got', wanted '$3'"
}
no_label() { # FS PATH
    dbg "$1" "ea_list $2" | grep -q security.selinux && die "$2: labelled: $(label "$1" "$2")"
    return 0
}
fsck_at() {
    local f
    for f in "$@"; do
        e2fsck -fn "$f" > fsck.log 2>&1 || { cat fsck.log; die "e2fsck not clean: $f"; }
    done
}
# the contexts' host copies go under TMPDIR: nothing may be left there
export TMPDIR="$scratch/tmp"
mkdir "$TMPDIR"
tmp_empty() { [ -z "$(ls -A "$TMPDIR")" ] || die "left in TMPDIR: $(ls -A "$TMPDIR")"; }

echo "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIVmferryTestKey k@host" > key.pub
echo "uploaded" > up.txt
# RHEL on GPT: / is partition 3 (6 MiB), /home partition 4 (34 MiB)
python3 "$mk" --system --layout gpt rhel rh.raw 2>/dev/null || die "mk-guest rhel"
R0="rh.raw?offset=$((6 * MIB))"
FC=/etc/selinux/targeted/contexts/files/file_contexts
# a file with a label of its own that --no-root-ssh rewrites
debugfs -w -R "ea_set /etc/ssh/sshd_config.d/01-permitrootlogin.conf security.selinux system_u:object_r:sshd_config_t:s0" "$R0" 2>/dev/null
sha256sum rh.raw > rh.sha

# ---- labels from the policy ----
"$VMFERRY" prepare --json --user-add idc --ssh-inject idc:key.pub \
    --no-root-ssh --disable-service httpd --firstboot-command "echo hi" \
    --mkdir /var/lib/app/data --upload up.txt:/root \
    --link /usr/bin/bash:/usr/bin/sh2 --write /etc/init.d/extra:x \
    --write /etc/gone:x --delete /etc/gone \
    rh.raw out.raw > out.json 2> out.log || { cat out.log; die "prepare rhel"; }
sha256sum -c --quiet rh.sha || die "source changed"
tmp_empty
R="out.raw?offset=$((6 * MIB))" H="out.raw?offset=$((34 * MIB))"
fsck_at "$R" "$H"
grep -q "Labelled [0-9]* new files from the guest's SELinux policy (targeted)" out.log ||
    { cat out.log; die "no summary line"; }
grep -qi "warning.*selinux\|autorelabel" out.log && { cat out.log; die "a warning or /.autorelabel"; }
python3 - out.json <<'PY' || die "JSON report"
import json, sys
j = json.load(open(sys.argv[1]))
c = [c for c in j["changes"] if c["change"].startswith("Labelled ")]
assert len(c) == 1 and c[0]["why"], j["changes"]
assert not any("SELinux" in w for w in j["warnings"]), j["warnings"]
PY
# the home, on /home (.homedirs): the directory (-d), the skel copy, ssh
want_label "$H" /idc unconfined_u:object_r:user_home_dir_t:s0
want_label "$H" /idc/.bashrc unconfined_u:object_r:user_home_t:s0
want_label "$H" /idc/.config/app/settings.ini unconfined_u:object_r:user_home_t:s0
want_label "$H" /idc/.ssh unconfined_u:object_r:ssh_home_t:s0
want_label "$H" /idc/.ssh/authorized_keys unconfined_u:object_r:ssh_home_t:s0
want_label "$H" /idc/.bash_login unconfined_u:object_r:user_home_t:s0
# stored as the kernel stores it: with the NUL (26 characters + 1)
dbg "$R" "ea_list /etc/passwd" | grep -qF 'security.selinux (27) = "system_u:object_r:etc_t:s0\000"' ||
    die "not stored with its NUL: $(dbg "$R" "ea_list /etc/passwd")"
# files rewritten in place that had no label; -- (regular files only)
want_label "$R" /etc/passwd system_u:object_r:etc_t:s0
want_label "$R" /etc/shadow system_u:object_r:shadow_t:s0
want_label "$R" /etc/gshadow system_u:object_r:etc_t:s0
# the label it had
want_label "$R" /etc/ssh/sshd_config.d/01-permitrootlogin.conf system_u:object_r:sshd_config_t:s0
want_label "$R" /etc/ssh/sshd_config.d/50-vmferry.conf system_u:object_r:etc_t:s0
# a symbolic link (the mask), first-boot files (.local gives bin_t)
want_label "$R" /etc/systemd/system/httpd.service system_u:object_r:systemd_unit_file_t:s0
want_label "$R" /etc/systemd/system/vmferry-firstboot.service system_u:object_r:systemd_unit_file_t:s0
want_label "$R" /usr/lib/vmferry system_u:object_r:bin_t:s0
want_label "$R" /usr/lib/vmferry/firstboot/firstboot.sh system_u:object_r:bin_t:s0
want_label "$R" /etc/rc.d/init.d/vmferry-firstboot system_u:object_r:initrc_exec_t:s0
# written through /etc/init.d -> rc.d/init.d: matched as its real path
want_label "$R" /etc/rc.d/init.d/extra system_u:object_r:initrc_exec_t:s0
# mkdir with its parents, upload, link
want_label "$R" /var/lib/app system_u:object_r:var_t:s0
want_label "$R" /var/lib/app/data system_u:object_r:var_t:s0
want_label "$R" /root/up.txt system_u:object_r:admin_home_t:s0
want_label "$R" /usr/bin/sh2 system_u:object_r:usr_t:s0
# untouched files and directories stay as they were
no_label "$R" /etc/hostname
no_label "$R" /etc
no_label "$H" /alice/.bashrc
dbg "$R" "stat /etc/gone" | grep -q Inode: && die "/etc/gone left"
echo "labels: ok"

# preparing the output again changes nothing: no new labels
"$VMFERRY" prepare --ssh-inject idc:key.pub --no-root-ssh out.raw again.raw 2> again.log ||
    { cat again.log; die "prepare again"; }
grep -q "Labelled" again.log && { cat again.log; die "labelled again"; }
tmp_empty

# --selinux-relabel: /.autorelabel as well, labelled too (--: a file)
"$VMFERRY" prepare -q --selinux-relabel --hostname web1 rh.raw rl.raw || die "--selinux-relabel"
want_label "rl.raw?offset=$((6 * MIB))" /.autorelabel system_u:object_r:etc_runtime_t:s0
want_label "rl.raw?offset=$((6 * MIB))" /etc/hostname system_u:object_r:etc_t:s0
fsck_at "rl.raw?offset=$((6 * MIB))"
rm -f again.raw rl.raw
echo "relabel: ok"

# ---- file contexts that cannot be used: a warning, /.autorelabel ----
broken() { # NAME WANT-IN-WARNING: rh.raw with FC replaced by ./fc (absent: removed)
    cp rh.raw b.raw
    debugfs -w -R "rm $FC" "b.raw?offset=$((6 * MIB))" >/dev/null 2>&1
    [ -e fc ] && debugfs -w -R "write fc $FC" "b.raw?offset=$((6 * MIB))" >/dev/null 2>&1
    "$VMFERRY" prepare --user-add idc b.raw b-out.raw 2> b.log || { cat b.log; die "$1: prepare"; }
    tmp_empty
    grep -q "warning: cannot label what vmferry wrote from the guest's SELinux policy (targeted): .*$2" b.log ||
        { cat b.log; die "$1: no warning with '$2'"; }
    grep -q "Creating /.autorelabel" b.log || { cat b.log; die "$1: no /.autorelabel"; }
    local BR="b-out.raw?offset=$((6 * MIB))"
    dbg "$BR" "stat /.autorelabel" | grep -q "Type: regular" || die "$1: /.autorelabel"
    fsck_at "$BR" "b-out.raw?offset=$((34 * MIB))"
    rm -f b.raw b-out.raw fc
}
printf '/etc(/.*)?\n' > fc
broken "missing fields" "$FC:  line 1 is missing fields"
printf '/.*\tsystem_u:object_r:default_t:s0\n/etc(/.*\tsystem_u:object_r:etc_t:s0\n' > fc
broken "bad regex" "matching it failed"
printf '/.*\tgarbage\n' > fc
broken "not a context" "'garbage', not a context"
printf '/.*\t-q\tsystem_u:object_r:default_t:s0\n' > fc
broken "file type" "invalid file type -q"
broken "no file_contexts" "$FC: not found"
# SELINUXTYPE naming no directory of /etc/selinux
cp rh.raw b.raw
printf 'SELINUX=permissive\nSELINUXTYPE=../../tmp\n' > cfg
debugfs -w -R "rm /etc/selinux/config" "b.raw?offset=$((6 * MIB))" >/dev/null 2>&1
debugfs -w -R "write cfg /etc/selinux/config" "b.raw?offset=$((6 * MIB))" >/dev/null 2>&1
"$VMFERRY" prepare --user-add idc b.raw b-out.raw 2> b.log || { cat b.log; die "type: prepare"; }
grep -q "SELINUXTYPE=../../tmp in /etc/selinux/config is not a policy name" b.log || { cat b.log; die "type: warning"; }
grep -q "Creating /.autorelabel" b.log || die "type: no /.autorelabel"
rm -f b.raw b-out.raw
echo "broken: ok"

# ---- SELINUX=disabled: no labels, no warning ----
cp rh.raw d.raw
printf 'SELINUX=disabled\nSELINUXTYPE=targeted\n' > cfg
debugfs -w -R "rm /etc/selinux/config" "d.raw?offset=$((6 * MIB))" >/dev/null 2>&1
debugfs -w -R "write cfg /etc/selinux/config" "d.raw?offset=$((6 * MIB))" >/dev/null 2>&1
"$VMFERRY" prepare --user-add idc --ssh-inject idc:key.pub d.raw d-out.raw 2> d.log || { cat d.log; die "disabled: prepare"; }
grep -qi "selinux\|autorelabel" d.log && { cat d.log; die "disabled: SELinux work"; }
no_label "d-out.raw?offset=$((34 * MIB))" /idc/.ssh/authorized_keys
no_label "d-out.raw?offset=$((6 * MIB))" /etc/passwd
rm -f d.raw d-out.raw
echo "disabled: ok"

# ---- /home without extended attributes: labels elsewhere, a warning ----
cp rh.raw x.raw
debugfs -w -R "feature -ext_attr" "x.raw?offset=$((34 * MIB))" >/dev/null 2>&1
"$VMFERRY" prepare --user-add idc x.raw x-out.raw 2> x.log || { cat x.log; die "no ext_attr: prepare"; }
grep -q "warning: /home/idc (and [0-9]* other files vmferry wrote) cannot have a SELinux label: its filesystem has no extended attributes" x.log ||
    { cat x.log; die "no ext_attr: warning"; }
want_label "x-out.raw?offset=$((6 * MIB))" /etc/passwd system_u:object_r:etc_t:s0
dumpe2fs -h "x-out.raw?offset=$((34 * MIB))" 2>/dev/null | grep -q ext_attr && die "ext_attr turned on"
fsck_at "x-out.raw?offset=$((6 * MIB))" "x-out.raw?offset=$((34 * MIB))"
rm -f x.raw x-out.raw
echo "no ext_attr: ok"

# ---- 128-byte inodes: each label in an attribute block ----
mkdir -p small/etc/selinux/targeted/contexts/files small/bin small/usr
echo "127.0.0.1 localhost" > small/etc/hosts
printf 'SELINUX=enforcing\n' > small/etc/selinux/config
printf '/.*\tsystem_u:object_r:default_t:s0\n/etc(/.*)?\tsystem_u:object_r:etc_t:s0\n' > small/$FC
mkfs.ext4 -q -I 128 -d small small.img 16M >/dev/null 2>&1 || die "mkfs -I 128"
"$VMFERRY" prepare --write /etc/new:x --mkdir /opt/d/e --link /etc/new:/etc/l \
    --write /etc/hosts:"127.0.0.1 x" small.img small-out.img 2> s.log || { cat s.log; die "128: prepare"; }
grep -q "Labelled 6 new files from the guest's SELinux policy (targeted)" s.log || { cat s.log; die "128: summary"; }
want_label small-out.img /etc/new system_u:object_r:etc_t:s0
want_label small-out.img /etc/l system_u:object_r:etc_t:s0
want_label small-out.img /opt/d/e system_u:object_r:default_t:s0
dbg small-out.img "stat /etc/new" | grep -q 'File ACL: [1-9]' || die "128: no attribute block"
fsck_at small-out.img
echo "128-byte inodes: ok"

# ---- Debian (no SELinux): no attributes at all ----
python3 "$mk" --system debian deb.raw 2>/dev/null || die "mk-guest debian"
"$VMFERRY" prepare -q --user-add idc --ssh-inject idc:key.pub deb.raw deb-out.raw || die "prepare debian"
DR="deb-out.raw?offset=$(sfdisk -d deb-out.raw | awk '$1 == "deb-out.raw2" { for (i = 1; i <= NF; i++) if ($i ~ /^start=/) { gsub(/[^0-9]/, "", $(i+1)); print $(i+1) * 512 } }')"
dbg "$DR" "stat /home/idc/.ssh/authorized_keys" | grep -q Inode: || die "debian: no authorized_keys"
for f in /home/idc /home/idc/.ssh /home/idc/.ssh/authorized_keys /etc/passwd; do
    [ -z "$(dbg "$DR" "ea_list $f" | grep -v '^Extended attributes:')" ] || die "debian: $f has attributes"
done
tmp_empty
echo ok
