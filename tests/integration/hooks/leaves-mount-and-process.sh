#!/bin/sh
# Fault-campaign hook: succeeds, but mounts through the helpers without cleaning up
# and leaves a process running inside the image, detached from the hook's session
# and output (so the runner's process-group kill does not reach it).  Whatever
# fault comes later, the build must undo both.
set -eu
. "$VMDEBOOTSTRAP_HELPERS"
root="$1"
mount_proc
setsid chroot "$root" sleep 3600 </dev/null >/dev/null 2>&1 &
echo "leaves-mount-and-process.sh: left proc mounted and a sleep running in $root"
