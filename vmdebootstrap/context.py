"""The one object every step gets: the settings, the runner, the work directory, the
cleanup stack, and what earlier steps left for later ones."""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path
from typing import Literal

from .cachestore import Entry
from .disk import Image
from .publish import Outputs
from .run import CommandRunner
from .settings import Settings
from .values import Bootstrapper


@dataclasses.dataclass
class Origin:
    """Where the root tree comes from: decided as the bootstrap step starts (bootstrap.decide)."""

    bootstrapper: Bootstrapper  # mmdebstrap or debootstrap
    reason: str  # why that one (logged)
    stage: Entry | None  # this build's stage-cache entry; None: the cache is not used
    cached: bool  # the tree is that entry, mounted under an overlay: no bootstrap, no packages step
    base_cached: bool = False  # on a stage miss, the base cache has the bootstrapped tree
    # The base cache (basecache.py), once the bootstrap step ran: "hit" (copied from it), "miss"
    # (bootstrapped and saved there), "off" (no stage entry) or "unused" (the stage hit).
    base: Literal["hit", "miss", "off", "unused"] = "off"


@dataclasses.dataclass
class Context:
    settings: Settings
    runner: CommandRunner
    workdir: Path  # removed at the end; holds root/ and the build's scratch files
    stack: contextlib.ExitStack  # undo actions, run in reverse on any exit
    outputs: Outputs  # the outputs under their partial names until they are published
    origin: Origin | None = None
    image: Image | None = None  # the disk image being written (--image)
    interpreter_copy: Path | None = None  # qemu-user copied into the target for a foreign build
    epoch: int | None = None  # SOURCE_DATE_EPOCH: timestamps are clamped to it (docs/reproducible.md)
    live_files: dict[str, Path] = dataclasses.field(default_factory=dict)  # /live's files, for the ISO
    lent_dns: str = ""  # the host's resolv.conf as the build lent it to the target (chroot.use_host_dns)
    # The control paragraphs of the packages an output ships beyond the tree (downloads.py), by
    # the output's name, then the .deb's file name: its SBOM lists them (steps/manifest.py).
    shipped: dict[str, dict[str, str]] = dataclasses.field(default_factory=dict)

    @property
    def root(self) -> Path:
        return self.workdir / "root"

    @property
    def downloads(self) -> Path:
        """Where the packages the outputs take files from are unpacked (steps/finish.py)."""
        return self.workdir / "downloads"
