"""Boards and u-boot (issue 25), asserted from the image files: the partition table and flags
u-boot and the Pi's firmware read, u-boot-menu's extlinux.conf and its configuration, the
board's u-boot bytes in the gap, the Raspberry Pi's firmware partition, the SBOM."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import subprocess
from pathlib import Path

import pytest

from .. import reprocheck, sbomcheck
from ..conftest import ARM64_SEED, PASSWORD, SLOW_GUEST_APPEND, our_mounts, vmdebootstrap, workdir_for
from .test_images import label, mounted, partitions, probe, unmount

pytestmark = pytest.mark.integration
MiB = 1024 * 1024


def fat_files(image: Path, start: str) -> dict[str, bytes]:
    """Every file of the FAT filesystem at byte ``start`` (mtools: nothing mounted), by path."""
    env = {**os.environ, "MTOOLS_SKIP_CHECK": "1"}
    listing = subprocess.run(["mdir", "-/", "-b", "-i", f"{image}@@{start}", "::/"], capture_output=True,
                             text=True, check=True, env=env).stdout.split()
    files = {}
    for name in listing:
        if name.endswith("/"):
            continue
        files[name.removeprefix("::/")] = subprocess.run(["mtype", "-i", f"{image}@@{start}", name],
                                                        capture_output=True, check=True, env=env).stdout
    return files


def extlinux_entries(text: str) -> list[tuple[str, str]]:
    return re.findall(r"^\s*(linux|initrd|append)\s+(.+)$", text, re.MULTILINE)


def check_u_boot_root(root: Path, image: Path, parts: list[dict[str, str]], console: str) -> str:
    """What every u-boot image's root holds: u-boot-menu configured and its file current."""
    config = (root / "boot/extlinux/extlinux.conf").read_text()
    root_uuid = probe(image, parts[-1])["UUID"]
    entries = extlinux_entries(config)
    appended = SLOW_GUEST_APPEND[1]
    assert ("append", f"root=UUID={root_uuid} ro quiet console=tty0 console={console} {appended}") in entries, config
    for kind, path in entries:
        if kind in ("linux", "initrd"):
            assert (root / path.lstrip("/")).is_file(), (path, config)
    assert "/dev/loop" not in config and "/dev/mapper" not in config
    defaults = (root / "etc/default/u-boot").read_text()
    assert f'U_BOOT_ROOT="root=UUID={root_uuid}"' in defaults
    assert (root / "etc/kernel/postinst.d/zz-u-boot-menu").is_file()  # kernel upgrades keep the file current
    return config


def check_sbom_lists(image: Path, *packages: str) -> None:
    listed = {entry.split(":")[0] for entry in sbomcheck.packages_in_spdx(Path(f"{image}.spdx.json"))}
    assert set(packages) <= listed, set(packages) - listed


@pytest.mark.boards_arm64
def test_arm64_u_boot_image_layout(uboot_arm64_image: dict[str, object], tmp_path: Path) -> None:
    image = uboot_arm64_image["image"]
    assert isinstance(image, Path)
    assert label(image) == "msdos"
    parts = partitions(image)
    assert [p["number"] for p in parts] == ["1"] and "boot" in parts[0]["flags"]  # u-boot scans the bootable one
    with mounted(image, parts[0], tmp_path / "root") as root:
        config = check_u_boot_root(root, image, parts, "ttyAMA0,115200n8")
        assert "linux /boot/vmlinuz-" in config and "fdtdir /usr/lib/linux-image-" in config
        assert not list((root / "usr/bin").glob("qemu-*"))
    check_sbom_lists(image, "u-boot-menu", "linux-image-arm64")
    assert our_mounts() == []


@pytest.mark.boards_armhf_riscv64
def test_beaglebone_image_layout_and_payload(beaglebone_image: dict[str, object], tmp_path: Path) -> None:
    """The old tool's armhf layout (a FAT /boot with lba) and the board's u-boot: the bytes at
    128 KiB and 384 KiB are u-boot-omap's MLO and u-boot.img, as its own md5sums say."""
    image = beaglebone_image["image"]
    assert isinstance(image, Path)
    parts = partitions(image)
    assert label(image) == "msdos" and int(parts[0]["start"]) == 4 * MiB
    assert {"boot", "lba"} <= set(parts[0]["flags"].replace(" ", "").split(","))
    assert probe(image, parts[0])["TYPE"] == "vfat" and probe(image, parts[1])["TYPE"] == "ext4"
    boot = fat_files(image, parts[0]["start"])
    config = boot["extlinux/extlinux.conf"].decode()
    for kind, path in extlinux_entries(config):
        if kind in ("linux", "initrd"):
            assert path.lstrip("/") in boot, (path, sorted(boot))  # paths of the /boot filesystem itself
    assert "console=ttyAMA0,115200n8" in config and "fdtdir" not in config  # no device trees synced onto FAT
    raw = image.read_bytes()[:4 * MiB]
    with mounted(image, parts[1], tmp_path / "root") as root:
        [md5sums] = (root / "var/lib/dpkg/info").glob("u-boot-omap*.md5sums")  # :armhf (Multi-Arch: same)
        sums = dict(reversed(line.split(maxsplit=1)) for line in md5sums.read_text().splitlines())
        fstab = (root / "etc/fstab").read_text()
        # An armhf system throughout: 32-bit ARM programs (usr-merged: /bin is usr/bin).
        ls = (root / "usr/bin/ls").read_bytes()
        assert ls[:4] == b"\x7fELF" and ls[4] == 1 and int.from_bytes(ls[18:20], "little") == 0x28
        for name, offset in (("MLO", 128 * 1024), ("u-boot.img", 384 * 1024)):
            path = f"usr/lib/u-boot/am335x_evm/{name}"
            shipped = (root / path).read_bytes()
            written = raw[offset:offset + len(shipped)]
            assert written == shipped, name
            assert hashlib.md5(written).hexdigest() == sums[path], name
    assert re.search(r"^UUID=\S+\t/boot\tvfat\t", fstab, re.MULTILINE), fstab
    check_sbom_lists(image, "u-boot-omap", "u-boot-menu")
    # The board's SD card and eMMC controllers and QEMU's virtio disk in the initrd: built
    # on ext4, a 32-bit armhf dracut-install under qemu-user found none of them (EOVERFLOW).
    [initrd] = [name for name in boot if name.startswith("initrd.img-")]
    (tmp_path / "initrd").write_bytes(boot[initrd])
    listed = subprocess.run(["lsinitramfs", str(tmp_path / "initrd")], capture_output=True, text=True,
                            check=True).stdout
    for module in ("mmc/host/sdhci-omap", "mmc/host/omap_hsmmc", "block/virtio_blk"):
        assert re.search(rf"kernel/drivers/{module}\.ko", listed), module


@pytest.mark.boards_armhf_riscv64
def test_riscv64_image_layout(riscv64_image: dict[str, object], tmp_path: Path) -> None:
    image = riscv64_image["image"]
    assert isinstance(image, Path)
    parts = partitions(image)
    assert label(image) == "msdos" and "boot" in parts[0]["flags"]
    with mounted(image, parts[0], tmp_path / "root") as root:
        config = check_u_boot_root(root, image, parts, "ttyS0,115200n8")
        assert "linux /boot/vmlinux-" in config  # riscv64's kernel is vmlinux
    check_sbom_lists(image, "u-boot-menu", "linux-image-riscv64")


@pytest.mark.boards_raspi
def test_raspberry_pi_image_layout(raspi_image: dict[str, object], tmp_path: Path) -> None:
    """raspi.debian.net's layout; what raspi-firmware's hook wrote on the firmware partition."""
    image = raspi_image["image"]
    assert isinstance(image, Path)
    parts = partitions(image)
    assert label(image) == "msdos"
    assert (int(parts[0]["start"]), int(parts[0]["end"]) + 1) == (4 * MiB, 512 * MiB)
    assert (probe(image, parts[0])["LABEL"], probe(image, parts[1])["LABEL"]) == ("RASPIFIRM", "RASPIROOT")
    assert probe(image, parts[0])["TYPE"] == "vfat"
    firmware = fat_files(image, parts[0]["start"])
    config = firmware["config.txt"].decode()
    kernel = re.search(r"^kernel=(\S+)$", config, re.MULTILINE)
    initramfs = re.search(r"^initramfs (\S+)", config, re.MULTILINE)
    assert kernel and initramfs and "arm_64bit=1" in config and "enable_uart=1" in config
    assert {kernel[1], initramfs[1], "bootcode.bin", "start.elf", "fixup.dat", "bcm2837-rpi-3-b.dtb",
            "bcm2711-rpi-4-b.dtb"} <= set(firmware)
    cmdline = firmware["cmdline.txt"].decode()
    assert "console=tty0 console=ttyS1,115200 root=LABEL=RASPIROOT rw" in cmdline and "cma=64M" in cmdline
    assert cmdline.split()[-1] == SLOW_GUEST_APPEND[1]  # --kernel-append, through raspi-extra-cmdline
    with mounted(image, parts[1], tmp_path / "root") as root:
        fstab = (root / "etc/fstab").read_text()
        assert "LABEL=RASPIROOT\t/\text4" in fstab and "LABEL=RASPIFIRM\t/boot/firmware\tvfat" in fstab
        assert 'ROOTPART="LABEL=RASPIROOT"' in (root / "etc/default/raspi-firmware").read_text()
        assert not list((root / "boot/firmware").iterdir())  # the mount point: its files are on the FAT
        assert (root / "boot" / kernel[1]).read_bytes() == firmware[kernel[1]]
        sources = "".join(p.read_text() for p in (root / "etc/apt").rglob("*.sources")) + \
            "".join(p.read_text() for p in (root / "etc/apt").rglob("*.list"))
        assert "non-free-firmware" in sources
    check_sbom_lists(image, "raspi-firmware", "firmware-brcm80211", "linux-image-arm64")
    assert our_mounts() == []


def rerun_kernel_hook(image: Path, tmp_path: Path, boot_part: int | None) -> tuple[str, str]:
    """(extlinux.conf as built, as u-boot-menu's kernel hook writes it again in a copy of the
    image, /boot a filesystem of its own as in the booted system): what a later kernel upgrade
    leaves.  The hook runs under qemu-user, through the host's binfmt handlers.  A FAT /boot
    is copied into a tmpfs with mtools (this machine's kernel has no vfat module)."""
    copy = tmp_path / "copy.img"
    subprocess.run(["cp", "--sparse=always", str(image), str(copy)], check=True)
    parts = partitions(copy)
    root_part = parts[-1] if boot_part is None else parts[1]
    with contextlib.ExitStack() as stack:
        root = stack.enter_context(mounted(copy, root_part, tmp_path / "root", writable=True))
        if boot_part is not None:
            subprocess.run(["mount", "-t", "tmpfs", "boot", str(root / "boot")], check=True)
            stack.callback(unmount, root / "boot")
            for name, content in fat_files(copy, parts[boot_part - 1]["start"]).items():
                (root / "boot" / name).parent.mkdir(parents=True, exist_ok=True)
                (root / "boot" / name).write_bytes(content)
        built = (root / "boot/extlinux/extlinux.conf").read_text()
        (root / "boot/extlinux/extlinux.conf").unlink()
        version = sorted(p.name.split("-", 1)[1] for p in (root / "boot").glob("vmlinu[xz]-*"))[-1]
        subprocess.run(["chroot", str(root), "/etc/kernel/postinst.d/zz-u-boot-menu", version], check=True,
                       capture_output=True)
        again = (root / "boot/extlinux/extlinux.conf").read_text()
    copy.unlink()
    return built, again


@pytest.mark.boards_arm64
def test_a_kernel_upgrade_keeps_the_arm64_extlinux_conf(uboot_arm64_image: dict[str, object], tmp_path: Path) -> None:
    image = uboot_arm64_image["image"]
    assert isinstance(image, Path)
    built, again = rerun_kernel_hook(image, tmp_path, None)
    assert again == built
    assert our_mounts() == []


@pytest.mark.boards_armhf_riscv64
def test_a_kernel_upgrade_keeps_the_extlinux_conf_on_a_fat_boot(beaglebone_image: dict[str, object],
                                                                tmp_path: Path) -> None:
    """On the booted system /boot is its own (FAT) filesystem: u-boot-menu's hook writes the same
    file the build wrote, its paths relative to that filesystem."""
    image = beaglebone_image["image"]
    assert isinstance(image, Path)
    built, again = rerun_kernel_hook(image, tmp_path, 1)
    assert again == built and "linux /vmlinuz-" in built
    assert our_mounts() == []


@pytest.mark.boards_arm64
def test_the_u_boot_image_is_reproducible(uboot_arm64_image: dict[str, object], mirror: str, outdir: Path) -> None:
    """The same inputs, another time zone and umask: the same bytes (the second build starts
    from the first's stage in the cache; the bootloader and image steps run again)."""
    image = uboot_arm64_image["image"]
    assert isinstance(image, Path)
    again = outdir / "again" / image.name
    result = vmdebootstrap("--config", "examples/uboot-arm64.conf", "--no-boot-test", "--distribution", "trixie",
                           "--image", str(again), "--mirror", mirror, "--user", f"user/{PASSWORD}",
                           "--serial-console", "--workdir", str(workdir_for(outdir, "uboot-arm64-again")),
                           "--log", str(outdir / "uboot-arm64-again.log"), *ARM64_SEED, *SLOW_GUEST_APPEND,
                           env={"TZ": "Asia/Tokyo"}, umask=0o077, timeout=3600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "from the stage cache" in (outdir / "uboot-arm64-again.log").read_text()
    for suffix in ("", ".spdx.json", ".cdx.json"):
        first, second = Path(f"{image}{suffix}"), Path(f"{again}{suffix}")
        assert first.read_bytes() == second.read_bytes(), reprocheck.explain(first, second)
    print(f"reproducible: {image.name} {reprocheck.digests(again.parent)[image.name]}")
