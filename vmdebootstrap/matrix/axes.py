"""The ``axes:`` section: release, arch and config (required), output (optional).

release takes what ``--distribution`` takes (a codename or a suite vmdebootstrap knows),
arch what ``--arch`` takes, output an output kind (iso, image, tarball, squash).  A
config value is a vmdebootstrap config file (relative to the matrix file), named by its
stem, or a mapping ``{name: NAME, file: FILE, options: {...}}`` with a file, options or
both.  No axis may be empty or name a value twice.
"""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

from yaml.nodes import MappingNode, Node

from .. import architectures, releases
from ..config import read_config_file
from ..errors import UsageError
from ..options import OUTPUTS
from .nodes import Entry, Reader, line
from .settingcheck import read_options
from .spec import AXES, REQUIRED_AXES, Variant

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
_KNOWN = {
    "release": (*releases.known(), *releases.SYMBOLIC),
    "arch": tuple(architectures.ARCHITECTURES),
    "output": tuple(option.name for option in OUTPUTS),
}
_WHAT = {"release": "a release vmdebootstrap knows", "arch": "an architecture vmdebootstrap knows",
         "output": "an output kind"}


@dataclasses.dataclass(frozen=True)
class Axes:
    values: dict[str, tuple[tuple[str, int], ...]]  # axis -> (value, line): release, arch, output
    variants: tuple[Variant, ...]

    def names(self, axis: str) -> tuple[str, ...]:
        if axis == "config":
            return tuple(variant.name for variant in self.variants)
        return tuple(value for value, _line in self.values.get(axis, ()))

    def line(self, axis: str, value: str) -> int:
        return next(line for known, line in self.values[axis] if known == value)

    @property
    def present(self) -> tuple[str, ...]:
        return tuple(axis for axis in AXES if axis == "config" or axis in self.values)


def read_axes(reader: Reader, section: Entry, base: Path) -> Axes | None:
    entries = reader.mapping(section.value, "axes")
    if entries is None:
        return None
    given = {entry.name: entry for entry in entries}
    for entry in entries:
        if entry.name not in AXES:
            reader.problem(entry.key, entry.path, f"not an axis ({', '.join(AXES)})")
    for axis in REQUIRED_AXES:
        if axis not in given:
            reader.problem(section.key, f"axes.{axis}", "missing: a matrix needs release, arch and config")
    found = {axis: _plain(reader, given[axis]) for axis in ("release", "arch", "output") if axis in given}
    variants = _variants(reader, given["config"], base) if "config" in given else ()
    return Axes({axis: values for axis, values in found.items()}, variants)


def _items(reader: Reader, entry: Entry) -> list[Node]:
    items = reader.sequence(entry.value, entry.path)
    if items == []:
        reader.problem(entry.value, entry.path, "empty: give at least one value")
    return items or []


def _plain(reader: Reader, entry: Entry) -> tuple[tuple[str, int], ...]:
    found: list[tuple[str, int]] = []
    for index, node in enumerate(_items(reader, entry)):
        path = f"{entry.path}[{index}]"
        text = reader.text(node, path)
        if text is None:
            continue
        if text not in _KNOWN[entry.name]:
            reader.problem(node, path, f"{text}: not {_WHAT[entry.name]} ({', '.join(_KNOWN[entry.name])})")
        elif text in (value for value, _line in found):
            reader.problem(node, path, f"{text}: given twice")
        else:
            found.append((text, line(node)))
    return tuple(found)


def _variants(reader: Reader, entry: Entry, base: Path) -> tuple[Variant, ...]:
    found: list[Variant] = []
    for index, node in enumerate(_items(reader, entry)):
        variant = _variant(reader, node, f"{entry.path}[{index}]", base)
        if variant is None:
            continue
        if variant.name in (known.name for known in found):
            reader.problem(node, f"{entry.path}[{index}]", f"{variant.name}: a second entry of this name "
                           "(name one: {name: NAME, file: FILE})")
        else:
            found.append(variant)
    return tuple(found)


def _variant(reader: Reader, node: Node, path: str, base: Path) -> Variant | None:
    if not isinstance(node, MappingNode):
        plain = reader.text(node, path)
        return _with_file(reader, node, path, base, plain, name="", options={}) if plain is not None else None
    entries = {entry.name: entry for entry in reader.mapping(node, path) or ()}
    for key, entry in entries.items():
        if key not in ("name", "file", "options"):
            reader.problem(entry.key, entry.path, "not a key of a config entry (name, file, options)")
    options = read_options(reader, entries["options"].value, f"{path}.options", base) if "options" in entries \
        else {}
    name = reader.text(entries["name"].value, f"{path}.name") if "name" in entries else None
    if "file" in entries:
        given = reader.text(entries["file"].value, f"{path}.file")
        return _with_file(reader, node, path, base, given, name=name or "", options=options) \
            if given is not None else None
    if name is None:
        reader.problem(node, path, "needs a name (and a file, options or both)")
        return None
    return _named(reader, node, path, Variant(name, "", options, {}, line(node)))


def _with_file(reader: Reader, node: Node, path: str, base: Path, file: str, *, name: str,
               options: dict[str, object]) -> Variant | None:
    location = base / file
    if not location.is_file():
        reader.problem(node, path, f"{file}: no such file {os.path.abspath(location)} (relative to the matrix "
                       "file)")
        return None
    try:
        config = read_config_file(os.fspath(location))
    except UsageError as exc:
        reader.problem(node, path, f"{file}: {exc}")
        return None
    variant = Variant(name or Path(file).stem, os.path.relpath(location), options, config, line(node))
    return _named(reader, node, path, variant)


def _named(reader: Reader, node: Node, path: str, variant: Variant) -> Variant | None:
    if not NAME.match(variant.name):
        reader.problem(node, path, f"{variant.name}: a name is letters, digits and . _ + - (it names jobs and "
                       "directories)")
        return None
    return variant
