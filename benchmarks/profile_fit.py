"""Where the time of a default ``BinaryNetClassifier()`` fit goes, next to ``MLPClassifier()``
(with ``--regression``: ``BinaryNetRegressor()`` next to ``MLPRegressor()``).

For each data set (the preprocessing of ``benchmarks/tabular.py``, fitted on the training
rows of its first stratified fold; ``--regression``: the tables and the first fold of
``benchmarks/regression.py``), this script

1. times ``BinaryNetClassifier()`` and ``MLPClassifier()`` (defaults, ``random_state=0``)
   interleaved in one process, ``--repeats`` times each, and reports the median fit times
   and the median of the per-repeat ratios BNN / MLP;
2. runs ``--repeats`` more BNN fits with timers wrapped around the stages of the fit
   (stack-based, so each stage's own time excludes the stages timed inside it) and splits
   the median fit into fixed per-fit cost, per-epoch cost (callbacks, history, iterators),
   the batch loop's bookkeeping and the per-step cost (forward and loss, backward, optimiser,
   zeroing gradients, projection, the rest of the step's Python).

Timers cost about a microsecond per call, so the instrumented fits run a little slower than
the plain ones of step 1; the shares are what to read.  Not a test: nothing is asserted.

Usage::

    python benchmarks/profile_fit.py                         # wine biopsy penguins digits Default
    python benchmarks/profile_fit.py --datasets wine --repeats 9
    python benchmarks/profile_fit.py --out fit_profile_cpu   # benchmarks/results/NAME.txt
    python benchmarks/profile_fit.py --reference 25a1974      # and that commit's fit, interleaved
    python benchmarks/profile_fit.py --regression --datasets diabetes Hitters

``--reference REV`` extracts ``sklearn_bnn`` as it was at git revision ``REV`` into a temporary
folder (as package ``sklearn_bnn_ref``) and adds its default fit to the interleaved timings:
before/after ratios measured in one process, under the same load.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.neural_network import MLPClassifier, MLPRegressor
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's package
import _tables  # benchmarks/ is not a package: imported from the path above

import sklearn_bnn
from sklearn_bnn import BinaryNetClassifier, BinaryNetRegressor, _training, encoding
from sklearn_bnn.nn import network

DATASETS = ("wine", "biopsy", "penguins", "digits", "Default")
REGRESSION_DATASETS = ("diabetes", "Hitters", "Carseats", "Boston", "CASchools", "Diamond")
#: The estimator timed and its baseline; ``--regression`` switches to the regressors.
MODELS = {"BNN": BinaryNetClassifier, "MLP": MLPClassifier}


class Timers:
    """Inclusive and own (children excluded) seconds and call counts per label."""

    def __init__(self) -> None:
        self.total = defaultdict(float)
        self.own = defaultdict(float)
        self.calls = defaultdict(int)
        self._stack: list[list[float]] = []  # [children seconds] per open timer

    @contextlib.contextmanager
    def time(self, label: str):
        self._stack.append([0.0])
        start = time.perf_counter()
        try:
            yield
        finally:
            elapsed = time.perf_counter() - start
            children = self._stack.pop()[0]
            self.total[label] += elapsed
            self.own[label] += elapsed - children
            self.calls[label] += 1
            if self._stack:
                self._stack[-1][0] += elapsed


def _wrap(owner, name: str, timers: Timers, label: str | None = None, by_arg: bool = False):
    """Replace ``owner.name`` by a timed version; returns an undo function."""
    original = owner.__dict__[name]

    @functools.wraps(original)
    def timed(*args, **kwargs):
        key = label or name
        if by_arg:  # notify: one label per callback method
            key = f"{key}:{args[1]}"
        with timers.time(key):
            return original(*args, **kwargs)

    setattr(owner, name, timed)
    return lambda: setattr(owner, name, original)


def _callback_classes():
    classes = [
        getattr(_training, n)
        for n in ("FiniteLoss", "FlipRatio", "EpochCheckpoint", "LearningRateSchedule",
                  "ValidScore")
    ]
    from skorch.callbacks import EarlyStopping, EpochTimer, PassthroughScoring

    return [*classes, EarlyStopping, EpochTimer, PassthroughScoring]


HOOKS = ("on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end",
         "on_batch_begin", "on_batch_end", "on_grad_computed")


@contextlib.contextmanager
def instrumented(timers: Timers):
    """Timers around the stages of a fit, for the duration of the block."""
    undo = []
    for name in ("_prepare", "_fit_linear", "_build_net", "_configure", "_run_epochs",
                 "_finish", "_check_deployable", "_collect"):
        owner = next(c for c in MODELS["BNN"].__mro__ if name in c.__dict__)
        undo.append(_wrap(owner, name, timers))
    undo.append(_wrap(MODELS["BNN"], "fit", timers))
    undo.append(_wrap(encoding.ThermometerEncoder, "fit", timers, "encoder.fit"))
    undo.append(_wrap(encoding.ThermometerEncoder, "transform", timers, "encoder.transform"))
    net_cls = _training.SBNNet
    for name in ("fit_loop", "initialize", "notify", "_zero_grad_optimizer"):
        owner = next(c for c in net_cls.__mro__ if name in c.__dict__)
        undo.append(_wrap(owner, name, timers, by_arg=name == "notify"))
    for name in ("run_single_epoch", "train_step", "train_step_single", "get_loss",
                 "validation_step"):
        owner = next(c for c in net_cls.__mro__ if name in c.__dict__)
        undo.append(_wrap(owner, name, timers))
    # the fast path's helpers (sklearn_bnn._training), where this checkout has them
    helpers = {"_optimizer_step": "optimizer.step", "_zero_grad": "_zero_grad_optimizer"}
    for name, label in helpers.items():
        if name in _training.__dict__:
            undo.append(_wrap(_training, name, timers, label))
    if "_optimizer_step" not in _training.__dict__:
        undo.append(_wrap(torch.optim.Adam, "step", timers, "optimizer.step"))
    undo.append(_wrap(torch.Tensor, "backward", timers, "backward"))
    undo.append(_wrap(network.BinaryNetwork, "project_", timers, "project_"))
    for cls in _callback_classes():
        for hook in HOOKS:
            if hook in cls.__dict__:
                undo.append(_wrap(cls, hook, timers, f"{cls.__name__}.{hook}"))
    try:
        yield timers
    finally:
        for fn in reversed(undo):
            fn()


def _fit(estimator, X, y) -> float:
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        estimator.fit(X, y)
    return time.perf_counter() - start


def load_fold(name: str):
    """The training rows of fold 0 of the suite's CV, preprocessed as the suite does."""
    if MODELS["BNN"] is BinaryNetRegressor:
        X, y = _tables.load_regression(name)
        train, _ = next(KFold(5, shuffle=True, random_state=0).split(X))
    else:
        X, y = _tables.load(name, None, seed=0)
        train, _ = next(StratifiedKFold(5, shuffle=True, random_state=0).split(X, y))
    prep = _tables.preprocessor(X).fit(X.iloc[train])
    return prep.transform(X.iloc[train]), y.iloc[train].to_numpy()


def reference_package(rev: str, folder: str):
    """``sklearn_bnn`` at git revision ``rev``, imported as ``sklearn_bnn_ref`` (its imports
    within the package are relative)."""
    root = Path(__file__).resolve().parent.parent
    archive = subprocess.run(["git", "-C", str(root), "archive", rev, "sklearn_bnn"],
                             check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", folder], input=archive, check=True)
    os.rename(Path(folder) / "sklearn_bnn", Path(folder) / "sklearn_bnn_ref")
    sys.path.insert(0, folder)
    return importlib.import_module("sklearn_bnn_ref")


def side_by_side(X, y, repeats: int, reference=None) -> dict:
    """Median fit seconds of each model and median per-repeat ratios, interleaved (the
    order rotates from repeat to repeat)."""
    makers = {"bnn": lambda: MODELS["BNN"](random_state=0),
              "mlp": lambda: MODELS["MLP"](random_state=0)}
    if reference is not None:
        makers["ref"] = lambda: getattr(reference, MODELS["BNN"].__name__)(random_state=0)
    labels = list(makers)
    times = {label: [] for label in labels}
    for i in range(repeats):
        for label in labels[i % len(labels):] + labels[:i % len(labels)]:
            times[label].append(_fit(makers[label](), X, y))
    t = {label: np.array(v) for label, v in times.items()}
    out = {label: float(np.median(v)) for label, v in t.items()}
    out["ratio"] = float(np.median(t["bnn"] / t["mlp"]))
    if reference is not None:
        out["ref_ratio"] = float(np.median(t["ref"] / t["mlp"]))
        out["after_before"] = float(np.median(t["bnn"] / t["ref"]))
    return out


def breakdown(X, y, repeats: int) -> tuple[dict, int, int]:
    """Per-fit seconds of each stage (averaged over ``repeats`` instrumented fits)."""
    timers = Timers()
    with instrumented(timers):
        for _ in range(repeats):
            clf = MODELS["BNN"](random_state=0)
            _fit(clf, X, y)
    n_epochs = clf.n_iter_
    n_steps = sum(row.get("train_batch_count", 0) for row in clf.net_.history)
    t, own = timers.total, timers.own
    per = {k: v / repeats for k, v in t.items()}
    own = {k: v / repeats for k, v in own.items()}
    notify = {k: v for k, v in per.items() if k.startswith("notify:")}
    hooks = {k: v for k, v in per.items() if "." in k and k.split(".")[-1] in HOOKS}
    batch_hooks = ("on_batch_begin", "on_batch_end", "on_grad_computed")
    epoch_hooks = ("on_epoch_begin", "on_epoch_end")
    train_hooks = ("on_train_begin", "on_train_end")
    rows = {}
    rows["fit (total)"] = per["fit"]
    fixed = {
        "validate + encode (_prepare)": per.get("_prepare", 0.0),
        "  of which encoder fit": per.get("encoder.fit", 0.0),
        "  of which encoder transform": per.get("encoder.transform", 0.0),
        "  of which linear term fit": per.get("_fit_linear", 0.0),
        "build net (skorch initialize, init)": per.get("_build_net", 0.0),
        "configure (callbacks, params)": per.get("_configure", 0.0),
        "train begin/end callbacks": sum(per.get(f"notify:{h}", 0.0) for h in train_hooks),
        "finish (_collect, _check_deployable)": per.get("_finish", 0.0),
        "  of which _check_deployable": per.get("_check_deployable", 0.0),
    }
    fixed["rest of fit (sklearn wrapper, RNG fork, skorch checks)"] = (
        per["fit"] - per.get("_prepare", 0.0) - per.get("_build_net", 0.0)
        - per.get("_configure", 0.0) - per.get("fit_loop", 0.0) - per.get("_finish", 0.0)
    )
    fixed["rest of fit_loop (datasets, iterators)"] = (
        own.get("fit_loop", 0.0) - 0.0
    )
    epoch = {
        f"epoch callbacks: {k}": v for k, v in sorted(hooks.items())
        if k.split(".")[-1] in epoch_hooks
    }
    epoch["epoch notify, other (skorch's own hooks)"] = (
        sum(per.get(f"notify:{h}", 0.0) for h in epoch_hooks) - sum(epoch.values())
    )
    epoch["run_single_epoch own (batching, loss copies, history rows)"] = own.get(
        "run_single_epoch", 0.0)
    if "validation_step" in per:
        epoch["validation loss (skorch validation_step)"] = per["validation_step"]
    batch = {
        f"batch notify: {h}": per.get(f"notify:{h}", 0.0) for h in batch_hooks
        if f"notify:{h}" in per
    }
    step = {
        "forward + loss (train_step_single own)": own.get("train_step_single", 0.0)
        + own.get("get_loss", 0.0),
        "backward": per.get("backward", 0.0),
        "optimizer step (Adam own)": own.get("optimizer.step", 0.0),
        "zero_grad": per.get("_zero_grad_optimizer", 0.0),
        "project_": per.get("project_", 0.0),
        "train_step own (skorch plumbing)": own.get("train_step", 0.0),
    }
    del notify
    return {"fixed": fixed, "epoch": epoch, "batch": batch, "step": step,
            "total": per["fit"]}, n_epochs, n_steps


def table(name: str, shape, sbs: dict, parts: dict, n_epochs: int, n_steps: int) -> list[str]:
    total = parts["total"]
    lines = [
        f"## {name}: {shape[0]} rows x {shape[1]} features; {n_epochs} epochs, "
        f"{n_steps} steps per fit",
        f"side by side (plain fits, medians): BNN {sbs['bnn'] * 1e3:.1f} ms, "
        f"MLP {sbs['mlp'] * 1e3:.1f} ms, BNN/MLP {sbs['ratio']:.2f}"
        + (f"; reference BNN {sbs['ref'] * 1e3:.1f} ms, reference/MLP {sbs['ref_ratio']:.2f}, "
           f"BNN/reference {sbs['after_before']:.2f}" if "ref" in sbs else ""),
        f"instrumented BNN fit (mean): {total * 1e3:.1f} ms",
        "",
        "| stage | ms per fit | share | us per step |",
        "|---|---|---|---|",
    ]
    for group, title in (("fixed", "per fit"), ("epoch", "per epoch"),
                         ("batch", "per batch (callbacks)"), ("step", "per step")):
        items = parts[group]
        subtotal = sum(v for k, v in items.items() if not k.startswith("  "))
        lines.append(f"| **{title}** | **{subtotal * 1e3:.2f}** | **{subtotal / total:.0%}** | "
                     f"{subtotal / n_steps * 1e6:.0f} |")
        for label, value in items.items():
            lines.append(f"| {label} | {value * 1e3:.2f} | {value / total:.0%} | "
                         f"{value / n_steps * 1e6:.0f} |")
    lines.append("")
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--datasets", nargs="+", default=None,
                    help=f"default: {' '.join(DATASETS)}; with --regression "
                    f"{' '.join(REGRESSION_DATASETS)}")
    ap.add_argument("--regression", action="store_true",
                    help="time BinaryNetRegressor() next to MLPRegressor()")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=None, help="write benchmarks/results/NAME.txt")
    ap.add_argument("--reference", default=None, metavar="REV",
                    help="also time the default fit of sklearn_bnn at git revision REV")
    args = ap.parse_args(argv)
    if args.regression:
        MODELS.update(BNN=BinaryNetRegressor, MLP=MLPRegressor)
    datasets = args.datasets or list(REGRESSION_DATASETS if args.regression else DATASETS)
    bnn, mlp = MODELS["BNN"].__name__, MODELS["MLP"].__name__
    folder = tempfile.TemporaryDirectory()
    reference = reference_package(args.reference, folder.name) if args.reference else None
    torch.set_num_threads(args.threads)
    lines = [
        f"Command: python benchmarks/profile_fit.py {' '.join(argv or sys.argv[1:])}".rstrip(),
        f"Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        f"Machine: {os.cpu_count()}-core CPU ({platform.machine()}), shared with other jobs "
        f"(load average {os.getloadavg()[0]:.1f} at start), {args.threads} torch thread(s), "
        f"BLAS/OpenMP threads {args.threads}; torch {torch.__version__}, "
        f"sklearn-bnn {sklearn_bnn.__version__}.",
        f"Data: fold 0 training rows of benchmarks/"
        f"{'regression' if args.regression else 'tabular'}.py's 5-fold CV, its preprocessing.",
        f"BNN = {bnn}(random_state=0), MLP = {mlp}(random_state=0)"
        + (f"; reference = BNN at git revision {args.reference}." if args.reference else "."),
        "",
    ]
    print("\n".join(lines), flush=True)
    with threadpool_limits(args.threads):
        warm = np.random.default_rng(0).normal(size=(200, 5)), np.arange(200) % 2
        _fit(MODELS["BNN"](max_iter=2), *warm)
        _fit(MODELS["MLP"](max_iter=2), *warm)
        if reference is not None:
            _fit(getattr(reference, bnn)(max_iter=2), *warm)
        for name in datasets:
            X, y = load_fold(name)
            sbs = side_by_side(X, y, args.repeats, reference)
            parts, n_epochs, n_steps = breakdown(X, y, args.repeats)
            block = table(name, X.shape, sbs, parts, n_epochs, n_steps)
            print("\n".join(block), flush=True)
            lines += block
    if args.out:
        path = Path(__file__).resolve().parent / "results" / f"{args.out}.txt"
        path.write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
