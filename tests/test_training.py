"""The training loop's bookkeeping (SBNNet.run_single_epoch copies losses once per epoch)."""

import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.datasets import load_iris
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler

from sklearn_bnn import BinaryNetClassifier, BinaryNetRegressor
from sklearn_bnn._training import (
    LOSSES,
    VALID_LOSSES,
    mean_cross_entropy,
    mean_squared_loss,
    squared_loss,
)

X, Y = load_iris(return_X_y=True)
X = StandardScaler().fit_transform(X)


def _fit(est, X, y, **fit_params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y, **fit_params)


# the 1-bit network's validation score gives the validation loss too (no skorch pass); the
# deterministic surrogate's loss is not the 1-bit network's, so skorch's pass runs
@pytest.mark.parametrize("surrogate, skorch_pass", [("binary", False), ("deterministic", True)])
def test_history_keeps_every_batch_loss_and_size(surrogate, skorch_pass):
    clf = BinaryNetClassifier(
        (16,), surrogate=surrogate, batch_size=32, max_iter=3, early_stopping=True,
        random_state=0,
    )  # fmt: skip
    _fit(clf, X, Y)
    n_valid = math.ceil(0.1 * len(X))
    for epoch in clf.net_.history:
        train = [b for b in epoch["batches"] if "train_loss" in b]
        valid = [b for b in epoch["batches"] if "valid_loss" in b]
        assert len(train) == epoch["train_batch_count"] == math.ceil((len(X) - n_valid) / 32)
        assert sum(b["train_batch_size"] for b in train) == len(X) - n_valid
        assert sum(b["valid_batch_size"] for b in valid) == (n_valid if skorch_pass else 0)
        assert ("valid_batch_count" in epoch) == skorch_pass
        assert math.isfinite(epoch["valid_loss"]) and "valid_loss_best" in epoch
    # the flags of skorch's PassthroughScoring: lowest of this fit so far; a second fit
    # (warm start) starts its own record
    clf.set_params(warm_start=True)
    _fit(clf, X, Y)
    for key in ("train_loss", "valid_loss"):
        for fit_rows in (clf.history_[:3], clf.history_[3:]):
            losses = [row[key] for row in fit_rows]
            best = [loss < min(losses[:i], default=np.inf) for i, loss in enumerate(losses)]
            assert [row[key + "_best"] for row in fit_rows] == best
        losses = [b["train_loss"] for b in train]
        assert all(isinstance(loss, float) and math.isfinite(loss) for loss in losses)
        mean = np.average(losses, weights=[b["train_batch_size"] for b in train])
        assert epoch["train_loss"] == mean


def _torch_valid_loss(net) -> float:
    """skorch's validation loss of the net's current module on its validation rows, in one
    batch: the training forward pass and ``get_loss`` (float32 torch)."""
    ds = net.train_split.keywords["valid_ds"]
    batch = {"X": ds.X, "offset": ds.offset, "sample_weight": ds.sample_weight}
    net.module_.eval()
    with torch.no_grad():
        return float(net.get_loss(net.module_(ds.X, mode=net._forward_mode()), ds.y, X=batch))


@pytest.mark.parametrize(
    "make",
    [
        lambda: BinaryNetClassifier(class_weight="balanced", early_stopping=True),
        lambda: BinaryNetClassifier(
            surrogate="deterministic", inference="surrogate", early_stopping=True
        ),
        lambda: BinaryNetClassifier(inference="surrogate", linear=False, early_stopping=True),
        lambda: BinaryNetRegressor(),
    ],
    ids=["classifier-weighted", "surrogate-inference", "binary-of-two-scores", "regressor"],
)
def test_validation_loss_from_the_score_pass_equals_skorchs(make):
    est = make().set_params(max_iter=1, random_state=0)
    y = Y if isinstance(est, BinaryNetClassifier) else np.c_[X[:, 0] * X[:, 1], X[:, 2]]
    _fit(est, X[:, 1:] if y.ndim == 2 else X, y)
    row = est.net_.history[-1]
    assert "valid_batch_count" not in row  # skorch's validation pass was skipped
    # one epoch: the kept weights are the scored ones
    np.testing.assert_allclose(row["valid_loss"], _torch_valid_loss(est.net_), rtol=2e-6)
    assert row["valid_loss_best"] is True


def test_numpy_validation_losses_equal_torchs():
    rng = np.random.default_rng(0)
    logits, codes, w = rng.normal(size=(50, 4)) * 30, rng.integers(0, 4, 50), rng.random(50)
    expected = F.cross_entropy(torch.tensor(logits), torch.tensor(codes), reduction="none")
    np.testing.assert_allclose(mean_cross_entropy(logits, codes), expected.mean(), rtol=1e-12)
    expected_w = (expected.numpy() * w).sum() / w.sum()
    np.testing.assert_allclose(mean_cross_entropy(logits, codes, w), expected_w, rtol=1e-12)
    out, y = rng.normal(size=(50, 3)), rng.normal(size=(50, 3))
    expected = squared_loss(torch.tensor(out), torch.tensor(y)).numpy()
    np.testing.assert_allclose(mean_squared_loss(out, y), expected.mean(), rtol=1e-12)
    np.testing.assert_allclose(mean_squared_loss(out, y, w), (expected * w).sum() / w.sum())
    assert set(VALID_LOSSES) == set(LOSSES)
