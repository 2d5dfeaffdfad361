"""--report FILE: what one build did, as JSON for the machines that run it (docs/report.md).

The report is written when the build ends, whether it built, failed, failed its boot test
or was interrupted; not for bad input (exit status 2: nothing happened, and the one-line
message says why) and not when the build is SIGKILLed.  Its format is versioned:
``VERSION`` grows when a field goes or changes its meaning; a new field may come without
that, and readers ignore what they do not know.  docs/report.md holds the JSON Schema
tests/unit/test_report.py checks reports against.

Passwords never enter it: the options marked ``secret`` in the table are redacted, and
the accounts are named without them; nor do the credentials of a mirror URL (secret.py).

--junit FILE (junit.py) is made from the same records and written at the same moments.
"""

from __future__ import annotations

import datetime
import email.utils
import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from . import __version__, archive, junit, secret
from .boot.console import BootResult
from .chroot import target_path
from .context import Context
from .digest import file_sha256
from .run import CommandRunner
from .settings import Settings
from .ui import StepRecord

log = logging.getLogger("vmdebootstrap")

FORMAT = "vmdebootstrap-report"
VERSION = 1


def _time(seconds: float) -> str:
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC).isoformat(timespec="seconds")


def _release_date(value: object) -> str | None:
    """A Release file's date (RFC 2822, as apt writes it) in ISO 8601; None when absent or unreadable."""
    try:
        return email.utils.parsedate_to_datetime(str(value)).isoformat() if value else None
    except (TypeError, ValueError):
        return None


def installed_packages(status: str) -> int:
    """How many packages dpkg's status file says are installed."""
    return sum(1 for paragraph in status.split("\n\n") if "\nStatus: install ok installed" in f"\n{paragraph}")


def _output_kind(settings: Settings, path: Path) -> str:
    """Which output option wrote ``path``: its file, a file in its directory, or a manifest or SBOM
    beside it; "checksums" for the SHA256SUMS of a directory the outputs went into."""
    for kind, final in settings.outputs.items():
        if path == final or final in path.parents or (path.parent == final.parent
                                                      and path.name.startswith(final.name + ".")):
            return kind
    return "checksums" if path.name == "SHA256SUMS" else ""


def boot_result(result: BootResult) -> dict[str, object]:
    seconds = result.seconds_to_login
    return {"firmware": result.firmware, "passed": result.passed,
            "seconds_to_login": round(seconds, 1) if seconds is not None else None, "verdict": result.verdict,
            "failed_units": list(result.failed_units), "system_state": result.system_state or None,
            "secure_boot": result.secure_boot, "console_log": os.fspath(result.console_log),
            "screenshot": os.fspath(result.screenshot) if result.screenshot is not None else None}


class Report:
    """Collects what the build did; ``write`` puts it into --report FILE and --junit FILE (nothing
    without them).

    ``plan`` gives the names of the steps the build runs (recipe.plan; the argument: whether
    the tree comes from the stage cache), for those that did not run."""

    def __init__(self, settings: Settings, log_path: str, plan: Callable[[bool], list[str]]) -> None:
        self.settings = settings
        self.plan = plan
        self.log_path = log_path
        self.started = time.time()
        self.release_file: dict[str, object] | None = None
        self.bootstrap: dict[str, object] | None = None
        self.packages_installed: int | None = None
        self.outputs: list[Path] = []
        self.boot_results: list[BootResult] = []
        self.failed_as = ""  # the outcome ``fail`` gave; outcome(status) reads it
        self.error: str | None = None

    @property
    def wanted(self) -> bool:
        return self.settings.report is not None or self.settings.junit is not None

    def read_release(self, runner: CommandRunner) -> None:
        """The mirror's (In)Release file for the release, as the build is about to use it (only the
        JSON report says what it held)."""
        if self.settings.report is None:
            return
        settings = self.settings
        fields = archive.release(runner, settings.mirrors.build, settings.release.name)
        if fields is None:
            return
        self.release_file = {
            "suite": fields.get("Suite"), "codename": fields.get("Codename"), "version": fields.get("Version"),
            "date": _release_date(fields.get("Date")), "valid_until": _release_date(fields.get("Valid-Until")),
        }

    def observe(self, ctx: Context) -> None:
        """At the end of recipe.build, before anything is undone: what only the build knows."""
        if not self.wanted:
            return
        try:
            origin = ctx.origin
            if origin is not None:
                self.bootstrap = {
                    "bootstrapper": origin.bootstrapper, "reason": origin.reason,
                    "stage_cache": "off" if origin.stage is None else "hit" if origin.cached else "miss",
                    "stage_key": origin.stage.key if origin.stage is not None else None,
                    "base_cache": origin.base,
                }
            status = target_path(ctx.root, "/var/lib/dpkg/status")
            if status.is_file():
                self.packages_installed = installed_packages(status.read_text(errors="replace"))
        except OSError as exc:  # the report must not hide the build's own outcome
            log.warning("build report: %s", exc)

    def fail(self, message: str, outcome: str = "failed") -> None:
        self.failed_as, self.error = outcome, message

    def planned(self, records: Sequence[StepRecord]) -> list[tuple[str, StepRecord | None]]:
        """Every step that ran, then those of the plan that did not (None)."""
        cached = self.bootstrap is not None and self.bootstrap["stage_cache"] == "hit"
        names = {r.name for r in records}
        return [(r.name, r) for r in records] + [(name, None) for name in self.plan(cached) if name not in names]

    def steps(self, records: Sequence[StepRecord]) -> list[dict[str, object]]:
        return [{"name": r.name, "started": _time(r.started), "seconds": round(r.seconds, 1), "outcome": r.outcome}
                if r is not None else {"name": name, "started": None, "seconds": None, "outcome": "not run"}
                for name, r in self.planned(records)]

    def outcome(self, status: int) -> str:
        return self.failed_as or ("built" if status == 0 else "failed")

    def document(self, status: int, records: Sequence[StepRecord]) -> dict[str, object]:
        settings, finished = self.settings, time.time()
        return {
            "format": FORMAT, "version": VERSION,
            "tool": {"name": "vmdebootstrap", "version": __version__},
            "started": _time(self.started), "finished": _time(finished),
            "seconds": round(finished - self.started, 1),
            "exit_status": status, "outcome": self.outcome(status),
            "error": self.error, "log": self.log_path,
            "settings": dict(settings.given), "config_files": list(settings.config_files),
            "release": {"name": settings.release.name, "architecture": settings.arch.name,
                        "mirror": settings.mirrors.build, "apt_mirror": settings.mirrors.image,
                        "components": list(settings.mirrors.components), "release_file": self.release_file},
            "accounts": {"root": "password" if settings.root_password else "empty" if settings.empty_root
                         else "locked", "users": [user.name for user in settings.users]},
            "bootstrap": self.bootstrap,
            "packages_installed": self.packages_installed,
            "steps": self.steps(records),
            "outputs": [{"path": os.fspath(path), "kind": _output_kind(settings, path),
                         "size": path.stat().st_size, "sha256": file_sha256(path)} for path in self.outputs],
            "boot_tests": [boot_result(result) for result in self.boot_results],
        }

    def json_bytes(self, status: int, records: Sequence[StepRecord]) -> bytes:
        # Credentials of a mirror URL go wherever they appear (the settings, the release, an error).
        text = json.dumps(self.document(status, records), indent=2, default=str)
        return (secret.without_credentials(text) + "\n").encode()

    def junit(self, status: int, records: Sequence[StepRecord]) -> junit.Build:
        """What --junit FILE is made of: the same records as the report's."""
        test = self.settings.boot_test
        return junit.Build(
            name=junit.suite_name(self.settings), started=self.started, seconds=time.time() - self.started,
            outcome=self.outcome(status), exit_status=status, error=self.error, log=Path(self.log_path),
            steps=self.planned(records), boots=list(self.boot_results),
            firmwares=test.firmwares if test is not None else ())

    def write(self, status: int, records: Sequence[StepRecord]) -> None:
        """Write the report and the JUnit file, each without the other's failure stopping it; nothing
        without --report or --junit."""
        if self.settings.report is not None:
            _replace(self.settings.report, "the build report", lambda: self.json_bytes(status, records))
        if self.settings.junit is not None:
            _replace(self.settings.junit, "the JUnit file", lambda: junit.text(self.junit(status, records)))


def _replace(path: Path, what: str, make: Callable[[], bytes]) -> None:
    """Write what ``make`` makes to ``path`` atomically (under a hidden name beside it, then renamed):
    a reader never sees half of it."""
    try:
        partial = path.with_name(f".{path.name}.partial")
        partial.write_bytes(make())
        os.replace(partial, path)
    except OSError as exc:
        log.error("could not write %s %s: %s", what, path, exc)
        return
    log.info("wrote %s %s", what, path)
