"""The SHA-256 of a file, as sha256sum prints it (the stage key, SHA256SUMS, the report)."""

from __future__ import annotations

import hashlib
from pathlib import Path


def file_sha256(path: Path) -> str:
    with open(path, "rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()
