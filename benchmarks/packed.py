"""Packed 1-bit network benchmark (prints tables; not a test).

For hidden layers (256, 256) and (1024, 1024, 1024) on scikit-learn's digits (standardised,
a few training epochs: timings and sizes do not depend on the weights):

1. Inference time per 1000 samples, median of ``--repeats`` runs after two warm-up runs,
   end to end (input validation, first layer, hidden layers, head, argmax):
   ``PackedBinaryNetwork.predict`` with the ``"popcount"`` and ``"matmul"`` backends, and
   the torch module's ``"binary"`` forward pass (``no_grad``, logits only).
2. Sizes: the parameters held (``nbytes``), the saved packed file, and ``torch.save`` of
   the float32 state dict, with their ratio.

Threads: ``--threads`` limits BLAS (numpy's matmul) and torch; the popcount path runs numpy
ufuncs, which are single-threaded anyway.

Usage: ``python benchmarks/packed.py [--threads 1] [--repeats 7] [--epochs 2]``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import warnings

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from sklearn_bnn import BinaryNetClassifier

SIZES = ((256, 256), (1024, 1024, 1024))


def median_ms(fn, repeats: int) -> float:
    for _ in range(2):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1e3 * float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    X, y = load_digits(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    X_test = X[:1000]
    x_torch = torch.as_tensor(X_test, dtype=torch.float32)

    timing, sizes = [], []
    with threadpool_limits(args.threads), tempfile.TemporaryDirectory() as tmp:
        for hidden in SIZES:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                clf = BinaryNetClassifier(hidden, max_iter=args.epochs, random_state=0).fit(X, y)
            module = clf.net_.module_.eval()
            packed = clf.export_binary()
            assert np.array_equal(packed.predict(X_test), clf.predict(X_test))

            row = {"hidden": str(hidden)}
            for backend in ("popcount", "matmul"):
                packed.backend = backend
                row[backend] = median_ms(lambda: packed.predict(X_test), args.repeats)

            def torch_binary():
                with torch.no_grad():
                    module(x_torch, "binary").argmax(1)

            row["torch binary"] = median_ms(torch_binary, args.repeats)
            timing.append(row)

            packed_path = os.path.join(tmp, "net.bnn")
            torch_path = os.path.join(tmp, "state_dict.pt")
            packed.save(packed_path)
            torch.save(module.state_dict(), torch_path)
            sizes.append(
                {
                    "hidden": str(hidden),
                    "nbytes": packed.nbytes,
                    "packed file": os.path.getsize(packed_path),
                    "float32 state dict": os.path.getsize(torch_path),
                }
            )

    print(f"Inference, ms per 1000 samples (median of {args.repeats}, {args.threads} thread(s))")
    print(f"{'hidden':>20}  {'popcount':>9}  {'matmul':>9}  {'torch binary':>12}")
    for r in timing:
        times = f"{r['popcount']:9.2f}  {r['matmul']:9.2f}  {r['torch binary']:12.2f}"
        print(f"{r['hidden']:>20}  {times}")
    print()
    print("Sizes, bytes")
    columns = ("nbytes", 9), ("packed file", 11), ("float32 state dict", 18), ("ratio", 6)
    print(f"{'hidden':>20}  " + "  ".join(f"{c:>{w}}" for c, w in columns))
    for r in sizes:
        ratio = r["float32 state dict"] / r["packed file"]
        print(
            f"{r['hidden']:>20}  {r['nbytes']:9d}  {r['packed file']:11d}  "
            f"{r['float32 state dict']:18d}  {ratio:5.1f}x"
        )


if __name__ == "__main__":
    main()
