"""Everything a command inside the target needs, and nothing of the host's.

* ``api_filesystems``: proc, sysfs, a fresh tmpfs /dev with a handful of device
  nodes and a new devpts instance, and a tmpfs /run.  Never the host's devtmpfs:
  a devtmpfs mounted anywhere is the host's /dev (reliability.md §3.1).
* ``daemons_blocked``: policy-rc.d answering 101 and a diverted start-stop-daemon,
  as Debian's own tools do, removed again before the image is written.
* ``use_host_dns``: the host's resolv.conf inside the target while apt needs the
  network; the image gets its own resolv.conf at the end (finalize step).
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from . import mounts
from .context import Context

log = logging.getLogger("vmdebootstrap")

# (name, major, minor): the nodes that packages' maintainer scripts use.
DEVICE_NODES = (("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8), ("urandom", 1, 9),
                ("tty", 5, 0))  # fmt: skip
DEVICE_LINKS = (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
                ("stderr", "/proc/self/fd/2"), ("ptmx", "pts/ptmx"))  # fmt: skip

POLICY_RC_D = "usr/sbin/policy-rc.d"
POLICY_SCRIPT = "#!/bin/sh\n# Written by vmdebootstrap while it builds the image: start no daemons.\nexit 101\n"
FAKE_SSD = (
    "#!/bin/sh\n"
    "echo 'Warning: vmdebootstrap: fake start-stop-daemon called, doing nothing' >&2\n"
    "exit 0\n"
)


def target_path(root: Path, path: str) -> Path:
    """``path`` inside ``root`` with every symlink resolved *within* the target.

    A symlink in the image that points to /etc/... must lead to root/etc/...,
    never to the host's file.
    """
    current = root
    parts = [p for p in path.split("/") if p and p != "."]
    hops = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            current = current.parent if current != root else root
            continue
        candidate = current / part
        if candidate.is_symlink():
            hops += 1
            if hops > 40:
                raise OSError(f"too many symlinks below {root} resolving {path}")
            target = os.readlink(candidate)
            if target.startswith("/"):
                current = root
            parts = [p for p in target.split("/") if p and p != "."] + parts
            continue
        current = candidate
    return current


def exists_in(root: Path, path: str) -> bool:
    """Whether ``path`` exists in the image, symlinks followed inside it (not on the host).

    live-boot, for one, makes /usr/sbin/update-initramfs an absolute symlink.
    """
    return target_path(root, path).exists()


def has_unit(root: Path, unit: str) -> bool:
    return any(exists_in(root, f"{d}/systemd/system/{unit}") for d in ("/lib", "/usr/lib"))


def write_file(root: Path, path: str, content: str, mode: int = 0o644) -> Path:
    """Write a file inside the target, replacing (never following) a symlink at its place."""
    parent, _, name = path.rstrip("/").rpartition("/")
    target = target_path(root, parent) / name
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_symlink() or target.exists():
        target.unlink()
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    with os.fdopen(fd, "w") as stream:
        stream.write(content)
    os.chmod(target, mode)
    return target


@contextlib.contextmanager
def api_filesystems(ctx: Context) -> Iterator[None]:
    root = ctx.root
    with contextlib.ExitStack() as stack:
        def mnt(source: str, where: str, fstype: str, options: str) -> None:
            target = root / where
            target.mkdir(parents=True, exist_ok=True)
            mounts.mount(ctx.runner, stack, source, target, fstype=fstype, options=options, chroot_root=root)

        mnt("proc", "proc", "proc", "nosuid,nodev,noexec")
        mnt("sysfs", "sys", "sysfs", "ro,nosuid,nodev,noexec")
        mnt("tmpfs", "dev", "tmpfs", "mode=0755,nosuid")
        _populate_dev(root / "dev")
        mnt("devpts", "dev/pts", "devpts", "newinstance,ptmxmode=0666,mode=0620,gid=5")
        mnt("tmpfs", "run", "tmpfs", "mode=0755,nosuid,nodev")
        yield
        # Leftover daemons would keep the mounts busy; the stack unmounts next.
        mounts.kill_processes_in(root)


def _populate_dev(dev: Path) -> None:
    if not can_mknod():
        return
    for name, major, minor in DEVICE_NODES:
        node = dev / name
        os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(major, minor))
        os.chmod(node, 0o666)
    for name, target in DEVICE_LINKS:
        os.symlink(target, dev / name)
    for name in ("pts", "shm"):
        (dev / name).mkdir(exist_ok=True)
    os.chmod(dev / "shm", 0o1777)


def can_mknod() -> bool:
    # Device nodes need root; unit tests run the recipe as a normal user.
    return os.geteuid() == 0


def start_stop_daemon_path(root: Path) -> str:
    """Where dpkg ships start-stop-daemon in this release (/sbin before trixie, /usr/sbin since)."""
    listing = root / "var/lib/dpkg/info/dpkg.list"
    try:
        for line in listing.read_text().splitlines():
            if line.endswith("/start-stop-daemon"):
                return line
    except OSError:
        pass
    return "/sbin/start-stop-daemon"


@contextlib.contextmanager
def daemons_blocked(ctx: Context) -> Iterator[None]:
    """No maintainer script may start a daemon while we build (invoke-rc.d policy, 101)."""
    root = ctx.root
    policy = root / POLICY_RC_D
    saved_policy = policy.with_name("policy-rc.d.vmdebootstrap-saved")
    if policy.exists() or policy.is_symlink():
        policy.rename(saved_policy)
    write_file(root, "/" + POLICY_RC_D, POLICY_SCRIPT, 0o755)
    ssd = start_stop_daemon_path(root)
    diverted = False
    try:
        if exists_in(root, ssd):
            ctx.runner.run(["dpkg-divert", "--local", "--rename", "--add", ssd], chroot=root)
            diverted = True
            write_file(root, ssd, FAKE_SSD, 0o755)
        yield
    finally:
        if diverted:
            fake = target_path(root, ssd)
            # A hook may have removed it already (mmdebstrap tests the same).
            if fake.exists() or fake.is_symlink():
                fake.unlink()
            ctx.runner.run(["dpkg-divert", "--local", "--rename", "--remove", ssd], chroot=root)
        if policy.exists() or policy.is_symlink():
            policy.unlink()
        if saved_policy.exists():
            saved_policy.rename(policy)


def use_host_dns(ctx: Context) -> None:
    """Give apt inside the target the host's name servers (until the scrub at the end of the finish step).

    Called again before each stage that may use the network, because a package such as
    systemd-resolved turns /etc/resolv.conf into a symlink that leads nowhere in a chroot.
    """
    content = host_resolv_conf()
    ctx.lent_dns = content  # the scrub looks for copies of it that packages made
    write_file(ctx.root, "/etc/resolv.conf", content)


def package_listing(ctx: Context) -> str:
    """"package<TAB>version" per line, as dpkg-query shows what the target has: a --squash
    directory's filesystem.packages and the FILE.packages of --pkglist."""
    return ctx.runner.run(["dpkg-query", "--show"], chroot=ctx.root, capture=True).output


def host_resolv_conf() -> str:
    host = Path("/etc/resolv.conf")
    return host.read_text(errors="replace") if host.exists() else ""
