"""One record per Debian release: what differs between them, as plain data.

A new release is one ``Release`` entry in ``_TABLE``.  A codename this table does not
know is refused (``resolve``) unless the user names the release it follows
(``--distribution-like``): silently giving it the newest release's rules would build a
derivative or a future release with facts nobody checked.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime
from collections.abc import Callable, Mapping
from pathlib import Path

from .errors import UsageError

DISTRO_INFO_CSV = Path("/usr/share/distro-info/debian.csv")


@dataclasses.dataclass(frozen=True)
class Release:
    name: str  # the codename debootstrap and the mirror use
    systemd: bool = True  # the default init (jessie and later)
    ext4_boots: bool = True  # its bootloaders read ext4 (wheezy's extlinux and GRUB did not)
    ext4_metadata_csum: bool = True  # its e2fsck reads metadata_csum (#827130: not wheezy, jessie)
    uefi_arches: tuple[str, ...] | None = None  # None: every architecture with an EFI record
    initramfs_zstd: bool = True  # initramfs-tools compresses with zstd when installed (bullseye)
    resolved_split: bool = True  # systemd-resolved is a package of its own (bookworm)
    # How mmdebstrap makes the merged /usr debootstrap makes: "base-files" ships the symlinks
    # (trixie), "hook": its merged-usr hook with usr-is-merged (bookworm; left alone it installs
    # usrmerge and perl), "": it cannot (older releases are left to debootstrap).
    merged_usr: str = "base-files"
    # mksquashfs's default compressor for it (--squash-compression): zstd where its kernel reads
    # zstd squashfs (CONFIG_SQUASHFS_ZSTD, checked for bookworm), xz, which every Debian kernel
    # reads, before.  zstd:9 is some 15 times faster than xz for 14 % more (docs/performance.md).
    squashfs_compression: str = "zstd:9"
    password_hash: str = "yescrypt"  # what its chpasswd writes (through PAM and login.defs)
    sources_format: str = "deb822"  # the image's apt sources: deb822 debian.sources, or one-line sources.list
    updates_suite: bool = True  # has <name>-updates
    security_suite: str = "{name}-security"  # on security.debian.org; "" when it has none there
    # Its archive has the signed boot chain (shim-signed, grub-efi-*-signed, signed kernels) and
    # the chain is proven here; before bookworm the shims are old enough for firmware to revoke.
    secure_boot: bool = True
    kernel_flavours: Mapping[str, str] = dataclasses.field(default_factory=dict)  # per-arch overrides
    # Its archive's architectures (the Release file's); None: not checked (before bullseye).
    architectures: tuple[str, ...] | None = ("amd64", "arm64", "armhf", "i386", "loong64", "ppc64el", "riscv64",
                                              "s390x")
    # Architectures it has no default kernel for: why, and what to do instead ({release} is its name).
    no_default_kernel: Mapping[str, str] = dataclasses.field(default_factory=lambda: {"i386": _NO_I386_KERNEL})
    order: int = 0  # position in Debian's history (set below); sid comes last

    def __str__(self) -> str:
        return self.name

    def at_least(self, other: str) -> bool:
        """Whether this release is ``other`` or newer (``other`` must be in the table)."""
        return self.order >= _BY_NAME[other].order

    @property
    def security(self) -> str:
        return self.security_suite.format(name=self.name)


_NO_I386_KERNEL = ("{release} has no kernel for i386 (its i386 userland is for amd64 machines): build a chroot "
                   "or tarball with --no-kernel, or a bootable i386 system with --distribution bookworm")
_ARMEL_RPI_ONLY = ("the only armel kernel in {release} is linux-image-rpi (Raspberry Pi 1 and Zero): name it "
                   "with --kernel-package linux-image-rpi, or build with --no-kernel")


def _numbered(*releases: Release) -> tuple[Release, ...]:
    return tuple(dataclasses.replace(release, order=order) for order, release in enumerate(releases))


_BOOKWORM = Release("bookworm", merged_usr="hook", sources_format="one-line", no_default_kernel={},
                    architectures=("amd64", "arm64", "armel", "armhf", "i386", "mips64el", "mipsel", "ppc64el",
                                   "s390x"))
_BULLSEYE = dataclasses.replace(_BOOKWORM, name="bullseye", resolved_split=False, merged_usr="",
                                squashfs_compression="xz", secure_boot=False)
_BUSTER = dataclasses.replace(_BULLSEYE, name="buster", initramfs_zstd=False, password_hash="sha512",
                              updates_suite=False, architectures=None,
                              security_suite="")  # <name>/updates then; now on archive mirrors only
_JESSIE = dataclasses.replace(_BUSTER, name="jessie", ext4_metadata_csum=False, kernel_flavours={"i386": "586"})
_WHEEZY = dataclasses.replace(_JESSIE, name="wheezy", systemd=False, ext4_boots=False, uefi_arches=("amd64",),
                              kernel_flavours={"i386": "486"})
_TABLE = _numbered(
    # Releases older than wheezy, known by name only (nobody builds them): wheezy's facts.
    *(dataclasses.replace(_WHEEZY, name=name) for name in (
        "buzz", "rex", "bo", "hamm", "slink", "potato", "woody", "sarge", "etch", "lenny", "squeeze")),
    _WHEEZY,
    _JESSIE,  # i386: 586 (#786767)
    dataclasses.replace(_BUSTER, name="stretch"),
    _BUSTER,
    _BULLSEYE,
    _BOOKWORM,
    # i386 lost its kernel (release notes 5.1.1), mips64el and mipsel left, riscv64 came;
    # armel kept only the Raspberry Pi kernel.
    Release("trixie", architectures=("amd64", "arm64", "armel", "armhf", "i386", "ppc64el", "riscv64", "s390x"),
            no_default_kernel={"i386": _NO_I386_KERNEL, "armel": _ARMEL_RPI_ONLY}),
    Release("forky"),  # armel left, loong64 came
    Release("duke"),
    # unstable: no -updates, and its security fixes arrive in sid itself.
    Release("sid", updates_suite=False, security_suite=""),
)
_BY_NAME = {release.name: release for release in _TABLE}
# Used when distro-info-data is missing or out of date: the newest release this table knows as released.
FALLBACK_STABLE = "trixie"
SYMBOLIC = ("oldoldstable", "oldstable", "stable", "testing", "unstable")


def describe_default(field: str) -> str:
    """How a field's value changed over the releases, e.g. 'xz up to bullseye, zstd:9 from bookworm'
    (for the help texts), from wheezy on."""
    rows = [r for r in _TABLE if r.at_least("wheezy")]
    parts = []
    for index, release in enumerate(rows):
        value = getattr(release, field)
        if index == 0 or value != getattr(rows[index - 1], field):
            parts.append((value, release.name))
    if len(parts) == 1:
        return str(parts[0][0])
    text = [f"{value} from {name}" for value, name in parts[1:]]
    return ", ".join([f"{parts[0][0]} up to {rows[rows.index(_BY_NAME[parts[1][1]]) - 1].name}", *text])


def debootstrap_script(scripts: Path, release: Release) -> Path | None:
    """The script debootstrap builds ``release`` with when it has none of its own: that of the
    newest release it knows, as its own symlinks do for new releases.  None: there is none
    (the release is older than every script)."""
    scripted = [r for r in _TABLE if r.name != "sid" and (scripts / r.name).is_file()]
    if not scripted or scripted[-1].order >= release.order:
        return None
    return scripts / scripted[-1].name


def known() -> tuple[str, ...]:
    return tuple(release.name for release in _TABLE)


def get(name: str) -> Release:
    return _BY_NAME[name]


def _released(today: datetime.date) -> list[str]:
    """Debian's released codenames in order, from distro-info-data (empty when it is missing)."""
    try:
        with DISTRO_INFO_CSV.open() as stream:
            rows = list(csv.DictReader(stream))
    except OSError:
        return []
    return [row["series"] for row in rows
            if row.get("release") and datetime.date.fromisoformat(row["release"]) <= today]


MirrorAnswer = Callable[[str], str | None]


def codename(suite: str, today: datetime.date | None = None, ask: MirrorAnswer | None = None) -> str:
    """The codename a suite name stands for: stable, oldstable, oldoldstable, testing, unstable.

    As apt sees it: the Codename of the mirror's Release file for the suite (``ask``, when
    the mirror answers with a release this table knows), else distro-info-data's dates,
    else this table.  Other names are returned as they are (lower case).
    """
    suite = suite.lower()
    if suite not in SYMBOLIC:
        return suite
    answered = ask(suite) if ask is not None else None
    if answered in _BY_NAME:
        return str(answered)
    released = [r for r in _released(today or datetime.date.today()) if r in _BY_NAME]
    if not released:
        released = [r.name for r in _TABLE if r.order <= _BY_NAME[FALLBACK_STABLE].order]
    offsets = {"stable": 1, "oldstable": 2, "oldoldstable": 3}
    if suite in offsets:
        return released[-offsets[suite]]
    if suite == "testing":
        return _TABLE[_BY_NAME[released[-1]].order + 1].name
    return "sid"


def resolve(suite: str, like: str = "", ask: MirrorAnswer | None = None) -> Release:
    """The release record for ``--distribution``; ``like`` names the release an unknown one follows."""
    name = codename(suite, ask=ask)
    if name in _BY_NAME:
        return _BY_NAME[name]
    if not like:
        raise UsageError(f"--distribution {suite}: not a Debian release vmdebootstrap knows "
                         f"({', '.join(known())}); if it follows one of them, say which with "
                         "--distribution-like")
    base = _BY_NAME.get(codename(like))
    if base is None:
        raise UsageError(f"--distribution-like {like}: not a Debian release vmdebootstrap knows "
                         f"({', '.join(known())})")
    return dataclasses.replace(base, name=name)
