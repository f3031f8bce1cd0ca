"""Batch and thread invariance at realistic sizes, on two torch threads.

20,000 rows through hidden (512, 512), and the default hidden size: the full batch (which
the prediction splits into 8192-row chunks), other chunkings and single rows must give
bit-identical output, for every deterministic inference mode (``binary``, ``surrogate``)
and for the bit-packed export.  The real head and the softmax run in float64 with a fixed
summation order at predict time (``sklearn_bnn._training.float64_head``), so a float32
matrix product's choice of kernel by batch shape cannot reach the probabilities.
"""

import warnings

import numpy as np
import pytest
import torch
from sklearn.exceptions import ConvergenceWarning

from sklearn_bnn import BinaryNetClassifier, BinaryNetRegressor

N_ROWS, N_FEATURES = 20_000, 20
WINDOWS = ((5000, 14_000), (14_000, 14_777), (8191, 8194))  # across the 8192-row chunking
SINGLE = 25  # rows predicted one at a time


@pytest.fixture(scope="module")
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def fitted(two_threads):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((N_ROWS, N_FEATURES)).astype(np.float32)
    y = (X[:, :3].sum(1) > 0).astype(int) + (X[:, 3] > 0.5)
    clf = BinaryNetClassifier(
        (512, 512),
        surrogate="binary",
        gradient_estimator="auto",
        noise="gaussian",
        init=0.05,
        batch_size=500,
        max_iter=1,
        learning_rate_init=1e-2,
        early_stopping=False,
        device="cpu",
        random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X[:500], y[:500])
    rows = rng.choice(N_ROWS, SINGLE, replace=False)
    return clf, X, rows


def _check_windows(predict, X, full):
    for a, b in WINDOWS:
        np.testing.assert_array_equal(predict(X[a:b]), full[a:b])


@pytest.mark.parametrize("inference", ["binary", "surrogate"])
def test_full_batch_equals_chunks_and_single_rows(fitted, inference):
    clf, X, rows = fitted
    clf.set_params(inference=inference)
    assert torch.get_num_threads() == 2
    full = clf.predict_proba(X)
    _check_windows(clf.predict_proba, X, full)
    single = np.concatenate([clf.predict_proba(X[i : i + 1]) for i in rows])
    np.testing.assert_array_equal(single, full[rows])
    labels = clf.predict(X)
    np.testing.assert_array_equal(
        np.concatenate([clf.predict(X[i : i + 1]) for i in rows]), labels[rows]
    )


def test_export_is_batch_invariant_and_matches_the_estimator(fitted):
    clf, X, rows = fitted
    packed = clf.export_binary()
    full = packed.predict_proba(X)
    _check_windows(packed.predict_proba, X, full)
    single = np.concatenate([packed.predict_proba(X[i : i + 1]) for i in rows])
    np.testing.assert_array_equal(single, full[rows])
    np.testing.assert_array_equal(packed.predict(X), clf.set_params(inference="binary").predict(X))


@pytest.mark.parametrize("inference", ["binary", "surrogate"])
@pytest.mark.parametrize("cls", [BinaryNetClassifier, BinaryNetRegressor])
def test_default_size_predictions_equal_those_of_subsets(two_threads, cls, inference):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((3000, 12))
    y = X[:, 0] + X[:, 1] * X[:, 2] > 0
    est = cls(max_iter=2, inference=inference, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X[:600], y[:600].astype(float) if cls is BinaryNetRegressor else y[:600])
    default = (384,) if cls is BinaryNetClassifier else (256,)
    assert est.hidden_layer_sizes == default and torch.get_num_threads() == 2
    predict = est.predict_proba if cls is BinaryNetClassifier else est.predict
    full = predict(X)
    for a, b in ((0, 1), (17, 18), (5, 300), (1000, 1031), (2999, 3000), (100, 2900)):
        assert np.array_equal(predict(X[a:b]), full[a:b]), (a, b)
    rows = rng.permutation(3000)[:500]
    assert np.array_equal(predict(X[rows]), full[rows])
