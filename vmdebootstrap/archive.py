"""What the build mirror says about a release: its (In)Release file, fetched through the runner.

apt's own downloader (apt-helper) fetches it, so http, https, file:// mirrors and the
proxies apt is configured with all work as they do for the build, and the command is
logged like every other.
"""

from __future__ import annotations

import email.utils
import logging
import tempfile
from pathlib import Path

from debian.deb822 import Release

from .run import CommandRunner

log = logging.getLogger("vmdebootstrap")

APT_HELPER = "/usr/lib/apt/apt-helper"


def release_file(runner: CommandRunner, mirror: str, suite: str, directory: Path) -> bytes | None:
    """The suite's InRelease (or, from mirrors without one, Release) file; None when neither comes."""
    base = mirror.rstrip("/")
    for name in ("InRelease", "Release"):
        target = directory / f"{suite}-{name}"
        # The work directory is root's only: apt's _apt user could not write into it.
        result = runner.run([APT_HELPER, "-o", "APT::Sandbox::User=root", "-o", "Acquire::http::Timeout=20",
                             "download-file", f"{base}/dists/{suite}/{name}", str(target)], check=False, quiet=True)
        if result.returncode == 0 and target.is_file():
            return target.read_bytes()
    log.info("the mirror %s sent no Release file for %s", mirror, suite)
    return None


def release(runner: CommandRunner, mirror: str, suite: str) -> Release | None:
    """The suite's (In)Release file as the mirror serves it now, parsed; None when none comes."""
    with tempfile.TemporaryDirectory(prefix="vmdebootstrap-release-") as directory:
        text = release_file(runner, mirror, suite, Path(directory))
    return Release(text) if text is not None else None


def codename(runner: CommandRunner, mirror: str, suite: str) -> str | None:
    """The Codename the mirror's Release file gives ``suite`` (stable -> trixie); None if it gives none."""
    fields = release(runner, mirror, suite)
    found = fields.get("Codename") if fields is not None else None
    return str(found).lower() if found else None


def release_date(text: bytes) -> int | None:
    """The Date: of a Release file, in seconds since the epoch (None if it has none)."""
    found = Release(text).get("Date")
    return int(email.utils.parsedate_to_datetime(str(found)).timestamp()) if found else None
