"""One boot test: an image booted in QEMU with one firmware, driven over its serial console.

The guest's serial port is QEMU's stdin/stdout, driven with pexpect: wait for the
getty's ``login:`` prompt, log in, run the checks (transcript.CHECKS: systemd's state,
``id``, the kernel command line, the root filesystem, Secure Boot, sudo), then stop QEMU.
Kernel panics, oopses, emergency shells and firmware that finds nothing to boot end the
test at once instead of at the timeout.  The transcript is always written to a file, also
for a hung boot, and the verdict comes from it alone (transcript.read_console).

QEMU never outlives ``boot_test()``: it is stopped in a ``finally`` (SIGTERM, then
SIGKILL) and reaped.  It is started by pexpect, not through run.Runner: the test talks
to it while it runs, which the runner's commands never do.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import os
import re
import secrets
import shlex
import shutil
import signal
import time
from pathlib import Path
from typing import IO

import pexpect

from ..run import BASE_ENV, command_env
from .qemu import (
    BootTarget,
    BootTestError,
    emulator_of,
    firmware_log,
    kvm_usable,
    monitor_socket,
    qemu_command,
    screendump,
)
from .transcript import (
    ANSI,
    CHECKS,
    GRUB_MENU,
    LOGIN_INCORRECT,
    LOGIN_PROMPT,
    LONGEST_ESCAPE,
    MARKER_PREFIX,
    PASSWORD_CHANGE,
    PASSWORD_PROMPT,
    SEABIOS_LINES,
    SHELL_PROMPT,
    STALE_BREAKPOINT,
    first_failure,
    marked,
    read_console,
    strip_ansi,
)

log = logging.getLogger("vmdebootstrap")

# Between SIGTERM and SIGKILL when QEMU is stopped.
STOP_GRACE = 5.0
# How often the SeaBIOS debug log is looked at while the serial console is silent.
FIRMWARE_POLL = 2.0
# How much of the console a hung boot reports in the log.
TAIL_LINES = 40
# Logins at getty's prompts when a session ends before its shell (a new prompt comes instead).
LOGIN_ATTEMPTS = 3
# A display boot's screenshot: how long the screen may take to settle, how often it is looked at.
# Under TCG the greeter is drawn by llvmpipe on an emulated CPU: the xfce flavour's lightdm
# greeter settled within 180 s of the checks when its boot ran alone, not within 180 s beside
# make check's other sessions.  Only a boot whose screen stays blank waits this long.
SCREEN_SETTLE = 600.0
SCREEN_POLL = 5.0


@dataclasses.dataclass
class BootResult:
    firmware: str
    passed: bool
    seconds_to_login: float | None
    verdict: str  # one line, e.g. "login prompt after 71 s; system running"
    failed_units: list[str]
    console_log: Path  # the serial console transcript, always written
    id_output: str = ""
    cmdline: str = ""
    root_fstype: str = ""
    system_state: str = ""  # systemctl is-system-running: running, degraded, ...
    secure_boot: bool | None = None  # the guest's SecureBoot variable (None: no UEFI variables)
    lockdown: str = ""  # the guest kernel's lockdown
    sudo_status: int | None = None  # the exit status of `sudo -n true` as the user
    display_manager: str = ""  # a display boot: systemctl is-active display-manager.service
    screenshot: Path | None = None  # a display boot: the screen at the end, as PNG
    seconds: float | None = None  # the whole boot, from QEMU's start to its end (the JUnit file's time)

class _Console:
    """QEMU's serial console: read into a clean transcript (also written to a file) and waited on."""

    def __init__(self, child: pexpect.spawn, stream: IO[str], firmware_log: Path | None = None) -> None:
        self.child = child
        self.stream = stream
        self.text = ""
        self.eof = False
        self._pending = ""  # an escape sequence cut in two by a read
        self._firmware_log = firmware_log
        self._firmware_seen = 0  # bytes of the firmware log already looked at

    def _feed(self, chunk: str, final: bool = False) -> None:
        data = self._pending + chunk
        self._pending = ""
        cut = data.rfind("\x1b")
        if not final and cut != -1 and len(data) - cut < LONGEST_ESCAPE and not ANSI.match(data, cut):
            data, self._pending = data[:cut], data[cut:]
        elif not final and data.endswith("\r"):  # its \n may come with the next read
            stripped = data.rstrip("\r")
            data, self._pending = stripped, data[len(stripped):]
        self._append(strip_ansi(data))

    def _append(self, clean: str) -> None:
        self.text += clean
        self.stream.write(clean)
        self.stream.flush()

    def wait(self, wanted: dict[str, re.Pattern[str]], deadline: float, start: int = 0,
             failures: bool = True) -> str:
        """Read until a wanted pattern matches after ``start``: its name, else "failure", "eof" or "timeout".

        With ``failures``, a failure marker (FAILURES) anywhere in the new text wins.
        """
        scanned = start  # text before this was searched already
        while True:
            # Search again only from a line a little before the new text: the patterns span a line or two.
            lo = self._line_start(max(start, scanned - 4096), start)
            if failures and first_failure(self.text[self._line_start(max(0, scanned - 4096), 0):]):
                return "failure"
            hits = [(m.start(), name) for name, pattern in wanted.items() if (m := pattern.search(self.text, lo))]
            if hits:
                return min(hits)[1]
            if self.eof:
                return "eof"
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return "timeout"
            scanned = len(self.text)
            if self._firmware_log:
                # SeaBIOS may say "No bootable device." while the serial port stays silent.
                remaining = min(remaining, FIRMWARE_POLL)
            chunk = ""
            try:
                chunk = str(self.child.read_nonblocking(65536, timeout=remaining))
            except pexpect.TIMEOUT:
                pass
            except pexpect.EOF:
                self.eof = True
            self._copy_firmware_lines()  # first: the firmware spoke before what was just read
            self._feed(chunk, final=self.eof)

    def _copy_firmware_lines(self) -> None:
        if self._firmware_log is None:
            return
        try:
            with self._firmware_log.open("rb") as stream:
                stream.seek(self._firmware_seen)
                data = stream.read()
        except OSError:
            return
        complete = data[:data.rfind(b"\n") + 1]
        self._firmware_seen += len(complete)
        for match in SEABIOS_LINES.finditer(complete.decode("utf-8", "replace")):
            self._append(("" if self.text.endswith("\n") or not self.text else "\n")
                         + f"SeaBIOS: {strip_ansi(match[0]).strip()}\n")

    def _line_start(self, pos: int, floor: int) -> int:
        return max(floor, self.text.rfind("\n", 0, pos) + 1)

    def line(self, text: str) -> None:
        """Type a line as a terminal does (Enter is a carriage return)."""
        self.child.send(text + "\r")


def _stop(child: pexpect.spawn, console: _Console) -> None:
    """SIGTERM, SIGKILL after STOP_GRACE, and reap: QEMU is gone when this returns."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if console.eof or not child.isalive():
            break
        try:
            child.kill(sig)
        except OSError:
            break
        # Keep its last words until it closes the console (it exits), or the grace ends.
        console.wait({}, time.monotonic() + STOP_GRACE, failures=False)
    try:
        child.close(force=True)
    except pexpect.ExceptionPexpect:
        # ptyprocess gives a dying process 0.1 s; it has been sent SIGKILL, so wait for it.
        os.waitpid(child.pid, 0)


@dataclasses.dataclass(frozen=True)
class Boot:
    """What one ``boot_test()`` call asked for."""

    target: BootTarget
    user: str
    password: str
    workdir: Path
    timeout: int
    grub_entry_keys: str
    memory_mb: int
    kvm: bool
    qemu: str | None
    sudo: bool | None  # read_console's sudo: the user's sudo judged (True: --sudo, in the sudo group)


def boot_test(  # noqa: PLR0917 -- the positional signature callers use
        target: BootTarget, user: str, password: str, workdir: Path, timeout: int = 900, grub_entry_keys: str = "",
        *, memory_mb: int = 2048, kvm: bool | None = None, qemu: str | None = None,
        sudo: bool | None = None) -> BootResult:
    """Boot ``target`` in QEMU, log in over the serial console and check the system.

    ``timeout`` bounds everything from QEMU's start to the last check.  The verdict is
    reached then, and QEMU is stopped at once: a poweroff proves nothing the checks have
    not, and cost up to two minutes more.  ``grub_entry_keys`` are typed at the GRUB
    menu (e.g. "\\x1b[B\\r": arrow down, Enter).  ``kvm`` None decides by
    ``kvm_usable()``; ``qemu`` replaces the emulator binary (tests use a fake); ``sudo``
    judges the user's sudo (read_console).
    An emulated boot that stops on a stale breakpoint (``STALE_BREAKPOINT``) is booted
    again once on one TCG thread; the verdict says so.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    if kvm is None:
        kvm = kvm_usable(target.arch)
    boot = Boot(target, user, password, workdir, timeout, grub_entry_keys, memory_mb, kvm, qemu, sudo)
    result = _boot_once(boot)
    if kvm or result.passed or not STALE_BREAKPOINT.match(result.verdict):
        return result
    first = result.console_log.rename(result.console_log.with_suffix(".multi-thread.log"))
    log.warning("boot test (%s): %s, a stale breakpoint under multi-threaded TCG (transcript: %s); "
                "booting again with one TCG thread", target.firmware, result.verdict, first)
    again = _boot_once(boot, single_thread=True)
    note = f" (second boot, on one TCG thread: the first stopped on {result.verdict}, see {first.name})"
    return dataclasses.replace(again, verdict=again.verdict + note)


def _boot_once(boot: Boot, *, single_thread: bool = False) -> BootResult:
    target, workdir, timeout = boot.target, boot.workdir, boot.timeout
    argv = qemu_command(target, workdir, boot.memory_mb, boot.kvm, qemu=boot.qemu, single_thread=single_thread)
    if shutil.which(argv[0], path=BASE_ENV["PATH"]) is None:
        package = emulator_of(target.arch).package
        raise BootTestError(f"{argv[0]} not found" + ("" if boot.qemu else f" (apt-get install {package})"))
    console_log = workdir / f"console-{target.arch.name}-{target.firmware}.log"
    firmware_log(target, workdir).unlink(missing_ok=True)  # not a previous run's
    log.info("boot test of %s (%s, %s, %s): %s", target.image, target.arch.name, target.firmware,
             "KVM" if boot.kvm else "TCG", shlex.join(argv))
    login_seconds: float | None = None
    finished = False
    screen: Screen | None = None
    with console_log.open("w", encoding="utf-8") as stream:
        start = time.monotonic()
        child = pexpect.spawn(argv[0], argv[1:], env=command_env(), cwd=os.fspath(workdir), encoding="utf-8",
                              codec_errors="replace", echo=False, use_poll=True)
        console = _Console(child, stream, firmware_log(target, workdir) if target.firmware == "bios" else None)
        try:
            login_seconds, logged_in = _login(console, boot.user, boot.password, boot.grub_entry_keys, start=start,
                                           deadline=start + timeout, label=target.firmware)
            if logged_in and _run_checks(console, start + timeout) and target.display:
                screen = _screenshot(boot, start + timeout)
            finished = console.eof  # QEMU exited by itself, before we stopped it
        finally:
            before_stop = len(console.text)  # the verdict ignores what QEMU says when it is stopped
            _stop(child, console)
            log.debug("boot test: QEMU (pid %d) ended: exit status %s, signal %s", child.pid, child.exitstatus,
                      child.signalstatus)
    result = dataclasses.replace(
        _result(boot, console.text, console.text[:before_stop], finished=finished, login_seconds=login_seconds,
                console_log=console_log), seconds=round(time.monotonic() - start, 1))
    if screen is None:
        return result
    if not screen.drawn:  # the display manager runs, but nobody sees a greeter or a desktop
        result = dataclasses.replace(result, passed=False, verdict=result.verdict + (
            f"; nothing drawn on the screen within {SCREEN_SETTLE:.0f} s (see {screen.png.name})"))
        log.warning("boot test failed: %s", result.verdict)
    return dataclasses.replace(result, screenshot=screen.png)


def _result(boot: Boot, transcript: str, judged: str, *, finished: bool, login_seconds: float | None,
            console_log: Path) -> BootResult:
    """The verdict on ``judged`` (the transcript up to our stopping QEMU), logged."""
    target = boot.target
    firmware = target.arch.firmware(target.firmware)
    reading = read_console(judged, finished, login_seconds=login_seconds, timeout=boot.timeout,
                           secure=firmware is not None and firmware.secure, sudo=boot.sudo, display=target.display)
    verdict = reading.verdict
    if reading.passed:
        log.info("boot test passed: %s", verdict)
    else:
        log.warning("boot test failed: %s (console transcript: %s)", verdict, console_log)
        log.info("last %d console lines:\n%s", TAIL_LINES, "\n".join(transcript.splitlines()[-TAIL_LINES:]))
    return BootResult(
        firmware=target.firmware, passed=reading.passed, seconds_to_login=login_seconds, verdict=verdict,
        failed_units=reading.failed_units, console_log=console_log, id_output=reading.id_output,
        cmdline=reading.cmdline, root_fstype=reading.root_fstype, system_state=reading.system_state,
        secure_boot=reading.secure_boot, lockdown=reading.lockdown, sudo_status=reading.sudo_status,
        display_manager=reading.display_manager,
    )


def _login(console: _Console, user: str, password: str, grub_entry_keys: str, *, start: float,
           deadline: float, label: str) -> tuple[float | None, bool]:
    """Up to a shell prompt: (seconds from QEMU's start to the login prompt or None, logged in)."""
    mark = 0
    if grub_entry_keys:
        seen = console.wait({"menu": GRUB_MENU, "login": LOGIN_PROMPT}, deadline)
        if seen == "menu":
            console.child.send(grub_entry_keys)
            mark = len(console.text)
        elif seen == "login":
            log.warning("boot test: no GRUB menu on the serial console; the default entry booted")
        else:
            return None, False
    if console.wait({"login": LOGIN_PROMPT}, deadline, mark) != "login":
        return None, False
    seconds = round(time.monotonic() - start, 1)
    log.info("boot test (%s): login prompt after %.0f s", label, seconds)
    for attempt in range(1, LOGIN_ATTEMPTS + 1):
        seen = _log_in_once(console, user, password, deadline)
        if seen != "login":
            return seconds, seen == "shell"
        # The session ended before its shell and getty asked again: under a heavy load an xfce
        # guest's logind started only with the first login (make check, 2026-12-06).
        log.warning("boot test (%s): a new login prompt instead of a shell (attempt %d of %d)", label, attempt,
                    LOGIN_ATTEMPTS)
    return seconds, False


def _log_in_once(console: _Console, user: str, password: str, deadline: float) -> str:
    """Type the user and password at a login prompt: what came of it (shell; login: a new login
    prompt; incorrect; change; or what ``wait`` says of none: failure, eof, timeout)."""
    mark = len(console.text)
    console.line(user)
    after_login = {"shell": SHELL_PROMPT, "incorrect": LOGIN_INCORRECT, "change": PASSWORD_CHANGE}
    seen = console.wait({"password": PASSWORD_PROMPT, **after_login}, deadline, mark)
    if seen == "password":
        mark = len(console.text)
        console.line(password)  # not echoed by the guest: it never reaches the transcript
        seen = console.wait({**after_login, "login": LOGIN_PROMPT}, deadline, mark)
    return seen


@dataclasses.dataclass(frozen=True)
class Screen:
    """The screenshot of a display boot, and whether anything was drawn on it."""

    png: Path
    drawn: bool


def _screenshot(boot: Boot, deadline: float) -> Screen | None:
    """The screen as PNG, once it is drawn and has settled: a desktop session draws for a while
    after the display manager is up (under TCG, tens of seconds: the X server's black screen
    with a cursor comes first).  It is looked at every SCREEN_POLL seconds, for SCREEN_SETTLE
    at most, until two looks are the same and drawn (``drawn``); then, or at the end, kept."""
    target = boot.target
    monitor = monitor_socket(target, boot.workdir)
    raw = boot.workdir / f"screen-{target.arch.name}-{target.firmware}.ppm"
    settle_by = min(deadline, time.monotonic() + SCREEN_SETTLE)
    previous = b""
    try:
        while True:
            screendump(monitor, raw, "ppm")
            pixels = ppm_pixels(raw.read_bytes())
            painted = drawn(pixels)
            if (pixels == previous and painted) or time.monotonic() >= settle_by:
                break
            previous = pixels
            time.sleep(SCREEN_POLL)
        png = raw.with_suffix(".png")
        screendump(monitor, png, "png")
    except (OSError, BootTestError) as exc:
        log.warning("boot test (%s): no screenshot: %s", target.firmware, exc)
        return None
    finally:
        raw.unlink(missing_ok=True)
    log.info("boot test (%s): the screen is in %s%s", target.firmware, png, "" if painted else " (nothing drawn)")
    return Screen(png, painted)


def drawn(pixels: bytes, share: float = 0.02) -> bool:
    """Whether more than ``share`` of the screen differs from its most common colour: a greeter or
    a desktop, not the X server's black screen with a cursor (some 50 000 pixels looked at)."""
    count = len(pixels) // 3
    step = max(1, count // 50_000)
    sample = [pixels[i * 3:i * 3 + 3] for i in range(0, count, step)]
    if not sample:
        return False
    background = collections.Counter(sample).most_common(1)[0][1]
    return (len(sample) - background) / len(sample) > share


def ppm_pixels(data: bytes) -> bytes:
    """The pixels of a binary PPM as QEMU writes it ("P6\\n<w> <h>\\n255\\n" and RGB bytes)."""
    magic, _size, _depth, pixels = data.split(b"\n", 3)
    if magic != b"P6":
        raise BootTestError("QEMU's screendump is not a binary PPM")
    return pixels


def _run_checks(console: _Console, deadline: float) -> bool:
    """Run CHECKS at the shell prompt, each to its end marker; False when one did not finish."""
    tag = f"{MARKER_PREFIX}-{secrets.token_hex(4)}"
    for name, command in CHECKS:
        mark = len(console.text)
        console.line(marked(command, tag, name))
        end = re.compile(rf"(?m)^{tag}-{name}-end-\d+\n")
        if console.wait({"end": end}, deadline, mark) != "end":
            return False
    return True
