"""The dry-run package list (features §1.4), and the architecture and release records."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest

from vmdebootstrap import architectures, releases, settings
from vmdebootstrap.steps import packages as selection
from vmdebootstrap.steps import users

from .conftest import MakeContext, MakeSettings, Vmd, selected_packages


def packages(vmd: Vmd, out: Path, *args: str) -> list[str]:
    status, stdout, err = vmd("--tarball", str(out / "x.tar"), "--distribution", "bookworm", *args, "--dry-run")
    assert (status, err) == (0, ""), err
    return selected_packages(stdout)


def test_default_list(vmd: Vmd, out: Path) -> None:
    assert packages(vmd, out, "--arch", "amd64") == ["acpid", "linux-image-amd64", "zstd", "systemd-resolved"]


def test_default_arch_is_the_host_arch(vmd: Vmd, out: Path) -> None:
    assert "linux-image-amd64" in packages(vmd, out)


def test_no_kernel_omits_it(vmd: Vmd, out: Path) -> None:
    # No kernel: not a bootable system, so no network stack either (a container tarball).
    assert packages(vmd, out, "--no-kernel") == ["acpid"]


def test_kernel_package_replaces_it(vmd: Vmd, out: Path) -> None:
    assert packages(vmd, out, "--kernel-package", "linux-image-rt-amd64") == \
           ["acpid", "linux-image-rt-amd64", "zstd", "systemd-resolved"]


def test_no_kernel_overrides_kernel_package(vmd: Vmd, out: Path) -> None:
    result = packages(vmd, out, "--kernel-package", "linux-image-rt-amd64", "--no-kernel")
    assert not [p for p in result if p.startswith("linux-image")]


def test_package_adds_sudo_adds_and_order_kept(vmd: Vmd, out: Path) -> None:
    assert packages(vmd, out, "--package", "zsh", "--package", "bash-completion", "--sudo", "--package", "apt") == \
           ["zsh", "bash-completion", "apt", "acpid", "sudo", "linux-image-amd64", "zstd", "systemd-resolved"]


def test_no_acpid(vmd: Vmd, out: Path) -> None:
    assert "acpid" not in packages(vmd, out, "--no-acpid")


def test_no_duplicates(vmd: Vmd, out: Path) -> None:
    result = packages(vmd, out, "--package", "sudo", "--package", "vim", "--package", "vim", "--sudo",
                      "--package", "linux-image-amd64", "--package", "acpid")
    assert result == ["sudo", "vim", "linux-image-amd64", "acpid", "zstd", "systemd-resolved"]


def test_package_list_from_config_file(vmd: Vmd, out: Path, tmp_path: Path) -> None:
    conf = tmp_path / "p.conf"
    conf.write_text("[config]\npackage = less, vim\nsudo = yes\nno-acpid = yes\n")
    assert packages(vmd, out, "--config", str(conf)) == ["less", "vim", "sudo", "linux-image-amd64",
                                                        "zstd", "systemd-resolved"]


def test_foreign_arch_gets_no_acpid(vmd: Vmd, out: Path, tmp_path: Path) -> None:
    # As the old tool: acpid only when the build runs natively (not with --foreign / qemu).
    assert packages(vmd, out, "--arch", "armhf") == ["linux-image-armmp", "zstd", "systemd-resolved"]
    qemu = tmp_path / "qemu-x86_64-static"
    qemu.write_bytes(b"\x7fELF")
    assert "acpid" not in packages(vmd, out, "--arch", "amd64", "--foreign", str(qemu))


def test_native_companion_arch_keeps_acpid(vmd: Vmd, out: Path) -> None:
    assert packages(vmd, out, "--arch", "i386")[:2] == ["acpid", "linux-image-686-pae"]


def test_arm64_on_arm64_host_keeps_acpid(vmd: Vmd, out: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(architectures, "host", lambda: architectures.ARCHITECTURES["arm64"])
    assert packages(vmd, out, "--arch", "arm64") == ["acpid", "linux-image-arm64", "zstd", "systemd-resolved"]
    assert packages(vmd, out, "--arch", "armhf")[:2] == ["acpid", "linux-image-armmp"]


def test_systemd_resolved_only_with_networkd_from_bookworm(vmd: Vmd, out: Path) -> None:
    assert "systemd-resolved" not in packages(vmd, out, "--no-systemd-networkd")
    status, stdout, _ = vmd("--tarball", str(out / "x.tar"), "--distribution", "bullseye", "--dry-run")
    assert status == 0 and "systemd-resolved" not in selected_packages(stdout)
    status, stdout, _ = vmd("--tarball", str(out / "x.tar"), "--distribution", "trixie", "--dry-run")
    assert status == 0 and "systemd-resolved" in selected_packages(stdout)


def test_image_bootloader_packages(vmd: Vmd, out: Path) -> None:
    def image(*args: str) -> list[str]:
        status, stdout, err = vmd("--image", str(out / "x.img"), "--distribution", "bookworm", *args, "--dry-run")
        assert status == 0, err
        return selected_packages(stdout)

    assert image("--use-uefi", "--grub", "--no-secure-boot") == ["acpid", "linux-image-amd64", "zstd",
                                                                "grub-efi-amd64", "systemd-resolved"]
    # Secure Boot by default: shim signed by Microsoft, MokManager, GRUB signed by Debian.
    assert image("--use-uefi", "--grub") == ["acpid", "linux-image-amd64", "zstd", "grub-efi-amd64", "shim-signed",
                                            "shim-helpers-amd64-signed", "grub-efi-amd64-signed", "systemd-resolved"]
    assert "grub-efi-ia32-bin" in image("--use-uefi", "--grub", "--uefi-ia32")
    assert "grub-efi-ia32" in image("--arch", "i386", "--use-uefi", "--grub")
    assert "grub-pc" in image("--grub")
    assert "grub-pc" not in image("--grub", "--use-uefi")
    assert not [p for p in image() if p.startswith("grub")]
    # grub-pc is for PCs only: refused before anything, as its registry entry says (it used to
    # build an image with no bootloader package, which failed late).
    status, _, err = vmd("--image", str(out / "x.img"), "--arch", "armhf", "--grub", "--dry-run")
    assert (status, err) == (2, "vmdebootstrap: error: --bootloader grub-pc boots through a PC BIOS: armhf has "
                                "none\n")
    # Bootloaders never go into tarballs.
    assert not [p for p in packages(vmd, out, "--grub") if p.startswith("grub")]


def test_select_packages_direct(make_settings: MakeSettings) -> None:
    args = ("--package", "b", "--package", "a", "--sudo", "--no-acpid", "--no-systemd-networkd")
    assert selection.selected(make_settings(*args, "--arch", "ppc64el")) == \
        ("b", "a", "sudo", "linux-image-powerpc64le", "zstd")
    assert selection.selected(make_settings(*args, "--arch", "i386", "--distribution", "jessie")) == \
        ("b", "a", "sudo", "linux-image-586")


# -- what the accounts need, in every variant (issue 22: trixie's minbase has no adduser) ----------


VARIANTS = ([], ["--variant", "minbase"], ["--variant", "buildd"], ["--debootstrapopts", "variant=minbase"])
ACCOUNTS = (
    [], ["--lock-root-password"], ["--root-password", "pw"], ["--empty-root-password"],
    ["--user", "bob/pw"], ["--user", "bob/pw", "--sudo"], ["--user", "bob", "--force-password-change"],
    ["--user", "bob/hashed:$6$salt$" + "x" * 86, "--user", "eve/pw", "--sudo", "--root-password", "pw"],
)


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda a: " ".join(a) or "default")
@pytest.mark.parametrize("accounts", ACCOUNTS, ids=lambda a: " ".join(a) or "none")
@pytest.mark.parametrize("suite", ["bookworm", "trixie", "sid"])
def test_every_program_the_users_step_runs_is_installed_in_every_variant(
        make_context: MakeContext, variant: list[str], accounts: list[str], suite: str) -> None:
    ctx, runner = make_context("--distribution", suite, *variant, *accounts)
    users.run(ctx)
    selected = selection.selected(ctx.settings)
    programs = {call[2] for call in runner.calls}  # each call is chroot ROOT PROGRAM ...
    assert programs, "the users step ran nothing"
    for program in programs:
        package = users.PROGRAMS[program]  # a program missing here is one nobody checked
        assert package in users.REQUIRED or package in selected, (program, selected)


def test_adduser_comes_with_users_only(make_settings: MakeSettings) -> None:
    assert "adduser" in selection.selected(make_settings("--variant", "minbase", "--user", "bob/pw"))
    assert "adduser" not in selection.selected(make_settings("--variant", "minbase", "--lock-root-password"))


@pytest.mark.parametrize(("args", "wanted"), [
    (["--mirror", "https://m.example/debian/"], True),  # the image keeps the build's sources
    (["--mirror", "http://m.example/debian/"], False),
    (["--configure-apt", "--apt-mirror", "https://m.example/debian/"], True),
    (["--configure-apt", "--apt-mirror", "http://m.example/debian/", "--mirror", "https://b.example/debian/"],
     False),
    (["--configure-apt", "--mirror", "https://b.example/debian/"], True),
])
def test_ca_certificates_for_an_https_apt_source(make_settings: MakeSettings, args: list[str], wanted: bool) -> None:
    assert ("ca-certificates" in selection.selected(make_settings(*args))) == wanted


# -- the architecture and release records ----------------------------------------------------


@pytest.mark.parametrize(
    ("arch", "suite", "kernel"),
    [
        ("amd64", "bookworm", "linux-image-amd64"),
        ("arm64", "bookworm", "linux-image-arm64"),
        ("armhf", "bookworm", "linux-image-armmp"),
        ("armhf", "jessie", "linux-image-armmp"),
        ("i386", "bookworm", "linux-image-686-pae"),
        ("i386", "stretch", "linux-image-686-pae"),
        ("i386", "jessie", "linux-image-586"),
        ("i386", "wheezy", "linux-image-486"),
        ("amd64", "wheezy", "linux-image-amd64"),
        ("ppc64el", "bookworm", "linux-image-powerpc64le"),
        ("s390x", "bookworm", "linux-image-s390x"),
        ("riscv64", "trixie", "linux-image-riscv64"),
        ("sparc64", "sid", "linux-image-sparc64"),
    ],
)
def test_default_kernel(arch: str, suite: str, kernel: str) -> None:
    assert settings.default_kernel(architectures.ARCHITECTURES[arch], releases.get(suite)) == kernel


def test_runs_natively() -> None:
    def natively(arch: str, host: str | None = None) -> bool:
        known = architectures.ARCHITECTURES
        return architectures.runs_natively(known[arch], known[host] if host else None)

    assert natively("amd64", "amd64")
    assert natively("i386", "amd64")
    assert not natively("arm64", "amd64")
    assert natively("armhf", "arm64")
    assert not natively("amd64", "arm64")
    # Without a host, the (pinned) host architecture is used.
    assert natively("amd64") and not natively("armhf")


def test_codename_without_distro_info(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(releases, "DISTRO_INFO_CSV", tmp_path / "absent.csv")
    assert releases.codename("stable") == "trixie"  # the table knows trixie is stable
    assert releases.codename("oldstable") == "bookworm"
    assert releases.codename("oldoldstable") == "bullseye"
    assert releases.codename("testing") == "forky"
    assert releases.codename("unstable") == "sid"
    assert releases.codename("Jessie") == "jessie"
    assert releases.codename("bookworm") == "bookworm"


def test_codename_with_distro_info(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    csv = tmp_path / "debian.csv"
    csv.write_text("version,codename,series,created,release,eol\n"
                   "11,Bullseye,bullseye,2019-07-06,2021-08-14,2024-08-14\n"
                   "12,Bookworm,bookworm,2021-08-14,2023-06-10,2026-06-10\n"
                   "13,Trixie,trixie,2023-06-10,2025-08-09\n"
                   "14,Forky,forky,2025-08-09\n"
                   ",Sid,sid,1993-08-16\n")
    monkeypatch.setattr(releases, "DISTRO_INFO_CSV", csv)
    assert releases.codename("stable", datetime.date(2025, 1, 1)) == "bookworm"
    assert releases.codename("testing", datetime.date(2025, 1, 1)) == "trixie"
    assert releases.codename("stable", datetime.date(2025, 9, 1)) == "trixie"
    assert releases.codename("oldstable", datetime.date(2025, 9, 1)) == "bookworm"
    assert releases.codename("testing", datetime.date(2025, 9, 1)) == "forky"


def test_release_order() -> None:
    def at_least(release: str, other: str) -> bool:
        return releases.get(release).at_least(other)

    assert at_least("bookworm", "bookworm")
    assert at_least("trixie", "bookworm")
    assert not at_least("bullseye", "bookworm")
    assert at_least("sid", "bookworm")  # sid sorts last
    assert releases.get("wheezy").order < releases.get("jessie").order
