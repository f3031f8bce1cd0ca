r"""Export of the 1-bit network: bit-packed weights and exact numpy-only inference.

:class:`PackedBinaryNetwork` holds the deterministic 1-bit network of a trained
:class:`~sklearn_bnn.nn.network.BinaryNetwork` (the ``"binary"`` forward pass) in a few
small numpy arrays, predicts with numpy alone and saves to a single file without pickle.

**Semantics.**  Binary layer :math:`k` has weights :math:`s_{ij} = \operatorname{sign}(M_{ij})`
(``sign(0) = +1``) and one real offset :math:`\theta_i` per unit, both given by
:meth:`StochasticBinaryLinear.binary_parameters
<sklearn_bnn.nn.layers.StochasticBinaryLinear.binary_parameters>`.  Its unit is

.. math::
    x'_i = \begin{cases} +1 & \text{if } h_i \ge 0 \\ -1 & \text{otherwise,} \end{cases}
    \qquad h_i = \tfrac{1}{\sqrt N}\textstyle\sum_j s_{ij} x_j + \theta_i,

with :math:`h_i` computed by the layer's own ``binary_field`` (floating point, the dtype of
the network).  The first layer reads the real input; later layers read :math:`\pm 1`
units; the real output head maps the last units to logits.

**Thresholds, folded.**  The unit depends on the data only through the dot product
:math:`d_i = \sum_j s_{ij} x_j`, and ``binary_field`` is non-decreasing in :math:`d_i`, so
:math:`x'_i = +1 \iff d_i \ge v_i` for one number :math:`v_i` per unit.

* Layers with :math:`\pm 1` inputs: :math:`d_i` is an integer, and with bits
  :math:`1 \leftrightarrow +1` it is :math:`d_i = N - 2\,\operatorname{popcount}(s_i \oplus x)`.
  The exporter evaluates ``binary_field`` (with torch, the same operations the torch model
  runs) at every possible :math:`d \in \{-N, -N+2, \dots, N\}` and stores the integer
  :math:`P_i`: the unit is :math:`+1` iff :math:`\operatorname{popcount}(s_i \oplus x) \le P_i`
  (:math:`P_i = -1`: never, :math:`P_i = N`: always).  Float rounding at ties and the
  ``sign(0) = +1`` convention are reproduced bit for bit.
* The first layer (real input): :math:`v_i` is the smallest floating-point number (of the
  network's dtype) at which ``binary_field`` is :math:`\ge 0`, found by bisection over the
  ordered floating-point numbers with torch.  At inference :math:`d_i` is accumulated in
  float64 (the exact sum of float32 inputs unless their magnitudes span more than about
  :math:`2^{29}/N`), rounded once to float32 and compared with :math:`v_i`.  Torch
  accumulates :math:`d_i` in float32 in an order chosen by its BLAS, so the two differ only
  where torch's own rounding error (about :math:`\sqrt N` ulps of :math:`\sum_j |x_j|`)
  straddles :math:`v_i`; they agree exactly whenever torch's sum is exact (integer or
  few-bit inputs).
* The head: logits :math:`W x + c` accumulated in float64 from the float32 parameters.
  Torch accumulates in float32, so logits agree to about 1e-6 and labels differ only
  where the two largest logits are that close.

**Input scaling.**  A slot for an affine map applied first, ``(X - input_offset) /
input_scale`` in float64 (exactly as :class:`~sklearn.preprocessing.StandardScaler` with
``input_offset=mean_``, ``input_scale=scale_``), then cast to the network's dtype.
:class:`~sklearn_bnn.BinaryNetClassifier` uses its inputs as given, so its export leaves
both ``None``.

**Backends** for the :math:`\pm 1` layers (:data:`BACKENDS`), all giving identical units:

* ``"native"``: a bit-packed XOR + popcount GEMM in C (:mod:`sklearn_bnn.deploy._kernel`),
  compiled on first use with the system C compiler, cached on disk and loaded with ctypes;
  AVX-512 VPOPCNTDQ where the CPU has it (chosen at run time), a scalar popcount otherwise;
  OpenMP threads, limited by ``OMP_NUM_THREADS``, ``threadpoolctl.threadpool_limits`` or
  ``SKLEARN_BNN_NUM_THREADS``.
* ``"matmul"``: float32 product with the :math:`\pm 1` weights (numpy's BLAS), exact for
  integer sums up to :math:`2^{24}`.
* ``"popcount"``: XOR of 64-bit words and :func:`numpy.bitwise_count` (a byte lookup table
  on numpy < 2.0); single-threaded, no float copy of the units and no BLAS.

The default, ``"auto"``, runs ``"native"`` where the kernel builds and loads, and
``"matmul"`` otherwise (no compiler, ``SKLEARN_BNN_NATIVE=0``, or this file copied without
``_kernel.py``); naming ``"native"`` where it cannot load raises
:class:`~sklearn_bnn.deploy._kernel.NativeKernelError`.  ``benchmarks/packed.py`` times
the three (``benchmarks/results/packed_cpu.txt``).  The fallback is the float32 product
because it runs on any numpy with its BLAS's threads; numpy stays the reference and the
always-available fallback.  The first layer (real
input) and the head run in numpy for every backend, so their float64 sums, and hence the
results, are the same whichever backend runs the binary layers.

**C export.**  :meth:`PackedBinaryNetwork.to_c` writes a dependency-free C99 ``.h``/``.c``
pair with the same semantics (:mod:`sklearn_bnn.deploy.c_export`).  Every consumer of the first
layer reads its matrix from :meth:`PackedBinaryNetwork.first_layer_matrix`.

**Real first layer and input code.**  With ``first_layer="real"`` the first layer keeps
its real weights (:class:`~sklearn_bnn.nn.layers.RealLinear`): ``layers[0].weight`` holds
them (float32) and the unit is :math:`+1` iff the float64 dot product, rounded once to
float32, is ``>= threshold``, as for the :math:`\pm 1` first layer.  The torch model's
``"binary"`` forward computes that dot product in float64 too, so the two differ only where
two float64 sums of the same exact products, added in different orders, round to different
float32 numbers.  With ``encoding`` the estimator's thermometer code (:class:`InputCode`,
:func:`thermometer_code`) is applied after input scaling and before the first layer;
its comparisons are in float32, exact.  Every hidden layer after the first stays 1-bit.

**Linear term.** A network exported from an estimator fitted with ``linear=True`` carries a
real linear model of its input (:class:`LinearTerm`): :func:`linear_term` of the input as
the network reads it (float32, widened to float64), summed feature by feature in a fixed
order, is added to the head's float64 logits. With ``linear_input="code"`` it reads the
first layer's input instead: the scaled features and their code (:class:`InputCode`), one
coefficient per raw feature and per bit (a step function of each feature). The estimator
computes the same function on the same values, so the two agree bit for bit.

**File format** (:data:`FORMAT_VERSION` 5, written only when a linear term reads the input
code; 4 when the task is regression; 3 when a linear term needs it; 2 when a real first
layer or an input code needs it; else 1; all load): one ``.npz`` archive (deflate-compressed
zip of ``.npy`` arrays). ``header`` is UTF-8 JSON stored as a uint8 array (format name,
version, sizes, the task, for a regression the number of dimensions of its target, how to
restore the class labels, the first layer's kind, whether an input code keeps the raw
features, ``linear_input`` when the linear term reads the code); a header without a task
(versions 1 to 3) is a classification. ``layer{k}.bits`` is ``np.packbits`` of the row-major
:math:`(N_\text{out}, N_\text{in})` sign matrix (1 for :math:`+1`), flattened (empty for a
real first layer, whose matrix is ``layer0.weight``); ``layer0.threshold`` holds
:math:`v_i`, ``layer{k}.threshold`` for :math:`k \ge 1` holds :math:`P_i` (int16 where it
fits); ``code.feature`` and ``code.threshold`` for an input code; ``head.weight``,
``head.bias``; ``classes`` (numbers, or strings as a fixed-width unicode array);
``input.offset`` and ``input.scale`` when present; ``linear.coef`` (one row per feature, or
per input of the first layer when the term reads the code) and ``linear.intercept``
(float64) for a linear term.

**Saving and loading.**  :meth:`~PackedBinaryNetwork.save` to a path writes a temporary
file in the same directory, flushes it to disk and renames it onto the path, so that an
interrupted save leaves a file already there as it was.  :meth:`~PackedBinaryNetwork.load`
reads without pickle and checks the file before it allocates: the JSON header is at most
1 MiB; each array's ``.npy`` header (shape, dtype) must match the size the header's
sizes imply and the size the zip directory records for it, and no member may claim more
bytes than its compressed bytes can expand to.  A file that is not such a network, or is
damaged, raises :class:`PackedFormatError`, as do parameters that are NaN (or infinite
where only a first-layer or input-code threshold may be).

This module imports numpy only (the torch model is read by :mod:`sklearn_bnn.nn.bridge`).
The file can be copied next to an application and used without the rest of the package (with
``_kernel.py`` and ``_kernel.c`` beside it in a package for the native backend).
"""

from __future__ import annotations

import itertools
import json
import os
import secrets
import struct
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = [
    "BACKENDS",
    "DEFAULT_BACKEND",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "LINEAR_INPUTS",
    "InputCode",
    "LinearTerm",
    "PackedBinaryNetwork",
    "PackedFormatError",
    "PackedLayer",
    "TASKS",
    "linear_term",
    "thermometer_code",
]

#: Format name stored in the header of every saved file.
FORMAT_NAME = "sklearn-bnn-packed"
#: Version of the file layout written by :meth:`PackedBinaryNetwork.save`; files of a
#: newer version are refused with a :class:`PackedFormatError`.  4: the task is recorded
#: (written as the oldest version that holds the network, 4 for a regression); 5: the
#: linear term may read the input code.
FORMAT_VERSION = 5
#: What a linear term reads: the (scaled) features, or the first layer's input (their code).
LINEAR_INPUTS = ("features", "code")
#: What a network's outputs are: logits of classes, or the predicted targets themselves.
TASKS = ("classification", "regression")

# Rows per block of the forward pass (bounds the working memory for large X).
_BLOCK_ROWS = 4096
# Words per XOR/popcount temporary: 32768 uint64 = 256 KiB, about half an L2 cache.
_POPCOUNT_WORDS = 32768


class PackedFormatError(ValueError):
    """A file is not a packed binary network this version can read.

    Examples
    --------
    >>> import io
    >>> import numpy as np
    >>> from sklearn_bnn import PackedBinaryNetwork, PackedFormatError
    >>> f = io.BytesIO()
    >>> np.savez(f, weights=np.ones(3))      # an .npz archive, but not a packed network
    >>> try:
    ...     PackedBinaryNetwork.load(io.BytesIO(f.getvalue()))
    ... except PackedFormatError as exc:
    ...     print(exc)
    the file is not a readable sklearn-bnn-packed file: no header
    """


# What numpy, zipfile, zlib, struct and json raise on foreign or damaged archives
# (RecursionError and NotImplementedError are RuntimeErrors; UnicodeDecodeError and
# json.JSONDecodeError are ValueErrors).
_READ_ERRORS = (
    OSError,
    ValueError,
    LookupError,
    EOFError,
    TypeError,
    RuntimeError,
    ArithmeticError,
    MemoryError,
    zipfile.BadZipFile,
    zlib.error,
    struct.error,
)
# Bounds of the reader: a crafted file is refused before it costs memory.
_MAX_HEADER_BYTES = 1 << 20  # the JSON header
_MAX_MEMBERS = 4096  # arrays in one archive
_DEFLATE_MAX_RATIO = 1032  # deflate expands its input at most about 1032 times
_READ_CHUNK = 1 << 20  # bytes decompressed at a time
_ITEMSIZES = {"b": (1,), "i": (1, 2, 4, 8), "u": (1, 2, 4, 8), "f": (2, 4, 8)}


# ----------------------------------------------------------------------------- popcount
_POPCOUNT_TABLE = np.array([(i).bit_count() for i in range(256)], dtype=np.uint8)


def _bitwise_count_table(words: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Popcount of each uint64 via a byte lookup table (numpy < 2.0 has no bitwise_count)."""
    octets = words.view(np.uint8).reshape(*words.shape, 8)
    return np.sum(_POPCOUNT_TABLE[octets], axis=-1, dtype=np.uint8, out=out)


_bitwise_count: Callable[..., np.ndarray] = getattr(np, "bitwise_count", _bitwise_count_table)


def _pack_rows(on: np.ndarray) -> np.ndarray:
    """Bool (n, N) -> uint64 words (n, ceil(N / 64)); bit order of np.packbits, zero-padded."""
    n, n_in = on.shape
    packed = np.zeros((n, 8 * -(-n_in // 64)), dtype=np.uint8)
    packed[:, : -(-n_in // 8)] = np.packbits(on, axis=1)
    return packed.view(np.uint64)


def _plus_minus(on: np.ndarray, dtype) -> np.ndarray:
    """Bool -> +1 / -1 of ``dtype`` (a cast and two in-place operations, no temporary)."""
    x = on.astype(dtype)
    x *= 2
    x -= 1
    return x


def _prepare_popcount(signs: np.ndarray, max_mismatch: np.ndarray):
    return np.ascontiguousarray(_pack_rows(signs).T), max_mismatch.astype(np.int32)


def _run_popcount(on: np.ndarray, kernel) -> np.ndarray:
    """Units of a +-1-input layer: popcount(s_i XOR x) <= P_i, by 64-bit words."""
    words_t, max_mismatch = kernel
    n_words, n_out = words_t.shape
    x = _pack_rows(on)
    n = len(x)
    acc_dtype = np.uint16 if 64 * n_words < 2**16 else np.uint32
    chunk = max(1, _POPCOUNT_WORDS // n_out)
    tmp = np.empty((min(chunk, n), n_out), dtype=np.uint64)
    ones = np.empty(tmp.shape, dtype=np.uint8)
    acc = np.empty(tmp.shape, dtype=acc_dtype)
    out = np.empty((n, n_out), dtype=bool)
    for start in range(0, n, chunk):
        xs = x[start : start + chunk]
        m = len(xs)
        t, c, a = tmp[:m], ones[:m], acc[:m]
        a.fill(0)
        for w in range(n_words):
            np.bitwise_xor(xs[:, w, None], words_t[w], out=t)
            _bitwise_count(t, out=c)
            a += c
        np.less_equal(a, max_mismatch, out=out[start : start + m])
    return out


def _prepare_matmul(signs: np.ndarray, max_mismatch: np.ndarray):
    n_in = signs.shape[1]
    weight_t = np.ascontiguousarray(_plus_minus(signs, np.float32).T)
    # popcount <= P  <=>  d = N - 2 popcount >= N - 2P (integers, exact in float32)
    min_dot = (n_in - 2 * max_mismatch.astype(np.int64)).astype(np.float32)
    return weight_t, min_dot


def _run_matmul(on: np.ndarray, kernel) -> np.ndarray:
    """Units of a +-1-input layer: float32 product with the +-1 weights, d >= N - 2 P_i."""
    weight_t, min_dot = kernel
    return (_plus_minus(on, np.float32) @ weight_t) >= min_dot


def _native():
    """The native kernel module, or None when this file runs outside the package."""
    try:
        from . import _kernel
    except ImportError:
        return None
    return _kernel


def _prepare_native(signs: np.ndarray, max_mismatch: np.ndarray):
    kernel = _native()
    if kernel is None:
        raise RuntimeError("the native backend needs _kernel.py next to this module")
    return kernel.prepare(signs, max_mismatch)


def _run_native(on: np.ndarray, kernel) -> np.ndarray:
    """Units of a +-1-input layer by the compiled XOR + popcount kernel (``_kernel``)."""
    return _native().run(on, kernel)


#: Ways to run the layers with +-1 inputs: name -> (prepare(signs, P), run(units, kernel)).
#: All give identical units; they differ in speed, working memory and requirements
#: (``"native"`` needs a C compiler the first time, see :mod:`sklearn_bnn.deploy._kernel`).
BACKENDS: dict[str, tuple[Callable, Callable]] = {
    "popcount": (_prepare_popcount, _run_popcount),
    "matmul": (_prepare_matmul, _run_matmul),
    "native": (_prepare_native, _run_native),
}
#: Backend used unless one is named: ``"auto"`` runs ``"native"`` where the kernel builds
#: and loads, else ``"matmul"`` (module docstring, ``benchmarks/packed.py``).
DEFAULT_BACKEND = "auto"


def _check_backend(backend: str) -> str:
    if backend != "auto" and backend not in BACKENDS:
        raise ValueError(
            f"backend={backend!r} is not available. Valid backends: "
            f"{', '.join(map(repr, BACKENDS))}, 'auto'."
        )
    if backend == "native":
        kernel = _native()
        if kernel is None:
            raise ValueError("backend='native' needs _kernel.py next to this module")
        kernel.load()  # a clear NativeKernelError now rather than at predict
    return backend


def _resolve_backend(backend: str) -> str:
    """``"auto"`` -> ``"native"`` when the kernel is available, else ``"matmul"``."""
    if backend != "auto":
        return backend
    kernel = _native()
    return "native" if kernel is not None and kernel.available() else "matmul"


# ----------------------------------------------------------------------------- input code
def thermometer_code(
    X: np.ndarray, feature: np.ndarray, threshold: np.ndarray, keep_raw: bool
) -> np.ndarray:
    """Apply a thermometer code: ``[X (if keep_raw), where(X[:, feature] >= threshold, 1, -1)]``.

    The one definition of the code (:mod:`sklearn_bnn.encoding` fits it; the packed
    network, its C and its ONNX graph apply it).  Comparisons in the dtype of ``X`` and
    ``threshold`` (both float32 when exported from a float32 network), so exact.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    feature : ndarray of int, shape (n_bits,)
        Input column of each bit.
    threshold : ndarray of shape (n_bits,)
    keep_raw : bool

    Returns
    -------
    ndarray of shape (n_samples, n_features * keep_raw + n_bits), the dtype of ``X``

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_bnn.deploy.packed import thermometer_code
    >>> X = np.array([[0.0, 5.0], [2.0, 1.0]], dtype=np.float32)
    >>> thermometer_code(X, np.array([0, 0, 1]), np.array([1, 2, 3], np.float32), False)
    array([[-1., -1.,  1.],
           [ 1.,  1., -1.]], dtype=float32)
    """
    n_raw = X.shape[1] if keep_raw else 0
    out = np.empty((len(X), n_raw + len(feature)), dtype=X.dtype)
    if keep_raw:
        out[:, :n_raw] = X
    out[:, n_raw:] = _plus_minus(X[:, feature] >= threshold, X.dtype)
    return out


@dataclass(frozen=True)
class InputCode:
    """A fitted thermometer code applied to the (scaled) input before the first layer.

    Attributes
    ----------
    n_features : int
        Input features it reads.
    feature : ndarray of int32, shape (n_bits,)
    threshold : ndarray of shape (n_bits,)
        Bit ``k`` is +1 iff ``X[:, feature[k]] >= threshold[k]``, in the network's dtype.
    keep_raw : bool
        The input features come first, then the bits.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_bnn.deploy.packed import InputCode
    >>> code = InputCode(2, np.array([1], np.int32), np.array([0.5], np.float32), True)
    >>> code.n_outputs, code.apply(np.array([[3.0, 1.0]], np.float32))
    (3, array([[3., 1., 1.]], dtype=float32))
    """

    n_features: int
    feature: np.ndarray
    threshold: np.ndarray
    keep_raw: bool

    @property
    def n_outputs(self) -> int:
        return self.n_features * self.keep_raw + len(self.feature)

    @property
    def nbytes(self) -> int:
        return int(self.feature.nbytes + self.threshold.nbytes)

    def apply(self, X: np.ndarray) -> np.ndarray:
        return thermometer_code(X, self.feature, self.threshold, self.keep_raw)

    def check(self) -> None:
        if self.feature.dtype.kind not in "iu" or self.feature.ndim != 1:
            raise ValueError("code feature must be a 1-D integer array")
        if self.threshold.dtype.kind != "f" or self.threshold.shape != self.feature.shape:
            raise ValueError("code threshold must be a float array shaped as code feature")
        if len(self.feature) and (self.feature.min() < 0 or self.feature.max() >= self.n_features):
            raise ValueError(f"code features must index the {self.n_features} inputs")


# ----------------------------------------------------------------------------- the network
@dataclass(frozen=True)
class PackedLayer:
    r"""One binary layer: bit-packed signs and a folded threshold.

    Attributes
    ----------
    shape : (int, int)
        ``(n_out, n_in)``.
    bits : ndarray of uint8, shape (ceil(n_out * n_in / 8),)
        ``np.packbits`` of the flattened row-major sign matrix, 1 for :math:`+1`.
    threshold : ndarray of shape (n_out,)
        First layer (real input, float dtype): the unit is :math:`+1` iff the dot product,
        rounded to this dtype, is ``>= threshold``.  Later layers (integer dtype): the unit
        is :math:`+1` iff ``popcount(signs XOR inputs) <= threshold``.
    weight : ndarray of shape (n_out, n_in), default=None
        First layer only: real weights (``first_layer="real"``) used instead of the signs;
        ``bits`` is then empty.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_bnn.deploy.packed import PackedLayer
    >>> signs = np.array([[True, False, True], [False, False, True]])
    >>> layer = PackedLayer((2, 3), np.packbits(signs), np.zeros(2, dtype=np.float32))
    >>> layer.bits, layer.nbytes
    (array([164], dtype=uint8), 9)
    >>> bool((layer.signs() == signs).all())
    True
    """

    shape: tuple[int, int]
    bits: np.ndarray
    threshold: np.ndarray
    weight: np.ndarray | None = None

    def signs(self) -> np.ndarray:
        """The sign matrix as bool, shape ``(n_out, n_in)`` (``True`` is :math:`+1`)."""
        if self.weight is not None:
            raise ValueError("this layer has real weights, not signs (see weight)")
        n_out, n_in = self.shape
        return np.unpackbits(self.bits, count=n_out * n_in).reshape(n_out, n_in).astype(bool)

    @property
    def nbytes(self) -> int:
        real = 0 if self.weight is None else self.weight.nbytes
        return int(self.bits.nbytes + self.threshold.nbytes + real)

def linear_term(X: np.ndarray, coef: np.ndarray, intercept: np.ndarray) -> np.ndarray:
    """``intercept + X @ coef`` in float64, summed feature by feature in a fixed order.

    Elementwise products and additions, feature ``0`` first: each row's result is the same
    whatever other rows it is computed with (a matrix product picks its summation order by
    shape), and the estimators and the packed export compute it identically.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Widened to float64.
    coef : ndarray of shape (n_features, n_outputs)
    intercept : ndarray of shape (n_outputs,)

    Returns
    -------
    ndarray of float64, shape (n_samples, n_outputs)

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_bnn.deploy.packed import linear_term
    >>> X = np.array([[1.0, 2.0], [0.5, -1.0]])
    >>> linear_term(X, np.array([[1.0], [10.0]]), np.array([0.25]))
    array([[21.25],
           [-9.25]])
    """
    X = np.asfortranarray(X, dtype=np.float64)
    out = np.empty((len(X), len(intercept)))
    out[:] = intercept
    for j in range(coef.shape[0]):
        out += X[:, j, None] * coef[j]
    return out


class LinearTerm:
    """An optional real linear term of the input, added to a packed network's logits.

    ``linear_coef`` (float64, ``(n_inputs, n_outputs)``) and ``linear_intercept``
    (float64, ``(n_outputs,)``), both ``None`` when absent; set with :meth:`set_linear`.
    ``linear_input`` (:data:`LINEAR_INPUTS`) says what the term reads: the (scaled) input,
    ``n_inputs = n_features_in_``, or with ``"code"`` the first layer's input, the features
    and their code, ``n_inputs = code.n_outputs``.
    The estimators' ``linear=True`` fits it (a ridge or logistic regression) before the
    network, which learns what the linear model leaves.  Shared by
    :class:`PackedBinaryNetwork` and
    :class:`~sklearn_bnn.deploy.packed_residual.PackedResidualNetwork`.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_iris
    >>> from sklearn_bnn import BinaryNetClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> X = (X - X.mean(0)) / X.std(0)
    >>> clf = BinaryNetClassifier((16,), linear=True, max_iter=5, random_state=0).fit(X, y)
    >>> packed = clf.export_binary()
    >>> packed.linear_coef.shape, packed.linear_intercept.shape
    ((4, 3), (3,))
    >>> bool(np.array_equal(packed.predict_proba(X), clf.predict_proba(X)))
    True
    """

    linear_coef: np.ndarray | None = None
    linear_intercept: np.ndarray | None = None
    linear_input: str = "features"
    code: InputCode | None = None

    def set_linear(self, coef, intercept, reads: str = "features") -> None:
        """Set (or, with ``None``, remove) the linear term; shapes and values are checked.

        Parameters
        ----------
        coef : array-like of shape (n_inputs, n_outputs) or None
            ``n_inputs`` is ``n_features_in_``, or ``code.n_outputs`` when ``reads="code"``.
        intercept : array-like of shape (n_outputs,) or None
        reads : {"features", "code"}, default="features"
            What the term reads (:data:`LINEAR_INPUTS`); ``"code"`` needs an input code.
        """
        if reads not in LINEAR_INPUTS or (reads == "code" and self.code is None):
            raise ValueError(
                f"reads={reads!r} is not valid for this network; use one of "
                f"{', '.join(map(repr, LINEAR_INPUTS))} ('code' needs an input code)."
            )
        if coef is None and intercept is None:
            self.linear_coef = self.linear_intercept = None
            self.linear_input = "features"
            return
        coef = np.asarray(coef, dtype=np.float64)
        intercept = np.asarray(intercept, dtype=np.float64)
        n_outputs = len(self.head_bias)
        n_inputs = self.code.n_outputs if reads == "code" else self.n_features_in_
        if coef.shape != (n_inputs, n_outputs) or intercept.shape != (n_outputs,):
            raise ValueError(
                f"the linear term of the {reads} needs coef of shape ({n_inputs}, "
                f"{n_outputs}) and intercept of shape ({n_outputs},); got {coef.shape} and "
                f"{intercept.shape}."
            )
        _check_finite("linear_coef", coef)
        _check_finite("linear_intercept", intercept)
        self.linear_coef, self.linear_intercept = coef, intercept
        self.linear_input = reads

    def linear_inputs(self, X: np.ndarray) -> np.ndarray:
        """What the linear term reads of validated rows ``X``: ``X``, or its code."""
        return self.code.apply(X) if self.linear_input == "code" else X

    def _coded(self, X: np.ndarray) -> np.ndarray:
        """The first layer's input for validated rows ``X``: ``X``, or its code."""
        return X if self.code is None else self.code.apply(X)

    def _add_linear(
        self, X: np.ndarray, out: np.ndarray, coded: np.ndarray | None = None
    ) -> np.ndarray:
        """``out`` (float64 logits of validated rows ``X``) plus the linear term, in place.

        ``coded``: ``X``'s code when the caller has it (:meth:`_coded`), so that a term
        that reads the code does not compute it again."""
        if self.linear_coef is not None:
            code_known = coded is not None and self.linear_input == "code"
            reads = coded if code_known else self.linear_inputs(X)
            out += linear_term(reads, self.linear_coef, self.linear_intercept)
        return out

    def _linear_header(self) -> dict:
        """The header entries of the linear term: whether there is one, what it reads."""
        header = {"linear": self.linear_coef is not None}
        if self.linear_coef is not None and self.linear_input != "features":
            header["linear_input"] = self.linear_input
        return header

    def _linear_nbytes(self) -> int:
        if self.linear_coef is None:
            return 0
        return int(self.linear_coef.nbytes + self.linear_intercept.nbytes)

    def _linear_arrays(self) -> dict:
        """The ``.npz`` entries of the linear term (none when absent)."""
        if self.linear_coef is None:
            return {}
        return {"linear.coef": self.linear_coef, "linear.intercept": self.linear_intercept}


class LogitReadout:
    """The read-out of a packed network's ``logits(X)``: a classifier's or a regressor's.

    Shared by :class:`PackedBinaryNetwork` and
    :class:`~sklearn_bnn.deploy.packed_residual.PackedResidualNetwork`: a subclass provides
    ``logits(X)`` (float64), ``classes_``, ``task`` and ``target_ndim``.  With
    ``task="classification"`` the logits are scores of the classes; with
    ``task="regression"`` (a regressor's export, whose head carries the target scaling) they
    are the predictions, and the class methods raise.
    """

    #: ``"classification"`` or ``"regression"`` (:data:`TASKS`).
    task = "classification"
    #: Regression only: 1 when ``predict`` returns shape (n_samples,), 2 for
    #: (n_samples, n_outputs), as the ``y`` the regressor was fitted on; None otherwise.
    target_ndim = None

    def resolve_task(self, task: str | None = None) -> str:
        """``task``, or this network's own when ``None``; the exporters (``to_c``, ONNX)
        call it so that they write the network's task unless told otherwise.

        Raises
        ------
        ValueError
            ``task`` is not one of :data:`TASKS`, or is the other one than the network's.
        """
        if task is None:
            return self.task
        if task not in TASKS:
            raise ValueError(
                f"task={task!r} is not valid; use one of {', '.join(map(repr, TASKS))}."
            )
        if task != self.task:
            raise ValueError(
                f"task={task!r} contradicts the network's own task {self.task!r} (recorded "
                "at export); leave task out."
            )
        return task

    def _classifier_only(self, method: str) -> None:
        if self.task != "classification":
            raise ValueError(
                f"{method} applies to a classification network; this one has "
                f"task={self.task!r} (its logits are the predictions): use predict or logits."
            )

    def decision_function(self, X) -> np.ndarray:
        """Logits; for two classes, as scikit-learn, ``logit[1] - logit[0]``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        scores : ndarray of shape (n_samples, n_classes), or (n_samples,) for two classes

        Raises
        ------
        ValueError
            The network's task is regression.
        """
        self._classifier_only("decision_function")
        z = self.logits(X)
        return z[:, 1] - z[:, 0] if z.shape[1] == 2 else z

    def predict_proba(self, X) -> np.ndarray:
        """Softmax of the logits, float64, shape (n_samples, n_classes).

        Raises
        ------
        ValueError
            The network's task is regression.
        """
        self._classifier_only("predict_proba")
        z = self.logits(X)
        z -= z.max(axis=1, keepdims=True)
        np.exp(z, out=z)
        z /= z.sum(axis=1, keepdims=True)
        return z

    def predict(self, X) -> np.ndarray:
        """Class labels (``classes_``) of the largest logit, shape (n_samples,); for a
        regression, the logits: shape (n_samples,) when ``target_ndim`` is 1, else
        (n_samples, n_outputs)."""
        z = self.logits(X)
        if self.task == "regression":
            return z[:, 0] if self.target_ndim == 1 else z
        return self.classes_[z.argmax(axis=1)]


def _check_task(task, target_ndim, n_outputs: int) -> tuple[str, int | None]:
    """The task and, for a regression, the target's number of dimensions (default: 1 for
    one output, else 2); ValueError when they do not fit ``n_outputs``."""
    if task not in TASKS:
        raise ValueError(f"task={task!r} is not valid; use one of {', '.join(map(repr, TASKS))}.")
    if task == "classification":
        if target_ndim is not None:
            raise ValueError("target_ndim applies to task='regression' only.")
        return task, None
    if target_ndim is None:
        target_ndim = 1 if n_outputs == 1 else 2
    if target_ndim not in (1, 2) or (target_ndim == 1 and n_outputs != 1):
        raise ValueError(
            f"target_ndim={target_ndim!r} does not fit {n_outputs} outputs: use 1 (one output, "
            "predictions of shape (n_samples,)) or 2."
        )
    return task, int(target_ndim)


def _check_finite(name: str, array, allow_inf: bool = False) -> None:
    """ValueError naming ``name`` when the float ``array`` holds NaN (or, unless
    ``allow_inf``, an infinity)."""
    array = np.asarray(array)
    if array.dtype.kind != "f":
        return
    if allow_inf:
        if np.isnan(array).any():
            raise ValueError(f"{name} contains NaN (it may hold +-inf, not NaN).")
    elif not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or infinity (it must be finite).")


class PackedBinaryNetwork(LinearTerm, LogitReadout):
    r"""The 1-bit network of a trained binary network, bit-packed, for numpy-only inference.

    Usually obtained from :meth:`BinaryNetClassifier.export_binary
    <sklearn_bnn.BinaryNetClassifier.export_binary>`, :func:`sklearn_bnn.deploy.load` or
    :meth:`load`.
    ``predict`` returns exactly what the torch model returns with ``inference="binary"``
    (see the module docstring for the one caveat, the first layer's float32 rounding).

    Parameters
    ----------
    layers : list of PackedLayer
        Binary layers, input first.  The first has a float threshold, the others integer
        popcount thresholds.
    head_weight : ndarray of shape (n_outputs, n_units)
        Real output layer (float32 when exported from a float32 network).
    head_bias : ndarray of shape (n_outputs,)
    classes : array-like of shape (n_outputs,), default=None
        Labels returned by :meth:`predict`; ``None`` means ``0 .. n_outputs - 1``.
    input_offset, input_scale : ndarray of shape (n_features,), default=None
        Optional affine input scaling, ``(X - input_offset) / input_scale`` in float64
        before the cast to the network's dtype.  ``None``: inputs used as given.
    backend : {"auto", "native", "matmul", "popcount"}, default="auto"
        How the :math:`\pm 1`-input layers run (:data:`BACKENDS`); results are identical.
        ``"auto"`` is ``"native"`` where the compiled kernel loads, else ``"matmul"``.
    linear_coef, linear_intercept : ndarray, default=None
        A real linear term of the input added to the logits (:class:`LinearTerm`).
    task : {"classification", "regression"}, default="classification"
        What the logits are (:class:`LogitReadout`): scores of ``classes``, or, for the
        export of a :class:`~sklearn_bnn.BinaryNetRegressor` (head with the target scaling
        folded in), the predictions, returned by :meth:`predict`.
    target_ndim : {1, 2}, default=None
        Regression only: ``predict`` returns shape ``(n_samples,)`` (1) or
        ``(n_samples, n_outputs)`` (2); ``None``: 1 for one output, else 2.

    Raises
    ------
    ValueError
        Inconsistent shapes or dtypes, or NaN parameters: infinite ones too, except the
        first layer's thresholds and the input code's (where :math:`\pm\infty` means never
        or always :math:`+1`).

    Attributes
    ----------
    classes_ : ndarray of shape (n_outputs,)
    n_features_in_ : int
    hidden_layer_sizes : tuple of int
    nbytes : int
        Bytes of the stored parameters (bits, thresholds, head, input scaling, linear
        term), the payload of the saved file.  Inference additionally keeps working copies for the
        selected backend (row-aligned words, or :math:`\pm 1` float32 matrices) and the
        first layer's matrix in float64.

    Examples
    --------
    >>> import io
    >>> import numpy as np
    >>> from sklearn.datasets import load_iris
    >>> from sklearn_bnn import BinaryNetClassifier, PackedBinaryNetwork
    >>> X, y = load_iris(return_X_y=True)
    >>> X = (X - X.mean(0)) / X.std(0)
    >>> clf = BinaryNetClassifier((32, 32), max_iter=30, random_state=0).fit(X, y)
    >>> packed = clf.export_binary()
    >>> packed
    PackedBinaryNetwork(n_features_in=4, hidden_layer_sizes=(32, 32), n_classes=3,
                        nbytes=1524, backend='auto')
    >>> packed.linear_coef.shape  # the estimator's linear term (linear=True) comes along
    (4, 3)
    >>> bool(np.array_equal(packed.predict(X), clf.predict(X)))
    True
    >>> f = io.BytesIO()
    >>> packed.save(f)
    >>> loaded = PackedBinaryNetwork.load(io.BytesIO(f.getvalue()))
    >>> bool(np.array_equal(loaded.predict(X), clf.predict(X)))
    True
    """

    def __init__(
        self,
        layers: list[PackedLayer],
        head_weight: np.ndarray,
        head_bias: np.ndarray,
        classes=None,
        *,
        input_offset: np.ndarray | None = None,
        input_scale: np.ndarray | None = None,
        code: InputCode | None = None,
        backend: str = DEFAULT_BACKEND,
        linear_coef: np.ndarray | None = None,
        linear_intercept: np.ndarray | None = None,
        linear_input: str = "features",
        task: str = "classification",
        target_ndim: int | None = None,
    ) -> None:
        if not layers:
            raise ValueError("a PackedBinaryNetwork needs at least one binary layer")
        self.layers = list(layers)
        self.head_weight = np.asarray(head_weight)
        self.head_bias = np.asarray(head_bias)
        n_outputs = self.head_weight.shape[0]
        self.classes_ = np.arange(n_outputs) if classes is None else np.asarray(classes)
        self.input_offset = None if input_offset is None else np.asarray(input_offset, np.float64)
        self.input_scale = None if input_scale is None else np.asarray(input_scale, np.float64)
        self.code = code
        self.backend = backend
        self._check()
        self.task, self.target_ndim = _check_task(task, target_ndim, n_outputs)
        self.set_linear(linear_coef, linear_intercept, linear_input)
        self._kernels: dict[str, list] = {}
        self._first = None

    def __getstate__(self) -> dict:
        """Pickle the parameters only; working arrays are rebuilt on the next predict."""
        state = self.__dict__.copy()
        state["_kernels"], state["_first"] = {}, None
        return state

    def with_input_scaling(self, offset, scale) -> PackedBinaryNetwork:
        """A copy that first maps its input by ``(X - offset) / scale`` (float64).

        Folds a fitted :class:`~sklearn.preprocessing.StandardScaler` (``offset=mean_``,
        ``scale=scale_``) into the artefact, so that it reads the unscaled features.

        Parameters
        ----------
        offset, scale : array-like of shape (n_features_in_,)

        Returns
        -------
        PackedBinaryNetwork
        """
        if self.input_offset is not None or self.input_scale is not None:
            raise ValueError("this network already scales its input")
        offset = np.asarray(offset, np.float64)
        scale = np.asarray(scale, np.float64)
        n = self.n_features_in_
        if offset.shape != (n,) or scale.shape != (n,):
            raise ValueError(f"offset and scale must have shape ({n},)")
        state = self.__getstate__()
        new = object.__new__(type(self))
        new.__dict__.update(state)
        new.input_offset, new.input_scale = offset, scale
        new._check()
        return new

    # ------------------------------------------------------------------ structure
    def _check(self) -> None:
        """Shapes and dtypes consistent; raises ValueError (PackedFormatError on load)."""
        _check_backend(self.backend)
        n_in = self.layers[0].shape[1]
        for k, layer in enumerate(self.layers):
            n_out, n_layer_in = layer.shape
            if n_layer_in != n_in:
                raise ValueError(f"layer {k} has {n_layer_in} inputs, expected {n_in}")
            n_bytes = -(-n_out * n_in // 8) if layer.weight is None else 0
            if layer.bits.dtype != np.uint8 or layer.bits.shape != (n_bytes,):
                raise ValueError(f"layer {k}: bits must be uint8 of shape ({n_bytes},)")
            if layer.weight is not None and (k > 0 or layer.weight.shape != layer.shape):
                raise ValueError(f"layer {k}: only the first layer has real weights {layer.shape}")
            kind = "f" if k == 0 else "i"
            if layer.threshold.dtype.kind != kind or layer.threshold.shape != (n_out,):
                what = "a float" if k == 0 else "an integer"
                raise ValueError(f"layer {k}: threshold must be {what} array of shape ({n_out},)")
            if k > 0 and ((layer.threshold < -1) | (layer.threshold > n_in)).any():
                raise ValueError(f"layer {k}: popcount thresholds must lie in [-1, {n_in}]")
            n_in = n_out
        n_outputs = self.head_weight.shape[0] if self.head_weight.ndim == 2 else -1
        if self.head_weight.ndim != 2 or self.head_weight.shape[1] != n_in:
            raise ValueError(f"head_weight must have shape (n_outputs, {n_in})")
        if self.head_bias.shape != (n_outputs,):
            raise ValueError(f"head_bias must have shape ({n_outputs},)")
        if self.classes_.shape != (n_outputs,):
            raise ValueError(f"classes must have {n_outputs} entries, got {self.classes_.shape}")
        if self.code is not None:
            self.code.check()
            if self.code.n_outputs != self.layers[0].shape[1]:
                raise ValueError(
                    f"the input code gives {self.code.n_outputs} inputs, layer 0 reads "
                    f"{self.layers[0].shape[1]}"
                )
        for name in ("input_offset", "input_scale"):
            value = getattr(self, name)
            if value is not None and value.shape != (self.n_features_in_,):
                raise ValueError(f"{name} must have shape ({self.n_features_in_},)")
        if (self.input_offset is None) != (self.input_scale is None):
            raise ValueError("give both input_offset and input_scale, or neither")
        self._check_values()

    def _check_values(self) -> None:
        """ValueError naming the first parameter that is NaN, or infinite where it may not."""
        for k, layer in enumerate(self.layers):
            _check_finite(f"layers[{k}].threshold", layer.threshold, allow_inf=k == 0)
            if layer.weight is not None:
                _check_finite(f"layers[{k}].weight", layer.weight)
        if self.code is not None:
            _check_finite("code.threshold", self.code.threshold, allow_inf=True)
        _check_finite("head_weight", self.head_weight)
        _check_finite("head_bias", self.head_bias)
        for name in ("input_offset", "input_scale", "linear_coef", "linear_intercept"):
            if getattr(self, name) is not None:
                _check_finite(name, getattr(self, name))
        if self.input_scale is not None and (self.input_scale == 0).any():
            raise ValueError("input_scale contains 0.")

    @property
    def n_features_in_(self) -> int:
        return self.layers[0].shape[1] if self.code is None else self.code.n_features

    @property
    def hidden_layer_sizes(self) -> tuple[int, ...]:
        return tuple(layer.shape[0] for layer in self.layers)

    @property
    def backend(self) -> str:
        return self._backend

    @backend.setter
    def backend(self, value: str) -> None:
        self._backend = _check_backend(value)

    def layer_nbytes(self) -> list[int]:
        """Bytes stored per binary layer (bits and thresholds), then the head."""
        return [layer.nbytes for layer in self.layers] + [
            int(self.head_weight.nbytes + self.head_bias.nbytes)
        ]

    @property
    def nbytes(self) -> int:
        scaling = [] if self.input_scale is None else [self.input_offset, self.input_scale]
        code = 0 if self.code is None else self.code.nbytes
        scaling_bytes = sum(int(a.nbytes) for a in scaling)
        return sum(self.layer_nbytes()) + scaling_bytes + code + self._linear_nbytes()

    def __repr__(self) -> str:
        outputs = f"n_classes={len(self.classes_)}"
        if self.task != "classification":
            outputs = f"n_outputs={len(self.head_bias)}, task={self.task!r}"
        return (
            f"PackedBinaryNetwork(n_features_in={self.n_features_in_}, "
            f"hidden_layer_sizes={self.hidden_layer_sizes}, {outputs}, "
            f"nbytes={self.nbytes}, backend={self.backend!r})"
        )

    # ------------------------------------------------------------------ export
    def to_c(self, directory, name: str = "bnn", word_bits: int = 64, task: str | None = None):
        """Write the network as a dependency-free C99 pair ``name.h`` / ``name.c``.

        Packed weight words, thresholds and the float head as ``static const`` arrays, no
        dynamic allocation; entry points ``int name_predict(const float *x)`` (class
        index, label in ``name_classes``), ``name_predict_proba``, ``name_logits`` and
        ``name_predict_batch``; with ``task="regression"``,
        ``void name_predict(const float *x, double *y)`` and its batch form write the
        outputs (the logits: a regressor's export has its target scaling in the head).  The
        header comment states the word size and the bytes of constants and of stack
        buffers.  See :mod:`sklearn_bnn.deploy.c_export`.

        Parameters
        ----------
        directory : str or os.PathLike
            Created if missing; existing files of the same names are overwritten.
        name : str, default="bnn"
            Prefix of the files and of every C symbol; a C identifier.
        word_bits : {64, 32}, default=64
            Width of the packed words (``uint64_t`` or ``uint32_t``).
        task : {"classification", "regression"}, default=None
            The entry points written: class index and probabilities, or real outputs
            (the export of :meth:`BinaryNetRegressor.export_binary
            <sklearn_bnn.BinaryNetRegressor.export_binary>`).  ``None``: the network's own
            :attr:`task`; naming the other one raises ``ValueError``.

        Returns
        -------
        header_path, source_path : pathlib.Path

        Examples
        --------
        >>> import tempfile
        >>> import numpy as np
        >>> from sklearn.datasets import load_iris
        >>> from sklearn_bnn import BinaryNetClassifier
        >>> X, y = load_iris(return_X_y=True)
        >>> clf = BinaryNetClassifier((32,), max_iter=5, random_state=0).fit(X, y)
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     header, source = clf.export_binary().to_c(tmp, name="iris")
        ...     print(header.name, source.name)
        iris.h iris.c
        """
        from .c_export import write

        return write(self, directory, name=name, word_bits=word_bits, task=task)

    # ------------------------------------------------------------------ inference
    def first_layer_matrix(self) -> np.ndarray:
        r"""The first layer's real matrix, shape ``(n_out, n_features)``, network dtype.

        The :math:`\pm 1` signs of ``layers[0]``, or its real ``weight`` (a real first
        layer).  Every consumer of the first layer (the numpy forward pass, :meth:`to_c`,
        the ONNX graph) reads it from here.

        Returns
        -------
        matrix : ndarray of shape (hidden_layer_sizes[0], n_features_in_)

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn_bnn.deploy.packed import PackedBinaryNetwork, PackedLayer
        >>> signs = np.array([[True, False], [False, False]])
        >>> first = PackedLayer((2, 2), np.packbits(signs), np.zeros(2, dtype=np.float32))
        >>> net = PackedBinaryNetwork([first], np.ones((1, 2), np.float32), np.zeros(1, np.float32))
        >>> net.first_layer_matrix()
        array([[ 1., -1.],
               [-1., -1.]], dtype=float32)
        """
        first = self.layers[0]
        if first.weight is not None:
            return first.weight
        return _plus_minus(first.signs(), first.threshold.dtype)

    def _prepared(self, backend: str):
        """Working arrays: first layer (float64), backend kernels, head in float64."""
        if self._first is None:
            first = self.layers[0]
            weight_t = np.ascontiguousarray(self.first_layer_matrix().astype(np.float64).T)
            head_t = np.ascontiguousarray(self.head_weight.astype(np.float64).T)
            self._first = (weight_t, first.threshold, head_t, self.head_bias.astype(np.float64))
        if backend not in self._kernels:
            prepare = BACKENDS[backend][0]
            self._kernels[backend] = [
                prepare(layer.signs(), layer.threshold) for layer in self.layers[1:]
            ]
        return self._first, self._kernels[backend]

    def _validate(self, X) -> np.ndarray:
        X = np.asarray(X)
        if X.ndim != 2:
            raise ValueError(
                f"Expected a 2-D array of shape (n_samples, {self.n_features_in_}), "
                f"got an array of shape {X.shape}."
            )
        if X.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {X.shape[1]} features, but this network expects {self.n_features_in_}."
            )
        if X.dtype.kind not in "biuf":
            raise ValueError(f"X must be numeric, got dtype {X.dtype}.")
        dtype = self.layers[0].threshold.dtype
        if X.dtype not in (np.float32, np.float64):
            X = X.astype(dtype)  # as scikit-learn's validation: ints straight to float32
        if self.input_scale is not None:
            X = (X.astype(np.float64) - self.input_offset) / self.input_scale
        X = X.astype(dtype, copy=False)
        if not np.isfinite(X).all():
            raise ValueError("Input X contains NaN or infinity.")
        return X

    def _units(self, coded: np.ndarray) -> np.ndarray:
        """Last binary layer's units as bool (True is +1) for the first layer's input
        ``coded`` (:meth:`_coded` of validated rows)."""
        backend = _resolve_backend(self.backend)
        (weight_t, threshold, _, _), kernels = self._prepared(backend)
        run = BACKENDS[backend][1]
        on = (coded.astype(np.float64) @ weight_t).astype(threshold.dtype) >= threshold
        for kernel in kernels:
            on = run(on, kernel)
        return on

    def transform(self, X) -> np.ndarray:
        r"""Units of the last binary layer, :math:`\pm 1`.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        units : ndarray of int8, shape (n_samples, hidden_layer_sizes[-1])
        """
        X = self._validate(X)
        blocks = [
            self._units(self._coded(X[i : i + _BLOCK_ROWS])) for i in range(0, len(X), _BLOCK_ROWS)
        ]
        on = np.concatenate(blocks) if blocks else np.empty((0, self.hidden_layer_sizes[-1]), bool)
        return _plus_minus(on, np.int8)

    def logits(self, X) -> np.ndarray:
        """Output of the real head (plus the linear term, if any), float64, shape
        (n_samples, n_outputs)."""
        X = self._validate(X)
        (_, _, head_t, bias), _ = self._prepared(_resolve_backend(self.backend))
        out = np.empty((len(X), len(bias)))
        for i in range(0, len(X), _BLOCK_ROWS):
            rows = X[i : i + _BLOCK_ROWS]
            coded = self._coded(rows)  # once, for the first layer and the linear term
            units = _plus_minus(self._units(coded), np.float64)
            out[i : i + _BLOCK_ROWS] = self._add_linear(rows, units @ head_t + bias, coded)
        return out

    # ------------------------------------------------------------------ files
    @classmethod
    def format_name(cls) -> str:
        """The format name in the header of the files this class writes."""
        return FORMAT_NAME

    def save(self, file) -> None:
        """Write the network to one ``.npz`` file, without pickle.

        A path is written atomically: a temporary file in the same directory, flushed to
        disk, then renamed onto the path, so that an interrupted save leaves a file already
        at the path unchanged.

        Parameters
        ----------
        file : str, os.PathLike or binary file object
            Written as given (no ``.npz`` suffix is added).
        """
        classes, classes_dtype = _classes_to_array(self.classes_)
        header = {
            "format": FORMAT_NAME,
            # the oldest layout that holds the network, so that older readers load it
            "version": self._format_version(),
            "n_features_in": self.n_features_in_,
            "layer_sizes": list(self.hidden_layer_sizes),
            "n_outputs": int(self.head_weight.shape[0]),
            "classes_dtype": classes_dtype,
            "input_scaling": self.input_scale is not None,
            "n_network_inputs": self.layers[0].shape[1],
            "first_layer": "binary" if self.layers[0].weight is None else "real",
            "code": None if self.code is None else {"keep_raw": bool(self.code.keep_raw)},
            **self._linear_header(),
            "task": self.task,
            "target_ndim": self.target_ndim,
        }
        arrays = {"header": np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)}
        for k, layer in enumerate(self.layers):
            arrays[f"layer{k}.bits"] = layer.bits
            arrays[f"layer{k}.threshold"] = layer.threshold
            if layer.weight is not None:
                arrays[f"layer{k}.weight"] = layer.weight
        if self.code is not None:
            arrays["code.feature"] = self.code.feature
            arrays["code.threshold"] = self.code.threshold
        arrays["head.weight"] = self.head_weight
        arrays["head.bias"] = self.head_bias
        arrays["classes"] = classes
        if self.input_scale is not None:
            arrays["input.offset"] = self.input_offset
            arrays["input.scale"] = self.input_scale
        arrays.update(self._linear_arrays())
        _write_npz(file, arrays)

    def _format_version(self) -> int:
        """The oldest layout that holds this network, so that older readers load it."""
        if self.linear_coef is not None and self.linear_input != "features":
            return 5
        if self.task != "classification":
            return 4
        if self.linear_coef is not None:
            return 3
        return 2 if self.code is not None or self.layers[0].weight is not None else 1

    @classmethod
    def load(cls, file, *, backend: str = DEFAULT_BACKEND) -> PackedBinaryNetwork:
        """Read a network written by :meth:`save`.

        Every array's declared shape and size are checked against the header and the
        archive before it is read (module docstring), so a damaged or crafted file is
        refused before it allocates more than its arrays' declared sizes.

        Parameters
        ----------
        file : str, os.PathLike or binary file object (seekable)
        backend : {"auto", "native", "matmul", "popcount"}, default="auto"

        Returns
        -------
        PackedBinaryNetwork

        Raises
        ------
        PackedFormatError
            The file is not such a network, is corrupted, holds NaN (or misplaced infinite)
            parameters, or was written by a newer format version.  (A missing file raises
            ``FileNotFoundError``.)
        """
        _check_backend(backend)
        name = os.fspath(file) if isinstance(file, (str, os.PathLike)) else "the file"
        if isinstance(file, (str, os.PathLike)):
            with open(file, "rb") as f:
                return cls._read(f, name, backend)
        return cls._read(file, name, backend)

    @classmethod
    def _read(cls, f, name: str, backend: str) -> PackedBinaryNetwork:
        bad = f"{name} is not a readable {FORMAT_NAME} file"
        try:
            with _NpzReader(f, bad) as archive:
                header = archive.header()
                _check_header(header, bad)
                expected = _expected_arrays(header, bad)
                arrays = archive.read_all(expected)
            _check_finite_arrays(arrays, bad, ("layer0.threshold", "code.threshold"))
            return cls._from_arrays(header, arrays, backend)
        except PackedFormatError:
            raise
        except _READ_ERRORS as exc:
            raise PackedFormatError(f"{bad} ({type(exc).__name__}: {exc})") from exc

    @classmethod
    def _from_arrays(cls, header: dict, arrays: dict, backend: str) -> PackedBinaryNetwork:
        """The network of a checked header and its arrays."""
        n_inputs = header.get("n_network_inputs", header["n_features_in"])
        sizes = [n_inputs, *header["layer_sizes"]]
        layers = [
            PackedLayer(
                (n_out, n_in),
                arrays[f"layer{k}.bits"],
                arrays[f"layer{k}.threshold"],
                arrays.get(f"layer{k}.weight"),
            )
            for k, (n_in, n_out) in enumerate(itertools.pairwise(sizes))
        ]
        code = None
        if header.get("code") is not None:
            code = InputCode(
                header["n_features_in"],
                arrays["code.feature"],
                arrays["code.threshold"],
                bool(header["code"]["keep_raw"]),
            )
        classes = arrays["classes"]
        if header.get("classes_dtype") == "object":
            classes = classes.astype(object)
        return cls(
            layers,
            arrays["head.weight"],
            arrays["head.bias"],
            classes,
            input_offset=arrays.get("input.offset"),
            input_scale=arrays.get("input.scale"),
            code=code,
            backend=backend,
            linear_coef=arrays.get("linear.coef"),
            linear_intercept=arrays.get("linear.intercept"),
            linear_input=header.get("linear_input", "features"),
            task=header.get("task", "classification"),
            target_ndim=header.get("target_ndim"),
        )


# ----------------------------------------------------------------------------- writing
def _write_npz(file, arrays: dict) -> None:
    """Write ``arrays`` as one compressed ``.npz``; a path atomically, keeping its name.

    A path (str or os.PathLike) is written to a new temporary file in the same directory
    (with the permission bits of a file already at the path, else those ``open(path,
    "wb")`` would give), flushed and fsynced,
    then renamed onto the path with :func:`os.replace`, and the directory fsynced where the
    system allows.  On any exception, ``KeyboardInterrupt`` included, the temporary is
    removed and a file already at the path is left as it was.  A symbolic link at the path
    is followed (its target is replaced).  A file object is written directly.

    Parameters
    ----------
    file : str, os.PathLike or binary file object
    arrays : dict of str to ndarray
    """
    if not isinstance(file, (str, os.PathLike)):
        np.savez_compressed(file, **arrays)
        return
    path = os.path.realpath(os.fspath(file))
    directory, base = os.path.split(path)
    try:
        fd, temporary = _create_temporary(directory, base)
    except OSError as exc:
        raise type(exc)(exc.errno, f"cannot save to {os.fspath(file)!r}: {exc.strerror}") from exc
    try:
        _keep_mode(fd, path)
        with os.fdopen(fd, "wb") as f:
            np.savez_compressed(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise
    _fsync_directory(directory)


def _keep_mode(fd: int, path: str) -> None:
    """Give the new file the permission bits of the file it replaces, if there is one."""
    try:
        mode = os.stat(path).st_mode & 0o7777
    except FileNotFoundError:
        return
    if hasattr(os, "fchmod"):
        os.fchmod(fd, mode)


def _create_temporary(directory: str, base: str) -> tuple[int, str]:
    """A new file ``.<base>.<random>.tmp`` in ``directory``, opened for writing."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        temporary = os.path.join(directory, f".{base}.{secrets.token_hex(6)}.tmp")
        try:
            return os.open(temporary, flags, 0o666), temporary
        except FileExistsError:
            continue


def _fsync_directory(directory: str) -> None:
    """Make a rename in ``directory`` durable, where the system can open a directory."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# ----------------------------------------------------------------------------- reading
class _NpzReader:
    """The ``.npy`` members of an ``.npz`` archive, each size checked before it is read.

    Opening reads the zip directory only (at most ``_MAX_MEMBERS`` entries).  For each
    member, :meth:`declared` reads its ``.npy`` header (shape, dtype, order) and checks it
    against the zip directory: the member's uncompressed size must be exactly the header
    plus the declared data; a stored member's compressed size equals it, a deflated
    member's compressed bytes must be able to expand to it, and no member may claim more
    compressed bytes than the archive holds.  :meth:`read_all` first checks every
    expected member's declared shape and dtype, then reads them (allocating the declared
    bytes only).  Every refusal is a :class:`PackedFormatError` that starts with ``bad``.

    Parameters
    ----------
    f : seekable binary file object
    bad : str
        The start of every error message (``"<name> is not a readable ... file"``).
    """

    def __init__(self, f, bad: str) -> None:
        self.bad = bad
        position = f.tell()
        size = f.seek(0, os.SEEK_END) - position
        f.seek(position)
        if f.read(6) == b"\x93NUMPY":
            raise PackedFormatError(f"{bad}: not an .npz archive (a single .npy array)")
        f.seek(position)
        try:
            self.zip = zipfile.ZipFile(f)
        except zipfile.BadZipFile as exc:
            raise PackedFormatError(f"{bad}: not an .npz archive ({exc})") from exc
        infos = self.zip.infolist()
        if len(infos) > _MAX_MEMBERS or sum(info.compress_size for info in infos) > size:
            self.zip.close()
            raise PackedFormatError(
                f"{bad}: {len(infos)} members whose compressed sizes do not fit the archive"
            )
        self.size = size
        self.members = {info.filename: info for info in infos}
        self._declared: dict[str, tuple] = {}

    def __enter__(self) -> _NpzReader:
        return self

    def __exit__(self, *exc) -> None:
        self.zip.close()

    def has(self, key: str) -> bool:
        """Whether the archive holds the array ``key``."""
        return f"{key}.npy" in self.members

    def _info(self, key: str) -> zipfile.ZipInfo:
        info = self.members.get(f"{key}.npy")
        if info is None:
            raise PackedFormatError(f"{self.bad}: no array {key!r}")
        if info.flag_bits & 0x1:
            raise PackedFormatError(f"{self.bad}: array {key!r} is encrypted")
        if info.compress_type == zipfile.ZIP_STORED:
            limit = info.compress_size
        elif info.compress_type == zipfile.ZIP_DEFLATED:
            limit = _DEFLATE_MAX_RATIO * info.compress_size + 1024
        else:
            raise PackedFormatError(
                f"{self.bad}: array {key!r} has compression method {info.compress_type}"
            )
        if info.compress_size > self.size or info.file_size > limit:
            raise PackedFormatError(
                f"{self.bad}: array {key!r} claims {info.file_size} bytes from "
                f"{info.compress_size} compressed bytes, in an archive of {self.size} bytes"
            )
        return info

    def declared(self, key: str) -> tuple[tuple[int, ...], np.dtype]:
        """Shape and dtype in the ``.npy`` header of ``key``, checked against the archive."""
        if key not in self._declared:
            info = self._info(key)
            with self.zip.open(info) as member:
                version = np.lib.format.read_magic(member)
                if version == (1, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_1_0(member)
                elif version == (2, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_2_0(member)
                else:
                    raise PackedFormatError(f"{self.bad}: array {key!r} has .npy {version}")
                offset = member.tell()
            _check_dtype(dtype, key, self.bad)
            nbytes = int(np.prod(shape, dtype=object)) * dtype.itemsize
            if offset + nbytes != info.file_size:
                raise PackedFormatError(
                    f"{self.bad}: array {key!r} declares {nbytes} bytes of data, its member "
                    f"holds {info.file_size - offset}"
                )
            self._declared[key] = (tuple(shape), dtype, bool(fortran), offset, nbytes)
        return self._declared[key][:2]

    def read_all(self, expected: dict) -> dict[str, np.ndarray]:
        """The arrays named in ``expected`` (key -> (shape, dtype kinds)), every declared
        shape and dtype checked before any is read."""
        for key, (shape, kinds) in expected.items():
            declared, dtype = self.declared(key)
            if declared != tuple(shape):
                raise PackedFormatError(
                    f"{self.bad}: array {key!r} has shape {declared}, the header implies "
                    f"{tuple(shape)}"
                )
            if dtype.kind not in kinds:
                raise PackedFormatError(f"{self.bad}: array {key!r} has dtype {dtype}")
        return {key: self.read(key) for key in expected}

    def read(self, key: str) -> np.ndarray:
        """The array ``key``, after :meth:`declared` (decompressed a chunk at a time)."""
        self.declared(key)
        shape, dtype, fortran, offset, nbytes = self._declared[key]
        data = np.empty(nbytes, np.uint8)
        with self.zip.open(self.members[f"{key}.npy"]) as member:
            member.read(offset)
            position = 0
            while position < nbytes:
                chunk = member.read(min(_READ_CHUNK, nbytes - position))
                if not chunk:
                    raise PackedFormatError(f"{self.bad}: array {key!r} is truncated")
                data[position : position + len(chunk)] = np.frombuffer(chunk, np.uint8)
                position += len(chunk)
            member.read()  # the rest (nothing): zipfile checks the CRC at the end
        array = data.view(dtype)
        if not dtype.isnative:
            array = array.astype(dtype.newbyteorder("="))
        return array.reshape(shape[::-1]).T if fortran else array.reshape(shape)

    def header(self) -> dict:
        """The JSON header (at most ``_MAX_HEADER_BYTES``), a dict."""
        if not self.has("header"):
            raise PackedFormatError(f"{self.bad}: no header")
        shape, dtype = self.declared("header")
        if dtype != np.uint8 or len(shape) != 1 or shape[0] > _MAX_HEADER_BYTES:
            raise PackedFormatError(f"{self.bad}: the header is not a uint8 text of at most "
                                    f"{_MAX_HEADER_BYTES} bytes")
        header = json.loads(self.read("header").tobytes().decode("utf-8"))
        if not isinstance(header, dict):
            raise PackedFormatError(f"{self.bad}: the header is not a JSON object")
        return header


def _check_dtype(dtype: np.dtype, key: str, bad: str) -> None:
    """Numbers, booleans or fixed-width unicode only (no objects, no records)."""
    if dtype.kind == "U" and dtype.itemsize > 0:
        return
    if dtype.kind not in _ITEMSIZES or dtype.itemsize not in _ITEMSIZES[dtype.kind]:
        raise PackedFormatError(f"{bad}: array {key!r} has dtype {dtype}")


def _check_finite_arrays(arrays: dict, bad: str, may_be_infinite=()) -> None:
    """PackedFormatError naming the first float array that is NaN, or infinite where only
    the keys in ``may_be_infinite`` may be."""
    for key, array in arrays.items():
        if key in ("header", "classes"):
            continue
        try:
            _check_finite(f"array {key!r}", array, allow_inf=key in may_be_infinite)
        except ValueError as exc:
            raise PackedFormatError(f"{bad}: {exc}") from None


# ----------------------------------------------------------------------------- helpers
def read_format_name(file) -> str | None:
    """The format named in the header of a saved network (``None`` when it names none);
    a file object is left at the position it had.

    Raises
    ------
    PackedFormatError
        The file is not an ``.npz`` archive with a readable header.
    """
    bad = f"{_describe(file)} is not a saved sklearn-bnn network"
    if isinstance(file, (str, os.PathLike)):
        with open(file, "rb") as f:
            return read_format_name(f)
    position = file.tell()
    try:
        with _NpzReader(file, bad) as archive:
            header = archive.header()
    except PackedFormatError:
        raise
    except _READ_ERRORS as exc:
        raise PackedFormatError(f"{bad} ({type(exc).__name__}: {exc})") from exc
    finally:
        file.seek(position)
    return header.get("format")


def _describe(file) -> str:
    return repr(os.fspath(file)) if isinstance(file, str | os.PathLike) else "the file"


def _is_count(value, minimum: int = 1) -> bool:
    return type(value) is int and value >= minimum


def _check_format(header: dict, bad: str, name: str, newest: int) -> None:
    """The header names format ``name`` in a version from 1 to ``newest`` (both families)."""
    if header.get("format") != name:
        raise PackedFormatError(f"{bad}: the header does not name the format {name!r}")
    version = header.get("version")
    if not _is_count(version):
        raise PackedFormatError(f"{bad}: invalid format version {version!r}")
    if version > newest:
        raise PackedFormatError(
            f"{bad}: it was written with format version {version}, newer than this "
            f"sklearn-bnn reads (up to {newest}). Upgrade sklearn-bnn to load it."
        )


def _check_header(header, bad: str) -> None:
    _check_format(header, bad, FORMAT_NAME, FORMAT_VERSION)
    sizes = header.get("layer_sizes")
    if (
        not _is_count(header.get("n_features_in"))
        or not _is_count(header.get("n_outputs"))
        or not _is_count(header.get("n_network_inputs", 1))
        or not isinstance(sizes, list)
        or not sizes
        or not all(_is_count(s) for s in sizes)
    ):
        raise PackedFormatError(f"{bad}: invalid sizes in the header")
    code = header.get("code")
    if code is not None and not (isinstance(code, dict) and type(code.get("keep_raw")) is bool):
        raise PackedFormatError(f"{bad}: invalid input code in the header")
    if header.get("first_layer", "binary") not in ("binary", "real"):
        raise PackedFormatError(f"{bad}: invalid first layer kind in the header")
    _check_header_linear(header, bad)
    _check_header_task(header, bad)


def _check_header_linear(header: dict, bad: str) -> None:
    """What the linear term reads (absent: the features): the code only where there is one."""
    reads = header.get("linear_input", "features")
    if reads not in LINEAR_INPUTS or (reads == "code" and not header.get("code")):
        raise PackedFormatError(f"{bad}: invalid linear_input {reads!r} in the header")


def _check_header_task(header: dict, bad: str) -> None:
    """The task (absent: classification, as every file before version 4) and target_ndim."""
    task = header.get("task", "classification")
    target_ndim = header.get("target_ndim")
    if task not in TASKS or not (target_ndim is None or type(target_ndim) is int):
        raise PackedFormatError(f"{bad}: invalid task {task!r} in the header")


def _expected_arrays(header: dict, bad: str) -> dict[str, tuple[tuple[int, ...], str]]:
    """Each array the header implies: key -> (shape, accepted dtype kinds)."""
    n_features, n_outputs = header["n_features_in"], header["n_outputs"]
    sizes = [header.get("n_network_inputs", n_features), *header["layer_sizes"]]
    real = header.get("first_layer") == "real"
    out = {}
    for k, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        n_bytes = 0 if real and k == 0 else -(-n_out * n_in // 8)
        out[f"layer{k}.bits"] = ((n_bytes,), "u")
        out[f"layer{k}.threshold"] = ((n_out,), "f" if k == 0 else "i")
    if real:
        out["layer0.weight"] = ((sizes[1], sizes[0]), "f")
    if header.get("code") is not None:
        n_bits = sizes[0] - n_features * header["code"]["keep_raw"]
        if n_bits < 0:
            raise PackedFormatError(f"{bad}: the input code's sizes do not add up")
        out["code.feature"] = ((n_bits,), "iu")
        out["code.threshold"] = ((n_bits,), "f")
    out["head.weight"] = ((n_outputs, sizes[-1]), "f")
    out["head.bias"] = ((n_outputs,), "f")
    out["classes"] = ((n_outputs,), "biufU")
    if header.get("input_scaling"):
        out["input.offset"] = out["input.scale"] = ((n_features,), "f")
    if header.get("linear"):
        n_read = sizes[0] if header.get("linear_input") == "code" else n_features
        out["linear.coef"] = ((n_read, n_outputs), "f")
        out["linear.intercept"] = ((n_outputs,), "f")
    return out


def _classes_to_array(classes: np.ndarray) -> tuple[np.ndarray, str | None]:
    """Labels as a pickle-free array, and how to restore their dtype."""
    if classes.dtype.kind in "biufU":
        return classes, None
    if classes.dtype.kind == "O" and all(isinstance(c, str) for c in classes):
        return classes.astype(str), "object"
    raise ValueError(
        f"class labels of dtype {classes.dtype} cannot be saved without pickle; "
        "use integer, float, bool or string labels."
    )


def _float_keys(dtype):
    """Unsigned ints ordered as the floats of ``dtype`` (for bisection over floats)."""
    uint = np.dtype(f"uint{8 * np.dtype(dtype).itemsize}")
    top = uint.type(1) << uint.type(8 * uint.itemsize - 1)

    def to_key(values):
        u = np.asarray(values, dtype=dtype).view(uint)
        return np.where(u & top, ~u, u | top)

    def from_key(keys):
        keys = keys.astype(uint)
        return np.where(keys & top, keys & ~top, ~keys).view(dtype)

    return to_key, from_key
