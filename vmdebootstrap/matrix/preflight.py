"""``vmdebootstrap-matrix preflight``: what a runner must allow for vmdebootstrap's builds.

Each probe returns "" when the runner allows it, else one line: what is missing and how to
get it.  Root; binfmt_misc mounted (and, with a matrix, the qemu-user handler of each of its
architectures this host cannot run natively: binfmt.probe, as the build asks it); loop
devices; a private mount namespace (``unshare --mount --fork true``); free space where the
outputs and caches go and where the work directory is.  KVM (/dev/kvm usable and a CPU with
vmx or svm) is reported, never required: without it boot tests run under TCG, slower.
The probes are module functions, so that the unit tests replace them.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import shutil
import socket
import tempfile
import urllib.parse
from collections.abc import Iterable
from pathlib import Path

from .. import architectures, binfmt
from . import processes
from .rows import size

LOOP_CONTROL = Path("/dev/loop-control")
KVM = Path("/dev/kvm")
CPUINFO = Path("/proc/cpuinfo")
PRIVILEGED = "a privileged runner (docker --privileged) or a shell runner on the host"


@dataclasses.dataclass(frozen=True)
class Outcome:
    missing: list[str]
    passed: list[str]  # what was checked and is there, for the OK line
    kvm: str

    @property
    def ok(self) -> bool:
        return not self.missing

    def lines(self) -> list[str]:
        if self.missing:
            return [f"preflight: missing: {line}" for line in self.missing]
        return [f"preflight: OK: {', '.join(self.passed)}; {self.kvm}"]


def root() -> str:
    return "" if os.geteuid() == 0 else f"root: the job runs as uid {os.geteuid()}: vmdebootstrap builds as root"


def binfmt_misc() -> str:
    if (binfmt.BINFMT_DIR / "status").exists():
        return ""
    return (f"binfmt_misc: not mounted on {binfmt.BINFMT_DIR}: mount -t binfmt_misc binfmt_misc "
            f"{binfmt.BINFMT_DIR} (in a container: on its host, with {binfmt.INSTALL_HINT})")


def emulation(arch: str) -> str:
    try:
        binfmt.probe(architectures.ARCHITECTURES[arch], binfmt.BINFMT_DIR)
    except binfmt.CannotEmulate as exc:
        return f"qemu-user for {arch}: {exc}"
    return ""


def loop_devices() -> str:
    try:
        os.close(os.open(LOOP_CONTROL, os.O_RDWR))
    except OSError as exc:
        return f"loop devices: {LOOP_CONTROL}: {exc.strerror}: disk images need them: {PRIVILEGED}"
    return ""


def mount_namespaces() -> str:
    done = processes.run(["unshare", "--mount", "--fork", "true"], timeout=60)
    if done.returncode == 0:
        return ""
    return (f"mount namespaces: unshare --mount --fork true: {done.status}"
            + (f" ({done.last_line})" if done.last_line else "") + f": each build runs in its own: {PRIVILEGED}")


def free_space(path: Path, needed: int) -> str:
    free = shutil.disk_usage(path).free
    return "" if free >= needed else f"disk space: {size(free)} free in {path}, {size(needed)} wanted"


def kvm() -> str:
    try:
        os.close(os.open(KVM, os.O_RDWR))
    except OSError as exc:
        return f"KVM: no ({KVM}: {exc.strerror}): boot tests run under TCG, slower"
    if platform.machine() in ("x86_64", "i686", "i386"):
        flags = {word for line in _cpuinfo() if line.startswith("flags") for word in line.split()}
        if not flags & {"vmx", "svm"}:
            return "KVM: no (the CPU shows neither vmx nor svm): boot tests run under TCG, slower"
    return "KVM: yes"


def _cpuinfo() -> list[str]:
    try:
        return CPUINFO.read_text().splitlines()
    except OSError:
        return []


def foreign(arches: Iterable[str]) -> list[str]:
    """The architectures whose programs this host runs only through qemu-user."""
    return sorted({arch for arch in arches if not architectures.runs_natively(architectures.ARCHITECTURES[arch])})


def work_places() -> list[Path]:
    """Where the outputs and caches go (the current directory) and the build's work directory
    (TMPDIR), once per filesystem."""
    places: dict[int, Path] = {}
    for place in (Path.cwd(), Path(tempfile.gettempdir())):
        places.setdefault(place.stat().st_dev, place)
    return list(places.values())


def check(arches: Iterable[str] | None, needed: int) -> Outcome:
    """``arches``: the matrix's architectures (None without a matrix: binfmt_misc is checked anyway)."""
    wanted = foreign(arches) if arches is not None else []
    probes: list[tuple[str, str]] = [("root", root())]
    if arches is None or wanted:
        probes.append(("binfmt_misc", binfmt_misc()))
    probes += [(f"qemu-user for {arch}", emulation(arch)) for arch in wanted]
    probes += [("loop devices", loop_devices()), ("mount namespaces", mount_namespaces())]
    probes += [(f"disk space in {place}", free_space(place, needed)) for place in work_places()]
    return Outcome([line for _name, line in probes if line], [name for name, line in probes if not line], kvm())


def reach(url: str, timeout: float = 5.0) -> str:
    """"" when a TCP connection to the proxy ``url`` opens within ``timeout``; else why not."""
    parts = urllib.parse.urlsplit(url)
    try:
        socket.create_connection((parts.hostname or "", parts.port or 80), timeout=timeout).close()
    except OSError as exc:
        return f"{url}: {exc.strerror or exc}"
    return ""
