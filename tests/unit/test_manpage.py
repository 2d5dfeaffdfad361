"""The man page in doc/ is generated from the option table and must stay in step with it."""

from __future__ import annotations

from pathlib import Path

from vmdebootstrap import manpage
from vmdebootstrap.options import OPTIONS

PAGE = Path(__file__).resolve().parents[2] / "doc/vmdebootstrap.8"


def test_committed_man_page_is_current() -> None:
    assert PAGE.read_text() == manpage.render(), "run: make man"


def test_every_option_is_documented() -> None:
    text = manpage.render()
    for option in OPTIONS:
        assert f"\\-\\-{option.name.replace('-', chr(92) + '-')}" in text, option.name
