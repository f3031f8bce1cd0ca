"""Tabular benchmark: BinaryNetClassifier next to scikit-learn baselines (prints a table).

On scikit-learn's iris, wine, breast cancer and digits data sets, 5-fold stratified
cross-validation (shuffled, seed 0) of

* ``BinaryNetClassifier`` with its defaults, in a pipeline after ``StandardScaler``
  (scored by its default ``inference="binary"``, the 1-bit network);
* optionally one more ``BinaryNetClassifier`` configuration (``--bnn KEY=VALUE ...``);
* ``MLPClassifier`` with the same hidden layer sizes as the binary network (float32
  reference), after ``StandardScaler``;
* ``LogisticRegression`` after ``StandardScaler``;
* ``HistGradientBoostingClassifier`` (trees: no scaling).

For each: accuracy over the folds (mean and standard deviation), mean fit time per fold and,
for the networks, the mean number of epochs.  The output is a markdown table, preceded by a
line that names the machine, so that it can be pasted into ``docs/benchmarks.rst``.  Not a
test: nothing is asserted.

Usage::

    python benchmarks/tabular.py                     # the full table (minutes on 2 CPU cores)
    python benchmarks/tabular.py --quick             # 3 folds, at most 30 epochs: a smoke run
    python benchmarks/tabular.py --threads 1         # one thread per library (shared machines)
    python benchmarks/tabular.py --bnn init=glorot   # add one BinaryNetClassifier configuration
    python benchmarks/tabular.py --bnn inference='"surrogate"' --datasets digits
    python benchmarks/tabular.py --rst docs/tabular_results.inc   # also write the docs table

``--rst PATH`` writes the same table as a reStructuredText fragment, which
``docs/benchmarks.rst`` includes: re-running with it replaces the table in the docs.
"""

from __future__ import annotations

import argparse
import ast
import os
import platform
import sys
import time
import warnings

import numpy as np
import sklearn
import torch
from sklearn.datasets import load_breast_cancer, load_digits, load_iris, load_wine
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_validate
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits, threadpool_info

import sklearn_bnn
from sklearn_bnn import BinaryNetClassifier

DATASETS = {
    "iris": load_iris,
    "wine": load_wine,
    "breast_cancer": load_breast_cancer,
    "digits": load_digits,
}


def parse_assignment(text: str) -> tuple[str, object]:
    """``"init=glorot"`` -> ``("init", "glorot")``; values are Python literals when they parse."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return key, value  # a bare string such as glorot


def models(args) -> list[tuple[str, object]]:
    """(label, estimator) pairs, in table order."""
    cap = {"max_iter": args.max_iter} if args.max_iter else {}
    seed = args.seed
    bnn = BinaryNetClassifier(random_state=seed, **cap)
    hidden = bnn.hidden_layer_sizes
    rows = [("BinaryNetClassifier (defaults)", make_pipeline(StandardScaler(), bnn))]
    if args.bnn:
        params = dict(args.bnn)
        label = "BinaryNetClassifier (" + ", ".join(f"{k}={v!r}" for k, v in params.items()) + ")"
        extra = BinaryNetClassifier(random_state=seed, **{**cap, **params})
        rows.append((label, make_pipeline(StandardScaler(), extra)))
    mlp = MLPClassifier(hidden, random_state=seed, **cap)
    rows += [
        (f"MLPClassifier {tuple(hidden)}", make_pipeline(StandardScaler(), mlp)),
        ("LogisticRegression", make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))),
        ("HistGradientBoostingClassifier", HistGradientBoostingClassifier(random_state=seed)),
    ]
    return rows


def epochs(estimators) -> str:
    """Mean epochs of the fitted networks ('-' for the other models)."""
    final = [e[-1] if hasattr(e, "steps") else e for e in estimators]
    if not all(isinstance(f, BinaryNetClassifier | MLPClassifier) for f in final):
        return "-"
    return f"{np.mean([f.n_iter_ for f in final]):.0f}"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        load = "load average %.1f at start" % os.getloadavg()[0]
    except OSError:
        load = "load average unknown"
    device = "no GPU used" if not torch.cuda.is_available() else "GPU present (device='auto')"
    pools = sorted({p["num_threads"] for p in threadpool_info()})
    return (
        f"{os.cpu_count()}-core CPU ({cpu}), {device}, {torch.get_num_threads()} torch threads, "
        f"BLAS/OpenMP threads {'/'.join(map(str, pools)) or '-'}, "
        f"{load}; Python {platform.python_version()}, torch {torch.__version__}, "
        f"scikit-learn {sklearn.__version__}, sklearn-bnn {sklearn_bnn.__version__}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 folds, at most 30 epochs")
    parser.add_argument(
        "--bnn", type=parse_assignment, nargs="+", metavar="KEY=VALUE",
        help="one extra BinaryNetClassifier configuration, e.g. init=glorot",
    )
    parser.add_argument("--datasets", nargs="+", choices=list(DATASETS), default=list(DATASETS))
    parser.add_argument("--folds", type=int, default=None, help="CV folds (default 5, 3 with --quick)")
    parser.add_argument("--max-iter", type=int, default=None, help="cap on epochs of both networks")
    parser.add_argument(
        "--threads", type=int, default=None,
        help="threads for torch, BLAS and OpenMP (default: the libraries' own); on a shared "
        "machine use 1: oversubscribed threads slow every model down by an order of magnitude",
    )
    parser.add_argument("--seed", type=int, default=0, help="fold and model seed (default 0)")
    parser.add_argument("--rst", metavar="PATH", help="also write the table as an rst fragment")
    args = parser.parse_args(argv)
    if args.quick:
        args.folds = args.folds or 3
        args.max_iter = args.max_iter or 30
    folds = args.folds or 5
    if args.threads:
        torch.set_num_threads(args.threads)
        threadpool_limits(args.threads)

    setup = (
        f"{folds}-fold stratified CV (shuffled, seed {args.seed}); accuracy mean (sd) over folds; "
        "fit time = mean seconds per fold"
        + (f"; epochs capped at {args.max_iter}" if args.max_iter else "")
        + "."
    )
    where = machine()
    print(f"Machine: {where}.")
    print(setup + "\n", flush=True)
    rows = []
    header = "| dataset | n_samples x n_features, classes | model | accuracy | fit time (s) | epochs |"
    print(header)
    print("|---|---|---|---|---|---|", flush=True)
    cv = StratifiedKFold(folds, shuffle=True, random_state=args.seed)
    start = time.perf_counter()
    for name in args.datasets:
        X, y = DATASETS[name](return_X_y=True)
        shape = f"{X.shape[0]} x {X.shape[1]}, {len(np.unique(y))}"
        for label, estimator in models(args):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                res = cross_validate(estimator, X, y, cv=cv, return_estimator=True, n_jobs=None)
            acc = res["test_score"]
            cells = [
                name, shape, label, f"{acc.mean():.3f} ({acc.std():.3f})",
                f"{res['fit_time'].mean():.2f}", epochs(res["estimator"]),
            ]
            rows.append(cells)
            print("| " + " | ".join(cells) + " |", flush=True)
    total = time.perf_counter() - start
    print(f"\nTotal {total:.0f} s.")
    if args.rst:
        write_rst(args.rst, rows, where, setup, argv, total)
    return 0


def write_rst(path: str, rows: list[list[str]], where: str, setup: str, argv, total: float) -> None:
    """The table as an rst fragment (a list-table) for ``docs/benchmarks.rst`` to include."""
    command = " ".join(["python benchmarks/tabular.py", *(sys.argv[1:] if argv is None else argv)])
    out = [
        f".. Written by `{command}` on {time.strftime('%Y-%m-%d')}; do not edit by hand.",
        "",
        f"Machine: {where}.  {setup}  The whole run took {total:.0f} s.",
        "",
        ".. list-table::",
        "   :header-rows: 1",
        "",
    ]
    header = ["data set", "samples x features, classes", "model", "accuracy", "fit time (s)", "epochs"]
    for cells in [header, *rows]:
        out.append(f"   * - {cells[0]}")
        out += [f"     - {c}" for c in cells[1:]]
    with open(path, "w") as fh:
        fh.write("\n".join(out) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(main())
