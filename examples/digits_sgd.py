"""A real, small training run: scikit-learn's digits, a linear classifier trained by SGD.

    pip install 'dbdict-celery[examples]'
    dbdict run examples.digits_sgd.experiment epochs=20 lr=0.01 alpha=1e-4 seed=0

The bundled digits data set (1,797 8x8 images, no download) is split 80/20 by
`seed`; each epoch is one `partial_fit` pass over the shuffled training set. After
every epoch the validation loss and accuracy are reported (`channel.report`:
the learning curves `dbdict metrics` and `dbdict plot --curves` show), the
model is written to `model.pkl` in the working directory and `save_and_switch()`
checkpoints it with the state and the curves; stopped, the run returns
INCOMPLETE, and the next one loads the model and goes on from the saved epoch.
`state.accuracy` and `state.loss` are the validation figures after the last epoch.
"""

from __future__ import annotations

import os
import pickle
from typing import Any

import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import SGDClassifier
from sklearn.metrics import log_loss
from sklearn.model_selection import train_test_split

from dbdict_celery import DD, Channel

CHECKPOINT = "model.pkl"
CLASSES = np.arange(10)


def experiment(state: DD, channel: Channel) -> bool | None:
    """Train for `epochs` epochs at learning rate `lr` with L2 penalty `alpha`."""
    epochs = int(state.setdefault("epochs", 20))
    lr = float(state.setdefault("lr", 0.01))
    alpha = float(state.setdefault("alpha", 1e-4))
    seed = int(state.setdefault("seed", 0))
    images, labels = load_digits(return_X_y=True)
    train_x, valid_x, train_y, valid_y = train_test_split(
        images / 16.0, labels, test_size=0.2, random_state=seed, stratify=labels
    )
    model = _resumed(state) or SGDClassifier(
        loss="log_loss", learning_rate="constant", eta0=lr, alpha=alpha, random_state=seed
    )
    state.setdefault("epoch", 0)
    while state.epoch < epochs:
        order = np.random.default_rng([seed, state.epoch]).permutation(len(train_y))
        model.partial_fit(train_x[order], train_y[order], classes=CLASSES)
        state.epoch += 1
        state.accuracy = float(model.score(valid_x, valid_y))
        state.loss = float(log_loss(valid_y, model.predict_proba(valid_x), labels=CLASSES))
        channel.report(state.epoch, loss=state.loss, accuracy=state.accuracy)
        _checkpoint(model)
        if channel.save_and_switch() == "stop":
            return channel.INCOMPLETE
    return channel.COMPLETE


def _resumed(state: DD) -> Any:
    """The model saved at the last checkpoint, or None on a first run."""
    if not state.get("epoch") or not os.path.exists(CHECKPOINT):
        state.epoch = 0
        return None
    with open(CHECKPOINT, "rb") as saved:
        return pickle.load(saved)  # noqa: S301 (this experiment's own file, in its own workdir)


def _checkpoint(model: SGDClassifier) -> None:
    """Write the model atomically: a stop mid-write never leaves half a checkpoint."""
    with open(f"{CHECKPOINT}.partial", "wb") as out:
        pickle.dump(model, out)
    os.replace(f"{CHECKPOINT}.partial", CHECKPOINT)
