"""Command line -> merged settings, with cliapp's behaviours.

Precedence: option defaults < default config files (unless --no-default-configs)
< each --config FILE in order < the command line.  A list option given on the
command line replaces the list from the config files, as cliapp did.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from typing import NoReturn

from . import __version__
from .config import default_config_files, format_value, parse_size, read_config_file
from .errors import UsageError
from .options import OPTIONS, default_of, redacted

PROG = "vmdebootstrap"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Build Debian live root filesystems (squashfs), tarballs and images.",
        epilog="Every option is also a key in the [config] section of a config file "
        "(--config FILE). See vmdebootstrap(8).",
        argument_default=argparse.SUPPRESS,
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    groups: dict[str, argparse._ArgumentGroup] = {}
    for option in OPTIONS:
        group = groups.setdefault(option.group, parser.add_argument_group(option.group))
        flag = f"--{option.name}"
        if option.kind == "bool":
            group.add_argument(flag, dest=option.dest, action="store_const", const=True, help=option.help)
            group.add_argument(f"--no-{option.name}", dest=option.dest, action="store_const", const=False,
                               help=argparse.SUPPRESS)
        elif option.kind == "list":
            group.add_argument(flag, dest=option.dest, action="append", metavar=option.metavar,
                               help=option.help + " (repeatable)")
        else:
            described = option.secret or "(default: " in option.help
            default = "" if described else f" (default: {format_value(option, option.default) or 'none'})"
            group.add_argument(flag, dest=option.dest, metavar=option.metavar, help=option.help + default)
    return parser


def parse_command_line(argv: list[str]) -> dict[str, object]:
    """The options given on the command line only, typed, keyed by option name."""
    namespace = build_parser().parse_args(argv)
    given: dict[str, object] = {}
    for option in OPTIONS:
        if not hasattr(namespace, option.dest):
            continue
        value = getattr(namespace, option.dest)
        if option.kind == "size":
            value = parse_size(value, f"--{option.name}")
        given[option.name] = value
    return given


def config_files_to_read(command_line: dict[str, object]) -> list[str]:
    files: list[str] = []
    if not command_line.get("no-default-configs"):
        files.extend(f for f in default_config_files() if os.path.isfile(f))
    extra = command_line.get("config", [])
    assert isinstance(extra, list)
    files.extend(extra)
    return files


def merge(command_line: dict[str, object], config_files: list[str], notes: list[str] | None = None
          ) -> dict[str, object]:
    values: dict[str, object] = {option.name: default_of(option) for option in OPTIONS}
    for path in config_files:
        values.update(read_config_file(path, notes))
    values.update(command_line)
    return values


def dump_config(values: dict[str, object]) -> str:
    """The settings as a [config] file; passwords and a URL's credentials shown as <secret>
    (as in --report): put them back before using it."""
    lines = ["[config]"]
    for option in OPTIONS:
        if option.cli_only:
            continue
        lines.append(f"{option.name} = {format_value(option, redacted(option, values[option.name]))}".rstrip())
    return "\n".join(lines) + "\n"


@dataclasses.dataclass(frozen=True)
class Loaded:
    values: dict[str, object]  # every option's raw value, by name
    files: list[str]  # the config files read, in order
    notes: list[str]  # what the user should hear about them (config.read_config_file)


def load(argv: list[str]) -> Loaded:
    """Parse argv and config files."""
    command_line = parse_command_line(argv)
    files = config_files_to_read(command_line)
    notes: list[str] = []
    return Loaded(merge(command_line, files, notes), files, notes)


def print_and_exit_requests(values: dict[str, object], files: list[str]) -> bool:
    """Handle the print-something-and-exit options that need no valid settings (main.py
    handles --print-host-packages after validation).  True when one was handled."""
    from .hooks import helpers_path

    if values["dump-config"]:
        sys.stdout.write(dump_config(values))
    elif values["dump-setting-names"]:
        print("\n".join(o.name for o in OPTIONS if not o.cli_only))
    elif values["list-config-files"]:
        print("\n".join(files))
    elif values["print-helpers-path"]:
        print(helpers_path())
    else:
        return False
    return True

