"""One summary row per cell, from its reports: what a person reads at a glance.

Status: ``passed``; ``missing`` (no build report); ``failed`` (the build failed or was
interrupted); ``boot failed`` (its boot job's report says so, or there is none);
``not reproducible`` (the second build's outputs differ, or it failed).  Two builds are
compared only when they read the same InRelease file: a mirror that moved between them
gives other packages, which says nothing of the tool.
"""

from __future__ import annotations

import dataclasses
from pathlib import PurePath
from typing import Any

from .reports import NO_REPORT, CellRun, Read, items

Step = tuple[str, float | None, str]  # name, seconds, outcome


@dataclasses.dataclass(frozen=True)
class Row:
    label: str
    slug: str
    status: str
    detail: str  # why it did not pass; "" when it did
    seconds: float | None
    cache: str
    outputs: str
    packages: str
    boot: str
    reproducible: str
    steps: tuple[Step, ...]

    @property
    def passed(self) -> bool:
        return self.status == "passed"


def row(run: CellRun) -> Row:
    build = run.report("build")
    data = build.data or {}
    status, detail = _build_status(build)
    boot, boot_problem = _boot(run.report("boot")) if run.boots else ("", "")
    same, same_problem = _reproducible(build, run.report("rebuild")) if run.reproducible else ("", "")
    if status == "passed" and boot_problem:
        status, detail = "boot failed", boot_problem
    if status == "passed" and same_problem:
        status, detail = "not reproducible", same_problem
    steps = _steps(data) + (_steps(run.report("boot").data or {}) if run.boots else ())
    packages = data.get("packages_installed")
    return Row(run.label, run.slug, status, detail, _number(data.get("seconds")), _cache(data), _outputs(data),
               str(packages) if isinstance(packages, int) else "", boot, same, steps)


def _build_status(build: Read) -> tuple[str, str]:
    if build.data is None:
        return ("missing" if build.problem == NO_REPORT else "failed"), build.problem
    if build.data.get("outcome") != "built":
        return "failed", str(build.data.get("error") or build.data.get("outcome") or "failed")
    return "passed", ""


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _cache(data: dict[str, Any]) -> str:
    bootstrap = data.get("bootstrap")
    if not isinstance(bootstrap, dict):
        return ""
    stage, base = bootstrap.get("stage_cache"), bootstrap.get("base_cache")
    return f"stage {stage}" + (f", base {base}" if base not in (None, "unused", "off") else "")


def size(count: int) -> str:
    for unit, factor in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if count >= factor:
            return f"{count / factor:.1f} {unit}"
    return f"{count} B"


def _outputs(data: dict[str, Any]) -> str:
    """Each kind's bytes (its files and those beside them), SHA256SUMS left out."""
    totals: dict[str, int] = {}
    for output in items(data, "outputs"):
        kind, count = output.get("kind"), output.get("size")
        if isinstance(kind, str) and kind != "checksums" and isinstance(count, int):
            totals[kind] = totals.get(kind, 0) + count
    return ", ".join(f"{kind} {size(count)}" for kind, count in totals.items())


def _boot(boot: Read) -> tuple[str, str]:
    """(what each firmware's boot test gave, why it failed or "")."""
    if boot.data is None:
        return "", f"boot test: {boot.problem}"
    tests = items(boot.data, "boot_tests")
    shown = []
    for test in tests:
        seconds = _number(test.get("seconds_to_login"))
        verdict = "login" if test.get("passed") else "FAILED"
        shown.append(f"{test.get('firmware')} {verdict}" + (f" {seconds:.1f} s" if seconds is not None else ""))
    failed = [str(test.get("verdict") or "") for test in tests if not test.get("passed")]
    if boot.data.get("outcome") != "built" or failed or not tests:
        return ", ".join(shown), "boot test: " + ("; ".join(failed) or str(boot.data.get("error") or "no boot"))
    return ", ".join(shown), ""


def _digests(data: dict[str, Any]) -> dict[str, str]:
    return {f"{output.get('kind')}/{PurePath(str(output.get('path'))).name}": str(output.get("sha256"))
            for output in items(data, "outputs")}


def _release_date(data: dict[str, Any]) -> object:
    release = data.get("release")
    release_file = release.get("release_file") if isinstance(release, dict) else None
    return release_file.get("date") if isinstance(release_file, dict) else None


def _reproducible(build: Read, rebuild: Read) -> tuple[str, str]:
    """(what comparing the two builds' outputs found, why it failed or "")."""
    if build.data is None or build.data.get("outcome") != "built":
        return "", ""  # the build's own failure says it all
    if rebuild.data is None or rebuild.data.get("outcome") != "built":
        why = rebuild.problem or str(rebuild.data.get("error") if rebuild.data else "")
        return "rebuild failed", f"rebuild: {why}"
    first, second = _release_date(build.data), _release_date(rebuild.data)
    if first != second:
        return f"not compared: the mirror changed ({first} / {second})", ""
    one, two = _digests(build.data), _digests(rebuild.data)
    differ = sorted(name.partition("/")[2] for name in one.keys() | two.keys() if one.get(name) != two.get(name))
    if differ:
        return "differs: " + ", ".join(differ), "the two builds' outputs differ: " + ", ".join(differ)
    return f"identical ({len(one)} files)", ""


def _steps(data: dict[str, Any]) -> tuple[Step, ...]:
    return tuple((str(step.get("name")), _number(step.get("seconds")), str(step.get("outcome")))
                 for step in items(data, "steps"))
