"""Boot an ISO or a disk image in QEMU and check it over the serial console.

The guest's serial port is QEMU's stdin/stdout, driven with pexpect: wait for the
getty's ``login:`` prompt, log in, ask systemd whether the boot finished, collect
``id``, ``/proc/cmdline`` and the root filesystem type, then stop QEMU.  Kernel panics,
oopses, emergency shells and firmware that finds nothing to boot end the test at
once instead of at the timeout.

Everything the console prints goes, stripped of terminal escape sequences, to a
transcript file (always written, also for a hung boot), and the verdict is computed
from that transcript alone by ``classify()``, so recorded transcripts test it.

KVM is used only when it really works: /dev/kvm can be opened, the CPU has the
virtualisation flag and the guest has the host's architecture.  A /dev/kvm without
vmx/svm (nested setups) hangs guests, so the flag matters.  Otherwise QEMU emulates
(TCG), where a Debian live ISO takes a minute or more to reach the login prompt.

QEMU never outlives ``boot_test()``: it is stopped in a ``finally`` (SIGTERM, then
SIGKILL) and reaped.  Disk images are opened with ``-snapshot``, so the test never
writes to them; UEFI variables live in a copy of the firmware's template.
"""

from __future__ import annotations

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
from typing import IO, Literal

import pexpect

from . import architectures
from .architectures import Architecture, Emulator
from .errors import BuildError
from .run import BASE_ENV, command_env

log = logging.getLogger("vmdebootstrap")

QCOW2_MAGIC = b"QFI\xfb"

# Between SIGTERM and SIGKILL when QEMU is stopped.
STOP_GRACE = 5.0
# How often the SeaBIOS debug log is looked at while the serial console is silent.
FIRMWARE_POLL = 2.0
# How much of the console a hung boot reports in the log.
TAIL_LINES = 40
# The verdict when a guest CPU ran a breakpoint that its kernel had already patched
# away (text_poke_bp() puts int3 over code while it rewrites it).  Under QEMU's
# multi-threaded TCG another vCPU can run a stale translation of that code: seen once
# in CI with QEMU 7.2 (Debian 12), in enqueue_timer 1.3 s into the boot, and never
# again in the same image.  Such a boot is repeated once with all vCPUs on one thread,
# where no cross-vCPU race exists, so an oops there is the guest's own.
STALE_BREAKPOINT = re.compile(r"kernel oops: Oops: int3\b")


class BootTestError(BuildError):
    """The boot test cannot start (missing emulator or firmware, unsupported combination)."""


@dataclasses.dataclass(frozen=True)
class BootTarget:
    image: Path
    kind: Literal["iso", "disk"]
    arch: Architecture
    firmware: str  # a firmware of the architecture's emulator: bios, uefi


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


# -- KVM, firmware, the QEMU command line ----------------------------------------


def kvm_usable(arch: Architecture, cpuinfo: str | None = None, dev: str = "/dev/kvm") -> bool:
    """Whether a guest of ``arch`` can run under KVM on this host.

    ``cpuinfo`` is the text of /proc/cpuinfo (read when None).  PC hosts need vmx
    (Intel) or svm (AMD) among the flags; other hosts have no such flag and trust
    the device.  A guest runs under KVM where the host runs its programs natively
    (an i386 guest on an amd64 host).
    """
    host = architectures.host()
    if not architectures.runs_natively(arch, host):
        return False
    try:
        fd = os.open(dev, os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return False
    os.close(fd)
    if not host.pc_bios:
        return True
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
        except OSError:
            return False
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags" and {"vmx", "svm"} & set(value.split()):
            return True
    return False


def firmware_files(arch: Architecture, firmware: str) -> tuple[Path, Path | None]:
    """The firmware code and its variables template (None for SeaBIOS)."""
    entry = arch.firmware(firmware)
    if entry is None:
        known = ", ".join(f"{a.name}/{f}" for a in architectures.ARCHITECTURES.values() for f in a.firmware_names)
        raise BootTestError(f"no {firmware} firmware for {arch.name} guests (the boot test knows {known})")
    for path in (entry.code, entry.variables):
        if path is not None and not path.is_file():
            raise BootTestError(f"{firmware} firmware for {arch.name} missing: {path} "
                                f"(apt-get install {entry.package})")
    return entry.code, entry.variables


def image_format(image: Path) -> str:
    """raw or qcow2, from the file's magic (never guessed by QEMU: raw probing is unsafe)."""
    with image.open("rb") as stream:
        return "qcow2" if stream.read(4) == QCOW2_MAGIC else "raw"


def firmware_log(target: BootTarget, workdir: Path) -> Path:
    """Where SeaBIOS's debug output goes (bios only)."""
    return workdir / f"firmware-{target.arch.name}-{target.firmware}.log"


def _file(path: Path) -> str:
    # QEMU's option syntax doubles commas inside values.
    return os.fspath(path.absolute()).replace(",", ",,")


def qemu_command(target: BootTarget, workdir: Path, memory_mb: int = 2048, kvm: bool = False,
                 *, qemu: str | None = None, single_thread: bool = False) -> list[str]:
    """The QEMU argv; copies the UEFI variables template into ``workdir``.

    ``qemu`` replaces the emulator binary (tests use a fake); ``single_thread`` runs
    all emulated CPUs on one host thread (see ``STALE_BREAKPOINT``).
    """
    emulator = _emulator(target.arch)
    if not target.image.is_file():
        raise BootTestError(f"no image to boot: {target.image}")
    code, template = firmware_files(target.arch, target.firmware)
    firmware = target.arch.firmware(target.firmware)
    smm = firmware is not None and firmware.smm
    pc = target.arch.pc_bios
    argv = [qemu or emulator.binary, "-machine", emulator.machine + (",smm=on" if smm else "")]
    tcg = "tcg,thread=single" if single_thread else "tcg"
    argv += ["-accel", "kvm", "-cpu", "host"] if kvm else ["-accel", tcg, "-cpu", emulator.tcg_cpu]
    argv += ["-m", str(memory_mb), "-smp", "2", "-no-reboot"]
    # The serial port is our stdin/stdout; signal=off so that no byte we type (^C) stops QEMU.
    argv += ["-display", "none", "-monitor", "none", "-chardev", "stdio,id=con,signal=off", "-serial", "chardev:con"]
    if target.firmware == "bios":
        # SeaBIOS says what it tried on its debug port, not on the serial port.
        argv += ["-chardev", f"file,id=firmware,path={_file(firmware_log(target, workdir))}",
                 "-device", "isa-debugcon,iobase=0x402,chardev=firmware"]
    if template is not None:
        variables = workdir / f"efivars-{target.arch.name}.fd"
        shutil.copyfile(template, variables)
        argv += ["-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={_file(code)}",
                 "-drive", f"if=pflash,format=raw,unit=1,file={_file(variables)}"]
    if smm:  # only SMM code may write the flash that holds the Secure Boot variables
        argv += ["-global", "driver=cfi.pflash01,property=secure,value=on"]
    if target.kind == "iso" and pc:
        argv += ["-cdrom", os.fspath(target.image.absolute())]
    elif target.kind == "iso":
        # The virt machine has no IDE: the CD hangs off virtio-scsi.
        argv += ["-drive", f"if=none,id=cd,media=cdrom,readonly=on,format=raw,file={_file(target.image)}",
                 "-device", "virtio-scsi-pci", "-device", "scsi-cd,drive=cd"]
    else:
        argv += ["-drive", f"if=virtio,format={image_format(target.image)},file={_file(target.image)}", "-snapshot"]
    # No network card: the checks do not need one, and with one the UEFI firmware
    # spends minutes on PXE and HTTP boot before admitting that the image does not boot.
    argv += ["-nic", "none", "-device", "virtio-rng-pci"]
    return argv


def _emulator(arch: Architecture) -> Emulator:
    if arch.emulator is None:
        supported = [a.name for a in architectures.ARCHITECTURES.values() if a.emulator]
        raise BootTestError(f"the boot test does not support {arch.name} guests (only {', '.join(supported)})")
    return arch.emulator


# -- reading a transcript ---------------------------------------------------------

_ANSI = re.compile(r"""
    \x1b\[[0-?]*[ -/]*[@-~]              # CSI: colours, cursor movement, bracketed paste
  | \x1b[\]P^_X][^\x07\x1b]*(?:\x07|\x1b\\)  # strings to their terminator: OSC (window titles, systemd's
                                         # OSC 3008 context), DCS, PM, APC, SOS
  | \x1b[%()*+#][0-9A-Za-z@]             # character sets (ISOLINUX draws its menu box with them)
  | \x1b[@-OQ-WYZ\\a-z=>78]              # other two-byte escapes (systemd's status line uses ESC M)
""", re.VERBOSE)
# Menus (ISOLINUX, GRUB) place each row with a cursor position: one line each.
_CURSOR_POSITION = re.compile(r"\x1b\[\d*(?:;\d*)?[Hf]")
_CARRIAGE_RETURNS = re.compile(r"\r*\n\r*|\r+")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
# An escape sequence cut by a read waits for its end up to this long: systemd 258's shell
# integration (forky) writes an OSC 3008 context of some 250 characters before each
# command's output; cut in two, its text hid the boot test's markers.
LONGEST_ESCAPE = 4096


def strip_ansi(text: str) -> str:
    """Text as a reader sees it: no escape sequences or control characters, lines ending in \\n.

    A carriage return alone ends a line too: progress lines that redraw themselves
    (systemd's "A start job is running") become one line per update; so does a
    cursor positioning, for menus.
    """
    text = _CURSOR_POSITION.sub("\n", text)
    return _CONTROL.sub("", _CARRIAGE_RETURNS.sub("\n", _ANSI.sub("", text)))


LOGIN_PROMPT = re.compile(r"(?m)^\S+ login: ")
PASSWORD_PROMPT = re.compile(r"Password: ?")
SHELL_PROMPT = re.compile(r"(?m)[$#] $")
LOGIN_INCORRECT = re.compile(r"Login incorrect")
PASSWORD_CHANGE = re.compile(r"You are required to change your password|Your password has expired")
GRUB_MENU = re.compile(r"Press enter to boot|will be executed automatically|Press \[Tab\] to edit|Automatic boot in")
# Anything matching one of these ends the test at once; the earliest in the transcript is the verdict.
FAILURES = (
    ("panic", re.compile(r"Kernel panic - not syncing: ?([^\n]*)\n")),
    ("oops", re.compile(r"(?m)^([^\n]*\bOops\b[^\n]*\[#\d+\][^\n]*)\n")),
    ("initramfs", re.compile(r"(?m)^\(initramfs\) ")),
    ("dracut", re.compile(r"(?m)^dracut:/# |Entering emergency mode\. Exit the shell to continue")),
    ("emergency", re.compile(r"You are in (?:emergency|rescue) mode|Give root password for maintenance"
                             r"|Cannot open access to console, the root account is locked")),
    ("grub-rescue", re.compile(r"(?m)^grub rescue> ")),
    # Secure Boot: the firmware refuses a loader its keys do not sign; shim refuses GRUB.
    ("secure-boot", re.compile(r"BdsDxe: failed to load Boot\d+ [^\n]*: Access Denied"
                               r"|Verification failed: \(0x1A\) Security Violation")),
    ("nothing-to-boot", re.compile(r"No bootable device|No bootable option or device was found"
                                   r'|starting Boot\d+ "EFI Internal Shell"|(?m:^Shell> )')),
)
# SeaBIOS debug lines worth copying into the transcript (prefixed "SeaBIOS: ").
SEABIOS_LINES = re.compile(r"(?m)^(?:Booting from|Boot failed|No bootable device).*$")
_TIMESTAMP = re.compile(r"^\[\s*\d+\.\d+\]\s?")  # printk's "[    1.234567] "
_STATES = ("initializing", "starting", "running", "degraded", "maintenance", "stopping", "offline", "unknown")
_UNIT = re.compile(r"^[\w@.:\\-]+\.(?:service|socket|mount|automount|swap|target|device|timer|path|slice|scope)$")

# The checks run after logging in, in order: (name, command).  The name tags the
# markers around the command's output in the transcript.
# The UEFI variable SecureBoot (4 bytes of attributes, then 1 when on) and the kernel's
# lockdown, which Debian's kernel turns to integrity under Secure Boot: both readable by users.
SECURE_BOOT_VARIABLE = "/sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c"
CHECKS = (
    ("state", "systemctl is-system-running --wait"),
    ("failed", "systemctl --failed --plain --no-legend --no-pager --full"),
    ("id", "id"),
    ("cmdline", "cat /proc/cmdline"),
    ("rootfs", "findmnt -n -o FSTYPE /"),
    ("secureboot", f"od -An -tx1 {SECURE_BOOT_VARIABLE}; cat /sys/kernel/security/lockdown"),
    # No build option grants passwordless sudo; live-config's sudo component would (issue 22).
    ("sudo", "sudo -n true"),
)
MARKER_PREFIX = "VMDB"
_OUTPUT = re.compile(rf"(?ms)^(?P<tag>{MARKER_PREFIX}-[0-9a-f]+)-(?P<name>[a-z]+)-begin\n(?P<output>.*?)"
                     r"^(?P=tag)-(?P=name)-end-(?P<status>\d+)\n")


def marked(command: str, tag: str, name: str) -> str:
    """``command`` between two echoed markers.

    The terminal echoes the typed line; the quotes in it keep the echo from ever
    matching what the shell prints (``'TAG'-x-begin`` is printed as ``TAG-x-begin``).
    """
    return f"echo '{tag}'-{name}-begin; {command}; echo '{tag}'-{name}-end-$?"


def command_outputs(console: str) -> dict[str, tuple[str, int]]:
    """name -> (output, exit status) of every finished marked command in a clean transcript."""
    return {m["name"]: (m["output"], int(m["status"])) for m in _OUTPUT.finditer(console)}


def _lines(output: str) -> list[str]:
    """Output lines, without kernel messages that the console mixed in."""
    return [line.strip() for line in output.splitlines() if line.strip() and not _TIMESTAMP.match(line)]


def _failed_units(output: str) -> list[str]:
    units = []
    for line in _lines(output):
        for word in line.split()[:2]:  # a bullet may come first
            if _UNIT.match(word):
                units.append(word)
                break
    return units


def _first_failure(console: str) -> tuple[int, str] | None:
    found: list[tuple[int, str]] = []
    for kind, pattern in FAILURES:
        match = pattern.search(console)
        if match:
            found.append((match.start(), _failure_verdict(kind, match, console)))
    return min(found) if found else None


def _failure_verdict(kind: str, match: re.Match[str], console: str) -> str:
    before = console[:match.start()].splitlines()
    if kind == "panic":
        return "kernel panic: " + match[1].removesuffix(" ]---").strip()
    if kind == "oops":
        return "kernel oops: " + _TIMESTAMP.sub("", match[1]).strip()
    if kind == "initramfs":
        reason = _last_line(before, skip=("BusyBox v", "Enter 'help'", "(initramfs)"))
        return "initramfs emergency shell" + (f": {reason}" if reason else "")
    if kind == "dracut":
        return "dracut emergency shell"
    if kind == "emergency":
        failed = [line for line in before if "FAILED]" in line]
        reason = failed[-1].split("FAILED]", 1)[1].strip() if failed else ""
        return "systemd emergency mode" + (f" after: {reason}" if reason else "")
    if kind == "secure-boot":
        line = console[console.rfind("\n", 0, match.start()) + 1:].split("\n", 1)[0].strip()
        who = "shim refused GRUB" if "Verification failed" in match[0] else "the firmware refused the loader"
        return f"Secure Boot: {who} ({line})"
    if kind == "grub-rescue":
        reason = _last_line(before, skip=("grub rescue>",))
        return "GRUB rescue shell" + (f": {reason}" if reason else "")
    if match[0].startswith(("Shell>", "starting Boot")):
        tried = re.findall(r'(?m)^BdsDxe: failed to load (Boot\d+ "[^"]*?) *" from .*: (.*)$', console[:match.start()])
        return "firmware found nothing to boot: UEFI shell" + (
            " after " + "; ".join(f'{entry}": {error}' for entry, error in tried) if tried else "")
    line = console[console.rfind("\n", 0, match.start()) + 1:].split("\n", 1)[0]
    return "firmware found nothing to boot: " + line.strip()


def _last_line(lines: list[str], skip: tuple[str, ...] = ()) -> str:
    for line in reversed(lines):
        text = _TIMESTAMP.sub("", line).strip()
        if text and not text.startswith(skip):
            return text
    return ""


@dataclasses.dataclass
class Reading:
    """What a transcript says about the boot."""

    verdict: str
    passed: bool
    login: bool
    system_state: str = ""
    failed_units: list[str] = dataclasses.field(default_factory=list)
    id_output: str = ""
    cmdline: str = ""
    root_fstype: str = ""
    secure_boot: bool | None = None  # the SecureBoot variable (None: no UEFI variables)
    lockdown: str = ""  # the kernel's lockdown: none, integrity, confidentiality
    sudo_status: int | None = None  # the exit status of `sudo -n true` (0: passwordless sudo)


def read_console(console: str, finished: bool, *, login_seconds: float | None = None,
                 timeout: float | None = None, secure: bool = False, sudo: bool | None = None) -> Reading:
    """The verdict and the collected facts from a transcript (raw or clean).

    ``finished``: QEMU exited by itself (else it was stopped: a timeout, unless the
    transcript shows a failure).  ``login_seconds`` and ``timeout`` only add figures
    to the verdict.  ``secure``: the firmware enforced Secure Boot, and the guest must
    say it was on.  ``sudo``: the user must not have passwordless sudo, and with True must
    be in the sudo group (--sudo); None: not judged.
    """
    text = strip_ansi(console)
    login = LOGIN_PROMPT.search(text)

    def stopped(waiting_for: str) -> str:
        if finished:
            return f"QEMU exited while waiting for {waiting_for}"
        return ("timeout" if timeout is None else f"timeout after {timeout:g} s") + f" waiting for {waiting_for}"

    failure = _first_failure(text)
    if failure:
        return Reading(failure[1], False, bool(login))
    if not login:
        last = _last_line(text.splitlines())
        return Reading(stopped("login prompt") + (f"; last console line: {last}" if last else ""), False, False)
    lead = "login prompt" + (f" after {login_seconds:.0f} s" if login_seconds is not None else "")
    after = text[login.end():]
    if PASSWORD_CHANGE.search(after):
        return Reading(f"{lead}; password change required at login", False, True)
    outputs = command_outputs(after)
    if LOGIN_INCORRECT.search(after) and not outputs:
        return Reading(f"{lead}; login incorrect", False, True)
    reading = Reading(lead, True, True)
    _read_facts(reading, outputs)
    parts = [lead]
    if reading.system_state == "running":
        parts.append("system running")
    elif reading.system_state == "degraded":
        parts.append("system degraded; failed units: " + (", ".join(reading.failed_units) or "none listed"))
    elif reading.system_state:
        parts.append(f"system state: {reading.system_state}")
        reading.passed = False
    if secure and "secureboot" in outputs:
        _judge_secure_boot(reading, parts)
    if sudo is not None and "sudo" in outputs:
        _judge_sudo(reading, parts, in_group=sudo)
    # The Secure Boot check decides only under firmware that enforces it, the sudo check when asked.
    judged = {"secureboot": secure, "sudo": sudo is not None}
    missing = [(name, command) for name, command in CHECKS if name not in outputs and judged.get(name, True)]
    if missing:
        name, command = missing[0]
        started = re.search(rf"(?m)^{MARKER_PREFIX}-[0-9a-f]+-{name}-begin$", after)
        parts.append(stopped(f"`{command}`" if started or outputs else "a shell prompt after logging in"))
        reading.passed = False
    reading.verdict = "; ".join(parts)
    return reading


def _judge_secure_boot(reading: Reading, parts: list[str]) -> None:
    if reading.secure_boot and reading.lockdown in ("integrity", "confidentiality"):
        parts.append(f"Secure Boot on (lockdown: {reading.lockdown})")
        return
    state = {True: "on", False: "off", None: "missing"}[reading.secure_boot]
    parts.append(f"Secure Boot was NOT on in the guest (SecureBoot variable: {state}, "
                 f"lockdown: {reading.lockdown or 'unknown'})")
    reading.passed = False


def _judge_sudo(reading: Reading, parts: list[str], in_group: bool) -> None:
    """``sudo -n true`` must fail (no passwordless sudo); with ``in_group`` the user is in group sudo."""
    groups = reading.id_output.partition(" groups=")[2]
    if reading.sudo_status == 0:
        parts.append("the user has passwordless sudo (`sudo -n true` succeeded)")
        reading.passed = False
    if in_group and not re.search(r"(?:^|,)\d+\(sudo\)", groups):
        parts.append(f"the user is not in the sudo group ({reading.id_output or 'no id output'})")
        reading.passed = False
    elif in_group and reading.sudo_status != 0:
        parts.append("sudo asks for the password")


def _read_facts(reading: Reading, outputs: dict[str, tuple[str, int]]) -> None:
    """What the checks printed, into ``reading``."""
    if "state" in outputs:
        states = [line for line in _lines(outputs["state"][0]) if line in _STATES]
        reading.system_state = states[0] if states else "unknown"
    if "failed" in outputs:
        reading.failed_units = _failed_units(outputs["failed"][0])
    if "id" in outputs:
        reading.id_output = next((line for line in _lines(outputs["id"][0]) if line.startswith("uid=")), "")
    if "cmdline" in outputs:
        reading.cmdline = " ".join(_lines(outputs["cmdline"][0]))
    if "rootfs" in outputs:
        reading.root_fstype = " ".join(_lines(outputs["rootfs"][0]))
    if "secureboot" in outputs:
        lines = _lines(outputs["secureboot"][0])
        variable = next((line.split() for line in lines if re.fullmatch(r"(?:[0-9a-f]{2} ?)+", line)), [])
        reading.secure_boot = variable[-1] == "01" if len(variable) == 5 else None
        chosen = next((re.search(r"\[(\w+)\]", line) for line in lines if "[" in line), None)
        reading.lockdown = chosen[1] if chosen else ""
    if "sudo" in outputs:
        reading.sudo_status = outputs["sudo"][1]


def classify(console: str, finished: bool, *, login_seconds: float | None = None,
             timeout: float | None = None) -> str:
    """The one-line verdict on a console transcript (see ``read_console``)."""
    return read_console(console, finished, login_seconds=login_seconds, timeout=timeout).verdict


# -- driving QEMU -----------------------------------------------------------------


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
        if not final and cut != -1 and len(data) - cut < LONGEST_ESCAPE and not _ANSI.match(data, cut):
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
            if failures and _first_failure(self.text[self._line_start(max(0, scanned - 4096), 0):]):
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
        package = _emulator(target.arch).package
        raise BootTestError(f"{argv[0]} not found" + ("" if boot.qemu else f" (apt-get install {package})"))
    console_log = workdir / f"console-{target.arch.name}-{target.firmware}.log"
    firmware_log(target, workdir).unlink(missing_ok=True)  # not a previous run's
    log.info("boot test of %s (%s, %s, %s): %s", target.image, target.arch.name, target.firmware,
             "KVM" if boot.kvm else "TCG", shlex.join(argv))
    login_seconds: float | None = None
    finished = False
    with console_log.open("w", encoding="utf-8") as stream:
        start = time.monotonic()
        child = pexpect.spawn(argv[0], argv[1:], env=command_env(), cwd=os.fspath(workdir), encoding="utf-8",
                              codec_errors="replace", echo=False, use_poll=True)
        console = _Console(child, stream, firmware_log(target, workdir) if target.firmware == "bios" else None)
        try:
            login_seconds, logged_in = _login(console, boot.user, boot.password, boot.grub_entry_keys, start=start,
                                           deadline=start + timeout, label=target.firmware)
            if logged_in:
                _run_checks(console, start + timeout)
            finished = console.eof  # QEMU exited by itself, before we stopped it
        finally:
            before_stop = len(console.text)  # the verdict ignores what QEMU says when it is stopped
            _stop(child, console)
            log.debug("boot test: QEMU (pid %d) ended: exit status %s, signal %s", child.pid, child.exitstatus,
                      child.signalstatus)
    return _result(boot, console.text, console.text[:before_stop], finished=finished, login_seconds=login_seconds,
                   console_log=console_log)


def _result(boot: Boot, transcript: str, judged: str, *, finished: bool, login_seconds: float | None,
            console_log: Path) -> BootResult:
    """The verdict on ``judged`` (the transcript up to our stopping QEMU), logged."""
    target = boot.target
    firmware = target.arch.firmware(target.firmware)
    reading = read_console(judged, finished, login_seconds=login_seconds, timeout=boot.timeout,
                           secure=firmware is not None and firmware.secure, sudo=boot.sudo)
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
    mark = len(console.text)
    console.line(user)
    after_login = {"shell": SHELL_PROMPT, "incorrect": LOGIN_INCORRECT, "change": PASSWORD_CHANGE}
    seen = console.wait({"password": PASSWORD_PROMPT, **after_login}, deadline, mark)
    if seen == "password":
        mark = len(console.text)
        console.line(password)  # not echoed by the guest: it never reaches the transcript
        seen = console.wait(after_login, deadline, mark)
    return seconds, seen == "shell"


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
