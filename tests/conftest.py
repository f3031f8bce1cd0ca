"""Shared fixtures and the hypothesis settings profiles."""

import os
import warnings

import pytest
import torch
from sklearn.exceptions import ConvergenceWarning

try:
    from hypothesis import HealthCheck, settings
except ImportError:  # only tests/test_hypothesis.py needs it (it skips without)
    pass
else:
    # "ci" (the default): derandomised, so every run draws the same examples and CI is
    # reproducible; no example database.  "dev": random draws, 5x the examples, kept in
    # .hypothesis/ so failures replay.  Select with HYPOTHESIS_PROFILE=dev.
    _common = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow])
    settings.register_profile("ci", max_examples=60, derandomize=True, database=None, **_common)
    settings.register_profile("dev", max_examples=300, **_common)
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def _torch_threads(n_threads: int):
    before = torch.get_num_threads()
    torch.set_num_threads(n_threads)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def one_thread():
    """Run torch on one thread: for tiny float64 ops thread start-up dominates."""
    yield from _torch_threads(1)


@pytest.fixture(scope="module")
def one_thread_module():
    """One torch thread for a whole module, its module-scoped fixtures included.

    Use as ``pytestmark = pytest.mark.usefixtures("one_thread_module")``: fixtures named by
    ``usefixtures`` are set up before a test's other fixtures of the same scope.
    """
    yield from _torch_threads(1)


def fit_quiet(clf, *args, **kw):
    """``clf.fit(*args, **kw)`` without the ConvergenceWarning of a capped ``max_iter``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return clf.fit(*args, **kw)


#: Reasons shared by the scikit-learn check xfails (tests/test_common.py, test_regressor.py)
SGD_REASON = (
    "minibatch training: repeating a row puts it into more batches, so fitting with "
    "integer weights is not the same optimisation path as fitting on repeated rows "
    "(the MLP estimators' own check passes only with solver='lbfgs')"
)
MC_REASON = (
    "inference='mc' draws one set of sampled weights per prediction call and neuron "
    "noise per row position, seeded: a row's prediction can depend on which other rows "
    "are predicted with it"
)


def common_expected_failures(estimator) -> dict:
    """The check xfails every configuration of both estimators shares."""
    failures = {
        "check_sample_weight_equivalence_on_dense_data": SGD_REASON,
        "check_sample_weight_equivalence_on_sparse_data": SGD_REASON,
    }
    if estimator.inference == "mc":
        failures["check_methods_subset_invariance"] = MC_REASON
        failures["check_methods_sample_order_invariance"] = MC_REASON
    return failures
