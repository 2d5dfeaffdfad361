"""What --boot-test and --boot-test-only ask for: which firmwares, how long, as whom."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from . import bootloaders, disk
from .architectures import Architecture
from .errors import UsageError
from .parsed import Parsed
from .values import User


@dataclasses.dataclass(frozen=True)
class BootTest:
    firmwares: tuple[str, ...]
    timeout: int
    user: User  # logs in: the first --user with a plaintext password
    image: Path | None  # --boot-test-only FILE; None: what this build makes
    display: bool = False  # --boot-test-display: a desktop's display manager, and a screenshot


def _login_user(users: tuple[User, ...]) -> User:
    """The user a boot test logs in as: the first --user with a plaintext password."""
    for user in users:
        if user.password and not user.hashed:
            return user
    raise UsageError("--boot-test needs a --user NAME/PASSWORD (with a plaintext password) to log in as")


def _firmware_families(request: disk.Request | None, boot_test_only: Path | None) -> tuple[str, ...]:
    """The firmware families that may boot what is built: a disk image's bootloader says which
    (none: any), an ISO boots with BIOS and UEFI; an image given to --boot-test-only with any."""
    if request is not None:
        return (bootloaders.REGISTRY[request.bootloader].firmware,)
    if boot_test_only is not None and boot_test_only.suffix != ".iso":
        return ("",)
    return ("bios", "uefi")


def boot_test(v: Parsed, arch: Architecture, request: disk.Request | None, secure_boot: bool) -> BootTest:
    """What --boot-test or --boot-test-only boots, with which firmwares, as whom: by default BIOS
    where there is one, and UEFI with Secure Boot enforced for the signed chain."""
    families = _firmware_families(request, v.optional("boot-test-only", Path))
    firmwares = arch.emulator.firmwares if arch.emulator else ()
    available = tuple(f.name for f in firmwares if f.family in families or families == ("",))
    asked = v.get("boot-firmware", tuple)
    for firmware in asked:
        if firmware not in available:
            raise UsageError(f"--boot-firmware {firmware}: {arch.name} boots with {' or '.join(available)}")
    uefi = "uefi-secure" if secure_boot and "uefi-secure" in available else "uefi"
    default = tuple(f for f in available if f in ("bios", uefi)) or available
    return BootTest(asked or default, v.number("boot-timeout"), _login_user(v.get("user", tuple)),
                    v.optional("boot-test-only", Path), v.flag("boot-test-display"))
