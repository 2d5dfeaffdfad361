"""Disk images, asserted from the image files themselves: the partition table, the
filesystems, fstab, the bootloader's files and configuration, qcow2 -- the old
tool's slow build scenarios (vmdebootstrap-features.md §5) on a current release.

Partitions are read by mounting them read-only through the test's own loop mounts
(unmounted again at once), FAT partitions with mtools.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..conftest import REPO, TOOL, loop_devices_of, our_mounts, vmdebootstrap, workdir_for

pytestmark = [pytest.mark.integration, pytest.mark.images]


def partitions(image: Path) -> list[dict[str, str]]:
    """parted's machine-readable listing: number, start, end, size (bytes), fs, name, flags."""
    out = subprocess.run(["parted", "-m", "-s", str(image), "unit", "B", "print"], capture_output=True,
                         text=True, check=True).stdout
    rows = []
    for line in out.splitlines()[2:]:
        number, start, end, _size, fs, name, flags = (line.rstrip(";").split(":") + [""] * 7)[:7]
        rows.append({"number": number, "start": start.rstrip("B"), "end": end.rstrip("B"), "fs": fs,
                     "name": name, "flags": flags})
    return rows


def label(image: Path) -> str:
    out = subprocess.run(["parted", "-m", "-s", str(image), "print"], capture_output=True, text=True,
                         check=True).stdout
    return out.splitlines()[1].split(":")[5]


def probe(image: Path, part: dict[str, str]) -> dict[str, str]:
    """blkid's view of one partition (TYPE, UUID, LABEL), read at its offset in the file."""
    out = subprocess.run(["blkid", "-p", "-O", part["start"], "-o", "export", str(image)], capture_output=True,
                         text=True, check=True).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


@contextlib.contextmanager
def mounted(image: Path, part: dict[str, str], where: Path, writable: bool = False) -> Iterator[Path]:
    where.mkdir(parents=True, exist_ok=True)
    size = int(part["end"]) - int(part["start"]) + 1
    mode = "rw" if writable else "ro"
    subprocess.run(["mount", "-o", f"{mode},loop,offset={part['start']},sizelimit={size}", str(image), str(where)],
                   check=True)
    try:
        yield where
    finally:
        unmount(where)


def unmount(where: Path) -> None:
    """Unmount, waiting out what still holds the mount: a chroot's last emulated process exits
    slowly under make check's load (umount said "busy" once, and the mount outlived the test)."""
    for _ in range(60):
        if subprocess.run(["umount", str(where)], capture_output=True, check=False).returncode == 0:
            return
        time.sleep(1)
    subprocess.run(["umount", "--lazy", str(where)], check=True)


@pytest.fixture(scope="module")
def uefi_raw(uefi_image: dict[str, object], tmp_path_factory: pytest.TempPathFactory) -> Path:
    raw = tmp_path_factory.mktemp("uefi") / "uefi.raw"
    subprocess.run(["qemu-img", "convert", "-O", "raw", str(uefi_image["image"]), str(raw)], check=True)
    return raw


def test_bios_image_layout(bios_image: dict[str, object], tmp_path: Path) -> None:
    image = bios_image["image"]
    assert isinstance(image, Path)
    assert image.stat().st_size == 3_000_000_000  # --size, exactly
    assert image.stat().st_blocks * 512 < 2 * 10**9  # --sparse: the free space is holes
    assert image.stat().st_uid == pwd.getpwnam("nobody").pw_uid  # --owner
    assert label(image) == "msdos"
    parts = partitions(image)
    assert [p["number"] for p in parts] == ["1", "2", "3"]
    assert int(parts[0]["start"]) == 4 * 2**20  # --bootoffset
    assert "boot" in parts[0]["flags"]
    assert parts[0]["fs"] == "ext3" and parts[1]["fs"] == "ext4" and parts[2]["fs"].startswith("linux-swap")
    # --bootsize 256M: decimal megabytes as in the old tool, rounded up to whole MiB.
    assert int(parts[0]["end"]) + 1 - int(parts[0]["start"]) == -(-256 * 10**6 // 2**20) * 2**20
    types = [probe(image, p) for p in parts]
    assert [t["TYPE"] for t in types] == ["ext3", "ext4", "swap"]
    boot_uuid, root_uuid, swap_uuid = (t["UUID"] for t in types)
    # The hook dd'd its "bootloader" into the image file it was given.
    with open(image, "rb") as stream:
        stream.seek(3 * 2**20)
        assert stream.read(14) == b"VMDB-HOOK-MARK"
        stream.seek(0)
        mbr = stream.read(512)
    assert mbr[510:] == b"\x55\xaa" and mbr[:440] != bytes(440)  # GRUB's boot.img

    with mounted(image, parts[1], tmp_path / "root") as root:
        fstab = (root / "etc/fstab").read_text()
        assert re.search(rf"^UUID={root_uuid}\s+/\s+ext4\s+errors=remount-ro\s+0\s+1$", fstab, re.M), fstab
        assert re.search(rf"^UUID={boot_uuid}\s+/boot\s+ext3\s+errors=remount-ro\s+0\s+2$", fstab, re.M), fstab
        assert re.search(rf"^UUID={swap_uuid}\s+none\s+swap\s+sw\s+0\s+0$", fstab, re.M), fstab
        assert (root / "etc/initramfs-tools/conf.d/resume").read_text() == f"RESUME=UUID={swap_uuid}\n"
        assert (root / "etc/hostname").read_text() == "vmdb-bios\n"
        hook_args = (root / "root/vmdb-hook-args").read_text()
        assert "image=" + str(image.parent / f".vmdebootstrap-partial-{image.name}") in hook_args
        assert list((root / "boot").iterdir()) == []  # the mount point; the files are on partition 1
        assert not (root / "etc/default/grub.d/zz-vmdebootstrap-build.cfg").exists()
        serial = (root / "etc/default/grub.d/vmdebootstrap.cfg").read_text()
        assert "console=ttyS0,115200n8" in serial and 'GRUB_TERMINAL="console serial"' in serial
    with mounted(image, parts[0], tmp_path / "boot") as boot:
        grub_cfg = (boot / "grub/grub.cfg").read_text()
        assert "### BEGIN /etc/grub.d/00_header ###" in grub_cfg
        assert f"root=UUID={root_uuid}" in grub_cfg and "/dev/loop" not in grub_cfg
        # GRUB's core image finds /boot by its UUID (update-grub cannot probe a loop device's
        # partition map inside the chroot, so grub.cfg itself relies on that root).
        assert (boot / "grub/i386-pc/load.cfg").read_text() == (
            f"search.fs_uuid {boot_uuid} root\nset prefix=($root)'/grub'\n")
        assert "vmlinuz" in grub_cfg and "linux\t/vmlinuz-" in grub_cfg
        assert (boot / "grub/i386-pc/normal.mod").exists()
        assert sorted(p.name for p in boot.glob("vmlinuz-*"))
    manifest = (image.parent / "bios.img.packages").read_text()
    assert re.search(r"^grub-pc\t\S+$", manifest, re.M) and re.search(r"^linux-image-amd64\t", manifest, re.M)
    assert loop_devices_of(image) == []
    assert our_mounts() == []


def test_uefi_image_layout(uefi_image: dict[str, object], uefi_raw: Path, tmp_path: Path) -> None:
    image = uefi_image["image"]
    assert isinstance(image, Path)
    info = subprocess.run(["qemu-img", "info", str(image)], capture_output=True, text=True, check=True).stdout
    assert "file format: qcow2" in info
    assert sorted(p.name for p in image.parent.iterdir() if "uefi" in p.name) == [
        "uefi.qcow2", "uefi.qcow2.cdx.json", "uefi.qcow2.spdx.json"]  # no .raw left
    assert label(uefi_raw) == "gpt"
    parts = partitions(uefi_raw)
    assert [p["number"] for p in parts] == ["1", "2"]
    assert "esp" in parts[0]["flags"] and int(parts[0]["end"]) + 1 - int(parts[0]["start"]) == 256 * 2**20
    esp, root = (probe(uefi_raw, p) for p in parts)
    assert esp["TYPE"] == "vfat" and root["TYPE"] == "btrfs"
    env = {**os.environ, "MTOOLS_SKIP_CHECK": "1"}
    listing = subprocess.run(["mdir", "-/", "-b", "-i", f"{uefi_raw}@@{parts[0]['start']}", "::/"],
                             capture_output=True, text=True, check=True, env=env).stdout
    for path in ("EFI/BOOT/BOOTX64.EFI", "EFI/BOOT/BOOTIA32.EFI", "EFI/debian/grubx64.efi",
                 "EFI/debian/grubia32.efi",
                 # Secure Boot: shim at both paths, signed GRUB and MokManager beside it, no fallback
                 # at the removable path (it would write the NVRAM at the first boot).
                 "EFI/debian/shimx64.efi", "EFI/debian/mmx64.efi", "EFI/debian/fbx64.efi", "EFI/debian/grub.cfg",
                 "EFI/BOOT/grubx64.efi", "EFI/BOOT/mmx64.efi"):
        assert f"::/{path}" in listing, listing
    assert "::/EFI/BOOT/fbx64.efi" not in listing
    stub = subprocess.run(["mtype", "-i", f"{uefi_raw}@@{parts[0]['start']}", "::/EFI/debian/grub.cfg"],
                          capture_output=True, text=True, check=True, env=env).stdout
    assert stub == f"search.fs_uuid {root['UUID']} root\nset prefix=($root)'/boot/grub'\nconfigfile $prefix/grub.cfg\n"
    with mounted(uefi_raw, parts[1], tmp_path / "root") as mnt:
        fstab = (mnt / "etc/fstab").read_text()
        assert re.search(rf"^UUID={root['UUID']}\s+/\s+btrfs\s+defaults\s+0\s+0$", fstab, re.M), fstab
        assert re.search(rf"^UUID={esp['UUID']}\s+/boot/efi\s+vfat\s+umask=0077,nofail\S*\s+0\s+1$", fstab, re.M), fstab
        assert list((mnt / "boot/efi").iterdir()) == []
        grub_cfg = (mnt / "boot/grub/grub.cfg").read_text()
        assert f"root=UUID={root['UUID']}" in grub_cfg and "/dev/loop" not in grub_cfg
        assert (mnt / "boot/grub/x86_64-efi/normal.mod").exists()
        assert (mnt / "boot/grub/i386-efi/normal.mod").exists()
        assert (mnt / "etc/initramfs-tools/conf.d/resume").read_text() == "RESUME=none\n"


def test_extlinux_image_layout(extlinux_image: dict[str, object], tmp_path: Path) -> None:
    image = extlinux_image["image"]
    assert isinstance(image, Path)
    assert image.stat().st_blocks * 512 > 0.95 * 2_000_000_000  # zero-filled: fully allocated
    parts = partitions(image)
    assert [p["number"] for p in parts] == ["1"] and "boot" in parts[0]["flags"]
    assert probe(image, parts[0])["TYPE"] == "ext3"
    with open(image, "rb") as stream:
        mbr = stream.read(440)
    assert mbr != bytes(440)  # install-mbr's code (--mbr)
    with mounted(image, parts[0], tmp_path / "root") as root:
        conf = (root / "boot/extlinux/extlinux.conf").read_text()
        assert (root / "boot/extlinux/ldlinux.sys").exists()
        uuid = probe(image, parts[0])["UUID"]
        assert f"root=UUID={uuid} ro" in conf and "console=ttyS0,115200n8" in conf
        assert re.search(r"^  kernel /boot/vmlinuz-\S+-amd64$", conf, re.M), conf
        assert "serial 0 115200" in conf
        assert not (root / "vmdebootstrap-zeros").exists()


def _wait_for(path: Path, proc: subprocess.Popen[str], seconds: int = 900) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(1)
    assert path.exists(), "the build never reached the fault"


MINIMAL_IMAGE = ("--distribution", "trixie", "--variant", "minbase", "--no-kernel", "--no-acpid",
                 "--no-extlinux", "--size", "1G", "--swap", "256M", "--bootsize", "128M")


def test_failing_image_build_detaches_everything(mirror: str, outdir: Path) -> None:
    image = outdir / "fail-image" / "x.img"
    workdir = workdir_for(outdir, "fail-image")
    result = vmdebootstrap(*MINIMAL_IMAGE, "--mirror", mirror, "--image", str(image), "--workdir", str(workdir),
                           env={"VMDEBOOTSTRAP_FAULT": "bootloader:fail"})
    assert result.returncode == 1 and "step 'bootloader' failed" in result.stderr
    assert not image.parent.exists()  # neither the image, nor its staging file, nor the directory it made
    assert loop_devices_of(image.parent / ".vmdebootstrap-partial-x.img") == []
    assert our_mounts() == []
    assert list(workdir.iterdir()) == []


def test_killed_image_build_leaks_no_loop_device(mirror: str, outdir: Path) -> None:
    """Killed while the one loop device of an image build is attached (xfs is filled through
    a mount): the kernel detaches it (autoclear) and the mount goes with the namespace."""
    image = outdir / "killed-image.img"
    staged = outdir / ".vmdebootstrap-partial-killed-image.img"
    ready = outdir / "ready-killed-image"
    workdir = workdir_for(outdir, "killed-image")
    proc = subprocess.Popen(
        [*TOOL, *MINIMAL_IMAGE, "--roottype", "xfs",
         "--mirror", mirror, "--image", str(image), "--workdir", str(workdir)],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True,
        env={**os.environ, "VMDEBOOTSTRAP_FAULT": "xfs-mounted:wait", "VMDEBOOTSTRAP_FAULT_READY": str(ready)},
    )
    try:
        _wait_for(ready, proc)
        [root_fs] = list(workdir.glob("vmdebootstrap-*/filesystems/root.fs"))
        assert len(loop_devices_of(root_fs)) == 1  # the xfs partition, mounted to be filled
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    deadline = time.monotonic() + 30
    while loop_devices_of(root_fs) and time.monotonic() < deadline:  # autoclear runs asynchronously
        time.sleep(0.2)
    assert loop_devices_of(root_fs) == []
    assert loop_devices_of(staged) == []
    assert our_mounts() == []
    assert not image.exists()


@pytest.mark.slow_image
def test_arm64_image_layout(arm64_image: dict[str, object], tmp_path: Path) -> None:
    raw = tmp_path / "arm64.raw"
    subprocess.run(["qemu-img", "convert", "-O", "raw", str(arm64_image["image"]), str(raw)], check=True)
    parts = partitions(raw)
    assert label(raw) == "gpt" and [p["number"] for p in parts] == ["1", "2"] and "esp" in parts[0]["flags"]
    env = {**os.environ, "MTOOLS_SKIP_CHECK": "1"}
    listing = subprocess.run(["mdir", "-/", "-b", "-i", f"{raw}@@{parts[0]['start']}", "::/"],
                             capture_output=True, text=True, check=True, env=env).stdout
    assert "::/EFI/BOOT/BOOTAA64.EFI" in listing and "::/EFI/debian/grubaa64.efi" in listing, listing
    with mounted(raw, parts[1], tmp_path / "root") as root:
        assert (root / "boot/grub/arm64-efi/normal.mod").exists()
        grub_cfg = (root / "boot/grub/grub.cfg").read_text()
        assert "console=ttyAMA0,115200n8" in grub_cfg and "/dev/loop" not in grub_cfg
        assert not list((root / "usr/bin").glob("qemu-*"))
