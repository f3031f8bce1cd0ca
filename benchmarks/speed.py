"""Training speed of BinaryNetClassifier against float baselines (prints one table; not a test).

For each configuration (data set x hidden sizes x batch size) the rows below are timed in
the same run, interleaved (each repeat runs every row once, in a rotated order), after one
warm-up run of every row on a few batches.  Each run is a fresh fit of ``E`` epochs from
numpy arrays (model construction and the copy of the data to the device included, so
every row pays the same set-up); the table gives the median over the repeats of the run's
time divided by ``E``.

Rows (``how`` column):

* ``clf``   -- :class:`~sklearn_bnn.BinaryNetClassifier` itself, one row per training mode
  of :data:`sklearn_bnn.nn.TRAINING` (each surrogate x gradient-estimator combination of
  :data:`sklearn_bnn.nn.COMBINATIONS`; ``sampled+psa`` with logistic noise, the others
  Gaussian).
* ``bare``  -- a plain loop over the package's :class:`~sklearn_bnn.nn.BinaryNetwork` with
  the same batches (device-side permutation and gather), optimiser (Adam, same learning
  rate), loss (cross-entropy, or the estimator objective) and projection after each step,
  and nothing else.  ``x bare`` = classifier / bare: the training loop's overhead.
* ``torch`` -- a float MLP (``nn.Linear`` + ReLU, same hidden sizes, Adam) in the same loop.
* ``sklearn`` -- :class:`~sklearn.neural_network.MLPClassifier` (adam, same hidden sizes and
  batch size, ``max_iter=E``, ``tol=0``), on float64 input (the data as a user has it:
  ``StandardScaler`` returns float64, and MLPClassifier then trains in float64) and on
  float32 input (MLPClassifier keeps float32 data in float32).  Always on the CPU.
  ``x MLPC f64`` and ``x MLPC f32`` are the ratios to these two rows.
* with ``--compile``: ``clf+c`` -- the classifier with ``compile=True`` (modes whose
  surrogate it compiles), and ``torch+c`` -- the float MLP's forward and loss through
  :func:`torch.compile`.  The warm-up run pays the compilation; compiled code is reused
  by later fits of the same architecture, as it is for a user's repeated fits.

Data: scikit-learn's digits (1797 x 64), and ``make_classification(100_000, 100,
n_informative=50, n_classes=10)``; both standardised.

Peak memory: on CUDA, ``torch.cuda.max_memory_allocated`` above what was allocated before
the run; on the CPU (and for the sklearn rows), the peak resident set size above the
resident set before the run (Linux: ``VmHWM`` after resetting it through
``/proc/self/clear_refs`` and ``malloc_trim``; elsewhere ``ru_maxrss`` growth, a lower
bound).  RSS includes what glibc's allocator keeps mapped after frees, so rows can differ
by tens of MiB for the same live tensors; ``MALLOC_MMAP_THRESHOLD_=65536`` in the
environment makes large buffers return to the OS on free and the column close to the live
peak (measured, 20k rows of the 100k set, (1024,)*3: classifier 181 -> 100 MiB, bare loop
170 -> 98 MiB), at a cost in time (page faults), so time and memory are best taken from
separate runs.

Usage (from the repository root, ``PYTHONPATH=$PWD`` or an installed package)::

    python benchmarks/speed.py                      # CPU, the full matrix (hours on 2 cores)
    python benchmarks/speed.py --quick              # smoke run: (256, 256), 10k subsample
    python benchmarks/speed.py --datasets synthetic --hidden 1024,1024,1024 \\
        --modes deterministic                       # the must-show rows (100k, 1024^3, 1024)
    python benchmarks/speed.py --datasets synthetic --hidden 1024,1024,1024 \\
        --modes deterministic,binary+st --compile   # the same, with compile=True rows
    python benchmarks/speed.py --threads 1 --clock cpu   # robust on a loaded machine
    python benchmarks/speed.py --device cuda --datasets digits    # GPU; batch 4096 is added
    python benchmarks/speed.py --device cuda --datasets synthetic #   on the 100k set

On CUDA the sklearn rows still run on the host CPU (``--sklearn float32`` or ``none`` to
save time there).
"""

from __future__ import annotations

import argparse
import ctypes
import functools
import gc
import os
import resource
import statistics
import sys
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch
from sklearn.datasets import load_digits, make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler
from torch import nn
from torch.nn import functional as F

from sklearn_bnn import BinaryNetClassifier
from sklearn_bnn.init import initialize_network
from sklearn_bnn.nn import COMBINATIONS, FORWARDS, TRAINING, BinaryNetwork, get_noise
from sklearn_bnn.nn.estimators import cross_entropy_loss, training_forward
from sklearn_bnn.nn.spec import COMPILED_SURROGATES as _COMPILED_SURROGATES

LR = 1e-3
INIT = 0.05  # the classifier's default init (sigma_m^2)


# ------------------------------------------------------------------------------ modes
@dataclass(frozen=True)
class Mode:
    """A training mode and the classifier parameters that select it."""

    name: str  # key of TRAINING
    surrogate: str
    estimator: str
    noise: str


def all_modes() -> list[Mode]:
    """One Mode per distinct training mode reachable from COMBINATIONS."""
    modes, seen = [], set()
    for surrogate, estimators in COMBINATIONS.items():
        for estimator in estimators:
            noise = "logistic" if estimator == "psa" else "gaussian"
            name = training_forward(surrogate, estimator, get_noise(noise))
            if name not in seen:
                seen.add(name)
                modes.append(Mode(name, surrogate, estimator, noise))
    assert seen == set(TRAINING), (seen, set(TRAINING))
    return modes


# ------------------------------------------------------------------------------- data
def load(name: str, n: int | None):
    if name == "digits":
        X, y = load_digits(return_X_y=True)
    elif name == "synthetic":
        X, y = make_classification(
            n or 100_000, 100, n_informative=50, n_classes=10, random_state=0
        )
    else:
        raise ValueError(f"unknown data set {name!r}; valid: 'digits', 'synthetic'")
    if n is not None:
        X, y = X[:n], y[:n]
    return StandardScaler().fit_transform(X), y


# ------------------------------------------------------------------------------- rows
@dataclass
class Row:
    name: str
    how: str
    run: object  # run(X, y, epochs) -> None
    mode: str | None = None
    times: list = field(default_factory=list)
    mems: list = field(default_factory=list)
    mem_method: str = "rss"


def _batches(n, batch_size, device):
    order = torch.randperm(n, device=device)
    return [order[s : s + batch_size] for s in range(0, n, batch_size)]


def classifier_row(mode: Mode, hidden, batch_size, device, lifted, compile=False) -> Row:
    def run(X, y, epochs):
        clf = BinaryNetClassifier(
            hidden,
            surrogate=mode.surrogate,
            gradient_estimator=mode.estimator,
            noise=mode.noise,
            init=INIT,
            batch_size=batch_size,
            learning_rate_init=LR,
            linear=False,
            max_iter=epochs,
            tol=0.0,
            n_iter_no_change=10**9,
            device=device,
            compile=compile,
            random_state=0,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf.fit(X, y)

    how = "clf*" if mode.surrogate in lifted else "clf"
    return Row(mode.name, how + ("+c" if compile else ""), run, mode=mode.name)


def bare_row(mode: Mode, hidden, batch_size, device) -> Row:
    objective = TRAINING[mode.name]
    exact = mode.name in FORWARDS

    def run(X, y, epochs):
        torch.manual_seed(0)
        Xt = torch.as_tensor(X, dtype=torch.float32, device=device)
        yt = torch.as_tensor(np.unique(y, return_inverse=True)[1], device=device)
        net = BinaryNetwork(X.shape[1], hidden, int(yt.max()) + 1, noise=mode.noise)
        initialize_network(net, INIT, mode.surrogate)
        net.to(device)
        opt = torch.optim.Adam(net.parameters(), lr=LR)
        for _ in range(epochs):
            for idx in _batches(len(Xt), batch_size, device):
                xb, yb = Xt[idx], yt[idx]
                opt.zero_grad()
                if exact:
                    loss = F.cross_entropy(net(xb, mode=mode.name), yb)
                else:
                    loss, _ = objective(net, xb, yb, cross_entropy_loss)
                loss.backward()
                opt.step()
                net.project_()

    return Row(mode.name, "bare", run, mode=mode.name)


def _mlp_loss(mlp, x, y):
    return F.cross_entropy(mlp(x), y)


@functools.cache
def _mlp_loss_compiled():
    return torch.compile(_mlp_loss)  # one compiled function for every run, as for the classifier


def torch_mlp_row(hidden, batch_size, device, compile=False) -> Row:
    def run(X, y, epochs):
        loss_fn = _mlp_loss_compiled() if compile else _mlp_loss
        torch.manual_seed(0)
        Xt = torch.as_tensor(X, dtype=torch.float32, device=device)
        yt = torch.as_tensor(np.unique(y, return_inverse=True)[1], device=device)
        sizes, layers = [X.shape[1], *hidden], []
        for n_in, n_out in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(n_in, n_out), nn.ReLU()]
        mlp = nn.Sequential(*layers, nn.Linear(sizes[-1], int(yt.max()) + 1)).to(device)
        opt = torch.optim.Adam(mlp.parameters(), lr=LR)
        for _ in range(epochs):
            for idx in _batches(len(Xt), batch_size, device):
                opt.zero_grad()
                loss_fn(mlp, Xt[idx], yt[idx]).backward()
                opt.step()

    return Row("float MLP", "torch+c" if compile else "torch", run)


def sklearn_row(hidden, batch_size, dtype) -> Row:
    def run(X, y, epochs):
        mlp = MLPClassifier(
            hidden,
            solver="adam",
            batch_size=batch_size,
            learning_rate_init=LR,
            linear=False,
            max_iter=epochs,
            tol=0.0,
            n_iter_no_change=10**9,
            shuffle=True,
            random_state=0,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            mlp.fit(X.astype(dtype, copy=False), y)

    return Row(f"MLPClassifier {np.dtype(dtype).name}", "sklearn", run, mem_method="rss")


# ----------------------------------------------------------------------------- memory
_LIBC = None
if sys.platform.startswith("linux"):
    try:
        _LIBC = ctypes.CDLL("libc.so.6")
    except OSError:  # pragma: no cover - musl and friends
        _LIBC = None


def _status_kb(key: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_rss_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class RssPeak:
    """Peak resident set size of this process above its level at ``start``, in MiB."""

    def __init__(self):
        self.exact = _status_kb("VmHWM") is not None and _reset_rss_peak()

    def start(self):
        gc.collect()
        if _LIBC is not None:
            _LIBC.malloc_trim(0)
        if self.exact:
            _reset_rss_peak()
            self.base = _status_kb("VmRSS")
        else:
            self.base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux

    def stop(self) -> float:
        peak = (
            _status_kb("VmHWM")
            if self.exact
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        )
        return max(peak - self.base, 0) / 1024.0


# ---------------------------------------------------------------------------- measure
def measure(row: Row, X, y, epochs, device, clock, rss: RssPeak):
    cuda = device.type == "cuda" and row.how != "sklearn"
    if cuda:
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        row.mem_method = "cuda"
    else:
        rss.start()
    t0 = clock()
    row.run(X, y, epochs)
    if cuda:
        torch.cuda.synchronize(device)
    elapsed = clock() - t0
    mem = (torch.cuda.max_memory_allocated(device) - base) / 2**20 if cuda else rss.stop()
    return elapsed / epochs, mem


def rows_for(hidden, batch_size, device, modes, lifted, sklearn_dtypes, compile=False) -> list[Row]:
    rows = []
    for mode in modes:
        rows.append(classifier_row(mode, hidden, batch_size, device, lifted))
        if compile and mode.surrogate in _COMPILED_SURROGATES:
            rows.append(classifier_row(mode, hidden, batch_size, device, lifted, compile=True))
        rows.append(bare_row(mode, hidden, batch_size, device))
    rows.append(torch_mlp_row(hidden, batch_size, device))
    if compile:
        rows.append(torch_mlp_row(hidden, batch_size, device, compile=True))
    rows += [sklearn_row(hidden, batch_size, dtype) for dtype in sklearn_dtypes]
    return rows


def run_config(dataset, X, y, hidden, batch_size, epochs, args, device, modes, lifted, clock, rss):
    dtypes = {"both": (np.float32, np.float64), "float32": (np.float32,), "none": ()}[args.sklearn]
    rows = rows_for(hidden, batch_size, device, modes, lifted, dtypes, args.compile)
    # warm-up: a few batches of every row, ending on a batch of the size the epoch ends on
    # (compiled rows specialise on batch shapes; a ragged last batch makes them recompile)
    n_warm = min(len(X), 3 * batch_size + len(X) % batch_size)
    for row in rows:
        measure(row, X[:n_warm], y[:n_warm], 1, device, clock, rss)
    for r in range(args.repeats):
        k = r % len(rows)
        for row in rows[k:] + rows[:k]:
            t, m = measure(row, X, y, epochs, device, clock, rss)
            row.times.append(t)
            row.mems.append(m)
        if args.verbose:
            print(f"  repeat {r + 1}/{args.repeats} done", file=sys.stderr, flush=True)
    return rows


def fmt_ratio(a, b):
    return f"{a / b:.2f}" if b else "-"


def print_table(results, args, device, lifted, clock_name):
    head = (
        f"{'data (n x d)':<20} {'hidden':<16} {'batch':>5} {'row':<22} {'how':<7} "
        f"{'E':>2} {'s/epoch':>9} {'spread':>13} {'samples/s':>10} {'peak MiB':>9} "
        f"{'x float MLP':>11} {'x MLPC f64':>10} {'x MLPC f32':>10} {'x bare':>6}"
    )
    print(head)
    print("-" * len(head))
    for (dataset, shape, hidden, batch, epochs), rows in results:
        med = {(r.name, r.how): statistics.median(r.times) for r in rows}
        ref_torch = med[("float MLP", "torch")]
        ref_sk64 = med.get(("MLPClassifier float64", "sklearn"), 0.0)
        ref_sk32 = med.get(("MLPClassifier float32", "sklearn"), 0.0)
        bare = {r.mode: med[(r.name, r.how)] for r in rows if r.how == "bare"}
        for r in rows:
            t = med[(r.name, r.how)]
            spread = f"{min(r.times):.3g}-{max(r.times):.3g}"
            over = fmt_ratio(t, bare[r.mode]) if r.how.startswith("clf") else ""
            mem = statistics.median(r.mems)
            mem_s = f"{mem:.0f}" + ("" if r.mem_method == "cuda" or device.type == "cpu" else "r")
            print(
                f"{dataset + f' {shape[0]}x{shape[1]}':<20} "
                f"{'x'.join(map(str, hidden)):<16} {batch:>5} "
                f"{r.name:<22} {r.how:<7} {epochs:>2} {t:>9.4f} {spread:>13} {shape[0] / t:>10.0f} "
                f"{mem_s:>9} {fmt_ratio(t, ref_torch):>11} {fmt_ratio(t, ref_sk64):>10} "
                f"{fmt_ratio(t, ref_sk32):>10} {over:>6}"
            )
        print()
    threads = torch.get_num_threads()
    print(
        f"device={device} ("
        f"{torch.cuda.get_device_name(device) if device.type == 'cuda' else os.cpu_count()} "
        f"{'' if device.type == 'cuda' else 'CPUs'}), "
        f"torch {torch.__version__}, threads={threads}, "
        f"clock={clock_name}, "
        + (
            f"float32 matmul precision {torch.get_float32_matmul_precision()!r}, "
            if device.type == "cuda"
            else ""
        )
        + f"medians of {args.repeats} repeats after a warm-up; "
        f"spread = min-max of s/epoch over the repeats."
    )
    print(
        "peak MiB: "
        + (
            "torch.cuda.max_memory_allocated above the start (torch rows); "
            "'r' = host RSS (sklearn rows). "
            if device.type == "cuda"
            else ""
        )
        + (
            "peak RSS above the start (VmHWM reset via /proc/self/clear_refs, after malloc_trim; "
            "includes allocator slack, see the module docstring)."
            if RssPeak().exact
            else "ru_maxrss growth (a lower bound)."
        )
    )
    if lifted:
        print(
            f"clf* = classifier with the pending surrogate(s) {sorted(lifted)} "
            "registered by the benchmark."
        )


# ------------------------------------------------------------------------------- main
def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cpu", help="cpu | cuda | cuda:<i> (default: cpu)")
    p.add_argument("--repeats", type=int, default=5, help="timed repeats per row (default 5)")
    p.add_argument(
        "--quick", action="store_true", help="smoke run: hidden (256, 256), 10k synthetic rows"
    )
    p.add_argument("--datasets", default="digits,synthetic", help="comma list: digits, synthetic")
    p.add_argument(
        "--hidden",
        nargs="+",
        default=None,
        help="hidden sizes, one comma list each (default: 256,256 1024,1024,1024)",
    )
    p.add_argument("--digits-batch", default="256", help="batch size(s) on digits, comma list")
    p.add_argument(
        "--synthetic-batch",
        default=None,
        help="batch size(s) on the 100k set (default 1024; 1024,4096 on cuda)",
    )
    p.add_argument(
        "--n-synthetic", type=int, default=None, help="subsample the 100k set to this many rows"
    )
    p.add_argument(
        "--epochs-digits",
        type=int,
        default=None,
        help="epochs per timed run on digits (default 10)",
    )
    p.add_argument(
        "--epochs-synthetic",
        type=int,
        default=1,
        help="epochs per timed run on the 100k set (default 1)",
    )
    p.add_argument(
        "--modes", default=None, help="comma list of training modes (keys of TRAINING; default all)"
    )
    p.add_argument(
        "--sklearn",
        choices=("both", "float32", "none"),
        default="both",
        help="MLPClassifier rows: float32 and float64 input (default), float32 only, or none",
    )
    p.add_argument(
        "--compile",
        action="store_true",
        help="add rows with compile=True (classifier) and a torch.compile'd float MLP",
    )
    p.add_argument(
        "--threads", type=int, default=None, help="torch (and BLAS) threads; default: torch's"
    )
    p.add_argument(
        "--clock", choices=("wall", "cpu"), default="wall", help="wall time or process CPU time"
    )
    p.add_argument("--verbose", action="store_true", help="progress on stderr")
    args = p.parse_args(argv)
    if args.quick:
        args.hidden = args.hidden or ["256,256"]
        args.n_synthetic = args.n_synthetic or 10_000
        args.epochs_digits = args.epochs_digits or 3
    args.hidden = [
        tuple(int(h) for h in s.split(",")) for s in (args.hidden or ["256,256", "1024,1024,1024"])
    ]
    args.epochs_digits = args.epochs_digits or 10
    return args


def main(argv=None):
    args = parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda: CUDA is not available here")
    if args.threads:
        torch.set_num_threads(args.threads)
        try:
            from threadpoolctl import threadpool_limits

            threadpool_limits(args.threads)
        except ImportError:  # pragma: no cover - sklearn depends on it
            pass
    if args.synthetic_batch is None:
        args.synthetic_batch = "1024,4096" if device.type == "cuda" else "1024"
    modes = all_modes()
    if args.modes:
        wanted = args.modes.split(",")
        unknown = set(wanted) - {m.name for m in modes}
        if unknown:
            sys.exit(f"unknown modes {sorted(unknown)}; valid: {[m.name for m in modes]}")
        modes = [m for m in modes if m.name in wanted]
    lifted: set[str] = set()  # no surrogate is pending: every one is selectable
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    rss = RssPeak()
    results = []
    for dataset in args.datasets.split(","):
        X, y = load(dataset, args.n_synthetic if dataset == "synthetic" else None)
        batches = args.digits_batch if dataset == "digits" else args.synthetic_batch
        epochs = args.epochs_digits if dataset == "digits" else args.epochs_synthetic
        for hidden in args.hidden:
            for batch in (int(b) for b in batches.split(",")):
                if args.verbose:
                    print(
                        f"{dataset} {X.shape} hidden={hidden} batch={batch}",
                        file=sys.stderr,
                        flush=True,
                    )
                rows = run_config(
                    dataset, X, y, hidden, batch, epochs, args, device, modes, lifted, clock, rss
                )
                results.append(((dataset, X.shape, hidden, batch, epochs), rows))
    print_table(results, args, device, lifted, args.clock)


if __name__ == "__main__":
    main()
