"""The qemu-user probe's decisions and messages, fed from fake binfmt_misc directories."""

from __future__ import annotations

from pathlib import Path

import pytest

from vmdebootstrap import binfmt
from vmdebootstrap.architectures import ARCHITECTURES

F_HANDLER = """enabled
interpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P
flags: PF
offset 0
magic 7f454c460201010000000000000000000200b700
mask ffffffffffffff00fffffffffffffffffeffffff
"""


def fake(tmp_path: Path, status: str | None = "enabled", handler: str | None = F_HANDLER) -> Path:
    directory = tmp_path / "binfmt_misc"
    directory.mkdir()
    if status is not None:
        (directory / "status").write_text(status + "\n")
    if handler is not None:
        (directory / "qemu-aarch64").write_text(handler)
    return directory


def test_not_mounted(tmp_path: Path) -> None:
    with pytest.raises(binfmt.CannotEmulate, match="binfmt_misc is not mounted: run 'mount -t binfmt_misc"):
        binfmt.probe(ARCHITECTURES["arm64"], fake(tmp_path, status=None, handler=None))


def test_binfmt_misc_disabled(tmp_path: Path) -> None:
    with pytest.raises(binfmt.CannotEmulate, match="binfmt_misc is disabled"):
        binfmt.probe(ARCHITECTURES["arm64"], fake(tmp_path, status="disabled"))


def test_handler_missing_names_packages(tmp_path: Path) -> None:
    with pytest.raises(binfmt.CannotEmulate) as info:
        binfmt.probe(ARCHITECTURES["arm64"], fake(tmp_path, handler=None))
    assert "no binfmt handler qemu-aarch64" in str(info.value)
    assert "apt-get install qemu-user-static binfmt-support" in str(info.value)
    assert "update-binfmts --enable qemu-aarch64" in str(info.value)


def test_handler_disabled(tmp_path: Path) -> None:
    with pytest.raises(binfmt.CannotEmulate, match="qemu-aarch64 is disabled: run 'update-binfmts --enable"):
        binfmt.probe(ARCHITECTURES["arm64"], fake(tmp_path, handler=F_HANDLER.replace("enabled", "disabled", 1)))


def test_fix_binary_flag_needs_no_copy(tmp_path: Path) -> None:
    emulation = binfmt.probe(ARCHITECTURES["arm64"], fake(tmp_path))
    assert emulation.fix_binary and not emulation.needs_copy
    assert emulation.interpreter == "/usr/libexec/qemu-binfmt/aarch64-binfmt-P"


def test_without_fix_binary_the_interpreter_is_copied(tmp_path: Path) -> None:
    interpreter = tmp_path / "qemu-aarch64-static"
    interpreter.write_bytes(b"\x7fELF")
    handler = F_HANDLER.replace("flags: PF", "flags: ").replace(
        "/usr/libexec/qemu-binfmt/aarch64-binfmt-P", str(interpreter))
    emulation = binfmt.probe(ARCHITECTURES["arm64"], fake(tmp_path, handler=handler))
    assert emulation.needs_copy and emulation.interpreter == str(interpreter)


def test_without_fix_binary_a_missing_interpreter_is_an_error(tmp_path: Path) -> None:
    handler = F_HANDLER.replace("flags: PF", "flags: ").replace(
        "/usr/libexec/qemu-binfmt/aarch64-binfmt-P", "/nonexistent/qemu-aarch64-static")
    with pytest.raises(binfmt.CannotEmulate, match="/nonexistent/qemu-aarch64-static, which does not exist"):
        binfmt.probe(ARCHITECTURES["arm64"], fake(tmp_path, handler=handler))


def test_unknown_architecture(tmp_path: Path) -> None:
    with pytest.raises(binfmt.CannotEmulate, match="does not know the qemu-user name"):
        binfmt.probe(ARCHITECTURES["alpha"], fake(tmp_path))


@pytest.mark.parametrize(("arch", "handler"), [("armhf", "qemu-arm"), ("armel", "qemu-arm"),
                                                ("ppc64el", "qemu-ppc64le"), ("riscv64", "qemu-riscv64")])
def test_handler_names(tmp_path: Path, arch: str, handler: str) -> None:
    with pytest.raises(binfmt.CannotEmulate, match=f"no binfmt handler {handler} "):
        binfmt.probe(ARCHITECTURES[arch], fake(tmp_path, handler=None))
