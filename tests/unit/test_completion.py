"""Shell completion: generated from the option table, committed in doc/completion/, and in step.

The bash script is also run: bash-completion's own functions drive it as they do when a
user presses TAB (skipped where bash-completion is not installed; ``make install`` installs it).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from vmdebootstrap import completion, releases
from vmdebootstrap.options import BY_NAME, OPTIONS, Option

REPO = Path(__file__).resolve().parents[2]
BASH = REPO / "doc/completion/vmdebootstrap"
ZSH = REPO / "doc/completion/_vmdebootstrap"
BASH_COMPLETION = Path("/usr/share/bash-completion/bash_completion")


def test_committed_scripts_are_current() -> None:
    assert BASH.read_text() == completion.render_bash(), "run: make completion"
    assert ZSH.read_text() == completion.render_zsh(), "run: make completion"


def test_every_option_is_offered() -> None:
    bash, zsh = completion.render_bash(), completion.render_zsh()
    for option in OPTIONS:
        names = [f"--{option.name}"] + ([f"--no-{option.name}"] if completion.negated(option) else [])
        for name in names:
            assert f" {name} " in f" {' '.join(completion.flags())} "
            assert f"'{name}[" in zsh or f"'{name}=[" in zsh or f"'*{name}=[" in zsh, name
    assert "--no-dump-config" not in bash  # a print-and-exit switch has no setting to undo
    assert "--no-secure-boot" in bash


@pytest.mark.parametrize("option", [o for o in OPTIONS if o.choices and o.parse is not None], ids=lambda o: o.name)
def test_every_choice_is_accepted_by_the_option_s_parser(option: Option, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda tool: f"/usr/bin/{tool}")  # --bootstrapper mmdebstrap
    assert option.parse is not None
    for value in option.choices:
        option.parse(value)


def test_every_release_offered_is_known() -> None:
    for value in BY_NAME["distribution"].choices:
        assert releases.resolve(value).name in releases.known()


def _complete(line: str) -> list[str]:
    """What bash offers for the last word of ``line`` (ends with a space: a new, empty word)."""
    script = f"""
        source {BASH_COMPLETION}
        source {BASH}
        COMP_LINE='{line}'; COMP_POINT=${{#COMP_LINE}}
        read -ra COMP_WORDS <<< "$COMP_LINE"
        [[ $COMP_LINE == *' ' ]] && COMP_WORDS+=('')
        COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 ))
        _vmdebootstrap vmdebootstrap "${{COMP_WORDS[COMP_CWORD]}}" "${{COMP_WORDS[COMP_CWORD-1]}}"
        printf '%s\\n' "${{COMPREPLY[@]}}"
    """
    done = subprocess.run(["bash", "--norc", "--noprofile", "-c", script], cwd=REPO, capture_output=True,
                          text=True, check=True)
    return [word for word in done.stdout.splitlines() if word]


needs_bash_completion = pytest.mark.skipif(not BASH_COMPLETION.is_file(), reason="bash-completion not installed")


@needs_bash_completion
@pytest.mark.parametrize(
    ("line", "offered"),
    [
        ("vmdebootstrap --squash-compression z", ["zstd"]),
        ("vmdebootstrap --boot-firmware=uefi", ["uefi", "uefi-secure"]),
        ("vmdebootstrap --bootloader ", ["grub-pc", "grub-efi", "extlinux", "u-boot", "raspi", "none"]),
        ("vmdebootstrap --arch arm", ["arm64", "armhf", "armel"]),
        ("vmdebootstrap --distribution tri", ["trixie"]),
        ("vmdebootstrap --bootstrapper mm", ["mmdebstrap"]),
        ("vmdebootstrap --part-type g", ["gpt"]),
        ("vmdebootstrap --log-level cr", ["critical"]),
        ("vmdebootstrap --no-secure", ["--no-secure-boot"]),
        ("vmdebootstrap --squash out --iso-l", ["--iso-label"]),
        ("vmdebootstrap --config examples/vm-", ["examples/vm-arm64.conf", "examples/vm-bios.conf",
                                                 "examples/vm-uefi.conf"]),
        ("vmdebootstrap --squash doc/com", ["doc/completion"]),  # directories only
        ("vmdebootstrap --hostname ", []),  # a value: neither files nor options
    ],
)  # fmt: skip
def test_bash_offers(line: str, offered: list[str]) -> None:
    assert sorted(_complete(line)) == sorted(offered)


@needs_bash_completion
def test_bash_offers_every_option() -> None:
    assert sorted(_complete("vmdebootstrap --")) == sorted(f for f in completion.flags() if f.startswith("--"))


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh not installed")
def test_zsh_script_parses() -> None:
    subprocess.run(["zsh", "-n", str(ZSH)], check=True)
