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


def finish(ctx: Context) -> None:
    root, run = ctx.root, ctx.runner.run
    run(["apt-get", "clean"], chroot=root)
    if ctx.settings.flag("update-initramfs"):
        if exists_in(root, "/usr/sbin/update-initramfs"):
            run(["update-initramfs", "-u"], chroot=root)
        else:
            log.info("no update-initramfs in the image (no kernel or initramfs-tools); skipped")


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

    if ctx.settings.flag("configure-apt"):
        # The lists describe the build mirror; the image's sources now name another.
        lists = inside(root, "/var/lib/apt/lists")
        for entry in lists.glob("*"):
            if entry.name in ("lock", "partial", "auxfiles"):
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                os.unlink(entry)
