"""The ISO's offline archive: an apt repository on the medium (``dists/`` and ``pool/``, as
Debian's CDs have) holding what an installer installs from it with no network: GRUB for
BIOS and for UEFI (signed, with shim, where the release signs them), efibootmgr,
cryptsetup with its initramfs hook, and the kernel.  A helper of the ISO (outputs/iso.py),
not an output kind.

Calamares, as calamares-settings-debian configures it, adds ``deb [trusted=yes]
file:/run/live/medium CODENAME main`` to the system it installs and installs grub-efi or
grub-pc and, for an encrypted disk, cryptsetup-initramfs from it: the repository lies at
the ISO's root, for the release's codename, component main.  The packages are the
release's, fetched by apt inside the image with everything they need beyond the live
system (downloads.with_dependencies: verified by the release's signed Release file), in
sets apt solves apart (grub-pc and grub-efi-ARCH conflict).

Wanted with --iso-archive, and whenever the live system has Calamares (an ISO whose
installer would otherwise fail at its bootloader step offline).  ``apt-ftparchive``
(apt-utils) writes the indexes; the paragraphs are sorted and the Release dated by the
build's epoch, so the same packages give the same bytes.
"""

from __future__ import annotations

import email.utils
import gzip
import os
import shutil
from pathlib import Path

from ..chroot import exists_in
from ..context import Context
from ..settings import Settings

# The files calamares-settings-debian's sources-media helper needs on the medium.
CALAMARES_MEDIA_HELPER = "/usr/share/calamares/helpers/calamares-sources-media"
DEBS = "offline"  # the work directory's room for the archive's .debs
TOOLS = {"apt-ftparchive": "apt-utils"}


def wanted(ctx: Context) -> bool:
    """Whether the ISO gets the archive: asked for, or a Calamares live system that needs it."""
    if "iso" not in ctx.settings.outputs:
        return False
    return ctx.settings.iso_archive or exists_in(ctx.root, CALAMARES_MEDIA_HELPER)


def package_sets(settings: Settings) -> list[list[str]]:
    """What the installers install from the medium, in the sets apt solves apart."""
    sets = [["grub-pc"]] if settings.arch.pc_bios else []
    efi = settings.arch.efi
    if efi is not None:
        signed = list(efi.signed_packages) if settings.secure_boot else []
        sets.append(["grub-efi", efi.grub_package, *signed, "efibootmgr"])
    sets.append(["cryptsetup", "cryptsetup-initramfs", "keyutils"])
    return sets


def kernel_packages(ctx: Context) -> list[str]:
    """The kernel packages the live system has, at their installed versions (the metapackage
    and the image it depends on): an installer installs the same kernel."""
    listing = ctx.runner.run(["dpkg-query", "--show", "--showformat", "${Package}=${Version} ${db:Status-Status}\n",
                              "linux-image-*"], chroot=ctx.root, capture=True, quiet=True, check=False).output
    return [line.split()[0] for line in listing.splitlines() if line.endswith(" installed")]


def codename_dir(settings: Settings) -> str:
    return f"dists/{settings.release.name}"


def write(ctx: Context, tree: Path) -> None:
    """pool/ and dists/ in the ISO's ``tree`` from the .debs in the work directory."""
    # Imported here: the installer runs hostdeps (which imports every output kind) with the
    # host's bare python3, before python3-debian is installed (make host-packages).
    from debian.deb822 import Deb822

    settings = ctx.settings
    debs = sorted((ctx.workdir / DEBS).glob("*.deb"))
    for deb in debs:
        control = Deb822(ctx.shipped["iso"][deb.name])
        source = str(control.get("Source", control["Package"])).split()[0]
        prefix = source[:4] if source.startswith("lib") else source[0]
        place = tree / "pool/main" / prefix / source / deb.name
        place.parent.mkdir(parents=True, exist_ok=True)
        if deb.stat().st_dev == place.parent.stat().st_dev:
            os.link(deb, place)
        else:
            shutil.copy2(deb, place)
    binary = tree / codename_dir(settings) / f"main/binary-{settings.arch.name}"
    binary.mkdir(parents=True)
    listed = ctx.runner.run(["apt-ftparchive", "packages", "pool"], cwd=os.fspath(tree), capture=True,
                            quiet=True).output
    packages = "\n".join(sorted(p.strip() + "\n" for p in listed.split("\n\n") if p.strip()))
    (binary / "Packages").write_text(packages)
    with gzip.GzipFile(binary / "Packages.gz", "wb", mtime=ctx.epoch or 0) as stream:
        stream.write(packages.encode())
    release = ctx.runner.run(release_argv(settings, ctx.epoch), cwd=os.fspath(tree / codename_dir(settings)),
                             capture=True, quiet=True).output
    (tree / codename_dir(settings) / "Release").write_text(release)


def release_argv(settings: Settings, epoch: int | None) -> list[str]:
    fields = {"Origin": "Debian", "Label": "Debian", "Suite": settings.release.name,
              "Codename": settings.release.name, "Architectures": settings.arch.name, "Components": "main",
              "Description": f"Debian {settings.release} offline packages of vmdebootstrap's live ISO"}
    if epoch is not None:  # apt-ftparchive writes the time of day otherwise
        fields["Date"] = email.utils.formatdate(epoch, usegmt=True)
    options = [arg for key, value in fields.items() for arg in ("-o", f"APT::FTPArchive::Release::{key}={value}")]
    return ["apt-ftparchive", *options, "release", "."]
