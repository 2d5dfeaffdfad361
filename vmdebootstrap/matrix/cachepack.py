"""The base and stage cache entries as tar files, for GitLab's caches.

An entry (CACHE/bases/KEY/, CACHE/stages/KEY/: cachestore.py) is a root filesystem: files
of other owners than root, setuid programs, file capabilities (ping), ACLs.  GitLab keeps a
cache as a zip archive that restores none of that faithfully, so the pipeline caches each
entry as one tar file, CACHE/packed/KIND-KEY.tar, made by GNU tar with numeric owners,
ACLs and every extended attribute: ``save`` after a build packs the complete entries (those
with their info.json) not packed yet; ``restore`` before it unpacks those the directory
lacks.  The build then finds its entries where it looks for them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from . import processes

PACKED = "packed"
KINDS = {"base": "bases", "stage": "stages"}  # the key's kind -> its directory in the cache
INFO = "info.json"  # written last, when the entry is whole (cachestore.publish)
_TAR = ["--numeric-owner", "--acls", "--xattrs", "--xattrs-include=*"]


def packed(cache: str, kind: str, key: str) -> str:
    """The tar file of one entry, as the pipeline names it."""
    return f"{cache}/{PACKED}/{kind}-{key}.tar"


def restore(cache: Path) -> list[str]:
    """Unpack every packed entry the cache directory lacks; what happened, a line each."""
    said = []
    for tar in sorted((cache / PACKED).glob("*.tar")):
        kind, _, key = tar.stem.partition("-")
        if kind not in KINDS or not key:
            continue
        if (cache / KINDS[kind] / key / INFO).is_file():
            continue
        said.append(f"{kind} {key}: " + _unpack(tar, cache / KINDS[kind], key))
    return said


def _unpack(tar: Path, directory: Path, key: str) -> str:
    """Unpack beside the entries and rename into place: tar writes info.json before the tree
    is whole, and a killed job must not leave what looks like a complete entry (the next
    build's cachestore.remove_partial deletes a ``.new-*`` left behind)."""
    staging = directory / f".new-restore-{key}"
    staging.mkdir(parents=True, exist_ok=True)
    done = processes.run(["tar", "--extract", "--file", os.fspath(tar), "--directory", os.fspath(staging),
                          "--preserve-permissions", *_TAR], timeout=3600)
    if done.returncode != 0 or not (staging / key / INFO).is_file():
        processes.run(["rm", "-rf", "--one-file-system", os.fspath(staging)])
        return f"not restored: tar: {done.status}: {done.last_line or 'no ' + INFO}"
    os.rename(staging / key, directory / key)
    staging.rmdir()
    return "restored"


def _entries(cache: Path, keys: dict[str, Iterable[str]] | None) -> list[tuple[str, str]]:
    """(kind, key) of the complete entries to save: those named, else every one."""
    found: list[tuple[str, str]] = []
    for kind, directory in KINDS.items():
        names = keys.get(kind, ()) if keys is not None else sorted(
            path.name for path in (cache / directory).glob("*") if not path.name.startswith("."))
        found.extend((kind, name) for name in names if (cache / directory / name / INFO).is_file())
    return found


def save(cache: Path, keys: dict[str, Iterable[str]] | None = None) -> list[str]:
    """Pack the complete entries named by ``keys`` (kind -> keys; None: all) not packed yet."""
    said = []
    for kind, key in _entries(cache, keys):
        tar = Path(packed(os.fspath(cache), kind, key))
        if tar.exists():
            continue
        tar.parent.mkdir(parents=True, exist_ok=True)
        partial = tar.with_name(f".{tar.name}.partial")
        done = processes.run(["tar", "--create", "--file", os.fspath(partial), "--directory",
                              os.fspath(cache / KINDS[kind]), *_TAR, key], timeout=3600)
        if done.returncode == 0:
            os.replace(partial, tar)
            said.append(f"{kind} {key}: saved")
        else:
            partial.unlink(missing_ok=True)
            said.append(f"{kind} {key}: not saved: tar: {done.status}: {done.last_line}")
    return said
