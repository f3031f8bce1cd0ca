"""The deployed default models fed float32, as skl2onnx and C applications feed them.

For each table the default ``BinaryNetClassifier`` (or ``BinaryNetRegressor``) is fitted
behind the suite's numeric preprocessing (a ``ColumnTransformer``: median imputation and
``StandardScaler``) on 75% of the rows (seed 0), and then, on those training rows and on the
25% it never saw (what a deployed model is fed):

* converted with ``sklearn_bnn.onnx.to_onnx`` for float32 input and run by onnxruntime on
  the same rows in float32: rows whose label differs from ``predict`` and the largest
  difference of the probabilities (regression: of the values, relative to the target's
  standard deviation);
* exported to C (``export_binary().to_c``), compiled with ``cc -O2`` and fed the float32
  output of the fitted preprocessing (scikit-learn's float32 path): rows whose label (value)
  differs from ``predict``;
* ``predict`` again on every row moved one float32 ulp down and up (``np.nextafter``): rows
  whose label changes (regression: largest relative change).

Two controls fit the same model with the input code's thresholds placed elsewhere: on the
quantile cuts themselves (``quantile cuts``, the first placement), which sit on training
values of discrete features, and at the midpoints of the gaps between adjacent distinct
training values (``midpoints``, the second), which sit on a new row's value wherever one
grid value is missing from the training rows.  The default places them at the golden
section of those gaps.  Only the thresholds differ between the rows of a table, so the
differences are theirs.

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
from sklearn.model_selection import train_test_split
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


PLACEMENTS = {
    "golden section (default)": None,
    "midpoints (before)": "midpoints",
    "quantile cuts (first)": "cuts",
}


def fitted(X, y, regression: bool, placement: str | None):
    estimator = BinaryNetRegressor(random_state=0) if regression else BinaryNetClassifier(
        random_state=0)
    original = encoding._column_thresholds, encoding.CUT_FRACTION
    if placement == "cuts":
        encoding._column_thresholds = quantile_cut_thresholds
    elif placement == "midpoints":
        encoding.CUT_FRACTION = 0.5  # the middle of each gap
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            return pipeline(X.shape[1], estimator).fit(X, y)
    finally:
        encoding._column_thresholds, encoding.CUT_FRACTION = original


def compare(pipe, model, X: np.ndarray, regression: bool, scale: float) -> dict:
    """ONNX, C and one-ulp moves against ``predict`` on the rows ``X``."""
    X32 = X.astype(np.float32)
    expected = pipe.predict(X32)
    row = {}
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


def measure(name: str, regression: bool, placement: str | None) -> dict:
    """Per row set (``"train"``, ``"new"``): the comparisons of :func:`compare`."""
    X, y = numeric_table(name, regression)
    train, new = train_test_split(
        np.arange(len(y)), test_size=0.25, random_state=0, stratify=None if regression else y
    )
    pipe = fitted(X[train], y[train], regression, placement)
    model = bnn_onnx.to_onnx(
        pipe, X[:1].astype(np.float32), options=None if regression else {"zipmap": False}
    )
    scale = float(np.std(y)) if regression else 1.0
    return {
        "train": compare(pipe, model, X[train], regression, scale),
        "new": compare(pipe, model, X[new], regression, scale),
        "rows": (len(train), len(new)),
    }


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
        "StandardScaler), fitted on 75% of the rows (seed 0), fed float32; each cell "
        "'training rows / new rows' (the 25% the fit never saw).",
        "",
        "Classification: rows whose label differs from predict, largest |probability "
        "difference|, rows whose label moves with one ulp (down and up summed)",
        "",
        "| table | rows (train / new) | thresholds | ONNX labels differ | ONNX max abs dproba "
        "| C labels differ | labels moved by one ulp |",
        "|---|---|---|---|---|---|---|",
    ]
    print("\n".join(lines), flush=True)

    def emit(line):
        lines.append(line)
        print(line, flush=True)

    def both(r, key, spec):
        return f"{format(r['train'][key], spec)} / {format(r['new'][key], spec)}"

    for name in CLASSIFICATION:
        for kind, placement in PLACEMENTS.items():
            r = measure(name, False, placement)
            emit(f"| {name} | {r['rows'][0]} / {r['rows'][1]} | {kind} | "
                 f"{both(r, 'onnx_labels', 'd')} | {both(r, 'onnx', '.2g')} | "
                 f"{both(r, 'c', 'd')} | {both(r, 'ulp', 'd')} |")
    emit("")
    emit("Regression: largest |difference| from predict relative to std(y): ONNX, C, and "
         "predict on rows moved one ulp")
    emit("")
    emit("| table | rows (train / new) | thresholds | ONNX | C | one ulp |")
    emit("|---|---|---|---|---|---|")
    for name in REGRESSION:
        for kind, placement in PLACEMENTS.items():
            r = measure(name, True, placement)
            emit(f"| {name} | {r['rows'][0]} / {r['rows'][1]} | {kind} | "
                 f"{both(r, 'onnx', '.2g')} | {both(r, 'c', '.2g')} | {both(r, 'ulp', '.2g')} |")
    if args.out:
        (RESULTS / f"{args.out}.txt").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
