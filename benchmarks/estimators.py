"""Gradient-estimator benchmark (prints tables; not a test).

1. Accuracy on the 2-D toy of Shekhovtsov, Yanush & Flach (NeurIPS 2020): 2 inputs, binary
   hidden layers 5-5-5, one logistic output, 200 points, logistic neuron noise.  For each
   estimator and number of samples n (1 .. 10^4), the mean of n one-sample estimates is
   compared with the exact gradient (enumeration, float64): cosine similarity and relative
   RMSE ``||g_n - g|| / ||g||`` per binary layer (weight means and bias together), averaged
   over disjoint blocks of the same estimates.  At init and after exact-gradient training.
2. Time per epoch on scikit-learn's digits, hidden (256, 256), batch 256, CPU, relative to
   ST with the same (logistic) noise and with Gaussian noise: medians of interleaved
   epochs after a warm-up (see :func:`timing_table`).

Usage: ``python benchmarks/estimators.py [--max-samples 10000] [--epochs 7]``;
``python benchmarks/estimators.py --timing-only`` for the timing table alone (about a
minute on one thread).
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch
from torch.nn import functional as F

from sklearn_bnn.nn import BinaryNetwork
from sklearn_bnn.nn.estimators import ESTIMATORS
from sklearn_bnn.nn.exact import exact_gradient, expected_loss, logistic_loss, make_toy
from sklearn_bnn.nn.noise import LogisticNoise

NAMES = ("psa", "st", "arm", "reinforce")


def toy_network(seed: int, train_steps: int, x, y) -> BinaryNetwork:
    torch.manual_seed(seed)
    net = BinaryNetwork(2, (5, 5, 5), 1, noise=LogisticNoise(0.25)).double()
    with torch.no_grad():
        for layer in net.layers:
            layer.weight.uniform_(-1.0, 1.0)
            layer.bias.normal_(0.0, 0.5)
    opt = torch.optim.Adam(net.parameters(), lr=0.05)
    for _ in range(train_steps):
        opt.zero_grad()
        expected_loss(net, x, y, logistic_loss).backward()
        opt.step()
        with torch.no_grad():  # keep (-1, 1): REINFORCE/ARM need every weight state possible
            for layer in net.layers:
                layer.weight.clamp_(-0.98, 0.98)
    return net


def layer_vectors(net, grads: dict) -> list[torch.Tensor]:
    return [
        torch.cat([grads[f"layers.{k}.weight"].reshape(-1), grads[f"layers.{k}.bias"].reshape(-1)])
        for k in range(len(net.layers))
    ]


def estimates(net, name, x, y, n, seed=0) -> list[torch.Tensor]:
    """``n`` one-sample estimates, per layer: list of tensors of shape (n, n_params)."""
    g = torch.Generator().manual_seed(seed)
    params = dict(net.named_parameters())
    rows = []
    for _ in range(n):
        net.zero_grad()
        surrogate, _ = ESTIMATORS[name](net, x, y, logistic_loss, g)
        surrogate.backward()
        rows.append(layer_vectors(net, {k: p.grad for k, p in params.items()}))
    return [torch.stack([r[k] for r in rows]) for k in range(len(net.layers))]


def accuracy_table(max_samples: int, train_steps: int, label: str) -> None:
    x, y = make_toy(200, torch.Generator().manual_seed(0))
    net = toy_network(0, train_steps, x, y)
    exact = layer_vectors(net, exact_gradient(net, x, y, logistic_loss))
    loss = expected_loss(net, x, y, logistic_loss).item()
    sizes = [n for n in (1, 10, 100, 1000, 10000) if n <= max_samples]
    print(f"\n== toy 5-5-5, {label} (exact expected loss {loss:.4f}) ==")
    print(
        f"{'estimator':>10} {'layer':>5} "
        + " ".join(f"{'cos@' + str(n):>9} {'rrmse@' + str(n):>10}" for n in sizes)
    )
    for name in NAMES:
        t = time.perf_counter()
        per_layer = estimates(net, name, x, y, max_samples)
        for k, (samples, truth) in enumerate(zip(per_layer, exact)):
            cells = []
            for n in sizes:
                blocks = (
                    samples[: (max_samples // n) * n].reshape(-1, n, samples.shape[1])[:100].mean(1)
                )
                cos = F.cosine_similarity(blocks, truth[None]).mean().item()
                rrmse = ((blocks - truth).pow(2).sum(1).mean().sqrt() / truth.norm()).item()
                cells.append(f"{cos:9.3f} {rrmse:10.3f}")
            print(f"{name:>10} {k + 1:>5} " + " ".join(cells))
        print(f"{'':>10} ({time.perf_counter() - t:.1f} s for {max_samples} estimates)")


#: Timing rows: (label, gradient_estimator, noise).  ST runs with PSA's logistic noise (the
#: like-for-like comparison) and with the classifier's default Gaussian noise.
TIMING_ROWS = (
    ("st", "st", "logistic"),
    ("st gaussian", "st", "gaussian"),
    ("psa", "psa", "logistic"),
    ("reinforce", "reinforce", "logistic"),
    ("arm", "arm", "logistic"),
)


def timing_table(epochs: int, warmup: int = 2, names=None) -> None:
    """Time per epoch on digits, hidden (256, 256), batch 256, relative to ST (same noise).

    Every row is one classifier trained by ``partial_fit`` (one epoch per call) on the
    standardised training split; after ``warmup`` epochs of every row, ``epochs`` rounds
    each run one epoch of every row, in a rotated order (interleaved, so that a change of
    load on the machine hits every row alike).  The time of an epoch is skorch's ``dur``
    of that epoch (the training loop only: no set-up, no snapshot); the table gives the
    median over the rounds, its min-max, the wall time of the ``partial_fit`` calls, and
    the ratio of medians to ST with logistic noise (``x ST``) and with Gaussian noise.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    from sklearn_bnn import BinaryNetClassifier

    X, y = load_digits(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    rows = [r for r in TIMING_ROWS if names is None or r[0] in names]
    clfs = {
        label: BinaryNetClassifier(
            (256, 256), surrogate="sampled", gradient_estimator=est, noise=noise,
            batch_size=256, learning_rate_init=1e-2, linear=False, random_state=0, device="cpu",
        )
        for label, est, noise in rows
    }
    durs = {label: [] for label in clfs}
    walls = {label: [] for label in clfs}
    labels = list(clfs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for label in labels:
            for _ in range(warmup):
                clfs[label].partial_fit(Xtr, ytr, classes=np.unique(y))
        for r in range(epochs):
            k = r % len(labels)
            for label in labels[k:] + labels[:k]:
                t = time.perf_counter()
                clfs[label].partial_fit(Xtr, ytr)
                walls[label].append(time.perf_counter() - t)
                durs[label].append(clfs[label].history_[-1]["dur"])
    med = {label: float(np.median(durs[label])) for label in labels}
    wall = {label: float(np.median(walls[label])) for label in labels}
    print(
        f"\n== digits ({len(Xtr)} training rows), hidden (256, 256), batch 256, CPU, "
        f"{torch.get_num_threads()} thread(s), torch {torch.__version__}: medians of {epochs} "
        f"interleaved epochs after {warmup} warm-up epochs per row =="
    )
    print(
        f"{'estimator':>12} {'noise':>9} {'ms/epoch':>9} {'min-max':>13} {'wall ms':>8} "
        f"{'x ST':>6} {'x ST gauss':>10} {'test acc':>9}"
    )
    for label, _, noise in rows:
        st, st_g = med.get("st"), med.get("st gaussian")
        ratio = f"{med[label] / st:6.2f}" if st else f"{'-':>6}"
        ratio_g = f"{med[label] / st_g:10.2f}" if st_g else f"{'-':>10}"
        spread = f"{1e3 * min(durs[label]):.1f}-{1e3 * max(durs[label]):.1f}"
        print(
            f"{label:>12} {noise:>9} {1e3 * med[label]:9.1f} {spread:>13} {1e3 * wall[label]:8.1f} "
            f"{ratio} {ratio_g} {clfs[label].score(Xte, yte):9.3f}"
        )
    if "psa" in med and "st" in med:
        print(f"PSA / ST (same logistic noise) = {med['psa'] / med['st']:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--max-samples", type=int, default=10000)
    parser.add_argument("--train-steps", type=int, default=300)
    parser.add_argument("--epochs", type=int, default=7, help="timed epochs per row (median)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed epochs per row first")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--timing-only", action="store_true", help="skip the accuracy tables")
    parser.add_argument("--rows", default=None, help="comma list of timing rows (default all): "
                        + ", ".join(r[0] for r in TIMING_ROWS))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if not args.timing_only:
        accuracy_table(args.max_samples, 0, "at init")
        trained = f"after {args.train_steps} exact Adam steps"
        accuracy_table(args.max_samples, args.train_steps, trained)
    timing_table(args.epochs, args.warmup, args.rows.split(",") if args.rows else None)


if __name__ == "__main__":
    main()
