"""boot.check: the firmwares of one image booted one after the other, or side by side where the
machine has the cores, with the fake QEMU of tests/unit/qemu.py."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from vmdebootstrap.boot import check as boot_check
from vmdebootstrap.boot import console as boot_console

from .conftest import MakeSettings
from .qemu import DATA, Fake


def test_two_cores_per_guest_or_one_after_the_other() -> None:
    assert not boot_check.parallel_boots(2, cores=2)  # measured: 116 s side by side, 124 s in turn
    assert not boot_check.parallel_boots(2, cores=3)
    assert boot_check.parallel_boots(2, cores=4)
    assert not boot_check.parallel_boots(1, cores=64)


@pytest.mark.parametrize("parallel", [True, False])
def test_every_firmware_is_booted_and_reported(fake: Fake, make_settings: MakeSettings, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch, parallel: bool) -> None:
    scenario = tmp_path / "live.iso"  # the fake reads its -cdrom as the scenario
    scenario.write_text(json.dumps({"record": str(fake.record), "pidfile": str(fake.pidfile),
                                    "boot": str(DATA / "running.txt")}))
    settings = make_settings("--iso", str(tmp_path / "out.iso"), "--boot-test", "--user", "user/live",
                             "--boot-firmware", "bios", "--boot-firmware", "uefi")
    together = threading.Barrier(2, timeout=60)  # both boots must be under way at once
    real = boot_console.boot_test

    def boot(*args: object, **kwargs: object) -> boot_console.BootResult:
        if parallel:
            together.wait()
        return real(*args, kvm=False, qemu=str(fake.qemu), **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(boot_console, "boot_test", boot)
    monkeypatch.setattr(boot_check, "parallel_boots", lambda count, cores=None: parallel)
    results: list[boot_console.BootResult] = []
    assert boot_check.run(settings, scenario, tmp_path / "boot", "iso", results)
    assert [r.firmware for r in results] == ["bios", "uefi"]  # reported in the order asked for
    assert all(r.passed for r in results)
    # The transcripts and the UEFI variables are as private as the build log (issue 22).
    made = [tmp_path / "boot", *(tmp_path / "boot").rglob("*")]
    assert {p.name for p in made} >= {"console-amd64-bios.log", "console-amd64-uefi.log", "efivars-amd64.fd"}
    assert {oct(p.stat().st_mode & 0o777) for p in made if p.is_file()} == {"0o600"}
    assert {oct(p.stat().st_mode & 0o777) for p in made if p.is_dir()} == {"0o700"}
