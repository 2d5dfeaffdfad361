"""The pieces of reproducibility that need no build: clamping, the build-state list, the
debugfs script that fixes the times mke2fs -d copies from the host, and the seeded
identifiers."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from vmdebootstrap import identity, reproducible
from vmdebootstrap.run import Runner

EPOCH = 1_700_000_000


def tree(root: Path) -> Path:
    (root / "etc/sub").mkdir(parents=True)
    (root / "etc/old").write_text("from a package")
    os.utime(root / "etc/old", (EPOCH - 86400, EPOCH - 86400))
    (root / "etc/new").write_text("written by the build")
    (root / "etc/sub/quote\"d name").write_text("x")
    (root / "etc/link").symlink_to("/nonexistent")
    (root / "bin").symlink_to("etc/sub")  # merged /usr: a link to a directory
    return root


def test_clamp_mtimes_leaves_older_files_and_symlink_targets_alone(tmp_path: Path) -> None:
    root = tree(tmp_path / "root")
    changed = reproducible.clamp_mtimes(root, EPOCH)
    assert os.stat(root / "etc/old").st_mtime == EPOCH - 86400
    assert os.stat(root / "etc/new").st_mtime == EPOCH
    assert os.lstat(root / "etc/link").st_mtime == EPOCH  # the link itself; its target does not exist
    assert os.stat(root).st_mtime == EPOCH
    assert os.lstat(root / "bin").st_mtime == EPOCH
    # root, etc, etc/sub, new, quote"d name, link, bin
    assert changed == 7
    assert reproducible.clamp_mtimes(root, EPOCH) == 0


def test_build_state_is_removed_and_each_entry_says_why(tmp_path: Path) -> None:
    root = tmp_path / "root"
    for name in ("var/log/dpkg.log", "var/log/apt/history.log", "var/cache/ldconfig/aux-cache",
                 "var/log/bootstrap.log", "var/lib/dpkg/status-old", "etc/passwd-"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("x")
    (root / "etc/passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    (root / "var/lib/dpkg/status").write_text("")
    removed = reproducible.remove_build_state(root)
    assert sorted(removed) == sorted(["var/log/dpkg.log", "var/log/apt/history.log", "var/cache/ldconfig/aux-cache",
                                      "var/log/bootstrap.log"])
    # the same in every build: kept
    assert (root / "etc/passwd-").exists() and (root / "var/lib/dpkg/status-old").exists()
    assert all(len(why) > 10 for _, why in reproducible.BUILD_STATE)


def test_ext_times_script_quotes_every_name(tmp_path: Path) -> None:
    root = tree(tmp_path / "root")
    script = reproducible.ext_times_script(root, EPOCH).splitlines()
    assert script[:3] == ['cd "/"', f'sif "." atime @{EPOCH}', f'sif "." ctime @{EPOCH}']
    sub = script.index('cd "/etc/sub"')
    assert script[sub + 1:] == [f'sif "." atime @{EPOCH}', f'sif "." ctime @{EPOCH}',
                                f'sif "quote""d name" atime @{EPOCH}', f'sif "quote""d name" ctime @{EPOCH}']
    assert f'sif "link" atime @{EPOCH}' in script[script.index('cd "/etc"'):sub]
    assert f'sif "bin" ctime @{EPOCH}' in script[:script.index('cd "/etc"')]  # a link, not entered
    assert len([line for line in script if line.startswith("sif ")]) == 2 * 8  # /, bin, etc, sub, old, new, ...
    assert len([line for line in script if line.startswith("cd ")]) == 3


def test_ext_times_script_skips_names_with_a_newline(tmp_path: Path) -> None:
    root = tree(tmp_path / "root")
    (root / "etc/two\nlines").mkdir()
    (root / "etc/two\nlines/inside").write_text("x")
    script = reproducible.ext_times_script(root, EPOCH)
    assert "two" not in script and "inside" not in script
    assert 'cd "/etc/sub"' in script


@pytest.mark.skipif(shutil.which("mkfs.ext4") is None or shutil.which("debugfs") is None,
                    reason="e2fsprogs is not installed (make install brings it)")
def test_the_same_tree_touched_at_other_times_makes_the_same_ext4(tmp_path: Path) -> None:
    """mke2fs -d copies the host's atime and ctime; E2FSPROGS_FAKE_TIME and the debugfs pass
    leave nothing of the moment the filesystem was made."""
    images = []
    for name in ("one", "two"):
        root = tree(tmp_path / name)
        reproducible.clamp_mtimes(root, EPOCH)
        image = tmp_path / f"{name}.img"
        with open(image, "wb") as stream:
            stream.truncate(32 * 2**20)
        uuid = identity.uuid_for("seed", "root")
        offset = 2**20
        subprocess.run(["mkfs.ext4", "-q", "-F", "-U", uuid, "-E", f"offset={offset},hash_seed={uuid},nodiscard",
                        "-d", str(root), str(image), "16M"], check=True,
                       env={**os.environ, "E2FSPROGS_FAKE_TIME": str(EPOCH)})
        reproducible.ext_times(Runner(), image, offset, root, epoch=EPOCH, scratch=tmp_path)
        images.append(image.read_bytes())
        time.sleep(1.1)  # the second tree's ctimes are a second later
    assert images[0] == images[1]
