"""scikit-learn's own estimator checks for both estimators, over every surrogate x inference
mode, at the default hidden size and on two torch threads.

Every estimator runs with its defaults (hidden (128, 128), the ``"auto"`` epochs and batch
size, the cosine schedule) except ``surrogate``, ``gradient_estimator`` (and the logistic
noise PSA needs), ``inference``, ``n_mc_samples`` (8, for time) and ``random_state``.
tests/test_regressor.py runs the regressor's checks again on a small network.
"""

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

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
]

_SGD = (
    "minibatch training: repeating a row puts it into more batches, so fitting with "
    "integer weights is not the same optimisation path as fitting on repeated rows "
    "(the MLP estimators' own check passes only with solver='lbfgs')"
)
_MC = (
    "inference='mc' draws one set of sampled weights per prediction call and neuron "
    "noise per row position, seeded: a row's prediction can depend on which other rows "
    "are predicted with it"
)


_POOR_R2 = (
    "R^2 below the check's 0.5 on its toy data (1 informative feature of 10, noise 20, "
    "200 rows), measured from -9 to 0.5 on the training data: the 1-bit network of a "
    "surrogate trained on means (deterministic, lrt) is not the network it fitted, sampled "
    "training is noisy at this size, and the other inference modes of the 1-bit training "
    "are not what it optimised; surrogate='binary' with inference='binary' passes"
)


def expected_failed_checks(estimator):
    failures = {
        "check_sample_weight_equivalence_on_dense_data": _SGD,
        "check_sample_weight_equivalence_on_sparse_data": _SGD,
    }
    if estimator.inference == "mc":
        failures["check_methods_subset_invariance"] = _MC
        failures["check_methods_sample_order_invariance"] = _MC
    default_network = estimator.surrogate == "binary" and estimator.inference == "binary"
    if isinstance(estimator, BinaryNetRegressor) and not default_network:
        failures["check_regressors_train"] = _POOR_R2
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
        assert all(c.hidden_layer_sizes == (128, 128) for c in configs)
