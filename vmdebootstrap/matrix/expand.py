"""The cells of a matrix: the product of its axes, less the excluded, with their options.

A cell's options are the defaults, then its config entry's, then those of every override
whose ``match`` it fits, in the file's order (a later value replaces an earlier one, a
list too, as on vmdebootstrap's command line).  Refused here: two cells that are one
build (``stable`` and its codename), an override that
fits no cell, a release whose archive lacks the architecture, a board of another
architecture, a cell that writes nothing, and a boot test that cannot happen.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Mapping

from .. import architectures, boards, releases
from ..options import OUTPUTS
from .axes import Axes
from .problems import Problems
from .spec import Cell


@dataclasses.dataclass(frozen=True)
class Match:
    """{axis: value}: the cells with all of these values."""

    values: Mapping[str, str]
    line: int
    path: str

    def fits(self, cell: Cell) -> bool:
        return all(cell.value(axis) == value for axis, value in self.values.items())


@dataclasses.dataclass(frozen=True)
class Override:
    match: Match
    options: Mapping[str, object]


@dataclasses.dataclass(frozen=True)
class Rules:
    """What the matrix says beside its axes."""

    defaults: Mapping[str, object]
    excludes: list[Match]
    overrides: list[Override]
    reproducible: list[Match]


def expand(problems: Problems, axes: Axes, rules: Rules) -> tuple[Cell, ...]:
    cells = []
    for release, arch, variant, output in itertools.product(
            axes.names("release"), axes.names("arch"), axes.variants, axes.names("output") or ("",)):
        cell = Cell(release, arch, variant, output, {**rules.defaults, **variant.options})
        if any(match.fits(cell) for match in rules.excludes):
            continue
        options = dict(cell.options)
        for override in rules.overrides:
            if override.match.fits(cell):
                options.update(override.options)
        cells.append(dataclasses.replace(cell, options=options,
                                         reproducible=any(match.fits(cell) for match in rules.reproducible)))
    if not cells:
        problems.add(1, "exclude", "every cell is excluded")
    for override in rules.overrides:
        if not any(override.match.fits(cell) for cell in cells):
            problems.add(override.match.line, override.match.path, "fits no cell of the matrix")
    _check_duplicates(problems, axes, cells)
    for cell in cells:
        _check_cell(problems, axes, cell)
    return tuple(cells)


def _check_duplicates(problems: Problems, axes: Axes, cells: list[Cell]) -> None:
    """Two cells that build the same thing: a suite and its codename on the release axis (a value
    given twice is refused as such; releases and architectures have no "-", so two cells never
    share a directory)."""
    builds: dict[tuple[str, ...], Cell] = {}
    for cell in cells:
        same = (releases.codename(cell.release), *cell.values[1:])
        if same in builds:
            problems.add(axes.line("release", cell.release), "axes.release", f"{cell.release}: {cell.label} is "
                         f"{builds[same].label} ({cell.release} is {same[0]} today): a duplicate cell")
        builds.setdefault(same, cell)


def _check_cell(problems: Problems, axes: Axes, cell: Cell) -> None:
    codename = releases.codename(cell.release)
    record = releases.get(codename) if codename in releases.known() else None
    if record is not None and record.architectures is not None and cell.arch not in record.architectures:
        problems.add(axes.line("arch", cell.arch), "axes.arch", f"{cell.arch}: {codename}'s archive has no "
                     f"{cell.arch} (exclude {{release: {cell.release}, arch: {cell.arch}}})")
    board = boards.BOARDS.get(str(cell.setting("board") or ""))
    if board is not None and board.arch != cell.arch:
        _problem(problems, cell, f"board {board.name} is an {board.arch} board (exclude the cell)")
    if not cell.output and not any(cell.setting(option.name) for option in OUTPUTS):
        _problem(problems, cell, "writes nothing: give it an output (iso, image, tarball or squash) in its "
                 "config file or options, or an output axis")
    if cell.boots:
        _check_boot(problems, cell)


def _check_boot(problems: Problems, cell: Cell) -> None:
    kinds = (cell.output,) if cell.output else tuple(o.name for o in OUTPUTS if cell.setting(o.name))
    if not any(option.boots for option in OUTPUTS if option.name in kinds):
        _problem(problems, cell, "boot-test, but it writes no ISO or disk image (set boot-test: false for it "
                 "in an override)")
    if architectures.ARCHITECTURES[cell.arch].emulator is None:
        _problem(problems, cell, f"boot-test, but vmdebootstrap boots no {cell.arch} system")
    if not any(login_password(str(user)) for user in _users(cell)):
        _problem(problems, cell, "boot-test needs a user NAME/PASSWORD (a plain password) to log in as")


def _users(cell: Cell) -> list[object]:
    users = cell.setting("user")
    return list(users) if isinstance(users, (list, tuple)) else []


def login_password(user: str) -> bool:
    """Whether a --user value has a plain password the boot test can log in with."""
    _name, _, password = user.partition("/")
    return bool(password) and not password.startswith("hashed:")


def _problem(problems: Problems, cell: Cell, cause: str) -> None:
    problems.add(cell.variant.line, cell.label, cause)
