"""Checks of the SBOM that vmdebootstrap.sbom writes, for the unit tier and for an
integration test that compares a built image's SBOM with dpkg-query run on its root.

Validation does not trust the code that wrote the SBOM: the SPDX JSON is checked against
the SPDX project's SPDX 2.3 JSON schema and the CycloneDX JSON against the CycloneDX 1.6
schema (both vendored in tests/data/schemas, see the README there), with jsonschema.  As
debsbom builds the SPDX document with spdx-tools' model, spdx-tools' own validator (which
also checks that every relationship names an element of the document) is a second opinion
on the SPDX file.

The package lists are sets of "name:arch version" strings, the format of
``dpkg-query --showformat '${Package}:${Architecture} ${Version}'``.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from jsonschema import Draft7Validator, Draft201909Validator, FormatChecker
from packageurl import PackageURL
from referencing import Registry, Resource

SCHEMAS = Path(__file__).resolve().parent / "data/schemas"
SPDX_SCHEMA = SCHEMAS / "spdx-2.3.schema.json"
CYCLONEDX_SCHEMAS = [SCHEMAS / name for name in ("cyclonedx-bom-1.6.schema.json", "cyclonedx-spdx.schema.json",
                                                 "cyclonedx-jsf-0.82.schema.json")]
# dpkg's state of a package whose files are all in place and configured.
INSTALLED = "installed"


def validate_spdx(path: Path) -> list[str]:
    """The problems of an SPDX 2.3 JSON file: none when it is valid."""
    document = _load(path)
    validator = Draft201909Validator(_load(SPDX_SCHEMA), format_checker=FormatChecker())
    problems = [f"schema: {_where(error.absolute_path)}: {error.message}" for error in validator.iter_errors(document)]
    if document.get("spdxVersion") != "SPDX-2.3":
        problems.append(f"spdxVersion is {document.get('spdxVersion')!r}, not 'SPDX-2.3'")
    return problems + _spdx_tools_problems(path)


def _spdx_tools_problems(path: Path) -> list[str]:
    # Imported here: the schema check above does not need spdx-tools.
    from spdx_tools.spdx.parser.error import SPDXParsingError
    from spdx_tools.spdx.parser.json.json_parser import parse_from_file
    from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

    try:
        parsed = parse_from_file(str(path))
    except SPDXParsingError as error:
        return [f"spdx-tools cannot parse it: {message}" for message in error.get_messages()]
    return [f"spdx-tools: {message.validation_message}"
            for message in validate_full_spdx_document(parsed, "SPDX-2.3")]


def validate_cyclonedx(path: Path) -> list[str]:
    """The problems of a CycloneDX 1.6 JSON file: none when it is valid."""
    resources = [Resource.from_contents(_load(schema)) for schema in CYCLONEDX_SCHEMAS]
    # The BOM schema names the other two by their $id (licence ids, signatures).
    registry: Registry[Any] = Registry().with_resources((resource.id() or "", resource) for resource in resources)
    validator = Draft7Validator(resources[0].contents, registry=registry, format_checker=FormatChecker())
    document = _load(path)
    problems = [f"schema: {_where(error.absolute_path)}: {error.message}" for error in validator.iter_errors(document)]
    if document.get("specVersion") != "1.6":
        problems.append(f"specVersion is {document.get('specVersion')!r}, not '1.6'")
    return problems


def packages_in_spdx(path: Path) -> set[str]:
    """The binary packages an SPDX SBOM lists: those with a deb purl of an architecture
    other than "source" (debsbom also lists the source packages and the system itself)."""
    found = set()
    for package in _load(path).get("packages", []):
        purls = [ref["referenceLocator"] for ref in package.get("externalRefs", [])
                 if ref.get("referenceType") == "purl"]
        arch = _binary_arch(purls[0]) if purls else None
        if arch is not None:
            found.add(f"{package['name']}:{arch} {package['versionInfo']}")
    return found


def packages_in_cyclonedx(path: Path) -> set[str]:
    """The binary packages a CycloneDX SBOM lists (as packages_in_spdx)."""
    found = set()
    for component in _load(path).get("components", []):
        arch = _binary_arch(component["purl"]) if "purl" in component else None
        if arch is not None:
            found.add(f"{component['name']}:{arch} {component['version']}")
    return found


def installed_packages(admindir: Path) -> set[str]:
    """What dpkg-query says is installed in the dpkg database ``admindir`` (a root's
    var/lib/dpkg): the packages whose state is "installed", whatever is wanted of them
    (install or hold, or even deinstall before dpkg has removed it)."""
    result = subprocess.run(
        ["dpkg-query", "--admindir", str(admindir), "--show",
         "--showformat", "${db:Status-Status} ${Package}:${Architecture} ${Version}\n"],
        capture_output=True, text=True, check=True)
    return {line.split(" ", 1)[1] for line in result.stdout.splitlines() if line.split(" ", 1)[0] == INSTALLED}


def _binary_arch(purl: str) -> str | None:
    parsed = PackageURL.from_string(purl)
    qualifiers = parsed.qualifiers if isinstance(parsed.qualifiers, dict) else {}
    arch = qualifiers.get("arch")
    if parsed.type != "deb" or arch in (None, "source"):
        return None
    return str(arch)


def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _where(path: Any) -> str:
    return "/".join(str(part) for part in path) or "(document)"
