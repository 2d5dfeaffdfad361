"""The customisation hook: ``SCRIPT ROOTDIR IMAGE`` on the host.

As the old tool: run on the host (not chrooted) with the root directory first and
the image path second (empty without --image).  Unlike it: a missing script is a
validation error, a failing script fails the build in every mode (the old tool
ignored the status without a tty, #798723), and the output goes to the log and the
screen.  The environment is documented in docs/hooks.md.
"""

from __future__ import annotations

import logging
import os

from .. import mounts
from ..context import Context
from ..errors import BuildError
from ..hooks import helpers_path
from ..run import CommandFailed, describe_status
from ..settings import find_hook

log = logging.getLogger("vmdebootstrap")


def hook_env(ctx: Context) -> dict[str, str]:
    settings = ctx.settings
    image = settings.text("image")
    return {
        "ROOTDIR": os.fspath(ctx.root),
        "rootdir": os.fspath(ctx.root),  # the old customise.lib read this name
        # The file being written (its final name appears when the whole build succeeded).
        "IMAGE": os.fspath(ctx.image_file) if image and ctx.image_file else "",
        "VMDEBOOTSTRAP_ARCH": settings.arch,
        "VMDEBOOTSTRAP_DISTRIBUTION": settings.suite,
        "VMDEBOOTSTRAP_MIRROR": settings.text("mirror"),
        "VMDEBOOTSTRAP_APT_MIRROR": settings.apt_mirror,
        "VMDEBOOTSTRAP_COMPONENTS": " ".join(settings.items("components")),
        "VMDEBOOTSTRAP_HELPERS": os.fspath(helpers_path()),
        "VMDEBOOTSTRAP_FOREIGN": "1" if settings.foreign else "",
    }


def run_hook(ctx: Context) -> None:
    script = find_hook(ctx.settings.text("customize"))
    env = hook_env(ctx)
    log.info("running customisation hook %s", script)
    ours = mounts.stacked_mounts_below(ctx.root)  # a disk image's root and /boot: not the hook's
    try:
        ctx.runner.run([script, os.fspath(ctx.root), env["IMAGE"]], env=env, cwd=os.getcwd())
    except CommandFailed as exc:
        raise BuildError(f"customisation hook {script} failed ({describe_status(exc.returncode)})") from exc
    finally:
        left = mounts.unmount_below(ctx.runner, ctx.root, ctx.root, keep=ours)
        if left:
            log.warning("the hook left %d mount(s) below the root; unmounted: %s", len(left), ", ".join(left))
