"""Compare the outputs of two builds of the same inputs, and say what differs when they do.

``compare(first, second)`` -> "" when every file under the two directories has the same
bytes, else a report: the files that differ, and for each what differs inside it --
diffoscope's summary where Debian's diffoscope is installed, else a listing diff of the
container (squashfs, tar, ISO) or the first differing offsets (disk images).
"""

from __future__ import annotations

import difflib
import hashlib
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

DIFFOSCOPE_SECONDS = 600
LISTING_LINES = 40


def digests(directory: Path) -> dict[str, str]:
    """relative path -> sha256 of every file below ``directory``."""
    found = {}
    for path in sorted(directory.rglob("*")):
        if path.is_file() and not path.is_symlink():
            digest = hashlib.sha256()
            with open(path, "rb") as stream:
                while chunk := stream.read(4 << 20):
                    digest.update(chunk)
            found[str(path.relative_to(directory))] = digest.hexdigest()
    return found


def compare(first: Path, second: Path) -> str:
    ours, theirs = digests(first), digests(second)
    report = []
    for name in sorted(set(ours) | set(theirs)):
        if ours.get(name) == theirs.get(name):
            continue
        if name not in ours or name not in theirs:
            report.append(f"{name}: only in {first if name in ours else second}")
            continue
        report.append(f"{name}: {ours[name][:16]}... != {theirs[name][:16]}...")
        report.append(explain(first / name, second / name))
    return "\n".join(report)


def explain(one: Path, two: Path) -> str:
    if shutil.which("diffoscope"):
        result = subprocess.run(["diffoscope", "--no-progress", "--text", "-", "--max-text-report-size", "20000",
                                 str(one), str(two)], capture_output=True, text=True, timeout=DIFFOSCOPE_SECONDS,
                                check=False)
        return result.stdout[-20000:]
    listing = _listing_command(one)
    if listing is None:
        return _first_offsets(one, two)
    left, right = (_run(listing(path)) for path in (one, two))
    diff = list(difflib.unified_diff(left, right, str(one), str(two), lineterm="", n=0))
    return "\n".join(diff[:LISTING_LINES]) if diff else "the listings agree; " + _first_offsets(one, two)


def _listing_command(path: Path) -> Callable[[Path], list[str]] | None:
    name = path.name
    if name.endswith(".squashfs"):
        return lambda p: ["unsquashfs", "-lln", "-d", "", str(p)]
    if ".tar" in name:
        return lambda p: ["tar", "--list", "--verbose", "--full-time", "--numeric-owner", "-f", str(p)]
    if name.endswith(".iso"):
        return lambda p: ["xorriso", "-indev", str(p), "-find", "/", "-exec", "lsdl"]
    return None


def _run(argv: list[str]) -> list[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=False).stdout.splitlines()


def _first_offsets(one: Path, two: Path, count: int = 10) -> str:
    result = subprocess.run(["cmp", "-l", str(one), str(two)], capture_output=True, text=True, check=False)
    lines = result.stdout.splitlines()
    offsets = [int(line.split()[0]) - 1 for line in lines[:count]]
    return f"{len(lines)} bytes differ; first at offsets {offsets} (diffoscope, if installed, says more)"
