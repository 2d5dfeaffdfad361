#!/bin/sh
# Fault-campaign hook: mounts through the helpers, leaves a detached process in the
# image, says it is ready (a file in the image's /tmp) and waits for the campaign's
# signal.  The build must stop it, undo its mounts and kill what it left.
set -eu
. "$VMDEBOOTSTRAP_HELPERS"
root="$1"
mount_proc
setsid chroot "$root" sleep 3600 </dev/null >/dev/null 2>&1 &
: > "$root/tmp/vmdb-hook-waiting"
sleep 3600
