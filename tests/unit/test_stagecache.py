"""The stage cache: its key, a cold build saving its stage and a warm one mounting it,
eviction and the removal of killed builds' partial entries."""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from vmdebootstrap import archive, cachestore, recipe, stagecache, ui
from vmdebootstrap.cachestore import Entry
from vmdebootstrap.context import Origin
from vmdebootstrap.run import Result
from vmdebootstrap.steps import bootstrap, packages
from vmdebootstrap.values import Bootstrapper

from .conftest import MakeContext, MakeSettings
from .fakes import FakeRunner
from .test_recipe import RELEASE, Responder


@pytest.fixture(autouse=True)
def no_device_nodes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)  # no device nodes in the fake /dev


def key_for(make_settings: MakeSettings, *argv: str, release: str = "r1") -> str:
    settings = make_settings(*argv)
    return cachestore.key_of(stagecache.inputs(settings, packages.selected(settings), "mmdebstrap", release))


def test_key_changes_with_every_input_that_shapes_the_stage(make_settings: MakeSettings, tmp_path: Path) -> None:
    base = key_for(make_settings)
    assert key_for(make_settings) == base
    assert key_for(make_settings, "--hostname", "other") == base  # the system step is not cached
    assert key_for(make_settings, "--package", "less") != base
    assert key_for(make_settings, "--distribution", "trixie") != base
    assert key_for(make_settings, "--mirror", "http://other.example/debian") != base
    assert key_for(make_settings, "--variant", "minbase") != base
    assert key_for(make_settings, "--no-recommends") != key_for(make_settings, "--recommends")
    assert key_for(make_settings, release="r2") != base  # the mirror changed
    keyring = tmp_path / "k.gpg"
    keyring.write_bytes(b"one")
    first = key_for(make_settings, "--keyring", str(keyring))
    keyring.write_bytes(b"two")
    assert key_for(make_settings, "--keyring", str(keyring)) != first


def build(make_settings: MakeSettings, tmp_path: Path, *argv: str,
          responder: Callable[[list[str]], Result | None] | None = None) -> FakeRunner:
    """One build through the recipe with the fake runner, its caches in tmp_path/cache."""
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    settings = make_settings("--workdir", str(work), "--cache-dir", str(tmp_path / "cache"),
                             "--bootstrapper", "debootstrap", "--lock-root-password", *argv)
    runner = FakeRunner(responder or Responder())
    display = ui.Display(io.StringIO(), len(recipe.plan(settings)), live=False)
    try:
        recipe.build(settings, runner, display)
    finally:
        display.close()
    assert os.listdir(work) == []
    return runner


def programs(runner: FakeRunner) -> list[str]:
    return [c[2] if c[0] == "chroot" else c[0] for c in runner.calls]


def overlay_mounts(runner: FakeRunner) -> list[list[str]]:
    return [c for c in runner.calls if c[:3] == ["mount", "-t", "overlay"]]


def test_cold_build_saves_the_stage_and_warm_build_mounts_it(make_settings: MakeSettings, tmp_path: Path,
                                                             out: Path) -> None:
    # --no-sbom: the fake overlay shows no tree to make an SBOM of
    cold = build(make_settings, tmp_path, "--hostname", "one", "--no-sbom")
    assert "debootstrap" in programs(cold)
    entries = [p for p in (tmp_path / "cache/stages").iterdir() if not p.name.startswith(".")]
    assert len(entries) == 1
    stage = entries[0]
    assert (stage / "root/boot/vmlinuz-6.1.0-1-amd64").read_text() == "kernel"
    info = json.loads((stage / "info.json").read_text())
    assert info["inputs"]["suite"] == "bookworm"
    assert info["inputs"]["release"] == hashlib.sha256(RELEASE.encode()).hexdigest()
    # the rest of the cold build ran on an overlay above the saved tree
    [mount] = overlay_mounts(cold)
    assert f"lowerdir={stage}/root," in mount[mount.index("-o") + 1]
    assert programs(cold).index("debootstrap") < programs(cold).index("mount")
    (out / "root.tar").unlink()

    warm = build(make_settings, tmp_path, "--hostname", "two", "--no-sbom")  # differs only after the stage
    assert "debootstrap" not in programs(warm)
    assert not any(c[:2] == ["apt-get", "--yes"] and "install" in c for c in warm.calls)
    [mount] = overlay_mounts(warm)
    assert f"lowerdir={stage}/root," in mount[mount.index("-o") + 1]
    assert programs(warm)[-2:] == ["tar", "umount"]  # the overlay goes last
    assert (stage / "root/boot/vmlinuz-6.1.0-1-amd64").exists()  # the entry is untouched


def test_no_stage_cache_builds_afresh_and_saves_nothing(make_settings: MakeSettings, tmp_path: Path) -> None:
    runner = build(make_settings, tmp_path, "--no-stage-cache")
    assert "debootstrap" in programs(runner)
    assert overlay_mounts(runner) == []
    assert not (tmp_path / "cache/stages").exists()


def test_unreadable_mirror_release_disables_the_cache(make_settings: MakeSettings, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(archive, "release_file", lambda runner, mirror, suite, directory: None)
    runner = build(make_settings, tmp_path)
    assert overlay_mounts(runner) == []
    assert list((tmp_path / "cache/stages").iterdir()) == []


def make_entry(directory: Path, name: str, age: int) -> Path:
    entry = directory / name
    (entry / "root/etc").mkdir(parents=True)
    (entry / "lock").write_text("")
    (entry / "info.json").write_text("{}")
    os.utime(entry / "info.json", (1_000_000 - age, 1_000_000 - age))
    return entry


def test_evict_keeps_the_newest_and_those_in_use(tmp_path: Path) -> None:
    entries = [make_entry(tmp_path, f"k{age}", age) for age in range(7)]
    fd = os.open(entries[6] / "lock", os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_SH)  # a build is using the oldest
    try:
        removed = cachestore.evict(tmp_path, keep="k5", limit=3)
    finally:
        os.close(fd)
    assert sorted(p.name for p in removed) == ["k3", "k4"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k0", "k1", "k2", "k5", "k6"]


def test_partial_entries_of_killed_builds_are_removed(tmp_path: Path) -> None:
    dead = make_entry(tmp_path, ".new-dead", 0)
    alive = make_entry(tmp_path, ".new-alive", 0)
    just_made = tmp_path / ".new-just-made"  # a save between mkdtemp and its lock file
    just_made.mkdir()
    killed_early = tmp_path / ".new-killed-early"  # the same, its build killed in that instant
    killed_early.mkdir()
    os.utime(killed_early, (0, time.time() - 2 * cachestore.LOCKLESS_GRACE))
    fd = os.open(alive / "lock", os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        cachestore.remove_partial(tmp_path)
    finally:
        os.close(fd)
    assert not dead.exists() and alive.exists()
    assert just_made.exists() and not killed_early.exists()


def test_an_entry_being_deleted_keeps_its_lock_file_locked_until_its_tree_is_gone(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """CI, 2026-12: an evicted entry's lock file went first, the other builds took the entry
    for a killed build's, deleted it too and failed on the files already gone."""
    entries = [make_entry(tmp_path, f"k{age}", age) for age in range(2)]
    seen = []
    real_rmtree = cachestore.mounts.safe_rmtree

    def rmtree_while_another_build_looks(path: str | Path) -> None:
        trash = Path(path).parent
        seen.append((Path(path).name, cachestore.lock(trash / "lock", fcntl.LOCK_EX)))
        cachestore.remove_partial(tmp_path)  # another build starting meanwhile
        real_rmtree(path)

    monkeypatch.setattr(cachestore.mounts, "safe_rmtree", rmtree_while_another_build_looks)
    removed = cachestore.evict(tmp_path, keep="k0", limit=1)
    assert removed == [entries[1]]
    assert sorted(name for name, _ in seen) == ["info.json", "root"]
    assert all(fd is None for _, fd in seen)  # locked all along, so the other build kept off
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k0"]


def test_a_leftover_that_cannot_be_removed_is_logged_and_the_build_goes_on(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    make_entry(tmp_path, ".old-k1", 0)

    def vanished(path: str | Path) -> None:
        raise FileNotFoundError(2, "No such file or directory", "timB10-ISO8859-1.pcf.gz")

    monkeypatch.setattr(cachestore.mounts, "safe_rmtree", vanished)
    cachestore.remove_partial(tmp_path)
    assert "could not remove" in caplog.text and "timB10" in caplog.text
    fd = cachestore.lock(tmp_path / ".old-k1/lock", fcntl.LOCK_EX)
    assert fd is not None  # its lock let go
    os.close(fd)


def test_the_stage_save_leaves_the_package_cache_s_files_alone(make_context: MakeContext, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The tree's apt archive holds hard links to the shared package cache's .debs: clamping the
    tree's times before they are cleaned away changed the cache's files (the fault campaign:
    "cache file less_668-1_amd64.deb changed", its mtime set to the build's epoch)."""
    shared = tmp_path / "shared/less_668-1_amd64.deb"
    shared.parent.mkdir()
    shared.write_text("deb")
    downloaded = time.time()
    os.utime(shared, (downloaded, downloaded))

    def respond(argv: list[str]) -> Result | None:
        if argv[2:] == ["apt-get", "clean"]:
            for deb in (ctx.root / "var/cache/apt/archives").glob("*.deb"):
                deb.unlink()
        return None

    ctx, runner = make_context(runner=FakeRunner(respond))
    archives = ctx.root / "var/cache/apt/archives"
    archives.mkdir(parents=True)
    os.link(shared, archives / shared.name)  # as cache.link_into and mmdebstrap's hook leave it
    ctx.epoch = int(downloaded) - 86400
    ctx.origin = Origin(Bootstrapper.MMDEBSTRAP, "", Entry("k", tmp_path / "stages/k", stagecache.inputs(
        ctx.settings, [], "mmdebstrap", "0" * 64)), cached=False)
    saved: list[Path] = []
    monkeypatch.setattr(stagecache, "save", lambda runner, stack, workdir, root, entry, **_: saved.append(root))
    bootstrap.save_stage(ctx)
    assert saved == [ctx.root]
    assert shared.stat().st_mtime == downloaded  # not the epoch
    assert runner.calls.index(["chroot", str(ctx.root), "apt-get", "clean"]) == 0


def test_cache_entries_is_how_many_stages_a_build_leaves(make_settings: MakeSettings, tmp_path: Path,
                                                         out: Path) -> None:
    """Three builds of different packages with --cache-entries 2: the cache keeps the two newest."""
    for name in ("one", "two", "three"):
        build(make_settings, tmp_path, "--package", f"pkg-{name}", "--no-sbom", "--cache-entries", "2")
        (out / "root.tar").unlink()
    entries = [p for p in (tmp_path / "cache/stages").iterdir() if not p.name.startswith(".")]
    assert len(entries) == 2
    kept = [json.loads((p / "info.json").read_text())["inputs"]["packages"] for p in entries]
    assert sorted(name for packages in kept for name in packages if name.startswith("pkg-")) == \
        ["pkg-three", "pkg-two"], kept
