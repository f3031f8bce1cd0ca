"""The regressor's linear term of the input code: each part of the default, removed.

The estimators' linear term (``linear=True``) is fitted first and kept fixed; the network
learns what it leaves.  The regressor's default term (since issue 27) is a ridge of the
network's input, the features and their 16-bin thermometer code (``linear_input="code"``:
per feature a step function, an additive model), its penalty chosen by ``RidgeCV``'s
leave-one-out (``linear_alpha="auto"``), fitted on every row given to ``fit``, early
stopping's held-out fifth included (``linear_rows="all"``).  This ablation removes one part
at a time, and all three (the earlier default: a ``Ridge()`` of the features on the
training rows).

Per regression table of ``benchmarks/regression.py`` (same folds, same preprocessing):
``Ridge()`` on the features, ``RidgeCV`` (``LINEAR_ALPHA_GRID``, efficient leave-one-out)
on the features and their code, ``MLPRegressor`` on the standardised target, and the
``BinaryNetRegressor`` variants; per classification table of ``benchmarks/tabular.py``:
``LogisticRegression`` on the features and on the features and their code, and the
default ``BinaryNetClassifier``.  Nothing is asserted.

Usage::

    python benchmarks/linear_code.py --out linear_code_cpu
    python benchmarks/linear_code.py --seed 1 --out linear_code_cpu_seed1
    python benchmarks/linear_code.py --holdout --out linear_code_holdout_cpu
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.compose import TransformedTargetRegressor
from sklearn.linear_model import LogisticRegression, Ridge, RidgeCV
from sklearn.metrics import r2_score
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.neural_network import MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _tables  # benchmarks/ is not a package: imported from the path above

from sklearn_bnn import BinaryNetClassifier, BinaryNetRegressor
from sklearn_bnn._base import LINEAR_ALPHA_GRID
from sklearn_bnn.encoding import ThermometerEncoder

RESULTS = Path(__file__).resolve().parent / "results"
CLASSIFICATION = ["SwissLabor", "Mroz", "spam7", "mlc_churn", "hpc_data", "Weather"]
#: Each part of the default term removed, and all three (the default before issue 27).
VARIANTS = {
    "BNN": {},
    "BNN[features]": dict(linear_input="features"),
    "BNN[alpha 1]": dict(linear_alpha=1.0),
    "BNN[train rows]": dict(linear_rows="train"),
    "BNN[earlier default]": dict(linear_input="features", linear_alpha=1.0, linear_rows="train"),
}


def regressors(seed: int) -> dict:
    return {
        "Ridge": Ridge(),
        "RidgeCV[code]": make_pipeline(ThermometerEncoder(16), RidgeCV(LINEAR_ALPHA_GRID)),
        "MLP": TransformedTargetRegressor(
            MLPRegressor(random_state=seed), transformer=StandardScaler()
        ),
        **{k: BinaryNetRegressor(random_state=seed, **v) for k, v in VARIANTS.items()},
    }


def classifiers(seed: int) -> dict:
    return {
        "LR": LogisticRegression(max_iter=1000),
        "LR[code]": make_pipeline(ThermometerEncoder(16), LogisticRegression(max_iter=2000)),
        "BNN": BinaryNetClassifier(random_state=seed),
    }


def scores(X, y, splitter, build, score) -> dict:
    out: dict[str, list[float]] = {}
    for train, test in splitter.split(X, y):
        prep = _tables.preprocessor(X.iloc[train]).fit(X.iloc[train])
        Xtr, Xte = prep.transform(X.iloc[train]), prep.transform(X.iloc[test])
        ytr, yte = y.iloc[train].to_numpy(), y.iloc[test].to_numpy()
        for label, model in build().items():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model.fit(Xtr, ytr)
            out.setdefault(label, []).append(score(yte, model.predict(Xte)))
    return {k: float(np.mean(v)) for k, v in out.items()}


def table(title: str, rows: dict, fmt: str) -> list[str]:
    labels = list(next(iter(rows.values())))
    lines = [title, "| data set | " + " | ".join(labels) + " |", "|---" * (len(labels) + 1) + "|"]
    for name, r in rows.items():
        lines.append(f"| {name} | " + " | ".join(format(r[k], fmt) for k in labels) + " |")
    means = {k: np.mean([r[k] for r in rows.values()]) for k in labels}
    lines.append("| mean | " + " | ".join(format(means[k], fmt) for k in labels) + " |")
    return lines


def gaps(rows: dict, reference: str = "MLP", linear: str = "Ridge") -> list[str]:
    """Per model: mean and worst gap to ``reference``, and the worst over the tables where
    ``reference`` beats ``linear`` by 0.05 or more (the non-linear ones)."""
    nonlinear = [n for n, r in rows.items() if r[reference] - r[linear] >= 0.05]
    lines = [f"Gap to {reference} (R^2); non-linear tables ({reference} at least 0.05 above "
             f"{linear}): {', '.join(nonlinear)}",
             "| model | mean gap | worst gap | worst gap, non-linear |", "|---|---|---|---|"]
    for label in next(iter(rows.values())):
        g = {n: r[label] - r[reference] for n, r in rows.items()}
        worst = min(g, key=g.get)
        nl = min(nonlinear, key=g.get) if nonlinear else None
        lines.append(f"| {label} | {np.mean(list(g.values())):+.3f} | {g[worst]:+.3f} ({worst}) | "
                     + (f"{g[nl]:+.3f} ({nl}) |" if nl else "- |"))
    return lines


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", metavar="NAME", help="write benchmarks/results/NAME.txt")
    p.add_argument("--holdout", action="store_true",
                   help="the regression tables that chose no default "
                   "(_tables.HOLDOUT_REGRESSION_TABLES), and no classification")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    reg = {}
    suite = _tables.HOLDOUT_REGRESSION_TABLES if args.holdout else _tables.REGRESSION_TABLES
    for name in suite:
        X, y = _tables.load_regression(name)
        cv = KFold(5, shuffle=True, random_state=args.seed)
        reg[name] = scores(X, y, cv, lambda: regressors(args.seed), r2_score)
        print(name, {k: round(v, 3) for k, v in reg[name].items()}, flush=True)
    clf = {}
    for name in [] if args.holdout else CLASSIFICATION:
        X, y = _tables.load(name)
        cv = StratifiedKFold(5, shuffle=True, random_state=args.seed)
        clf[name] = scores(X, y, cv, lambda: classifiers(args.seed), lambda a, b: np.mean(a == b))
        print(name, {k: round(v, 4) for k, v in clf[name].items()}, flush=True)
    lines = [
        f"# python benchmarks/linear_code.py --seed {args.seed}{' --holdout' * args.holdout}; "
        f"5-fold, seed {args.seed}; "
        f"torch {torch.__version__}, 1 torch thread",
        "",
        *table("Regression, mean R^2 over folds", reg, ".3f"),
        "",
        *gaps(reg),
    ]
    if clf:
        lines += ["", *table("Classification, mean accuracy over folds", clf, ".4f")]
    print("\n".join(lines))
    if args.out:
        (RESULTS / f"{args.out}.txt").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
