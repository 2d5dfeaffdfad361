"""Outputs appear only when the whole build succeeded.

Each output is written under a hidden partial name next to its final place (same
filesystem, so the final rename is atomic).  On success ``publish()`` renames them
all; on any failure the stack removes the partial files, and an output directory
that the build created itself.  A failed build leaves nothing at the final paths.

A build that is SIGKILLed runs no cleanup: its partial files (gigabytes, for an image)
would stay.  So each partial file and each directory made is also written to a journal
in the work directory; the next build, removing the stale work directory, removes what
its journal lists (``remove_leftovers``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from pathlib import Path

from . import mounts
from .errors import BuildError

log = logging.getLogger("vmdebootstrap")


PARTIAL_PREFIX = ".vmdebootstrap-partial-"


class Outputs:
    def __init__(self, stack: contextlib.ExitStack, journal: Path | None = None) -> None:
        self.pending: list[tuple[Path, Path]] = []
        self.created_dirs: list[Path] = []
        self.scratch_files: list[Path] = []
        self.published = False
        self.written: list[Path] = []  # the final paths, once published
        self.journal = journal
        stack.callback(self._discard)

    def _record(self, kind: str, path: Path) -> None:
        # Written before the file or directory exists, so a SIGKILL cannot come in between.
        if self.journal is not None:
            with open(self.journal, "a") as stream:
                stream.write(json.dumps({kind: os.fspath(path)}) + "\n")

    def directory(self, path: Path) -> Path:
        """Make sure an output directory exists; remember each level we made (removed on failure)."""
        missing = []
        level = path
        while not level.is_dir():
            missing.append(level)
            level = level.parent
        for directory in reversed(missing):
            self._record("dir", directory)
            directory.mkdir()
            self.created_dirs.append(directory)
        return path

    def partial(self, final: Path) -> Path:
        """The name to write ``final`` under until the build succeeds."""
        # The suffix stays last so tools that look at it (tar --auto-compress) still see it.
        partial = final.with_name(f"{PARTIAL_PREFIX}{final.name}")
        assert all(final != pending for _, pending in self.pending), f"{final} written twice"
        if partial.exists() or partial.is_symlink():
            partial.unlink()
        self._record("file", partial)
        self.pending.append((partial, final))
        return partial

    def files(self) -> list[tuple[Path, Path]]:
        """(partial, final) of every output file written so far."""
        return list(self.pending)

    def scratch(self, path: Path) -> Path:
        """A work file beside the outputs (same filesystem), never published, always removed."""
        self.scratch_files.append(path)
        if path.exists() or path.is_symlink():
            path.unlink()
        self._record("file", path)  # a SIGKILLed build's next run removes it too
        return path

    def publish(self) -> list[Path]:
        missing = [partial for partial, _ in self.pending if not partial.exists()]
        if missing:  # checked before the first rename: all outputs appear, or none
            raise BuildError(f"output missing before publishing: {', '.join(map(str, missing))}")
        for partial, final in self.pending:
            os.replace(partial, final)
        self.published = True
        self.written = [final for _, final in self.pending]
        return self.written

    def _discard(self) -> None:
        for path in self.scratch_files:
            if path.exists() or path.is_symlink():
                path.unlink()
        if self.published:
            return
        for partial, _ in self.pending:
            if partial.exists() or partial.is_symlink():
                partial.unlink()
        for directory in reversed(self.created_dirs):
            mounts.safe_rmtree(directory)


def remove_leftovers(journal: Path) -> list[Path]:
    """Remove what a killed build left half written, as its journal lists it; return what was removed.

    Only files named as partial files are removed, and directories only when empty: a
    journal can name nothing else for removal.
    """
    try:
        lines = journal.read_text().splitlines()
    except FileNotFoundError:
        return []
    files, dirs = [], []
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # the last line of a build killed while writing it
        if isinstance(entry, dict) and isinstance(entry.get("file"), str):
            files.append(Path(entry["file"]))
        elif isinstance(entry, dict) and isinstance(entry.get("dir"), str):
            dirs.append(Path(entry["dir"]))
    removed = []
    for path in files:
        if path.name.startswith(PARTIAL_PREFIX) and (path.is_symlink() or path.is_file()):
            path.unlink()
            removed.append(path)
    for directory in reversed(dirs):
        with contextlib.suppress(OSError):  # not empty (someone else's now) or gone
            directory.rmdir()
            removed.append(directory)
    return removed
