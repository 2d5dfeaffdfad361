"""One record per board (--board NAME): what an image for it needs beyond its architecture.

A board sets the architecture, the bootloader, the serial console, the partition table
and where its first partition may start, the packages it needs, and the files its ROM
reads raw from the medium ("payloads": u-boot's SPL and u-boot proper, written from the
image's own package into the gap before the first partition: bootloaders/u_boot.py).
Whatever the command line says besides wins where it can (a larger --bootoffset, more
packages); what contradicts the board is refused (settings.py).  A new board is one
record here.  Plain data: the offsets are the packages' README.Debian's and their
u-boot-install-* scripts'.
"""

from __future__ import annotations

import dataclasses

KiB = 1024
MiB = 1024 * KiB


@dataclasses.dataclass(frozen=True)
class Payload:
    """A file of the board's u-boot package, written raw at ``offset`` bytes into the medium."""

    path: str  # in the image: /usr/lib/u-boot/<target>/<file>
    offset: int


@dataclasses.dataclass(frozen=True)
class Board:
    name: str  # --board NAME
    arch: str  # architectures.ARCHITECTURES
    summary: str  # --help, the man page
    bootloader: str  # bootloaders.REGISTRY: u-boot, or raspi (the Pi's GPU firmware reads config.txt)
    console: str  # the serial console as the kernel's console= names it
    packages: tuple[str, ...] = ()  # installed in the image: the payloads' package among them
    payloads: tuple[Payload, ...] = ()
    first_partition: int = MiB  # partition 1 starts here at the earliest: the payloads end before it
    gpt: bool = True  # False: a payload lies where a GPT's entries would (sunxi's SPL at 8 KiB)
    components: tuple[str, ...] = ()  # archive components it needs beyond main
    # A Raspberry Pi: the FAT partition its firmware reads (/boot/firmware) first, and the
    # filesystems labelled and mounted by label, as https://raspi.debian.net's images are.
    firmware_partition: int = 0
    labels: tuple[tuple[str, str], ...] = ()  # (partition role, filesystem label)
    firmware_settings: tuple[tuple[str, str], ...] = ()  # /etc/default/raspi-firmware beyond ours


def _raspi(name: str, summary: str, firmware_settings: tuple[tuple[str, str], ...] = ()) -> Board:
    """https://raspi.debian.net's layout: the firmware's FAT from 4 MiB to 512 MiB, the root after it;
    raspi-firmware from non-free-firmware, and the Wi-Fi's firmware as the official images have it."""
    return Board(name, "arm64", summary, "raspi", "ttyS1,115200", packages=("raspi-firmware", "firmware-brcm80211"),
                 components=("non-free-firmware",), first_partition=4 * MiB, firmware_partition=508 * MiB,
                 labels=(("firmware", "RASPIFIRM"), ("root", "RASPIROOT")), firmware_settings=firmware_settings)


def _sunxi(name: str, arch: str, summary: str, target: str) -> Board:
    """Allwinner: the SPL and u-boot in one file at 8 KiB, over where a GPT's entries would be
    (u-boot-install-sunxi refuses GPT); the first partition at 1 MiB."""
    return Board(name, arch, summary + ", u-boot from u-boot-sunxi", "u-boot", "ttyS0,115200n8",
                 packages=("u-boot-sunxi",),
                 payloads=(Payload(f"/usr/lib/u-boot/{target}/u-boot-sunxi-with-spl.bin", 8 * KiB),), gpt=False)


BOARDS: dict[str, Board] = {b.name: b for b in (
    # TI AM335x: the ROM reads MLO raw at 128 KiB, MLO reads u-boot.img at 384 KiB; am335x_evm
    # serves the BeagleBone, Black, Green and PocketBeagle, and its u-boot.img runs past 1 MiB
    # (u-boot-omap's README.Debian: the first partition at 4 MiB).
    Board("beaglebone-black", "armhf", "BeagleBone Black (TI AM335x), u-boot from u-boot-omap", "u-boot",
          "ttyS0,115200n8", packages=("u-boot-omap",),
          payloads=(Payload("/usr/lib/u-boot/am335x_evm/MLO", 128 * KiB),
                    Payload("/usr/lib/u-boot/am335x_evm/u-boot.img", 384 * KiB)),
          first_partition=4 * MiB),
    _sunxi("cubietruck", "armhf", "Cubietruck (Allwinner A20)", "Cubietruck"),
    _sunxi("orangepi-pc-plus", "armhf", "Orange Pi PC Plus (Allwinner H3)", "orangepi_pc_plus"),
    _sunxi("pine64-plus", "arm64", "Pine64+ (Allwinner A64)", "pine64_plus"),
    # Rockchip: idbloader at sector 64, u-boot.itb at sector 16384 (u-boot-install-rockchip);
    # the layout's "trust" area ends at 16 MiB.  Its UART runs at 1.5 Mbaud.
    Board("rock64", "arm64", "Pine64 ROCK64 (Rockchip RK3328), u-boot from u-boot-rockchip", "u-boot",
          "ttyS2,1500000n8", packages=("u-boot-rockchip",),
          payloads=(Payload("/usr/lib/u-boot/rock64-rk3328/idbloader.img", 32 * KiB),
                    Payload("/usr/lib/u-boot/rock64-rk3328/u-boot.itb", 8 * MiB)),
          first_partition=16 * MiB),
    _raspi("raspi-3", "Raspberry Pi 3 (and 2 v1.2, Zero 2 W), 64-bit, started by raspi-firmware"),
    # The Pi 4 must not get the others' 64 MiB CMA pool (raspi-firmware's
    # /etc/default/raspi-firmware: it "might render your system unbootable").
    _raspi("raspi-4", "Raspberry Pi 4 and 400, 64-bit, started by raspi-firmware", (("CMA", "0"),)),
)}
NAMES = tuple(BOARDS)
