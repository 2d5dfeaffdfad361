#!/bin/sh
# Integration-test hook: calls every helper of customise.lib against the real root
# and leaves evidence in the image for the tests to read.
set -eu
. "$VMDEBOOTSTRAP_HELPERS"
trap cleanup EXIT

root="$1"
marker="$root/etc/vmdebootstrap-test-hook"
{
    echo "argc=$#"
    echo "arg1=$1"
    echo "arg2=${2-unset}"
    echo "ROOTDIR=$ROOTDIR"
    echo "ARCH=$VMDEBOOTSTRAP_ARCH"
    echo "DISTRIBUTION=$VMDEBOOTSTRAP_DISTRIBUTION"
    echo "MIRROR=$VMDEBOOTSTRAP_MIRROR"
    echo "APT_MIRROR=$VMDEBOOTSTRAP_APT_MIRROR"
    echo "HELPERS=$VMDEBOOTSTRAP_HELPERS"
} > "$marker"

export_env
echo "FRONTEND=$DEBIAN_FRONTEND" >> "$marker"
mount_proc
mount_support            # the old name: must be harmless when already mounted
mountpoint -q "$root/proc" && echo "proc=mounted" >> "$marker"
mountpoint -q "$root/dev/pts" && echo "devpts=mounted" >> "$marker"
[ -c "$root/dev/null" ] && echo "devnull=char" >> "$marker"
disable_daemons
prepare_apt_source "$VMDEBOOTSTRAP_MIRROR" "$VMDEBOOTSTRAP_DISTRIBUTION"
grep -q "$VMDEBOOTSTRAP_MIRROR" "$root/etc/apt/sources.list" && echo "prepared=build-mirror" >> "$marker"
# openssh-server's postinst wants to start sshd: the block must stop it; its
# Recommends (xauth, ncurses-term) must come in.
apt_install task-ssh-server
in_target sh -c 'pgrep -x sshd >/dev/null' && echo "sshd=running" >> "$marker" || echo "sshd=not-running" >> "$marker"
replace_apt_source
remove_daemon_block
blacklist_qemu_bochs
cleanup
cleanup                  # twice must be fine
mountpoint -q "$root/proc" || echo "proc=unmounted" >> "$marker"
echo "done=yes" >> "$marker"
