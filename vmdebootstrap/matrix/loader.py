"""``load(FILE)``: the matrix file, validated, expanded into its cells (docs/scale-out.md).

Every problem is collected with its line and key; if there is any, ``MatrixError``
carries them all and nothing else happens.  Top-level keys: ``axes`` (required),
``defaults``, ``exclude``, ``overrides``, ``reproducible``, ``runner``, ``boot-test``,
``cache``.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path, PurePosixPath

from yaml.nodes import Node

from .axes import Axes, read_axes
from .expand import Match, Override, Rules, expand
from .nodes import Entry, Reader, line
from .problems import MatrixError, Problem, Problems
from .settingcheck import read_options
from .spec import DEFAULT_CACHE_DIR, Matrix

TOP_KEYS = ("defaults", "axes", "exclude", "overrides", "reproducible", "runner", "boot-test", "cache")
_PROXY = re.compile(r"^http://[^\s/]+(:[0-9]+)?/?$")


def load(path: Path) -> Matrix:
    problems = Problems(str(path))
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise MatrixError([Problem(str(path), 1, "matrix", f"cannot read it: {exc}")]) from None
    reader = Reader(problems)
    root = reader.compose(text)
    problems.raise_any()
    assert root is not None
    sections = _sections(reader, root)
    problems.raise_any()
    base = path.parent
    if "axes" not in sections:
        problems.add(1, "axes", "missing: a matrix needs axes (release, arch, config)")
    axes = read_axes(reader, sections["axes"], base) if "axes" in sections else None
    defaults = read_options(reader, sections["defaults"].value, "defaults", base) if "defaults" in sections else {}
    problems.raise_any()
    assert axes is not None
    return _matrix(reader, path, sections, axes, defaults)


def _sections(reader: Reader, root: Node) -> dict[str, Entry]:
    entries = reader.mapping(root, "")
    for entry in entries or ():
        if entry.name not in TOP_KEYS:
            reader.problem(entry.key, entry.name, f"not a key of a matrix ({', '.join(TOP_KEYS)})")
    return {entry.name: entry for entry in entries or () if entry.name in TOP_KEYS}


def _matrix(reader: Reader, path: Path, sections: dict[str, Entry], axes: Axes,
            defaults: dict[str, object]) -> Matrix:
    excludes = _matches(reader, sections.get("exclude"), axes)
    reproducible = _matches(reader, sections.get("reproducible"), axes)
    overrides = _overrides(reader, sections.get("overrides"), axes, path.parent)
    build_tags = _tags(reader, sections.get("runner"))
    boot_tags = _tags(reader, sections.get("boot-test"))
    apt_proxy, cache_dir = _cache(reader, sections.get("cache"))
    reader.problems.raise_any()
    cells = expand(reader.problems, axes, Rules(defaults, excludes, overrides, reproducible))
    reader.problems.raise_any()
    return Matrix(path, cells, build_tags, boot_tags, apt_proxy, cache_dir)


def _matches(reader: Reader, section: Entry | None, axes: Axes) -> list[Match]:
    """exclude: and reproducible: -- lists of {axis: value, ...}."""
    if section is None:
        return []
    found = []
    for index, node in enumerate(reader.sequence(section.value, section.name) or ()):
        match = _match(reader, node, f"{section.name}[{index}]", axes)
        if match is not None:
            found.append(match)
    return found


def _match(reader: Reader, node: Node, path: str, axes: Axes) -> Match | None:
    entries = reader.mapping(node, path)
    if entries is None:
        return None
    wanted: dict[str, str] = {}
    for entry in entries:
        value = reader.text(entry.value, entry.path)
        if entry.name not in axes.present:
            reader.problem(entry.key, entry.path, f"not an axis of this matrix ({', '.join(axes.present)})")
        elif value is not None and value not in axes.names(entry.name):
            reader.problem(entry.value, entry.path, f"{value}: not a value of axes.{entry.name} "
                           f"({', '.join(axes.names(entry.name))})")
        elif value is not None:
            wanted[entry.name] = value
    return Match(wanted, line(node), path) if len(wanted) == len(entries) else None


def _overrides(reader: Reader, section: Entry | None, axes: Axes, base: Path) -> list[Override]:
    if section is None:
        return []
    found = []
    for index, node in enumerate(reader.sequence(section.value, "overrides") or ()):
        path = f"overrides[{index}]"
        entries = {entry.name: entry for entry in reader.mapping(node, path) or ()}
        for name, entry in entries.items():
            if name not in ("match", "options"):
                reader.problem(entry.key, entry.path, "not a key of an override (match, options)")
        if "match" not in entries or "options" not in entries:
            reader.problem(node, path, "an override needs match: and options:")
            continue
        match = _match(reader, entries["match"].value, f"{path}.match", axes)
        options = read_options(reader, entries["options"].value, f"{path}.options", base)
        if match is not None:
            found.append(Override(dataclasses.replace(match, line=line(node)), options))
    return found


def _tags(reader: Reader, section: Entry | None) -> tuple[str, ...]:
    """runner: and boot-test: -- {tags: [TAG, ...]}: the GitLab runner tags of their jobs."""
    if section is None:
        return ()
    tags: list[str] = []
    for entry in reader.mapping(section.value, section.name) or ():
        if entry.name != "tags":
            reader.problem(entry.key, entry.path, "not a key here (tags)")
        else:
            tags.extend(text for text, _node in reader.strings(entry.value, entry.path) or ())
    return tuple(tags)


def _cache(reader: Reader, section: Entry | None) -> tuple[str, str]:
    """cache: -- {apt-proxy: http://HOST:PORT, dir: DIR}."""
    proxy, directory = "", DEFAULT_CACHE_DIR
    for entry in (reader.mapping(section.value, "cache") or ()) if section is not None else ():
        text = reader.text(entry.value, entry.path)
        if entry.name not in ("apt-proxy", "dir"):
            reader.problem(entry.key, entry.path, "not a key here (apt-proxy, dir)")
        elif text is None:
            continue
        elif entry.name == "apt-proxy" and not _PROXY.match(text):
            reader.problem(entry.value, entry.path, f"{text}: not an http://HOST:PORT proxy")
        elif entry.name == "dir" and (PurePosixPath(text).is_absolute() or ".." in PurePosixPath(text).parts):
            reader.problem(entry.value, entry.path, f"{text}: a path inside the project directory (GitLab "
                           "caches nothing else)")
        elif entry.name == "apt-proxy":
            proxy = text
        else:
            directory = text
    return proxy, directory
