"""The cache entries packed for GitLab's caches and unpacked again (real GNU tar, no root)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vmdebootstrap.matrix import cachepack, processes
from vmdebootstrap.matrix.processes import Finished

from .matrixfiles import run


def entry(cache: Path, kind: str, key: str, complete: bool = True) -> Path:
    root = cache / kind / key / "root"
    (root / "usr/bin").mkdir(parents=True)
    (root / "usr/bin/tool").write_text("#!/bin/sh\n")
    os.chmod(root / "usr/bin/tool", 0o4755)
    (root / "etc").mkdir()
    os.symlink("../usr/bin/tool", root / "etc/link")
    if complete:
        (cache / kind / key / "info.json").write_text("{}\n")
    return root


def test_entries_are_packed_once_and_unpacked_where_they_are_missing(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    entry(cache, "bases", "b1")
    entry(cache, "stages", "s1")
    entry(cache, "stages", "half", complete=False)  # a build that did not finish it
    assert cachepack.save(cache) == ["base b1: saved", "stage s1: saved"]
    assert sorted(p.name for p in (cache / "packed").iterdir()) == ["base-b1.tar", "stage-s1.tar"]
    assert cachepack.save(cache) == []  # packed already
    moved = tmp_path / "elsewhere"
    (moved / "packed").mkdir(parents=True)
    for tar in (cache / "packed").iterdir():
        os.rename(tar, moved / "packed" / tar.name)
    assert cachepack.restore(moved) == ["base b1: restored", "stage s1: restored"]
    tool = moved / "bases/b1/root/usr/bin/tool"
    assert tool.read_text() == "#!/bin/sh\n" and tool.stat().st_mode & 0o7777 == 0o4755
    assert os.readlink(moved / "bases/b1/root/etc/link") == "../usr/bin/tool"
    assert (moved / "stages/s1/info.json").is_file()
    assert cachepack.restore(moved) == []  # there already


def test_only_the_named_entries_are_saved(tmp_path: Path) -> None:
    entry(tmp_path, "bases", "b1")
    entry(tmp_path, "bases", "b2")
    assert cachepack.save(tmp_path, {"base": ["b2"], "stage": ["gone"]}) == ["base b2: saved"]


def test_a_tar_that_fails_leaves_nothing_half_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    entry(tmp_path, "bases", "b1")

    def fail(argv: list[str], timeout: float = 600.0) -> Finished:
        Path(argv[argv.index("--file") + 1]).write_text("half")
        return Finished(2, "", "tar: root/x: Cannot open: Permission denied\n")

    monkeypatch.setattr(processes, "run", fail)
    assert cachepack.save(tmp_path) == ["base b1: not saved: tar: exit status 2: tar: root/x: Cannot open: "
                                        "Permission denied"]
    assert list((tmp_path / "packed").iterdir()) == []


def test_the_cache_command(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    entry(tmp_path, "bases", "b1")
    entry(tmp_path, "stages", "s1")
    assert run(capsys, "cache", "save", str(tmp_path), "--stage", "s1") == (0, "cache save: stage s1: saved\n", "")
    assert run(capsys, "cache", "restore", str(tmp_path)) == (0, "", "")
    assert cachepack.packed(".cache/vmdebootstrap", "stage", "s1") == ".cache/vmdebootstrap/packed/stage-s1.tar"
