"""What GRUB needs on a disk image, for BIOS (grub_pc.py) and UEFI (grub_efi.py) alike.

GRUB comes from the image itself (grub-pc or grub-efi-*, installed by the packages
step), and its tools run inside the tree the image's filesystems are image from.
grub-install is not used: it needs the partitions as the kernel's devices (and the ESP
mounted as vfat), and the tree is no device at all.  Instead the steps grub-install
performs are done explicitly, and each is visible here:

* ``update-grub`` writes grub.cfg.  It asks grub-probe about the devices of / and
  /boot, and grub-mkrelpath where a path lies on its filesystem; for this one run both
  are stand-ins that answer what the finished image will say (the filesystems' UUIDs
  and types, the partition table, the partitions, /boot as a filesystem of its own), so
  grub.cfg names the root by its UUID, never a build-time device (elbe#431,
  grml-debootstrap#87), and finds the kernel on a separate /boot;
* the modules are copied to /boot/grub/<platform>, and ``grub-mkimage`` makes the core
  image with a small embedded configuration that finds the /boot filesystem by UUID;
  the BIOS and UEFI modules place it.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
from pathlib import Path

from ..chroot import target_path, write_file
from ..context import Context
from ..disk import Image
from ..errors import BuildError

log = logging.getLogger("vmdebootstrap")

GRUB_PROBE = "/usr/sbin/grub-probe"
GRUB_MKRELPATH = "/usr/bin/grub-mkrelpath"
PROBE_DEVICES = {"root": "/dev/vmdebootstrap-root", "boot": "/dev/vmdebootstrap-boot"}
FS_MODULES = {"ext2": "ext2", "ext3": "ext2", "ext4": "ext2", "btrfs": "btrfs", "xfs": "xfs", "vfat": "fat"}


def prepare(ctx: Context, image: Image) -> None:
    """GRUB's defaults and grub.cfg: what both platforms share."""
    write_grub_defaults(ctx)
    update_grub(ctx, image)


def kernel_console_args(ctx: Context) -> str:
    return f"console=tty0 console={ctx.settings.serial_port}"


def probe_answers(image: Image) -> dict[str, dict[str, str]]:
    """What grub-probe would say of the finished image's root (and /boot) filesystems, by device."""
    answers = {}
    for role, device in PROBE_DEVICES.items():
        part = image.layout.by_role(role)
        if part is None:
            continue
        table = image.layout.label
        place = f"hd0,{table}{part.number}"
        answers[device] = {
            "device": device, "fs_uuid": image.uuids[role], "fs": FS_MODULES[part.fstype],
            "fs_label": role, "partuuid": image.part_uuids[role], "partmap": table, "abstraction": "",
            "cryptodisk_uuid": "", "drive": f"({place})", "compatibility_hint": place,
            "hints_string": f"--hint-bios={place} --hint-efi={place} --hint-baremetal=ahci0,{table}{part.number}",
        }
    return answers


def probe_script(image: Image) -> str:
    """A grub-probe for update-grub in the tree: answers from probe_answers, for paths and devices."""
    boot = PROBE_DEVICES["boot"] if image.layout.by_role("boot") else PROBE_DEVICES["root"]
    cases = [f"    '{device}:{target}') echo '{answer}' ;;"
             for device, table in probe_answers(image).items() for target, answer in table.items()]
    return "\n".join([
        "#!/bin/sh",
        "# vmdebootstrap: what grub-probe would say of the finished image (only while update-grub runs)",
        "target= device= arg= given=",
        "while [ $# -gt 0 ]; do",
        '    case "$1" in',
        '    --target=*) target="${1#--target=}" ;;',
        '    -t|--target) shift; target="$1" ;;',
        "    -d|--device) given=1 ;;",
        "    -*) ;;",
        '    *) arg="$1" ;;',
        "    esac",
        "    shift",
        "done",
        'if [ -n "$given" ]; then device="$arg"',
        f'else case "$arg" in /boot|/boot/*) device={boot} ;; *) device={PROBE_DEVICES["root"]} ;; esac; fi',
        'case "$device:$target" in',
        *cases,
        '    *) echo "grub-probe (vmdebootstrap): no answer for $target of $device" >&2; exit 1 ;;',
        "esac",
        "",
    ])


def mkrelpath_script(image: Image) -> str:
    """A grub-mkrelpath for update-grub in the tree: a path relative to the filesystem it will be on."""
    # As grub-mkrelpath: a filesystem's own root is the empty string, so that 10_linux's
    # "${rel_dirname}/${basename}" reads /vmlinuz-… on a separate /boot, never //vmlinuz-….
    boot = ['    /boot) echo ;;', '    /boot/*) echo "${path#/boot}" ;;'] if image.layout.by_role("boot") else []
    return "\n".join([
        "#!/bin/sh",
        "# vmdebootstrap: where a path will lie on the finished image's filesystems (only while update-grub runs)",
        'for path; do :; done',
        'while [ "${path%/}" != "$path" ]; do path="${path%/}"; done',
        'case "$path" in',
        *boot,
        '    *) echo "$path" ;;',
        "esac",
        "",
    ])


def write_grub_defaults(ctx: Context) -> None:
    """/etc/default/grub.d/vmdebootstrap.cfg: the serial console (#782304: only when asked) and
    --kernel-append, for update-grub now and at every later kernel upgrade."""
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
    if settings.kernel_append:  # --kernel-append: checked for what would end the quotes (values.py)
        lines.append(f'GRUB_CMDLINE_LINUX="$GRUB_CMDLINE_LINUX {settings.kernel_append}"')
    lines.append(f'GRUB_TERMINAL="{terminal}"')
    write_file(ctx.root, "/etc/default/grub.d/vmdebootstrap.cfg", "\n".join(lines) + "\n")


def update_grub(ctx: Context, image: Image) -> None:
    stand_ins = {GRUB_PROBE: probe_script(image), GRUB_MKRELPATH: mkrelpath_script(image)}
    dev = ctx.root / "dev"  # the chroot's own tmpfs: 10_linux names the root by UUID if its link exists
    (dev / "disk/by-uuid").mkdir(parents=True, exist_ok=True)
    for role, device in PROBE_DEVICES.items():
        if role in image.uuids:
            (dev / device.removeprefix("/dev/")).touch()
            (dev / "disk/by-uuid" / image.uuids[role]).symlink_to(device)
    with contextlib.ExitStack() as undo:
        for path, script in stand_ins.items():
            real = target_path(ctx.root, path)
            aside = real.with_name(real.name + ".vmdebootstrap-real")
            real.rename(aside)
            undo.callback(aside.rename, real)
            undo.callback(target_path(ctx.root, path).unlink, missing_ok=True)
            write_file(ctx.root, path, script, 0o755)
        ctx.runner.run(["update-grub"], chroot=ctx.root)
    config = target_path(ctx.root, "/boot/grub/grub.cfg")
    text = config.read_text() if config.exists() else ""
    if "/dev/vmdebootstrap-" in text or "/dev/loop" in text:
        raise BuildError("update-grub wrote a build-time device into /boot/grub/grub.cfg")
    if "menuentry " not in text:
        raise BuildError("update-grub wrote no menu entry into /boot/grub/grub.cfg (is there a kernel?)")


def copy_modules(ctx: Context, platform: str) -> None:
    """GRUB's modules for ``platform`` into /boot/grub/<platform>, as grub-install copies them."""
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


def early_config(image: Image) -> str:
    holder = image.layout.boot_holder
    prefix = "/grub" if holder.role == "boot" else "/boot/grub"
    return f"search.fs_uuid {image.uuids[holder.role]} root\nset prefix=($root)'{prefix}'\n"


def make_core_image(ctx: Context, image: Image, platform: str, output: str, extra: list[str]) -> Path:
    """grub-mkimage in the image: the core image for ``platform`` at ``output`` (a path inside)."""
    copy_modules(ctx, platform)
    write_file(ctx.root, f"/boot/grub/{platform}/load.cfg", early_config(image))
    fs_modules = sorted({FS_MODULES[image.layout.boot_holder.fstype]})
    modules = [*extra, "part_msdos", "part_gpt", *fs_modules, "search_fs_uuid"]
    ctx.runner.run(["grub-mkimage", "--format", platform, "--directory", f"/usr/lib/grub/{platform}",
                    "--config", f"/boot/grub/{platform}/load.cfg", "--prefix", "/boot/grub",
                    "--output", output, *modules], chroot=ctx.root)
    return target_path(ctx.root, output)
