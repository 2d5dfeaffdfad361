"""The boot check of a build (--boot-test) or of an image (--boot-test-only): the image
booted with each firmware, the results reported, one line each.

One boot is console.boot_test's; this module chooses the firmwares, the user, the menu
entry and what is judged (sudo, by the settings), keeps the files as private as the log,
and turns the results into lines a person reads.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from ..settings import Settings
from . import console
from .qemu import BootTarget

log = logging.getLogger("vmdebootstrap")

# The ISO's second menu entry is the live system on the serial console (outputs/iso.py).
SERIAL_ENTRY_KEYS = "\x1b[B\r"


def run(settings: Settings, image: Path, workdir: Path, kind: Literal["iso", "disk", ""] = "",
        results: list[console.BootResult] | None = None) -> bool:
    """Boot ``image`` with every firmware; log one line per firmware; True when all passed.

    ``kind`` defaults to what the file name says (--boot-test-only).  Each firmware's result
    is appended to ``results`` (the build report).  The firmwares boot side by side where
    the machine has two cores per guest (parallel_boots); one after the other otherwise.
    """
    test = settings.boot_test
    assert test is not None and test.user.password is not None
    if not kind:
        kind = "iso" if image.suffix == ".iso" else "disk"
    user, password = test.user.name, test.user.password

    def boot(firmware: str) -> console.BootResult:
        target = BootTarget(image=image, kind=kind, arch=settings.arch, firmware=firmware, display=test.display)
        log.info("boot test (%s, %s): booting %s in QEMU", settings.arch.name, firmware, image)
        return console.boot_test(target, user, password, workdir / firmware, timeout=test.timeout,
                                  grub_entry_keys=SERIAL_ENTRY_KEYS if kind == "iso" else "", sudo=settings.sudo)

    firmwares = list(test.firmwares)
    with private_files(workdir, settings.logging.mode):
        if parallel_boots(len(firmwares)):
            with concurrent.futures.ThreadPoolExecutor(len(firmwares)) as pool:
                booted = list(pool.map(boot, firmwares))
        else:
            booted = [boot(firmware) for firmware in firmwares]
    passed = True
    for result in booted:
        if results is not None:
            results.append(result)
        passed = _report(settings, result) and passed
    return passed


@contextlib.contextmanager
def private_files(workdir: Path, mode: int) -> Iterator[None]:
    """The transcripts, the firmware's logs and its variables are as private as the build log
    (--log-mode, 0600 by default): what the boot test and QEMU write below ``workdir`` is made
    with a umask to match, and whatever an earlier run left there is given the mode too."""
    directory_mode = mode | (mode & 0o444) >> 2  # x where r: 0600 -> 0700, 0644 -> 0755
    saved = os.umask(0o777 & ~directory_mode)
    try:
        workdir.mkdir(parents=True, exist_ok=True)
        yield
    finally:
        os.umask(saved)
        os.chmod(workdir, directory_mode)
        for directory, names, files in os.walk(workdir):
            for name in names:
                os.chmod(os.path.join(directory, name), directory_mode)
            for name in files:
                os.chmod(os.path.join(directory, name), mode)


def parallel_boots(count: int, cores: int | None = None) -> bool:
    """Whether ``count`` boots run at once: with two cores per guest.  A booting TCG guest keeps
    about one core busy; on 2 cores BIOS and UEFI side by side took 116 s, one after the other
    124 s, each boot nearly twice as long: not worth it (docs/performance.md)."""
    cores = cores if cores is not None else (os.cpu_count() or 1)
    return count > 1 and cores >= 2 * count


def _report(settings: Settings, result: console.BootResult) -> bool:
    seconds = f"{result.seconds_to_login:.0f} s to login" if result.seconds_to_login else "no login"
    line = f"boot test {settings.arch.name} {result.firmware}: {'PASS' if result.passed else 'FAIL'} " \
           f"({seconds}): {result.verdict}; console log {result.console_log}" + \
           (f"; screenshot {result.screenshot}" if result.screenshot else "")
    if result.passed:
        log.info("%s", line)
    else:
        log.error("%s", line)
    return result.passed
