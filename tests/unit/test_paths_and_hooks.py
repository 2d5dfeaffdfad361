"""Paths in config files mean what the config file says (relative to its directory), and a
hook that others could change is refused (issue 22)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vmdebootstrap import hooks, main

from .conftest import Vmd
from .test_validation import accepted, error

REPO = Path(__file__).resolve().parents[2]


def hook(path: Path, mode: int = 0o755) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(mode)
    return path


def config(path: Path, *lines: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("[config]\n" + "".join(line + "\n" for line in lines))
    return path


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A current directory that is not the config file's."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return cwd


def settings_of(monkeypatch: pytest.MonkeyPatch, vmd: Vmd, *argv: str) -> tuple[object, str]:
    seen: list[object] = []
    real = main.validate
    monkeypatch.setattr(main, "validate", lambda *a, **k: seen.append(real(*a, **k)) or seen[-1])
    status, _, err = vmd(*argv, "--dry-run")
    assert status == 0, err
    return seen[0], err


def test_a_hook_in_a_config_file_is_relative_to_the_config_file(
        vmd: Vmd, out: Path, tmp_path: Path, elsewhere: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ours = hook(tmp_path / "project/hooks/x.sh")
    hook(elsewhere / "hooks/x.sh")  # the current directory has one too: not this config's
    conf = config(tmp_path / "project/image.conf", "customize = hooks/x.sh", f"tarball = {out}/x.tar")
    settings, err = settings_of(monkeypatch, vmd, "--config", str(conf))
    assert settings.hook == ours and err == ""  # type: ignore[attr-defined]


def test_the_old_meaning_is_taken_with_a_note_naming_both_paths(
        vmd: Vmd, out: Path, tmp_path: Path, elsewhere: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    old = hook(elsewhere / "hooks/x.sh")
    conf = config(tmp_path / "project/image.conf", "customize = hooks/x.sh", f"tarball = {out}/x.tar")
    settings, err = settings_of(monkeypatch, vmd, "--config", str(conf))
    assert settings.hook == old  # type: ignore[attr-defined]
    assert err == (f"vmdebootstrap: warning: {conf}: customize = hooks/x.sh is read relative to the config file's "
                   f"directory ({tmp_path}/project/hooks/x.sh, which does not exist); {old}, relative to the current "
                   "directory as the old vmdebootstrap read it, is used: name it relative to the config file\n")


def test_a_missing_hook_names_the_path_tried(vmd: Vmd, out: Path, tmp_path: Path, elsewhere: Path) -> None:
    conf = config(tmp_path / "project/image.conf", "customize = hooks/x.sh", f"tarball = {out}/x.tar")
    assert error(vmd("--config", str(conf), "--dry-run")) == (
        f"{conf}: customize = hooks/x.sh: no such file or directory {tmp_path}/project/hooks/x.sh (a path in a "
        "config file is relative to its directory)")


def test_other_input_paths_are_relative_to_the_config_file_too(vmd: Vmd, out: Path, tmp_path: Path, elsewhere: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    project = tmp_path / "project"
    for name in ("debs/a.deb", "debs/b.deb", "keys/archive.gpg"):
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_bytes(b"x")
    conf = config(project / "image.conf", "custom-package = debs/a.deb, debs/b.deb", "keyring = keys/archive.gpg",
                  "tarball = built/root.tar")
    settings, _ = settings_of(monkeypatch, vmd, "--config", str(conf))
    assert settings.custom_packages == (project / "debs/a.deb", project / "debs/b.deb")  # type: ignore[attr-defined]
    assert settings.bootstrap.keyring == project / "keys/archive.gpg"  # type: ignore[attr-defined]
    # An output path keeps the old meaning: the current directory's.
    assert settings.outputs["tarball"] == elsewhere / "built/root.tar"  # type: ignore[attr-defined]


def test_command_line_paths_are_relative_to_the_current_directory(vmd: Vmd, out: Path, elsewhere: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    ours = hook(elsewhere / "hooks/x.sh")
    settings, _ = settings_of(monkeypatch, vmd, "--customize", "hooks/x.sh", "--tarball", str(out / "x.tar"))
    assert settings.hook == ours  # type: ignore[attr-defined]


def test_the_shipped_examples_are_no_fallback(vmd: Vmd, out: Path, elsewhere: Path) -> None:
    """A bare name used to be looked up among the examples: one more file it could have meant."""
    assert error(vmd("--customize", "live-customise.sh", "--tarball", str(out / "x.tar"), "--dry-run")) == \
        "--customize live-customise.sh: no such file"


def test_the_live_example_finds_its_hook_from_anywhere(vmd: Vmd, elsewhere: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    settings, err = settings_of(monkeypatch, vmd, "--config", str(REPO / "examples/live.conf"))
    assert settings.hook == REPO / "examples/hooks/live-customise.sh" and err == ""  # type: ignore[attr-defined]


# -- a hook runs as root: only root may change it ------------------------------------------------------


@pytest.mark.parametrize(("mode", "who"), [(0o775, "group members"), (0o757, "others"),
                                           (0o777, "group members and others")])
def test_a_hook_others_may_change_is_refused(vmd: Vmd, out: Path, tmp_path: Path, mode: int, who: str) -> None:
    script = hook(tmp_path / "hooks/x.sh", mode)
    assert error(vmd("--customize", str(script), "--tarball", str(out / "x.tar"), "--dry-run")) == (
        f"--customize {script}: refused: {script} has mode {mode:04o}: {who} could change what runs as root")


def test_a_hook_in_a_directory_others_may_change_is_refused(vmd: Vmd, out: Path, tmp_path: Path) -> None:
    script = hook(tmp_path / "shared/x.sh")
    (tmp_path / "shared").chmod(0o777)
    assert error(vmd("--customize", str(script), "--tarball", str(out / "x.tar"), "--dry-run")) == (
        f"--customize {script}: refused: the directory {tmp_path}/shared has mode 0777: group members and others "
        "could change what runs as root")


def test_a_sticky_directory_like_tmp_is_fine(vmd: Vmd, out: Path, tmp_path: Path) -> None:
    script = hook(tmp_path / "sticky/x.sh")
    (tmp_path / "sticky").chmod(0o1777)
    accepted(vmd("--customize", str(script), "--tarball", str(out / "x.tar"), "--dry-run"))


def test_a_symlink_to_a_hook_in_an_open_directory_is_refused(vmd: Vmd, out: Path, tmp_path: Path) -> None:
    target = hook(tmp_path / "open/x.sh")
    (tmp_path / "open").chmod(0o777)
    link = tmp_path / "safe/x.sh"
    link.parent.mkdir()
    link.symlink_to(target)
    assert f"refused: the directory {tmp_path}/open has mode 0777" in \
        error(vmd("--customize", str(link), "--tarball", str(out / "x.tar"), "--dry-run"))


def test_a_hook_owned_by_another_user_is_refused(tmp_path: Path) -> None:
    script = hook(tmp_path / "x.sh")
    mine = os.stat(script).st_uid
    others = {uid for uid in (0, 1, 65534) if uid != mine}
    assert hooks.why_untrusted(script, others).startswith(f"{script} is owned by ")
    assert hooks.why_untrusted(script, {mine, 0}) == ""


def test_sudo_s_user_may_own_the_hook(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUDO_UID", "1234")
    assert 1234 in hooks.trusted_owners() and 0 in hooks.trusted_owners()
