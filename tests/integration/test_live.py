"""The default live example (examples/live.conf), built once, read many times.

Built with the test hook that calls every helper, a second user without a password
under --force-password-change, the build mirror from this machine's apt sources and
its https form as the image's apt mirror (live.rst: two mirrors).
"""

from __future__ import annotations

import filecmp
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from ..conftest import PASSWORD, ROOT_PASSWORD, https_variant, our_mounts, squashfs_files

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def root(live: dict[str, object], unpack) -> Path:  # type: ignore[no-untyped-def]
    squash = live["dir"]
    assert isinstance(squash, Path)
    return unpack(squash / "filesystem.squashfs", "etc", "boot", "usr/sbin", "var/lib/dpkg", "var/lib/apt",
                  "home", "usr/share/keyrings")


def test_outputs_are_all_there(live: dict[str, object]) -> None:
    squash = live["dir"]
    assert isinstance(squash, Path)
    names = {p.name for p in squash.iterdir()}
    assert {"filesystem.squashfs", "vmlinuz", "initrd.img", "filesystem.packages"} <= names
    assert not [n for n in names if "partial" in n]
    assert (squash / "filesystem.squashfs").stat().st_size > 100 * 2**20


def test_hostname_and_release(root: Path) -> None:
    assert (root / "etc/hostname").read_text() == "vmdb-test\n"
    assert re.match(r"^13\.\d+$", (root / "etc/debian_version").read_text().strip())
    assert "vmdb-test" in (root / "etc/hosts").read_text()


def test_no_api_filesystem_contents(live: dict[str, object]) -> None:
    squash = live["dir"]
    assert isinstance(squash, Path)
    files = squashfs_files(squash / "filesystem.squashfs")
    for top in ("/proc", "/sys", "/dev", "/run"):
        assert top in files, f"{top} itself should exist as a mount point"
        inside = [f for f in files if f.startswith(top + "/")]
        assert inside == [], f"{top} holds {inside[:5]}"


def test_kernel_and_initrd_match_the_image(live: dict[str, object], root: Path) -> None:
    squash = live["dir"]
    assert isinstance(squash, Path)
    versioned = sorted(p.name for p in squash.glob("vmlinuz-*"))
    assert len(versioned) == 1
    version = versioned[0][len("vmlinuz-"):]
    assert filecmp.cmp(squash / "vmlinuz", root / f"boot/vmlinuz-{version}", shallow=False)
    assert filecmp.cmp(squash / "initrd.img", root / f"boot/initrd.img-{version}", shallow=False)
    manifest = (squash / "filesystem.packages").read_text()
    assert re.search(rf"^linux-image-{re.escape(version)}\t", manifest, re.MULTILINE)
    assert re.search(r"^linux-image-amd64\t", manifest, re.MULTILINE)
    # live-boot's hook is in the initramfs, so the image can boot live.
    listing = subprocess.run(["lsinitramfs", str(squash / "initrd.img")], capture_output=True, text=True,
                             check=True).stdout
    assert "scripts/live" in listing


def installed(root: Path, package: str) -> bool:
    status = (root / "var/lib/dpkg/status").read_text()
    return f"Package: {package}\nStatus: install ok installed\n" in status


def _shadow(root: Path) -> dict[str, list[str]]:
    return {line.split(":")[0]: line.split(":") for line in (root / "etc/shadow").read_text().splitlines()}


def test_user_password_is_yescrypt_and_in_sudo(root: Path) -> None:
    entry = _shadow(root)["user"]
    assert entry[1].startswith("$y$"), entry[1][:4]
    group = {line.split(":")[0]: line.split(":")[3] for line in (root / "etc/group").read_text().splitlines()}
    assert "user" in group["sudo"].split(",")
    assert "guest" in group["sudo"].split(",")
    assert installed(root, "sudo")


def test_root_is_locked(root: Path) -> None:
    assert _shadow(root)["root"][1].startswith("!")


def test_forced_password_change_user(root: Path) -> None:
    entry = _shadow(root)["guest"]
    assert entry[1] == "", "guest should have an empty password"
    assert entry[2] == "0", "the last change date 0 forces a change at the first login"


def test_password_never_logged(live: dict[str, object]) -> None:
    log = live["log"]
    assert isinstance(log, Path)
    text = log.read_text()
    assert "chpasswd" in text  # the command was logged ...
    assert PASSWORD not in text  # ... its secret was not
    result = live["result"]
    assert isinstance(result, subprocess.CompletedProcess)
    assert PASSWORD not in result.stderr + result.stdout


def test_apt_sources_name_the_apt_mirror_only(live: dict[str, object], root: Path) -> None:
    mirror = live["mirror"]
    assert isinstance(mirror, str)
    # trixie: deb822 sources, the keyring the image has, no sources.list left.
    assert not (root / "etc/apt/sources.list").exists()
    assert [p.name for p in (root / "etc/apt/sources.list.d").iterdir()] == ["debian.sources"]
    sources = (root / "etc/apt/sources.list.d/debian.sources").read_text()
    stanzas = [dict(line.split(": ", 1) for line in stanza.splitlines()) for stanza in sources.split("\n\n")]
    assert stanzas[0]["URIs"] == https_variant(mirror) and stanzas[0]["Suites"] == "trixie trixie-updates"
    assert stanzas[1]["Suites"] == "trixie-security" and stanzas[1]["URIs"].endswith("/debian-security")
    for stanza in stanzas:
        assert stanza["Types"] == "deb" and stanza["Components"] == "main"
        keyring = root / stanza["Signed-By"].lstrip("/")
        assert keyring.exists() or keyring.is_symlink(), stanza["Signed-By"]
    assert mirror not in sources
    host = mirror.split("://", 1)[1].rstrip("/").replace("/", "_")
    assert not [p for p in (root / "var/lib/apt/lists").glob(f"*{host}*")]


def test_apt_update_works_inside_the_finished_image(live: dict[str, object], tmp_path: Path) -> None:
    """The image's own sources and keyring reach its mirror: apt-get update inside the whole
    unpacked root, in a mount namespace of its own (its mounts go with it)."""
    squash = live["dir"]
    assert isinstance(squash, Path)
    root = tmp_path / "root"
    subprocess.run(["unsquashfs", "-d", str(root), str(squash / "filesystem.squashfs")], capture_output=True,
                   check=True)
    (root / "etc/resolv.conf").unlink()
    (root / "etc/resolv.conf").write_text(Path("/etc/resolv.conf").read_text())
    # The image trusts Debian's CAs; a network that inspects TLS (this project's CI) signs with its
    # own, which the host trusts: apt is given the host's bundle, the sources and keyring stay the image's.
    shutil.copyfile("/etc/ssl/certs/ca-certificates.crt", root / "tmp/host-ca-certificates.crt")
    script = (f"mount --rbind /dev {root}/dev && mount -t proc proc {root}/proc && "
              f"chroot {root} apt-get -o Acquire::https::CAInfo=/tmp/host-ca-certificates.crt update")
    result = subprocess.run(["unshare", "--mount", "--propagation", "private", "--fork", "sh", "-c", script],
                            capture_output=True, text=True, check=False, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "trixie-updates InRelease" in result.stdout and "trixie-security InRelease" in result.stdout
    assert "W:" not in result.stdout + result.stderr
    assert our_mounts() == []


def test_recommends_of_requested_task_installed(root: Path) -> None:
    # iamerican is only a Recommends of task-english (given with --recommends).
    assert installed(root, "iamerican")


def test_daemon_block_gone_from_image(root: Path) -> None:
    assert not (root / "usr/sbin/policy-rc.d").exists()
    diversions = (root / "var/lib/dpkg/diversions").read_text()
    assert "start-stop-daemon" not in diversions
    # dpkg ships start-stop-daemon in /usr/sbin (trixie; bookworm's /sbin is a symlink to it).
    ssd = root / "usr/sbin/start-stop-daemon"
    assert ssd.read_bytes()[:4] == b"\x7fELF", "the real start-stop-daemon must be back"


def test_hook_used_every_helper(root: Path) -> None:
    marker = dict(line.split("=", 1) for line in (root / "etc/vmdebootstrap-test-hook").read_text().splitlines())
    assert marker["argc"] == "2" and marker["arg2"] == ""
    assert marker["ARCH"] == "amd64" and marker["DISTRIBUTION"] == "trixie"
    assert marker["FRONTEND"] == "noninteractive"
    assert marker["proc"] == "unmounted" and marker["devpts"] == "mounted" and marker["devnull"] == "char"
    assert marker["prepared"] == "build-mirror"
    assert marker["sshd"] == "not-running"
    assert marker["done"] == "yes"
    assert (root / "etc/modprobe.d/qemu-blacklist.conf").read_text() == "blacklist bochs-drm\n"
    # xauth is only a Recommends of openssh-server, installed through apt_install.
    assert installed(root, "xauth")
    assert not (root / "etc/apt/vmdebootstrap-saved-sources").exists()


def test_host_identity_not_in_image(root: Path) -> None:
    # debootstrap copies the host's resolv.conf; the image must have its own.
    resolv = root / "etc/resolv.conf"
    assert resolv.is_symlink() and resolv.readlink() == Path("../run/systemd/resolve/stub-resolv.conf")
    assert (root / "etc/machine-id").read_text() == ""
    assert not list((root / "etc/ssh").glob("ssh_host_*")), "SSH host keys must be made at first boot"
    assert (root / "etc/systemd/system/vmdebootstrap-ssh-host-keys.service").exists()


def test_networkd_dhcp_configured(root: Path) -> None:
    assert "DHCP=yes" in (root / "etc/systemd/network/99-dhcp.network").read_text()
    assert (root / "etc/systemd/system/multi-user.target.wants/systemd-networkd.service").is_symlink()


def test_nothing_left_on_the_host(live: dict[str, object]) -> None:
    assert our_mounts() == []
    workdir = live["workdir"]
    assert isinstance(workdir, Path)
    assert list(workdir.iterdir()) == []
    procs = subprocess.run(["pgrep", "-f", str(workdir)], capture_output=True, text=True, check=False).stdout
    assert procs == ""


STAGES = Path("/var/cache/vmdebootstrap/stages")


def test_warm_rebuild_comes_from_the_stage_cache(live: dict[str, object], live_warm: dict[str, object],
                                                 unpack) -> None:  # type: ignore[no-untyped-def]
    log = live_warm["log"]
    assert isinstance(log, Path)
    text = log.read_text()
    hit = re.search(r"step 1/\d+: bootstrap \(from the stage cache, ([0-9a-f]{12})\)", text)
    assert hit, "the second build of the same packages did not use the stage cache"
    # Neither bootstrapper nor apt's installation ran again.
    assert "+ mmdebstrap" not in text and "+ debootstrap" not in text
    assert not re.search(r"\+ chroot \S+ apt-get .* install ", text)
    warm, cold = live_warm["dir"], live["dir"]
    assert isinstance(warm, Path) and isinstance(cold, Path)
    # The same packages, but for what the cold build's hook installed (task-ssh-server).
    warm_packages = set((warm / "filesystem.packages").read_text().splitlines())
    cold_packages = set((cold / "filesystem.packages").read_text().splitlines())
    assert warm_packages < cold_packages
    assert {line.split("\t")[0] for line in cold_packages - warm_packages} >= {"task-ssh-server", "openssh-server"}
    root = unpack(warm / "filesystem.squashfs", "etc")
    assert (root / "etc/vmdebootstrap-warm-hook").read_text() == "warm\n"
    assert not (root / "etc/vmdebootstrap-test-hook").exists()  # the cold build's hook ran after the stage
    assert (root / "etc/hostname").read_text() == "vmdb-warm\n"
    assert (root / "etc/shadow").read_text().count("$y$") >= 1  # users were made on the overlay
    # --root-password (issue 18's third case): hashed by the image, never in the log.
    assert _shadow(root)["root"][1].startswith("$y$")
    assert ROOT_PASSWORD not in text
    # The cached tree itself was only read.
    [entry] = [p for p in STAGES.glob(hit.group(1) + "*")]
    assert not (entry / "root/etc/vmdebootstrap-warm-hook").exists()
    assert (entry / "root/etc/hostname").read_text() != "vmdb-warm\n"
    assert our_mounts() == []
    workdir = live_warm["workdir"]
    assert isinstance(workdir, Path) and list(workdir.iterdir()) == []
