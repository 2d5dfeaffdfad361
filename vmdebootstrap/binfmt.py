"""Can this host run the target architecture's programs?  (qemu-user through binfmt_misc)

Asked before anything is downloaded.  The answer is either "yes" (with the
interpreter to copy into the target when the handler lacks the F flag), or one
sentence saying exactly what to install or enable.  vmdebootstrap never changes
the host's binfmt_misc settings itself.

The F ("fix binary") flag makes the kernel open the interpreter when the handler is
registered, so it works inside a chroot without a copy; without F the kernel looks
the interpreter path up inside the chroot, so it must be copied there (and removed
from the image afterwards).  A dynamically linked interpreter cannot work in the
chroot at all (pollen-robotics/reachy-mini-os PR #70).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from .architectures import Architecture

BINFMT_DIR = Path("/proc/sys/fs/binfmt_misc")
INSTALL_HINT = "apt-get install qemu-user-static binfmt-support"


class CannotEmulate(Exception):
    """The host cannot run the target's programs; the message says what to do."""


@dataclasses.dataclass(frozen=True)
class Emulation:
    handler: str  # e.g. qemu-aarch64
    interpreter: str  # the path the kernel runs
    fix_binary: bool  # F flag: no copy into the target needed

    @property
    def needs_copy(self) -> bool:
        return not self.fix_binary


def _fields(text: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if line in ("enabled", "disabled"):
            fields["state"] = line
        elif " " in line:
            key, _, value = line.partition(" ")
            fields[key.rstrip(":")] = value.strip()
    return fields


def probe(target: Architecture, binfmt_dir: Path = BINFMT_DIR) -> Emulation:
    """How the host runs ``target``'s binaries; raises CannotEmulate with the fix otherwise."""
    arch = target.name
    if not target.qemu_user:
        raise CannotEmulate(f"--arch {arch}: vmdebootstrap does not know the qemu-user name for {arch}")
    handler = f"qemu-{target.qemu_user}"
    if not (binfmt_dir / "status").exists():
        raise CannotEmulate(
            f"--arch {arch} needs qemu-user emulation, but binfmt_misc is not mounted: run "
            f"'mount -t binfmt_misc binfmt_misc {binfmt_dir}' ({INSTALL_HINT} registers the handlers)")
    if (binfmt_dir / "status").read_text().strip() != "enabled":
        raise CannotEmulate(f"--arch {arch}: binfmt_misc is disabled: run 'echo 1 > {binfmt_dir}/status'")
    entry = binfmt_dir / handler
    if not entry.exists():
        raise CannotEmulate(
            f"--arch {arch}: no binfmt handler {handler} is registered: {INSTALL_HINT}, then "
            f"'update-binfmts --enable {handler}'")
    fields = _fields(entry.read_text())
    if fields.get("state") != "enabled":
        raise CannotEmulate(f"--arch {arch}: the binfmt handler {handler} is disabled: "
                            f"run 'update-binfmts --enable {handler}'")
    interpreter = fields.get("interpreter", "")
    fix_binary = "F" in fields.get("flags", "")
    if not fix_binary and not Path(interpreter).is_file():
        raise CannotEmulate(
            f"--arch {arch}: the handler {handler} names {interpreter or 'no interpreter'}, which does not "
            f"exist on this host: {INSTALL_HINT}")
    return Emulation(handler, interpreter, fix_binary)
