"""What GRUB needs on a disk image, for BIOS (grub_pc.py) and UEFI (grub_efi.py) alike.

GRUB comes from the image itself (grub-pc or grub-efi-*, installed by the packages
step), and its tools run inside the image.  grub-install is not used: it needs the
partitions as the kernel's partition devices (and the ESP mounted as vfat), which a
build host's kernel may lack.  Instead the steps grub-install performs are done
explicitly, and each is visible here:

* the modules are copied to /boot/grub/<platform> and ``update-grub`` writes
  grub.cfg.  It sees the root as the loop device of its partition, so the chroot's
  private /dev gets that node and /dev/disk/by-uuid/<uuid>: grub.cfg then says
  ``root=UUID=...``, never a build-time loop device (elbe#431, grml-debootstrap#87);
* ``grub-mkimage`` makes the core image with a small embedded configuration that
  finds the /boot filesystem by UUID; the BIOS and UEFI modules place it.
"""

from __future__ import annotations

import logging
import os
import shutil
import stat
from pathlib import Path

from ..chroot import target_path, write_file
from ..context import Context
from ..disk import Image
from ..errors import BuildError

log = logging.getLogger("vmdebootstrap")

BUILD_ONLY_DEFAULTS = "/etc/default/grub.d/zz-vmdebootstrap-build.cfg"
FS_MODULES = {"ext2": "ext2", "ext3": "ext2", "ext4": "ext2", "btrfs": "btrfs", "xfs": "xfs", "vfat": "fat"}


def prepare(ctx: Context, made: Image) -> None:
    """The devices in the chroot, GRUB's defaults and grub.cfg: what both platforms share."""
    expose_devices(ctx, made)
    write_grub_defaults(ctx)
    update_grub(ctx, made)


def kernel_console_args(ctx: Context) -> str:
    return f"console=tty0 console={ctx.settings.arch.serial_console},115200n8"


def expose_devices(ctx: Context, made: Image) -> None:
    """The partitions' loop devices and their by-uuid links in the chroot's own /dev (a tmpfs)."""
    dev = ctx.root / "dev"
    by_uuid = dev / "disk/by-uuid"
    by_uuid.mkdir(parents=True, exist_ok=True)
    for role, device in made.devices.items():
        node = dev / os.path.basename(device.path)
        if not node.exists():
            os.mknod(node, 0o600 | stat.S_IFBLK, os.stat(device.path).st_rdev)
        link = by_uuid / made.uuids[role]
        if not link.is_symlink():
            link.symlink_to(f"../../{node.name}")


def write_grub_defaults(ctx: Context) -> None:
    """/etc/default/grub.d/vmdebootstrap.cfg: the serial console (#782304: only when asked)."""
    settings = ctx.settings
    lines = ["# Written by vmdebootstrap."]
    # A text menu: the graphical one's font lookup in 00_header aborts update-grub when
    # grub-probe cannot resolve the build's loop device (it did on arm64).
    terminal = "console"
    if settings.serial_console:
        lines.append(f'GRUB_CMDLINE_LINUX="$GRUB_CMDLINE_LINUX {kernel_console_args(ctx)}"')
        if settings.arch.pc_bios:  # UEFI on ARM shows its console on the serial port
            terminal = "console serial"
            lines.append('GRUB_SERIAL_COMMAND="serial --speed=115200 --unit=0 --word=8 --parity=no --stop=1"')
    lines.append(f'GRUB_TERMINAL="{terminal}"')
    write_file(ctx.root, "/etc/default/grub.d/vmdebootstrap.cfg", "\n".join(lines) + "\n")


def update_grub(ctx: Context, made: Image) -> None:
    # 10_linux writes no entry at all for a root on /dev/loop[0-9] ("we can't cope with
    # devices loop-mounted from files"): name the root by its UUID link for this one run.
    override = write_file(ctx.root, BUILD_ONLY_DEFAULTS, f"GRUB_DEVICE=/dev/disk/by-uuid/{made.uuids['root']}\n")
    try:
        ctx.runner.run(["update-grub"], chroot=ctx.root)
    finally:
        override.unlink()
    config = target_path(ctx.root, "/boot/grub/grub.cfg")
    text = config.read_text() if config.exists() else ""
    if "/dev/loop" in text:
        raise BuildError("update-grub wrote a build-time loop device into /boot/grub/grub.cfg")
    if "menuentry " not in text:
        raise BuildError("update-grub wrote no menu entry into /boot/grub/grub.cfg (is there a kernel?)")


def _copy_modules(ctx: Context, platform: str) -> None:
    source = target_path(ctx.root, f"/usr/lib/grub/{platform}")
    if not source.is_dir():
        raise BuildError(f"the image has no GRUB modules for {platform} ({source} is missing)")
    target = target_path(ctx.root, "/boot/grub") / platform
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for path in source.iterdir():
        if path.suffix in (".mod", ".lst", ".img", ".o") or path.name == "modinfo.sh":
            shutil.copy2(path, target / path.name)


def early_config(made: Image) -> str:
    holder = made.layout.boot_holder
    prefix = "/grub" if holder.role == "boot" else "/boot/grub"
    return f"search.fs_uuid {made.uuids[holder.role]} root\nset prefix=($root)'{prefix}'\n"


def make_core_image(ctx: Context, made: Image, platform: str, output: str, extra: list[str]) -> Path:
    """grub-mkimage in the image: the core image for ``platform`` at ``output`` (a path inside)."""
    _copy_modules(ctx, platform)
    write_file(ctx.root, f"/boot/grub/{platform}/load.cfg", early_config(made))
    fs_modules = sorted({FS_MODULES[made.layout.boot_holder.fstype]})
    modules = [*extra, "part_msdos", "part_gpt", *fs_modules, "search_fs_uuid"]
    ctx.runner.run(["grub-mkimage", "--format", platform, "--directory", f"/usr/lib/grub/{platform}",
                    "--config", f"/boot/grub/{platform}/load.cfg", "--prefix", "/boot/grub",
                    "--output", output, *modules], chroot=ctx.root)
    return target_path(ctx.root, output)
