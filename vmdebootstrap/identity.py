"""Identifiers that would be random, derived from a seed instead: the same settings give the
same filesystem UUIDs, partition GUIDs and volume ids, so that an image can be rebuilt bit
for bit (docs/reproducible.md), and a warm rebuild's tree from the stage cache matches
the image it goes into.

The seed is ``--seed``, else a hash of what makes an image this image: its file name, the
release, the architecture and the disk layout.  Two images of different names never share
a root filesystem UUID; the same image built twice does.
"""

from __future__ import annotations

import hashlib
import uuid


def derived_seed(*parts: object) -> str:
    """A seed from the values that make an output what it is."""
    return hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()[:32]


def _digest(seed: str, what: str) -> bytes:
    return hashlib.sha256(f"{seed}\x1f{what}".encode()).digest()


def uuid_for(seed: str, what: str) -> str:
    """A random-looking (version 4) UUID that only ``seed`` and ``what`` decide."""
    return str(uuid.UUID(bytes=_digest(seed, what)[:16], version=4))


def hex_for(seed: str, what: str, digits: int) -> str:
    """``digits`` hexadecimal digits (a FAT volume id: 8; an MBR disk identifier: 8)."""
    return _digest(seed, what).hex()[:digits]


def bytes_for(seed: str, what: str, count: int) -> bytes:
    """``count`` (at most 32) bytes that only ``seed`` and ``what`` decide (a password's salt)."""
    return _digest(seed, what)[:count]
