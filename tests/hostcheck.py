"""Looking for the build host in what a build made (issue 22): every file of an unpacked
tree, the data of a disk image or ISO, and what the initramfs images inside hold, searched
for byte strings (the canary's resolv.conf and host name, the work directory's path).

Files are read, not grepped: a disk image is one "line" of gigabytes to grep, and only its
data ranges (SEEK_DATA) are read, so a sparse 3 GB image costs what it holds.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from vmdebootstrap.digest import data_ranges

CHUNK = 16 * 2**20


def found_in_file(path: Path, needles: Iterable[bytes]) -> set[bytes]:
    """The needles that occur in ``path``'s data (a needle split by a hole is no text)."""
    wanted = list(needles)
    overlap = max(map(len, wanted)) - 1
    seen: set[bytes] = set()
    with open(path, "rb") as stream:
        fd = stream.fileno()
        for start, end in data_ranges(fd, os.fstat(fd).st_size):
            tail = b""
            position = start
            while position < end:
                chunk = os.pread(fd, min(CHUNK, end - position), position)
                if not chunk:
                    break
                window = tail + chunk
                seen.update(needle for needle in wanted if needle in window)
                tail = window[-overlap:] if overlap else b""
                position += len(chunk)
    return seen


def regular_files(tree: Path) -> Iterator[Path]:
    for directory, _dirs, names in os.walk(tree):
        for name in names:
            path = Path(directory, name)
            if path.is_file() and not path.is_symlink():
                yield path


def leaks_in_tree(tree: Path, needles: Iterable[bytes]) -> dict[str, set[bytes]]:
    """Path (relative to ``tree``) -> the needles in it, for every regular file below ``tree``
    and every file inside the initramfs images there (as ``INITRD!path``)."""
    wanted = list(needles)
    leaks: dict[str, set[bytes]] = {}
    for path in regular_files(tree):
        hits = found_in_file(path, wanted)
        if hits:
            leaks[str(path.relative_to(tree))] = hits
        if path.name.startswith("initrd.img"):
            for inner, inner_hits in leaks_in_initramfs(path, wanted).items():
                leaks[f"{path.relative_to(tree)}!{inner}"] = inner_hits
    return leaks


def leaks_in_initramfs(initrd: Path, needles: Iterable[bytes]) -> dict[str, set[bytes]]:
    """The files of an initramfs (all its cpio archives, decompressed) that hold a needle."""
    with tempfile.TemporaryDirectory(prefix="vmdb-initrd-") as scratch:
        subprocess.run(["unmkinitramfs", str(initrd), scratch], check=True, capture_output=True)
        found = {str(path.relative_to(scratch)): hits for path in regular_files(Path(scratch))
                 if (hits := found_in_file(path, needles))}
        assert any(regular_files(Path(scratch))), f"{initrd} unpacked to nothing"
        return found


def needles_of(*texts: str) -> list[bytes]:
    return [text.encode() for text in texts if text]
