"""Foreign architectures through qemu-user binfmt (the arm64 build is marked slow; it
still runs on CI, in a session of its own beside the others: see the Makefile).

arm64: the example config (examples/live-arm64.conf) with its shared hook run
under emulation, users and sudo as for amd64.  armhf is built and booted as the BeagleBone
image (tests/integration/test_boards.py), which also checks that its programs are 32-bit ARM.
"""

from __future__ import annotations

import gzip
import re
import subprocess
from pathlib import Path

import pytest

from ..conftest import squashfs_files

pytestmark = pytest.mark.integration

ELF_MACHINE = {"aarch64": 0xB7, "arm": 0x28}


def elf_machine(data: bytes) -> int:
    assert data[:4] == b"\x7fELF", "not an ELF file"
    return int.from_bytes(data[18:20], "little")


def read_from_squashfs(squashfs: Path, path: str, workdir: Path) -> bytes:
    """The file's bytes, following a symlink (e.g. /bin -> usr/bin) inside the image."""
    target = workdir / "x"
    subprocess.run(["unsquashfs", "-f", "-d", str(target), str(squashfs), path.lstrip("/")],
                   capture_output=True, check=True)
    resolved = target / path.lstrip("/")
    if resolved.is_symlink() or not resolved.exists():
        # usr-merged: bin is a symlink to usr/bin
        parts = path.lstrip("/").split("/")
        subprocess.run(["unsquashfs", "-f", "-d", str(target), str(squashfs), "usr/" + "/".join(parts)],
                       capture_output=True, check=True)
        resolved = target / "usr" / "/".join(parts)
    return resolved.read_bytes()


@pytest.mark.slow
def test_arm64_binaries_and_kernel(arm64: Path, tmp_path: Path) -> None:
    ls = read_from_squashfs(arm64 / "filesystem.squashfs", "/bin/ls", tmp_path)
    assert elf_machine(ls) == ELF_MACHINE["aarch64"]
    kernel = (arm64 / "vmlinuz").read_bytes()
    if kernel[:2] == b"\x1f\x8b":
        kernel = gzip.decompress(kernel)
    # The arm64 Image header carries the magic "ARM\x64" at offset 0x38.
    assert kernel[0x38:0x3C] == b"ARM\x64"
    assert (arm64 / "initrd.img").stat().st_size > 1_000_000
    manifest = (arm64 / "filesystem.packages").read_text()
    assert re.search(r"^linux-image-arm64(:arm64)?\t", manifest, re.MULTILINE)
    # Installed by the shared hook only on ARM architectures.
    assert re.search(r"^u-boot-tools(:arm64)?\t", manifest, re.MULTILINE)


@pytest.mark.slow
def test_arm64_no_qemu_left_and_users_work(arm64: Path, unpack) -> None:  # type: ignore[no-untyped-def]
    files = squashfs_files(arm64 / "filesystem.squashfs")
    assert not [f for f in files if "qemu-" in f.rsplit("/", 1)[-1] and "static" in f]
    assert not [f for f in files if f.startswith("/usr/libexec/qemu-binfmt")]
    root = unpack(arm64 / "filesystem.squashfs", "etc")
    shadow = {line.split(":")[0]: line.split(":") for line in (root / "etc/shadow").read_text().splitlines()}
    assert shadow["user"][1].startswith("$y$")
    assert shadow["root"][1].startswith("!")
    groups = {line.split(":")[0]: line.split(":")[3] for line in (root / "etc/group").read_text().splitlines()}
    assert "user" in groups["sudo"].split(",")
    # The shared hook ran under emulation and knew its architecture.
    assert "trixie arm64" in (root / "etc/issue.d/vmdebootstrap.issue").read_text()
    assert not (root / "etc/apt/vmdebootstrap-saved-sources").exists()
