"""Output "tarball": the root filesystem as a tarball, compressed according to its suffix.

Reads: the finished tree.  Writes: the tarball under its partial name.  Undoes: nothing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from ..context import Context
from ..settings import Settings
from .squash import EXCLUDED

NAME = "tarball"
STEP = "tarball"
# tar --auto-compress picks the compressor by suffix: suffix -> (program, package).
COMPRESSORS = {".gz": ("gzip", "gzip"), ".tgz": ("gzip", "gzip"), ".xz": ("xz", "xz-utils"),
               ".zst": ("zstd", "zstd"), ".bz2": ("bzip2", "bzip2")}  # fmt: skip


def wanted(settings: Settings) -> bool:
    return NAME in settings.outputs


def note(_ctx: Context) -> str:
    return ""


def stem(final: Path) -> Path:
    return final


def packages(_settings: Settings) -> list[str]:
    return []


def downloads(_settings: Settings) -> list[str]:
    return []


def host_tools(settings: Settings | None) -> Mapping[str, str]:
    tools = {"tar": "tar"}
    path = settings.outputs.get(NAME) if settings else None
    for suffix, (program, package) in COMPRESSORS.items():
        if settings is None or (path is not None and path.name.endswith(suffix)):
            tools[program] = package
    return tools


def tar_argv(root: Path, output: Path, epoch: int | None = None) -> list[str]:
    """tar of the tree; with ``epoch`` the same tree makes the same bytes (reproducible-builds.org's
    archive recipe): names sorted, times clamped, no atime or ctime, no process id in header names."""
    excludes = [f"--exclude=./{pattern}" for pattern in EXCLUDED]
    same = [] if epoch is None else [
        "--sort=name", f"--mtime=@{epoch}", "--clamp-mtime",
        "--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime",
    ]
    # gzip stores the time it compressed at unless told not to (-n); xz, zstd and bzip2 store none.
    compress = ["--use-compress-program=gzip -n"] if output.name.endswith((".gz", ".tgz")) else ["--auto-compress"]
    return [
        "tar", "--create", *compress, f"--file={os.fspath(output)}",
        f"--directory={os.fspath(root)}",
        "--one-file-system", "--numeric-owner", "--xattrs", "--xattrs-include=*", "--acls", *same,
        *excludes, ".",
    ]  # fmt: skip


def run(ctx: Context) -> None:
    final = ctx.settings.outputs[NAME]
    ctx.outputs.directory(final.parent)
    ctx.runner.run(tar_argv(ctx.root, ctx.outputs.partial(final), ctx.epoch))
