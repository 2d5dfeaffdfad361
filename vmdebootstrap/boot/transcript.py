"""The verdict on a boot test's console transcript: pure functions of the text.

Everything the serial console printed, stripped of terminal escape sequences, is the
transcript; ``read_console`` finds in it the login prompt, the outputs of the checks
typed after logging in (``CHECKS``, between markers) and any failure (a kernel panic or
oops, an emergency shell, firmware that finds nothing to boot), and turns them into one
line.  Recorded transcripts (tests/unit/data/consoles) test it without QEMU.
"""

from __future__ import annotations

import dataclasses
import re

# The verdict when a guest CPU ran a breakpoint that its kernel had already patched
# away (text_poke_bp() puts int3 over code while it rewrites it).  Under QEMU's
# multi-threaded TCG another vCPU can run a stale translation of that code: seen once
# in CI with QEMU 7.2 (Debian 12), in enqueue_timer 1.3 s into the boot, and never
# again in the same image.  Such a boot is repeated once with all vCPUs on one thread
# (console.boot_test), where no cross-vCPU race exists, so an oops there is the guest's own.
STALE_BREAKPOINT = re.compile(r"kernel oops: Oops: int3\b")

ANSI = re.compile(r"""
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
    return _CONTROL.sub("", _CARRIAGE_RETURNS.sub("\n", ANSI.sub("", text)))


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
# systemctl is-active's answers.
_UNIT_STATES = ("active", "reloading", "inactive", "failed", "activating", "deactivating", "maintenance",
                "refreshing", "unknown")
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
    # Why each failed: exit code, signal or timeout (the user cannot read the system journal).
    ("why", "for unit in $(systemctl --failed --plain --no-legend --no-pager | cut -d' ' -f1); do "
            "echo $unit $(systemctl show --no-pager -p Result -p ExecMainStatus $unit); done"),
    ("id", "id"),
    ("cmdline", "cat /proc/cmdline"),
    ("rootfs", "findmnt -n -o FSTYPE /"),
    ("secureboot", f"od -An -tx1 {SECURE_BOOT_VARIABLE}; cat /sys/kernel/security/lockdown"),
    # No build option grants passwordless sudo; live-config's sudo component would (issue 22).
    ("sudo", "sudo -n true"),
    # A desktop: its display manager running, and a seat (a display boot judges them).
    ("display", "systemctl is-active display-manager.service; loginctl --no-legend list-seats"),
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


def _why_failed(output: str) -> dict[str, str]:
    """unit -> its Result, and the main process's exit status when it had one: a line per
    unit, ``UNIT Result=exit-code ExecMainStatus=1`` (systemctl show's order)."""
    why: dict[str, str] = {}
    for line in _lines(output):
        unit, *words = line.split()
        fields = dict(word.partition("=")[::2] for word in words)
        if not _UNIT.match(unit) or not fields.get("Result"):
            continue
        status = fields.get("ExecMainStatus", "0")
        why[unit] = fields["Result"] + (f", status {status}" if status not in ("", "0") else "")
    return why


def first_failure(console: str) -> tuple[int, str] | None:
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
    why_failed: dict[str, str] = dataclasses.field(default_factory=dict)  # unit -> "exit-code, status 1"
    id_output: str = ""
    cmdline: str = ""
    root_fstype: str = ""
    secure_boot: bool | None = None  # the SecureBoot variable (None: no UEFI variables)
    lockdown: str = ""  # the kernel's lockdown: none, integrity, confidentiality
    sudo_status: int | None = None  # the exit status of `sudo -n true` (0: passwordless sudo)
    display_manager: str = ""  # systemctl is-active display-manager.service: active, inactive, ...
    seats: list[str] = dataclasses.field(default_factory=list)  # loginctl list-seats


def read_console(console: str, finished: bool, *, login_seconds: float | None = None,
                 timeout: float | None = None, secure: bool = False, sudo: bool | None = None,
                 display: bool = False) -> Reading:
    """The verdict and the collected facts from a transcript (raw or clean).

    ``finished``: QEMU exited by itself (else it was stopped: a timeout, unless the
    transcript shows a failure).  ``login_seconds`` and ``timeout`` only add figures
    to the verdict.  ``secure``: the firmware enforced Secure Boot, and the guest must
    say it was on.  ``sudo``: the user must not have passwordless sudo, and with True must
    be in the sudo group (--sudo); None: not judged.  ``display``: a desktop, whose display
    manager must be active on a seat.
    """
    text = strip_ansi(console)
    login = LOGIN_PROMPT.search(text)

    def stopped(waiting_for: str) -> str:
        if finished:
            return f"QEMU exited while waiting for {waiting_for}"
        return ("timeout" if timeout is None else f"timeout after {timeout:g} s") + f" waiting for {waiting_for}"

    failure = first_failure(text)
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
    parts = [lead, *_bounced(after)]
    if reading.system_state == "running":
        parts.append("system running")
    elif reading.system_state == "degraded":
        parts.append("system degraded; failed units: " + _failed_list(reading))
    elif reading.system_state:
        parts.append(f"system state: {reading.system_state}")
        reading.passed = False
    if secure and "secureboot" in outputs:
        _judge_secure_boot(reading, parts)
    if sudo is not None and "sudo" in outputs:
        _judge_sudo(reading, parts, in_group=sudo)
    if display and "display" in outputs:
        _judge_display(reading, parts)
    # The Secure Boot check decides only under firmware that enforces it, sudo and display when asked.
    judged = {"secureboot": secure, "sudo": sudo is not None, "display": display, "why": False}
    missing = [(name, command) for name, command in CHECKS if name not in outputs and judged.get(name, True)]
    if missing:
        name, command = missing[0]
        started = re.search(rf"(?m)^{MARKER_PREFIX}-[0-9a-f]+-{name}-begin$", after)
        parts.append(stopped(f"`{command}`" if started or outputs else "a shell prompt after logging in"))
        reading.passed = False
    reading.verdict = "; ".join(parts)
    return reading


def _bounced(after_login: str) -> list[str]:
    """What to say when getty asked again after a login, before any shell (console._login logs in again)."""
    before_shell = after_login.split(f"{MARKER_PREFIX}-", 1)[0]
    again = len(LOGIN_PROMPT.findall(before_shell))
    return [f"a new login prompt instead of a shell {again} time{'s' if again > 1 else ''}"] if again else []


def _failed_list(reading: Reading) -> str:
    """The failed units, each with why when the guest said: ``a.service (exit-code, status 1)``."""
    named = [f"{unit} ({reading.why_failed[unit]})" if unit in reading.why_failed else unit
             for unit in reading.failed_units]
    return ", ".join(named) or "none listed"


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


def _judge_display(reading: Reading, parts: list[str]) -> None:
    if reading.display_manager == "active" and reading.seats:
        parts.append(f"display manager active on {', '.join(reading.seats)}")
        return
    parts.append(f"no desktop: display manager {reading.display_manager or 'unknown'}, "
                 f"seats: {', '.join(reading.seats) or 'none'}")
    reading.passed = False


def _read_facts(reading: Reading, outputs: dict[str, tuple[str, int]]) -> None:
    """What the checks printed, into ``reading``."""
    if "state" in outputs:
        states = [line for line in _lines(outputs["state"][0]) if line in _STATES]
        reading.system_state = states[0] if states else "unknown"
    if "failed" in outputs:
        reading.failed_units = _failed_units(outputs["failed"][0])
    if "why" in outputs:
        reading.why_failed = _why_failed(outputs["why"][0])
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
    if "display" in outputs:
        lines = _lines(outputs["display"][0])
        reading.display_manager = next((line for line in lines if line in _UNIT_STATES), "")
        reading.seats = [line.split()[0] for line in lines if line.startswith("seat")]


def classify(console: str, finished: bool, *, login_seconds: float | None = None,
             timeout: float | None = None) -> str:
    """The one-line verdict on a console transcript (see ``read_console``)."""
    return read_console(console, finished, login_seconds=login_seconds, timeout=timeout).verdict
