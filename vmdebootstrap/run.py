"""Where the build's commands are started: ``CommandRunner`` (``Runner`` for real, a fake
in the unit tests).  Two processes start elsewhere, each for a reason: the build itself,
re-run inside its namespaces by the supervisor (sandbox.py: it must outlive nothing and
forward signals), and QEMU in a boot test (boot/console.py: the test talks to it while it
runs).

Commands are argv lists, never shell strings.  Each one is logged as a line that
can be pasted into a shell; its output (stdout and stderr together) goes to the
log line by line, and the last lines travel with the error when it fails.
Secrets travel on stdin (``input=``), which is never logged.

The environment is built from scratch, so the host's locale or DEBIAN_FRONTEND
cannot leak in; only the proxy variables pass through.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import os
import re
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Protocol

from .errors import BuildError

log = logging.getLogger("vmdebootstrap")

BASE_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
    "DEBIAN_FRONTEND": "noninteractive",
    "DEBCONF_NONINTERACTIVE_SEEN": "true",
    "HOME": "/root",
    "TERM": "dumb",
}
# Host variables that may pass through: proxies are how users reach their mirrors.
PASSTHROUGH = ("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY")
TAIL_LINES = 25


class CommandFailed(BuildError):
    def __init__(self, argv: Sequence[str], returncode: int, tail: Sequence[str]) -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.tail = list(tail)
        super().__init__(f"command failed ({describe_status(returncode)}): {shlex.join(self.argv)}")

    def last_lines(self, count: int = 10) -> list[str]:
        """The last ``count`` lines of its output that show something on a terminal: escape
        sequences and control characters removed (a progress bar's carriage returns or a
        cursor movement could blank the line), empty lines skipped."""
        shown = [_PRINTABLE.sub("", _ESCAPES.sub("", line)).rstrip() for line in self.tail]
        return [line for line in shown if line.strip()][-count:]


# ANSI escape sequences (CSI ... final byte, OSC ... BEL/ST, two-byte ESC x), then other C0 controls.
_ESCAPES = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)?|[@-Z\\-_])")
_PRINTABLE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def command_failure(exc: BaseException) -> CommandFailed | None:
    """The failed command behind ``exc`` (itself, or what it was raised from), if any."""
    seen: BaseException | None = exc
    visited: set[int] = set()
    while seen is not None and not isinstance(seen, CommandFailed) and id(seen) not in visited:
        visited.add(id(seen))
        seen = seen.__cause__ or seen.__context__
    return seen if isinstance(seen, CommandFailed) else None


def describe_status(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    if returncode == 127:
        return "exit status 127: command not found, or its interpreter is missing"
    if returncode == 126:
        return "exit status 126: not executable"
    return f"exit status {returncode}"


@dataclasses.dataclass
class Result:
    returncode: int
    output: str  # stdout+stderr, only kept when capture=True

    @property
    def lines(self) -> list[str]:
        return self.output.splitlines()


LineSink = Callable[[str], None]


def command_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = dict(BASE_ENV)
    env.update({k: v for k, v in os.environ.items() if k in PASSTHROUGH})
    env.update(extra or {})
    return env


class CommandRunner(Protocol):
    """How every part of the build runs a command (tests/unit/fakes.py records instead).

    ``chroot``: run inside that root.  ``input``: text on stdin (passwords travel so, never
    logged).  ``env``: added to the fixed environment.  ``check``: raise CommandFailed on
    a non-zero status.  ``capture``: keep the output in the Result.  ``quiet``: do not
    copy the output into the log (long listings).  ``environment``: what every command
    gets in its environment from now on (the build's SOURCE_DATE_EPOCH).
    """

    environment: dict[str, str]

    def run(self, argv: Sequence[str], *, chroot: Path | None = ..., input: str | None = ...,
            env: Mapping[str, str] | None = ..., check: bool = ..., capture: bool = ..., cwd: str | None = ...,
            quiet: bool = ...) -> Result: ...


class Runner:
    """Runs commands for real.  ``on_line`` sees every output line (the progress display)."""

    def __init__(self, on_line: LineSink | None = None) -> None:
        self.on_line = on_line
        self.environment: dict[str, str] = {}

    def _read(self, proc: subprocess.Popen[str], tail: collections.deque[str], kept: list[str] | None,
              quiet: bool) -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.rstrip("\n")
            if not quiet:
                log.debug("| %s", line)
            tail.append(line)
            if kept is not None:
                kept.append(line)
            if self.on_line:
                self.on_line(line)

    def run(
        self,
        argv: Sequence[str],
        *,
        chroot: Path | None = None,
        input: str | None = None,
        env: Mapping[str, str] | None = None,
        check: bool = True,
        capture: bool = False,
        cwd: str | None = None,
        quiet: bool = False,
    ) -> Result:
        full = (["chroot", os.fspath(chroot)] if chroot else []) + [os.fspath(a) for a in argv]
        log.debug("+ %s", shlex.join(full))
        tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        kept: list[str] = []
        proc: subprocess.Popen[str] | None = None
        _guard.hold()  # until the command can be stopped: see _StartGuard
        try:
            proc = _start(full, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                          env=command_env({**self.environment, **(env or {})}), cwd=cwd)
            reader = threading.Thread(target=self._read, args=(proc, tail, kept if capture else None, quiet),
                                      daemon=True)
            reader.start()
            _guard.release_and_raise()
            if input is not None:
                assert proc.stdin is not None
                try:
                    proc.stdin.write(input)
                    proc.stdin.close()
                except BrokenPipeError:
                    pass
            returncode = proc.wait()
        except BaseException:
            held = _guard.release()
            if proc is not None:
                stop_process_group(proc)
            if held is not None:
                raise held from None
            raise
        _finish_reading(proc, reader, full)
        if check and returncode != 0:
            raise CommandFailed(full, returncode, tail)
        return Result(returncode, "\n".join(kept) + ("\n" if kept else ""))


class _StartGuard:
    """A signal's exception held back while a command is being started.

    Raised inside subprocess.Popen between the fork and its return (Popen waits there
    for the exec), the exception left the started command running with nobody to stop
    it: the fault campaign's SIGINT, sent as tar appeared, left tar writing the partial
    tarball after the cleanup had removed it.  Held, it is raised as soon as the command
    is in our hands, and the command is stopped like any other.  Signal handlers run in
    the main thread: only its commands are guarded.
    """

    def __init__(self) -> None:
        self.starting = False
        self.held: BaseException | None = None

    def hold(self) -> None:
        if threading.current_thread() is threading.main_thread():
            self.starting = True

    def release(self) -> BaseException | None:
        """Signals raise again; the exception one raised meanwhile, if any."""
        if threading.current_thread() is not threading.main_thread():
            return None
        self.starting = False
        held, self.held = self.held, None
        return held

    def release_and_raise(self) -> None:
        """The command is in our hands (or never started): the held exception is raised now."""
        held = self.release()
        if held is not None:
            raise held


_guard = _StartGuard()


def interrupt(exc: BaseException) -> None:
    """What a signal handler calls instead of ``raise exc``: raises it now, or, while a
    command is being started, once that command can be stopped."""
    if _guard.starting:
        _guard.held = exc
        return
    raise exc


def _start(full: list[str], *, stdin: int, env: dict[str, str], cwd: str | None) -> subprocess.Popen[str]:
    try:
        return subprocess.Popen(
            full, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=cwd,
            # Its own session: a terminal's Ctrl-C reaches only us, and we stop the
            # whole command (with its children) through its process group.
            start_new_session=True, text=True, errors="replace",
        )
    except FileNotFoundError:
        _guard.release_and_raise()  # an interruption meanwhile goes first
        raise CommandFailed(full, 127, [f"{full[0]}: not found"]) from None


def _finish_reading(proc: subprocess.Popen[str], reader: threading.Thread, argv: list[str]) -> None:
    """The command has exited; processes it left behind must not keep us waiting.

    A hook's ``daemon &`` keeps the output pipe open forever.  Such leftovers are
    killed (they are in the command's own process group), with a warning.
    """
    reader.join(timeout=2)
    if not reader.is_alive():
        return
    try:
        os.killpg(proc.pid, signal.SIGKILL)
        log.warning("killed processes left running by: %s", shlex.join(argv))
    except ProcessLookupError:
        pass
    reader.join(timeout=5)
    if reader.is_alive():
        log.warning("output of %s still held open by a detached process; not waiting for it", argv[0])


def stop_process_group(proc: subprocess.Popen[str], grace: float = 10.0) -> None:
    """SIGTERM the command's process group, then SIGKILL it if it does not go.

    Returns when no process of the group is left, not only its leader: tar's child
    creates the archive and runs the compressor; killed at tar's start, the leader was
    gone while the child was still inside creat(), and the partial tarball appeared
    after the cleanup had removed it (the fault campaign, SIGINT in tar).
    """
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            continue
        if _group_gone(proc.pid, deadline):
            return


def _group_gone(pgid: int, deadline: float) -> bool:
    """Whether the process group ``pgid`` is left with nothing but zombies before ``deadline``
    (the build is its namespace's init and does not reap the orphans it inherits)."""
    while live_members(pgid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def namespace_ids(status: str, field: str) -> list[int]:
    """The ids of a /proc/PID/status line such as NSpid or NSpgid: one per PID namespace,
    from /proc's own down to the process's (empty before Linux 4.1)."""
    for line in status.splitlines():
        if line.startswith(field + ":"):
            return [int(value) for value in line.split()[1:]]
    return []


def live_members(pgid: int, proc: Path = Path("/proc")) -> list[int]:
    """The processes of our group ``pgid`` that are not zombies.

    The build runs in its own PID namespace but sees the host's /proc, whose ``stat``
    gives host numbers: the group is looked up in NSpgid at our namespace's depth.
    """
    try:
        depth = len(namespace_ids((proc / "self/status").read_text(), "NSpid")) or 1
    except OSError:
        return []
    found = []
    for entry in os.scandir(proc):
        if not entry.name.isdigit():
            continue
        try:
            status = Path(entry.path, "status").read_text()
        except OSError:
            continue  # gone meanwhile
        groups = namespace_ids(status, "NSpgid")
        zombie = any(line.startswith("State:\t") and line[7:8] in ("Z", "X") for line in status.splitlines())
        if len(groups) >= depth and groups[depth - 1] == pgid and not zombie:
            found.append(int(entry.name))
    return found
