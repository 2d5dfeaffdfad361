"""The ISO's offline archive (issue 24): which packages it holds, how apt in the image fetches
them, and the repository it makes of them, as Calamares and an installer read it."""

from __future__ import annotations

import gzip
import shutil
import subprocess
from pathlib import Path

import pytest

from vmdebootstrap import downloads
from vmdebootstrap.outputs import offline
from vmdebootstrap.run import Result

from .conftest import MakeContext, MakeSettings
from .fakes import FakeRunner

EPOCH = 1795252544


def test_the_sets_apt_solves_apart(make_settings: MakeSettings, out: Path) -> None:
    amd64 = make_settings("--iso", str(out / "x.iso"), "--distribution", "trixie")
    assert offline.package_sets(amd64) == [
        ["grub-pc"],
        ["grub-efi", "grub-efi-amd64", "shim-signed", "shim-helpers-amd64-signed", "grub-efi-amd64-signed",
         "efibootmgr"],
        ["cryptsetup", "cryptsetup-initramfs", "keyutils"]]
    unsigned = make_settings("--iso", str(out / "x.iso"), "--distribution", "trixie", "--no-secure-boot")
    assert offline.package_sets(unsigned)[1] == ["grub-efi", "grub-efi-amd64", "efibootmgr"]
    arm64 = make_settings("--iso", str(out / "x.iso"), "--distribution", "trixie", "--arch", "arm64")
    assert [s[0] for s in offline.package_sets(arm64)] == ["grub-efi", "cryptsetup"]  # no PC BIOS


def test_wanted_when_asked_or_when_the_live_system_has_calamares(make_context: MakeContext, out: Path) -> None:
    ctx, _ = make_context("--iso", str(out / "x.iso"), "--distribution", "trixie")
    assert not offline.wanted(ctx)
    helper = ctx.root / offline.CALAMARES_MEDIA_HELPER.lstrip("/")
    helper.parent.mkdir(parents=True)
    helper.write_text("")
    assert offline.wanted(ctx)  # its bootloader step would fail offline without it
    asked, _ = make_context("--iso", str(out / "x.iso"), "--distribution", "trixie", "--iso-archive")
    assert asked.settings.iso_archive


def test_apt_in_the_image_fetches_each_set_with_what_it_needs(make_context: MakeContext, out: Path,
                                                             tmp_path: Path) -> None:
    def respond(argv: list[str]) -> Result | None:
        if "--download-only" in argv:
            archives = next(a for a in argv if a.startswith("Dir::Cache::archives=")).split("=", 1)[1]
            deb = ctx.root / archives.lstrip("/") / f"{argv[-1]}_1_amd64.deb"
            deb.write_text(argv[-1])
        if argv[2:3] == ["dpkg-deb"] or argv[:1] == ["dpkg-deb"]:
            return Result(0, f"Package: {Path(argv[-1]).name.split('_')[0]}\nVersion: 1\nArchitecture: amd64\n")
        return None

    ctx, runner = make_context("--iso", str(out / "x.iso"), "--distribution", "trixie", "--iso-archive",
                               runner=FakeRunner(respond))
    sets = offline.package_sets(ctx.settings)
    downloads.with_dependencies(ctx, "iso", sets, ["linux-image-amd64=6.12.117-1"], tmp_path / "debs")
    installs = [c for c in runner.calls if "--download-only" in c]
    assert [c[c.index("install") + 1:] for c in installs] == sets  # each on its own: grub-pc and grub-efi conflict
    assert all("APT::Install-Recommends=true" in c for c in installs)  # what an installer's apt installs
    assert all("Dir::Etc::SourceList=/tmp/vmdebootstrap-downloads/build.list" in c for c in installs)
    [named] = [c for c in runner.calls if c[2:4] == ["sh", "-c"]]
    assert named[-1].endswith("download linux-image-amd64=6.12.117-1")
    assert sorted(p.name for p in (tmp_path / "debs").iterdir()) == sorted(
        f"{s[-1]}_1_amd64.deb" for s in sets)
    assert set(ctx.shipped["iso"]) == {f"{s[-1]}_1_amd64.deb" for s in sets}  # for the ISO's SBOM
    assert not (ctx.root / downloads.DOWNLOAD_DIR).exists()


def deb(directory: Path, name: str, version: str, source: str = "") -> tuple[Path, str]:
    """A real (tiny) .deb, so that apt-ftparchive reads it as it reads the release's; and its control."""
    tree = directory / f"{name}-tree"
    (tree / "DEBIAN").mkdir(parents=True)
    control = f"Package: {name}\nVersion: {version}\nArchitecture: amd64\nMaintainer: T <t@example.org>\n" + \
        (f"Source: {source}\n" if source else "") + f"Description: {name}\n"
    (tree / "DEBIAN/control").write_text(control)
    path = directory / f"{name}_{version}_amd64.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(tree), str(path)], check=True,
                   capture_output=True, env={"SOURCE_DATE_EPOCH": str(EPOCH), "PATH": "/usr/bin:/bin"})
    shutil.rmtree(tree)
    return path, control


class FtpArchive(FakeRunner):
    """Runs apt-ftparchive for real (in the directory asked for); records everything else."""

    def run(self, argv, *, cwd=None, **kwargs):  # type: ignore[no-untyped-def,override]
        if argv[0] == "apt-ftparchive":
            self.calls.append(list(argv))
            return Result(0, subprocess.run(argv, capture_output=True, text=True, check=True, cwd=cwd).stdout)
        return super().run(argv, cwd=cwd, **kwargs)


@pytest.mark.skipif(shutil.which("apt-ftparchive") is None, reason="apt-ftparchive (apt-utils) is not installed; "
                    "make install brings it")
def test_the_repository_calamares_and_an_installer_read(make_context: MakeContext, out: Path, tmp_path: Path) -> None:
    ctx, _ = make_context("--iso", str(out / "x.iso"), "--distribution", "trixie", runner=FtpArchive())
    ctx.epoch = EPOCH
    debs = ctx.workdir / offline.DEBS
    debs.mkdir()
    for name, source in (("grub-pc", "grub2"), ("libefivar1t64", "efivar (39-1)"), ("efibootmgr", "")):
        made, control = deb(debs, name, "1.0-1", source)
        ctx.shipped.setdefault("iso", {})[made.name] = control
    tree = tmp_path / "iso"
    tree.mkdir()
    offline.write(ctx, tree)
    assert sorted(str(p.relative_to(tree)) for p in (tree / "pool").rglob("*.deb")) == [
        "pool/main/e/efibootmgr/efibootmgr_1.0-1_amd64.deb", "pool/main/e/efivar/libefivar1t64_1.0-1_amd64.deb",
        "pool/main/g/grub2/grub-pc_1.0-1_amd64.deb"]
    packages = (tree / "dists/trixie/main/binary-amd64/Packages").read_text()
    assert [line.split()[1] for line in packages.splitlines() if line.startswith("Package:")] == \
        ["efibootmgr", "grub-pc", "libefivar1t64"]  # sorted: the same files give the same index
    with gzip.open(tree / "dists/trixie/main/binary-amd64/Packages.gz", "rt") as stream:
        assert stream.read() == packages
    release = (tree / "dists/trixie/Release").read_text()
    assert "Codename: trixie\n" in release and "Components: main\n" in release
    assert "Date: Sat, 21 Nov 2026 09:15:44 GMT\n" in release  # the build's epoch, not the time of day
    assert " main/binary-amd64/Packages.gz\n" in release
    first = (tree / "dists/trixie/Release").read_bytes()
    shutil.rmtree(tree / "pool")
    shutil.rmtree(tree / "dists")
    offline.write(ctx, tree)
    assert (tree / "dists/trixie/Release").read_bytes() == first
