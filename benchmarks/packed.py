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
   (``len(os.sched_getaffinity(0))``; ``--threads`` chooses), limits set with threadpoolctl
   (BLAS and the native kernel's OpenMP) and ``torch.set_num_threads``.

   Before the tables: the BLAS that threadpoolctl reports (numpy's ``float32`` rows run on
   it), whether ``OPENBLAS_CORETYPE`` / ``OPENBLAS_L2_SIZE`` are set (this machine sets them,
   and they slow OpenBLAS: unset both in the command,
   ``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/packed.py``), the load
   average, and the machine's popcount peak on one core:
   ``_kernel.popcount_peak`` (``bnn_popcount_peak`` in ``_kernel.c``: independent XOR,
   ``VPOPCNTQ`` and add chains on registers, or scalar ``popcnt`` without AVX-512), in
   binary multiply-adds per second.
1b. Native kernel rate: for each ``native`` timing, the binary multiply-adds per second
   (rows x the sum over the layers with +-1 inputs of n_in x n_out, divided by the time) and
   its fraction of the popcount peak (times the threads): end to end (the ``native`` row,
   which also runs the real-valued first layer, the head and the argmax in numpy), and for
   the kernel calls alone (``_kernel.run`` on each such layer's inputs, timed in the same
   interleaved rounds).
2. Sizes, bytes, for (256, 256) on digits: the packed arrays (``nbytes``), the ``.npz``
   file, the constants of the generated C (as its header states, 64-bit words), the float32
   state dict (``torch.save``), and an emlearn C export of an ``MLPClassifier`` of the same
   shape (its float arrays, read from the compiled object with ``nm``), or, without emlearn,
   the bytes of the float32 arrays such an export holds; and the ``.npz`` of the same shape
   with the estimator's defaults (a real first layer reading the features and their input
   code: larger, see :ref:`tabular`).

Usage: ``python benchmarks/packed.py [--repeats 15] [--epochs 3] [--threads 1,all]``.
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
from threadpoolctl import threadpool_info, threadpool_limits

from sklearn_bnn import BinaryNetClassifier, PackedBinaryNetwork
from sklearn_bnn.deploy import _kernel
from sklearn_bnn.nn import BinaryNetwork
from sklearn_bnn.nn.bridge import pack_module

N_TEST = 1000
#: Environment variables of this machine that slow OpenBLAS (unset them when timing).
BLAS_VARIABLES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
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
    kernels = native_kernels(packed, X) if native is not None else None
    return {
        "native kernels only": kernels,
        "native": native,
        "numpy popcount": backend("popcount"),
        "numpy float32": backend("matmul"),
        "torch binary": torch_binary,
        "C export": None if c_function is None else lambda: c_predict(c_function, X),
        "MLPClassifier": lambda: mlp.predict(X),
        "onnxruntime": onnx_row(packed, X, threads),
    }


def native_kernels(packed, X: np.ndarray):
    """The native kernel calls of ``packed.predict(X)`` alone: ``_kernel.run`` on the inputs
    of each layer with +-1 inputs (computed once here)."""
    packed.backend = "native"
    (weight_t, threshold, _, _), kernels = packed._prepared("native")
    Z = packed._validate(X)
    if packed.code is not None:
        Z = packed.code.apply(Z)
    on = (Z.astype(np.float64) @ weight_t).astype(threshold.dtype) >= threshold
    inputs = []
    for kernel in kernels:
        inputs.append(on)
        on = _kernel.run(on, kernel)
    assert np.array_equal(on, packed.transform(X) > 0)  # the calls predict makes

    def run():
        for units, kernel in zip(inputs, kernels):
            _kernel.run(units, kernel)

    return run


def binary_macs(packed, rows: int) -> int:
    """Binary multiply-adds of ``rows`` rows: the layers with +-1 inputs (all but the first)."""
    return rows * sum(int(np.prod(layer.shape)) for layer in packed.layers[1:])


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
        ("+-1 first layer on features + input code (linear=False): packed .npz",
         default_npz.stat().st_size),
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
    parser.add_argument(
        "--threads", default="1,all", help="thread counts to time, comma-separated ('all')"
    )
    args = parser.parse_args()
    thread_counts = sorted(
        {ALL_THREADS if t.strip() == "all" else int(t) for t in args.threads.split(",")}
    )

    X, y = digits_data()
    X_test = np.ascontiguousarray(X[:N_TEST])
    lines = environment_lines()
    peak = popcount_peak_line(lines)
    lines.append("")
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
        for threads in thread_counts:
            torch.set_num_threads(threads)
            with threadpool_limits(threads):
                for key, (packed, module, classifier) in nets.items():
                    functions = methods(
                        packed, module, mlps[key], c_functions[key], classifier, X_test, threads
                    )
                    results[key, threads] = interleaved_medians(functions, args.repeats)
        macs = {key: binary_macs(net[0], N_TEST) for key, net in nets.items()}
        lines += timing_table(results, args.repeats, macs, peak)
        lines.append("")
        lines += rate_table(results, macs, peak)
        lines.append("")
        # the default first layer (+-1 over the features and their input code), without the
        # linear term (the default artefacts with it: benchmarks/network_alone.py)
        default = trained_classifier(
            (256, 256), X, y, args.epochs, first_layer="auto", encoding="raw+thermometer"
        ).export_binary()
        lines += sizes_table(clf, small[0], mlps[256, 256], tmp, default)
    lines.append(f"load average at the end: {load_average()}")
    print("\n".join(lines))


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def environment_lines() -> list[str]:
    """The BLAS numpy runs on (threadpoolctl), the OpenBLAS variables, the load average."""
    out = []
    for info in threadpool_info():
        if info.get("user_api") == "blas":
            path = info.get("filepath", "")
            owner = os.path.basename(os.path.dirname(path))  # numpy.libs: numpy's own BLAS
            out.append(
                f"BLAS (threadpoolctl): {info.get('internal_api')} {info.get('version')}, "
                f"kernel {info.get('architecture', 'n/a')}, {owner}/{os.path.basename(path)}"
            )
    if not out:
        out.append("BLAS (threadpoolctl): none reported")
    status = [
        f"{name}={os.environ[name]!r}" if name in os.environ else f"{name} unset"
        for name in BLAS_VARIABLES
    ]
    out.append(f"OpenBLAS variables: {', '.join(status)}")
    out.append(f"load average at the start: {load_average()} ({os.cpu_count()} CPUs)")
    return out


def popcount_peak_line(lines: list[str]):
    """The popcount peak on one core, binary multiply-adds per second (None: no kernel)."""
    if not _kernel.available():
        lines.append("popcount peak: n/a (the native kernel is not available)")
        return None
    isa = _kernel.ISA_NAMES[_kernel.load().bnn_best_isa()]
    peak = _kernel.popcount_peak()
    lines.append(
        f"popcount peak, one core ({isa}: independent XOR + popcount + add chains on "
        f"registers, best of 5): {peak / 1e12:.3f} T binary multiply-adds per second"
    )
    return peak


def rate_table(results: dict, macs: dict, peak) -> list[str]:
    """Binary multiply-adds per second of each native timing, and the fraction of the peak."""
    out = [
        "Native kernel rate: binary multiply-adds per second (rows x sum of n_in x n_out over "
        "the layers with +-1 inputs / time) and fraction of the popcount peak x threads"
    ]
    if peak is None:
        return [*out, "n/a (the native kernel is not available)"]
    out.append(
        f"{'network':>20} {'T':>2}  {'binary MACs':>12}  {'native ms':>9}  {'rate':>9}  "
        f"{'of peak':>7}  {'kernels ms':>10}  {'rate':>9}  {'of peak':>7}"
    )
    for (key, threads), r in results.items():
        if r["native"] is None:
            continue
        cells = []
        for name in ("native", "native kernels only"):
            rate = macs[key] / (r[name] / 1e3)
            cells.append(
                f"{r[name]:>{9 if name == 'native' else 10}.2f}  {rate / 1e12:>7.3f} T  "
                f"{rate / (peak * threads):>7.1%}"
            )
        out.append(f"{str(key):>20} {threads:>2}  {macs[key]:>12.4g}  " + "  ".join(cells))
    out.append(
        "(native: end to end, as in the table above; kernels: the _kernel.run calls of the "
        "layers with +-1 inputs alone)"
    )
    return out


def timing_table(results: dict, repeats: int, macs: dict, peak) -> list[str]:
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
        if method == "native kernels only":
            continue  # in the rate table
        cells = []
        for column in columns:
            value = results[column][method]
            cells.append(f"{'n/a' if value is None else f'{value:.2f}':>22}")
        out.append(f"{method:>16}  " + "  ".join(cells))
        if method == "native" and peak is not None:  # its rate, next to it
            rates = [
                None if results[c]["native"] is None else macs[c[0]] / results[c]["native"] * 1e3
                for c in columns
            ]
            out.append(
                f"{'  binary MAC/s':>16}  "
                + "  ".join(f"{'n/a' if r is None else f'{r / 1e12:.3f} T':>22}" for r in rates)
            )
            out.append(
                f"{'  of peak x T':>16}  "
                + "  ".join(
                    f"{'n/a' if r is None else f'{r / (peak * c[1]):.1%}':>22}"
                    for r, c in zip(rates, columns)
                )
            )
    for t in thread_counts:
        for key in keys:
            r = results[key, t]
            if r["native"] is not None:
                speedup = r["numpy float32"] / r["native"]
                out.append(f"native vs numpy float32, {key}, {t}T: {speedup:.1f}x faster")
    return out


if __name__ == "__main__":
    main()
