"""What is wrong with a matrix file: each problem one line, ``FILE:LINE: KEY: cause``.

The loader collects every problem it can find before it gives up (``Problems``), so one
run names them all; ``MatrixError`` carries them to the command line, which prints them
on stderr and exits with status 2 before anything is written.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True, order=True)
class Problem:
    file: str
    line: int
    key: str
    cause: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.key}: {self.cause}"


class MatrixError(Exception):
    """The matrix file cannot be used: ``problems`` says why, in the order of the file."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(set(problems))
        super().__init__("\n".join(str(problem) for problem in self.problems))


class Problems:
    """The problems found so far in one file."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.found: list[Problem] = []

    def add(self, line: int, key: str, cause: str) -> None:
        self.found.append(Problem(self.file, line, key, cause))

    def raise_any(self) -> None:
        if self.found:
            raise MatrixError(self.found)
