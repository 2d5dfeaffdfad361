"""Test doubles shared by the unit tests: a runner that records argv instead of running."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from vmdebootstrap.run import CommandFailed, LineSink, Result

Responder = Callable[[list[str]], Result | None]


class FakeRunner:
    """Records argv instead of running anything (unit tests).

    ``responder`` may return a Result for a given argv (e.g. dpkg-query output);
    by default every command succeeds with no output.
    """

    def __init__(self, responder: Responder | None = None) -> None:
        self.calls: list[list[str]] = []
        self.inputs: list[str | None] = []
        self.responder = responder
        self.on_line: LineSink | None = None
        self.environment: dict[str, str] = {}

    def run(
        self,
        argv: Sequence[str],
        *,
        chroot: Path | None = None,
        input: str | None = None,
        env: Mapping[str, str] | None = None,
        check: bool = True,
        capture: bool = False,
        cwd: str | None = None,
        quiet: bool = False,
    ) -> Result:
        full = (["chroot", os.fspath(chroot)] if chroot else []) + [os.fspath(a) for a in argv]
        self.calls.append(full)
        self.inputs.append(input)
        result = (self.responder(full) if self.responder else None) or Result(0, "")
        if check and result.returncode != 0:
            raise CommandFailed(full, result.returncode, result.lines)
        return result

    def commands(self, program: str) -> list[list[str]]:
        """Calls whose program (after any chroot prefix) is ``program``."""
        found = []
        for call in self.calls:
            argv = call[2:] if call[0] == "chroot" else call
            if argv and os.path.basename(argv[0]) == program:
                found.append(argv)
        return found
