"""build(): the whole build as one linear recipe.

    [partition] -> bootstrap -> packages -> system -> users -> customize hook -> finish
      -> [bootloader -> image] | squashfs | tarball -> [iso] -> publish

Every resource is registered on one ExitStack the moment it is acquired, and undone
in reverse on success, error, Ctrl-C and SIGTERM.  The build runs as PID 1 of its
own PID and mount namespaces (sandbox.py), so even SIGKILL leaks no mount or process.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from . import chroot, diskfull, faults, stagecache, workspace
from .context import CommandRunner, Context
from .errors import BuildError
from .publish import Staging
from .settings import Settings
from .steps import bootloader, bootstrap, customize, finalize, image, iso, packages, squash, system, tarball, users
from .ui import Display

log = logging.getLogger("vmdebootstrap")


def plan(settings: Settings) -> list[str]:
    """The names of the steps this build will run, in order (for the progress display)."""
    names = ["partition"] if settings.text("image") else []
    names.append("bootstrap")
    if settings.items("custom-package") or settings.packages:
        names.append("packages")
    names += ["system", "users"]
    if settings.text("customize"):
        names.append("customize")
    names.append("finish")
    if settings.text("image"):
        names += ["bootloader", "image"]
    if settings.text("squash") or settings.text("iso"):
        names.append("squashfs")
    if settings.text("tarball"):
        names.append("tarball")
    if settings.text("iso"):
        names.append("iso")
    if settings.flag("boot-test"):
        names.append("boot test")
    return names


@contextlib.contextmanager
def step(display: Display, name: str, note: str = "", emulated: str = "") -> Iterator[None]:
    with display.step(name, note + emulated):
        faults.maybe_inject(name)
        try:
            yield
        except (BuildError, OSError) as exc:
            diskfull.remember(exc)  # the free space now, before the cleanup frees it
            raise


def build(settings: Settings, runner: CommandRunner, display: Display) -> list[Path]:
    with contextlib.ExitStack() as stack:
        workdir = workspace.create(settings.text("workdir"), runner, stack)
        ctx = Context(settings, runner, workdir, stack)
        staging = Staging(stack, workdir / workspace.STAGED)
        # Foreign builds are slow; say why on the steps that run the target's programs.
        emu = f" [emulated {settings.arch}]" if settings.foreign else ""

        made: image.Disk | None = None
        if settings.text("image"):
            with step(display, "partition", f" ({settings.text('image')})"):
                made = image.prepare(ctx, staging)
                ctx.image_file = made.raw

        bootstrapper, why = bootstrap.choose(ctx)
        log.info("bootstrapper: %s (%s)", bootstrapper, why)
        stage, cached = stagecache.lookup(ctx, bootstrapper)
        if stage and cached:
            if packages.needed(ctx):
                display.total -= 1  # the packages step is part of the cached stage
            with step(display, "bootstrap", f" (from the stage cache, {stage.key[:12]})"):
                stagecache.use(ctx, stage)
                if settings.foreign:
                    bootstrap.provide_interpreter(ctx)
                if settings.text("iso"):  # GRUB's EFI files are not part of the stage
                    chroot.use_host_dns(ctx)
                    with chroot.api_filesystems(ctx):
                        iso.fetch_grub(ctx)
        else:
            with step(display, "bootstrap", f" ({settings.suite} {settings.arch}, {bootstrapper})", emu):
                bootstrap.bootstrap(ctx, bootstrapper)
                if made:
                    image.write_fstab(ctx, made)
            if packages.needed(ctx):
                with step(display, "packages", f" ({len(settings.packages)} requested)", emu):
                    with chroot.daemons_blocked(ctx), chroot.api_filesystems(ctx):
                        packages.install(ctx)
            if stage:
                stagecache.save(ctx, stage)

        with chroot.daemons_blocked(ctx):
            with chroot.api_filesystems(ctx):
                with step(display, "system", "", emu):
                    system.configure(ctx)
                with step(display, "users", "", emu):
                    users.configure(ctx)
            if settings.text("customize"):
                with step(display, "customize", f" ({settings.text('customize')})"):
                    chroot.use_host_dns(ctx)
                    display.echo = True
                    try:
                        customize.run_hook(ctx)
                    finally:
                        display.echo = False
            with step(display, "finish", "", emu), chroot.api_filesystems(ctx):
                finalize.finish(ctx)
            if made:
                with step(display, "bootloader", "", emu), chroot.api_filesystems(ctx):
                    bootloader.install(ctx, made)
        finalize.scrub_identity(ctx)
        if made:
            with step(display, "image"):
                image.finish(ctx, made, staging)

        live_files: dict[str, Path] = {}
        if settings.text("squash") or settings.text("iso"):
            with step(display, "squashfs", f" ({squash.compression(settings)})"):
                if settings.text("squash"):
                    outdir = staging.directory(Path(settings.text("squash")).resolve())
                    live_files = squash.make(ctx, outdir, staging.stage)
                else:  # only for the ISO: no need to publish it on its own
                    (workdir / "live").mkdir()
                    live_files = squash.make(ctx, workdir / "live", lambda path: path)
        if settings.text("tarball"):
            with step(display, "tarball"):
                tarball.make(ctx, staging)
        if settings.text("iso"):
            with step(display, "iso", f" ({settings.text('iso')})"):
                iso.make(ctx, staging, live_files)

        outputs = staging.publish()
        if settings.text("owner"):
            for target in filter(None, (settings.text(k) for k in ("image", "squash", "tarball", "iso"))):
                runner.run(["chown", "-R", settings.text("owner"), os.path.abspath(target)])
        return outputs
