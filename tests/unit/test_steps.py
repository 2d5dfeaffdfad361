"""The commands each step would run (FakeRunner) and the files it writes into a temporary root."""

from __future__ import annotations

import contextlib
import ctypes
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from vmdebootstrap import disk, downloads, values
from vmdebootstrap.context import Context, Origin
from vmdebootstrap.options import DEFAULT_MIRROR
from vmdebootstrap.outputs import squash, tarball
from vmdebootstrap.run import CommandFailed, Result
from vmdebootstrap.steps import bootstrap, customize, finish, packages, system, users

from .conftest import MakeContext, MakeSettings
from .fakes import FakeRunner

# -- bootstrap ---------------------------------------------------------------------------------------


def run_bootstrap(ctx: Context, tool: str) -> None:
    """The bootstrap step with the bootstrapper chosen and no stage cache."""
    ctx.origin = Origin(tool, "chosen by the test", None, False)
    bootstrap.run(ctx)


def test_debootstrap_default(make_settings: MakeSettings, tmp_path: Path) -> None:
    root = tmp_path / "root"
    argv = bootstrap.debootstrap_argv(make_settings(), root, None)
    assert argv == ["debootstrap", "--arch=amd64", "--force-check-gpg", "bookworm", str(root), DEFAULT_MIRROR]


def test_debootstrap_everything(make_settings: MakeSettings, tmp_path: Path) -> None:
    keyring = tmp_path / "archive.gpg"
    keyring.write_bytes(b"")
    root, cache = tmp_path / "root", tmp_path / "cache/debs"
    s = make_settings("--arch", "i386", "--variant", "minbase", "--components", "main", "--components", "contrib",
                      "--keyring", str(keyring), "--mirror", "http://m.example/debian",
                      "--debootstrapopts", "include=ca-certificates exclude=nano")
    argv = bootstrap.debootstrap_argv(s, root, cache)
    assert argv == [
        "debootstrap", "--arch=i386", "--variant=minbase", "--components=main,contrib", f"--keyring={keyring}",
        "--force-check-gpg", f"--cache-dir={cache}", "--include=ca-certificates", "--exclude=nano",
        "bookworm", str(root), "http://m.example/debian",
    ]  # fmt: skip


@pytest.mark.parametrize(
    "args",
    [
        ["--no-check-gpg"],
        ["--debootstrapopts", "no-check-gpg"],
        ["--debootstrapopts", "variant=buildd no-check-gpg"],
        ["--no-check-gpg", "--debootstrapopts", "no-check-gpg"],
    ],
)
def test_debootstrap_no_check_gpg_exactly_once(make_settings: MakeSettings, tmp_path: Path, args: list[str]) -> None:
    argv = bootstrap.debootstrap_argv(make_settings(*args), tmp_path / "root", None)
    assert argv.count("--no-check-gpg") == 1
    assert "--force-check-gpg" not in argv
    assert argv[-3:] == ["bookworm", str(tmp_path / "root"), DEFAULT_MIRROR]


def test_debootstrapopts_token_expansion(make_settings: MakeSettings) -> None:
    s = make_settings("--debootstrapopts", "variant=buildd  no-check-gpg components=main,contrib",
                      "--debootstrapopts", "merged-usr")
    assert list(s.bootstrap.extra_options) == ["--variant=buildd", "--no-check-gpg", "--components=main,contrib",
                                          "--merged-usr"]


def test_debootstrap_main_component_is_implicit(make_settings: MakeSettings, tmp_path: Path) -> None:
    argv = bootstrap.debootstrap_argv(make_settings("--components", "main"), tmp_path, None)
    assert not [a for a in argv if a.startswith("--components")]


def test_debootstrap_suite_is_the_codename(make_settings: MakeSettings, tmp_path: Path) -> None:
    argv = bootstrap.debootstrap_argv(make_settings("--distribution", "unstable"), tmp_path, None)
    assert argv[-3] == "sid"


def test_bootstrap_runs_debootstrap_into_a_new_root(make_context: MakeContext) -> None:
    ctx, runner = make_context("--cache-dir", "")
    ctx.root.rmdir()
    run_bootstrap(ctx, "debootstrap")
    assert ctx.root.is_dir()
    assert runner.calls == [bootstrap.debootstrap_argv(ctx.settings, ctx.root, None)]


def test_bootstrap_uses_the_cache(make_context: MakeContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    held: list[bool] = []
    lock_state = {"held": False}

    @contextlib.contextmanager
    def locked(_ctx: object) -> Iterator[None]:
        lock_state["held"] = True
        yield
        lock_state["held"] = False

    monkeypatch.setattr(bootstrap.cache, "locked", locked)
    runner = FakeRunner(lambda argv: held.append(lock_state["held"]) or None)
    ctx, _ = make_context("--cache-dir", str(tmp_path / "cache"), runner=runner)
    ctx.root.rmdir()
    run_bootstrap(ctx, "debootstrap")
    download, install = runner.calls
    assert f"--cache-dir={tmp_path / 'cache/debs'}" in download and "--download-only" in download
    assert f"--cache-dir={tmp_path / 'cache/debs'}" in install and "--download-only" not in install
    assert install[-2] == str(ctx.root)
    # Only the download holds the shared cache's lock: installations run side by side.
    assert held == [True, False]
    assert (tmp_path / "cache/debs/partial").is_dir()
    assert not (ctx.workdir / "download").exists()


@pytest.mark.parametrize(
    ("tail", "fragment"),
    [
        ("E: Failed getting release file http://x/dists/foo/Release", "could not fetch the Release file of"),
        ("E: Release signed by unknown key (key id 123)", "does not verify with the keyring"),
        ("E: Failed getting release signature file http://x/dists/foo/Release.gpg",
         "the Release file of 'bookworm' from http://deb.debian.org/debian/ is not signed (no InRelease, "
         "no Release.gpg): refusing an unverifiable archive (--no-check-gpg builds from it anyway, insecurely)"),
        ("W: Cannot check Release signature; keyring file not available /usr/share/keyrings/debian-archive-"
         "keyring.gpg\nE: Keyring-based check was requested; aborting accordingly",
         "found no keyring to check the archive with (install debian-archive-keyring"),
        ("something else", "command failed (exit status 1)"),
    ],
)
def test_bootstrap_failure_is_explained(make_context: MakeContext, tail: str, fragment: str) -> None:
    from vmdebootstrap.errors import BuildError

    runner = FakeRunner(lambda argv: Result(1, tail + "\n") if argv[0] == "debootstrap" else None)
    ctx, _ = make_context("--cache-dir", "", runner=runner)
    ctx.root.rmdir()
    with pytest.raises(BuildError) as info:
        run_bootstrap(ctx, "debootstrap")
    assert fragment in str(info.value)


def test_a_full_disk_in_debootstrap_log_is_carried_up(make_context: MakeContext) -> None:
    from vmdebootstrap import diskfull
    from vmdebootstrap.errors import BuildError

    def debootstrap(argv: list[str]) -> Result | None:
        if argv[0] != "debootstrap":
            return None
        # debootstrap's cp writes its complaint to debootstrap.log, not to its output.
        (ctx.root / "debootstrap").mkdir(parents=True)
        (ctx.root / "debootstrap/debootstrap.log").write_text(
            "cp: error writing '/x/root//var/cache/apt/archives/libc6.deb': No space left on device\n")
        return Result(1, "I: Validating libc6\n")

    ctx, _ = make_context("--cache-dir", "", runner=FakeRunner(debootstrap))
    ctx.root.rmdir()
    with pytest.raises(BuildError) as info:
        run_bootstrap(ctx, "debootstrap")
    assert str(info.value).endswith("/var/cache/apt/archives/libc6.deb': No space left on device")
    assert str(info.value).startswith("command failed (exit status 1): debootstrap ")
    assert diskfull.is_disk_full(info.value)


def test_debootstrap_foreign_arch(make_settings: MakeSettings, tmp_path: Path) -> None:
    argv = bootstrap.debootstrap_argv(make_settings("--arch", "arm64"), tmp_path / "root", None)
    assert argv[:3] == ["debootstrap", "--arch=arm64", "--foreign"]
    assert "--foreign" not in bootstrap.debootstrap_argv(make_settings("--arch", "i386"), tmp_path, None)


@pytest.mark.parametrize("fix_binary", [True, False])
def test_foreign_bootstrap_second_stage(make_context: MakeContext, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch, fix_binary: bool) -> None:
    from vmdebootstrap import binfmt

    interpreter = tmp_path / "host/usr/bin/qemu-aarch64-static"
    interpreter.parent.mkdir(parents=True)
    interpreter.write_bytes(b"\x7fELF qemu")
    monkeypatch.setattr(binfmt, "probe", lambda arch: binfmt.Emulation("qemu-aarch64", str(interpreter),
                                                                         fix_binary))
    ctx, runner = make_context("--arch", "arm64", "--cache-dir", "")
    ctx.root.rmdir()
    run_bootstrap(ctx, "debootstrap")
    assert runner.calls[0][:3] == ["debootstrap", "--arch=arm64", "--foreign"]
    assert runner.calls[1] == ["chroot", str(ctx.root), "/debootstrap/debootstrap", "--second-stage"]
    copied = ctx.root / str(interpreter).lstrip("/")
    assert copied.exists() == (not fix_binary)
    assert ctx.interpreter_copy == (None if fix_binary else copied)
    finish.scrub(ctx)
    assert not copied.exists()
    assert interpreter.read_bytes() == b"\x7fELF qemu"  # the host's own copy is untouched


# -- squashfs and tarball ----------------------------------------------------------------------------


def test_squashfs_argv(tmp_path: Path) -> None:
    argv = squash.squashfs_argv(tmp_path / "root", tmp_path / "out/filesystem.squashfs",
                                values.release_compression("zstd"))
    assert argv[:3] == ["mksquashfs", str(tmp_path / "root"), str(tmp_path / "out/filesystem.squashfs")]
    assert "-noappend" in argv
    assert argv[argv.index("-comp") + 1] == "zstd"
    assert "-wildcards" in argv
    assert argv[argv.index("-e"):] == ["-e", "proc/*", "sys/*", "dev/*", "run/*"]
    assert "-wildcards" in argv[: argv.index("-e")]


def test_tar_argv(tmp_path: Path) -> None:
    argv = tarball.tar_argv(tmp_path / "root", tmp_path / "x.tar.gz")
    assert argv[0] == "tar" and argv[-1] == "."
    assert "--create" in argv and "--numeric-owner" in argv
    # gzip would store the time it ran at; -n leaves it out
    assert "--use-compress-program=gzip -n" in argv and "--auto-compress" not in argv
    assert "--sort=name" not in argv  # no epoch: nothing clamped
    assert f"--file={tmp_path / 'x.tar.gz'}" in argv
    assert f"--directory={tmp_path / 'root'}" in argv
    assert "--one-file-system" in argv and "--xattrs" in argv and "--acls" in argv
    assert [a for a in argv if a.startswith("--exclude=")] == [
        "--exclude=./proc/*", "--exclude=./sys/*", "--exclude=./dev/*", "--exclude=./run/*"]


def test_tar_argv_with_an_epoch_is_reproducible(tmp_path: Path) -> None:
    argv = tarball.tar_argv(tmp_path / "root", tmp_path / "x.tar.xz", 1700000000)
    assert "--auto-compress" in argv
    for wanted in ("--sort=name", "--mtime=@1700000000", "--clamp-mtime"):
        assert wanted in argv
    pax = next(a for a in argv if a.startswith("--pax-option="))
    assert "delete=atime" in pax and "delete=ctime" in pax and "%p" not in pax


def test_tarball_make_stages_next_to_the_output(make_context: MakeContext, out: Path) -> None:
    from vmdebootstrap.publish import Outputs

    ctx, runner = make_context("--tarball", str(out / "root.tar.xz"))
    with contextlib.ExitStack() as stack:
        ctx.outputs = Outputs(stack)
        tarball.run(ctx)
        [argv] = runner.calls
        assert argv == tarball.tar_argv(ctx.root, out / ".vmdebootstrap-partial-root.tar.xz")
        # The staged name keeps the suffix, so --auto-compress still picks xz.
        assert argv[3].endswith(".tar.xz")


def test_kernel_files(tmp_path: Path) -> None:
    boot = tmp_path / "root/boot"
    boot.mkdir(parents=True)
    for name in ("vmlinuz-6.1.0-9-amd64", "vmlinuz-6.1.0-10-amd64", "initrd.img-6.1.0-10-amd64",
                 "initrd.img-6.1.0-9-amd64", "config-6.1.0-10-amd64"):
        (boot / name).write_text(name)
    (boot / "vmlinuz").symlink_to("vmlinuz-6.1.0-10-amd64")
    (boot / "grub").mkdir()
    files = squash.kernel_files(tmp_path / "root")
    names = [n for _, n in files]
    assert "grub" not in names and names.count("vmlinuz") == 1
    assert (boot / "vmlinuz-6.1.0-10-amd64", "vmlinuz") in files  # 10 is newer than 9
    assert (boot / "initrd.img-6.1.0-10-amd64", "initrd.img") in files
    assert "config-6.1.0-10-amd64" in names


def test_squash_verify_rejects_junk(make_context: MakeContext, tmp_path: Path) -> None:
    from vmdebootstrap.errors import BuildError

    ctx, runner = make_context()
    small = tmp_path / "small.squashfs"
    small.write_bytes(b"x" * 1000)
    with pytest.raises(BuildError, match="less than 1 MiB"):
        squash.verify(ctx, small)
    assert runner.calls == []


# -- users: passwords only on stdin -------------------------------------------------------------------

SECRET_ROOT = "r00t-Secret!"
SECRET_BOB = "b0b-Secret?"
HASH = "$6$salt$0123456789abcdefABCDEF"


def assert_never_on_argv(runner: FakeRunner, *secrets: str) -> None:
    for argv in runner.calls:
        for arg in argv:
            for secret in secrets:
                assert secret not in arg, argv


def verify(password: str, crypted: str) -> bool:
    """crypt(3) by the host's libcrypt, independently of passwords.py: the hash of ``password``
    with the settings (method, cost, salt) ``crypted`` carries equals it."""
    lib = ctypes.CDLL("libcrypt.so.1")
    lib.crypt.restype = ctypes.c_char_p
    lib.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    return bool(lib.crypt(password.encode(), crypted.encode()) == crypted.encode())


def test_users_plain_passwords(make_context: MakeContext) -> None:
    ctx, runner = make_context("--root-password", SECRET_ROOT, "--user", f"bob/{SECRET_BOB}", "--user", "eve",
                               "--distribution", "trixie")
    users.run(ctx)
    root = str(ctx.root)
    assert runner.calls == [
        ["chroot", root, "chpasswd", "--encrypted"],
        ["chroot", root, "adduser", "--disabled-password", "--gecos", "bob", "bob"],
        ["chroot", root, "chpasswd", "--encrypted"],
        ["chroot", root, "adduser", "--disabled-password", "--gecos", "eve", "eve"],
        ["chroot", root, "passwd", "--delete", "eve"],
    ]
    root_line, _, bob_line, _, _ = runner.inputs
    assert root_line is not None and bob_line is not None
    root_hash = root_line.removeprefix("root:").strip()
    bob_hash = bob_line.removeprefix("bob:").strip()
    # yescrypt, the hash trixie's PAM writes; a salt per user; the passwords check out
    assert root_hash.startswith("$y$j9T$") and bob_hash.startswith("$y$j9T$")
    assert root_hash.split("$")[3] != bob_hash.split("$")[3]
    assert verify(SECRET_ROOT, root_hash) and verify(SECRET_BOB, bob_hash)
    assert not verify(SECRET_BOB, root_hash)
    assert_never_on_argv(runner, SECRET_ROOT, SECRET_BOB)
    for line in (root_line, bob_line):
        assert SECRET_ROOT not in line and SECRET_BOB not in line


def test_password_hashes_come_from_the_seed(make_context: MakeContext) -> None:
    def shadow_of(*argv: str) -> list[str | None]:
        ctx, runner = make_context("--user", f"bob/{SECRET_BOB}", *argv)
        users.run(ctx)
        return [line for line in runner.inputs if line and line.startswith("bob:")]

    first = shadow_of("--seed", "one")
    assert first == shadow_of("--seed", "one")  # the same build: the same /etc/shadow
    assert first != shadow_of("--seed", "two")
    assert str(shadow_of("--seed", "one", "--distribution", "buster")[0]).startswith("bob:$6$")  # sha512
    # Without --seed the salt is random: the same output name, release and user (every default
    # build of debian-live-trixie-amd64.iso) no longer share a salt anyone can compute (issue 22).
    salts = {str(shadow_of()[0]).split("$")[3] for _ in range(3)}
    assert len(salts) == 3


def test_users_hashed_passwords_use_encrypted(make_context: MakeContext) -> None:
    ctx, runner = make_context("--root-password", f"hashed:{HASH}", "--user", f"bob/hashed:{HASH}")
    users.run(ctx)
    chpasswd = [(call, data) for call, data in zip(runner.calls, runner.inputs, strict=True)
                if call[2] == "chpasswd"]
    assert chpasswd == [(["chroot", str(ctx.root), "chpasswd", "--encrypted"], f"root:{HASH}\n"),
                        (["chroot", str(ctx.root), "chpasswd", "--encrypted"], f"bob:{HASH}\n")]
    assert_never_on_argv(runner, HASH)


def test_users_lock_root(make_context: MakeContext, caplog: pytest.LogCaptureFixture) -> None:
    ctx, runner = make_context("--lock-root-password")
    users.run(ctx)
    assert runner.calls == [["chroot", str(ctx.root), "passwd", "--lock", "root"]]
    assert caplog.records == []  # said explicitly: nothing to warn about


# The three cases of root's password (issue 18): nothing said, --empty-root-password, --root-password.


def test_users_root_is_locked_by_default_with_a_one_line_warning(make_context: MakeContext,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    ctx, runner = make_context()
    users.run(ctx)
    assert runner.calls == [["chroot", str(ctx.root), "passwd", "--lock", "root"]]
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "\n" not in warnings[0]
    assert "locked, the new default" in warnings[0] and "--empty-root-password" in warnings[0]


def test_users_an_old_config_saying_nothing_of_root_gets_it_locked(make_context: MakeContext, tmp_path: Path,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    config = tmp_path / "old.conf"
    config.write_text("[config]\nlock-root-password = False\nroot-password =\n")  # as the old --dump-config wrote
    ctx, runner = make_context("--config", str(config))
    users.run(ctx)
    assert runner.calls == [["chroot", str(ctx.root), "passwd", "--lock", "root"]]
    assert "the new default" in caplog.text


def test_users_empty_root_password_when_asked(make_context: MakeContext, caplog: pytest.LogCaptureFixture) -> None:
    ctx, runner = make_context("--empty-root-password")
    users.run(ctx)
    assert runner.calls == [["chroot", str(ctx.root), "passwd", "--delete", "root"]]
    assert "EMPTY password" in caplog.text and "the new default" not in caplog.text


def test_users_root_password_given(make_context: MakeContext, caplog: pytest.LogCaptureFixture) -> None:
    ctx, runner = make_context("--root-password", SECRET_BOB)
    users.run(ctx)
    assert runner.calls == [["chroot", str(ctx.root), "chpasswd", "--encrypted"]]
    [line] = runner.inputs
    assert line is not None and line.startswith("root:$") and verify(SECRET_BOB, line.removeprefix("root:").strip())
    assert caplog.records == []
    assert_never_on_argv(runner, SECRET_BOB)


def test_users_force_password_change_only_without_password(make_context: MakeContext) -> None:
    ctx, runner = make_context("--lock-root-password", "--force-password-change", "--user", "bob",
                               "--user", f"eve/{SECRET_BOB}")
    users.run(ctx)
    assert runner.commands("chage") == [["chage", "--lastday", "0", "bob"]]
    assert ["passwd", "--delete", "bob"] in runner.commands("passwd")
    assert ["passwd", "--delete", "eve"] not in runner.commands("passwd")
    # chage comes after the password was emptied.
    calls = [c[2:] for c in runner.calls]
    assert calls.index(["chage", "--lastday", "0", "bob"]) > calls.index(["passwd", "--delete", "bob"])
    assert_never_on_argv(runner, SECRET_BOB)


def test_no_chage_without_force_password_change(make_context: MakeContext) -> None:
    ctx, runner = make_context("--lock-root-password", "--user", "bob")
    users.run(ctx)
    assert runner.commands("chage") == []


def test_users_sudo(make_context: MakeContext) -> None:
    ctx, runner = make_context("--lock-root-password", "--sudo", "--user", "bob", "--user", "eve/x")
    users.run(ctx)
    adduser = runner.commands("adduser")
    assert ["adduser", "bob", "sudo"] in adduser and ["adduser", "eve", "sudo"] in adduser
    assert adduser.index(["adduser", "bob", "sudo"]) == \
           adduser.index(["adduser", "--disabled-password", "--gecos", "bob", "bob"]) + 1


def test_users_no_sudo_group_without_sudo(make_context: MakeContext) -> None:
    ctx, runner = make_context("--lock-root-password", "--user", "bob")
    users.run(ctx)
    assert ["adduser", "bob", "sudo"] not in runner.commands("adduser")


# -- system configuration ----------------------------------------------------------------------------


def read(root: Path, path: str) -> str:
    return (root / path).read_text()


def add_units(root: Path, *names: str) -> None:
    units = root / "usr/lib/systemd/system"
    units.mkdir(parents=True, exist_ok=True)
    for name in names:
        (units / name).write_text("")


def test_system_hostname_hosts_networkd(make_context: MakeContext) -> None:
    ctx, runner = make_context("--hostname", "live01", "--enable-dhcp")
    add_units(ctx.root, "systemd-networkd.service")
    system.run(ctx)
    root = ctx.root
    assert read(root, "etc/hostname") == "live01\n"
    hosts = read(root, "etc/hosts")
    assert "127.0.0.1\tlocalhost\n" in hosts and "127.0.1.1\tlive01\n" in hosts
    assert read(root, "etc/systemd/network/99-dhcp.network") == "[Match]\nName=e*\n\n[Network]\nDHCP=yes\n"
    assert runner.calls == [["chroot", str(root), "systemctl", "enable", "systemd-networkd"]]
    assert not (root / "etc/network/interfaces").exists()
    assert not (root / "etc/apt/sources.list").exists()


def test_system_enables_resolved_when_installed(make_context: MakeContext) -> None:
    ctx, runner = make_context()
    add_units(ctx.root, "systemd-networkd.service", "systemd-resolved.service")
    system.run(ctx)
    assert runner.commands("systemctl") == [["systemctl", "enable", "systemd-networkd"],
                                            ["systemctl", "enable", "systemd-resolved"]]
    assert not (ctx.root / "etc/systemd/network/99-dhcp.network").exists()


def test_system_ifupdown(make_context: MakeContext) -> None:
    ctx, runner = make_context("--no-systemd-networkd", "--enable-dhcp", "--serial-console")
    add_units(ctx.root, "serial-getty@.service")
    system.run(ctx)
    root = ctx.root
    assert read(root, "etc/network/interfaces") == "source-directory /etc/network/interfaces.d\n"
    assert "auto eth0\niface eth0 inet dhcp\n" in read(root, "etc/network/interfaces.d/setup")
    assert os.readlink(root / "etc/udev/rules.d/80-net-setup-link.rules") == "/dev/null"
    assert runner.commands("systemctl") == [["systemctl", "enable", "serial-getty@ttyS0.service"]]
    assert not (root / "etc/systemd/network/99-dhcp.network").exists()


def test_system_without_systemd_enables_nothing(make_context: MakeContext) -> None:
    ctx, runner = make_context("--enable-dhcp", "--serial-console")
    system.run(ctx)
    assert runner.commands("systemctl") == []


def test_system_ifupdown_without_dhcp(make_context: MakeContext) -> None:
    ctx, _ = make_context("--no-systemd-networkd")
    system.run(ctx)
    assert "eth0" not in read(ctx.root, "etc/network/interfaces.d/setup")


def test_system_configure_apt_uses_the_apt_mirror(make_context: MakeContext) -> None:
    ctx, _ = make_context("--mirror", "http://build.example/debian", "--configure-apt", "--apt-mirror",
                          "http://apt.example/debian", "--components", "main", "--components", "contrib")
    listdir = ctx.root / "etc/apt/sources.list.d"
    listdir.mkdir(parents=True)
    (listdir / "debootstrap.list").write_text("deb http://build.example/debian bookworm main\n")
    (listdir / "keep.txt").write_text("")
    system.run(ctx)
    sources = read(ctx.root, "etc/apt/sources.list")
    assert sources.splitlines() == [
        "deb http://apt.example/debian bookworm main contrib",
        "deb http://apt.example/debian bookworm-updates main contrib",
        "deb http://security.debian.org/debian-security bookworm-security main contrib",
    ]
    assert "build.example" not in sources
    assert sorted(os.listdir(listdir)) == ["keep.txt"]


def test_system_configure_apt_falls_back_to_the_build_mirror(make_context: MakeContext) -> None:
    ctx, _ = make_context("--distribution", "buster", "--mirror", "http://build.example/debian",
                          "--configure-apt")
    system.run(ctx)
    # buster predates the bullseye-security naming: no updates/security lines.
    assert read(ctx.root, "etc/apt/sources.list") == "deb http://build.example/debian buster main\n"


def test_system_without_configure_apt_keeps_sources(make_context: MakeContext) -> None:
    ctx, _ = make_context("--mirror", "http://build.example/debian")
    (ctx.root / "etc/apt").mkdir(parents=True)
    (ctx.root / "etc/apt/sources.list").write_text("original\n")
    system.run(ctx)
    assert read(ctx.root, "etc/apt/sources.list") == "original\n"


def test_system_never_writes_through_a_symlink(make_context: MakeContext, tmp_path: Path) -> None:
    host_file = tmp_path / "host-hostname"
    host_file.write_text("host's own\n")
    ctx, _ = make_context("--hostname", "inside")
    (ctx.root / "etc").mkdir()
    (ctx.root / "etc/hostname").symlink_to(host_file)
    system.run(ctx)
    assert host_file.read_text() == "host's own\n"
    assert not (ctx.root / "etc/hostname").is_symlink()
    assert read(ctx.root, "etc/hostname") == "inside\n"


# -- customisation hook -------------------------------------------------------------------------------


def test_hook_env(make_context: MakeContext) -> None:
    ctx, _ = make_context("--mirror", "http://build.example/debian", "--configure-apt", "--apt-mirror",
                          "http://apt.example/debian", "--components", "main", "--components", "non-free")
    env = customize.hook_env(ctx)
    assert env["ROOTDIR"] == env["rootdir"] == str(ctx.root)
    assert env["IMAGE"] == ""
    assert env["VMDEBOOTSTRAP_ARCH"] == "amd64"
    assert env["VMDEBOOTSTRAP_DISTRIBUTION"] == "bookworm"
    assert env["VMDEBOOTSTRAP_MIRROR"] == "http://build.example/debian"
    assert env["VMDEBOOTSTRAP_APT_MIRROR"] == "http://apt.example/debian"
    assert env["VMDEBOOTSTRAP_COMPONENTS"] == "main non-free"
    assert env["VMDEBOOTSTRAP_HELPERS"].endswith("data/customise.lib")
    assert Path(env["VMDEBOOTSTRAP_HELPERS"]).is_file()
    assert env["VMDEBOOTSTRAP_FOREIGN"] == ""
    assert env["VMDEBOOTSTRAP_RECOMMENDS"] == ""  # --recommends: "1"
    assert all(isinstance(v, str) for v in env.values())


def test_hook_env_apt_mirror_defaults_to_mirror(make_context: MakeContext) -> None:
    ctx, _ = make_context("--mirror", "http://build.example/debian")
    assert customize.hook_env(ctx)["VMDEBOOTSTRAP_APT_MIRROR"] == "http://build.example/debian"


def test_hook_env_image_is_the_file_being_written(make_context: MakeContext, out: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(out)
    ctx, _ = make_context("--image", "disk.img")
    request = ctx.settings.disk
    assert request is not None
    ctx.image = disk.Image(request, disk.plan(request), out / ".vmdebootstrap-partial-disk.img", out / "disk.img",
                           {}, {}, "0x1", contextlib.ExitStack())
    assert customize.hook_env(ctx)["IMAGE"] == str(out / ".vmdebootstrap-partial-disk.img")
    ctx, _ = make_context("--tarball", "root.tar")
    assert customize.hook_env(ctx)["IMAGE"] == ""


def test_run_hook_argv(make_context: MakeContext, tmp_path: Path) -> None:
    script = tmp_path / "hook.sh"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    ctx, runner = make_context("--customize", str(script))
    customize.run(ctx)
    assert runner.calls == [[str(script), str(ctx.root), ""]]


def test_failing_hook_names_the_script(make_context: MakeContext, tmp_path: Path) -> None:
    from vmdebootstrap.errors import BuildError

    script = tmp_path / "hook.sh"
    script.write_text("#!/bin/sh\nexit 3\n")
    script.chmod(0o755)
    runner = FakeRunner(lambda argv: Result(3, "") if argv[0] == str(script) else None)
    ctx, _ = make_context("--customize", str(script), runner=runner)
    with pytest.raises(BuildError) as info:
        customize.run(ctx)
    assert str(info.value) == f"customisation hook {script} failed (exit status 3)"


# -- packages and finishing ----------------------------------------------------------------------------


def test_packages_install(make_context: MakeContext, tmp_path: Path) -> None:
    deb = tmp_path / "local_1.0_all.deb"
    deb.write_bytes(b"deb")
    ctx, runner = make_context("--cache-dir", "", "--package", "vim", "--custom-package", str(deb), "--recommends")
    assert packages.needed(ctx.settings)
    packages.run(ctx)
    calls = runner.commands("apt-get")
    assert calls[0] == packages.apt_get("update")
    kernel = ctx.settings.kernel_package
    assert kernel == "linux-image-amd64"
    others = [p for p in packages.selected(ctx.settings) if p != kernel]
    assert "vim" in others
    # initramfs-tools before the kernel: configured together, its trigger rebuilds the initramfs.
    assert calls[1] == packages.apt_get("-o", "APT::Install-Recommends=true", "install", *others,
                                        "initramfs-tools")
    # The kernel last and alone, so that its initramfs is built once, with every hook present.
    assert calls[2] == packages.apt_get("-o", "APT::Install-Recommends=true", "install", kernel)
    assert calls[3] == packages.apt_get("install", "/tmp/vmdebootstrap-debs/local_1.0_all.deb")
    assert all(call[0] == "chroot" for call in runner.calls)
    assert not (ctx.root / packages.DEB_DIR).exists()
    assert (ctx.root / "etc/resolv.conf").is_file()


def test_no_initramfs_tools_added_for_dracut_or_without_a_kernel(make_context: MakeContext) -> None:
    for args in (["--package", "dracut"], ["--no-kernel", "--package", "vim"]):
        ctx, runner = make_context("--cache-dir", "", *args)
        packages.run(ctx)
        assert not [c for c in runner.commands("apt-get") if "initramfs-tools" in c], args


def test_packages_download_through_the_cache_and_install_outside_it(make_context: MakeContext,
                                                                   tmp_path: Path) -> None:
    cache_debs = tmp_path / "cache/debs"
    uris = "'http://m/pool/main/v/vim/vim_9.0_amd64.deb' vim_9.0_amd64.deb 1234 SHA256:ab\n"

    def responder(argv: list[str]) -> Result | None:
        if "--print-uris" in argv:
            return Result(0, uris)
        if "--download-only" in argv:
            (cache_debs / "vim_9.0_amd64.deb").write_text("deb")
        return None

    ctx, runner = make_context("--cache-dir", str(tmp_path / "cache"), "--package", "vim")
    runner.responder = responder
    packages.run(ctx)
    archives = ctx.root / "var/cache/apt/archives"
    mount_at = runner.calls.index(["mount", "--bind", str(cache_debs), str(archives)])
    umount_at = runner.calls.index(["umount", str(archives)])
    apt = [(i, c) for i, c in enumerate(runner.calls) if c[:1] == ["chroot"] and c[2] == "apt-get"]
    download = next(i for i, c in apt if "--download-only" in c)
    real_install = next(i for i, c in apt if "install" in c and "--download-only" not in c
                        and "--print-uris" not in c)
    assert mount_at < download < umount_at < real_install  # the install runs without the shared cache
    # The downloaded file is linked into the target's own archive directory.
    assert (archives / "vim_9.0_amd64.deb").read_text() == "deb"
    assert (tmp_path / "cache/lock").is_file()


@pytest.mark.parametrize("option", [("--no-check-gpg",), ("--debootstrapopts", "no-check-gpg")])
@pytest.mark.parametrize("fails", [False, True])
def test_no_check_gpg_lets_apt_take_the_unsigned_archive_for_the_step_only(make_context: MakeContext,
                                                                           option: tuple[str, ...],
                                                                           fails: bool) -> None:
    conf = packages.UNCHECKED_CONF.lstrip("/")
    seen: list[str] = []

    def responder(argv: list[str]) -> Result | None:
        if "apt-get" in argv:
            seen.append((ctx.root / conf).read_text() if (ctx.root / conf).exists() else "")
            return Result(100, "E: boom") if fails and "install" in argv else None
        return None

    ctx, _ = make_context("--cache-dir", "", "--package", "vim", *option, runner=FakeRunner(responder))
    with pytest.raises(CommandFailed) if fails else contextlib.nullcontext():
        packages.run(ctx)
    assert seen and all('Acquire::AllowInsecureRepositories "true";' in text for text in seen)
    assert not (ctx.root / conf).exists()  # the image's apt keeps checking


def test_checked_signatures_leave_apt_alone(make_context: MakeContext) -> None:
    conf = packages.UNCHECKED_CONF.lstrip("/")
    seen: list[bool] = []
    ctx, _ = make_context("--cache-dir", "", "--package", "vim", runner=FakeRunner(
        lambda argv: seen.append((ctx.root / conf).exists()) if "apt-get" in argv else None))
    packages.run(ctx)
    assert seen and not any(seen)


def test_packages_without_recommends(make_context: MakeContext) -> None:
    ctx, runner = make_context("--cache-dir", "")
    packages.run(ctx)
    assert "APT::Install-Recommends=false" in runner.commands("apt-get")[1]


def test_apt_get_is_unattended() -> None:
    argv = packages.apt_get("install", "x")
    assert argv[:3] == ["apt-get", "--yes", "--quiet"] and argv[-2:] == ["install", "x"]
    assert "Dpkg::Options::=--force-confold" in argv


def test_finish(make_context: MakeContext) -> None:
    ctx, runner = make_context()
    finish.run(ctx)
    assert runner.commands("apt-get") == [["apt-get", "clean"]]
    assert runner.commands("update-initramfs") == []  # not installed in this root
    tool = ctx.root / "usr/sbin/update-initramfs"
    tool.parent.mkdir(parents=True)
    tool.write_text("")
    finish.run(ctx)
    assert runner.commands("update-initramfs") == [["update-initramfs", "-u"]]


def test_finish_no_update_initramfs(make_context: MakeContext) -> None:
    ctx, runner = make_context("--no-update-initramfs")
    tool = ctx.root / "usr/sbin/update-initramfs"
    tool.parent.mkdir(parents=True)
    tool.write_text("")
    finish.run(ctx)
    assert runner.commands("update-initramfs") == []


def test_scrub_identity(make_context: MakeContext) -> None:
    ctx, _ = make_context("--configure-apt")
    root = ctx.root
    for path, text in (("etc/resolv.conf", "nameserver 10.0.0.1\n"), ("etc/machine-id", "abc\n"),
                       ("var/lib/dbus/machine-id", "abc\n"), ("etc/ssh/ssh_host_ed25519_key", "k"),
                       ("etc/ssh/ssh_host_ed25519_key.pub", "p"), ("var/lib/apt/lists/mirror_Packages", "x"),
                       ("var/lib/apt/lists/lock", "")):
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    finish.scrub(ctx)
    assert read(root, "etc/resolv.conf") == ""
    assert read(root, "etc/machine-id") == ""
    assert not (root / "var/lib/dbus/machine-id").exists()
    assert list((root / "etc/ssh").iterdir()) == []
    assert (root / f"etc/systemd/system/{finish.SSH_KEYGEN_UNIT}").is_file()
    assert (root / f"etc/systemd/system/multi-user.target.wants/{finish.SSH_KEYGEN_UNIT}").is_symlink()
    assert sorted(os.listdir(root / "var/lib/apt/lists")) == ["lock"]


def test_scrub_identity_with_resolved(make_context: MakeContext) -> None:
    ctx, _ = make_context()
    unit = ctx.root / "lib/systemd/system/systemd-resolved.service"
    unit.parent.mkdir(parents=True)
    unit.write_text("")
    (ctx.root / "etc").mkdir()
    finish.scrub(ctx)
    assert os.readlink(ctx.root / "etc/resolv.conf") == "../run/systemd/resolve/stub-resolv.conf"
    assert not (ctx.root / "etc/systemd/system").exists()  # no SSH keys, no unit


def test_no_copy_of_the_lent_resolv_conf_stays(make_context: MakeContext, monkeypatch: pytest.MonkeyPatch) -> None:
    """systemd-resolved's postinst moves the resolv.conf the build lent (the host's) to a backup
    that its postrm would restore; resolvconf keeps one as its "original" (issue 22)."""
    host = "nameserver 192.0.2.53\nsearch canary.example\n"
    monkeypatch.setattr(finish, "host_resolv_conf", lambda: host)
    ctx, _ = make_context()
    root = ctx.root
    ctx.lent_dns = "nameserver 198.51.100.7\n"  # what a build lent earlier (a tree from the stage cache)
    for path, text in ((finish.RESOLVED_BACKUP, ctx.lent_dns), ("/etc/resolvconf/resolv.conf.d/original", host),
                       ("/var/backups/resolv.conf", host), ("/etc/keep-similar", host + "\n"),
                       ("/usr/share/doc/example", host)):
        (root / path.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        (root / path.lstrip("/")).write_text(text)
    (root / "etc/blank").write_text("")
    finish.scrub(ctx)
    assert not (root / finish.RESOLVED_BACKUP.lstrip("/")).exists()
    assert not (root / "etc/resolvconf/resolv.conf.d/original").exists()
    assert not (root / "var/backups/resolv.conf").exists()
    assert (root / "etc/keep-similar").exists() and (root / "etc/blank").exists()
    assert (root / "usr/share/doc/example").exists()  # only where copies are kept


@pytest.mark.parametrize(("argv", "kept"), [([], False), (["--keep-apt-lists"], True)])
def test_apt_lists_go_unless_kept(make_context: MakeContext, argv: list[str], kept: bool) -> None:
    ctx, _ = make_context(*argv)
    lists = ctx.root / "var/lib/apt/lists"
    lists.mkdir(parents=True)
    (lists / "deb.debian.org_debian_dists_bookworm_InRelease").write_text("x")
    finish.scrub(ctx)
    assert (lists / "deb.debian.org_debian_dists_bookworm_InRelease").exists() == kept


def test_output_downloads_come_from_the_build_mirror(make_context: MakeContext) -> None:
    seen: dict[str, str] = {}

    def respond(argv: list[str]) -> Result | None:
        if argv[2:4] == ["sh", "-c"]:
            seen["sources"] = (ctx.root / downloads.DOWNLOAD_DIR / "build.list").read_text()
        return None

    ctx, runner = make_context("--mirror", "http://deb.debian.org/debian", "--apt-mirror",
                               "https://deb.debian.org/debian", "--configure-apt", "--distribution", "trixie",
                               runner=FakeRunner(respond))
    (ctx.root / "etc").mkdir()
    downloads.unpacked(ctx, "iso", ["grub-efi-amd64-bin"])
    # the image's sources name https, and the image may have no ca-certificates (yet)
    assert seen["sources"] == "deb http://deb.debian.org/debian trixie main\n"
    [call] = [c for c in runner.calls if c[2:4] == ["sh", "-c"]]
    assert "-o Dir::Etc::SourceList=/tmp/vmdebootstrap-downloads/build.list" in call[-1]
    assert call[-1].endswith("download grub-efi-amd64-bin")
    assert not (ctx.root / downloads.DOWNLOAD_DIR).exists()


def test_live_config_s_locale_is_generated_at_build_time(make_context: MakeContext) -> None:
    ctx, runner = make_context("--kernel-append", "quiet locales=de_DE.UTF-8,en_GB.UTF-8")
    for path in (finish.LIVE_CONFIG_LOCALES, "/usr/sbin/locale-gen"):
        (ctx.root / path.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        (ctx.root / path.lstrip("/")).write_text("")
    (ctx.root / "etc").mkdir(exist_ok=True)
    (ctx.root / "etc/locale.gen").write_text("# de_DE.UTF-8 UTF-8\n# en_GB.UTF-8 UTF-8\n# en_US.UTF-8 UTF-8\n")
    finish.pregenerate_live_locales(ctx)
    assert (ctx.root / "etc/locale.gen").read_text() == "de_DE.UTF-8 UTF-8\nen_GB.UTF-8 UTF-8\n# en_US.UTF-8 UTF-8\n"
    assert runner.commands("locale-gen") == [["locale-gen", "--keep-existing"]]
    assert finish.live_locales("") == ["en_US.UTF-8"]  # live-config's default


def test_no_live_config_no_locale_generated(make_context: MakeContext) -> None:
    ctx, runner = make_context()
    (ctx.root / "etc").mkdir(exist_ok=True)
    (ctx.root / "etc/locale.gen").write_text("# en_US.UTF-8 UTF-8\n")
    finish.pregenerate_live_locales(ctx)
    assert runner.commands("locale-gen") == []


@pytest.mark.parametrize(("argv", "kept_off"), [(["--user", "anna/pw", "--user", "bob/pw", "--sudo"], True),
                                                 ([], False)])
def test_live_config_makes_no_account_of_its_own_beside_the_users(make_context: MakeContext, argv: list[str],
                                                                   kept_off: bool) -> None:
    """live-config's user-setup would add 'user' (password 'live') beside the build's users, and
    its sudo component gives the live user NOPASSWD sudo at every boot (issue 22)."""
    ctx, _ = make_context(*argv)
    (ctx.root / "usr/lib/live/config").mkdir(parents=True)
    (ctx.root / "lib").symlink_to("usr/lib")  # merged /usr: the components are found through /lib
    finish.keep_live_config_off_the_accounts(ctx)
    state = ctx.root / "var/lib/live/config"
    marked = sorted(p.name for p in state.iterdir()) if state.exists() else []
    assert marked == (["live-debconfig_passwd", "sudo", "user-setup"] if kept_off else [])
    conf = ctx.root / "etc/live/config.conf.d/vmdebootstrap.conf"
    assert conf.is_file() == kept_off
    if kept_off:
        assert 'LIVE_USERNAME="anna"' in conf.read_text().splitlines()


def test_no_live_config_no_live_config_settings(make_context: MakeContext) -> None:
    ctx, _ = make_context("--user", "anna/pw")
    finish.keep_live_config_off_the_accounts(ctx)
    assert not (ctx.root / "var/lib/live").exists() and not (ctx.root / "etc/live").exists()


@pytest.mark.parametrize("configure", [True, False])
def test_a_mirror_s_credentials_leave_the_sources_for_auth_conf(make_context: MakeContext, configure: bool) -> None:
    """sources.list is world-readable: the password of an authenticated mirror goes to apt's
    auth.conf.d, readable by root only (issue 22)."""
    mirror = "http://builder:p%40ss@m.example/debian/"
    ctx, _ = make_context("--mirror", mirror, "--distribution", "trixie", *(["--configure-apt"] if configure else []))
    (ctx.root / "etc/apt/sources.list.d").mkdir(parents=True)
    (ctx.root / "etc/apt/sources.list").write_text(f"deb {mirror} trixie main\n")  # as the bootstrapper leaves it
    if configure:
        system.configure_apt(ctx)
    finish.scrub(ctx)
    sources = [p for p in (ctx.root / "etc/apt").rglob("*") if p.suffix in (".list", ".sources")]
    assert sources and all("p%40ss" not in p.read_text() and "builder" not in p.read_text() for p in sources)
    assert any("http://m.example/debian/" in p.read_text() for p in sources)
    auth = ctx.root / "etc/apt/auth.conf.d/90vmdebootstrap.conf"
    assert auth.read_text().splitlines()[1:] == ["machine m.example/debian/ login builder password p@ss"]
    assert auth.stat().st_mode & 0o777 == 0o600


def test_a_foreign_arm64_build_runs_its_programs_on_a_cpu_without_pointer_authentication(
        make_context: MakeContext, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("QEMU_CPU", raising=False)
    interpreter = tmp_path / "qemu-aarch64-static"  # --foreign: emulated whatever the host (no qemu needed)
    interpreter.touch()
    ctx, runner = make_context("--arch", "arm64", "--foreign", str(interpreter))
    bootstrap.set_emulated_cpu(ctx)
    assert runner.environment["QEMU_CPU"] == "cortex-a72"
    monkeypatch.setenv("QEMU_CPU", "max")  # the caller's choice wins
    bootstrap.set_emulated_cpu(ctx)
    assert runner.environment["QEMU_CPU"] == "max"
    monkeypatch.delenv("QEMU_CPU")
    native, native_runner = make_context("--arch", "arm64", runner=FakeRunner())
    object.__setattr__(native.settings, "foreign", False)  # as on an arm64 host
    bootstrap.set_emulated_cpu(native)
    assert "QEMU_CPU" not in native_runner.environment
