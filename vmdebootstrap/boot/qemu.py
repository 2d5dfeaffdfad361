"""The emulated machine a boot test runs: QEMU's command line for one image, architecture
and firmware, and whether KVM can be used.

KVM is used only when it really works: /dev/kvm can be opened, the CPU has the
virtualisation flag and the guest has the host's architecture.  A /dev/kvm without
vmx/svm (nested setups) hangs guests, so the flag matters.  Otherwise QEMU emulates
(TCG), where a Debian live ISO takes a minute or more to reach the login prompt.

Disk images are opened with ``-snapshot``, so the test never writes to them; UEFI
variables live in a copy of the firmware's template.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import socket
from pathlib import Path
from typing import Literal

from .. import architectures
from ..architectures import Architecture, Emulator, Firmware
from ..errors import BuildError
from . import raspi

QCOW2_MAGIC = b"QFI\xfb"


class BootTestError(BuildError):
    """The boot test cannot start (missing emulator or firmware, unsupported combination)."""


@dataclasses.dataclass(frozen=True)
class BootTarget:
    image: Path
    kind: Literal["iso", "disk"]  # boots as a CD-ROM, or as a hard disk (options.Option.boots)
    arch: Architecture
    firmware: str  # a firmware of the architecture's emulator: bios, uefi
    display: bool = False  # a graphics card, and a monitor socket to take a screenshot through


def monitor_socket(target: BootTarget, workdir: Path) -> Path:
    """QEMU's human monitor, for the screenshot (display boots only)."""
    return workdir / f"monitor-{target.arch.name}-{target.firmware}.sock"


def screendump(socket_path: Path, image: Path, fmt: str = "png", timeout: float = 30.0) -> None:
    """QEMU writes the screen into ``image`` (png or ppm): HMP's screendump over the monitor socket."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as monitor:
        monitor.settimeout(timeout)
        monitor.connect(os.fspath(socket_path))
        _until_prompt(monitor)
        monitor.sendall(f"screendump {image} -f {fmt}\n".encode())
        _until_prompt(monitor)


def _until_prompt(monitor: socket.socket) -> str:
    seen = b""
    while not seen.rstrip().endswith(b"(qemu)"):
        chunk = monitor.recv(4096)
        if not chunk:
            raise BootTestError("QEMU's monitor closed before its prompt")
        seen += chunk
    return seen.decode(errors="replace")



def kvm_usable(arch: Architecture, cpuinfo: str | None = None, dev: str = "/dev/kvm") -> bool:
    """Whether a guest of ``arch`` can run under KVM on this host.

    ``cpuinfo`` is the text of /proc/cpuinfo (read when None).  PC hosts need vmx
    (Intel) or svm (AMD) among the flags; other hosts have no such flag and trust
    the device.  A guest runs under KVM where the host runs its programs natively
    (an i386 guest on an amd64 host).
    """
    host = architectures.host()
    if not architectures.runs_natively(arch, host):
        return False
    try:
        fd = os.open(dev, os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return False
    os.close(fd)
    if not host.pc_bios:
        return True
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
        except OSError:
            return False
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags" and {"vmx", "svm"} & set(value.split()):
            return True
    return False


def firmware_of(arch: Architecture, firmware: str) -> Firmware:
    """The firmware record, its files checked: code, variables template and payload."""
    entry = arch.firmware(firmware)
    if entry is None:
        known = ", ".join(f"{a.name}/{f}" for a in architectures.ARCHITECTURES.values() for f in a.firmware_names)
        raise BootTestError(f"no {firmware} firmware for {arch.name} guests (the boot test knows {known})")
    for path, package in ((entry.code, entry.package), (entry.variables, entry.package),
                          (entry.payload, entry.payload_package)):
        if path is not None and not path.is_file():
            raise BootTestError(f"{firmware} firmware for {arch.name} missing: {path} (apt-get install {package})")
    return entry


def image_format(image: Path) -> str:
    """raw or qcow2, from the file's magic (never guessed by QEMU: raw probing is unsafe)."""
    with image.open("rb") as stream:
        return "qcow2" if stream.read(4) == QCOW2_MAGIC else "raw"


def firmware_log(target: BootTarget, workdir: Path) -> Path:
    """Where SeaBIOS's debug output goes (bios only)."""
    return workdir / f"firmware-{target.arch.name}-{target.firmware}.log"


def _file(path: Path) -> str:
    # QEMU's option syntax doubles commas inside values.
    return os.fspath(path.absolute()).replace(",", ",,")


def qemu_command(target: BootTarget, workdir: Path, memory_mb: int = 2048, kvm: bool = False,
                 *, qemu: str | None = None, single_thread: bool = False) -> list[str]:
    """The QEMU argv; copies the UEFI variables template into ``workdir``.

    ``qemu`` replaces the emulator binary (tests use a fake); ``single_thread`` runs
    all emulated CPUs on one host thread (see ``STALE_BREAKPOINT``).
    """
    emulator = emulator_of(target.arch)
    if not target.image.is_file():
        raise BootTestError(f"no image to boot: {target.image}")
    firmware = firmware_of(target.arch, target.firmware)
    if firmware.family == "raspi":
        if target.kind != "disk" or image_format(target.image) != "raw":
            raise BootTestError(f"{target.firmware} boots a Raspberry Pi's raw disk image, not {target.image}")
        return raspi.qemu_command(target.image, workdir, qemu or emulator.binary, firmware.machine)
    code, template, smm = firmware.code, firmware.variables, firmware.smm
    pc = target.arch.pc_bios
    argv = [qemu or emulator.binary, "-machine", (firmware.machine or emulator.machine) + (",smm=on" if smm else "")]
    tcg = "tcg,thread=single" if single_thread else "tcg"
    argv += ["-accel", "kvm", "-cpu", "host"] if kvm else ["-accel", tcg, "-cpu", emulator.tcg_cpu]
    argv += ["-m", str(memory_mb), "-smp", "2", "-no-reboot"]
    # The serial port is our stdin/stdout; signal=off so that no byte we type (^C) stops QEMU.
    # With a display: no window either, but a graphics card (the PC's default VGA; virtio-gpu
    # on the others) whose screen the monitor dumps.
    monitor = f"unix:{_file(monitor_socket(target, workdir))},server=on,wait=off" if target.display else "none"
    argv += ["-display", "none", "-monitor", monitor, "-chardev", "stdio,id=con,signal=off", "-serial", "chardev:con"]
    if target.display and not pc:
        argv += ["-device", "virtio-gpu-pci"]
    if target.firmware == "bios":
        # SeaBIOS says what it tried on its debug port, not on the serial port.
        argv += ["-chardev", f"file,id=firmware,path={_file(firmware_log(target, workdir))}",
                 "-device", "isa-debugcon,iobase=0x402,chardev=firmware"]
    if firmware.family == "u-boot" and code is not None:
        argv += ["-bios", _file(code)]
        if firmware.payload is not None:
            argv += ["-kernel", _file(firmware.payload)]
    if template is not None and code is not None:
        variables = workdir / f"efivars-{target.arch.name}.fd"
        shutil.copyfile(template, variables)
        argv += ["-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={_file(code)}",
                 "-drive", f"if=pflash,format=raw,unit=1,file={_file(variables)}"]
    if smm:  # only SMM code may write the flash that holds the Secure Boot variables
        argv += ["-global", "driver=cfi.pflash01,property=secure,value=on"]
    if target.kind == "iso" and pc:
        argv += ["-cdrom", os.fspath(target.image.absolute())]
    elif target.kind == "iso":
        # The virt machine has no IDE: the CD hangs off virtio-scsi.
        argv += ["-drive", f"if=none,id=cd,media=cdrom,readonly=on,format=raw,file={_file(target.image)}",
                 "-device", "virtio-scsi-pci", "-device", "scsi-cd,drive=cd"]
    else:
        argv += ["-drive", f"if=virtio,format={image_format(target.image)},file={_file(target.image)}", "-snapshot"]
    # No network card: the checks do not need one, and with one the UEFI firmware
    # spends minutes on PXE and HTTP boot before admitting that the image does not boot.
    argv += ["-nic", "none", "-device", "virtio-rng-pci"]
    return argv


def emulator_of(arch: Architecture) -> Emulator:
    if arch.emulator is None:
        supported = [a.name for a in architectures.ARCHITECTURES.values() if a.emulator]
        raise BootTestError(f"the boot test does not support {arch.name} guests (only {', '.join(supported)})")
    return arch.emulator
