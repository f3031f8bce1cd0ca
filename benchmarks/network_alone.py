"""The 1-bit network alone (``linear=False``) at the defaults: every surrogate and gradient
estimator, and the residual family at depth.

Digits, 75/25 stratified split (seed 0), standardised.  Part 1: hidden (256, 256), the
estimator's defaults except ``linear=False`` and the training rule of the row (sampled + ST,
sampled + PSA with logistic noise of scale 0.5, LRT, S1 and the default binary
straight-through), each scored by the 1-bit network (``inference="binary"``) and, where the
training rule has one, by its surrogate read-out, with the sum of ``flip_ratio_``.  The same
rows with the +-1 layers frozen at initialisation (``binary_learning_rate=0``) are the
control.  Part 2: ``architecture="residual"``, width 128, 40 epochs, ``linear=False``,
depths 30 and 50, the estimator's defaults otherwise, with the same control.  Part 3: the
size of the default artefacts (classifier on digits, regressor on diabetes).

Accuracies are seeded; the fit seconds are indicative (one torch thread).  Not a test:
nothing is asserted.

Usage::

    python benchmarks/network_alone.py --out network_alone_cpu
"""

from __future__ import annotations

import argparse
import platform
import time
import warnings
from pathlib import Path

import numpy as np
import sklearn
import torch
from sklearn.datasets import load_diabetes, load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from sklearn_bnn import BinaryNetClassifier, BinaryNetRegressor
from sklearn_bnn.nn.noise import LogisticNoise

RESULTS = Path(__file__).resolve().parent / "results"

RULES = {
    "sampled + ST": dict(surrogate="sampled", gradient_estimator="st"),
    "sampled + PSA": dict(
        surrogate="sampled", gradient_estimator="psa", noise=LogisticNoise(0.5)
    ),
    "LRT": dict(surrogate="lrt"),
    "S1 (deterministic)": dict(surrogate="deterministic"),
    "binary ST (default)": dict(),
}


def data(seed: int):
    X, y = load_digits(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    return train_test_split(X, y, test_size=0.25, random_state=seed, stratify=y)


def fit_row(params: dict, split) -> dict:
    X_train, X_test, y_train, y_test = split
    clf = BinaryNetClassifier(linear=False, **params)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", UserWarning)  # S1's deployability warning
        clf.fit(X_train, y_train)
    seconds = time.perf_counter() - start
    row = {"binary": clf.score(X_test, y_test), "flips": float(np.sum(clf.flip_ratio_)),
           "epochs": clf.n_iter_, "seconds": seconds, "surrogate": np.nan}
    if params.get("surrogate", "binary") != "binary":
        row["surrogate"] = clf.set_params(inference="surrogate").score(X_test, y_test)
    return row


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--depths", type=int, nargs="+", default=[30, 50])
    parser.add_argument("--out", help="write benchmarks/results/OUT.txt")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    split = data(args.seed)
    lines = [
        "# Command: python benchmarks/network_alone.py"
        + (f" --out {args.out}" if args.out else ""),
        f"# Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
        f"{platform.machine()} CPU, 1 torch thread; Python {platform.python_version()}, "
        f"torch {torch.__version__}, scikit-learn {sklearn.__version__}",
        "# digits 75/25 (seed 0), linear=False, defaults otherwise; 1-bit = inference "
        "'binary'; frozen = binary_learning_rate=0",
        "",
        "| network | training rule | 1-bit acc | surrogate acc | flips | 1-bit acc, frozen "
        "| epochs | fit s |",
        "|---|---|---|---|---|---|---|---|",
    ]

    def emit(line):
        lines.append(line)
        print(line, flush=True)

    for line in lines:
        print(line)
    for name, params in RULES.items():
        params = {"hidden_layer_sizes": (256, 256), "random_state": args.seed, **params}
        row = fit_row(params, split)
        frozen = fit_row({**params, "binary_learning_rate": 0.0}, split)
        surrogate = "-" if np.isnan(row["surrogate"]) else f"{row['surrogate']:.4f}"
        emit(f"| plain (256, 256) | {name} | {row['binary']:.4f} | {surrogate} | "
             f"{row['flips']:.3f} | {frozen['binary']:.4f} | {row['epochs']} | "
             f"{row['seconds']:.1f} |")
    for depth in args.depths:
        params = {"hidden_layer_sizes": (128,) * depth, "architecture": "residual",
                  "max_iter": 40, "random_state": args.seed}
        row = fit_row(params, split)
        frozen = fit_row({**params, "binary_learning_rate": 0.0}, split)
        emit(f"| residual, depth {depth}, width 128 | binary ST (default) | "
             f"{row['binary']:.4f} | - | {row['flips']:.3f} | {frozen['binary']:.4f} | "
             f"{row['epochs']} | {row['seconds']:.1f} |")
    emit("")
    emit("Default artefacts (the estimators' defaults, linear term included): saved packed "
         "file against the float32 state dict of the same network")
    emit("")
    emit("| model | binary weights | packed file bytes | float32 state dict bytes | smaller by |")
    emit("|---|---|---|---|---|")
    for label, model, (X, y) in (
        ("BinaryNetClassifier(), digits", BinaryNetClassifier(random_state=args.seed),
         load_digits(return_X_y=True)),
        ("BinaryNetRegressor(), diabetes", BinaryNetRegressor(random_state=args.seed),
         load_diabetes(return_X_y=True)),
    ):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(StandardScaler().fit_transform(X), y)
        summary = model.summary()
        files = summary.files
        ratio = files["float32_state_dict"] / files["packed_file"]
        emit(f"| {label} | {summary.total['binary_weights']} | {files['packed_file']} | "
             f"{files['float32_state_dict']} | {ratio:.1f}x |")
    if args.out:
        (RESULTS / f"{args.out}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
