"""Shared by the integration and boot tiers: real builds as root against the Debian
mirror of this machine's apt sources.

Each image is built once per session and many tests read it (and the boot tier
boots it).  The package cache
(/var/cache/vmdebootstrap) is shared by all builds, so repeated runs are fast.
On CI (CI=true) a missing prerequisite fails the tier instead of skipping it.
"""

from __future__ import annotations

import atexit
import functools
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
HOOKS = REPO / "tests/integration/hooks"
PASSWORD = "Vmdb-S3cret-pw"
ROOT_PASSWORD = "Vmdb-R00t-pw"


def machine_mirror() -> str:
    """The first Debian (not security) mirror in this machine's apt sources."""
    texts = []
    for path in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]:
        if path.suffix in (".list", ".sources") or path.name == "sources.list":
            try:
                texts.append(path.read_text())
            except OSError:
                continue
    for text in texts:
        for url in re.findall(r"(?:^deb\s+(?:\[[^\]]*\]\s+)?|^URIs:\s*)(\S+)", text, re.MULTILINE):
            if url.rstrip("/").endswith("/debian") and "security" not in url:
                return url.rstrip("/") + "/"
    return "http://deb.debian.org/debian/"


def https_variant(url: str) -> str:
    return re.sub(r"^http://", "https://", url)


def require(condition: bool, reason: str) -> None:
    if condition:
        return
    if os.environ.get("CI"):
        pytest.fail(f"integration tier expected to run on CI but cannot: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def mirror() -> str:
    require(os.geteuid() == 0, "needs root")
    require(shutil.which("debootstrap") is not None, "needs debootstrap (make install)")
    return machine_mirror()


@pytest.fixture(scope="session")
def outdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("builds")


def workdir_for(outdir: Path, name: str) -> Path:
    """A work directory for one build, so that its leftovers (if any) are its own to see
    even while another test session builds next to it."""
    path = outdir / f"work-{name}"
    path.mkdir()
    return path


class Canary:
    """What the builds of this session see of their host, made unique so that a test can look
    for it in what they made (tests/hostcheck.py): a resolv.conf whose search domain and
    last name server are nobody's (203.0.113.0/24 is TEST-NET-3), and a host name.  The host's
    own name servers stay first: apt in the build still resolves the mirror."""

    def __init__(self) -> None:
        token = secrets.token_hex(6)
        self.search = f"vmdb-canary-{token}.invalid"
        self.nameserver = f"203.0.113.{100 + secrets.randbelow(150)}"
        self.hostname = f"vmdb-host-{token}"
        directory = Path(tempfile.mkdtemp(prefix="vmdb-canary-"))
        atexit.register(shutil.rmtree, directory, ignore_errors=True)
        self.resolv_conf = directory / "resolv.conf"
        host = Path("/etc/resolv.conf").read_text() if Path("/etc/resolv.conf").exists() else ""
        self.resolv_conf.write_text(f"{host.rstrip()}\nsearch {self.search}\nnameserver {self.nameserver}\n")

    @property
    def needles(self) -> tuple[str, ...]:
        return self.search, self.nameserver, self.hostname

    def wrap(self, command: list[str]) -> list[str]:
        """``command`` in a mount and UTS namespace of its own where /etc/resolv.conf is the
        canary's and the host name is the canary's; the PID stays the command's (exec)."""
        script = 'mount --bind "$0" /etc/resolv.conf && hostname "$1" && shift && exec "$@"'
        return ["unshare", "--mount", "--uts", "--propagation", "private", "--", "sh", "-c", script,
                str(self.resolv_conf), self.hostname, *command]


@functools.cache
def canary() -> Canary:
    return Canary()


# How the tests start the tool for a build:
# * at nice 10: make check's twelve sessions keep some twenty processes runnable on two cores,
#   and the TCG guests the boot tests start beside them (at nice 0) must still name their
#   disks and serial port within systemd's 90 s (a BIOS image's /boot and swap did not under a
#   load of 22, 2026-12-06, and went to emergency mode);
# * the shared cache keeps 30 stages and bases instead of 6: make check's sessions save some
#   twenty, and the main session's warm rebuild must still find the live build's (it was
#   evicted twice on 2026-12-06, once by a build of the other main session).
TOOL = ("nice", "-n", "10", sys.executable, "-m", "vmdebootstrap", "--no-default-configs", "--cache-entries", "30")


def vmdebootstrap(*args: str, env: dict[str, str] | None = None, timeout: int = 1500,
                  umask: int | None = None) -> subprocess.CompletedProcess[str]:
    """A build as a user runs it (TOOL), but seeing the canary's resolv.conf and host name."""
    command = canary().wrap([*TOOL, *args])
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=REPO,
                          env={**os.environ, **(env or {})}, check=False, umask=-1 if umask is None else umask)


# This session's base temporary directory (pytest's /tmp/pytest-of-root/pytest-N), once known.
_BASETEMP: list[Path] = []


@pytest.fixture(scope="session", autouse=True)
def _session_basetemp(tmp_path_factory: pytest.TempPathFactory) -> None:
    _BASETEMP.append(tmp_path_factory.getbasetemp())


def our_mounts() -> list[str]:
    """Mount points this session's tests or builds left: below its own base temporary directory,
    or named for vmdebootstrap elsewhere.  make check runs a dozen sessions at once, and another
    session's test may hold a mount of its own in its directory meanwhile (the trixie host's
    leak check once failed on the main session's tmpfs and a board test's image mount)."""
    points = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    if not _BASETEMP:  # outside a pytest session (python -m tests.faults.campaign)
        return [p for p in points if "vmdebootstrap" in p or p.startswith("/tmp/pytest")]
    mine = str(_BASETEMP[0])
    return [p for p in points if p == mine or p.startswith(mine + "/")
            or ("vmdebootstrap" in p and not p.startswith("/tmp/pytest"))]


def loop_devices_of(image: Path) -> list[str]:
    """Loop devices whose backing file is ``image`` (a leak check), from sysfs."""
    found = []
    for backing in Path("/sys/block").glob("loop*/loop/backing_file"):
        try:
            if backing.read_text().strip() == os.fspath(image):
                found.append("/dev/" + backing.parts[3])
        except OSError:
            continue
    return found


def squashfs_files(squashfs: Path) -> list[str]:
    listing = subprocess.run(["unsquashfs", "-l", "-d", "", str(squashfs)], capture_output=True, text=True,
                             check=True).stdout
    return [line for line in listing.splitlines() if line.startswith("/")]


@pytest.fixture(scope="session")
def unpack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """unpack(squashfs, *paths) -> directory with those paths extracted."""
    made: list[Path] = []

    def extract(squashfs: Path, *paths: str) -> Path:
        target = tmp_path_factory.mktemp("unsquash") / "root"
        subprocess.run(["unsquashfs", "-f", "-d", str(target), str(squashfs), *paths], capture_output=True,
                       check=True)
        made.append(target)
        return target

    yield extract


# Every guest make check boots runs beside its other sessions, where a guest's udev took more
# than systemd's 90 s to name its serial port and the serial getty never started: riscv64's
# /dev/ttyS0 (alone it logged in after 97 s), then with a load of 10 both arm64 UEFI boots'
# /dev/ttyAMA0, then the xfce ISO's /dev/ttyS0 (its live-config took 5.7 minutes; the display
# manager started, the serial login never came), then with a load of 14 the amd64 UEFI qcow2
# image's /dev/ttyS0.  So every build a boot test boots waits longer, through --kernel-append
# (the Raspberry Pi's boot test adds the same itself).
SLOW_GUEST_APPEND = ("--kernel-append", "systemd.default_device_timeout_sec=600")


def live_build(mirror: str, outdir: Path, name: str, hostname: str, hook: Path, *args: str) -> dict[str, object]:
    """examples/live.conf as the README builds it, plus a squash directory, the test hook,
    a second user under --force-password-change, and ``args``."""
    squash = outdir / name
    log = outdir / f"{name}.log"
    workdir = workdir_for(outdir, name)
    result = vmdebootstrap(
        "--config", "examples/live.conf", "--workdir", str(workdir),
        "--squash", str(squash), "--iso", str(outdir / f"{name}.iso"), "--no-boot-test", "--log", str(log),
        "--mirror", mirror, "--apt-mirror", https_variant(mirror),
        "--hostname", hostname,
        "--user", f"user/{PASSWORD}", "--user", "guest", "--force-password-change",
        "--customize", str(hook), *SLOW_GUEST_APPEND, *args,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return {"dir": squash, "iso": outdir / f"{name}.iso", "log": log, "mirror": mirror, "result": result,
            "workdir": workdir}


@pytest.fixture(scope="session")
def live(mirror: str, outdir: Path) -> dict[str, object]:
    """The live example with the test hook that calls every helper."""
    return live_build(mirror, outdir, "live", "vmdb-test", HOOKS / "every-helper.sh")


@pytest.fixture(scope="session")
def live_warm(live: dict[str, object], mirror: str, outdir: Path) -> dict[str, object]:
    """The ``live`` build again, differing only after the packages step (its hook, host name
    and root's password): its root comes from the stage cache the first build filled (issue 8)."""
    return live_build(mirror, outdir, "live-warm", "vmdb-warm", HOOKS / "marks-warm.sh",
                      "--no-lock-root-password", "--root-password", ROOT_PASSWORD)


LIVE_PACKAGES = "live-boot,live-config,live-config-systemd"


def release_build(mirror: str, outdir: Path, name: str, *args: str, timeout: int = 1500) -> dict[str, object]:
    """A small live system of another release or architecture: live-boot and live-config, user
    ``user`` in the sudo group, root locked, apt pointed at the https form of the mirror."""
    log = outdir / f"{name}.log"
    workdir = workdir_for(outdir, name)
    result = vmdebootstrap("--mirror", mirror, "--configure-apt", "--apt-mirror", https_variant(mirror),
                           "--package", LIVE_PACKAGES, "--user", f"user/{PASSWORD}", "--sudo",
                           "--lock-root-password", "--hostname", name, "--workdir", str(workdir), "--log", str(log),
                           *SLOW_GUEST_APPEND, *args, timeout=timeout)
    assert result.returncode == 0, result.stderr[-3000:]
    return {"log": log, "workdir": workdir, "result": result, "mirror": mirror}


def release_iso(mirror: str, outdir: Path, name: str, *args: str) -> dict[str, object]:
    built = release_build(mirror, outdir, name, "--iso", str(outdir / f"{name}.iso"),
                          "--squash", str(outdir / name), *args)
    return {**built, "iso": outdir / f"{name}.iso", "dir": outdir / name}


@pytest.fixture(scope="session")
def bookworm_iso(mirror: str, outdir: Path) -> dict[str, object]:
    """The previous release's live ISO (BIOS and UEFI), with the unsigned GRUB of --no-secure-boot."""
    return release_iso(mirror, outdir, "bookworm", "--distribution", "bookworm", "--no-secure-boot")


@pytest.fixture(scope="session")
def forky_iso(mirror: str, outdir: Path) -> dict[str, object]:
    """Testing, by its codename, with debootstrap (which has no script for it yet).  The
    mirror's testing Release file may have expired when the mirror is frozen in time."""
    return release_iso(mirror, outdir, "forky", "--distribution", "forky", "--bootstrapper", "debootstrap",
                       "--no-check-valid-until")


@pytest.fixture(scope="session")
def i386_iso(mirror: str, outdir: Path) -> dict[str, object]:
    """i386 boots up to bookworm (trixie has no i386 kernel): ISOLINUX and 32-bit UEFI GRUB."""
    return release_iso(mirror, outdir, "i386", "--distribution", "bookworm", "--arch", "i386")


@pytest.fixture(scope="session")
def sid_squash(mirror: str, outdir: Path) -> dict[str, object]:
    """Unstable as a live root filesystem, the next breakage's first sight."""
    built = release_build(mirror, outdir, "sid", "--distribution", "sid", "--squash", str(outdir / "sid"),
                          "--no-check-valid-until")
    return {**built, "dir": outdir / "sid"}


@pytest.fixture(scope="session")
def binfmt_ready() -> None:
    require(Path("/proc/sys/fs/binfmt_misc/qemu-aarch64").exists(),
            "qemu-user binfmt handlers are not registered (make install sets them up)")


# test_reproducible builds the arm64 squashfs again: a clear-text password's salt is random without it.
ARM64_SEED = ("--seed", "vmdb-arm64")

@pytest.fixture(scope="session")
def arm64(mirror: str, outdir: Path, binfmt_ready: None) -> Path:
    """examples/live-arm64.conf under qemu-user emulation: a squash directory and a UEFI ISO."""
    squash = outdir / "arm64"
    result = vmdebootstrap("--config", "examples/live-arm64.conf", "--squash", str(squash),
                           "--workdir", str(workdir_for(outdir, "arm64")),
                           "--iso", str(outdir / "arm64.iso"), "--mirror", mirror, "--user", f"user/{PASSWORD}",
                           "--log", str(outdir / "arm64.log"), *ARM64_SEED, *SLOW_GUEST_APPEND, timeout=3600)
    assert result.returncode == 0, result.stderr[-3000:]
    return squash


def image_build(mirror: str, outdir: Path, name: str, *args: str, timeout: int = 1500,
                distribution: str = "trixie") -> dict[str, object]:
    """Build one disk image for the image tests and their boot tests (with SLOW_GUEST_APPEND)."""
    image = outdir / "images" / name  # the directory does not exist yet: the tool makes it
    log = outdir / f"{name}.log"
    workdir = workdir_for(outdir, name)
    result = vmdebootstrap("--distribution", distribution, "--image", str(image), "--mirror", mirror,
                           "--user", f"user/{PASSWORD}", "--serial-console", "--workdir", str(workdir),
                           "--log", str(log), *SLOW_GUEST_APPEND, *args, timeout=timeout)
    assert result.returncode == 0, result.stderr[-3000:]
    return {"image": image, "log": log, "workdir": workdir, "result": result}


@pytest.fixture(scope="session")
def bios_image(mirror: str, outdir: Path) -> dict[str, object]:
    """BIOS GRUB, a separate /boot (ext3), swap, room for a board bootloader, and a hook."""
    return image_build(mirror, outdir, "bios.img", "--size", "3G", "--grub", "--bootsize", "256M",
                       "--boottype", "ext3", "--swap", "256M", "--bootoffset", "4M", "--sparse", "--sudo",
                       "--hostname", "vmdb-bios", "--pkglist", "--owner", "nobody",
                       "--customize", str(HOOKS / "image-hook.sh"))


@pytest.fixture(scope="session")
def uefi_image(mirror: str, outdir: Path) -> dict[str, object]:
    """UEFI GRUB (64 and 32 bit) on GPT, btrfs root, converted to qcow2."""
    return image_build(mirror, outdir, "uefi.qcow2", "--size", "3G", "--part-type", "gpt", "--use-uefi",
                       "--grub", "--uefi-ia32", "--roottype", "btrfs", "--convert-qcow2", "--sudo",
                       "--hostname", "vmdb-uefi")


@pytest.fixture(scope="session")
def extlinux_image(mirror: str, outdir: Path) -> dict[str, object]:
    """The old default: extlinux (with install-mbr), ext3, zero-filled (not sparse); bookworm,
    the disk image that keeps the previous release proven."""
    return image_build(mirror, outdir, "extlinux.img", "--size", "2G", "--roottype", "ext3", "--mbr", "--sudo",
                       "--hostname", "vmdb-ext", distribution="bookworm")


@pytest.fixture(scope="session")
def arm64_image(mirror: str, outdir: Path, binfmt_ready: None) -> dict[str, object]:
    """examples/vm-arm64.conf under qemu-user emulation."""
    return image_build(mirror, outdir, "arm64.qcow2", "--config", "examples/vm-arm64.conf", "--no-boot-test",
                       timeout=3600)


# The boards' images (issue 25), each built once under qemu-user emulation in the "boards"
# session of make check; the arm64 one shares its base (release, variant, components) with
# examples/vm-arm64.conf's, so that bootstrap is paid once (the base cache's lock).
def board_build(mirror: str, outdir: Path, name: str, config: str, *args: str) -> dict[str, object]:
    return image_build(mirror, outdir, name, "--config", config, "--no-boot-test", *ARM64_SEED, *args, timeout=3600)




@pytest.fixture(scope="session")
def uboot_arm64_image(mirror: str, outdir: Path, binfmt_ready: None) -> dict[str, object]:
    return board_build(mirror, outdir, "uboot-arm64.img", "examples/uboot-arm64.conf")


@pytest.fixture(scope="session")
def beaglebone_image(mirror: str, outdir: Path, binfmt_ready: None) -> dict[str, object]:
    """examples/beaglebone.conf (armhf, a FAT /boot with lba, the board's u-boot raw on the
    card), its console on QEMU virt's PL011 so that the boot tier can log in."""
    return board_build(mirror, outdir, "beaglebone.img", "examples/beaglebone.conf", "--serial-port", "ttyAMA0")


@pytest.fixture(scope="session")
def riscv64_image(mirror: str, outdir: Path, binfmt_ready: None) -> dict[str, object]:
    return board_build(mirror, outdir, "riscv64.img", "examples/riscv64.conf")


@pytest.fixture(scope="session")
def raspi_image(mirror: str, outdir: Path, binfmt_ready: None) -> dict[str, object]:
    return board_build(mirror, outdir, "raspi.img", "examples/raspi.conf")


@pytest.fixture(scope="session")
def xfce_iso(mirror: str, outdir: Path) -> dict[str, object]:
    """examples/flavours/xfce.conf without Recommends (the official set is some 3 GB): the
    desktop, Calamares and the ISO's offline archive (issue 24)."""
    iso = outdir / "xfce.iso"
    log = outdir / "xfce.log"
    result = vmdebootstrap("--config", "examples/flavours/xfce.conf", "--no-recommends", "--iso", str(iso),
                           "--mirror", mirror, "--user", f"user/{PASSWORD}", "--no-boot-test",
                           "--workdir", str(workdir_for(outdir, "xfce")), "--log", str(log),
                           *SLOW_GUEST_APPEND, timeout=3000)
    assert result.returncode == 0, result.stderr[-3000:]
    return {"iso": iso, "log": log, "result": result}
