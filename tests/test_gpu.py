"""CUDA training and GPU-to-CPU persistence.

Tests marked ``cuda`` run only where ``torch.cuda.is_available()``; the others check, on
any machine, that a pickled model keeps every device tensor on skorch's ``map_location``
path (so a CUDA-trained model loads on a CPU-only machine), simulate that load, and load
``tests/data/cuda_model.pkl`` (written on a GPU by ``benchmarks/make_cuda_fixture.py``)
when it is present.

Run on a GPU machine with ``python -m pytest -q tests/test_gpu.py``.
"""

import io
import os
import pickle
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_iris
from sklearn.preprocessing import StandardScaler

from sklearn_bnn import BinaryNetClassifier
from conftest import fit_quiet

cuda = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs CUDA (torch.cuda.is_available() is False)"
)

X, Y = load_iris(return_X_y=True)
X = StandardScaler().fit_transform(X)
DATA = Path(__file__).parent / "data"
FIXTURE = DATA / "cuda_model.pkl"
FIXTURE_INPUT = DATA / "cuda_model_input.npy"
FIXTURE_EXPECTED = DATA / "cuda_model_expected.npy"
FIXTURE_MODES = ("binary", "surrogate")  # the rows of cuda_model_expected.npy


def fast(**kw):
    params = dict(hidden_layer_sizes=(32,), max_iter=40, learning_rate_init=1e-2, random_state=0)
    return BinaryNetClassifier(**{**params, **kw})


def load_quiet(payload: bytes):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # skorch's DeviceWarning, sklearn version warnings
        return pickle.loads(payload)


class TensorSpy(pickle.Pickler):
    """Pickler that records every tensor pickled outside skorch's device-mapped blob.

    skorch pickles ``module_``, ``optimizer_`` and ``criterion_`` into bytes of their own and
    unpickles them with ``map_location``; a tensor anywhere else is unpickled on the device
    it was saved from, which fails for CUDA tensors on a CPU-only machine.
    """

    def __init__(self, file):
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.tensors = []

    def reducer_override(self, obj):
        if isinstance(obj, (torch.Tensor, torch.UntypedStorage, torch.TypedStorage)):
            self.tensors.append(type(obj).__name__ + str(tuple(getattr(obj, "shape", ()))))
        return NotImplemented


@pytest.mark.parametrize("early_stopping", [False, True])
def test_pickle_keeps_device_tensors_on_the_map_location_path(early_stopping):
    clf = fit_quiet(fast(early_stopping=early_stopping, max_iter=5), X, Y)
    spy = TensorSpy(io.BytesIO())
    spy.dump(clf)
    assert spy.tensors == []


def test_cuda_pickle_loads_on_cpu_simulated(monkeypatch):
    # The CPU-only side of loading a CUDA-trained model: the pickle says 'cuda', CUDA is
    # absent, skorch maps the net to the CPU and device_ follows it.
    clf = fit_quiet(fast(early_stopping=True, max_iter=8, device="cpu"), X, Y)
    modes = ("binary", "surrogate", "mc")
    expected = {m: clf.set_params(inference=m).predict_proba(X) for m in modes}
    clf.net_.device = torch.device("cuda")
    clf.device_ = torch.device("cuda")
    payload = pickle.dumps(clf)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    loaded = load_quiet(payload)
    assert torch.device(loaded.net_.device).type == "cpu"
    assert loaded.device_.type == "cpu"
    for mode, proba in expected.items():
        np.testing.assert_array_equal(loaded.set_params(inference=mode).predict_proba(X), proba)


@pytest.mark.skipif(
    not FIXTURE.exists(),
    reason="tests/data/cuda_model.pkl absent (benchmarks/make_cuda_fixture.py)",
)
def test_committed_cuda_model_loads_and_predicts():
    loaded = load_quiet(FIXTURE.read_bytes())
    x = np.load(FIXTURE_INPUT)
    expected = np.load(FIXTURE_EXPECTED)
    assert torch.device(loaded.net_.device).type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert loaded.device_ == torch.device(loaded.net_.device)
    for mode, proba in zip(FIXTURE_MODES, expected):
        loaded.set_params(inference=mode)
        np.testing.assert_allclose(loaded.predict_proba(x), proba, rtol=0, atol=1e-5)
    loaded.set_params(inference="binary")
    np.testing.assert_array_equal(loaded.predict(x), loaded.classes_[expected[0].argmax(1)])


@cuda
def test_cuda_fit_predicts_on_the_gpu():
    clf = fit_quiet(fast(device="cuda"), X, Y)
    assert clf.device_.type == "cuda"
    assert all(p.is_cuda for p in clf.net_.module_.parameters())
    for mode in ("binary", "surrogate", "mc"):
        clf.set_params(inference=mode)
        proba = clf.predict_proba(X)
        assert np.isfinite(proba).all()
        np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-5)
        # the default trains the 1-bit network: its MC network is weaker (test_classifier)
        assert clf.score(X, Y) > (0.7 if mode == "mc" else 0.85), mode
    assert np.isfinite(clf.loss_curve_).all() and clf.n_iter_ == len(clf.flip_ratio_)


@cuda
def test_cuda_fit_warm_start_partial_fit_and_early_stopping():
    clf = fit_quiet(fast(device="cuda", warm_start=True, max_iter=5), X, Y)
    fit_quiet(clf, X, Y)
    assert clf.n_iter_ == 10
    clf.partial_fit(X, Y)
    assert clf.n_iter_ == 11
    es = fit_quiet(fast(device="cuda", early_stopping=True), X, Y)
    assert es.best_validation_score_ == max(es.validation_scores_)


@cuda
def test_cuda_model_on_cpu_predicts_as_on_gpu():
    clf = fit_quiet(fast(device="cuda"), X, Y)
    on_gpu = {m: clf.set_params(inference=m).predict_proba(X) for m in ("binary", "surrogate")}
    clf.net_.module_.to("cpu")
    clf.net_.device = "cpu"
    for mode, proba in on_gpu.items():
        on_cpu = clf.set_params(inference=mode).predict_proba(X)
        np.testing.assert_allclose(on_cpu, proba, rtol=0, atol=1e-5)


@cuda
def test_cuda_pickle_loads_in_a_process_without_cuda(tmp_path):
    clf = fit_quiet(fast(device="cuda", early_stopping=True), X, Y)
    expected = {m: clf.set_params(inference=m).predict_proba(X) for m in ("binary", "surrogate")}
    (tmp_path / "model.pkl").write_bytes(pickle.dumps(clf))
    np.save(tmp_path / "X.npy", X)
    script = """
import pickle, sys, warnings
import numpy as np, torch
assert not torch.cuda.is_available()
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    clf = pickle.load(open(sys.argv[1] + "/model.pkl", "rb"))
assert clf.device_.type == "cpu", clf.device_
X = np.load(sys.argv[1] + "/X.npy")
for mode in ("binary", "surrogate"):
    np.save(sys.argv[1] + f"/{mode}.npy", clf.set_params(inference=mode).predict_proba(X))
"""
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    for mode, proba in expected.items():
        np.testing.assert_allclose(np.load(tmp_path / f"{mode}.npy"), proba, rtol=0, atol=1e-5)


@cuda
@pytest.mark.parametrize("first, then", [("cpu", "auto"), ("cuda", "cpu")])
def test_warm_start_on_another_device_moves_the_model(first, then):
    # a model fitted (or unpickled) on one device, refitted with device resolving to another
    clf = fit_quiet(fast(device=first, warm_start=True, max_iter=3), X, Y)
    clf = load_quiet(pickle.dumps(clf))
    fit_quiet(clf.set_params(device=then), X, Y)
    target = torch.device("cuda" if then == "auto" else then).type
    assert clf.device_.type == target and clf.n_iter_ == 6
    assert all(p.device.type == target for p in clf.net_.module_.parameters())
    state = clf.net_.optimizer_.state_dict()["state"]
    assert all(v.device.type == target for s in state.values() for k, v in s.items() if k != "step")
    assert clf.score(X, Y) > 0.85
