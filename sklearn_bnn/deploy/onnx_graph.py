r"""The ONNX graph of an exported network, written with the ``onnx`` package and numpy alone.

:func:`to_onnx` turns a :class:`~sklearn_bnn.deploy.packed.PackedBinaryNetwork` or a
:class:`~sklearn_bnn.deploy.packed_residual.PackedResidualNetwork` (as saved and
:func:`~sklearn_bnn.deploy.load`-ed on a device) into an ``onnx.ModelProto``: a classifier
(outputs ``label`` and ``probabilities``) or a regressor (one output, ``variable``) after the
network's recorded ``task``.  Importing this module imports neither torch, skorch,
scikit-learn, scipy nor skl2onnx, and ``onnx`` only when a graph is written.

The graph computes the network operation for operation as its ``"matmul"`` backend;
:mod:`sklearn_bnn.onnx` describes it node by node.  That module's
:func:`sklearn_bnn.onnx.to_onnx` calls :func:`to_onnx` for a packed network, and its
skl2onnx converters for the estimators write the same nodes with the helpers here.

Examples
--------
>>> import numpy as np
>>> import onnxruntime as ort
>>> from sklearn_bnn import deploy
>>> from sklearn_bnn.deploy.onnx_graph import to_onnx
>>> first = deploy.PackedLayer((2, 3), np.packbits([1, 0, 1, 0, 0, 1]), np.zeros(2, np.float32))
>>> net = deploy.PackedBinaryNetwork(
...     [first], np.array([[1, -1], [-1, 1]], np.float32), np.zeros(2, np.float32))
>>> model = to_onnx(net)
>>> [o.name for o in model.graph.output]
['label', 'probabilities']
>>> X = np.array([[1.0, 0.0, -1.0], [-1.0, 2.0, 0.5]])
>>> session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
>>> label, proba = session.run(None, {"X": X})
>>> bool(np.array_equal(label, net.predict(X)))
True
"""

from __future__ import annotations

import importlib

import numpy as np

from .packed import LinearTerm, PackedBinaryNetwork
from .packed_residual import PackedResidualNetwork

__all__ = ["DTYPES", "MIN_OPSET", "to_onnx"]

#: The lowest opset written (``GreaterOrEqual`` needs 12; from 13 every operator used has its
#: present definition).
MIN_OPSET = 13

#: The input types a graph can take: ``double`` or ``float`` (cast to the network's float32).
DTYPES = (np.float64, np.float32)

#: The exported networks written here.
_PACKED = (PackedBinaryNetwork, PackedResidualNetwork)


def _require(name: str, user: str = __name__, install: str | None = None):
    """Import an optional dependency, or fail naming the module ``user`` that needs it and
    the install command (``install``; by default the package itself, or the extra)."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        install = install or f'pip install {name} (or pip install "sklearn-bnn[onnx]")'
        raise ImportError(
            f"{user} needs the {name!r} package, which is not installed: {install}."
        ) from exc


def to_onnx(packed, *, dtype=np.float64, task: str | None = None, opset: int | None = None):
    """The ONNX graph of an exported network of either family.

    Parameters
    ----------
    packed : PackedBinaryNetwork or PackedResidualNetwork
        The network, input scaling, input code and linear term included.
    dtype : {numpy.float64, numpy.float32}, default=numpy.float64
        The input's type (``double`` or ``float``); the graph casts it to float32 as
        ``predict`` does.  A regressor's predictions are of this type too.
    task : {"classification", "regression"}, default=None
        ``None``: the network's own (``packed.task``, recorded at export); naming the other
        one is an error.
    opset : int, default=None
        The opset to write, from :data:`MIN_OPSET` (the default) to the installed onnx's
        latest.

    Returns
    -------
    onnx.ModelProto
        Input ``X`` of shape ``(n_samples, n_features_in_)``.  A classification: outputs
        ``label`` (int64, or strings for string labels) and ``probabilities`` (float32).  A
        regression: one output, ``variable``, the predictions of shape
        ``(n_samples, n_outputs)`` in ``dtype``.

    Raises
    ------
    TypeError
        ``packed`` is not an exported network.
    ValueError
        An invalid ``dtype``, ``opset`` or ``task``, or non-finite parameters.
    ImportError
        onnx is not installed.

    Examples
    --------
    >>> import numpy as np
    >>> import onnxruntime as ort
    >>> from sklearn_bnn import deploy
    >>> from sklearn_bnn.deploy.onnx_graph import to_onnx
    >>> first = deploy.PackedLayer((2, 3), np.packbits([1, 0, 1, 0, 0, 1]), np.zeros(2, np.float32))
    >>> net = deploy.PackedBinaryNetwork(
    ...     [first], np.ones((1, 2), np.float32), np.zeros(1, np.float32), task="regression")
    >>> model = to_onnx(net, dtype=np.float32)  # a regression: one output, float32 here
    >>> session = ort.InferenceSession(
    ...     model.SerializeToString(), providers=["CPUExecutionProvider"])
    >>> X = np.array([[1.0, 0.0, -1.0], [-1.0, 2.0, 0.5]], np.float32)
    >>> pred = session.run(None, {"X": X})[0]
    >>> pred.shape, bool(np.array_equal(pred[:, 0], net.predict(X)))
    ((2, 1), True)
    """
    if not isinstance(packed, _PACKED):
        raise TypeError(
            f"to_onnx writes a PackedBinaryNetwork or a PackedResidualNetwork, got "
            f"{type(packed).__name__}; a fitted estimator's export_binary() gives one."
        )
    if np.dtype(dtype) not in [np.dtype(d) for d in DTYPES]:
        raise ValueError(f"dtype={dtype!r} is not valid; use numpy.float64 or numpy.float32.")
    return _model(packed, np.dtype(dtype).type, packed.resolve_task(task), opset, "opset")


def _model(packed, in_dtype, task: str, opset, opset_name: str):
    """The checked ``ModelProto`` of ``packed`` (``opset_name`` names the opset in errors)."""
    onnx = _require("onnx")
    packed._check_values()  # parameters set after construction are checked too
    requested = opset
    opset = MIN_OPSET if opset is None else int(opset)
    if not MIN_OPSET <= opset <= onnx.defs.onnx_opset_version():
        raise ValueError(
            f"{opset_name}={requested} is not available: valid opsets are {MIN_OPSET} "
            f"to {onnx.defs.onnx_opset_version()} (this onnx's latest)."
        )
    g = _Graph()
    logits = _write_packed(g, "X", packed)
    make = onnx.helper.make_tensor_value_info
    n_outputs = len(packed.head_bias)
    if task == "regression":  # skl2onnx's regressors: the input's float type
        g.node("Cast", [logits], "variable", out="variable", to=_tensor_type(g, in_dtype))
        outputs = [make("variable", _tensor_type(g, in_dtype), [None, n_outputs])]
    else:
        _write_outputs(g, logits, packed.classes_, "label", "probabilities", np.float32)
        label_type = onnx.TensorProto.INT64
        if _label_array(packed.classes_).dtype.kind != "i":
            label_type = onnx.TensorProto.STRING
        outputs = [
            make("label", label_type, [None]),
            make("probabilities", onnx.TensorProto.FLOAT, [None, n_outputs]),
        ]
    graph = onnx.helper.make_graph(
        g.nodes,
        "sklearn_bnn_packed_network",
        [make("X", _tensor_type(g, in_dtype), [None, packed.n_features_in_])],
        outputs,
        g.initializers,
    )
    opsets = [onnx.helper.make_opsetid("", opset)]
    model = onnx.helper.make_model(
        graph,
        opset_imports=opsets,
        ir_version=onnx.helper.find_min_ir_version_for(opsets),
        producer_name="sklearn-bnn",
    )
    onnx.checker.check_model(model)
    return model


# ----------------------------------------------------------------------------- helpers
def _first_layer_weight(packed: PackedBinaryNetwork) -> np.ndarray:
    """The first layer's weight matrix, shape (n_out, n_in), in its own dtype.

    The one place the graph reads it, from
    :meth:`~sklearn_bnn.deploy.packed.PackedBinaryNetwork.first_layer_matrix`: the
    :math:`\\pm 1` signs (stored as bits), or the real weights of ``first_layer="real"``
    (stored as float32, widened to float64 in the graph: the same values numpy multiplies).
    """
    return packed.first_layer_matrix()


def _label_array(classes: np.ndarray) -> np.ndarray:
    """Class labels as the label output carries them: int64 or str (skl2onnx's convention)."""
    classes = np.asarray(classes)
    if classes.dtype.kind in "biu":
        return classes.astype(np.int64)
    if classes.dtype.kind == "f" and np.array_equal(classes, np.round(classes)):
        return classes.astype(np.int64)
    if classes.dtype.kind == "U" or (
        classes.dtype.kind == "O" and all(isinstance(c, str) for c in classes)
    ):
        return classes.astype(str)
    raise ValueError(
        f"class labels {classes[:5].tolist()} (dtype {classes.dtype}) cannot be an ONNX "
        "label output; valid labels are integers, booleans, integral floats or strings."
    )


# ----------------------------------------------------------------------------- graph writers
class _Graph:
    """Collects nodes and initializers of a standalone graph (``onnx.helper``)."""

    def __init__(self) -> None:
        self.onnx = _require("onnx")
        self.nodes: list = []
        self.initializers: list = []
        self._counts: dict[str, int] = {}
        self._shared: dict = {}

    def name(self, hint: str) -> str:
        count = self._counts.get(hint, 0)
        self._counts[hint] = count + 1
        return hint if count == 0 else f"{hint}_{count}"

    def const(self, hint: str, array: np.ndarray) -> str:
        name = self.name(hint)
        array = np.asarray(array)
        if array.dtype.kind == "U":
            array = array.astype(object)
        self.initializers.append(self.onnx.numpy_helper.from_array(array, name))
        return name

    def shared(self, hint: str, array: np.ndarray) -> str:
        """A constant written once per graph (same hint and dtype), then reused."""
        key = (hint, np.asarray(array).dtype.str)
        if key not in self._shared:
            self._shared[key] = self.const(hint, array)
        return self._shared[key]

    def node(self, op: str, inputs: list[str], hint: str, out: str | None = None, **attrs) -> str:
        out = out or self.name(hint)
        self.node_outputs(op, inputs, [out], **attrs)
        return out

    def node_outputs(self, op: str, inputs: list[str], outputs: list[str], **attrs) -> None:
        """A node with several outputs, named by the caller (with :meth:`name`)."""
        self.nodes.append(
            self.onnx.helper.make_node(op, inputs, outputs, name=self.name(op), **attrs)
        )


# Bits of every byte, most significant first (np.packbits' order), as +1 / -1.
_BYTE_TABLE = np.where(np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1), 1, -1)


def _tensor_type(g: _Graph, dtype) -> int:
    return g.onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))


def _widened(g: _Graph, hint: str, array: np.ndarray, dtype) -> str:
    """``array`` stored in its own dtype, cast to ``dtype`` in the graph (exact widening)."""
    return g.node(
        "Cast", [g.const(hint, array)], f"{hint}_{np.dtype(dtype).name}", to=_tensor_type(g, dtype)
    )


def _matrix(g: _Graph, hint: str, weight_t: np.ndarray, dtype) -> str:
    """A (n_in, n_out) weight matrix of ``dtype``; stored as bits when it is all +-1.

    The bits expand by a constant subgraph (onnxruntime folds it when the session is
    created): each byte indexes a 256 x 8 table of +-1 (int8), then reshape and cast.
    Other matrices are stored in their own float dtype and widened (exactly) to ``dtype``.
    """
    if not np.isin(weight_t, (-1.0, 1.0)).all():
        if np.dtype(weight_t.dtype).itemsize < np.dtype(dtype).itemsize:
            return _widened(g, hint, np.ascontiguousarray(weight_t), dtype)
        return g.const(hint, weight_t.astype(dtype))
    n_in, n_out = weight_t.shape
    bits = g.const(f"{hint}_bits", np.packbits(weight_t.ravel() > 0))
    table = g.shared("pm1_byte_table", _BYTE_TABLE.astype(np.int8))
    index = g.node("Cast", [bits], f"{hint}_index", to=_tensor_type(g, np.int64))
    flat = g.node("Gather", [table, index], f"{hint}_bytes", axis=0)
    flat = g.node("Reshape", [flat, g.shared("flat", np.array([-1]))], f"{hint}_flat")
    if n_in * n_out % 8:  # drop np.packbits' zero padding
        start, end = g.shared("zero", np.array([0])), g.const("size", np.array([n_in * n_out]))
        flat = g.node("Slice", [flat, start, end], f"{hint}_sliced")
    flat = g.node("Cast", [flat], f"{hint}_flat_{np.dtype(dtype).name}", to=_tensor_type(g, dtype))
    return g.node("Reshape", [flat, g.const("shape", np.array([n_in, n_out]))], hint)


def _write_packed(g: _Graph, x: str, packed) -> str:
    """The exported network of either family from input ``x``; returns the float64 logits."""
    if isinstance(packed, PackedResidualNetwork):
        return _write_residual(g, x, packed)
    return _write_binary(g, x, packed)


def _first_dot(g: _Graph, x: str, packed, matrix: np.ndarray, dtype) -> tuple[str, str]:
    """What the linear term reads (``x`` cast to ``dtype``, or with ``linear_input="code"``
    its code) and the first layer's dot products with ``matrix`` (n_out, n_in): the (coded)
    input widened to float64, a float64 ``MatMul``, rounded once to ``dtype``.  Returns
    ``(linear_x, dot)``."""
    f64 = np.float64
    x = x_network = g.node("Cast", [x], "x_network", to=_tensor_type(g, dtype))
    if packed.code is not None:
        x = _write_code(g, x, packed.code, dtype)
    linear_x = x if packed.linear_input == "code" else x_network
    x = g.node("Cast", [x], "x_float64", to=_tensor_type(g, f64))
    dot = g.node("MatMul", [x, _matrix(g, "layer0_weight", matrix.T, f64)], "layer0_dot")
    return linear_x, g.node("Cast", [dot], "layer0_dot_rounded", to=_tensor_type(g, dtype))


def _write_readout(g: _Graph, on: str, packed, linear_x: str) -> str:
    """The head on the last units (``on``, boolean: +1 where true) and the linear term of
    ``linear_x`` (what it reads, from :func:`_first_dot`); returns the float64 logits."""
    f64 = np.float64
    plus, minus = g.const("plus_one_f64", f64(1)), g.const("minus_one_f64", f64(-1))
    units = g.node("Where", [on, plus, minus], "head_input")
    logits = _write_head(g, units, packed.head_weight, packed.head_bias)
    return _add_linear(g, linear_x, logits, _linear_of(packed))


def _write_binary(g: _Graph, x: str, packed: PackedBinaryNetwork) -> str:
    """The 1-bit network from input ``x``; returns the float64 logits."""
    f64, dtype = np.float64, packed.layers[0].threshold.dtype  # the network's float dtype
    if packed.input_scale is not None:
        x = g.node("Cast", [x], "x_float64", to=_tensor_type(g, f64))
        x = g.node("Sub", [x, g.const("input_offset", packed.input_offset)], "x_centred")
        x = g.node("Div", [x, g.const("input_scale", packed.input_scale)], "x_scaled")
    # first layer: float64 accumulation, rounded once to the network's dtype
    x_network, dot = _first_dot(g, x, packed, _first_layer_weight(packed), dtype)
    threshold = g.const("layer0_threshold", packed.layers[0].threshold)
    on = g.node("GreaterOrEqual", [dot, threshold], "layer0_on")
    if len(packed.layers) > 1:
        plus, minus = g.const("plus_one", np.float32(1)), g.const("minus_one", np.float32(-1))
    for k, layer in enumerate(packed.layers[1:], start=1):
        n_in = layer.shape[1]
        units = g.node("Where", [on, plus, minus], f"layer{k}_input")
        weight = _matrix(g, f"layer{k}_weight", np.where(layer.signs().T, 1.0, -1.0), np.float32)
        dot = g.node("MatMul", [units, weight], f"layer{k}_dot")
        # popcount(s XOR x) <= P  <=>  d = N - 2 popcount >= N - 2P (integers, exact in float32)
        min_dot = (n_in - 2 * layer.threshold.astype(np.int64)).astype(np.float32)
        on = g.node("GreaterOrEqual", [dot, g.const(f"layer{k}_min_dot", min_dot)], f"layer{k}_on")
    return _write_readout(g, on, packed, x_network)


def _write_residual(g: _Graph, x: str, packed: PackedResidualNetwork) -> str:
    """The residual network (:class:`~sklearn_bnn.deploy.packed_residual.PackedResidualNetwork`)
    from input ``x``; returns the float64 logits.

    The stream in float32, one ``Mul`` or ``Add`` per operation of its numpy forward pass:
    ``h = dot * scale + bias``, then per block the units ``Where(h >= 0, 1, -1)``, their
    float32 ``MatMul`` with the block's :math:`\\pm 1` signs (stored as bits; integer sums,
    exact below :math:`2^{24}`), ``h + d * coef``, ``+ offset``.
    """
    f32 = np.float32
    x_network, dot = _first_dot(g, x, packed, packed.first_weight, f32)
    h = g.node("Mul", [dot, g.const("first_scale", packed.first_scale)], "stream0_scaled")
    h = g.node("Add", [h, g.const("first_bias", packed.first_bias)], "stream0")
    zero = g.const("zero_f32", f32(0))
    if len(packed.signs):
        plus, minus = g.const("plus_one", f32(1)), g.const("minus_one", f32(-1))
    for b, signs in enumerate(packed.signs, start=1):
        on = g.node("GreaterOrEqual", [h, zero], f"block{b}_on")
        units = g.node("Where", [on, plus, minus], f"block{b}_input")
        weight = _matrix(g, f"block{b}_weight", np.where(signs.T, 1.0, -1.0), f32)
        dot = g.node("MatMul", [units, weight], f"block{b}_dot")
        step = g.node("Mul", [dot, g.const(f"block{b}_coef", packed.coef[b - 1])], f"block{b}_step")
        h = g.node("Add", [h, step], f"stream{b}_sum")
        h = g.node("Add", [h, g.const(f"block{b}_offset", packed.offset[b - 1])], f"stream{b}")
    on = g.node("GreaterOrEqual", [h, zero], "stream_on")
    return _write_readout(g, on, packed, x_network)


def _write_head(g: _Graph, units: str, weight: np.ndarray, bias: np.ndarray) -> str:
    """Float64 logits ``units @ weight.T + bias`` (``units`` float64, parameters widened)."""
    head_t = _float64(g, "head_weight", np.ascontiguousarray(np.asarray(weight).T))
    logits = g.node("MatMul", [units, head_t], "head_dot")
    return g.node("Add", [logits, _float64(g, "head_bias", np.asarray(bias))], "head_logits")


def _float64(g: _Graph, hint: str, array: np.ndarray) -> str:
    """``array`` as a float64 tensor, stored as float32 when that holds it exactly.

    A classifier's head is float32; a regressor's, with the target scaling folded in, is
    float64 (its weights are float32 values times powers of two, still float32-exact).
    """
    narrow = array.astype(np.float32)
    if np.array_equal(narrow.astype(array.dtype), array):
        return _widened(g, hint, narrow, np.float64)
    return g.const(hint, array.astype(np.float64))


def _linear_of(packed: LinearTerm) -> tuple[np.ndarray, np.ndarray] | None:
    """A packed network's linear term as float64 ``(coef, intercept)``, or None without one."""
    if packed.linear_coef is None:
        return None
    coef, intercept = packed.linear_coef, packed.linear_intercept
    return np.asarray(coef, np.float64), np.asarray(intercept, np.float64)


def _add_linear(g: _Graph, x: str, logits: str, linear) -> str:
    """``logits + lin``, the linear term of ``x`` (float32: the network's input or its
    code) added last.

    ``lin = intercept``, then ``lin += x[:, j] * coef[j]`` for ``j = 0, 1, ...`` in float64,
    as :func:`~sklearn_bnn.deploy.packed.linear_term`: one ``Mul`` gives every rounded product,
    ``Split`` their columns, and a chain of ``Add`` sums them in the feature order (a
    ``MatMul`` or ``ReduceSum`` would sum in an order of its own).
    """
    if linear is None:
        return logits
    coef, intercept = linear
    x = g.node("Cast", [x], "linear_x", to=_tensor_type(g, np.float64))
    x = g.node("Unsqueeze", [x, g.const("linear_axes", np.array([2]))], "linear_x_3d")
    products = g.node("Mul", [x, g.const("linear_coef", coef)], "linear_products")
    split = g.const("linear_split", np.ones(len(coef), np.int64))
    columns = [g.name(f"linear_product{j}") for j in range(len(coef))]
    g.node_outputs("Split", [products, split], columns, axis=1)  # (n, 1, n_outputs) each
    lin = g.const("linear_intercept", intercept)
    for j, column in enumerate(columns):
        lin = g.node("Add", [lin, column], f"linear_sum{j}")
    lin = g.node("Squeeze", [lin, g.const("linear_squeeze", np.array([1]))], "linear")
    return g.node("Add", [logits, lin], "logits")


def _write_code(g: _Graph, x: str, code, dtype) -> str:
    """The input code (:func:`~sklearn_bnn.deploy.packed.thermometer_code`) of ``x`` (``dtype``).

    ``Gather`` the columns ``code.feature``, ``GreaterOrEqual`` with ``code.threshold``
    (compared in the wider of the two float types, as numpy promotes: exact), ``Where``
    :math:`\\pm 1`, and ``Concat`` after ``x`` when the code keeps the raw inputs.
    """
    if len(code.feature) == 0:
        return x
    compare = np.result_type(dtype, code.threshold.dtype)
    columns = g.node(
        "Gather", [x, g.const("code_feature", code.feature.astype(np.int64))], "code_x", axis=1
    )
    if compare != dtype:
        columns = g.node("Cast", [columns], "code_x_wide", to=_tensor_type(g, compare))
    threshold = g.const("code_threshold", code.threshold.astype(compare))
    on = g.node("GreaterOrEqual", [columns, threshold], "code_on")
    plus, minus = (
        g.const("code_plus", np.ones((), dtype)),
        g.const("code_minus", -np.ones((), dtype)),
    )
    bits = g.node("Where", [on, plus, minus], "code_bits")
    if not code.keep_raw:
        return bits
    return g.node("Concat", [x, bits], "x_coded", axis=1)


def _write_outputs(g: _Graph, logits: str, classes, label: str, proba: str, proba_dtype) -> None:
    """Softmax probabilities and the label of the first largest logit."""
    softmax = g.node("Softmax", [logits], "softmax", axis=1)
    g.node("Cast", [softmax], "probabilities", out=proba, to=_tensor_type(g, proba_dtype))
    index = g.node("ArgMax", [logits], "argmax", axis=1, keepdims=0)
    classes = g.const("classes", _label_array(classes))
    g.node("Gather", [classes, index], "label", out=label, axis=0)
