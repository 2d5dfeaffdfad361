"""cliapp-compatible configuration files and value parsing.

INI files keep every key in a ``[config]`` section (other sections are ignored, as
cliapp did); YAML files have a top-level ``config:`` mapping.  Keys are the long
option names.  Unknown keys are an error naming the file and the key.

A relative input path in a file (``customize = hooks/x.sh``: the options marked
``reads``) is relative to that file's directory, as mkosi has it, so one config file
means one set of files wherever it is used from.  The old vmdebootstrap looked in the
current directory: where only that finds the file, it is taken with a note naming both
paths (a config written for the old tool keeps working); where neither does, the file
is named as missing.  Output paths keep the old meaning, relative to the current
directory (docs/compatibility.md).
"""

from __future__ import annotations

import configparser
import glob
import os
import re
from pathlib import Path
from typing import Any

import yaml

from .errors import UsageError
from .options import BY_NAME, IGNORED_LEGACY_KEYS, Option

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]i?)?b?\s*$", re.IGNORECASE)
_SIZE_FACTORS = {
    "": 1,
    "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12,
    "ki": 2**10, "mi": 2**20, "gi": 2**30, "ti": 2**40,
}  # fmt: skip
_TRUE_WORDS = frozenset({"yes", "on", "true", "1"})


def parse_size(text: str, where: str) -> int:
    """Bytes from '100M', '5mib', '2G', '1000'.  k/m/g/t are decimal, ki/mi/gi/ti binary.

    A size that does not parse is an error, never 0.
    """
    match = _SIZE_RE.match(str(text))
    if not match:
        raise UsageError(f"{where}: '{text}' is not a size (use e.g. 2G, 500M, 512MiB)")
    number, suffix = match.groups()
    return int(float(number) * _SIZE_FACTORS[(suffix or "").lower()])


def parse_bool(text: object) -> bool:
    if isinstance(text, bool):
        return text
    return str(text).strip().lower() in _TRUE_WORDS


def split_list(text: str) -> list[str]:
    """Comma-separated list as in cliapp config files; double quotes protect commas,
    a backslash protects the next character (so a value can hold a double quote)."""
    items: list[str] = []
    current = ""
    quoted = False
    escaped = False
    for char in text:
        if escaped:
            current += char
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            items.append(current.strip())
            current = ""
        else:
            current += char
    items.append(current.strip())
    return [item for item in items if item]


def convert(option: Option, raw: Any, where: str) -> object:
    """Turn a config-file value into the option's type."""
    if option.kind == "bool":
        return parse_bool(raw)
    if option.kind == "size":
        return parse_size(str(raw), where)
    if option.name == "log-mode" and isinstance(raw, int) and not isinstance(raw, bool):
        return format(raw, "o")  # YAML 1.1 reads 0644 as the integer 420
    if option.kind == "list":
        if isinstance(raw, list):
            return [str(item) for item in raw]
        if raw is None:
            return []
        return split_list(str(raw))
    return "" if raw is None else str(raw)


def default_config_files(home: str | None = None) -> list[str]:
    """The files cliapp read by default, in order (later ones override earlier ones)."""
    home = home if home is not None else os.path.expanduser("~")
    files: list[str] = []
    for single, directory in (
        ("/etc/vmdebootstrap", "/etc/vmdebootstrap"),
        (f"{home}/.vmdebootstrap", f"{home}/.config/vmdebootstrap"),
    ):
        for suffix in (".conf", ".yaml"):
            files.append(single + suffix)
        files.extend(sorted(glob.glob(f"{directory}/*.conf") + glob.glob(f"{directory}/*.yaml")))
    return files


def read_config_file(path: str, notes: list[str] | None = None) -> dict[str, object]:
    """Settings from one file, typed, keyed by option name.  Errors name the file; ``notes``
    gets what the user should hear about it (an input path found the old tool's way)."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise UsageError(f"--config {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise UsageError(f"{path}: not a text file (not UTF-8)") from None
    if path.endswith((".yaml", ".yml")):
        raw = _read_yaml(path, text)
    else:
        raw = _read_ini(path, text)
    settings: dict[str, object] = {}
    for key, value in raw.items():
        name = str(key).strip().lower().replace("_", "-")
        if name in IGNORED_LEGACY_KEYS:
            continue
        option = BY_NAME.get(name)
        if option is None or option.cli_only:
            raise UsageError(f"{path}: unknown setting '{key}'")
        settings[name] = convert(option, value, f"{path}: {key}")
        if option.reads:
            settings[name] = anchored(settings[name], path, key, notes if notes is not None else [])
    return settings


def anchored(value: object, config: str, key: str, notes: list[str]) -> object:
    """An input path (or a list of them) from ``config``, relative to its directory."""
    if isinstance(value, list):
        return [anchored(item, config, key, notes) for item in value]
    text = str(value)
    if not text or os.path.isabs(text):
        return value
    here = os.path.join(os.path.dirname(os.path.abspath(config)), text)
    if os.path.exists(here):
        return here
    old = os.path.abspath(text)
    if os.path.exists(old):
        notes.append(f"{config}: {key} = {text} is read relative to the config file's directory ({here}, "
                     f"which does not exist); {old}, relative to the current directory as the old "
                     "vmdebootstrap read it, is used: name it relative to the config file")
        return old
    raise UsageError(f"{config}: {key} = {text}: no such file or directory {here} (a path in a config file is "
                     "relative to its directory)")


def _read_ini(path: str, text: str) -> dict[str, Any]:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    try:
        parser.read_string(text, source=path)
    except configparser.Error as exc:
        first_line = str(exc).splitlines()[0]
        raise UsageError(f"{path}: not a valid INI file: {first_line}") from None
    if not parser.has_section("config"):
        return {}
    return dict(parser.items("config"))


def _read_yaml(path: str, text: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        first_line = str(exc).splitlines()[0]
        raise UsageError(f"{path}: not a valid YAML file: {first_line}") from None
    if data is None:
        return {}
    if not isinstance(data, dict) or not isinstance(data.get("config", {}), dict):
        raise UsageError(f"{path}: a YAML config file needs a top-level 'config:' mapping")
    extra = set(data) - {"config"}
    if extra:
        raise UsageError(f"{path}: unknown top-level key '{sorted(extra)[0]}' (settings go under 'config:')")
    return data.get("config") or {}


def format_value(option: Option, value: object) -> str:
    if option.kind == "bool":
        return "True" if value else "False"
    if option.kind == "list":
        assert isinstance(value, list)
        return ", ".join(_quote(v) for v in value)
    return str(value)


def _quote(item: str) -> str:
    escaped = item.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"' if ("," in item or escaped != item) else item
