"""A fake QEMU for the boot test's unit tests: firmware files in a temporary directory and
tests/unit/data/consoles/fake_qemu.py, which plays a recorded console and answers like a guest."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path

import pytest

from vmdebootstrap import architectures
from vmdebootstrap.architectures import Architecture
from vmdebootstrap.boot import console as boot_console
from vmdebootstrap.boot.qemu import BootTarget

DATA = Path(__file__).parent / "data" / "consoles"
FAKE_QEMU = DATA / "fake_qemu.py"
FIRMWARE_FILES = ("bios-256k.bin", "OVMF_CODE_4M.fd", "OVMF_VARS_4M.fd", "AAVMF_CODE.fd", "AAVMF_VARS.fd",
                  "OVMF_CODE_4M.secboot.fd", "OVMF_VARS_4M.ms.fd", "AAVMF_CODE.ms.fd", "AAVMF_VARS.ms.fd")


def install_firmware(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """Firmware files in tmp_path instead of /usr/share and /usr/lib (the unit tier has no QEMU
    packages), by their name (OVMF_CODE_4M.fd) or, where names repeat, with their directory's
    (qemu_arm64/u-boot.bin)."""
    files: dict[str, Path] = {}

    def moved(path: Path | None) -> Path | None:
        if path is None:
            return None
        key = path.name if path.name in FIRMWARE_FILES else f"{path.parent.name}/{path.name}"
        files[key] = tmp_path / "firmware" / key.replace("/", "-")
        files[key].parent.mkdir(exist_ok=True)
        files[key].write_bytes(key.encode())
        return files[key]

    known = dict(architectures.ARCHITECTURES)
    for name, record in known.items():
        emulator = record.emulator
        if emulator is None:
            continue
        firmwares = tuple(dataclasses.replace(f, code=moved(f.code), variables=moved(f.variables),
                                              payload=moved(f.payload)) for f in emulator.firmwares)
        known[name] = dataclasses.replace(record, emulator=dataclasses.replace(emulator, firmwares=firmwares))
    monkeypatch.setattr(architectures, "ARCHITECTURES", known)
    return files


def arch(name: str) -> Architecture:
    """The record of ``name`` as the boot test sees it now (a bare one for unknown names)."""
    return architectures.ARCHITECTURES.get(name) or Architecture(name, name)


def target(image: Path, kind: str, arch_name: str, firmware: str, display: bool = False) -> BootTarget:
    return BootTarget(image, kind, arch(arch_name), firmware, display)  # type: ignore[arg-type]


def option_values(argv: list[str], option: str) -> list[str]:
    return [argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == option]


def make_image(path: Path, qcow2: bool = False) -> Path:
    path.write_bytes((b"QFI\xfb" if qcow2 else b"\0" * 4) + b"\0" * 508)
    return path


class Fake:
    """Scenario files for fake_qemu.py, and what it saw."""

    def __init__(self, tmp_path: Path) -> None:
        self.dir = tmp_path
        self.work = tmp_path / "work"
        self.record = tmp_path / "typed"
        self.pidfile = tmp_path / "qemu.pid"
        self.qemu = tmp_path / "qemu-system-fake"
        # A wrapper so the fake runs with this interpreter whatever the scripts' permissions.
        self.qemu.write_text(f'#!/bin/sh\nexec {sys.executable} {FAKE_QEMU} "$@"\n')
        self.qemu.chmod(0o755)

    def run(self, timeout: int = 30, grub_entry_keys: str = "", firmware: str = "bios",
            sudo: bool | None = None, display: bool = False, **scenario: object) -> boot_console.BootResult:
        scenario.setdefault("boot", str(DATA / "running.txt"))
        image = self.dir / "scenario.json"
        image.write_text(json.dumps({"record": str(self.record), "pidfile": str(self.pidfile), **scenario}))
        return boot_console.boot_test(target(image, "iso", "amd64", firmware, display), "user", "live", self.work,
                                  timeout=timeout, grub_entry_keys=grub_entry_keys, kvm=False, qemu=str(self.qemu),
                                  sudo=sudo)

    @property
    def typed(self) -> str:
        return self.record.read_bytes().decode() if self.record.exists() else ""  # keeps the \r

    def assert_gone(self) -> None:
        pid = int(self.pidfile.read_text())
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # not even a zombie: boot_test reaped it
        assert not Path(f"/proc/{pid}").exists()
