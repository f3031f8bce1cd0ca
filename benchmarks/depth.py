"""Trainable depth: which initialisations let deep binary networks train? (table, CSV, heatmap)

Reproduces the experiment of Stamatescu et al. 2020 (Fig. 2; [SGL20] in the docs) on data
that ships with scikit-learn: a grid of depth x initial second moment of the weight means
:math:`\\sigma_m^2` (plus the named schemes ``glorot``, ``he`` and ``critical``), for the
deterministic (S1) and LRT (S3) training surrogates.  Each cell is one fit of
``BinaryNetClassifier(hidden_layer_sizes=(width,) * depth, surrogate=..., noise=..., init=...)``
on the whole standardised data set, for a fixed number of epochs (no early stopping), and
reports the **training accuracy** of the mean-propagation network (``inference="surrogate"``)
and of the deployable 1-bit network.

The published setting is MNIST, Adam lr 2e-4, batch 64, 10 epochs, depth up to 70.  Here:
digits (1797 x 64) and breast cancer (569 x 30), width 128 (narrow, to fit 2 CPU cores;
the mean-field theory is for wide layers), Adam, batch 64, ``--epochs`` epochs (default 20),
neuron noise ``"sign"`` by default (the literal binary neuron; see ``--noise``), biases
initialised at zero for the numeric columns (``init=float``).  The learning rate is chosen by
the benchmark: before the grid, ``init="critical"`` at depth ``--lr-depth`` on the first data
set is trained with every ``--lrs`` value, and the one with the best training accuracy is
used for the whole grid (printed; ``--lr`` skips the search).

Outputs: a table on stdout, ``--csv`` (one row per fit), and ``--plot`` (one heatmap panel
per surrogate x data set: training accuracy over depth x init, the solver's predicted
boundary :math:`k\\,\\xi_c(\\sigma_m^2)` with :math:`k` fitted to the grid, and the
:math:`\\sigma_m^2` that ``critical_init`` picks at each depth).  The fitted :math:`k`: for
each numeric :math:`\\sigma_m^2` the *trainable depth* is the largest depth of the grid whose
accuracy is at least halfway between chance and the best accuracy of the grid (and every
shallower depth too); :math:`k` is the least-squares slope through the origin of trainable
depth against :math:`\\xi_c` (from :func:`sklearn_bnn.meanfield.fixed_point` at the
column's :math:`\\sigma_m^2`, :math:`\\sigma_b^2 = 0`), over the columns whose trainable depth
is below the grid's largest depth (a column that trains everywhere only bounds :math:`k` from
below).  [SGL20] report :math:`k \\approx 6` for S1 on MNIST.

Usage::

    python benchmarks/depth.py                       # default grid (about 25 min on 2 cores)
    python benchmarks/depth.py --quick               # digits, depths 10/30, 5 inits
    python benchmarks/depth.py --csv docs/_static/depth.csv --plot docs/_static/depth.png

Fits run in parallel with joblib (``--n-jobs``, default all cores), one torch thread each.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np

DATASETS = ("digits", "breast_cancer")
#: name -> (surrogate, slope, noise); ``None`` noise means ``--noise``.  S3 passes the neuron
#: mean phi(h) = erf(h / (sqrt 2 s)) up, which has no gradient for sign noise: it uses
#: Gaussian noise of scale sqrt(2/pi), the unit-slope neuron.
VARIANTS = {
    "S1": ("deterministic", 1.0, None),
    "S1-unit": ("deterministic", "unit", None),
    "S3": ("lrt", 1.0, "gaussian:0.7978845608"),
}
NAMED = ("glorot", "he", "critical")
DEFAULT_INITS = ("glorot", "he", "0.3", "0.5", "0.7", "0.8", "0.9", "0.95", "0.99", "critical")
#: A numeric column is in the best-training band of a depth if its accuracy is within this of
#: the best numeric column's.
BAND = 0.02


def _load(name):
    from sklearn import datasets
    from sklearn.preprocessing import StandardScaler

    X, y = getattr(datasets, f"load_{name}")(return_X_y=True)
    return StandardScaler().fit_transform(X).astype(np.float32), y


def _init_value(init):
    return init if init in NAMED else float(init)


def _noise(spec):
    from sklearn_bnn.nn.noise import get_noise

    name, _, scale = spec.partition(":")
    noise = get_noise(name)
    return type(noise)(float(scale)) if scale else noise


def one_fit(dataset, variant, noise, depth, width, init, lr, epochs, seed):
    """Fit one cell; returns its CSV row."""
    import torch

    from sklearn_bnn import BinaryNetClassifier

    torch.set_num_threads(1)
    X, y = _load(dataset)
    surrogate, slope, vnoise = VARIANTS[variant]
    noise = vnoise or noise
    clf = BinaryNetClassifier(
        (width,) * depth,
        surrogate=surrogate,
        slope=slope,
        noise=_noise(noise),
        init=_init_value(init),
        inference="surrogate",
        learning_rate_init=lr,
        batch_size=64,
        linear=False,
        max_iter=epochs,
        n_iter_no_change=epochs + 1,
        # the all-binary network on raw features at a constant rate, the setting of the
        # committed results (the estimator's tabular defaults came later)
        first_layer="binary",
        encoding="raw",
        learning_rate="constant",
        random_state=seed,
    )
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            clf.fit(X, y)
            acc = acc_s1 = clf.score(X, y)
            if surrogate == "lrt":  # the LRT network's own accuracy, averaged over 8 draws
                module, xt = clf.net_.module_, torch.as_tensor(X, device=clf.device_)
                with torch.no_grad():
                    p = sum(torch.softmax(module(xt, "lrt"), 1) for _ in range(8))
                acc = float(np.mean(clf.classes_[p.argmax(1).cpu().numpy()] == y))
            acc_bin = clf.set_params(inference="binary").score(X, y)
            err = ""
        except (FloatingPointError, RuntimeError, ValueError) as exc:  # diverged
            acc = acc_s1 = acc_bin = float("nan")
            err = type(exc).__name__
    chosen = ""
    if init == "critical" and hasattr(clf, "critical_init_"):
        chosen = f"{clf.critical_init_['sigma_m2']:.3f}"
    return {
        "dataset": dataset,
        "variant": variant,
        "surrogate": surrogate,
        "slope": slope,
        "noise": noise,
        "depth": depth,
        "width": width,
        "init": init,
        "critical_sigma_m2": chosen,
        "lr": lr,
        "epochs": epochs,
        "seed": seed,
        "train_acc": acc,
        "train_acc_s1": acc_s1,
        "train_acc_1bit": acc_bin,
        "fit_s": time.perf_counter() - t0,
        "error": err,
    }


def _chance(dataset):
    y = _load(dataset)[1]
    return float(np.max(np.bincount(y)) / len(y))


def trainable_depth(rows, dataset, variant, init, depths):
    """Largest grid depth up to which every depth trains (accuracy >= halfway mark)."""
    chance = _chance(dataset)
    cell = {(r["depth"], r["init"]): r["train_acc"] for r in rows
            if r["dataset"] == dataset and r["variant"] == variant}
    best = np.nanmax(list(cell.values()))
    mark = 0.5 * (chance + best)
    out = 0
    for d in sorted(depths):
        acc = cell.get((d, init), float("nan"))
        if not acc >= mark:
            break
        out = d
    return out, mark


def theory(variant, noise):
    """(surrogate, noise name, noise scale, slope) of the solver for a variant."""
    from sklearn_bnn.nn.surrogates import UNIT_SLOPE

    surrogate, slope, vnoise = VARIANTS[variant]
    name, _, scale = (vnoise or noise).partition(":")
    return (
        surrogate,
        name,
        float(scale) if scale else None,
        UNIT_SLOPE if slope == "unit" else slope,
    )


def xi_c(variant, noise, sigma_m2):
    from sklearn_bnn.meanfield import fixed_point

    surrogate, name, scale, slope = theory(variant, noise)
    kw = {"slope": slope} if slope != 1.0 else {}
    return fixed_point(surrogate, name, float(sigma_m2), 0.0, noise_scale=scale, **kw).xi_c


def fit_k(rows, dataset, variant, noise, depths, inits):
    """Least-squares k in trainable depth ~ k * xi_c over the numeric columns (see module doc)."""
    pairs = []
    for init in inits:
        if init in NAMED:
            continue
        d, _ = trainable_depth(rows, dataset, variant, init, depths)
        x = xi_c(variant, noise, init)
        if 0 < d < max(depths) and np.isfinite(x):
            pairs.append((x, d))
    if not pairs:
        return float("nan"), pairs
    x, d = np.array(pairs).T
    return float(x @ d / (x @ x)), pairs


def plot(rows, path, datasets, variants, noise, depths, inits, ks):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        len(variants), len(datasets), figsize=(5.2 * len(datasets), 3.6 * len(variants)),
        squeeze=False, constrained_layout=True,
    )
    numeric = [i for i in inits if i not in NAMED]
    for a, variant in enumerate(variants):
        for b, dataset in enumerate(datasets):
            ax = axes[a, b]
            grid = np.full((len(depths), len(inits)), np.nan)
            crit = {}
            for r in rows:
                if r["dataset"] == dataset and r["variant"] == variant:
                    grid[depths.index(r["depth"]), inits.index(r["init"])] = r["train_acc"]
                    if r["critical_sigma_m2"]:
                        crit[r["depth"]] = float(r["critical_sigma_m2"])
            im = ax.imshow(grid, origin="lower", aspect="auto", vmin=0, vmax=1, cmap="viridis")
            for i in range(grid.shape[0]):
                for j in range(grid.shape[1]):
                    if np.isfinite(grid[i, j]):
                        ax.text(j, i, f"{grid[i, j]:.2f}".lstrip("0"),
                                ha="center", va="center", fontsize=6,
                                color="white" if grid[i, j] < 0.6 else "black")
            ax.set_xticks(range(len(inits)), inits, rotation=45, fontsize=7)
            ax.set_yticks(range(len(depths)), depths, fontsize=7)
            ax.set_xlabel(r"init ($\sigma_m^2$ or scheme)")
            ax.set_ylabel("depth")
            k = ks[(dataset, variant)]
            # predicted boundary k * xi_c over the numeric columns, in grid coordinates
            if np.isfinite(k):
                xs = [inits.index(i) for i in numeric]
                ys = [np.interp(k * xi_c(variant, noise, i), depths, range(len(depths)),
                                right=len(depths) - 0.5) for i in numeric]
                ax.plot(xs, ys, "w--", lw=1.5, label=rf"${k:.1f}\,\xi_c$")
            # where critical_init puts sigma_m^2 at each depth
            vals = [float(i) for i in numeric]
            if crit:
                ds = sorted(crit)
                cx = [np.interp(crit[d], vals, [inits.index(i) for i in numeric]) for d in ds]
                ax.plot(
                    cx,
                    [depths.index(d) for d in ds],
                    "r^",
                    ms=5,
                    label="critical_init's $\\sigma_m^2$",
                )
            surrogate, name, scale, slope = theory(variant, noise)
            ax.set_ylim(-0.5, len(depths) - 0.5)
            ax.set_title(f"{dataset}: {variant} ({surrogate}, noise {name}"
                         + (f" {scale:.3g}" if scale else "")
                         + (f", slope {slope:.3g}" if slope != 1.0 else "") + ")", fontsize=9)
            ax.legend(fontsize=6, loc="upper left")
    fig.colorbar(im, ax=axes, shrink=0.8, label="training accuracy")
    fig.savefig(path, dpi=130)
    print(f"wrote {path}")


def band_check(rows, dataset, variant, depths, inits):
    """Per depth: the best-training band of sigma_m^2 (numeric columns within BAND of the best
    one), critical_init's sigma_m^2, and whether it lies in the band's range."""
    out = []
    numeric = [i for i in inits if i not in NAMED]
    for d in depths:
        cell = {r["init"]: r for r in rows
                if (r["dataset"], r["variant"], r["depth"]) == (dataset, variant, d)}
        accs = {i: cell[i]["train_acc"] for i in numeric if i in cell}
        if not accs or "critical" not in cell:
            continue
        best = max(accs.values())
        band = sorted(float(i) for i, a in accs.items() if a >= best - BAND)
        chosen = float(cell["critical"]["critical_sigma_m2"] or "nan")
        inside = band[0] - 1e-9 <= chosen <= band[-1] + 1e-9
        out.append((d, best, band, chosen, cell["critical"]["train_acc"], inside))
    return out


def _table(rows, datasets, variants, depths, inits):
    for dataset in datasets:
        for variant in variants:
            print(f"\n{dataset}, variant={variant}: training accuracy (mean-propagation network)")
            w = max(6, *(len(i) for i in inits))
            print("depth " + " ".join(f"{i:>{w}}" for i in inits))
            for d in depths:
                cells = []
                for i in inits:
                    r = [r for r in rows if (r["dataset"], r["variant"], r["depth"], r["init"])
                         == (dataset, variant, d, i)]
                    cells.append(
                        f"{np.mean([x['train_acc'] for x in r]):>{w}.3f}" if r else " " * w
                    )
                print(f"{d:>5} " + " ".join(cells))
            crit = sorted({(r["depth"], r["critical_sigma_m2"]) for r in rows
                           if r["dataset"] == dataset and r["variant"] == variant
                           and r["critical_sigma_m2"]})
            if crit:
                print(
                    "critical_init's sigma_m2 by depth: " + ", ".join(f"{d}: {s}" for d, s in crit)
                )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--noise", default="sign")
    parser.add_argument("--depths", nargs="+", type=int, default=[5, 10, 20, 30, 40, 50])
    parser.add_argument("--inits", nargs="+", default=list(DEFAULT_INITS))
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--lr", type=float, default=None, help="skip the learning-rate search")
    parser.add_argument("--lrs", nargs="+", type=float, default=[3e-4, 1e-3, 3e-3])
    parser.add_argument("--lr-depth", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-jobs", type=int, default=os.cpu_count())
    parser.add_argument("--csv", default=None)
    parser.add_argument("--from-csv", nargs="+", default=None, metavar="CSV",
                        help="no fits: read rows written by --csv (several files are joined; "
                             "later files win) and print the table, k and the plot")
    parser.add_argument("--plot", default=None)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="digits, S1 and S1-unit, depths 10 and 30, 5 inits, lr 1e-3, 10 epochs",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.datasets, args.variants = ["digits"], ["S1", "S1-unit"]
        args.depths, args.inits = [10, 30], ["glorot", "0.5", "0.9", "0.99", "critical"]
        args.lr = args.lr or 1e-3
        args.epochs = 10

    from joblib import Parallel, delayed

    t0 = time.perf_counter()
    if args.from_csv:
        rows = _read_csv(args.from_csv)
        args.datasets = [d for d in DATASETS if any(r["dataset"] == d for r in rows)]
        args.variants = [v for v in VARIANTS if any(r["variant"] == v for r in rows)]
        args.depths = sorted({r["depth"] for r in rows})
        present = {r["init"] for r in rows}
        args.inits = ([i for i in ("glorot", "he") if i in present]
                      + sorted((i for i in present if i not in NAMED), key=float)
                      + (["critical"] if "critical" in present else []))
        lr, args.epochs, args.width = rows[0]["lr"], rows[0]["epochs"], rows[0]["width"]
        args.csv = None
        return _report(rows, args, lr, t0)
    lr = args.lr
    if lr is None:
        search = Parallel(n_jobs=args.n_jobs)(
            delayed(one_fit)(args.datasets[0], s, args.noise, args.lr_depth, args.width, "critical",
                             v, args.epochs, args.seed)
            for s in args.variants for v in args.lrs
        )
        by_lr = {v: np.mean([r["train_acc"] for r in search if r["lr"] == v]) for v in args.lrs}
        lr = max(by_lr, key=lambda v: (np.nan_to_num(by_lr[v], nan=-1), -v))
        print(
            "learning-rate search (init='critical', depth %d, %s, mean over variants): %s -> lr=%g"
            % (
                args.lr_depth,
                args.datasets[0],
                ", ".join(f"{v:g}: {a:.3f}" for v, a in by_lr.items()),
                lr,
            )
        )
    jobs = [(d, s, args.noise, depth, args.width, i, lr, args.epochs, args.seed)
            for d in args.datasets for s in args.variants
            for depth in sorted(args.depths, reverse=True) for i in args.inits]
    rows = Parallel(n_jobs=args.n_jobs)(delayed(one_fit)(*j) for j in jobs)
    return _report(rows, args, lr, t0)


def _read_csv(paths):
    import csv

    merged = {}
    for path in paths:
        with open(path, newline="") as fh:
            for r in csv.DictReader(fh):
                for key in ("depth", "width", "epochs", "seed"):
                    r[key] = int(r[key])
                for key in ("lr", "train_acc", "train_acc_s1", "train_acc_1bit", "fit_s"):
                    r[key] = float(r[key])
                merged[r["dataset"], r["variant"], r["depth"], r["init"], r["seed"]] = r
    return list(merged.values())


def _report(rows, args, lr, t0):
    if args.csv:
        import csv

        with open(args.csv, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
        print(f"wrote {args.csv}")
    depths = sorted(args.depths)
    _table(rows, args.datasets, args.variants, depths, args.inits)
    ks = {}
    print("\nfitted k in trainable depth ~ k * xi_c (published: about 6 for S1 on MNIST)")
    for d in args.datasets:
        for s in args.variants:
            k, pairs = fit_k(rows, d, s, args.noise, depths, args.inits)
            ks[(d, s)] = k
            print(f"  {d:>14} {s:>13}: k = {k:.2f} from {len(pairs)} columns "
                  + ", ".join(f"(xi_c {x:.2f}, depth {t})" for x, t in pairs))
    if "critical" in args.inits:
        print(f"\ncritical_init's sigma_m2 against the best-training band (numeric columns within "
              f"{BAND} of the best)")
        for d in args.datasets:
            for s in args.variants:
                for depth, best, band, chosen, acc, inside in band_check(
                        rows, d, s, depths, args.inits):
                    print(f"  {d:>14} {s:>8} depth {depth:>3}: band {band[0]:.2f}-{band[-1]:.2f} "
                          f"(best {best:.3f}); critical {chosen:.3f} -> {acc:.3f} "
                          f"{'in band' if inside else 'OUTSIDE band'}")
    print(f"\n{len(rows)} fits, lr {lr:g}, {args.epochs} epochs, width {args.width}, noise "
          f"{args.noise}; {time.perf_counter() - t0:.0f} s wall")
    if args.plot:
        plot(rows, args.plot, args.datasets, args.variants, args.noise, depths, args.inits, ks)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
