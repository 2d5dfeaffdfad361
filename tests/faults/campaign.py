"""The fault campaign: every step of a small build x {fail, SIGINT, SIGTERM, SIGKILL}.

Run alone (as root, from the repository):  python -m tests.faults.campaign [--jobs 2]
or through ``make faults``; tests/faults/test_campaign.py runs it in the integration tier.

Each cell is one build (trixie minbase without a kernel, ``--package less`` so the
packages step exists, a hook that mounts through the helpers and leaves a detached
process in the image) that is made to fail, or is stopped at the start of a step and
sent a signal.  The rows of a disk image's own steps (the bootloader, u-boot's
u-boot-menu here, and the image) build a 1.5 GB image with a kernel instead: loop
devices and the image's mounts are then in play.  Only the bootstrap rows bootstrap: a first build without a fault fills
a base and a stage cache of the campaign's own; the packages rows copy their tree from
the base (the bootstrapper's tree) and the rows after them mount the stage (the package
installed) under an overlay, as a warm rebuild does.  A cell then takes seconds instead
of half a minute, and each one checks that the cached trees came out of it unchanged.
A second set of rows sends the signal *during* the step's command:
while dpkg runs in the target, while a package's postinst runs, while the hook runs,
while mksquashfs or tar writes the output.  After each build the campaign looks at the
host from the outside and reports what it left:

* the exit status (1 for fail, 128+N for SIGINT and SIGTERM) and the one-line message;
* mounts at or below the cell's directories in the host's mountinfo, and whether any
  process still holds the build's mount namespace (its mounts live as long as one does);
* loop devices backed by a file of the cell (``losetup -a``);
* processes whose root or cwd is in the cell's directories, or that live in the build's
  PID namespace; and, for a build stopped after the finish step, processes still
  running inside the image at that moment (the finish step must have killed them);
* anything in the output directory (final files, ``.vmdebootstrap-partial-*`` staging
  files, a squash directory the build made), and anything left in the work directory;
* after SIGKILL: exactly one stale work directory with its marker, which the next build
  removes (and, with it, the killed build's staged outputs);
* host files: the hooks and the helper library, the probe package, /etc/resolv.conf,
  the host's device nodes, the package cache (it may gain files; none may change or
  vanish), and the trees in the campaign's base and stage caches (nothing may change).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import dataclasses
import errno
import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from tests.conftest import HOOKS, REPO, machine_mirror

STEPS = ("bootstrap", "packages", "system", "users", "customize", "bootloader", "finish", "image", "squashfs",
         "tarball")
# The rows of the disk image's own steps build an image (u-boot: u-boot-menu, natively on the
# host's architecture) with a kernel; the other rows a tarball or a squashfs without one.
IMAGE_STEPS = ("bootloader", "image")
FAULTS = ("fail", "SIGINT", "SIGTERM", "SIGKILL")
SIGNALS = {"SIGINT": signal.SIGINT, "SIGTERM": signal.SIGTERM, "SIGKILL": signal.SIGKILL}
# Rows whose signal arrives while the step's command runs, and what the campaign waits for.
DURING = {
    "bootstrap": "dpkg in the target",
    "packages": "a postinst",
    "customize": "the hook",
    "squashfs": "mksquashfs",
    "tarball": "tar",
}
# Steps that run after the finish step killed what was left inside the image.
AFTER_FINISH = ("image", "squashfs", "tarball")
# Where each row's tree comes from: the campaign's base cache (bootstrapped once) for the
# packages step, its stage cache (packages installed) for the steps after it.
WARM = {"packages": "bases", **{step: "stages" for step in STEPS[2:]}}
# The cells' work directories are on a tmpfs and their package caches are not, where
# "auto" takes debootstrap; named, so that the first build's stage has the cells' key.
BOOTSTRAPPER = "debootstrap"

MINIMAL = ("--distribution", "trixie", "--variant", "minbase", "--no-acpid")
IMAGE = ("--size", "1500M", "--bootloader", "u-boot")
HOOK = HOOKS / "leaves-mount-and-process.sh"
WAITING_HOOK = HOOKS / "waits-for-signal.sh"
HELPERS = REPO / "vmdebootstrap/data/customise.lib"
CACHE = Path("/var/cache/vmdebootstrap/debs")
HOST_DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
PROBE_READY = "tmp/vmdb-fault-probe.ready"
HOOK_READY = "tmp/vmdb-hook-waiting"
# Safety limits, not assertions: a build that never gets there is reported as such.
REACH_LIMIT = 900.0
EXIT_LIMIT = 300.0


def build_args(image: bool) -> list[str]:
    """What every build of the campaign is made of; an image row's has a kernel for u-boot-menu."""
    return [*MINIMAL, *(() if image else ("--no-kernel",)), "--package", "less"]


def output_args(case: Case, out: Path) -> list[str]:
    if case.image:
        return ["--image", str(out / "disk.img"), *IMAGE]
    if case.step == "squashfs":
        return ["--squash", str(out / "squash")]
    name = "root.tar.gz" if case.during and case.step == "tarball" else "root.tar"
    return ["--tarball", str(out / name)]


@dataclasses.dataclass(frozen=True)
class Case:
    step: str
    fault: str
    during: bool = False
    # The cells run with their package cache on another filesystem than their work
    # directory, where "auto" takes debootstrap; mmdebstrap gets rows of its own.
    bootstrapper: str = ""

    @property
    def row(self) -> str:
        step = f"{self.step} ({self.bootstrapper})" if self.bootstrapper else self.step
        return f"{step} (in {DURING[self.step]})" if self.during else step

    @property
    def name(self) -> str:
        step = f"{self.step}-{self.bootstrapper}" if self.bootstrapper else self.step
        return f"{step}-{'in' if self.during else 'at'}-{self.fault}"

    @property
    def warm(self) -> str:
        """The cache directory (bases, stages) whose tree this cell starts from ('' cold)."""
        return "" if self.bootstrapper else WARM.get(self.step, "")

    @property
    def image(self) -> bool:
        return self.step in IMAGE_STEPS

    @property
    def expected_exit(self) -> int:
        if self.fault == "fail":
            return 1
        return 128 + SIGNALS[self.fault]


@dataclasses.dataclass
class Outcome:
    case: Case
    exit: int | None = None
    mounts: list[str] = dataclasses.field(default_factory=list)
    loops: list[str] = dataclasses.field(default_factory=list)
    procs: list[str] = dataclasses.field(default_factory=list)
    outputs: list[str] = dataclasses.field(default_factory=list)
    workdir: list[str] = dataclasses.field(default_factory=list)
    host: list[str] = dataclasses.field(default_factory=list)
    problems: list[str] = dataclasses.field(default_factory=list)  # wrong status, message, never reached
    stale_removed: bool = False
    seconds: float = 0.0

    @property
    def leaks(self) -> int:
        return len(self.mounts) + len(self.loops) + len(self.procs) + len(self.outputs) + len(self.workdir) \
            + len(self.host)

    @property
    def ok(self) -> bool:
        return not self.leaks and not self.problems

    def cell(self) -> str:
        status = "killed" if self.exit == -signal.SIGKILL else f"exit={self.exit}"
        text = (f"{'ok' if self.ok else 'LEAK' if self.leaks else 'FAIL'} {status} {len(self.mounts)} mounts "
                f"{len(self.loops)} loops {len(self.procs)} procs")
        if self.outputs or self.workdir:
            text += f" {len(self.outputs) + len(self.workdir)} files"
        if self.host:
            text += f" {len(self.host)} host changes"
        if self.case.fault == "SIGKILL" and self.stale_removed:
            text += ", stale removed"
        return text

    def details(self) -> list[str]:
        found = [("mount", self.mounts), ("loop", self.loops), ("process", self.procs),
                 ("output", self.outputs), ("work dir", self.workdir), ("host", self.host),
                 ("problem", self.problems)]
        return [f"{self.case.row} x {self.case.fault}: {kind}: {item}" for kind, items in found for item in items]


# --- what the host looks like -------------------------------------------------------------

def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else "missing"


def tree_state(directory: Path) -> dict[str, tuple[int, int, int, int]]:
    """(mode, size, mtime, inode) of everything in the cached trees below ``directory``."""
    found = {}
    for tree in sorted(directory.glob("*/*/root")):
        for parent, dirs, files in os.walk(tree):
            for name in [*dirs, *files]:
                st = os.lstat(os.path.join(parent, name))
                found[os.path.join(parent, name)] = (st.st_mode, st.st_size, st.st_mtime_ns, st.st_ino)
    return found


@dataclasses.dataclass
class HostSnapshot:
    files: dict[str, str]
    devices: dict[str, tuple[int, int]]
    cache: dict[str, tuple[int, int, int]]
    trees: dict[str, tuple[int, int, int, int]]  # the campaign's base and stage caches

    @classmethod
    def take(cls, probe: Path, shared: Path) -> HostSnapshot:
        files = {str(p): _sha256(p) for p in (HOOK, WAITING_HOOK, HELPERS, probe, Path("/etc/resolv.conf"))}
        devices = {}
        for name in HOST_DEVICES:
            with contextlib.suppress(OSError):
                st = os.lstat(f"/dev/{name}")
                devices[name] = (st.st_mode, st.st_rdev)
        cache = {}
        if CACHE.is_dir():
            for entry in os.scandir(CACHE):
                if entry.is_file(follow_symlinks=False):  # partial/ and the lock are apt's business
                    st = entry.stat(follow_symlinks=False)
                    cache[entry.name] = (st.st_size, st.st_mtime_ns, st.st_ino)
        return cls(files, devices, cache, tree_state(shared))

    def changes_since(self, before: HostSnapshot) -> list[str]:
        found = [f"{path} changed" for path, digest in before.files.items() if self.files.get(path) != digest]
        found += [f"/dev/{name} changed or vanished" for name, value in before.devices.items()
                  if self.devices.get(name) != value]
        # The cache may gain files (another build downloads); none may change or vanish.
        found += [f"cache file {name} {'changed' if name in self.cache else 'vanished'}"
                  for name, value in before.cache.items() if self.cache.get(name) != value]
        # A cell's tree is an overlay above the stage or a copy of the base: neither is written.
        changed = [path for path in before.trees.keys() | self.trees.keys()
                   if before.trees.get(path) != self.trees.get(path)]
        found += [f"cached tree changed: {path}" for path in sorted(changed)[:5]]
        return found


def _below(path: str, base: Path) -> bool:
    text = str(base)
    return path == text or path.startswith(text.rstrip("/") + "/")


def mounts_below(base: Path) -> list[str]:
    points = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    return [p for p in points if _below(p, base)]


def loops_of(base: Path) -> list[str]:
    listing = subprocess.run(["losetup", "-a"], capture_output=True, text=True, check=False).stdout
    return [line for line in listing.splitlines() if str(base) in line]


def _pids() -> list[int]:
    return [int(entry) for entry in os.listdir("/proc") if entry.isdigit()]


def _link(pid: int, name: str) -> str:
    try:
        return os.readlink(f"/proc/{pid}/{name}")
    except OSError:
        return ""


def _describe(pid: int) -> str:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        cmdline = "?"
    return f"pid {pid} root={_link(pid, 'root')} cwd={_link(pid, 'cwd')}: {cmdline.strip()}"


def procs_in(base: Path) -> list[str]:
    """Processes whose root directory or working directory is in ``base``."""
    return [_describe(pid) for pid in _pids()
            if _below(_link(pid, "root"), base) or _below(_link(pid, "cwd"), base)]


def procs_in_namespace(kind: str, namespace: str) -> list[int]:
    if not namespace:
        return []
    return [pid for pid in _pids() if pid != os.getpid() and _link(pid, f"ns/{kind}") == namespace]


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def build_namespaces(outer: int, pins: list[int]) -> tuple[str, str]:
    """(pid, mnt) namespaces of the build: outer python -> unshare -> the build (PID 1 there).

    Each is pinned by an open descriptor (appended to ``pins``) until the cell has been looked
    at: the kernel reuses a freed namespace's inode number, and another build running beside
    the campaign (make check runs sessions side by side) once got the number of a killed
    build's namespace and was reported as its leak."""
    for unshare in _children(outer):
        for inner in _children(unshare):
            pid_ns, mnt_ns = _link(inner, "ns/pid"), _link(inner, "ns/mnt")
            if not pid_ns or pid_ns == _link(os.getpid(), "ns/pid"):
                continue
            try:
                opened = [os.open(f"/proc/{inner}/ns/{kind}", os.O_RDONLY) for kind in ("pid", "mnt")]
            except OSError:
                return "", ""  # gone already: the caller tries again
            pins += opened
            if (_link(inner, "ns/pid"), _link(inner, "ns/mnt")) != (pid_ns, mnt_ns):
                return "", ""
            return pid_ns, mnt_ns
    return "", ""


def unpin(pins: list[int]) -> None:
    while pins:
        os.close(pins.pop())


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


# --- one cell -----------------------------------------------------------------------------

@dataclasses.dataclass
class Cell:
    case: Case
    dir: Path  # work and output directories (on the campaign's scratch filesystem)
    logs: Path  # the build's log and messages (kept on disk)
    mirror: str
    probe: Path
    cache: Path  # the package cache this build uses
    shared: Path  # the campaign's base and stage caches (the first build's)

    @property
    def work(self) -> Path:
        return self.dir / "work"

    @property
    def out(self) -> Path:
        return self.dir / "out"

    def output_args(self) -> list[str]:
        return output_args(self.case, self.out)

    def argv(self) -> list[str]:
        hook = WAITING_HOOK if self.case.during and self.case.step == "customize" else HOOK
        args = [*build_args(self.case.image), "--mirror", self.mirror, "--customize", str(hook),
                "--workdir", str(self.work), "--log", str(self.logs / "build.log"), "--cache-dir", str(self.cache),
                *self.output_args()]
        if self.case.during and self.case.step == "packages":
            args += ["--custom-package", str(self.probe)]
        args += ["--bootstrapper", self.case.bootstrapper or BOOTSTRAPPER]
        return [sys.executable, "-m", "vmdebootstrap", "--no-default-configs", *args]

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("VMDEBOOTSTRAP_FAULT")}
        if not self.case.during:
            action = "fail" if self.case.fault == "fail" else "wait"
            env["VMDEBOOTSTRAP_FAULT"] = f"{self.case.step}:{action}"
            env["VMDEBOOTSTRAP_FAULT_READY"] = str(self.logs / "ready")
        return env

    def roots(self) -> list[Path]:
        return list(self.work.glob("vmdebootstrap-*/root"))

    def written(self) -> list[Path]:
        """Where the build's writes to its root land, as the campaign sees them: the root
        itself, or for a tree from the stage cache the overlay's upper directory (the
        overlay is mounted in the build's own mount namespace, not in ours)."""
        return [*self.roots(), *self.work.glob("vmdebootstrap-*/upper")]

    def reached(self, pid_ns: str) -> bool:
        """Whether the build is where the signal must arrive."""
        if not self.case.during:
            return (self.logs / "ready").exists()
        step = self.case.step
        if step == "packages":
            return any((root / PROBE_READY).exists() for root in self.written())
        if step == "customize":
            return any((root / HOOK_READY).exists() for root in self.written())
        for pid in procs_in_namespace("pid", pid_ns):
            if step == "bootstrap" and _comm(pid) == "dpkg" and _link(pid, "root") not in ("", "/"):
                return True
            if step == "squashfs" and _comm(pid) == "mksquashfs":
                return True
            # the tarball step's own tar (the output's), not one of the bootstrap's
            if step == "tarball" and _comm(pid) == "tar" and "--create" in _cmdline(pid).split():
                return True
        return False


def run_cell(cell: Cell, before: HostSnapshot) -> Outcome:
    case = cell.case
    outcome = Outcome(case)
    started = time.monotonic()
    cell.work.mkdir(parents=True)
    cell.out.mkdir()
    cell.logs.mkdir(parents=True)
    shared = link_cache(cell.cache)
    if case.warm:
        (cell.cache / case.warm).symlink_to(cell.shared / case.warm)
    # Its own session: SIGINT goes to the process group, as a terminal's Ctrl-C would.
    proc = subprocess.Popen(cell.argv(), cwd=REPO, env=cell.env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    pid_ns = mnt_ns = ""
    pins: list[int] = []
    in_chroot_at_step: list[str] = []
    try:
        if case.fault != "fail":
            pid_ns, mnt_ns, in_chroot_at_step = _signal_when_reached(cell, proc, outcome, pins)
        else:
            while proc.poll() is None and not pid_ns:
                pid_ns, mnt_ns = build_namespaces(proc.pid, pins)
                time.sleep(0.02)
        _, stderr = proc.communicate(timeout=EXIT_LIMIT)
    except subprocess.TimeoutExpired:
        outcome.problems.append("the build did not exit; killed")
        os.killpg(proc.pid, signal.SIGKILL)
        _, stderr = proc.communicate()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    outcome.exit = proc.returncode
    _wait_for_namespaces_to_empty(pid_ns, mnt_ns)
    (cell.logs / "stderr").write_text(stderr)

    outcome.problems += status_problems(case, proc.returncode, stderr)
    outcome.procs += [f"still inside the image at the start of {case.step}: {p}" for p in in_chroot_at_step]
    _look(cell, outcome, pid_ns, mnt_ns, pins)
    if case.fault == "SIGKILL":
        _next_build_removes_stale(cell, outcome)
    outcome.outputs += [str(p) for p in sorted(cell.out.rglob("*"))]
    if case.fault != "SIGKILL":
        outcome.workdir += [str(p) for p in sorted(cell.work.iterdir())]
    outcome.host += HostSnapshot.take(cell.probe, cell.shared).changes_since(before)
    outcome.host += cache_changes(cell.cache, shared)
    if not mounts_below(cell.dir) and not mounts_below(cell.cache):
        shutil.rmtree(cell.dir)
        shutil.rmtree(cell.cache)
    outcome.seconds = time.monotonic() - started
    return outcome


def _signal_when_reached(cell: Cell, proc: subprocess.Popen[str], outcome: Outcome,
                         pins: list[int]) -> tuple[str, str, list[str]]:
    """Waits until the build is where the cell's signal must land and sends it.  Returns the
    build's (pid, mnt) namespaces and, for a signal after the finish step, the processes
    still inside the image at that moment."""
    case, pid_ns, mnt_ns = cell.case, "", ""
    deadline = time.monotonic() + REACH_LIMIT
    while proc.poll() is None and time.monotonic() < deadline:
        if not pid_ns:
            pid_ns, mnt_ns = build_namespaces(proc.pid, pins)
        if pid_ns and cell.reached(pid_ns):
            break
        time.sleep(0.02)
    if proc.poll() is not None or not cell.reached(pid_ns):
        outcome.problems.append(f"the build never reached {case.row} (exit {proc.poll()})")
        return pid_ns, mnt_ns, []
    in_chroot = []
    if not case.during and case.step in AFTER_FINISH:
        in_chroot = [p for root in cell.roots() for p in procs_in(root)]
    if case.fault == "SIGINT":
        os.killpg(proc.pid, signal.SIGINT)
    else:
        os.kill(proc.pid, SIGNALS[case.fault])
    return pid_ns, mnt_ns, in_chroot


def status_problems(case: Case, status: int, stderr: str) -> list[str]:
    """What is wrong with the build's exit status and message for its fault (nothing: [])."""
    if case.fault == "SIGKILL":
        return [] if status == -signal.SIGKILL else [f"exit {status}, expected death by SIGKILL"]
    if status != case.expected_exit:
        return [f"exit {status}, expected {case.expected_exit}: {stderr.strip()[-300:]}"]
    if case.fault == "fail" and f"step '{case.step}' failed: fault injected" not in stderr:
        return [f"the error does not name the step: {stderr.strip()[-300:]}"]
    if case.fault != "fail" and "interrupted" not in stderr:
        return [f"no 'interrupted' message: {stderr.strip()[-300:]}"]
    return []


def _wait_for_namespaces_to_empty(pid_ns: str, mnt_ns: str) -> None:
    # After SIGKILL the kernel tears the namespaces down asynchronously (unshare, in the
    # build's mount namespace but not its PID namespace, dies of its parent's death);
    # give it time.  A safety limit: what is still there afterwards is reported.
    deadline = time.monotonic() + 60
    while (procs_in_namespace("pid", pid_ns) or procs_in_namespace("mnt", mnt_ns)) and time.monotonic() < deadline:
        time.sleep(0.1)


def _look(cell: Cell, outcome: Outcome, pid_ns: str, mnt_ns: str, pins: list[int]) -> None:
    outcome.mounts += mounts_below(cell.dir)
    outcome.mounts += [f"mount namespace of the build still held by {_describe(pid)}"
                       for pid in procs_in_namespace("mnt", mnt_ns)]
    outcome.procs += [f"in the build's PID namespace: {_describe(pid)}" for pid in procs_in_namespace("pid", pid_ns)]
    unpin(pins)  # before the loop devices: a pinned mount namespace would keep its loops busy
    outcome.loops += loops_of(cell.dir)
    outcome.procs += procs_in(cell.dir)


def _next_build_removes_stale(cell: Cell, outcome: Outcome) -> None:
    stale = sorted(cell.work.glob("vmdebootstrap-*"))
    if len(stale) != 1 or not (stale[0] / ".vmdebootstrap-workdir").is_file():
        outcome.problems.append(f"expected one stale work directory with its marker, found {stale}")
    # The next build (stopped at once by a fault) must find and remove it.
    env = {k: v for k, v in os.environ.items() if not k.startswith("VMDEBOOTSTRAP_FAULT")}
    env["VMDEBOOTSTRAP_FAULT"] = "bootstrap:fail"
    again = subprocess.run(
        [sys.executable, "-m", "vmdebootstrap", "--no-default-configs", *MINIMAL, "--mirror", cell.mirror,
         "--tarball", str(cell.dir / "next" / "next.tar"), "--workdir", str(cell.work),
         "--cache-dir", str(cell.cache)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=EXIT_LIMIT, check=False)
    (cell.logs / "next.stderr").write_text(again.stderr)
    outcome.stale_removed = again.returncode == 1 and "removing stale work directory" in again.stderr
    if not outcome.stale_removed:
        outcome.problems.append(f"the next build did not remove the stale work directory: {again.stderr[-300:]}")
    outcome.workdir += [str(p) for p in sorted(cell.work.iterdir())]
    outcome.outputs += [str(p) for p in sorted((cell.dir / "next").glob("*"))]
    outcome.mounts += mounts_below(cell.dir)


# --- the campaign's own scratch space and package caches ----------------------------------

def link_cache(cache: Path) -> dict[str, int]:
    """A package cache for one build: hard links to the shared cache's files.

    The shared cache's lock would make the builds' bootstraps wait for each other
    (debootstrap holds it throughout); with links each build has its own lock, and a
    build that changed a cached file would still change the shared one's inode, which
    the host check sees.  Returns {name: inode} of what was linked.
    """
    debs = cache / "debs"
    debs.mkdir(parents=True)
    linked = {}
    if CACHE.is_dir():
        for entry in os.scandir(CACHE):
            # Only the packages: a link to apt's own archives/lock would make the cells' apt
            # runs lock each other out (seen: "Could not get lock ... held by process 0").
            if entry.is_file(follow_symlinks=False) and entry.name.endswith(".deb"):
                try:
                    os.link(entry.path, debs / entry.name)
                except OSError as exc:
                    if exc.errno != errno.EXDEV:
                        raise
                    return {}  # another filesystem (cache_parent found none): the build downloads
                linked[entry.name] = entry.inode()
    return linked


def cache_changes(cache: Path, linked: dict[str, int]) -> list[str]:
    found = []
    for name, inode in linked.items():
        try:
            if os.lstat(cache / "debs" / name).st_ino != inode:
                found.append(f"the build replaced cache file {name}")
        except FileNotFoundError:
            found.append(f"the build removed cache file {name}")
    return found


def cache_parent() -> Path | None:
    """Where per-build caches can hard-link the shared one (the same filesystem), if anywhere.

    The shared cache need not exist yet (a fresh CI machine): the campaign's builds fill it,
    and the cells that follow link from it, so its filesystem is that of its nearest existing
    directory."""
    existing = CACHE
    while not existing.is_dir():
        existing = existing.parent
    for candidate in (Path("/var/tmp"), CACHE.parent.parent):
        if candidate.is_dir() and candidate.stat().st_dev == existing.stat().st_dev:
            return candidate
    return None


def available_memory() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return 0


@contextlib.contextmanager
def scratch(jobs: int) -> Iterator[tuple[Path, Path]]:
    """(directory for the builds, directory for the per-build caches), removed afterwards.

    The builds' work and output directories go on a tmpfs when memory allows (each
    build needs about 500 MiB while it runs): dpkg's writes cost a third less CPU there.
    Not below /tmp/pytest-*, where the integration tests look for mounts of their own.
    """
    base = Path(tempfile.mkdtemp(prefix="vmdb-faults-"))
    mounted = available_memory() > (jobs + 2) * 2**30
    parent = cache_parent()
    caches = Path(tempfile.mkdtemp(prefix="vmdb-faults-caches-", dir=parent)) if parent else base / "caches"
    try:
        if mounted:
            subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={jobs}g,mode=0755", "tmpfs", str(base)],
                           check=True)
        yield base, caches
    finally:
        if mounted:
            subprocess.run(["umount", str(base)], check=True)
        for directory in (base, caches):
            if directory.exists() and not mounts_below(directory):
                shutil.rmtree(directory)


# --- the campaign -------------------------------------------------------------------------

def cases(steps: tuple[str, ...] = STEPS, faults: tuple[str, ...] = FAULTS, during: bool = True) -> list[Case]:
    found = [Case(step, fault) for step in steps for fault in faults]
    if during:
        found += [Case(step, fault, True) for step in steps if step in DURING for fault in faults if fault != "fail"]
    if "bootstrap" in steps:
        found += [Case("bootstrap", fault, bootstrapper="mmdebstrap") for fault in faults]
        if during:
            found += [Case("bootstrap", fault, True, "mmdebstrap") for fault in faults if fault != "fail"]
    return found


def make_probe(directory: Path) -> Path:
    """A package whose postinst says so and waits: the packages step is then inside dpkg."""
    tree = directory / "probe"
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "DEBIAN/control").write_text(
        "Package: vmdb-fault-probe\nVersion: 1.0\nArchitecture: all\nMaintainer: vmdebootstrap tests <root@localhost>\n"
        "Description: holds the packages step of a vmdebootstrap build until it is signalled\n")
    postinst = tree / "DEBIAN/postinst"
    postinst.write_text(f"#!/bin/sh\necho waiting > /{PROBE_READY}\nexec sleep 3600\n")
    postinst.chmod(0o755)
    deb = directory / "vmdb-fault-probe_1.0_all.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "--build", str(tree), str(deb)], check=True,
                   capture_output=True)
    shutil.rmtree(tree)
    return deb


def fill_caches(shared: Path, logs: Path, mirror: str, image: bool = False) -> None:
    """The campaign's first build (and, for the image rows, its second), without a fault: it
    leaves the base and the stage that the later rows start from.  Its work directory is on
    the caches' filesystem (the stage is moved into the cache, not copied)."""
    name = "first-image-build" if image else "first-build"
    first = shared.parent / name
    (first / "work").mkdir(parents=True)
    if not (shared / "debs").exists():  # the second fill build shares the first one's links
        link_cache(shared)
    stages = len(list((shared / "stages").glob("*/info.json")))
    env = {k: v for k, v in os.environ.items() if not k.startswith("VMDEBOOTSTRAP_FAULT")}
    case = Case(IMAGE_STEPS[0] if image else "tarball", "fail")
    result = subprocess.run(
        [sys.executable, "-m", "vmdebootstrap", "--no-default-configs", *build_args(image), "--mirror", mirror,
         "--bootstrapper", BOOTSTRAPPER, "--workdir", str(first / "work"), "--log", str(logs / f"{name}.log"),
         "--cache-dir", str(shared), *output_args(case, first)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=REACH_LIMIT, check=False)
    if not mounts_below(first):
        shutil.rmtree(first)
    if result.returncode != 0:
        raise RuntimeError(f"the campaign's {name} (no fault) failed: {result.stderr.strip()[-500:]}")
    if not list((shared / "bases").glob("*/info.json")) \
            or len(list((shared / "stages").glob("*/info.json"))) <= stages:
        raise RuntimeError(f"the campaign's {name} left no base or no stage in its cache (see {logs / name}.log)")


def run(logs: Path, mirror: str, jobs: int, selected: list[Case],
        progress: Callable[[Outcome], None] | None = None) -> list[Outcome]:
    """Run the cases, ``jobs`` builds at a time; each build's log and messages go below ``logs``."""
    probe = make_probe(logs)
    outcomes: dict[Case, Outcome] = {}
    with scratch(jobs) as (base, caches):
        shared = caches / "shared"
        if any(case.warm and not case.image for case in selected):
            fill_caches(shared, logs, mirror)
        if any(case.warm and case.image for case in selected):
            fill_caches(shared, logs, mirror, image=True)
        shared.mkdir(exist_ok=True)
        before = HostSnapshot.take(probe, shared)
        cells = [Cell(case, base / case.name, logs / case.name, mirror, probe, caches / case.name, shared)
                 for case in selected]
        with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
            futures = [pool.submit(run_cell, cell, before) for cell in cells]
            for future in concurrent.futures.as_completed(futures):
                outcome = future.result()
                outcomes[outcome.case] = outcome
                if progress:
                    progress(outcome)
    return [outcomes[case] for case in selected]


def table(outcomes: list[Outcome]) -> str:
    rows: dict[str, dict[str, Outcome]] = {}
    for outcome in outcomes:
        rows.setdefault(outcome.case.row, {})[outcome.case.fault] = outcome
    cells = {(row, fault): (found[fault].cell() if fault in found else "-")
             for row, found in rows.items() for fault in FAULTS}
    first = max(len("step"), *(len(row) for row in rows))
    widths = {fault: max(len(fault), *(len(cells[row, fault]) for row in rows)) for fault in FAULTS}
    lines = ["  ".join(["step".ljust(first), *(fault.ljust(widths[fault]) for fault in FAULTS)]).rstrip()]
    lines.append("  ".join(["-" * first, *("-" * widths[fault] for fault in FAULTS)]))
    for row in rows:
        lines.append("  ".join([row.ljust(first), *(cells[row, f].ljust(widths[f]) for f in FAULTS)]).rstrip())
    details = [line for outcome in outcomes for line in outcome.details()]
    if details:
        lines += ["", "What went wrong:", *(f"  {line}" for line in details)]
    return "\n".join(lines)


def summary(outcomes: list[Outcome], minutes: float, jobs: int) -> str:
    leaked = sum(1 for o in outcomes if o.leaks)
    failed = sum(1 for o in outcomes if o.problems)
    warm = sum(1 for o in outcomes if o.case.warm)
    return (f"fault campaign: {len(outcomes)} faults injected ({jobs} builds at a time, {warm} of them from the "
            f"base or stage cache) in {minutes:.1f} min: "
            f"{len(outcomes) - leaked - failed} ok, {leaked} leaked, {failed} with a wrong status or message")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2, help="builds at a time (default 2)")
    parser.add_argument("--mirror", default="", help="Debian mirror (default: this machine's)")
    parser.add_argument("--steps", default=",".join(STEPS), help="comma-separated steps (default all)")
    parser.add_argument("--faults", default=",".join(FAULTS), help="comma-separated faults (default all)")
    parser.add_argument("--no-during", action="store_true", help="only faults at the start of each step")
    parser.add_argument("--keep", action="store_true", help="keep the logs in the campaign's directory")
    options = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("the fault campaign runs real builds: run it as root", file=sys.stderr)
        return 2
    steps = tuple(s for s in re.split(r"[,\s]+", options.steps) if s)
    faults = tuple(f for f in re.split(r"[,\s]+", options.faults) if f)
    unknown = [s for s in steps if s not in STEPS] + [f for f in faults if f not in FAULTS]
    if unknown:
        parser.error(f"unknown step or fault: {', '.join(unknown)}")
    selected = cases(steps, faults, not options.no_during)
    logs = Path(tempfile.mkdtemp(prefix="vmdb-faults-logs-", dir="/var/tmp" if Path("/var/tmp").is_dir() else None))
    started = time.monotonic()
    print(f"fault campaign: {len(selected)} builds, {options.jobs} at a time; logs in {logs}", flush=True)

    def progress(outcome: Outcome) -> None:
        print(f"  {outcome.case.row} x {outcome.case.fault}: {outcome.cell()} ({outcome.seconds:.0f}s)", flush=True)

    outcomes = run(logs, options.mirror or machine_mirror(), options.jobs, selected, progress)
    print()
    print(table(outcomes))
    print()
    print(summary(outcomes, (time.monotonic() - started) / 60, options.jobs))
    if options.keep or not all(o.ok for o in outcomes):
        print(f"the builds' logs are in {logs}")
    else:
        shutil.rmtree(logs)
    return 0 if all(o.ok for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
