"""A Debian 13 host: the tool installed there the README's way, its unit tier and `make live`.

The host is a trixie root built by vmdebootstrap itself (a tarball) with the packages the
tool says it needs (`--print-host-packages`) and what the README's commands need to run
(make, and ca-certificates for pip).  It is entered in a mount namespace of its own
(`unshare --mount`, /dev, /proc and /sys mounted in it, chroot): everything mounted there
goes with that namespace.  In it, a copy of this checkout runs `make unit` and `make live`
(which installs the host packages, the tool and the binfmt handlers, builds the trixie
live ISO and boot-tests it with BIOS and UEFI firmware), and builds the Debian package
(`apt-get build-dep ./`, `dpkg-buildpackage`).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from ..conftest import REPO, SLOW_GUEST_APPEND, our_mounts, vmdebootstrap, workdir_for

pytestmark = [pytest.mark.integration, pytest.mark.trixie_host]

# The README's commands need make; pip fetches over https.
README_NEEDS = ("make", "ca-certificates")
COPIED = (".ci", "Makefile", "README.md", "pyproject.toml", "benchmarks", "debian", "doc", "docs", "examples",
          "tests", "vmdebootstrap")


def host_packages() -> list[str]:
    """What the tool says a trixie ISO build with its boot test needs, and the development list."""
    asked = vmdebootstrap("--print-host-packages", "--iso", "x.iso", "--boot-test", "--user", "u/p",
                          "--distribution", "trixie")
    assert asked.returncode == 0, asked.stderr
    listed = (REPO / "tests/host-packages").read_text().splitlines()
    dev = [line for line in listed if line and not line.startswith("#")]
    return sorted({*asked.stdout.split(), *dev, *README_NEEDS})


@pytest.fixture(scope="session")
def trixie_host(mirror: str, outdir: Path) -> Path:
    tarball = outdir / "trixie-host.tar"
    log = outdir / "trixie-host.log"
    built = vmdebootstrap("--distribution", "trixie", "--tarball", str(tarball), "--no-kernel", "--mirror", mirror,
                          "--package", ",".join(host_packages()), "--lock-root-password", "--hostname", "trixie-host",
                          "--workdir", str(workdir_for(outdir, "trixie-host")), "--log", str(log), timeout=2400)
    assert built.returncode == 0, built.stderr[-3000:]
    root = outdir / "trixie-host"
    root.mkdir()
    subprocess.run(["tar", "--extract", "--numeric-owner", "--xattrs", "--xattrs-include=*", "--acls",
                    f"--file={tarball}", f"--directory={root}"], check=True)
    tarball.unlink()
    (root / "etc/resolv.conf").unlink(missing_ok=True)
    shutil.copyfile("/etc/resolv.conf", root / "etc/resolv.conf")
    source = root / "src"
    source.mkdir()
    for name in COPIED:
        copy = shutil.copytree if (REPO / name).is_dir() else shutil.copy2
        copy(REPO / name, source / name)  # type: ignore[operator]
    trust_what_this_host_trusts(root)
    return root


def trust_what_this_host_trusts(root: Path) -> None:
    """The local certificate authorities of this machine (a network that inspects TLS, such
    as this project's CI, has one), as a Debian 13 machine on the same network would have
    them: in /usr/local/share/ca-certificates, and pip told to use the system's bundle (the
    pip of a venv uses its own certifi bundle otherwise)."""
    local = sorted(Path("/usr/local/share/ca-certificates").glob("*.crt"))
    if not local:
        return
    target = root / "usr/local/share/ca-certificates"
    target.mkdir(parents=True, exist_ok=True)
    for certificate in local:
        shutil.copyfile(certificate, target / certificate.name)
    (root / "etc/pip.conf").write_text("[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n")
    updated = inside(root, "update-ca-certificates")
    assert updated.returncode == 0, updated.stdout + updated.stderr


def inside(root: Path, command: str, timeout: int = 3600) -> subprocess.CompletedProcess[str]:
    """``command`` run by sh in /src of ``root``, in a mount namespace of its own."""
    # The root bind-mounted onto itself: / is a mount point in the chroot, as on a real host.
    script = (f"mount --bind {root} {root} && mount --rbind /dev {root}/dev && mount --make-rslave {root}/dev && "
              f"mount -t proc proc {root}/proc && mount -t sysfs sysfs {root}/sys && "
              f"exec chroot {root} sh -c 'cd /src && {command}'")
    return subprocess.run(["unshare", "--mount", "--propagation", "private", "--fork", "sh", "-ec", script],
                          capture_output=True, text=True, timeout=timeout, check=False,
                          env={"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                               "LANG": "C.UTF-8", "HOME": "/root", "TERM": "dumb"})


def test_on_a_trixie_host_the_unit_tier_and_make_live_pass(trixie_host: Path) -> None:
    release = (trixie_host / "etc/debian_version").read_text().strip()
    assert release.startswith("13."), release
    unit = inside(trixie_host, "make unit")
    assert unit.returncode == 0, unit.stdout[-3000:] + unit.stderr[-3000:]
    assert " passed" in unit.stdout
    # The README's command; the guests booting beside make check's other sessions get longer.
    live = inside(trixie_host, f'make live LIVE_OPTIONS="{" ".join(SLOW_GUEST_APPEND)} --boot-timeout 1800"')
    output = live.stdout + live.stderr
    assert live.returncode == 0, output[-5000:]
    # --boot-test's default firmware for an amd64 ISO: BIOS, and UEFI with Secure Boot enforced
    assert "boot test amd64 bios: PASS" in output and "boot test amd64 uefi-secure: PASS" in output
    assert "Secure Boot on" in output
    iso = trixie_host / "src/output/debian-live-trixie-amd64.iso"
    assert iso.stat().st_size > 100 * 2**20
    print(f"trixie host ({release}): " + "; ".join(line for line in output.splitlines() if "boot test amd64" in line))
    assert our_mounts() == []
    leftover = subprocess.run(["pgrep", "-f", str(trixie_host)], capture_output=True, text=True, check=False)
    assert leftover.stdout == ""


def test_on_a_trixie_host_the_debian_package_builds(trixie_host: Path) -> None:
    """The .deb builds on Debian 13 too (tests/package builds, installs and uses it on this host)."""
    built = inside(trixie_host, "export DEBIAN_FRONTEND=noninteractive && apt-get update -q && "
                                "apt-get build-dep -y -q ./ && dpkg-buildpackage -us -uc -b")
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    debs = [deb.name for deb in trixie_host.glob("vmdebootstrap_*_all.deb")]  # in /, the parent of /src
    assert len(debs) == 1, debs
    print(f"trixie host: built {debs[0]}")
    assert our_mounts() == []
