"""The JSON Schema of the build report, as docs/report.md documents it (the json block under
"## Schema"), and validation against it: read by the unit tier and the package session."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema

DOC = Path(__file__).resolve().parents[1] / "docs/report.md"


def schema() -> dict[str, object]:
    text = DOC.read_text().partition("\n## Schema")[2]
    block = re.search(r"```json\n(.*?)\n```", text, re.DOTALL)
    assert block, "docs/report.md has no ```json block under ## Schema"
    loaded = json.loads(block.group(1))
    assert isinstance(loaded, dict)
    return loaded


def validate(document: object) -> None:
    """Raises jsonschema.ValidationError when ``document`` is no report of the documented version."""
    jsonschema.Draft202012Validator.check_schema(schema())
    jsonschema.validate(document, schema(), cls=jsonschema.Draft202012Validator,
                        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
