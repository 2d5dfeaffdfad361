"""Cleanup machinery: mounts, deletion that never crosses a mount, staging, chroot paths,
undo order, fault injection and stale work directories."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from pathlib import Path

import pytest

from vmdebootstrap import chroot, faults, mounts, publish, workspace
from vmdebootstrap.errors import BuildError
from vmdebootstrap.publish import Outputs
from vmdebootstrap.run import Result

from .conftest import MakeContext
from .fakes import FakeRunner


def mountinfo(*points: str) -> str:
    """A synthetic /proc/self/mountinfo listing ``points`` (already escaped)."""
    lines = ["22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw"]
    for number, point in enumerate(points, start=30):
        lines.append(f"{number} 22 0:{number} / {point} rw,nosuid shared:{number} - tmpfs tmpfs rw")
    return "\n".join(lines) + "\n"


# -- mounts_below / safe_rmtree -------------------------------------------------------------------------


def test_mount_points_parses_and_unescapes() -> None:
    text = mountinfo("/tmp/my\\040dir", "/tmp/tab\\011x", "/tmp/back\\134slash", "/tmp/nl\\012y")
    assert mounts.mount_points(lambda: text) == ["/", "/tmp/my dir", "/tmp/tab\tx", "/tmp/back\\slash",
                                                 "/tmp/nl\ny"]


def test_mounts_below_deepest_first(tmp_path: Path) -> None:
    base = str(tmp_path / "work")
    text = mountinfo(f"{base}/root", f"{base}/root/proc", f"{base}/root/dev/pts", f"{base}/root/dev",
                     f"{base}/root/sys", "/elsewhere", f"{base}-other", f"{base}/root/dev/pts")
    found = mounts.mounts_below(base, lambda: text)
    assert sorted(found) == sorted({f"{base}/root", f"{base}/root/proc", f"{base}/root/dev/pts",
                                    f"{base}/root/dev", f"{base}/root/sys"})
    depths = [p.count("/") for p in found]
    assert depths == sorted(depths, reverse=True)
    assert found[0] == f"{base}/root/dev/pts" and found[-1] == f"{base}/root"
    assert found.index(f"{base}/root/dev/pts") < found.index(f"{base}/root/dev")


def test_mounts_below_includes_the_path_itself_and_escaped_names(tmp_path: Path) -> None:
    base = tmp_path / "with space"
    escaped = str(base).replace(" ", "\\040")
    assert mounts.mounts_below(base, lambda: mountinfo(escaped)) == [str(base)]
    assert mounts.mounts_below(base, lambda: mountinfo(escaped + "/proc")) == [f"{base}/proc"]


def test_mounts_below_follows_symlinks_of_the_path(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "link"
    link.symlink_to(real)
    assert mounts.mounts_below(link, lambda: mountinfo(f"{real}/proc")) == [f"{real}/proc"]


def make_tree(path: Path) -> None:
    (path / "root/dev").mkdir(parents=True)
    (path / "root/etc").mkdir()
    (path / "root/etc/hostname").write_text("x\n")


@pytest.mark.parametrize("below", ["", "/root", "/root/dev", "/root/dev/pts"])
def test_safe_rmtree_refuses_with_a_mount_at_or_below(tmp_path: Path, below: str) -> None:
    work = tmp_path / "work"
    make_tree(work)
    text = mountinfo(f"{work}{below}")
    with pytest.raises(BuildError) as info:
        mounts.safe_rmtree(work, reader=lambda: text)
    assert str(info.value) == f"refusing to delete {work}: {work}{below} is still mounted"
    assert (work / "root/etc/hostname").read_text() == "x\n"


def test_safe_rmtree_deletes_when_nothing_is_mounted_below(tmp_path: Path) -> None:
    work = tmp_path / "work"
    make_tree(work)
    # A mount beside the tree (same prefix, different directory) does not count.
    mounts.safe_rmtree(work, reader=lambda: mountinfo(f"{work}-other", f"{tmp_path}/workroot", "/proc"))
    assert not work.exists()
    assert tmp_path.exists()


def test_safe_rmtree_missing_path_and_files(tmp_path: Path) -> None:
    mounts.safe_rmtree(tmp_path / "absent", reader=lambda: "")
    target = tmp_path / "file"
    target.write_text("")
    mounts.safe_rmtree(target, reader=lambda: "")
    assert not target.exists()


def test_safe_rmtree_removes_a_symlink_not_its_target(tmp_path: Path) -> None:
    keep = tmp_path / "keep"
    keep.mkdir()
    (keep / "precious").write_text("data")
    link = tmp_path / "link"
    link.symlink_to(keep)
    mounts.safe_rmtree(link, reader=lambda: "")
    assert not link.is_symlink()
    assert (keep / "precious").read_text() == "data"


# -- mount / unmount with a FakeRunner ------------------------------------------------------------------


def test_mount_argv_and_unmount_registered() -> None:
    runner = FakeRunner()
    with contextlib.ExitStack() as stack:
        mounts.mount(runner, stack, "proc", "/t/proc", fstype="proc", options="nosuid,nodev")
        mounts.mount(runner, stack, "/src", "/t/src", bind=True)
        assert runner.calls == [["mount", "-t", "proc", "-o", "nosuid,nodev", "proc", "/t/proc"],
                                ["mount", "--bind", "/src", "/t/src"]]
    assert runner.calls[2:] == [["umount", "/t/src"], ["umount", "/t/proc"]]


@pytest.mark.parametrize("fail", [False, True])
def test_unmounts_run_in_reverse_order(fail: bool) -> None:
    runner = FakeRunner()
    targets = ["/t/root", "/t/root/proc", "/t/root/dev", "/t/root/dev/pts", "/t/root/run"]
    with contextlib.suppress(BuildError), contextlib.ExitStack() as stack:
        for target in targets:
            mounts.mount(runner, stack, "tmpfs", target, fstype="tmpfs")
        if fail:
            raise BuildError("a step failed")
    mounted = [c[-1] for c in runner.calls if c[0] == "mount"]
    unmounted = [c[-1] for c in runner.calls if c[0] == "umount"]
    assert mounted == targets
    assert unmounted == list(reversed(targets))


def test_failed_mount_is_not_unmounted() -> None:
    runner = FakeRunner(lambda argv: Result(32, "mount: denied") if argv[-1] == "/t/b" else None)
    with pytest.raises(BuildError), contextlib.ExitStack() as stack:
        mounts.mount(runner, stack, "x", "/t/a")
        mounts.mount(runner, stack, "x", "/t/b")
    assert [c for c in runner.calls if c[0] == "umount"] == [["umount", "/t/a"]]


def test_unmount_retries_then_detaches_lazily(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mounts.time, "sleep", lambda _: None)
    runner = FakeRunner(lambda argv: Result(32, "target is busy") if argv == ["umount", "/t/busy"] else None)
    mounts.unmount(runner, "/t/busy")
    assert runner.calls == [["umount", "/t/busy"], ["umount", "/t/busy"], ["umount", "--lazy", "/t/busy"]]


def test_unmount_second_try_succeeds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mounts.time, "sleep", lambda _: None)
    attempts: list[int] = []

    def busy_once(argv: list[str]) -> Result | None:
        if argv[0] == "umount":
            attempts.append(1)
            return Result(32, "") if len(attempts) == 1 else None
        return None

    runner = FakeRunner(busy_once)
    mounts.unmount(runner, "/t/x")
    assert runner.calls == [["umount", "/t/x"], ["umount", "/t/x"]]


def test_unmount_below_deepest_first(tmp_path: Path) -> None:
    runner = FakeRunner()
    text = mountinfo(f"{tmp_path}/root", f"{tmp_path}/root/dev/pts", f"{tmp_path}/root/dev")
    done = mounts.unmount_below(runner, tmp_path, reader=lambda: text)
    assert done == [f"{tmp_path}/root/dev/pts", f"{tmp_path}/root/dev", f"{tmp_path}/root"]
    assert runner.calls == [["umount", p] for p in done]


def test_unmount_below_keeps_the_image_mounts_a_hook_found(tmp_path: Path) -> None:
    root = f"{tmp_path}/root"
    before = mountinfo(root, f"{root}/boot")
    ours = mounts.stacked_mounts_below(tmp_path, reader=lambda: before)
    # The hook mounted proc, and a second filesystem on top of /boot.
    after = mountinfo(root, f"{root}/boot", f"{root}/proc", f"{root}/boot")
    runner = FakeRunner()
    done = mounts.unmount_below(runner, tmp_path, reader=lambda: after, keep=ours)
    assert sorted(done) == sorted([f"{root}/proc", f"{root}/boot"])
    assert runner.calls == [["umount", p] for p in done]


# -- processes left inside the chroot ----------------------------------------------------------------


def fake_proc(tmp_path: Path, own_nspid: str, processes: dict[str, tuple[Path, str]]) -> Path:
    """A /proc with ``self/status`` and, per PID, a ``root`` link and an NSpid line."""
    proc = tmp_path / "proc"
    (proc / "self").mkdir(parents=True)
    (proc / "self/status").write_text(f"Name:\tpython3\nNSpid:\t{own_nspid}\n")
    for pid, (root, nspid) in processes.items():
        (proc / pid).mkdir()
        (proc / pid / "root").symlink_to(root)
        (proc / pid / "status").write_text(f"Name:\tsleep\nNSpid:\t{nspid}\n")
    return proc


def test_processes_in_the_chroot_are_named_by_our_namespace_pids(tmp_path: Path) -> None:
    # The build is PID 1 of its own namespace but reads the host's /proc: the host PID
    # 15642 is PID 37 to it, and only 37 reaches the process with kill().
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    proc = fake_proc(tmp_path, "15000\t1", {
        "15642": (root, "15642\t37"),
        "15650": (root / "sub", "15650\t41"),
        "15700": (Path("/"), "15700\t44"),  # not in the chroot
        "900": (root, "900"),  # in the chroot but outside our namespace: not ours
    })
    assert sorted(mounts.processes_rooted_in(root, proc)) == [37, 41]


def test_processes_in_the_chroot_without_namespaces(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    proc = fake_proc(tmp_path, "15000", {"15642": (root, "15642")})
    assert mounts.processes_rooted_in(root, proc) == [15642]


def test_kill_processes_in_signals_the_translated_pids(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "root"
    root.mkdir()
    proc = fake_proc(tmp_path, "15000\t1", {"15642": (root, "15642\t37")})
    killed: list[tuple[int, int]] = []
    monkeypatch.setattr(mounts.os, "kill", lambda pid, sig: killed.append((pid, sig)))
    monkeypatch.setattr(mounts.time, "sleep", lambda _: None)
    assert mounts.kill_processes_in(root, proc) == [37]
    assert killed == [(37, 9)]


def test_api_filesystems_mount_and_unmount_in_reverse(make_context: MakeContext,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)  # no device nodes
    ctx, runner = make_context()
    with pytest.raises(BuildError), chroot.api_filesystems(ctx):
        assert [c[-1] for c in runner.calls] == [str(ctx.root / p) for p in ("proc", "sys", "dev", "dev/pts", "run")]
        raise BuildError("inside")
    mounted = [c[-1] for c in runner.calls if c[0] == "mount"]
    unmounted = [c[-1] for c in runner.calls if c[0] == "umount"]
    assert unmounted == list(reversed(mounted))
    dev = next(c for c in runner.calls if c[-1] == str(ctx.root / "dev"))
    assert dev[:3] == ["mount", "-t", "tmpfs"]  # never the host's devtmpfs
    assert not [c for c in runner.calls if "devtmpfs" in c]


def test_daemons_blocked(make_context: MakeContext) -> None:
    ctx, runner = make_context()
    root = ctx.root
    ssd = root / "sbin/start-stop-daemon"
    ssd.parent.mkdir(parents=True)
    ssd.write_text("real")
    policy = root / chroot.POLICY_RC_D
    policy.parent.mkdir(parents=True)
    policy.write_text("the image's own policy")
    with chroot.daemons_blocked(ctx):
        assert policy.read_text() == chroot.POLICY_SCRIPT
        assert os.stat(policy).st_mode & 0o777 == 0o755
        assert ssd.read_text() == chroot.FAKE_SSD
        assert runner.calls == [["chroot", str(root), "dpkg-divert", "--local", "--rename", "--add",
                                 "/sbin/start-stop-daemon"]]
    assert policy.read_text() == "the image's own policy"
    assert not ssd.exists()  # the real one comes back through dpkg-divert --remove
    assert runner.calls[-1] == ["chroot", str(root), "dpkg-divert", "--local", "--rename", "--remove",
                                "/sbin/start-stop-daemon"]


def test_daemons_blocked_cleans_up_on_error(make_context: MakeContext) -> None:
    ctx, _ = make_context()
    with pytest.raises(BuildError), chroot.daemons_blocked(ctx):
        raise BuildError("x")
    assert not (ctx.root / chroot.POLICY_RC_D).exists()


# -- publish.Outputs ---------------------------------------------------------------------------------------------


def test_staging_discards_on_exception(tmp_path: Path) -> None:
    outdir = tmp_path / "live"
    with pytest.raises(BuildError), contextlib.ExitStack() as stack:
        staging = Outputs(stack)
        staging.directory(outdir)
        staged = staging.partial(outdir / "filesystem.squashfs")
        staged.write_text("partial")
        assert staged.name == ".vmdebootstrap-partial-filesystem.squashfs"
        raise BuildError("mksquashfs failed")
    assert not outdir.exists()
    assert os.listdir(tmp_path) == []


def test_staging_keeps_an_existing_directory_and_old_outputs_on_failure(tmp_path: Path) -> None:
    outdir = tmp_path / "live"
    outdir.mkdir()
    (outdir / "filesystem.squashfs").write_text("previous build")
    with pytest.raises(BuildError), contextlib.ExitStack() as stack:
        staging = Outputs(stack)
        staging.directory(outdir)
        staging.partial(outdir / "filesystem.squashfs").write_text("partial")
        raise BuildError("x")
    assert os.listdir(outdir) == ["filesystem.squashfs"]
    assert (outdir / "filesystem.squashfs").read_text() == "previous build"


def test_staging_publishes_on_success(tmp_path: Path) -> None:
    outdir = tmp_path / "live"
    with contextlib.ExitStack() as stack:
        staging = Outputs(stack)
        staging.directory(outdir)
        staging.partial(outdir / "vmlinuz").write_text("kernel")
        staging.partial(outdir / "filesystem.squashfs").write_text("image")
        assert sorted(os.listdir(outdir)) == [".vmdebootstrap-partial-filesystem.squashfs",
                                              ".vmdebootstrap-partial-vmlinuz"]
        published = staging.publish()
    assert published == [outdir / "vmlinuz", outdir / "filesystem.squashfs"]
    assert sorted(os.listdir(outdir)) == ["filesystem.squashfs", "vmlinuz"]
    assert (outdir / "filesystem.squashfs").read_text() == "image"


def test_staging_replaces_a_stale_staged_file(tmp_path: Path) -> None:
    stale = tmp_path / ".vmdebootstrap-partial-x.tar"
    stale.write_text("left by a killed build")
    with contextlib.ExitStack() as stack:
        staged = Outputs(stack).partial(tmp_path / "x.tar")
        assert staged == stale and not staged.exists()


def test_interrupt_unwinds_staging_and_mounts_together(tmp_path: Path) -> None:
    from vmdebootstrap.errors import Interrupted

    runner = FakeRunner()
    with pytest.raises(Interrupted), contextlib.ExitStack() as stack:
        staging = Outputs(stack)
        staging.partial(tmp_path / "x.tar").write_text("partial")
        mounts.mount(runner, stack, "proc", tmp_path / "proc", fstype="proc")
        raise Interrupted(15)
    assert runner.calls[-1] == ["umount", str(tmp_path / "proc")]
    assert os.listdir(tmp_path) == []


# -- chroot.target_path / write_file ---------------------------------------------------------------------------------


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "root"
    (r / "etc/alternatives").mkdir(parents=True)
    (r / "usr/share/doc").mkdir(parents=True)
    (r / "etc/passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    return r


def test_inside_plain_path(root: Path) -> None:
    assert chroot.target_path(root, "/etc/passwd") == root / "etc/passwd"
    assert chroot.target_path(root, "etc//./passwd") == root / "etc/passwd"
    assert chroot.target_path(root, "/") == root


def test_inside_absolute_symlink_stays_inside(root: Path) -> None:
    (root / "etc/link").symlink_to("/etc/passwd")
    assert chroot.target_path(root, "/etc/link") == root / "etc/passwd"


def test_inside_absolute_directory_symlink(root: Path) -> None:
    (root / "etc/docs").symlink_to("/usr/share/doc")
    assert chroot.target_path(root, "/etc/docs/x/y") == root / "usr/share/doc/x/y"


def test_inside_relative_symlink(root: Path) -> None:
    (root / "etc/alternatives/pager").symlink_to("../../usr/share/doc/pager")
    assert chroot.target_path(root, "/etc/alternatives/pager") == root / "usr/share/doc/pager"


def test_inside_dotdot_beyond_root_stays_at_root(root: Path) -> None:
    assert chroot.target_path(root, "/../../../etc/passwd") == root / "etc/passwd"
    (root / "etc/escape").symlink_to("../../../../../../../../etc/passwd")
    assert chroot.target_path(root, "/etc/escape") == root / "etc/passwd"
    (root / "etc/up").symlink_to("../../../../..")
    assert chroot.target_path(root, "/etc/up/etc/passwd") == root / "etc/passwd"


def test_inside_chained_symlinks(root: Path) -> None:
    (root / "usr/share/doc/final").write_text("")
    (root / "a").symlink_to("/b")
    (root / "b").symlink_to("usr/share/doc")
    assert chroot.target_path(root, "/a/final") == root / "usr/share/doc/final"


def test_inside_never_escapes(root: Path) -> None:
    (root / "etc/host").symlink_to("/")
    (root / "etc/parent").symlink_to("..")
    for path in ("/etc/host/etc/passwd", "/etc/parent/../../etc/passwd", "/etc/host/../etc/passwd"):
        resolved = chroot.target_path(root, path)
        assert resolved == root / "etc/passwd", path
        assert str(resolved).startswith(str(root) + "/")


def test_inside_symlink_loop(root: Path) -> None:
    (root / "loop1").symlink_to("/loop2")
    (root / "loop2").symlink_to("/loop1")
    with pytest.raises(OSError, match="too many symlinks"):
        chroot.target_path(root, "/loop1/x")


def test_write_file_replaces_a_symlink(root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("host data\n")
    (root / "etc/hostname").symlink_to(outside)
    written = chroot.write_file(root, "/etc/hostname", "image\n", 0o600)
    assert written == root / "etc/hostname"
    assert outside.read_text() == "host data\n"
    assert not written.is_symlink() and written.read_text() == "image\n"
    assert os.stat(written).st_mode & 0o777 == 0o600


def test_write_file_through_a_directory_symlink_stays_inside(root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "hostdir"
    outside.mkdir()
    (root / "etc/conf.d").symlink_to(outside)  # absolute: means root/<outside> inside the image
    written = chroot.write_file(root, "/etc/conf.d/x.conf", "y")
    assert os.listdir(outside) == []
    assert written == root / str(outside).lstrip("/") / "x.conf"
    assert written.read_text() == "y"


def test_write_file_creates_parents(root: Path) -> None:
    written = chroot.write_file(root, "/etc/systemd/network/99-dhcp.network", "x")
    assert written == root / "etc/systemd/network/99-dhcp.network"
    assert os.stat(written).st_mode & 0o777 == 0o644


# -- fault injection --------------------------------------------------------------------------------------------------


def test_fault_injection(monkeypatch: pytest.MonkeyPatch) -> None:
    faults.maybe_inject("users")  # unset: nothing
    monkeypatch.setenv(faults.VARIABLE, "users:fail")
    with pytest.raises(BuildError, match="fault injected at step users"):
        faults.maybe_inject("users")
    faults.maybe_inject("system")  # another step: nothing
    monkeypatch.setenv(faults.VARIABLE, "users:frobnicate")
    faults.maybe_inject("users")  # unknown action: nothing
    monkeypatch.setenv(faults.VARIABLE, "")
    faults.maybe_inject("users")


def test_an_installed_copy_ignores_an_inherited_fault_variable(monkeypatch: pytest.MonkeyPatch,
                                                               tmp_path: Path) -> None:
    """The Debian package and a pip install have no tests/faults beside the package: a variable
    left in a CI job's environment must not make their builds fail (issue 23)."""
    assert faults.enabled()  # this checkout has its campaign
    monkeypatch.setattr(faults, "CAMPAIGN", tmp_path / "site-packages/tests/faults")
    monkeypatch.setenv(faults.VARIABLE, "users:fail")
    assert not faults.enabled()
    faults.maybe_inject("users")  # nothing


# -- workspace --------------------------------------------------------------------------------------------------------


def stale_dir(parent: Path, name: str) -> Path:
    path = parent / name
    (path / "root/etc").mkdir(parents=True)
    (path / "root/etc/hostname").write_text("x")
    (path / workspace.MARKER).write_text("marker\n")
    return path


def test_remove_stale_removes_unlocked_and_keeps_locked(tmp_path: Path) -> None:
    stale = stale_dir(tmp_path, "vmdebootstrap-abc123")
    busy = stale_dir(tmp_path, "vmdebootstrap-busy99")
    unmarked = tmp_path / "vmdebootstrap-nomarker"
    unmarked.mkdir()
    other = stale_dir(tmp_path, "other-abc")
    fd = os.open(busy / workspace.MARKER, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        runner = FakeRunner()
        removed = workspace.remove_stale(str(tmp_path), runner)
    finally:
        os.close(fd)
    assert removed == [stale]
    assert not stale.exists()
    assert (busy / "root/etc/hostname").exists()
    assert unmarked.exists() and other.exists()
    assert runner.calls == []


def test_remove_stale_once_the_lock_is_gone(tmp_path: Path) -> None:
    busy = stale_dir(tmp_path, "vmdebootstrap-busy")
    fd = os.open(busy / workspace.MARKER, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    assert workspace.remove_stale(str(tmp_path), FakeRunner()) == []
    os.close(fd)
    assert workspace.remove_stale(str(tmp_path), FakeRunner()) == [busy]


def test_remove_stale_ignores_a_symlinked_marker(tmp_path: Path) -> None:
    path = tmp_path / "vmdebootstrap-link"
    path.mkdir()
    (tmp_path / "target").write_text("")
    (path / workspace.MARKER).symlink_to(tmp_path / "target")
    assert workspace.remove_stale(str(tmp_path), FakeRunner()) == []
    assert path.exists()


def test_workspace_create_locks_and_removes(tmp_path: Path) -> None:
    runner = FakeRunner()
    with contextlib.ExitStack() as stack:
        path = workspace.create(str(tmp_path), runner, stack)
        assert path.parent == tmp_path and path.name.startswith(workspace.PREFIX)
        assert (path / workspace.MARKER).is_file()
        # A concurrent build must leave it alone while this one holds the lock.
        assert workspace.remove_stale(str(tmp_path), FakeRunner()) == []
        (path / "root").mkdir()
    assert not path.exists()


def test_staging_removes_every_directory_level_it_made_on_failure(tmp_path: Path) -> None:
    import contextlib

    from vmdebootstrap.publish import Outputs

    with pytest.raises(RuntimeError), contextlib.ExitStack() as stack:
        staging = Outputs(stack)
        out = staging.directory(tmp_path / "a" / "b" / "c")
        staging.partial(out / "file").write_text("partial")
        raise RuntimeError("build failed")
    assert list(tmp_path.iterdir()) == []


# -- what a SIGKILLed build staged ------------------------------------------------------------------------------


def killed_build_staging(tmp_path: Path, journal: Path) -> tuple[Path, Path]:
    """Stage like a build that is then SIGKILLed: no cleanup runs."""
    outdir = tmp_path / "out" / "live"
    (tmp_path / "out").mkdir()
    with contextlib.ExitStack() as stack:
        staging = Outputs(stack, journal)
        staging.directory(outdir)
        staged = staging.partial(outdir / "filesystem.squashfs")
        staged.write_text("half a squashfs")
        stack.pop_all()  # SIGKILL: the undo actions never run
    return outdir, staged


def test_journal_lets_the_next_build_remove_a_killed_builds_staged_outputs(tmp_path: Path) -> None:
    journal = tmp_path / "journal"
    outdir, staged = killed_build_staging(tmp_path, journal)
    assert staged.exists()
    assert publish.remove_leftovers(journal) == [staged, outdir]
    assert list((tmp_path / "out").iterdir()) == []


def test_remove_leftovers_removes_only_staged_names_and_empty_directories(tmp_path: Path) -> None:
    keep = tmp_path / "keep"
    keep.mkdir()
    (keep / "filesystem.squashfs").write_text("a published image")
    staged = keep / ".vmdebootstrap-partial-filesystem.squashfs"
    staged.write_text("partial")
    journal = tmp_path / "journal"
    journal.write_text("\n".join([
        json.dumps({"dir": str(keep)}),  # not empty: kept
        json.dumps({"file": str(keep / "filesystem.squashfs")}),  # not a staged name: kept
        json.dumps({"file": str(staged)}),
        json.dumps({"file": str(tmp_path / ".vmdebootstrap-partial-gone")}),  # already gone
        '{"file": "/tmp/trunc',  # the line a kill cut short
    ]) + "\n")
    assert publish.remove_leftovers(journal) == [staged]
    assert os.listdir(keep) == ["filesystem.squashfs"]
    assert publish.remove_leftovers(tmp_path / "no-journal") == []


def test_remove_stale_removes_the_staged_outputs_of_the_killed_build(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    stale = stale_dir(work, "vmdebootstrap-killed")
    outdir, staged = killed_build_staging(tmp_path, stale / workspace.JOURNAL)
    assert workspace.remove_stale(str(work), FakeRunner()) == [stale]
    assert not staged.exists() and not outdir.exists() and not stale.exists()
