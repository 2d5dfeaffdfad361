"""Validated, typed, frozen settings: what a build is asked to do.

``validate()`` turns the raw option values (cli.py) into one ``Settings`` object.  It
applies the old tool's checks first, in its order and words (oldtool.py), then parses every
option with the parser its table entry names (parsed.py, options.py), then the checks that
relate options to each other; a disk image's request and the boot test's come from
imageoptions.py and boottestoptions.py.  It reads the filesystem but changes
nothing: every UsageError comes before any side effect.  Code after validation reads
attributes of ``Settings``, never option names.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

from . import architectures, boards, boottestoptions, disk, hooks, identity, releases, values
from .architectures import Architecture
from .boards import Board
from .boottestoptions import BootTest
from .errors import UsageError
from .imageoptions import disk_request, serial_port, with_board
from .oldtool import check_as_the_old_tool, check_uefi_as_the_old_tool
from .options import BY_NAME, OPTIONS, OUTPUTS, redacted
from .parsed import Parsed
from .releases import Release
from .values import Bootstrapper, Compression, Invalid, User


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


# -- every option through its parser ---------------------------------------------------------------


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
        secure = _secure_boot(v, release, arch)
        return _settings(v, release, arch, outputs={}, request=None, secure=secure,
                         boot_test=boottestoptions.boot_test(v, arch, None, secure[0]))
    raw = with_board(raw)
    release = check_as_the_old_tool(raw, ask)
    check_uefi_as_the_old_tool(raw, release)
    v = Parsed(raw)
    arch = v.get("arch", Architecture)
    outputs = _outputs(v)
    request = disk_request(v, arch) if "image" in outputs else None
    _check_release_has(v, release, arch)
    _check_bootstrap_options(v)
    _check_combinations(v, arch, outputs)
    _check_output_paths(outputs)
    if v.text("customize"):
        _check_hook(v.text("customize"))
    secure = _secure_boot(v, release, arch)
    boot_test = boottestoptions.boot_test(v, arch, request, secure[0]) if v.flag("boot-test") else None
    return _settings(v, release, arch, outputs=outputs, request=request, secure=secure, boot_test=boot_test)


def _secure_boot(v: Parsed, release: Release, arch: Architecture) -> tuple[bool, str]:
    """(whether the images boot through the signed chain, why not when it was asked for)."""
    if not v.flag("secure-boot"):
        return False, ""
    if arch.efi is None or not arch.efi.signed:
        return False, f"Debian signs no boot chain for {arch.name}"
    if not release.secure_boot:
        return False, f"the signed boot chain is not used before bookworm ({release} has old shims)"
    return True, ""


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
              request: disk.Request | None, secure: tuple[bool, str], boot_test: BootTest | None) -> Settings:
    """``secure``: _secure_boot's answer, which the boot test's request was made with."""
    foreign = v.optional("foreign", Path) is not None or not architectures.runs_natively(arch)
    secure_boot, secure_boot_note = secure
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
        serial_console=v.flag("serial-console"), serial_port=serial_port(v, arch),
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
