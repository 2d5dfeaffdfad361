"""Finishing the root filesystem.

``finish``: ``apt-get clean`` and ``update-initramfs -u`` (§3.6 of the old tool),
inside the chroot with its API filesystems mounted.

``scrub_identity``: what must not travel from the build into every copy of the
image (reliability.md §3.10): the host's resolv.conf (debootstrap copies it), the
machine-id (systemd makes one at first boot), SSH host keys (regenerated at first
boot by a small unit), apt lists that belong to the build mirror, and the qemu-user
interpreter a foreign build copied in.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from ..chroot import exists_in, has_unit, inside, write_file
from ..context import Context

log = logging.getLogger("vmdebootstrap")

SSH_KEYGEN_UNIT = "vmdebootstrap-ssh-host-keys.service"
SSH_KEYGEN_SERVICE = """\
[Unit]
Description=Generate SSH host keys on the first boot (vmdebootstrap removed the build's keys)
Before=ssh.service
ConditionPathExistsGlob=!/etc/ssh/ssh_host_*_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
WantedBy=multi-user.target
"""


# What an initramfs is made from: if none changed after every initrd was written, a new
# one would be the same (and under qemu-user emulation it costs minutes).  Packages that
# bring hooks, modules or firmware trigger initramfs-tools themselves; this catches what
# a customisation hook changed by hand.  (dpkg's status file is no guide: dpkg rewrites it
# after running the trigger.)
INITRAMFS_INPUTS = ("/etc/initramfs-tools", "/usr/share/initramfs-tools", "/etc/modprobe.d",
                    "/usr/lib/modules", "/usr/lib/firmware", "/etc/crypttab", "/etc/fstab")


def _newest_mtime(path: Path) -> float:
    if not path.exists():
        return 0.0
    newest = path.lstat().st_mtime
    if path.is_dir() and not path.is_symlink():
        for dirpath, dirnames, filenames in os.walk(path):
            for name in dirnames + filenames:
                newest = max(newest, os.lstat(os.path.join(dirpath, name)).st_mtime)
    return newest


def initramfs_is_current(root: Path) -> bool:
    kernels = sorted(inside(root, "/boot").glob("vmlinuz-*"))
    initrds = [inside(root, "/boot") / f"initrd.img-{k.name[len('vmlinuz-'):]}" for k in kernels]
    if not kernels or not all(i.exists() for i in initrds):
        return False
    oldest_initrd = min(i.stat().st_mtime for i in initrds)
    return all(_newest_mtime(inside(root, p)) <= oldest_initrd for p in INITRAMFS_INPUTS)


def finish(ctx: Context) -> None:
    root, run = ctx.root, ctx.runner.run
    run(["apt-get", "clean"], chroot=root)
    if not ctx.settings.flag("update-initramfs"):
        return
    if not exists_in(root, "/usr/sbin/update-initramfs"):
        log.info("no update-initramfs in the image (no kernel or initramfs-tools); skipped")
    elif initramfs_is_current(root):
        log.info("the initramfs is newer than everything it is made from; not regenerated")
    else:
        run(["update-initramfs", "-u"], chroot=root)


def scrub_identity(ctx: Context) -> None:
    root = ctx.root
    if ctx.interpreter_in_target is not None and ctx.interpreter_in_target.exists():
        ctx.interpreter_in_target.unlink()
    resolved = has_unit(root, "systemd-resolved.service")
    resolv = root / "etc/resolv.conf"
    if resolv.is_symlink() or resolv.exists():
        resolv.unlink()
    if resolved:
        resolv.symlink_to("../run/systemd/resolve/stub-resolv.conf")
    else:
        write_file(root, "/etc/resolv.conf", "")

    # Empty, not absent: systemd then treats the first boot as such and writes a new id.
    if (root / "etc/machine-id").exists() or (root / "etc").is_dir():
        write_file(root, "/etc/machine-id", "", 0o444)
    dbus_id = root / "var/lib/dbus/machine-id"
    if dbus_id.exists() and not dbus_id.is_symlink():
        dbus_id.unlink()

    keys = sorted(inside(root, "/etc/ssh").glob("ssh_host_*"))
    for key in keys:
        key.unlink()
    if keys:
        write_file(root, f"/etc/systemd/system/{SSH_KEYGEN_UNIT}", SSH_KEYGEN_SERVICE)
        wants = root / "etc/systemd/system/multi-user.target.wants"
        wants.mkdir(parents=True, exist_ok=True)
        link = wants / SSH_KEYGEN_UNIT
        if not link.is_symlink():
            link.symlink_to(f"/etc/systemd/system/{SSH_KEYGEN_UNIT}")

    if not ctx.settings.flag("keep-apt-lists"):
        # The lists are the build's snapshot of the mirror (with --configure-apt not even
        # of the image's sources): stale on the first boot and some 40 MB unpacked.  Like
        # live-build --apt-indices false and mmdebstrap, the image gets none: apt update first.
        lists = inside(root, "/var/lib/apt/lists")
        for entry in lists.glob("*"):
            if entry.name in ("lock", "partial", "auxfiles"):
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                os.unlink(entry)
