# vmferry configdrive: NoCloud seeds and OpenStack config drives, as ISO
# 9660 (read back by isoinfo and xorriso) and FAT (fsck.fat, mtools);
# blkid sees the label and type; every file given comes back byte for
# byte; the writers handle names and sizes config drives never have
# (tests/fsimage-write); errors are one line and leave nothing behind.
. "$(dirname "$0")/lib.sh"
require isoinfo xorriso fsck.vfat mdir mcopy mlabel blkid python3
python3 -c 'import yaml' 2>/dev/null || skip "python3-yaml is not installed"
cd "$scratch"
V="$VMFERRY"
FSW="$BUILDDIR/fsimage-write"

# blkid_tag FILE TAG: the tag's value as blkid reads it from FILE
blkid_tag() {
    blkid -p -o export "$1" | sed -n "s/^$2=//p"
}

# no_leftovers DIR WANT...: DIR holds exactly the names WANT (sorted)
no_leftovers() {
    local dir=$1
    shift
    local have want
    have=$(ls -A "$dir" | sort | tr '\n' ' ')
    want=$(printf '%s\n' "$@" | sort | tr '\n' ' ')
    [ "$have" = "$want" ] || die "$dir holds [$have], wanted [$want]"
}

# iso_x ISO PATH: a file's bytes through the Joliet tree
iso_x() {
    isoinfo -J -i "$1" -x "$2"
}

# Inputs: user data with every byte value (cloud-init also takes gzip),
# two key files (comments, blank lines, options), network configs.
mkdir in
python3 -c 'import sys; sys.stdout.buffer.write(b"#cloud-config\n" + bytes(range(256)) * 3)' > in/user
k1='ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHh6j1Z2b3ZmZXJyeXRlc3RrZXkwMDAwMDAwMDAw me@host'
k2='ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBHZtZmVycnk= '\''quoted'\'' key'
k3='no-pty,command="echo hi there" ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQDvmferry ops'
printf '# team keys\n\n%s\n  %s\r\n' "$k1" "$k2" > in/keys1.pub
printf '%s\n' "$k3" > in/keys2.pub
printf 'version: 2\nethernets:\n  eth0:\n    dhcp4: true\n' > in/netcfg
printf '{"links": [], "networks": [], "services": []}\n' > in/netdata.json

# --- NoCloud on ISO ---------------------------------------------------
"$V" configdrive --user-data in/user --hostname web1.example.com \
    --instance-id "iid-'quoted'" --ssh-key in/keys1.pub \
    --ssh-key in/keys2.pub --network-config in/netcfg seed.iso ||
    die "NoCloud ISO"
isoinfo -d -i seed.iso > d.txt
grep -q '^Volume id: cidata$' d.txt || die "ISO volume id: $(cat d.txt)"
grep -q '^Joliet with UCS level' d.txt || die "no Joliet"
grep -q '^Rock Ridge signatures version 1 found' d.txt || die "no Rock Ridge"
[ "$(blkid_tag seed.iso LABEL)" = cidata ] || die "blkid label"
[ "$(blkid_tag seed.iso TYPE)" = iso9660 ] || die "blkid type"
iso_x seed.iso /user-data | cmp - in/user || die "user-data differs (Joliet)"
iso_x seed.iso /network-config | cmp - in/netcfg || die "network-config differs"
iso_x seed.iso /meta-data > meta.yaml
python3 - "$k1" "$k2" "$k3" <<'EOF' || die "meta-data: $(cat meta.yaml)"
import sys, yaml
md = yaml.safe_load(open("meta.yaml"))
assert md == {"instance-id": "iid-'quoted'",
              "local-hostname": "web1.example.com",
              "public-keys": sys.argv[1:4]}, md
EOF
# Rock Ridge: modes and owners
isoinfo -R -l -i seed.iso > rr.txt
[ "$(grep -c -- '^-rw-r--r-- *1 *0 *0 ' rr.txt)" -eq 3 ] ||
    die "Rock Ridge file modes: $(cat rr.txt)"
grep -q '^drwxr-xr-x .* 0 *0 ' rr.txt || die "Rock Ridge dir mode"
# a second reader: xorriso, through Rock Ridge
xorriso -osirrox on -indev seed.iso -extract / x-seed 2>/dev/null ||
    die "xorriso extract"
mkdir want-seed
cp in/user want-seed/user-data
cp in/netcfg want-seed/network-config
cp meta.yaml want-seed/meta-data
diff -r want-seed x-seed || die "xorriso tree differs"
no_leftovers . in d.txt meta.yaml rr.txt seed.iso want-seed x-seed
rm -rf d.txt rr.txt want-seed x-seed

# no user data: NoCloud still gets an (empty) user-data; the instance id
# defaults to a random UUID
"$V" configdrive --hostname web2 bare.iso || die "bare NoCloud"
[ "$(iso_x bare.iso /user-data | wc -c)" -eq 0 ] || die "user-data not empty"
iso_x bare.iso /meta-data > bare.yaml
python3 - <<'EOF' || die "bare meta-data: $(cat bare.yaml)"
import uuid, yaml
md = yaml.safe_load(open("bare.yaml"))
assert uuid.UUID(md["instance-id"]).version == 4, md
assert md["local-hostname"] == "web2" and "public-keys" not in md, md
EOF

# --- OpenStack config drive on ISO ------------------------------------
"$V" configdrive --label config-2 --user-data in/user --hostname web1 \
    --instance-id 6b1c0d35-1a44-4c1f-9f5e-0f2c7f0e8a11 \
    --ssh-key in/keys1.pub --network-data in/netdata.json c2.iso ||
    die "config-2 ISO"
grep -q '^Volume id: config-2$' <(isoinfo -d -i c2.iso) || die "config-2 id"
[ "$(blkid_tag c2.iso LABEL)" = config-2 ] || die "blkid config-2 label"
xorriso -osirrox on -indev c2.iso -extract / x-c2 2>/dev/null ||
    die "xorriso extract config-2"
(cd x-c2 && find . -type f | sort) > c2.list
cat > c2.want <<'EOF'
./openstack/2012-08-10/meta_data.json
./openstack/2012-08-10/user_data
./openstack/2015-10-15/meta_data.json
./openstack/2015-10-15/network_data.json
./openstack/2015-10-15/user_data
./openstack/latest/meta_data.json
./openstack/latest/network_data.json
./openstack/latest/user_data
EOF
diff c2.want c2.list || die "config-2 layout"
for v in latest 2012-08-10 2015-10-15; do
    cmp in/user "x-c2/openstack/$v/user_data" || die "$v/user_data differs"
    iso_x c2.iso "/openstack/$v/user_data" | cmp - in/user ||
        die "$v/user_data differs (Joliet)"
    cmp x-c2/openstack/latest/meta_data.json \
        "x-c2/openstack/$v/meta_data.json" || die "$v/meta_data.json"
done
for v in latest 2015-10-15; do
    cmp in/netdata.json "x-c2/openstack/$v/network_data.json" ||
        die "$v/network_data.json differs"
done
iso_x c2.iso /openstack/latest/meta_data.json | cmp - \
    x-c2/openstack/latest/meta_data.json || die "Joliet and RR differ"
python3 - "$k1" "$k2" <<'EOF' || die "meta_data.json"
import json, os, sys
md = json.load(open("x-c2/openstack/latest/meta_data.json"))
assert md["uuid"] == "6b1c0d35-1a44-4c1f-9f5e-0f2c7f0e8a11", md
assert md["hostname"] == "web1" and md["name"] == "web1", md
assert md["public_keys"] == {"key-0": sys.argv[1], "key-1": sys.argv[2]}, md
assert [k["data"] for k in md["keys"]] == sys.argv[1:3], md
# cloud-init (helpers/openstack.py) reads the newest version directory it
# knows that the drive has: it must hold everything
known = ["2012-08-10", "2013-04-04", "2013-10-17", "2015-10-15",
         "2016-06-30", "2016-10-06", "2017-02-22", "2018-08-27"]
have = [v for v in known if os.path.isdir("x-c2/openstack/" + v)]
pick = have[-1] if have else "latest"
assert os.path.exists("x-c2/openstack/%s/network_data.json" % pick), pick
EOF
# without network data: no 2015-10-15; metadata as given is kept as is
printf '{"uuid": "given-uuid", "meta": {"dsmode": "local"}}' > in/md.json
"$V" configdrive --label config-2 --meta-data in/md.json c2b.iso ||
    die "config-2 with --meta-data"
xorriso -osirrox on -indev c2b.iso -extract / x-c2b 2>/dev/null ||
    die "xorriso extract c2b"
[ "$(cd x-c2b && find . -type f | sort | tr '\n' ' ')" = \
  "./openstack/2012-08-10/meta_data.json ./openstack/latest/meta_data.json " ] ||
    die "config-2 layout without network data: $(find x-c2b)"
cmp in/md.json x-c2b/openstack/latest/meta_data.json || die "--meta-data changed"

# --- NoCloud on FAT ---------------------------------------------------
"$V" configdrive --format vfat --user-data in/user --hostname web1.example.com \
    --instance-id "iid-'quoted'" --ssh-key in/keys1.pub \
    --ssh-key in/keys2.pub --network-config in/netcfg seed.img ||
    die "NoCloud vfat"
fsck.vfat -n seed.img > fsck.txt 2>&1 || die "fsck.vfat: $(cat fsck.txt)"
[ "$(stat -c %s seed.img)" -ge $((1024 * 1024)) ] || die "FAT image under 1 MiB"
[ "$(blkid_tag seed.img LABEL)" = cidata ] || die "blkid FAT label"
[ "$(blkid_tag seed.img LABEL_FATBOOT)" = cidata ] || die "boot sector label"
[ "$(blkid_tag seed.img TYPE)" = vfat ] || die "blkid FAT type"
[ "$(blkid_tag seed.img VERSION)" = FAT12 ] || die "a seed is FAT12"
mlabel -i seed.img -s :: | grep -q 'Volume label is cidata *$' ||
    die "mlabel: $(mlabel -i seed.img -s ::)"
mdir -i seed.img :: > mdir.txt || die "mdir"
for f in meta-data user-data network-config; do
    grep -q " $f\$" mdir.txt || die "mdir does not list $f: $(cat mdir.txt)"
done
mcopy -n -i seed.img ::/user-data - | cmp - in/user || die "FAT user-data"
mcopy -n -i seed.img ::/network-config - | cmp - in/netcfg ||
    die "FAT network-config"
mcopy -n -i seed.img ::/meta-data - | cmp - meta.yaml ||
    die "FAT meta-data differs from the ISO's"

# --- config-2 on FAT: the same tree as the ISO's, FAT16 when large ----
head -c 3000000 /dev/urandom > in/big
"$V" configdrive --format vfat --label config-2 --user-data in/user \
    --hostname web1 --instance-id 6b1c0d35-1a44-4c1f-9f5e-0f2c7f0e8a11 \
    --ssh-key in/keys1.pub --network-data in/netdata.json c2.img ||
    die "config-2 vfat"
fsck.vfat -n c2.img > fsck.txt 2>&1 || die "fsck.vfat config-2: $(cat fsck.txt)"
[ "$(blkid_tag c2.img LABEL)" = config-2 ] || die "blkid FAT config-2"
mkdir m-c2
mcopy -s -n -i c2.img ::/openstack m-c2/ || die "mcopy -s"
diff -r x-c2 m-c2 || die "FAT config-2 tree differs from the ISO's"
"$V" configdrive --format vfat --label config-2 --user-data in/big \
    --instance-id big c2big.img || die "config-2 vfat, 3 MB"
fsck.vfat -n c2big.img > fsck.txt 2>&1 || die "fsck.vfat big: $(cat fsck.txt)"
[ "$(blkid_tag c2big.img VERSION)" = FAT16 ] || die "9 MB of files: FAT16"
for v in latest 2012-08-10; do
    mcopy -n -i c2big.img "::/openstack/$v/user_data" - | cmp - in/big ||
        die "FAT big $v/user_data"
done

# --- the writers, on names and sizes config drives never have ---------
mkdir -p tree/d1/d2/d3
echo a > tree/README.TXT
long=$(printf 'L%.0s' $(seq 200))-tail-$(printf 'x%.0s' $(seq 49))
for f in readme2.txt a.b.c .hidden "with space.txt" exactly13char \
         twenty-six-characters-long d1/d2/d3/f d1/Mixed.Case "$long"; do
    echo "$f" > "tree/$f"
done
: > tree/empty
head -c 512 /dev/urandom > "tree/x+y=z[1].txt"   # exactly one cluster
head -c 513 /dev/urandom > tree/c513
for i in $(seq -w 1 12); do              # short names ~1 ... ~12
    echo "$i" > "tree/network_data_$i.json"
done
args=()
while IFS= read -r f; do
    args+=("$f" "tree/$f")
done < <(cd tree && find . -type f | sed 's|^\./||' | sort)
"$FSW" vfat names names.img "${args[@]}" || die "fsimage-write vfat"
fsck.vfat -n names.img > fsck.txt 2>&1 || die "fsck.vfat names: $(cat fsck.txt)"
mdir -i names.img :: > mdir.txt
grep -q '^README   TXT ' mdir.txt || die "an 8.3 name got a long name"
grep -q '^NETWO~12 JSO ' mdir.txt || die "numeric tail ~12: $(cat mdir.txt)"
mkdir m-names
mcopy -s -n -i names.img '::*' m-names/ || die "mcopy names"
mcopy -n -i names.img ::/.hidden m-names/ || die "mcopy .hidden"
diff -r tree m-names || die "FAT names tree differs"
"$FSW" iso names names.iso "${args[@]}" || die "fsimage-write iso"
xorriso -osirrox on -indev names.iso -extract / x-names 2>/dev/null ||
    die "xorriso names"
diff -r tree x-names || die "ISO names tree differs"
"$FSW" vfat names dup.img Readme tree/empty README tree/empty 2>err.txt &&
    die "FAT took two names that differ only in case"

# --- errors: non-zero, one line, nothing left behind ------------------
mkdir e
cp in/user in/netdata.json e/
ssh_priv='-----BEGIN OPENSSH PRIVATE KEY-----'
printf '%s\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n' \
    "$ssh_priv" > e/id
truncate -s 65M e/huge
# fail WANT-IN-MESSAGE ARGS...: configdrive must fail, saying WANT
fail() {
    local want=$1 rc=0
    shift
    (cd e && "$V" configdrive "$@" out.img) 2>err.txt >/dev/null || rc=$?
    [ "$rc" -ne 0 ] || die "accepted: $*"
    [ "$(wc -l < err.txt)" -eq 1 ] || die "not one line: $* -> $(cat err.txt)"
    grep -q "^vmferry: configdrive: .*$want" err.txt ||
        die "$*: wanted '$want': $(cat err.txt)"
    no_leftovers e user netdata.json id huge
}
fail "missing: cannot open: No such file" --user-data missing
fail "host name 'web\\\\x0a1'" --hostname "$(printf 'web\n1')"
fail "host name" --hostname "web 1"
fail "instance id 'a\\\\x0ab'" --instance-id "$(printf 'a\nb')"
fail "unknown format 'udf'" --format udf
fail "unknown format 'iso9660'" --format iso9660 --user-data user
fail "unknown label 'CONFIG-2'" --label CONFIG-2
fail "network-config is for the NoCloud" --label config-2 --network-config user
fail "network_data.json is for the config-2" --network-data netdata.json
fail "id: a private key" --ssh-key id
fail "netdata.json: line 1 is not an SSH public key" --ssh-key netdata.json
fail "user: not a text file of public keys" --ssh-key user
fail "user: not a JSON object" --label config-2 --network-data user
fail "used as it is" --meta-data user --hostname web1
fail "exceed the 64 MiB" --user-data huge
fail "exceed the 64 MiB" --format vfat --label config-2 --user-data huge
"$V" configdrive --user-data in/user nodir/out.iso 2>err.txt &&
    die "wrote into a missing directory"
[ "$(wc -l < err.txt)" -eq 1 ] || die "not one line: $(cat err.txt)"

# an existing output is replaced, and nothing else is left
mkdir o
echo old > o/seed.iso
"$V" configdrive --user-data in/user o/seed.iso || die "replace"
iso_x o/seed.iso /user-data | cmp - in/user || die "replaced content"
no_leftovers o seed.iso
echo ok
