"""Validated, frozen settings.

``validate()`` applies the old tool's checks in the old order with the old messages
(vmdebootstrap-features.md §1.3), then the checks the old tool lacked.  It reads the
filesystem but changes nothing: every UsageError is raised before any side effect.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
from collections.abc import Mapping
from pathlib import Path

from . import debian, disk
from .errors import UsageError
from .options import BY_NAME

MIN_IMAGE_SIZE = 100_000_000  # bytes; #811464
DEFAULT_ESP_SIZE = BY_NAME["esp-size"].default
OLD_DEFAULT_ESP_SIZE = 5 * 1024 * 1024
SQUASH_COMPRESSORS = ("xz", "zstd", "gzip", "lzo", "lz4", "lzma")
SQUASH_LEVELS = {"zstd": 22, "gzip": 9, "lzo": 9}  # -Xcompression-level's range
LOG_LEVELS = ("debug", "info", "warning", "error", "critical", "fatal")
# UEFI architectures of the old tool (constants.py); arm64 was UEFI-only for images.
UEFI_ARCHES = ("amd64", "i386", "arm64")
KNOWN_ARCHES = tuple(sorted(set(debian.KERNEL_FLAVOURS) | {"powerpc", "ppc64", "sparc64", "loong64", "alpha"}))

_USERNAME_RE = re.compile(r"^[a-z_][a-z0-9_-]{0,30}\$?$")
_HOSTNAME_RE = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
_STRONG_HASH_RE = re.compile(r"^\$(y|gy|7|2b|2y|6|5)\$[^:\s]+$")
HASHED_PREFIX = "hashed:"
ROOT_TYPES = ("ext2", "ext3", "ext4", "btrfs", "xfs")
BOOT_TYPES = ("ext2", "ext3", "ext4", "vfat")
# parted's partition flags (parted(8), "set").
PARTED_FLAGS = ("boot", "root", "swap", "hidden", "raid", "lvm", "lba", "legacy_boot", "irst", "esp", "palo",
                "bios_grub", "msftres", "msftdata", "prep", "diag", "chromeos_kernel", "bls_boot")


@dataclasses.dataclass(frozen=True)
class User:
    name: str
    password: str | None  # plaintext, or a crypt(3) hash when hashed is True
    hashed: bool = False

    def __repr__(self) -> str:  # keep passwords out of tracebacks and logs
        return f"User({self.name!r})"


@dataclasses.dataclass(frozen=True)
class Settings:
    values: Mapping[str, object]
    arch: str
    suite: str  # the codename debootstrap gets, e.g. bookworm
    packages: tuple[str, ...]  # everything the image gets beyond debootstrap's base
    users: tuple[User, ...]
    root_password: User | None

    def text(self, name: str) -> str:
        value = self.values[name]
        assert isinstance(value, str), name
        return value

    def flag(self, name: str) -> bool:
        return bool(self.values[name])

    def items(self, name: str) -> list[str]:
        value = self.values[name]
        assert isinstance(value, list), name
        return list(value)

    def number(self, name: str) -> int:
        value = self.values[name]
        assert isinstance(value, int), name
        return value

    @property
    def foreign(self) -> bool:
        return not debian.runs_natively(self.arch)

    @property
    def apt_mirror(self) -> str:
        return self.text("apt-mirror") or self.text("mirror")

    @property
    def kernel_package(self) -> str:
        if self.flag("no-kernel"):
            return ""
        return self.text("kernel-package") or debian.default_kernel(self.arch, self.suite)

    def __repr__(self) -> str:
        return f"Settings(arch={self.arch!r}, suite={self.suite!r})"


def parse_password(text: str, where: str) -> tuple[str, bool]:
    """(password, hashed).  'hashed:$y$...' carries a crypt(3) hash; weak ones are refused."""
    if not text.startswith(HASHED_PREFIX):
        return text, False
    crypted = text[len(HASHED_PREFIX):]
    if crypted.startswith("$1$"):
        raise UsageError(f"{where}: MD5 password hashes are too weak; use yescrypt ($y$) or SHA-512 ($6$)")
    if not _STRONG_HASH_RE.match(crypted):
        raise UsageError(f"{where}: not a yescrypt ($y$) or SHA-512 ($6$) hash (DES and MD5 are refused)")
    return crypted, True


def parse_users(entries: list[str]) -> tuple[User, ...]:
    users: list[User] = []
    for entry in entries:
        name, sep, password = entry.partition("/")
        if not _USERNAME_RE.match(name):
            raise UsageError(f"--user {name}: not a valid user name (lower case letters, digits, _ and -)")
        if name == "root" or any(u.name == name for u in users):
            raise UsageError(f"--user {name}: given twice (or 'root'; use --root-password for root)")
        if not sep:
            users.append(User(name, None))
            continue
        value, hashed = parse_password(password, f"--user {name}")
        users.append(User(name, value, hashed))
    return tuple(users)


def select_packages(values: Mapping[str, object], arch: str, suite: str) -> tuple[str, ...]:
    """The package list of the old tool's _bootstrap_packages (§1.4), order kept, de-duplicated."""
    # "--package a,b" as in a config file's list: package names never hold a comma.
    packages = [name for value in _as_list(values["package"]) for name in value.replace(",", " ").split()]
    if values["iso"]:
        packages.append("live-boot")  # its initramfs hook mounts the squashfs at boot
    foreign = bool(values["foreign"]) or not debian.runs_natively(arch)
    if not values["no-acpid"] and not foreign:
        packages.append("acpid")
    if values["sudo"]:
        packages.append("sudo")
    if not values["no-kernel"]:
        packages.append(str(values["kernel-package"]) or debian.default_kernel(arch, suite))
        # initramfs-tools only Recommends zstd and falls back to gzip, which is slower to
        # build (minutes under qemu-user) and to boot.
        if debian.at_least(suite, "bullseye"):
            packages.append("zstd")
    if values["image"] and values["use-uefi"]:
        efi = {"amd64": ["grub-efi-amd64"], "i386": ["grub-efi-ia32"],
               "arm64": ["grub-efi-arm64"]}  # fmt: skip
        packages.extend(efi.get(arch, []))
        if arch == "amd64" and values["uefi-ia32"]:
            packages.append("grub-efi-ia32-bin")
    elif values["image"] and values["grub"] and arch in ("amd64", "i386"):
        packages.append("grub-pc")
    # bookworm split systemd-resolved out of systemd; networkd alone cannot resolve names.
    # Only for bootable systems: a kernel-less tarball (a container) gets no network stack.
    if values["systemd-networkd"] and not values["no-kernel"] and debian.at_least(suite, "bookworm"):
        packages.append("systemd-resolved")
    return tuple(dict.fromkeys(p for p in packages if p))


def _as_list(value: object) -> list[str]:
    assert isinstance(value, list)
    return [str(v) for v in value]


def find_hook(script: str) -> str:
    """The hook path, with the old fallback to the shipped examples directory."""
    from .hooks import examples_dir

    if os.path.exists(script):
        return os.path.abspath(script)
    for directory in ("/usr/share/vmdebootstrap/examples", str(examples_dir())):
        candidate = os.path.join(directory, script)
        if os.path.exists(candidate):
            return candidate
    raise UsageError(f"--customize {script}: no such file")


def boot_firmwares(values: Mapping[str, object], arch: str) -> list[str]:
    """The firmwares a boot test uses: what was asked for, else all the architecture has."""
    available = ["bios", "uefi"] if arch in ("amd64", "i386") else ["uefi"]
    if values.get("image") and not values.get("boot-test-only"):
        available = ["uefi"] if values["use-uefi"] else ["bios"]
    asked = _as_list(values["boot-firmware"])
    for firmware in asked:
        if firmware not in available:
            raise UsageError(f"--boot-firmware {firmware}: {arch} boots with {' or '.join(available)}")
    return asked or available


def login_user(users: tuple[User, ...]) -> User:
    """The user a boot test logs in as: the first --user with a plaintext password."""
    for user in users:
        if user.password and not user.hashed:
            return user
    raise UsageError("--boot-test needs a --user NAME/PASSWORD (with a plaintext password) to log in as")


def _validate_boot_test(v: Mapping[str, object], arch: str, users: tuple[User, ...]) -> None:
    if not str(v["boot-timeout"]).isdigit() or int(str(v["boot-timeout"])) <= 0:
        raise UsageError(f"--boot-timeout {v['boot-timeout']}: a number of seconds")
    boot_firmwares(v, arch)
    login_user(users)


def validate(values: Mapping[str, object]) -> Settings:
    """Check everything that can be checked without side effects; return frozen settings."""
    v = values
    image, tarball, squash, iso = str(v["image"]), str(v["tarball"]), str(v["squash"]), str(v["iso"])
    arch = str(v["arch"]) or debian.host_arch()
    dist = str(v["distribution"])
    if v["boot-test-only"]:
        target = str(v["boot-test-only"])
        if not os.path.isfile(target):
            raise UsageError(f"--boot-test-only {target}: no such file")
        users = parse_users(_as_list(v["user"]))
        _validate_boot_test(v, arch, users)
        return Settings(values=dict(values), arch=arch, suite=debian.codename(dist), packages=(), users=users,
                        root_password=None)

    # -- the old tool's checks, in its order (§1.3) ------------------------
    if squash and image:
        raise UsageError("--image can no longer be used with --squash")
    if not (image or tarball or squash or iso):
        raise UsageError("You must give disk image filename or use either a tarball filename or use squash")
    size = int(v["size"])  # type: ignore[call-overload]
    if size <= MIN_IMAGE_SIZE:
        raise UsageError(f"A size of {size} bytes is too small for a bootstrap.")
    scripts = Path(str(v["debootstrap-scripts"]))
    if not re.match(r"^[A-Za-z0-9][A-Za-z0-9._-]*$", dist) or not (scripts / dist).is_file():
        raise UsageError(f"{dist} is not a valid debootstrap codename.")
    suite = debian.codename(dist)
    if v["apt-mirror"] and not v["configure-apt"]:
        raise UsageError("--apt-mirror requires --configure-apt as well.")
    if v["convert-qcow2"] and not image:
        raise UsageError("--convert-qcow2 can only be used with --image.")
    if image and tarball:
        raise UsageError("Use --image or --tarball, not both.")
    if squash and tarball:
        raise UsageError("Use --squash or --tarball, not both.")
    if iso and (tarball or image):
        raise UsageError(f"Use --iso or {'--tarball' if tarball else '--image'}, not both.")
    wheezy = suite == "wheezy"
    if not wheezy and not v["systemd-networkd"] and not v["update-initramfs"]:
        raise UsageError("Disabling systemd-networkd for jessie and later requires updating the initramfs.")
    if wheezy and image and v["roottype"] == "ext4":
        raise UsageError(
            "Wheezy images using ext4 will not be able to boot. Please use --roottype ext2 or --roottype ext3")
    if image and v["roottype"] == "btrfs" and v["extlinux"] and not v["grub"]:
        raise UsageError("extlinux is not yet supported on btrfs. Use grub.")
    _validate_uefi(v, arch, suite, image)
    if image:
        _validate_disk(v, arch)

    # -- checks the old tool did not make ------------------------------------
    if iso:
        from .steps.iso import GRUB_EFI

        if arch not in GRUB_EFI:
            raise UsageError(f"--iso is not supported for {arch} (only {', '.join(GRUB_EFI)})")
        if v["no-kernel"]:
            raise UsageError("--iso needs a kernel to boot: drop --no-kernel")
    if arch not in KNOWN_ARCHES:
        raise UsageError(f"--arch {arch}: not a Debian architecture ({', '.join(KNOWN_ARCHES)})")
    if not v["mirror"]:
        raise UsageError("--mirror '': a build mirror is needed (e.g. http://deb.debian.org/debian/)")
    for name in ("mirror", "apt-mirror"):
        url = str(v[name])
        if url and not re.match(r"^(https?|file|ftp)://[^\s]+$", url):
            raise UsageError(f"--{name} {url}: not a mirror URL (http://, https:// or file://)")
    if not _HOSTNAME_RE.match(str(v["hostname"])):
        raise UsageError(f"--hostname {v['hostname']}: not a valid host name")
    if v["squash-compression"]:
        name, _, level = str(v["squash-compression"]).partition(":")
        if name not in SQUASH_COMPRESSORS:
            raise UsageError(f"--squash-compression {v['squash-compression']}: use one of "
                             + ", ".join(SQUASH_COMPRESSORS))
        if level and (name not in SQUASH_LEVELS or not level.isdigit()
                      or not 1 <= int(level) <= SQUASH_LEVELS[name]):
            allowed = f"1-{SQUASH_LEVELS[name]}" if name in SQUASH_LEVELS else "none"
            raise UsageError(f"--squash-compression {v['squash-compression']}: {name} levels: {allowed}")
    if str(v["log-level"]).lower() not in LOG_LEVELS:
        raise UsageError(f"--log-level {v['log-level']}: use one of {', '.join(LOG_LEVELS)}")
    if not re.match(r"^0?[0-7]{3}$", str(v["log-mode"])):
        raise UsageError(f"--log-mode {v['log-mode']}: not an octal file mode")
    if v["variant"] and not re.match(r"^[a-z-]+$", str(v["variant"])):
        raise UsageError(f"--variant {v['variant']}: not a debootstrap variant")
    if str(v["bootstrapper"]) not in ("auto", "mmdebstrap", "debootstrap"):
        raise UsageError(f"--bootstrapper {v['bootstrapper']}: use auto, mmdebstrap or debootstrap")
    if str(v["bootstrapper"]) == "mmdebstrap" and not shutil.which("mmdebstrap"):
        raise UsageError("--bootstrapper mmdebstrap: mmdebstrap is not installed (apt-get install mmdebstrap)")
    if v["keyring"] and not os.path.isfile(str(v["keyring"])):
        raise UsageError(f"--keyring {v['keyring']}: no such file")
    for deb in _as_list(v["custom-package"]):
        if not os.path.isfile(deb):
            raise UsageError(f"--custom-package {deb}: no such file")
    if v["customize"]:
        hook = find_hook(str(v["customize"]))
        if not os.access(hook, os.X_OK) or not os.path.isfile(hook):
            raise UsageError(f"--customize {v['customize']}: not an executable file")
    if v["foreign"] and not os.path.isfile(str(v["foreign"])):
        raise UsageError(f"--foreign {v['foreign']}: no such file (install qemu-user-static)")
    if v["workdir"] and not os.path.isdir(str(v["workdir"])):
        raise UsageError(f"--workdir {v['workdir']}: no such directory")
    if v["owner"]:
        import pwd

        try:
            pwd.getpwnam(str(v["owner"]))
        except KeyError:
            raise UsageError(f"--owner {v['owner']}: no such user on this host") from None
    _validate_output_paths(squash, tarball, image, iso)
    users = parse_users(_as_list(v["user"]))
    root_password = None
    if v["root-password"]:
        password, hashed = parse_password(str(v["root-password"]), "--root-password")
        root_password = User("root", password, hashed)
    if root_password and v["lock-root-password"]:
        raise UsageError("--root-password and --lock-root-password contradict each other")
    if v["boot-test"]:
        if not (iso or image):
            raise UsageError("--boot-test boots the --iso or --image: give one of them")
        if image and not v["serial-console"]:
            raise UsageError("--boot-test logs in over the serial console: add --serial-console")
        _validate_boot_test(v, arch, users)
    return Settings(
        values=dict(values),
        arch=arch,
        suite=suite,
        packages=select_packages(values, arch, suite),
        users=users,
        root_password=root_password,
    )


def _validate_uefi(v: Mapping[str, object], arch: str, suite: str, image: str) -> None:
    # The old default (5 MiB) still appears in dumped old configurations: not an error.
    if v["esp-size"] not in (DEFAULT_ESP_SIZE, OLD_DEFAULT_ESP_SIZE) and not v["use-uefi"]:
        raise UsageError("You must specify use-uefi for esp-size to have effect")
    # The old tool demanded UEFI for arm64 even for tarballs (#845439); only images need it.
    if image and arch == "arm64" and not v["use-uefi"]:
        raise UsageError(f"Only UEFI is supported on {arch}")
    if not v["use-uefi"]:
        return
    if arch not in UEFI_ARCHES:
        raise UsageError(f"{arch} is not a supported UEFI architecture")
    if v["bootsize"] or v["bootoffset"]:
        raise UsageError("A separate boot partition is not supported with UEFI")
    if not v["grub"]:
        raise UsageError("UEFI without Grub is not supported.")
    if suite == "wheezy" and arch != "amd64":
        raise UsageError("Only amd64 supports UEFI in Wheezy")


def _validate_disk(v: Mapping[str, object], arch: str) -> None:
    if v["part-type"] not in ("msdos", "gpt"):
        raise UsageError(f"--part-type {v['part-type']}: use msdos or gpt")
    if v["roottype"] not in ROOT_TYPES:
        raise UsageError(f"--roottype {v['roottype']}: use one of {', '.join(ROOT_TYPES)}")
    if v["bootsize"] and v["boottype"] not in BOOT_TYPES:
        raise UsageError(f"--boottype {v['boottype']}: use one of {', '.join(BOOT_TYPES)}")
    if v["bootflag"] and v["bootflag"] not in PARTED_FLAGS:
        raise UsageError(f"--bootflag {v['bootflag']}: not a parted flag ({', '.join(PARTED_FLAGS)})")
    extlinux = bool(v["extlinux"]) and not v["grub"]
    if extlinux and v["roottype"] == "xfs":
        raise UsageError("extlinux cannot boot from xfs. Use grub.")
    if extlinux and v["bootsize"] and v["boottype"] == "vfat":
        raise UsageError("extlinux installs into the /boot filesystem, not vfat: use --grub, or --no-extlinux "
                         "and a --customize hook that writes the board's bootloader")
    if v["mbr"] and not extlinux:
        raise UsageError("--mbr writes an MBR for extlinux; GRUB writes its own")
    if v["uefi-ia32"] and not (v["use-uefi"] and arch == "amd64"):
        raise UsageError("--uefi-ia32 adds 32-bit UEFI GRUB to an amd64 --use-uefi image")
    disk.plan(v, arch)  # raises when the partitions do not fit


def _validate_output_paths(squash: str, tarball: str, image: str, iso: str) -> None:
    for option, path in (("--squash", squash), ("--tarball", tarball), ("--image", image), ("--iso", iso)):
        if not path:
            continue
        resolved = os.path.realpath(path)
        if resolved in ("/", "/dev", "/proc", "/sys", "/usr", "/etc", os.path.expanduser("~")):
            raise UsageError(f"{option} {path}: refusing to write into {resolved}")
        # Missing directories are created (and removed again if the build fails), below
        # an existing one.
        ancestor = os.path.dirname(resolved)
        while not os.path.exists(ancestor):
            ancestor = os.path.dirname(ancestor)
        if not os.path.isdir(ancestor):
            raise UsageError(f"{option} {path}: {ancestor} is not a directory")
        if option == "--squash":
            if os.path.exists(resolved) and not os.path.isdir(resolved):
                raise UsageError(f"{option} {path}: exists and is not a directory")
        elif os.path.isdir(resolved):
            raise UsageError(f"{option} {path}: is a directory")


def missing_host_tools(settings: Settings) -> list[str]:
    from .hostdeps import required_files, required_tools

    missing = [f"{tool} (package {package})" for tool, package in required_tools(settings.values).items()
               if not shutil.which(tool)]
    missing += [f"{path} (package {package})" for path, package in required_files(settings.values).items()
                if not os.path.exists(path)]
    return missing
