"""The one object every step gets."""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path
from typing import Protocol

from .run import Result
from .settings import Settings


class CommandRunner(Protocol):
    def run(self, argv: list[str], *, chroot: Path | None = ..., input: str | None = ...,
            env: dict[str, str] | None = ..., check: bool = ..., capture: bool = ...,
            cwd: str | None = ..., quiet: bool = ...) -> Result: ...


@dataclasses.dataclass
class Context:
    settings: Settings
    runner: CommandRunner
    workdir: Path  # removed at the end; holds root/ and staging files
    stack: contextlib.ExitStack  # undo actions, run in reverse on any exit
    interpreter_in_target: Path | None = None  # qemu-user copied in for a foreign build
    image_file: Path | None = None  # the raw disk image being written (--image)

    @property
    def root(self) -> Path:
        return self.workdir / "root"
