#!/bin/sh
# One hook for every architecture (examples/live-{amd64,arm64,armhf}.conf):
# the architecture comes from the environment, not from the hook's name.
set -eu
. "$VMDEBOOTSTRAP_HELPERS"
trap cleanup EXIT
export_env
mount_proc
disable_daemons
prepare_apt_source          # the build mirror, the image's release

case "$VMDEBOOTSTRAP_ARCH" in
    amd64|i386) extra="" ;;
    arm64|armhf) extra="u-boot-tools" ;;   # boards want mkimage for boot scripts
    *) extra="" ;;
esac
apt_install bash-completion less $extra

replace_apt_source
remove_daemon_block
mkdir -p "$rootdir/etc/issue.d"
echo "Debian live ($VMDEBOOTSTRAP_DISTRIBUTION $VMDEBOOTSTRAP_ARCH), built by vmdebootstrap." \
    > "$rootdir/etc/issue.d/vmdebootstrap.issue"
