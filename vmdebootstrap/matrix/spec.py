"""The matrix as the loader leaves it: plain, frozen records.

A ``Cell`` is one build: a release, an architecture, one entry of the config axis (a
``Variant``: a vmdebootstrap config file and/or options, with a name) and, when the matrix
has an output axis, one output kind.  Its ``slug`` names its directory (``out/<slug>/``),
its ``label`` its jobs (``build trixie arm64 live``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path

from ..options import BY_NAME, default_of

# The axes a matrix may have, in the order they name a cell.
AXES = ("release", "arch", "config", "output")
REQUIRED_AXES = ("release", "arch", "config")
OUT = "out"  # every cell writes below out/<slug>/
DEFAULT_CACHE_DIR = ".cache/vmdebootstrap"


@dataclasses.dataclass(frozen=True)
class Variant:
    """One value of the config axis."""

    name: str
    file: str  # the config file as the command names it (relative to the current directory); "" for none
    options: Mapping[str, object]  # given with it in the matrix
    config: Mapping[str, object]  # what the config file sets (config.read_config_file), by option name
    line: int


@dataclasses.dataclass(frozen=True)
class Cell:
    release: str
    arch: str
    variant: Variant
    output: str  # an output kind from the output axis; "" without one
    options: Mapping[str, object]  # the matrix's options for it: defaults < its variant's < overrides
    reproducible: bool = False  # built twice (a rebuild job) and the outputs compared

    @property
    def name(self) -> str:
        return self.variant.name

    @property
    def values(self) -> tuple[str, ...]:
        return (self.release, self.arch, self.name, *((self.output,) if self.output else ()))

    def value(self, axis: str) -> str:
        return {"release": self.release, "arch": self.arch, "config": self.name, "output": self.output}[axis]

    @property
    def label(self) -> str:
        return " ".join(self.values)

    @property
    def slug(self) -> str:
        return "-".join(self.values)

    @property
    def directory(self) -> str:
        return f"{OUT}/{self.slug}"

    def setting(self, name: str) -> object:
        """What the build will use for option ``name``: the matrix's, else the config file's, else
        the option's default (a default config file in /etc is not read: --no-default-configs)."""
        if name in self.options:
            return self.options[name]
        if name in self.variant.config:
            return self.variant.config[name]
        return default_of(BY_NAME[name])

    @property
    def boots(self) -> bool:
        return bool(self.setting("boot-test"))


@dataclasses.dataclass(frozen=True)
class Matrix:
    path: Path
    cells: tuple[Cell, ...]
    build_tags: tuple[str, ...] = ()
    boot_tags: tuple[str, ...] = ()
    apt_proxy: str = ""
    cache_dir: str = DEFAULT_CACHE_DIR
