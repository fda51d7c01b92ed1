# bench/lib-guest.sh: sourced by bench/inspect.sh and bench/migrate.sh:
# lay a guest tree out on the benchmarks' 4 GiB disk (MBR: p1 /boot 512
# MiB ext4, p2 / ext4, fstab by UUID), as qcow2 at IMG (mkfs.ext4 -d: no
# root, no mount), and record KIND in IMG's .kind file.  Needs $cache.
build_image() { # ROOT KIND IMG
    local root=$1 kind=$2 img=$3 work=$cache/build.tmp
    rm -rf "$work"; mkdir -p "$work"
    local buuid=22222222-3333-4444-8555-666666666601 ruuid=22222222-3333-4444-8555-666666666602
    # /boot and / as separate trees, without copying the rootfs
    printf 'UUID=%s / ext4 errors=remount-ro 0 1\nUUID=%s /boot ext4 defaults 0 2\n' \
        "$ruuid" "$buuid" > "$root/etc/fstab"
    [ -s "$root/etc/hostname" ] || echo debian12 > "$root/etc/hostname"
    mkdir -p "$work/empty"
    truncate -s 512M "$work/boot.img"
    mkfs.ext4 -q -F -U "$buuid" -L boot -d "$root/boot" "$work/boot.img" || return 1
    truncate -s 3583M "$work/root.img"
    # mkfs -d copies /boot too; the mountpoint hides it in the guest
    mkfs.ext4 -q -F -U "$ruuid" -L root -d "$root" "$work/root.img" || return 1
    truncate -s 4G "$work/disk.raw"
    printf 'label: dos\nstart=1MiB, size=512MiB, type=83, bootable\nstart=513MiB, type=83\n' |
        sfdisk -q "$work/disk.raw" || return 1
    dd if="$work/boot.img" of="$work/disk.raw" bs=1M seek=1 conv=notrunc,sparse status=none
    dd if="$work/root.img" of="$work/disk.raw" bs=1M seek=513 conv=notrunc,sparse status=none
    qemu-img convert -O qcow2 "$work/disk.raw" "$img.tmp" || return 1
    mv "$img.tmp" "$img"
    echo "$kind" > "${img%.qcow2}.kind"
    rm -rf "$work"
}

