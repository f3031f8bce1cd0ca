"""The deployed default models fed float32, as skl2onnx and C applications feed them.

For each table the default ``BinaryNetClassifier`` (or ``BinaryNetRegressor``) is fitted
behind the suite's numeric preprocessing (a ``ColumnTransformer``: median imputation and
``StandardScaler``), on all rows, and then:

* converted with ``sklearn_bnn.onnx.to_onnx`` for float32 input and run by onnxruntime on
  the same rows in float32: rows whose label differs from ``predict`` and the largest
  difference of the probabilities (regression: of the values, relative to the target's
  standard deviation);
* exported to C (``export_binary().to_c``), compiled with ``cc -O2`` and fed the float32
  output of the fitted preprocessing (scikit-learn's float32 path): rows whose label (value)
  differs from ``predict``;
* ``predict`` again on every row moved one float32 ulp down and up (``np.nextafter``): rows
  whose label changes (regression: largest relative change).

The control (``thresholds = quantile cuts``) fits the same model with the input code's
thresholds placed on the quantile cuts themselves, as before the change, which sit on
training values of discrete features.  Only the thresholds differ between the two rows of a
table, so the difference is theirs.

Run: ``python benchmarks/float32_parity.py --out float32_parity_cpu``.
"""

from __future__ import annotations

import argparse
import ctypes
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.exceptions import ConvergenceWarning
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, str(Path(__file__).parent))
import _tables  # noqa: E402

import sklearn_bnn.encoding as encoding  # noqa: E402
from sklearn_bnn import BinaryNetClassifier, BinaryNetRegressor  # noqa: E402
from sklearn_bnn import onnx as bnn_onnx  # noqa: E402

CLASSIFICATION = ("digits", "biopsy", "breast_cancer", "spam7")
REGRESSION = ("diabetes", "concrete")
RESULTS = Path(__file__).parent / "results"


def quantile_cut_thresholds(cuts: np.ndarray, column: np.ndarray) -> np.ndarray:
    """The thresholds before the change: the distinct quantile cuts above the minimum."""
    low = column.min()
    t = np.unique(cuts)
    t = t[t > low]
    if len(t) == 0:
        above = column[column > low]
        if len(above):
            t = np.array([above.min()], dtype=column.dtype)
    return t


def numeric_table(name: str, regression: bool) -> tuple[np.ndarray, np.ndarray]:
    X, y = _tables.load_regression(name) if regression else _tables.load(name)
    numeric, categorical = _tables.split_columns(X)
    assert not categorical, f"{name} has categorical columns"
    return X[numeric].to_numpy(dtype=np.float64), y.to_numpy()


def pipeline(n_features: int, estimator):
    half = n_features // 2  # two branches, as a ColumnTransformer pipeline has
    columns = ColumnTransformer(
        [
            ("a", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()),
             list(range(half))),
            ("b", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()),
             list(range(half, n_features))),
        ]
    )
    return make_pipeline(columns, estimator)


def c_outputs(pipe, X32: np.ndarray, regression: bool, directory: Path) -> np.ndarray:
    """Labels (class indices) or values of the compiled C export on float32 input."""
    packed = pipe[-1].export_binary()
    header, source = packed.to_c(directory, name="bnn")
    library = directory / "bnn.so"
    command = [shutil.which("cc"), "-std=c99", "-O2", "-shared", "-fPIC", str(source),
               "-o", str(library), "-lm"]
    subprocess.run(command, check=True, capture_output=True)
    lib = ctypes.CDLL(str(library))
    Z = np.ascontiguousarray(pipe[:-1].transform(X32), dtype=np.float32)
    if regression:
        out = np.empty((len(Z), 1))
        for z, o in zip(Z, out):
            lib.bnn_predict(ctypes.c_void_p(z.ctypes.data), ctypes.c_void_p(o.ctypes.data))
        return out[:, 0]
    out = np.empty(len(Z), dtype=np.intc)
    lib.bnn_predict_batch(ctypes.c_void_p(Z.ctypes.data), ctypes.c_long(len(Z)),
                          out.ctypes.data_as(ctypes.c_void_p))
    return pipe[-1].classes_[out]


def measure(name: str, regression: bool, control: bool) -> dict:
    X, y = numeric_table(name, regression)
    estimator = BinaryNetRegressor(random_state=0) if regression else BinaryNetClassifier(
        random_state=0)
    original = encoding._column_thresholds
    if control:
        encoding._column_thresholds = quantile_cut_thresholds
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            pipe = pipeline(X.shape[1], estimator).fit(X, y)
    finally:
        encoding._column_thresholds = original
    X32 = X.astype(np.float32)
    expected = pipe.predict(X32)
    model = bnn_onnx.to_onnx(pipe, X32[:1], options=None if regression else {"zipmap": False})
    row = {"table": name, "rows": len(X), "control": control}
    scale = float(np.std(y)) if regression else 1.0
    if regression:
        onnx_values = bnn_onnx.OnnxPredictor(model).predict(X32).ravel()
        row["onnx"] = float(np.abs(onnx_values - expected).max() / scale)
    else:
        label, proba = bnn_onnx.OnnxPredictor(model).run(X32)
        row["onnx_labels"] = int((label != expected).sum())
        row["onnx"] = float(np.abs(proba - pipe.predict_proba(X32)).max())
    with tempfile.TemporaryDirectory() as tmp:
        c = c_outputs(pipe, X32, regression, Path(tmp))
    row["c"] = float(np.abs(c - expected).max() / scale) if regression else int(
        (c != expected).sum())
    base = pipe.predict(X)
    moved = [pipe.predict(np.nextafter(X32, np.float32(d)).astype(np.float64))
             for d in (-np.inf, np.inf)]
    if regression:
        row["ulp"] = max(float(np.abs(m - base).max() / scale) for m in moved)
    else:
        row["ulp"] = sum(int((m != base).sum()) for m in moved)
    return row


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None, help="write results/<out>.txt as well")
    args = parser.parse_args(argv)
    lines = [
        "# Command: python benchmarks/float32_parity.py "
        + (f"--out {args.out}" if args.out else ""),
        f"# Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
        f"{platform.processor() or platform.machine()}, Python {platform.python_version()}",
        "# Default models behind a two-branch ColumnTransformer (median imputation, "
        "StandardScaler), fitted on all rows, fed float32.",
        "",
        "Classification: rows whose label differs from predict, largest |probability "
        "difference|, rows whose label moves with one ulp (down and up summed)",
        "",
        "| table | rows | thresholds | ONNX labels differ | ONNX max abs dproba | "
        "C labels differ | labels moved by one ulp |",
        "|---|---|---|---|---|---|---|",
    ]
    print("\n".join(lines), flush=True)

    def emit(line):
        lines.append(line)
        print(line, flush=True)

    for name in CLASSIFICATION:
        for control in (False, True):
            r = measure(name, False, control)
            kind = "quantile cuts (before)" if control else "between values (default)"
            emit(f"| {name} | {r['rows']} | {kind} | {r['onnx_labels']} | {r['onnx']:.2g} | "
                 f"{r['c']} | {r['ulp']} |")
    emit("")
    emit("Regression: largest |difference| from predict relative to std(y): ONNX, C, and "
         "predict on rows moved one ulp")
    emit("")
    emit("| table | rows | thresholds | ONNX | C | one ulp |")
    emit("|---|---|---|---|---|---|")
    for name in REGRESSION:
        for control in (False, True):
            r = measure(name, True, control)
            kind = "quantile cuts (before)" if control else "between values (default)"
            emit(f"| {name} | {r['rows']} | {kind} | {r['onnx']:.2g} | {r['c']:.2g} | "
                 f"{r['ulp']:.2g} |")
    if args.out:
        (RESULTS / f"{args.out}.txt").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
