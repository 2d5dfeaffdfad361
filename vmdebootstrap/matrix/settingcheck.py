"""The vmdebootstrap options a matrix gives (``defaults``, a config entry's ``options``,
an override's ``options``), checked against the tool's one option table (options.py).

A key is an option's long name without ``--``, as in a ``[config]`` file.  Its value must
be of the option's kind -- true or false for a flag, a list (or one value) for a list,
a size such as ``4G``, else a plain value -- and pass the option's own parser where that
parser reads nothing of this host.  An input path (the options marked ``reads``: a hook,
a keyring, a .deb) is relative to the matrix file's directory, as in a config file, and
must exist; the command names it relative to the current directory.  The options the
matrix sets itself per cell are refused here (``MATRIX_OWNS``).
"""

from __future__ import annotations

import os
from pathlib import Path

from yaml.nodes import Node

from .. import values
from ..config import parse_size
from ..errors import UsageError
from ..options import BY_NAME, Option, parsed
from .nodes import Entry, Reader

# What the matrix sets for every cell, and where to say it instead.
MATRIX_OWNS = {
    "distribution": "the release axis sets it",
    "arch": "the arch axis sets it",
    "report": "every cell writes out/<cell>/report.json",
    "log": "every cell writes out/<cell>/build.log",
    "cache-dir": "set it in the cache: section (dir)",
    "boot-test-only": "the boot jobs set it",
}
# Parsers that look at this host (a directory, a user): the build's host is another.
_HOST_PARSERS = (values.existing_dir, values.host_user)


def read_options(reader: Reader, node: Node, path: str, base: Path) -> dict[str, object]:
    """The options of one mapping, by name, typed for the command line (bool, str, list of str)."""
    entries = reader.mapping(node, path)
    found: dict[str, object] = {}
    for entry in entries or ():
        option = BY_NAME.get(entry.name)
        if option is None:
            reader.problem(entry.key, entry.path, "not a vmdebootstrap option (vmdebootstrap --dump-setting-names)")
        elif option.cli_only:
            reader.problem(entry.key, entry.path, "a command-line option, not a setting")
        elif entry.name in MATRIX_OWNS:
            reader.problem(entry.key, entry.path, f"set by the matrix: {MATRIX_OWNS[entry.name]}")
        else:
            value = _typed(reader, option, entry, base)
            if value is not None:
                found[option.name] = value
    return found


def _typed(reader: Reader, option: Option, entry: Entry, base: Path) -> object:
    raw = reader.value(entry.value)
    if option.kind == "bool":
        if not isinstance(raw, bool):
            reader.problem(entry.value, entry.path, "not true or false")
            return None
        return raw
    if option.kind == "list":
        return _list(reader, option, entry, base, raw)
    if raw is None or isinstance(raw, (bool, list, dict)):
        reader.problem(entry.value, entry.path, "not a plain value")
        return None
    text = str(raw)
    if option.reads:
        return _input_path(reader, entry, base, text)
    if option.kind == "size":
        try:
            parse_size(text, entry.name)
        except UsageError:
            reader.problem(entry.value, entry.path, f"{text}: not a size (use e.g. 2G, 500M, 512MiB)")
            return None
        return text
    return text if _parses(reader, option, entry, text) else None


def _list(reader: Reader, option: Option, entry: Entry, base: Path, raw: object) -> list[str] | None:
    items = raw if isinstance(raw, list) else [raw]
    if not items:
        reader.problem(entry.value, entry.path, "an empty list (leave the key out)")
        return None
    if any(item is None or isinstance(item, (bool, list, dict)) for item in items):
        reader.problem(entry.value, entry.path, "not a list of plain values")
        return None
    texts = [str(item) for item in items]
    if option.reads:
        paths = [_input_path(reader, entry, base, text) for text in texts]
        return [p for p in paths if p is not None] if all(paths) else None
    return texts if _parses(reader, option, entry, texts) else None


def _parses(reader: Reader, option: Option, entry: Entry, raw: object) -> bool:
    """Whether the option's parser takes the value (its message is the problem otherwise)."""
    if option.parse in _HOST_PARSERS:
        return True
    try:
        parsed(option, raw)
    except (values.Invalid, UsageError, ValueError) as exc:
        shown = raw if isinstance(raw, str) else ", ".join(str(item) for item in raw) if isinstance(raw, list) else raw
        reader.problem(entry.value, entry.path, f"{shown}: {exc}")
        return False
    return True


def _input_path(reader: Reader, entry: Entry, base: Path, text: str) -> str | None:
    path = base / text
    if not path.exists():
        reader.problem(entry.value, entry.path, f"{text}: no such file or directory {os.path.abspath(path)} "
                       "(relative to the matrix file)")
        return None
    return os.path.relpath(path)
