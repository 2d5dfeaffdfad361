"""Step "manifest": what is inside the outputs, stated exactly, next to them.

Reads: the finished tree's dpkg database, the outputs written so far (under their partial
names).  Writes, beside each output and named after its kind's ``stem`` (FILE, or a
--squash directory's ``filesystem``): with --pkglist ``STEM.packages``, the package list;
its SBOM, ``STEM.spdx.json`` (SPDX 2.3) and ``STEM.cdx.json`` (CycloneDX 1.6), of the
packages installed in the tree and those whose files it ships (sbom.py); and in each
directory the build writes into a ``SHA256SUMS`` of the files it wrote there, the lines
of other files already in that SHA256SUMS kept.  All are published with the outputs,
under partial names until then.  Undoes: nothing.

The SBOM needs debsbom (a dependency of the pip install; packaged in Debian from forky
on): where it cannot be imported the build says so and writes none.
"""

from __future__ import annotations

import concurrent.futures
import logging
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from .. import outputs
from ..chroot import package_listing
from ..context import Context
from ..digest import file_sha256
from ..errors import BuildError

if TYPE_CHECKING:
    from .. import sbom

log = logging.getLogger("vmdebootstrap")

SUMS = "SHA256SUMS"


# The interpreter's thread switch interval while the SBOM and the hashes are made at once.
# Each 4 MiB that hashlib hashes without the GIL takes 2.5 ms; at Python's default 5 ms
# the hashing thread then waited up to 5 ms for the GIL the SBOM's thread held, and
# hashed at a third of its speed meanwhile: 2.7 s for both instead of 2.5 s (a 4 GB image).
SWITCH_INTERVAL = 0.0005


def run(ctx: Context) -> None:
    if ctx.settings.pkglist:
        write_package_lists(ctx)
    # The outputs are hashed while the SBOMs are scanned (seconds each for a disk image;
    # hashlib and the reads release the GIL); the SBOMs and write_sums then find their sums known.
    default = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_INTERVAL)
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            ahead = pool.submit(_hash_all, [partial for partial, _final in ctx.outputs.files()])
            scanned = scan_sboms(ctx) if ctx.settings.sbom else []
            ahead.result()
    finally:
        sys.setswitchinterval(default)
    for stem, files, documents in scanned:
        documents.write(ctx.outputs.partial(stem.with_name(stem.name + ".spdx.json")),
                        ctx.outputs.partial(stem.with_name(stem.name + ".cdx.json")),
                        [(name, file_sha256(partial)) for name, partial in files])
    write_sums(ctx)


def _hash_all(paths: list[Path]) -> None:
    for path in paths:
        file_sha256(path)


def write_package_lists(ctx: Context) -> None:
    """--pkglist: STEM.packages beside each output that has none of its own (a --squash
    directory has its filesystem.packages, a file of the live medium)."""
    kinds, written = outputs.by_name(), {final for _partial, final in ctx.outputs.files()}
    listing = ""
    for kind, final in ctx.settings.outputs.items():
        stem = kinds[kind].stem(final)
        path = stem.with_name(stem.name + ".packages")
        if path not in written:
            listing = listing or package_listing(ctx)
            ctx.outputs.partial(path).write_text(listing)


def files_of(ctx: Context, final: Path) -> list[tuple[str, Path]]:
    """(name, partial path) of the files an output is: the file itself, or those the build
    wrote into its directory (so far: not its SBOMs, not SHA256SUMS)."""
    return [(written.name, partial) for partial, written in ctx.outputs.files()
            if final in (written, written.parent)]


Scan = tuple[Path, list[tuple[str, Path]], "sbom.Scanned"]


def scan_sboms(ctx: Context) -> list[Scan]:
    """Each output's SBOM documents: the tree's packages, those whose files the output takes
    from the release besides (the ISO's boot files: its kind's downloads), and its files."""
    try:
        from .. import sbom  # here: debsbom is optional where Debian lacks it
    except ImportError as exc:
        log.warning("no SBOM: %s (pip install 'debsbom[spdx,cdx]'; Debian has it from forky on)", exc)
        return []
    settings = ctx.settings
    version_file = ctx.root / "etc/debian_version"
    version = version_file.read_text().strip() if version_file.is_file() else None
    kinds = outputs.by_name()
    scanned = []
    for kind, final in settings.outputs.items():
        shipped = list(ctx.shipped.get(kind, {}).values())
        files = files_of(ctx, final)
        try:
            documents = sbom.scan(ctx.root, name=f"debian-{settings.release}-{settings.arch.name}",
                                  epoch=ctx.epoch if ctx.epoch is not None else int(time.time()), seed=settings.seed,
                                  version=version, arch=settings.arch.name, shipped=shipped,
                                  file_names=[name for name, _partial in files])
        except (OSError, ValueError, RuntimeError) as exc:
            raise BuildError(f"the SBOM could not be written: {exc}") from exc
        scanned.append((kinds[kind].stem(final), files, documents))
    return scanned


def write_sums(ctx: Context) -> None:
    """A SHA256SUMS in each directory the build writes files into (sha256sum -c reads it)."""
    by_directory: dict[Path, dict[str, str]] = {}
    for partial, final in ctx.outputs.files():
        by_directory.setdefault(final.parent, {})[final.name] = file_sha256(partial)
    for directory, ours in by_directory.items():
        lines = dict(_existing_sums(directory / SUMS))
        lines.update(ours)
        text = "".join(f"{digest}  {name}\n" for name, digest in sorted(lines.items()))
        ctx.outputs.partial(directory / SUMS).write_text(text)


def _existing_sums(path: Path) -> list[tuple[str, str]]:
    """(name, digest) of an existing SHA256SUMS: other builds' files in that directory."""
    if not path.is_file():
        return []
    found = []
    for line in path.read_text(errors="replace").splitlines():
        digest, _, name = line.partition("  ")
        if len(digest) == 64 and name and "/" not in name:
            found.append((name.lstrip("*"), digest))
    return found
