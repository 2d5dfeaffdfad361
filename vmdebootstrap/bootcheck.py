"""--boot-test and --boot-test-only: boot what was built in QEMU and report per firmware.

The boot test itself lives in boottest.py; this module chooses the firmwares, the user
and the menu entry, and turns the results into lines a person reads.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

from . import boottest
from .settings import Settings

log = logging.getLogger("vmdebootstrap")

# The ISO's second menu entry is the live system on the serial console (steps/iso.py).
SERIAL_ENTRY_KEYS = "\x1b[B\r"


def run(settings: Settings, image: Path, workdir: Path, kind: Literal["iso", "disk", ""] = "",
        results: list[boottest.BootResult] | None = None) -> bool:
    """Boot ``image`` with every firmware; log one line per firmware; True when all passed.

    ``kind`` defaults to what the file name says (--boot-test-only).  Each firmware's result
    is appended to ``results`` (the build report).
    """
    test = settings.boot_test
    assert test is not None and test.user.password is not None
    if not kind:
        kind = "iso" if image.suffix == ".iso" else "disk"
    workdir.mkdir(parents=True, exist_ok=True)
    passed = True
    for firmware in test.firmwares:
        target = boottest.BootTarget(image=image, kind=kind, arch=settings.arch, firmware=firmware)
        log.info("boot test (%s, %s): booting %s in QEMU", settings.arch.name, firmware, image)
        result = boottest.boot_test(target, test.user.name, test.user.password, workdir / firmware,
                                    timeout=test.timeout,
                                    grub_entry_keys=SERIAL_ENTRY_KEYS if kind == "iso" else "")
        if results is not None:
            results.append(result)
        seconds = f"{result.seconds_to_login:.0f} s to login" if result.seconds_to_login else "no login"
        line = f"boot test {settings.arch.name} {firmware}: {'PASS' if result.passed else 'FAIL'} ({seconds}): " \
               f"{result.verdict}; console log {result.console_log}"
        if result.passed:
            log.info("%s", line)
        else:
            log.error("%s", line)
            passed = False
    return passed
