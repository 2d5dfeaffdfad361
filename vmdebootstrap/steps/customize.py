"""Step "customize": the hook ``SCRIPT ROOTDIR IMAGE``, run on the host.

Reads: settings.hook and what hook_env passes on.  Writes: whatever the hook does.
Undoes: mounts the hook left below the root.

The hook runs on the host (not chrooted) with the root directory first and the image
path second (empty without --image), with daemons blocked in the target.  A failing
hook fails the build (#798723), and its output goes to the log and the screen.  The
environment is documented in docs/hooks.md.
"""

from __future__ import annotations

import logging
import os

from .. import mounts
from ..chroot import use_host_dns
from ..context import Context
from ..errors import BuildError
from ..hooks import helpers_path
from ..run import CommandFailed, describe_status

log = logging.getLogger("vmdebootstrap")


def hook_env(ctx: Context) -> dict[str, str]:
    settings = ctx.settings
    return {
        "ROOTDIR": os.fspath(ctx.root),
        "rootdir": os.fspath(ctx.root),  # the name customise.lib's functions read
        # The file being written (its final name appears when the whole build succeeded).
        "IMAGE": os.fspath(ctx.image.raw) if ctx.image is not None else "",
        "VMDEBOOTSTRAP_ARCH": settings.arch.name,
        "VMDEBOOTSTRAP_DISTRIBUTION": settings.release.name,
        "VMDEBOOTSTRAP_MIRROR": settings.mirrors.build,
        "VMDEBOOTSTRAP_APT_MIRROR": settings.mirrors.image,
        "VMDEBOOTSTRAP_COMPONENTS": " ".join(settings.mirrors.components),
        "VMDEBOOTSTRAP_HELPERS": os.fspath(helpers_path()),
        "VMDEBOOTSTRAP_FOREIGN": "1" if settings.foreign else "",
        "VMDEBOOTSTRAP_RECOMMENDS": "1" if settings.recommends else "",
    }


def note(ctx: Context) -> str:
    return f" ({ctx.settings.hook})"


def run(ctx: Context) -> None:
    script = ctx.settings.hook
    assert script is not None  # the recipe runs this step only with --customize
    use_host_dns(ctx)
    env = hook_env(ctx)
    log.info("running customisation hook %s", script)
    ours = mounts.stacked_mounts_below(ctx.root)  # a disk image's root and /boot: not the hook's
    try:
        ctx.runner.run([os.fspath(script), os.fspath(ctx.root), env["IMAGE"]], env=env, cwd=os.getcwd())
    except CommandFailed as exc:
        raise BuildError(f"customisation hook {script} failed ({describe_status(exc.returncode)})") from exc
    finally:
        left = mounts.unmount_below(ctx.runner, ctx.root, ctx.root, keep=ours)
        if left:
            log.warning("the hook left %d mount(s) below the root; unmounted: %s", len(left), ", ".join(left))
