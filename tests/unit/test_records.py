"""The architecture and release records, and the recipe's table of steps."""

from __future__ import annotations

from pathlib import Path

import pytest

from vmdebootstrap import architectures, hostdeps, recipe, releases
from vmdebootstrap.architectures import ARCHITECTURES
from vmdebootstrap.errors import UsageError

from .conftest import MakeSettings, Vmd

# -- architectures ------------------------------------------------------------------------------------


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES), ids=str)
def test_every_architecture_record_is_consistent(arch: str) -> None:
    record = ARCHITECTURES[arch]
    assert record.name == arch
    assert record.kernel_flavour
    if record.efi is not None:
        assert record.efi.grub_platform.endswith("-efi")
        assert record.efi.removable_name.startswith("BOOT") and record.efi.removable_name.endswith(".EFI")
        assert record.efi.grub_name.startswith("grub") and record.efi.grub_name.endswith(".efi")
        assert record.efi.grub_modules_package == record.efi.grub_package + "-bin"
    if record.emulator is not None:
        assert record.firmware_names
        assert set(record.firmware_names) <= {"bios", "uefi", "uefi-secure", "u-boot", "raspi3b"}
        for firmware in record.emulator.firmwares:
            assert firmware.family in {"bios", "uefi", "u-boot", "raspi"}
            assert (firmware.code is None) == (firmware.family == "raspi")  # only raspi3b loads the kernel itself
            assert bool(firmware.payload) == bool(firmware.payload_package)
        assert ("bios" in record.firmware_names) == record.pc_bios
        assert ("uefi" in record.firmware_names) <= (record.efi is not None)
        # Secure Boot is tested where Debian signs the chain.
        assert ("uefi-secure" in record.firmware_names) == bool(record.efi and record.efi.signed)
    for host in record.native_on:
        assert host in ARCHITECTURES


def test_the_host_architecture_comes_from_the_machine() -> None:
    assert architectures.for_machine("aarch64").name == "arm64"
    assert architectures.for_machine("x86_64") is ARCHITECTURES["amd64"]
    assert architectures.for_machine("vax").name == "vax"  # unknown machines get a bare record of their own


def test_boot_test_packages_come_from_the_records() -> None:
    assert hostdeps.boot_test_packages(ARCHITECTURES["i386"]) == ["qemu-system-x86"]
    # arm64 boots a Raspberry Pi's image too: its firmware partition read by mtools, the SD card an overlay.
    assert hostdeps.boot_test_tools(ARCHITECTURES["arm64"]) == {"qemu-system-aarch64": "qemu-system-arm",
                                                               "sfdisk": "fdisk", "mcopy": "mtools",
                                                               "qemu-img": "qemu-utils"}
    assert hostdeps.boot_test_packages(ARCHITECTURES["armhf"]) == ["qemu-system-arm", "u-boot-qemu"]
    assert hostdeps.boot_test_packages(ARCHITECTURES["riscv64"]) == ["qemu-system-misc", "opensbi", "u-boot-qemu"]
    assert hostdeps.boot_test_tools(ARCHITECTURES["mips64el"]) == {}


# -- releases -------------------------------------------------------------------------------------


def test_releases_are_in_order_and_sid_is_last() -> None:
    names = releases.known()
    orders = [releases.get(name).order for name in names]
    assert orders == sorted(orders) and len(set(orders)) == len(orders)
    assert names[-1] == "sid"
    assert names.index("bookworm") < names.index("trixie") < names.index("forky")


@pytest.mark.parametrize(("release", "facts"), [
    ("wheezy", {"systemd": False, "ext4_boots": False, "uefi_arches": ("amd64",), "squashfs_compression": "xz"}),
    ("jessie", {"systemd": True, "ext4_metadata_csum": False, "security": ""}),
    ("bullseye", {"resolved_split": False, "squashfs_compression": "xz", "security": "bullseye-security",
                  "password_hash": "yescrypt"}),
    ("bookworm", {"resolved_split": True, "merged_usr": "hook", "squashfs_compression": "zstd:9",
                  "security": "bookworm-security", "updates_suite": True, "sources_format": "one-line"}),
    ("trixie", {"merged_usr": "base-files", "sources_format": "deb822", "security": "trixie-security"}),
    ("sid", {"updates_suite": False, "security": ""}),
])  # fmt: skip
def test_release_facts(release: str, facts: dict[str, object]) -> None:
    record = releases.get(release)
    assert {name: getattr(record, name) for name in facts} == facts


def test_an_unknown_codename_is_refused_unless_its_predecessor_is_named() -> None:
    with pytest.raises(UsageError) as info:
        releases.resolve("kali-rolling")
    assert str(info.value).startswith("--distribution kali-rolling: not a Debian release vmdebootstrap knows (")
    assert "bookworm, trixie" in str(info.value) and "--distribution-like" in str(info.value)
    derived = releases.resolve("kali-rolling", like="trixie")
    assert derived.name == "kali-rolling"
    assert derived.order == releases.get("trixie").order and derived.security == "kali-rolling-security"
    with pytest.raises(UsageError, match="--distribution-like hamm2: not a Debian release"):
        releases.resolve("kali-rolling", like="hamm2")


def test_unknown_codename_on_the_command_line(vmd: Vmd, out: Path, scripts: Path) -> None:
    (scripts / "noble").write_text("")
    status, _, err = vmd("--tarball", str(out / "x.tar"), "--distribution", "noble", "--dry-run")
    assert status == 2 and "--distribution noble: not a Debian release" in err
    status, stdout, err = vmd("--tarball", str(out / "x.tar"), "--distribution", "noble",
                              "--distribution-like", "bookworm", "--dry-run")
    assert (status, err) == (0, "") and "systemd-resolved" in stdout


def test_defaults_by_release_are_described_from_the_table() -> None:
    assert releases.describe_default("squashfs_compression") == "xz up to bullseye, zstd:9 from bookworm"
    assert releases.describe_default("systemd") == "False up to wheezy, True from jessie"


# -- the recipe's table ------------------------------------------------------------------------------

PREFIX = ["bootstrap", "packages", "system", "users"]


@pytest.mark.parametrize(("output", "plan"), [
    (["--tarball", "{out}/root.tar"], [*PREFIX, "finish", "tarball", "manifest"]),
    (["--squash", "{out}/live"], [*PREFIX, "finish", "squashfs", "manifest"]),
    (["--iso", "{out}/live.iso"], [*PREFIX, "finish", "squashfs", "iso", "manifest"]),
    (["--iso", "{out}/live.iso", "--squash", "{out}/live"], [*PREFIX, "finish", "squashfs", "iso", "manifest"]),
    (["--image", "{out}/x.img", "--grub"], ["partition", *PREFIX, "bootloader", "finish", "image", "manifest"]),
])  # fmt: skip
def test_plan_of_each_output_kind(make_settings: MakeSettings, out: Path, output: list[str],
                                  plan: list[str]) -> None:
    settings = make_settings(*[arg.format(out=out) for arg in output])
    assert recipe.plan(settings) == plan
    # From the stage cache the bootstrap step restores the tree the packages step made.
    assert recipe.plan(settings, cached=True) == [name for name in plan if name != "packages"]


def test_the_hook_runs_after_the_users_and_before_the_bootloader(make_settings: MakeSettings, out: Path,
                                                                 tmp_path: Path) -> None:
    hook = tmp_path / "hook.sh"
    hook.write_text("#!/bin/sh\n")
    hook.chmod(0o755)
    plan = recipe.plan(make_settings("--image", str(out / "x.img"), "--customize", str(hook)))
    assert plan == ["partition", *PREFIX, "customize", "bootloader", "finish", "image", "manifest"]


def test_every_step_has_a_distinct_name_and_sessions_are_contiguous() -> None:
    names = [step.name for step in recipe.STEPS]
    assert len(set(names)) == len(names)
    sessions = [step.session for step in recipe.STEPS if step.session]
    # A session, once left, is never entered again: its daemon block spans its steps.
    assert sessions == sorted(sessions, key=sessions.index)
    assert [step.name for step in recipe.STEPS if step.stage] == ["bootstrap", "packages"]


def test_the_boot_test_closes_the_plan(make_settings: MakeSettings, out: Path) -> None:
    settings = make_settings("--iso", str(out / "live.iso"), "--boot-test", "--user", "u/p")
    assert recipe.plan(settings)[-4:] == ["squashfs", "iso", "manifest", "boot test"]
