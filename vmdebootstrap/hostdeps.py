"""The host tools vmdebootstrap runs, and the Debian packages that provide them.

This table is the single list that both the installer (``make install`` runs
``python3 -m vmdebootstrap.hostdeps``) and the tool's own preflight check read.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping

# Needed by every build.
BASE_TOOLS = {
    "debootstrap": "debootstrap",
    "mksquashfs": "squashfs-tools",
    "unsquashfs": "squashfs-tools",
    "tar": "tar",
    "chroot": "coreutils",
    "mount": "mount",
    "unshare": "util-linux",
    "gpgv": "gpgv",
}
# Files rather than commands.
BASE_FILES = {
    "/usr/share/keyrings/debian-archive-keyring.gpg": "debian-archive-keyring",
    "/usr/share/distro-info/debian.csv": "distro-info-data",
}
# Compressors tar picks by suffix.
TAR_COMPRESSORS = {".gz": ("gzip", "gzip"), ".tgz": ("gzip", "gzip"), ".xz": ("xz", "xz-utils"),
                   ".zst": ("zstd", "zstd"), ".bz2": ("bzip2", "bzip2")}  # fmt: skip
# Foreign --arch builds: the registered qemu-user binfmt handlers (probed by binfmt.py).
FOREIGN_PACKAGES = ("qemu-user-static", "binfmt-support")
# Only for the installer: what the test suite and the development tools need.
DEVELOPMENT_PACKAGES = ("python3-venv", "python3-pip", "zstd", "xz-utils", "file", "procps", "initramfs-tools-core")


def required_tools(values: Mapping[str, object]) -> dict[str, str]:
    tools = dict(BASE_TOOLS)
    tarball = str(values.get("tarball", ""))
    for suffix, (tool, package) in TAR_COMPRESSORS.items():
        if tarball.endswith(suffix):
            tools[tool] = package
    return tools


def host_packages(values: Mapping[str, object] | None = None) -> list[str]:
    packages = set(BASE_FILES.values()) | set(required_tools(values or {}).values())
    if values is None:
        packages |= {package for _, package in TAR_COMPRESSORS.values()}
        packages |= set(FOREIGN_PACKAGES)
    return sorted(packages)


def main() -> None:
    """Print every host package (for the installer); --dev adds the development ones."""
    packages = host_packages()
    if "--dev" in sys.argv[1:]:
        packages = sorted(set(packages) | set(DEVELOPMENT_PACKAGES))
    print(" ".join(packages))


if __name__ == "__main__":
    main()
