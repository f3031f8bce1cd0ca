r"""C99 export of a :class:`~sklearn_bnn.deploy.packed.PackedBinaryNetwork` or a
:class:`~sklearn_bnn.deploy.packed_residual.PackedResidualNetwork`.

:func:`generate` writes the network as a dependency-free pair of C files, ``name.h`` and
``name.c``, in the spirit of emlearn: every parameter a ``static const`` array (flash on a
microcontroller), no dynamic allocation, no library beyond ``<stdint.h>`` and ``<math.h>``
(``exp`` in ``predict_proba`` only), and a footprint stated in the header comment.
:meth:`PackedBinaryNetwork.to_c <sklearn_bnn.deploy.packed.PackedBinaryNetwork.to_c>` and
:meth:`PackedResidualNetwork.to_c
<sklearn_bnn.deploy.packed_residual.PackedResidualNetwork.to_c>` write the files.

**What the C computes**, with the semantics of :mod:`sklearn_bnn.deploy.packed`:

* optional input scaling, ``(float)(((double)x[j] - offset[j]) / scale[j])``;
* an optional input code (:class:`~sklearn_bnn.deploy.packed.InputCode`, the thermometer
  code of ``encoding``) into a stack buffer: the (scaled) inputs first when it keeps them,
  then one :math:`\pm 1` per bit, ``x[feature[k]] >= threshold[k]`` compared in the
  floating-point type of the arrays (exact, as numpy compares);
* the first layer: the dot product of the (scaled, coded) input with each row of
  :meth:`~sklearn_bnn.deploy.packed.PackedBinaryNetwork.first_layer_matrix`, accumulated in
  ``double`` (adding or subtracting each input when the row is :math:`\pm 1`, stored as
  bits; otherwise, for ``first_layer="real"``, the product of the float weight and the
  float input, exact in ``double``), rounded once to the network's float type and compared
  ``>=`` the threshold;
* each later layer: the unit is :math:`+1` iff
  :math:`\operatorname{popcount}(s_i \oplus x) \le P_i`, over packed words (bit :math:`j`
  of word :math:`k` is unit :math:`kW + j`, padding bits zero);
* the head: logits accumulated in ``double`` from the float parameters, bias added last;
* the optional linear term (``linear_coef``, ``linear_intercept`` of the packed network):
  ``lin = intercept``, then ``lin += x[j] * coef[j]`` for ``j = 0, 1, ...`` in ``double``
  on the (scaled) input before the code, added to the logits last, in the order of
  :func:`~sklearn_bnn.deploy.packed.linear_term`;
* ``task="classification"``: ``predict`` returns the index of the first largest logit (as
  :func:`numpy.argmax`), ``predict_proba`` the softmax computed in ``double``;
  ``task="regression"`` (a :class:`~sklearn_bnn.BinaryNetRegressor`'s export, whose head
  carries the target scaling): ``void name_predict(const float *x, double *y)`` writes the
  ``NAME_N_OUTPUTS`` logits, which are the predictions.  The task is the network's own
  (``task`` of the packed network, recorded at export) unless named, and naming the other
  one is an error.

The summation order is sequential where numpy's BLAS chooses its own; the first layer's sum
is the same whenever it is exact in ``double`` (the condition under which the numpy forward
pass is exact, see :mod:`sklearn_bnn.deploy.packed`).  With real first-layer weights the
products are exact but their ``double`` sum is not, so C and numpy (and torch) can round a
unit's dot product differently only where two ``double`` sums of the same exact products,
added in different orders, fall on different sides of a ``float`` rounding boundary at
the threshold, a float64-rounding coincidence.  The logits differ in the last bits of a
double, so labels are identical except for ties within that rounding; a head whose
``double`` sum is exact (``float`` weights, or a regressor's ``float`` weights times a
power of two) gives the same logits in any order, bit for bit.  Outside the linear term
no floating-point expression in the generated code can be contracted into a fused
multiply-add with a different result (products of two floats are exact in ``double``).
The linear term's products (a ``float`` input times a ``double`` coefficient) are not,
so each is stored in a ``volatile double`` before it is added, which no compiler may fuse
(GCC's ``optimize("fp-contract=off")`` attribute is not always honoured; its GNU modes,
the default, contract across statements on FMA targets).  The residual stream's functions
carry that attribute and, for Clang, the standard ``#pragma STDC FP_CONTRACT OFF``;
another compiler must be told (e.g. ``-ffp-contract=off``), as the header says.

**The residual network** (:mod:`sklearn_bnn.deploy.packed_residual`) keeps the input
code, the head, the linear term, the entry points and the labels above, and adds
``void name_stream(const float *x, float *h)``, the last stream:

* the first layer: the dot product of the (coded) input with the float32 weights in
  ``double``, in input order, rounded once to ``float``; then ``h = dot * scale`` and
  ``h = h + bias``, each rounded to ``float``;
* each block: the units :math:`u = [h \ge 0]` packed into words as above, the integer
  :math:`d_i = N - 2\operatorname{popcount}(s_i \oplus u)`, converted exactly to ``float``,
  then ``h_i = h_i + d_i * k_i`` and ``h_i = h_i + beta_i``, every product and sum rounded
  to ``float`` (explicit casts, and the functions compiled without contraction as for the
  linear term), which are the float32 operations of
  :meth:`PackedResidualNetwork.stream
  <sklearn_bnn.deploy.packed_residual.PackedResidualNetwork.stream>` in its order;
* the head reads :math:`\operatorname{sign}(h)` (``sign(0) = +1``).

The stream is therefore the numpy one bit for bit wherever the first layer's ``double``
sums round to the same ``float`` (the caveat of a real first layer above); the stream is
float32 arithmetic, so a target that evaluates ``float`` in a wider type needs ISO C's
rounding on casts (``FLT_EVAL_METHOD`` 0, as on x86-64 and AArch64, needs nothing).

**Popcount.**  ``__builtin_popcountll`` (or ``__builtin_popcount`` for 32-bit words) when
the compiler is GCC or Clang, which compile it to one instruction where the target has one
(``-mpopcnt``, ``-march=...``); a portable bit-twiddling count otherwise, or when
``BNN_PORTABLE`` is defined.

**Labels.**  With ``task="classification"``, ``<name>_predict`` returns the class *index*;
``<name>_classes[index]`` holds the label (``int32_t``/``int64_t``, ``double`` or
``const char *`` as the labels are integers, floats or strings).  A regression export has
no labels.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .packed import TASKS
from .packed_residual import PackedResidualNetwork

__all__ = ["TASKS", "generate", "write"]

_C_KEYWORDS = frozenset(
    [
        "auto",
        "break",
        "case",
        "char",
        "const",
        "continue",
        "default",
        "do",
        "double",
        "else",
        "enum",
        "extern",
        "float",
        "for",
        "goto",
        "if",
        "inline",
        "int",
        "long",
        "register",
        "restrict",
        "return",
        "short",
        "signed",
        "sizeof",
        "static",
        "struct",
        "switch",
        "typedef",
        "union",
        "unsigned",
        "void",
        "volatile",
        "while",
        "_Bool",
        "_Complex",
        "_Imaginary",
    ]
)
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PER_LINE = 100  # columns of the generated arrays

# ----------------------------------------------------------------------------- literals
def _float_literal(value: float, ctype: str) -> str:
    """Exact C99 literal (hexadecimal float), INFINITY for infinities; NaN is refused."""
    value = float(value)
    if np.isnan(value):
        raise ValueError("a NaN parameter cannot be written to C (it has no literal).")
    if np.isinf(value):
        return "INFINITY" if value > 0 else "-INFINITY"
    text = re.sub(r"\.?0+p", "p", value.hex())  # 0x1.800000p+1 -> 0x1.8p+1
    return text + ("f" if ctype == "float" else "")


def _word_literal(value: int, word_bits: int) -> str:
    digits = word_bits // 4
    return f"UINT{word_bits}_C(0x{value:0{digits}X})"


def _string_literal(text: str) -> str:
    """A C string literal of the UTF-8 bytes (octal escapes: never greedy, no trigraphs)."""
    out = []
    for byte in text.encode("utf-8"):
        char = chr(byte)
        if char in '"\\?' or not 32 <= byte < 127:
            out.append(f"\\{byte:03o}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _array(ctype: str, name: str, dims: tuple[int, ...], items: list[str]) -> str:
    """``static const ctype name[d0 * d1] = {...};`` (row-major, flat) wrapped at _PER_LINE."""
    lines, line = [], "    "
    for item in items:
        if len(line) + len(item) + 2 > _PER_LINE:
            lines.append(line.rstrip())
            line = "    "
        line += item + ", "
    lines.append(line.rstrip())
    return f"static const {ctype} {name}[{int(np.prod(dims))}] = {{\n" + "\n".join(lines) + "\n};\n"


def _pack_words(signs: np.ndarray, word_bits: int) -> np.ndarray:
    """Bool (n, N) -> words (n, ceil(N / W)); bit j of word k is column kW + j."""
    n, n_in = signs.shape
    word_bytes = word_bits // 8
    n_words = -(-n_in // word_bits)
    packed = np.zeros((n, n_words * word_bytes), dtype=np.uint8)
    packed[:, : -(-n_in // 8)] = np.packbits(signs, axis=1, bitorder="little")
    return packed.view(f"<u{word_bytes}").astype(np.uint64)


# ----------------------------------------------------------------------------- the model
@dataclass
class _Arrays:
    """Generated constant arrays and their sizes in bytes."""

    code: list[str]
    nbytes: int = 0

    def add(self, ctype: str, name: str, dims: tuple[int, ...], items: list[str], size: int):
        self.code.append(_array(ctype, name, dims, items))
        self.nbytes += size * int(np.prod(dims))


def _check_arguments(name: str, word_bits: int) -> None:
    if not isinstance(name, str) or not _IDENTIFIER.fullmatch(name) or name in _C_KEYWORDS:
        raise ValueError(
            f"name={name!r} is not a valid C identifier; use letters, digits and '_', "
            "not starting with a digit and not a C keyword (e.g. 'bnn')."
        )
    if word_bits not in (32, 64):
        raise ValueError(f"word_bits={word_bits!r} is not supported; use 32 or 64.")


def _classes_code(classes: np.ndarray, name: str, arrays: _Arrays) -> str:
    """Emit ``<name>_classes``; return its declaration for the header."""
    n = len(classes)
    if classes.dtype.kind in "biu":
        values = classes.astype(np.int64)
        small = values.size == 0 or (values.min() >= -(2**31) and values.max() < 2**31)
        ctype = "int32_t" if small else "int64_t"
        items = [str(int(v)) if small else f"INT64_C({int(v)})" for v in values]
        size = 4 if small else 8
    elif classes.dtype.kind == "f":
        ctype, size = "double", 8
        items = [_float_literal(v, "double") for v in classes]
    elif classes.dtype.kind in "UO" and all(isinstance(c, str) for c in classes):
        ctype, size = "char *const", np.dtype(np.intp).itemsize
        items = [_string_literal(c) for c in classes]
        arrays.nbytes += sum(len(c.encode("utf-8")) + 1 for c in classes)
    else:
        raise ValueError(
            f"class labels of dtype {classes.dtype} cannot be written to C; use integer, "
            "float or string labels."
        )
    arrays.code.append(f"const {ctype} {name}_classes[{n}] = {{{', '.join(items)}}};\n")
    arrays.nbytes += size * n
    return f"extern const {ctype} {name}_classes[{n}];"


def _float_ctype(dtype) -> str:
    return "double" if np.dtype(dtype) == np.float64 else "float"


def _code_arrays(code, name: str, arrays: _Arrays) -> str | None:
    """Emit the input code's ``feature`` and ``threshold``; return the threshold's C type."""
    if code is None or len(code.feature) == 0:
        return None
    small = code.n_features <= 2**15
    index_type, index_bytes = ("int16_t", 2) if small else ("int32_t", 4)
    items = [str(int(v)) for v in code.feature]
    arrays.add(index_type, f"{name}_code_feature", code.feature.shape, items, index_bytes)
    ctype = _float_ctype(code.threshold.dtype)
    items = [_float_literal(v, ctype) for v in code.threshold]
    size = code.threshold.dtype.itemsize
    arrays.add(ctype, f"{name}_code_threshold", code.threshold.shape, items, size)
    return ctype


def _head_arrays(net, name: str, arrays: _Arrays) -> str:
    """Emit ``<name>_head_w`` (row-major ``(n_outputs, n_units)``) and ``<name>_head_b``;
    return their C type (``double`` for a float64 head, as a regressor's)."""
    head_type = _float_ctype(net.head_weight.dtype)
    head_size = 8 if head_type == "double" else 4
    items = [_float_literal(v, head_type) for v in net.head_weight.ravel()]
    arrays.add(head_type, f"{name}_head_w", net.head_weight.shape, items, head_size)
    items = [_float_literal(v, head_type) for v in net.head_bias]
    arrays.add(head_type, f"{name}_head_b", net.head_bias.shape, items, head_size)
    return head_type


def _layers_code(net, name: str, word_bits: int, real: str, arrays: _Arrays) -> dict:
    """Emit the parameter arrays; return facts the functions and header need."""
    word = f"uint{word_bits}_t"
    word_bytes = word_bits // 8
    code_type = _code_arrays(net.code, name, arrays)
    matrix = net.first_layer_matrix()
    sizes = [net.layers[0].shape[1], *net.hidden_layer_sizes]  # the coded input's width
    binary_first = bool(np.isin(matrix, (-1.0, 1.0)).all())
    if binary_first:
        words = _pack_words(matrix > 0, word_bits)
        items = [_word_literal(int(v), word_bits) for v in words.ravel()]
        arrays.add(word, f"{name}_w0", words.shape, items, word_bytes)
    else:
        ctype = _float_ctype(matrix.dtype)
        items = [_float_literal(v, ctype) for v in matrix.ravel()]
        arrays.add(ctype, f"{name}_w0", matrix.shape, items, matrix.dtype.itemsize)
    threshold = net.layers[0].threshold
    items = [_float_literal(v, real) for v in threshold]
    arrays.add(real, f"{name}_t0", threshold.shape, items, threshold.dtype.itemsize)
    wide = any(int(np.abs(layer.threshold).max()) >= 2**15 for layer in net.layers[1:])
    count_type, count_bytes = ("int32_t", 4) if wide else ("int16_t", 2)
    for k, layer in enumerate(net.layers[1:], start=1):
        words = _pack_words(layer.signs(), word_bits)
        items = [_word_literal(int(v), word_bits) for v in words.ravel()]
        arrays.add(word, f"{name}_w{k}", words.shape, items, word_bytes)
        items = [str(int(v)) for v in layer.threshold]
        arrays.add(count_type, f"{name}_p{k}", layer.threshold.shape, items, count_bytes)
    head_type = _head_arrays(net, name, arrays)
    if net.input_scale is not None:
        for part, values in (("offset", net.input_offset), ("scale", net.input_scale)):
            items = [_float_literal(v, "double") for v in values]
            arrays.add("double", f"{name}_in_{part}", values.shape, items, 8)
    return {
        "word": word,
        "binary_first": binary_first,
        "first_type": real if binary_first else _float_ctype(matrix.dtype),
        "code_type": code_type,
        "count_type": count_type,
        "head_type": head_type,
        "sizes": sizes,
        "max_words": max(-(-n // word_bits) for n in sizes[1:]),
    }


# ----------------------------------------------------------------------------- functions
_POPCOUNT = """\
#if !defined(BNN_PORTABLE) && (defined(__GNUC__) || defined(__clang__))
#define {P}_POPCOUNT(v) __builtin_popcount{ll}(v)
#else
static int {n}_popcount({word} v)
{{
    int c = 0;
    while (v) {{
        v &= v - 1; /* clear the lowest set bit */
        ++c;
    }}
    return c;
}}
#define {P}_POPCOUNT(v) {n}_popcount(v)
#endif
"""

# The first layer's dot products, shared by both families: for each group of four units,
# acc[u] is the double sum over the inputs in order; {store} uses acc[0 .. m-1].
_FIRST_DOTS = """\
    for (i = 0; i < {n_out}; i += 4) {{
        double acc[4] = {{0.0, 0.0, 0.0, 0.0}};
        int m = {n_out} - i < 4 ? {n_out} - i : 4;
        for (j = 0; j < {P}_N_INPUTS; ++j) {{
            double v = (double)x[j];
            for (u = 0; u < m; ++u) {{
{term}
            }}
        }}
{store}
    }}
"""

_FIRST = """\
/* First layer: double sum over the inputs in order, rounded once, >= threshold.  Four units
   are summed side by side (independent chains; each unit's order unchanged). */
static void {n}_first(const {real} *x, {word} *out)
{{
    int i, j, u;
    for (i = 0; i < {P}_N_WORDS1; ++i)
        out[i] = 0;
{dots}}}
"""
_FIRST_THRESHOLD = """\
        for (u = 0; u < m; ++u)
            if (({real})acc[u] >= {n}_t0[i + u])
                out[(i + u) / {W}] |= ({word})1 << ((i + u) % {W});"""
# +-1 weights stored as bits: add or subtract the input.
_TERM_BITS = """\
                int on = ({n}_w0[(i + u) * {P}_N_WORDS0 + j / {W}] >> (j % {W})) & 1u;
                acc[u] += on ? v : -v;"""
# real weights (first_layer="real"): the product of two floats is exact in double.
_TERM_REAL = """\
                acc[u] += (double){n}_w0[(i + u) * {P}_N_INPUTS + j] * v;"""



def _first_dots(term: str, store: str, fmt: dict) -> str:
    """The loop of :data:`_FIRST_DOTS` with a family's ``term`` and ``store``."""
    return _FIRST_DOTS.format(term=term.format(**fmt), store=store.format(**fmt), **fmt)


_CODE_HEAD = """\
/* Input code: the inputs{raw_note}, then bit k = +1 iff x[feature[k]] >= threshold[k]. */
static void {n}_code(const {real} *x, {real} *out)
{{
    int k;
"""
_CODE_RAW = """\
    for (k = 0; k < {P}_N_FEATURES; ++k)
        out[k] = x[k];
"""
_CODE_BITS = """\
    for (k = 0; k < {P}_N_BITS; ++k)
        out[{n_raw} + k] =
            x[{n}_code_feature[k]] >= {n}_code_threshold[k] ? ({real})1 : ({real})-1;
"""


def _code_function(net, fmt: dict) -> str:
    """``<name>_code``: copy the raw inputs when kept, then one +-1 per thermometer bit."""
    keep_raw = bool(net.code.keep_raw)
    n_bits = len(net.code.feature)
    code = _CODE_HEAD.format(raw_note=" (kept)" if keep_raw else " (not kept)", **fmt)
    if keep_raw:
        code += _CODE_RAW.format(**fmt)
    if n_bits:
        code += _CODE_BITS.format(n_raw=f"{fmt['P']}_N_FEATURES" if keep_raw else "0", **fmt)
    else:
        code += "    (void)x;\n    (void)out;\n    (void)k;\n"
    return code + "}\n"


_BINARY = """\
/* Layer with +-1 inputs: unit i is +1 iff popcount(w_i XOR in) <= p_i. */
static void {n}_binary(const {word} *w, const {count} *p, int n_out, int n_words,
{pad}const {word} *in, {word} *out)
{{
    int i, k;
    for (i = 0; i < (n_out + {W} - 1) / {W}; ++i)
        out[i] = 0;
    for (i = 0; i < n_out; ++i) {{
        int c = 0;
        for (k = 0; k < n_words; ++k)
            c += {P}_POPCOUNT(w[i * n_words + k] ^ in[k]);
        if (c <= p[i])
            out[i / {W}] |= ({word})1 << (i % {W});
    }}
}}
"""

_LOGITS_HEAD = """\
void {n}_logits(const {real} *x, double *logits)
{{
    {word} a[{P}_MAX_WORDS], b[{P}_MAX_WORDS];
    int c, j;
"""

_HEAD_SUM = """\
    for (c = 0; c < {P}_N_OUTPUTS; ++c)
        logits[c] = 0.0;
    for (j = 0; j < {n_units}; ++j) {{ /* every output sums in unit order, the bias last */
        int on = ({last}[j / {W}] >> (j % {W})) & 1u;
        for (c = 0; c < {P}_N_OUTPUTS; ++c) {{
            double w = (double){n}_head_w[c * {n_units} + j];
            logits[c] += on ? w : -w;
        }}
    }}
    for (c = 0; c < {P}_N_OUTPUTS; ++c)
        logits[c] += (double){n}_head_b[c];
"""

# Functions whose products must be rounded before they are added (the linear term, the
# residual stream), as numpy does; a fused multiply-add would round once and differ.  GCC
# contracts a * b + c across statements in its GNU modes (-std=gnu99, the default) when the
# target has FMA; its ISO modes (-std=c99) do not, and the optimize attribute turns it off
# for the function.  Clang honours the standard pragma.
_NO_FMA = """\
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#define {P}_NO_FMA
#elif defined(__GNUC__)
#define {P}_NO_FMA __attribute__((optimize("fp-contract=off")))
#else
#define {P}_NO_FMA /* compile without contraction, e.g. -ffp-contract=off (see {n}.h) */
#endif
"""

_LINEAR = """\
/* Linear term, added to the logits last: the intercept, then input j = 0, 1, ... in order,
   each product rounded to double before it is added (no fused multiply-add). */
{P}_NO_FMA static void {n}_linear(const {real} *x, double *logits)
{{
    double lin[{P}_N_OUTPUTS];
    int c, j;
    for (c = 0; c < {P}_N_OUTPUTS; ++c)
        lin[c] = {n}_lin_b[c];
    for (j = 0; j < {lin_n}; ++j) {{
        double v = (double)x[j];
        for (c = 0; c < {P}_N_OUTPUTS; ++c) {{
            /* volatile: the product is rounded to double before the sum, whatever the
               compiler's contraction setting (GCC ignores the attribute above in some
               versions and fuses it in its GNU modes) */
            volatile double product = v * {n}_lin_w[j * {P}_N_OUTPUTS + c];
            lin[c] += product;
        }}
    }}
    for (c = 0; c < {P}_N_OUTPUTS; ++c)
        logits[c] += lin[c];
}}
"""

_CLASSIFY = """\
int {n}_predict(const {real} *x)
{{
    double logits[{P}_N_OUTPUTS];
    int c, best = 0;
    {n}_logits(x, logits);
    for (c = 1; c < {P}_N_OUTPUTS; ++c)
        if (logits[c] > logits[best])
            best = c;
    return best;
}}

void {n}_predict_proba(const {real} *x, float *proba)
{{
    double logits[{P}_N_OUTPUTS], top, sum = 0.0;
    int c;
    {n}_logits(x, logits);
    top = logits[0];
    for (c = 1; c < {P}_N_OUTPUTS; ++c)
        if (logits[c] > top)
            top = logits[c];
    for (c = 0; c < {P}_N_OUTPUTS; ++c) {{
        logits[c] = exp(logits[c] - top);
        sum += logits[c];
    }}
    for (c = 0; c < {P}_N_OUTPUTS; ++c)
        proba[c] = (float)(logits[c] / sum);
}}

void {n}_predict_batch(const {real} *x, long n_samples, int *indices)
{{
    long i;
    for (i = 0; i < n_samples; ++i)
        indices[i] = {n}_predict(x + i * {P}_N_FEATURES);
}}
"""

_REGRESS = """\
void {n}_predict(const {real} *x, double *y)
{{
    {n}_logits(x, y);
}}

void {n}_predict_batch(const {real} *x, long n_samples, double *y)
{{
    long i;
    for (i = 0; i < n_samples; ++i)
        {n}_logits(x + i * {P}_N_FEATURES, y + i * {P}_N_OUTPUTS);
}}
"""


def _logits_code(facts: dict, fmt: dict, net) -> str:
    """``<name>_logits``: scaling, input code, first layer, binary layers, head, linear."""
    n, P = fmt["n"], fmt["P"]
    code = _LOGITS_HEAD.format(**fmt)
    source = "x"
    if net.input_scale is not None:
        code += f"    {fmt['real']} xs[{P}_N_FEATURES];\n"
    if net.code is not None:  # the coded input, on the stack
        code += f"    {fmt['real']} xc[{P}_N_INPUTS];\n"
    if net.input_scale is not None:
        code += (
            f"    for (j = 0; j < {P}_N_FEATURES; ++j)\n"
            f"        xs[j] = ({fmt['real']})(((double)x[j] - {n}_in_offset[j]) / "
            f"{n}_in_scale[j]);\n"
        )
        source = "xs"
    network_input = source  # what the linear term reads
    if net.code is not None:
        code += f"    {n}_code({source}, xc);\n"
        source = "xc"
    if _reads_code(net):
        network_input = source
    code += f"    {n}_first({source}, a);\n"
    buffers = ["a", "b"]
    sizes = facts["sizes"]
    for k in range(1, len(sizes) - 1):
        src, dst = buffers[(k - 1) % 2], buffers[k % 2]
        n_words = -(-sizes[k] // fmt["W"])
        code += f"    {n}_binary({n}_w{k}, {n}_p{k}, {sizes[k + 1]}, {n_words}, {src}, {dst});\n"
    last = buffers[(len(sizes) - 2) % 2]
    other = buffers[(len(sizes) - 1) % 2]
    if len(sizes) == 2:
        code += f"    (void){other};\n"
    code += _HEAD_SUM.format(last=last, n_units=sizes[-1], **fmt)
    if _linear_of(net) is not None:
        code += f"    {n}_linear({network_input}, logits);\n"
    return code + "}\n"


def _linear_of(net):
    """``(linear_coef, linear_intercept)`` as float64, or None without a linear term."""
    coef = getattr(net, "linear_coef", None)
    if coef is None:
        return None
    return np.asarray(coef, np.float64), np.asarray(net.linear_intercept, np.float64)


def _reads_code(net) -> bool:
    """Whether the linear term reads the coded input (``linear_input="code"``)."""
    return _linear_of(net) is not None and net.linear_input == "code"


def _linear_function(net, fmt: dict) -> str:
    """``<name>_linear`` over the inputs it reads: the features or the coded input."""
    return _LINEAR.format(lin_n=f"{fmt['P']}_N_INPUTS" if _reads_code(net) else
                          f"{fmt['P']}_N_FEATURES", **fmt)


def _linear_arrays(net, name: str, arrays: _Arrays) -> None:
    """Emit ``<name>_lin_w`` (row-major ``(n_features, n_outputs)``) and ``<name>_lin_b``."""
    coef, intercept = _linear_of(net)
    items = [_float_literal(v, "double") for v in coef.ravel()]
    arrays.add("double", f"{name}_lin_w", coef.shape, items, 8)
    items = [_float_literal(v, "double") for v in intercept]
    arrays.add("double", f"{name}_lin_b", intercept.shape, items, 8)


_ENTRY_POINTS = {
    "classification": """\
 * {n}_predict returns the class index; its label is {n}_classes[index].
 * {n}_predict_proba writes {P}_N_CLASSES probabilities (softmax of the logits).
 * {n}_predict_batch classifies n_samples rows of {P}_N_FEATURES values (row-major).""",
    "regression": """\
 * {n}_predict writes the {P}_N_OUTPUTS predictions (double) of one row to y: the
 *                regressor's predict, its target scaling folded into the head.
 * {n}_logits writes the same values (the network's output).
 * {n}_predict_batch predicts n_samples rows of {P}_N_FEATURES values (row-major) into
 *                y, n_samples x {P}_N_OUTPUTS doubles (row-major).""",
}

_PROTOTYPES = {
    "classification": """\
int {n}_predict(const {real} *x);
void {n}_predict_proba(const {real} *x, float *proba);
void {n}_logits(const {real} *x, double *logits);
void {n}_predict_batch(const {real} *x, long n_samples, int *indices);""",
    "regression": """\
void {n}_predict(const {real} *x, double *y);
void {n}_logits(const {real} *x, double *logits);
void {n}_predict_batch(const {real} *x, long n_samples, double *y);""",
}


def _code_line(net, n_inputs: int, code_type: str | None, real: str) -> str:
    """The header's description of the input code."""
    if net.code is None:
        return "none"
    kept = "the inputs, then " if net.code.keep_raw else ""
    return (
        f"thermometer: {kept}{len(net.code.feature)} bits, {n_inputs} values;\n"
        " *                bit k = x[feature[k]] >= threshold[k] "
        f"({code_type or real}) ? +1 : -1"
    )


def _linear_line(net) -> str:
    """The header's description of the linear term."""
    if _linear_of(net) is None:
        return "none"
    reads = "the coded input, features then bits" if _reads_code(net) else (
        "the scaled input, before the code")
    return (
        "lin = intercept, then lin += x[j] * coef[j] for j = 0, 1, ... in double\n"
        f" *                (x: {reads}), added to the logits last;\n"
        " *                each product rounded before it is added: no fused multiply-add\n"
        " *                (turned off for GCC and clang in the source; other compilers:\n"
        " *                compile with contraction off, e.g. -ffp-contract=off)"
    )


def _outputs_text(net, task: str) -> str:
    n_outputs = len(net.head_bias)
    return f"{n_outputs} classes" if task == "classification" else f"{n_outputs} outputs"


def _plain_rows(net, fmt: dict, facts: dict) -> list[tuple[str, str]]:
    """The header's description of a :class:`PackedBinaryNetwork`: (label, text) rows."""
    W, real = fmt["W"], fmt["real"]
    shape = " -> ".join(map(str, facts["sizes"])) + f" -> {_outputs_text(net, fmt['task'])}"
    if net.code is not None:
        shape = f"{net.n_features_in_} features, coded to {shape}"
    first = "bits (+-1)" if facts["binary_first"] else f"{facts['first_type']} matrix"
    scaling = "(x - offset) / scale in double, then cast" if net.input_scale is not None else "none"
    return [
        ("Network", shape),
        ("Input scaling", scaling),
        ("Input code", _code_line(net, facts["sizes"][0], facts["code_type"], real)),
        ("First layer", f"{first}, double accumulation, threshold in {real}"),
        ("Later layers", f"packed {W}-bit words ({facts['word']}), XOR + popcount <= threshold"),
        ("Head", f"{facts['head_type']} weights, double logits"),
        ("Linear term", _linear_line(net)),
    ]


def _header(net, fmt: dict, rows: list, declarations: str, nbytes: int, stack: int,
            extra: dict | None = None) -> str:
    """``name.h``: the description ``rows`` (label, text), sizes, labels and prototypes.

    ``extra`` (the residual family's): ``what`` replaces "1-bit neural network" in the
    title, and ``entry``, ``defines`` and ``prototypes`` are added to the shared ones.
    """
    n, P, W, task = fmt["n"], fmt["P"], fmt["W"], fmt["task"]
    extra = extra or {}
    n_outputs = len(net.head_bias)
    defines = f"#define {P}_N_OUTPUTS {n_outputs}\n"
    if task == "classification":
        defines += f"#define {P}_N_CLASSES {n_outputs}\n"
    description = "".join(f" * {label + ':':<15}{text}\n" for label, text in rows)
    entry = _ENTRY_POINTS[task].format(**fmt) + extra.get("entry", "")
    prototypes = _PROTOTYPES[task].format(**fmt) + extra.get("prototypes", "")
    return f"""\
/* {n}.h: a {extra.get("what", "1-bit neural network")} exported by sklearn-bnn \
({type(net).__name__}.to_c).
 *
 * Task:          {task}
{description} * Word size:     {W} bits
 * Memory:        {nbytes} bytes of constants (static const arrays);
 *                {stack} bytes of stack buffers per call, no dynamic allocation.
 * Portability:   C99; define BNN_PORTABLE to avoid compiler popcount builtins.
 *
{entry}
 */
#ifndef {P}_H_
#define {P}_H_

#include <stdint.h>

#define {P}_N_FEATURES {net.n_features_in_}
{defines}{extra.get("defines", "")}#define {P}_WORD_BITS {W}
{declarations}
{prototypes}

#endif /* {P}_H_ */
"""


def _output_arrays(net, name: str, task: str, arrays: _Arrays) -> str:
    """Emit the linear term's arrays, if any, and a classifier's labels; return the
    header's declarations."""
    if _linear_of(net) is not None:
        _linear_arrays(net, name, arrays)
    if task != "classification":
        return ""
    return "\n" + _classes_code(np.asarray(net.classes_), name, arrays) + "\n"


def _output_stack(net, task: str, n_inputs: int, real_bytes: int) -> int:
    """Stack bytes of the logits of predict, the linear term's sums and the coded input."""
    n_outputs = len(net.head_bias)
    stack = 0
    if task == "classification":
        stack += 8 * n_outputs  # the logits of predict
    if _linear_of(net) is not None:
        stack += 8 * n_outputs  # lin
    if net.code is not None:
        stack += n_inputs * real_bytes  # xc, the coded input
    if _reads_code(net) and isinstance(net, PackedResidualNetwork):  # it codes x again
        stack += n_inputs * real_bytes
    return stack


# ----------------------------------------------------------------------------- residual family
_RESIDUAL_FIRST = """\
/* First layer: for each unit the double sum over the inputs in order, rounded once to
   float; then the stream h = dot * scale + bias, each operation rounded to float. */
{P}_NO_FMA static void {n}_first(const float *x, float *h)
{{
    int i, j, u;
{dots}}}
"""
_RESIDUAL_FIRST_STORE = """\
        for (u = 0; u < m; ++u) {{
            float dot = (float)acc[u];
            h[i + u] = (float)(dot * {n}_first_scale);
            h[i + u] = (float)(h[i + u] + {n}_first_b[i + u]);
        }}"""

_SIGNS = """\
/* Units of the stream, u_j = [h_j >= 0] (sign(0) = +1): bit j % {W} of word j / {W}. */
static void {n}_signs(const float *h, {word} *u)
{{
    int j;
    for (j = 0; j < {P}_N_WORDS; ++j)
        u[j] = 0;
    for (j = 0; j < {P}_WIDTH; ++j)
        if (h[j] >= 0.0f)
            u[j / {W}] |= ({word})1 << (j % {W});
}}
"""

_BLOCK = """\
/* Block b: d_i = N - 2 popcount(s_i XOR u), u = [h >= 0] (an exact integer), then
   h_i = (h_i + d_i * k_i) + beta_i, each product and sum rounded to float. */
{P}_NO_FMA static void {n}_block(int b, float *h, {word} *u)
{{
    const {word} *w = {n}_block_w + (long)b * {P}_WIDTH * {P}_N_WORDS;
    const float *k = {n}_block_k + (long)b * {P}_WIDTH;
    const float *beta = {n}_block_beta + (long)b * {P}_WIDTH;
    int i, j;
    {n}_signs(h, u);
    for (i = 0; i < {P}_WIDTH; ++i) {{
        int c = 0;
        float d;
        for (j = 0; j < {P}_N_WORDS; ++j)
            c += {P}_POPCOUNT(w[i * {P}_N_WORDS + j] ^ u[j]);
        d = (float)({P}_WIDTH - 2 * c);
        h[i] = (float)(h[i] + (float)(d * k[i]));
        h[i] = (float)(h[i] + beta[i]);
    }}
}}
"""

_RESIDUAL_ENTRY = """
 * {n}_stream writes the {P}_WIDTH floats of the last residual stream h (the
 *                network's PackedResidualNetwork.stream); the head reads sign(h)."""
_RESIDUAL_PROTOTYPE = "\nvoid {n}_stream(const float *x, float *h);"


def _residual_arrays(net, name: str, word_bits: int, arrays: _Arrays) -> dict:
    """Emit the residual network's parameter arrays; return facts the code needs."""
    word = f"uint{word_bits}_t"
    code_type = _code_arrays(net.code, name, arrays)
    weight = net.first_weight
    items = [_float_literal(v, "float") for v in weight.ravel()]
    arrays.add("float", f"{name}_w0", weight.shape, items, 4)
    items = [_float_literal(v, "float") for v in net.first_bias]
    arrays.add("float", f"{name}_first_b", net.first_bias.shape, items, 4)
    arrays.code.append(
        f"static const float {name}_first_scale = {_float_literal(net.first_scale, 'float')};\n"
    )
    arrays.nbytes += 4
    if len(net.signs):
        words = np.stack([_pack_words(signs, word_bits) for signs in net.signs])
        items = [_word_literal(int(v), word_bits) for v in words.ravel()]
        arrays.add(word, f"{name}_block_w", words.shape, items, word_bits // 8)
        for part, values in (("k", net.coef), ("beta", net.offset)):
            items = [_float_literal(v, "float") for v in values.ravel()]
            arrays.add("float", f"{name}_block_{part}", values.shape, items, 4)
    return {"word": word, "code_type": code_type, "head_type": _head_arrays(net, name, arrays)}


def _residual_rows(net, fmt: dict, facts: dict) -> list[tuple[str, str]]:
    """The header's description of a :class:`PackedResidualNetwork`: (label, text) rows."""
    width, n_inputs = len(net.first_bias), net.first_weight.shape[1]
    shape = f"{n_inputs} inputs"
    if net.code is not None:
        shape = f"{net.n_features_in_} features, coded to {n_inputs} values"
    shape += (
        f" -> {width} (real first layer) -> {len(net.signs)} residual blocks of {width}"
        f" -> {_outputs_text(net, fmt['task'])}"
    )
    return [
        ("Network", shape),
        ("Input code", _code_line(net, n_inputs, facts["code_type"], "float")),
        ("First layer", "float matrix, double accumulation rounded once to float;\n"
         " *                h = dot * scale + bias in float"),
        ("Blocks", "h_i += (N - 2 popcount(s_i XOR [h >= 0])) * k_i, then h_i += beta_i,\n"
         f" *                packed {fmt['W']}-bit words ({facts['word']}); every float "
         "product and sum\n"
         " *                rounded to float: no fused multiply-add (turned off for GCC and\n"
         " *                clang in the source; other compilers: -ffp-contract=off) and no\n"
         " *                excess precision (FLT_EVAL_METHOD 0, or ISO C's rounding casts)"),
        ("Head", f"{facts['head_type']} weights on sign(h) (sign(0) = +1), double logits"),
        ("Linear term", _linear_line(net)),
    ]


def _residual_functions(net, fmt: dict) -> str:
    """``<name>_stream`` and ``<name>_logits`` (with their helpers) of the residual network."""
    n, P = fmt["n"], fmt["P"]
    blocks = len(net.signs) > 0
    parts = [_NO_FMA.format(**fmt), "\n"]
    if blocks:
        parts += [_POPCOUNT.format(**fmt), "\n"]
    parts += [_RESIDUAL_FIRST.format(dots=_first_dots(_TERM_REAL, _RESIDUAL_FIRST_STORE, fmt),
                                     **fmt), "\n", _SIGNS.format(**fmt)]
    if net.code is not None:
        parts += ["\n", _code_function(net, fmt)]
    if blocks:
        parts += ["\n", _BLOCK.format(**fmt)]
    if _linear_of(net) is not None:
        parts += ["\n", _linear_function(net, fmt)]
    stream = "void {n}_stream(const float *x, float *h)\n{{\n"
    if blocks:
        stream += "    {word} u[{P}_N_WORDS];\n    int b;\n"
    source = "x"
    if net.code is not None:
        stream += "    float xc[{P}_N_INPUTS];\n    {n}_code(x, xc);\n"
        source = "xc"
    stream += f"    {{n}}_first({source}, h);\n"
    if blocks:
        stream += "    for (b = 0; b < {P}_N_BLOCKS; ++b)\n        {n}_block(b, h, u);\n"
    parts += ["\n", stream.format(**fmt) + "}\n", "\n"]
    logits = _RESIDUAL_LOGITS_HEAD.format(**fmt)
    logits += _HEAD_SUM.format(last="a", n_units=f"{P}_WIDTH", **fmt)
    if _reads_code(net):  # the coded input again (the stream's is gone)
        logits += f"    {{\n        float xc[{P}_N_INPUTS];\n        {n}_code(x, xc);\n"
        logits += f"        {n}_linear(xc, logits);\n    }}\n"
    elif _linear_of(net) is not None:
        logits += f"    {n}_linear(x, logits);\n"
    return "".join(parts) + logits + "}\n"


_RESIDUAL_LOGITS_HEAD = """\
void {n}_logits(const float *x, double *logits)
{{
    float h[{P}_WIDTH];
    {word} a[{P}_N_WORDS];
    int c, j;
    {n}_stream(x, h);
    {n}_signs(h, a);
"""


def _generate_residual(net, name: str, word_bits: int, task: str) -> tuple[str, str]:
    """:func:`generate` for a :class:`PackedResidualNetwork`."""
    arrays = _Arrays([])
    facts = _residual_arrays(net, name, word_bits, arrays)
    declarations = _output_arrays(net, name, task, arrays)
    P, width = name.upper(), len(net.first_bias)
    fmt = {"n": name, "P": P, "W": word_bits, "word": facts["word"], "real": "float",
           "ll": "ll" if word_bits == 64 else "", "n_out": width, "task": task}
    n_inputs, n_words = net.first_weight.shape[1], -(-width // word_bits)
    # h and the units a in logits, u in stream (with blocks), acc[4] in first
    stack = 4 * width + (1 + (len(net.signs) > 0)) * n_words * word_bits // 8 + 4 * 8
    stack += _output_stack(net, task, n_inputs, 4)
    defines = ""
    if net.code is not None:
        defines += f"#define {P}_N_BITS {len(net.code.feature)}\n"
    parts = [
        f"/* {name}.c: generated by sklearn-bnn; see {name}.h. */\n",
        f'#include "{name}.h"\n\n#include <math.h>\n\n',
        f"#define {P}_N_INPUTS {n_inputs} /* read by the first layer */\n",
        defines,
        f"#define {P}_N_WORDS {n_words} /* words of the stream's units */\n\n",
        *arrays.code,
        "\n",
        _residual_functions(net, fmt),
        "\n",
        (_CLASSIFY if task == "classification" else _REGRESS).format(**fmt),
    ]
    extra = {
        "what": "residual 1-bit neural network",
        "entry": _RESIDUAL_ENTRY.format(**fmt),
        "prototypes": _RESIDUAL_PROTOTYPE.format(**fmt),
        "defines": f"#define {P}_WIDTH {width}\n#define {P}_N_BLOCKS {len(net.signs)}\n",
    }
    rows = _residual_rows(net, fmt, facts)
    return _header(net, fmt, rows, declarations, arrays.nbytes, stack, extra), "".join(parts)


def generate(
    net, name: str = "bnn", word_bits: int = 64, task: str | None = None
) -> tuple[str, str]:
    """The text of ``name.h`` and ``name.c`` for a packed network.

    Parameters
    ----------
    net : PackedBinaryNetwork or PackedResidualNetwork
    name : str, default="bnn"
        Prefix of every exported symbol and of the file names; a C identifier.
    word_bits : {64, 32}, default=64
        Width of the packed words (``uint64_t`` or ``uint32_t``).
    task : {"classification", "regression"}, default=None
        The entry points.  ``"classification"``: ``int name_predict(const float *x)``
        (the class index), ``name_predict_proba``, ``name_predict_batch`` (indices) and
        the labels ``name_classes``.  ``"regression"`` (the export of a
        :class:`~sklearn_bnn.BinaryNetRegressor`): ``void name_predict(const float *x,
        double *y)`` writing ``NAME_N_OUTPUTS`` predictions, and ``name_predict_batch``
        writing ``n_samples`` rows of them.  Both have ``name_logits``, and a residual
        network ``name_stream``.  ``None``: the network's own ``task``; naming the other
        raises ``ValueError``.

    Returns
    -------
    header, source : str

    Raises
    ------
    ValueError
        An invalid name, word size or task, or a NaN or misplaced infinite parameter.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_bnn.deploy.packed import PackedBinaryNetwork, PackedLayer
    >>> from sklearn_bnn.deploy.c_export import generate
    >>> first = PackedLayer((2, 3), np.packbits([1, 0, 1, 0, 0, 1]), np.zeros(2, np.float32))
    >>> net = PackedBinaryNetwork([first], np.eye(2, dtype=np.float32), np.zeros(2, np.float32))
    >>> header, source = generate(net, "tiny")
    >>> print(header.splitlines()[0])
    /* tiny.h: a 1-bit neural network exported by sklearn-bnn (PackedBinaryNetwork.to_c).
    >>> "int tiny_predict(const float *x);" in header
    True
    >>> net = PackedBinaryNetwork([first], np.eye(2, dtype=np.float32), np.zeros(2, np.float32),
    ...                           task="regression")
    >>> header, source = generate(net, "tiny")
    >>> "void tiny_predict(const float *x, double *y);" in header
    True
    """
    _check_arguments(name, word_bits)
    task = net.resolve_task(task)
    if hasattr(net, "_check_values"):
        net._check_values()  # parameters set after construction are checked too
    if isinstance(net, PackedResidualNetwork):
        return _generate_residual(net, name, word_bits, task)
    real = "double" if net.layers[0].threshold.dtype == np.float64 else "float"
    arrays = _Arrays([])
    facts = _layers_code(net, name, word_bits, real, arrays)
    linear = _linear_of(net) is not None
    declarations = _output_arrays(net, name, task, arrays)
    fmt = {
        "n": name,
        "P": name.upper(),
        "W": word_bits,
        "word": facts["word"],
        "real": real,
        "count": facts["count_type"],
        "ll": "ll" if word_bits == 64 else "",
        "n_out": facts["sizes"][1],
        "pad": " " * len(f"static void {name}_binary("),
        "task": task,
    }
    word_bytes, real_bytes = word_bits // 8, 8 if real == "double" else 4
    stack = 2 * facts["max_words"] * word_bytes + 4 * 8  # a, b and acc[4]
    stack += _output_stack(net, task, facts["sizes"][0], real_bytes)
    if net.input_scale is not None:
        stack += net.n_features_in_ * real_bytes  # xs
    P = fmt["P"]
    parts = [
        f"/* {name}.c: generated by sklearn-bnn; see {name}.h. */\n",
        f'#include "{name}.h"\n\n#include <math.h>\n\n',
        f"#define {P}_N_INPUTS {facts['sizes'][0]} /* read by the first layer */\n",
    ]
    if net.code is not None:
        parts.append(f"#define {P}_N_BITS {len(net.code.feature)}\n")
    parts += [
        f"#define {P}_N_WORDS0 {-(-facts['sizes'][0] // word_bits)}\n",
        f"#define {P}_N_WORDS1 {-(-facts['sizes'][1] // word_bits)}\n",
        f"#define {P}_MAX_WORDS {facts['max_words']}\n\n",
        *arrays.code,
        "\n",
        _FIRST.format(
            dots=_first_dots(_TERM_BITS if facts["binary_first"] else _TERM_REAL,
                             _FIRST_THRESHOLD, fmt),
            **fmt,
        ),
    ]
    if net.code is not None:
        parts += ["\n", _code_function(net, fmt)]
    if len(facts["sizes"]) > 2:  # layers with +-1 inputs (only they count bits)
        parts += ["\n", _POPCOUNT.format(**fmt), "\n", _BINARY.format(**fmt)]
    if linear:
        parts += ["\n", _NO_FMA.format(**fmt), "\n", _linear_function(net, fmt)]
    parts += ["\n", _logits_code(facts, fmt, net)]
    parts += ["\n", (_CLASSIFY if task == "classification" else _REGRESS).format(**fmt)]
    header = _header(net, fmt, _plain_rows(net, fmt, facts), declarations, arrays.nbytes,
                     stack)
    return header, "".join(parts)


def write(
    net, directory, name: str = "bnn", word_bits: int = 64, task: str | None = None
) -> tuple[Path, Path]:
    """Write ``name.h`` and ``name.c`` into ``directory`` (created if missing).

    Parameters
    ----------
    net : PackedBinaryNetwork or PackedResidualNetwork
    directory : str or os.PathLike
    name, word_bits, task
        As in :func:`generate`.

    Returns
    -------
    header_path, source_path : pathlib.Path

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> from sklearn_bnn.deploy.packed import PackedBinaryNetwork, PackedLayer
    >>> from sklearn_bnn.deploy.c_export import write
    >>> first = PackedLayer((2, 3), np.packbits([1, 0, 1, 0, 0, 1]), np.zeros(2, np.float32))
    >>> net = PackedBinaryNetwork([first], np.eye(2, dtype=np.float32), np.zeros(2, np.float32))
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     print([path.name for path in write(net, tmp, name="tiny", word_bits=32)])
    ['tiny.h', 'tiny.c']
    """
    header, source = generate(net, name, word_bits, task)
    directory = Path(os.fspath(directory))
    directory.mkdir(parents=True, exist_ok=True)
    paths = directory / f"{name}.h", directory / f"{name}.c"
    for path, text in zip(paths, (header, source)):
        path.write_text(text, encoding="utf-8")
    return paths
