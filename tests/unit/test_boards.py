"""Boards and u-boot (issue 25): the board records, what --board sets and refuses, the
layouts, u-boot-menu's configuration, the payloads' placement and the Raspberry Pi's boot."""

from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path

import pytest

from vmdebootstrap import architectures, bootloaders, disk
from vmdebootstrap.boards import BOARDS, KiB, MiB
from vmdebootstrap.boot import raspi as raspi_boot
from vmdebootstrap.bootloaders import raspi, u_boot
from vmdebootstrap.errors import BuildError

from .conftest import MakeContext, MakeSettings, Vmd

GPT_END = disk.GPT_RESERVED_SECTORS * disk.SECTOR


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_every_board_record_is_consistent(name: str) -> None:
    board = BOARDS[name]
    assert board.name == name and board.arch in architectures.ARCHITECTURES
    assert board.bootloader in bootloaders.REGISTRY and board.packages
    assert board.console.startswith("tty") and "," in board.console
    assert board.first_partition % MiB == 0 and board.first_partition >= MiB
    placed = sorted(board.payloads, key=lambda p: p.offset)
    for payload in placed:
        assert payload.path.startswith("/usr/lib/u-boot/")
        assert payload.offset >= (GPT_END if board.gpt else disk.SECTOR)  # never over the partition table
        assert payload.offset < board.first_partition
    # A payload below 17 KiB is over a GPT's entries: such a board is msdos only.
    assert board.gpt == all(p.offset >= GPT_END for p in placed)
    if board.bootloader == "raspi":
        assert board.firmware_partition and dict(board.labels).keys() == {"firmware", "root"}
        assert "non-free-firmware" in board.components


def test_the_payload_offsets_are_the_packages_own() -> None:
    """u-boot-omap's README.Debian (seek=256, seek=768), u-boot-install-sunxi (bs=8K seek=1),
    u-boot-install-rockchip (sectors 64 and 16384)."""
    assert [(p.path.rsplit("/", 1)[1], p.offset) for p in BOARDS["beaglebone-black"].payloads] == [
        ("MLO", 256 * 512), ("u-boot.img", 768 * 512)]
    assert [p.offset for p in BOARDS["cubietruck"].payloads] == [8 * KiB]
    assert [p.offset for p in BOARDS["rock64"].payloads] == [64 * 512, 16384 * 512]
    assert BOARDS["beaglebone-black"].first_partition == 4 * MiB and BOARDS["rock64"].first_partition == 16 * MiB


def test_a_board_sets_what_the_command_line_left_alone(make_settings: MakeSettings, out: Path) -> None:
    pi = make_settings("--image", str(out / "pi.img"), "--board", "raspi-4", "--serial-console")
    assert pi.arch.name == "arm64" and pi.board is BOARDS["raspi-4"]
    assert pi.disk is not None and pi.disk.bootloader == "raspi" and pi.disk.offset == 4 * MiB
    assert pi.disk.firmware_size == 508 * MiB and pi.disk.label_of("root") == "RASPIROOT"
    assert pi.mirrors.components == ("main", "non-free-firmware")
    assert (pi.serial_port, pi.serial_tty) == ("ttyS1,115200", "ttyS1")
    assert pi.boot_test is None
    bone = make_settings("--image", str(out / "b.img"), "--board", "beaglebone-black", "--bootoffset", "8MiB",
                         "--component", "main", "--component", "contrib")
    assert bone.disk is not None and bone.disk.bootloader == "u-boot" and bone.disk.offset == 8 * MiB  # the larger
    assert bone.mirrors.components == ("main", "contrib")
    assert bone.serial_port == "ttyS0,115200n8"
    virt = make_settings("--image", str(out / "b.img"), "--board", "beaglebone-black", "--serial-port", "ttyAMA0")
    assert virt.serial_port == "ttyAMA0,115200n8"  # QEMU's virt machine for the boot test


@pytest.mark.parametrize(("args", "message"), [
    (["--board", "raspi-3", "--arch", "armhf"], "--board raspi-3 is an arm64 board: drop --arch armhf"),
    (["--board", "cubietruck", "--grub"], "--board cubietruck boots with u-boot: drop --bootloader"),
    (["--board", "cubietruck", "--part-type", "gpt"], "--part-type gpt: cubietruck's u-boot lies where a GPT"),
    (["--board", "raspi-3", "--bootsize", "100M"], "--bootsize: raspi-3's kernel is on its firmware partition"),
    (["--board", "odroid"], "--board odroid: use one of"),
    (["--arch", "arm64", "--bootloader", "raspi"], "--bootloader raspi is a Raspberry Pi's: give --board raspi-3"),
    (["--arch", "arm64", "--roottype", "xfs"], "u-boot cannot boot from xfs"),
    (["--arch", "armhf", "--bootloader", "extlinux"], "--bootloader extlinux boots through a PC BIOS: armhf has none"),
    (["--arch", "arm64", "--serial-port", "/dev/ttyS0"], "--serial-port /dev/ttyS0: not a serial port"),
    (["--arch", "arm64", "--boot-test", "--user", "u/p", "--serial-console", "--boot-firmware", "uefi"],
     "--boot-firmware uefi: arm64 boots with u-boot"),
])  # fmt: skip
def test_what_contradicts_a_board_or_u_boot_is_refused(vmd: Vmd, out: Path, args: list[str], message: str) -> None:
    status, _, err = vmd("--image", str(out / "x.img"), "--distribution", "trixie", *args, "--dry-run")
    assert status == 2 and message in err, err
    assert list(out.iterdir()) == []


def test_a_board_needs_an_image(vmd: Vmd, out: Path) -> None:
    status, _, err = vmd("--tarball", str(out / "x.tar"), "--board", "rock64", "--dry-run")
    assert status == 2 and "--board rock64 makes a disk image for the board: give --image FILE" in err


def test_the_old_armhf_command_line_builds_a_u_boot_image(make_settings: MakeSettings, out: Path) -> None:
    """The old tool's own test image: armhf, a vfat /boot, --bootflag lba (issue 25)."""
    made = make_settings("--image", str(out / "a.img"), "--arch", "armhf", "--bootsize", "100M", "--boottype",
                         "vfat", "--bootflag", "lba", "--serial-console", "--boot-test", "--user", "u/p")
    assert made.disk is not None and made.disk.bootloader == "u-boot" and made.disk.legacy_boot
    assert made.boot_test is not None and made.boot_test.firmwares == ("u-boot",)
    assert made.serial_port == "ttyAMA0,115200n8"
    layout = disk.plan(made.disk)
    script = " ".join(disk.parted_script(layout, made.disk.flag, legacy_boot=True))
    assert "set 1 boot on" in script and "set 1 lba on" in script  # u-boot scans the bootable partition
    pi = make_settings("--image", str(out / "p.img"), "--board", "raspi-3", "--serial-console", "--boot-test",
                       "--user", "u/p")
    assert pi.boot_test is not None and pi.boot_test.firmwares == ("raspi3b",)


def test_the_raspberry_pi_layout_and_fstab_by_label() -> None:
    request = disk.Request(size=2 * 1024 * MiB, offset=4 * MiB, firmware_size=508 * MiB, bootloader="raspi",
                           labels=BOARDS["raspi-3"].labels)
    layout = disk.plan(request)
    assert [(p.number, p.role, p.start, p.fstype, p.mountpoint) for p in layout.partitions] == [
        (1, "firmware", 4 * MiB, "vfat", "/boot/firmware"), (2, "root", 512 * MiB, "ext4", "/")]
    fstab = disk.fstab(layout, {"firmware": "AB-CD", "root": "U"}, dict(request.labels))
    assert "LABEL=RASPIROOT\t/\text4\terrors=remount-ro\t0\t1" in fstab
    assert "LABEL=RASPIFIRM\t/boot/firmware\tvfat\tdefaults\t0\t2" in fstab
    assert "UUID=" not in fstab
    assert (request.label_of("firmware"), request.label_of("swap")) == ("RASPIFIRM", "swap")
    assert "fat32" in disk.parted_script(layout)


def image_for(tmp_path: Path, **request: object) -> disk.Image:
    made = disk.Request(**request)  # type: ignore[arg-type]
    raw = tmp_path / "x.img"
    raw.write_bytes(b"")
    with open(raw, "wb") as stream:
        stream.truncate(128 * MiB)
    return disk.Image(made, disk.plan(made), raw, raw, {"root": "ROOT-UUID", "boot": "BOOT-UUID"}, {}, "0x1",
                      contextlib.ExitStack())


def test_u_boot_menu_gets_the_root_by_uuid_and_the_console(tmp_path: Path, make_context: MakeContext) -> None:
    ctx, _ = make_context("--image", str(tmp_path / "x.img"), "--arch", "arm64", "--serial-console",
                          "--distribution", "trixie")
    shipped = '#U_BOOT_UPDATE="true"\n#U_BOOT_PARAMETERS="ro quiet"\n#U_BOOT_ROOT=""\n#U_BOOT_TIMEOUT="50"\n'
    text = u_boot.defaults(ctx, image_for(tmp_path, size=128 * MiB, bootloader="u-boot"), shipped)
    assert text.splitlines() == [
        '#U_BOOT_UPDATE="true"',
        'U_BOOT_PARAMETERS="ro quiet console=tty0 console=ttyAMA0,115200n8"  # vmdebootstrap',
        'U_BOOT_ROOT="root=UUID=ROOT-UUID"  # vmdebootstrap', '#U_BOOT_TIMEOUT="50"']
    assert "U_BOOT_SYNC_DTBS" not in text
    ext = make_context("--image", str(tmp_path / "y.img"), "--arch", "arm64", "--bootsize", "100M", "--boottype",
                       "ext4", "--distribution", "trixie")[0]
    assert 'U_BOOT_SYNC_DTBS="true"' in u_boot.defaults(ext, image_for(tmp_path, size=128 * MiB), "")
    assert "rsync" in u_boot.packages(ext.settings)
    fat = make_context("--image", str(tmp_path / "z.img"), "--arch", "arm64", "--bootsize", "100M", "--boottype",
                       "vfat", "--distribution", "trixie")[0]
    assert not u_boot.syncs_device_trees(fat.settings)  # rsync -a cannot keep modes on FAT
    appended = make_context("--image", str(tmp_path / "w.img"), "--arch", "riscv64", "--distribution", "trixie",
                            "--kernel-append", "systemd.default_device_timeout_sec=600")[0]
    assert 'U_BOOT_PARAMETERS="ro quiet systemd.default_device_timeout_sec=600"  # vmdebootstrap' in \
        u_boot.defaults(appended, image_for(tmp_path, size=128 * MiB), "").splitlines()


def test_the_extlinux_conf_check(tmp_path: Path, make_context: MakeContext) -> None:
    ctx, _ = make_context("--image", str(tmp_path / "x.img"), "--arch", "arm64", "--distribution", "trixie")
    image = image_for(tmp_path, size=128 * MiB, bootloader="u-boot")
    boot = ctx.root / "boot"
    (boot / "extlinux").mkdir(parents=True)
    (boot / "vmlinuz-6.12.1-arm64").write_text("k")
    config = boot / "extlinux/extlinux.conf"
    good = "label l0\n\tlinux /boot/vmlinuz-6.12.1-arm64\n\tappend root=UUID=ROOT-UUID ro\n"
    config.write_text(good)
    u_boot.check(ctx, image, config)
    for bad, message in ((good.replace("ROOT-UUID", "X"), "did not write the image's root"),
                         (good + "\tinitrd /boot/initrd.img-6.12.1-arm64\n", "which the /boot filesystem does not"),
                         (good + "root=/dev/loop3p2", "a build-time device")):
        config.write_text(bad)
        with pytest.raises(BuildError, match=message):
            u_boot.check(ctx, image, config)


def test_payloads_go_into_the_gap_and_must_fit(tmp_path: Path, make_context: MakeContext) -> None:
    ctx, _ = make_context("--image", str(tmp_path / "x.img"), "--board", "beaglebone-black",
                          "--distribution", "trixie")
    image = image_for(tmp_path, size=128 * MiB, offset=4 * MiB, bootloader="u-boot")
    target = ctx.root / "usr/lib/u-boot/am335x_evm"
    target.mkdir(parents=True)
    (target / "MLO").write_bytes(b"M" * 1000)
    (target / "u-boot.img").write_bytes(b"U" * 3000)
    u_boot.write_payloads(ctx, image, BOARDS["beaglebone-black"].payloads)
    data = image.raw.read_bytes()
    assert data[128 * KiB:128 * KiB + 1000] == b"M" * 1000 and data[384 * KiB:384 * KiB + 3000] == b"U" * 3000
    assert data[:128 * KiB].count(0) == 128 * KiB
    (target / "u-boot.img").write_bytes(b"U" * (4 * MiB))  # runs into the first partition
    with pytest.raises(BuildError, match="does not fit between the partition table and the first partition"):
        u_boot.write_payloads(ctx, image, BOARDS["beaglebone-black"].payloads)
    (target / "MLO").unlink()
    with pytest.raises(BuildError, match="MLO is not in the image"):
        u_boot.write_payloads(ctx, image, BOARDS["beaglebone-black"].payloads)


def test_raspi_firmware_is_told_the_root_label_and_the_consoles(tmp_path: Path, make_context: MakeContext) -> None:
    ctx, _ = make_context("--image", str(tmp_path / "x.img"), "--board", "raspi-4", "--serial-console",
                          "--distribution", "trixie")
    assert ctx.settings.disk is not None
    image = image_for(tmp_path, size=1024 * MiB, offset=4 * MiB, firmware_size=508 * MiB, bootloader="raspi",
                      labels=BOARDS["raspi-4"].labels)
    text = raspi.defaults(ctx.settings, image)
    assert 'ROOTPART="LABEL=RASPIROOT"' in text and 'CONSOLES="tty0 ttyS1,115200"' in text
    assert 'CMA="0"' in text  # the Pi 4's
    raspi.prepare(ctx, image)
    assert (ctx.root / "boot/firmware").is_dir() and (ctx.root / "etc/default/raspi-firmware").read_text() == text
    assert raspi.packages(ctx.settings) == ["raspi-firmware", "firmware-brcm80211"]
    assert not (ctx.root / "etc/default/raspi-extra-cmdline").exists()


def test_kernel_append_goes_into_the_pi_s_extra_cmdline(tmp_path: Path, make_context: MakeContext) -> None:
    ctx, _ = make_context("--image", str(tmp_path / "x.img"), "--board", "raspi-3", "--distribution", "trixie",
                          "--kernel-append", "net.ifnames=0")
    image = image_for(tmp_path, size=1024 * MiB, offset=4 * MiB, firmware_size=508 * MiB, bootloader="raspi",
                      labels=BOARDS["raspi-3"].labels)
    raspi.prepare(ctx, image)  # raspi-firmware's kernel hook appends the file to cmdline.txt
    assert (ctx.root / "etc/default/raspi-extra-cmdline").read_text() == "net.ifnames=0\n"


def test_config_txt_names_the_kernel_and_initramfs() -> None:
    text = ("# Do not modify\narm_64bit=1\nenable_uart=1\nkernel=vmlinuz-6.12.1-arm64\n"
            "initramfs initrd.img-6.12.1-arm64\n[pi4]\nkernel=other\n")
    assert raspi_boot.boot_files(text) == ("vmlinuz-6.12.1-arm64", "initrd.img-6.12.1-arm64")
    with pytest.raises(raspi_boot.RaspiBootError, match="names no kernel="):
        raspi_boot.boot_files("arm_64bit=1\n")


@pytest.mark.parametrize(("size", "card"), [(1, 1), (2500 * MiB, 4096 * MiB), (2048 * MiB, 2048 * MiB),
                                            (2048 * MiB + 1, 4096 * MiB)])
def test_the_sd_card_is_a_power_of_two(size: int, card: int) -> None:
    assert raspi_boot.sd_card_size(size) == card


def test_raspi3b_boots_the_files_the_firmware_partition_names(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A small image made as ours are (msdos, FAT at 4 MiB): QEMU gets the kernel, initrd, device
    tree and command line the firmware would read, and an SD card of a power of two.  sfdisk
    and mtools read the image for real (debian/control's Build-Depends); qemu-img's overlay is
    recorded, not made (qemu-utils is the boot test's, not the unit tier's)."""
    made: list[list[str]] = []
    real_command = raspi_boot._command

    def command(argv: list[str], purpose: str) -> str:
        if argv[0] == "qemu-img":
            made.append(argv)
            return ""
        return real_command(argv, purpose)
    monkeypatch.setattr(raspi_boot, "_command", command)
    image = tmp_path / "pi.img"
    with open(image, "wb") as stream:
        stream.truncate(40 * MiB)
    subprocess.run(["sfdisk", "--quiet", "--no-tell-kernel", str(image)], input="8192,20480,c\n,,83\n",
                   text=True, check=True)
    fat = tmp_path / "fat"
    subprocess.run(["mkfs.fat", "-C", str(fat), str(10 * 1024)], capture_output=True, check=True)
    files = {"config.txt": "arm_64bit=1\nkernel=vmlinuz-6.1\ninitramfs initrd.img-6.1\n", "vmlinuz-6.1": "K",
             "initrd.img-6.1": "I", "bcm2837-rpi-3-b.dtb": "D",
             "cmdline.txt": "console=tty0 console=ttyS1,115200 root=LABEL=RASPIROOT rw rootwait\n"}
    for name, content in files.items():
        (tmp_path / name).write_text(content)
        subprocess.run(["mcopy", "-i", str(fat), str(tmp_path / name), "::/"], check=True,
                       env={"MTOOLS_SKIP_CHECK": "1", "PATH": "/usr/bin:/bin"})
    with open(image, "r+b") as stream:
        stream.seek(4 * MiB)
        stream.write(fat.read_bytes())
    work = tmp_path / "work"
    work.mkdir()
    argv = raspi_boot.qemu_command(image, work, "qemu-system-aarch64", "raspi3b")
    assert argv[:3] == ["qemu-system-aarch64", "-machine", "raspi3b"] and "-m" not in argv and "-smp" not in argv
    assert Path(argv[argv.index("-kernel") + 1]).read_text() == "K"
    assert Path(argv[argv.index("-initrd") + 1]).read_text() == "I"
    assert Path(argv[argv.index("-dtb") + 1]).read_text() == "D"
    assert argv[argv.index("-append") + 1] == "console=tty0 console=ttyS1,115200 root=LABEL=RASPIROOT rw rootwait " \
        "systemd.default_device_timeout_sec=600 module_blacklist=vchiq"  # cmdline.txt's; a longer wait for the
    # emulated SD card; no vchiq, which QEMU's missing VideoCore fails
    assert argv[argv.index("-serial") + 1] == "null"  # the console is the mini-UART: the second port
    card = work / "sd-card.qcow2"
    assert made == [["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", str(image), str(card),
                     str(64 * MiB)]]  # the image its backing file, never written; 40 MiB up to 64
    assert f"if=sd,format=qcow2,file={card}" in argv
    with pytest.raises(raspi_boot.RaspiBootError, match="no FAT partition"):
        subprocess.run(["sfdisk", "--quiet", "--no-tell-kernel", str(image)], input="8192,20480,83\n", text=True,
                       check=True)
        raspi_boot.qemu_command(image, work, "qemu-system-aarch64", "raspi3b")

