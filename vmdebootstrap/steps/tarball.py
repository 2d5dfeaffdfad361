"""The root filesystem as a tarball, compressed according to the file name's suffix.

The old tool always wrote an uncompressed tar whatever the name said (§6.4 item 12).
"""

from __future__ import annotations

import os
from pathlib import Path

from ..context import Context
from ..publish import Staging
from .squash import EXCLUDED


def tar_argv(root: Path, output: Path) -> list[str]:
    excludes = [f"--exclude=./{pattern}" for pattern in EXCLUDED]
    return [
        "tar", "--create", "--auto-compress", f"--file={os.fspath(output)}",
        f"--directory={os.fspath(root)}",
        "--one-file-system", "--numeric-owner", "--xattrs", "--xattrs-include=*", "--acls",
        *excludes, ".",
    ]  # fmt: skip


def make(ctx: Context, staging: Staging) -> None:
    final = Path(ctx.settings.text("tarball")).resolve()
    staging.directory(final.parent)
    staged = staging.stage(final)
    ctx.runner.run(tar_argv(ctx.root, staged))
    if ctx.settings.flag("pkglist"):
        manifest = ctx.runner.run(["dpkg-query", "--show"], chroot=ctx.root, capture=True).output
        staging.stage(final.with_name(final.name + ".packages")).write_text(manifest)
