"""The xfce flavour (tests/integration/test_flavours.py's build) boots to its desktop."""

from __future__ import annotations

from pathlib import Path

import pytest

from vmdebootstrap.architectures import ARCHITECTURES
from vmdebootstrap.boot import console as boot_console
from vmdebootstrap.boot.check import SERIAL_ENTRY_KEYS
from vmdebootstrap.boot.qemu import BootTarget

from ..conftest import PASSWORD, SLOW_GUEST_APPEND
from .test_boot_iso import no_qemu_left

pytestmark = [pytest.mark.boot, pytest.mark.flavours]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_the_xfce_iso_boots_to_its_display_manager(xfce_iso: dict[str, object], tmp_path: Path) -> None:
    """--boot-test-display, as the example asks: the display manager active on a seat, the screen
    kept as PNG for a person to look at (QEMU's screendump)."""
    iso = xfce_iso["iso"]
    assert isinstance(iso, Path)
    target = BootTarget(image=iso, kind="iso", arch=ARCHITECTURES["amd64"], firmware="bios", display=True)
    result = boot_console.boot_test(target, "user", PASSWORD, tmp_path, timeout=1500,
                                    grub_entry_keys=SERIAL_ENTRY_KEYS, sudo=True)
    console = result.console_log.read_text(errors="replace")
    assert result.passed, f"{result.verdict}\n{console[-3000:]}"
    assert SLOW_GUEST_APPEND[1] in result.cmdline  # the build's --kernel-append reached the guest
    assert result.display_manager == "active" and "display manager active on seat0" in result.verdict
    assert result.screenshot is not None and result.screenshot.read_bytes().startswith(PNG_MAGIC)
    assert result.screenshot.stat().st_size > 10_000  # a drawn screen, not a blank one
    assert no_qemu_left(iso)
    print(f"xfce bios: login after {result.seconds_to_login:.0f} s; {result.verdict}; screen: {result.screenshot}")
