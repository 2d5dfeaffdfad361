"""The commands vmdebootstrap-matrix runs itself: ``vmdebootstrap --cache-keys`` and the
preflight's probes.

Not through run.Runner, which is the build's: it merges stdout into stderr (a JSON answer
must come alone) and gives every command the build's fixed environment.  Here the
command's own output is all that is wanted, each stream apart; argv lists, never a shell.
"""

from __future__ import annotations

import dataclasses
import subprocess
from collections.abc import Sequence

from ..run import describe_status


@dataclasses.dataclass(frozen=True)
class Finished:
    returncode: int
    stdout: str
    stderr: str

    @property
    def status(self) -> str:
        """How it ended, for a message: "exit status 2", "killed by SIGKILL", ..."""
        return describe_status(self.returncode)

    @property
    def last_line(self) -> str:
        lines = [line for line in self.stderr.splitlines() if line.strip()]
        return lines[-1].strip() if lines else ""


def run(argv: Sequence[str], timeout: float = 600.0) -> Finished:
    """Run ``argv`` to its end; a missing program or a timeout is a failed command, not an exception."""
    try:
        done = subprocess.run(list(argv), stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              errors="replace", timeout=timeout, check=False)
    except FileNotFoundError:
        return Finished(127, "", f"{argv[0]}: not found")
    except subprocess.TimeoutExpired:
        return Finished(124, "", f"{argv[0]}: no answer after {timeout:.0f} s")
    return Finished(done.returncode, done.stdout, done.stderr)
