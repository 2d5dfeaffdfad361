"""What differs by release, as a build sees it: trixie's deb822 sources, testing and unstable
by codename, the mirror's answer for stable, and the refusals of what a release no longer
ships (issue 14)."""

from __future__ import annotations

from pathlib import Path

import pytest

from vmdebootstrap import releases
from vmdebootstrap.errors import BuildError
from vmdebootstrap.run import CommandFailed, Result
from vmdebootstrap.steps import bootstrap, finish, system

from .conftest import MakeContext, MakeSettings, Vmd
from .fakes import FakeRunner

# -- refusals: one line, exit 2, nothing created ------------------------------------------------------


@pytest.mark.parametrize(("args", "message"), [
    (["--arch", "i386", "--distribution", "trixie"],
     "--arch i386: trixie has no kernel for i386 (its i386 userland is for amd64 machines): build a chroot or "
     "tarball with --no-kernel, or a bootable i386 system with --distribution bookworm"),
    (["--arch", "i386", "--distribution", "forky", "--iso", "{out}/x.iso"],
     "--arch i386: forky has no kernel for i386"),
    (["--arch", "armel", "--distribution", "trixie"],
     "--arch armel: the only armel kernel in trixie is linux-image-rpi (Raspberry Pi 1 and Zero): name it with "
     "--kernel-package linux-image-rpi, or build with --no-kernel"),
    (["--arch", "mips64el", "--distribution", "trixie"],
     "--arch mips64el: trixie has no mips64el (its architectures: amd64, arm64, armel, armhf, i386, ppc64el, "
     "riscv64, s390x); bookworm has it: --distribution bookworm"),
    (["--arch", "armel", "--distribution", "forky", "--no-kernel"],
     "--arch armel: forky has no armel (its architectures: amd64, arm64, armhf, i386, loong64, ppc64el, riscv64, "
     "s390x); trixie has it: --distribution trixie"),
    (["--arch", "riscv64", "--distribution", "bookworm"], "--arch riscv64: bookworm has no riscv64"),
    (["--arch", "armhf", "--distribution", "trixie", "--iso", "{out}/x.iso"],
     "--iso is not supported for armhf: it has no UEFI bootloader this tool puts on an ISO (only amd64, i386, "
     "arm64)"),
])  # fmt: skip
def test_what_a_release_does_not_ship_is_refused_before_anything_happens(vmd: Vmd, out: Path, args: list[str],
                                                                        message: str) -> None:
    argv = [arg.format(out=out) for arg in args]
    if not any(arg == "--iso" for arg in argv):
        argv += ["--tarball", str(out / "sub/x.tar")]
    status, stdout, err = vmd(*argv)
    assert (status, stdout) == (2, "")
    assert err.startswith(f"vmdebootstrap: error: {message}") and err.count("\n") == 1, err
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("args", [
    ["--arch", "i386", "--distribution", "trixie", "--no-kernel"],  # a chroot or tarball
    ["--arch", "i386", "--distribution", "bookworm"],
    ["--arch", "armel", "--distribution", "trixie", "--kernel-package", "linux-image-rpi"],
    ["--arch", "riscv64", "--distribution", "trixie"],
    ["--arch", "sparc64", "--distribution", "sid"],  # debian-ports: not the release's list
])  # fmt: skip
def test_what_a_release_ships_is_accepted(vmd: Vmd, out: Path, args: list[str]) -> None:
    status, stdout, err = vmd(*args, "--tarball", str(out / "x.tar"), "--dry-run")
    assert (status, err) == (0, ""), err
    assert stdout.startswith("Selected packages: ")


# -- testing and unstable by codename --------------------------------------------------------------------


def test_a_release_newer_than_debootstraps_scripts_takes_the_newest_script(make_settings: MakeSettings,
                                                                        scripts: Path, tmp_path: Path) -> None:
    assert not (scripts / "forky").exists() and (scripts / "trixie").exists()
    forky = make_settings("--distribution", "forky")
    assert forky.release.name == "forky"
    assert forky.bootstrap.script == scripts / "trixie"
    argv = bootstrap.debootstrap_argv(forky, tmp_path / "root", None)
    assert argv[-4:] == ["forky", str(tmp_path / "root"), "http://deb.debian.org/debian/", str(scripts / "trixie")]
    assert make_settings("--distribution", "trixie").bootstrap.script is None  # its own script
    assert make_settings("--distribution", "sid").release.name == "sid"


def test_an_old_release_without_a_script_is_still_refused(vmd: Vmd, out: Path) -> None:
    status, _, err = vmd("--tarball", str(out / "x.tar"), "--distribution", "hamm", "--dry-run")
    assert (status, err) == (2, "vmdebootstrap: error: hamm is not a valid debootstrap codename.\n")


def test_stable_is_what_the_mirror_says(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(releases, "DISTRO_INFO_CSV", tmp_path / "absent.csv")
    asked: list[str] = []

    def mirror(suite: str) -> str | None:
        asked.append(suite)
        return {"stable": "trixie", "testing": "forky"}.get(suite)

    assert releases.resolve("stable", ask=mirror).name == "trixie"
    assert releases.resolve("testing", ask=mirror).name == "forky"
    assert releases.resolve("trixie", ask=mirror).name == "trixie"
    assert asked == ["stable", "testing"]  # codenames are not asked about
    # A mirror that does not answer, or answers with a name the table does not know: the table.
    assert releases.resolve("stable", ask=lambda _suite: None).name == "trixie"
    assert releases.resolve("oldstable", ask=lambda _suite: "kali-rolling").name == "bookworm"


def test_an_expired_release_file_is_explained(make_context: MakeContext) -> None:
    ctx, _ = make_context("--distribution", "forky")
    tail = ["E: Release file for http://deb.debian.org/debian/dists/forky/InRelease is expired (invalid since "
            "23d 3h 36min 49s). Updates for this repository will not be applied."]
    message = bootstrap._explain(CommandFailed(["mmdebstrap"], 25, tail), ctx.settings)
    assert message.startswith("the Release file of 'forky' from http://deb.debian.org/debian/ has expired")
    assert "--no-check-valid-until" in message


def test_no_check_valid_until_reaches_every_apt_and_leaves_the_image(make_context: MakeContext) -> None:
    ctx, _ = make_context("--distribution", "forky", "--no-check-valid-until", "--cache-dir", "")
    argv = bootstrap.mmdebstrap_argv(ctx.settings, ctx.root, None)
    assert '--aptopt=Acquire::Check-Valid-Until "false"' in argv
    ctx.origin = bootstrap.Origin("debootstrap", "chosen by the test", None, False)
    ctx.root.rmdir()
    bootstrap.run(ctx)
    conf = ctx.root / bootstrap.NO_VALID_UNTIL_CONF.lstrip("/")
    assert 'Acquire::Check-Valid-Until "false";' in conf.read_text()
    finish.scrub(ctx)
    assert not conf.exists()
    checked, _ = make_context("--distribution", "forky")
    assert not [a for a in bootstrap.mmdebstrap_argv(checked.settings, checked.root, None) if "Valid-Until" in a]


def test_a_failed_bootstrap_of_an_expired_release_names_it(make_context: MakeContext) -> None:
    expired = "E: Release file for http://x/dists/forky/InRelease is expired (invalid since 2d).\n"
    runner = FakeRunner(lambda argv: Result(25, expired) if argv[0] == "mmdebstrap" else None)
    ctx, _ = make_context("--distribution", "forky", "--cache-dir", "", runner=runner)
    ctx.origin = bootstrap.Origin("mmdebstrap", "chosen by the test", None, False)
    with pytest.raises(BuildError, match="has expired"):
        bootstrap.run(ctx)


# -- the image's apt sources -------------------------------------------------------------------------


def keyring(root: Path, name: str) -> None:
    path = root / "usr/share/keyrings" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"keys")


def test_trixie_gets_deb822_sources_naming_its_keyring(make_context: MakeContext) -> None:
    ctx, _ = make_context("--distribution", "trixie", "--configure-apt", "--apt-mirror", "https://apt.example/debian",
                          "--components", "main", "--components", "non-free-firmware")
    keyring(ctx.root, "debian-archive-keyring.pgp")
    (ctx.root / "etc/apt/sources.list.d").mkdir(parents=True)
    (ctx.root / "etc/apt/sources.list").write_text("deb http://build.example/debian trixie main\n")
    (ctx.root / "etc/apt/sources.list.d/old.list").write_text("deb http://build.example/debian trixie main\n")
    system.run(ctx)
    assert not (ctx.root / "etc/apt/sources.list").exists()
    assert sorted(p.name for p in (ctx.root / "etc/apt/sources.list.d").iterdir()) == ["debian.sources"]
    assert (ctx.root / "etc/apt/sources.list.d/debian.sources").read_text() == (
        "Types: deb\n"
        "URIs: https://apt.example/debian\n"
        "Suites: trixie trixie-updates\n"
        "Components: main non-free-firmware\n"
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.pgp\n"
        "\n"
        "Types: deb\n"
        "URIs: http://security.debian.org/debian-security\n"
        "Suites: trixie-security\n"
        "Components: main non-free-firmware\n"
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.pgp\n")


def test_sid_has_one_stanza_and_bookworm_keeps_the_one_line_file(make_context: MakeContext) -> None:
    ctx, _ = make_context("--distribution", "sid", "--configure-apt")
    keyring(ctx.root, "debian-archive-keyring.gpg")
    system.run(ctx)
    sources = (ctx.root / "etc/apt/sources.list.d/debian.sources").read_text()
    assert "Suites: sid\n" in sources and sources.count("Types: deb") == 1
    assert "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg" in sources
    old, _ = make_context("--distribution", "bookworm", "--configure-apt")
    system.run(old)
    assert (old.root / "etc/apt/sources.list").read_text().startswith("deb http://deb.debian.org/debian/ bookworm ")
    assert not (old.root / "etc/apt/sources.list.d/debian.sources").exists()
