r"""ONNX export: a converter for skl2onnx, so that whole pipelines convert the scikit-learn way.

Importing this module registers converters for
:class:`~sklearn_bnn.BinaryNetClassifier` and :class:`~sklearn_bnn.BinaryNetRegressor`
with `skl2onnx <https://onnx.ai/sklearn-onnx/>`_ (``update_registered_converter``);
:func:`register` does the same explicitly.  After that,
``skl2onnx.to_onnx(pipeline, X[:1])`` converts a :class:`~sklearn.pipeline.Pipeline` of
scikit-learn preprocessing and either estimator.  :func:`to_onnx` here does the
registration and the call in one step, and also converts a bare
:class:`~sklearn_bnn.PackedBinaryNetwork` or
:class:`~sklearn_bnn.deploy.packed_residual.PackedResidualNetwork` (with ``onnx`` alone, no
skl2onnx), as a classifier or a regressor after its own ``task``, recorded at export.
That graph is built by :mod:`sklearn_bnn.deploy.onnx_graph`, with ``onnx`` and numpy alone
(no torch, skorch or scikit-learn: a device can write it from a loaded network); the
converters here write the same nodes into skl2onnx's container.

**What the graph computes** is the 1-bit network of
:meth:`BinaryNetClassifier.export_binary <sklearn_bnn.BinaryNetClassifier.export_binary>`,
operation for operation as :class:`~sklearn_bnn.deploy.packed.PackedBinaryNetwork` with its
``"matmul"`` backend (see :mod:`sklearn_bnn.deploy.packed` for why that is the torch model's
``predict``):

* the input is cast to float32 (the network's dtype);
* the input code of ``encoding`` (:class:`~sklearn_bnn.deploy.packed.InputCode`), when there
  is one: ``Gather`` of the columns ``feature``, ``GreaterOrEqual`` with the float32
  ``threshold`` (exact), ``Where`` :math:`\pm 1`, and ``Concat`` after the input when the
  code keeps it;
* the first layer: the (coded) input cast to float64, its dot products :math:`d = x\,S^\top`
  with :meth:`~sklearn_bnn.deploy.packed.PackedBinaryNetwork.first_layer_matrix` (the
  :math:`\pm 1` signs, or the float32 weights of ``first_layer="real"`` widened to float64)
  a float64 ``MatMul``, cast once to float32 and compared ``GreaterOrEqual`` with the
  folded thresholds :math:`v_i`;
* each later layer: units as :math:`\pm 1` float32 (``Where``), a float32 ``MatMul`` with
  the :math:`\pm 1` weights (integer sums, exact below :math:`2^{24}`) and
  ``GreaterOrEqual`` with :math:`N - 2P_i`;
* the head: :math:`\pm 1` units in float64, ``MatMul`` + ``Add`` with the float32
  parameters widened to float64 (a regressor's, with the target scaling folded in, are
  float64);
* the linear term, when the network has one (``linear=True``): the float32 input of the
  network (after input scaling, before the code; with ``linear_input="code"`` after it)
  widened to float64, ``intercept`` plus
  ``x[:, j] * coef[j]`` for ``j = 0, 1, ...`` (``Mul``, ``Split``, a chain of ``Add``: the
  order of :func:`~sklearn_bnn.deploy.packed.linear_term`), added to the logits last;
* ``architecture="residual"``
  (:class:`~sklearn_bnn.deploy.packed_residual.PackedResidualNetwork`): the first layer's
  float64 ``MatMul`` cast once to float32, then the float32 stream, one ``Mul`` or ``Add``
  per operation of the numpy forward pass in its order (``h = dot * scale + bias``; per
  block the units ``Where`` :math:`\pm 1` of ``h >= 0``, their float32 ``MatMul`` with the
  block's :math:`\pm 1` signs, an exact integer, ``h + d * coef``, then ``+ offset``), and
  the head and linear term above on the units of ``h >= 0``;
* a classifier: ``Softmax``; the label is the ``ArgMax`` of the logits (the first on
  ties, as numpy and torch), looked up in the class labels.  A regressor: the logits are
  the predictions, output ``variable`` cast to the input's float type (skl2onnx's
  regressor convention; ``(n_samples, 1)`` for a single target).

**1-bit storage.**  Every :math:`\pm 1` weight matrix is stored as bits (``uint8``, the
``np.packbits`` of its transpose) and expanded by a constant subgraph (``Gather`` from a
256 x 8 table of :math:`\pm 1`, ``Reshape``, ``Slice``) that onnxruntime folds into a
plain matrix when the session is created; the file holds one bit per weight.  A real first
layer (``first_layer="real"``) is stored as float32 and widened to float64 by a ``Cast``.

**Opset.**  :data:`MIN_OPSET` (13): ``GreaterOrEqual`` needs opset 12, and 13 is the first
opset in which every operator used has its present definition (``Softmax`` over one axis,
``ReduceSum``, ``Unsqueeze`` and ``Squeeze`` with ``axes`` and ``Split`` with ``split`` as
inputs); the converter writes the same nodes for any opset from 13 up to what the
installed ``onnx`` knows.  The probabilities are float32
whatever the input type, because skl2onnx's ``ZipMap`` takes float32 only (within about
1e-7 of the float64 softmax); with ``zipmap="columns"`` they keep the input's type.

Labels follow skl2onnx's classifier convention: ``int64`` for integer, boolean and
integral float labels, strings for string labels; the options ``zipmap`` (``True``,
``False``, ``"columns"``) and ``nocl`` are honoured.

``inference="surrogate"`` also converts, for the noises whose S1 neuron is an erf
(``"sign"``, ``"gaussian"``, ``"logistic"``): the real-valued mean propagation in float32,
the operations of :func:`~sklearn_bnn.nn.surrogates.deterministic` in torch's order, then
the float64 head and linear term of ``predict``, equal to ``predict_proba`` (or a
regressor's ``predict``) up to float32 rounding (not bit for bit); the input code comes
first, and a real first layer has the deterministic field :math:`W\bar x/\sqrt N + b`
(variance 0).  ``inference="mc"`` does
not (:data:`NOT_CONVERTIBLE` says why).  The ``onnx``, ``skl2onnx`` and ``onnxruntime``
packages are the ``[onnx]`` extra: ``pip install "sklearn-bnn[onnx]"``.  The user guide
page :ref:`onnx` has the details and measurements.

Examples
--------
>>> import numpy as np
>>> from sklearn.datasets import load_iris
>>> from sklearn.pipeline import make_pipeline
>>> from sklearn.preprocessing import StandardScaler
>>> from sklearn_bnn import BinaryNetClassifier
>>> from sklearn_bnn.onnx import OnnxPredictor, to_onnx
>>> X, y = load_iris(return_X_y=True)
>>> pipe = make_pipeline(
...     StandardScaler(), BinaryNetClassifier((16,), max_iter=10, random_state=0)
... ).fit(X, y)
>>> model = to_onnx(pipe, X[:1], options={"zipmap": False})
>>> [o.name for o in model.graph.output]
['label', 'probabilities']
>>> ort_model = OnnxPredictor(model)
>>> bool(np.array_equal(ort_model.predict(X), pipe.predict(X)))
True
>>> bool(np.abs(ort_model.predict_proba(X) - pipe.predict_proba(X)).max() < 1e-5)
True
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np

from .deploy import onnx_graph as _onnx_graph
from .deploy.onnx_graph import (
    _PACKED,
    _add_linear,
    _Graph,
    _label_array,
    _tensor_type,
    _write_code,
    _write_head,
    _write_outputs,
    _write_packed,
)
from .deploy.packed import TASKS, LinearTerm

__all__ = [
    "ALIAS",
    "MIN_OPSET",
    "NOT_CONVERTIBLE",
    "OnnxPredictor",
    "REGRESSOR_ALIAS",
    "TASKS",
    "register",
    "to_onnx",
]

#: The lowest opset the converter writes (``GreaterOrEqual`` needs 12; from 13 every
#: operator used has its present definition).
MIN_OPSET = _onnx_graph.MIN_OPSET

#: The name of the classifier's converter in skl2onnx's registry.
ALIAS = "SklearnBnnBinaryNetClassifier"
#: The name of the regressor's converter in skl2onnx's registry.
REGRESSOR_ALIAS = "SklearnBnnBinaryNetRegressor"

#: ``inference`` values that do not convert, with the reason given in the error.
NOT_CONVERTIBLE = {
    "mc": (
        "it averages the softmax over n_mc_samples random draws of the weights and the "
        "neuron noise from torch's random stream, which an ONNX graph cannot reproduce, "
        "so no graph would give the same predictions"
    ),
}

_INSTALL_HINT = 'pip install "sklearn-bnn[onnx]" (or: pip install onnx skl2onnx onnxruntime)'


#: Import an optional dependency, or fail with the [onnx] extra's install command
_require = partial(
    _onnx_graph._require, user=__name__, install=f"install the [onnx] extra: {_INSTALL_HINT}"
)


def _check_inference(model) -> None:
    inference = getattr(model, "inference", "binary")
    if inference in NOT_CONVERTIBLE:
        raise ValueError(
            f"inference={inference!r} does not convert to ONNX: "
            f"{NOT_CONVERTIBLE[inference]}. inference='binary' converts (the 1-bit network "
            "of export_binary(), exactly), as does inference='surrogate' (the S1 network); "
            "set it on the fitted model with set_params(inference='binary'), no refit needed."
        )


def _code(model):
    """The fitted estimator's input code (``encoding``), or None."""
    encoder = getattr(model, "encoder_", None)
    return None if encoder is None else encoder.input_code()


def _network_writer(model) -> Callable[[object, str], str]:
    """``writer(g, x)`` adding the nodes of ``model``'s ``inference`` network; returns logits."""
    _check_inference(model)
    if isinstance(model, _PACKED):
        return partial(_write_packed, packed=model)
    return partial(_WRITERS[model.inference], model=model)


# ----------------------------------------------------------------------------- graph writers
# The packed networks' graphs are written by sklearn_bnn.deploy.onnx_graph (onnx and numpy
# alone); the converters below write the same nodes into skl2onnx's container.
class _Skl2OnnxGraph(_Graph):
    """The interface of :mod:`sklearn_bnn.deploy.onnx_graph`'s graph, writing into
    skl2onnx's scope and container."""

    def __init__(self, scope, container) -> None:
        self.onnx = _require("onnx")
        self.scope, self.container = scope, container
        self._shared = {}

    def name(self, hint: str) -> str:
        return self.scope.get_unique_variable_name(hint)

    def const(self, hint: str, array: np.ndarray) -> str:
        name = self.name(hint)
        array = np.asarray(array)
        if array.dtype.kind in "UO":
            content = [s.encode("utf-8") for s in array.ravel()]
            dtype = self.onnx.TensorProto.STRING
        else:  # raw bytes (a plain list would store int8 as varints, 10 bytes for -1)
            content = self.onnx.numpy_helper.from_array(array, name)
            dtype = content.data_type
        self.container.add_initializer(name, dtype, list(array.shape), content)
        return name

    def node(self, op: str, inputs: list[str], hint: str, out: str | None = None, **attrs) -> str:
        out = out or self.name(hint)
        self.node_outputs(op, inputs, [out], **attrs)
        return out

    def node_outputs(self, op: str, inputs: list[str], outputs: list[str], **attrs) -> None:
        name = self.scope.get_unique_operator_name(op)
        self.container.add_node(op, inputs, outputs, name=name, **attrs)


def _write_surrogate(g: _Graph, x: str, model) -> str:
    r"""S1 mean propagation (``inference="surrogate"``) in float32; returns float64 logits.

    The fitted estimator's hidden layers in float32, then its float64 head
    (``model._head``, the one ``predict`` uses: a regressor's has the target scaling
    folded in) and its linear term, if any, as for the 1-bit network.
    """
    module = model.net_.module_
    x_network = g.node("Cast", [x], "x_float32", to=_tensor_type(g, np.float32))
    code = _code(model)
    x_coded = x_network if code is None else _write_code(g, x_network, code, np.float32)
    means = _s1_network(g, x_coded, module)
    units = g.node("Cast", [means], "s1_float64", to=_tensor_type(g, np.float64))
    logits = _write_head(g, units, *model._head(module))
    linear_x = x_coded if model._linear_reads() == "code" else x_network
    return _add_linear(g, linear_x, logits, _linear_of(model))


def _s1_network(g: _Graph, x: str, module) -> str:
    r"""S1 mean propagation in float32 from the float32 (coded) input ``x``: the last units'
    means.

    The operations of :func:`~sklearn_bnn.nn.surrogates.deterministic` in torch's order
    (:class:`~sklearn_bnn.nn.layers.FieldMoments`, then the neuron mean
    :math:`\operatorname{erf}(k\bar h / \sqrt{2(\Sigma + \epsilon + c)})`), so the graph
    agrees with torch to float32 rounding (not bit for bit: the kernels differ).  ``x`` is
    the network's input, after the estimator's input code (float32, exact); a real first layer
    (:class:`~sklearn_bnn.nn.layers.RealLinear`) has the deterministic field
    :math:`W\bar x/\sqrt N + b`, variance :math:`\Sigma = 0`.
    """
    c = getattr(module.noise, "erf_variance", None)
    if c is None:
        raise ValueError(
            f"inference='surrogate' with noise {module.noise.name!r} does not convert: the "
            "graph writes the S1 neuron erf(h / sqrt(2 (Sigma + c))), which only the 'sign', "
            "'gaussian' and 'logistic' noises have. inference='binary' converts."
        )
    mean = x
    sq_sum = None
    if not getattr(module.layers[0], "real", False):
        square = g.node("Mul", [mean, mean], "x_squared")
        axes = g.const("axes", np.array([1]))
        sq_sum = g.node("ReduceSum", [square, axes], "x_sq_sum", keepdims=1)
    slope = float(getattr(module, "slope", 1.0))  # networks pickled before slope existed
    for k, layer in enumerate(module.layers):
        # E[x^2] summed: the input's squares, then 1 per +-1 unit (sq_sum None)
        mean = _s1_layer(g, f"layer{k}", layer, mean, sq_sum if k == 0 else None, slope, c)
    return mean


def _linear_of(model) -> tuple[np.ndarray, np.ndarray] | None:
    """The linear term's float64 ``(coef, intercept)``, or None without one.

    A packed network's ``linear_coef`` and ``linear_intercept``; a fitted estimator's
    ``_linear()``, in the units of its outputs (a regressor's with the target scaling
    folded in, as ``export_binary`` carries it).
    """
    if isinstance(model, LinearTerm):  # a packed network of either family
        return _onnx_graph._linear_of(model)
    if getattr(model, "linear_coef_", None) is None:
        return None
    coef, intercept = model._linear()
    if coef is None:
        return None
    return np.asarray(coef, np.float64), np.asarray(intercept, np.float64)


def _param(g: _Graph, hint: str, tensor) -> str:
    return g.const(hint, tensor.detach().cpu().numpy().astype(np.float32))


def _s1_layer(g: _Graph, hint: str, layer, mean: str, sq_sum: str | None, slope, c) -> str:
    """Neuron means of one layer, as ``FieldMoments.forward`` then ``ErfMean.forward``."""
    from .nn.surrogates import VARIANCE_EPS

    f32 = np.float32
    scale = g.const(f"{hint}_s", f32(layer.scale))
    weight = layer.weight.detach()
    hbar = g.node("MatMul", [mean, _param(g, f"{hint}_mean_t", weight.t())], f"{hint}_dot")
    hbar = g.node("Mul", [hbar, scale], f"{hint}_scaled")
    hbar = g.node("Add", [hbar, _param(g, f"{hint}_bias", layer.bias)], f"{hint}_hbar")
    if getattr(layer, "real", False):  # RealLinear.moments: the field is deterministic
        var = g.shared("zero_f32", f32(0))
    else:
        scale2 = g.const(f"{hint}_s2", f32(layer.scale**2))
        q = g.node("Mul", [mean, mean], f"{hint}_q")
        square_t = _param(g, f"{hint}_sq_t", (weight * weight).t())
        var = g.node("Mul", [g.node("MatMul", [q, square_t], f"{hint}_qm2"), scale2], f"{hint}_v")
        # torch: -v + T, with T = s^2 sum_j E[x_j^2] (first layer) or 1
        total = g.shared("one", f32(1)) if sq_sum is None else g.node("Mul", [sq_sum, scale2], "T")
        var = g.node("Sub", [total, var], f"{hint}_var")
        var = g.node("Max", [var, g.shared("zero_f32", f32(0))], f"{hint}_var_clamped")
    if slope != 1.0:
        hbar = g.node("Mul", [hbar, g.shared("slope", f32(slope))], f"{hint}_hbar_slope")
    t = g.node("Add", [var, g.shared("eps", f32(VARIANCE_EPS))], f"{hint}_t")
    if c:
        t = g.node("Add", [t, g.shared("c", f32(c))], f"{hint}_t_noise")
    t = g.node("Sqrt", [g.node("Mul", [t, g.shared("two", f32(2))], f"{hint}_2t")], f"{hint}_sd")
    return g.node("Erf", [g.node("Div", [hbar, t], f"{hint}_u")], f"{hint}_mean")


#: How each convertible ``inference`` network is written: ``writer(g, x, model)``.
_WRITERS: dict[str, Callable] = {
    "binary": lambda g, x, model: _write_packed(g, x, model.export_binary()),
    "surrogate": _write_surrogate,
}


# ----------------------------------------------------------------------------- skl2onnx
def _shape_calculator(operator) -> None:
    """Output types: label (int64 or string), shape [N], and probabilities, [N, n_classes].

    The probabilities are float32: skl2onnx's ``ZipMap`` takes float32 only.  With
    ``zipmap="columns"`` they keep the type skl2onnx's parser declared (the input's),
    because its per-class outputs are declared with that type and never updated.
    """
    data_types = _require("skl2onnx.common.data_types")
    model = operator.raw_operator
    _check_inference(model)
    if len(operator.inputs) != 1 or len(operator.outputs) != 2:
        raise RuntimeError(
            f"{ALIAS} expects 1 input and 2 outputs (label, probabilities), got "
            f"{len(operator.inputs)} and {len(operator.outputs)}."
        )
    n_samples = _n_samples(operator)
    classes = _label_array(_classes(operator.scope_inst, model))
    label_type = (
        data_types.Int64TensorType if classes.dtype.kind == "i" else (data_types.StringTensorType)
    )
    operator.outputs[0].type = label_type(shape=[n_samples])
    proba_type = data_types.FloatTensorType
    zipmap = operator.scope_inst.get_options(model, {"zipmap": True})["zipmap"]
    if zipmap == "columns" and isinstance(operator.outputs[1].type, data_types.DoubleTensorType):
        proba_type = data_types.DoubleTensorType
    operator.outputs[1].type = proba_type(shape=[n_samples, len(classes)])


def _n_samples(operator):
    """The input's first dimension; its width checked against ``n_features_in_``."""
    model = operator.raw_operator
    n_samples, *rest = operator.inputs[0].type.shape or [None]
    n_features = getattr(model, "n_features_in_", None)
    if rest and isinstance(rest[0], int) and n_features is not None and rest[0] != n_features:
        raise ValueError(
            f"the ONNX input of the {type(model).__name__} has {rest[0]} columns, but the "
            f"model was fitted on {n_features} features."
        )
    return n_samples


def _regressor_shape_calculator(operator) -> None:
    """One output, the predictions: ``[N, n_outputs_]`` of the input's float type.

    skl2onnx's regressor convention (``LinearRegression``, ``MLPRegressor``): float64 for
    a ``double`` input, float32 otherwise, and ``[N, 1]`` for a single target.
    """
    data_types = _require("skl2onnx.common.data_types")
    model = operator.raw_operator
    _check_inference(model)
    if len(operator.inputs) != 1 or len(operator.outputs) != 1:
        raise RuntimeError(
            f"{REGRESSOR_ALIAS} expects 1 input and 1 output (the predictions), got "
            f"{len(operator.inputs)} and {len(operator.outputs)}."
        )
    n_samples = _n_samples(operator)
    kind = data_types.FloatTensorType
    if isinstance(operator.inputs[0].type, data_types.DoubleTensorType):
        kind = data_types.DoubleTensorType
    operator.outputs[0].type = kind(shape=[n_samples, model.n_outputs_])


def _regressor_converter(scope, operator, container) -> None:
    """The regressor's network; its float64 predictions cast to the output's type."""
    model = operator.raw_operator
    _check_opset(container, model)
    g = _Skl2OnnxGraph(scope, container)
    predictions = _network_writer(model)(g, operator.inputs[0].full_name)
    out_type = _tensor_type(g, _numpy_type(operator.outputs[0].type))
    g.node("Cast", [predictions], "variable", out=operator.outputs[0].full_name, to=out_type)


def _numpy_type(variable_type) -> type:
    data_types = _require("skl2onnx.common.data_types")
    return np.float64 if isinstance(variable_type, data_types.DoubleTensorType) else np.float32


def _classes(scope, model) -> np.ndarray:
    """``classes_``, or ``0 .. n_classes - 1`` with skl2onnx's ``nocl=True`` option."""
    if scope.get_options(model, {"nocl": False})["nocl"]:
        return np.arange(len(model.classes_))
    return model.classes_


def _check_opset(container, model) -> None:
    opset = container.target_opset
    if opset is not None and opset < MIN_OPSET:
        raise ValueError(
            f"target_opset={opset} is too low for a {type(model).__name__}: the converter "
            f"needs opset {MIN_OPSET} or higher "
            "(GreaterOrEqual; Softmax, ReduceSum, Split, Squeeze as defined there)."
        )


def _converter(scope, operator, container) -> None:
    """Write the 1-bit network of ``operator.raw_operator`` into skl2onnx's container."""
    model = operator.raw_operator
    _check_opset(container, model)
    g = _Skl2OnnxGraph(scope, container)
    logits = _network_writer(model)(g, operator.inputs[0].full_name)
    label, proba = operator.outputs[0].full_name, operator.outputs[1].full_name
    _write_outputs(
        g, logits, _classes(scope, model), label, proba, _numpy_type(operator.outputs[1].type)
    )


def register() -> None:
    """Register the converters of both estimators with skl2onnx.

    :class:`~sklearn_bnn.BinaryNetClassifier` (alias :data:`ALIAS`; options ``zipmap``:
    ``True``, the default, ``False``, ``"columns"``, and ``nocl``, as for scikit-learn's
    classifiers) and :class:`~sklearn_bnn.BinaryNetRegressor` (alias
    :data:`REGRESSOR_ALIAS`; one output, the predictions).  Done on
    ``import sklearn_bnn.onnx`` when skl2onnx is installed; calling it again is harmless
    (the registrations are overwritten).

    Raises
    ------
    ImportError
        skl2onnx is not installed; the message gives the install command.

    Examples
    --------
    >>> import skl2onnx
    >>> from sklearn_bnn.onnx import ALIAS, REGRESSOR_ALIAS, register
    >>> register()
    >>> {ALIAS, REGRESSOR_ALIAS} <= set(skl2onnx.supported_converters())
    True
    """
    skl2onnx = _require("skl2onnx")
    from .classifier import BinaryNetClassifier
    from .regressor import BinaryNetRegressor

    skl2onnx.update_registered_converter(
        BinaryNetClassifier,
        ALIAS,
        _shape_calculator,
        _converter,
        options={"zipmap": [True, False, "columns"], "nocl": [False, True]},
    )
    skl2onnx.update_registered_converter(
        BinaryNetRegressor, REGRESSOR_ALIAS, _regressor_shape_calculator, _regressor_converter
    )


def to_onnx(model, X=None, *, task: str | None = None, **kwargs):
    """Convert a fitted model to an ONNX ``ModelProto``.

    Parameters
    ----------
    model : estimator, Pipeline, PackedBinaryNetwork or PackedResidualNetwork
        A fitted :class:`~sklearn_bnn.BinaryNetClassifier` or
        :class:`~sklearn_bnn.BinaryNetRegressor` (either ``architecture``;
        ``inference="binary"`` or ``"surrogate"``), a scikit-learn pipeline that ends in
        one, or anything else skl2onnx converts: then this is :func:`skl2onnx.to_onnx`
        after :func:`register`.  A :class:`~sklearn_bnn.PackedBinaryNetwork` or
        :class:`~sklearn_bnn.deploy.packed_residual.PackedResidualNetwork` is written
        directly with ``onnx`` (skl2onnx not needed), input scaling and linear term
        included.
    X : array-like, default=None
        Sample input; its dtype sets the input type (float64: ``double``, whose values the
        graph casts to float32 as ``predict`` does).  Required by skl2onnx (or pass
        ``initial_types``); for a packed network ``None`` means ``double``.
    task : {"classification", "regression"}, default=None
        ``None``: the model's own task.  A packed network records it at export
        (``PackedBinaryNetwork.task``): ``"classification"`` reads its logits as a
        classifier does, ``"regression"`` outputs them as the predictions (the export of
        a :class:`~sklearn_bnn.BinaryNetRegressor`, whose head carries the target
        scaling).  Naming the task a packed network already has is allowed, naming the
        other one is an error, and so is passing ``task`` with an estimator.
    **kwargs
        Passed to :func:`skl2onnx.to_onnx` (``options``, ``target_opset``, ...).  For a
        packed network only ``target_opset`` (default :data:`MIN_OPSET`).

    Returns
    -------
    onnx.ModelProto
        A classifier: outputs ``label`` and ``probabilities`` (float32), or with
        skl2onnx's default ``zipmap=True`` option ``output_label`` and
        ``output_probability``.  A regressor: one output, ``variable``, the predictions
        of shape ``(n_samples, n_outputs)`` (``(n_samples, 1)`` for a single target, as
        skl2onnx's regressors), in the input's float type: float64 for a ``double``
        input, else float32.

    Raises
    ------
    ValueError
        ``inference="mc"``, ``inference="surrogate"`` with a noise without an erf neuron,
        ``target_opset`` below :data:`MIN_OPSET`, an invalid ``task`` or one that
        contradicts the packed network's own.
    ImportError
        onnx or skl2onnx is missing; the message gives the install command.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_iris, make_regression
    >>> from sklearn_bnn import BinaryNetClassifier, BinaryNetRegressor
    >>> from sklearn_bnn.onnx import OnnxPredictor, to_onnx
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = BinaryNetClassifier((8,), max_iter=10, random_state=0).fit(X, y)
    >>> packed = clf.export_binary()
    >>> model = to_onnx(packed)
    >>> bool(np.array_equal(OnnxPredictor(model).predict(X), packed.predict(X)))
    True
    >>> X, y = make_regression(200, 5, noise=1.0, random_state=0)
    >>> reg = BinaryNetRegressor((32,), random_state=0).fit(X, y)
    >>> pred = OnnxPredictor(to_onnx(reg, X[:1])).predict(X)
    >>> pred.shape, bool(np.array_equal(pred[:, 0], reg.predict(X)))
    ((200, 1), True)
    >>> model = to_onnx(reg.export_binary())  # the export knows it is a regression
    >>> bool(np.array_equal(OnnxPredictor(model).predict(X)[:, 0], reg.predict(X)))
    True
    """
    if isinstance(model, _PACKED):
        return _packed_to_onnx(model, X, task=model.resolve_task(task), **kwargs)
    if task is not None:
        raise ValueError(
            f"task={task!r} applies to a packed network only; a {type(model).__name__} "
            "converts as what it is (leave task out)."
        )
    skl2onnx = _require("skl2onnx")
    register()
    return skl2onnx.to_onnx(model, X, **kwargs)


def _packed_to_onnx(packed, X=None, *, task: str, target_opset=None):
    """:func:`sklearn_bnn.deploy.onnx_graph.to_onnx`, the input type read from ``X``."""
    _require("onnx")  # this module's message: the [onnx] extra
    in_dtype = np.float32 if X is not None and np.asarray(X).dtype == np.float32 else np.float64
    return _onnx_graph._model(packed, in_dtype, task, target_opset, "target_opset")


# ----------------------------------------------------------------------------- running it
class OnnxPredictor:
    """Run a converted model with onnxruntime, with the estimator's ``predict`` interface.

    Parameters
    ----------
    model : onnx.ModelProto, bytes or str
        A model from :func:`to_onnx` or :func:`skl2onnx.to_onnx` (or its serialised bytes,
        or a file path): a classifier's, with or without ``ZipMap``, or a regressor's (one
        output, the predictions).
    n_threads : int, default=None
        onnxruntime's intra-op threads (``None``: its default, all cores).

    Attributes
    ----------
    session : onnxruntime.InferenceSession

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_iris
    >>> from sklearn_bnn import BinaryNetClassifier
    >>> from sklearn_bnn.onnx import OnnxPredictor, to_onnx
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = BinaryNetClassifier((8,), max_iter=10, random_state=0).fit(X, y)
    >>> ort_clf = OnnxPredictor(to_onnx(clf, X[:1]), n_threads=1)  # zipmap=True: dicts
    >>> label, proba = ort_clf.run(X[:2])
    >>> label.tolist() == clf.predict(X[:2]).tolist(), proba.shape
    (True, (2, 3))
    """

    def __init__(self, model, *, n_threads: int | None = None) -> None:
        ort = _require("onnxruntime")
        options = ort.SessionOptions()
        if n_threads is not None:
            options.intra_op_num_threads = int(n_threads)
            options.inter_op_num_threads = 1
        if hasattr(model, "SerializeToString"):
            model = model.SerializeToString()
        self.session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise ValueError(f"expected a model with one input, got {len(inputs)}")
        self._input = inputs[0].name
        self._dtype = np.float64 if inputs[0].type == "tensor(double)" else np.float32
        self._regression = len(self.session.get_outputs()) == 1

    def _run(self, X) -> list:
        return self.session.run(None, {self._input: np.asarray(X, dtype=self._dtype)})

    def run(self, X) -> tuple[np.ndarray, np.ndarray]:
        """Labels and probabilities, shape (n_samples, n_classes), whatever ``zipmap`` was."""
        if self._regression:
            raise ValueError(
                "this model has one output, a regressor's predictions: use predict(X); "
                "run(X) and predict_proba(X) read a classifier's labels and probabilities."
            )
        label, *proba = self._run(X)
        if len(proba) > 1:  # zipmap="columns": one output per class
            return label, np.column_stack(proba)
        if isinstance(proba[0], list):  # ZipMap: one dict per sample, in the classes' order
            return label, np.array([list(row.values()) for row in proba[0]], dtype=np.float32)
        return label, proba[0]

    def predict(self, X) -> np.ndarray:
        """Labels, shape (n_samples,); a regressor's predictions, (n_samples, n_outputs)."""
        if self._regression:
            return self._run(X)[0]
        return self.run(X)[0]

    def predict_proba(self, X) -> np.ndarray:
        """Probabilities, float32, shape (n_samples, n_classes)."""
        return self.run(X)[1]


try:  # register on import when skl2onnx is there; otherwise the functions above say how
    register()
except ImportError:
    pass
