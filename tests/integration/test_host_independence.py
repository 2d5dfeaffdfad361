"""Nothing of the build host in what a build makes (issue 22), and accounts on a minbase system.

Every build of the integration tier runs with a canary resolv.conf and host name
(conftest.Canary): here the live root filesystem and ISO, a minbase tarball and a disk
image are searched, file by file and inside their initramfs images, for the canary's search
domain, name server and host name and for the test session's build directory (which holds
every work directory).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from ..conftest import PASSWORD, canary, https_variant, our_mounts, vmdebootstrap, workdir_for
from ..hostcheck import found_in_file, leaks_in_initramfs, leaks_in_tree, needles_of

pytestmark = pytest.mark.integration

MINBASE = ("--distribution", "trixie", "--variant", "minbase", "--no-kernel", "--no-acpid")


# The test hooks leave the paths they were given in the image, as evidence for other tests
# (test_live's, test_images'): theirs, not the tool's.
HOOK_EVIDENCE = ("etc/vmdebootstrap-test-hook", "root/vmdb-hook-args")


def needles(outdir: Path) -> list[bytes]:
    return needles_of(*canary().needles, str(outdir))


def leaks(tree: Path, wanted: list[bytes]) -> dict[str, set[bytes]]:
    return {path: hits for path, hits in leaks_in_tree(tree, wanted).items() if path not in HOOK_EVIDENCE}


@pytest.fixture(scope="module")
def minbase_accounts(mirror: str, outdir: Path) -> Path:
    """trixie minbase (no adduser in it) with a user in the sudo group, and the https form of the
    mirror as the image's apt source (no ca-certificates in it either)."""
    tarball = outdir / "minbase-accounts.tar.zst"
    result = vmdebootstrap(*MINBASE, "--mirror", mirror, "--tarball", str(tarball), "--user", f"user/{PASSWORD}",
                           "--sudo", "--lock-root-password", "--configure-apt", "--apt-mirror", https_variant(mirror),
                           "--workdir", str(workdir_for(outdir, "minbase-accounts")),
                           "--log", str(outdir / "minbase-accounts.log"))
    assert result.returncode == 0, result.stderr[-3000:]
    return tarball


def untar(tarball: Path, target: Path) -> Path:
    target.mkdir()
    subprocess.run(["tar", "--extract", "--auto-compress", f"--file={tarball}", f"--directory={target}"],
                   check=True, capture_output=True)
    return target


def test_minbase_gets_its_user_its_hash_and_the_sudo_group(minbase_accounts: Path, tmp_path: Path) -> None:
    root = untar(minbase_accounts, tmp_path / "root")
    passwd = {line.split(":")[0]: line for line in (root / "etc/passwd").read_text().splitlines()}
    assert passwd["user"].split(":")[5:] == ["/home/user", "/bin/bash"]
    shadow = {line.split(":")[0]: line.split(":")[1] for line in (root / "etc/shadow").read_text().splitlines()}
    assert shadow["user"].startswith("$y$")  # yescrypt, trixie's PAM default
    assert shadow["root"].startswith("!")
    lines = (root / "etc/group").read_text().splitlines()
    groups = {line.split(":")[0]: line.split(":")[3].split(",") for line in lines}
    assert "user" in groups["sudo"]
    assert (root / "usr/bin/sudo").is_file()


def test_an_https_apt_source_comes_with_the_ca_store_and_works(minbase_accounts: Path, mirror: str,
                                                               tmp_path: Path) -> None:
    root = untar(minbase_accounts, tmp_path / "root")
    assert (root / "etc/ssl/certs/ca-certificates.crt").stat().st_size > 100_000
    assert https_variant(mirror) in (root / "etc/apt/sources.list.d/debian.sources").read_text()
    (root / "etc/resolv.conf").write_text(Path("/etc/resolv.conf").read_text())
    # This machine's network re-signs TLS with a local CA that only the host trusts: apt is
    # lent the host's bundle; the image's own bundle is what a real network needs.
    shutil.copyfile("/etc/ssl/certs/ca-certificates.crt", root / "tmp/host-ca-certificates.crt")
    script = (f"mount --rbind /dev {root}/dev && mount -t proc proc {root}/proc && "
              f"chroot {root} apt-get -o Acquire::https::CAInfo=/tmp/host-ca-certificates.crt update")
    result = subprocess.run(["unshare", "--mount", "--propagation", "private", "--fork", "sh", "-c", script],
                            capture_output=True, text=True, check=False, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "trixie InRelease" in result.stdout and "W:" not in result.stdout + result.stderr
    assert our_mounts() == []


def test_the_minbase_tarball_holds_nothing_of_the_host(minbase_accounts: Path, outdir: Path, tmp_path: Path) -> None:
    root = untar(minbase_accounts, tmp_path / "root")
    assert leaks_in_tree(root, needles(outdir)) == {}


def test_the_live_root_and_iso_hold_nothing_of_the_host(live: dict[str, object], outdir: Path,
                                                       tmp_path: Path) -> None:
    squash, iso = live["dir"], live["iso"]
    assert isinstance(squash, Path) and isinstance(iso, Path)
    root = tmp_path / "root"
    subprocess.run(["unsquashfs", "-d", str(root), str(squash / "filesystem.squashfs")], check=True,
                   capture_output=True)
    wanted = needles(outdir)
    # The canary is really what the build saw: systemd-resolved's postinst kept it (issue 22).
    assert not (root / "etc/.resolv.conf.systemd-resolved.bak").exists()
    assert leaks(root, wanted) == {}
    beside = [p for p in [*squash.iterdir(), *iso.parent.glob(iso.name + ".*")] if p.is_file()]
    assert {p.name: hits for p in [*beside, iso] if (hits := found_in_file(p, wanted))} == {}
    assert leaks_in_initramfs(squash / "initrd.img", wanted) == {}


@pytest.mark.images  # in the session that builds bios_image
def test_the_disk_image_holds_nothing_of_the_host(bios_image: dict[str, object], outdir: Path,
                                                  tmp_path: Path) -> None:
    """Every file of its /boot and root filesystems, the initramfs unpacked (debugfs rdump)."""
    image = bios_image["image"]
    assert isinstance(image, Path)
    wanted = needles(outdir)
    for number, name in ((1, "boot"), (2, "root")):  # bios_image: /boot, /, swap
        filesystem = _partition(image, number, tmp_path / f"{name}.fs")
        tree = tmp_path / name
        tree.mkdir()
        subprocess.run(["debugfs", "-R", f"rdump / {tree}", str(filesystem)], check=True, capture_output=True)
        filesystem.unlink()
        assert any(tree.iterdir()), f"partition {number} of {image} unpacked to nothing"
        assert leaks(tree, wanted) == {}, name
    assert list((tmp_path / "boot").glob("initrd.img-*")), "no initramfs searched"


def _partition(image: Path, number: int, target: Path) -> Path:
    """Partition ``number`` of ``image`` copied into a file of its own (for debugfs)."""
    table = subprocess.run(["sfdisk", "--dump", str(image)], capture_output=True, text=True, check=True).stdout
    line = next(line for line in table.splitlines() if line.startswith(f"{image}{number} "))
    start = int(line.split("start=")[1].split(",")[0])
    size = int(line.split("size=")[1].split(",")[0])
    subprocess.run(["dd", f"if={image}", f"of={target}", "bs=4M", "iflag=skip_bytes,count_bytes",
                    f"skip={start * 512}", f"count={size * 512}", "conv=sparse", "status=none"], check=True)
    return target
