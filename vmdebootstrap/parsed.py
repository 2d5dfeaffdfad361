"""Every option's typed value by name: validation's own view of the options (settings.py and
the modules it asks: imageoptions.py, boottestoptions.py), never a Settings field."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from .errors import UsageError
from .options import OPTIONS, parsed
from .values import Invalid

T = TypeVar("T")


class Parsed:
    """Every setting's typed value by option name: validation's own view, never a Settings field."""

    def __init__(self, raw: Mapping[str, object]) -> None:
        self.values: dict[str, object] = {}
        for option in OPTIONS:
            if option.cli_only:
                continue
            try:
                self.values[option.name] = parsed(option, raw[option.name])
            except Invalid as exc:
                raise UsageError(f"--{option.name} {raw[option.name]}: {exc}") from None

    def get(self, name: str, cls: type[T]) -> T:
        value = self.values[name]
        if not isinstance(value, cls):
            raise TypeError(f"--{name}: parsed into {type(value).__name__}, not {cls.__name__}")
        return value

    def optional(self, name: str, cls: type[T]) -> T | None:
        return None if self.values[name] is None else self.get(name, cls)

    def text(self, name: str) -> str:
        return self.get(name, str)

    def flag(self, name: str) -> bool:
        return self.get(name, bool)

    def number(self, name: str) -> int:
        return self.get(name, int)
