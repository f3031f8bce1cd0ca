"""Shared fixtures and the hypothesis settings profiles."""

import os

import pytest
import torch

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


@pytest.fixture
def one_thread():
    """Run torch on one thread: for tiny float64 ops thread start-up dominates."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
