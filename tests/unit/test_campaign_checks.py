"""The fault campaign's own checks (tests/faults/campaign.py), without a build: a cell
that writes into a cached tree is reported."""

from __future__ import annotations

from pathlib import Path

from tests.faults import campaign


def test_a_change_in_a_cached_tree_is_a_host_change(tmp_path: Path) -> None:
    probe = tmp_path / "probe.deb"
    probe.write_text("probe")
    tree = tmp_path / "shared/stages/k/root/etc"
    tree.mkdir(parents=True)
    (tree / "passwd").write_text("root:x:0:0\n")
    before = campaign.HostSnapshot.take(probe, tmp_path / "shared")
    assert campaign.HostSnapshot.take(probe, tmp_path / "shared").changes_since(before) == []
    (tree / "passwd").write_text("root:x:0:0\nintruder:x:1000:1000\n")
    (tree / "shadow").write_text("")
    changes = campaign.HostSnapshot.take(probe, tmp_path / "shared").changes_since(before)
    assert changes == [f"cached tree changed: {path}" for path in (tree, tree / "passwd", tree / "shadow")]
