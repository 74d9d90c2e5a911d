"""The quick start's experiment: gradient descent on (x - 3)^2, one step per epoch.

    dbdict run examples.quadratic.experiment epochs=100 lr=0.1

It reports its loss at every epoch (a point of its learning curve) and saves
after every epoch with `save_and_switch()`; stopped (SIGTERM, Ctrl-C, `dbdict
cancel`) it returns INCOMPLETE, and the next run continues from the saved
epoch. `state.loss` is the result.
"""

from __future__ import annotations

from dbdict_celery import DD, Channel

OPTIMUM = 3.0


def experiment(state: DD, channel: Channel) -> bool | None:
    """Move `x` (from 0) towards the optimum for `epochs` epochs at learning rate `lr`."""
    epochs = int(state.get("epochs", 100))
    lr = float(state.get("lr", 0.1))
    state.setdefault("epoch", 0)
    state.setdefault("x", 0.0)
    while state.epoch < epochs:
        state.x -= lr * 2 * (state.x - OPTIMUM)  # one step down the gradient
        state.loss = (state.x - OPTIMUM) ** 2
        state.epoch += 1
        channel.report(state.epoch, loss=state.loss)  # a point of its learning curve
        if channel.save_and_switch() == "stop":  # SIGTERM, Ctrl-C, cancel
            return channel.INCOMPLETE  # resume later from here
    return channel.COMPLETE
