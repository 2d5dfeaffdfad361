"""The interface every bootloader module provides, and loading the chosen one."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Protocol, cast

from ..context import Context
from ..disk import Image
from ..settings import Settings
from . import REGISTRY


class Bootloader(Protocol):
    """What each bootloader module provides, as module-level functions."""

    def packages(self, settings: Settings) -> list[str]:
        """Packages the image needs for it (installed by the packages step)."""

    def host_tools(self, settings: Settings | None) -> Mapping[str, str]:
        """Host commands (or absolute paths of host files) it uses -> their Debian package.

        ``None``: everything any build with it may need (the installer's list, hostdeps.py)."""

    def prepare(self, ctx: Context, image: Image) -> None:
        """What the kernel's hooks read, written before the kernel is installed (with the fstab)."""

    def install(self, ctx: Context, image: Image) -> None:
        """Make the image boot: in the tree, and in the image file's gap (the bootloader step)."""

    def finish(self, ctx: Context, image: Image) -> None:
        """What must be done in the finished filesystems (the image step, after they are written)."""


def load(name: str) -> Bootloader:
    return cast(Bootloader, importlib.import_module(f"{__package__}.{REGISTRY[name].module}"))
