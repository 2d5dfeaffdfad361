#!/bin/sh
# Customisation hook of examples/live.conf, in the shape live.rst describes:
# call the helpers at the start, customise, undo them at the end.
#   $1 = the image's root directory; $VMDEBOOTSTRAP_* describe the build.
set -eu
. "$VMDEBOOTSTRAP_HELPERS"
trap cleanup EXIT

export_env
mount_proc
disable_daemons
# Install from the build mirror; the image keeps its --apt-mirror sources.
prepare_apt_source "$VMDEBOOTSTRAP_MIRROR" "$VMDEBOOTSTRAP_DISTRIBUTION"

# Architecture-specific work would test $VMDEBOOTSTRAP_ARCH here.
apt_install bash-completion less

replace_apt_source
remove_daemon_block

# A message for whoever boots it.
mkdir -p "$rootdir/etc/issue.d"
cat > "$rootdir/etc/issue.d/vmdebootstrap.issue" <<ISSUE
Debian live ($VMDEBOOTSTRAP_DISTRIBUTION $VMDEBOOTSTRAP_ARCH), built by vmdebootstrap. Log in as 'user'.

ISSUE
