"""preflight: one line per thing the runner lacks and exit status 1, else one OK line; the
probes replaced, then each probe itself on stand-in files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vmdebootstrap import binfmt
from vmdebootstrap.matrix import preflight, processes
from vmdebootstrap.matrix.processes import Finished

from .matrixfiles import SMALL, run, write


@pytest.fixture
def allowed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every probe passes; returns the architectures whose emulation was asked about."""
    asked: list[str] = []
    monkeypatch.setattr(preflight, "root", lambda: "")
    monkeypatch.setattr(preflight, "binfmt_misc", lambda: "")
    monkeypatch.setattr(preflight, "emulation", lambda arch: asked.append(arch) or "")
    monkeypatch.setattr(preflight, "loop_devices", lambda: "")
    monkeypatch.setattr(preflight, "mount_namespaces", lambda: "")
    monkeypatch.setattr(preflight, "free_space", lambda place, needed: "")
    monkeypatch.setattr(preflight, "work_places", lambda: [Path("/builds")])
    monkeypatch.setattr(preflight, "kvm", lambda: "KVM: yes")
    return asked


@pytest.mark.usefixtures("allowed")
def test_a_runner_with_everything_gets_one_ok_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "preflight") == (0, "preflight: OK: root, binfmt_misc, loop devices, mount namespaces, "
                                           "disk space in /builds; KVM: yes\n", "")


def test_each_missing_thing_is_one_line(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                        allowed: list[str]) -> None:
    monkeypatch.setattr(preflight, "root", lambda: "root: not root")
    monkeypatch.setattr(preflight, "loop_devices", lambda: "loop devices: none")
    monkeypatch.setattr(preflight, "free_space", lambda place, needed: f"disk space: {needed} wanted in {place}")
    monkeypatch.setattr(preflight, "kvm", lambda: "KVM: no")
    status, out, _err = run(capsys, "preflight", "--min-free", "1G")
    assert (status, out.splitlines()) == (1, ["preflight: missing: root: not root",
                                              "preflight: missing: loop devices: none",
                                              "preflight: missing: disk space: 1000000000 wanted in /builds"])


def test_with_a_matrix_each_foreign_architecture_is_asked_for(capsys: pytest.CaptureFixture[str],
                                                              monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                              allowed: list[str]) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, SMALL)
    status, out, _err = run(capsys, "preflight", "--matrix", "matrix.yml")
    assert status == 0 and "qemu-user for arm64" in out
    assert allowed == ["arm64"]  # amd64 is this host's (conftest)


def test_a_matrix_of_this_host_s_architecture_needs_no_binfmt_misc(capsys: pytest.CaptureFixture[str],
                                                                   monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                                   allowed: list[str]) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(preflight, "binfmt_misc", lambda: "binfmt_misc: not mounted")
    write(tmp_path, SMALL.replace("[amd64, arm64]", "[amd64]").replace("  - {release: bookworm, arch: arm64}\n",
                                                                      "  - {release: bookworm, config: minbase}\n"))
    status, out, _err = run(capsys, "preflight", "--matrix", "matrix.yml")
    assert (status, allowed) == (0, []) and "binfmt" not in out


# -- the probes themselves ------------------------------------------------------------------------------------


def test_binfmt_misc_not_mounted(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(binfmt, "BINFMT_DIR", tmp_path)
    assert preflight.binfmt_misc().startswith(f"binfmt_misc: not mounted on {tmp_path}: mount -t binfmt_misc")
    (tmp_path / "status").write_text("enabled\n")
    assert preflight.binfmt_misc() == ""


def test_a_missing_qemu_user_handler_says_what_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "status").write_text("enabled\n")
    monkeypatch.setattr(binfmt, "BINFMT_DIR", tmp_path)
    assert preflight.emulation("arm64") == ("qemu-user for arm64: --arch arm64: no binfmt handler qemu-aarch64 is "
                                            f"registered: {binfmt.INSTALL_HINT}, then 'update-binfmts --enable "
                                            "qemu-aarch64'")


def test_no_loop_control(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(preflight, "LOOP_CONTROL", tmp_path / "loop-control")
    assert preflight.loop_devices().startswith(f"loop devices: {tmp_path}/loop-control: No such file or directory: ")


def test_no_mount_namespace(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[list[str]] = []

    def refuse(argv: list[str], timeout: float = 600.0) -> Finished:
        asked.append(argv)
        return Finished(1, "", "unshare: unshare failed: Operation not permitted\n")

    monkeypatch.setattr(processes, "run", refuse)
    assert preflight.mount_namespaces() == (
        "mount namespaces: unshare --mount --fork true: exit status 1 (unshare: unshare failed: Operation not "
        f"permitted): each build runs in its own: {preflight.PRIVILEGED}")
    assert asked == [["unshare", "--mount", "--fork", "true"]]
    monkeypatch.setattr(processes, "run", lambda argv, timeout=600.0: Finished(0, "", ""))
    assert preflight.mount_namespaces() == ""


def test_free_space(tmp_path: Path) -> None:
    assert preflight.free_space(tmp_path, 1) == ""
    assert preflight.free_space(tmp_path, 10**18).startswith("disk space: ")
    assert preflight.free_space(tmp_path, 10**18).endswith(f" free in {tmp_path}, 1000000000.0 GB wanted")


def test_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert preflight.root() == "root: the job runs as uid 1000: vmdebootstrap builds as root"
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert preflight.root() == ""


def test_kvm_is_reported_never_required(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(preflight, "KVM", tmp_path / "kvm")
    assert preflight.kvm().startswith(f"KVM: no ({tmp_path}/kvm: No such file or directory): boot tests run under TCG")
    (tmp_path / "kvm").write_text("")
    (tmp_path / "cpuinfo").write_text("processor : 0\nflags : fpu sse2 lm\n")
    monkeypatch.setattr(preflight, "CPUINFO", tmp_path / "cpuinfo")
    monkeypatch.setattr(preflight.platform, "machine", lambda: "x86_64")
    assert preflight.kvm() == "KVM: no (the CPU shows neither vmx nor svm): boot tests run under TCG, slower"
    (tmp_path / "cpuinfo").write_text("processor : 0\nflags : fpu sse2 vmx lm\n")
    assert preflight.kvm() == "KVM: yes"


def test_the_proxy_check(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "proxy", "http://127.0.0.1:9")  # discard: nothing listens there
    assert (status, out) == (1, "")
    assert err.startswith("apt proxy: no answer: http://127.0.0.1:9: ") and err.endswith(": building without it\n")
