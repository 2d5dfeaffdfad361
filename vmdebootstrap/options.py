"""The one table of options.

Every setting vmdebootstrap knows is declared here exactly once.  The same
declaration feeds the command-line parser (cli.py), the keys accepted in
``[config]`` files (config.py), ``--help``, ``--dump-config`` and the man page.

Kinds, as cliapp had them:
  bool  -- ``--foo`` and an automatic ``--no-foo``; config: yes/on/true/1
  str   -- one value
  list  -- repeatable on the command line; comma separated in INI files
  size  -- bytes, with k/m/g/t (decimal) and ki/mi/gi/ti (binary) suffixes

Each entry also carries its parser (values.py): settings.validate turns every raw value
into its typed value with it.  ``choices`` lists the values an option takes where the
table and the registries know them (for shell completion, completion.py; the parser
stays the judge of what is valid).  An entry with ``output`` set is an output kind: the
module ``vmdebootstrap/outputs/<name>.py`` makes it (outputs/__init__.py).
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from . import architectures, boards, bootloaders, releases, secret, values
from .values import Bootstrapper, Parser

Kind = Literal["bool", "str", "list", "size"]


@dataclasses.dataclass(frozen=True)
class Option:
    name: str
    kind: Kind
    default: object
    help: str
    group: str
    metavar: str = ""
    secret: bool = False  # never echoed into the build log
    # Settings that only make sense on the command line (not config keys).
    cli_only: bool = False
    parse: Parser | None = None  # raw value -> typed value (None: the kind's plain value)
    output: Literal["", "file", "directory"] = ""  # an output kind, written to a file or a directory
    # How the boot test boots the output ("iso": as a CD-ROM, "disk": as a hard disk; "": it
    # does not boot).  Validation reads it, so it is table data, not the kind module's.
    boots: Literal["", "iso", "disk"] = ""
    # An input path (a file or directory the build reads): written in a config file, it is
    # relative to that file's directory (config.py); on the command line, to the current one.
    reads: bool = False
    choices: tuple[str, ...] = ()  # the values it takes, where they are known (shell completion)

    @property
    def dest(self) -> str:
        return self.name.replace("-", "_")


DEFAULT_MIRROR = "http://deb.debian.org/debian/"
PART_TYPES = ("msdos", "gpt")
ROOT_TYPES = ("ext2", "ext3", "ext4", "btrfs", "xfs")
BOOT_TYPES = ("ext2", "ext3", "ext4", "vfat")
DEFAULT_SERIAL_COMMAND = "/sbin/getty -L ttyS0 115200 vt100"

_G_OUT = "Output"
_G_DISK = "Disk layout and filesystems (disk images)"
_G_BOOT = "Bootstrap"
_G_PKG = "Packages and kernel"
_G_SYS = "System configuration"
_G_USERS = "Users and passwords"
_G_LOADER = "Bootloaders (disk images)"
_G_FRAME = "Configuration files and logging"

_COMPRESSION_DEFAULT = releases.describe_default("squashfs_compression")
_V = values
# What --boot-firmware may name on some architecture (each record says which of them it has).
_FIRMWARES = tuple(dict.fromkeys(f for arch in architectures.ARCHITECTURES.values() for f in arch.firmware_names))
_RELEASES = (*releases.known(), *releases.SYMBOLIC)

OPTIONS: tuple[Option, ...] = (
    # -- framework (cliapp) ---------------------------------------------
    Option("config", "list", [], "add FILE to the configuration files read (INI [config] or YAML config:)",
           _G_FRAME, "FILE", cli_only=True),
    Option("no-default-configs", "bool", False, "do not read the default configuration files",
           _G_FRAME, cli_only=True),
    Option("dump-config", "bool", False, "print the merged configuration as a [config] file and exit",
           _G_FRAME, cli_only=True),
    Option("dump-setting-names", "bool", False, "print the names of all settings and exit", _G_FRAME,
           cli_only=True),
    Option("list-config-files", "bool", False, "print the configuration files that would be read and exit",
           _G_FRAME, cli_only=True),
    Option("log", "str", "", "write the full build log to FILE (default: under /var/log/vmdebootstrap)",
           _G_FRAME, "FILE", parse=_V.path),
    Option("log-level", "str", "debug", "level of detail in the log file: debug, info, warning, error, critical",
           _G_FRAME, "LEVEL", parse=_V.log_level, choices=_V.LOG_LEVELS),
    Option("log-mode", "str", "0600", "permissions of the log file (octal)", _G_FRAME, "MODE",
           parse=_V.file_mode),
    Option("report", "str", "", "write a JSON report of the build to FILE, also when it fails: settings (no "
           "passwords), release, steps, outputs with their sha256, boot tests (docs/report.md)", _G_FRAME, "FILE",
           parse=_V.path),
    Option("junit", "str", "", "write the build as JUnit XML to FILE, when and as --report writes its JSON: "
           "one test case per step and per boot test, the failed one with its error and the log's last lines, "
           "for a CI system's test view (docs/junit.md)", _G_FRAME, "FILE", parse=_V.path),
    Option("verbose", "bool", False, "print every command and its output on the terminal too", _G_FRAME),
    Option("print-helpers-path", "bool", False,
           "print the path of the shell helper library for customisation hooks and exit", _G_FRAME,
           cli_only=True),
    Option("print-host-packages", "bool", False,
           "print the Debian packages this host needs for the configured build and exit", _G_FRAME,
           cli_only=True),
    Option("cache-keys", "bool", False,
           "print the keys of the base-cache and stage-cache entries the configured build would use, as JSON "
           "({\"tool\": ..., \"base\": KEY, \"stage\": KEY}), and exit: nothing is built, no root needed; the "
           "suite's InRelease is fetched (docs/caches.md)", _G_FRAME, cli_only=True),
    # -- output ---------------------------------------------------------
    Option("image", "str", "",
           "build a bootable disk image FILE (raw; qcow2 if FILE ends in .qcow2 or with --convert-qcow2)",
           _G_OUT, "FILE", parse=_V.path, output="file", boots="disk"),
    Option("size", "size", 1_000_000_000, "size of the disk image (k/m/g decimal, ki/mi/gi binary)",
           _G_OUT, "SIZE"),
    Option("tarball", "str", "", "write the root filesystem as a tarball FILE, compressed by its suffix",
           _G_OUT, "FILE", parse=_V.path, output="file"),
    Option("squash", "str", "", "write filesystem.squashfs, the kernel and initrd into DIRECTORY",
           _G_OUT, "DIRECTORY", parse=_V.path, output="directory"),
    Option("iso", "str", "", "write a bootable hybrid live ISO FILE (BIOS and UEFI; implies the squashfs)",
           _G_OUT, "FILE", parse=_V.path, output="file", boots="iso"),
    Option("iso-label", "str", "", "volume label of the ISO (default: DEBIAN_LIVE_<SUITE>_<ARCH>)", _G_OUT,
           "LABEL"),
    Option("kernel-append", "str", "", "extra kernel parameters for every boot entry the build writes: "
           "the ISO's menu entries, a disk image's GRUB (GRUB_CMDLINE_LINUX) and extlinux entries, u-boot's "
           "extlinux.conf (U_BOOT_PARAMETERS) and a Raspberry Pi's cmdline.txt (/etc/default/raspi-extra-cmdline)",
           _G_OUT, "PARAMS", parse=_V.kernel_parameters),
    Option("iso-archive", "bool", False,
           "put an apt repository on the ISO (dists/, pool/) with what an installer installs from it offline: "
           "GRUB for BIOS and UEFI, shim, efibootmgr, cryptsetup and its initramfs hook, the kernel (on whenever "
           "the live system has Calamares, whose bootloader step installs from it)", _G_OUT),
    Option("secure-boot", "bool", True,
           "boot with Secure Boot on: the ISO and UEFI disk images start Microsoft-signed shim, Debian-signed "
           "GRUB and kernel, where the release has them for the architecture (bookworm and later, amd64 and "
           "arm64); --no-secure-boot uses GRUB made by grub-mkimage, unsigned (docs/secureboot.md)", _G_OUT),
    Option("boot-test", "bool", False,
           "boot the ISO or disk image in QEMU (BIOS and UEFI on amd64, UEFI on arm64) and log in as the "
           "first --user over the serial console",
           _G_OUT),
    Option("boot-test-only", "str", "",
           "only boot-test the existing ISO or disk image FILE (with --arch and --user) and exit",
           _G_OUT, "FILE", parse=_V.existing_file, reads=True),
    Option("boot-firmware", "list", [], "firmware to boot-test with: bios, uefi, uefi-secure (Secure Boot "
           "enforced, Microsoft's keys enrolled), u-boot (QEMU's virt machine; OpenSBI first on riscv64), raspi3b "
           "(a Raspberry Pi image) (default: the one the disk image's bootloader is for; bios where the "
           "architecture has it, and uefi-secure for an image with the signed chain, else uefi; for "
           "--boot-test-only of a u-boot or Pi image, say which)", _G_OUT, "FIRMWARE", choices=_FIRMWARES),
    Option("boot-timeout", "str", "900", "seconds a boot test may take to reach the login prompt", _G_OUT,
           "SECONDS", parse=_V.seconds),
    Option("boot-test-display", "bool", False,
           "boot-test a desktop: boot with a graphics card; its display manager must be active on a seat, and a "
           "screenshot of the screen (PNG) is kept beside the console transcript and named in --report", _G_OUT),
    Option("squash-compression", "str", "",
           "mksquashfs compressor, a level after a colon where it has one: "
           + ", ".join(f"{c.name}[:1-{c.max_level}]" if c.max_level else c.name for c in _V.COMPRESSORS.values())
           + f" (default: the release's: {_COMPRESSION_DEFAULT}; see docs/performance.md)",
           _G_OUT, "COMP", parse=_V.compression, choices=tuple(_V.COMPRESSORS)),
    Option("convert-qcow2", "bool", False, "convert the disk image to qcow2 (no raw file is left behind)",
           _G_OUT),
    Option("sparse", "bool", False,
           "keep the disk image sparse: discard its free space instead of zero-filling it", _G_OUT),
    Option("owner", "str", "", "change the owner of the outputs to USER", _G_OUT, "USER", parse=_V.host_user),
    Option("source-date-epoch", "str", "",
           "the build's time: timestamps in the outputs are clamped to it, and every program that honours "
           "SOURCE_DATE_EPOCH gets it (default: that variable, else the Date of the release's InRelease on "
           "the build mirror)", _G_OUT, "SECONDS", parse=_V.epoch),
    Option("seed", "str", "",
           "seed of the identifiers that would otherwise be random: filesystem UUIDs, partition GUIDs, volume "
           "ids (default: derived from the output's name, the release, the architecture and the disk layout, so "
           "that the same settings make the same image); given, also of the salts of clear-text passwords, "
           "which are random without it", _G_OUT, "SEED"),
    Option("pkglist", "bool", False,
           "write FILE.packages (package and version per line) next to an --image, --tarball or --iso FILE "
           "(a --squash directory always gets filesystem.packages)", _G_OUT),
    Option("sbom", "bool", True,
           "write the SBOM of the image's packages (SPDX 2.3 and CycloneDX JSON) next to each output "
           "(docs/sbom.md)", _G_OUT),
    Option("dry-run", "bool", False, "validate, print the selected packages and exit (no root needed)", _G_OUT),
    Option("workdir", "str", "", "directory for the build's temporary files (default: TMPDIR)", _G_OUT, "DIR",
           parse=_V.existing_dir),
    Option("cache-dir", "str", "/var/cache/vmdebootstrap",
           "persistent package, stage and base cache shared between builds ('' disables them)", _G_OUT, "DIR",
           parse=_V.path),
    Option("cache-entries", "str", "6",
           "how many stages the cache keeps, and as many bases: the least recently used beyond are deleted at "
           "the end of a build that saved one (a CI runner building many configurations wants more)", _G_OUT,
           "N", parse=_V.positive),
    Option("stage-cache", "bool", True,
           "reuse the root filesystem of an earlier build with the same release, architecture, mirror state, "
           "packages and keyring, or at least its bootstrapped base (under --cache-dir; --no-stage-cache builds "
           "it afresh)", _G_OUT),
    # -- disk layout -----------------------------------------------------
    Option("part-type", "str", "msdos", "partition table type: msdos or gpt", _G_DISK, "TYPE",
           parse=_V.choice(*PART_TYPES), choices=PART_TYPES),
    Option("roottype", "str", "ext4", "filesystem of the root partition: " + ", ".join(ROOT_TYPES),
           _G_DISK, "FSTYPE", parse=_V.choice(*ROOT_TYPES), choices=ROOT_TYPES),
    Option("bootsize", "size", 0, "size of a separate /boot partition (first partition)", _G_DISK, "SIZE"),
    Option("boottype", "str", "ext2", "filesystem of the /boot partition: " + ", ".join(BOOT_TYPES), _G_DISK,
           "FSTYPE", parse=_V.choice(*BOOT_TYPES), choices=BOOT_TYPES),
    Option("bootoffset", "size", 0, "space left before the first partition for a board's bootloader "
           "(at least 1 MiB)", _G_DISK, "SIZE"),
    Option("bootflag", "str", "", "extra parted flag to set on the first partition (e.g. lba)", _G_DISK,
           "FLAG"),
    Option("swap", "size", 0, "size of a swap partition at the end of the disk (at least 256 MiB)", _G_DISK,
           "SIZE"),
    Option("use-uefi", "bool", False, "make the disk image boot with UEFI (GRUB on an EFI system partition)",
           _G_DISK),
    Option("esp-size", "size", 256 * 1024 * 1024, "size of the EFI system partition", _G_DISK, "SIZE"),
    Option("uefi-ia32", "bool", False,
           "amd64 with --use-uefi: also install GRUB for 32-bit UEFI firmware (EFI/BOOT/BOOTIA32.EFI)", _G_DISK),
    # -- bootstrap --------------------------------------------------------
    Option("mirror", "str", DEFAULT_MIRROR, "Debian mirror used while building", _G_BOOT, "URL",
           parse=_V.mirror),
    Option("arch", "str", "", "Debian architecture of the image (default: the host's)", _G_BOOT, "ARCH",
           parse=_V.architecture, choices=tuple(architectures.ARCHITECTURES)),
    Option("distribution", "str", "stable", "Debian release (codename or suite)", _G_BOOT, "NAME",
           choices=_RELEASES),
    Option("distribution-like", "str", "",
           "build an unknown --distribution (a derivative, or a release newer than this vmdebootstrap) with "
           "the facts of this Debian release", _G_BOOT, "NAME", choices=_RELEASES),
    Option("debootstrap-scripts", "str", "/usr/share/debootstrap/scripts",
           "where debootstrap's release scripts live (for the release check)", _G_BOOT, "DIR", parse=_V.path,
           reads=True),
    Option("debootstrapopts", "list", [],
           "extra debootstrap options without dashes, space separated (e.g. 'variant=minbase')", _G_BOOT,
           "OPTS"),
    Option("bootstrapper", "str", "auto",
           "what makes the base system: mmdebstrap, debootstrap, or auto (mmdebstrap where it is installed "
           "and can serve the build, debootstrap otherwise)", _G_BOOT, "TOOL", parse=_V.bootstrapper,
           choices=tuple(b.value for b in Bootstrapper)),
    Option("variant", "str", "", "debootstrap variant: minbase, buildd, ... (default: debootstrap's)",
           _G_BOOT, "VARIANT", parse=_V.variant),
    Option("components", "list", ["main"], "archive components (main, contrib, non-free, non-free-firmware): "
           "comma-separated or repeated",
           _G_BOOT, "COMP", parse=_V.component_names, choices=("main", "contrib", "non-free", "non-free-firmware")),
    Option("keyring", "str", "", "keyring to check the Release file with (default: the archive keyring)",
           _G_BOOT, "FILE", parse=_V.existing_file, reads=True),
    Option("check-gpg", "bool", True, "check the archive signatures (--no-check-gpg is insecure)", _G_BOOT),
    Option("check-valid-until", "bool", True,
           "refuse a Release file whose Valid-Until date has passed (--no-check-valid-until for snapshot and "
           "frozen mirrors of testing and unstable)", _G_BOOT),
    Option("foreign", "str", "", "qemu-user static binary for a foreign --arch (not supported yet)",
           _G_BOOT, "PATH", parse=_V.qemu_binary, reads=True),
    # -- packages ---------------------------------------------------------
    Option("package", "list", [], "install PACKAGE too (repeatable)", _G_PKG, "PACKAGE",
           parse=_V.package_names),
    Option("custom-package", "list", [], "install the local .deb FILE too (repeatable)", _G_PKG, "DEB",
           parse=_V.existing_files, reads=True),
    Option("recommends", "bool", False,
           "install --package with apt inside the image, Recommends included (as live images want)", _G_PKG),
    Option("no-kernel", "bool", False, "do not install a kernel", _G_PKG),
    Option("kernel-package", "str", "", "kernel package instead of the default for the architecture",
           _G_PKG, "PACKAGE"),
    Option("no-acpid", "bool", False, "do not install acpid", _G_PKG),
    Option("sudo", "bool", False, "install sudo and add every --user to the sudo group", _G_PKG),
    Option("update-initramfs", "bool", True, "run update-initramfs -u at the end of the build", _G_PKG),
    # -- system -----------------------------------------------------------
    Option("hostname", "str", "debian", "host name of the image", _G_SYS, "NAME", parse=_V.hostname),
    Option("enable-dhcp", "bool", False, "configure DHCP on the wired interfaces", _G_SYS),
    Option("systemd-networkd", "bool", True, "configure networking with systemd-networkd and -resolved",
           _G_SYS),
    Option("configure-apt", "bool", False, "point the image's apt sources at --apt-mirror (or --mirror)",
           _G_SYS),
    Option("apt-mirror", "str", "", "mirror the booted image's apt uses (needs --configure-apt)", _G_SYS,
           "URL", parse=_V.mirror),
    Option("keep-apt-lists", "bool", False,
           "keep the build's apt package lists in the image (by default it has none, as with live-build "
           "--apt-indices false: run apt update first)", _G_SYS),
    Option("customize", "str", "", "run SCRIPT ROOTDIR IMAGE on the host before the image is finished (in a "
           "config file relative to its directory; refused when others than root may change it)",
           _G_SYS, "SCRIPT", reads=True),
    Option("serial-console", "bool", False,
           "kernel, bootloader and a getty on the serial port (--serial-port)", _G_SYS),
    Option("serial-port", "str", "",
           "the serial console's port as the kernel's console= names it, with its speed (default: the --board's, "
           "else the first port at 115200n8: ttyS0; ttyAMA0 on ARM)", _G_SYS, "TTY[,SPEED]", parse=_V.serial_port),
    Option("serial-console-command", "str", DEFAULT_SERIAL_COMMAND,
           "command for the serial console's getty (the default keeps systemd's serial-getty)", _G_SYS, "CMD"),
    # -- users ------------------------------------------------------------
    Option("user", "list", [], "create USER, with PASSWORD if given ('hashed:' for a crypt(3) hash)",
           _G_USERS, "USER[/PASSWORD]", secret=True, parse=_V.users),
    Option("root-password", "str", "", "root's password ('hashed:' for a crypt(3) hash)", _G_USERS, "PW",
           secret=True, parse=_V.root_password),
    Option("lock-root-password", "bool", False,
           "lock root's password (the default without --root-password or --empty-root-password; saying it "
           "silences the warning that names the new default)", _G_USERS),
    Option("empty-root-password", "bool", False,
           "give root an empty password, as the old vmdebootstrap did by default (insecure: whoever reaches "
           "a console of the image is root)", _G_USERS),
    Option("force-password-change", "bool", False,
           "users given without a password get an empty one that must be changed at first login", _G_USERS),
    # -- bootloaders ------------------------------------------------------
    Option("bootloader", "str", "",
           "bootloader of the disk image: " + ", ".join(bootloaders.NAMES) + " (default: from --grub, --use-uefi "
           "and --extlinux, as the old options had it)", _G_LOADER, "NAME", choices=bootloaders.NAMES),
    Option("extlinux", "bool", True, "install extlinux in the disk image unless --grub (deprecated; where there "
           "is no PC BIOS, the /boot/extlinux/extlinux.conf that u-boot reads: --bootloader u-boot)", _G_LOADER),
    Option("board", "str", "",
           "build the disk image for a board: its architecture, bootloader, console, partition table, packages "
           "and the u-boot it reads raw from the medium (" + ", ".join(boards.NAMES) + ")", _G_LOADER, "NAME",
           parse=_V.choice("", *boards.NAMES), choices=boards.NAMES),
    Option("mbr", "bool", False, "extlinux: write the MBR with install-mbr instead of syslinux's", _G_LOADER),
    Option("grub", "bool", False, "install GRUB in the disk image (BIOS; UEFI with --use-uefi)", _G_LOADER),
)

BY_NAME: dict[str, Option] = {o.name: o for o in OPTIONS}
OUTPUTS: tuple[Option, ...] = tuple(o for o in OPTIONS if o.output)  # the output kinds, in the table's order

# Names from older vmdebootstrap versions that config files in the wild still carry.
# cliapp accepted them as settings; we accept and ignore the ones that only tuned cliapp itself.
IGNORED_LEGACY_KEYS = frozenset({"log-max", "log-keep", "output", "dump-memory-profile", "memory-dump-interval"})


def redacted(option: Option, value: object) -> object:
    """The value as the build shows it anywhere (--dump-config, the report): a secret option's
    (a password) as secret.REDACTED, the credentials of a URL in any other redacted."""
    if option.secret and value:
        return [secret.REDACTED] * len(value) if isinstance(value, list) else secret.REDACTED
    if isinstance(value, list):
        return [secret.without_credentials(str(item)) for item in value]
    return secret.without_credentials(value) if isinstance(value, str) else value


def default_of(option: Option) -> object:
    """A fresh copy of the default (lists must never be shared)."""
    value = option.default
    return list(value) if isinstance(value, list) else value


def parsed(option: Option, raw: object) -> object:
    """The typed value of ``option`` from its raw value (values.Invalid when it cannot be used)."""
    if option.parse is not None:
        return option.parse(raw)
    return {"bool": values.flag, "size": values.number, "list": values.strings}.get(option.kind, values.text)(raw)
