"""The chaos suite's experiment: short counting jobs that leave a trace outside the table.

Each step appends `ID RUN_ID STEP` to the shared side-effect file (one small
O_APPEND write, so lines of concurrent runs never mix), so a job whose work
runs twice shows it there whatever its row says, and reports the step as the
point `progress` of its curve. Two jobs in three save
after every step (checkpointing); the third never saves, so it starts over
after a kill and shows that a kill is survived without any save.
"""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import time

from dbdict_celery import DD, Channel


def steps_of(n: int) -> int:
    """How many steps job `n` counts: 2 to 4."""
    return 2 + n % 3


def checkpoints(n: int) -> bool:
    """Whether job `n` saves after each step."""
    return n % 3 != 2


def behaviour(n: int, hostile: bool) -> str:
    """How job `n` behaves: politely, or (in a hostile workload) one of the ways users'
    experiments misbehave: never listening for a stop, leaving a child process running,
    computing with a process pool."""
    return HOSTILE[n % len(HOSTILE)] if hostile else "polite"


HOSTILE = ("polite", "runaway", "spawner", "pool")


def counter(state: DD, channel: Channel) -> bool | None:
    """Counts to `steps_of(n)` from its last save, a step every `pause` seconds, behaving as
    `behaviour` says."""
    n = int(state.n)
    kind = behaviour(n, bool(state.get("hostile", False)))
    step = int(state.get("step", 0))
    if kind == "spawner":  # never waited for: its worker must kill it
        subprocess.Popen(["sleep", "1000"], env={**os.environ, "CHAOS_CHILD": str(state.ledger)})
    while step < steps_of(n):
        if kind != "runaway" and channel.switch() == "stop":
            return channel.INCOMPLETE
        time.sleep(float(state.pause))
        if kind == "pool":
            with multiprocessing.get_context("fork").Pool(2) as pool:
                pool.map(abs, range(4))
        step += 1
        with open(state.ledger, "a", encoding="utf-8") as ledger:
            ledger.write(f"{state.dbdict.id} {state.dbdict.run_id} {step}\n")
        channel.report(step, progress=step)
        state.step = step
        if checkpoints(n):
            channel.save()
    with open("result.txt", "w", encoding="utf-8") as result:  # in the job's files
        result.write(f"{state.dbdict.run_id} {step}\n")
    return channel.COMPLETE
