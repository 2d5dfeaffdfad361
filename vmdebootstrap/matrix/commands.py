"""The vmdebootstrap command lines of a cell: its build, its boot test and its rebuild.

    build    vmdebootstrap --no-default-configs [--config FILE] --distribution R --arch A
               [the matrix's options] --iso out/<slug>/<slug>.iso ... [--no-boot-test]
               --report out/<slug>/report.json --junit out/<slug>/junit.xml
               --log out/<slug>/build.log [--cache-dir DIR]
    boot     the same settings, --boot-test-only out/<slug>/<slug>.iso, and the report, JUnit
               file and log in out/<slug>/boot/
    rebuild  the build again into out/<slug>/rebuild/, without the stage cache

Every output the cell writes is put into its directory under the cell's name, with the
suffix its config file gave it (a tarball's compression) or the kind's usual one; with an
output axis the cell writes that kind alone.  The build does not boot: its boot job does,
on a runner that can run QEMU.  A cell built twice gets ``--seed`` (its slug) unless it
has one, so that clear-text passwords get the same salt in both builds.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import PurePosixPath

from .. import architectures, boards, bootloaders, releases
from ..bootloaders import chosen_bootloader
from ..options import OPTIONS, OUTPUTS, Option
from .spec import Cell

TOOL = "vmdebootstrap"
DEFAULT_SUFFIX = {"iso": ".iso", "image": ".img", "tarball": ".tar.gz"}
# Set per job, never from the matrix's options as they stand.
_PER_JOB = frozenset({*(option.name for option in OUTPUTS), "boot-test"})


def option_args(options: Mapping[str, object]) -> list[str]:
    """The command-line form of options, in the option table's order."""
    argv: list[str] = []
    for option in OPTIONS:
        if option.name in options and option.name not in _PER_JOB:
            argv.extend(_option_arg(option, options[option.name]))
    return argv


def _option_arg(option: Option, value: object) -> list[str]:
    if option.kind == "bool":
        return [f"--{option.name}" if value else f"--no-{option.name}"]
    if isinstance(value, list):
        return [arg for item in value for arg in (f"--{option.name}", str(item))]
    return [f"--{option.name}", str(value)]


def _common(cell: Cell, tool: str) -> list[str]:
    config = ["--config", cell.variant.file] if cell.variant.file else []
    return [tool, "--no-default-configs", *config, "--distribution", cell.release, "--arch", cell.arch,
            *option_args(cell.options)]


def _records(directory: str) -> list[str]:
    return ["--report", f"{directory}/report.json", "--junit", f"{directory}/junit.xml",
            "--log", f"{directory}/build.log"]


def output_paths(cell: Cell, directory: str) -> dict[str, str]:
    """Output option -> its path in ``directory``; "" switches off one the config file names."""
    found: dict[str, str] = {}
    for option in OUTPUTS:
        configured = str(cell.setting(option.name) or "")
        if cell.output and option.name != cell.output:
            if configured:
                found[option.name] = ""
        elif configured or cell.output:
            found[option.name] = _path(option, directory, cell.slug, configured)
    return found


def _path(option: Option, directory: str, slug: str, configured: str) -> str:
    if option.output == "directory":
        return f"{directory}/{option.name}"
    if not configured:
        return f"{directory}/{slug}{DEFAULT_SUFFIX[option.name]}"
    parts = PurePosixPath(configured).name.split(".")
    suffix = parts[-2:] if len(parts) > 2 and parts[-2] == "tar" else parts[-1:] if len(parts) > 1 else []
    return f"{directory}/{slug}" + "".join(f".{part}" for part in suffix)


def build_argv(cell: Cell, tool: str = TOOL, cache_dir: str | None = None, *, rebuild: bool = False,
               records: bool = True) -> list[str]:
    """``records``: with the report, JUnit file and log (whose directory must exist)."""
    directory = f"{cell.directory}/rebuild" if rebuild else cell.directory
    argv = _common(cell, tool)
    for name, path in output_paths(cell, directory).items():
        argv.extend([f"--{name}", path])
    if cell.boots or cell.variant.config.get("boot-test"):  # its boot job boots it, or nothing does
        argv.append("--no-boot-test")
    if cell.reproducible and not cell.setting("seed"):
        argv.extend(["--seed", cell.slug])
    if rebuild:
        argv.append("--no-stage-cache")
    if records:
        argv.extend(_records(directory))
    return argv + (["--cache-dir", cache_dir] if cache_dir is not None else [])


def _bootable(cell: Cell) -> tuple[str, str]:
    paths = output_paths(cell, cell.directory)
    return next((option.name, paths[option.name]) for option in OUTPUTS if option.boots and paths.get(option.name))


def bootable(cell: Cell) -> str:
    """The ISO or disk image the boot job boots (the disk image when the cell writes both)."""
    return _bootable(cell)[1]


def boot_argv(cell: Cell, tool: str = TOOL) -> list[str]:
    firmwares = [arg for name in boot_firmwares(cell) for arg in ("--boot-firmware", name)]
    return [*_common(cell, tool), *firmwares, "--boot-test-only", bootable(cell), *_records(f"{cell.directory}/boot")]


def boot_firmwares(cell: Cell) -> list[str]:
    """What --boot-test-only must be told to boot a disk image with: the firmware its bootloader
    is for, as the build's own --boot-test would choose it (settings.py); nothing for an ISO
    (both firmwares, as the build's) or when the matrix or config file names them."""
    arch = architectures.ARCHITECTURES[cell.arch]
    if cell.setting("boot-firmware") or arch.emulator is None or _bootable(cell)[0] != "image":
        return []
    board = boards.BOARDS.get(str(cell.setting("board") or ""))
    name = str(cell.setting("bootloader") or "") or (board.bootloader if board else "") or chosen_bootloader(
        "", bool(cell.setting("use-uefi")), bool(cell.setting("grub")), bool(cell.setting("extlinux")), arch)
    entry = bootloaders.REGISTRY.get(name)
    family = entry.firmware if entry is not None else ""
    names = [firmware.name for firmware in arch.emulator.firmwares if firmware.family == family]
    if family == "uefi":
        codename = releases.codename(cell.release)
        secure = bool(cell.setting("secure-boot")) and arch.efi is not None and arch.efi.signed and \
            codename in releases.known() and releases.get(codename).secure_boot
        return ["uefi-secure" if secure and "uefi-secure" in names else "uefi"]
    return names[:1]
