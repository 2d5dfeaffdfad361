"""Shared fixtures for the unit tier: no root, no network, no real builds, no mounts.

Every test is hermetic:
* the host architecture is pinned to amd64 (package lists depend on it);
* the default config files (/etc/vmdebootstrap.conf, ~/.vmdebootstrap.conf, ...) are
  never read unless a test installs its own list;
* starting a real build (the namespace sandbox or run_build) fails the test;
* the mirror is never asked which codename ``stable`` has (distro-info-data answers);
* VMDEBOOTSTRAP_FAULT is unset.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from vmdebootstrap import architectures, cli, sandbox, settings
from vmdebootstrap import main as main_module
from vmdebootstrap.boot import console as boot_console
from vmdebootstrap.context import Context
from vmdebootstrap.publish import Outputs

from . import qemu
from .fakes import FakeRunner

SUITES = ("stable", "oldstable", "testing", "unstable", "sid", "wheezy", "jessie", "stretch", "buster",
          "bullseye", "bookworm", "trixie")
OUTPUT_OPTIONS = ("--image", "--tarball", "--squash", "--iso")


def _forbidden(*_args: object, **_kwargs: object) -> int:
    raise AssertionError("a unit test tried to start a real build")


@pytest.fixture(autouse=True)
def hermetic(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(architectures, "host", lambda: architectures.ARCHITECTURES["amd64"])
    monkeypatch.setattr(cli, "default_config_files", lambda: [])
    monkeypatch.setattr(sandbox, "run_in_namespaces", _forbidden)
    monkeypatch.setattr(sandbox, "take_hostname", _forbidden)  # it would rename the host running the tests
    monkeypatch.setattr(sandbox, "root_is_a_mount_point", lambda: True)  # not so in some test chroots
    monkeypatch.setattr(main_module, "run_build", _forbidden)
    monkeypatch.setattr(main_module, "_mirror_codename", lambda _mirror: lambda _suite: None)  # no network
    monkeypatch.delenv("VMDEBOOTSTRAP_FAULT", raising=False)
    monkeypatch.delenv("VMDEBOOTSTRAP_FAULT_READY", raising=False)
    # dpkg-buildpackage exports the changelog's date: the tests set it where they mean it.
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)


@pytest.fixture
def scripts(tmp_path: Path) -> Path:
    """A stand-in for /usr/share/debootstrap/scripts holding the usual suite names."""
    directory = tmp_path / "debootstrap-scripts"
    directory.mkdir()
    for suite in SUITES:
        (directory / suite).write_text("# debootstrap suite script\n")
    return directory


@pytest.fixture
def out(tmp_path: Path) -> Path:
    """A directory for the build outputs named on the command line."""
    directory = tmp_path / "out"
    directory.mkdir()
    return directory


Vmd = Callable[..., tuple[int, str, str]]


@pytest.fixture
def vmd(scripts: Path, capsys: pytest.CaptureFixture[str]) -> Vmd:
    """Run main.main(argv) hermetically; returns (exit status, stdout, stderr)."""

    def run(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        status = main_module.main(["--no-default-configs", "--debootstrap-scripts", str(scripts), *argv])
        captured = capsys.readouterr()
        return status, captured.out, captured.err

    return run


def selected_packages(stdout: str) -> list[str]:
    """The package list from the dry-run line 'Selected packages: a, b, c'."""
    lines = [line for line in stdout.splitlines() if line.startswith("Selected packages: ")]
    assert len(lines) == 1, stdout
    return lines[0].removeprefix("Selected packages: ").split(", ")


MakeSettings = Callable[..., settings.Settings]


@pytest.fixture
def make_settings(scripts: Path, out: Path) -> MakeSettings:
    """Validated settings from command-line arguments (a tarball in ``out`` unless told otherwise)."""

    def make(*argv: str) -> settings.Settings:
        args = ["--no-default-configs", "--debootstrap-scripts", str(scripts), "--distribution", "bookworm"]
        if not any(arg.split("=")[0] in OUTPUT_OPTIONS for arg in argv):
            args += ["--tarball", str(out / "root.tar")]
        values = cli.load(args + list(argv)).values
        return settings.validate(values)

    return make


MakeContext = Callable[..., tuple[Context, FakeRunner]]


@pytest.fixture
def make_context(tmp_path: Path, make_settings: MakeSettings) -> Iterator[MakeContext]:
    """A Context on a temporary work directory (with root/ made) and a recording FakeRunner."""
    stack = contextlib.ExitStack()

    def make(*argv: str, runner: FakeRunner | None = None) -> tuple[Context, FakeRunner]:
        fake = runner or FakeRunner()
        workdir = tmp_path / "work"
        workdir.mkdir(exist_ok=True)
        ctx = Context(make_settings(*argv), fake, workdir, stack, Outputs(stack))
        ctx.root.mkdir(exist_ok=True)
        return ctx, fake

    yield make
    stack.close()


@pytest.fixture
def firmware(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """Firmware files in tmp_path instead of /usr/share (the unit tier has no QEMU packages)."""
    return qemu.install_firmware(tmp_path, monkeypatch)


@pytest.fixture
def fake(tmp_path: Path, firmware: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> qemu.Fake:
    """A fake QEMU (tests/unit/qemu.py) with short waits."""
    monkeypatch.setattr(boot_console, "STOP_GRACE", 1.0)
    monkeypatch.setattr(boot_console, "FIRMWARE_POLL", 0.1)
    return qemu.Fake(tmp_path)


@pytest.fixture
def process_state() -> Iterator[None]:
    """run_build changes the umask, the signal handlers and the logger; put them back."""
    umask = os.umask(0o022)
    os.umask(umask)
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    logger = logging.getLogger("vmdebootstrap")
    saved = (list(logger.handlers), logger.propagate, logger.level)
    yield
    os.umask(umask)
    for signum, handler in handlers.items():
        signal.signal(signum, handler)
    for handler in logger.handlers:
        if handler not in saved[0]:
            handler.close()
    logger.handlers[:] = saved[0]
    logger.propagate, logger.level = saved[1], saved[2]
