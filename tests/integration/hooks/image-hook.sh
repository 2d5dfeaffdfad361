#!/bin/sh
# For disk images: the hook gets the mounted root first and the image file being
# written second, as a board's bootloader hook would (it dd's into "$2").
set -eu
root="$1"
image="$2"
test -f "$image"
# /boot is its own partition in the test image: mounted below the root.
grep -q " $root/boot " /proc/self/mounts
printf 'root=%s\nimage=%s\n' "$root" "$image" > "$root/root/vmdb-hook-args"
# A "bootloader" at 3 MiB: in the space --bootoffset leaves before the first partition.
printf 'VMDB-HOOK-MARK' | dd of="$image" bs=1 seek=$((3 * 1024 * 1024)) conv=notrunc status=none
