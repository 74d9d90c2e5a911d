"""The optimize benchmark's experiments: a function with a known optimum, and learning
curves whose end is known from their start only roughly, as a real training's is."""

from __future__ import annotations

import math
import time

from dbdict_celery import DD, Channel

# The 6-dimensional Hartmann function on [0, 1]^6: four Gaussian wells, the deepest -3.32237.
HARTMANN_MINIMUM = -3.32237
_ALPHA = (1.0, 1.2, 3.0, 3.2)
_A = (
    (10, 3, 17, 3.5, 1.7, 8),
    (0.05, 10, 17, 0.1, 8, 14),
    (3, 3.5, 1.7, 10, 17, 8),
    (17, 8, 0.05, 10, 0.1, 14),
)
_P = (
    (0.1312, 0.1696, 0.5569, 0.0124, 0.8283, 0.5886),
    (0.2329, 0.4135, 0.8307, 0.3736, 0.1004, 0.9991),
    (0.2348, 0.1451, 0.3522, 0.2883, 0.3047, 0.6650),
    (0.4047, 0.8828, 0.8732, 0.5743, 0.1091, 0.0381),
)
HARTMANN_SPACE = [f"x{i}=uniform(0.0, 1.0)" for i in range(6)]


def hartmann6(x: list[float]) -> float:
    """The function's value at `x` (six numbers in [0, 1])."""
    return -sum(
        alpha * math.exp(-sum(a * (xj - p) ** 2 for a, xj, p in zip(row, x, well, strict=True)))
        for alpha, row, well in zip(_ALPHA, _A, _P, strict=True)
    )


def hartmann(state: DD, channel: Channel) -> None:
    """One evaluation, its value kept as `state.value`."""
    state.value = hartmann6([float(state[f"x{i}"]) for i in range(6)])


CURVE_SPACE = ["lr=loguniform(1e-4, 1.0)", "alpha=uniform(0.0, 1.0)"]


def final_loss(lr: float, alpha: float) -> float:
    """Where a curve ends: best at lr = 1e-2 and alpha = 0.3."""
    return 0.1 + 0.05 * (math.log10(lr) + 2) ** 2 + (alpha - 0.3) ** 2


def curve_loss(lr: float, alpha: float, epoch: int) -> float:
    """The loss after `epoch` epochs (from 1): it falls from about 2 towards its end, faster
    for larger lr, so that early leaders are not always the final ones."""
    speed = 0.3 + 0.2 * (math.log10(lr) + 4) / 4
    return final_loss(lr, alpha) + 2.0 * math.exp(-speed * (epoch - 1))


def training(state: DD, channel: Channel) -> bool | None:
    """`epochs` epochs of `pause` seconds each, the loss reported and saved after each;
    stops, saved, when asked."""
    lr, alpha = float(state.lr), float(state.alpha)
    epoch = int(state.get("epoch", 0))
    while epoch < int(state.epochs):
        if channel.switch() == "stop":
            return channel.INCOMPLETE
        time.sleep(float(state.pause))
        epoch += 1
        state.epoch, state.loss = epoch, curve_loss(lr, alpha, epoch)
        channel.report(epoch, loss=state.loss)
        channel.save()
    return channel.COMPLETE
