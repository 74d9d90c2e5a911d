"""The chaos suite's experiment: short counting jobs that leave a trace outside the table.

Each step appends `ID RUN_ID STEP` to the shared side-effect file (one small
O_APPEND write, so lines of concurrent runs never mix), so a job whose work
runs twice shows it there whatever its row says. Two jobs in three save
after every step (checkpointing); the third never saves, so it starts over
after a kill and shows that a kill is survived without any save.
"""

from __future__ import annotations

import time

from dbdict_celery import DD, Channel


def steps_of(n: int) -> int:
    """How many steps job `n` counts: 2 to 4."""
    return 2 + n % 3


def checkpoints(n: int) -> bool:
    """Whether job `n` saves after each step."""
    return n % 3 != 2


def counter(state: DD, channel: Channel) -> bool | None:
    """Counts to `steps_of(n)` from its last save, a step every `pause` seconds."""
    n = int(state.n)
    step = int(state.get("step", 0))
    while step < steps_of(n):
        if channel.switch() == "stop":
            return channel.INCOMPLETE
        time.sleep(float(state.pause))
        step += 1
        with open(state.ledger, "a", encoding="utf-8") as ledger:
            ledger.write(f"{state.dbdict.id} {state.dbdict.run_id} {step}\n")
        state.step = step
        if checkpoints(n):
            channel.save()
    with open("result.txt", "w", encoding="utf-8") as result:  # in the job's files
        result.write(f"{state.dbdict.run_id} {step}\n")
    return channel.COMPLETE
