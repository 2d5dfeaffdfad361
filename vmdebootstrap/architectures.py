"""One record per Debian architecture: everything the build and the boot test know of it.

A new architecture is one ``Architecture`` entry in ``ARCHITECTURES``; settings, the
steps, the ISO, the bootloaders, the boot test and the host-package list all read it
from here.  Plain data: no behaviour beyond small look-ups.
"""

from __future__ import annotations

import dataclasses
import platform
from pathlib import Path


@dataclasses.dataclass(frozen=True)
class Efi:
    """UEFI on this architecture: GRUB's names and the removable-media path."""

    grub_platform: str  # grub-mkimage -O, and the module directory below /usr/lib/grub
    grub_package: str  # installed into a UEFI disk image
    grub_modules_package: str  # the modules alone, downloaded (not installed) for a live ISO
    removable_name: str  # EFI/BOOT/<this>: what firmware with empty variables starts
    grub_name: str  # EFI/debian/<this>: Debian's own path
    suffix: str = ""  # x64, aa64: in the names of shim, MokManager and the signed GRUB images
    signed: bool = False  # Debian signs shim (with Microsoft's signature), GRUB and the kernel for it

    # The files of shim-signed, shim-helpers-*-signed and grub-efi-*-signed, and their names on
    # an ESP: the ISO (outputs/iso.py) and UEFI disk images (bootloaders/grub_efi.py) take them here.
    @property
    def shim(self) -> str:
        return f"shim{self.suffix}.efi"  # signed by Microsoft

    @property
    def mokmanager(self) -> str:
        return f"mm{self.suffix}.efi"

    @property
    def fallback(self) -> str:
        return f"fb{self.suffix}.efi"  # writes a boot entry from BOOT<SUFFIX>.CSV into the NVRAM

    @property
    def fallback_csv(self) -> str:
        return f"BOOT{self.suffix.upper()}.CSV"

    @property
    def cd_grub(self) -> str:
        return f"gcd{self.suffix}.efi"  # the GRUB image Debian signs for CDs: its prefix is (its device)/boot/grub

    def signed_path(self, name: str) -> str:
        """Where the signed packages put ``name`` (shim, mokmanager, fallback, cd_grub, grub_name) in a root."""
        return f"{self.signed_grub_dir}/{name}.signed" if name in (self.cd_grub, self.grub_name) \
            else f"/usr/lib/shim/{name}.signed"

    @property
    def signed_packages(self) -> tuple[str, ...]:
        """shim signed by Microsoft, MokManager and fallback, GRUB signed by Debian."""
        arch = self.grub_package.removeprefix("grub-efi-")
        return "shim-signed", f"shim-helpers-{arch}-signed", f"{self.grub_package}-signed"

    @property
    def signed_grub_dir(self) -> str:
        return f"/usr/lib/grub/{self.grub_platform}-signed"


@dataclasses.dataclass(frozen=True)
class Firmware:
    """One firmware a boot test can start this architecture's guests with."""

    name: str  # bios, uefi, uefi-secure, u-boot, raspi3b: --boot-firmware NAME
    family: str  # what it boots: "bios", "uefi", "u-boot", "raspi" (bootloaders.Entry.firmware)
    code: Path | None  # None: QEMU loads the kernel itself (raspi3b: no GPU firmware to run)
    variables: Path | None  # the template copied for each boot (pflash); None: it keeps none
    package: str
    secure: bool = False  # Secure Boot on, with Microsoft's keys enrolled: it refuses unsigned loaders
    smm: bool = False  # its code needs QEMU's System Management Mode and a secure flash
    # OpenSBI on riscv64 starts what QEMU loads as its kernel: u-boot's S-mode build.
    payload: Path | None = None
    payload_package: str = ""
    machine: str = ""  # a machine of its own instead of the emulator's (raspi3b)

    @property
    def packages(self) -> tuple[str, ...]:
        return (self.package, self.payload_package) if self.payload_package else (self.package,)


@dataclasses.dataclass(frozen=True)
class Emulator:
    """QEMU system emulation of this architecture, for the boot test."""

    binary: str
    package: str
    machine: str
    firmwares: tuple[Firmware, ...]
    # The CPU QEMU emulates where KVM cannot be used (TCG); with KVM the host's.  A choice for
    # the boot test's speed only, never for the image (docs/performance.md, "Boot").
    tcg_cpu: str = "max"


@dataclasses.dataclass(frozen=True)
class Architecture:
    name: str  # Debian's name
    kernel_flavour: str  # linux-image-<flavour>
    machines: tuple[str, ...] = ()  # what platform.machine() says on such a host
    qemu_user: str = ""  # the qemu-user binary and binfmt handler suffix (qemu-<this>)
    native_on: tuple[str, ...] = ()  # host architectures that run its programs without emulation
    serial_console: str = "ttyS0"  # the first serial port as its kernel names it
    pc_bios: bool = False  # PC BIOS: ISOLINUX on the ISO, GRUB i386-pc and extlinux on disks
    efi: Efi | None = None  # None: no UEFI (no --use-uefi, no live ISO)
    efi_companion: str = ""  # the architecture of the 32-bit UEFI firmware some such machines have
    emulator: Emulator | None = None  # None: no boot test
    kernel_image: str = "vmlinuz"  # /boot/<this>-<version>: the kernel's file name
    ports: bool = False  # built from a debian-ports mirror (its unstable), not the release's archive
    # 32: its programs read directories through 32-bit offsets; under qemu-user on ext4 they
    # fail (settings.root_in_memory).
    bits: int = 64
    # The CPU qemu-user emulates in a foreign build (QEMU_CPU); "": QEMU's default.  Speed only:
    # the programs in the target are the same whichever CPU runs them (docs/performance.md).
    user_cpu: str = ""

    def firmware(self, name: str) -> Firmware | None:
        if self.emulator is None:
            return None
        return next((f for f in self.emulator.firmwares if f.name == name), None)

    @property
    def firmware_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.emulator.firmwares) if self.emulator else ()


_SEABIOS = Firmware("bios", "bios", Path("/usr/share/seabios/bios-256k.bin"), None, "seabios")
_OVMF = Firmware("uefi", "uefi", Path("/usr/share/OVMF/OVMF_CODE_4M.fd"), Path("/usr/share/OVMF/OVMF_VARS_4M.fd"),
                 "ovmf")
_AAVMF = Firmware("uefi", "uefi", Path("/usr/share/AAVMF/AAVMF_CODE.fd"), Path("/usr/share/AAVMF/AAVMF_VARS.fd"),
                  "qemu-efi-aarch64")
# Secure Boot enforced, Microsoft's keys enrolled (ovmf's and qemu-efi-aarch64's README.Debian):
# OVMF's secboot code needs SMM; AAVMF enforces through its enrolled variables alone.
_OVMF_SECURE = Firmware("uefi-secure", "uefi", Path("/usr/share/OVMF/OVMF_CODE_4M.secboot.fd"),
                        Path("/usr/share/OVMF/OVMF_VARS_4M.ms.fd"), "ovmf", secure=True, smm=True)
_AAVMF_SECURE = Firmware("uefi-secure", "uefi", Path("/usr/share/AAVMF/AAVMF_CODE.ms.fd"),
                         Path("/usr/share/AAVMF/AAVMF_VARS.ms.fd"), "qemu-efi-aarch64", secure=True)
# Debian's u-boot for QEMU's virt machines (u-boot-qemu's README.Debian: "-bios u-boot.bin"):
# its distro boot reads /boot/extlinux/extlinux.conf from the partition marked bootable.
_UBOOT = Path("/usr/lib/u-boot")
_UBOOT_ARM64 = Firmware("u-boot", "u-boot", _UBOOT / "qemu_arm64/u-boot.bin", None, "u-boot-qemu")
_UBOOT_ARM = Firmware("u-boot", "u-boot", _UBOOT / "qemu_arm/u-boot.bin", None, "u-boot-qemu")
# riscv64: OpenSBI in M-mode starts u-boot's S-mode build, which QEMU loads as the "kernel"
# (opensbi's docs/platform/qemu_virt.md).
_UBOOT_RISCV64 = Firmware("u-boot", "u-boot", Path("/usr/lib/riscv64-linux-gnu/opensbi/generic/fw_jump.bin"), None,
                          "opensbi", payload=_UBOOT / "qemu-riscv64_smode/u-boot.bin", payload_package="u-boot-qemu")
# A Raspberry Pi 3 B: QEMU cannot run the Pi's GPU firmware, so it loads the kernel, initrd
# and device tree the firmware would (boot/raspi.py reads them from the image's firmware
# partition).  The Pi 4's image has the Pi 3's device tree too; QEMU 7.2 has no raspi4b.
_RASPI3B = Firmware("raspi3b", "raspi", None, None, "", machine="raspi3b")

ARCHITECTURES: dict[str, Architecture] = {a.name: a for a in (
    Architecture(
        "amd64", "amd64", ("x86_64",), "x86_64", serial_console="ttyS0", pc_bios=True,
        efi=Efi("x86_64-efi", "grub-efi-amd64", "grub-efi-amd64-bin", "BOOTX64.EFI", "grubx64.efi", "x64",
                signed=True),
        efi_companion="i386",  # --uefi-ia32
        # qemu64 (x86-64 baseline, Debian's amd64 baseline too): glibc picks its SSE2 string
        # functions, which TCG runs far faster than the AVX2/AVX-512 ones "max" offers.  The
        # trixie live ISO logged in after 48 s instead of 77 s (BIOS), 53 s instead of 75 s
        # (UEFI); Nehalem (x86-64-v2) took 59 s.
        emulator=Emulator("qemu-system-x86_64", "qemu-system-x86", "q35", (_SEABIOS, _OVMF, _OVMF_SECURE),
                          tcg_cpu="qemu64"),
    ),
    # i386 kernels: 486 up to wheezy, 586 for jessie (#786767): see releases.py.
    Architecture(
        "i386", "686-pae", ("i686", "i386"), "i386", native_on=("amd64",), pc_bios=True, bits=32,
        efi=Efi("i386-efi", "grub-efi-ia32", "grub-efi-ia32-bin", "BOOTIA32.EFI", "grubia32.efi", "ia32"),
        emulator=Emulator("qemu-system-i386", "qemu-system-x86", "q35", (_SEABIOS,)),
    ),
    Architecture(
        "arm64", "arm64", ("aarch64",), "aarch64", serial_console="ttyAMA0",  # QEMU virt's PL011
        efi=Efi("arm64-efi", "grub-efi-arm64", "grub-efi-arm64-bin", "BOOTAA64.EFI", "grubaa64.efi", "aa64",
                signed=True),
        # No pointer authentication: with "max" TCG computes the QARMA cipher on every signed
        # return of the kernel and of trixie's programs.  The trixie arm64 live ISO logged in
        # after 141 s with "max", 68 s with "max,pauth-impdef=on" (QEMU's own cheap hash); the
        # u-boot image after 86 s with that and 77 s as a Cortex-A72 (ARMv8.0, Debian's baseline).
        emulator=Emulator("qemu-system-aarch64", "qemu-system-arm", "virt",
                          (_AAVMF, _AAVMF_SECURE, _UBOOT_ARM64, _RASPI3B), tcg_cpu="cortex-a72"),
        # qemu-user's default CPU, "max", has pointer authentication with the QARMA cipher, and
        # trixie's arm64 programs sign every return (dpkg-buildflags' branch protection): perl
        # ran 47.6 s there and 0.9 s as a Cortex-A72 (ARMv8.0, Debian's baseline, no PAC).
        user_cpu="cortex-a72",
    ),
    # The multiplatform kernel (#776975).  It has no LPAE: QEMU's virt machine must keep its
    # PCI controller below 4 GiB for it (highmem=off, QEMU's docs/system/arm/virt.rst).
    Architecture("armhf", "armmp", ("armv7l",), "arm", native_on=("arm64",), serial_console="ttyAMA0", bits=32,
                 emulator=Emulator("qemu-system-arm", "qemu-system-arm", "virt,highmem=off", (_UBOOT_ARM,),
                                   tcg_cpu="cortex-a15")),
    Architecture("armel", "marvell", (), "arm", native_on=("arm64",), bits=32),
    Architecture("ppc64el", "powerpc64le", ("ppc64le",), "ppc64le"),  # #809457
    Architecture("s390x", "s390x", ("s390x",), "s390x"),
    Architecture("mips64el", "5kc-malta", ("mips64",), "mips64el"),
    Architecture("mipsel", "4kc-malta", (), "mipsel", bits=32),
    # A release architecture from trixie on (QEMU's virt machine has a 16550: ttyS0).
    Architecture("riscv64", "riscv64", ("riscv64",), "riscv64", kernel_image="vmlinux",
                 emulator=Emulator("qemu-system-riscv64", "qemu-system-misc", "virt", (_UBOOT_RISCV64,),
                                   tcg_cpu="rv64")),
    Architecture("loong64", "loong64", ("loongarch64",), "loongarch64"),  # a release architecture from forky
    # Architectures of debian-ports: known names, built from a ports --mirror.
    Architecture("powerpc", "powerpc", ports=True, bits=32),
    Architecture("ppc64", "ppc64", ports=True),
    Architecture("sparc64", "sparc64", ports=True),
    Architecture("alpha", "alpha", ports=True),
)}


def host() -> Architecture:
    """The build host's architecture."""
    return for_machine(platform.machine())


def for_machine(machine: str) -> Architecture:
    """The architecture of a machine as uname names it (an unknown one gets a bare record)."""
    for arch in ARCHITECTURES.values():
        if machine in arch.machines:
            return arch
    return ARCHITECTURES.get(machine, Architecture(machine, machine))


def runs_natively(arch: Architecture, host_arch: Architecture | None = None) -> bool:
    on = host_arch or host()
    return arch.name == on.name or on.name in arch.native_on
