"""Trainable depth: at depth 20, init="critical" trains and Glorot on the means does not.

The small version of ``benchmarks/depth.py`` ([SGL20]_'s claim): 500 digits, width 32, 20
binary layers, deterministic surrogate with sign neurons and the unit slope, Adam lr 3e-3,
batch 32, 10 epochs, three seeds.  Measured on the 2-core CPU (torch 2.13): Glorot 0.106 on
every seed (chance is about 0.10: the network's output does not depend on its input), critical
0.81-0.91.  The assertion leaves room on both sides: critical >= 0.5 and Glorot <= 0.2 on
every seed, and critical above Glorot by >= 0.4 on average.

.. [SGL20] G. Stamatescu et al. Critical initialisation in continuous approximations of
   binary neural networks. ICLR 2020, arXiv:1902.00177.
"""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler

from sklearn_bnn import BinaryNetClassifier

SEEDS = (0, 1, 2)


@pytest.fixture(scope="module")
def training_accuracy(one_thread_module):
    X, y = load_digits(return_X_y=True)
    X = StandardScaler().fit_transform(X[:500]).astype(np.float32)
    y = y[:500]
    out = {}
    for init in ("glorot", "critical"):
        for seed in SEEDS:
            clf = BinaryNetClassifier(
                (32,) * 20,
                surrogate="deterministic",
                noise="sign",
                slope="unit",
                init=init,
                inference="surrogate",
                learning_rate_init=3e-3,
                binary_learning_rate=3e-3,  # one rate for every parameter, as measured
                batch_size=32,
                max_iter=10,
                n_iter_no_change=100,
                # the all-binary network on raw features at a constant rate: the setting
                # of the depth experiment (benchmarks/depth.py) and of the figures above
                first_layer="binary",
                encoding="raw",
                learning_rate="constant",
                linear=False,  # the depth of the network itself is the subject
                random_state=seed,
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                clf.fit(X, y)
            out[init, seed] = clf.score(X, y)
    return out


def test_critical_init_trains_at_depth_20_and_glorot_does_not(training_accuracy):
    critical = np.array([training_accuracy["critical", s] for s in SEEDS])
    glorot = np.array([training_accuracy["glorot", s] for s in SEEDS])
    assert glorot.max() <= 0.2, glorot
    assert critical.min() >= 0.5, critical
    assert critical.mean() - glorot.mean() >= 0.4, (critical, glorot)
