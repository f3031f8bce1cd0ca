"""Bad input and faults: what the user gets, and that a failed fit leaves nothing half-done.

docs/robustness.md tabulates these cases; keep the two in step.
"""

import pickle
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.preprocessing import StandardScaler

from sklearn_bnn import BinaryNetClassifier, TrainingDivergedError, __version__
from sklearn_bnn._training import SBNNet
from conftest import fit_quiet


X, Y = load_iris(return_X_y=True)
X = StandardScaler().fit_transform(X)
# 150 samples / batch_size 32 = 5 batches per epoch.  The deterministic surrogate: its
# field variances are where overflow and divergence show; the default 1-bit training only
# sees sign(h) (test_huge_features_with_the_default_one_bit_training_stay_finite).
SMALL = dict(
    hidden_layer_sizes=(8,), max_iter=10, batch_size=32, learning_rate_init=1e-2, random_state=0,
    surrogate="deterministic",
    # the all-binary network on raw features at a constant rate: these tests are about
    # divergence, restores and exact resume (a cosine schedule restarts with every fit)
    first_layer="binary", encoding="raw", learning_rate="constant",
)


def small(**kw):
    return BinaryNetClassifier(**{**SMALL, **kw})


pytestmark = pytest.mark.usefixtures("one_thread_module")


@pytest.fixture(scope="module")
def fitted():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return small().fit(X, Y)


def assert_unfitted(clf):
    assert not hasattr(clf, "n_features_in_") and not hasattr(clf, "net_")
    with pytest.raises(NotFittedError):
        clf.predict(X)


# ---------------------------------------------------------------- bad values
@pytest.mark.parametrize(
    "value,match", [(np.nan, "Input X contains NaN"), (np.inf, "Input X contains infinity")]
)
def test_nan_and_inf_are_rejected_in_fit_and_predict(fitted, value, match):
    bad = X.copy()
    bad[3, 1] = value
    clf = small()
    with pytest.raises(ValueError, match=match):
        clf.fit(bad, Y)
    assert_unfitted(clf)
    with pytest.raises(ValueError, match=match):
        fitted.predict(bad)


def test_values_beyond_float32_are_a_clear_error(fitted):
    with pytest.raises(ValueError, match="too large for float32.*Standardise"):
        small().fit(X * 1e300, Y)
    with pytest.raises(ValueError, match="too large for float32"):
        fitted.predict_proba(X * 1e300)


def test_huge_features_in_fit_diverge_with_advice():
    clf = small()
    match = r"standardise.*largest \|feature\| in X is 3.09e\+30"
    with pytest.raises(TrainingDivergedError, match=match):
        clf.fit(X * 1e30, Y)
    assert_unfitted(clf)


def test_huge_features_with_the_default_one_bit_training_stay_finite():
    # sign(M) x / sqrt(N) + b / mean|M| at x ~ 1e30: the units are signs of finite float32
    # sums, so the 1-bit network trains (its biases are negligible there) and predicts
    clf = fit_quiet(small(surrogate="binary"), X * 1e30, Y)
    assert np.isfinite(clf.loss_curve_).all()
    proba = clf.predict_proba(X * 1e30)
    assert np.isfinite(proba).all() and clf.score(X * 1e30, Y) > 0.6


def test_huge_features_with_the_default_network_stay_finite():
    # the default: a real first layer and a quantile code (scale-free) before sign units
    clf = fit_quiet(BinaryNetClassifier((8,), random_state=0), X * 1e30, Y)
    assert np.isfinite(clf.loss_curve_).all()
    assert np.isfinite(clf.predict_proba(X * 1e30)).all() and clf.score(X * 1e30, Y) > 0.6


def test_huge_features_at_predict_never_give_nan(fitted):
    # binary and mc networks only take signs of finite float32 sums: finite output; the
    # surrogate's variance overflows float32, which is reported instead of NaN rows
    clf = pickle.loads(pickle.dumps(fitted))
    for mode in ("binary", "mc"):
        proba = clf.set_params(inference=mode).predict_proba(X * 1e30)
        assert np.isfinite(proba).all()
        np.testing.assert_allclose(proba.sum(1), 1, rtol=1e-5)
    clf.set_params(inference="surrogate")
    match = "output is not finite for 150 of 150 samples.*Standardise"
    with pytest.raises(ValueError, match=match):
        clf.predict_proba(X * 1e30)
    with pytest.raises(ValueError, match="not finite"):
        clf.predict(X * 1e30)
    assert np.isfinite(clf.predict_proba(X)).all()


# --------------------------------------------------------------- bad columns
def test_string_and_object_columns():
    with pytest.raises(ValueError, match="could not convert string to float: 'a'"):
        small().fit(np.c_[X, np.full(len(X), "a", dtype=object)], Y)
    # numeric strings are converted, as in MLPClassifier
    clf = fit_quiet(small(max_iter=2), X.astype(str), Y)
    assert clf.predict(X.astype(str)).shape == (150,)


def test_pandas_string_and_categorical_columns():
    pd = pytest.importorskip("pandas")
    for col in (["u"] * 150, pd.Categorical(["u"] * 150)):
        df = pd.DataFrame({"a": X[:, 0], "b": col})
        with pytest.raises(ValueError, match="could not convert string to float: 'u'"):
            small().fit(df, Y)


def test_wrong_feature_count(fitted):
    match = "X has 3 features, but BinaryNetClassifier is expecting 4"
    with pytest.raises(ValueError, match=match):
        fitted.predict(X[:, :3])
    with pytest.raises(ValueError, match="X has 5 features"):
        fitted.predict_proba(np.c_[X, X[:, 0]])


def test_pandas_changed_columns():
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame(X, columns=list("abcd"))
    clf = fit_quiet(small(max_iter=2), df, Y)
    with pytest.raises(ValueError, match="Feature names unseen at fit time:\n- z"):
        clf.predict(df.rename(columns={"a": "z"}))
    with pytest.raises(ValueError, match="must be in the same order"):
        clf.predict(df[list("bacd")])
    with pytest.warns(UserWarning, match="X does not have valid feature names"):
        clf.predict(X)


def test_read_only_input_predicts_without_torch_warnings(fitted):
    # pandas copy-on-write frames and memmaps hand out read-only arrays
    for dtype in (np.float32, np.float64):
        frozen = X.astype(dtype)
        frozen.flags.writeable = False
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            np.testing.assert_array_equal(fitted.predict(frozen), fitted.predict(X))


# ------------------------------------------------------------- degenerate data
@pytest.mark.parametrize(
    "Xb,yb",
    [(X[:1], Y[:1]), (X, np.zeros(150)), (X, np.full(150, "only"))],
    ids=["one-sample", "one-class", "one-string-class"],
)
def test_one_sample_or_one_class(Xb, yb):
    clf = small()
    with pytest.raises(ValueError, match="needs samples of at least 2 classes.*got 1 class"):
        clf.fit(Xb, yb)
    assert_unfitted(clf)


def test_two_samples_fit():
    clf = fit_quiet(small(), X[[0, 60]], Y[[0, 60]])
    assert set(clf.predict(X)) <= {0, 1}


def test_all_identical_rows_fit_to_a_constant_finite_prediction():
    rows = np.ones((20, 4))
    y = np.r_[np.zeros(10), np.ones(10)]
    clf = fit_quiet(small(), rows, y)
    for mode in ("binary", "surrogate"):
        proba = clf.set_params(inference=mode).predict_proba(rows)
        assert np.isfinite(proba).all() and np.ptp(proba, axis=0).max() == 0
    # mc draws neuron noise per row: equal rows get different (finite) probabilities
    assert np.isfinite(clf.set_params(inference="mc").predict_proba(rows)).all()


def test_early_stopping_on_too_few_samples_says_why():
    clf = small(early_stopping=True)
    with pytest.raises(ValueError, match="early_stopping=True cannot hold out a stratified"):
        clf.fit(X[[0, 1, 60, 61]], Y[[0, 1, 60, 61]])
    assert_unfitted(clf)


def test_default_regressor_on_five_samples_says_why():
    from sklearn_bnn import BinaryNetRegressor

    reg = BinaryNetRegressor(hidden_layer_sizes=(8,), random_state=0)
    with pytest.raises(ValueError, match=r"holds out 1 of 5 samples \(validation_fraction=0.2"):
        reg.fit(X[:5], X[:5, 0])
    assert_unfitted(reg)


def test_negative_sample_weight_is_rejected():
    with pytest.raises(ValueError, match="Negative values in data passed to `sample_weight`"):
        small().fit(X, Y, sample_weight=np.r_[-1.0, np.ones(149)])


# ------------------------------------------------------------------- divergence
@pytest.mark.parametrize(
    "params,match",
    [
        (dict(learning_rate_init=1e30, alpha=1.0), "loss became (inf|nan).*Lower learning_rate"),
        # the unfused Adam overflows in its step size; the fused kernel's loss becomes nan
        (dict(learning_rate_init=1e38), "(overflows float32|loss became nan).* Lower learning"),
    ],
)
def test_diverging_learning_rate_is_an_error_and_leaves_nothing_fitted(params, match):
    clf = small(**params)
    with pytest.raises(TrainingDivergedError, match=match):
        clf.fit(X, Y)
    assert_unfitted(clf)


def test_huge_alpha_is_named_not_called_divergence():
    # 0.5 * alpha * ||W||^2 is not a float32 number before the first step
    clf = small(alpha=1e39)
    with pytest.raises(ValueError, match=r"alpha=1e\+39 is too large: the L2 penalty") as info:
        clf.fit(X, Y)
    assert not isinstance(info.value, TrainingDivergedError)
    assert_unfitted(clf)
    fit_quiet(small(alpha=1e30), X, Y)  # large, but a float32 penalty: trains


def test_other_overflow_errors_are_not_relabelled(monkeypatch):
    # only Adam's step-size overflow (a huge learning rate) is reported as the rate's fault
    def boom(self, *args, **kwargs):
        raise RuntimeError("value cannot be converted to type int8 without overflow")

    monkeypatch.setattr(SBNNet, "partial_fit", boom)
    with pytest.raises(RuntimeError, match="int8 without overflow") as info:
        small().fit(X, Y)
    assert not isinstance(info.value, TrainingDivergedError)


@pytest.mark.parametrize("scale", [1e300, 1e-300])
def test_regressor_on_extreme_target_scales_fits_and_predicts(scale):
    # squares of y around 1e300 overflow float64: the standardisation must not
    from sklearn_bnn import BinaryNetRegressor

    y = (X[:, 2] + 3.0) * scale
    reg = fit_quiet(BinaryNetRegressor((16,), max_iter=5, random_state=0), X, y)
    assert np.isfinite(reg.target_scale_).all() and (reg.target_scale_ > 0).all()
    pred = reg.predict(X)
    assert np.isfinite(pred).all()
    assert np.corrcoef(pred / scale, y / scale)[0, 1] > 0.8


def test_huge_but_finite_loss_still_predicts_finite():
    # lr=1e30 without a penalty: the loss is astronomically large but finite; no error
    # (as MLPClassifier), and predictions stay finite
    # (the network alone: with the linear term's offset the loss of this run becomes nan)
    clf = fit_quiet(small(learning_rate_init=1e30, max_iter=3, linear=False), X, Y)
    assert max(clf.loss_curve_) > 1e20
    for mode in ("binary", "surrogate", "mc"):
        assert np.isfinite(clf.set_params(inference=mode).predict_proba(X)).all()


def test_diverging_partial_fit_restores_the_previous_model():
    clf = small()
    clf.partial_fit(X, Y, classes=[0, 1, 2])
    before = pickle.dumps(clf)
    proba = clf.predict_proba(X)
    clf.set_params(learning_rate_init=1e30)
    with pytest.raises(TrainingDivergedError):
        clf.partial_fit(X * 1e30, Y)
    assert clf.n_iter_ == 1 and len(clf.net_.history) == 1
    np.testing.assert_array_equal(clf.predict_proba(X), proba)
    # and it goes on exactly as if the failed call had not happened
    clf.set_params(learning_rate_init=SMALL["learning_rate_init"])
    clf.partial_fit(X, Y)
    again = pickle.loads(before)
    again.partial_fit(X, Y)
    np.testing.assert_array_equal(clf.predict_proba(X), again.predict_proba(X))


# ----------------------------------------------------------- interrupt, resume
@pytest.fixture
def interrupt_at(monkeypatch):
    """Raise KeyboardInterrupt in the k-th training step (as Ctrl-C would)."""

    def arm(k):
        calls = []
        step = SBNNet.train_step

        def train_step(self, batch, **kw):
            calls.append(1)
            if len(calls) == k:
                raise KeyboardInterrupt
            return step(self, batch, **kw)

        monkeypatch.setattr(SBNNet, "train_step", train_step)

    return arm


def test_keyboard_interrupt_keeps_the_last_completed_epoch(interrupt_at):
    interrupt_at(5 * 3 + 2)  # second batch of epoch 4
    clf = small()
    with pytest.warns(UserWarning, match="interrupted by user after 3 of 10 epoch.*last completed"):
        clf.fit(X, Y)
    ref = fit_quiet(small(max_iter=3), X, Y)
    assert clf.n_iter_ == 3 and clf.loss_curve_ == ref.loss_curve_
    np.testing.assert_array_equal(clf.predict_proba(X), ref.predict_proba(X))
    # a warm start resumes it exactly: 3 + 7 epochs == 10 epochs in one go
    fit_quiet(clf.set_params(warm_start=True, max_iter=7), X, Y)
    full = fit_quiet(small(), X, Y)
    assert clf.n_iter_ == 10 and clf.loss_curve_ == full.loss_curve_
    np.testing.assert_array_equal(clf.predict_proba(X), full.predict_proba(X))


def test_keyboard_interrupt_in_the_first_epoch_leaves_the_estimator_as_before(interrupt_at):
    interrupt_at(2)
    clf = small()
    with pytest.raises(KeyboardInterrupt):
        clf.fit(X, Y)
    assert_unfitted(clf)


def test_keyboard_interrupt_in_partial_fit_undoes_the_call(interrupt_at):
    clf = small()
    clf.partial_fit(X, Y, classes=[0, 1, 2])
    before = clf.predict_proba(X)
    interrupt_at(3)
    with pytest.raises(KeyboardInterrupt):
        clf.partial_fit(X, Y)
    assert clf.n_iter_ == 1 and len(clf.net_.history) == 1
    np.testing.assert_array_equal(clf.predict_proba(X), before)


def test_keyboard_interrupt_with_early_stopping_keeps_the_best_epoch(interrupt_at):
    interrupt_at(5 * 6 + 1)  # train split: 135 samples, 5 batches
    clf = small(early_stopping=True, max_iter=30, n_iter_no_change=30)
    with pytest.warns(UserWarning, match="after 6 of 30 epoch.*best validation epoch"):
        clf.fit(X, Y)
    assert clf.n_iter_ == 6 and len(clf.validation_scores_) == 6


def test_warm_start_and_partial_fit_resume_exactly():
    full = fit_quiet(small(max_iter=6), X, Y)
    warm = small(max_iter=2, warm_start=True)
    for _ in range(3):
        fit_quiet(warm, X, Y)
    part = small()
    for _ in range(6):
        part.partial_fit(X, Y, classes=[0, 1, 2])
    for clf in (warm, part):
        assert clf.n_iter_ == 6 and clf.loss_curve_ == full.loss_curve_
        np.testing.assert_array_equal(clf.predict_proba(X), full.predict_proba(X))


# ----------------------------------------------------------------- persistence
def test_pickle_records_the_package_version(fitted):
    state = fitted.__getstate__()
    assert state["_sklearn_bnn_version"] == __version__
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # same version: no warning
        clone = pickle.loads(pickle.dumps(fitted))
    assert not hasattr(clone, "_sklearn_bnn_version")
    np.testing.assert_array_equal(clone.predict_proba(X), fitted.predict_proba(X))


def _load(state):
    clf = BinaryNetClassifier.__new__(BinaryNetClassifier)
    clf.__setstate__(state)
    return clf


def test_pickle_from_another_version_loads_with_a_warning(fitted):
    state = fitted.__getstate__()
    state["_sklearn_bnn_version"] = "0.0.1"
    with pytest.warns(UserWarning, match="saved by sklearn-bnn 0.0.1 with sklearn-bnn"):
        clf = _load(state)
    np.testing.assert_array_equal(clf.predict(X), fitted.predict(X))
