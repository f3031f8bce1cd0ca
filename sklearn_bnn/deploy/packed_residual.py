r"""Exact numpy export of the residual 1-bit network (:mod:`sklearn_bnn.nn.residual`).

:class:`PackedResidualNetwork` holds the deployed network of a trained
:class:`~sklearn_bnn.nn.residual.ResidualBinaryNetwork` in a few numpy arrays and runs it
with numpy alone:

.. math::
    h^1 = \operatorname{fl}_{32}\big(\operatorname{fl}_{32}(W^0 x) \cdot s_0\big) + b^0,
    \qquad
    d^l_i = N - 2\operatorname{popcount}(s^l_i \oplus u^l), \quad u^l = [h^l \ge 0],
    \qquad
    h^{l+1} = \big(h^l + d^l \cdot k^l\big) + \beta^l,

every operation in float32 (the network's dtype) in that order, :math:`k^l = \gamma^l s`
stored as the float32 numbers the torch module multiplies by
(:meth:`ResidualBinaryNetwork.block_coef`), then units :math:`\operatorname{sign}(h^L)`
(``sign(0) = +1``) and the real head.

**Exactness.**  The dot product :math:`d^l` of :math:`\pm 1` vectors is an integer (exact in
float32 up to :math:`2^{24}`); the backends (:data:`BACKENDS`: the compiled XOR + popcount
kernel of :mod:`sklearn_bnn.deploy._kernel`, the float32 product, numpy's popcount) give the
same integers, and ``"auto"``, the default, chooses as for
:class:`~sklearn_bnn.deploy.packed.PackedBinaryNetwork`.  Each later step is one IEEE float32
multiplication or addition, correctly rounded in numpy as in torch (a float32 tensor times a
Python float multiplies by the float32 number), so the stream, and with it every unit, agrees
bit for bit with the torch module's ``"binary"`` forward pass.  Two sums are not order-free,
as in :mod:`sklearn_bnn.deploy.packed`: the first layer's dot product (both sides sum the
exact float32 products in float64 and round once to float32, in BLAS orders that may differ)
and the head (float64 here, float32 in torch: logits agree to about 1e-6, labels differ only
where the two largest logits are that close).

**File format** (:data:`FORMAT_VERSION` 4, written only when the linear term reads the input
code; 3 for a regression; 2 with a linear term; else 1; all load): one ``.npz`` archive:
``header`` (UTF-8 JSON as uint8: format name and version, sizes, class dtype, input code
flag, the task and, for a regression, the target's number of dimensions; no task, as before
version 3, is a classification), ``first.weight``, ``first.bias``, ``first.scale``,
``blocks.bits`` (``np.packbits`` of the ``(n_blocks, N, N)`` signs, 1 for +1),
``blocks.coef``, ``blocks.offset``, ``head.weight``, ``head.bias``, ``classes``,
``code.feature``/``code.threshold`` for an input code and
``linear.coef``/``linear.intercept`` for a linear term (``linear_input`` in the header when
it reads the code: one row of ``linear.coef`` per input of the first layer). Saving and
loading are those of :mod:`sklearn_bnn.deploy.packed`: a path is written atomically under
its exact name, and every array's declared shape and size is checked before it is read; a
malformed file or a non-finite parameter raises
:class:`~sklearn_bnn.deploy.packed.PackedFormatError`.

This module imports numpy only (the torch module is read by :mod:`sklearn_bnn.nn.bridge`).
"""

from __future__ import annotations

import json
import os

import numpy as np

from .packed import (
    _READ_ERRORS,
    DEFAULT_BACKEND,
    InputCode,
    LinearTerm,
    LogitReadout,
    PackedFormatError,
    _bitwise_count,
    _check_backend,
    _check_finite,
    _check_finite_arrays,
    _check_format,
    _check_header_linear,
    _check_header_task,
    _check_task,
    _is_count,
    _native,
    _NpzReader,
    _pack_rows,
    _plus_minus,
    _resolve_backend,
    _write_npz,
)

__all__ = ["BACKENDS", "FORMAT_NAME", "FORMAT_VERSION", "PackedResidualNetwork"]

FORMAT_NAME = "sklearn-bnn-packed-residual"
#: 2: an optional linear term; 3: the task recorded (each written only when needed).
FORMAT_VERSION = 4
_BLOCK_ROWS = 4096


# Each backend: prepare(signs) -> kernel, once per block; run(on, kernel) -> the integer dot
# products d = N - 2 popcount(s_i XOR u) as float32 (exact: |d| <= N < 2**24).
def _prepare_popcount(signs: np.ndarray) -> np.ndarray:
    return _pack_rows(signs)


def _run_popcount(on: np.ndarray, words: np.ndarray) -> np.ndarray:
    """XOR of 64-bit words and a popcount, in numpy."""
    x = _pack_rows(on)  # (n, W)
    mismatch = _bitwise_count(x[:, None, :] ^ words[None, :, :]).sum(-1, dtype=np.int64)
    return (on.shape[1] - 2 * mismatch).astype(np.float32)


def _prepare_matmul(signs: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(_plus_minus(signs, np.float32).T)


def _run_matmul(on: np.ndarray, weight_t: np.ndarray) -> np.ndarray:
    """The float32 product of +-1 units and +-1 signs (exact: integers below 2**24)."""
    return _plus_minus(on, np.float32) @ weight_t


def _prepare_native(signs: np.ndarray):
    kernel = _native()
    if kernel is None:
        raise RuntimeError("the native backend needs _kernel.py next to this module")
    return kernel.prepare_dot(signs)


def _run_native(on: np.ndarray, kernel) -> np.ndarray:
    """The compiled XOR + popcount kernel's int32 dot products (``_kernel.run_dot``)."""
    return _native().run_dot(on, kernel).astype(np.float32)


#: Ways to compute the blocks' dot products: name -> (prepare(signs), run(units, kernel)).
#: All give the same integers.  The names are those of
#: :data:`sklearn_bnn.deploy.packed.BACKENDS`, whose checks and ``"auto"``
#: (:data:`~sklearn_bnn.deploy.packed.DEFAULT_BACKEND`) this module uses.
BACKENDS = {
    "popcount": (_prepare_popcount, _run_popcount),
    "matmul": (_prepare_matmul, _run_matmul),
    "native": (_prepare_native, _run_native),
}


def _blocks(X: np.ndarray) -> range:
    """Start rows of the blocks of ``_BLOCK_ROWS`` rows that ``X`` is computed in."""
    return range(0, len(X), _BLOCK_ROWS)


class PackedResidualNetwork(LinearTerm, LogitReadout):
    r"""The deployed residual 1-bit network, numpy only, exact (see the module docstring).

    Build it with the estimator's ``export_binary()``;
    ``predict``/``predict_proba``/``decision_function``
    as a scikit-learn classifier; :meth:`save`/:meth:`load` one ``.npz`` file.

    Parameters
    ----------
    first_weight, first_bias : ndarray of float32, shapes (N, n_inputs), (N,)
    first_scale : float
        :math:`1/\sqrt{n_\text{inputs}}` as float32.
    signs : ndarray of bool, shape (n_blocks, N, N)
        :math:`\operatorname{sign}(M^l) = +1` where True.
    coef, offset : ndarray of float32, shape (n_blocks, N)
        :math:`k^l = \gamma^l s` and :math:`\beta^l`.
    head_weight, head_bias : ndarray of float32, shapes (n_outputs, N), (n_outputs,)
    classes : array-like, optional
        Labels of the logits (default ``0..n_outputs-1``).
    code : InputCode, optional
        Input code applied before the first layer.
    backend : {"auto", "native", "matmul", "popcount"}, default="auto"
        How the blocks' dot products are computed (:data:`BACKENDS`, the same integers):
        the compiled kernel, the float32 product or numpy's popcount; ``"auto"`` is
        ``"native"`` where the kernel loads, else ``"matmul"``, as for
        :class:`~sklearn_bnn.deploy.packed.PackedBinaryNetwork`.
    task : {"classification", "regression"}, default="classification"
        What the logits are (:class:`~sklearn_bnn.deploy.packed.LogitReadout`).
    target_ndim : {1, 2}, default=None
        Regression only: shape of ``predict``, as in
        :class:`~sklearn_bnn.deploy.packed.PackedBinaryNetwork`.

    Raises
    ------
    ValueError
        Inconsistent shapes, or a NaN or infinite parameter (NaN only for the input code's
        thresholds).

    Examples
    --------
    >>> import numpy as np, torch
    >>> from sklearn_bnn.nn.residual import ResidualBinaryNetwork, initialize_residual
    >>> from sklearn_bnn.nn.bridge import pack_residual
    >>> _ = torch.manual_seed(0)
    >>> net = ResidualBinaryNetwork(5, (16,) * 4, 3)
    >>> _ = initialize_residual(net, "critical")
    >>> X = np.random.default_rng(0).normal(size=(50, 5)).astype(np.float32)
    >>> packed = pack_residual(net)
    >>> units = net.features(torch.from_numpy(X), "binary").numpy()
    >>> bool((packed.transform(X) == units).all())
    True
    """

    def __init__(self, first_weight, first_bias, first_scale, signs, coef, offset,
                 head_weight, head_bias, classes=None, code: InputCode | None = None,
                 backend: str = DEFAULT_BACKEND, *, task: str = "classification",
                 target_ndim: int | None = None):
        self.first_weight = np.asarray(first_weight, np.float32)
        self.first_bias = np.asarray(first_bias, np.float32)
        self.first_scale = np.float32(first_scale)
        self.signs = np.asarray(signs, bool)
        self.coef = np.asarray(coef, np.float32)
        self.offset = np.asarray(offset, np.float32)
        # float64 kept: a regressor's head carries its target scaling folded in
        self.head_weight = _real(head_weight)
        self.head_bias = _real(head_bias)
        n_out = len(self.head_bias)
        self.classes_ = np.arange(n_out) if classes is None else np.asarray(classes)
        self.code = code
        self.backend = backend
        width = len(self.first_bias)
        n_blocks = len(self.signs)
        if self.signs.ndim != 3 or self.signs.shape != (n_blocks, width, width) \
                or self.coef.shape != (n_blocks, width) or self.offset.shape != (n_blocks, width) \
                or self.first_bias.ndim != 1 or self.first_weight.ndim != 2 \
                or self.first_weight.shape[0] != width or self.head_bias.ndim != 1 \
                or self.head_weight.shape != (n_out, width) or self.classes_.shape != (n_out,):
            raise ValueError("inconsistent shapes of the residual network's arrays.")
        self.n_features_in_ = code.n_features if code is not None else self.first_weight.shape[1]
        if code is not None:
            code.check()
            if code.n_outputs != self.first_weight.shape[1]:
                raise ValueError(
                    f"the input code gives {code.n_outputs} inputs, the first layer reads "
                    f"{self.first_weight.shape[1]}"
                )
        self._check_values()
        self.task, self.target_ndim = _check_task(task, target_ndim, n_out)
        self._kernels: dict[str, list] = {}

    def __getstate__(self) -> dict:
        """Pickle the parameters only; working arrays are rebuilt on the next predict."""
        return {**self.__dict__, "_kernels": {}}

    def __setstate__(self, state: dict) -> None:
        """Also a pickle of an earlier version (a plain ``backend`` attribute)."""
        state = {**state, "_kernels": {}}
        if "backend" in state:
            state["_backend"] = state.pop("backend")
        self.__dict__.update(state)

    @property
    def backend(self) -> str:
        return self._backend

    @backend.setter
    def backend(self, value: str) -> None:
        self._backend = _check_backend(value)

    def _check_values(self) -> None:
        """ValueError naming the first parameter that is NaN or infinite."""
        for name in ("first_weight", "first_bias", "first_scale", "coef", "offset",
                     "head_weight", "head_bias", "linear_coef", "linear_intercept"):
            if getattr(self, name) is not None:
                _check_finite(name, getattr(self, name))
        if self.code is not None:
            _check_finite("code.threshold", self.code.threshold, allow_inf=True)

    # ------------------------------------------------------------------ building
    # ----------------------------------------------------------------- inference
    def _prepared(self, backend: str) -> list:
        """The backend's kernel of each block, prepared on first use."""
        if backend not in self._kernels:
            prepare = BACKENDS[backend][0]
            self._kernels[backend] = [prepare(signs) for signs in self.signs]
        return self._kernels[backend]

    def _validate(self, X) -> np.ndarray:
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X must have shape (n_samples, {self.n_features_in_}); got {X.shape}."
            )
        if X.dtype.kind not in "biuf":
            raise ValueError(f"X must be numeric, got dtype {X.dtype}.")
        X = X.astype(np.float32, copy=False)
        if not np.isfinite(X).all():
            raise ValueError("Input X contains NaN or infinity.")
        return X

    def stream(self, X) -> np.ndarray:
        """The last residual stream :math:`h^L`, float32, shape (n_samples, N)."""
        X = self._validate(X)
        return self._streams([self._coded(X[i : i + _BLOCK_ROWS]) for i in _blocks(X)])

    def _streams(self, coded: list[np.ndarray]) -> np.ndarray:
        """The last streams of blocks of first-layer inputs (:meth:`_coded`), stacked."""
        if not coded:
            return np.empty((0, len(self.first_bias)), np.float32)
        return np.concatenate([self._stream(block) for block in coded])

    def _stream(self, coded):
        weight_t = self.first_weight.astype(np.float64).T
        dot = (coded.astype(np.float64) @ weight_t).astype(np.float32)
        h = dot * self.first_scale + self.first_bias
        backend = _resolve_backend(self.backend)
        run = BACKENDS[backend][1]
        for block, kernel in enumerate(self._prepared(backend)):
            d = run(h >= 0, kernel)
            h = h + d * self.coef[block]
            h = h + self.offset[block]
        return h

    def transform(self, X) -> np.ndarray:
        r"""Units read by the head, :math:`\operatorname{sign}(h^L) \in \{-1, +1\}` (int8)."""
        return _plus_minus(self.stream(X) >= 0, np.int8)

    def logits(self, X) -> np.ndarray:
        """Head output accumulated in float64 (plus the linear term, if any), shape
        (n_samples, n_outputs)."""
        X = self._validate(X)
        coded = [self._coded(X[i : i + _BLOCK_ROWS]) for i in _blocks(X)]  # once for both
        units = _plus_minus(self._streams(coded) >= 0, np.float64)
        out = units @ self.head_weight.astype(np.float64).T + self.head_bias.astype(np.float64)
        for i, block in zip(_blocks(X), coded):
            self._add_linear(X[i : i + _BLOCK_ROWS], out[i : i + _BLOCK_ROWS], block)
        return out

    def layer_nbytes(self) -> list[int]:
        """Bytes of the exported arrays: first layer, each block (packed signs, coef,
        offset), head."""
        width = len(self.first_bias)
        block = -(-width * width // 8) + 2 * 4 * width
        first = self.first_weight.nbytes + self.first_bias.nbytes + 4
        head = self.head_weight.nbytes + self.head_bias.nbytes
        return [first] + [block] * len(self.signs) + [head]

    def to_c(self, directory, name: str = "bnn", word_bits: int = 64, task: str | None = None):
        """Write the network as a dependency-free C99 pair ``name.h`` / ``name.c``.

        The entry points of :meth:`PackedBinaryNetwork.to_c
        <sklearn_bnn.deploy.packed.PackedBinaryNetwork.to_c>` (``name_predict``,
        ``name_predict_proba``, ``name_logits``, ``name_predict_batch``; a regression's
        ``name_predict`` writes its outputs) and ``void name_stream(const float *x,
        float *h)``, the last stream (:meth:`stream`).  The stream is computed with the
        float32 operations of this class in the same order, the first layer's dot product
        in ``double`` rounded once; see :mod:`sklearn_bnn.deploy.c_export`.

        Parameters
        ----------
        directory : str or os.PathLike
            Created if missing; existing files of the same names are overwritten.
        name : str, default="bnn"
            Prefix of the files and of every C symbol; a C identifier.
        word_bits : {64, 32}, default=64
            Width of the packed words (``uint64_t`` or ``uint32_t``).
        task : {"classification", "regression"}, default=None
            ``None``: the network's own :attr:`task`; naming the other one raises
            ``ValueError``.

        Returns
        -------
        header_path, source_path : pathlib.Path
        """
        from .c_export import write

        return write(self, directory, name=name, word_bits=word_bits, task=task)

    # ------------------------------------------------------------------ files
    def save(self, file) -> None:
        """Write one ``.npz`` file (no pickle); a path atomically, under its exact name.

        Parameters
        ----------
        file : str, os.PathLike or binary file object
            Written as given (no ``.npz`` suffix is added).
        """
        classes = self.classes_
        kind = "str" if classes.dtype.kind in "OUS" else "num"
        header = {
            "format": FORMAT_NAME, "version": self._format_version(),
            "n_blocks": len(self.signs), "classes": kind, "code": self.code is not None,
            "keep_raw": bool(self.code.keep_raw) if self.code is not None else None,
            "code_n_features": self.code.n_features if self.code is not None else None,
            "width": len(self.first_bias), "n_inputs": int(self.first_weight.shape[1]),
            "n_outputs": len(self.head_bias), **self._linear_header(),
            "task": self.task, "target_ndim": self.target_ndim,
        }
        arrays = {
            "header": np.frombuffer(json.dumps(header).encode(), np.uint8),
            "first.weight": self.first_weight, "first.bias": self.first_bias,
            "first.scale": np.array([self.first_scale], np.float32),
            "blocks.bits": np.packbits(self.signs.reshape(-1)),
            "blocks.coef": self.coef, "blocks.offset": self.offset,
            "head.weight": self.head_weight, "head.bias": self.head_bias,
            "classes": classes.astype(str) if kind == "str" else classes,
            **self._linear_arrays(),
        }
        if self.code is not None:
            arrays["code.feature"] = self.code.feature
            arrays["code.threshold"] = self.code.threshold
        _write_npz(file, arrays)

    def _format_version(self) -> int:
        """The oldest layout that holds this network, so that older readers load it."""
        if self.linear_coef is not None and self.linear_input != "features":
            return 4
        if self.task != "classification":
            return 3
        return 1 if self.linear_coef is None else 2

    @classmethod
    def format_name(cls) -> str:
        """The format name in the header of the files this class writes."""
        return FORMAT_NAME

    @classmethod
    def load(cls, file, backend: str = DEFAULT_BACKEND) -> PackedResidualNetwork:
        """Read a file written by :meth:`save`.

        Parameters
        ----------
        file : str, os.PathLike or binary file object (seekable)
        backend : {"auto", "native", "matmul", "popcount"}, default="auto"
            As in the constructor.

        Returns
        -------
        PackedResidualNetwork

        Raises
        ------
        PackedFormatError
            The file is not such a network, is corrupted, holds NaN or infinite parameters,
            or was written by a newer format version.  (A missing file raises
            ``FileNotFoundError``.)
        """
        _check_backend(backend)
        if isinstance(file, (str, os.PathLike)):
            with open(file, "rb") as f:
                return cls._read(f, os.fspath(file), backend)
        return cls._read(file, "the file", backend)

    @classmethod
    def _read(cls, f, name: str, backend: str) -> PackedResidualNetwork:
        bad = f"{name} is not a readable {FORMAT_NAME} file"
        try:
            with _NpzReader(f, bad) as archive:
                header = archive.header()
                _check_header(header, bad)
                arrays = archive.read_all(_expected_arrays(header, archive, bad))
            _check_finite_arrays(arrays, bad, ("code.threshold",))
            return cls._from_arrays(header, arrays, backend)
        except PackedFormatError:
            raise
        except _READ_ERRORS as exc:
            raise PackedFormatError(f"{bad} ({type(exc).__name__}: {exc})") from exc

    @classmethod
    def _from_arrays(cls, header: dict, arrays: dict, backend: str) -> PackedResidualNetwork:
        """The network of a checked header and its arrays."""
        n_blocks, width = arrays["blocks.coef"].shape
        signs = np.unpackbits(arrays["blocks.bits"], count=n_blocks * width * width)
        code = None
        if header["code"]:
            code = InputCode(header["code_n_features"], arrays["code.feature"],
                             arrays["code.threshold"], header["keep_raw"])
        classes = arrays["classes"]
        packed = cls(
            arrays["first.weight"], arrays["first.bias"], arrays["first.scale"][0],
            signs.reshape(n_blocks, width, width).astype(bool), arrays["blocks.coef"],
            arrays["blocks.offset"], arrays["head.weight"], arrays["head.bias"],
            classes.astype(object) if header["classes"] == "str" else classes, code, backend,
            task=header.get("task", "classification"), target_ndim=header.get("target_ndim"),
        )
        packed.set_linear(arrays.get("linear.coef"), arrays.get("linear.intercept"),
                          header.get("linear_input", "features"))
        return packed


def _check_header(header: dict, bad: str) -> None:
    """Format, version and the header's fields, with their types."""
    _check_format(header, bad, FORMAT_NAME, FORMAT_VERSION)
    code = header.get("code")
    valid = (
        _is_count(header.get("n_blocks"), 0)
        and header.get("classes") in ("str", "num")
        and type(code) is bool
        and (not code or (_is_count(header.get("code_n_features"))
                          and type(header.get("keep_raw")) is bool))
        and all(_is_count(header.get(key, 1)) for key in ("width", "n_inputs", "n_outputs"))
        and type(header.get("linear", False)) is bool
    )
    if not valid:
        raise PackedFormatError(f"{bad}: invalid fields in the header")
    _check_header_linear(header, bad)
    _check_header_task(header, bad)


def _declared_size(header: dict, archive, key: str, array: str, axis: int, bad: str) -> int:
    """A size from the header, or, in files before version 3, from an array's declared
    shape (checked against the archive's sizes first)."""
    if key in header:
        return header[key]
    shape, _ = archive.declared(array)
    if len(shape) != axis + 1 or not shape[axis] > 0:
        raise PackedFormatError(f"{bad}: array {array!r} has shape {shape}")
    return shape[axis]


def _expected_arrays(header: dict, archive, bad: str) -> dict:
    """Each array the header implies: key -> (shape, accepted dtype kinds)."""
    width = _declared_size(header, archive, "width", "first.bias", 0, bad)
    n_inputs = _declared_size(header, archive, "n_inputs", "first.weight", 1, bad)
    n_outputs = _declared_size(header, archive, "n_outputs", "head.bias", 0, bad)
    n_blocks = header["n_blocks"]
    out = {
        "first.weight": ((width, n_inputs), "f"),
        "first.bias": ((width,), "f"),
        "first.scale": ((1,), "f"),
        "blocks.bits": ((-(-n_blocks * width * width // 8),), "u"),
        "blocks.coef": ((n_blocks, width), "f"),
        "blocks.offset": ((n_blocks, width), "f"),
        "head.weight": ((n_outputs, width), "f"),
        "head.bias": ((n_outputs,), "f"),
        "classes": ((n_outputs,), "biufU"),
    }
    if header["code"]:
        n_bits = n_inputs - header["code_n_features"] * header["keep_raw"]
        if n_bits < 0:
            raise PackedFormatError(f"{bad}: the input code's sizes do not add up")
        out["code.feature"] = ((n_bits,), "iu")
        out["code.threshold"] = ((n_bits,), "f")
    # before version 3 the header did not say; version 2 was written for a linear term only
    if header.get("linear", header["version"] == 2):
        n_features = header["code_n_features"] if header["code"] else n_inputs
        if header.get("linear_input") == "code":
            n_features = n_inputs
        out["linear.coef"] = ((n_features, n_outputs), "f")
        out["linear.intercept"] = ((n_outputs,), "f")
    return out


def _real(array) -> np.ndarray:
    """float64 kept as it is, any other numbers as float32."""
    array = np.asarray(array)
    return array if array.dtype == np.float64 else array.astype(np.float32)
