"""Where the hook helper library and the shipped examples live."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def helpers_path() -> Path:
    """The shell library hooks source: ``. "$VMDEBOOTSTRAP_HELPERS"``."""
    return _PACKAGE / "data" / "customise.lib"


def examples_dir() -> Path:
    return _PACKAGE.parent / "examples"
