"""A linear model of the input code: how far it goes where the estimators' linear term stops.

The estimators' linear term (``linear=True``) is a ridge or logistic regression of the
features themselves; the network learns what it leaves.  This screen measures a linear
model of the network's input instead, the features and their 16-bin thermometer code
(:class:`sklearn_bnn.encoding.ThermometerEncoder`): per feature a step function, an
additive model.  Not a default of anything: a measured lead for the linear term (issue 27's
regressor bar on Hitters).

Per regression table of ``benchmarks/regression.py`` (same folds, same preprocessing):
``Ridge()`` on the features, ``RidgeCV`` (alphas 1e-2 to 1e3, efficient leave-one-out) on
the features and their code, ``MLPRegressor`` on the standardised target, and the default
``BinaryNetRegressor``, and prototypes of that regressor (below) whose linear term is the
ridge of the code (``BNN[code term]``), is fitted on every training row, the early-stopping
rows included (``BNN[all rows]``), or both (``BNN[code term, all rows]``); per
classification table of ``benchmarks/tabular.py``:
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
from sklearn_bnn.deploy.packed import linear_term
from sklearn_bnn.encoding import ThermometerEncoder

RESULTS = Path(__file__).resolve().parent / "results"
ALPHAS = np.logspace(-2, 3, 11)
CLASSIFICATION = ["SwissLabor", "Mroz", "spam7", "mlc_churn", "hpc_data", "Weather"]


class CodeTermRegressor(BinaryNetRegressor):
    """Prototype, not an estimator of the package: the default regressor with its linear
    term fitted on the features and their 16-bin code (``RidgeCV``, alphas as above)
    instead of the features, on the same rows (those the network trains on, not its
    early-stopping rows), the network then learning what it leaves as in the default.

    It overrides two private hooks of the estimator (``_fit_linear_term``,
    ``_linear_offsets``); its ``predict`` is right, its exports are not (their linear term
    reads the features).
    """

    def _fit_linear_term(self, X, y, sample_weight):
        self.code_encoder_ = ThermometerEncoder(16).fit(X)
        Z = self.code_encoder_.transform(X)
        model = RidgeCV(ALPHAS).fit(Z, y, sample_weight=sample_weight)
        return model.coef_.reshape(-1, Z.shape[1]).T, np.atleast_1d(model.intercept_)

    def _linear_offsets(self, X):
        if self.linear_coef_ is None:
            return None, None
        Z = np.asarray(self.code_encoder_.transform(np.asarray(X)), dtype=np.float64)
        return (linear_term(Z, self.linear_coef_, self.linear_intercept_),
                linear_term(Z, *self._linear()))


class AllRowsRegressor(BinaryNetRegressor):
    """Prototype: the default regressor with its linear term fitted on every training row,
    the rows early stopping holds out included (the default fits it on the rows the
    network trains on, so the held-out rows judge the two alike).  Overrides private hooks
    (``_targets``, ``_fit_linear``)."""

    def fit(self, X, y, sample_weight=None):
        self._all_rows = np.asarray(X, dtype=np.float64)
        try:
            return super().fit(X, y, sample_weight)
        finally:
            del self._all_rows

    def _targets(self, y, sample_weight, first, incremental):
        Y, w = super()._targets(y, sample_weight, first, incremental)
        self._all_targets = Y
        return Y, w

    def _fit_linear(self, X, y, sample_weight):
        super()._fit_linear(self._all_rows, self._all_targets, None)
        del self._all_targets


class CodeTermAllRowsRegressor(AllRowsRegressor, CodeTermRegressor):
    """Prototype: both changes, the ridge of the code fitted on every training row."""


def regressors(seed: int) -> dict:
    return {
        "Ridge": Ridge(),
        "RidgeCV[code]": make_pipeline(ThermometerEncoder(16), RidgeCV(ALPHAS)),
        "MLP": TransformedTargetRegressor(
            MLPRegressor(random_state=seed), transformer=StandardScaler()
        ),
        "BNN": BinaryNetRegressor(random_state=seed),
        "BNN[code term]": CodeTermRegressor(random_state=seed),
        "BNN[all rows]": AllRowsRegressor(random_state=seed),
        "BNN[code term, all rows]": CodeTermAllRowsRegressor(random_state=seed),
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
