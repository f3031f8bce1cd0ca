"""scikit-learn's own estimator checks for both estimators, over every surrogate x inference
mode, at the default hidden size and on two torch threads.

Every estimator runs with its defaults (hidden (384,) for the classifier, (256,) for the
regressor; linear=True; the ``"auto"`` epochs and batch
size, the cosine schedule) except ``surrogate``, ``gradient_estimator`` (and the logistic
noise PSA needs), ``inference``, ``n_mc_samples`` (8, for time) and ``random_state``.
tests/test_regressor.py runs the regressor's checks again on a small network.
"""

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from conftest import common_expected_failures

from sklearn_bnn import BinaryNetClassifier, BinaryNetRegressor
from sklearn_bnn.nn import COMBINATIONS, INFERENCE

ESTIMATORS = (BinaryNetClassifier, BinaryNetRegressor)


@pytest.fixture(scope="module", autouse=True)
def two_threads():
    """Two torch threads: batch-dependent kernels and summation orders show there."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def _config(cls, surrogate, inference, estimator="auto"):
    return cls(
        surrogate=surrogate,
        gradient_estimator=estimator,
        noise="logistic" if estimator == "psa" else "gaussian",
        inference=inference,
        n_mc_samples=8,
        random_state=0,
    )


# every surrogate with every inference mode, and each sampled estimator with the default
# inference, for both estimators
CONFIGS = [
    *(_config(c, s, i) for c in ESTIMATORS for s in COMBINATIONS for i in INFERENCE),
    *(
        _config(c, "sampled", "binary", e)
        for c in ESTIMATORS
        for e in ("psa", "reinforce", "arm")
    ),
    # the network alone, without the default linear term
    *(_config(c, "binary", "binary").set_params(linear=False) for c in ESTIMATORS),
]



_POOR_R2 = (
    "R^2 below the check's 0.5 on its toy data (1 informative feature of 10, noise 20, "
    "200 rows), measured -9 to 0.1 on the training data at the default size: the 1-bit "
    "network of a surrogate trained on means (deterministic, lrt) is not the network it "
    "fitted, sampled training (every estimator) is noisy in the 'auto' 20 epochs, and the "
    "surrogate/MC networks of the 1-bit training are not what it optimised"
)
#: (surrogate, inference) pairs whose regressor passes check_regressors_train here
_REGRESSOR_FITS = {
    ("binary", "binary"), ("deterministic", "surrogate"), ("lrt_continuous", "surrogate"),
}

_SAMPLED = (
    "sampled training (one draw of weights and neurons per step) has not fitted the "
    "check's blobs in the 'auto' 20 epochs at the default size: training accuracy "
    "{} (3 classes, 2 classes; the check asks > 0.83), measured on 2 threads"
)
#: check_classifiers_train's blobs are below 0.83 for these (surrogate, inference) pairs
#: (every estimator of the sampled surrogate counted under ("sampled", inference))
_CLASSIFIER_POOR = {
    ("sampled", "binary"): _SAMPLED.format(
        "st 0.87/0.81, psa 0.58/0.77, reinforce 0.72/0.77, arm 0.73/0.81"
    ),
    ("sampled", "mc"): _SAMPLED.format("st 0.79/0.79"),
    ("binary", "mc"): (
        "surrogate='binary' trains the deterministic 1-bit network, not the stochastic "
        "one: its Monte-Carlo network is not what was optimised (training accuracy "
        "0.73/0.76 on the check's blobs, 3 and 2 classes; the 1-bit network of the same fit "
        "passes with inference='binary')"
    ),
}


def expected_failed_checks(estimator):
    failures = common_expected_failures(estimator)
    if estimator.linear:  # the linear term fits the checks' toy data: the rest pass
        return failures
    # measured without the linear term (sklearn-bnn 0.1's defaults)
    pair = (estimator.surrogate, estimator.inference)
    if isinstance(estimator, BinaryNetRegressor) and pair not in _REGRESSOR_FITS:
        failures["check_regressors_train"] = _POOR_R2
    if isinstance(estimator, BinaryNetClassifier) and pair in _CLASSIFIER_POOR:
        failures["check_classifiers_train"] = _CLASSIFIER_POOR[pair]
    if isinstance(estimator, BinaryNetClassifier) and pair == ("binary", "binary"):
        failures["check_class_weight_classifiers"] = (
            "the check sets max_iter=1000 and n_iter_no_change=20 on 50 rows (one step an "
            "epoch): the training loss stops improving after about 70 epochs, with the "
            "cosine schedule still near its peak and the +-1 weights still flipping at "
            "binary_learning_rate=0.03; measured 0.80 of the test rows predicted as class 0 "
            "on 3 blobs, 0.92 on 2 (the check asks > 0.87); 1.0 and 1.0 at "
            "binary_learning_rate=0.001 or with the default linear term"
        )
    if estimator.surrogate == "sampled" and estimator.gradient_estimator == "reinforce":
        failures["check_class_weight_classifiers"] = _CLASSIFIER_POOR[pair]
    return failures


@parametrize_with_checks(CONFIGS, expected_failed_checks=expected_failed_checks)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


def test_configs_cover_every_surrogate_and_inference_mode():
    for cls in ESTIMATORS:
        configs = [c for c in CONFIGS if type(c) is cls]
        assert {(c.surrogate, c.inference) for c in configs} == {
            (s, i) for s in COMBINATIONS for i in INFERENCE
        }
        assert all(c.hidden_layer_sizes == cls().hidden_layer_sizes for c in configs)
