"""No bootloader (--bootloader none, the old --no-extlinux): a --customize hook may write
a board's own (or use --board: boards.py)."""

from __future__ import annotations

from collections.abc import Mapping

from ..context import Context
from ..disk import Image
from ..settings import Settings


def packages(_settings: Settings) -> list[str]:
    return []


def host_tools(_settings: Settings | None) -> Mapping[str, str]:
    return {}


def prepare(_ctx: Context, _image: Image) -> None:
    return None  # its kernel hooks need nothing of it


def install(_ctx: Context, _image: Image) -> None:
    return None


def finish(_ctx: Context, _image: Image) -> None:
    return None  # everything is in the tree and the gap already
