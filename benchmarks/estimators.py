"""Gradient-estimator benchmark (prints tables; not a test).

1. Accuracy on the 2-D toy of Shekhovtsov, Yanush & Flach (NeurIPS 2020): 2 inputs, binary
   hidden layers 5-5-5, one logistic output, 200 points, logistic neuron noise.  For each
   estimator and number of samples n (1 .. 10^4), the mean of n one-sample estimates is
   compared with the exact gradient (enumeration, float64): cosine similarity and relative
   RMSE ``||g_n - g|| / ||g||`` per binary layer (weight means and bias together), averaged
   over disjoint blocks of the same estimates.  At init and after exact-gradient training.
2. Time per epoch on scikit-learn's digits, hidden (256, 256), batch 256, relative to ST.

Usage: ``python benchmarks/estimators.py [--max-samples 10000] [--epochs 3]``.
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
    print(f"{'estimator':>10} {'layer':>5} " + " ".join(f"{'cos@' + str(n):>9} {'rrmse@' + str(n):>10}" for n in sizes))
    for name in NAMES:
        t = time.perf_counter()
        per_layer = estimates(net, name, x, y, max_samples)
        for k, (samples, truth) in enumerate(zip(per_layer, exact)):
            cells = []
            for n in sizes:
                blocks = samples[: (max_samples // n) * n].reshape(-1, n, samples.shape[1])[:100].mean(1)
                cos = F.cosine_similarity(blocks, truth[None]).mean().item()
                rrmse = ((blocks - truth).pow(2).sum(1).mean().sqrt() / truth.norm()).item()
                cells.append(f"{cos:9.3f} {rrmse:10.3f}")
            print(f"{name:>10} {k + 1:>5} " + " ".join(cells))
        print(f"{'':>10} ({time.perf_counter() - t:.1f} s for {max_samples} estimates)")


def timing_table(epochs: int) -> None:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    from sklearn_bnn import BinaryNetClassifier

    X, y = load_digits(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    print(f"\n== digits, hidden (256, 256), batch 256, {epochs} epochs, {torch.get_num_threads()} threads ==")
    print(f"{'estimator':>10} {'s/epoch':>9} {'x ST':>6} {'test acc':>9}")
    base = None
    for name in ("st", "psa", "reinforce", "arm"):
        clf = BinaryNetClassifier(
            (256, 256), surrogate="sampled", gradient_estimator=name, noise="logistic",
            batch_size=256, max_iter=epochs, learning_rate_init=1e-2, random_state=0,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t = time.perf_counter()
            try:
                clf.fit(Xtr, ytr)
            except ValueError as exc:  # surrogate="sampled" still pending in the classifier
                print(f"skipped: {exc}")
                return
            per_epoch = (time.perf_counter() - t) / clf.n_iter_
        base = per_epoch if base is None else base
        print(f"{name:>10} {per_epoch:9.3f} {per_epoch / base:6.2f} {clf.score(Xte, yte):9.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--max-samples", type=int, default=10000)
    parser.add_argument("--train-steps", type=int, default=300)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    accuracy_table(args.max_samples, 0, "at init")
    accuracy_table(args.max_samples, args.train_steps, f"after {args.train_steps} exact Adam steps")
    timing_table(args.epochs)


if __name__ == "__main__":
    main()
