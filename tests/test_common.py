"""scikit-learn's own estimator checks, over every implemented surrogate x inference mode."""

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from sklearn_bnn import BinaryNetClassifier
from sklearn_bnn.nn import INFERENCE, SURROGATES


def _implemented_surrogates():
    return list(SURROGATES)


def _config(surrogate, inference, estimator="auto"):
    sampled = surrogate in ("lrt", "sampled")
    return BinaryNetClassifier(
        (16,),
        surrogate=surrogate,
        gradient_estimator=estimator,
        noise="logistic" if estimator == "psa" else "gaussian",
        inference=inference,
        n_mc_samples=8,
        max_iter=50,
        # a one-sample training loss is noisy: stopping on it after 10 epochs without
        # improvement ends sampled training before it has fitted the checks' toy data
        n_iter_no_change=50 if sampled else 10,
        learning_rate_init=1e-2,
        random_state=0,
    )


# Small and fast, but able to fit the checks' toy problems (accuracy > 0.83 on blobs).
# The surrogate decides how fit trains, the inference mode how predict runs: the two
# deterministic-forward surrogates ("binary", the default, and "deterministic") are
# checked with every inference mode; the sampled ones with the default inference, with
# each of their estimators that issue 5 requires (st, psa) and LRT's exact autograd.
CONFIGS = [
    *(_config(s, i) for s in ("binary", "deterministic") for i in INFERENCE),
    _config("lrt", "binary"),
    _config("lrt", "binary", "st"),
    _config("sampled", "binary", "st"),
    _config("sampled", "binary", "psa"),
]

_SGD = (
    "minibatch training: repeating a row puts it into more batches, so fitting with "
    "integer weights is not the same optimisation path as fitting on repeated rows "
    "(MLPClassifier's own check passes only with solver='lbfgs')"
)


def expected_failed_checks(estimator):
    failures = {
        "check_sample_weight_equivalence_on_dense_data": _SGD,
        "check_sample_weight_equivalence_on_sparse_data": _SGD,
    }
    if estimator.inference == "mc":
        reason = (
            "inference='mc' draws one set of sampled weights per prediction call and "
            "neuron noise per row position, seeded: a row's prediction can depend on "
            "which other rows are predicted with it"
        )
        failures["check_methods_subset_invariance"] = reason
        failures["check_methods_sample_order_invariance"] = reason
    if estimator.inference == "mc" and estimator.surrogate == "binary":
        failures["check_classifiers_train"] = (
            "surrogate='binary' trains the deterministic 1-bit network, not the stochastic "
            "one: its Monte-Carlo network is not what was optimised and scores below the "
            "check's 0.83 on its blobs (measured 0.60-0.84 here; the 1-bit network of the "
            "same fit passes with inference='binary')"
        )
    return failures


@parametrize_with_checks(CONFIGS, expected_failed_checks=expected_failed_checks)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


def test_configs_cover_every_surrogate_and_inference_mode():
    assert {c.surrogate for c in CONFIGS} == set(_implemented_surrogates())
    assert {c.inference for c in CONFIGS} == set(INFERENCE)
