"""Matrix files and the config files they name, written into a test's directory."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from vmdebootstrap.matrix import command

CONFIGS = {
    # A live ISO that asks for its boot test, as examples/live.conf does.
    "configs/live.conf": "[config]\niso = output/live.iso\nboot-test = yes\nuser = user/live\nsudo = yes\n",
    # A minbase tarball, compressed with xz: its suffix is kept.
    "configs/minbase.conf": "[config]\ntarball = output/minbase.tar.xz\nvariant = minbase\n",
    # A BIOS disk image with GRUB.
    "configs/vm.conf": "[config]\nimage = output/vm.img\ngrub = yes\nsize = 3G\nuser = user/debian\n",
}

SMALL = """\
defaults:
  mirror: http://deb.debian.org/debian/
axes:
  release: [trixie, bookworm]
  arch: [amd64, arm64]
  config: [configs/live.conf, configs/minbase.conf]
exclude:
  - {release: bookworm, arch: arm64}
overrides:
  - match: {release: bookworm, config: live}
    options: {boot-test: false}
boot-test: {tags: [kvm]}
runner: {tags: [privileged]}
"""


def write(directory: Path, text: str, name: str = "matrix.yml") -> Path:
    """The matrix ``text`` (dedented) as ``directory/name``, with the config files beside it."""
    for relative, content in CONFIGS.items():
        (directory / relative).parent.mkdir(parents=True, exist_ok=True)
        (directory / relative).write_text(content)
    path = directory / name
    path.write_text(textwrap.dedent(text))
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = command.main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err
