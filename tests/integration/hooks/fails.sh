#!/bin/sh
# Mounts through the helpers, leaves a process behind and fails: the build must
# fail, name this script, and leave no mount, process or output behind.
. "$VMDEBOOTSTRAP_HELPERS"
mount_proc
sleep 1000 &
echo "fails.sh: giving up on purpose" >&2
exit 1
