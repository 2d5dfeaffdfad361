"""build(): the whole build as one table of named steps, run top to bottom.

    partition -> bootstrap -> packages -> system -> users -> customize -> bootloader
      -> finish -> image | squashfs | tarball -> iso -> manifest   (then the outputs appear)

``STEPS`` is the recipe: each step has a name, a condition on the settings and what it
does.  The same table gives the progress display its plan (``plan``) and runs the build,
so the two cannot disagree.  Every piece of work runs inside a named step: a failure
anywhere names its step, and fault injection (faults.py) reaches every step.

Steps that run the target's programs belong to a chroot session: daemons are blocked
from the first step of a session to its last (chroot.daemons_blocked), and the API
filesystems are mounted for each run of its steps that asks for them.  Opening and
closing them belongs to the step at whose start or end it happens.

Every resource is registered on one ExitStack the moment it is acquired, and undone in
reverse on success, error, Ctrl-C and SIGTERM.  The build runs as PID 1 of its own PID
and mount namespaces (sandbox.py), so even SIGKILL leaks no mount or process.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

from . import chroot, diskfull, faults, outputs, workspace
from .context import Context
from .errors import BuildError
from .outputs import image
from .publish import Outputs
from .run import CommandRunner
from .settings import Settings
from .steps import bootstrap, customize, finish, manifest, packages, system, users
from .ui import Display

log = logging.getLogger("vmdebootstrap")

Action = Callable[[Context], None]


def _always(_settings: Settings) -> bool:
    return True


def _no_note(_ctx: Context) -> str:
    return ""


@dataclasses.dataclass(frozen=True)
class Step:
    name: str
    run: Action
    when: Callable[[Settings], bool] = _always  # whether this build has the step
    prepare: Action | None = None  # decided as the step starts, before its note (what the note shows)
    note: Callable[[Context], str] = _no_note  # shown after the name; computed as the step starts, pure
    session: str = ""  # the chroot session it belongs to ("": it runs nothing in the target)
    api: bool = False  # it needs the API filesystems (/proc, /sys, /dev, /run) in the target
    stage: bool = False  # it makes the tree the stage cache keeps (stagecache.py)
    then: Action | None = None  # done at its end, after its session is closed
    echo: bool = False  # its commands' output is shown on the terminal (the hook's)


def _image(settings: Settings) -> bool:
    return settings.disk is not None


def _hook(settings: Settings) -> bool:
    return settings.hook is not None


STEPS: tuple[Step, ...] = (
    Step("partition", image.partition, when=_image, note=image.note),
    Step("bootstrap", bootstrap.run, prepare=bootstrap.decide, note=bootstrap.note, stage=True),
    Step("packages", packages.run, when=packages.needed, note=packages.note, session="packages", api=True,
         stage=True),
    Step("system", system.run, session="target", api=True),
    Step("users", users.run, session="target", api=True),
    Step("customize", customize.run, when=_hook, note=customize.note, session="target", echo=True),
    Step("bootloader", image.install_bootloader, when=_image, session="target", api=True),
    Step("finish", finish.run, session="target", api=True, then=finish.scrub),
    *(Step(kind.STEP, kind.run, when=kind.wanted, note=kind.note) for kind in outputs.kinds()),
    Step("manifest", manifest.run),
)


# The name of the step main.py runs after the recipe when the build has --boot-test.
BOOT_TEST = "boot test"


def plan(settings: Settings, cached: bool = False) -> list[str]:
    """The names of the steps this build runs, in order (main.py runs the boot test after it)."""
    names = [step.name for step in _planned(settings, cached)]
    return names + ([BOOT_TEST] if settings.boot_test is not None else [])


def _planned(settings: Settings, cached: bool) -> list[Step]:
    steps = [step for step in STEPS if step.when(settings)]
    if cached:  # the first stage step restores the cached tree; the others made what it holds
        first = next(step for step in steps if step.stage)
        steps = [step for step in steps if not step.stage or step is first]
    return steps


class _Sessions:
    """The chroot session of the running steps: its daemon block and API filesystems."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.name = ""
        self.blocked: contextlib.ExitStack | None = None
        self.mounted: contextlib.ExitStack | None = None

    def enter(self, step: Step) -> None:
        if step.session != self.name:
            self.close()
        if step.session and self.blocked is None:
            self.blocked = self.ctx.stack.enter_context(contextlib.ExitStack())
            self.blocked.enter_context(chroot.daemons_blocked(self.ctx))
            self.name = step.session
        if not step.api:
            self.unmount()
        elif self.mounted is None:
            self.mounted = self.ctx.stack.enter_context(contextlib.ExitStack())
            self.mounted.enter_context(chroot.api_filesystems(self.ctx))

    def leave(self, step: Step, following: Step | None) -> None:
        """At the end of ``step``: close what the following step does not share."""
        if following is None or following.session != step.session:
            self.close()
        elif not following.api:
            self.unmount()

    def unmount(self) -> None:
        if self.mounted is not None:
            self.mounted.close()
            self.mounted = None

    def close(self) -> None:
        self.unmount()
        if self.blocked is not None:
            self.blocked.close()
            self.blocked = None
        self.name = ""


def build(settings: Settings, runner: CommandRunner, display: Display,
          observe: Callable[[Context], None] | None = None) -> list[Path]:
    """Run the steps; ``observe`` sees the context at the end, whether the build failed or not,
    before anything is undone (the build report, report.py)."""
    with contextlib.ExitStack() as stack:
        workdir = workspace.create(settings.workdir, runner, stack)
        ctx = Context(settings, runner, workdir, stack, Outputs(stack, workdir / workspace.JOURNAL))
        try:
            _run_steps(ctx, display)
        finally:
            if observe is not None:
                observe(ctx)
        return ctx.outputs.written


def _run_steps(ctx: Context, display: Display) -> None:
    sessions = _Sessions(ctx)
    done: set[str] = set()
    while step := _next(ctx, done):
        display.total = len(plan(ctx.settings, cached=ctx.origin is not None and ctx.origin.cached))
        with running(display, step.name, _begin(step, ctx), echo=step.echo):
            sessions.enter(step)
            step.run(ctx)
            remaining = _remaining(ctx, done | {step.name})
            sessions.leave(step, remaining[0] if remaining else None)
            _after(step, ctx, remaining)
        done.add(step.name)


def _remaining(ctx: Context, done: set[str]) -> list[Step]:
    cached = ctx.origin is not None and ctx.origin.cached
    return [step for step in _planned(ctx.settings, cached) if step.name not in done]


def _next(ctx: Context, done: set[str]) -> Step | None:
    remaining = _remaining(ctx, done)
    return remaining[0] if remaining else None


def _after(step: Step, ctx: Context, remaining: list[Step]) -> None:
    """What happens at the end of a step once its session is closed: the stage is saved after
    the last stage step, ``then`` runs, and after the last step the outputs are published."""
    if step.stage and not any(s.stage for s in remaining):
        bootstrap.save_stage(ctx)
    if step.then is not None:
        step.then(ctx)
    if not remaining:
        ctx.outputs.publish()
        if ctx.settings.owner:
            _chown_outputs(ctx, ctx.settings.owner)


def _chown_outputs(ctx: Context, owner: str) -> None:
    """--owner: the output directories (--squash) and every file the build wrote beside them
    (package lists, SBOMs, SHA256SUMS)."""
    directories = [path for path in ctx.settings.outputs.values() if path.is_dir()]
    files = [path for path in ctx.outputs.written if not any(path.is_relative_to(d) for d in directories)]
    if directories:
        ctx.runner.run(["chown", "-R", owner, *map(str, directories)])
    if files:
        ctx.runner.run(["chown", owner, *map(str, files)])


def _begin(step: Step, ctx: Context) -> Callable[[], str]:
    """What a step does first, inside it: the fault injection, its decisions, then its note."""
    def begin() -> str:
        faults.maybe_inject(step.name)
        if step.prepare is not None:
            step.prepare(ctx)
        return step.note(ctx)
    return begin


@contextlib.contextmanager
def running(display: Display, name: str, begin: Callable[[], str] = str, echo: bool = False) -> Iterator[None]:
    """One named step on the display; a full disk's free space is recorded as it fails."""
    with display.step(name, begin, echo=echo):
        try:
            yield
        except (BuildError, OSError) as exc:
            diskfull.remember(exc)  # the free space now, before the cleanup frees it
            raise
