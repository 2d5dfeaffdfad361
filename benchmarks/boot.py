"""One boot of an ISO by the boot test's own code, for benchmarks/run: seconds to the login prompt.

    .venv/bin/python -m benchmarks.boot ISO FIRMWARE WORKDIR [KEYS]

prints one JSON object: {"passed": ..., "seconds_to_login": ..., "verdict": ...}.  The same
QEMU command, CPU model and timeout as ``--boot-test`` (vmdebootstrap/boot/); KEYS
are typed at a GRUB menu on the serial console (default: none).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from vmdebootstrap import architectures
from vmdebootstrap.boot import console as boot_console
from vmdebootstrap.boot import qemu


def main() -> None:
    iso, firmware, workdir = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
    keys = sys.argv[4].encode().decode("unicode_escape") if len(sys.argv) > 4 else ""
    target = qemu.BootTarget(image=iso, kind="iso", arch=architectures.ARCHITECTURES["amd64"],
                                 firmware=firmware)
    result = boot_console.boot_test(target, "user", "live", workdir, timeout=900, grub_entry_keys=keys)
    print(json.dumps({"passed": result.passed, "seconds_to_login": result.seconds_to_login,
                      "verdict": result.verdict}))


if __name__ == "__main__":
    main()
