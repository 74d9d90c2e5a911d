"""Channels: status bookkeeping, stop signals, working directories and checkpoints."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any, cast

import pytest

from dbdict_celery import DD, Channel, JobRefused, RSyncChannel, SingleChannel, StandardChannel
from tests.conftest import read_conf

COMPLETE, INCOMPLETE = Channel.COMPLETE, Channel.INCOMPLETE


def returning(value: Any) -> Any:
    def experiment(state: DD, channel: Channel) -> Any:
        state.ran = True
        return value

    return experiment


def test_status_follows_the_outcome() -> None:
    done = SingleChannel(returning(COMPLETE), DD(a=1))
    assert done.run() is COMPLETE
    assert done.state.dbdict.status == Channel.DONE
    assert done.state.ran is True

    paused = SingleChannel(returning(INCOMPLETE), DD(a=1))
    assert paused.run() is INCOMPLETE
    assert paused.state.dbdict.status == Channel.START


def test_status_is_running_while_the_experiment_runs() -> None:
    seen = []

    def experiment(state: DD, channel: Channel) -> None:
        seen.append(state.dbdict.status)

    SingleChannel(experiment, DD()).run()
    assert seen == [Channel.RUNNING]


@pytest.mark.parametrize("status", [Channel.DONE, Channel.RUNNING])
def test_a_done_or_running_state_is_refused_unless_forced(status: int) -> None:
    state = DD(dbdict={"status": status})
    with pytest.raises(JobRefused, match="already"):
        SingleChannel(returning(COMPLETE), state).run()
    forced = SingleChannel(returning(COMPLETE), state)
    forced.run(force=True)
    assert forced.state.ran is True


def test_save_and_switch_returns_what_switch_returns() -> None:
    answers = []

    def experiment(state: DD, channel: Channel) -> bool:
        answers.append(channel.save_and_switch())
        cast(SingleChannel, channel).request_stop()
        answers.append(channel.save_and_switch())
        answers.append(channel())
        return channel.INCOMPLETE

    SingleChannel(experiment, DD()).run()
    assert answers == [None, "stop", "stop"]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_makes_switch_say_stop_and_handlers_are_restored(signum: int) -> None:
    def previous_handler(received: int, frame: object) -> None:
        raise AssertionError("the experiment's channel should have caught the signal")

    before = signal.signal(signum, previous_handler)
    try:
        answers = []

        def experiment(state: DD, channel: Channel) -> bool:
            answers.append(channel.switch())
            os.kill(os.getpid(), signum)
            answers.append(channel.switch())
            answers.append(channel.switch())
            return channel.INCOMPLETE

        channel = SingleChannel(experiment, DD())
        assert channel.run() is INCOMPLETE
        assert answers == [None, "stop", "stop"]
        assert signal.getsignal(signum) is previous_handler
    finally:
        signal.signal(signum, before)


def test_an_exception_is_recorded_saved_and_reraised(tmp_path: Path) -> None:
    def experiment(state: DD, channel: Channel) -> None:
        state.progress = 3
        raise KeyError("broken")

    channel = StandardChannel(str(tmp_path / "job"), experiment, DD(a=1))
    with pytest.raises(KeyError, match="broken"):
        channel.run()
    saved = read_conf(tmp_path / "job" / "current.conf")
    assert saved["dbdict.status"] == Channel.FAILED
    assert saved["progress"] == 3
    assert "KeyError: 'broken'" in saved["dbdict.error"]
    assert "Traceback" in saved["dbdict.error"]


def test_a_failed_job_can_run_again_and_the_old_error_goes(tmp_path: Path) -> None:
    attempts = []

    def flaky(state: DD, channel: Channel) -> None:
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("first try fails")

    with pytest.raises(RuntimeError):
        StandardChannel(str(tmp_path), flaky, DD()).run()
    channel = StandardChannel(str(tmp_path), flaky, DD())
    channel.run()
    saved = read_conf(tmp_path / "current.conf")
    assert saved["dbdict.status"] == Channel.DONE
    assert "dbdict.error" not in saved


def test_standard_channel_runs_in_its_workdir_and_writes_confs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    workdir = tmp_path / "deep" / "workdir"
    seen: dict[str, Any] = {}

    def experiment(state: DD, channel: Channel) -> None:
        seen["cwd"] = os.getcwd()
        state.result = 42
        channel.save()
        seen["saved"] = read_conf(workdir / "current.conf")

    StandardChannel(str(workdir), experiment, DD(lr=0.1)).run()
    assert seen["cwd"] == str(workdir)
    assert os.getcwd() == str(tmp_path)
    assert seen["saved"]["result"] == 42
    assert read_conf(workdir / "orig.conf") == {"lr": 0.1}
    final = read_conf(workdir / "current.conf")
    assert final["result"] == 42
    assert final["dbdict.status"] == Channel.DONE


def test_standard_channel_resumes_from_current_conf_and_keeps_orig_conf(tmp_path: Path) -> None:
    def count_to_three(state: DD, channel: Channel) -> bool | None:
        state.count = state.get("count", 0) + 1
        return channel.INCOMPLETE if state.count < 3 else channel.COMPLETE

    for _ in range(3):
        StandardChannel(str(tmp_path), count_to_three, DD(target=3)).run()
    final = read_conf(tmp_path / "current.conf")
    assert final["count"] == 3
    assert final["dbdict.status"] == Channel.DONE
    assert read_conf(tmp_path / "orig.conf") == {"target": 3}
    with pytest.raises(JobRefused):
        StandardChannel(str(tmp_path), count_to_three, DD(target=3)).run()


def test_redirected_output_goes_to_files_and_is_restored_even_on_error(tmp_path: Path) -> None:
    stdout, stderr = sys.stdout, sys.stderr

    def experiment(state: DD, channel: Channel) -> None:
        print("out line")
        print("err line", file=sys.stderr)
        raise RuntimeError("after output")

    channel = StandardChannel(str(tmp_path), experiment, DD(), True, True)
    with pytest.raises(RuntimeError):
        channel.run()
    assert sys.stdout is stdout
    assert sys.stderr is stderr
    assert (tmp_path / "stdout").read_text() == "out line\n"
    assert (tmp_path / "stderr").read_text() == "err line\n"


def test_rsync_channel_pushes_on_save_and_resumes_elsewhere_by_pulling(tmp_path: Path) -> None:
    exproot = tmp_path / "exproot" / "db" / "table" / "7"

    def step(state: DD, channel: Channel) -> bool | None:
        state.step = state.get("step", 0) + 1
        with open("log.txt", "a", encoding="utf-8") as log:
            log.write(f"step {state.step} in {os.getcwd()}\n")
        channel.save()
        return channel.INCOMPLETE if state.step < 2 else channel.COMPLETE

    RSyncChannel(str(tmp_path / "host_a"), str(exproot), step, DD(x=1)).run()
    assert read_conf(exproot / "current.conf")["step"] == 1
    assert (exproot / "orig.conf").exists()

    RSyncChannel(str(tmp_path / "host_b"), str(exproot), step, DD(x=1)).run()
    final = read_conf(exproot / "current.conf")
    assert final["step"] == 2
    assert final["dbdict.status"] == Channel.DONE
    log = (exproot / "log.txt").read_text().splitlines()
    assert log == [
        f"step 1 in {tmp_path / 'host_a'}",
        f"step 2 in {tmp_path / 'host_b'}",
    ]
