"""Step "finish": the last work inside the target, then the build's traces scrubbed.

Reads: settings.update_initramfs, .keep_apt_lists, what the outputs want downloaded.
Writes: the outputs' downloads (unpacked into the work directory's ``downloads``; the
ISO's offline archive's .debs), a fresh initramfs when its inputs changed.  Undoes: nothing.

``run``: the packages the outputs need from the target's archive without installing
them (downloads.py: the ISO's GRUB and ISOLINUX, its offline archive), ``apt-get
clean``, live-config's settings and locale, and ``update-initramfs -u``, inside the
chroot with its API filesystems mounted.

``scrub`` (after the chroot session has ended): what must not travel from the build
into every copy of the image (reliability.md §3.10): the host's resolv.conf
(debootstrap copies it), the machine-id (systemd makes one at first boot), SSH host
keys (regenerated at first boot by a small unit), apt lists that belong to the build
mirror, and the qemu-user interpreter a foreign build copied in; then the build's own
state (logs, caches, backups: reproducible.BUILD_STATE) and every mtime clamped to the
build's epoch, so that the same inputs give the same tree (docs/reproducible.md).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import stat
from pathlib import Path

from .. import downloads, outputs, reproducible
from ..chroot import exists_in, has_unit, host_resolv_conf, target_path, write_file
from ..context import Context
from ..outputs import offline
from . import system
from .bootstrap import NO_VALID_UNTIL_CONF

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


def initramfs_is_current(root: Path, image: str = "vmlinuz") -> bool:
    """Whether every kernel's initrd is newer than all it is made from; ``image`` is the
    kernel's file name on the architecture (architectures.py)."""
    kernels = sorted(target_path(root, "/boot").glob(f"{image}-*"))
    initrds = [target_path(root, "/boot") / f"initrd.img-{k.name[len(image) + 1:]}" for k in kernels]
    if not kernels or not all(i.exists() for i in initrds):
        return False
    oldest_initrd = min(i.stat().st_mtime for i in initrds)
    return all(_newest_mtime(target_path(root, p)) <= oldest_initrd for p in INITRAMFS_INPUTS)


def run(ctx: Context) -> None:
    root, run = ctx.root, ctx.runner.run
    settings = ctx.settings
    for name, kind in outputs.by_name().items():
        if name in settings.outputs and kind.downloads(settings):
            downloads.unpacked(ctx, name, kind.downloads(settings))
    if offline.wanted(ctx):
        downloads.with_dependencies(ctx, "iso", offline.package_sets(settings), offline.kernel_packages(ctx),
                                    ctx.workdir / offline.DEBS)
    run(["apt-get", "clean"], chroot=root)
    pregenerate_live_locales(ctx)
    keep_live_config_off_the_accounts(ctx)
    if not ctx.settings.update_initramfs:
        return
    if not exists_in(root, "/usr/sbin/update-initramfs"):
        log.info("no update-initramfs in the image (no kernel or initramfs-tools); skipped")
    elif initramfs_is_current(root, ctx.settings.arch.kernel_image):
        log.info("the initramfs is newer than everything it is made from; not regenerated")
    else:
        run(["update-initramfs", "-u"], chroot=root)


LIVE_CONFIG_LOCALES = "/usr/lib/live/config/0050-locales"


def live_locales(kernel_append: str) -> list[str]:
    """The locales live-config will set up: locales=A,B on the kernel command line, else its default."""
    for word in kernel_append.split():
        if word.startswith("locales="):
            return [name for name in word.removeprefix("locales=").split(",") if name]
    return ["en_US.UTF-8"]


def pregenerate_live_locales(ctx: Context) -> None:
    """live-config's locales component runs ``locale-gen --keep-existing`` at every boot: what
    is not generated yet is compiled then, some 7 s of a QEMU boot (the trixie live ISO's
    live-config took 12.5 s instead of 19.1 s with its locale made here) and seconds on a
    real machine.  Made once here, the boot finds it."""
    root = ctx.root
    locale_gen = target_path(root, "/etc/locale.gen")
    if not (exists_in(root, LIVE_CONFIG_LOCALES) and exists_in(root, "/usr/sbin/locale-gen") and locale_gen.exists()):
        return
    text = locale_gen.read_text()
    for name in live_locales(ctx.settings.kernel_append):
        charset = name.partition(".")[2] or "ISO-8859-1"
        text = re.sub(rf"(?m)^#\s*{re.escape(name)} {re.escape(charset)}$", f"{name} {charset}", text)
    locale_gen.write_text(text)
    ctx.runner.run(["locale-gen", "--keep-existing"], chroot=root)


LIVE_CONFIG_COMPONENTS = "/lib/live/config"
LIVE_CONFIG_STATE = "/var/lib/live/config"
LIVE_CONFIG_CONF = "/etc/live/config.conf.d/vmdebootstrap.conf"
# live-config's components that make accounts at every boot: user-setup and
# live-debconfig_passwd create LIVE_USERNAME ("user", password "live") when it is missing,
# and sudo gives LIVE_USERNAME passwordless sudo (NOPASSWD: ALL in /etc/sudoers.d/live).
# A component skips itself when its state file exists (component_was_executed), whatever
# the kernel command line says; "components" there would discard a nocomponents setting.
LIVE_CONFIG_ACCOUNT_COMPONENTS = ("user-setup", "live-debconfig_passwd", "sudo")


def keep_live_config_off_the_accounts(ctx: Context) -> None:
    """With --user, the accounts are the build's: live-config makes no user of its own and
    gives nobody passwordless sudo; its other components (a display manager's autologin)
    know the first --user as the live user."""
    root, users = ctx.root, ctx.settings.users
    if not users or not exists_in(root, LIVE_CONFIG_COMPONENTS):
        return
    write_file(root, LIVE_CONFIG_CONF, "# Written by vmdebootstrap: the accounts are the build's (--user).\n"
                                       f'LIVE_USERNAME="{users[0].name}"\n')
    state = target_path(root, LIVE_CONFIG_STATE)
    state.mkdir(parents=True, exist_ok=True)
    for component in LIVE_CONFIG_ACCOUNT_COMPONENTS:
        (state / component).touch()
    log.info("live-config: the live user is %s; its components %s are marked as done", users[0].name,
             ", ".join(LIVE_CONFIG_ACCOUNT_COMPONENTS))


def scrub(ctx: Context) -> None:
    root = ctx.root
    if ctx.interpreter_copy is not None and ctx.interpreter_copy.exists():
        ctx.interpreter_copy.unlink()
    target_path(root, NO_VALID_UNTIL_CONF).unlink(missing_ok=True)
    _own_resolver(ctx)
    moved = system.credentials_to_auth_conf(root)
    if moved:
        log.info("the credentials of %s moved from the apt sources to %s (mode 0600)", ", ".join(moved),
                 system.AUTH_CONF)

    # Empty, not absent: systemd then treats the first boot as such and writes a new id.
    if (root / "etc/machine-id").exists() or (root / "etc").is_dir():
        write_file(root, "/etc/machine-id", "", 0o444)
    dbus_id = root / "var/lib/dbus/machine-id"
    if dbus_id.exists() and not dbus_id.is_symlink():
        dbus_id.unlink()

    keys = sorted(target_path(root, "/etc/ssh").glob("ssh_host_*"))
    for key in keys:
        key.unlink()
    if keys:
        write_file(root, f"/etc/systemd/system/{SSH_KEYGEN_UNIT}", SSH_KEYGEN_SERVICE)
        wants = root / "etc/systemd/system/multi-user.target.wants"
        wants.mkdir(parents=True, exist_ok=True)
        link = wants / SSH_KEYGEN_UNIT
        if not link.is_symlink():
            link.symlink_to(f"/etc/systemd/system/{SSH_KEYGEN_UNIT}")

    if not ctx.settings.keep_apt_lists:
        # The lists are the build's snapshot of the mirror (with --configure-apt not even
        # of the image's sources): stale on the first boot and some 40 MB unpacked.  Like
        # live-build --apt-indices false and mmdebstrap, the image gets none: apt update first.
        lists = target_path(root, "/var/lib/apt/lists")
        for entry in lists.glob("*"):
            if entry.name in ("lock", "partial", "auxfiles"):
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                os.unlink(entry)
    _normalize(ctx)


# systemd-resolved's postinst moves a regular /etc/resolv.conf here -- the host's, lent to the
# build -- and its postrm moves it back when no resolver is running: the host's name servers
# would come back as the image's.  Without the file that postrm writes an empty resolv.conf.
RESOLVED_BACKUP = "/etc/.resolv.conf.systemd-resolved.bak"
# Where packages keep copies of the resolv.conf they found (resolvconf's "original" among them).
RESOLV_COPIES_BELOW = ("/etc", "/var/backups", "/var/lib")


def _own_resolver(ctx: Context) -> None:
    """The image's resolv.conf (systemd-resolved's stub, else empty), and no copy of the host's."""
    root = ctx.root
    resolv = root / "etc/resolv.conf"
    if resolv.is_symlink() or resolv.exists():
        resolv.unlink()
    if has_unit(root, "systemd-resolved.service"):
        resolv.symlink_to("../run/systemd/resolve/stub-resolv.conf")
    else:
        write_file(root, "/etc/resolv.conf", "")
    target_path(root, RESOLVED_BACKUP).unlink(missing_ok=True)
    # What this build lent, and what the host has now (a tree from the stage cache was lent it earlier).
    for copy in copies_of(root, {ctx.lent_dns, host_resolv_conf()}, RESOLV_COPIES_BELOW):
        log.warning("%s held the build host's resolv.conf (a package's copy of it); removed", copy)
        (root / copy.lstrip("/")).unlink()


def copies_of(root: Path, contents: set[str], below: tuple[str, ...]) -> list[str]:
    """The regular files below ``below`` (paths in the image) whose bytes are one of ``contents``
    (blank ones are no one's in particular and never match)."""
    wanted = {text.encode() for text in contents if text.strip()}
    sizes = {len(data) for data in wanted}
    found = []
    for top in below if wanted else ():
        for dirpath, _dirnames, filenames in os.walk(target_path(root, top)):
            for name in filenames:
                path = os.path.join(dirpath, name)
                try:
                    info = os.lstat(path)
                    if not stat.S_ISREG(info.st_mode) or info.st_size not in sizes:
                        continue
                    with open(path, "rb") as stream:
                        same = stream.read() in wanted
                except OSError:
                    continue
                if same:
                    found.append("/" + os.path.relpath(path, root))
    return sorted(found)


def _normalize(ctx: Context) -> None:
    removed = reproducible.remove_build_state(ctx.root)
    log.debug("build state removed: %s", ", ".join(removed) or "none")
    if ctx.epoch is not None:
        changed = reproducible.clamp_mtimes(ctx.root, ctx.epoch)
        log.info("%d files' times clamped to SOURCE_DATE_EPOCH=%d", changed, ctx.epoch)
