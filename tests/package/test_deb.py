"""The Debian package, as a Debian user gets it: built, lintian-clean, installed with apt (its
dependencies from the mirror), used for a real build with its boot test, and purged without
a trace.

The source is copied out of the checkout first: dpkg-buildpackage writes into the source tree
and its parent, and the other test sessions read this checkout meanwhile.  The build
dependencies and lintian are installed by apt as this session's prerequisites (and stay, as
`make install`'s host packages do); what installing the .deb itself pulls in is purged with it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from ..conftest import PASSWORD, REPO, SLOW_GUEST_APPEND, our_mounts, workdir_for
from ..report_schema import validate

pytestmark = [pytest.mark.integration, pytest.mark.package]

# The system's tools only: not a virtual environment's Python, nor /usr/local/sbin/vmdebootstrap.
ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "HOME": "/root", "TERM": "dumb",
       "DEBIAN_FRONTEND": "noninteractive"}
APT = ["apt-get", "-y", "-q", "-o", "DPkg::Lock::Timeout=600"]
NOT_COPIED = (".git", ".venv", "output", "build", ".pybuild", "*.egg-info", "__pycache__", ".pytest_cache",
              ".mypy_cache", ".ruff_cache", ".pytest-*.log")
# Directories only this package puts files in: gone after the purge.
OWN_DIRECTORIES = ("/usr/lib/python3/dist-packages/vmdebootstrap", "/usr/share/vmdebootstrap",
                   "/usr/share/doc/vmdebootstrap")


def run(*argv: str, cwd: Path | None = None, timeout: int = 1800) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(list(argv), cwd=cwd, env=ENV, capture_output=True, text=True, timeout=timeout,
                          check=False)
    assert done.returncode == 0, f"{' '.join(argv)}: {done.returncode}\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
    return done


def installed_packages() -> set[str]:
    listing = run("dpkg-query", "-W", "-f=${Package} ${db:Status-Abbrev}\n").stdout
    return {line.split()[0] for line in listing.splitlines() if line.split()[1:2] == ["ii"]}


def build_deb(source: Path) -> Path:
    """The package built from a copy of the checkout, with its build dependencies."""
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(*NOT_COPIED))
    run(*APT, "build-dep", "./", cwd=source)
    run("dpkg-buildpackage", "-us", "-uc", "-b", cwd=source)
    [deb] = source.parent.glob("vmdebootstrap_*_all.deb")
    return deb


def lintian(deb: Path) -> str:
    if shutil.which("lintian", path=ENV["PATH"]) is None:
        run(*APT, "install", "--no-install-recommends", "lintian")
    [changes] = deb.parent.glob("vmdebootstrap_*.changes")
    done = subprocess.run(["lintian", "--pedantic", "--info", "--display-experimental", str(changes)], env=ENV,
                          capture_output=True, text=True, timeout=600, check=False)
    tags = [line for line in done.stdout.splitlines() if line[:2] in ("E:", "W:")]
    assert done.returncode == 0 and tags == [], done.stdout + done.stderr
    return done.stdout


def purge(pulled_in: set[str]) -> None:
    run(*APT, "purge", "vmdebootstrap", *sorted(pulled_in))


def build_and_boot(tmp: Path, mirror: str, outdir: Path) -> tuple[subprocess.CompletedProcess[str], Path, Path]:
    """A small trixie live ISO and its BIOS boot test, by /usr/sbin/vmdebootstrap.  Without the
    stage cache: a saved entry could evict one the main session's warm rebuild is about to use."""
    iso, report = tmp / "live.iso", tmp / "report.json"
    done = subprocess.run(
        ["/usr/sbin/vmdebootstrap", "--no-default-configs", "--iso", str(iso), "--distribution", "trixie",
         "--mirror", mirror, "--user", f"user/{PASSWORD}", "--sudo", "--lock-root-password",
         "--package", "live-boot,live-config,live-config-systemd", "--boot-test", "--boot-firmware", "bios",
         *SLOW_GUEST_APPEND, "--boot-timeout", "1800",
         "--no-stage-cache", "--report", str(report), "--log", str(tmp / "build.log"),
         "--workdir", str(workdir_for(outdir, "deb"))],
        cwd=tmp, env=ENV, capture_output=True, text=True, timeout=3600, check=False)
    return done, iso, report


def check_report(report: Path, iso: Path, version: str) -> None:
    document = json.loads(report.read_text())
    validate(document)
    assert (document["exit_status"], document["outcome"]) == (0, "built")
    assert document["tool"]["version"].replace(".dev", "~dev") == version
    [boot] = document["boot_tests"]
    assert (boot["firmware"], boot["passed"]) == ("bios", True)
    [output] = [o for o in document["outputs"] if o["kind"] == "iso" and o["path"] == str(iso)]
    assert output["sha256"] == hashlib.sha256(iso.read_bytes()).hexdigest()
    assert PASSWORD not in report.read_text()


def check_gone(listed: list[str]) -> None:
    left = [path for path in listed if Path(path).is_symlink() or (Path(path).exists() and not Path(path).is_dir())]
    assert left == [], f"files of the package left after the purge: {left[:10]}"
    assert [d for d in OWN_DIRECTORIES if Path(d).exists()] == []
    status = subprocess.run(["dpkg-query", "-W", "-f=${db:Status-Abbrev}", "vmdebootstrap"], env=ENV,
                            capture_output=True, text=True, check=False)
    assert status.returncode != 0 or status.stdout.strip() in ("", "un", "pn"), status.stdout


def test_the_deb_builds_installs_builds_and_boots_an_iso_and_purges(mirror: str, outdir: Path,
                                                                     tmp_path: Path) -> None:
    times: dict[str, float] = {}
    started = time.monotonic()
    if "vmdebootstrap" in installed_packages():  # a previous run's, killed before its purge
        purge(set())
    deb = build_deb(tmp_path / "src" / "vmdebootstrap")
    tags = lintian(deb).strip()
    print("lintian --pedantic --info --display-experimental: " + (tags or "no tags at all"))
    times["build and lintian"] = time.monotonic() - started
    before = installed_packages()
    mark = time.monotonic()
    run(*APT, "install", str(deb))
    pulled_in = installed_packages() - before - {"vmdebootstrap"}
    times["apt install"] = time.monotonic() - mark
    try:
        shown = run("dpkg-query", "-W", "-f=${Version}\n${Depends}\n${Recommends}\n", "vmdebootstrap").stdout
        version, depends, recommends = shown.splitlines()
        print(f"\nDepends: {depends}\nRecommends: {recommends}")
        assert {"debootstrap", "squashfs-tools", "python3-debian"} <= {d.split()[0] for d in depends.split(", ")}
        tool_version = version.replace("~dev", ".dev")
        assert run("/usr/sbin/vmdebootstrap", "--version").stdout.strip() == f"vmdebootstrap {tool_version}"
        assert Path("/usr/share/man/man8/vmdebootstrap.8.gz").is_file()
        assert run("/usr/bin/vmdebootstrap-matrix", "--version").stdout.strip() == \
            f"vmdebootstrap-matrix {tool_version}"
        assert Path("/usr/share/man/man1/vmdebootstrap-matrix.1.gz").is_file()
        assert Path("/usr/share/doc/vmdebootstrap/scale-out.md.gz").is_file() or \
            Path("/usr/share/doc/vmdebootstrap/scale-out.md").is_file()
        assert Path("/usr/share/bash-completion/completions/vmdebootstrap").is_file()
        assert Path("/usr/share/doc/vmdebootstrap/examples/live.conf").is_file()
        mark = time.monotonic()
        done, iso, report = build_and_boot(tmp_path, mirror, outdir)
        times["vmdebootstrap --iso --boot-test"] = time.monotonic() - mark
        assert done.returncode == 0, done.stderr[-5000:]
        booted = [line for line in done.stderr.splitlines() if "boot test amd64 bios:" in line]
        assert booted and "PASS" in booted[0], done.stderr[-3000:]
        print(booted[0])
        check_report(report, iso, version)
        assert our_mounts() == []
        assert subprocess.run(["pgrep", "-f", str(iso)], capture_output=True, check=False).stdout == b""
    finally:
        listed = run("dpkg-query", "-L", "vmdebootstrap").stdout.splitlines()
        mark = time.monotonic()
        purge(pulled_in)
        times["apt purge"] = time.monotonic() - mark
    check_gone(listed)
    print("package session: " + ", ".join(f"{name} {seconds:.0f} s" for name, seconds in times.items())
          + f"; in all {time.monotonic() - started:.0f} s")
