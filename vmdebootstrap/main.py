"""Entry point: parse, validate, then build inside fresh namespaces.

Exit status: 0 success, 1 build failed, 2 bad input (before any side effect),
128+N interrupted by signal N.
"""

from __future__ import annotations

import logging
import os
import resource
import signal
import sys
import time
from pathlib import Path

from . import __version__, binfmt, bootcheck, cli, diskfull, recipe, sandbox, ui
from .errors import BuildError, Interrupted, UsageError
from .run import CommandFailed, Runner
from .settings import Settings, missing_host_tools, validate

log = logging.getLogger("vmdebootstrap")
DEFAULT_LOG_DIR = Path("/var/log/vmdebootstrap")


def prepare(argv: list[str]) -> Settings | int:
    """Everything before the first side effect.  Returns settings, or an exit status."""
    values, files = cli.load(argv)
    if cli.print_and_exit_requests(values, files):
        return 0
    settings = validate(values)
    if settings.text("boot-test-only"):
        return settings
    if settings.flag("dry-run"):
        print("Selected packages: " + ", ".join(settings.packages))
        return 0
    if os.geteuid() != 0:
        raise UsageError("You need to have root privileges to run this script.")
    missing = missing_host_tools(settings)
    if missing:
        raise UsageError("missing host tools: " + ", ".join(missing) + " (run: make install)")
    if settings.foreign:
        try:
            binfmt.probe(settings.arch)
        except binfmt.CannotEmulate as exc:
            raise UsageError(str(exc)) from None
    return settings


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        argv = sandbox.inner_argv() or sys.argv[1:]
    argv = list(argv)
    try:
        prepared = prepare(argv)
    except UsageError as exc:
        print(f"{cli.PROG}: error: {exc}", file=sys.stderr)
        return 2
    if isinstance(prepared, int):
        return prepared
    if prepared.text("boot-test-only") and os.geteuid() != 0:
        return run_boot_test_only(prepared)  # QEMU needs no root; no namespaces then
    if not sandbox.inside():
        return sandbox.run_in_namespaces(argv)
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
            raise Interrupted(signum)

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, handler)
    return received


def log_path(settings: Settings) -> str:
    if settings.text("log"):
        return os.path.abspath(settings.text("log"))
    DEFAULT_LOG_DIR.mkdir(parents=True, exist_ok=True)
    return str(DEFAULT_LOG_DIR / time.strftime("build-%Y%m%d-%H%M%S.log"))


def run_boot_test_only(settings: Settings) -> int:
    display = ui.make_display(1, settings.flag("verbose"))
    path = log_path(settings)
    ui.setup(path, settings.text("log-level"), int(settings.text("log-mode"), 8), display, settings.flag("verbose"))
    image = Path(settings.text("boot-test-only")).resolve()
    try:
        with display.step("boot test", f" ({image.name})"):
            passed = bootcheck.run(settings, image, Path(path).with_suffix(".boot"))
    except BuildError as exc:
        print(f"{cli.PROG}: error: {exc}", file=sys.stderr)
        return 1
    finally:
        display.close()
    return 0 if passed else 1


def run_build(settings: Settings) -> int:
    if settings.text("boot-test-only"):
        return run_boot_test_only(settings)
    os.umask(0o022)  # #822180: a restrictive umask broke images
    display = ui.make_display(len(recipe.plan(settings)), settings.flag("verbose"))
    path = log_path(settings)
    ui.setup(path, settings.text("log-level"), int(settings.text("log-mode"), 8), display, settings.flag("verbose"))
    runner = Runner(on_line=display.on_line)
    started = time.monotonic()
    log.info("vmdebootstrap %s: %s %s, log %s", __version__, settings.suite, settings.arch, path)
    log.debug("packages: %s", ", ".join(settings.packages))
    received = _install_signal_handlers()
    failed_step = ""
    try:
        try:
            outputs = recipe.build(settings, runner, display)
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
        return 128 + exc.signum
    except (BuildError, OSError) as exc:
        where = f"step '{failed_step}' failed" if failed_step else "build failed"
        # A full disk is named first: the command's own words do not say which one.
        full = diskfull.explain(exc, diskfull.places(settings))
        message = f"{full} ({exc})" if full else str(exc)
        log.error("%s: %s", where, message)
        cause = exc.__cause__ if isinstance(exc.__cause__, CommandFailed) else exc
        if isinstance(cause, CommandFailed) and cause.tail:
            log.error("last output lines:\n  %s", "\n  ".join(cause.tail[-10:]))
        print(f"{cli.PROG}: error: {where}: {message}\n{cli.PROG}: full log: {path}", file=sys.stderr)
        return 1
    minutes = (time.monotonic() - started) / 60
    # Our own share (the programs we run are not counted): issue 8 keeps it under 100 MB.
    log.info("peak memory of vmdebootstrap itself: %.1f MiB",
             resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    for output in outputs:
        size = output.stat().st_size
        log.info("wrote %s (%.1f MiB)", output, size / 2**20)
    built = ", ".join(filter(None, (settings.text(k) for k in ("image", "squash", "tarball", "iso"))))
    print(f"{cli.PROG}: built {built} in {minutes:.1f} min; log: {path}", file=sys.stderr)
    if settings.flag("boot-test"):
        try:
            with display.step("boot test"):
                booted = Path(settings.text("iso") or settings.text("image")).resolve()
                passed = bootcheck.run(settings, booted, Path(path).with_suffix(".boot"),
                                       kind="iso" if settings.text("iso") else "disk")
        except (BuildError, Interrupted) as exc:
            print(f"{cli.PROG}: error: boot test: {exc}", file=sys.stderr)
            return 1
        finally:
            display.close()
        if not passed:
            print(f"{cli.PROG}: the image was built but its boot test FAILED (see above); log: {path}",
                  file=sys.stderr)
            return 1
    return 0
