# prepare: the customize and sysprep edits (user-add, password,
# root-password, password-lock, ssh-inject, no-root-ssh, disable-service,
# enable-service, default-target, firstboot, firstboot-command,
# cloud-init-seed, selinux-relabel, sysprep) on the Debian, RHEL (LVM),
# SUSE and Alpine fixtures built with mk-guest.py --system.  Oracles:
# e2fsck -fn on every filesystem of the output, debugfs for content,
# owner, mode and link targets, crypt(3) through Python (and openssl
# passwd -6 for SHA-512) for the password hashes, the first-boot runner
# run for real on the host with its paths moved into the scratch
# directory; the source's SHA-256 unchanged.
. "$(dirname "$0")/lib.sh"
require python3 mkfs.ext4 sfdisk e2fsck debugfs qemu-img sha256sum
mk="$SRCDIR/tests/fixtures/mk-guest.py"
cd "$scratch"

off() { # IMG N: byte offset of partition N
    sfdisk -d "$1" | awk -v p="$1$2" '$1 == p { for (i = 1; i <= NF; i++) if ($i ~ /^start=/) { gsub(/[^0-9]/, "", $(i+1)); print $(i+1) * 512 } }'
}
fsck_at() { # IMG[?offset=N]...
    local f
    for f in "$@"; do
        e2fsck -fn "$f" > fsck.log 2>&1 || { cat fsck.log; die "e2fsck not clean: $f"; }
    done
}
dbg() { debugfs -R "$2" "$1" 2>/dev/null; }
# stat fields: mode as 0NNN, then uid and gid
owner() { # FS PATH
    dbg "$1" "stat $2" | awk '/Mode:/ { for (i = 1; i <= NF; i++) if ($i == "Mode:") m = $(i+1) }
        /^User:/ { print m, $2, $4; exit }'
}
linkto() { # FS PATH: a symlink's target
    dbg "$1" "stat $2" | sed -n 's/^Fast link dest: "\(.*\)"$/\1/p'
}
exists() { dbg "$1" "stat $2" | grep -q '^Inode:'; }
# the hash in shadow field 2 verifies against the first line of FILE, and
# a wrong password does not (crypt(3): Python's crypt module, or libcrypt
# through ctypes where the module is gone)
verify_hash() { # HASH FILE
    python3 - "$1" "$2" <<'PY'
import ctypes, sys, warnings
h = sys.argv[1]
pw = open(sys.argv[2]).read().split("\n")[0]
def crypt(p, s):
    try:
        warnings.simplefilter("ignore")
        import crypt as c
        return c.crypt(p, s)
    except ImportError:
        lib = ctypes.CDLL("libcrypt.so.1")
        lib.crypt.restype = ctypes.c_char_p
        r = lib.crypt(p.encode(), s.encode())
        return r.decode() if r else None
assert crypt(pw, h) == h, "hash does not verify"
assert crypt(pw + "x", h) != h, "a wrong password verifies"
PY
}
shadow_of() { dbg "$1" "cat /etc/shadow" | awk -F: -v u="$2" '$1 == u { print $2 }'; }
want_fail() { # PATTERN CMD...
    local pat=$1
    shift
    if "$@" > err.txt 2>&1; then die "succeeded: $*"; fi
    grep -q -- "$pat" err.txt || { cat err.txt; die "no '$pat' in the error"; }
    [ "$(grep -vc '^\[' err.txt)" -eq 1 ] || { cat err.txt; die "error is not one line"; }
}

echo "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIVmferryTestKey idc@host" > key.pub
printf 'Idc pass 1\n' > idc.pw
printf 'R00t-pass\nignored second line\n' > root.pw
mkdir seed empty
printf 'instance-id: iid-vmferry-1\nlocal-hostname: web1\n' > seed/meta-data
printf '#cloud-config\npackages: []\n' > seed/user-data
printf 'version: 2\n' > seed/network-config
printf '#!/bin/sh\necho from-a-script\n' > hello.sh

# ---- Debian: the seed-000 set and more, through qcow2 ----
python3 "$mk" --system debian deb.raw 2>/dev/null || die "mk-guest debian"
sha256sum deb.raw > deb.sha
"$VMFERRY" prepare --json -O qcow2 \
    --user-add idcuser --ssh-inject idcuser:key.pub --no-root-ssh \
    --disable-service httpd --disable-service vsftpd \
    --disable-service sendmail --default-target multi-user \
    --firstboot-command "ssh-keygen -A" \
    --password idcuser:idc.pw --root-password root.pw \
    --password-lock alice --user-add bob:2000:sudo,users \
    --ssh-inject idcuser:key.pub --enable-service chronyd \
    --cloud-init-seed seed --firstboot hello.sh \
    deb.raw deb.qcow2 > deb.json 2> deb.log || { cat deb.log; die "prepare debian"; }
sha256sum -c --quiet deb.sha || die "source changed"
qemu-img convert -O raw deb.qcow2 deb-out.raw
R="deb-out.raw?offset=$(off deb-out.raw 2)"
fsck_at "deb-out.raw?offset=$(off deb-out.raw 1)" "$R" "deb-out.raw?offset=$(off deb-out.raw 5)"
python3 - deb.json <<'PY' || die "JSON report"
import json, sys
j = json.load(open(sys.argv[1]))
assert all(c["why"] for c in j["changes"]), j["changes"]
whys = {c["why"] for c in j["changes"]}
for w in ("--user-add", "--ssh-inject", "--no-root-ssh", "--disable-service",
          "--default-target", "--firstboot-command", "--password",
          "--root-password", "--password-lock", "--enable-service",
          "--cloud-init-seed", "--firstboot"):
    assert w in whys, w
assert any("no service httpd" in w for w in j["warnings"]), j["warnings"]
PY
# accounts
dbg "$R" "cat /etc/passwd" | grep -qx 'idcuser:x:1001:1001::/home/idcuser:/bin/bash' || die "passwd idcuser"
dbg "$R" "cat /etc/passwd" | grep -qx 'bob:x:2000:2000::/home/bob:/bin/bash' || die "passwd bob"
dbg "$R" "cat /etc/group" | grep -qx 'idcuser:x:1001:' || die "group idcuser"
dbg "$R" "cat /etc/group" | grep -qx 'sudo:x:27:alice,bob' || die "sudo members"
dbg "$R" "cat /etc/group" | grep -qx 'users:x:100:bob' || die "users members"
dbg "$R" "cat /etc/gshadow" | grep -qx 'sudo:\*::alice,bob' || die "gshadow members"
dbg "$R" "cat /etc/gshadow" | grep -qx 'bob:!::' || die "gshadow bob"
[ "$(owner "$R" /etc/shadow)" = "0640 0 42" ] || die "shadow owner/mode: $(owner "$R" /etc/shadow)"
h=$(shadow_of "$R" idcuser)
case $h in '$y$'*) ;; *) die "idcuser hash is not yescrypt: $h" ;; esac
verify_hash "$h" idc.pw || die "idcuser hash"
verify_hash "$(shadow_of "$R" root)" root.pw || die "root hash"
case $(shadow_of "$R" alice) in '!$6$oldsalt$'*) ;; *) die "alice not locked" ;; esac
[ "$(shadow_of "$R" bob)" = '*' ] || die "bob's password field"
# home from /etc/skel, owned by the user
[ "$(owner "$R" /home/idcuser)" = "0755 1001 1001" ] || die "home: $(owner "$R" /home/idcuser)"
[ "$(dbg "$R" "cat /home/idcuser/.bashrc")" = "# ~/.bashrc" ] || die "skel .bashrc"
[ "$(owner "$R" /home/idcuser/.config/app/settings.ini)" = "0600 1001 1001" ] || die "skel subdir file"
[ "$(owner "$R" /home/idcuser/.config)" = "0755 1001 1001" ] || die "skel subdir"
[ "$(linkto "$R" /home/idcuser/.bash_login)" = .profile ] || die "skel symlink"
[ "$(owner "$R" /home/idcuser/.bash_login)" = "0777 1001 1001" ] || die "skel symlink owner"
# ssh: 0700 / 0600, the user's, the key once (injected twice)
[ "$(owner "$R" /home/idcuser/.ssh)" = "0700 1001 1001" ] || die ".ssh"
[ "$(owner "$R" /home/idcuser/.ssh/authorized_keys)" = "0600 1001 1001" ] || die "authorized_keys"
[ "$(dbg "$R" "cat /home/idcuser/.ssh/authorized_keys")" = "$(cat key.pub)" ] || die "authorized_keys content"
dbg "$R" "ea_list /home/idcuser/.ssh/authorized_keys" | grep -q security.selinux && die "a label in a guest without SELinux"
# sshd: Debian includes sshd_config.d
[ "$(dbg "$R" "cat /etc/ssh/sshd_config.d/50-vmferry.conf" | grep -v '^#')" = "PermitRootLogin no" ] || die "drop-in"
dbg "$R" "cat /etc/ssh/sshd_config" | grep -qx '#PermitRootLogin prohibit-password' || die "sshd_config changed"
# services: vsftpd (unit + SysV), sendmail (SysV only): masked, links gone
W=/etc/systemd/system/multi-user.target.wants
exists "$R" $W/vsftpd.service && die "vsftpd wants link"
[ "$(linkto "$R" /etc/systemd/system/vsftpd.service)" = /dev/null ] || die "vsftpd not masked"
[ "$(linkto "$R" /etc/systemd/system/sendmail.service)" = /dev/null ] || die "sendmail not masked"
for l in rc2.d/S01vsftpd rc0.d/K01vsftpd rc3.d/S01sendmail; do
    exists "$R" /etc/$l && die "/etc/$l left"
done
exists "$R" /etc/init.d/sendmail || die "init script removed"
[ "$(linkto "$R" $W/ssh.service)" = /lib/systemd/system/ssh.service ] || die "ssh.service touched"
exists "$R" /etc/systemd/system/httpd.service && die "absent httpd masked"
# enable: WantedBy, RequiredBy and Alias of chronyd.service
[ "$(linkto "$R" $W/chronyd.service)" = /usr/lib/systemd/system/chronyd.service ] || die "chronyd wants"
[ "$(linkto "$R" /etc/systemd/system/time-sync.target.requires/chronyd.service)" = /usr/lib/systemd/system/chronyd.service ] || die "chronyd requires"
[ "$(linkto "$R" /etc/systemd/system/ntpd.service)" = /usr/lib/systemd/system/chronyd.service ] || die "chronyd alias"
[ "$(linkto "$R" /etc/systemd/system/default.target)" = /usr/lib/systemd/system/multi-user.target ] || die "default.target"
# first boot: runner, unit and its link, SysV script and links, scripts
F=/usr/lib/vmferry/firstboot
[ "$(owner "$R" $F/firstboot.sh)" = "0755 0 0" ] || die "runner"
[ "$(dbg "$R" "cat $F/scripts/0001-ssh-keygen")" = "$(printf '#!/bin/sh\nssh-keygen -A')" ] || die "firstboot-command script"
[ "$(dbg "$R" "cat $F/scripts/0002-hello.sh")" = "$(cat hello.sh)" ] || die "firstboot script"
[ "$(owner "$R" $F/scripts/0002-hello.sh)" = "0755 0 0" ] || die "firstboot script mode"
dbg "$R" "cat /etc/systemd/system/vmferry-firstboot.service" | grep -qx "ExecStart=$F/firstboot.sh" || die "unit"
[ "$(linkto "$R" $W/vmferry-firstboot.service)" = /etc/systemd/system/vmferry-firstboot.service ] || die "unit link"
[ "$(linkto "$R" /etc/rc2.d/S99vmferry-firstboot)" = ../init.d/vmferry-firstboot ] || die "rc link"
[ "$(owner "$R" /etc/init.d/vmferry-firstboot)" = "0755 0 0" ] || die "init script"
# cloud-init seed
[ "$(dbg "$R" "cat /var/lib/cloud/seed/nocloud/meta-data")" = "$(cat seed/meta-data)" ] || die "meta-data"
[ "$(owner "$R" /var/lib/cloud/seed/nocloud/user-data)" = "0600 0 0" ] || die "user-data mode"
exists "$R" /var/lib/cloud/seed/nocloud/network-config || die "network-config"
echo "debian customize: ok"

# ---- Debian: sysprep ----
"$VMFERRY" prepare -q --sysprep deb.raw sp.raw || die "sysprep"
S="sp.raw?offset=$(off sp.raw 2)"
fsck_at "$S" "sp.raw?offset=$(off sp.raw 1)" "sp.raw?offset=$(off sp.raw 5)"
[ "$(owner "$S" /etc/machine-id | cut -d' ' -f1)" = 0644 ] || die "machine-id mode"
dbg "$S" "stat /etc/machine-id" | grep -q 'Size: 0$' || die "machine-id not empty"
for f in /var/lib/dbus/machine-id /etc/ssh/ssh_host_rsa_key /etc/ssh/ssh_host_ed25519_key.pub \
         /var/log/syslog.1 /var/log/syslog.2.gz \
         /var/log/journal/0123456789abcdef0123456789abcdef/system.journal \
         /root/.bash_history /home/alice/.bash_history /var/lib/dhcp/dhclient.eth0.leases \
         /tmp/junk.txt /tmp/.X11-unix /var/tmp/junk \
         /var/cache/apt/archives/bash_5.2.15-2+b2_amd64.deb /var/spool/cron/crontabs/alice \
         /var/mail/alice /etc/motd~ /etc/default/grub.bak /etc/passwd- /etc/shadow- \
         /etc/group- /etc/gshadow- /etc/udev/rules.d/70-persistent-net.rules; do
    exists "$S" "$f" && die "sysprep left $f"
done
for d in /tmp /var/tmp /var/log/journal/0123456789abcdef0123456789abcdef \
         /var/spool/cron/crontabs /var/cache/apt/archives /etc/ssh; do
    dbg "$S" "stat $d" | grep -q 'Type: directory' || die "sysprep removed $d"
done
dbg "$S" "stat /var/log/syslog" | grep -q 'Size: 0$' || die "syslog not emptied"
[ "$(owner "$S" /var/log/wtmp)" = "0640 0 43" ] || die "wtmp owner/mode: $(owner "$S" /var/log/wtmp)"
dbg "$S" "cat /usr/lib/vmferry/firstboot/scripts/0001-ssh-hostkeys" | grep -qx 'ssh-keygen -A' ||
    die "no first-boot ssh-keygen on Debian"
exists "$S" /etc/passwd || die "passwd removed"
# a subset; "-op" excludes; unknown names refused
"$VMFERRY" prepare -q --sysprep=machine-id,tmp-files deb.raw sub.raw || die "sysprep=OPS"
S="sub.raw?offset=$(off sub.raw 2)"
exists "$S" /tmp/junk.txt && die "tmp-files not run"
exists "$S" /var/log/syslog.1 || die "logfiles run though not asked"
"$VMFERRY" prepare -q --edits <(echo "sysprep -logfiles,-ssh-hostkeys") deb.raw sub2.raw || die "sysprep -ops"
S="sub2.raw?offset=$(off sub2.raw 2)"
exists "$S" /var/log/syslog.1 || die "-logfiles ignored"
exists "$S" /etc/ssh/ssh_host_rsa_key || die "-ssh-hostkeys ignored"
exists "$S" /tmp/junk.txt && die "the other operations not run"
want_fail "unknown operation 'bogus'" "$VMFERRY" prepare --sysprep=tmp-files,bogus deb.raw x.raw
echo "debian sysprep: ok"

# ---- the first-boot runner, run on the host with its paths moved ----
"$VMFERRY" prepare -q --firstboot-command "echo one >> RUN/out" \
    --firstboot-command "exit 3" --firstboot-command "echo two >> RUN/out" \
    deb.raw fb.raw || die "prepare firstboot"
Fb="fb.raw?offset=$(off fb.raw 2)"
mkdir -p run/scripts
for s in 0001-echo 0002-exit 0003-echo; do
    dbg "$Fb" "cat /usr/lib/vmferry/firstboot/scripts/$s" | sed "s|RUN|$scratch/run|" > run/scripts/$s
done
dbg "$Fb" "cat /usr/lib/vmferry/firstboot/firstboot.sh" |
    sed -e "s|/usr/lib/vmferry/firstboot|$scratch/run|g" -e "s|/var/log/vmferry-firstboot.log|$scratch/run/log|" \
        -e "s|/run/vmferry-firstboot.lock|$scratch/run/lock|" > run/firstboot.sh
sh run/firstboot.sh || die "runner failed"
[ "$(cat run/out)" = "$(printf 'one\ntwo')" ] || die "scripts not run once, in order"
[ -z "$(ls run/scripts)" ] || die "scripts not removed"
grep -q '0002-exit exited with status 3' run/log || { cat run/log; die "runner log"; }
sh run/firstboot.sh && [ "$(cat run/out)" = "$(printf 'one\ntwo')" ] || die "scripts ran twice"
echo "firstboot runner: ok"

# ---- a guest with neither systemd nor init scripts, SysV inittab ----
python3 "$mk" debian plain.raw 2>/dev/null || die "mk-guest plain"
printf 'id:5:initdefault:\nsi::sysinit:/etc/init.d/rcS\n' > inittab
printf '#!/bin/sh -e\n# rc.local\nexit 0\n' > rc.local
debugfs -w -f - "plain.raw?offset=$(off plain.raw 2)" > /dev/null 2>&1 <<EOF || die "debugfs -w"
cd /etc
write $scratch/inittab inittab
write $scratch/rc.local rc.local
EOF
"$VMFERRY" prepare -q --default-target multi-user --firstboot-command "echo hi" \
    plain.raw plain-out.raw || die "prepare plain"
R="plain-out.raw?offset=$(off plain-out.raw 2)"
fsck_at "$R"
[ "$(dbg "$R" "cat /etc/inittab")" = "$(printf 'id:3:initdefault:\nsi::sysinit:/etc/init.d/rcS')" ] || die "inittab"
[ "$(dbg "$R" "cat /etc/rc.local")" = "$(printf '#!/bin/sh -e\n# rc.local\n/usr/lib/vmferry/firstboot/firstboot.sh\nexit 0')" ] ||
    die "rc.local: $(dbg "$R" "cat /etc/rc.local")"
[ "$(owner "$R" /etc/rc.local | cut -d' ' -f1)" = 0755 ] || die "rc.local mode"
exists "$R" /etc/systemd/system/vmferry-firstboot.service && die "a unit without systemd"
echo "inittab and rc.local: ok"

# ---- refusals: one line, exit 1, no output ----
want_fail "user alice already exists" "$VMFERRY" prepare --user-add alice deb.raw x.raw
want_fail "not a valid user name" "$VMFERRY" prepare --user-add 'Bad Name' deb.raw x.raw
want_fail "not a user id" "$VMFERRY" prepare --user-add x:0 deb.raw x.raw
want_fail "uid 1000 is already used" "$VMFERRY" prepare --user-add x:1000 deb.raw x.raw
want_fail "group 'nosuch' does not exist" "$VMFERRY" prepare --user-add x::sudo,nosuch deb.raw x.raw
want_fail "user nosuch is not in /etc/shadow" "$VMFERRY" prepare --password nosuch:idc.pw deb.raw x.raw
: > empty.pw
want_fail "the password is empty" "$VMFERRY" prepare --root-password empty.pw deb.raw x.raw
want_fail "user nosuch is not in /etc/passwd" "$VMFERRY" prepare --ssh-inject nosuch:key.pub deb.raw x.raw
want_fail "no unit file or init script for nosuch" "$VMFERRY" prepare --enable-service nosuch deb.raw x.raw
want_fail "not a service or unit name" "$VMFERRY" prepare --disable-service ../../etc/passwd deb.raw x.raw
want_fail "no unit bogus.target" "$VMFERRY" prepare --default-target bogus deb.raw x.raw
want_fail "no meta-data" "$VMFERRY" prepare --cloud-init-seed empty deb.raw x.raw
[ -e x.raw ] && die "a refused prepare left its output"
sha256sum -c --quiet deb.sha || die "source changed"
echo "refusals: ok"

# ---- RHEL on LVM: root striped over two PVs, /home an LV ----
python3 "$mk" --system rhel rh.raw 2>/dev/null || die "mk-guest rhel"
sha256sum rh.raw > rh.sha
"$VMFERRY" prepare --json \
    --user-add idcuser --ssh-inject idcuser:key.pub --no-root-ssh \
    --disable-service httpd --disable-service vsftpd \
    --disable-service sendmail --default-target multi-user \
    --firstboot-command "ssh-keygen -A" --root-password root.pw \
    --selinux-relabel --sysprep=ssh-hostkeys,machine-id \
    rh.raw rh-out.raw > rh.json 2> rh.log || { cat rh.log; die "prepare rhel"; }
sha256sum -c --quiet rh.sha || die "source changed"
# the LVs as files (mk-guest.py's layout: 64 KiB stripes, 1 MiB extents)
python3 - rh-out.raw <<'PY'
import sys
MIB, rootsz = 1 << 20, 28
half = rootsz // 2
pv0, pv1, chunk = 13 * MIB, (13 + half + 6) * MIB, 64 * 1024
with open(sys.argv[1], "rb") as d, open("rh-root.img", "wb") as out:
    for i in range(rootsz * MIB // chunk):
        d.seek((pv0 if i % 2 == 0 else pv1) + MIB + (i // 2) * chunk)
        out.write(d.read(chunk))
    d.seek((13 + 1 + half) * MIB)
    open("rh-home.img", "wb").write(d.read(4 * MIB))
PY
fsck_at rh-root.img rh-home.img "rh-out.raw?offset=$(off rh-out.raw 1)"
R=rh-root.img H=rh-home.img
dbg $R "cat /etc/passwd" | grep -qx 'idcuser:x:1001:1001::/home/idcuser:/bin/bash' || die "rhel passwd"
[ "$(owner $H /idcuser)" = "0700 1001 1001" ] || die "rhel home (HOME_MODE 0700): $(owner $H /idcuser)"
[ "$(owner $H /idcuser/.ssh/authorized_keys)" = "0600 1001 1001" ] || die "rhel authorized_keys"
[ "$(owner $R /etc/shadow)" = "0000 0 0" ] || die "rhel shadow mode"
verify_hash "$(shadow_of $R root)" root.pw || die "rhel root hash"
case $(shadow_of $R root) in '$y$'*) ;; *) die "RHEL 9 root hash not yescrypt" ;; esac
# the installer's drop-in sorts first and said yes: rewritten
dbg $R "cat /etc/ssh/sshd_config.d/01-permitrootlogin.conf" | grep -qx 'PermitRootLogin no' || die "01- drop-in"
dbg $R "cat /etc/ssh/sshd_config.d/01-permitrootlogin.conf" | grep -qi 'yes' && die "01- drop-in still yes"
exists $R /etc/ssh/sshd_config.d/50-vmferry.conf || die "rhel drop-in"
for s in httpd vsftpd sendmail; do
    [ "$(linkto $R /etc/systemd/system/$s.service)" = /dev/null ] || die "$s not masked"
    exists $R /etc/systemd/system/multi-user.target.wants/$s.service && die "$s wants link"
done
exists $R /etc/systemd/system/web.target.requires/httpd.service && die "httpd requires link"
exists $R /etc/systemd/system/multi-user.target.wants/sshd.service || die "sshd touched"
[ "$(linkto $R /etc/systemd/system/default.target)" = /usr/lib/systemd/system/multi-user.target ] || die "rhel default.target"
exists $R /.autorelabel || die "no /.autorelabel"
[ "$(owner $R /etc/rc.d/init.d/vmferry-firstboot)" = "0755 0 0" ] || die "init script in rc.d/init.d"
[ "$(linkto $R /etc/rc.d/rc3.d/S99vmferry-firstboot)" = ../init.d/vmferry-firstboot ] || die "rhel rc link"
exists $R /etc/ssh/ssh_host_rsa_key && die "host key left"
exists $R /usr/lib/vmferry/firstboot/scripts/0002-ssh-hostkeys && die "RHEL regenerates keys itself"
# SELinux (t-prepare-selinux has the details): new files labelled from
# the guest's file_contexts, /.autorelabel as well since it was asked
grep -q "Labelled [0-9]* new files from the guest's SELinux policy (targeted)" rh.log || die "no SELinux labels"
[ "$(dbg $H "ea_get -V /idcuser/.ssh/authorized_keys security.selinux" | tr -d '\0')" = unconfined_u:object_r:ssh_home_t:s0 ] ||
    die "rhel authorized_keys label"
echo "rhel: ok"

# ---- SUSE: sshd_config without Include: the line edited ----
python3 "$mk" --system suse su.raw 2>/dev/null || die "mk-guest suse"
"$VMFERRY" prepare -q --no-root-ssh --enable-service chronyd \
    --password alice:idc.pw --disable-service apache2 --default-target rescue \
    su.raw su-out.raw || die "prepare suse"
R="su-out.raw?offset=$(off su-out.raw 3)"
fsck_at "$R" "su-out.raw?offset=$(off su-out.raw 4)"
[ "$(dbg "$R" "cat /etc/ssh/sshd_config")" = "$(printf '#Port 22\n#PermitRootLogin yes\nPermitRootLogin no\nUsePAM yes\nMatch User backup\n\tPermitRootLogin no')" ] ||
    die "suse sshd_config: $(dbg "$R" "cat /etc/ssh/sshd_config")"
exists "$R" /etc/ssh/sshd_config.d/50-vmferry.conf && die "drop-in without Include"
verify_hash "$(shadow_of "$R" alice)" idc.pw || die "suse alice hash"
[ "$(owner "$R" /etc/shadow)" = "0640 0 15" ] || die "suse shadow owner"
[ "$(linkto "$R" /etc/systemd/system/apache2.service)" = /dev/null ] || die "apache2"
[ "$(linkto "$R" /etc/systemd/system/default.target)" = /usr/lib/systemd/system/rescue.target ] || die "rescue"
echo "suse: ok"

# ---- Alpine: OpenRC, busybox inittab, musl (SHA-512) ----
python3 "$mk" --system alpine al.raw 2>/dev/null || die "mk-guest alpine"
"$VMFERRY" prepare -q --root-password root.pw --disable-service sshd \
    --enable-service crond --firstboot-command "echo hi" \
    --user-add carol:1500:wheel --ssh-inject carol:key.pub al.raw al-out.raw || die "prepare alpine"
R="al-out.raw?offset=$(off al-out.raw 1)"
fsck_at "$R"
h=$(shadow_of "$R" root)
salt=$(echo "$h" | cut -d'$' -f3)
[ "$(openssl passwd -6 -salt "$salt" 'R00t-pass')" = "$h" ] || die "alpine SHA-512 hash (openssl): $h"
exists "$R" /etc/runlevels/default/sshd && die "sshd still in a runlevel"
[ "$(linkto "$R" /etc/runlevels/default/crond)" = /etc/init.d/crond ] || die "crond not enabled"
dbg "$R" "cat /etc/init.d/vmferry-firstboot" | head -n 1 | grep -qx '#!/sbin/openrc-run' || die "openrc script"
[ "$(linkto "$R" /etc/runlevels/default/vmferry-firstboot)" = /etc/init.d/vmferry-firstboot ] || die "openrc link"
dbg "$R" "cat /etc/group" | grep -qx 'wheel:x:10:alice,carol' || die "alpine wheel"
[ "$(owner "$R" /home/carol/.ssh/authorized_keys)" = "0600 1500 1500" ] || die "alpine keys"
want_fail "no initdefault line" "$VMFERRY" prepare --default-target multi-user al.raw x.raw
echo "alpine: ok"
echo ok
