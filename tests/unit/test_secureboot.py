"""Secure Boot (issue 15): when the signed chain is chosen, how the ISO and the UEFI disk image
lay it out, how the boot test starts enforcing firmware and what it concludes."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from vmdebootstrap import disk
from vmdebootstrap.boot.qemu import qemu_command
from vmdebootstrap.boot.transcript import read_console
from vmdebootstrap.bootloaders import grub_efi
from vmdebootstrap.errors import BuildError
from vmdebootstrap.outputs import iso

from .conftest import MakeContext, MakeSettings
from .qemu import Fake, arch, make_image, option_values, target

# -- the choice ---------------------------------------------------------------------------------------


def test_the_signed_chain_is_the_default_where_the_release_has_it(make_settings: MakeSettings) -> None:
    for args in (["--distribution", "trixie"], ["--distribution", "bookworm"], ["--arch", "arm64"]):
        chosen = make_settings(*args)
        assert (chosen.secure_boot, chosen.secure_boot_note) == (True, ""), args
    assert not make_settings("--no-secure-boot").secure_boot
    assert make_settings("--no-secure-boot").secure_boot_note == ""  # asked for: nothing to say
    i386 = make_settings("--arch", "i386")
    assert (i386.secure_boot, i386.secure_boot_note) == (False, "Debian signs no boot chain for i386")
    bullseye = make_settings("--distribution", "bullseye")
    assert not bullseye.secure_boot and "before bookworm" in bullseye.secure_boot_note


def test_the_boot_test_enforces_it_by_default(make_settings: MakeSettings, out: Path) -> None:
    def firmwares(*args: str) -> tuple[str, ...]:
        test = make_settings("--boot-test", "--user", "u/p", *args).boot_test
        assert test is not None
        return test.firmwares

    assert firmwares("--iso", str(out / "x.iso")) == ("bios", "uefi-secure")
    assert firmwares("--iso", str(out / "x.iso"), "--no-secure-boot") == ("bios", "uefi")
    assert firmwares("--iso", str(out / "x.iso"), "--arch", "arm64") == ("uefi-secure",)
    assert firmwares("--iso", str(out / "x.iso"), "--boot-firmware", "uefi") == ("uefi",)
    image = ["--image", str(out / "x.img"), "--serial-console"]
    assert firmwares(*image, "--use-uefi", "--grub") == ("uefi-secure",)
    assert firmwares(*image, "--grub") == ("bios",)


# -- the ISO --------------------------------------------------------------------------------------------


def unpacked(ctx_downloads: Path, *names: str) -> None:
    for name in names:
        path = ctx_downloads / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(name.encode())


def test_the_iso_boots_shim_then_the_cd_grub_debian_signs(make_context: MakeContext, out: Path) -> None:
    ctx, runner = make_context("--iso", str(out / "x.iso"))
    assert iso.downloads(ctx.settings) == ["grub-efi-amd64-bin", "shim-signed", "shim-helpers-amd64-signed",
                                           "grub-efi-amd64-signed", "isolinux", "syslinux-common"]
    unpacked(ctx.downloads, "usr/lib/shim/shimx64.efi.signed", "usr/lib/shim/mmx64.efi.signed",
             "usr/lib/grub/x86_64-efi-signed/gcdx64.efi.signed")
    tree = ctx.workdir / "iso"
    iso.make_efi_image(ctx, tree, "/.disk/vmdebootstrap-marker")
    assert (tree / "EFI/boot/bootx64.efi").read_bytes() == b"usr/lib/shim/shimx64.efi.signed"
    assert (tree / "EFI/boot/grubx64.efi").read_bytes() == b"usr/lib/grub/x86_64-efi-signed/gcdx64.efi.signed"
    assert (tree / "EFI/boot/mmx64.efi").exists()
    copied = {call[-1]: call[-2] for call in runner.commands("mcopy")}
    assert copied["::/EFI/BOOT/BOOTX64.EFI"].endswith("shimx64.efi.signed")
    assert copied["::/EFI/BOOT/grubx64.efi"].endswith("gcdx64.efi.signed")
    # From a stick, the signed GRUB reads (the ESP)/boot/grub/grub.cfg: it leads to the ISO's menu.
    early = Path(copied["::/boot/grub/grub.cfg"]).read_text()
    assert early == ("search --no-floppy --set=root --file /.disk/vmdebootstrap-marker\n"
                     "set prefix=($root)/boot/grub\nconfigfile $prefix/grub.cfg\n")
    assert runner.commands("grub-mkimage") == []


def test_the_iso_without_secure_boot_makes_its_grub(make_context: MakeContext, out: Path) -> None:
    ctx, runner = make_context("--iso", str(out / "x.iso"), "--no-secure-boot")
    assert iso.downloads(ctx.settings) == ["grub-efi-amd64-bin", "isolinux", "syslinux-common"]
    (ctx.downloads / "usr/lib/grub/x86_64-efi").mkdir(parents=True)
    runner.responder = lambda argv: (Path(argv[argv.index("-o") + 1]).write_bytes(b"core") and None) \
        if argv[0] == "grub-mkimage" else None
    iso.make_efi_image(ctx, ctx.workdir / "iso", "/.disk/m")
    assert len(runner.commands("grub-mkimage")) == 1
    assert (ctx.workdir / "iso/EFI/boot/bootx64.efi").read_bytes() == b"core"


def test_a_missing_signed_file_names_the_packages(make_context: MakeContext, out: Path) -> None:

    ctx, _ = make_context("--iso", str(out / "x.iso"))
    with pytest.raises(BuildError, match=r"shimx64.efi.signed for EFI/BOOT/BOOTX64.EFI was not found in "
                                         r"shim-signed, shim-helpers-amd64-signed, grub-efi-amd64-signed"):
        iso.make_efi_image(ctx, ctx.workdir / "iso", "/.disk/m")


def test_isolinux_and_its_mbr_are_the_release_s_not_the_host_s(make_context: MakeContext, out: Path) -> None:
    """A Debian 12 and a Debian 13 host made different ISOs from the same inputs (issue 22)."""
    ctx, _ = make_context("--iso", str(out / "x.iso"), "--distribution", "trixie")
    files = [f"{iso.ISOLINUX_DIR}/isolinux.bin", *(f"{iso.SYSLINUX_MODULES}/{m}" for m in iso.ISOLINUX_MODULES)]
    unpacked(ctx.downloads, *files)
    tree = ctx.workdir / "iso"
    tree.mkdir()
    iso.make_isolinux(ctx, tree)
    assert (tree / "isolinux/isolinux.bin").read_bytes() == f"{iso.ISOLINUX_DIR}/isolinux.bin".encode()
    assert (tree / "isolinux/ldlinux.c32").read_bytes() == f"{iso.SYSLINUX_MODULES}/ldlinux.c32".encode()
    argv = iso.xorriso_argv(ctx, tree, out / "x.iso", {})
    assert argv[argv.index("-isohybrid-mbr") + 1] == str(ctx.downloads / iso.ISOLINUX_DIR / "isohdpfx.bin")
    assert "isolinux" not in set(iso.host_tools(ctx.settings).values())
    (ctx.downloads / iso.SYSLINUX_MODULES / "menu.c32").unlink()
    (tree / "isolinux").rename(tree / "before")
    with pytest.raises(BuildError, match=r"menu\.c32 was not found in isolinux or syslinux-common of trixie"):
        iso.make_isolinux(ctx, tree)


# -- the UEFI disk image -------------------------------------------------------------------------------


def test_the_esp_is_what_grub_install_uefi_secure_boot_makes(make_context: MakeContext, out: Path) -> None:
    ctx, _ = make_context("--image", str(out / "x.img"), "--use-uefi", "--grub")
    request = ctx.settings.disk
    assert request is not None
    made = disk.Image(request, disk.plan(request), out / "x.img", out / "x.img", {"root": "ROOT-UUID"}, {}, "0x1",
                      contextlib.ExitStack())
    efi = arch("amd64").efi
    assert efi is not None
    for path in grub_efi.signed_files(efi).values():
        if not path.endswith(".CSV"):
            unpacked(ctx.root, path.lstrip("/"))
    unpacked(ctx.root, "usr/lib/grub/x86_64-efi/normal.mod", "usr/lib/grub/x86_64-efi/moddep.lst")
    grub_efi.fill_esp_signed(ctx, made, ctx.settings.arch)
    # the modules too, as grub-install copies them (for the menu's insmod and later installs)
    assert sorted(p.name for p in (ctx.root / "boot/grub/x86_64-efi").iterdir()) == ["moddep.lst", "normal.mod"]
    esp = ctx.root / "boot/efi/EFI"
    assert sorted(p.name for p in (esp / "debian").iterdir()) == ["fbx64.efi", "grub.cfg", "grubx64.efi",
                                                                  "mmx64.efi", "shimx64.efi"]
    assert (esp / "debian/shimx64.efi").read_bytes() == b"usr/lib/shim/shimx64.efi.signed"
    assert (esp / "debian/grubx64.efi").read_bytes() == b"usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed"
    assert (esp / "debian/grub.cfg").read_text() == ("search.fs_uuid ROOT-UUID root\n"
                                                     "set prefix=($root)'/boot/grub'\nconfigfile $prefix/grub.cfg\n")
    # The removable path: shim first, no fallback (it would write the machine's NVRAM at first boot).
    assert sorted(p.name for p in (esp / "BOOT").iterdir()) == ["BOOTX64.EFI", "grubx64.efi", "mmx64.efi"]
    assert (esp / "BOOT/BOOTX64.EFI").read_bytes() == b"usr/lib/shim/shimx64.efi.signed"


@pytest.mark.parametrize(("argv", "package"), [
    (["--arch", "amd64"], "grub-efi-amd64"), (["--arch", "amd64", "--uefi-ia32"], "grub-efi-amd64"),
    (["--arch", "i386", "--distribution", "bookworm"], "grub-efi-ia32"), (["--arch", "arm64"], "grub-efi-arm64"),
])
def test_the_removable_path_stays_current_for_the_image_s_own_grub(make_settings: MakeSettings, out: Path,
                                                                   argv: list[str], package: str) -> None:
    """i386 UEFI images never had it: the names were amd64's and arm64's, by hand (issue 22)."""
    settings = make_settings("--image", str(out / "x.img"), "--use-uefi", "--grub", "--part-type", "gpt", *argv)
    assert grub_efi.removable_path_selections(settings) == f"{package} grub2/force_efi_extra_removable boolean true\n"


# -- the boot test --------------------------------------------------------------------------------------


def test_enforcing_firmware_runs_with_smm_and_a_secure_flash(tmp_path: Path, firmware: dict[str, Path]) -> None:
    argv = qemu_command(target(make_image(tmp_path / "x.iso"), "iso", "amd64", "uefi-secure"), tmp_path)
    assert argv[argv.index("-machine") + 1] == "q35,smm=on"
    assert "driver=cfi.pflash01,property=secure,value=on" in option_values(argv, "-global")
    drives = option_values(argv, "-drive")
    assert any(d.endswith(f"file={firmware['OVMF_CODE_4M.secboot.fd']}") for d in drives)
    assert (tmp_path / "efivars-amd64.fd").read_bytes() == b"OVMF_VARS_4M.ms.fd"
    plain = qemu_command(target(make_image(tmp_path / "y.iso"), "iso", "amd64", "uefi"), tmp_path)
    assert plain[plain.index("-machine") + 1] == "q35" and "-global" not in plain
    arm = qemu_command(target(make_image(tmp_path / "z.iso"), "iso", "arm64", "uefi-secure"), tmp_path)
    assert arm[arm.index("-machine") + 1] == "virt" and "-global" not in arm  # AAVMF enforces without SMM
    assert (tmp_path / "efivars-arm64.fd").read_bytes() == b"AAVMF_VARS.ms.fd"


REFUSED = """\
BdsDxe: loading Boot0002 "UEFI QEMU DVD-ROM QM00005 " from PciRoot(0x0)/Pci(0x1F,0x2)/Sata(0x2,0xFFFF,0x0)
BdsDxe: failed to load Boot0002 "UEFI QEMU DVD-ROM QM00005 " from PciRoot(0x0)/Pci(0x1F,0x2)/Sata(0x2,0xFFFF,0x0): \
Access Denied
BdsDxe: failed to start Boot0003 "EFI Internal Shell" from Fv(7CB8BDC9-F8EB-4F34-AAEA-3EE4AF6516A1): Security Violation
BdsDxe: No bootable option or device was found.
BdsDxe: Press any key to enter the Boot Manager Menu.
"""


def test_a_refused_loader_is_named_not_timed_out() -> None:
    reading = read_console(REFUSED, finished=False, timeout=900, secure=True)
    assert not reading.passed
    assert reading.verdict == ('Secure Boot: the firmware refused the loader (BdsDxe: failed to load Boot0002 "UEFI '
                               'QEMU DVD-ROM QM00005 " from PciRoot(0x0)/Pci(0x1F,0x2)/Sata(0x2,0xFFFF,0x0): '
                               "Access Denied)")
    shim = read_console("Verification failed: (0x1A) Security Violation\n", finished=False)
    assert shim.verdict == "Secure Boot: shim refused GRUB (Verification failed: (0x1A) Security Violation)"


def test_the_guest_must_say_secure_boot_was_on(fake: Fake) -> None:
    on = " 06 00 00 00 01\nnone [integrity] confidentiality\n"
    result = fake.run(firmware="uefi-secure", secureboot=on)
    assert result.passed, result.verdict
    assert result.verdict.startswith("login prompt after ") and "; system running; Secure Boot on (lockdown: " \
        "integrity)" in result.verdict
    off = fake.run(firmware="uefi-secure", secureboot=" 06 00 00 00 00\n[none] integrity confidentiality\n")
    assert not off.passed
    assert "Secure Boot was NOT on in the guest (SecureBoot variable: off, lockdown: none)" in off.verdict
    missing = fake.run(firmware="uefi-secure")  # no UEFI variables at all
    assert not missing.passed and "SecureBoot variable: missing" in missing.verdict
    assert fake.run(firmware="uefi").passed  # plain UEFI does not ask
