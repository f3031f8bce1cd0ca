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
``BinaryNetRegressor``, and a prototype of that regressor whose linear term is the ridge
of the code (``BNN[code term]``, below); per classification table of
``benchmarks/tabular.py``:
``LogisticRegression`` on the features and on the features and their code, and the
default ``BinaryNetClassifier``.  Nothing is asserted.

Usage::

    python benchmarks/linear_code.py --out linear_code_cpu
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


def regressors(seed: int) -> dict:
    return {
        "Ridge": Ridge(),
        "RidgeCV[code]": make_pipeline(ThermometerEncoder(16), RidgeCV(ALPHAS)),
        "MLP": TransformedTargetRegressor(
            MLPRegressor(random_state=seed), transformer=StandardScaler()
        ),
        "BNN": BinaryNetRegressor(random_state=seed),
        "BNN[code term]": CodeTermRegressor(random_state=seed),
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


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", metavar="NAME", help="write benchmarks/results/NAME.txt")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    reg = {}
    for name in _tables.REGRESSION_TABLES:
        X, y = _tables.load_regression(name)
        cv = KFold(5, shuffle=True, random_state=args.seed)
        reg[name] = scores(X, y, cv, lambda: regressors(args.seed), r2_score)
        print(name, {k: round(v, 3) for k, v in reg[name].items()}, flush=True)
    clf = {}
    for name in CLASSIFICATION:
        X, y = _tables.load(name)
        cv = StratifiedKFold(5, shuffle=True, random_state=args.seed)
        clf[name] = scores(X, y, cv, lambda: classifiers(args.seed), lambda a, b: np.mean(a == b))
        print(name, {k: round(v, 4) for k, v in clf[name].items()}, flush=True)
    lines = [
        f"# python benchmarks/linear_code.py --seed {args.seed}; 5-fold, seed {args.seed}; "
        f"torch {torch.__version__}, 1 torch thread",
        "",
        *table("Regression, mean R^2 over folds", reg, ".3f"),
        "",
        *table("Classification, mean accuracy over folds", clf, ".4f"),
    ]
    print("\n".join(lines))
    if args.out:
        (RESULTS / f"{args.out}.txt").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
