"""settings.validate: the old tool's checks in its order and words (features §1.3), the
27 fast option scenarios of the old yarn suite (§5), and the checks the old tool lacked."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vmdebootstrap import cli, releases, settings, values
from vmdebootstrap.errors import UsageError

from .conftest import MakeSettings, Vmd

PREFIX = "vmdebootstrap: error: "


def error(result: tuple[int, str, str]) -> str:
    status, stdout, err = result
    assert status == 2, (status, stdout, err)
    assert err.startswith(PREFIX), err
    assert err.endswith("\n") and err.count("\n") == 1, err
    return err[len(PREFIX):-1]


def accepted(result: tuple[int, str, str]) -> str:
    status, stdout, err = result
    assert (status, err) == (0, ""), (status, stdout, err)
    assert stdout.startswith("Selected packages: "), stdout
    return stdout


# -- the 27 fast scenarios of 200-fast-tests.yarn --------------------------------------------


def test_fast_01_squash_with_image_rejected(vmd: Vmd, out: Path) -> None:
    msg = error(vmd("--squash", str(out / "live"), "--image", str(out / "x.img"), "--dry-run"))
    assert msg == "--image can no longer be used with --squash"


def test_fast_02_squash_arm64_accepted(vmd: Vmd, out: Path) -> None:
    accepted(vmd("--squash", str(out / "live"), "--arch", "arm64", "--dry-run"))


def test_fast_03_uefi_grub_arm64_image_accepted(vmd: Vmd, out: Path) -> None:
    stdout = accepted(vmd("--image", str(out / "x.img"), "--arch", "arm64", "--use-uefi", "--grub", "--dry-run"))
    assert "grub-efi-arm64" in stdout


def test_fast_04_arm64_image_without_uefi_boots_with_u_boot(vmd: Vmd, out: Path) -> None:
    """The old tool refused it ("Only UEFI is supported on arm64", #845439); its extlinux default
    now means u-boot's extlinux.conf where there is no PC BIOS (issue 25)."""
    stdout = accepted(vmd("--image", str(out / "x.img"), "--arch", "arm64", "--dry-run"))
    assert "u-boot-menu" in stdout and "grub" not in stdout
    msg = error(vmd("--image", str(out / "x.img"), "--arch", "arm64", "--bootloader", "extlinux", "--dry-run"))
    assert msg == "--bootloader extlinux boots through a PC BIOS: arm64 has none"


def test_fast_05_uefi_without_grub_rejected(vmd: Vmd, out: Path) -> None:
    msg = error(vmd("--image", str(out / "x.img"), "--use-uefi", "--dry-run"))
    assert "UEFI" in msg and "Grub" in msg
    assert msg == "UEFI without Grub is not supported."


def test_fast_06_uefi_without_image_rejected(vmd: Vmd) -> None:
    msg = error(vmd("--use-uefi", "--grub", "--dry-run"))
    assert "disk image filename" in msg and "squash" in msg
    assert msg == "You must give disk image filename or use either a tarball filename or use squash"


def test_fast_07_size_100M_too_small(vmd: Vmd, out: Path) -> None:
    msg = error(vmd("--image", str(out / "x.img"), "--size=100M", "--dry-run"))
    assert msg == "A size of 100000000 bytes is too small for a bootstrap."


def test_fast_08_distribution_stable_accepted(vmd: Vmd, out: Path) -> None:
    accepted(vmd("--image", str(out / "x.img"), "--distribution=stable", "--dry-run"))


def test_fast_09_distribution_jessie_accepted(vmd: Vmd, out: Path) -> None:
    accepted(vmd("--image", str(out / "x.img"), "--distribution=jessie", "--dry-run"))


def test_fast_10_armhf_foreign_accepted(vmd: Vmd, out: Path, tmp_path: Path) -> None:
    qemu = tmp_path / "qemu-arm-static"
    qemu.write_bytes(b"\x7fELF")
    stdout = accepted(vmd("--image", str(out / "x.img"), "--arch", "armhf", "--foreign", str(qemu), "--dry-run"))
    assert "linux-image-armmp" in stdout


def test_foreign_binary_must_exist(vmd: Vmd, out: Path, tmp_path: Path) -> None:
    qemu = tmp_path / "no-qemu-arm-static"
    msg = error(vmd("--tarball", str(out / "x.tar"), "--arch", "armhf", "--foreign", str(qemu), "--dry-run"))
    assert msg == f"--foreign {qemu}: no such file (install qemu-user-static)"


def test_fast_11_uefi_on_armel_rejected(vmd: Vmd, out: Path) -> None:
    msg = error(vmd("--image", str(out / "x.img"), "--arch", "armel", "--use-uefi", "--grub", "--dry-run"))
    assert "not a supported" in msg
    assert msg == "armel is not a supported UEFI architecture"


def test_fast_12_bootoffset_with_uefi_rejected(vmd: Vmd, out: Path) -> None:
    msg = error(vmd("--image", str(out / "x.img"), "--use-uefi", "--grub", "--bootoffset", "1M", "--dry-run"))
    assert "separate boot" in msg and "not supported" in msg
    assert msg == "A separate boot partition is not supported with UEFI"


def test_fast_13_wheezy_arm64_uefi_rejected(vmd: Vmd, out: Path) -> None:
    msg = error(vmd("--image", str(out / "x.img"), "--distribution", "wheezy", "--roottype", "ext3",
                    "--arch", "arm64", "--use-uefi", "--grub", "--dry-run"))
    assert "Only amd64" in msg and "Wheezy" in msg
    assert msg == "Only amd64 supports UEFI in Wheezy"


def test_fast_14_apt_mirror_without_configure_apt_rejected(vmd: Vmd, out: Path) -> None:
    msg = error(vmd("--image", str(out / "x.img"), "--apt-mirror", "http://example.org/debian", "--dry-run"))
    assert msg == "--apt-mirror requires --configure-apt as well."


def test_fast_15_default_includes_kernel(vmd: Vmd, out: Path) -> None:
    stdout = accepted(vmd("--image", str(out / "x.img"), "--arch", "amd64", "--dry-run"))
    assert "linux-image-amd64" in stdout


def test_fast_16_no_kernel_omits_it(vmd: Vmd, out: Path) -> None:
    stdout = accepted(vmd("--image", str(out / "x.img"), "--arch", "amd64", "--no-kernel", "--dry-run"))
    assert "linux-image" not in stdout


def test_fast_17_kernel_package_replaces_it(vmd: Vmd, out: Path) -> None:
    stdout = accepted(vmd("--image", str(out / "x.img"), "--arch", "amd64", "--kernel-package", "unlikely",
                          "--dry-run"))
    assert "unlikely" in stdout and "linux-image-amd64" not in stdout


def test_fast_18_no_kernel_overrides_kernel_package(vmd: Vmd, out: Path) -> None:
    stdout = accepted(vmd("--image", str(out / "x.img"), "--arch", "amd64", "--kernel-package", "unlikely",
                          "--no-kernel", "--dry-run"))
    assert "unlikely" not in stdout and "linux-image" not in stdout


def test_fast_19_package_adds_to_kernel(vmd: Vmd, out: Path) -> None:
    stdout = accepted(vmd("--image", str(out / "x.img"), "--arch", "amd64", "--package", "unlikely",
                          "--dry-run"))
    assert "unlikely" in stdout and "linux-image-amd64" in stdout


def test_fast_20_convert_qcow2_with_tarball_rejected(vmd: Vmd, out: Path) -> None:
    msg = error(vmd("--tarball", str(out / "x.tar"), "--convert-qcow2", "--dry-run"))
    assert msg == "--convert-qcow2 can only be used with --image."


def test_fast_21_image_and_tarball_rejected(vmd: Vmd, out: Path) -> None:
    msg = error(vmd("--image", str(out / "x.img"), "--tarball", str(out / "x.tar"), "--dry-run"))
    assert "not both" in msg
    assert msg == "Use --image or --tarball, not both."


def test_fast_22_squash_and_tarball_rejected(vmd: Vmd, out: Path) -> None:
    msg = error(vmd("--squash", str(out / "live"), "--tarball", str(out / "x.tar"), "--dry-run"))
    assert "not both" in msg
    assert msg == "Use --squash or --tarball, not both."


def test_fast_23_no_networkd_no_initramfs_rejected(vmd: Vmd, out: Path) -> None:
    msg = error(vmd("--image", str(out / "x.img"), "--no-systemd-networkd", "--no-update-initramfs",
                    "--dry-run"))
    assert msg == "Disabling systemd-networkd for jessie and later requires updating the initramfs."


def test_fast_24_btrfs_with_extlinux_rejected(vmd: Vmd, out: Path) -> None:
    msg = error(vmd("--image", str(out / "x.img"), "--roottype", "btrfs", "--extlinux", "--dry-run"))
    assert "not yet supported" in msg
    assert msg == "extlinux is not yet supported on btrfs. Use grub."


def test_fast_25_btrfs_with_default_extlinux_rejected(vmd: Vmd, out: Path) -> None:
    msg = error(vmd("--image", str(out / "x.img"), "--roottype", "btrfs", "--dry-run"))
    assert msg == "extlinux is not yet supported on btrfs. Use grub."


def test_fast_26_bootflag_without_argument_rejected(vmd: Vmd, out: Path) -> None:
    msg = error(vmd("--image", str(out / "x.img"), "--dry-run", "--bootflag"))
    assert "--bootflag" in msg and "expected one argument" in msg


def test_fast_27_wheezy_ext4_rejected(vmd: Vmd, out: Path) -> None:
    msg = error(vmd("--image", str(out / "x.img"), "--distribution", "wheezy", "--dry-run"))
    assert msg == ("Wheezy images using ext4 will not be able to boot. "
                   "Please use --roottype ext2 or --roottype ext3")


# -- accepted counterparts: each rule fires only on its trigger --------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["--image", "{out}/x.img", "--roottype", "btrfs", "--grub"],
        ["--image", "{out}/x.img", "--roottype", "btrfs", "--no-extlinux"],
        ["--image", "{out}/x.img", "--roottype", "btrfs", "--bootloader", "grub-pc"],
        ["--image", "{out}/x.img", "--roottype", "btrfs", "--bootloader", "grub-efi"],
        ["--image", "{out}/x.img", "--distribution", "wheezy", "--roottype", "ext3"],
        ["--image", "{out}/x.img", "--distribution", "wheezy", "--roottype", "ext2", "--no-systemd-networkd",
         "--no-update-initramfs"],
        ["--image", "{out}/x.img", "--use-uefi", "--grub", "--esp-size", "100M"],
        ["--image", "{out}/x.img", "--esp-size", "5mib"],
        ["--image", "{out}/x.img", "--distribution", "wheezy", "--roottype", "ext3", "--use-uefi", "--grub"],
        ["--image", "{out}/x.img", "--arch", "i386", "--use-uefi", "--grub", "--distribution", "bookworm"],
        ["--image", "{out}/x.img", "--bootsize", "100M", "--bootoffset", "1M"],
        ["--image", "{out}/x.img", "--size", "100000001"],
        ["--image", "{out}/x.img", "--convert-qcow2"],
        ["--tarball", "{out}/x.tar", "--apt-mirror", "http://a.example/debian", "--configure-apt"],
        ["--tarball", "{out}/x.tar", "--no-systemd-networkd"],
        ["--tarball", "{out}/x.tar", "--no-update-initramfs"],
    ],
)
def test_rule_boundaries_accepted(vmd: Vmd, out: Path, args: list[str]) -> None:
    accepted(vmd(*[a.format(out=out) for a in args], "--dry-run"))


def test_size_boundary(vmd: Vmd, out: Path) -> None:
    msg = error(vmd("--tarball", str(out / "x.tar"), "--size", "100000000", "--dry-run"))
    assert msg == "A size of 100000000 bytes is too small for a bootstrap."
    accepted(vmd("--tarball", str(out / "x.tar"), "--size", "100000001", "--dry-run"))


def test_size_is_checked_for_tarball_and_squash_too(vmd: Vmd, out: Path) -> None:
    assert "too small" in error(vmd("--squash", str(out / "live"), "--size", "1M", "--dry-run"))


def test_distribution_must_be_a_debootstrap_script(vmd: Vmd, out: Path, scripts: Path) -> None:
    msg = error(vmd("--tarball", str(out / "x.tar"), "--distribution", "hamm", "--dry-run"))
    assert msg == "hamm is not a valid debootstrap codename."
    (scripts / "hamm").write_text("")
    accepted(vmd("--tarball", str(out / "x.tar"), "--distribution", "hamm", "--dry-run"))


@pytest.mark.parametrize("dist", ["", "."])
def test_distribution_that_names_the_scripts_directory_is_rejected(vmd: Vmd, out: Path, dist: str) -> None:
    msg = error(vmd("--tarball", str(out / "x.tar"), f"--distribution={dist}", "--dry-run"))
    assert msg == f"{dist} is not a valid debootstrap codename."


# -- the old order: when two rules are broken, the earlier one is reported -----------------------

ORDERED = [
    # (arguments breaking this rule and every later one, message of this rule)
    (["--squash", "{out}/live", "--image", "{out}/x.img", "--tarball", "{out}/x.tar", "--size", "1M",
      "--distribution", "hamm", "--apt-mirror", "http://a/", "--convert-qcow2", "--no-systemd-networkd",
      "--no-update-initramfs", "--esp-size", "1M"],
     "--image can no longer be used with --squash"),
    (["--size", "1M", "--distribution", "hamm", "--apt-mirror", "http://a/", "--convert-qcow2"],
     "You must give disk image filename or use either a tarball filename or use squash"),
    (["--tarball", "{out}/x.tar", "--image", "{out}/x.img", "--size", "1M", "--distribution", "hamm",
      "--apt-mirror", "http://a/"],
     "A size of 1000000 bytes is too small for a bootstrap."),
    (["--tarball", "{out}/x.tar", "--image", "{out}/x.img", "--distribution", "hamm", "--apt-mirror",
      "http://a/"],
     "hamm is not a valid debootstrap codename."),
    (["--tarball", "{out}/x.tar", "--squash", "{out}/live", "--apt-mirror", "http://a/", "--convert-qcow2"],
     "--apt-mirror requires --configure-apt as well."),
    (["--tarball", "{out}/x.tar", "--squash", "{out}/live", "--convert-qcow2"],
     "--convert-qcow2 can only be used with --image."),
    (["--tarball", "{out}/x.tar", "--image", "{out}/x.img", "--no-systemd-networkd", "--no-update-initramfs"],
     "Use --image or --tarball, not both."),
    (["--tarball", "{out}/x.tar", "--squash", "{out}/live", "--no-systemd-networkd", "--no-update-initramfs"],
     "Use --squash or --tarball, not both."),
    (["--image", "{out}/x.img", "--no-systemd-networkd", "--no-update-initramfs", "--roottype", "btrfs",
      "--esp-size", "1M"],
     "Disabling systemd-networkd for jessie and later requires updating the initramfs."),
    (["--image", "{out}/x.img", "--distribution", "wheezy", "--esp-size", "1M", "--arch", "arm64"],
     "Wheezy images using ext4 will not be able to boot. Please use --roottype ext2 or --roottype ext3"),
    (["--image", "{out}/x.img", "--roottype", "btrfs", "--esp-size", "1M", "--arch", "arm64"],
     "u-boot is not yet supported on btrfs. Use grub."),
    (["--image", "{out}/x.img", "--esp-size", "1M", "--arch", "arm64", "--hostname=-bad-"],
     "You must specify use-uefi for esp-size to have effect"),
    (["--image", "{out}/x.img", "--arch", "armel", "--use-uefi", "--bootsize", "100M"],
     "armel is not a supported UEFI architecture"),
    (["--image", "{out}/x.img", "--use-uefi", "--bootsize", "100M"],
     "A separate boot partition is not supported with UEFI"),
    (["--image", "{out}/x.img", "--use-uefi", "--distribution", "wheezy", "--roottype", "ext3",
      "--arch", "i386"],
     "UEFI without Grub is not supported."),
    (["--image", "{out}/x.img", "--use-uefi", "--grub", "--distribution", "wheezy", "--roottype", "ext3",
      "--arch", "i386", "--hostname=-bad-"],
     "Only amd64 supports UEFI in Wheezy"),
]


@pytest.mark.parametrize(("args", "message"), ORDERED, ids=[m for _, m in ORDERED])
def test_old_tool_order(vmd: Vmd, out: Path, args: list[str], message: str) -> None:
    assert error(vmd(*[a.format(out=out) for a in args], "--dry-run")) == message


# -- deliberate differences from the old tool ---------------------------------------------------


@pytest.mark.parametrize("output", [["--tarball", "{out}/x.tar"], ["--squash", "{out}/live"]])
def test_arm64_needs_uefi_only_for_images(vmd: Vmd, out: Path, output: list[str]) -> None:
    # The old tool demanded UEFI for arm64 tarballs too (#845439).
    accepted(vmd(*[a.format(out=out) for a in output], "--arch", "arm64", "--dry-run"))


@pytest.mark.parametrize("args", [["--distribution", "wheezy"], ["--roottype", "btrfs"]])
def test_image_filesystem_rules_do_not_apply_to_tarballs(vmd: Vmd, out: Path, args: list[str]) -> None:
    # --roottype and extlinux describe disk images only.
    accepted(vmd("--tarball", str(out / "x.tar"), *args, "--dry-run"))


def test_ext4_with_extlinux_is_not_an_error(vmd: Vmd, out: Path) -> None:
    # The old tool only printed a warning for this combination.
    accepted(vmd("--image", str(out / "x.img"), "--roottype", "ext4", "--extlinux", "--dry-run"))


# -- checks the old tool lacked ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--arch", "vax"], "--arch vax: not a Debian architecture ("),
        (["--mirror", "deb.debian.org/debian"], "--mirror deb.debian.org/debian: not a mirror URL"),
        (["--mirror", "http://has space/"], "--mirror http://has space/: not a mirror URL"),
        (["--configure-apt", "--apt-mirror", "mirror.example"], "--apt-mirror mirror.example: not a mirror URL"),
        (["--hostname=-leading"], "--hostname -leading: not a valid host name"),
        (["--hostname", "trailing-"], "--hostname trailing-: not a valid host name"),
        (["--hostname", "has_underscore"], "--hostname has_underscore: not a valid host name"),
        (["--hostname", "a" * 64], f"--hostname {'a' * 64}: not a valid host name"),
        (["--hostname", ""], "--hostname : not a valid host name"),
        (["--squash-compression", "bzip2"],
         "--squash-compression bzip2: use one of xz, zstd, gzip, lzo, lz4, lzma"),
        (["--log-level", "chatty"], "--log-level chatty: use one of debug, info, warning, error, critical, fatal"),
        (["--log-mode", "0999"], "--log-mode 0999: not an octal file mode"),
        (["--log-mode", "rw-r--r--"], "--log-mode rw-r--r--: not an octal file mode"),
        (["--variant", "min base"], "--variant min base: not a debootstrap variant (minbase or buildd; without it, "
                                    "debootstrap's default)"),
        (["--variant", "fakechroot"], "--variant fakechroot: debootstrap's variant for building without root under "
                                      "fakechroot; vmdebootstrap builds as root: use minbase or buildd"),
        (["--debootstrapopts", "variant=fakechroot"], "--debootstrapopts variant=fakechroot: debootstrap's variant "
                                                      "for building without root under fakechroot; vmdebootstrap "
                                                      "builds as root: use minbase or buildd"),
        (["--variant", "essential"], "--variant essential: not a debootstrap variant (minbase or buildd; without "
                                     "it, debootstrap's default)"),
        (["--keyring", "/nonexistent/keyring.gpg"], "--keyring /nonexistent/keyring.gpg: no such file"),
        (["--custom-package", "/nonexistent/x.deb"], "--custom-package /nonexistent/x.deb: no such file"),
        (["--workdir", "/nonexistent/dir"], "--workdir /nonexistent/dir: no such directory"),
        (["--owner", "no-such-user-vmdb"], "--owner no-such-user-vmdb: no such user on this host"),
        (["--root-password", "pw", "--lock-root-password"],
         "--root-password and --lock-root-password contradict each other"),
        (["--root-password", "pw", "--empty-root-password"],
         "--empty-root-password and --root-password contradict each other"),
        (["--lock-root-password", "--empty-root-password"],
         "--empty-root-password and --lock-root-password contradict each other"),
    ],
)
def test_new_checks(vmd: Vmd, out: Path, args: list[str], message: str | None) -> None:
    result = vmd("--tarball", str(out / "x.tar"), *args, "--dry-run")
    if message is None:
        accepted(result)
    else:
        assert error(result).startswith(message)


def test_empty_mirror_rejected(vmd: Vmd, out: Path) -> None:
    msg = error(vmd("--tarball", str(out / "x.tar"), "--mirror=", "--configure-apt", "--dry-run"))
    assert msg.startswith("--mirror ")


def test_empty_apt_mirror_means_the_build_mirror(vmd: Vmd, out: Path) -> None:
    accepted(vmd("--tarball", str(out / "x.tar"), "--apt-mirror=", "--configure-apt", "--dry-run"))


@pytest.mark.parametrize(
    "args",
    [
        ["--hostname", "node-01"], ["--hostname", "A" * 63], ["--mirror", "https://deb.debian.org/debian"],
        ["--mirror", "file:///srv/mirror"], ["--squash-compression", "zstd"], ["--log-level", "INFO"],
        ["--log-mode", "644"], ["--log-mode", "0640"], ["--variant", "minbase"], ["--owner", "root"],
        ["--lock-root-password"], ["--root-password", "pw"], ["--empty-root-password"],
    ],
)  # fmt: skip
def test_new_checks_accept_good_values(vmd: Vmd, out: Path, args: list[str]) -> None:
    accepted(vmd("--tarball", str(out / "x.tar"), *args, "--dry-run"))


def test_existing_keyring_custom_package_and_workdir_accepted(vmd: Vmd, out: Path, tmp_path: Path) -> None:
    keyring = tmp_path / "k.gpg"
    keyring.write_bytes(b"")
    deb = tmp_path / "local_1.0_all.deb"
    deb.write_bytes(b"")
    accepted(vmd("--tarball", str(out / "x.tar"), "--keyring", str(keyring), "--custom-package", str(deb),
                 "--workdir", str(tmp_path), "--dry-run"))


def test_keyring_must_be_a_file(vmd: Vmd, out: Path, tmp_path: Path) -> None:
    assert error(vmd("--tarball", str(out / "x.tar"), "--keyring", str(tmp_path), "--dry-run")) == \
           f"--keyring {tmp_path}: no such file"


# -- users and passwords ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["Bob", "1bob", "bob smith", "bob:x", "", "-bob", "b" * 33, "bob@host"])
def test_bad_user_names(vmd: Vmd, out: Path, name: str) -> None:
    msg = error(vmd("--tarball", str(out / "x.tar"), f"--user={name}/pw", "--dry-run"))
    assert msg == f"--user {name}: not a valid user name (lower case letters, digits, _ and -)"


@pytest.mark.parametrize("name", ["bob", "_svc", "user-1", "a_b", "b" * 31, "machine$"])
def test_good_user_names(vmd: Vmd, out: Path, name: str) -> None:
    accepted(vmd("--tarball", str(out / "x.tar"), "--user", name, "--dry-run"))


@pytest.mark.parametrize("users", [["bob", "bob/pw"], ["bob/a", "alice", "bob/b"], ["root/pw"]])
def test_duplicate_users_and_root_rejected(vmd: Vmd, out: Path, users: list[str]) -> None:
    args = [arg for user in users for arg in ("--user", user)]
    msg = error(vmd("--tarball", str(out / "x.tar"), *args, "--dry-run"))
    name = "root" if users == ["root/pw"] else "bob"
    assert msg == f"--user {name}: given twice (or 'root'; use --root-password for root)"


YESCRYPT = "$y$j9T$F5Jx5fExrKuPp53xLKQ..1$X3DX6M94c7o.9agCG9G317fhZg9SqC.5i5rd.RhAtQ7"
SHA512 = "$6$rounds=5000$saltsalt$Zx2vJGZd8pU4QJ5hF2.sX0dRZ3nYx0n3K8pE5Y5y4x3fQeYyGq7eCqXz2m5aVbT1a0C0d0e0f0g0h0"


@pytest.mark.parametrize("crypted", [YESCRYPT, SHA512, "$5$salt$abcdef", "$2b$12$abcdefghijk"])
def test_strong_hashes_accepted(vmd: Vmd, out: Path, crypted: str) -> None:
    accepted(vmd("--tarball", str(out / "x.tar"), "--user", f"bob/hashed:{crypted}",
                 "--root-password", f"hashed:{crypted}", "--dry-run"))


def test_hashed_passwords_parsed(make_settings: MakeSettings) -> None:
    s = make_settings("--user", f"bob/hashed:{YESCRYPT}", "--user", "eve/plain/with/slash", "--user", "mal",
                      "--root-password", f"hashed:{SHA512}")
    bob, eve, mal = s.users
    assert (bob.name, bob.password, bob.hashed) == ("bob", YESCRYPT, True)
    assert (eve.name, eve.password, eve.hashed) == ("eve", "plain/with/slash", False)
    assert (mal.name, mal.password, mal.hashed) == ("mal", None, False)
    assert s.root_password is not None
    assert (s.root_password.name, s.root_password.password, s.root_password.hashed) == ("root", SHA512, True)
    # Passwords stay out of reprs (tracebacks, logs).
    assert YESCRYPT not in repr(s.users) and SHA512 not in repr(s.root_password)


@pytest.mark.parametrize(
    ("crypted", "fragment"),
    [
        ("$1$saltsalt$qjXlx8BTAqOyYj8n0C9Z/0", "MD5 password hashes are too weak"),
        ("abJnggxhB/yWI", "not a yescrypt ($y$) or SHA-512 ($6$) hash (DES and MD5 are refused)"),
        ("..", "not a yescrypt"),
        ("", "not a yescrypt"),
        ("$6$", "not a yescrypt"),
        ("$6$salt:hash", "not a yescrypt"),
        ("$md5$salt$hash", "not a yescrypt"),
    ],
)
def test_weak_or_malformed_hashes_rejected(vmd: Vmd, out: Path, crypted: str, fragment: str) -> None:
    msg = error(vmd("--tarball", str(out / "x.tar"), "--user", f"bob/hashed:{crypted}", "--dry-run"))
    assert msg.startswith("--user bob: ") and fragment in msg
    msg = error(vmd("--tarball", str(out / "x.tar"), "--root-password", f"hashed:{crypted}", "--dry-run"))
    assert msg.startswith("--root-password: ") and fragment in msg


def test_parse_password_direct() -> None:
    assert values.password("plain", "x") == ("plain", False)
    assert values.password("hashed:$6$s$h", "x") == ("$6$s$h", True)
    with pytest.raises(UsageError, match=r"^where: MD5"):
        values.password("hashed:$1$s$h", "where")


# -- the customisation hook -------------------------------------------------------------------------------


def test_missing_customize_script(vmd: Vmd, out: Path, tmp_path: Path) -> None:
    script = tmp_path / "no-such-hook.sh"
    msg = error(vmd("--tarball", str(out / "x.tar"), "--customize", str(script), "--dry-run"))
    assert msg == f"--customize {script}: no such file"


def test_non_executable_customize_script(vmd: Vmd, out: Path, tmp_path: Path) -> None:
    script = tmp_path / "hook.sh"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o644)
    msg = error(vmd("--tarball", str(out / "x.tar"), "--customize", str(script), "--dry-run"))
    assert msg == f"--customize {script}: not an executable file"
    script.chmod(0o755)
    accepted(vmd("--tarball", str(out / "x.tar"), "--customize", str(script), "--dry-run"))


def test_customize_directory_rejected(vmd: Vmd, out: Path, tmp_path: Path) -> None:
    hookdir = tmp_path / "hooks"
    hookdir.mkdir()
    msg = error(vmd("--tarball", str(out / "x.tar"), "--customize", str(hookdir), "--dry-run"))
    assert msg == f"--customize {hookdir}: not an executable file"


def test_customize_relative_to_cwd(vmd: Vmd, out: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    script = tmp_path / "rel-hook.sh"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    monkeypatch.chdir(tmp_path)
    assert settings.find_hook("rel-hook.sh") == script
    accepted(vmd("--tarball", str(out / "x.tar"), "--customize", "rel-hook.sh", "--dry-run"))


# -- output paths ---------------------------------------------------------------------------------------------


def test_squash_pointing_at_a_file(vmd: Vmd, out: Path) -> None:
    target = out / "afile"
    target.write_text("x")
    assert error(vmd("--squash", str(target), "--dry-run")) == f"--squash {target}: exists and is not a directory"


def test_squash_existing_directory_accepted(vmd: Vmd, out: Path) -> None:
    (out / "live").mkdir()
    accepted(vmd("--squash", str(out / "live"), "--dry-run"))


@pytest.mark.parametrize("option", ["--tarball", "--image"])
def test_file_output_pointing_at_a_directory(vmd: Vmd, out: Path, option: str) -> None:
    assert error(vmd(option, str(out), "--dry-run")) == f"{option} {out}: is a directory"


@pytest.mark.parametrize("option", ["--tarball", "--squash", "--image"])
@pytest.mark.parametrize("path", ["/", "/etc", "/usr", "/proc"])
def test_output_on_system_directories_refused(vmd: Vmd, option: str, path: str) -> None:
    assert error(vmd(option, path, "--dry-run")) == f"{option} {path}: refusing to write into {path}"


def test_output_on_home_refused(vmd: Vmd, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert error(vmd("--squash", str(tmp_path), "--dry-run")) == \
           f"--squash {tmp_path}: refusing to write into {tmp_path}"


def test_output_symlink_to_root_refused(vmd: Vmd, tmp_path: Path) -> None:
    link = tmp_path / "sneaky"
    link.symlink_to("/")
    assert error(vmd("--squash", str(link), "--dry-run")) == f"--squash {link}: refusing to write into /"


def test_missing_output_directories_are_accepted(vmd: Vmd, tmp_path: Path) -> None:
    # They are created by the build (and removed again if it fails).
    target = tmp_path / "missing" / "deeper" / "x.tar"
    status, _, _ = vmd("--tarball", str(target), "--dry-run")
    assert status == 0
    assert not (tmp_path / "missing").exists()  # validation creates nothing


def test_output_below_a_file_is_refused(vmd: Vmd, tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("")
    target = tmp_path / "afile" / "sub" / "x.iso"
    assert error(vmd("--iso", str(target), "--dry-run")) == f"--iso {target}: {tmp_path / 'afile'} is not a directory"


# -- validate() directly ---------------------------------------------------------------------------------------------


def test_validate_returns_frozen_settings(scripts: Path, out: Path) -> None:
    raw = cli.load(["--no-default-configs", "--debootstrap-scripts", str(scripts), "--distribution",
                       "bookworm", "--tarball", str(out / "x.tar"), "--apt-mirror", "http://apt.example/d/",
                       "--configure-apt"]).values
    s = settings.validate(raw)
    assert (s.arch.name, s.release.name) == ("amd64", "bookworm")
    assert s.mirrors.image == "http://apt.example/d/"
    assert s.kernel_package == "linux-image-amd64"
    assert not s.foreign
    with pytest.raises(AttributeError):
        s.arch = "i386"  # type: ignore[misc]
    # The returned values are a copy: later changes to the input do not leak in.
    raw["hostname"] = "changed"
    assert s.hostname == "debian"


def test_validate_has_no_side_effects(scripts: Path, out: Path) -> None:
    before = sorted(os.listdir(out))
    values = cli.load(["--no-default-configs", "--debootstrap-scripts", str(scripts), "--distribution",
                          "bookworm", "--squash", str(out / "live")]).values
    settings.validate(values)
    assert sorted(os.listdir(out)) == before


def test_symbolic_suite_becomes_a_codename(make_settings: MakeSettings) -> None:
    assert make_settings("--distribution", "unstable").release.name == "sid"
    assert make_settings("--distribution", "stable").release.name in releases.known()


@pytest.mark.parametrize(("argv", "message"), [
    (["--squash-compression", "zstd:23"], "--squash-compression zstd:23: zstd levels: 1-22"),
    (["--squash-compression", "xz:9"], "--squash-compression xz:9: xz levels: none"),
    (["--squash-compression", "gzip:x"], "--squash-compression gzip:x: gzip levels: 1-9"),
    (["--bootstrapper", "cdebootstrap"], "--bootstrapper cdebootstrap: use auto, mmdebstrap or debootstrap"),
])
def test_compression_level_and_bootstrapper_are_checked(make_settings: MakeSettings, argv: list[str],
                                                        message: str) -> None:
    with pytest.raises(UsageError) as caught:
        make_settings(*argv)
    assert str(caught.value) == message


def test_components_given_with_commas_are_each_a_component(make_settings: MakeSettings) -> None:
    """--components main,contrib on the command line, as --package a,b and as a config file's
    list: two components (the sources line had "main,contrib" as one)."""
    assert make_settings("--components", "main,contrib").mirrors.components == ("main", "contrib")
    assert make_settings("--components", "main", "--components", "contrib, non-free-firmware",
                         "--components", "main").mirrors.components == ("main", "contrib", "non-free-firmware")
