#!/bin/sh
# vmdebootstrap hook: the BeagleBone Black's bootloader (examples/beaglebone.conf).
#   $1  the image's root filesystem, mounted
#   $2  the disk image file being written
set -eu
root="$1"
image="$2"
uboot="$root/usr/lib/u-boot/am335x_evm"

# The AM335x ROM reads MLO from 128 KiB (or 256/384/512 KiB) in raw mode, and MLO
# loads u-boot.img from 384 KiB; --bootoffset 4M keeps the first partition clear.
dd if="$uboot/MLO" of="$image" bs=128k seek=1 conv=notrunc status=none
dd if="$uboot/u-boot.img" of="$image" bs=384k seek=1 conv=notrunc status=none

# u-boot's distro boot reads /boot/extlinux/extlinux.conf, written by u-boot-menu.
root_spec=$(awk '$2 == "/" { print $1 }' "$root/etc/fstab")
cat > "$root/etc/default/u-boot" <<CONF
U_BOOT_PARAMETERS="console=ttyS0,115200n8 rootwait ro"
U_BOOT_ROOT="root=$root_spec"
CONF
chroot "$root" u-boot-update
