"""The process's heart: one thread beating for every run in hand."""

from __future__ import annotations

import threading
import time

from dbdict_celery.worker.heart import Heart
from tests.conftest import wait_until

BEAT = 0.05


def test_each_run_beats_at_its_own_interval_and_none_after_its_block_ends() -> None:
    """Told by the order of the beats, not by the clock: a run whose interval is longer than
    the test never beats while another beats five times; once a run's block has ended,
    another run beats five times and it beats no more."""
    heart = Heart()
    beats: list[str] = []
    with heart.beating(lambda: beats.append("hourly"), 3600):
        with heart.beating(lambda: beats.append("ended"), BEAT):
            wait_until(lambda: beats.count("ended") >= 5, "five beats of a run", timeout=30)
        ended_at = len(beats)
        with heart.beating(lambda: beats.append("later"), BEAT):
            wait_until(lambda: beats.count("later") >= 5, "five beats of a later run", 30)
    assert "hourly" not in beats, "a run beats first after its own interval"
    assert "ended" not in beats[ended_at:], "no beat after its block ended"


def test_a_beat_under_way_ends_before_its_block_does() -> None:
    heart = Heart()
    started, finished = threading.Event(), threading.Event()

    def slow_beat() -> None:
        started.set()
        time.sleep(0.3)
        finished.set()

    with heart.beating(slow_beat, BEAT):
        assert started.wait(30)
    assert finished.is_set(), "the block waited for the beat it interrupted"


def test_a_beat_that_raises_anything_leaves_the_heart_beating() -> None:
    heart = Heart()
    calls = {"n": 0}

    def exits_once() -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise SystemExit("a beat called sys.exit")

    with heart.beating(exits_once, BEAT):
        wait_until(lambda: calls["n"] >= 3, "beats after the one that raised", timeout=30)


def test_a_failing_beat_stops_neither_its_run_nor_the_others() -> None:
    heart = Heart()
    calls = {"failing": 0, "fine": 0}

    def failing() -> None:
        calls["failing"] += 1
        raise RuntimeError("the database said no")

    def fine() -> None:
        calls["fine"] += 1

    with heart.beating(failing, BEAT), heart.beating(fine, BEAT):
        wait_until(lambda: calls["failing"] >= 3 and calls["fine"] >= 3, "beats", timeout=30)
