"""Outputs appear only when the whole build succeeded.

Each output is written under a hidden staging name next to its final place (same
filesystem, so the final rename is atomic).  On success ``publish()`` renames them
all; on any failure the stack removes the staged files, and an output directory
that the build created itself.  A failed build leaves nothing at the final paths.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

from . import mounts
from .errors import BuildError

log = logging.getLogger("vmdebootstrap")


class Staging:
    def __init__(self, stack: contextlib.ExitStack) -> None:
        self.pending: list[tuple[Path, Path]] = []
        self.created_dirs: list[Path] = []
        self.scratch_files: list[Path] = []
        self.published = False
        stack.callback(self._discard)

    def directory(self, path: Path) -> Path:
        """Make sure an output directory exists; remember each level we made (removed on failure)."""
        missing = []
        level = path
        while not level.is_dir():
            missing.append(level)
            level = level.parent
        for directory in reversed(missing):
            directory.mkdir()
            self.created_dirs.append(directory)
        return path

    def stage(self, final: Path) -> Path:
        # The suffix stays last so tools that look at it (tar --auto-compress) still see it.
        staged = final.with_name(f".vmdebootstrap-partial-{final.name}")
        assert all(final != pending for _, pending in self.pending), f"{final} staged twice"
        if staged.exists() or staged.is_symlink():
            staged.unlink()
        self.pending.append((staged, final))
        return staged

    def scratch(self, path: Path) -> Path:
        """A work file beside the outputs (same filesystem), never published, always removed."""
        self.scratch_files.append(path)
        if path.exists() or path.is_symlink():
            path.unlink()
        return path

    def publish(self) -> list[Path]:
        missing = [staged for staged, _ in self.pending if not staged.exists()]
        if missing:  # checked before the first rename: all outputs appear, or none
            raise BuildError(f"output missing before publishing: {', '.join(map(str, missing))}")
        for staged, final in self.pending:
            os.replace(staged, final)
        self.published = True
        return [final for _, final in self.pending]

    def _discard(self) -> None:
        for path in self.scratch_files:
            if path.exists() or path.is_symlink():
                path.unlink()
        if self.published:
            return
        for staged, _ in self.pending:
            if staged.exists() or staged.is_symlink():
                staged.unlink()
        for directory in reversed(self.created_dirs):
            mounts.safe_rmtree(directory)
