"""Test-only fault injection, inert unless the tests set VMDEBOOTSTRAP_FAULT.

``VMDEBOOTSTRAP_FAULT=STEP:fail`` makes the named step fail as it starts;
``STEP:wait`` makes the build stop there (writing ``VMDEBOOTSTRAP_FAULT_READY`` if
set) until a signal arrives, so a test can interrupt it at a known point.  A few
points inside steps have names of their own (``xfs-mounted``: the disk image step with
an xfs partition mounted through a loop device).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from .errors import BuildError

VARIABLE = "VMDEBOOTSTRAP_FAULT"


def maybe_inject(step: str) -> None:
    spec = os.environ.get(VARIABLE, "")
    if not spec:
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
