"""digest.file_sha256: the bytes' SHA-256, holes and all, read once per file."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from vmdebootstrap import digest


def write_sparse(path: Path, size: int, pieces: dict[int, bytes]) -> bytes:
    """A file of ``size`` bytes, holes except ``pieces``; returns its whole content."""
    content = bytearray(size)
    with open(path, "wb") as stream:
        stream.truncate(size)
        for offset, data in pieces.items():
            stream.seek(offset)
            stream.write(data)
            content[offset:offset + len(data)] = data
    return bytes(content)


def test_a_sparse_file_hashes_as_its_bytes(tmp_path: Path) -> None:
    cases = {
        "holes around data": (3 * digest.CHUNK + 123, {5 * 4096 + 7: b"x" * 10_000, 2 * digest.CHUNK + 1: b"end"}),
        "data at both ends": (digest.CHUNK + 4096 * 3, {0: b"MBR\x55\xaa", digest.CHUNK + 4096 * 3 - 2: b"zz"}),
        "only a hole": (2 * digest.CHUNK + 1, {}),
        "empty": (0, {}),
        "dense": (100_000, {0: os.urandom(100_000)}),
    }
    for name, (size, pieces) in cases.items():
        path = tmp_path / name
        content = write_sparse(path, size, pieces)
        assert digest.file_sha256(path) == hashlib.sha256(content).hexdigest(), name


def test_a_file_is_hashed_again_once_it_changed(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"one")
    assert digest.file_sha256(path) == hashlib.sha256(b"one").hexdigest()
    path.write_bytes(b"two, longer")
    assert digest.file_sha256(path) == hashlib.sha256(b"two, longer").hexdigest()
