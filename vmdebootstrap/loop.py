"""Loop devices that cannot outlive the build.

One loop device per partition, over its byte range of the image file (offset and
size limit).  That needs neither kpartx and device-mapper nor the kernel's
partition-table parsers: some build hosts' kernels (minimal VMs, this project's CI)
have none of them, and the result is the same everywhere.

Each device is configured with one LOOP_CONFIGURE ioctl on a file descriptor this
process holds open, with AUTOCLEAR set.  The kernel detaches an autoclear device
when its last user goes away: the build's descriptor and its mounts.  Both die with
the build's namespace even on SIGKILL, so no loop device leaks (leaked devices fill
up CI hosts: freedom-maker PR 137).

On the normal path ``detach()`` clears the device explicitly and waits until the
kernel reports it free, so a following ``qemu-img convert`` (#831029) reads a file
nobody writes any more.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import struct
import time
from pathlib import Path

from .errors import BuildError

log = logging.getLogger("vmdebootstrap")

# <linux/loop.h>
LOOP_SET_FD = 0x4C00
LOOP_CLR_FD = 0x4C01
LOOP_SET_STATUS64 = 0x4C04
LOOP_GET_STATUS64 = 0x4C05
LOOP_CONFIGURE = 0x4C0A
LOOP_CTL_GET_FREE = 0x4C82
LO_FLAGS_AUTOCLEAR = 4
LO_NAME_SIZE = 64
# struct loop_info64: five u64, four u32, two names, a key and two u64.
INFO64 = struct.Struct(f"=5Q4I{LO_NAME_SIZE}s{LO_NAME_SIZE}s32s2Q")
# struct loop_config: fd, block_size, loop_info64, eight reserved u64.
CONFIG = struct.Struct(f"=2I{INFO64.size}s8Q")


def loop_config(backing_fd: int, name: str, offset: int = 0, size: int = 0,
                flags: int = LO_FLAGS_AUTOCLEAR) -> bytes:
    info = INFO64.pack(0, 0, 0, offset, size, 0, 0, 0, flags, name.encode()[: LO_NAME_SIZE - 1], b"", b"",
                       0, 0)
    return CONFIG.pack(backing_fd, 0, info, *([0] * 8))


class LoopDevice:
    """``size`` bytes of ``image`` from ``offset`` on (0: to the end) as /dev/loopN."""

    def __init__(self, image: Path, offset: int = 0, size: int = 0, attempts: int = 20) -> None:
        self.image, self.offset, self.size = image, offset, size
        self.fd = -1
        backing = os.open(image, os.O_RDWR | os.O_CLOEXEC)
        try:
            self._attach(backing, attempts)
        finally:
            os.close(backing)
        log.info("attached bytes %d+%d of %s to %s (autoclear)", offset, size, image, self.path)

    def _attach(self, backing: int, attempts: int) -> None:
        control = os.open("/dev/loop-control", os.O_RDWR | os.O_CLOEXEC)
        try:
            for _ in range(attempts):
                number = fcntl.ioctl(control, LOOP_CTL_GET_FREE)
                path = f"/dev/loop{number}"
                fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
                try:
                    fcntl.ioctl(fd, LOOP_CONFIGURE, loop_config(backing, os.fspath(self.image), self.offset,
                                                                self.size))
                except OSError as exc:
                    os.close(fd)
                    if exc.errno == errno.EBUSY:  # another process took it between the two calls
                        continue
                    raise BuildError(f"cannot attach {self.image} to {path}: {exc.strerror}") from exc
                self.fd, self.number, self.path = fd, number, path
                return
        finally:
            os.close(control)
        raise BuildError(f"cannot attach {self.image}: every free loop device was taken by someone else")

    @property
    def name(self) -> str:
        return f"loop{self.number}"

    def detach(self, timeout: float = 30.0) -> None:
        """Detach now (nothing may be mounted from it any more) and wait until it is free."""
        if self.fd < 0:
            return
        try:
            fcntl.ioctl(self.fd, LOOP_CLR_FD)
        except OSError as exc:
            # ENXIO: already detached.  EBUSY cannot happen with autoclear set: the
            # kernel then detaches at the last close instead.
            if exc.errno != errno.ENXIO:
                log.warning("%s: LOOP_CLR_FD: %s; relying on autoclear", self.path, exc.strerror)
        os.close(self.fd)
        self.fd = -1
        deadline = time.monotonic() + timeout
        while self.attached_to_image():
            if time.monotonic() > deadline:
                raise BuildError(f"{self.path} is still attached to {self.image} after {timeout:.0f} s")
            time.sleep(0.05)
        log.info("detached %s", self.path)

    def attached_to_image(self) -> bool:
        try:
            backing = Path(f"/sys/block/{self.name}/loop/backing_file").read_text().strip()
        except OSError:
            return False
        return backing == os.fspath(self.image) or backing.startswith(os.fspath(self.image) + " ")
