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
float32 up to :math:`2^{24}`); the popcount backend and the float32 product backend give the
same integers.  Each later step is one IEEE float32 multiplication or addition, correctly
rounded in numpy as in torch (a float32 tensor times a Python float multiplies by the float32
number), so the stream, and with it every unit, agrees bit for bit with the torch module's
``"binary"`` forward pass.  Two sums are not order-free, as in
:mod:`sklearn_bnn.deploy.packed`: the first layer's dot product (both sides sum the exact
float32 products in float64 and round once to float32, in BLAS orders that may differ) and the
head (float64 here, float32 in torch: logits agree to about 1e-6, labels differ only where
the two largest logits are that close).

**File format**: one ``.npz`` (``allow_pickle=False``): ``header`` (UTF-8 JSON as uint8:
format name and version, sizes, class dtype, input code flag), ``first.weight``,
``first.bias``, ``first.scale``, ``blocks.bits`` (``np.packbits`` of the
``(n_blocks, N, N)`` signs, 1 for +1), ``blocks.coef``, ``blocks.offset``, ``head.weight``,
``head.bias``, ``classes``, and ``code.feature``/``code.threshold`` for an input code.

This module imports numpy only (the torch module is read by :mod:`sklearn_bnn.nn.bridge`).
"""

from __future__ import annotations

import json

import numpy as np

from .packed import InputCode, LinearTerm, LogitReadout

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "PackedResidualNetwork"]

FORMAT_NAME = "sklearn-bnn-packed-residual"
FORMAT_VERSION = 2  # 2: an optional linear term (written as 1 without one)
#: Backends for the dot products of the binary blocks (identical integers).
BACKENDS = ("matmul", "popcount")
_BLOCK_ROWS = 4096


def _pack_rows(on: np.ndarray) -> np.ndarray:
    """Bool (n, N) -> uint64 words (n, ceil(N / 64)), zero-padded."""
    n, n_in = on.shape
    packed = np.zeros((n, 8 * -(-n_in // 64)), dtype=np.uint8)
    packed[:, : -(-n_in // 8)] = np.packbits(on, axis=1)
    return packed.view(np.uint64)


def _dot_popcount(on: np.ndarray, words: np.ndarray, n_in: int) -> np.ndarray:
    """:math:`N - 2\\,\\operatorname{popcount}(s_i \\oplus u)` for every row and unit."""
    x = _pack_rows(on)  # (n, W)
    mismatch = np.bitwise_count(x[:, None, :] ^ words[None, :, :]).sum(-1, dtype=np.int64)
    return (n_in - 2 * mismatch).astype(np.float32)


def _dot_matmul(on: np.ndarray, signs_pm: np.ndarray) -> np.ndarray:
    u = on.astype(np.float32)
    u *= 2
    u -= 1
    return u @ signs_pm.T  # exact: integers below 2**24


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
    backend : {"matmul", "popcount"}, default="matmul"

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
                 backend: str = "matmul"):
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
        if backend not in BACKENDS:
            raise ValueError(f"backend={backend!r} is not valid. Valid values: {BACKENDS}.")
        self.backend = backend
        width = len(self.first_bias)
        n_blocks = len(self.signs)
        if self.signs.shape != (n_blocks, width, width) or self.coef.shape != (n_blocks, width) \
                or self.offset.shape != (n_blocks, width) or len(self.classes_) != n_out:
            raise ValueError("inconsistent shapes of the residual network's arrays.")
        self.n_features_in_ = code.n_features if code is not None else self.first_weight.shape[1]
        self._kernels = None

    # ------------------------------------------------------------------ building
    # ----------------------------------------------------------------- inference
    def _prepared(self):
        if self._kernels is None:
            pm = self.signs.astype(np.float32) * 2 - 1
            words = [_pack_rows(s) for s in self.signs]
            self._kernels = (pm, words)
        return self._kernels

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
        return np.concatenate(
            [self._stream(X[i : i + _BLOCK_ROWS]) for i in range(0, len(X), _BLOCK_ROWS)]
        ) if len(X) else np.empty((0, len(self.first_bias)), np.float32)

    def _stream(self, X):
        if self.code is not None:
            X = self.code.apply(X)
        dot = (X.astype(np.float64) @ self.first_weight.astype(np.float64).T).astype(np.float32)
        h = dot * self.first_scale + self.first_bias
        pm, words = self._prepared()
        n_in = h.shape[1]
        for block in range(len(self.signs)):
            on = h >= 0
            if self.backend == "popcount":
                d = _dot_popcount(on, words[block], n_in)
            else:
                d = _dot_matmul(on, pm[block])
            h = h + d * self.coef[block]
            h = h + self.offset[block]
        return h

    def transform(self, X) -> np.ndarray:
        r"""Units read by the head, :math:`\operatorname{sign}(h^L) \in \{-1, +1\}` (int8)."""
        on = self.stream(X) >= 0
        return on.astype(np.int8) * 2 - 1

    def logits(self, X) -> np.ndarray:
        """Head output accumulated in float64 (plus the linear term, if any), shape
        (n_samples, n_outputs)."""
        X = self._validate(X)
        units = self.transform(X).astype(np.float64)
        out = units @ self.head_weight.astype(np.float64).T + self.head_bias.astype(np.float64)
        return self._add_linear(X, out)

    def layer_nbytes(self) -> list[int]:
        """Bytes of the exported arrays: first layer, each block (packed signs, coef,
        offset), head."""
        width = len(self.first_bias)
        block = -(-width * width // 8) + 2 * 4 * width
        first = self.first_weight.nbytes + self.first_bias.nbytes + 4
        head = self.head_weight.nbytes + self.head_bias.nbytes
        return [first] + [block] * len(self.signs) + [head]

    def to_c(self, *args, **kwargs):
        """Not implemented: C99 export covers :class:`~.packed.PackedBinaryNetwork`.

        Raises
        ------
        NotImplementedError
            Always; :meth:`save` writes the exact numpy artefact.
        """
        raise NotImplementedError(
            "C export is implemented for architecture='plain' only; save() writes this "
            "residual network's exact numpy artefact."
        )

    # ------------------------------------------------------------------ files
    def save(self, file) -> None:
        """Write one ``.npz`` file (no pickle)."""
        classes = self.classes_
        kind = "str" if classes.dtype.kind in "OUS" else "num"
        header = {
            "format": FORMAT_NAME, "version": 1 if self.linear_coef is None else 2,
            "n_blocks": len(self.signs), "classes": kind, "code": self.code is not None,
            "keep_raw": bool(self.code.keep_raw) if self.code is not None else None,
            "code_n_features": self.code.n_features if self.code is not None else None,
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
        np.savez_compressed(file, **arrays)

    @classmethod
    def format_name(cls) -> str:
        """The format name in the header of the files this class writes."""
        return FORMAT_NAME

    @classmethod
    def load(cls, file, backend: str = "matmul") -> PackedResidualNetwork:
        """Read a file written by :meth:`save`."""
        with np.load(file, allow_pickle=False) as f:
            header = json.loads(f["header"].tobytes().decode())
            if header.get("format") != FORMAT_NAME or header.get("version", 0) > FORMAT_VERSION:
                raise ValueError(f"not a readable {FORMAT_NAME} file (header {header!r}).")
            width = len(f["first.bias"])
            n_blocks = header["n_blocks"]
            signs = np.unpackbits(f["blocks.bits"], count=n_blocks * width * width)
            code = None
            if header["code"]:
                code = InputCode(header["code_n_features"], f["code.feature"],
                                 f["code.threshold"], header["keep_raw"])
            classes = f["classes"]
            linear = [f[k] if k in f.files else None for k in ("linear.coef", "linear.intercept")]
            packed = cls(
                f["first.weight"], f["first.bias"], f["first.scale"][0],
                signs.reshape(n_blocks, width, width).astype(bool), f["blocks.coef"],
                f["blocks.offset"], f["head.weight"], f["head.bias"],
                classes.astype(object) if header["classes"] == "str" else classes, code, backend,
            )
        packed.set_linear(*linear)
        return packed


def _real(array) -> np.ndarray:
    """float64 kept as it is, any other numbers as float32."""
    array = np.asarray(array)
    return array if array.dtype == np.float64 else array.astype(np.float32)
