"""--cache-keys: the keys printed are those the build looks up (one code path: bootstrap.source),
and printing them makes nothing.

The builds are test_stagecache.py's: the real recipe against a FakeRunner whose apt-helper
serves test_recipe.py's InRelease.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from vmdebootstrap import basecache, cachekeys, disk, stagecache
from vmdebootstrap.outputs import image
from vmdebootstrap.run import Result
from vmdebootstrap.steps import bootstrap

from .conftest import MakeContext, MakeSettings, Vmd
from .fakes import FakeRunner
from .test_recipe import Responder
from .test_stagecache import build


def entries(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if not p.name.startswith("."))


def print_keys(vmd: Vmd, tmp_path: Path, out: Path, *argv: str) -> tuple[int, str, str]:
    """vmdebootstrap --cache-keys with the settings test_stagecache.build builds with."""
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    return vmd("--cache-keys", "--distribution", "bookworm", "--tarball", str(out / "root.tar"), "--workdir",
               str(work), "--cache-dir", str(tmp_path / "cache"), "--bootstrapper", "debootstrap",
               "--lock-root-password", *argv)


@pytest.fixture
def mirror(monkeypatch: pytest.MonkeyPatch) -> list[FakeRunner]:
    """The runners cachekeys.keys makes: fake ones, whose apt-helper serves the InRelease."""
    made: list[FakeRunner] = []

    def runner() -> FakeRunner:
        made.append(FakeRunner(Responder()))
        return made[-1]

    monkeypatch.setattr(cachekeys, "Runner", runner)
    monkeypatch.setattr(os, "geteuid", lambda: 1000)  # no root needed; and no device nodes in the fake /dev
    return made


def test_the_printed_keys_are_those_the_build_looks_up(vmd: Vmd, make_settings: MakeSettings, tmp_path: Path,
                                                       out: Path, mirror: list[FakeRunner]) -> None:
    status, stdout, stderr = print_keys(vmd, tmp_path, out, "--no-sbom", "--package", "less")
    assert (status, stderr) == (0, "")
    printed = json.loads(stdout)
    assert list(printed) == ["tool", "base", "stage"] and stdout.count("\n") == 1
    assert printed["tool"] == stagecache.tool_version()
    # Nothing was made: no cache, no work directory; the InRelease went into a directory now gone.
    assert not (tmp_path / "cache").exists() and os.listdir(tmp_path / "work") == []
    [fetch] = mirror[0].calls
    assert fetch[-2] == "http://deb.debian.org/debian/dists/bookworm/InRelease"
    assert not Path(fetch[-1]).parent.exists()

    build(make_settings, tmp_path, "--no-sbom", "--package", "less")  # cold: it saves its base and its stage
    assert entries(tmp_path / "cache/stages") == [printed["stage"]]
    assert entries(tmp_path / "cache/bases") == [printed["base"]]
    info = json.loads((tmp_path / f"cache/stages/{printed['stage']}/info.json").read_text())
    assert info["inputs"]["tool"] == printed["tool"]

    # Another package list: another stage on the same base.
    _, other, _ = print_keys(vmd, tmp_path, out, "--no-sbom", "--package", "vim")
    assert json.loads(other)["base"] == printed["base"] and json.loads(other)["stage"] != printed["stage"]


def test_a_disk_image_s_key_holds_the_fstab_its_partition_step_makes(make_context: MakeContext, tmp_path: Path,
                                                                    out: Path) -> None:
    """The identifiers come from the seed: known before the partition step makes the disk."""
    ctx, _ = make_context("--image", str(out / "x.img"), "--cache-dir", str(tmp_path / "cache"), "--bootstrapper",
                          "debootstrap", "--lock-root-password", "--bootsize", "256M", "--swap", "128M",
                          runner=FakeRunner(Responder()))
    (tmp_path / "keys").mkdir()
    printed = cachekeys.keys_for(ctx.settings, FakeRunner(Responder()), tmp_path / "keys")
    image.partition(ctx)
    bootstrap.decide(ctx)
    assert ctx.image is not None and ctx.origin is not None and ctx.origin.stage is not None
    assert ctx.origin.stage.key == printed["stage"]
    assert basecache.entry_for(ctx.origin.stage).key == printed["base"]
    made_of = ctx.origin.stage.inputs
    assert isinstance(made_of, stagecache.StageInputs)
    written = disk.fstab(ctx.image.layout, ctx.image.uuids, dict(ctx.image.request.labels))  # what write_fstab writes
    assert made_of.image.startswith(written) and "swap" in written


def test_kernel_parameters_key_the_stage_where_they_are_written_before_the_kernel(
        make_settings: MakeSettings, out: Path) -> None:
    """u-boot-menu's and raspi-firmware's defaults hold --kernel-append and are in the stage;
    GRUB's are written after it, so its images share the stage whatever the parameters."""
    def words(*argv: str) -> str:
        return image.before_the_kernel(make_settings("--image", str(out / "x.img"), "--distribution", "trixie",
                                                     *argv))
    u_boot = ("--arch", "arm64", "--bootloader", "u-boot")
    assert words(*u_boot) != words(*u_boot, "--kernel-append", "quiet")
    assert "kernel parameters quiet" in words(*u_boot, "--kernel-append", "quiet")
    assert words("--grub") == words("--grub", "--kernel-append", "quiet")


def test_without_the_stage_cache_there_are_no_keys(vmd: Vmd, tmp_path: Path, out: Path,
                                                   mirror: list[FakeRunner]) -> None:
    status, stdout, _ = print_keys(vmd, tmp_path, out, "--no-stage-cache")
    assert status == 0
    assert json.loads(stdout) == {"tool": stagecache.tool_version(), "base": None, "stage": None}
    assert [runner.calls for runner in mirror] in ([], [[]])  # nothing fetched


def test_a_mirror_without_a_release_file_gives_no_keys(vmd: Vmd, tmp_path: Path, out: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cachekeys, "Runner", lambda: FakeRunner(lambda argv: Result(100, "E: not found\n")))
    status, stdout, stderr = print_keys(vmd, tmp_path, out)
    assert (status, stdout) == (1, "")
    assert stderr == ("vmdebootstrap: error: no cache keys: the mirror http://deb.debian.org/debian/ sent no "
                      "Release file for bookworm\n")


def test_boot_test_only_has_no_keys(vmd: Vmd, tmp_path: Path) -> None:
    (tmp_path / "x.img").write_bytes(b"")
    status, _, stderr = vmd("--cache-keys", "--boot-test-only", str(tmp_path / "x.img"), "--user", "u/pw")
    assert status == 2 and "--boot-test-only builds nothing" in stderr
