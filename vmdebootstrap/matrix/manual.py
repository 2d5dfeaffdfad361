"""vmdebootstrap-matrix(1), from its parser: ``python3 -m vmdebootstrap.matrix.manual``
(``make man`` writes doc/vmdebootstrap-matrix.1; a unit test keeps the two the same)."""

from __future__ import annotations

import argparse

from .. import __version__
from .command import PROG, build_parser

HEADER = r""".TH VMDEBOOTSTRAP\-MATRIX 1 "" "vmdebootstrap {version}" "User Commands"
.SH NAME
vmdebootstrap\-matrix \- build an image matrix as a GitLab CI pipeline
.SH SYNOPSIS
.B vmdebootstrap\-matrix
.I COMMAND
.RI [ options ]
.SH DESCRIPTION
A matrix file (YAML) names releases, architectures and vmdebootstrap configurations,
with excludes and per\-cell options.
.B vmdebootstrap\-matrix
checks it, writes a GitLab CI pipeline with one vmdebootstrap build job per cell, a boot
job per cell that boot\-tests and a summary job, and merges the reports the jobs leave
into a Markdown table, a static HTML page and one JUnit file.
The matrix format and how to run the pipeline are described in
/usr/share/doc/vmdebootstrap/scale\-out.md.
.SH COMMANDS"""

FOOTER = r""".SH EXIT STATUS
0 done; 1
.B preflight
found something missing, or
.B proxy
got no answer; 2 bad input: each problem of the matrix file on a line of its own,
.IR FILE : LINE : " KEY" : " cause" ,
and nothing written.
.SH SEE ALSO
vmdebootstrap(8)"""


def _escape(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("-", "\\-")
    return "\\&" + escaped if escaped.startswith((".", "'")) else escaped


def _action(action: argparse.Action) -> list[str]:
    if action.option_strings:
        flag = ", ".join(f"\\fB{_escape(name)}\\fR" for name in action.option_strings)
        if action.nargs != 0:
            flag += f" \\fI{_escape(str(action.metavar or action.dest.upper()))}\\fR"
    else:
        flag = f"\\fI{_escape(str(action.metavar))}\\fR"
    return [".TP", flag, _escape(str(action.help))]


def _command(name: str, helped: str, parser: argparse.ArgumentParser) -> list[str]:
    lines = [f".SS {_escape(name)}", _escape(helped[:1].upper() + helped[1:]) + "."]
    for action in parser._actions:
        if not isinstance(action, argparse._HelpAction):
            lines.extend(_action(action))
    return lines


def render() -> str:
    parser = build_parser()
    [commands] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    helps = {choice.dest: str(choice.help) for choice in commands._choices_actions}
    out = [HEADER.format(version=_escape(__version__))]
    for name, sub in commands.choices.items():
        out.extend(_command(f"{PROG} {name}", helps[name], sub))
    out.append(FOOTER)
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    print(render(), end="")
