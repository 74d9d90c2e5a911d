"""The benchmarks' experiment: does nothing, so what is measured is the runner."""

from __future__ import annotations

from dbdict_celery import DD, Channel


def experiment(state: DD, channel: Channel) -> None:
    """Nothing at all."""


def runaway(state: DD, channel: Channel) -> None:
    """Saves a count once, then computes forever: never calls switch(), never returns."""
    state.count = 2
    channel.save()
    while True:
        pass
