"""Write the CUDA-trained model fixture that tests/test_gpu.py loads on CPU-only machines.

Fits a tiny BinaryNetClassifier on CUDA (standardised iris, hidden (16,), 30 epochs) and
writes, under ``tests/data/``:

* ``cuda_model.pkl``          -- the fitted estimator, pickled on the GPU;
* ``cuda_model_input.npy``    -- the fixed input (the standardised iris features);
* ``cuda_model_expected.npy`` -- ``predict_proba`` on that input, shape (2, 150, 3): the
  ``inference="binary"`` and ``"surrogate"`` networks, computed on the GPU.

Usage (on a machine with a GPU): ``python benchmarks/make_cuda_fixture.py``.  Rerun it when
the fitted state of the estimator changes in a way old pickles cannot follow.
"""

from __future__ import annotations

import pickle
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_iris
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler

from sklearn_bnn import BinaryNetClassifier

MODES = ("binary", "surrogate")


def main() -> None:
    if not torch.cuda.is_available():
        sys.exit("make_cuda_fixture.py needs CUDA (torch.cuda.is_available() is False)")
    out = Path(__file__).resolve().parents[1] / "tests" / "data"
    out.mkdir(parents=True, exist_ok=True)
    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    clf = BinaryNetClassifier(
        (16,), max_iter=30, learning_rate_init=1e-2, device="cuda", random_state=0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
    assert clf.device_.type == "cuda"
    expected = np.stack([clf.set_params(inference=m).predict_proba(X) for m in MODES])
    clf.set_params(inference="binary")
    (out / "cuda_model.pkl").write_bytes(pickle.dumps(clf))
    np.save(out / "cuda_model_input.npy", X)
    np.save(out / "cuda_model_expected.npy", expected)
    print(
        f"wrote {out}/cuda_model.pkl, cuda_model_input.npy, cuda_model_expected.npy "
        f"(torch {torch.__version__}, {torch.cuda.get_device_name()}; binary accuracy "
        f"{clf.score(X, y):.3f})"
    )


if __name__ == "__main__":
    main()
