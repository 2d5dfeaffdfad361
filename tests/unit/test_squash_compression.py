"""The squashfs compressor: the default by target release, and levels on mksquashfs's command line."""

from __future__ import annotations

from pathlib import Path

from vmdebootstrap import values
from vmdebootstrap.outputs import squash
from vmdebootstrap.settings import Settings

from .conftest import MakeSettings


def compression(settings: Settings) -> str:
    return str(settings.squash_compression)


def test_default_is_zstd_9_where_the_kernel_reads_it_and_xz_before(make_settings: MakeSettings) -> None:
    assert compression(make_settings("--distribution", "bookworm")) == "zstd:9"
    assert compression(make_settings("--distribution", "trixie")) == "zstd:9"
    assert compression(make_settings("--distribution", "bullseye")) == "xz"
    assert compression(make_settings("--distribution", "bullseye", "--squash-compression", "lz4")) == "lz4"


def test_level_goes_to_mksquashfs() -> None:
    argv = squash.squashfs_argv(Path("/r"), Path("/o"), values.release_compression("zstd:19"))
    assert argv[argv.index("-comp"):argv.index("-comp") + 4] == ["-comp", "zstd", "-Xcompression-level", "19"]
    assert "-Xcompression-level" not in squash.squashfs_argv(Path("/r"), Path("/o"), values.release_compression("xz"))
