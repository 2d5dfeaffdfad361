"""--cache-keys: the names of the stage-cache and base-cache entries a build of these settings
would use (CACHE/stages/KEY and CACHE/bases/KEY, stagecache.py and basecache.py), without building.

A CI pipeline names its shared caches after them, so that a job restores the entry its build
will look up.  The keys come from the code the build's bootstrap step runs as it starts
(bootstrap.source: the bootstrapper's choice, the mirror's InRelease, the stage's inputs, a
disk image's fstab from the seed): a printed key is the build's by construction, not by a
second computation kept in step with the first.

Nothing is made: no work directory, no cache directory.  The one side effect is the suite's
InRelease, fetched into a temporary directory that is removed again.

The keys are of this host: ``--bootstrapper auto`` chooses by what is installed here (mmdebstrap,
its merged-/usr hook, arch-test, a qemu-user handler's F flag) and by whether the package cache
and the work directory share a filesystem.  A pipeline that prints the keys on one machine for
builds on another names the bootstrapper (``--bootstrapper mmdebstrap``).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from . import basecache, stagecache
from .errors import BuildError
from .run import CommandRunner, Runner
from .settings import Settings
from .steps import bootstrap


def keys_for(settings: Settings, runner: CommandRunner, workdir: Path) -> dict[str, str | None]:
    """``{"tool": VERSION, "base": KEY, "stage": KEY}``: this build's entries in the base and stage
    caches, None for both when it uses neither (--no-stage-cache, --cache-dir "").  ``tool`` is the
    tool's version and the hash of its code, part of both keys.  ``workdir``: where the InRelease
    is fetched to, in the directory the build's work directory would be made in (the bootstrapper's
    choice looks at its filesystem).  BuildError when the mirror sends no Release file (the build
    would run without the caches then)."""
    if not stagecache.enabled(settings):
        return {"tool": stagecache.tool_version(), "base": None, "stage": None}
    found = bootstrap.source(settings, runner, workdir)
    if found.stage is None:
        raise BuildError(f"no cache keys: the mirror {settings.mirrors.build} sent no Release file for "
                         f"{settings.release}")
    return {"tool": found.stage.tool, "base": basecache.key(found.stage), "stage": stagecache.key(found.stage)}


def keys(settings: Settings, runner: CommandRunner | None = None) -> dict[str, str | None]:
    """keys_for in a temporary directory where the build's work directory would be made (--workdir,
    else the system's temporary directory), removed again.  ``runner``: a real one by default."""
    # Hidden, and not named as work directories are: the next build's cleanup looks for those.
    with tempfile.TemporaryDirectory(prefix=".vmdebootstrap-cache-keys-", dir=settings.workdir) as directory:
        return keys_for(settings, runner if runner is not None else Runner(), Path(directory))
