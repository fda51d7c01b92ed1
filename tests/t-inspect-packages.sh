# inspect: package databases beyond the five fixture guests: pacman's
# local database (Arch), an RPM Berkeley DB (EL <= 8: present, not
# listed), a corrupt rpmdb.sqlite (reported, not fatal), dpkg epochs and
# removed packages; hypervisor tools found through packages only.
. "$(dirname "$0")/lib.sh"
require python3 mkfs.ext4 sqlite3
cd "$scratch"

mkroot() {   # mkroot DIR: the minimum libguestfs calls a Linux root
    mkdir -p "$1/etc" "$1/bin"
    echo "/dev/sda / ext4 defaults 0 1" > "$1/etc/fstab"
}
inspect_tree() {   # inspect_tree DIR OUT.json
    mkfs.ext4 -q -F -d "$1" "$1.img" 16M || die "mkfs $1"
    "$VMFERRY" inspect --json "$1.img" > "$2" || die "inspect $1"
}

mkroot arch
printf 'NAME="Arch Linux"\nID=arch\nBUILD_ID=rolling\n' > arch/etc/os-release
for p in "linux 6.6.7.arch1-1 x86_64" "pacman 6.0.2-9 x86_64" "qemu-guest-agent 8.2.0-1 x86_64"; do
    set -- $p
    mkdir -p "arch/var/lib/pacman/local/$1-$2"
    printf '%%NAME%%\n%s\n\n%%VERSION%%\n%s\n\n%%ARCH%%\n%s\n\n' "$1" "$2" "$3" \
        > "arch/var/lib/pacman/local/$1-$2/desc"
done
echo 9 > arch/var/lib/pacman/local/ALPM_DB_VERSION
inspect_tree arch arch.json
python3 - arch.json <<'PY' || die "pacman wrong"
import json, sys
o = json.load(open(sys.argv[1]))["operatingsystems"][0]
assert o["distro"] == "archlinux" and o["package-format"] == "pacman"
p = o["packages"]
assert p["format"] == "pacman" and p["listed"] and p["count"] == 3, p
l = {x["name"]: x for x in p["list"]}
assert l["linux"]["version"] == "6.6.7.arch1" and l["linux"]["release"] == "1"
assert [t["name"] for t in o["tools"]] == ["qemu-guest-agent"]
assert o["tools"][0]["evidence"] == "qemu-guest-agent"
PY

mkroot el8
printf 'Red Hat Enterprise Linux release 8.9 (Ootpa)\n' > el8/etc/redhat-release
mkdir -p el8/var/lib/rpm
head -c 8192 /dev/zero > el8/var/lib/rpm/Packages
inspect_tree el8 el8.json
python3 - el8.json <<'PY' || die "BDB rpm wrong"
import json, sys
o = json.load(open(sys.argv[1]))["operatingsystems"][0]
assert o["distro"] == "rhel" and o["version"] == "8.9" and o["package-management"] == "dnf"
p = o["packages"]
assert p["format"] == "rpm" and not p["listed"] and p["count"] == -1
assert "Berkeley DB" in p["note"], p
PY

mkroot bad
printf 'ID=fedora\nVERSION_ID=39\n' > bad/etc/os-release
mkdir -p bad/var/lib/rpm
head -c 4096 /dev/urandom > bad/var/lib/rpm/rpmdb.sqlite
inspect_tree bad bad.json
python3 - bad.json <<'PY' || die "corrupt rpmdb not reported"
import json, sys
r = json.load(open(sys.argv[1]))
p = r["operatingsystems"][0]["packages"]
assert not p["listed"] and any("rpmdb.sqlite" in w for w in r["warnings"]), (p, r["warnings"])
PY

mkroot deb
printf 'ID=debian\nVERSION_ID="11"\n' > deb/etc/os-release
mkdir -p deb/var/lib/dpkg
printf 'Package: openssh-server\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1:8.4p1-5+deb11u1\n\nPackage: gone\nStatus: deinstall ok config-files\nVersion: 1.0-1\n\nPackage: open-vm-tools\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2:11.2.5-2' > deb/var/lib/dpkg/status
inspect_tree deb deb.json
python3 - deb.json <<'PY' || die "dpkg wrong"
import json, sys
o = json.load(open(sys.argv[1]))["operatingsystems"][0]
l = {x["name"]: x for x in o["packages"]["list"]}
assert sorted(l) == ["open-vm-tools", "openssh-server"], sorted(l)
assert l["openssh-server"] == {"name": "openssh-server", "epoch": "1", "version": "8.4p1",
                               "release": "5+deb11u1", "arch": "amd64"}, l["openssh-server"]
assert [t["name"] for t in o["tools"]] == ["open-vm-tools"]
PY
echo ok
