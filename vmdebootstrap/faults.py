"""Test-only fault injection: inert in an installed vmdebootstrap.

``VMDEBOOTSTRAP_FAULT=STEP:fail`` makes the named step fail as it starts;
``STEP:wait`` makes the build stop there (writing ``VMDEBOOTSTRAP_FAULT_READY`` if
set) until a signal arrives, so a test can interrupt it at a known point.  A few
points inside steps have names of their own (``xfs-mounted``: the disk image step with
an xfs partition mounted through a loop device).

Why the switch is where it is: the fault campaign (tests/faults) and the integration
tests must reach every step of a real build, as root, through the real entry point, so
the hook has to live in the product.  But an environment variable is inherited by
whatever the build starts and by whatever starts the build: a variable left in a CI job's
or a shell's environment must not make an installed copy fail its builds.  So the
variable is honoured only by the code of a source checkout that has the fault campaign
beside it (``tests/faults`` next to this package): the test-only switch is the checkout
itself.  The Debian package and a pip installation carry no tests/ and ignore it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from .errors import BuildError

VARIABLE = "VMDEBOOTSTRAP_FAULT"
CAMPAIGN = Path(__file__).resolve().parent.parent / "tests" / "faults"


def enabled() -> bool:
    """Whether this copy honours VARIABLE: the one in a checkout with its fault campaign."""
    return CAMPAIGN.is_dir()


def maybe_inject(step: str) -> None:
    spec = os.environ.get(VARIABLE, "")
    if not spec or not enabled():
        return
    name, _, action = spec.partition(":")
    if name != step:
        return
    if action == "fail":
        raise BuildError(f"fault injected at step {step} ({VARIABLE})")
    if action == "wait":
        ready = os.environ.get(VARIABLE + "_READY")
        if ready:
            Path(ready).write_text(step + "\n")
        while True:
            time.sleep(1)
