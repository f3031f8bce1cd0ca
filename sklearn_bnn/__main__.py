"""Command line: ``python -m sklearn_bnn {demo,...} --help``."""

from __future__ import annotations

import argparse
import sys
import time
import warnings


def _timed_fit(model, X, y) -> float:
    """Seconds of ``model.fit(X, y)`` (convergence warnings silenced: the defaults are the
    point)."""
    from sklearn.exceptions import ConvergenceWarning

    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y)
    return time.perf_counter() - start


def _demo(args: argparse.Namespace) -> int:
    from sklearn.datasets import load_digits
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier
    from sklearn.preprocessing import StandardScaler

    from . import BinaryNetClassifier

    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=args.seed
    )
    scaler = StandardScaler().fit(X_train)
    X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
    hidden = tuple(args.hidden)
    print(
        f"digits: {len(X_train)} train / {len(X_test)} test samples, {X.shape[1]} features, "
        f"10 classes; hidden layers {hidden}; seed {args.seed}"
    )

    # the defaults (every hidden layer +-1, the first reading the features and their
    # thermometer code, a logistic-regression term under the network); the network alone
    # (no linear term: the 1-bit network is the whole model); the default with its +-1
    # layers frozen at their initial signs (what the learned signs earn); and the network
    # alone trained through the mean-propagation surrogate (S1)
    configs = [
        ("defaults", {}),
        ("network alone, linear=False", {"linear": False}),
        ("defaults, +-1 layers frozen", {"binary_learning_rate": 0.0}),
        ("network alone, surrogate='deterministic'",
         {"linear": False, "surrogate": "deterministic"}),
    ]  # fmt: skip
    rows, sizes = [], []
    for name, params in configs:
        if args.max_iter is not None:
            params["max_iter"] = args.max_iter
        clf = BinaryNetClassifier(hidden, random_state=args.seed, verbose=args.verbose, **params)
        label = f"BinaryNetClassifier ({name})"
        print(f"fitting {label} ...", end=" ", flush=True)
        seconds = _timed_fit(clf, X_train, y_train)
        print(f"{clf.n_iter_} epochs, {seconds:.1f} s, flips {clf.flip_ratio_.sum():.3f}")
        for mode in ("binary", "surrogate", "mc"):
            clf.set_params(inference=mode)
            rows.append((label, mode, clf.score(X_test, y_test), seconds))
        sizes.append((label, clf.summary().total))

    extra = {} if args.max_iter is None else {"max_iter": args.max_iter}
    baselines = [
        ("MLPClassifier (float64, same sizes)", MLPClassifier(hidden, random_state=args.seed,
                                                              **extra)),
        ("LogisticRegression", LogisticRegression(max_iter=1000)),
        ("HistGradientBoostingClassifier", HistGradientBoostingClassifier(random_state=args.seed)),
    ]  # fmt: skip
    for label, model in baselines:
        print(f"fitting {label} ...", end=" ", flush=True)
        seconds = _timed_fit(model, X_train, y_train)
        print(f"{seconds:.1f} s")
        rows.append((label, "float", model.score(X_test, y_test), seconds))

    width = max(len(r[0]) for r in rows)
    print()
    print(f"{'model':<{width}}  {'inference':<9}  {'test acc':>8}  {'fit s':>6}")
    print(f"{'-' * width}  {'-' * 9}  {'-' * 8}  {'-' * 6}")
    for label, mode, acc, seconds in rows:
        print(f"{label:<{width}}  {mode:<9}  {acc:>8.4f}  {seconds:>6.1f}")
    print()
    for label, summary in sizes[:2]:  # the defaults, the network alone
        print(
            f"{label}: {summary['binary_weights']} binary weights; "
            f"{summary['packed_bytes']} bytes packed vs {summary['float32_bytes']} as float32 "
            f"({summary['float32_bytes'] / summary['packed_bytes']:.1f}x smaller)"
        )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m sklearn_bnn",
        description="sklearn-bnn: stochastic binary neural networks for scikit-learn.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser(
        "demo",
        help="train on scikit-learn's digits and print a comparison table",
        description="Train BinaryNetClassifier on digits (75/25 stratified split, "
        "standardised) with its defaults, as the all-binary network, and as the all-binary "
        "network through the deterministic surrogate, and compare the three inference "
        "modes with MLPClassifier.",
    )
    demo.add_argument(
        "--hidden", type=int, nargs="+", default=[256, 256], help="hidden layer sizes"
    )
    demo.add_argument(
        "--max-iter", type=int, default=None, help="maximum epochs (default: the estimator's)"
    )
    demo.add_argument("--seed", type=int, default=0, help="split and model seed (default 0)")
    demo.add_argument("--verbose", type=int, default=0, help="1 prints one row per epoch")
    demo.set_defaults(func=_demo)

    try:  # the mean-field solver's command, when the solver is installed
        from .meanfield import _cli
    except ImportError:
        pass
    else:
        _cli.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
