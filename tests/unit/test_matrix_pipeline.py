"""The GitLab CI file: stable job names, the stages and needs gitlab-ci-local runs, the caches
keyed by the tool's keys, and the same bytes for the same matrix."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from vmdebootstrap.matrix import processes
from vmdebootstrap.matrix.processes import Finished

from .matrixfiles import SMALL, run, write


@pytest.fixture(autouse=True)
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def tool(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """vmdebootstrap --cache-keys, faked: a base per release and architecture, a stage per cell."""
    asked: list[list[str]] = []

    def answer(argv: list[str], timeout: float = 600.0) -> Finished:
        asked.append(argv)
        release, arch = argv[argv.index("--distribution") + 1], argv[argv.index("--arch") + 1]
        config = argv[argv.index("--config") + 1] if "--config" in argv else ""
        stage = None if arch == "arm64" and "minbase" in config else f"s-{release}-{arch}-{Path(config).stem}"
        return Finished(0, json.dumps({"tool": "2.0", "base": f"b-{release}-{arch}", "stage": stage}), "")

    monkeypatch.setattr(processes, "run", answer)
    return asked


def pipeline(capsys: pytest.CaptureFixture[str], *extra: str) -> dict[str, Any]:
    status, _out, err = run(capsys, "pipeline", "matrix.yml", "-o", ".gitlab-ci.yml", *extra)
    assert status == 0, err
    loaded = yaml.safe_load(Path(".gitlab-ci.yml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def test_one_job_per_cell_with_stable_names(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                            tool: list[list[str]]) -> None:
    write(tmp_path, SMALL)
    ci = pipeline(capsys)
    assert ci["stages"] == ["build", "boot", "summary"]
    assert sorted(ci) == sorted([
        "stages", "preflight", "summary",
        "build trixie amd64 live", "build trixie amd64 minbase", "build trixie arm64 live",
        "build trixie arm64 minbase", "build bookworm amd64 live", "build bookworm amd64 minbase",
        "boot trixie amd64 live", "boot trixie arm64 live"])
    assert ci["preflight"] == {"stage": ".pre", "tags": ["privileged"],
                               "script": ["vmdebootstrap-matrix preflight --matrix matrix.yml"]}
    assert len(tool) == 6 and all(argv[-1] == "--cache-keys" and "--report" not in argv for argv in tool)


def test_a_build_job(capsys: pytest.CaptureFixture[str], tmp_path: Path, tool: list[list[str]]) -> None:
    write(tmp_path, SMALL)
    job = pipeline(capsys)["build trixie amd64 live"]
    assert job == {
        "stage": "build",
        "tags": ["privileged"],
        "cache": [{"key": "vmdebootstrap-2.0-base-b-trixie-amd64",
                   "paths": [".cache/vmdebootstrap/packed/base-b-trixie-amd64.tar"]},
                  {"key": "vmdebootstrap-2.0-stage-s-trixie-amd64-live",
                   "paths": [".cache/vmdebootstrap/packed/stage-s-trixie-amd64-live.tar"]},
                  {"key": "vmdebootstrap-debs-trixie-amd64", "paths": [".cache/vmdebootstrap/debs/"]}],
        "script": [
            "mkdir -p out/trixie-amd64-live",
            "vmdebootstrap-matrix cache restore .cache/vmdebootstrap",
            "vmdebootstrap --no-default-configs --config configs/live.conf --distribution trixie --arch amd64 "
            "--mirror http://deb.debian.org/debian/ --iso out/trixie-amd64-live/trixie-amd64-live.iso "
            "--no-boot-test --report out/trixie-amd64-live/report.json --junit out/trixie-amd64-live/junit.xml "
            "--log out/trixie-amd64-live/build.log --cache-dir .cache/vmdebootstrap",
            "vmdebootstrap-matrix cache save .cache/vmdebootstrap --base b-trixie-amd64 --stage s-trixie-amd64-live"],
        "artifacts": {"when": "always", "paths": ["out/trixie-amd64-live/"],
                      "reports": {"junit": "out/trixie-amd64-live/junit.xml"}},
    }


def test_a_cell_without_a_stage_key_caches_only_its_base(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                         tool: list[list[str]]) -> None:
    write(tmp_path, SMALL)
    job = pipeline(capsys)["build trixie arm64 minbase"]
    assert [cache["key"] for cache in job["cache"]] == [
        "vmdebootstrap-2.0-base-b-trixie-arm64", "vmdebootstrap-debs-trixie-arm64"]
    assert job["script"][-1] == "vmdebootstrap-matrix cache save .cache/vmdebootstrap --base b-trixie-arm64"


def test_a_boot_job_needs_its_build_and_runs_where_qemu_may(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                           tool: list[list[str]]) -> None:
    write(tmp_path, SMALL)
    job = pipeline(capsys)["boot trixie arm64 live"]
    assert job == {
        "stage": "boot",
        "tags": ["kvm"],
        "needs": [{"job": "build trixie arm64 live", "artifacts": True}],
        "script": [
            "mkdir -p out/trixie-arm64-live/boot",
            "vmdebootstrap --no-default-configs --config configs/live.conf --distribution trixie --arch arm64 "
            "--mirror http://deb.debian.org/debian/ --boot-test-only out/trixie-arm64-live/trixie-arm64-live.iso "
            "--report out/trixie-arm64-live/boot/report.json --junit out/trixie-arm64-live/boot/junit.xml "
            "--log out/trixie-arm64-live/boot/build.log"],
        "artifacts": {"when": "always", "paths": ["out/trixie-arm64-live/boot/"],
                      "reports": {"junit": "out/trixie-arm64-live/boot/junit.xml"}},
    }


def test_the_summary_needs_every_build_and_boot_job_and_always_runs(capsys: pytest.CaptureFixture[str],
                                                                    tmp_path: Path, tool: list[list[str]]) -> None:
    write(tmp_path, SMALL)
    ci = pipeline(capsys)
    job = ci["summary"]
    assert job["stage"] == "summary" and job["when"] == "always"
    assert job["needs"] == [{"job": name, "artifacts": True} for name in (
        "build trixie amd64 live", "boot trixie amd64 live", "build trixie amd64 minbase", "build trixie arm64 live",
        "boot trixie arm64 live", "build trixie arm64 minbase", "build bookworm amd64 live",
        "build bookworm amd64 minbase")]
    assert job["script"] == ["vmdebootstrap-matrix summary --matrix matrix.yml --out . out"]
    assert job["artifacts"] == {"when": "always", "paths": ["summary.md", "public/", "junit.xml"]}


def test_the_same_matrix_gives_the_same_bytes(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                              tool: list[list[str]]) -> None:
    write(tmp_path, SMALL)
    pipeline(capsys)
    first = Path(".gitlab-ci.yml").read_bytes()
    # The same matrix written in another order of keys and with other spacing.
    write(tmp_path, """\
        runner: {tags: [privileged]}
        boot-test:
          tags: [kvm]
        overrides:
          - options: {boot-test: false}
            match: {config: live, release: bookworm}
        exclude: [{arch: arm64, release: bookworm}]
        axes:
          config: [configs/live.conf, configs/minbase.conf]
          arch: [amd64, arm64]
          release: [trixie, bookworm]
        defaults: {mirror: "http://deb.debian.org/debian/"}
        """)
    pipeline(capsys)
    second = Path(".gitlab-ci.yml").read_bytes()
    assert first.replace(b"\n", b"") != b"" and first == second
    assert first.startswith(b"# Generated by vmdebootstrap-matrix pipeline from matrix.yml")


def test_without_the_tool_s_keys_each_cell_keeps_its_own_caches(capsys: pytest.CaptureFixture[str],
                                                                tmp_path: Path, tool: list[list[str]]) -> None:
    write(tmp_path, SMALL + "cache: {apt-proxy: 'http://apt-cacher:3142', dir: .cache/vmdb}\n")
    job = pipeline(capsys, "--no-cache-keys")["build bookworm amd64 minbase"]
    assert tool == []
    assert job["cache"] == [{"key": "vmdebootstrap-bookworm-amd64-minbase", "paths": [".cache/vmdb/packed/"]}]
    assert job["variables"] == {"APT_PROXY": "http://apt-cacher:3142"}
    script = job["script"]
    assert script[1] == 'if vmdebootstrap-matrix proxy "$APT_PROXY"; then export http_proxy="$APT_PROXY"; fi'
    assert script[2:] == ["vmdebootstrap-matrix cache restore .cache/vmdb", script[3],
                          "vmdebootstrap-matrix cache save .cache/vmdb"]
    assert script[3].endswith("--cache-dir .cache/vmdb")


def test_a_reproducible_cell_is_built_twice(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                            tool: list[list[str]]) -> None:
    write(tmp_path, SMALL + "reproducible:\n  - {release: trixie, arch: amd64, config: minbase}\n")
    ci = pipeline(capsys)
    rebuild, build = ci["rebuild trixie amd64 minbase"], ci["build trixie amd64 minbase"]
    assert "cache" not in rebuild
    assert rebuild["artifacts"] == {"when": "always", "paths": ["out/trixie-amd64-minbase/rebuild/"],
                                    "reports": {"junit": "out/trixie-amd64-minbase/rebuild/junit.xml"}}
    first, second = build["script"][-2], rebuild["script"][-1]
    assert "--seed trixie-amd64-minbase" in first and "--seed trixie-amd64-minbase" in second
    assert "--no-stage-cache" in second and "out/trixie-amd64-minbase/rebuild/trixie-amd64-minbase.tar.xz" in second
    assert {"job": "rebuild trixie amd64 minbase", "artifacts": True} in ci["summary"]["needs"]


def test_tool_paths_can_be_given(capsys: pytest.CaptureFixture[str], tmp_path: Path, tool: list[list[str]]) -> None:
    write(tmp_path, SMALL)
    ci = pipeline(capsys, "--vmdebootstrap", "/opt/vmdb/bin/vmdebootstrap", "--vmdebootstrap-matrix", "/opt/m x")
    assert tool[0][0] == "/opt/vmdb/bin/vmdebootstrap"
    assert ci["build trixie amd64 live"]["script"][2].startswith("/opt/vmdb/bin/vmdebootstrap ")
    assert ci["build trixie amd64 live"]["script"][1] == "'/opt/m x' cache restore .cache/vmdebootstrap"
    assert ci["summary"]["script"][0].startswith("'/opt/m x' summary ")


@pytest.mark.parametrize(("answer", "cause"), [
    (Finished(2, "", "vmdebootstrap: error: --grub: no GRUB for arm64\n"),
     "vmdebootstrap --cache-keys: exit status 2: vmdebootstrap: error: --grub: no GRUB for arm64"),
    (Finished(0, "keys!", ""), "vmdebootstrap --cache-keys: not JSON: 'keys!'"),
    (Finished(0, '{"tool": "1", "base": "../x", "stage": null}', ""),
     "vmdebootstrap --cache-keys: base key '../x' is no directory name"),
    (Finished(127, "", "vmdebootstrap: not found"), "vmdebootstrap --cache-keys: exit status 127: command not found, "
     "or its interpreter is missing: vmdebootstrap: not found"),
])
def test_a_cell_the_tool_gives_no_keys_for_is_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch, answer: Finished,
                                                      cause: str) -> None:
    monkeypatch.setattr(processes, "run", lambda argv, timeout=600.0: answer)
    write(tmp_path, "axes:\n  release: [trixie]\n  arch: [amd64]\n  config: [configs/minbase.conf]\n")
    status, out, err = run(capsys, "pipeline", "matrix.yml", "-o", ".gitlab-ci.yml")
    assert (status, out) == (2, "")
    assert err == f"matrix.yml:4: trixie amd64 minbase: {cause} (--no-cache-keys: keys from the cells' names)\n"
    assert not Path(".gitlab-ci.yml").exists()


def test_beyond_fifty_needs_the_summary_waits_for_its_stage(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                           tool: list[list[str]]) -> None:
    names = [f"{{name: c{index}, file: configs/minbase.conf}}" for index in range(26)]
    write(tmp_path, f"axes:\n  release: [trixie, bookworm]\n  arch: [amd64]\n  config: [{', '.join(names)}]\n")
    ci = pipeline(capsys, "--no-cache-keys")
    assert len([name for name in ci if name.startswith("build ")]) == 52
    assert "needs" not in ci["summary"] and ci["summary"]["when"] == "always"
