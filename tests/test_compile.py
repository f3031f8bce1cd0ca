"""``compile=True``: the training step through torch.compile, same model as eager training.

The reference is the eager fit with the same seed: compiled kernels may fuse and reorder
float32 arithmetic, so weights agree to round-off (measured on digits, hidden (256, 256),
5 epochs: max |dM| 3.6e-5 deterministic, 2.7e-6 binary) and predictions agree exactly.
"""

import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import load_iris
from sklearn.preprocessing import StandardScaler

from sklearn_bnn import BinaryNetClassifier
from conftest import fit_quiet

X, Y = load_iris(return_X_y=True)
X = StandardScaler().fit_transform(X)


def make(**kw):
    # batch 32 over 150 rows: a ragged last batch of 22, so the compiled step meets two shapes
    # no linear term: its offset would send the binary path's step through eager autograd
    params = dict(
        hidden_layer_sizes=(16, 16), batch_size=32, max_iter=4, random_state=0, linear=False,
        # the rates at which the round-off above was measured (one rate for every parameter)
        learning_rate_init=1e-3, binary_learning_rate=1e-3,
    )
    return BinaryNetClassifier(**{**params, **kw})


@pytest.mark.parametrize("surrogate", ["deterministic", "binary"])
def test_compiled_fit_matches_eager_fit(surrogate):
    eager = fit_quiet(make(surrogate=surrogate), X, Y)
    compiled = fit_quiet(make(surrogate=surrogate, compile=True), X, Y)
    for a, b in zip(eager.coefs_ + eager.intercepts_, compiled.coefs_ + compiled.intercepts_):
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-4)
    np.testing.assert_allclose(compiled.loss_curve_, eager.loss_curve_, rtol=1e-4)
    np.testing.assert_array_equal(compiled.predict(X), eager.predict(X))
    np.testing.assert_allclose(
        compiled.predict_proba(X), eager.predict_proba(X), rtol=0, atol=1e-4
    )


def test_compiled_model_pickles_and_keeps_training():
    clf = fit_quiet(make(surrogate="binary", compile=True), X, Y)
    assert clf.net_.__dict__.get("_compiled_cache")  # the compiled step was used
    blob = pickle.dumps(clf)
    loaded = pickle.loads(blob)
    assert "_compiled_cache" not in loaded.net_.__dict__
    np.testing.assert_array_equal(loaded.predict(X), clf.predict(X))
    # warm start continues exactly as the eager estimator does from the same pickle
    eager = pickle.loads(blob).set_params(compile=False, warm_start=True, max_iter=2)
    again = loaded.set_params(warm_start=True, max_iter=2)
    fit_quiet(eager, X, Y)
    fit_quiet(again, X, Y)
    assert again.n_iter_ == eager.n_iter_ == 6
    for a, b in zip(eager.coefs_, again.coefs_):
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-4)


@pytest.mark.parametrize("surrogate", ["sampled", "lrt"])
def test_compile_refused_where_it_does_not_help(surrogate):
    clf = make(surrogate=surrogate, compile=True)
    match = r"compile=True applies to surrogate in \['binary', 'deterministic'\]"
    with pytest.raises(ValueError, match=match):
        clf.fit(X, Y)
    assert not hasattr(clf, "net_") and not hasattr(clf, "classes_")


def test_compiler_failure_is_named_and_leaves_nothing_fitted(monkeypatch):
    from torch._inductor.exc import InvalidCxxCompiler

    def broken_compile(fn, *args, **kwargs):
        def call(*a, **k):
            raise InvalidCxxCompiler()

        return call

    monkeypatch.setattr(torch, "compile", broken_compile)
    clf = make(surrogate="deterministic", compile=True)
    match = r"compile=True: torch.compile failed \(InvalidCxxCompiler.*compile=False"
    with pytest.raises(RuntimeError, match=match):
        clf.fit(X, Y)
    assert not hasattr(clf, "net_") and not hasattr(clf, "classes_")
    # the same estimator, without compile, fits
    fit_quiet(clone(clf).set_params(compile=False), X, Y)
