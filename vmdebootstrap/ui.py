"""What a person sees: a progress display on a terminal, plain lines otherwise,
and always the full log file."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Literal, TextIO

from . import secret
from .errors import Interrupted

log = logging.getLogger("vmdebootstrap")

LOG_FORMAT = "%(asctime)s %(levelname)s %(message)s"
# ``log.error(..., extra=LOG_ONLY)``: into the log file only (the caller prints it itself).
LOG_ONLY = {"console": False}


@dataclasses.dataclass(frozen=True)
class StepRecord:
    """One step as it ran (the build report reads them)."""

    name: str
    started: float  # wall clock, seconds since the epoch
    seconds: float
    outcome: Literal["done", "failed", "interrupted"]


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes:02d}:{secs:02d}"


class Display:
    """Step lines with elapsed times; on a terminal a live status line below them.

    The status line shows the current step, its elapsed time and the latest output
    line of the command it runs (e.g. ``Setting up openssh-server``).
    """

    def __init__(self, stream: TextIO, total_steps: int, live: bool) -> None:
        self.stream = stream
        self.total = total_steps
        self.live = live
        self.echo = False  # the running step's command output is shown too (the hook's)
        self.number = 0
        self.step_name = ""
        self.step_note = ""
        self.detail = ""
        self.started = time.monotonic()
        self.step_started = self.started
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self.records: list[StepRecord] = []
        self.failed_step = ""
        self.broken = False  # the console went away; keep building and cleaning up

    # -- called by the runner for every output line -------------------------
    def on_line(self, line: str) -> None:
        line = secret.without_credentials(line)
        stripped = line.strip()
        if stripped:
            self.detail = stripped
        if self.echo:
            self.print_above(line)

    def _write(self, text: str) -> None:
        """Write to the console; a closed console (a killed parent) must not stop the cleanup."""
        if self.broken:
            return
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):
            self.broken = True

    # -- called by the logging handler ---------------------------------------
    def print_above(self, text: str) -> None:
        with self._lock:
            self._write(("\r\033[K" if self.live else "") + text + "\n")
            self._draw()

    def _draw(self) -> None:
        if not self.live or not self.step_name:
            return
        elapsed = _clock(time.monotonic() - self.step_started)
        head = f"[{self.number}/{self.total}] {self.step_name}{self.step_note} {elapsed}"
        width = _terminal_width(self.stream)
        line = f"{head}  {self.detail}" if self.detail else head
        self._write("\r\033[K" + line[: max(width - 1, 10)])

    def _tick(self) -> None:
        while not self._stop.wait(1.0):
            with self._lock:
                self._draw()

    @contextlib.contextmanager
    def step(self, name: str, begin: Callable[[], str] = str, echo: bool = False) -> Iterator[None]:
        """One named step of the recipe; its duration is shown and logged.

        ``begin`` runs first, inside the step (what fails there fails the step), and returns
        the note shown after the name.
        """
        self.number += 1
        self.step_name, self.step_note, self.detail = name, "", ""
        self.step_started = time.monotonic()
        wall = time.time()
        ok = False
        interrupted = False
        try:
            self.step_note = begin()
            log.info("step %d/%d: %s%s", self.number, self.total, name, self.step_note)
            if self.live and self._ticker is None:
                self._ticker = threading.Thread(target=self._tick, daemon=True)
                self._ticker.start()
            self.echo = echo
            yield
            ok = True
        except (Interrupted, KeyboardInterrupt):
            interrupted = True
            raise
        finally:
            self.echo = False
            seconds = time.monotonic() - self.step_started
            self.records.append(StepRecord(name, wall, seconds,
                                           "done" if ok else "interrupted" if interrupted else "failed"))
            verdict = "done" if ok else "FAILED"
            if not ok and not self.failed_step:
                self.failed_step = name
            log.info("step %s %s in %.1fs", name, verdict, seconds)
            if self.live:
                mark = "ok" if ok else "!!"
                with self._lock:
                    self.step_name = ""
                    self._write(f"\r\033[K[{mark}] {name:<24} {_clock(seconds)}\n")

    @property
    def timings(self) -> list[tuple[str, float]]:
        return [(record.name, record.seconds) for record in self.records]

    def close(self) -> None:
        self._stop.set()
        if self._ticker:
            self._ticker.join(timeout=2)
        # A later step (the boot test after the build) may start it again.
        self._ticker = None
        self._stop = threading.Event()
        if self.live:
            with self._lock:
                self._write("\r\033[K")


class _ConsoleHandler(logging.Handler):
    """Console messages go above the live status line."""

    def __init__(self, display: Display) -> None:
        super().__init__()
        self.display = display

    def emit(self, record: logging.LogRecord) -> None:
        if not getattr(record, "console", True):
            return
        try:
            message = self.format(record)
        except Exception:  # pragma: no cover - logging must never fail the build
            self.handleError(record)
            return
        self.display.print_above(message)


def _terminal_width(stream: TextIO) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (OSError, ValueError):
        return 100


def setup(log_path: str, level: str, mode: int, display: Display, verbose: bool) -> None:
    """Full log into ``log_path``; the console gets step lines, warnings and errors."""
    log.setLevel(logging.DEBUG)
    log.propagate = False
    for handler in list(log.handlers):
        log.removeHandler(handler)
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, mode)
    os.fchmod(fd, mode)
    file_handler = logging.StreamHandler(os.fdopen(fd, "a", encoding="utf-8"))
    file_handler.setFormatter(logging.Formatter(LOG_FORMAT))
    file_handler.setLevel(getattr(logging, level.upper(), logging.DEBUG) if level != "fatal" else logging.CRITICAL)
    file_handler.addFilter(secret.CredentialsFilter())
    log.addHandler(file_handler)
    console = _ConsoleHandler(display)
    console.addFilter(secret.CredentialsFilter())
    console.setFormatter(logging.Formatter("%(message)s"))
    if display.live:
        console.setLevel(logging.DEBUG if verbose else logging.WARNING)
    else:
        console.setLevel(logging.DEBUG if verbose else logging.INFO)
    log.addHandler(console)


def make_display(total_steps: int) -> Display:
    live = sys.stderr.isatty() and os.environ.get("TERM", "") != "dumb"
    return Display(sys.stderr, total_steps, live=live)
