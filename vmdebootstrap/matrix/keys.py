"""A cell's cache keys, as vmdebootstrap itself computes them (``--cache-keys``).

``vmdebootstrap <the cell's build options> --cache-keys`` prints {"tool", "base", "stage"}:
the keys of the base and stage cache entries the build would use (null where it uses
none), under ``--cache-dir`` as ``bases/KEY/`` and ``stages/KEY/`` (cachestore.py).  The
pipeline names its GitLab caches after them, so that cells with the same base share it.
Without asking the tool (``--no-cache-keys``), the cell's slug stands for both: each cell
then keeps one cache of its own with whatever entries its builds left.
"""

from __future__ import annotations

import dataclasses
import json
import re

from . import processes
from .commands import TOOL, build_argv
from .spec import Cell


@dataclasses.dataclass(frozen=True)
class CacheKeys:
    tool: str
    base: str | None
    stage: str | None
    exact: bool  # the tool's keys: each names one entry (bases/KEY/); else the cell's own cache


class KeysUnknown(Exception):
    """vmdebootstrap did not give the keys; the message says why."""


def from_name(cell: Cell) -> CacheKeys:
    return CacheKeys("", cell.slug, cell.slug, exact=False)


def from_tool(cell: Cell, tool: str = TOOL) -> CacheKeys:
    argv = [*build_argv(cell, tool, records=False), "--cache-keys"]
    done = processes.run(argv)
    if done.returncode != 0:
        raise KeysUnknown(f"{tool} --cache-keys: {done.status}: {done.last_line or 'no message'}")
    try:
        answer = json.loads(done.stdout)
    except ValueError:
        raise KeysUnknown(f"{tool} --cache-keys: not JSON: {done.stdout[:200]!r}") from None
    if not isinstance(answer, dict) or not all(isinstance(answer.get(name), (str, type(None)))
                                               for name in ("tool", "base", "stage")):
        raise KeysUnknown(f'{tool} --cache-keys: not {{"tool", "base", "stage"}}: {done.stdout[:200]!r}')
    for name in ("base", "stage"):
        if answer[name] and not _SAFE.match(answer[name]):
            raise KeysUnknown(f"{tool} --cache-keys: {name} key {answer[name]!r} is no directory name")
    return CacheKeys(_safe(answer["tool"] or ""), answer["base"] or None, answer["stage"] or None, exact=True)


_SAFE = re.compile(r"^(?!\.\.?$)[A-Za-z0-9._-]+$")


def _safe(text: str) -> str:
    """A key as a GitLab cache key and a directory name may have it."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", text)
