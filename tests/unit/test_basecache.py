"""The base cache: a cold build copies its bootstrapped tree there, a build with another
package list copies it back instead of bootstrapping, a second build waits for the
first one's base, and a copy that fails costs the cache, not the build."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
from pathlib import Path

import pytest

from vmdebootstrap import basecache, cachestore, stagecache
from vmdebootstrap.cachestore import Entry
from vmdebootstrap.run import Result

from .conftest import MakeSettings
from .fakes import FakeRunner
from .test_recipe import Responder
from .test_stagecache import build as stagecache_build


@pytest.fixture(autouse=True)
def no_device_nodes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)  # no device nodes in the fake /dev


def build(make_settings: MakeSettings, tmp_path: Path, *argv: str, responder: Responder | None = None) -> FakeRunner:
    return stagecache_build(make_settings, tmp_path, "--no-sbom", *argv, responder=responder)


def entries(directory: Path) -> list[Path]:
    return [p for p in directory.iterdir() if not p.name.startswith(".")] if directory.is_dir() else []


def test_another_package_list_copies_the_base_instead_of_bootstrapping(make_settings: MakeSettings,
                                                                      tmp_path: Path, out: Path) -> None:
    cold = build(make_settings, tmp_path, "--package", "less")
    assert cold.commands("debootstrap")
    [base] = entries(tmp_path / "cache/bases")
    assert (base / "root/boot/vmlinuz-6.1.0-1-amd64").read_text() == "kernel"
    inputs = json.loads((base / "info.json").read_text())["inputs"]
    assert "packages" not in inputs and inputs["suite"] == "bookworm"
    [saved] = [c for c in cold.calls if c[0] == "cp"]
    assert saved[:3] == ["cp", "-a", "--reflink=auto"] and saved[3].endswith("/root/.")
    assert saved[4].startswith(f"{tmp_path}/cache/bases/.new-")
    (out / "root.tar").unlink()

    other = build(make_settings, tmp_path, "--package", "vim")  # another stage, the same base
    assert not other.commands("debootstrap")
    [restore] = [c for c in other.calls if c[0] == "cp"]
    assert restore[3] == f"{base}/root/." and restore[4].endswith("/root/")
    assert other.calls.index(restore) < other.calls.index(next(c for c in other.calls if "install" in c))
    assert len(entries(tmp_path / "cache/stages")) == 2 and entries(tmp_path / "cache/bases") == [base]


def test_the_second_build_waits_for_the_first_ones_base(make_settings: MakeSettings, tmp_path: Path,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    directory = tmp_path / "cache/stages/k"
    directory.mkdir(parents=True)
    inputs = stagecache.inputs(make_settings("--distribution", "trixie"), ["a"], "mmdebstrap", "0" * 64)
    base = basecache.entry_for(Entry("k", directory, inputs))
    assert base.inputs == inputs.base() and base.key == cachestore.key_of(inputs.base()) != cachestore.key_of(inputs)
    first = os.open(base.directory.parent / f".making-{base.key}", os.O_RDWR | os.O_CREAT)
    fcntl.flock(first, fcntl.LOCK_EX)  # the first build is bootstrapping
    found: list[bool] = []

    def second() -> None:
        with basecache.claimed(base, "trixie arm64") as there:
            found.append(there)

    with caplog.at_level(logging.INFO, logger="vmdebootstrap"):
        waiter = threading.Thread(target=second)
        waiter.start()
        waiter.join(0.5)
        assert waiter.is_alive() and found == []  # it waits
        (base.root).mkdir(parents=True)
        (base.directory / cachestore.LOCK).touch()
        (base.directory / cachestore.INFO).write_text("{}")
        os.close(first)  # the first build saved its base and let go
        waiter.join(10)
    assert found == [True]
    assert "waiting for another build that is bootstrapping the same base (trixie arm64)" in caplog.text


def test_a_failed_copy_into_the_cache_leaves_no_entry_and_the_build_goes_on(make_settings: MakeSettings,
                                                                             tmp_path: Path, out: Path) -> None:
    def responder(argv: list[str]) -> Result | None:
        if argv[0] == "cp":
            return Result(1, "cp: error writing: No space left on device\n")
        return Responder()(argv)

    build(make_settings, tmp_path, responder=responder)
    assert (out / "root.tar").exists()
    assert [name for name in os.listdir(tmp_path / "cache/bases") if not name.startswith(".making-")] == []


def test_a_32_bit_foreign_root_is_a_tmpfs_its_base_cached_and_its_stage_not(
        make_settings: MakeSettings, tmp_path: Path, out: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """armhf under qemu-user: ext4's 64-bit directory offsets break its readdir (EOVERFLOW), so
    its root is a tmpfs; the base cache (a copy) still serves the next build, a stage on disk
    would not."""
    from vmdebootstrap import binfmt
    monkeypatch.setattr(binfmt, "probe", lambda arch: binfmt.Emulation("qemu-arm", "/usr/bin/qemu-arm",
                                                                       fix_binary=True))
    runner = build(make_settings, tmp_path, "--arch", "armhf")
    [tmpfs] = [c for c in runner.calls if c[:3] == ["mount", "-t", "tmpfs"] and c[-2] == "vmdebootstrap-root"]
    assert tmpfs[-1].endswith("/root") and tmpfs[3:5] == ["-o", "mode=0755"]
    assert runner.calls.index(tmpfs) < runner.calls.index(runner.commands("debootstrap")[0])
    assert len(entries(tmp_path / "cache/bases")) == 1 and entries(tmp_path / "cache/stages") == []
    assert not [c for c in runner.calls if c[:3] == ["mount", "-t", "overlay"]]
    assert not make_settings("--arch", "i386").root_in_memory  # compat syscalls: ext4 gives 32-bit offsets
    assert not make_settings("--arch", "arm64").root_in_memory


def test_a_build_with_other_components_shares_the_base_and_gets_its_own_source(
        make_settings: MakeSettings, tmp_path: Path, out: Path) -> None:
    """A Raspberry Pi build (main non-free-firmware) after a plain one: the same base, copied,
    its build source given the Pi's components before the packages step's apt-get update."""
    cold = build(make_settings, tmp_path, "--package", "less")
    [base] = entries(tmp_path / "cache/bases")
    (base / "root/etc/apt").mkdir(parents=True, exist_ok=True)
    (base / "root/etc/apt/sources.list").write_text("deb http://deb.debian.org/debian/ bookworm main\n")
    (out / "root.tar").unlink()
    seen: list[str] = []

    def responder(argv: list[str]) -> Result | None:
        if argv[0] == "chroot" and "update" in argv:
            sources = Path(argv[1]) / "etc/apt/sources.list"
            if sources.is_file():
                seen.append(sources.read_text())
        return Responder()(argv)
    other = build(make_settings, tmp_path, "--package", "less", "--components", "main",
                  "--components", "non-free-firmware", responder=responder)
    assert cold.commands("debootstrap") and not other.commands("debootstrap")
    assert entries(tmp_path / "cache/bases") == [base] and len(entries(tmp_path / "cache/stages")) == 2
    assert seen and seen[0] == "deb http://deb.debian.org/debian/ bookworm main non-free-firmware\n"


def test_with_components_keeps_the_options_uri_and_suite() -> None:
    assert basecache.with_components("deb [signed-by=/k.gpg] http://m/debian trixie main\n# x\n",
                                     ["main", "contrib"]) == \
        "deb [signed-by=/k.gpg] http://m/debian trixie main contrib\n# x\n"
    assert basecache.with_components("deb [ arch=arm64 trusted=yes ] http://m/ sid main\n", ["main", "x"]) == \
        "deb [ arch=arm64 trusted=yes ] http://m/ sid main x\n"
