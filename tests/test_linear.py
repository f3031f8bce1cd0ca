"""The estimators' linear term (``linear=True``): a ridge or logistic regression fitted
first and kept fixed, the network trained on what it leaves, both exported exactly.

References: scikit-learn's own ``Ridge``/``LogisticRegression`` fitted on the same rows,
the network's logits without the term plus a plain numpy product, and the packed export.
"""

import io
import json
import zipfile

import numpy as np
import pytest
import torch
from sklearn.datasets import load_diabetes, load_iris
import contextlib

from sklearn.linear_model import LogisticRegression, LogisticRegressionCV, Ridge, RidgeCV
from sklearn.model_selection import GridSearchCV, StratifiedKFold, train_test_split
from sklearn.preprocessing import StandardScaler
from sklearn.utils.class_weight import compute_sample_weight

from conftest import fit_quiet

from sklearn_bnn import BinaryNetClassifier, BinaryNetRegressor
from sklearn_bnn._base import LINEAR_ALPHA_GRID
from sklearn_bnn._training import LOSSES, SBNNet, TensorBatches, TensorData, _offset
from sklearn_bnn.deploy.packed import PackedBinaryNetwork, linear_term
from sklearn_bnn.deploy.packed_residual import PackedResidualNetwork

pytestmark = pytest.mark.usefixtures("one_thread_module")

SMALL = dict(hidden_layer_sizes=(32,), max_iter=5, random_state=0)
#: The regressor's linear term as the classifier's default: a ridge of the features, with a
#: fixed penalty, on the rows the network trains on.
FEATURES = dict(linear_input="features", linear_alpha=1.0, linear_rows="train")


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return StandardScaler().fit_transform(X), y


@pytest.fixture(scope="module")
def diabetes():
    X, y = load_diabetes(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def _as_read(X):
    return X.astype(np.float32).astype(np.float64)


_nothing = contextlib.nullcontext


def _network_logits(est):
    """The exported network's logits without its linear term."""
    packed = est.export_binary()
    packed.set_linear(None, None)
    return packed


# ------------------------------------------------------------------ the fitted term
@pytest.mark.parametrize("n_classes", [2, 3])
def test_classifier_term_is_sklearn_logistic_regression(iris, n_classes):
    X, y = iris
    keep = y < n_classes
    X, y = X[keep], y[keep]
    clf = fit_quiet(BinaryNetClassifier(linear=True, linear_alpha=0.5, **SMALL), X, y)
    ref = LogisticRegression(C=2.0, max_iter=1000).fit(_as_read(X), y)
    coef, intercept = clf.linear_coef_, clf.linear_intercept_
    if n_classes == 2:  # logits [0, z]: the softmax is the logistic model
        np.testing.assert_allclose(coef[:, 0], 0)
        np.testing.assert_allclose(coef[:, 1], ref.coef_[0], rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(intercept, [0, ref.intercept_[0]], rtol=1e-6, atol=1e-8)
    else:
        np.testing.assert_allclose(coef, ref.coef_.T, rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(intercept, ref.intercept_, rtol=1e-6, atol=1e-8)


def test_classifier_term_uses_class_and_sample_weights(iris):
    X, y = iris
    w = np.random.default_rng(0).uniform(0.5, 2, len(y))
    keep = np.r_[0:50, 50:70, 100:150]  # unbalanced classes
    clf = BinaryNetClassifier(linear=True, class_weight="balanced", **SMALL)
    fit_quiet(clf, X[keep], y[keep], sample_weight=w[keep])
    # the weights the network's loss uses: sample weight times class weight (not
    # LogisticRegression's own class_weight, which normalises differently)
    weight = w[keep] * compute_sample_weight("balanced", y[keep])
    ref = LogisticRegression(max_iter=1000).fit(_as_read(X[keep]), y[keep], sample_weight=weight)
    np.testing.assert_allclose(clf.linear_coef_, ref.coef_.T, rtol=1e-5, atol=1e-7)


def test_regressor_term_is_sklearn_ridge(diabetes):
    X, y = diabetes
    params = dict(FEATURES, linear_alpha=3.0)
    reg = BinaryNetRegressor(linear=True, early_stopping=False, **params, **SMALL)
    reg = fit_quiet(reg, X, y)
    # Ridge on the standardised targets, folded back: Ridge on y itself
    ref = Ridge(alpha=3.0).fit(_as_read(X), y)
    coef, intercept = reg._linear()
    np.testing.assert_allclose(coef[:, 0], ref.coef_, rtol=1e-4)
    np.testing.assert_allclose(intercept + reg.target_mean_, ref.intercept_, rtol=1e-6)


def test_regressor_term_fits_only_the_training_rows(diabetes):
    """With early stopping (the regressor's default) the held-out fifth trains nothing:
    the ridge term is scikit-learn's Ridge on the other rows."""
    X, y = diabetes
    reg = fit_quiet(BinaryNetRegressor(linear=True, **FEATURES, **SMALL), X, y)
    train, _ = train_test_split(np.arange(len(y)), test_size=0.2, random_state=reg._seed)
    ref = Ridge().fit(_as_read(X)[train], y[train])
    coef, intercept = reg._linear()
    np.testing.assert_allclose(coef[:, 0], ref.coef_, rtol=1e-4)
    np.testing.assert_allclose(intercept + reg.target_mean_, ref.intercept_, rtol=1e-6)


def test_multi_output_regressor_term(diabetes):
    X, y = diabetes
    Y = np.c_[y, -0.5 * y + 10 * X[:, 0]]
    reg = BinaryNetRegressor(linear=True, early_stopping=False, **FEATURES, **SMALL)
    reg = fit_quiet(reg, X, Y)
    coef, intercept = reg._linear()
    ref = Ridge().fit(_as_read(X), Y)
    np.testing.assert_allclose(coef, ref.coef_.T, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(intercept + reg.target_mean_, ref.intercept_, rtol=1e-6)
    assert reg.predict(X).shape == Y.shape


def test_regressor_default_term_is_ridgecv_of_the_code_on_every_row(diabetes):
    """The default: RidgeCV (efficient leave-one-out over LINEAR_ALPHA_GRID) of the
    network's input, the features and their code, fitted on every row given to fit,
    early stopping's held-out fifth included, to the standardised targets."""
    X, y = diabetes
    reg = fit_quiet(BinaryNetRegressor(**SMALL), X, y)
    assert reg.early_stopping and reg.linear_input == "code" and reg.linear_rows == "all"
    Z = _as_read(reg.encoder_.transform(X))
    assert Z.shape[1] > X.shape[1]  # the features and their bits
    ref = RidgeCV(alphas=LINEAR_ALPHA_GRID).fit(Z, (y - reg.target_mean_) / reg.target_scale_)
    np.testing.assert_allclose(reg.linear_coef_[:, 0], ref.coef_, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(reg.linear_intercept_, [ref.intercept_], rtol=1e-6, atol=1e-9)
    assert reg.linear_alpha_ == ref.alpha_


def test_regressor_default_term_uses_the_sample_weights(diabetes):
    """The weighted leave-one-out of the default term is RidgeCV's (its default mode)."""
    X, y = diabetes
    w = np.random.default_rng(1).uniform(0.2, 3.0, len(y))
    reg = fit_quiet(BinaryNetRegressor(**SMALL), X, y, sample_weight=w)
    Z = _as_read(reg.encoder_.transform(X))
    Y = (y - reg.target_mean_) / reg.target_scale_
    ref = RidgeCV(alphas=LINEAR_ALPHA_GRID).fit(Z, Y, sample_weight=w)
    np.testing.assert_allclose(reg.linear_coef_[:, 0], ref.coef_, rtol=1e-6, atol=1e-9)
    assert reg.linear_alpha_ == ref.alpha_


def test_regressor_term_on_the_training_rows_differs(diabetes):
    """``linear_rows="train"``: the code term of the rows the network trains on only."""
    X, y = diabetes
    reg = fit_quiet(BinaryNetRegressor(linear_rows="train", **SMALL), X, y)
    train, _ = train_test_split(np.arange(len(y)), test_size=0.2, random_state=reg._seed)
    Z = _as_read(reg.encoder_.transform(X[train]))
    Y = (y[train] - reg.target_mean_) / reg.target_scale_
    ref = RidgeCV(alphas=LINEAR_ALPHA_GRID).fit(Z, Y)
    np.testing.assert_allclose(reg.linear_coef_[:, 0], ref.coef_, rtol=1e-6, atol=1e-9)


def test_classifier_term_of_the_code_on_every_row(iris):
    X, y = iris
    params = dict(linear_input="code", linear_rows="all", early_stopping=True, **SMALL)
    clf = fit_quiet(BinaryNetClassifier(**params), X, y)
    ref = LogisticRegression(max_iter=1000).fit(_as_read(clf.encoder_.transform(X)), y)
    np.testing.assert_allclose(clf.linear_coef_, ref.coef_.T, rtol=1e-5, atol=1e-7)
    assert clf.linear_alpha_ == 1.0
    packed = clf.export_binary()
    assert packed.linear_input == "code"
    assert np.array_equal(packed.predict_proba(X), clf.predict_proba(X))


def test_classifier_auto_alpha_is_logistic_regression_cv(iris):
    X, y = iris
    clf = fit_quiet(BinaryNetClassifier(linear_alpha="auto", **SMALL), X, y)
    ref = LogisticRegressionCV(
        Cs=1.0 / LINEAR_ALPHA_GRID, cv=StratifiedKFold(5), max_iter=1000
    ).fit(_as_read(X), y)
    np.testing.assert_allclose(clf.linear_coef_, ref.coef_.T, rtol=1e-5, atol=1e-7)
    assert clf.linear_alpha_ == pytest.approx(1.0 / ref.C_[0])
    with pytest.raises(ValueError, match="smallest class has 1"):
        fit_quiet(BinaryNetClassifier(linear_alpha="auto", **SMALL), X[:101], y[:101])


def test_code_term_without_a_code_reads_the_features(iris):
    """``encoding="raw"``: the network's input is the features, and so is the term's."""
    X, y = iris
    clf = fit_quiet(BinaryNetClassifier(linear_input="code", encoding="raw", **SMALL), X, y)
    packed = clf.export_binary()
    assert clf.linear_coef_.shape == (4, 3) and packed.linear_input == "features"
    assert np.array_equal(packed.predict_proba(X), clf.predict_proba(X))


@pytest.mark.parametrize("linear_alpha", [1.0, 0.0])
def test_unpickled_before_the_code_term(iris, linear_alpha):
    """A model pickled before ``linear_input`` existed reads the features, on the training
    rows, and still predicts as it did; a warm start continues it (nothing "changed")."""
    X, y = iris
    params = dict(SMALL, linear_alpha=linear_alpha, warm_start=True)
    clf = fit_quiet(BinaryNetClassifier(**params), X, y)
    state = dict(clf.__getstate__())  # a copy: object.__getstate__ gives __dict__ itself
    for key in ("linear_input", "linear_rows", "linear_alpha_", "_linear_input", "_linear_rows"):
        del state[key]
    old = BinaryNetClassifier.__new__(BinaryNetClassifier)
    with pytest.warns(UserWarning) if "_sklearn_bnn_version" not in state else _nothing():
        old.__setstate__(state)
    assert old.get_params()["linear_input"] == "features" and old.linear_rows == "train"
    assert np.array_equal(old.predict_proba(X), clf.predict_proba(X))
    fit_quiet(old, X, y)  # the fitted term is the one asked for: no ValueError


# --------------------------------------------------------------------- prediction
def test_classifier_predicts_network_plus_term(iris):
    X, y = iris
    clf = fit_quiet(BinaryNetClassifier(linear=True, **SMALL), X, y)
    z = _network_logits(clf).logits(X) + _as_read(X) @ clf.linear_coef_ + clf.linear_intercept_
    p = np.exp(z - z.max(1, keepdims=True))
    np.testing.assert_allclose(clf.predict_proba(X), p / p.sum(1, keepdims=True), atol=1e-12)


@pytest.mark.parametrize("reads", ["features", "code"])
def test_regressor_predicts_network_plus_term(diabetes, reads):
    X, y = diabetes
    reg = fit_quiet(BinaryNetRegressor(linear=True, linear_input=reads, **SMALL), X, y)
    coef, intercept = reg._linear()
    read = X if reads == "features" else reg.encoder_.transform(X)
    expected = _network_logits(reg).logits(X) + _as_read(read) @ coef + intercept
    np.testing.assert_allclose(reg.predict(X), expected[:, 0], rtol=1e-12, atol=1e-9)


def test_linear_term_is_row_invariant():
    rng = np.random.default_rng(0)
    X, coef, b = rng.normal(size=(300, 17)), rng.normal(size=(17, 3)), rng.normal(size=3)
    whole = linear_term(X, coef, b)
    parts = np.concatenate([linear_term(X[i : i + 7], coef, b) for i in range(0, 300, 7)])
    assert np.array_equal(whole, parts)
    np.testing.assert_allclose(whole, X @ coef + b, rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------------- export
@pytest.mark.parametrize("architecture", ["plain", "residual"])
def test_export_is_exact_through_save_and_load(iris, diabetes, architecture):
    params = dict(SMALL, hidden_layer_sizes=(16, 16), architecture=architecture, linear=True)
    X, y = iris
    clf = fit_quiet(BinaryNetClassifier(**params), X, y)
    Xd, yd = diabetes
    reg = fit_quiet(BinaryNetRegressor(**params), Xd, yd)
    for est, data, expected in (
        (clf, X, clf.predict_proba(X)),
        (reg, Xd, reg.predict(Xd)[:, None]),
    ):
        packed = est.export_binary()
        out = packed.predict_proba(data) if est is clf else packed.logits(data)
        assert np.array_equal(out, expected)
        f = io.BytesIO()
        packed.save(f)
        loaded = type(packed).load(io.BytesIO(f.getvalue()))
        out = loaded.predict_proba(data) if est is clf else loaded.logits(data)
        assert np.array_equal(out, expected)


def _header(packed):
    f = io.BytesIO()
    packed.save(f)
    with zipfile.ZipFile(io.BytesIO(f.getvalue())) as z:
        raw = np.load(z.open("header.npy"))
    return json.loads(raw.tobytes())


def test_file_version_is_raised_only_by_a_linear_term(iris):
    X, y = iris
    params = dict(SMALL, encoding="raw", first_layer="binary")
    plain = fit_quiet(BinaryNetClassifier(linear=False, **params), X, y).export_binary()
    linear = fit_quiet(BinaryNetClassifier(linear=True, **params), X, y).export_binary()
    assert _header(plain)["version"] == 1  # older readers still load it
    assert _header(linear)["version"] == 3 and _header(linear)["linear"]
    with pytest.raises(ValueError, match="linear term of the features needs coef of shape"):
        plain.set_linear(np.zeros((3, 3)), np.zeros(3))
    with pytest.raises(ValueError, match="finite"):
        plain.set_linear(np.full((4, 3), np.nan), np.zeros(3))


def test_residual_file_version(iris):
    X, y = iris
    params = dict(SMALL, architecture="residual", hidden_layer_sizes=(8, 8))
    packed = fit_quiet(BinaryNetClassifier(linear=True, **params), X, y).export_binary()
    assert isinstance(packed, PackedResidualNetwork)
    assert _header(packed)["version"] == 2
    packed.set_linear(None, None)
    assert _header(packed)["version"] == 1


def test_summary_counts_the_term(iris):
    X, y = iris
    clf = fit_quiet(BinaryNetClassifier(linear=True, **SMALL), X, y)
    row = clf.summary().rows[-1]
    assert row["layer"] == "linear term (real)" and row["params"] == 4 * 3 + 3
    assert row["packed_bytes"] == 8 * 15 and row["binary_weights"] == 0


# ----------------------------------------------------------------------- training
def test_batches_carry_the_offset():
    X, y = torch.randn(10, 3), torch.arange(10) % 2
    offset = torch.randn(10, 2)
    batches = list(TensorBatches(TensorData(X, y, None, offset, None), 4))
    got = torch.cat([b[0]["offset"] for b in batches])
    assert torch.equal(got, offset) and all(b[0]["sample_weight"] is None for b in batches)
    assert list(TensorBatches(TensorData(X, y), 4))[0][0].shape == (4, 3)


@pytest.mark.parametrize("loss", ["cross_entropy", "squared"])
def test_losses_add_the_offset(loss):
    g = torch.Generator().manual_seed(0)
    outputs, offset = torch.randn(6, 3, generator=g), torch.randn(6, 3, generator=g)
    y = torch.tensor([0, 1, 2, 0, 1, 2]) if loss == "cross_entropy" else torch.randn(6, 3)
    autograd_loss, estimator_loss = LOSSES[loss]
    net = SBNNet(torch.nn.Identity, criterion=torch.nn.MSELoss, loss=loss)
    got = net.get_loss(outputs, y, X={"X": None, "offset": offset})
    torch.testing.assert_close(got, autograd_loss(outputs + offset, y).mean())
    # the estimators' objective: PSA's flipped outputs carry an extra axis
    flipped = torch.randn(6, 5, 3, generator=g)
    expected = estimator_loss(flipped + offset[:, None, :], y)
    torch.testing.assert_close(_offset(estimator_loss, offset)(flipped, y), expected)


@pytest.mark.parametrize("estimator", ["st", "psa", "reinforce"])
def test_sampled_estimators_train_with_the_term(iris, estimator):
    X, y = iris
    clf = BinaryNetClassifier(
        surrogate="sampled", gradient_estimator=estimator, linear=True,
        noise="logistic" if estimator == "psa" else "gaussian", **SMALL,
    )  # fmt: skip
    fit_quiet(clf, X, y)
    assert np.isfinite(clf.loss_curve_).all() and clf.score(X, y) > 0.8


@pytest.mark.parametrize("surrogate", ["binary", "deterministic"])  # objective, autograd
def test_network_learns_what_the_term_leaves(surrogate):
    """A linear truth: the term explains it, so the network's outputs stay near 0."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 5))
    y = X @ np.array([1.0, -2.0, 0.5, 0.0, 3.0]) + 0.01 * rng.normal(size=400)
    params = dict(SMALL, inference="surrogate" if surrogate != "binary" else "binary")
    reg = BinaryNetRegressor(linear=True, linear_alpha=1e-6, surrogate=surrogate, **params)
    fit_quiet(reg, X, y)
    network = _network_logits(reg).logits(X)[:, 0] - reg.target_mean_[0]
    assert reg.score(X, y) > 0.999
    assert np.abs(network).mean() < 0.05 * np.abs(y - y.mean()).mean()


def test_term_helps_where_the_truth_is_linear():
    # a noisy linear boundary in 30 dimensions, 400 rows: test accuracy 0.81-0.87
    # without the term, 0.91-0.92 with it (data seeds 0-2, measured on the CPU)
    rng = np.random.default_rng(0)
    X, w = rng.normal(size=(800, 30)), rng.normal(size=30)
    y = (X @ w + rng.normal(size=800) > 0).astype(int)
    Xtr, Xte, ytr, yte = X[:400], X[400:], y[:400], y[400:]
    params = dict(hidden_layer_sizes=(64,), max_iter=10, random_state=0)
    without = fit_quiet(BinaryNetClassifier(linear=False, **params), Xtr, ytr).score(Xte, yte)
    with_term = fit_quiet(BinaryNetClassifier(linear=True, **params), Xtr, ytr).score(Xte, yte)
    assert with_term > without + 0.02


# --------------------------------------------------- warm starts and parameter checks
@pytest.mark.parametrize("change", [
    dict(linear=False), dict(linear_alpha=2.0), dict(linear_input="code"),
    dict(linear_rows="all"), dict(linear_alpha="auto"),
])
def test_warm_start_refuses_a_changed_term(iris, change):
    X, y = iris
    clf = fit_quiet(BinaryNetClassifier(linear=True, warm_start=True, **SMALL), X, y)
    clf.set_params(**change)
    with pytest.raises(ValueError, match=next(iter(change))):
        clf.fit(X, y)
    # and the other way round
    clf = fit_quiet(BinaryNetClassifier(linear=False, warm_start=True, **SMALL), X, y)
    with pytest.raises(ValueError, match="linear: fitted False, now True"):
        clf.set_params(linear=True).fit(X, y)


def test_partial_fit_keeps_the_first_term(diabetes):
    X, y = diabetes
    reg = BinaryNetRegressor(linear=True, **FEATURES, **SMALL)
    reg.partial_fit(X[:200], y[:200])
    coef = reg.linear_coef_.copy()
    reg.partial_fit(X[200:], y[200:])
    assert np.array_equal(reg.linear_coef_, coef)
    ref = Ridge().fit(_as_read(X[:200]), (y[:200] - reg.target_mean_) / reg.target_scale_)
    np.testing.assert_allclose(coef[:, 0], ref.coef_, rtol=1e-4)


def test_linear_alpha_is_validated(iris):
    X, y = iris
    with pytest.raises(ValueError, match="linear_alpha"):
        BinaryNetClassifier(linear=True, linear_alpha=-1.0).fit(X, y)
    with pytest.raises(ValueError, match="'linear' parameter"):
        BinaryNetClassifier(linear="yes").fit(X, y)


def test_early_stopping_scores_include_the_term(iris):
    X, y = iris
    clf = BinaryNetClassifier(linear=True, early_stopping=True, validation_fraction=0.3,
                              n_iter_no_change=2, **dict(SMALL, max_iter=4))
    fit_quiet(clf, X, y)
    # the term alone classifies iris: validation accuracy well above chance from epoch 1
    assert min(clf.validation_scores_) > 0.8


def test_grid_search_over_the_term(iris):
    X, y = iris
    grid = GridSearchCV(BinaryNetClassifier(**SMALL), {"linear": [False, True]}, cv=2,
                        error_score="raise")
    fit_quiet(grid, X, y)
    assert np.isfinite(grid.cv_results_["mean_test_score"]).all()


def test_sparse_input_with_the_term(iris):
    import scipy.sparse as sp

    X, y = iris
    dense = fit_quiet(BinaryNetClassifier(linear=True, **SMALL), X, y)
    sparse = fit_quiet(BinaryNetClassifier(linear=True, **SMALL), sp.csr_matrix(X), y)
    assert np.array_equal(dense.predict_proba(X), sparse.predict_proba(sp.csr_matrix(X)))
    assert isinstance(dense.export_binary(), PackedBinaryNetwork)


def test_partial_fit_first_batch_of_one_class(iris):
    """One class in the first batch: no logistic regression can be fitted; the term is
    zero (no preference) and the network learns the rest."""
    X, y = iris
    clf = BinaryNetClassifier(**SMALL)
    clf.partial_fit(X[:40], y[:40], classes=[0, 1, 2])
    assert np.array_equal(clf.linear_coef_, np.zeros((4, 3)))
    assert np.array_equal(clf.linear_intercept_, np.zeros(3))
    for _ in range(5):
        clf.partial_fit(X, y)
    assert clf.score(X, y) > 0.7
