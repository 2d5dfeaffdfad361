"""Output kinds: one module each, registered in one place -- the option table.

Every option with ``output`` set (options.py) names an output kind, made by the module
of the same name here; its table entry holds the facts validation reads (how it boots).
Each module provides what ``OutputKind`` lists (tests/unit/test_structure.py checks every
one); the recipe runs the step of every kind the build wants, after the tree is finished,
in the order of the option table.  A disk image is the one kind with more steps than its own: its
partitions exist before the bootstrap and its bootloader is installed from inside the
target (recipe.py names those steps).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol, cast

from ..context import Context
from ..options import OPTIONS
from ..settings import Settings


class OutputKind(Protocol):
    """What each output module provides (module-level names)."""

    STEP: str  # the name of the step that writes it

    def wanted(self, settings: Settings) -> bool:
        """Whether this build writes it (the squashfs is wanted by an ISO too)."""

    def note(self, ctx: Context) -> str:
        """Shown after the step's name."""

    def stem(self, final: Path) -> Path:
        """What the files beside the output are named after: STEM.packages (--pkglist),
        STEM.spdx.json and STEM.cdx.json (the SBOM), written by the manifest step."""

    def packages(self, settings: Settings) -> list[str]:
        """Packages the image needs for it (steps/packages.py)."""

    def downloads(self, settings: Settings) -> list[str]:
        """Packages of the target's release it takes files from, not installed (steps/finish.py)."""

    def host_tools(self, settings: Settings | None) -> Mapping[str, str]:
        """Host commands (or absolute paths of host files) it uses -> their Debian package.

        ``None``: everything any build with it may need (the installer's list, hostdeps.py)."""

    def run(self, ctx: Context) -> None:
        """Its step: write it (under its partial name; the recipe publishes all outputs at the end)."""


def kinds() -> list[OutputKind]:
    return [cast(OutputKind, importlib.import_module(f"{__name__}.{option.name}"))
            for option in OPTIONS if option.output]


def by_name() -> dict[str, OutputKind]:
    """Each kind by its option's name (the keys of Settings.outputs)."""
    return {option.name: cast(OutputKind, importlib.import_module(f"{__name__}.{option.name}"))
            for option in OPTIONS if option.output}


def wanted(settings: Settings) -> list[OutputKind]:
    return [kind for kind in kinds() if kind.wanted(settings)]
