"""run.Runner on harmless real commands, run.FakeRunner, and describe_status."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from vmdebootstrap import run
from vmdebootstrap.errors import BuildError, Interrupted
from vmdebootstrap.run import CommandFailed, Result, Runner, command_failure, describe_status

from .fakes import FakeRunner


def test_true_succeeds() -> None:
    assert Runner().run(["true"]) == Result(0, "")


def test_false_raises_command_failed() -> None:
    with pytest.raises(CommandFailed) as info:
        Runner().run(["false"])
    exc = info.value
    assert exc.argv == ["false"]
    assert exc.returncode == 1
    assert exc.tail == []
    assert str(exc) == "command failed (exit status 1): false"


def test_check_false_returns_the_status() -> None:
    assert Runner().run(["false"], check=False).returncode == 1


def test_failure_carries_argv_status_and_tail_of_stdout_and_stderr() -> None:
    script = "echo a; echo b >&2; exit 3"
    with pytest.raises(CommandFailed) as info:
        Runner().run(["sh", "-c", script])
    exc = info.value
    assert exc.argv == ["sh", "-c", script]
    assert exc.returncode == 3
    assert exc.tail == ["a", "b"]
    assert str(exc) == "command failed (exit status 3): sh -c 'echo a; echo b >&2; exit 3'"


def test_tail_keeps_only_the_last_lines() -> None:
    with pytest.raises(CommandFailed) as info:
        Runner().run(["sh", "-c", "seq 1 100; exit 1"])
    assert info.value.tail == [str(n) for n in range(100 - run.TAIL_LINES + 1, 101)]


def test_capture_and_on_line() -> None:
    seen: list[str] = []
    result = Runner(on_line=seen.append).run(["sh", "-c", "echo a; echo b >&2"], capture=True)
    assert result.returncode == 0
    assert result.output == "a\nb\n"
    assert result.lines == ["a", "b"]
    assert seen == ["a", "b"]


def test_without_capture_no_output_is_kept() -> None:
    assert Runner().run(["echo", "hello"]).output == ""


def test_input_goes_to_stdin() -> None:
    result = Runner().run(["cat"], input="user:s3cret\n", capture=True)
    assert result.output == "user:s3cret\n"


def test_stdin_is_empty_without_input() -> None:
    # No terminal to read from: a command that reads stdin gets EOF at once.
    assert Runner().run(["cat"], capture=True).output == ""


def test_environment_is_built_from_scratch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FOO", "bar")
    monkeypatch.setenv("http_proxy", "http://proxy.example:3128")
    monkeypatch.setenv("LC_ALL", "de_DE.UTF-8")
    monkeypatch.setenv("DEBIAN_FRONTEND", "dialog")
    result = Runner().run(["env"], capture=True)
    env = dict(line.split("=", 1) for line in result.lines)
    assert "FOO" not in env
    assert env["http_proxy"] == "http://proxy.example:3128"
    assert env["LC_ALL"] == "C.UTF-8"
    assert env["DEBIAN_FRONTEND"] == "noninteractive"
    assert env["DEBCONF_NONINTERACTIVE_SEEN"] == "true"


def test_extra_env_and_cwd(tmp_path: Path) -> None:
    result = Runner().run(["sh", "-c", 'echo "$ROOTDIR"; pwd'], env={"ROOTDIR": "/r"}, cwd=str(tmp_path),
                          capture=True)
    assert result.lines == ["/r", str(tmp_path)]


def test_command_env_direct(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_PROXY", "localhost")
    monkeypatch.setenv("SECRET_TOKEN", "x")
    env = run.command_env({"EXTRA": "1"})
    assert env["NO_PROXY"] == "localhost" and env["EXTRA"] == "1"
    assert "SECRET_TOKEN" not in env
    assert set(env) == set(run.BASE_ENV) | {"NO_PROXY", "EXTRA"} | {
        k for k in run.PASSTHROUGH if k in os.environ}


def test_missing_program_is_127() -> None:
    with pytest.raises(CommandFailed) as info:
        Runner().run(["/nonexistent/vmdebootstrap-no-such-tool", "x"])
    assert info.value.returncode == 127
    assert info.value.tail == ["/nonexistent/vmdebootstrap-no-such-tool: not found"]
    assert "command not found" in str(info.value)


def test_killed_command() -> None:
    with pytest.raises(CommandFailed) as info:
        Runner().run(["sh", "-c", "kill -KILL $$"])
    assert info.value.returncode == -signal.SIGKILL
    assert "killed by SIGKILL" in str(info.value)


@pytest.mark.parametrize(
    ("code", "text"),
    [
        (0, "exit status 0"),
        (1, "exit status 1"),
        (127, "exit status 127: command not found, or its interpreter is missing"),
        (126, "exit status 126: not executable"),
        (-9, "killed by SIGKILL"),
        (-15, "killed by SIGTERM"),
        (-2, "killed by SIGINT"),
        (-200, "killed by signal 200"),
    ],
)
def test_describe_status(code: int, text: str) -> None:
    assert describe_status(code) == text


# -- FakeRunner -------------------------------------------------------------------------------------------------


def test_fake_runner_records_and_responds(tmp_path: Path) -> None:
    def responder(argv: list[str]) -> Result | None:
        if argv[-1] == "--show":
            return Result(0, "bash\t5.2\n")
        if argv[0] == "false":
            return Result(1, "nope\n")
        return None

    fake = FakeRunner(responder)
    assert fake.run(["dpkg-query", "--show"], chroot=tmp_path, capture=True).output == "bash\t5.2\n"
    assert fake.run(["chpasswd"], chroot=tmp_path, input="a:b\n").returncode == 0
    with pytest.raises(CommandFailed) as info:
        fake.run(["false"])
    assert info.value.tail == ["nope"]
    assert fake.run(["false"], check=False).returncode == 1
    assert fake.calls == [["chroot", str(tmp_path), "dpkg-query", "--show"], ["chroot", str(tmp_path), "chpasswd"],
                          ["false"], ["false"]]
    assert fake.inputs == [None, "a:b\n", None, None]
    assert fake.commands("chpasswd") == [["chpasswd"]]
    assert fake.commands("dpkg-query") == [["dpkg-query", "--show"]]
    assert fake.commands("false") == [["false"], ["false"]]


def test_last_lines_are_what_a_terminal_shows() -> None:
    failed = CommandFailed(["x"], 1, ["one", "\x1b[2K\x1b[1Atwo\r", "", "\x1b]0;title\x07three", " \t ",
                                      *map(str, range(12))])
    assert failed.last_lines(4) == ["8", "9", "10", "11"]
    assert failed.last_lines(15)[:3] == ["one", "two", "three"]


def test_the_failed_command_is_found_behind_the_error() -> None:
    failed = CommandFailed(["x"], 1, ["words"])
    try:
        try:
            raise failed
        except CommandFailed as exc:
            raise BuildError("step failed") from exc
    except BuildError as outer:
        assert command_failure(outer) is failed
    assert command_failure(BuildError("no command")) is None


def test_stopping_a_command_waits_for_its_whole_process_group(tmp_path: Path) -> None:
    """The leader dies at SIGTERM; a child of its group that is still finishing a file
    (tar's compressor child inside creat()) is waited for, so nothing appears afterwards."""
    made, ready = tmp_path / "made-late", tmp_path / "ignoring-sigterm"
    script = f'(trap "" TERM; touch {ready}; sleep 0.5; touch {made}) & exec sleep 100'
    proc = subprocess.Popen(["sh", "-c", script], start_new_session=True, text=True)
    # The background child exists and ignores SIGTERM (a fixed 0.2 s was not enough under
    # make check's load: the child had not set its trap yet, and SIGTERM ended it).
    while not ready.exists():
        time.sleep(0.01)
    run.stop_process_group(proc)
    assert made.exists()  # waited for: it was made before stop_process_group returned
    assert run.live_members(proc.pid) == []


def test_a_group_that_outlives_the_grace_is_killed(tmp_path: Path) -> None:
    ready = tmp_path / "ignoring-sigterm"
    script = f'(trap "" TERM; touch {ready}; exec sleep 100) & exec sleep 100'
    proc = subprocess.Popen(["sh", "-c", script], start_new_session=True, text=True)
    while not ready.exists():
        time.sleep(0.01)
    run.stop_process_group(proc, grace=0.5)
    assert run.live_members(proc.pid) == []


def test_a_signal_while_a_command_starts_stops_that_command(monkeypatch: pytest.MonkeyPatch,
                                                            tmp_path: Path) -> None:
    """The signal handler's exception is held while Popen waits for the exec, then raised
    with the command in hand: it is stopped, not left running (the fault campaign's
    SIGINT as tar appeared left tar writing the partial tarball)."""
    started: list[subprocess.Popen[str]] = []
    real_popen = subprocess.Popen

    def popen_interrupted_at_exec(*args: object, **kwargs: object) -> subprocess.Popen[str]:
        proc = real_popen(*args, **kwargs)  # type: ignore[call-overload]
        started.append(proc)
        run.interrupt(Interrupted(signal.SIGINT))  # what main's handler does, here held
        return proc

    monkeypatch.setattr(run.subprocess, "Popen", popen_interrupted_at_exec)
    with pytest.raises(Interrupted):
        Runner().run(["sh", "-c", f"sleep 0.3; touch {tmp_path / 'late'}; sleep 100"])
    assert started and started[0].returncode is not None  # stopped and reaped
    assert run.live_members(started[0].pid) == []
    time.sleep(0.5)
    assert not (tmp_path / "late").exists()


def test_a_signal_while_a_missing_program_starts_wins_over_not_found(monkeypatch: pytest.MonkeyPatch) -> None:
    def popen_interrupted_then_missing(*_args: object, **_kwargs: object) -> subprocess.Popen[str]:
        run.interrupt(Interrupted(signal.SIGTERM))
        raise FileNotFoundError("no-such-program")

    monkeypatch.setattr(run.subprocess, "Popen", popen_interrupted_then_missing)
    with pytest.raises(Interrupted):
        Runner().run(["no-such-program"])


def test_outside_a_start_interrupt_raises_at_once() -> None:
    with pytest.raises(Interrupted):
        run.interrupt(Interrupted(signal.SIGINT))
    Runner().run(["true"])  # nothing held over from before


def test_group_members_are_found_by_their_pgid_in_our_pid_namespace(tmp_path: Path) -> None:
    """In the build, /proc is the host's: stat gives host numbers, NSpgid ours."""
    proc = tmp_path / "proc"
    (proc / "self").mkdir(parents=True)
    (proc / "self/status").write_text("Name:\tpython3\nNSpid:\t900\t1\n")  # one namespace below /proc's
    processes = {
        "1001": "State:\tS (sleeping)\nNSpid:\t1001\t7\nNSpgid:\t1001\t7\n",  # the leader: ours
        "1002": "State:\tD (disk sleep)\nNSpid:\t1002\t8\nNSpgid:\t1001\t7\n",  # its child, in creat()
        "1003": "State:\tZ (zombie)\nNSpid:\t1003\t9\nNSpgid:\t1001\t7\n",  # reaped by nobody: not waited for
        "7": "State:\tS (sleeping)\nNSpid:\t7\nNSpgid:\t7\n",  # host group 7: not ours
        "1004": "State:\tR (running)\nNSpid:\t1004\t10\nNSpgid:\t1004\t10\n",  # another of our groups
    }
    for pid, status in processes.items():
        (proc / pid).mkdir()
        (proc / pid / "status").write_text(status)
    assert sorted(run.live_members(7, proc)) == [1001, 1002]
    assert run.live_members(10, proc) == [1004]
