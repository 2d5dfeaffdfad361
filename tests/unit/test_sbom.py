"""vmdebootstrap.sbom on a hand-written dpkg database: the SBOM is valid by validators
that did not write it, lists exactly what dpkg-query says is installed, and is the same
bytes from one run to the next."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

# debsbom comes with the pip install (pyproject.toml); Debian packages it from forky on, so
# the .deb's build on bookworm or trixie has none: the build then writes no SBOM (manifest.py).
pytest.importorskip("debsbom", reason="debsbom is not installed (Debian packages it from forky on)")

from tests import sbomcheck
from vmdebootstrap import sbom

EPOCH = 1700000000  # 2023-11-14T22:13:20Z
SEED = "test-build-1"

# Multi-Arch: same installed twice, an arch:all package (on hold), binNMU'd and plain
# sources in parentheses, an epoch, a virtual package with two providers, a non-ASCII
# maintainer and one outside Debian whose <> holds a URL; then four packages that are
# in the database but not installed.
STATUS = """\
Package: dpkg
Essential: yes
Status: install ok installed
Priority: required
Section: admin
Maintainer: Dpkg Developers <debian-dpkg@lists.debian.org>
Architecture: amd64
Multi-Arch: foreign
Version: 1.21.22
Depends: libc6 (>= 2.34)
Description: Debian package management system
 The low-level infrastructure for handling Debian packages.

Package: libc6
Status: install ok installed
Priority: optional
Section: libs
Maintainer: GNU Libc Maintainers <debian-glibc@lists.debian.org>
Architecture: amd64
Multi-Arch: same
Source: glibc
Version: 2.36-9+deb12u7
Description: GNU C Library: Shared libraries

Package: libc6
Status: install ok installed
Priority: optional
Section: libs
Maintainer: GNU Libc Maintainers <debian-glibc@lists.debian.org>
Architecture: i386
Multi-Arch: same
Source: glibc
Version: 2.36-9+deb12u7
Description: GNU C Library: Shared libraries

Package: libfoo1
Status: install ok installed
Section: libs
Maintainer: Foo Team <foo@example.org>
Architecture: amd64
Multi-Arch: same
Source: foo (1.2-3)
Version: 1.2-3+b1
Depends: libc6 (>= 2.34), foo-data (= 1.2-3)
Description: the foo library

Package: foo-data
Status: hold ok installed
Section: misc
Maintainer: Foo Team <foo@example.org>
Architecture: all
Multi-Arch: foreign
Source: foo
Version: 1.2-3
Description: the foo library's data

Package: libstdc++6
Status: install ok installed
Section: libs
Maintainer: Debian GCC Maintainers <debian-gcc@lists.debian.org>
Architecture: amd64
Multi-Arch: same
Source: gcc-12 (12.2.0-14)
Version: 12.2.0-14
Depends: libc6 (>= 2.36)
Description: GNU Standard C++ Library v3

Package: mawk
Status: install ok installed
Priority: required
Section: interpreters
Maintainer: Boyuan Yang <byang@debian.org>
Architecture: amd64
Multi-Arch: foreign
Version: 1.3.4.20200120-3.1
Provides: awk
Depends: libc6 (>= 2.34)
Description: Pattern scanning and text processing language

Package: gawk
Status: install ok installed
Section: interpreters
Maintainer: Jörg Jaspert <joerg@debian.org>
Architecture: amd64
Multi-Arch: foreign
Version: 1:5.2.1-2
Provides: awk
Depends: libc6 (>= 2.34)
Description: GNU awk, a pattern scanning and processing language

Package: vendor-tool
Status: install ok installed
Section: utils
Maintainer: Example Vendor <https://vendor.example/support>
Architecture: amd64
Version: 2.0
Depends: awk, libfoo1
Homepage: https://vendor.example/
Description: a tool from outside Debian's archive

Package: oldconf
Status: deinstall ok config-files
Section: misc
Maintainer: Old Team <old@example.org>
Architecture: amd64
Version: 0.9-1
Conffiles:
 /etc/oldconf.conf 0123456789abcdef0123456789abcdef
Description: removed, its configuration kept

Package: broken
Status: install reinstreq half-installed
Section: misc
Maintainer: Broken Team <broken@example.org>
Architecture: amd64
Version: 3.0-1
Description: an unpack that failed

Package: unpacked
Status: install ok unpacked
Section: misc
Maintainer: Unpacked Team <unpacked@example.org>
Architecture: amd64
Version: 1.0-1
Description: unpacked, never configured

Package: waiting
Status: install ok triggers-pending
Section: misc
Maintainer: Waiting Team <waiting@example.org>
Architecture: amd64
Version: 1.0-1
Triggers-Pending: /usr/share/waiting
Description: a trigger not yet run
"""

INSTALLED = {
    "dpkg:amd64 1.21.22",
    "libc6:amd64 2.36-9+deb12u7",
    "libc6:i386 2.36-9+deb12u7",
    "libfoo1:amd64 1.2-3+b1",
    "foo-data:all 1.2-3",
    "libstdc++6:amd64 12.2.0-14",
    "mawk:amd64 1.3.4.20200120-3.1",
    "gawk:amd64 1:5.2.1-2",
    "vendor-tool:amd64 2.0",
}
NOT_INSTALLED = {"oldconf", "broken", "unpacked", "waiting"}


def make_root(base: Path, status: str = STATUS) -> Path:
    dpkg = base / "var/lib/dpkg"
    (dpkg / "info").mkdir(parents=True)
    (dpkg / "updates").mkdir()
    (dpkg / "status").write_text(status, encoding="utf-8")
    return base


@pytest.fixture
def written(tmp_path: Path) -> tuple[Path, Path, Path]:
    root = make_root(tmp_path / "root")
    spdx, cdx = tmp_path / "sbom.spdx.json", tmp_path / "sbom.cdx.json"
    sbom.write(root, spdx, cdx, name="test-image", epoch=EPOCH, seed=SEED, version="12")
    return root, spdx, cdx


def load(path: Path) -> dict:  # type: ignore[type-arg]
    return json.loads(path.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def test_spdx_is_valid_by_the_spdx_schema_and_spdx_tools(written: tuple[Path, Path, Path]) -> None:
    _, spdx, _ = written
    assert sbomcheck.validate_spdx(spdx) == []


def test_cyclonedx_is_valid_by_the_cyclonedx_schema(written: tuple[Path, Path, Path]) -> None:
    _, _, cdx = written
    assert sbomcheck.validate_cyclonedx(cdx) == []


def test_the_validators_find_problems(written: tuple[Path, Path, Path], tmp_path: Path) -> None:
    """Not vacuous: a package without its id, a relationship to nothing, a bad e-mail."""
    _, spdx, cdx = written
    document = load(spdx)
    del document["packages"][0]["SPDXID"]
    document["relationships"].append({"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES",
                                      "relatedSpdxElement": "SPDXRef-nowhere"})
    broken = tmp_path / "broken.spdx.json"
    broken.write_text(json.dumps(document), encoding="utf-8")
    problems = sbomcheck.validate_spdx(broken)
    assert any(problem.startswith("schema: packages/0:") and "SPDXID" in problem for problem in problems)
    assert any(problem.startswith("spdx-tools") for problem in problems)
    bom = load(cdx)
    bom["components"][0]["supplier"] = {"name": "x", "contact": [{"email": "https://not.an.address/"}]}
    broken = tmp_path / "broken.cdx.json"
    broken.write_text(json.dumps(bom), encoding="utf-8")
    assert any("idn-email" in problem for problem in sbomcheck.validate_cyclonedx(broken))


def test_the_package_list_is_what_dpkg_query_says_is_installed(written: tuple[Path, Path, Path]) -> None:
    root, spdx, cdx = written
    assert sbomcheck.installed_packages(root / "var/lib/dpkg") == INSTALLED
    assert sbomcheck.packages_in_spdx(spdx) == INSTALLED
    assert sbomcheck.packages_in_cyclonedx(cdx) == INSTALLED


def test_packages_not_installed_are_left_out(written: tuple[Path, Path, Path]) -> None:
    """dpkg-query --show lists config-files and half-installed packages too: the SBOM
    lists only the installed ones."""
    root, spdx, cdx = written
    shown = subprocess.run(["dpkg-query", "--admindir", str(root / "var/lib/dpkg"), "--show",
                            "--showformat", "${Package}\n"], capture_output=True, text=True, check=True)
    assert NOT_INSTALLED <= set(shown.stdout.split())
    names = {package["name"] for package in load(spdx)["packages"]}
    names |= {component["name"] for component in load(cdx)["components"]}
    assert not names & NOT_INSTALLED


def test_source_packages_and_their_binaries(written: tuple[Path, Path, Path]) -> None:
    """The source named with a version in parentheses is that version (not the binNMU's),
    and generates both its binaries; each binary's purl names its architecture."""
    _, spdx, _ = written
    document = load(spdx)
    purls = {ref["referenceLocator"] for package in document["packages"] for ref in package.get("externalRefs", [])}
    assert {"pkg:deb/debian/foo@1.2-3?arch=source", "pkg:deb/debian/gcc-12@12.2.0-14?arch=source",
            "pkg:deb/debian/libfoo1@1.2-3%2Bb1?arch=amd64", "pkg:deb/debian/foo-data@1.2-3?arch=all",
            "pkg:deb/debian/libc6@2.36-9%2Bdeb12u7?arch=i386", "pkg:deb/debian/gawk@1:5.2.1-2?arch=amd64"} <= purls
    generates = {(r["spdxElementId"], r["relatedSpdxElement"]) for r in document["relationships"]
                 if r["relationshipType"] == "GENERATES"}
    assert {("SPDXRef-foo-1.2-3-srcpkg", "SPDXRef-libfoo1-amd64"),
            ("SPDXRef-foo-1.2-3-srcpkg", "SPDXRef-foo-data-all")} <= generates


def test_the_document_names_the_system_its_time_and_seed(written: tuple[Path, Path, Path]) -> None:
    _, spdx, cdx = written
    document, bom = load(spdx), load(cdx)
    assert document["name"] == "test-image"
    assert document["creationInfo"]["created"] == "2023-11-14T22:13:20Z"
    assert document["documentNamespace"].startswith("https://spdx.org/spdxdocs/vmdebootstrap-test-image-")
    system = next(p for p in document["packages"] if p["SPDXID"] == "SPDXRef-test-image")
    assert (system["primaryPackagePurpose"], system["versionInfo"]) == ("OPERATING_SYSTEM", "12")
    assert {"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES",
            "relatedSpdxElement": "SPDXRef-test-image"} in document["relationships"]
    assert bom["metadata"]["timestamp"] == "2023-11-14T22:13:20+00:00"
    assert bom["serialNumber"].startswith("urn:uuid:")


def test_the_document_ids_follow_the_seed_and_the_packages(written: tuple[Path, Path, Path],
                                                          tmp_path: Path) -> None:
    root, spdx, cdx = written
    other_seed = (tmp_path / "seed.spdx.json", tmp_path / "seed.cdx.json")
    sbom.write(root, *other_seed, name="test-image", epoch=EPOCH, seed="test-build-2", version="12")
    other_root = make_root(tmp_path / "other", STATUS.replace("Version: 2.0", "Version: 2.1"))
    other_packages = (tmp_path / "root.spdx.json", tmp_path / "root.cdx.json")
    sbom.write(other_root, *other_packages, name="test-image", epoch=EPOCH, seed=SEED, version="12")
    namespaces = {load(path)["documentNamespace"] for path in (spdx, other_seed[0], other_packages[0])}
    serials = {load(path)["serialNumber"] for path in (cdx, other_seed[1], other_packages[1])}
    assert len(namespaces) == len(serials) == 3


def test_a_virtual_package_points_at_the_same_provider_every_time(written: tuple[Path, Path, Path]) -> None:
    """gawk and mawk both provide awk: vendor-tool depends on the first by name."""
    _, spdx, _ = written
    depends = {r["relatedSpdxElement"] for r in load(spdx)["relationships"]
               if r["spdxElementId"] == "SPDXRef-vendor-tool-amd64" and r["relationshipType"] == "DEPENDS_ON"}
    assert depends == {"SPDXRef-gawk-amd64", "SPDXRef-libfoo1-amd64"}


def test_a_supplier_contact_that_is_not_an_address_is_left_out(written: tuple[Path, Path, Path]) -> None:
    _, spdx, cdx = written
    component = next(c for c in load(cdx)["components"] if c["name"] == "vendor-tool")
    assert component["supplier"] == {"name": "Example Vendor"}
    package = next(p for p in load(spdx)["packages"] if p["name"] == "vendor-tool")
    assert package["supplier"] == "Person: Example Vendor (https://vendor.example/support)"


def test_writing_twice_gives_the_same_bytes(tmp_path: Path) -> None:
    """Two processes with another hash seed, time zone, locale, umask, working directory,
    root directory, SOURCE_DATE_EPOCH and wall-clock second write the same files."""
    script = ("import sys; from pathlib import Path; from vmdebootstrap import sbom; "
              "sbom.write(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), "
              f"name='test-image', epoch={EPOCH}, seed={SEED!r})")
    # Hash seeds 1 and 5 order the providers of awk differently in debsbom (Python 3.11).
    runs = [("1", "UTC", "C.UTF-8", 0o022), ("5", "Pacific/Kiritimati", "C", 0o077)]
    outputs = []
    started = time.time()
    for index, (hash_seed, zone, locale, umask) in enumerate(runs):
        base = tmp_path / f"run{index}"
        make_root(base / "root")
        env = {**os.environ, "PYTHONHASHSEED": hash_seed, "TZ": zone, "LC_ALL": locale}
        env.pop("SOURCE_DATE_EPOCH", None)
        if index:
            env["SOURCE_DATE_EPOCH"] = "1"
            time.sleep(max(0.0, 1.1 - (time.time() - started)))
        files = (base / "out.spdx.json", base / "out.cdx.json")
        subprocess.run([sys.executable, "-c", script, str(base / "root"), *map(str, files)],
                       env=env, cwd=base, umask=umask, check=True, timeout=120)
        outputs.append([path.read_bytes() for path in files])
    assert outputs[0] == outputs[1]


def test_only_the_dpkg_database_is_read(written: tuple[Path, Path, Path], tmp_path: Path) -> None:
    """apt's extended_states (here: every package automatic) and lists change nothing."""
    root, spdx, cdx = written
    apt = root / "var/lib/apt"
    (apt / "lists").mkdir(parents=True)
    (apt / "extended_states").write_text("".join(
        f"Package: {line.split(':')[0]}\nArchitecture: {line.split(':')[1].split()[0]}\nAuto-Installed: 1\n\n"
        for line in sorted(INSTALLED)), encoding="utf-8")
    shutil.copy(root / "var/lib/dpkg/status", apt / "lists/mirror.example_debian_dists_x_main_binary-amd64_Packages")
    again = (tmp_path / "again.spdx.json", tmp_path / "again.cdx.json")
    sbom.write(root, *again, name="test-image", epoch=EPOCH, seed=SEED, version="12")
    assert (again[0].read_bytes(), again[1].read_bytes()) == (spdx.read_bytes(), cdx.read_bytes())


def test_a_foreign_architecture_is_warned_about(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """libc6:i386 beside amd64: debsbom may resolve a dependency of an i386 package to
    either libc6 from one run to the next (docs/sbom.md)."""
    root = make_root(tmp_path / "root")
    with caplog.at_level(logging.WARNING, logger="vmdebootstrap"):
        sbom.write(root, tmp_path / "out.spdx.json", None, name="test-image", epoch=EPOCH, seed=SEED)
    assert any("i386" in record.getMessage() for record in caplog.records if record.name == "vmdebootstrap")
    assert not (tmp_path / "out.cdx.json").exists()


@pytest.mark.parametrize("name", ["", "has space", "under_score", "slash/y"])
def test_a_name_that_cannot_be_an_spdx_id_is_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match="SBOM name"):
        sbom.write(make_root(tmp_path / "root"), tmp_path / "out.json", None, name=name, epoch=EPOCH, seed=SEED)


def test_a_root_without_a_dpkg_database_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no dpkg database"):
        sbom.write(tmp_path, tmp_path / "out.json", None, name="x", epoch=EPOCH, seed=SEED)


# What an output carries beyond the root (the ISO's boot files), and the output files themselves (issue 22).
SHIPPED = ("Package: isolinux\nVersion: 3:6.04~git20190206.bf6db5b4+dfsg1-3.1\nArchitecture: all\n"
           "Maintainer: Debian CD Group <debian-cd@lists.debian.org>\nSource: syslinux\n"
           "Description: collection of bootloaders (ISO 9660 bootloader)\n",
           "Package: shim-signed\nSource: shim-signed (1.47)\nVersion: 1.47+15.8-1\nArchitecture: amd64\n"
           "Maintainer: Debian EFI team <debian-efi@lists.debian.org>\nDescription: Secure Boot chain-loading "
           "bootloader (Microsoft-signed binary)\n",
           # installed in the root already: listed once
           "Package: dpkg\nVersion: 1.21.22\nArchitecture: amd64\nMaintainer: Dpkg Developers "
           "<debian-dpkg@lists.debian.org>\nDescription: Debian package management system\n")
FILES = (("live.iso", "ab" * 32), ("live.iso.packages", "cd" * 32))


@pytest.fixture
def shipped(tmp_path: Path) -> tuple[Path, Path]:
    root = make_root(tmp_path / "root")
    spdx, cdx = tmp_path / "iso.spdx.json", tmp_path / "iso.cdx.json"
    sbom.write(root, spdx, cdx, name="test-image", epoch=EPOCH, seed=SEED, version="12", shipped=SHIPPED,
               files=FILES)
    return spdx, cdx


def test_shipped_packages_are_listed_with_their_version_and_purl(shipped: tuple[Path, Path]) -> None:
    spdx, cdx = shipped
    assert sbomcheck.validate_spdx(spdx) == [] and sbomcheck.validate_cyclonedx(cdx) == []
    for listed in (sbomcheck.packages_in_spdx(spdx), sbomcheck.packages_in_cyclonedx(cdx)):
        assert listed == INSTALLED | {"isolinux:all 3:6.04~git20190206.bf6db5b4+dfsg1-3.1",
                                      "shim-signed:amd64 1.47+15.8-1"}
    purls = {ref["referenceLocator"] for package in load(spdx)["packages"] for ref in package.get("externalRefs", [])}
    assert {purl for purl in purls if "linux@" in purl or "shim" in purl} == {
        "pkg:deb/debian/isolinux@3:6.04~git20190206.bf6db5b4%2Bdfsg1-3.1?arch=all",
        "pkg:deb/debian/shim-signed@1.47%2B15.8-1?arch=amd64", "pkg:deb/debian/shim-signed@1.47?arch=source",
        "pkg:deb/debian/syslinux@3:6.04~git20190206.bf6db5b4%2Bdfsg1-3.1?arch=source"}


def test_the_output_files_and_their_sha256_are_in_both_documents(shipped: tuple[Path, Path]) -> None:
    spdx, cdx = shipped
    document = load(spdx)
    files = {p["name"]: p for p in document["packages"] if p.get("primaryPackagePurpose") == "FILE"}
    assert {name: p["checksums"] for name, p in files.items()} == {
        name: [{"algorithm": "SHA256", "checksumValue": digest}] for name, digest in FILES}
    described = {r["relatedSpdxElement"] for r in document["relationships"] if r["relationshipType"] == "DESCRIBES"}
    assert {p["SPDXID"] for p in files.values()} <= described
    contains = {(r["spdxElementId"], r["relatedSpdxElement"]) for r in document["relationships"]
                if r["relationshipType"] == "CONTAINS"}
    assert ("SPDXRef-File-live.iso", "SPDXRef-test-image") in contains
    components = {c["name"]: c for c in load(cdx)["components"] if c["type"] == "file"}
    assert {name: c["hashes"] for name, c in components.items()} == {
        name: [{"alg": "SHA-256", "content": digest}] for name, digest in FILES}
