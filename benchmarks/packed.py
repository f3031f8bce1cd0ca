"""Packed 1-bit network benchmark: inference speed of every backend, and artefact sizes.

Prints tables (not a test); the committed output is ``benchmarks/results/packed_cpu.txt``.

Networks (all-binary: ``first_layer="binary", encoding="raw"``, every hidden layer
+-1): hidden (256, 256) trained a few epochs on scikit-learn's digits (standardised), and
hidden (1024, 1024, 1024) with random weights (means uniform in [-1, 1], biases N(0, 0.5):
speed does not depend on the weights), both on 1000 digits rows.

1. Inference, ms per 1000 samples, end to end (validation, first layer, hidden layers,
   head, argmax), median of ``--repeats`` rounds in which every method runs once in turn
   (interleaved, so load on a shared machine hits all methods alike), after a warm-up:

   * ``native``: ``PackedBinaryNetwork.predict`` with the compiled XOR + popcount kernel;
   * ``numpy popcount``: the ``"popcount"`` backend (XOR + ``np.bitwise_count``);
   * ``numpy float32``: the ``"matmul"`` backend, the float32 product of the same
     :math:`\\pm 1` network;
   * ``torch binary``: the torch module's ``"binary"`` forward (``no_grad``, argmax);
   * ``C export``: the generated C (``to_c``) compiled with ``cc -O3 -march=native``,
     one call of ``bnn_predict_batch`` (a loop over samples inside C, one thread);
   * ``MLPClassifier``: ``predict`` of a float64 scikit-learn network of the same shape;
   * ``onnxruntime``: the packed network converted by :mod:`sklearn_bnn.onnx` (``n/a``
     without the ``[onnx]`` extra).

   Rows are timed with one thread and with all threads allowed
   (``len(os.sched_getaffinity(0))``), limits set with threadpoolctl (BLAS and the native
   kernel's OpenMP) and ``torch.set_num_threads``.
2. Sizes, bytes, for (256, 256) on digits: the packed arrays (``nbytes``), the ``.npz``
   file, the constants of the generated C (as its header states, 64-bit words), the float32
   state dict (``torch.save``), and an emlearn C export of an ``MLPClassifier`` of the same
   shape (its float arrays, read from the compiled object with ``nm``), or, without emlearn,
   the bytes of the float32 arrays such an export holds; and the ``.npz`` of the same shape
   with the estimator's defaults (a real first layer reading the features and their input
   code: larger, see :ref:`tabular`).

Usage: ``python benchmarks/packed.py [--repeats 15] [--epochs 3]``.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import shutil
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from sklearn_bnn import BinaryNetClassifier, PackedBinaryNetwork
from sklearn_bnn.nn import BinaryNetwork, _kernel
from sklearn_bnn.nn.bridge import pack_module

N_TEST = 1000
ALL_THREADS = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


# ----------------------------------------------------------------------------- networks
def digits_data():
    X, y = load_digits(return_X_y=True)
    return StandardScaler().fit_transform(X).astype(np.float32), y


#: The all-binary network (every hidden layer +-1, raw input), the one the kernel rows time.
ALL_BINARY = {"first_layer": "binary", "encoding": "raw"}


def trained_classifier(hidden, X, y, epochs: int, **params):
    params = {**ALL_BINARY, "linear": False, "learning_rate_init": 3e-3, **params}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return BinaryNetClassifier(hidden, max_iter=epochs, random_state=0, **params).fit(X, y)


def random_module(n_features: int, hidden, n_outputs: int) -> BinaryNetwork:
    torch.manual_seed(0)
    net = BinaryNetwork(n_features, hidden, n_outputs)
    with torch.no_grad():
        for layer in net.layers:
            layer.weight.uniform_(-1.0, 1.0)
            layer.bias.normal_(0.0, 0.5)
    return net.eval()


def float_mlp(hidden, X, y) -> MLPClassifier:
    """A float network of the same shape (one short fit: only its shape matters here)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return MLPClassifier(hidden, max_iter=1, random_state=0).fit(X[:300], y[:300])


# ----------------------------------------------------------------------------- C export
def compile_c(packed: PackedBinaryNetwork, directory: Path, name: str = "bnn"):
    """``to_c``, compiled with -O3 -march=native into a shared object; None without cc."""
    cc = shutil.which("cc")
    if cc is None:
        return None
    _, source = packed.to_c(directory, name=name)
    library = directory / f"{name}.so"
    flags = ["-std=c99", "-O3", "-march=native", "-shared", "-fPIC"]
    subprocess.run([cc, *flags, str(source), "-o", str(library), "-lm"], check=True)
    lib = ctypes.CDLL(str(library))
    return getattr(lib, f"{name}_predict_batch")


def c_predict(function, X: np.ndarray):
    out = np.empty(len(X), dtype=np.intc)
    function(
        ctypes.c_void_p(X.ctypes.data), ctypes.c_long(len(X)), ctypes.c_void_p(out.ctypes.data)
    )
    return out


# ----------------------------------------------------------------------------- ONNX hook
def onnx_row(packed, X: np.ndarray, threads: int):
    """The onnxruntime row: the packed network converted by :mod:`sklearn_bnn.onnx`, run
    with ``threads`` intra-op threads; ``None`` (``n/a``) without the ``[onnx]`` extra."""
    try:
        from sklearn_bnn.onnx import OnnxPredictor, to_onnx
    except ImportError:
        return None
    try:
        predictor = OnnxPredictor(to_onnx(packed, X[:1]), n_threads=threads)
    except ImportError:
        return None
    assert np.array_equal(predictor.predict(X), packed.predict(X))
    return lambda: predictor.predict(X)


# ----------------------------------------------------------------------------- timing
def methods(packed, module, mlp, c_function, clf, X, threads):
    """Name -> zero-argument callable predicting X (None: not available here)."""
    x_torch = torch.as_tensor(X)

    def backend(name):
        def run():
            packed.backend = name
            return packed.predict(X)

        return run

    def torch_binary():
        with torch.no_grad():
            return module(x_torch, "binary").argmax(1)

    native = backend("native") if _kernel.available() else None
    return {
        "native": native,
        "numpy popcount": backend("popcount"),
        "numpy float32": backend("matmul"),
        "torch binary": torch_binary,
        "C export": None if c_function is None else lambda: c_predict(c_function, X),
        "MLPClassifier": lambda: mlp.predict(X),
        "onnxruntime": onnx_row(packed, X, threads),
    }


def interleaved_medians(functions: dict, repeats: int) -> dict:
    """ms per call: every available function once per round, median over rounds."""
    live = {k: f for k, f in functions.items() if f is not None}
    for f in live.values():  # warm-up (and the kernel's compilation)
        f()
    times = {k: [] for k in live}
    for _ in range(repeats):
        for k, f in live.items():
            t = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t)
    return {k: (1e3 * float(np.median(times[k])) if k in times else None) for k in functions}


# ----------------------------------------------------------------------------- sizes
def emlearn_bytes(mlp: MLPClassifier, directory: Path):
    """(bytes, how) of an emlearn C export of ``mlp``, or the float32 arrays it would hold."""
    floats = 4 * sum(w.size for w in mlp.coefs_) + 4 * sum(b.size for b in mlp.intercepts_)
    try:
        import emlearn

        header = directory / "mlp.h"
        emlearn.convert(mlp, method="inline").save(file=str(header), name="mlp")
        source = directory / "mlp.c"
        source.write_text('#include "mlp.h"\n')
        obj = directory / "mlp.o"
        cc, nm = shutil.which("cc"), shutil.which("nm")
        subprocess.run(
            [cc, "-O2", "-c", f"-I{emlearn.includedir}", str(source), "-o", str(obj)],
            check=True,
            capture_output=True,
        )
        listing = subprocess.run(
            [nm, "-S", str(obj)], capture_output=True, text=True, check=False
        ).stdout
        fields = (line.split() for line in listing.splitlines())
        size = sum(int(f[1], 16) for f in fields if len(f) == 4 and f[3].startswith("mlp_"))
        return size, f"emlearn {emlearn.__version__} C arrays (nm)"
    except Exception:  # noqa: BLE001 - no emlearn, cc or nm: the arithmetic instead
        return floats, "float32 arrays of such an export (computed)"


def sizes_table(clf, packed, mlp, directory: Path, default) -> list[str]:
    npz = directory / "net.npz"
    packed.save(npz)
    state = directory / "state.pt"
    torch.save(clf.net_.module_.state_dict(), state)
    header, _ = packed.to_c(directory, name="sized")
    line = next(x for x in header.read_text().splitlines() if "bytes of constants" in x)
    c_bytes = int(line.split()[2])
    emlearn_size, how = emlearn_bytes(mlp, directory)
    default_npz = directory / "default.npz"
    default.save(default_npz)
    rows = [
        ("packed arrays (nbytes)", packed.nbytes),
        ("packed .npz file", npz.stat().st_size),
        ("generated C constants (to_c)", c_bytes),
        ("float32 state dict (torch.save)", state.stat().st_size),
        (f"MLPClassifier C export: {how}", emlearn_size),
        ("defaults (real first layer + input code): packed .npz", default_npz.stat().st_size),
    ]
    out = ["Sizes for hidden (256, 256) on digits, bytes (ratio: float32 state dict / row)"]
    for label, size in rows:
        ratio = state.stat().st_size / size
        out.append(f"{label:>60}  {size:9d}  {ratio:6.1f}x")
    return out


# ----------------------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()

    X, y = digits_data()
    X_test = np.ascontiguousarray(X[:N_TEST])
    lines = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        clf = trained_classifier((256, 256), X, y, args.epochs)
        small = (clf.export_binary(), clf.net_.module_.eval(), clf)
        module = random_module(X.shape[1], (1024, 1024, 1024), 10)
        big = (pack_module(module), module, None)
        nets = {(256, 256): small, (1024, 1024, 1024): big}
        mlps = {hidden: float_mlp(hidden, X, y) for hidden in nets}
        c_functions = {
            key: compile_c(net[0], tmp, f"n{i}") for i, (key, net) in enumerate(nets.items())
        }
        for key, (packed, module, classifier) in nets.items():
            reference = packed.predict(X_test)
            if c_functions[key] is not None:
                assert np.array_equal(
                    packed.classes_[c_predict(c_functions[key], X_test)], reference
                )
        results = {}
        for threads in sorted({1, ALL_THREADS}):
            torch.set_num_threads(threads)
            with threadpool_limits(threads):
                for key, (packed, module, classifier) in nets.items():
                    functions = methods(
                        packed, module, mlps[key], c_functions[key], classifier, X_test, threads
                    )
                    results[key, threads] = interleaved_medians(functions, args.repeats)
        lines += timing_table(results, args.repeats)
        lines.append("")
        # the estimator's defaults keep the first layer real and add the input code
        default = trained_classifier((256, 256), X, y, args.epochs, first_layer="auto",
                                     encoding="raw+thermometer").export_binary()
        lines += sizes_table(clf, small[0], mlps[256, 256], tmp, default)
    print("\n".join(lines))


def timing_table(results: dict, repeats: int) -> list[str]:
    keys = list(dict.fromkeys(k for k, _ in results))
    thread_counts = sorted({t for _, t in results})
    columns = [(key, t) for key in keys for t in thread_counts]
    head = [f"{key} {t}T" for key, t in columns]
    isa = _kernel.ISA_NAMES[_kernel.load().bnn_best_isa()] if _kernel.available() else "n/a"
    out = [
        (
            f"Inference, ms per {N_TEST} samples (median of {repeats} interleaved rounds; "
            f"T = threads; native kernel ISA: {isa}; C export single-threaded)"
        ),
        f"{'method':>16}  " + "  ".join(f"{h:>22}" for h in head),
    ]
    for method in next(iter(results.values())):
        cells = []
        for column in columns:
            value = results[column][method]
            cells.append(f"{'n/a' if value is None else f'{value:.2f}':>22}")
        out.append(f"{method:>16}  " + "  ".join(cells))
    for t in thread_counts:
        for key in keys:
            r = results[key, t]
            if r["native"] is not None:
                speedup = r["numpy float32"] / r["native"]
                out.append(f"native vs numpy float32, {key}, {t}T: {speedup:.1f}x faster")
    return out


if __name__ == "__main__":
    main()
