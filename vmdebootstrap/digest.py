"""The SHA-256 of a file, as sha256sum prints it (the stage key, SHA256SUMS, the report).

A disk image is mostly holes (--sparse): reading them makes the kernel fill gigabytes of
zero pages only to have them hashed.  The holes are found with SEEK_DATA/SEEK_HOLE and
their zeros hashed from memory; only the data is read.  A 3 GB image took 2 to 8 s to
hash by reading it whole, most of a warm image rebuild's time (docs/performance.md).
The same file (device, inode, size, mtime) is hashed once per process: the manifest
step and --report both want the outputs' sums.
"""

from __future__ import annotations

import errno
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

CHUNK = 4 * 2**20
_ZEROS = memoryview(bytes(CHUNK))
_known: dict[tuple[int, int, int, int], str] = {}


def file_sha256(path: Path) -> str:
    with open(path, "rb", buffering=0) as stream:
        status = os.fstat(stream.fileno())
        identity = (status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns)
        if identity not in _known:
            _known[identity] = _sparse_sha256(stream.fileno(), status.st_size)
        return _known[identity]


def data_ranges(fd: int, size: int) -> Iterator[tuple[int, int]]:
    """(start, end) of each run of data of the file's first ``size`` bytes, in order."""
    offset = 0
    while offset < size:
        data = _next_data(fd, offset, size)
        if data >= size:
            break
        hole = min(os.lseek(fd, data, os.SEEK_HOLE), size)
        yield data, hole
        offset = hole


def _sparse_sha256(fd: int, size: int) -> str:
    digest = hashlib.sha256()
    buffer = memoryview(bytearray(CHUNK))  # one per file: an image has thousands of data extents
    offset = 0
    for data, hole in data_ranges(fd, size):
        _hash_zeros(digest, data - offset)
        _hash_range(digest, fd, data, hole, buffer)
        offset = hole
    _hash_zeros(digest, size - offset)
    return digest.hexdigest()


def _next_data(fd: int, offset: int, size: int) -> int:
    """Where data starts at or after ``offset``; ``size`` if only a hole is left."""
    try:
        return min(os.lseek(fd, offset, os.SEEK_DATA), size)
    except OSError as exc:
        if exc.errno == errno.ENXIO:  # a hole up to the end of the file
            return size
        raise


def _hash_zeros(digest: hashlib._Hash, count: int) -> None:
    while count > 0:
        step = min(count, CHUNK)
        digest.update(_ZEROS[:step])
        count -= step


def _hash_range(digest: hashlib._Hash, fd: int, start: int, end: int, buffer: memoryview) -> None:
    os.lseek(fd, start, os.SEEK_SET)
    while start < end:
        got = os.readv(fd, [buffer[:min(CHUNK, end - start)]])
        if got == 0:  # the file shrank while it was read: hash what there is, as a read would
            break
        digest.update(buffer[:got])
        start += got
