"""The ``architecture`` option through the estimators, and fit's warning when the network
``predict`` uses is far below the surrogate it was trained through (issue 16)."""

import pickle
import warnings

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV
from sklearn.preprocessing import StandardScaler

from sklearn_bnn import BinaryNetClassifier, BinaryNetRegressor
from sklearn_bnn.nn.architecture import ARCHITECTURES
from sklearn_bnn.deploy.packed_residual import PackedResidualNetwork
from sklearn_bnn.nn.residual import ResidualBinaryNetwork

#: The training defaults of sklearn-bnn 0.1 these tests were written against.
V01 = dict(linear=False, learning_rate_init=3e-3, batch_size=64)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return StandardScaler().fit_transform(X).astype(np.float32), y


def _deployable_gap_warnings(record):
    return [w for w in record if "far below the surrogate" in str(w.message)]


def test_residual_estimator_builds_the_residual_network_and_exports_it_exactly(digits):
    X, y = digits
    clf = BinaryNetClassifier(
        (32,) * 6, architecture="residual", init="critical", max_iter=3, random_state=0
    ).fit(X[:600], y[:600])
    assert type(clf.net_.module_) is ResidualBinaryNetwork
    assert clf.critical_init_ is not None and clf.critical_init_["alpha"] > 0
    packed = clf.export_binary()
    assert isinstance(packed, PackedResidualNetwork)
    np.testing.assert_array_equal(packed.predict(X[600:900]), clf.predict(X[600:900]))
    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(again.predict_proba(X[:50]), clf.predict_proba(X[:50]))
    summary = clf.summary()
    n_params = sum(p.numel() for p in clf.net_.module_.parameters())
    outside = ("input code", "linear term (real)")  # not torch parameters
    code = sum(row["params"] for row in summary.rows if row["layer"] in outside)
    assert summary.total["params"] - code == n_params  # the branch scales are counted too


def test_residual_trains_where_the_plain_network_stops(digits):
    """Depth 20 at width 32, few epochs: the plain 1-bit network is near chance (theory:
    about 13 trainable layers), the residual one trains (its correlation length is
    infinite); both from the same data, seed and schedule."""
    X, y = digits
    torch.manual_seed(0)
    # the networks alone (no linear term to rescue the plain one), at the 0.1 training defaults
    kw = dict(hidden_layer_sizes=(32,) * 20, max_iter=8, random_state=0, **V01)
    plain = BinaryNetClassifier(**kw).fit(X[:1200], y[:1200]).score(X[1200:], y[1200:])
    res = BinaryNetClassifier(architecture="residual", init="critical", **kw)
    residual = res.fit(X[:1200], y[:1200]).score(X[1200:], y[1200:])
    assert plain < 0.5 < 0.8 < residual, (plain, residual)


def test_architecture_is_grid_searchable(digits):
    X, y = digits
    grid = GridSearchCV(
        BinaryNetClassifier((16, 16), max_iter=2, random_state=0),
        {"architecture": list(ARCHITECTURES), "init": ["critical", "glorot", "he", 0.05]},
        cv=2,
        error_score="raise",
    ).fit(X[:300], y[:300])
    assert np.isfinite(grid.cv_results_["mean_test_score"]).all()
    assert len(grid.cv_results_["mean_test_score"]) == 8


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(surrogate="deterministic"), "needs surrogate='binary'"),
        (dict(gradient_estimator="psa"), "needs surrogate='binary'"),
        (dict(noise="sign"), "noise='sign' has none"),
        (dict(hidden_layer_sizes=(16, 8)), "must be equal"),
        (dict(first_layer="binary"), "Valid values: 'auto', 'real'"),
        (dict(inference="surrogate"), "Valid values: 'binary', 'mc'"),
        (dict(compile=True), "compile=True does not apply"),
        (dict(architecture="resnet"), "architecture"),
    ],
)
def test_residual_refuses_what_does_not_apply(digits, params, match):
    X, y = digits
    clf = BinaryNetClassifier((16, 16), architecture="residual", max_iter=1)
    with pytest.raises(ValueError, match=match):
        clf.set_params(**params).fit(X[:100], y[:100])
    assert not hasattr(clf, "net_")


@pytest.mark.parametrize("fitted, asked", [("plain", "residual"), ("residual", "plain")])
def test_warm_start_refuses_a_changed_architecture(digits, fitted, asked):
    X, y = digits
    clf = BinaryNetClassifier(
        (16, 16), architecture=fitted, max_iter=1, warm_start=True, random_state=0
    ).fit(X[:100], y[:100])
    clf.fit(X[:100], y[:100])  # the same architecture continues
    with pytest.raises(ValueError, match=f"architecture: fitted '{fitted}', now '{asked}'"):
        clf.set_params(architecture=asked).fit(X[:100], y[:100])


def test_residual_regressor_exports_its_predictions(digits):
    X, y = digits
    reg = BinaryNetRegressor((16, 16), architecture="residual", max_iter=2, random_state=0)
    reg.fit(X[:300], y[:300].astype(float))
    np.testing.assert_array_equal(reg.export_binary().logits(X[:40])[:, 0], reg.predict(X[:40]))


def test_residual_exports_to_onnx_and_c(digits, tmp_path):
    # the residual family converts like the plain one (exactness: test_residual_export.py)
    pytest.importorskip("skl2onnx")
    from sklearn_bnn.onnx import OnnxPredictor, to_onnx

    X, y = digits
    clf = BinaryNetClassifier((16, 16), architecture="residual", max_iter=1, random_state=0)
    clf.fit(X[:100], y[:100])
    label = OnnxPredictor(to_onnx(clf, X[:1])).predict(X[:200])
    np.testing.assert_array_equal(label, clf.predict(X[:200]))
    header, source = clf.export_binary().to_c(tmp_path, "net")
    assert header.exists() and source.exists()


def test_fit_warns_when_the_predicting_network_is_far_below_its_surrogate(digits):
    """The issue's trap: S1 with critical init at depth 10 fits, its 1-bit network does
    not; the warning carries both training scores, and they are the estimator's own."""
    X, y = digits
    clf = BinaryNetClassifier(  # without the linear term, which would rescue both networks
        (64,) * 10, surrogate="deterministic", init="critical", max_iter=10, random_state=0,
        **V01,
    )
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        clf.fit(X, y)
    (warning,) = _deployable_gap_warnings(record)
    binary_score = clf.score(X, y)
    surrogate_score = clf.set_params(inference="surrogate").score(X, y)
    assert surrogate_score - binary_score > 0.1
    message = str(warning.message)
    assert f"{binary_score:.3f}" in message and f"{surrogate_score:.3f}" in message
    assert "inference='surrogate'" in message and "architecture='residual'" in message


@pytest.mark.parametrize(
    "params",
    [
        dict(),  # the default trains the 1-bit network itself
        dict(surrogate="deterministic", inference="surrogate"),  # predicts with the surrogate
        dict(surrogate="deterministic"),  # shallow: the 1-bit network is close
    ],
)
def test_no_warning_when_the_predicting_network_is_the_trained_one_or_close(digits, params):
    X, y = digits
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        BinaryNetClassifier((64,), max_iter=10, random_state=0, **params).fit(X, y)
    assert not _deployable_gap_warnings(record)
