"""A resumable experiment: count to `target`, one step every `interval` seconds.

    dbdict run examples.count.experiment target=50 interval=0.1

It checkpoints after every step with `save_and_switch()`; sent SIGTERM (or
Ctrl-C) it saves and returns INCOMPLETE, and running the same command again
continues from the saved count. `state.runs` counts how many times it started.
"""

from __future__ import annotations

import time

from dbdict_celery import DD, Channel


def experiment(state: DD, channel: Channel) -> bool | None:
    """Count from the saved `count` (0 at first) up to `target`."""
    target = int(state.get("target", 10))
    interval = float(state.get("interval", 0.1))
    state.count = int(state.get("count", 0))
    state.runs = int(state.get("runs", 0)) + 1
    while state.count < target:
        time.sleep(interval)
        state.count += 1
        print(f"step {state.count}", flush=True)
        if channel.save_and_switch() == "stop":
            return channel.INCOMPLETE
    state.result = state.count * state.get("scale", 1)
    return channel.COMPLETE
