"""The bootstrapper: mmdebstrap's command line, and when auto falls back to debootstrap."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from vmdebootstrap.steps import bootstrap

from .conftest import MakeSettings


def test_mmdebstrap_argv_keeps_the_cache_and_leaves_no_build_settings(make_settings: MakeSettings,
                                                                     tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bootstrap, "MERGED_USR_HOOK", tmp_path)
    settings = make_settings("--variant", "minbase", "--mirror", "http://m.example/debian")
    argv = bootstrap.mmdebstrap_argv(settings, Path("/w/root"), Path("/cache/debs"))
    assert argv[0] == "mmdebstrap" and argv[-3:] == ["bookworm", "/w/root", "http://m.example/debian"]
    assert "--variant=minbase" in argv and "--mode=root" in argv
    assert "--skip=essential/unlink" in argv  # the .debs survive until they are linked out
    setup = next(a for a in argv if a.startswith("--setup-hook="))
    assert "cp -l" in setup and "/cache/debs" in setup and "flock /cache/lock" in setup
    hooks = [a for a in argv if a.startswith("--customize-hook=")]
    assert any("ln " in h and "/cache/debs" in h for h in hooks)
    # force-unsafe-io is for the build only: its dpkg.cfg.d file is removed again
    assert "--dpkgopt=force-unsafe-io" in argv
    # merged /usr as debootstrap makes it (usr-is-merged), not through usrmerge and perl
    assert f"--hook-dir={bootstrap.MERGED_USR_HOOK}" in argv
    assert any("99mmdebstrap" in h for h in hooks)


def test_mmdebstrap_default_variant_is_debootstraps() -> None:
    assert bootstrap.MMDEBSTRAP_VARIANTS[""] == "debootstrap"


def test_keyring_is_the_only_trusted_one(make_settings: MakeSettings, tmp_path: Path) -> None:
    argv = bootstrap.mmdebstrap_argv(make_settings(), Path("/w/root"), None, tmp_path / "keyring")
    assert f"--keyring={tmp_path / 'keyring'}" in argv
    assert f'--aptopt=Dir::Etc::Trusted "{tmp_path}/keyring/none.gpg"' in argv
    assert "--skip=check/signed-by" in argv  # no signed-by with a keyring mmdebstrap guessed


@pytest.mark.parametrize(("argv", "expected"), [
    ([], "mmdebstrap"),
    (["--bootstrapper", "debootstrap"], "debootstrap"),
    (["--debootstrapopts", "variant=buildd"], "debootstrap"),
    (["--distribution", "jessie"], "debootstrap"),
    (["--distribution", "bullseye"], "debootstrap"),
])
def test_auto_choice(make_settings: MakeSettings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                     argv: list[str], expected: str) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(bootstrap, "MERGED_USR_HOOK", tmp_path)
    assert bootstrap.choose(make_settings("--cache-dir", "", *argv), tmp_path)[0] == expected


def test_auto_takes_debootstrap_without_mmdebstrap(make_settings: MakeSettings, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert bootstrap.choose(make_settings("--cache-dir", ""), tmp_path) == ("debootstrap",
                                                                            "mmdebstrap is not installed")


def test_merged_usr_hook_only_where_usr_is_merged_exists(make_settings: MakeSettings, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bootstrap, "MERGED_USR_HOOK", tmp_path)
    bullseye = bootstrap.mmdebstrap_argv(make_settings("--distribution", "bullseye"), Path("/w/root"), None)
    assert not [a for a in bullseye if a.startswith("--hook-dir=")]  # --bootstrapper mmdebstrap by hand
    bookworm = bootstrap.mmdebstrap_argv(make_settings("--distribution", "bookworm"), Path("/w/root"), None)
    assert f"--hook-dir={tmp_path}" in bookworm
    # From trixie on base-files ships the merged-/usr symlinks: no hook, no usr-is-merged.
    trixie = bootstrap.mmdebstrap_argv(make_settings("--distribution", "trixie"), Path("/w/root"), None)
    assert not [a for a in trixie if a.startswith("--hook-dir=")]


def test_interpreter_copied_in_is_noted_for_removal(make_context, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Also what a stage-cache hit of a foreign build calls: the cached tree holds the cold
    build's copy, and only a noted copy is removed from the image at the end."""
    qemu = tmp_path / "qemu-aarch64-static"
    qemu.write_bytes(b"\x7fELF")
    monkeypatch.setattr(bootstrap.binfmt, "probe",
                        lambda arch: bootstrap.binfmt.Emulation("qemu-aarch64", str(qemu), fix_binary=False))
    ctx, _ = make_context()
    bootstrap.provide_interpreter(ctx)
    assert ctx.interpreter_copy == ctx.root / str(qemu).lstrip("/")
    assert ctx.interpreter_copy.read_bytes() == b"\x7fELF"
