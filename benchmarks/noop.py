"""The benchmarks' experiment: does nothing, so what is measured is the runner."""

from __future__ import annotations

from dbdict_celery import DD, Channel


def experiment(state: DD, channel: Channel) -> None:
    """Nothing at all."""
