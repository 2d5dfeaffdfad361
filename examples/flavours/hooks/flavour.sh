#!/bin/sh
# The one hook of the official flavours (standard, xfce, gnome, kde: live.rst's one hook per
# image type, shared): the firmware Debian's live images carry, and a word for whoever boots it.
#   $1 = the image's root directory; $VMDEBOOTSTRAP_* describe the build (docs/hooks.md).
set -eu
. "$VMDEBOOTSTRAP_HELPERS"
trap cleanup EXIT

export_env
mount_proc
disable_daemons
prepare_apt_source   # the build mirror, the image's release and components (non-free-firmware among them)

# live-task-non-free-firmware-pc is what the official images install from non-free-firmware:
# its Recommends are the firmware (wireless, graphics, sound, microcode).  A build without
# Recommends (--no-recommends, as make check builds the xfce flavour) gets the task alone.
if [ "${VMDEBOOTSTRAP_RECOMMENDS:-}" = 1 ]; then
    apt_install live-task-non-free-firmware-pc
else
    apt_get -o APT::Install-Recommends=false install live-task-non-free-firmware-pc
fi

replace_apt_source
remove_daemon_block

flavour=console
for task in xfce gnome kde; do
    # dpkg-query, not dpkg's database files: they are dpkg's internal interface (lintian).
    status=$(in_target dpkg-query -W -f='${db:Status-Status}' "live-task-$task" 2>/dev/null || true)
    [ "$status" = installed ] && flavour=$task
done
mkdir -p "$rootdir/etc/issue.d"
echo "Debian live ($VMDEBOOTSTRAP_DISTRIBUTION $VMDEBOOTSTRAP_ARCH, $flavour), built by vmdebootstrap." \
    > "$rootdir/etc/issue.d/vmdebootstrap.issue"
