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
FOREIGN_PACKAGES = ("qemu-user-static", "binfmt-support", "arch-test")  # arch-test: mmdebstrap's check
# The QEMU boot test (boottest.py) per guest architecture: the system emulator and
# the UEFI firmware (SeaBIOS comes with qemu-system-x86).
BOOT_TEST_PACKAGES = {
    "amd64": ("qemu-system-x86", "ovmf"),
    "i386": ("qemu-system-x86",),
    "arm64": ("qemu-system-arm", "qemu-efi-aarch64"),
}
# The system emulator a boot test runs, checked before a build that ends in one.
QEMU_BINARIES = {"amd64": "qemu-system-x86_64", "i386": "qemu-system-i386", "arm64": "qemu-system-aarch64"}
# Not required, but the fast path: --bootstrapper auto takes mmdebstrap where it is
# installed (steps/bootstrap.py), so the installer always installs it.
FAST_PATH_PACKAGES = ("mmdebstrap",)
# Only for the installer: what the test suite and the development tools need.
DEVELOPMENT_PACKAGES = ("python3-venv", "python3-pip", "zstd", "xz-utils", "file", "procps", "initramfs-tools-core")


# --iso: assembling the image (GRUB's EFI modules come from the image's own release).
ISO_TOOLS = {"xorriso": "xorriso", "grub-mkimage": "grub-common", "mkfs.fat": "dosfstools", "mcopy": "mtools",
             "mmd": "mtools"}  # fmt: skip
ISO_FILES = {"/usr/lib/ISOLINUX/isohdpfx.bin": "isolinux", "/usr/lib/syslinux/modules/bios/menu.c32":
             "syslinux-common"}  # fmt: skip


# --image: partitions, filesystems and bootloaders (GRUB itself comes from the image).
IMAGE_TOOLS = {"parted": "parted", "blkid": "util-linux", "mkswap": "util-linux", "fstrim": "util-linux",
               "mkfs.ext4": "e2fsprogs", "mkfs.fat": "dosfstools", "mcopy": "mtools", "mmd": "mtools"}  # fmt: skip
ROOT_FS_TOOLS = {"btrfs": ("mkfs.btrfs", "btrfs-progs"), "xfs": ("mkfs.xfs", "xfsprogs")}
EXTLINUX_TOOLS = {"extlinux": "extlinux"}
EXTLINUX_FILES = {"/usr/lib/syslinux/mbr/mbr.bin": "syslinux-common"}
MBR_TOOLS = {"install-mbr": "mbr"}
QCOW2_TOOLS = {"qemu-img": "qemu-utils"}


def _image_tools(values: Mapping[str, object]) -> dict[str, str]:
    tools = dict(IMAGE_TOOLS)
    if str(values.get("roottype")) in ROOT_FS_TOOLS:
        tool, package = ROOT_FS_TOOLS[str(values.get("roottype"))]
        tools[tool] = package
    if values.get("extlinux", True) and not values.get("grub"):
        tools.update(EXTLINUX_TOOLS)
    if values.get("mbr"):
        tools.update(MBR_TOOLS)
    if values.get("convert-qcow2"):
        tools.update(QCOW2_TOOLS)
    return tools


def required_tools(values: Mapping[str, object]) -> dict[str, str]:
    tools = dict(BASE_TOOLS)
    if values.get("iso"):
        tools.update(ISO_TOOLS)
    if values.get("image"):
        tools.update(_image_tools(values))
    if values.get("boot-test") or values.get("boot-test-only"):
        from .debian import host_arch

        arch = str(values.get("arch") or host_arch())
        if arch in QEMU_BINARIES:
            tools[QEMU_BINARIES[arch]] = BOOT_TEST_PACKAGES[arch][0]
    tarball = str(values.get("tarball", ""))
    for suffix, (tool, package) in TAR_COMPRESSORS.items():
        if tarball.endswith(suffix):
            tools[tool] = package
    return tools


def required_files(values: Mapping[str, object]) -> dict[str, str]:
    files = dict(BASE_FILES)
    if values.get("iso") and values.get("arch", "") in ("", "amd64", "i386"):
        files.update(ISO_FILES)
    if values.get("image") and values.get("extlinux", True) and not values.get("grub"):
        files.update(EXTLINUX_FILES)
    return files


def boot_test_packages(arch: str) -> list[str]:
    """What booting an ``arch`` image in QEMU needs (nothing known: an empty list)."""
    return list(BOOT_TEST_PACKAGES.get(arch, ()))


def host_packages(values: Mapping[str, object] | None = None) -> list[str]:
    packages = set(BASE_FILES.values()) | set(required_tools(values or {}).values()) | set(FAST_PATH_PACKAGES)
    if values is None or values.get("iso"):
        packages |= set(ISO_TOOLS.values()) | set(ISO_FILES.values())
    if values is None:
        packages |= {package for _, package in TAR_COMPRESSORS.values()}
        for table in (IMAGE_TOOLS, EXTLINUX_TOOLS, EXTLINUX_FILES, MBR_TOOLS, QCOW2_TOOLS):
            packages |= set(table.values())
        packages |= {package for _, package in ROOT_FS_TOOLS.values()}
        packages |= set(FOREIGN_PACKAGES)
        packages |= {package for arch in BOOT_TEST_PACKAGES for package in boot_test_packages(arch)}
    return sorted(packages)


def main() -> None:
    """Print every host package (for the installer); --dev adds the development ones."""
    packages = host_packages()
    if "--dev" in sys.argv[1:]:
        packages = sorted(set(packages) | set(DEVELOPMENT_PACKAGES))
    print(" ".join(packages))


if __name__ == "__main__":
    main()
