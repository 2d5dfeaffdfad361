"""Disk images without a disk: layouts, parted scripts, fstab, loop ioctl structures,
the GRUB BIOS sectors and validation."""

from __future__ import annotations

import contextlib
import itertools
import re
import struct
import subprocess
from pathlib import Path

import pytest

from vmdebootstrap import architectures, disk, imageoptions, loop
from vmdebootstrap.bootloaders import extlinux, grub
from vmdebootstrap.errors import UsageError
from vmdebootstrap.options import OPTIONS, default_of
from vmdebootstrap.outputs import image
from vmdebootstrap.parsed import Parsed

from .conftest import MakeContext, Vmd

MiB = 2**20


def values(**overrides: object) -> disk.Request:
    """The disk request validation makes of these option values (an amd64 image)."""
    result = {o.name: default_of(o) for o in OPTIONS}
    result.update({"image": "x.img", "size": 2 * 10**9})
    result.update({k.replace("_", "-"): v for k, v in overrides.items()})
    return imageoptions.disk_request(Parsed(result), architectures.ARCHITECTURES["amd64"])


def roles(layout: disk.Layout) -> list[tuple[int, str, str]]:
    return [(p.number, p.role, p.fstype) for p in layout.partitions]


def test_default_layout_is_one_root_partition_from_1_mib() -> None:
    layout = disk.plan(values())
    assert roles(layout) == [(1, "root", "ext4")]
    assert layout.root.start == MiB and layout.root.end == 2 * 10**9 // MiB * MiB
    assert layout.image_size == 2 * 10**9


@pytest.mark.parametrize(("overrides", "expected"), [
    ({"swap": 300 * MiB}, [(1, "root", "ext4"), (2, "swap", "swap")]),
    ({"bootsize": 100 * MiB}, [(1, "boot", "ext2"), (2, "root", "ext4")]),
    ({"bootsize": 100 * MiB, "swap": 300 * MiB, "boottype": "ext3"},
     [(1, "boot", "ext3"), (2, "root", "ext4"), (3, "swap", "swap")]),
    ({"use_uefi": True, "grub": True}, [(1, "esp", "vfat"), (2, "root", "ext4")]),
    ({"use_uefi": True, "grub": True, "swap": 300 * MiB}, [(1, "esp", "vfat"), (2, "root", "ext4"),
                                                          (3, "swap", "swap")]),
    ({"part_type": "gpt", "grub": True}, [(1, "root", "ext4"), (2, "bios_grub", "")]),
    ({"part_type": "gpt", "grub": True, "use_uefi": True}, [(1, "esp", "vfat"), (2, "root", "ext4")]),
    ({"part_type": "gpt"}, [(1, "root", "ext4")]),  # extlinux: gptmbr, no bios_grub
])  # fmt: skip
def test_layouts_of_the_old_tool_and_swap_everywhere(overrides: dict[str, object],
                                                     expected: list[tuple[int, str, str]]) -> None:
    assert roles(disk.plan(values(**overrides))) == expected


def test_partitions_are_contiguous_aligned_and_inside_the_image() -> None:
    layout = disk.plan(values(bootsize=100 * MiB, swap=300 * MiB, part_type="gpt", grub=True))
    ordered = sorted((p for p in layout.partitions if p.role != "bios_grub"), key=lambda p: p.start)
    assert all(a.end == b.start for a, b in itertools.pairwise(ordered))
    assert all(p.start % MiB == 0 and p.end % MiB == 0 for p in ordered)
    assert ordered[-1].end <= layout.image_size - 34 * 512  # the backup GPT fits behind it
    bios = layout.by_role("bios_grub")
    assert bios is not None and (bios.start, bios.end, bios.number) == (34 * 512, MiB, 4)


def test_swap_has_a_floor_and_bootoffset_is_honoured_without_bootsize() -> None:
    layout = disk.plan(values(swap=10 * MiB, bootoffset=3 * MiB + 1))
    swap = layout.by_role("swap")
    assert swap is not None and swap.size == 256 * MiB
    assert layout.root.start == 4 * MiB  # rounded up to whole MiB (the old tool ignored it, §6.4 item 11)


def test_esp_size_and_boot_holder() -> None:
    layout = disk.plan(values(use_uefi=True, grub=True, esp_size=100 * 10**6))
    esp = layout.by_role("esp")
    assert esp is not None and esp.size == 96 * MiB and esp.mountpoint == "/boot/efi"
    assert layout.boot_holder.role == "root"
    assert disk.plan(values(bootsize=64 * MiB)).boot_holder.role == "boot"


def test_too_small_for_the_partitions() -> None:
    with pytest.raises(UsageError, match="leaves 0 MiB for the root filesystem"):
        disk.plan(values(size=400 * MiB, swap=400 * MiB))


def test_parted_script_msdos_boot_flag_and_sectors() -> None:
    layout = disk.plan(values(bootsize=100 * MiB, swap=300 * MiB, bootflag="lba"))
    script = " ".join(disk.parted_script(layout, "lba"))
    assert script.startswith("unit s mklabel msdos mkpart primary ext2 2048s 206847s ")
    assert "mkpart primary linux-swap" in script
    assert "set 1 boot on" in script and script.endswith("set 1 lba on")


def test_parted_script_gpt_flags() -> None:
    uefi = " ".join(disk.parted_script(disk.plan(values(part_type="gpt", use_uefi=True, grub=True))))
    assert "mkpart esp fat32 2048s" in uefi and "set 1 esp on" in uefi and " boot on" not in uefi
    bios = " ".join(disk.parted_script(disk.plan(values(part_type="gpt", grub=True))))
    assert "mkpart bios_grub 34s 2047s" in bios and "set 2 bios_grub on" in bios
    # gptmbr.bin boots the partition marked legacy_boot; "boot" on GPT would make it an ESP.
    ext = " ".join(disk.parted_script(disk.plan(values(part_type="gpt")), legacy_boot=True))
    assert "set 1 legacy_boot on" in ext and " boot on" not in ext


def test_fstab_names_every_partition_by_uuid() -> None:
    layout = disk.plan(values(use_uefi=True, grub=True, swap=300 * MiB, roottype="btrfs"))
    text = disk.fstab(layout, {"root": "R-UUID", "esp": "AB12-CD34", "swap": "S-UUID"})
    lines = [line.split("\t") for line in text.splitlines() if not line.startswith("#")]
    assert lines == [["UUID=R-UUID", "/", "btrfs", "defaults", "0", "0"],
                     ["UUID=AB12-CD34", "/boot/efi", "vfat", "umask=0077,nofail,x-systemd.device-timeout=5min",
                      "0", "1"],
                     ["UUID=S-UUID", "none", "swap", "sw", "0", "0"]]
    boot = disk.fstab(disk.plan(values(bootsize=64 * MiB, boottype="ext3")), {"root": "R", "boot": "B"})
    assert "UUID=R\t/\text4\terrors=remount-ro\t0\t1" in boot and "UUID=B\t/boot\text3\terrors=remount-ro\t0\t2" in boot


def test_mkfs_commands() -> None:
    # ext*: made straight into the partition's range of the image file, from the tree.
    root = disk.Partition(2, "root", 257 * MiB, 1025 * MiB, "ext4")
    argv = image.mkfs_ext_argv(root, Path("/o/x.img"), Path("/w/root"), "R-UUID", label="root")
    assert argv == ["mkfs.ext4", "-q", "-F", "-L", "root", "-U", "R-UUID",
                    "-E", f"offset={257 * MiB},hash_seed=R-UUID,nodiscard", "-d", "/w/root",
                    "/o/x.img", f"{768 * 1024}k"]
    old_csum = image.mkfs_ext_argv(root, Path("/x"), Path("/r"), "U", label="root", metadata_csum=False)
    assert "^metadata_csum" in old_csum  # #827130
    esp = disk.Partition(1, "esp", MiB, 257 * MiB, "vfat")
    assert image.mkfs_fat_argv(esp, Path("/w/esp.fat"), "AB12-CD34", "ESP") == [
        "mkfs.fat", "-C", "--invariant", "-F", "32", "-n", "ESP", "-i", "AB12CD34", "/w/esp.fat", str(256 * 1024)]


def test_copy_into_skips_zero_blocks(tmp_path: Path) -> None:
    source, target = tmp_path / "fat", tmp_path / "disk"
    source.write_bytes(b"A" * 10 + bytes(3 * MiB) + b"B")
    target.write_bytes(b"")
    with open(target, "wb") as stream:
        stream.truncate(8 * MiB)
    image.copy_into(source, target, MiB)
    data = target.read_bytes()
    assert data[MiB:MiB + 10] == b"A" * 10 and data[4 * MiB + 10] == ord("B")
    assert target.stat().st_blocks * 512 < 3 * MiB  # the zero MiBs between were not written


def test_copy_into_copies_the_data_after_a_hole(tmp_path: Path) -> None:
    source, target = tmp_path / "swap", tmp_path / "disk"
    with open(source, "wb") as stream:
        stream.write(b"S" * 4096)
        stream.truncate(64 * MiB)
        stream.seek(40 * MiB + 5)
        stream.write(b"T")
    with open(target, "wb") as stream:
        stream.truncate(80 * MiB)
    image.copy_into(source, target, 2 * MiB)
    with open(target, "rb") as stream:
        assert stream.read(2 * MiB + 4097)[2 * MiB:] == b"S" * 4096 + b"\0"
        stream.seek(42 * MiB)
        assert stream.read(6) == b"\0" * 5 + b"T"
    assert target.stat().st_blocks * 512 <= 2 * MiB


def test_identifiers_come_from_the_seed() -> None:
    layout = disk.plan(values(part_type="gpt", use_uefi=True, grub=True, swap=300 * MiB))
    uuids, parts, disk_id = image.identifiers("seed-1", layout, "a.img")
    assert image.identifiers("seed-1", layout, "a.img") == (uuids, parts, disk_id)  # the same, every time
    assert set(uuids) == {"esp", "root", "swap"} and re.fullmatch(r"[0-9A-F]{4}-[0-9A-F]{4}", uuids["esp"])
    assert set(parts) == {"esp", "root", "swap"} and len({disk_id, *parts.values(), *uuids.values()}) == 7
    # Another image name with the same seed: another root filesystem, the rest alike.
    other, _, _ = image.identifiers("seed-1", layout, "b.img")
    assert other["root"] != uuids["root"] and other["swap"] == uuids["swap"]
    assert image.identifiers("seed-2", layout, "a.img")[2] != disk_id
    msdos = disk.plan(values(swap=300 * MiB))
    _, mbr_parts, mbr_id = image.identifiers("seed-1", msdos, "a.img")
    assert re.fullmatch(r"0x[0-9a-f]{8}", mbr_id) and mbr_parts["root"] == f"{mbr_id[2:]}-01"


def test_loop_configure_structure() -> None:
    blob = loop.loop_config(7, "/images/x.img", offset=MiB, size=100 * MiB)
    assert len(blob) == 304  # sizeof(struct loop_config)
    fd, block_size = struct.unpack_from("=2I", blob)
    assert (fd, block_size) == (7, 0)
    info = loop.INFO64.unpack_from(blob, 8)
    assert info[3:5] == (MiB, 100 * MiB)  # lo_offset, lo_sizelimit
    assert info[8] == loop.LO_FLAGS_AUTOCLEAR  # lo_flags: detached when its last user goes
    assert info[9].rstrip(b"\0") == b"/images/x.img"


def test_extlinux_conf(tmp_path: Path, make_context: MakeContext) -> None:
    ctx, _ = make_context("--image", str(tmp_path / "x.img"), "--serial-console")
    (ctx.root / "boot").mkdir(parents=True)
    (ctx.root / "boot/vmlinuz-6.1.0-9-amd64").write_text("")
    request = values()
    made = disk.Image(request, disk.plan(request), tmp_path / "x.img", tmp_path / "x.img", {"root": "RU"}, {},
                      "0x1", contextlib.ExitStack())
    conf = extlinux.extlinux_conf(ctx, made)
    assert "  kernel /boot/vmlinuz-6.1.0-9-amd64\n" in conf
    assert "append initrd=/boot/initrd.img-6.1.0-9-amd64 root=UUID=RU ro console=tty0 console=ttyS0,115200n8" in conf
    assert conf.splitlines()[1] == "serial 0 115200"


def test_kernel_append_reaches_extlinux_and_grub_defaults(tmp_path: Path, make_context: MakeContext) -> None:
    """--kernel-append on a disk image: the extlinux entry's append line, and GRUB's defaults
    (update-grub reads them now and at every kernel upgrade); it once reached only ISOs and u-boot."""
    ctx, _ = make_context("--image", str(tmp_path / "x.img"), "--serial-console",
                          "--kernel-append", "systemd.default_device_timeout_sec=600  net.ifnames=0")
    (ctx.root / "boot").mkdir(parents=True)
    (ctx.root / "boot/vmlinuz-6.1.0-9-amd64").write_text("")
    request = values()
    made = disk.Image(request, disk.plan(request), tmp_path / "x.img", tmp_path / "x.img", {"root": "RU"}, {},
                      "0x1", contextlib.ExitStack())
    assert "console=ttyS0,115200n8 systemd.default_device_timeout_sec=600 net.ifnames=0\n" in \
        extlinux.extlinux_conf(ctx, made)
    grub.write_grub_defaults(ctx)
    defaults = (ctx.root / "etc/default/grub.d/vmdebootstrap.cfg").read_text()
    assert 'GRUB_CMDLINE_LINUX="$GRUB_CMDLINE_LINUX systemd.default_device_timeout_sec=600 net.ifnames=0"\n' \
        in defaults


@pytest.mark.parametrize("parameters", ['quiet foo="a b"', "init=$SHELL", "a`b`", "a\\b"])
def test_kernel_append_refuses_what_would_end_the_quotes(vmd: Vmd, out: Path, parameters: str) -> None:
    status, _, stderr = vmd("--tarball", str(out / "x.tar"), "--kernel-append", parameters)
    assert status == 2 and stderr.startswith(f"vmdebootstrap: error: --kernel-append {parameters}: "
                                             "kernel parameters cannot hold"), stderr


def test_early_grub_config_finds_the_boot_filesystem() -> None:
    request = values(bootsize=64 * MiB)
    made = disk.Image(request, disk.plan(request), Path("x"), Path("x"), {"root": "R", "boot": "B"}, {}, "0x1",
                      contextlib.ExitStack())
    assert grub.early_config(made) == "search.fs_uuid B root\nset prefix=($root)'/grub'\n"


@pytest.mark.parametrize(("args", "message"), [
    (["--part-type", "mbr"], "--part-type mbr: use msdos or gpt"),
    (["--roottype", "zfs"], "--roottype zfs: use one of"),
    (["--bootsize", "100M", "--boottype", "ntfs", "--grub"], "--boottype ntfs"),
    (["--bootflag", "fast"], "--bootflag fast: not a parted flag"),
    (["--roottype", "xfs"], "extlinux cannot boot from xfs"),
    (["--bootsize", "100M", "--boottype", "vfat"], "extlinux installs into the /boot filesystem"),
    (["--grub", "--mbr"], "--mbr writes an MBR for extlinux"),
    (["--uefi-ia32"], "--uefi-ia32 adds 32-bit UEFI GRUB"),
    (["--size", "300M", "--swap", "300M"], "for the root filesystem"),
    (["--boot-test", "--user", "u/p"], "--boot-test logs in over the serial console: add --serial-console"),
    (["--boot-test", "--user", "u/p", "--serial-console", "--boot-firmware", "uefi"],
     "--boot-firmware uefi: amd64 boots with bios"),
])  # fmt: skip
def test_image_validation(vmd: Vmd, out: Path, args: list[str], message: str) -> None:
    status, _, err = vmd("--image", str(out / "x.img"), "--distribution", "bookworm", *args)
    assert status == 2 and message in err, err
    assert list(out.iterdir()) == []


def test_image_accepted_combinations(vmd: Vmd, out: Path) -> None:
    for args in (["--roottype", "xfs", "--grub"], ["--bootsize", "100M", "--boottype", "vfat", "--no-extlinux"],
                 ["--use-uefi", "--grub", "--uefi-ia32", "--part-type", "gpt"], ["--mbr"],
                 ["--boot-test", "--user", "u/p", "--serial-console", "--grub"], ["--esp-size", "5mib"]):
        status, _, err = vmd("--image", str(out / "x.img"), "--distribution", "bookworm", *args, "--dry-run")
        assert status == 0, (args, err)


def run_stand_in(tmp_path: Path, script: str, *args: str) -> str:
    path = tmp_path / "stand-in"
    path.write_text(script)
    return subprocess.run(["sh", str(path), *args], capture_output=True, text=True, check=True).stdout.strip()


def test_grub_stand_ins_answer_for_the_finished_image(tmp_path: Path) -> None:
    request = values(bootsize=64 * MiB)
    layout = disk.plan(request)
    uuids, parts, disk_id = image.identifiers("seed", layout, "x.img")
    made = disk.Image(request, layout, Path("x"), Path("x"), uuids, parts, disk_id, contextlib.ExitStack())
    probe = grub.probe_script(made)
    # as grub-mkconfig and 10_linux ask: by path first, then by the device it answered
    assert run_stand_in(tmp_path, probe, "--target=device", "/") == "/dev/vmdebootstrap-root"
    assert run_stand_in(tmp_path, probe, "--target=device", "/boot") == "/dev/vmdebootstrap-boot"
    assert run_stand_in(tmp_path, probe, "--device", "/dev/vmdebootstrap-root", "--target=fs_uuid") == uuids["root"]
    assert run_stand_in(tmp_path, probe, "--target=fs", "/boot/grub") == "ext2"
    assert run_stand_in(tmp_path, probe, "--target=partmap", "--device", "/dev/vmdebootstrap-boot") == "msdos"
    # a separate /boot: the kernel lies at the top of its filesystem
    relpath = grub.mkrelpath_script(made)
    assert run_stand_in(tmp_path, relpath, "/boot/vmlinuz-6.12.1-amd64") == "/vmlinuz-6.12.1-amd64"
    # as the real grub-mkrelpath: a filesystem's root is the empty string (10_linux appends "/vmlinuz-…")
    assert run_stand_in(tmp_path, relpath, "/boot") == ""
    assert run_stand_in(tmp_path, relpath, "/boot/") == ""
    assert run_stand_in(tmp_path, relpath, "/usr/share/grub") == "/usr/share/grub"
    one = values()
    single = disk.Image(one, disk.plan(one), Path("x"), Path("x"), {"root": "R"}, {"root": "P"}, "0x1",
                        contextlib.ExitStack())
    assert run_stand_in(tmp_path, grub.mkrelpath_script(single), "/boot/vmlinuz-6.12.1-amd64") == \
        "/boot/vmlinuz-6.12.1-amd64"
    assert run_stand_in(tmp_path, grub.mkrelpath_script(single), "/") == ""


def test_a_qcow2_name_makes_a_qcow2_image() -> None:
    assert values(image="vm.qcow2").qcow2
    assert values(image="vm.img", **{"convert_qcow2": True}).qcow2
    assert not values(image="vm.img").qcow2
