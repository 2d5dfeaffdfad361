"""--report FILE: written by main.run_build on success and on failure, and valid against the schema
that docs/report.md documents (version 1).

The builds run the real recipe against a FakeRunner that plays debootstrap, tar, mksquashfs
and apt-helper (which fetches the mirror's InRelease file).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from vmdebootstrap import main, options, recipe, report, secret, ui
from vmdebootstrap.boot.console import BootResult
from vmdebootstrap.run import Result

from ..report_schema import schema, validate
from .conftest import MakeSettings
from .fakes import FakeRunner
from .test_main import REAL_RUN_BUILD
from .test_recipe import Responder, sboms

SECRET = "Rep0rt-S3cret"
INRELEASE = """\
-----BEGIN PGP SIGNED MESSAGE-----
Hash: SHA512

Origin: Debian
Label: Debian
Suite: stable
Version: 13.2
Codename: trixie
Date: Sat, 15 Nov 2025 09:42:19 UTC
Acquire-By-Hash: yes
Architectures: all amd64 arm64
Components: main contrib non-free-firmware non-free
Description: Debian 13.2 Released 15 November 2025
SHA256:
 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef 1234 main/binary-amd64/Packages
-----BEGIN PGP SIGNATURE-----

iQIzBAEBCgAdFiEE
-----END PGP SIGNATURE-----
"""
DPKG_STATUS = "".join(f"Package: p{n}\nStatus: install ok installed\nVersion: 1\n\n" for n in range(7)) + \
    "Package: gone\nStatus: deinstall ok config-files\nVersion: 1\n"


class Mirror(Responder):
    """The recipe's Responder, plus the mirror's InRelease file and dpkg's status in the tree."""

    def __call__(self, argv: list[str]) -> Result | None:
        command = argv[2:] if argv[0] == "chroot" else argv
        if command[0].endswith("apt-helper") and "download-file" in command:
            if command[-2].endswith("/InRelease"):
                Path(command[-1]).write_text(INRELEASE)
                return Result(0, "")
            return Result(100, "E: not found\n")
        answer = super().__call__(argv)
        if command[0] in ("debootstrap", "mmdebstrap"):
            status = Path(command[-2]) / "var/lib/dpkg/status"
            status.parent.mkdir(parents=True, exist_ok=True)
            status.write_text(DPKG_STATUS)
        return answer


@pytest.fixture
def faked(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """main.run_build with the fake runner and a quiet display; the process state put back."""
    monkeypatch.setattr(os, "geteuid", lambda: 1000)  # no device nodes in the fake /dev
    monkeypatch.setattr(ui, "make_display", lambda steps: ui.Display(io.StringIO(), steps, live=False))
    yield


def build(make_settings: MakeSettings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *argv: str,
          fail: str = "", mirror: Mirror | None = None) -> tuple[int, dict[str, object], str]:
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    args = ["--tarball", str(tmp_path / "out/root.tar"), "--distribution", "bookworm",
            "--workdir", str(work), "--cache-dir", "", "--bootstrapper", "debootstrap", "--log",
            str(tmp_path / "build.log"), "--report", str(tmp_path / "report.json"), "--user", f"alice/{SECRET}",
            "--root-password", SECRET, *argv]
    monkeypatch.setattr(main, "Runner", lambda on_line=None: FakeRunner(mirror or Mirror(fail)))
    status = REAL_RUN_BUILD(make_settings(*args))
    text = (tmp_path / "report.json").read_text()
    return status, json.loads(text), text


@pytest.mark.usefixtures("process_state", "faked")
def test_a_built_tarball_s_report(make_settings: MakeSettings, tmp_path: Path, out: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    status, document, text = build(make_settings, tmp_path, monkeypatch)
    assert status == 0
    validate(document)
    assert (document["format"], document["version"], document["exit_status"]) == (report.FORMAT, 1, 0)
    assert (document["outcome"], document["error"]) == ("built", None)
    assert document["tool"] == {"name": "vmdebootstrap", "version": main.__version__}
    assert document["outputs"][0] == {"path": str(out / "root.tar"), "kind": "tarball", "size": 7,
                                      "sha256": hashlib.sha256(b"tarball").hexdigest()}
    assert sorted((Path(o["path"]).name, o["kind"]) for o in document["outputs"][1:]) == [
        ("SHA256SUMS", "checksums"), *((name, "tarball") for name in sorted(sboms("root.tar")))]
    assert document["release"] == {
        "name": "bookworm", "architecture": "amd64", "mirror": options.DEFAULT_MIRROR,
        "apt_mirror": options.DEFAULT_MIRROR, "components": ["main"],
        "release_file": {"suite": "stable", "codename": "trixie", "version": "13.2",
                         "date": "2025-11-15T09:42:19+00:00", "valid_until": None},
    }
    assert document["bootstrap"] == {"bootstrapper": "debootstrap", "reason": "--bootstrapper debootstrap",
                                     "stage_cache": "off", "stage_key": None, "base_cache": "off"}
    assert document["packages_installed"] == 7
    assert [(s["name"], s["outcome"]) for s in document["steps"]] == \
           [("bootstrap", "done"), ("packages", "done"), ("system", "done"), ("users", "done"),
            ("finish", "done"), ("tarball", "done"), ("manifest", "done")]
    assert document["accounts"] == {"root": "password", "users": ["alice"]}
    assert document["boot_tests"] == []
    settings = document["settings"]
    assert isinstance(settings, dict)
    assert settings["tarball"] == str(out / "root.tar") and settings["hostname"] == "debian"
    # Passwords never: the secret options are redacted, and nothing else carries them.
    assert settings["user"] == [secret.REDACTED] and settings["root-password"] == secret.REDACTED
    assert SECRET not in text


@pytest.mark.usefixtures("process_state", "faked")
def test_a_mirror_s_credentials_are_in_no_report_log_or_message(make_settings: MakeSettings, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    """The failing bootstrap's command line names the mirror, credentials and all (issue 22)."""
    mirror = "http://builder:M1rror-S3cret@m.example/debian/"
    status, document, text = build(make_settings, tmp_path, monkeypatch, "--mirror", mirror, "--configure-apt",
                                   "--apt-mirror", "https://ro:Apt-T0ken@apt.example/debian/", fail="debootstrap")
    assert status == 1
    log = (tmp_path / "build.log").read_text()
    shown = capsys.readouterr().err
    assert "builder:<secret>@m.example" in str(document["error"]) and "builder:<secret>@m.example" in log
    for where in (text, log, shown):
        assert "M1rror-S3cret" not in where and "Apt-T0ken" not in where
    assert document["release"]["mirror"] == "http://builder:<secret>@m.example/debian/"  # type: ignore[index]


@pytest.mark.parametrize(("text", "shown"), [
    ("debootstrap trixie /r http://u:pw@m.example/debian/", "debootstrap trixie /r http://u:<secret>@m.example/debian/"),
    ("https://deploy:gl-T0k3n@h.example:8443/x", "https://deploy:<secret>@h.example:8443/x"),
    ("http://m.example:8080/debian/ and ftp://a@b/", "http://m.example:8080/debian/ and ftp://a@b/"),  # none
    ("file:///srv/mirror/@x", "file:///srv/mirror/@x"),
])
def test_credentials_of_urls_are_redacted(text: str, shown: str) -> None:
    assert secret.without_credentials(text) == shown


@pytest.mark.usefixtures("process_state", "faked")
def test_a_failed_build_writes_its_report_too(make_settings: MakeSettings, tmp_path: Path, out: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    status, document, text = build(make_settings, tmp_path, monkeypatch, fail="tar")
    assert status == 1
    validate(document)
    assert (document["exit_status"], document["outcome"]) == (1, "failed")
    error = document["error"]
    assert isinstance(error, str) and error.startswith("step 'tarball' failed: command failed (exit status 1)")
    assert [(s["name"], s["outcome"]) for s in document["steps"]][-3:] == [("finish", "done"), ("tarball", "failed"),
                                                                             ("manifest", "not run")]
    assert document["outputs"] == []  # nothing is published by a failed build
    assert document["packages_installed"] == 7  # read before the tree was removed
    assert SECRET not in text
    assert os.listdir(out) == []


@pytest.mark.usefixtures("process_state", "faked")
def test_steps_after_a_failure_are_listed_as_not_run(make_settings: MakeSettings, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    status, document, _ = build(make_settings, tmp_path, monkeypatch, fail="chpasswd")
    assert status == 1
    validate(document)
    assert [(s["name"], s["outcome"]) for s in document["steps"]][3:] == \
           [("users", "failed"), ("finish", "not run"), ("tarball", "not run"), ("manifest", "not run")]
    assert document["steps"][-1]["started"] is None  # type: ignore[index]


def test_boot_results_and_every_outcome_fit_the_schema(make_settings: MakeSettings, tmp_path: Path) -> None:
    settings = make_settings("--iso", str(tmp_path / "live.iso"), "--boot-test", "--user", "u/pw",
                             "--report", str(tmp_path / "r.json"))
    record = report.Report(settings, str(tmp_path / "build.log"), plan=lambda cached: recipe.plan(settings, cached))
    record.boot_results += [
        BootResult("bios", True, 41.72, "login prompt after 42 s; system running", [], tmp_path / "bios.log",
                   system_state="running"),
        BootResult("uefi-secure", False, None, "no login prompt within 900 s", ["foo.service"],
                   tmp_path / "uefi.log", secure_boot=True, screenshot=tmp_path / "screen.png"),
    ]
    record.fail("the image was built but its boot test failed", "boot-test-failed")
    steps = [ui.StepRecord("bootstrap", 1.7e9, 10.04, "done"), ui.StepRecord("packages", 1.7e9 + 10, 3, "interrupted")]
    document = record.document(130, steps)
    validate(document)
    assert document["boot_tests"] == [
        {"firmware": "bios", "passed": True, "seconds_to_login": 41.7, "verdict": "login prompt after 42 s; "
         "system running", "failed_units": [], "system_state": "running", "secure_boot": None,
         "console_log": str(tmp_path / "bios.log"), "screenshot": None},
        {"firmware": "uefi-secure", "passed": False, "seconds_to_login": None,
         "verdict": "no login prompt within 900 s", "failed_units": ["foo.service"], "system_state": None,
         "secure_boot": True, "console_log": str(tmp_path / "uefi.log"), "screenshot": str(tmp_path / "screen.png")},
    ]
    assert document["steps"][-1] == {"name": "boot test", "started": None, "seconds": None,  # type: ignore[index]
                                     "outcome": "not run"}


def test_the_schema_knows_every_output_kind() -> None:
    kinds = schema()["properties"]["outputs"]["items"]["properties"]["kind"]["enum"]  # type: ignore[index]
    assert sorted(kinds) == sorted([*(o.name for o in options.OPTIONS if o.output), "checksums"])


def test_without_report_nothing_is_written(make_settings: MakeSettings, tmp_path: Path) -> None:
    record = report.Report(make_settings(), str(tmp_path / "build.log"), plan=lambda _cached: [])
    record.write(0, [])
    assert not record.wanted
    assert sorted(os.listdir(tmp_path)) == ["debootstrap-scripts", "out"]


@pytest.mark.parametrize("where", ["missing/r.json", "."])
def test_report_needs_a_file_in_an_existing_directory(make_settings: MakeSettings, tmp_path: Path,
                                                      where: str) -> None:
    from vmdebootstrap.errors import UsageError

    with pytest.raises(UsageError, match="not a file in an existing directory"):
        make_settings("--report", str(tmp_path / where))
