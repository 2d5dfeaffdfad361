"""Shell completion for bash and zsh, generated from the option table like the man page.

``python3 -m vmdebootstrap.completion bash`` (or ``zsh``) prints the script; the ones in
doc/completion/ are kept in step with the table by tests/unit/test_completion.py (``make
completion`` writes them).  Both complete the option names (every boolean with its
``--no-`` form), the values of the options that list their ``choices`` (compressors,
firmware, bootloaders, architectures, releases, ...), and file or directory names where
an option's value is one, as its metavar says.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Literal

from .options import OPTIONS, Option

Value = Literal["choices", "file", "deb", "directory", "user", "text"]

# What a value is, by the option's metavar (options.py), when the option lists no choices.
_BY_METAVAR: dict[str, Value] = {
    "FILE": "file", "PATH": "file", "SCRIPT": "file", "DEB": "deb", "DIR": "directory", "DIRECTORY": "directory",
    "USER": "user",
}
# argparse's own options (cli.py): they print and exit.
EXTRA_FLAGS = ("--help", "-h", "--version")


def value_of(option: Option) -> Value | None:
    """What the option's value is; None: it takes none (a boolean)."""
    if option.kind == "bool":
        return None
    if option.choices:
        return "choices"
    return _BY_METAVAR.get(option.metavar, "text")


def negated(option: Option) -> bool:
    """Whether its --no- form is offered: a boolean setting (the command line may undo what a
    config file says); the print-and-exit switches have one too, but it means nothing."""
    return option.kind == "bool" and not option.cli_only


def flags() -> list[str]:
    """Every option name as typed on the command line."""
    names = [*EXTRA_FLAGS]
    for option in OPTIONS:
        names.append(f"--{option.name}")
        if negated(option):
            names.append(f"--no-{option.name}")
    return names


def _options_taking(value: Value) -> list[Option]:
    return [option for option in OPTIONS if value_of(option) == value]


# -- bash ----------------------------------------------------------------------------------------

_BASH_HEAD = """\
# bash completion for vmdebootstrap(8)                                   -*- shell-script -*-
# Generated from vmdebootstrap's option table by `python3 -m vmdebootstrap.completion bash`
# (make completion): do not edit.

_vmdebootstrap()
{
    local cur prev words cword split
    _init_completion -s || return

    case $prev in"""

_BASH_TAIL = """\
    esac

    $split && return

    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W '{flags}' -- "$cur"))
    fi
}} &&
    complete -F _vmdebootstrap vmdebootstrap
"""

_BASH_ACTIONS: dict[Value, str] = {
    "file": "_filedir", "deb": "_filedir deb", "directory": "_filedir -d",
    "user": 'COMPREPLY=($(compgen -u -- "$cur"))', "text": ":",
}


def _bash_arm(names: list[str], action: str, comment: str = "") -> Iterator[str]:
    yield "        " + " | ".join(f"--{name}" for name in names) + ")" + (f"  # {comment}" if comment else "")
    yield f"            {action}"
    yield "            return"
    yield "            ;;"


def render_bash() -> str:
    lines = [_BASH_HEAD]
    for option in _options_taking("choices"):
        words = " ".join(option.choices)
        lines += _bash_arm([option.name], f"COMPREPLY=($(compgen -W '{words}' -- \"$cur\"))")
    for value in ("file", "deb", "directory", "user"):
        lines += _bash_arm([o.name for o in _options_taking(value)], _BASH_ACTIONS[value])
    lines += _bash_arm([o.name for o in _options_taking("text")], _BASH_ACTIONS["text"],
                       "a value nothing here can guess")
    lines.append(_BASH_TAIL.format(flags=" ".join(flags())))
    return "\n".join(lines)


# -- zsh -----------------------------------------------------------------------------------------

_ZSH_ACTIONS: dict[Value, str] = {
    "file": "_files", "deb": "_files -g '*.deb'", "directory": "_files -/", "user": "_users", "text": " ",
}


def _summary(help_text: str) -> str:
    """The help text's first clause, fit for a description in brackets within single quotes."""
    text = help_text.partition(" (")[0].partition("; ")[0]
    text = text.replace("[", "(").replace("]", ")").replace("'", "")
    return text if len(text) <= 70 else text[:67].rstrip() + "..."


def _zsh_spec(option: Option) -> Iterator[str]:
    description = _summary(option.help)
    value = value_of(option)
    if value is None:
        yield f"'--{option.name}[{description}]'"
        if negated(option):
            yield f"'--no-{option.name}[the opposite of --{option.name}]'"
        return
    repeat = "*" if option.kind == "list" else ""
    action = f"({' '.join(option.choices)})" if value == "choices" else _ZSH_ACTIONS[value]
    action = action.replace("'", "'\\''")
    message = option.metavar.replace(":", "\\:") or "VALUE"
    yield f"'{repeat}--{option.name}=[{description}]:{message}:{action}'"


def render_zsh() -> str:
    specs = ["'(- *)'{-h,--help}'[show the help and exit]'", "'(- *)--version[show the version and exit]'"]
    for option in OPTIONS:
        specs.extend(_zsh_spec(option))
    body = " \\\n  ".join(specs)
    return ("#compdef vmdebootstrap\n"
            "# zsh completion for vmdebootstrap(8), generated from its option table by\n"
            "# `python3 -m vmdebootstrap.completion zsh` (make completion): do not edit.\n\n"
            f"_arguments \\\n  {body}\n")


RENDER = {"bash": render_bash, "zsh": render_zsh}


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in RENDER:
        print("usage: python3 -m vmdebootstrap.completion bash|zsh", file=sys.stderr)
        return 2
    sys.stdout.write(RENDER[argv[0]]())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
