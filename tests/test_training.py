"""The training loop's bookkeeping (SBNNet.run_single_epoch copies losses once per epoch)."""

import math
import warnings

import numpy as np
from sklearn.datasets import load_iris
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler

from sklearn_bnn import BinaryNetClassifier

X, Y = load_iris(return_X_y=True)
X = StandardScaler().fit_transform(X)


def test_history_keeps_every_batch_loss_and_size():
    clf = BinaryNetClassifier((16,), batch_size=32, max_iter=3, early_stopping=True, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, Y)
    n_valid = math.ceil(0.1 * len(X))
    for epoch in clf.net_.history:
        train = [b for b in epoch["batches"] if "train_loss" in b]
        valid = [b for b in epoch["batches"] if "valid_loss" in b]
        assert len(train) == epoch["train_batch_count"] == math.ceil((len(X) - n_valid) / 32)
        assert sum(b["train_batch_size"] for b in train) == len(X) - n_valid
        assert sum(b["valid_batch_size"] for b in valid) == n_valid
        losses = [b["train_loss"] for b in train]
        assert all(isinstance(loss, float) and math.isfinite(loss) for loss in losses)
        mean = np.average(losses, weights=[b["train_batch_size"] for b in train])
        assert epoch["train_loss"] == mean
