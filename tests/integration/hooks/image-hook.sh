#!/bin/sh
# For disk images: the hook gets the root tree first and the image file being
# written second, as a board's bootloader hook would (it dd's into "$2").
set -eu
root="$1"
image="$2"
test -f "$image"
# /boot is its own partition in the test image; in the tree it is a directory with the kernel,
# which goes into that partition when the image step makes its filesystem.
ls "$root"/boot/vmlinuz-* >/dev/null
printf 'root=%s\nimage=%s\n' "$root" "$image" > "$root/root/vmdb-hook-args"
# A "bootloader" at 3 MiB: in the space --bootoffset leaves before the first partition.
printf 'VMDB-HOOK-MARK' | dd of="$image" bs=1 seek=$((3 * 1024 * 1024)) conv=notrunc status=none
