"""Packages of the image's own release fetched without installing them: the files the
outputs boot with (GRUB's, shim's, ISOLINUX's), and the ISO's offline archive (what an
installer installs from the medium: outputs/offline.py).

apt inside the target does the fetching, so every file is checked against the release's
signed Release file exactly as the image's own packages were, and comes from the release
the image is, never from the host.  It asks the build mirror, whose package lists the
packages step fetched: the system step has pointed the image's sources at --apt-mirror,
which may be https in an image without ca-certificates, or a host only the booted system
reaches.  The finish step calls these, before its scrub removes the lists.

Each package's control paragraph is kept (``ctx.shipped``, by the output that ships it):
the output's SBOM lists it (steps/manifest.py).
"""

from __future__ import annotations

import os
import shlex
import shutil
from pathlib import Path

from .chroot import use_host_dns
from .context import Context

# Downloads go here inside the target (apt drops to the _apt user to write them); they are
# moved out into the work directory and removed from the target.
DOWNLOAD_DIR = "tmp/vmdebootstrap-downloads"


def _apt(ctx: Context) -> list[str]:
    """apt-get, for the build mirror's release only (see above)."""
    settings = ctx.settings
    directory = ctx.root / DOWNLOAD_DIR
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o777)
    use_host_dns(ctx)
    components = " ".join(settings.mirrors.components)
    (directory / "build.list").write_text(f"deb {settings.mirrors.build} {settings.release.name} {components}\n")
    apt = ["apt-get", "-o", f"Dir::Etc::SourceList=/{DOWNLOAD_DIR}/build.list",
           "-o", f"Dir::Etc::SourceParts=/{DOWNLOAD_DIR}/no-parts"]
    # With --no-check-gpg the lists came from an archive apt could not verify (packages step).
    if not settings.bootstrap.check_gpg:
        apt.append("--allow-unauthenticated")
    return apt


def unpacked(ctx: Context, kind: str, names: list[str]) -> None:
    """The packages ``names``, unpacked into ctx.downloads: files output ``kind`` takes."""
    apt = _apt(ctx)
    command = shlex.join([*apt, "download", *names])
    ctx.runner.run(["sh", "-c", f"cd /{DOWNLOAD_DIR} && {command}"], chroot=ctx.root)
    for deb in _fetched(ctx, kind):
        ctx.runner.run(["dpkg-deb", "-x", os.fspath(deb), os.fspath(ctx.downloads)])
    shutil.rmtree(ctx.root / DOWNLOAD_DIR)


def with_dependencies(ctx: Context, kind: str, sets: list[list[str]], names: list[str], target: Path) -> None:
    """The .debs of ``names`` and of each of ``sets`` with what apt would install beside them
    in this image (Depends and Recommends, as an installer's apt does), moved into ``target``.
    Each set is solved on its own: grub-pc and grub-efi-amd64 conflict."""
    apt = _apt(ctx)
    archives = f"/{DOWNLOAD_DIR}/archives"
    (ctx.root / archives.lstrip("/") / "partial").mkdir(parents=True, exist_ok=True)
    os.chmod(ctx.root / archives.lstrip("/"), 0o777)
    os.chmod(ctx.root / archives.lstrip("/") / "partial", 0o777)
    options = ["-o", f"Dir::Cache::archives={archives}/", "-o", "APT::Install-Recommends=true",
               "-o", "Debug::NoLocking=true", "--yes", "--quiet"]
    for packages in sets:
        ctx.runner.run([*apt, *options, "--download-only", "install", *packages], chroot=ctx.root)
    if names:  # installed already (the kernel): asked for by name, at the installed version
        command = shlex.join([*apt, "download", *names])
        ctx.runner.run(["sh", "-c", f"cd {archives} && {command}"], chroot=ctx.root)
    target.mkdir(parents=True, exist_ok=True)
    for deb in _fetched(ctx, kind, archives):
        shutil.move(deb, target / deb.name)
    shutil.rmtree(ctx.root / DOWNLOAD_DIR)


def _fetched(ctx: Context, kind: str, where: str = f"/{DOWNLOAD_DIR}") -> list[Path]:
    """The .debs apt left in ``where`` (inside the target), their control paragraphs kept."""
    debs = sorted((ctx.root / where.lstrip("/")).glob("*.deb"))
    for deb in debs:
        control = ctx.runner.run(["dpkg-deb", "--field", os.fspath(deb)], capture=True, quiet=True).output
        ctx.shipped.setdefault(kind, {})[deb.name] = control
    return debs
