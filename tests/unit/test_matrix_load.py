"""The matrix file: every kind of mistake is refused with FILE:LINE: KEY: cause, exit status 2
and nothing written; a good one expands into its cells, excludes and overrides applied."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vmdebootstrap import releases
from vmdebootstrap.matrix import loader
from vmdebootstrap.matrix.commands import boot_argv, build_argv
from vmdebootstrap.matrix.problems import MatrixError

from .matrixfiles import SMALL, run, write


@pytest.fixture(autouse=True)
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def refused(capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str) -> list[str]:
    """The lines `pipeline` prints for the matrix ``text``; it must exit 2 and write nothing."""
    write(tmp_path, text)
    status, out, err = run(capsys, "pipeline", "matrix.yml", "-o", "ci.yml", "--no-cache-keys")
    assert status == 2 and out == ""
    assert not (tmp_path / "ci.yml").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["configs", "matrix.yml"]
    return err.splitlines()


BASE = "axes:\n  release: [trixie]\n  arch: [amd64]\n  config: [configs/minbase.conf]\n"


@pytest.mark.parametrize(("text", "expected"), [
    pytest.param(BASE + "runners: {tags: [x]}\n",
                 "matrix.yml:5: runners: not a key of a matrix (defaults, axes, exclude, overrides, reproducible, "
                 "runner, boot-test, cache)", id="unknown top-level key"),
    pytest.param(BASE + "  flavour: [xfce]\n", "matrix.yml:5: axes.flavour: not an axis (release, arch, config, "
                 "output)", id="unknown axis"),
    pytest.param("axes:\n  release: []\n  arch: [amd64]\n  config: [configs/minbase.conf]\n",
                 "matrix.yml:2: axes.release: empty: give at least one value", id="empty axis"),
    pytest.param("axes:\n  arch: [amd64]\n  config: [configs/minbase.conf]\n",
                 "matrix.yml:1: axes.release: missing: a matrix needs release, arch and config", id="missing axis"),
    pytest.param(BASE + "exclude:\n  - {output: iso}\n",
                 "matrix.yml:6: exclude[0].output: not an axis of this matrix (release, arch, config)",
                 id="exclude names an axis the matrix lacks"),
    pytest.param(BASE + "exclude:\n  - {arch: arm64}\n",
                 "matrix.yml:6: exclude[0].arch: arm64: not a value of axes.arch (amd64)",
                 id="exclude names a value the axis lacks"),
    pytest.param("defaults:\n  packages: [vim]\n" + BASE,
                 "matrix.yml:2: defaults.packages: not a vmdebootstrap option (vmdebootstrap --dump-setting-names)",
                 id="unknown option"),
    pytest.param("defaults:\n  sudo: maybe\n" + BASE, "matrix.yml:2: defaults.sudo: not true or false",
                 id="a flag that is no boolean"),
    pytest.param("defaults:\n  size: huge\n" + BASE,
                 "matrix.yml:2: defaults.size: huge: not a size (use e.g. 2G, 500M, 512MiB)", id="a bad size"),
    pytest.param("defaults:\n  squash-compression: brotli\n" + BASE,
                 "matrix.yml:2: defaults.squash-compression: brotli: ", id="the option's own parser refuses"),
    pytest.param("defaults:\n  distribution: sid\n" + BASE,
                 "matrix.yml:2: defaults.distribution: set by the matrix: the release axis sets it",
                 id="an option the matrix sets"),
    pytest.param("defaults:\n  dump-config: true\n" + BASE,
                 "matrix.yml:2: defaults.dump-config: a command-line option, not a setting", id="cli-only option"),
    pytest.param("defaults:\n  customize: hooks/none.sh\n" + BASE,
                 "matrix.yml:2: defaults.customize: hooks/none.sh: no such file or directory ",
                 id="an input path that does not exist"),
    pytest.param(BASE.replace("configs/minbase.conf", "configs/gone.conf"),
                 "matrix.yml:4: axes.config[0]: configs/gone.conf: no such file ", id="missing config file"),
    pytest.param(BASE.replace("[trixie]", "[trixie, buster, trixie]"),
                 "matrix.yml:2: axes.release[2]: trixie: given twice", id="duplicate release"),
    pytest.param(BASE.replace("[configs/minbase.conf]", "[configs/minbase.conf, {name: minbase, file: "
                              "configs/vm.conf}]"),
                 "matrix.yml:4: axes.config[1]: minbase: a second entry of this name (name one: {name: NAME, "
                 "file: FILE})", id="duplicate config name"),
    pytest.param(BASE.replace("[trixie]", "[trixie, potatoes]"),
                 "matrix.yml:2: axes.release[1]: potatoes: not a release vmdebootstrap knows (", id="unknown release"),
    pytest.param(BASE.replace("[amd64]", "[amd64, m68k]"),
                 "matrix.yml:3: axes.arch[1]: m68k: not an architecture vmdebootstrap knows (", id="unknown arch"),
    pytest.param(BASE.replace("[amd64]", "[amd64, mips64el]"),
                 "matrix.yml:3: axes.arch: mips64el: trixie's archive has no mips64el (exclude {release: trixie, "
                 "arch: mips64el})", id="a release without the architecture"),
    pytest.param(BASE + "overrides:\n  - match: {release: trixie, arch: amd64, config: minbase}\n"
                 "    options: {hostname: x}\n  - match: {config: minbase}\n    options: {sudo: yes}\n"
                 "  - match: {arch: amd64}\n    options: {}\n",
                 None, id="overrides that fit"),
    pytest.param(BASE + "exclude:\n  - {arch: amd64}\n", "matrix.yml:1: exclude: every cell is excluded",
                 id="everything excluded"),
    pytest.param(BASE + "cache: {dir: /var/cache/vmdebootstrap}\n",
                 "matrix.yml:5: cache.dir: /var/cache/vmdebootstrap: a path inside the project directory (GitLab "
                 "caches nothing else)", id="a cache outside the project"),
    pytest.param(BASE + "cache: {apt-proxy: 'apt-cacher:3142'}\n",
                 "matrix.yml:5: cache.apt-proxy: apt-cacher:3142: not an http://HOST:PORT proxy", id="a bad proxy"),
    pytest.param(BASE + "axes: {}\n", "matrix.yml:5: axes: given twice", id="a key twice"),
    pytest.param(BASE + "exclude: [\n", "matrix.yml:6: yaml: not valid YAML: ", id="not YAML"),
    pytest.param("- a list\n", "matrix.yml:1: matrix: not a mapping", id="not a mapping"),
    pytest.param("", "matrix.yml:1: matrix: the file is empty", id="empty file"),
])
def test_each_mistake_is_one_line_with_its_place(capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str,
                                                  expected: str | None) -> None:
    if expected is None:  # the control: the same file, right
        write(tmp_path, text)
        assert run(capsys, "check", "matrix.yml")[0] == 0
        return
    lines = refused(capsys, tmp_path, text)
    assert len(lines) == 1 and lines[0].startswith(expected), lines


def test_an_override_that_fits_no_cell(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    lines = refused(capsys, tmp_path, BASE + "overrides:\n  - match: {release: trixie}\n    options: {sudo: true}\n"
                    "  - match: {release: trixie, arch: amd64}\n    options: {hostname: x}\n"
                    "exclude:\n  - {config: minbase, release: trixie}\n")
    assert lines == ["matrix.yml:1: exclude: every cell is excluded",
                     "matrix.yml:6: overrides[0].match: fits no cell of the matrix",
                     "matrix.yml:8: overrides[1].match: fits no cell of the matrix"]


def test_every_problem_is_named_at_once_in_the_file_s_order(capsys: pytest.CaptureFixture[str],
                                                             tmp_path: Path) -> None:
    lines = refused(capsys, tmp_path, "defaults:\n  bogus: 1\n  sudo: 3\naxes:\n  release: [trixie, woody2]\n"
                    "  arch: []\n  config: [configs/none.conf]\n")
    assert [line.split(": ")[0] + ": " + line.split(": ")[1] for line in lines] == [
        "matrix.yml:2: defaults.bogus", "matrix.yml:3: defaults.sudo", "matrix.yml:5: axes.release[1]",
        "matrix.yml:6: axes.arch", "matrix.yml:7: axes.config[0]"]


def test_a_suite_and_its_codename_are_one_cell(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    stable = releases.codename("stable")
    lines = refused(capsys, tmp_path, BASE.replace("[trixie]", f"[{stable}, stable]"))
    assert lines == [f"matrix.yml:2: axes.release: stable: stable amd64 minbase is {stable} amd64 minbase (stable "
                     f"is {stable} today): a duplicate cell"]


@pytest.mark.parametrize(("options", "cause"), [
    ("{user: [user/live]}", "boot-test, but it writes no ISO or disk image (set boot-test: false for it in an "
     "override)"),
    ("{iso: x.iso, user: [user/hashed:$y$j9T$x]}",
     "boot-test needs a user NAME/PASSWORD (a plain password) to log in as"),
])
def test_a_boot_test_that_cannot_happen_is_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path, options: str,
                                                  cause: str) -> None:
    lines = refused(capsys, tmp_path, BASE + f"overrides:\n  - match: {{}}\n    options: {{boot-test: true, "
                    f"{options[1:-1]}}}\n".replace(", }", "}"))
    assert lines == [f"matrix.yml:4: trixie amd64 minbase: {cause}"]


def test_a_cell_that_writes_nothing_is_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    lines = refused(capsys, tmp_path, BASE.replace("[configs/minbase.conf]", "[{name: bare, options: {sudo: true}}]"))
    assert lines == ["matrix.yml:4: trixie amd64 bare: writes nothing: give it an output (iso, image, tarball or "
                     "squash) in its config file or options, or an output axis"]


def test_a_board_of_another_architecture_is_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    lines = refused(capsys, tmp_path, BASE.replace("[configs/minbase.conf]", "[{name: pi, options: {board: raspi-3, "
                                                   "image: pi.img}}]"))
    assert lines == ["matrix.yml:4: trixie amd64 pi: board raspi-3 is an arm64 board (exclude the cell)"]


def test_a_config_file_vmdebootstrap_refuses_is_named(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs/odd.conf").write_text("[config]\nflavour = xfce\n")
    lines = refused(capsys, tmp_path, BASE.replace("minbase.conf", "odd.conf"))
    assert len(lines) == 1
    assert lines[0].startswith("matrix.yml:4: axes.config[0]: configs/odd.conf: ") and "unknown setting" in lines[0]


# -- expansion ------------------------------------------------------------------------------------------------


def test_the_cells_are_the_product_less_the_excluded_in_the_file_s_order(tmp_path: Path) -> None:
    matrix = loader.load(write(tmp_path, SMALL))
    assert [cell.label for cell in matrix.cells] == [
        "trixie amd64 live", "trixie amd64 minbase", "trixie arm64 live", "trixie arm64 minbase",
        "bookworm amd64 live", "bookworm amd64 minbase"]
    assert [cell.slug for cell in matrix.cells][:2] == ["trixie-amd64-live", "trixie-amd64-minbase"]
    assert [cell.label for cell in matrix.cells if cell.boots] == ["trixie amd64 live", "trixie arm64 live"]
    assert (matrix.build_tags, matrix.boot_tags) == (("privileged",), ("kvm",))


def test_overrides_apply_in_order_over_the_defaults_and_the_entry_s_options(tmp_path: Path) -> None:
    matrix = loader.load(write(tmp_path, """\
        defaults: {hostname: base, package: [vim]}
        axes:
          release: [trixie, bookworm]
          arch: [amd64]
          config:
            - {name: small, file: configs/minbase.conf, options: {hostname: small}}
        overrides:
          - match: {release: bookworm}
            options: {hostname: old, package: [nano, less]}
          - match: {release: bookworm, config: small}
            options: {hostname: oldest}
        """))
    trixie, bookworm = matrix.cells
    assert dict(trixie.options) == {"hostname": "small", "package": ["vim"]}
    assert dict(bookworm.options) == {"hostname": "oldest", "package": ["nano", "less"]}
    assert build_argv(bookworm)[:12] == [
        "vmdebootstrap", "--no-default-configs", "--config", "configs/minbase.conf", "--distribution", "bookworm",
        "--arch", "amd64", "--package", "nano", "--package", "less"]
    assert "--hostname" in build_argv(bookworm) and build_argv(bookworm)[build_argv(bookworm).index("--hostname")
                                                                         + 1] == "oldest"


def test_a_build_writes_everything_into_its_cell_s_directory(tmp_path: Path) -> None:
    matrix = loader.load(write(tmp_path, SMALL))
    live, minbase = matrix.cells[:2]
    assert build_argv(live, cache_dir=".cache/vmdebootstrap") == [
        "vmdebootstrap", "--no-default-configs", "--config", "configs/live.conf", "--distribution", "trixie",
        "--arch", "amd64", "--mirror", "http://deb.debian.org/debian/",
        "--iso", "out/trixie-amd64-live/trixie-amd64-live.iso", "--no-boot-test",
        "--report", "out/trixie-amd64-live/report.json", "--junit", "out/trixie-amd64-live/junit.xml",
        "--log", "out/trixie-amd64-live/build.log", "--cache-dir", ".cache/vmdebootstrap"]
    assert "out/trixie-amd64-minbase/trixie-amd64-minbase.tar.xz" in build_argv(minbase)  # its compression kept
    assert "--no-boot-test" not in build_argv(minbase)
    bookworm_live = matrix.cells[4]  # the override switches its boot test off: the config file's is off too
    assert not bookworm_live.boots and "--no-boot-test" in build_argv(bookworm_live)
    assert boot_argv(live) == [
        "vmdebootstrap", "--no-default-configs", "--config", "configs/live.conf", "--distribution", "trixie",
        "--arch", "amd64", "--mirror", "http://deb.debian.org/debian/",
        "--boot-test-only", "out/trixie-amd64-live/trixie-amd64-live.iso",
        "--report", "out/trixie-amd64-live/boot/report.json", "--junit", "out/trixie-amd64-live/boot/junit.xml",
        "--log", "out/trixie-amd64-live/boot/build.log"]


def test_an_output_axis_makes_one_kind_per_cell_and_switches_off_the_config_s(tmp_path: Path) -> None:
    matrix = loader.load(write(tmp_path, BASE.replace("minbase.conf", "live.conf") + "  output: [iso, squash]\n"
                               "overrides:\n  - match: {output: squash}\n    options: {boot-test: false}\n"))
    iso, squash = matrix.cells
    assert (iso.label, squash.label) == ("trixie amd64 live iso", "trixie amd64 live squash")
    iso_argv = build_argv(iso)
    assert iso_argv[iso_argv.index("--iso") + 1] == "out/trixie-amd64-live-iso/trixie-amd64-live-iso.iso"
    assert "--squash" not in iso_argv and "--no-boot-test" in iso_argv
    squash_argv = build_argv(squash)
    assert squash_argv[squash_argv.index("--squash") + 1] == "out/trixie-amd64-live-squash/squash"
    assert squash_argv[squash_argv.index("--iso") + 1] == ""  # the config file's ISO is not made
    assert not squash.boots and iso.boots


def test_a_disk_image_is_booted_with_the_firmware_of_its_bootloader(tmp_path: Path) -> None:
    matrix = loader.load(write(tmp_path, """\
        axes:
          release: [trixie]
          arch: [amd64, arm64]
          config:
            - configs/vm.conf
            - {name: uefi, file: configs/vm.conf, options: {grub: false, use-uefi: true}}
        exclude:
          - {arch: arm64, config: vm}
        overrides:
          - match: {}
            options: {boot-test: true}
          - match: {arch: arm64}
            options: {secure-boot: false}
        """))
    firmware = {cell.label: boot_argv(cell)[boot_argv(cell).index("--boot-test-only") - 1] for cell in matrix.cells}
    assert firmware == {"trixie amd64 vm": "bios", "trixie amd64 uefi": "uefi-secure", "trixie arm64 uefi": "uefi"}


def test_input_paths_of_the_matrix_are_relative_to_its_directory(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "ci").mkdir()
    (tmp_path / "ci/hooks").mkdir()
    (tmp_path / "ci/hooks/tune.sh").write_text("#!/bin/sh\n")
    path = write(tmp_path / "ci", BASE + "defaults: {customize: hooks/tune.sh}\n")
    monkeypatch.chdir(tmp_path)
    [cell] = loader.load(Path("ci") / path.name).cells
    argv = build_argv(cell)
    assert argv[argv.index("--config") + 1] == "ci/configs/minbase.conf"
    assert argv[argv.index("--customize") + 1] == "ci/hooks/tune.sh"


def test_the_loader_raises_with_every_problem(tmp_path: Path) -> None:
    with pytest.raises(MatrixError) as raised:
        loader.load(write(tmp_path, "axes: []\n"))
    assert [str(problem) for problem in raised.value.problems] == [f"{tmp_path}/matrix.yml:1: axes: not a mapping"]


def test_check_prints_each_job_s_command(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    write(tmp_path, SMALL)
    status, out, err = run(capsys, "check", "matrix.yml")
    assert status == 0 and err == "matrix.yml: OK: 6 cells, 2 boot tests\n"
    jobs = [line.partition(": ")[0] for line in out.splitlines()]
    assert jobs == ["build trixie amd64 live", "boot trixie amd64 live", "build trixie amd64 minbase",
                    "build trixie arm64 live", "boot trixie arm64 live", "build trixie arm64 minbase",
                    "build bookworm amd64 live", "build bookworm amd64 minbase"]
    assert out.splitlines()[0].partition(": ")[2].startswith("vmdebootstrap --no-default-configs --config "
                                                              "configs/live.conf --distribution trixie")


def test_check_as_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    write(tmp_path, SMALL)
    status, out, _err = run(capsys, "check", "matrix.yml", "--json", "--vmdebootstrap", "/usr/sbin/vmdebootstrap")
    jobs = json.loads(out)
    assert status == 0 and len(jobs) == 8
    assert jobs[1]["job"] == "boot trixie amd64 live" and jobs[1]["cell"] == "trixie-amd64-live"
    assert jobs[1]["argv"][0] == "/usr/sbin/vmdebootstrap" and "--boot-test-only" in jobs[1]["argv"]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["configs", "matrix.yml"]  # nothing written
