"""Run the build in its own mount, PID and UTS namespaces.

Every mount the build makes lives in a private mount namespace, and every process
it starts lives in a PID namespace whose init is the build itself.  When the build
ends in any way -- success, error, Ctrl-C, SIGTERM, even SIGKILL -- the kernel kills
what is left in the PID namespace and drops the mounts with the namespace, so the
host never keeps a mount or a process of ours (reliability.md §3.1, §3.2, §3.5).

The outer process stays a thin supervisor: it forwards SIGINT/SIGTERM/SIGHUP to the
build and dies with it; util-linux ``unshare --kill-child`` SIGKILLs the build if the
supervisor itself is killed.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

INNER_ENV = "VMDEBOOTSTRAP_IN_NAMESPACE"
# The options travel to the build in the environment, not on its command line: a
# password given with --user or --root-password must not be repeated in two more
# world-readable /proc/PID/cmdline files (/proc/PID/environ is readable by root only).
ARGV_ENV = "VMDEBOOTSTRAP_ARGV"
_PR_SET_PDEATHSIG = 1


def in_namespaces() -> bool:
    return os.environ.get(INNER_ENV) == "1" and os.getpid() == 1


def inner_argv() -> list[str] | None:
    """The options the supervisor handed over, inside the namespaces; else None."""
    if not in_namespaces() or ARGV_ENV not in os.environ:
        return None
    value = json.loads(os.environ.pop(ARGV_ENV))
    return [str(arg) for arg in value]


def take_hostname(name: str) -> None:
    """Inside the namespaces: the build's own host name, the image's.  Maintainer scripts that
    ask for the host name (postfix's and exim's /etc/mailname, ssh-keygen's key comments)
    then write the image's, never the build host's."""
    socket.sethostname(name)


def root_is_a_mount_point() -> bool:
    """Whether / is the root of a mount, as a private mount namespace needs (``unshare
    --propagation private`` changes the propagation of /).  Not so in a chroot entered
    into a plain directory; true where /proc is missing and nothing can be told."""
    try:
        return mounted_at_root(Path("/proc/self/mountinfo").read_text())
    except OSError:
        return True


def mounted_at_root(mountinfo: str) -> bool:
    return any(fields[4] == "/" for fields in map(str.split, mountinfo.splitlines()) if len(fields) > 4)


def _die_with_parent() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _inner_pid(unshare_pid: int) -> int | None:
    try:
        children = Path(f"/proc/{unshare_pid}/task/{unshare_pid}/children").read_text().split()
    except OSError:
        return None
    return int(children[0]) if children else None


def _start_time(pid: int) -> str | None:
    """Field 22 of /proc/PID/stat: with the PID, it names one process (PIDs are reused).
    None when there is no such process, or only its zombie (which holds nothing)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return None if fields[0] == "Z" else fields[19]


def _find_inner(proc: subprocess.Popen[bytes], timeout: float = 5.0) -> tuple[int, str] | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        pid = _inner_pid(proc.pid)
        started = _start_time(pid) if pid else None
        if pid and started:
            return pid, started
        time.sleep(0.01)
    return None


def _wait_until_gone(inner: tuple[int, str] | None, timeout: float = 60.0) -> None:
    """unshare can die before the build it SIGKILLs has finished exiting (a signal sent to
    the whole process group kills unshare at once): return only when the build is gone,
    so that whoever started vmdebootstrap never sees a process of ours after it exits."""
    if inner is None:
        return
    pid, started = inner
    deadline = time.monotonic() + timeout
    while _start_time(pid) == started and time.monotonic() < deadline:
        time.sleep(0.02)


def same_code() -> list[str]:
    """Python's options that make ``-m vmdebootstrap`` import this very package again.

    ``-m`` puts the current directory first on sys.path: run from inside another checkout
    (another version's ``vmdebootstrap/`` directory), the build would run that code.  -P
    (Python 3.11) leaves the current directory out, unless it is where this package was
    imported from (``python3 -m vmdebootstrap`` in an uninstalled checkout)."""
    package_root = Path(__file__).resolve().parent.parent
    return [] if package_root == Path.cwd().resolve() else ["-P"]


def run_in_namespaces(argv: list[str]) -> int:
    """Re-run ``vmdebootstrap argv`` as PID 1 of fresh namespaces; return its exit status."""
    command = [
        "unshare", "--mount", "--propagation", "private", "--pid", "--uts", "--fork", "--kill-child",
        "--", sys.executable, *same_code(), "-m", "vmdebootstrap",
    ]  # fmt: skip
    env = dict(os.environ, **{INNER_ENV: "1", ARGV_ENV: json.dumps(argv)})
    proc = subprocess.Popen(command, env=env, preexec_fn=_die_with_parent)  # noqa: PLW1509

    def forward(signum: int, _frame: object) -> None:
        pid = _inner_pid(proc.pid)
        if pid:
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, forward)
    inner = _find_inner(proc)
    while True:
        try:
            returncode = proc.wait()
            break
        except InterruptedError:
            continue
    _wait_until_gone(inner)
    return 128 - returncode if returncode < 0 else returncode
