"""Property-based tests: random shapes, label sets, dtypes and parameters.

Whatever the draw, ``fit`` either succeeds or raises a scikit-learn style ``ValueError``
with a known message; a fitted model's ``predict_proba`` rows are finite and sum to 1;
``predict`` returns labels seen in training.  Tiny networks and 1-3 epochs keep each
example at tens of milliseconds.  The number of examples comes from the settings profile
loaded in ``conftest.py`` ("ci": derandomised, 60 per test, 240 in all; "dev": 300 per
test, ``HYPOTHESIS_PROFILE=dev``).
"""

import pickle
import re
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from sklearn_bnn import BinaryNetClassifier

# importorskip must run first so that the module is skipped, not an error, without hypothesis
hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

# label sets: the classifier must hand back exactly these values (and types)
LABELS = {
    "int": np.array([0, 1, 2, 3]),
    "str": np.array(["ant", "bee", "cat", "dog"]),
    "object": np.array(["ant", "bee", "cat", "dog"], dtype=object),
    "plus-minus-one": np.array([-1, 1]),
    "sparse-int": np.array([-7, 3, 1000]),
    "integral-float": np.array([0.0, 1.0, 2.0]),
    "bool": np.array([False, True]),
}
# a label outside each set (None: the set has no room for one)
OUTSIDER = {
    "int": 9,
    "str": "emu",
    "object": "emu",
    "plus-minus-one": 0,
    "sparse-int": 5,
    "integral-float": 7.0,
    "bool": None,
}
DTYPES = ["float32", "float64", "int64"]


pytestmark = pytest.mark.usefixtures("one_thread_module")


@st.composite
def features(draw, n_samples, dtype=None):
    n_features = draw(st.integers(1, 4))
    dtype = dtype or draw(st.sampled_from(DTYPES))
    X = draw(
        hnp.arrays(
            np.float64,
            (n_samples, n_features),
            elements=st.floats(-100, 100, allow_nan=False, allow_infinity=False, width=32),
        )
    )
    return np.round(X).astype(dtype) if dtype == "int64" else X.astype(dtype)


@st.composite
def problems(draw, dtype=None):
    """(X, y, kind): 2+ classes of a label set, imbalanced counts (1-10 each), shuffled."""
    kind = draw(st.sampled_from(sorted(LABELS)))
    labels = LABELS[kind]
    k = draw(st.integers(2, len(labels)))
    chosen = labels[sorted(draw(st.permutations(range(len(labels))))[:k])]
    counts = draw(st.lists(st.integers(1, 10), min_size=k, max_size=k))
    y = np.repeat(chosen, counts)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    y = y[rng.permutation(len(y))]
    return draw(features(len(y), dtype)), y, kind


inits = st.one_of(
    st.sampled_from(["glorot", "he", "uniform"]),
    st.floats(0, 1),
    st.tuples(st.floats(0, 1), st.floats(0, 1)),
)
_SMOOTH = ["gaussian", "logistic", "uniform"]  # noises with a straight-through proxy
# valid (surrogate, gradient_estimator, noise) triples: every training path
TRAINING_PATHS = st.sampled_from(
    [("deterministic", "auto", n) for n in ["sign", *_SMOOTH]]
    + [(s, e, n) for s, e in [("binary", "auto"), ("lrt", "auto"), ("lrt", "st")] for n in _SMOOTH]
    + [("sampled", e, "gaussian") for e in ("st", "reinforce", "arm")]
    + [("sampled", "psa", "logistic")]
)
_params = st.fixed_dictionaries(
    {
        "hidden_layer_sizes": st.lists(st.integers(1, 5), min_size=1, max_size=2).map(tuple),
        "init": inits,
        "inference": st.sampled_from(["binary", "surrogate", "mc"]),
        "n_mc_samples": st.integers(1, 3),
        "alpha": st.sampled_from([0.0, 1e-4, 0.1, 10.0]),
        "batch_size": st.one_of(st.just("auto"), st.integers(1, 50)),
        "learning_rate_init": st.sampled_from([1e-3, 1e-2, 0.3]),
        "max_iter": st.integers(1, 3),
        "shuffle": st.booleans(),
        "early_stopping": st.booleans(),
        "validation_fraction": st.sampled_from([0.1, 0.5]),
        "random_state": st.integers(0, 1000),
        "device": st.just("cpu"),
    }
)
params = st.tuples(TRAINING_PATHS, _params).map(
    lambda t: {**t[1], "surrogate": t[0][0], "gradient_estimator": t[0][1], "noise": t[0][2]}
)

# the only refusals a well-formed problem may get
DATA_DEPENDENT = re.compile("early_stopping=True cannot hold out a stratified")


def check_outputs(clf, X, labels):
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), len(clf.classes_))
    assert np.isfinite(proba).all() and (proba >= 0).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    pred = clf.predict(X)
    assert pred.shape == (len(X),)
    assert np.isin(pred, labels).all()
    assert (pred.dtype.kind in "OU") == (np.asarray(labels).dtype.kind in "OU")
    return proba


@given(problem=problems(), kw=params, data=st.data())
def test_fit_predict_contract(problem, kw, data):
    X, y, _ = problem
    weights = data.draw(
        st.none()
        | hnp.arrays(np.float64, len(y), elements=st.floats(0.01, 10)),
        label="sample_weight",
    )
    clf = BinaryNetClassifier(**kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        try:
            clf.fit(X, y, sample_weight=weights)
        except ValueError as exc:
            assert DATA_DEPENDENT.search(str(exc)), exc
            assert not hasattr(clf, "net_")
            return
    np.testing.assert_array_equal(clf.classes_, np.unique(y))
    assert 1 <= clf.n_iter_ <= kw["max_iter"]
    check_outputs(clf, X, np.unique(y))
    X_new = data.draw(hnp.arrays(np.float64, (3, X.shape[1]), elements=st.floats(-1e3, 1e3)))
    check_outputs(clf, X_new, np.unique(y))


@given(problem=problems(), kw=params, data=st.data())
def test_partial_fit_with_absent_classes(problem, kw, data):
    X, y, kind = problem
    classes = LABELS[kind]  # all of them: some are absent from y, maybe all but one
    present = data.draw(st.sampled_from(sorted(set(y.tolist()), key=str)), label="first class")
    first = y == present
    clf = BinaryNetClassifier(**kw)
    clf.partial_fit(X[first], y[first], classes=classes)
    np.testing.assert_array_equal(clf.classes_, np.unique(classes))
    check_outputs(clf, X, classes)
    clf.partial_fit(X, y)
    assert clf.n_iter_ == 2
    check_outputs(clf, X, classes)
    if OUTSIDER[kind] is not None:
        bad = y.astype(object)
        bad[0] = OUTSIDER[kind]
        with pytest.raises(ValueError, match="not seen in the first fit"):
            clf.partial_fit(X, bad.astype(y.dtype) if y.dtype != object else bad)
        assert clf.n_iter_ == 2


CORRUPTIONS = {
    "nan": "Input X contains NaN",
    "inf": "Input X contains infinity",
    "beyond-float32": "too large for float32",
    "one-class": "needs samples of at least 2 classes",
    "continuous-y": "Unknown label type",
    "length-mismatch": "inconsistent numbers of samples",
    "no-samples": "Found array with 0 sample",
    "no-features": "0 feature",
}


@given(problem=problems(dtype="float64"), kw=params, data=st.data())
def test_bad_data_gets_a_clear_error_and_nothing_fitted(problem, kw, data):
    X, y, _ = problem
    how = data.draw(st.sampled_from(sorted(CORRUPTIONS)), label="corruption")
    i = data.draw(st.integers(0, len(y) - 1), label="row")
    X, y = X.copy(), y.copy()
    if how == "nan":
        X[i, 0] = np.nan
    elif how == "inf":
        X[i, -1] = -np.inf
    elif how == "beyond-float32":
        X[i, 0] = 1e39
    elif how == "one-class":
        y[:] = y[0]
    elif how == "continuous-y":
        y = np.linspace(0, 1, len(y)) + 0.5
    elif how == "length-mismatch":
        y = y[:-1]
    elif how == "no-samples":
        X, y = X[:0], y[:0]
    elif how == "no-features":
        X = X[:, :0]
    clf = BinaryNetClassifier(**kw)
    with pytest.raises(ValueError, match=CORRUPTIONS[how]):
        clf.fit(X, y)
    assert not hasattr(clf, "net_") and not hasattr(clf, "n_features_in_")


@given(problem=problems(dtype="int64"), kw=params)
def test_dtypes_give_identical_models_and_pickles_round_trip(problem, kw):
    # integers, and their float32/float64 copies, are the same float32 tensors inside
    X, y, _ = problem
    kw = {**kw, "early_stopping": False}
    probas = []
    for dtype in DTYPES:
        clf = BinaryNetClassifier(**kw)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf.fit(X.astype(dtype), y)
        probas.append(check_outputs(clf, X.astype(dtype), np.unique(y)))
    for proba in probas[1:]:
        np.testing.assert_array_equal(proba, probas[0])
    clone = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(clone.predict_proba(X), probas[0])
    np.testing.assert_array_equal(clone.predict(X), clf.predict(X))
