"""The SBOM of a built root filesystem: its installed Debian packages as SPDX 2.3 JSON and,
at no extra cost, CycloneDX 1.6 JSON.

The library is debsbom (Siemens, MIT; packaged in Debian from forky on): it reads a root's dpkg
status without chroot or network and builds both documents through the formats' own
models (the SPDX project's spdx-tools, cyclonedx-python-lib), with the source packages,
purls and the dependency graph.  Building the document from spdx-tools' model ourselves
would mean writing that Debian mapping again, and CycloneDX on top.  debsbom documents its
Python API as not stable yet: this module uses only the part that its own CLI uses
(``Debsbom(...).scan()`` and ``.generate()``), pyproject.toml keeps to one minor series and
the unit tests exercise it.  docs/sbom.md says more.

Same root, epoch, seed and library versions give the same bytes: the creation time is the
epoch, the document namespace and serial number are UUIDs derived from the seed and the
dpkg status, and the parts that debsbom leaves in hash order are put in a fixed one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import logging
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from cyclonedx.model import HashAlgorithm, HashType
from cyclonedx.model.bom import Bom
from cyclonedx.model.bom_ref import BomRef
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.output import make_outputter
from cyclonedx.schema import OutputFormat, SchemaVersion
from debian.deb822 import Deb822
from debsbom.generate import Debsbom, SBOMType
from spdx_tools.spdx.model.checksum import Checksum, ChecksumAlgorithm
from spdx_tools.spdx.model.document import Document
from spdx_tools.spdx.model.package import Package, PackagePurpose
from spdx_tools.spdx.model.relationship import Relationship, RelationshipType
from spdx_tools.spdx.model.spdx_no_assertion import SpdxNoAssertion
from spdx_tools.spdx.writer.json.json_writer import write_document_to_stream

log = logging.getLogger("vmdebootstrap")

# debsbom makes the SPDX id of the distribution package from the name as it is.
NAME_PATTERN = re.compile(r"[A-Za-z0-9.-]+")
# The root of the UUIDs of our documents: a constant, so that they are reproducible.
_UUID_ROOT = uuid.uuid5(uuid.NAMESPACE_URL, "vmdebootstrap:sbom")
# What debsbom reads of a root that is dpkg's: the installed packages and the native
# architecture (trixie's dpkg writes it; without it debsbom takes the dpkg package's).
_DPKG_FILES = ("status", "arch-native")


def write(root: Path, spdx_out: Path, cdx_out: Path | None = None, *, name: str, epoch: int,
          seed: str, version: str | None = None, arch: str | None = None, shipped: Sequence[str] = (),
          files: Sequence[tuple[str, str]] = ()) -> None:
    """Write the SBOM of the packages installed in ``root`` (a root filesystem directory).

    Only ``root/var/lib/dpkg`` is read, and only the packages whose dpkg state is
    'installed' are listed (as ``dpkg-query`` shows them with that state; config-files,
    half-installed, unpacked and triggers-pending ones are left out).  ``name`` names the
    document and the operating-system package that holds the others (letters, digits, '.'
    and '-'), ``version`` is that package's version, ``epoch`` the creation time (seconds
    since 1970, as SOURCE_DATE_EPOCH, which is not read here) and ``seed`` anything that
    identifies the build.  ``cdx_out``: also CycloneDX.  ``arch``: the system's Debian
    architecture (else debsbom reads it from the root).

    ``shipped``: the control paragraphs (``dpkg-deb --field``) of packages that are not
    installed in the root but whose files the output carries (the ISO's boot files); they
    are listed like the installed ones.  ``files``: (name, SHA-256) of the output files the
    document describes: each is a package of purpose FILE that contains the system (SPDX),
    a file component that depends on it (CycloneDX).
    """
    scanned = scan(root, name=name, epoch=epoch, seed=seed, version=version, arch=arch, shipped=shipped,
                   file_names=[file for file, _digest in files])
    scanned.write(spdx_out, cdx_out, files)


@dataclasses.dataclass
class Scanned:
    """The documents of one root (and what an output ships besides), before the output files
    are known: scanning takes seconds, and the outputs are hashed meanwhile (steps/manifest.py)."""

    name: str
    spdx: Document
    cdx: Bom

    def write(self, spdx_out: Path, cdx_out: Path | None, files: Sequence[tuple[str, str]] = ()) -> None:
        """Write the documents, describing ``files`` ((name, SHA-256), as ``write`` has them)."""
        spdx_out.write_text(_spdx_json(_with_files_spdx(self.spdx, self.name, files)), encoding="utf-8")
        if cdx_out is not None:
            cdx_out.write_text(_cdx_json(_with_files_cdx(self.cdx, files)), encoding="utf-8")


def scan(root: Path, *, name: str, epoch: int, seed: str, version: str | None = None, arch: str | None = None,
         shipped: Sequence[str] = (), file_names: Sequence[str] = ()) -> Scanned:
    """The documents ``write`` writes, for output files of these names (see ``write``)."""
    if not NAME_PATTERN.fullmatch(name):
        raise ValueError(f"SBOM name {name!r}: only letters, digits, '.' and '-' (it is part of an SPDX id)")
    if epoch < 0:
        raise ValueError(f"SBOM epoch {epoch}: seconds since 1970, not negative")
    with tempfile.TemporaryDirectory(prefix="vmdebootstrap-sbom-") as scratch, _debsbom_quiet():
        digest = _stage_dpkg_database(root, Path(scratch), shipped)
        # The files' names keep the documents of two outputs of one root apart.
        digest = hashlib.sha256("\n".join([digest, *file_names]).encode()).hexdigest()
        generator = Debsbom(
            distro_name=name,
            distro_version=version,
            distro_arch=arch,
            root=scratch,
            spdx_namespace=urlparse(f"https://spdx.org/spdxdocs/vmdebootstrap-{name}-"
                                    f"{_document_uuid('spdx', seed, digest)}"),
            cdx_serialnumber=_document_uuid("cyclonedx", seed, digest),
            timestamp=datetime.fromtimestamp(epoch, UTC),
        )
        generator.scan()
        _settle_virtual_providers(generator)
        _warn_of_foreign_architectures(generator)
        return Scanned(name, generator.generate(SBOMType.SPDX), generator.generate(SBOMType.CycloneDX))


@contextlib.contextmanager
def _debsbom_quiet() -> Iterator[None]:
    """debsbom warns of each source package that only Built-Using names, whose maintainer
    dpkg does not know: the SBOM says NOASSERTION (docs/sbom.md), the build log need not."""
    logger = logging.getLogger("debsbom")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _stage_dpkg_database(root: Path, scratch: Path, shipped: Sequence[str] = ()) -> str:
    """Copy the dpkg files that debsbom reads into ``scratch`` (an empty root), the
    ``shipped`` packages added to its status as installed, and return the digest of the
    status file.

    Pointed at the image's root, debsbom would also read apt's lists and extended_states
    there: the SBOM would then depend on what apt last downloaded.  A root of only the
    dpkg database keeps it a function of the installed packages.
    """
    source, target = root / "var/lib/dpkg", scratch / "var/lib/dpkg"
    target.mkdir(parents=True)
    if not (source / "status").is_file():
        raise FileNotFoundError(f"{source / 'status'}: no dpkg database in this root")
    for name in _DPKG_FILES:
        if (source / name).is_file():
            shutil.copyfile(source / name, target / name)
    if shipped:
        status = (target / "status").read_text(encoding="utf-8")
        added = _shipped_paragraphs(status, shipped)
        (target / "status").write_text(status.rstrip("\n") + "\n\n" + "\n".join(added), encoding="utf-8")
    return hashlib.sha256((target / "status").read_bytes()).hexdigest()


def _shipped_paragraphs(status: str, shipped: Sequence[str]) -> list[str]:
    """dpkg status paragraphs for ``shipped`` control paragraphs, but those of packages the
    status has already (the same name and architecture: the root installed it too)."""
    installed = {(p.get("Package"), p.get("Architecture")) for p in Deb822.iter_paragraphs(status)}
    added = []
    for text in sorted(shipped):
        control = Deb822(text)
        if (control.get("Package"), control.get("Architecture")) in installed:
            continue
        fields = [f"{key}: {value}" for key, value in control.items()]
        added.append("\n".join([fields[0], "Status: install ok installed", *fields[1:]]) + "\n")
    return added


def _file_id(name: str) -> str:
    return "SPDXRef-File-" + re.sub(r"[^A-Za-z0-9.-]", "-", name)


def _with_files_spdx(document: Document, system: str, files: Sequence[tuple[str, str]]) -> Document:
    """The output files, with their SHA-256, as packages of purpose FILE that contain the system."""
    for name, sha256 in files:
        document.packages.append(Package(
            spdx_id=_file_id(name), name=name, file_name=name, download_location=SpdxNoAssertion(),
            files_analyzed=False, checksums=[Checksum(ChecksumAlgorithm.SHA256, sha256)],
            primary_package_purpose=PackagePurpose.FILE, license_concluded=SpdxNoAssertion(),
            license_declared=SpdxNoAssertion(), copyright_text=SpdxNoAssertion()))
        document.relationships.append(Relationship("SPDXRef-DOCUMENT", RelationshipType.DESCRIBES, _file_id(name)))
        document.relationships.append(Relationship(_file_id(name), RelationshipType.CONTAINS, f"SPDXRef-{system}"))
    return document


def _with_files_cdx(bom: Bom, files: Sequence[tuple[str, str]]) -> Bom:
    """The output files, with their SHA-256, as file components that depend on the system."""
    system = bom.metadata.component
    for name, sha256 in files:
        component = Component(type=ComponentType.FILE, name=name, bom_ref=BomRef(f"file:{name}"),
                              hashes=[HashType(alg=HashAlgorithm.SHA_256, content=sha256)])
        bom.components.add(component)
        if system is not None:
            bom.register_dependency(component, [system])
    return bom


def _document_uuid(kind: str, seed: str, digest: str) -> uuid.UUID:
    # The status digest in it keeps two different roots apart even under one seed.
    return uuid.uuid5(_UUID_ROOT, f"{kind}\n{seed}\n{digest}")


def _settle_virtual_providers(generator: Any) -> None:
    """When several installed packages provide a virtual package, debsbom points a
    dependency on it at the first one of a list made in hash order (it changes with
    PYTHONHASHSEED): order each list by name and architecture first."""
    for providers in generator.virtual_packages.values():
        providers.sort(key=lambda pair: (pair[1].name, pair[1].architecture or "", str(pair[1].version)))


def _warn_of_foreign_architectures(generator: Any) -> None:
    """debsbom resolves a dependency of a foreign-architecture package (libbar1:i386 on
    libc6) to any installed libc6 of its own, the native or "all" architecture, tried in
    hash order: with libc6 installed for two architectures the graph changes from one run
    to the next.  No build of ours makes such a root; a hook could."""
    native = generator.distro_arch
    foreign = sorted({package.architecture for package in generator.packages
                      if package.is_binary() and package.architecture} - {native, "all"})
    if foreign:
        log.warning("SBOM: packages of architecture %s beside %s: the dependencies of those packages "
                    "may differ from one build to the next (docs/sbom.md)", ", ".join(foreign), native)


def _spdx_json(document: Document) -> str:
    # debsbom lists packages and relationships in the order of a set (hash order).
    document.packages.sort(key=lambda package: package.spdx_id)
    document.relationships.sort(key=_relationship_key)
    stream = io.StringIO()
    # spdx-tools' own validation costs time quadratic in the packages (14 s for 950): the
    # tests validate instead, with the SPDX schema and with spdx-tools.
    write_document_to_stream(document, stream, validate=False)
    return stream.getvalue() + "\n"


def _relationship_key(relationship: Relationship) -> tuple[str, str, str, str]:
    return (relationship.spdx_element_id, relationship.relationship_type.name,
            str(relationship.related_spdx_element_id), relationship.comment or "")


def _cdx_json(bom: Bom) -> str:
    # Components, dependencies and properties are sorted sets in cyclonedx-python-lib.
    _drop_contacts_without_email(bom)
    text: str = make_outputter(bom, OutputFormat.JSON, SchemaVersion.V1_6).output_as_string(indent=4)
    return text + "\n"


def _drop_contacts_without_email(bom: Bom) -> None:
    """debsbom makes a supplier's contact of whatever is between <> in Maintainer, which
    outside Debian's archive is sometimes a URL: CycloneDX's schema wants an e-mail
    address there.  The supplier's name stays."""
    for component in bom.components:
        if component.supplier is not None:
            component.supplier.contacts = [contact for contact in component.supplier.contacts
                                           if contact.email is None or "@" in contact.email]
