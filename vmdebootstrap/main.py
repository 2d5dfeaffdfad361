"""Entry point: parse, validate, then build inside fresh namespaces.

Exit status: 0 success, 1 build failed, 2 bad input (before any side effect),
128+N interrupted by signal N.
"""

from __future__ import annotations

import json
import logging
import os
import resource
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

from . import __version__, archive, binfmt, cachekeys, cli, diskfull, hostdeps, recipe, report, run, sandbox, secret, ui
from .boot import check as boot_check
from .errors import BuildError, Interrupted, UsageError
from .run import Runner, command_failure
from .settings import Settings, validate
from .steps import packages

log = logging.getLogger("vmdebootstrap")
DEFAULT_LOG_DIR = Path("/var/log/vmdebootstrap")


def prepare(argv: list[str]) -> Settings | int:
    """Everything before the first side effect.  Returns settings, or an exit status."""
    loaded = cli.load(argv)
    values = loaded.values
    if cli.print_and_exit_requests(values, loaded.files):
        return 0
    settings = validate(values, ask=_mirror_codename(str(values["mirror"])), notes=loaded.notes,
                        config_files=loaded.files)
    if values["print-host-packages"]:  # for the configured build: after validation
        print(" ".join(hostdeps.host_packages(settings)))
        return 0
    if values["cache-keys"]:
        return _print_cache_keys(settings)
    if settings.boot_test_only is not None:
        return settings
    if settings.dry_run:
        for note in settings.notes:  # a build logs them (log_notes): here nothing else will
            print(f"{cli.PROG}: warning: {note}", file=sys.stderr)
        print("Selected packages: " + ", ".join(packages.selected(settings)))
        return 0
    if os.geteuid() != 0:
        raise UsageError("You need to have root privileges to run this script.")
    missing = hostdeps.missing(settings)
    if missing:
        raise UsageError(hostdeps.missing_message(missing))
    if settings.foreign:
        try:
            binfmt.probe(settings.arch)
        except binfmt.CannotEmulate as exc:
            raise UsageError(str(exc)) from None
    if not sandbox.in_namespaces() and not sandbox.root_is_a_mount_point():
        raise UsageError("/ is not a mount point (a chroot of a plain directory?): the build's private "
                         "mount namespace needs one; bind-mount the directory onto itself, then chroot")
    return settings


def _print_cache_keys(settings: Settings) -> int:
    """--cache-keys: one JSON object on stdout (cachekeys.keys); 1 when the mirror sends no Release file."""
    if settings.boot_test_only is not None:
        raise UsageError("--cache-keys: --boot-test-only builds nothing, so it uses no cache")
    try:
        found = cachekeys.keys(settings)
    except binfmt.CannotEmulate as exc:  # what the build would refuse with (prepare)
        raise UsageError(str(exc)) from None
    except (BuildError, OSError) as exc:  # the mirror sent no Release file; --workdir cannot be written
        _say(f"error: {exc}")
        return 1
    print(json.dumps(found))
    return 0


def _say(text: str) -> None:
    """One message on stderr, prefixed with the program's name; a mirror URL's credentials redacted."""
    print(f"{cli.PROG}: {secret.without_credentials(text)}", file=sys.stderr)


def _mirror_codename(mirror: str) -> Callable[[str], str | None]:
    """What --distribution stable (testing, ...) is on the mirror, asked only for such a name."""
    return lambda suite: archive.codename(Runner(), mirror, suite) if mirror else None


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        argv = sandbox.inner_argv() or sys.argv[1:]
    argv = list(argv)
    try:
        prepared = prepare(argv)
    except UsageError as exc:
        _say(f"error: {exc}")
        return 2
    if isinstance(prepared, int):
        return prepared
    if prepared.boot_test_only is not None and os.geteuid() != 0:
        return run_boot_test_only(prepared)  # QEMU needs no root; no namespaces then
    if not sandbox.in_namespaces():
        return sandbox.run_in_namespaces(argv)
    sandbox.take_hostname(prepared.hostname)
    return run_build(prepared)


def _install_signal_handlers() -> list[int]:
    """Signals raise Interrupted once; returns the list of every signal received."""
    received: list[int] = []

    def handler(signum: int, _frame: object) -> None:
        # Only the first one raises: a second signal must not interrupt the cleanup the
        # first one started.  And nothing else happens here: a handler that logs hangs
        # the build for good when the signal lands while the interrupted code holds the
        # console's lock -- and Ctrl-C delivers SIGINT twice, from the terminal and from
        # the supervisor that forwards it (found by the fault campaign).
        received.append(signum)
        if len(received) == 1:
            run.interrupt(Interrupted(signum))  # held while a command is being started

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, handler)
    return received


def log_path(settings: Settings) -> str:
    if settings.logging.path is not None:
        return os.path.abspath(settings.logging.path)
    DEFAULT_LOG_DIR.mkdir(parents=True, exist_ok=True)
    return str(DEFAULT_LOG_DIR / time.strftime("build-%Y%m%d-%H%M%S.log"))


def _start_logging(settings: Settings, steps: int) -> tuple[ui.Display, str]:
    display = ui.make_display(steps)
    path = log_path(settings)
    ui.setup(path, settings.logging.level, settings.logging.mode, display, settings.logging.verbose)
    for note in settings.notes:  # what reading the settings found to say, on the terminal and in the log
        log.warning("%s", note)
    return display, path


def run_boot_test_only(settings: Settings) -> int:
    display, path = _start_logging(settings, 1)
    record = report.Report(settings, path, plan=lambda _cached: [recipe.BOOT_TEST])
    image = settings.boot_test_only
    assert image is not None
    image = image.resolve()
    status = 1
    try:
        with display.step(recipe.BOOT_TEST, lambda: f" ({image.name})"):
            passed = boot_check.run(settings, image, Path(path).with_suffix(".boot"), results=record.boot_results)
        status = 0 if passed else 1
        if not passed:
            record.fail("the boot test failed", "boot-test-failed")
    except BuildError as exc:
        _say(f"error: {exc}")
        record.fail(str(exc))
    finally:
        display.close()
        record.write(status, display.records)
    return status


def run_build(settings: Settings) -> int:
    """The build, its boot test, and --report FILE written however they end."""
    if settings.boot_test_only is not None:
        return run_boot_test_only(settings)
    os.umask(0o022)  # #822180: a restrictive umask broke images
    display, path = _start_logging(settings, len(recipe.plan(settings)))
    record = report.Report(settings, path, plan=lambda cached: recipe.plan(settings, cached))
    status = 1
    try:
        status = _build(settings, display, path, record)
    except BaseException as exc:  # a bug: the report says so, the traceback follows
        record.fail(f"internal error: {exc!r}")
        raise
    finally:
        record.write(status, display.records)
    return status


def _build(settings: Settings, display: ui.Display, path: str, record: report.Report) -> int:
    runner = Runner(on_line=display.on_line)
    started = time.monotonic()
    log.info("vmdebootstrap %s: %s %s, log %s", __version__, settings.release, settings.arch.name, path)
    log.debug("packages: %s", ", ".join(packages.selected(settings)))
    received = _install_signal_handlers()
    failed_step = ""
    try:
        record.read_release(runner)
        try:
            outputs = recipe.build(settings, runner, display, observe=record.observe)
        finally:
            failed_step = display.failed_step
            display.close()
    except Interrupted as exc:
        if len(received) > 1:
            log.warning("signal(s) %s received again during the cleanup; ignored",
                        ", ".join(map(str, received[1:])))
        log.error("interrupted by signal %d during step '%s'; cleaned up, nothing was published",
                  exc.signum, failed_step or "-")
        print(f"{cli.PROG}: interrupted; full log: {path}", file=sys.stderr)
        record.fail(f"interrupted by signal {exc.signum} during step '{failed_step or '-'}'", "interrupted")
        return 128 + exc.signum
    except (BuildError, OSError) as exc:
        return _report_failure(exc, failed_step, settings, path, record)
    record.outputs = outputs
    minutes = (time.monotonic() - started) / 60
    # Our own share (the programs we run are not counted): issue 8 keeps it under 100 MB.
    log.info("peak memory of vmdebootstrap itself: %.1f MiB",
             resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    for output in outputs:
        log.info("wrote %s (%.1f MiB)", output, output.stat().st_size / 2**20)
    built = ", ".join(str(output) for output in settings.outputs.values())
    print(f"{cli.PROG}: built {built} in {minutes:.1f} min; log: {path}", file=sys.stderr)
    return _boot_test_after_build(settings, display, path, record) if settings.boot_test is not None else 0


def _report_failure(exc: BuildError | OSError, failed_step: str, settings: Settings, path: str,
                    record: report.Report) -> int:
    where = f"step '{failed_step}' failed" if failed_step else "build failed"
    # A full disk is named first: the command's own words do not say which one.
    full = diskfull.explain(exc, diskfull.places(settings))
    message = f"{full} ({exc})" if full else str(exc)
    log.error("%s: %s", where, message)
    failed = command_failure(exc)
    lines = failed.last_lines() if failed is not None else []
    # Printed below with the error itself, on a terminal as elsewhere; the log has them in its place.
    if lines:
        log.error("last output lines:\n  %s", "\n  ".join(lines), extra=ui.LOG_ONLY)
    shown = f"\n{cli.PROG}: last output lines of the command:" + "".join(f"\n  {line}" for line in lines)
    _say(f"error: {where}: {message}{shown if lines else ''}\n{cli.PROG}: full log: {path}")
    record.fail(f"{where}: {message}")
    return 1


def _boot_test_after_build(settings: Settings, display: ui.Display, path: str, record: report.Report) -> int:
    assert settings.booted is not None  # validation refuses --boot-test without an output that boots
    kind, booted = settings.booted
    try:
        with display.step(recipe.BOOT_TEST):
            passed = boot_check.run(settings, booted, Path(path).with_suffix(".boot"), kind=kind,
                                   results=record.boot_results)
    except (BuildError, Interrupted) as exc:
        _say(f"error: boot test: {exc}")
        record.fail(f"boot test: {exc}", "interrupted" if isinstance(exc, Interrupted) else "boot-test-failed")
        return 1
    finally:
        display.close()
    if not passed:
        print(f"{cli.PROG}: the image was built but its boot test FAILED (see above); log: {path}",
              file=sys.stderr)
        record.fail("the image was built but its boot test failed", "boot-test-failed")
        return 1
    return 0
