"""Exceptions that carry what the user needs to read."""

from __future__ import annotations


class UsageError(Exception):
    """Bad input: reported on one line, exit status 2, before any side effect."""


class BuildError(Exception):
    """A build step failed; the message names the step and the cause."""


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived; unwinding happens through the cleanup stack.

    A BaseException so that no ``except Exception`` on the way can swallow it.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(f"interrupted by signal {signum}")
        self.signum = signum
