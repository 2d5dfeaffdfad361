"""Validated, typed, frozen settings: what a build is asked to do.

``validate()`` turns the raw option values (cli.py) into one ``Settings`` object.  It
applies the old tool's checks first, in its order and words (vmdebootstrap-features.md
§1.3), then parses every option with the parser its table entry names (options.py), then
the checks that relate options to each other.  It reads the filesystem but changes
nothing: every UsageError comes before any side effect.  Code after validation reads
attributes of ``Settings``, never option names.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal, TypeVar

from . import architectures, boards, bootloaders, disk, hooks, identity, releases, values
from .architectures import Architecture
from .boards import Board
from .errors import UsageError
from .options import BY_NAME, OPTIONS, OUTPUTS, parsed, redacted
from .releases import Release
from .values import Bootstrapper, Compression, Invalid, User

MIN_IMAGE_SIZE = 100_000_000  # bytes; #811464
OLD_DEFAULT_ESP_SIZE = 5 * 1024 * 1024
# parted's partition flags (parted(8), "set").
PARTED_FLAGS = ("boot", "root", "swap", "hidden", "raid", "lvm", "lba", "legacy_boot", "irst", "esp", "palo",
                "bios_grub", "msftres", "msftdata", "prep", "diag", "chromeos_kernel", "bls_boot")


@dataclasses.dataclass(frozen=True)
class Mirrors:
    build: str  # --mirror: where the build gets its packages
    image: str  # --apt-mirror, else --mirror: what the booted image's apt uses
    components: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Bootstrap:
    tool: Bootstrapper
    variant: str
    extra_options: tuple[str, ...]  # --debootstrapopts "a=b c" -> ("--a=b", "--c")
    keyring: Path | None
    check_gpg: bool  # False with --no-check-gpg (or --debootstrapopts no-check-gpg)
    check_valid_until: bool  # False with --no-check-valid-until: an expired Release file is taken
    script: Path | None  # debootstrap's script for a release it does not know yet; None: its own


@dataclasses.dataclass(frozen=True)
class BootTest:
    firmwares: tuple[str, ...]
    timeout: int
    user: User  # logs in: the first --user with a plaintext password
    image: Path | None  # --boot-test-only FILE; None: what this build makes
    display: bool = False  # --boot-test-display: a desktop's display manager, and a screenshot


@dataclasses.dataclass(frozen=True)
class Logging:
    path: Path | None
    level: str
    mode: int
    verbose: bool


@dataclasses.dataclass(frozen=True)
class Settings:
    release: Release
    arch: Architecture
    foreign: bool  # the target's programs run under qemu-user emulation
    mirrors: Mirrors
    bootstrap: Bootstrap
    outputs: Mapping[str, Path]  # output kind (options.py) -> absolute path, in the table's order
    disk: disk.Request | None  # with --image
    board: Board | None  # --board: what the image is for (its payloads: bootloaders/u_boot.py)
    packages: tuple[str, ...]  # --package; steps/packages.py adds what the build needs
    custom_packages: tuple[Path, ...]
    recommends: bool
    kernel_package: str  # "" with --no-kernel
    acpid: bool
    sudo: bool
    update_initramfs: bool
    hostname: str
    networkd: bool
    dhcp: bool
    configure_apt: bool
    keep_apt_lists: bool
    hook: Path | None
    serial_console: bool
    serial_port: str  # as console= names it, with its speed: the --serial-port, the --board's or the first port
    serial_console_command: str
    users: tuple[User, ...]
    root_password: User | None
    lock_root: bool  # --lock-root-password said so (root is locked without it too, with a warning)
    empty_root: bool  # --empty-root-password: the old default, asked for
    force_password_change: bool
    squash_compression: Compression
    secure_boot: bool  # the ISO and UEFI images boot through shim and signed GRUB
    secure_boot_note: str  # why not, when --secure-boot asked for it but the release or architecture has no chain
    iso_label: str
    iso_archive: bool  # the ISO's offline archive, asked for (outputs/offline.py: Calamares wants it too)
    kernel_append: str
    boot_test: BootTest | None
    logging: Logging
    report: Path | None  # --report FILE (report.py), absolute
    junit: Path | None  # --junit FILE (junit.py), absolute; written when the report would be
    workdir: Path | None
    cache_dir: Path | None
    stage_cache: bool
    cache_entries: int  # stages kept (and bases), least recently used deleted beyond
    owner: str
    seed: str  # of the identifiers (identity.py): --seed, else derived from what makes the outputs these
    salt_seed: str | None  # what password salts derive from: --seed; None: random salts (passwords.py)
    source_date_epoch: int | None  # --source-date-epoch or SOURCE_DATE_EPOCH; None: the InRelease's Date
    pkglist: bool
    sbom: bool  # the SBOMs (steps/manifest.py)
    dry_run: bool
    notes: tuple[str, ...] = ()  # warnings from reading the settings, logged when the build starts
    # Every option's value as given (defaults < config files < command line), passwords and a
    # URL's credentials redacted, and the config files read: what --report says was asked.
    given: Mapping[str, object] = dataclasses.field(default_factory=dict)
    config_files: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"Settings(arch={self.arch.name!r}, release={self.release.name!r})"

    @property
    def serial_tty(self) -> str:
        """The serial console's device name (ttyS0): the getty's."""
        return self.serial_port.split(",", 1)[0]

    @property
    def root_in_memory(self) -> bool:
        """Whether the target root is a tmpfs of its own (steps/bootstrap.py): a 32-bit program
        under qemu-user reads an ext4 directory through the 64-bit hash offsets the kernel gives
        the 64-bit emulator; glibc cannot fit them in 32 bits and readdir fails with EOVERFLOW.
        dracut-install in trixie's initramfs-tools then silently copies no block drivers into
        an armhf initrd (debos bug 620 is the same failure; tmpfs offsets are small counters)."""
        return self.foreign and self.arch.bits == 32

    @property
    def boot_test_only(self) -> Path | None:
        """--boot-test-only FILE: this run boots FILE and builds nothing."""
        return self.boot_test.image if self.boot_test is not None else None

    @property
    def booted(self) -> tuple[Literal["iso", "disk"], Path] | None:
        """What the boot test boots after the build, and as what (the first output that boots)."""
        for kind, path in self.outputs.items():
            how = BY_NAME[kind].boots
            if how:
                return how, path
        return None


def default_kernel(arch: Architecture, release: Release) -> str:
    """The kernel package an image of ``arch`` gets in ``release`` without --kernel-package."""
    return f"linux-image-{release.kernel_flavours.get(arch.name, arch.kernel_flavour)}"


def find_hook(script: str) -> Path:
    """The hook's path: as given (a config file's is relative to its directory, config.py),
    never looked for elsewhere."""
    path = Path(os.path.abspath(script))
    if not path.exists():
        raise UsageError(f"--customize {script}: no such file")
    return path


def _check_hook(script: str) -> None:
    """An executable file that only root (and whoever runs the build) can change: it runs as root."""
    hook = find_hook(script)
    if not os.access(hook, os.X_OK) or not hook.is_file():
        raise UsageError(f"--customize {script}: not an executable file")
    problem = hooks.why_untrusted(hook, hooks.trusted_owners())
    if problem:
        raise UsageError(f"--customize {script}: refused: {problem}")


# -- the old tool's checks, in its order and words (§1.3) -------------------------------------


def _check_as_the_old_tool(raw: Mapping[str, object], ask: releases.MirrorAnswer | None) -> Release:
    """The old tool's checks of the outputs and the release; returns the release."""
    image, tarball, squash, iso = (str(raw[name]) for name in ("image", "tarball", "squash", "iso"))
    if squash and image:
        raise UsageError("--image can no longer be used with --squash")
    if not any(raw[option.name] for option in OUTPUTS):  # the old tool's words name the old tool's kinds
        raise UsageError("You must give disk image filename or use either a tarball filename or use squash")
    if int(str(raw["size"])) <= MIN_IMAGE_SIZE:
        raise UsageError(f"A size of {raw['size']} bytes is too small for a bootstrap.")
    dist = str(raw["distribution"])
    if not _bootstrappable(dist, Path(str(raw["debootstrap-scripts"]))):
        raise UsageError(f"{dist} is not a valid debootstrap codename.")
    release = releases.resolve(dist, str(raw["distribution-like"]), ask)
    if raw["apt-mirror"] and not raw["configure-apt"]:
        raise UsageError("--apt-mirror requires --configure-apt as well.")
    if raw["convert-qcow2"] and not image:
        raise UsageError("--convert-qcow2 can only be used with --image.")
    if image and tarball:
        raise UsageError("Use --image or --tarball, not both.")
    if squash and tarball:
        raise UsageError("Use --squash or --tarball, not both.")
    if iso and (tarball or image):
        raise UsageError(f"Use --iso or {'--tarball' if tarball else '--image'}, not both.")
    if release.systemd and not raw["systemd-networkd"] and not raw["update-initramfs"]:
        raise UsageError("Disabling systemd-networkd for jessie and later requires updating the initramfs.")
    if not release.ext4_boots and image and raw["roottype"] == "ext4":
        raise UsageError(
            "Wheezy images using ext4 will not be able to boot. Please use --roottype ext2 or --roottype ext3")
    arch = architectures.ARCHITECTURES.get(str(raw["arch"])) if raw["arch"] else architectures.host()
    loader = bootloaders.REGISTRY.get(chosen_bootloader(str(raw["bootloader"] or ""), bool(raw["use-uefi"]),
                                                        bool(raw["grub"]), bool(raw["extlinux"]), arch))
    if image and raw["roottype"] == "btrfs" and loader and "btrfs" in loader.unbootable_roots:
        raise UsageError(f"{loader.name} is not yet supported on btrfs. Use grub.")
    return release


def _bootstrappable(dist: str, scripts: Path) -> bool:
    """debootstrap has a script for ``dist``, or it is a release newer than all it has scripts for."""
    if not re.match(r"^[A-Za-z0-9][A-Za-z0-9._-]*$", dist):
        return False
    if (scripts / dist).is_file():
        return True
    name = releases.codename(dist)
    return name in releases.known() and releases.debootstrap_script(scripts, releases.get(name)) is not None


def _check_uefi_as_the_old_tool(raw: Mapping[str, object], release: Release) -> None:
    arch = architectures.ARCHITECTURES.get(str(raw["arch"])) if raw["arch"] else architectures.host()
    arch_name = str(raw["arch"]) or (arch.name if arch else "")
    # The old default (5 MiB) still appears in dumped old configurations: not an error.
    if raw["esp-size"] not in (BY_NAME["esp-size"].default, OLD_DEFAULT_ESP_SIZE) and not raw["use-uefi"]:
        raise UsageError("You must specify use-uefi for esp-size to have effect")
    if not raw["use-uefi"]:
        return
    if arch is None or arch.efi is None:
        raise UsageError(f"{arch_name} is not a supported UEFI architecture")
    if raw["bootsize"] or raw["bootoffset"]:
        raise UsageError("A separate boot partition is not supported with UEFI")
    if not raw["grub"]:
        raise UsageError("UEFI without Grub is not supported.")
    if release.uefi_arches is not None and arch_name not in release.uefi_arches:
        raise UsageError(f"Only {' and '.join(release.uefi_arches)} supports UEFI in {release.name.capitalize()}")


# -- every option through its parser ---------------------------------------------------------------


T = TypeVar("T")


class Parsed:
    """Every setting's typed value by option name: validation's own view, never a Settings field."""

    def __init__(self, raw: Mapping[str, object]) -> None:
        self.values: dict[str, object] = {}
        for option in OPTIONS:
            if option.cli_only:
                continue
            try:
                self.values[option.name] = parsed(option, raw[option.name])
            except Invalid as exc:
                raise UsageError(f"--{option.name} {raw[option.name]}: {exc}") from None

    def get(self, name: str, cls: type[T]) -> T:
        value = self.values[name]
        if not isinstance(value, cls):
            raise TypeError(f"--{name}: parsed into {type(value).__name__}, not {cls.__name__}")
        return value

    def optional(self, name: str, cls: type[T]) -> T | None:
        return None if self.values[name] is None else self.get(name, cls)

    def text(self, name: str) -> str:
        return self.get(name, str)

    def flag(self, name: str) -> bool:
        return self.get(name, bool)

    def number(self, name: str) -> int:
        return self.get(name, int)


def _check_output_paths(outputs: Mapping[str, Path]) -> None:
    for kind, path in outputs.items():
        option = f"--{kind}"
        resolved = os.path.realpath(path)
        if resolved in ("/", "/dev", "/proc", "/sys", "/usr", "/etc", os.path.expanduser("~")):
            raise UsageError(f"{option} {path}: refusing to write into {resolved}")
        # Missing directories are created (and removed again if the build fails), below an existing one.
        ancestor = os.path.dirname(resolved)
        while not os.path.exists(ancestor):
            ancestor = os.path.dirname(ancestor)
        if not os.path.isdir(ancestor):
            raise UsageError(f"{option} {path}: {ancestor} is not a directory")
        if BY_NAME[kind].output == "directory":
            if os.path.exists(resolved) and not os.path.isdir(resolved):
                raise UsageError(f"{option} {path}: exists and is not a directory")
        elif os.path.isdir(resolved):
            raise UsageError(f"{option} {path}: is a directory")


def _outputs(v: Parsed) -> dict[str, Path]:
    return {option.name: Path(os.path.abspath(path)) for option in OUTPUTS
            if (path := v.optional(option.name, Path)) is not None}


def chosen_bootloader(bootloader: str, use_uefi: bool, grub: bool, extlinux: bool, arch: Architecture | None) -> str:
    """--bootloader, else what the old options say (--extlinux is on by default, as it was).
    Where there is no PC BIOS, extlinux means the file u-boot reads: /boot/extlinux/extlinux.conf."""
    if bootloader:
        return bootloader
    if use_uefi or grub:
        return "grub-efi" if use_uefi else "grub-pc"
    if not extlinux:
        return "none"
    return "extlinux" if arch is None or arch.pc_bios else "u-boot"


def _disk_request(v: Parsed, arch: Architecture) -> disk.Request:
    """The disk image's layout and bootloader; raises when they do not go together or do not fit."""
    bootloader = chosen_bootloader(v.text("bootloader"), v.flag("use-uefi"), v.flag("grub"), v.flag("extlinux"), arch)
    if bootloader not in bootloaders.REGISTRY:
        raise UsageError(f"--bootloader {bootloader}: use one of {', '.join(bootloaders.NAMES)}")
    entry = bootloaders.REGISTRY[bootloader]
    board = boards.BOARDS.get(v.text("board"))
    if entry.name == "raspi" and (board is None or not board.firmware_partition):
        raise UsageError("--bootloader raspi is a Raspberry Pi's: give --board " + " or ".join(
            b.name for b in boards.BOARDS.values() if b.bootloader == "raspi"))
    boot_fs = v.text("boottype") if v.number("bootsize") else ""
    if v.text("bootflag") and v.text("bootflag") not in PARTED_FLAGS:
        raise UsageError(f"--bootflag {v.text('bootflag')}: not a parted flag ({', '.join(PARTED_FLAGS)})")
    _check_bootloader(entry, arch, v.text("roottype"), boot_fs, v.flag("mbr"))
    if v.flag("uefi-ia32") and not (entry.esp and arch.efi_companion):
        raise UsageError("--uefi-ia32 adds 32-bit UEFI GRUB to an amd64 --use-uefi image")
    request = disk.Request(
        size=v.number("size"), table=v.text("part-type"), root_fs=v.text("roottype"),
        boot_size=v.number("bootsize"), boot_fs=boot_fs, offset=v.number("bootoffset"), flag=v.text("bootflag"),
        swap=v.number("swap"), esp_size=v.number("esp-size") if entry.esp else 0, bootloader=bootloader,
        bios_grub=entry.bios_grub and arch.pc_bios, legacy_boot=entry.legacy_boot, uefi_ia32=v.flag("uefi-ia32"),
        mbr=v.flag("mbr"), sparse=v.flag("sparse"),
        firmware_size=board.firmware_partition if board else 0, labels=board.labels if board else (),
        # The old tool wrote raw bytes into a FILE.qcow2 without --convert-qcow2; the name says qcow2.
        qcow2=v.flag("convert-qcow2") or v.get("image", Path).suffix == ".qcow2",
    )
    disk.plan(request)  # raises when the partitions do not fit
    return request


def _check_bootloader(entry: bootloaders.Entry, arch: Architecture, root_fs: str, boot_fs: str, mbr: bool) -> None:
    """What the bootloader's registry entry says it cannot do (bootloaders/__init__.py)."""
    if entry.pc_bios and not arch.pc_bios:
        raise UsageError(f"--bootloader {entry.name} boots through a PC BIOS: {arch.name} has none")
    if root_fs in entry.unbootable_roots:
        raise UsageError(f"{entry.name} cannot boot from {root_fs}. Use grub.")
    if boot_fs in entry.unbootable_boots:
        raise UsageError(f"{entry.name} installs into the /boot filesystem, not {boot_fs}: {entry.why_not_boot}")
    if mbr and not entry.mbr:
        takers = " or ".join(e.name for e in bootloaders.REGISTRY.values() if e.mbr)
        raise UsageError(f"--mbr writes an MBR for {takers}; {entry.name} writes its own")


def _script(scripts: Path, release: Release) -> Path | None:
    """The script debootstrap needs named for ``release`` (None: it has the release's own)."""
    if (scripts / release.name).is_file():
        return None
    return releases.debootstrap_script(scripts, release)


def _epoch(v: Parsed) -> int | None:
    """--source-date-epoch, else the SOURCE_DATE_EPOCH of the environment (reproducible-builds.org)."""
    given = v.optional("source-date-epoch", int)
    if given is not None:
        return given
    variable = os.environ.get("SOURCE_DATE_EPOCH", "")
    if variable and not variable.isdigit():
        raise UsageError(f"SOURCE_DATE_EPOCH={variable}: not a number of seconds since 1970-01-01 UTC")
    return int(variable) if variable else None


def _login_user(users: tuple[User, ...]) -> User:
    """The user a boot test logs in as: the first --user with a plaintext password."""
    for user in users:
        if user.password and not user.hashed:
            return user
    raise UsageError("--boot-test needs a --user NAME/PASSWORD (with a plaintext password) to log in as")


def _firmware_families(request: disk.Request | None, boot_test_only: Path | None) -> tuple[str, ...]:
    """The firmware families that may boot what is built: a disk image's bootloader says which
    (none: any), an ISO boots with BIOS and UEFI; an image given to --boot-test-only with any."""
    if request is not None:
        return (bootloaders.REGISTRY[request.bootloader].firmware,)
    if boot_test_only is not None and boot_test_only.suffix != ".iso":
        return ("",)
    return ("bios", "uefi")


def _boot_test(v: Parsed, arch: Architecture, request: disk.Request | None, secure_boot: bool) -> BootTest:
    """What --boot-test or --boot-test-only boots, with which firmwares, as whom: by default BIOS
    where there is one, and UEFI with Secure Boot enforced for the signed chain."""
    families = _firmware_families(request, v.optional("boot-test-only", Path))
    firmwares = arch.emulator.firmwares if arch.emulator else ()
    available = tuple(f.name for f in firmwares if f.family in families or families == ("",))
    asked = v.get("boot-firmware", tuple)
    for firmware in asked:
        if firmware not in available:
            raise UsageError(f"--boot-firmware {firmware}: {arch.name} boots with {' or '.join(available)}")
    uefi = "uefi-secure" if secure_boot and "uefi-secure" in available else "uefi"
    default = tuple(f for f in available if f in ("bios", uefi)) or available
    return BootTest(asked or default, v.number("boot-timeout"), _login_user(v.get("user", tuple)),
                    v.optional("boot-test-only", Path), v.flag("boot-test-display"))


def _secure_boot(v: Parsed, release: Release, arch: Architecture) -> tuple[bool, str]:
    """(whether the images boot through the signed chain, why not when it was asked for)."""
    if not v.flag("secure-boot"):
        return False, ""
    if arch.efi is None or not arch.efi.signed:
        return False, f"Debian signs no boot chain for {arch.name}"
    if not release.secure_boot:
        return False, f"the signed boot chain is not used before bookworm ({release} has old shims)"
    return True, ""


def _serial_port(v: Parsed, arch: Architecture) -> str:
    """--serial-port (at 115200n8 unless it says), else the board's, else the architecture's first port."""
    given = v.text("serial-port")
    if given:
        return given if "," in given else f"{given},115200n8"
    board = boards.BOARDS.get(v.text("board"))
    return board.console if board is not None else f"{arch.serial_console},115200n8"


def _with_board(raw: Mapping[str, object]) -> Mapping[str, object]:
    """The options --board sets where nothing else set them; what contradicts it is refused."""
    board = boards.BOARDS.get(str(raw["board"] or ""))
    if board is None:
        return raw
    name = f"--board {board.name}"
    if not raw["image"]:
        raise UsageError(f"{name} makes a disk image for the board: give --image FILE")
    if raw["arch"] and raw["arch"] != board.arch:
        raise UsageError(f"{name} is an {board.arch} board: drop --arch {raw['arch']}")
    if (raw["bootloader"] and raw["bootloader"] != board.bootloader) or raw["grub"] or raw["use-uefi"]:
        raise UsageError(f"{name} boots with {board.bootloader}: drop --bootloader, --grub and --use-uefi")
    if raw["part-type"] == "gpt" and not board.gpt:
        raise UsageError(f"--part-type gpt: {board.name}'s u-boot lies where a GPT's partition entries would be: "
                         "use msdos")
    if board.firmware_partition and raw["bootsize"]:
        raise UsageError(f"--bootsize: {board.name}'s kernel is on its firmware partition (/boot/firmware)")
    components = values.strings(raw["components"])
    offset = values.number(raw["bootoffset"])
    return {**raw, "arch": board.arch, "bootloader": board.bootloader, "bootoffset": max(offset, board.first_partition),
            "components": [*components, *(c for c in board.components if c not in components)]}


def _check_bootstrap_options(v: Parsed) -> None:
    """--debootstrapopts variant=X is --variant X: the same variants, the same refusals."""
    for value in v.get("debootstrapopts", tuple):
        for token in str(value).split():
            name, _, chosen = token.partition("=")
            if name == "variant":
                try:
                    values.variant(chosen)
                except Invalid as exc:
                    raise UsageError(f"--debootstrapopts {token}: {exc}") from None


def _check_release_has(v: Parsed, release: Release, arch: Architecture) -> None:
    """What the release no longer ships: the architecture, or a default kernel for it."""
    if release.architectures is not None and not arch.ports and arch.name not in release.architectures:
        having = [r for r in releases.known() if arch.name in (releases.get(r).architectures or ())]
        instead = f"; {having[-1]} has it: --distribution {having[-1]}" if having else ""
        raise UsageError(f"--arch {arch.name}: {release} has no {arch.name} (its architectures: "
                         f"{', '.join(release.architectures)}){instead}")
    missing = release.no_default_kernel.get(arch.name)
    if missing and not v.flag("no-kernel") and not v.text("kernel-package"):
        raise UsageError(f"--arch {arch.name}: " + missing.format(release=release))


def _check_combinations(v: Parsed, arch: Architecture, outputs: Mapping[str, Path]) -> None:
    """The checks the old tool did not make that relate options to each other."""
    if "iso" in outputs:
        if arch.efi is None:
            supported = [a.name for a in architectures.ARCHITECTURES.values() if a.efi]
            raise UsageError(f"--iso is not supported for {arch.name}: it has no UEFI bootloader this tool "
                             f"puts on an ISO (only {', '.join(supported)})")
        if v.flag("no-kernel"):
            raise UsageError("--iso needs a kernel to boot: drop --no-kernel")
    elif v.flag("iso-archive"):
        raise UsageError("--iso-archive puts an apt repository on the ISO: give --iso")
    if not v.text("mirror"):
        raise UsageError("--mirror '': a build mirror is needed (e.g. http://deb.debian.org/debian/)")
    if v.optional("root-password", User) and v.flag("lock-root-password"):
        raise UsageError("--root-password and --lock-root-password contradict each other")
    for other in ("root-password", "lock-root-password"):
        if v.flag("empty-root-password") and v.values[other]:
            raise UsageError(f"--empty-root-password and --{other} contradict each other")
    if v.flag("boot-test"):
        if not any(BY_NAME[kind].boots for kind in outputs):
            bootable = " or ".join(f"--{option.name}" for option in OUTPUTS if option.boots)
            raise UsageError(f"--boot-test boots the {bootable}: give one of them")
        # A disk boots as its bootloader says; an ISO has a menu entry for the serial console.
        if any(BY_NAME[kind].boots == "disk" for kind in outputs) and not v.flag("serial-console"):
            raise UsageError("--boot-test logs in over the serial console: add --serial-console")


def validate(raw: Mapping[str, object], ask: releases.MirrorAnswer | None = None,
             notes: Sequence[str] = (), config_files: Sequence[str] = ()) -> Settings:
    """Check everything that can be checked without side effects; return the typed settings.

    ``ask`` answers which codename a symbolic suite (stable, testing...) has on the mirror;
    ``notes`` (what reading the config files found to say) and ``config_files`` (those read)
    are kept for the log and the report.
    """
    given = {option.name: redacted(option, raw[option.name]) for option in OPTIONS if not option.cli_only}
    return dataclasses.replace(_validated(raw, ask), notes=tuple(notes), given=given,
                               config_files=tuple(config_files))


def _validated(raw: Mapping[str, object], ask: releases.MirrorAnswer | None) -> Settings:
    if raw["boot-test-only"]:
        v = Parsed(raw)
        arch = v.get("arch", Architecture)
        release = releases.resolve(str(raw["distribution"]), v.text("distribution-like"))
        return _settings(v, release, arch, outputs={}, request=None,
                         boot_test=_boot_test(v, arch, None, _secure_boot(v, release, arch)[0]))
    raw = _with_board(raw)
    release = _check_as_the_old_tool(raw, ask)
    _check_uefi_as_the_old_tool(raw, release)
    v = Parsed(raw)
    arch = v.get("arch", Architecture)
    outputs = _outputs(v)
    request = _disk_request(v, arch) if "image" in outputs else None
    _check_release_has(v, release, arch)
    _check_bootstrap_options(v)
    _check_combinations(v, arch, outputs)
    _check_output_paths(outputs)
    if v.text("customize"):
        _check_hook(v.text("customize"))
    boot_test = _boot_test(v, arch, request, _secure_boot(v, release, arch)[0]) if v.flag("boot-test") else None
    return _settings(v, release, arch, outputs=outputs, request=request, boot_test=boot_test)


def _written_file(v: Parsed, name: str) -> Path | None:
    """--report FILE, --junit FILE: written when the build ends, so refused now if it could not be."""
    path = v.optional(name, Path)
    if path is None:
        return None
    absolute = Path(os.path.abspath(path))
    if absolute.is_dir() or not absolute.parent.is_dir():
        raise UsageError(f"--{name} {path}: not a file in an existing directory")
    return absolute


def _settings(v: Parsed, release: Release, arch: Architecture, *, outputs: dict[str, Path],
              request: disk.Request | None, boot_test: BootTest | None) -> Settings:
    foreign = v.optional("foreign", Path) is not None or not architectures.runs_natively(arch)
    secure_boot, secure_boot_note = _secure_boot(v, release, arch)
    extra = tuple(f"--{token}" for value in v.get("debootstrapopts", tuple) for token in str(value).split())
    build_mirror = v.text("mirror")
    return Settings(
        release=release, arch=arch, foreign=foreign,
        mirrors=Mirrors(build_mirror, v.text("apt-mirror") or build_mirror, v.get("components", tuple)),
        bootstrap=Bootstrap(v.get("bootstrapper", Bootstrapper), v.text("variant"), extra,
                            v.optional("keyring", Path),
                            check_gpg=v.flag("check-gpg") and "--no-check-gpg" not in extra,
                            check_valid_until=v.flag("check-valid-until"),
                            script=_script(v.get("debootstrap-scripts", Path), release)),
        outputs=outputs, disk=request, board=boards.BOARDS.get(v.text("board")), packages=v.get("package", tuple),
        custom_packages=v.get("custom-package", tuple), recommends=v.flag("recommends"),
        kernel_package="" if v.flag("no-kernel") else v.text("kernel-package") or default_kernel(arch, release),
        acpid=not v.flag("no-acpid") and not foreign, sudo=v.flag("sudo"),
        update_initramfs=v.flag("update-initramfs"), hostname=v.text("hostname"),
        networkd=v.flag("systemd-networkd"), dhcp=v.flag("enable-dhcp"), configure_apt=v.flag("configure-apt"),
        keep_apt_lists=v.flag("keep-apt-lists"),
        hook=find_hook(v.text("customize")) if v.text("customize") else None,
        serial_console=v.flag("serial-console"), serial_port=_serial_port(v, arch),
        serial_console_command=v.text("serial-console-command"),
        users=v.get("user", tuple), root_password=v.optional("root-password", User),
        lock_root=v.flag("lock-root-password"), empty_root=v.flag("empty-root-password"),
        force_password_change=v.flag("force-password-change"),
        squash_compression=v.optional("squash-compression", Compression)
        or values.release_compression(release.squashfs_compression),
        secure_boot=secure_boot, secure_boot_note=secure_boot_note,
        iso_label=v.text("iso-label"), iso_archive=v.flag("iso-archive"), kernel_append=v.text("kernel-append"),
        boot_test=boot_test,
        logging=Logging(v.optional("log", Path), v.text("log-level"), v.number("log-mode"), v.flag("verbose")),
        report=_written_file(v, "report"), junit=_written_file(v, "junit"),
        workdir=v.optional("workdir", Path), cache_dir=v.optional("cache-dir", Path),
        stage_cache=v.flag("stage-cache"), cache_entries=v.number("cache-entries"), owner=v.text("owner"),
        pkglist=v.flag("pkglist"),
        sbom=v.flag("sbom"),
        source_date_epoch=_epoch(v),
        seed=v.text("seed") or identity.derived_seed(*sorted(path.name for path in outputs.values()), release,
                                                     arch.name, request),
        salt_seed=v.text("seed") or None,
        dry_run=v.flag("dry-run"),
    )
