"""Shared fixtures."""

import pytest
import torch


@pytest.fixture
def one_thread():
    """Run torch on one thread: for tiny float64 ops thread start-up dominates."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
