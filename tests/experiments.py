"""Experiments used by the tests: each shows one behaviour of the runners."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from dbdict_celery import DD, Channel


def fail(state: DD, channel: Channel) -> None:
    """Checkpoints some progress, then raises."""
    state.progress = 1
    channel.save()
    raise ValueError("the experiment broke on purpose")


def noisy(state: DD, channel: Channel) -> None:
    """Writes to stdout and stderr, and records where it ran."""
    print("to stdout")
    print("to stderr", file=sys.stderr)
    state.ran_in = os.getcwd()


def noisy_fail(state: DD, channel: Channel) -> None:
    """Writes to stdout, then raises."""
    print("before failing")
    raise RuntimeError("after printing")


def write_files(state: DD, channel: Channel) -> None:
    """Leaves a file in its working directory, counting its runs there."""
    runs = int(state.get("runs", 0)) + 1
    state.runs = runs
    with open("artifact.txt", "a", encoding="utf-8") as artifact:
        artifact.write(f"run {runs}\n")
    channel.save()


def always_incomplete(state: DD, channel: Channel) -> bool:
    """Makes one step of progress per run and always asks to be resumed."""
    state.count = int(state.get("count", 0)) + 1
    channel.save()
    return channel.INCOMPLETE


def quiet(state: DD, channel: Channel) -> bool | None:
    """Runs for `seconds` without ever saving, listening for a stop."""
    import time

    deadline = time.monotonic() + float(state.seconds)
    while time.monotonic() < deadline:
        if channel.switch() == "stop":
            return channel.INCOMPLETE
        time.sleep(0.02)
    return channel.COMPLETE


def exits(state: DD, channel: Channel) -> None:
    """Calls sys.exit, as scripts turned into experiments sometimes do."""
    state.progress = 1
    channel.save()
    sys.exit(3)


def mark(state: DD, channel: Channel) -> None:
    """Appends its `n` to the file `marks` (one small O_APPEND write): counts every run."""
    with open(state.marks, "a", encoding="utf-8") as marks:
        marks.write(f"{state.n}\n")


def ignores_stop(state: DD, channel: Channel) -> None:
    """Counts to `target`, saving each step, and never listens for a stop."""
    import time

    state.runs = int(state.get("runs", 0)) + 1
    state.i = int(state.get("i", 0))
    while state.i < int(state.target):
        time.sleep(float(state.interval))
        state.i += 1
        channel.save()


def flaky(state: DD, channel: Channel) -> None:
    """Fails on its first try and succeeds on the next, counting tries in its saved state."""
    state.tries = int(state.get("tries", 0)) + 1
    channel.save()
    if state.tries < 2:
        raise RuntimeError(f"try {state.tries} fails")
    state.result = "ok"


def unstorable(state: DD, channel: Channel) -> bool | None:
    """Saves one good step, then puts a value of `kind` the table cannot keep in its state:
    saving it (`at=save`) or returning with it (`at=end`)."""
    import numpy

    values = {
        "set": {1, 2},
        "bytes": b"raw",
        "array": numpy.zeros(3),
        "int_keys": {1: "a"},
        "int_keys_in_a_list": [{1: "a"}],
        "nul": "a\x00b",
    }
    state.step = 1
    channel.save()
    state.value = values[state.kind]
    if state.at == "save":
        channel.save()
    return channel.COMPLETE


def record(state: DD, channel: Channel) -> None:
    """Records its `value` parameter as its result, as a diverged loss is recorded."""
    state.result = state.value
    channel.save()


def dies(state: DD, channel: Channel) -> None:
    """Saves a step, then kills its own process (as the out-of-memory killer would) on its
    first `deaths` runs; completes on the next."""
    state.runs = int(state.get("runs", 0)) + 1
    channel.save()
    if state.runs <= int(state.deaths):
        os._exit(1)
    state.result = "survived"


def big(state: DD, channel: Channel) -> None:
    """Saves a result of `size` characters."""
    state.blob = "x" * int(state.size)
    channel.save()


def gives_back_first(state: DD, channel: Channel) -> None:
    """Finds this machine unfit on its first run (it gives the job back), then finishes."""
    from dbdict_celery import NotRunnableHere

    if not state.get("tried"):
        state.tried = True
        raise NotRunnableHere("no GPU on this machine")
    state.result = "ran"


def busy(state: DD, channel: Channel) -> None:
    """Saves its process id, then computes forever: never calls switch(), never returns."""
    state.pid = os.getpid()
    channel.save()
    while True:
        pass


def spawns(state: DD, channel: Channel) -> None:
    """Starts a child, and a daemon that leaves its process group (setsid), saves both pids,
    then waits `seconds` (default: a long time)."""
    import subprocess
    import time

    child = subprocess.Popen(["sleep", "1000"])
    daemon = subprocess.Popen(["sleep", "1001"], start_new_session=True)
    state.pid = os.getpid()
    state.children = [child.pid, daemon.pid]
    channel.save()
    time.sleep(float(state.get("seconds", 1000)))


def _square(number: int) -> int:
    return number * number


def parallel(state: DD, channel: Channel) -> None:
    """Sums squares with the process pool `kind` names, as training code does."""
    import concurrent.futures
    import multiprocessing

    numbers = range(10)
    if state.kind in ("fork", "spawn"):
        with multiprocessing.get_context(state.kind).Pool(2) as pool:
            state.result = sum(pool.map(_square, numbers))
    elif state.kind == "executor":
        with concurrent.futures.ProcessPoolExecutor(2) as executor:
            state.result = sum(executor.map(_square, numbers))
    elif state.kind == "joblib":
        import joblib  # type: ignore[import-untyped]

        state.result = sum(joblib.Parallel(n_jobs=2)(joblib.delayed(_square)(n) for n in numbers))
    elif state.kind == "loader":  # the DataLoader pattern: workers the experiment starts
        queue: multiprocessing.Queue[int] = multiprocessing.Queue()
        workers = [multiprocessing.Process(target=_load, args=(queue, part)) for part in (0, 1)]
        for worker in workers:
            worker.start()
        state.result = sum(queue.get(timeout=60) for _ in workers)
        for worker in workers:
            worker.join()


def _load(queue: object, part: int) -> None:
    queue.put(sum(_square(n) for n in range(part, 10, 2)))  # type: ignore[attr-defined]


def idle(state: DD, channel: Channel) -> bool:
    """Asks to be run again at once, without saving anything: a job that would spin."""
    return channel.INCOMPLETE


def curve(state: DD, channel: Channel) -> bool | None:
    """Reports `loss` at steps 0 to `steps`-1, its value 1000 x its run's number + the step,
    saving at every tenth step. Each run adds a file `run-N` to the folder `marks`. At each
    step of `pauses` (once: a later run goes past it) it leaves a file `at-STEP` there and
    waits for a stop (or to be killed), then saves and returns INCOMPLETE."""
    marks = Path(state.marks)
    run = len(list(marks.glob("run-*"))) + 1
    (marks / f"run-{run}").touch()
    pauses = {int(step) for step in str(state.pauses).split()}  # a step, or "37 64"
    for step in range(int(state.get("next", 0)), int(state.steps)):
        channel.report(step, loss=1000 * run + step)
        if step % 10 == 0:
            state.next = step + 1
            channel.save()
        if step in pauses and not (marks / f"at-{step}").exists():
            (marks / f"at-{step}").touch()
            while channel.switch() != "stop":
                time.sleep(0.02)
            state.next = step + 1
            channel.save()
            return channel.INCOMPLETE
    state.result = "done"
    return channel.COMPLETE


def bowl(state: DD, channel: Channel) -> bool | None:
    """A trial with a known optimum: `loss` = (x - 0.3)^2 + (y - 0.7)^2, after `pause`
    seconds (so that trials overlap)."""
    time.sleep(float(state.get("pause", 0.2)))
    state.loss = (float(state.x) - 0.3) ** 2 + (float(state.y) - 0.7) ** 2
    return channel.COMPLETE


def descent(state: DD, channel: Channel) -> bool | None:
    """A training run for pruners: `loss` = 1 / (lr x epoch) at each epoch (a larger `lr`
    learns faster), reported and saved each epoch, `pause` seconds apart; resumes from its
    saved epoch, counting its runs in `runs`."""
    state.epoch = int(state.get("epoch", 0))
    state.runs = int(state.get("runs", 0)) + 1
    while state.epoch < int(state.epochs):
        time.sleep(float(state.get("pause", 0.1)))
        state.epoch += 1
        state.loss = 1 / (float(state.lr) * state.epoch)
        channel.report(state.epoch, loss=state.loss)
        if channel.save_and_switch() == "stop":
            return channel.INCOMPLETE
    return channel.COMPLETE


def steps(state: DD, channel: Channel) -> bool | None:
    """Takes `steps` steps of 0.1 s, calling switch() after each: told to stop, it saves the
    step it reached and asks to be resumed. Counts its runs, saved as each starts."""
    state.runs = int(state.get("runs", 0)) + 1
    state.i = int(state.get("i", 0))
    channel.save()
    while state.i < int(state.steps):
        time.sleep(0.1)
        state.i += 1
        if channel.switch() == "stop":
            state.stopped_at = state.i
            channel.save()
            return channel.INCOMPLETE
    state.result = state.i
    return channel.COMPLETE


def hoards(state: DD, channel: Channel) -> None:
    """Saves, then holds ever more memory, 20 MB each 0.05 s, up to `mb` (in this process,
    or `where=child`: in a child process)."""
    import subprocess

    state.pid = os.getpid()
    channel.save()
    if state.get("where") == "child":
        code = f"from tests.experiments import grow; grow({int(state.mb)})"
        subprocess.run([sys.executable, "-c", code], check=True)
    else:
        grow(int(state.mb))


def grow(mb: int) -> None:
    """Hold ever more memory, 20 MB each 0.05 s, up to `mb`; then wait."""
    held: list[bytes] = []
    while len(held) * 20 < mb:
        held.append(b"x" * (20 * 1024 * 1024))  # written: resident, not only reserved
        time.sleep(0.05)
    time.sleep(60)


def raises(state: DD, channel: Channel) -> None:
    """Raises `kind` (ValueError or OSError) on its first `failures` tries, then succeeds;
    counts its tries in its saved state."""
    state.tries = int(state.get("tries", 0)) + 1
    channel.save()
    if state.tries <= int(state.failures):
        raise {"ValueError": ValueError, "OSError": OSError}[state.kind](f"try {state.tries}")
    state.result = "ok"


def on_gpus(state: DD, channel: Channel) -> None:
    """Records the GPUs it was given (CUDA_VISIBLE_DEVICES, None if unset) and when it held
    them: from its start to its end, `seconds` later."""
    state.devices = os.environ.get("CUDA_VISIBLE_DEVICES")
    state.began = time.time()
    time.sleep(float(state.seconds))
    state.ended = time.time()
