"""The fault campaign in the integration tier: every step x fail/SIGINT/SIGTERM/SIGKILL,
at the step's start and during its command; fails if any cell leaked or misbehaved.

The table is printed (run pytest with -s to see it on success, as `make integration`
does) and written to faults-table.txt in the test's directory, beside the builds' logs.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from ..conftest import require
from . import campaign

pytestmark = [pytest.mark.integration, pytest.mark.faults]


def test_no_fault_at_any_step_leaks_anything(mirror: str, tmp_path: Path) -> None:
    require(shutil.which("dpkg-deb") is not None, "needs dpkg-deb")
    jobs = int(os.environ.get("VMDEBOOTSTRAP_FAULT_JOBS", "2"))
    started = time.monotonic()
    outcomes = campaign.run(tmp_path, mirror, jobs, campaign.cases(),
                            progress=lambda o: print(f"  {o.case.row} x {o.case.fault}: {o.cell()}", flush=True))
    report = "\n".join([campaign.table(outcomes), "",
                        campaign.summary(outcomes, (time.monotonic() - started) / 60, jobs)])
    (tmp_path / "faults-table.txt").write_text(report + "\n")
    print("\n" + report)
    # every step x fault, the signals during five steps' commands, and mmdebstrap's bootstrap rows
    assert len(outcomes) == len(campaign.STEPS) * len(campaign.FAULTS) + 3 * len(campaign.DURING) + 4 + 3
    assert all(outcome.ok for outcome in outcomes), report
