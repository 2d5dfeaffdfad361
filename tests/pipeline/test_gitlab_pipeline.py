"""Issue 26: a small matrix made into a GitLab CI pipeline and run, job after job, by
gitlab-ci-local 4.73.0 on this machine (the shell executor, each job in its own copy of the
project, artifacts and caches carried between jobs as GitLab carries them).

The matrix: minbase tarballs of trixie and bookworm, and a live ISO of trixie (from a config
file) that its boot job boots from the build job's artifacts; then the summary job.  The run
is made once (module fixture) and every test reads what it left.  Its caches are the
pipeline's own GitLab caches and start empty, as a new runner's do: what is proven is that
the jobs fill and carry them (the two trixie cells share one package cache, some 160 MB).
The shared package cache of the other sessions is not lent to it: gitlab-ci-local copies a
cache into every job's directory, and that one holds every release's packages.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from ..conftest import PASSWORD, REPO, our_mounts, require
from ..junit_format import read as read_junit

pytestmark = [pytest.mark.integration, pytest.mark.pipeline]

GITLAB_CI_LOCAL_VERSION = "4.73.0"
BIN = REPO / ".venv" / "bin"
CELLS = {  # job-name part -> cell directory under out/
    "trixie amd64 minbase": "trixie-amd64-minbase",
    "bookworm amd64 minbase": "bookworm-amd64-minbase",
    "trixie amd64 live": "trixie-amd64-live",
}
RERUN = ("trixie amd64 live", "bookworm amd64 minbase")
# The matrix's apt caching proxy is down (nothing listens on the discard port): the jobs must
# see so and build from the mirror.
DEAD_PROXY = "http://127.0.0.1:9"
LIVE_CONF = """[config]
# a small live system: what a live ISO needs and sudo
package = live-boot, live-config, live-config-systemd
sudo = yes
hostname = matrix-live
iso = live.iso
# its boot job runs beside make check's other sessions (tests/conftest.py: SLOW_GUEST_APPEND)
kernel-append = systemd.default_device_timeout_sec=600
"""


def matrix_text(mirror: str) -> str:
    return f"""\
defaults:
  mirror: {mirror}
  user: user/{PASSWORD}
  lock-root-password: true
  seed: matrix-test
axes:
  release: [trixie, bookworm]
  arch: [amd64]
  config:
    - {{name: minbase, options: {{variant: minbase, no-kernel: true, tarball: minbase.tar}}}}
    - live.conf
exclude:
  - {{release: bookworm, config: live}}
overrides:
  - match: {{config: live}}
    options: {{boot-test: true, boot-firmware: [bios], boot-timeout: 1800}}
cache:
  apt-proxy: {DEAD_PROXY}
"""


def run(argv: list[str], cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)


def git(project: Path, *args: str) -> None:
    done = run(["git", "-c", "user.name=test", "-c", "user.email=test@example.org", *args], project)
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
def project(mirror: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project directory: the matrix, its config file and the generated .gitlab-ci.yml, in git."""
    found = shutil.which("gitlab-ci-local")
    require(found is not None, "needs gitlab-ci-local (make install-test-tools)")
    version = run(["gitlab-ci-local", "--version"], Path.cwd()).stdout.strip()
    require(version == GITLAB_CI_LOCAL_VERSION, f"needs gitlab-ci-local {GITLAB_CI_LOCAL_VERSION}, not {version}")
    path = tmp_path_factory.mktemp("project")
    (path / "matrix.yml").write_text(matrix_text(mirror))
    (path / "live.conf").write_text(LIVE_CONF)
    git(path, "init", "-q")
    generated = run([str(BIN / "vmdebootstrap-matrix"), "pipeline", "matrix.yml", "-o", ".gitlab-ci.yml",
                     "--vmdebootstrap", str(BIN / "vmdebootstrap"),
                     "--vmdebootstrap-matrix", str(BIN / "vmdebootstrap-matrix")], path)
    assert generated.returncode == 0, generated.stderr
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "the matrix and its pipeline")
    return path


@pytest.fixture(scope="module")
def pipeline(project: Path) -> subprocess.CompletedProcess[str]:
    done = run(["gitlab-ci-local", "--shell-isolation", "--concurrency", "1", "--no-artifacts-to-source"],
               project, timeout=3000)
    (project / "pipeline.log").write_text(done.stdout + done.stderr)
    return done


def artifacts(project: Path, job: str) -> Path:
    """Where gitlab-ci-local keeps a job's artifacts (its directory names spell a space "IA")."""
    return project / ".gitlab-ci-local" / "artifacts" / job.replace(" ", "IA")


def test_a_matrix_with_an_error_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    (tmp_path / "matrix.yml").write_text("axes:\n  release: [trixie]\n  arch: [amd64]\n  config: [missing.conf]\n"
                                         "exclude:\n  - {flavour: xfce}\n")
    done = run([str(BIN / "vmdebootstrap-matrix"), "pipeline", "matrix.yml", "-o", ".gitlab-ci.yml",
                "--no-cache-keys"], tmp_path)
    assert done.returncode == 2, done
    lines = done.stderr.splitlines()
    assert any(line.startswith("matrix.yml:4: axes.config[0]: ") and "missing.conf" in line for line in lines), lines
    assert sorted(p.name for p in tmp_path.iterdir()) == ["matrix.yml"]


def test_the_jobs_are_named_for_their_cells_and_all_succeed(project: Path,
                                                          pipeline: subprocess.CompletedProcess[str]) -> None:
    listing = run(["gitlab-ci-local", "--list"], project).stdout
    names = {f"build {cell}" for cell in CELLS} | {"boot trixie amd64 live", "preflight", "summary"}
    for name in names:
        assert f"\n{name} " in f"\n{listing}", (name, listing)
    assert pipeline.returncode == 0, pipeline.stdout[-6000:] + pipeline.stderr[-2000:]
    for name in names:
        assert re.search(rf"^{re.escape(name)} +finished in ", pipeline.stdout, re.MULTILINE), name
    for cell in CELLS:  # the proxy was asked, found down, and left out
        log = (project / ".gitlab-ci-local" / "output" / f"build {cell}.log".replace(" ", "IA")).read_text()
        assert f"apt proxy: no answer: {DEAD_PROXY}" in log and "building without it" in log, log[:3000]


def test_each_build_job_keeps_its_outputs_sboms_sums_report_junit_and_log(
        project: Path, pipeline: subprocess.CompletedProcess[str]) -> None:
    for cell, directory in CELLS.items():
        kept = artifacts(project, f"build {cell}") / "out" / directory
        names = {path.name for path in kept.iterdir()}
        assert {"report.json", "junit.xml", "build.log", "SHA256SUMS"} <= names, (cell, names)
        report = json.loads((kept / "report.json").read_text())
        assert report["outcome"] == "built", (cell, report.get("error"))
        outputs = {Path(output["path"]).name for output in report["outputs"]}
        assert outputs <= names, (cell, outputs - names)
        assert any(name.endswith(".spdx.json") for name in names) and any(n.endswith(".cdx.json") for n in names)
        main = "live.iso" if "live" in cell else "minbase.tar"
        assert any(name.endswith(main) for name in names), (cell, names)
        # SHA256SUMS names every file beside it but itself, and they check out.
        check = run(["sha256sum", "--check", "--strict", "SHA256SUMS"], kept)
        assert check.returncode == 0, check.stdout + check.stderr


def test_every_junit_file_parses_and_names_every_step(project: Path,
                                                      pipeline: subprocess.CompletedProcess[str]) -> None:
    for cell, directory in CELLS.items():
        kept = artifacts(project, f"build {cell}") / "out" / directory
        cases = read_junit((kept / "junit.xml").read_bytes())
        report = json.loads((kept / "report.json").read_text())
        steps = [step["name"] for step in report["steps"]]
        build_cases = [case.name for case in cases if case.classname == "vmdebootstrap.build"]
        assert build_cases[:len(steps)] == steps, (cell, build_cases, steps)
        assert all(case.status in ("success", "skipped") for case in cases), (cell, cases)
    boot = artifacts(project, "boot trixie amd64 live") / "out" / "trixie-amd64-live" / "boot"
    cases = read_junit((boot / "junit.xml").read_bytes())
    assert [(case.classname, case.name, case.status) for case in cases if case.classname == "vmdebootstrap.boot"] \
        == [("vmdebootstrap.boot", "bios", "success")]


def test_the_boot_job_logged_in_from_the_build_job_s_artifacts(project: Path,
                                                              pipeline: subprocess.CompletedProcess[str]) -> None:
    boot = artifacts(project, "boot trixie amd64 live") / "out" / "trixie-amd64-live" / "boot"
    report = json.loads((boot / "report.json").read_text())
    tests = report["boot_tests"]
    assert [test["firmware"] for test in tests] == ["bios"], tests
    assert tests[0]["passed"] and tests[0]["seconds_to_login"] > 0, tests


def test_the_summary_has_one_row_per_cell_a_page_and_one_junit_file(
        project: Path, pipeline: subprocess.CompletedProcess[str]) -> None:
    kept = artifacts(project, "summary")
    table = (kept / "summary.md").read_text().split("\n## ")[0]  # the cells' table, before the steps'
    for cell in CELLS:
        rows = [line for line in table.splitlines() if line.startswith(f"| {cell} |")]
        assert len(rows) == 1, (cell, table)
        assert rows[0].split("|")[2].strip() == "passed", rows[0]
    live_row = next(line for line in table.splitlines() if line.startswith("| trixie amd64 live |"))
    assert re.search(r"\| bios login \d+(\.\d)? s \|", live_row), live_row
    page = (kept / "public" / "index.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and all(CELLS[cell] in page or cell in page for cell in CELLS)
    suites = {case.suite for case in read_junit((kept / "junit.xml").read_bytes())}
    assert len(suites) == len(CELLS) + 1, suites  # every build, and the boot job


def test_a_second_run_builds_from_the_caches_the_first_run_left(
        project: Path, pipeline: subprocess.CompletedProcess[str]) -> None:
    """The jobs' base and stage caches went through GitLab's caches (packed, stored by
    gitlab-ci-local, unpacked in a new job directory): a rerun of two build jobs skips the
    bootstrap and the packages, and gives the same bytes (the matrix's --seed makes the
    password's salt and the identifiers the same)."""
    first = {cell: json.loads((artifacts(project, f"build {cell}") / "out" / CELLS[cell] / "report.json")
                              .read_text()) for cell in RERUN}
    done = run(["gitlab-ci-local", "--shell-isolation", "--concurrency", "1", "--no-artifacts-to-source",
                *(f"build {cell}" for cell in RERUN)], project, timeout=1800)
    (project / "rerun.log").write_text(done.stdout + done.stderr)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    for cell in RERUN:
        report = json.loads((artifacts(project, f"build {cell}") / "out" / CELLS[cell] / "report.json").read_text())
        assert report["bootstrap"]["stage_cache"] == "hit", (cell, report["bootstrap"])
        assert report["bootstrap"]["stage_key"] == first[cell]["bootstrap"]["stage_key"]
        assert {o["sha256"] for o in report["outputs"]} == {o["sha256"] for o in first[cell]["outputs"]}, cell


def test_nothing_is_left_mounted(pipeline: subprocess.CompletedProcess[str]) -> None:
    assert our_mounts() == []
