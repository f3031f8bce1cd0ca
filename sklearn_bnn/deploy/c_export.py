r"""C99 export of a :class:`~sklearn_bnn.deploy.packed.PackedBinaryNetwork`.

:func:`generate` writes the network as a dependency-free pair of C files, ``name.h`` and
``name.c``, in the spirit of emlearn: every parameter a ``static const`` array (flash on a
microcontroller), no dynamic allocation, no library beyond ``<stdint.h>`` and ``<math.h>``
(``exp`` in ``predict_proba`` only), and a footprint stated in the header comment.
:meth:`PackedBinaryNetwork.to_c <sklearn_bnn.deploy.packed.PackedBinaryNetwork.to_c>` writes the
files.

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
so its function turns contraction off: the ``optimize("fp-contract=off")`` attribute for
GCC (whose GNU modes, the default, contract across statements on FMA targets), the
standard ``#pragma STDC FP_CONTRACT OFF`` for Clang; another compiler must be told (e.g.
``-ffp-contract=off``), as the header says.

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
    head_type = "double" if net.head_weight.dtype == np.float64 else "float"
    head_size = 8 if head_type == "double" else 4
    items = [_float_literal(v, head_type) for v in net.head_weight.ravel()]
    arrays.add(head_type, f"{name}_head_w", net.head_weight.shape, items, head_size)
    items = [_float_literal(v, head_type) for v in net.head_bias]
    arrays.add(head_type, f"{name}_head_b", net.head_bias.shape, items, head_size)
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

_FIRST = """\
/* First layer: double sum over the inputs in order, rounded once, >= threshold.  Four units
   are summed side by side (independent chains; each unit's order unchanged). */
static void {n}_first(const {real} *x, {word} *out)
{{
    int i, j, u;
    for (i = 0; i < {P}_N_WORDS1; ++i)
        out[i] = 0;
    for (i = 0; i < {n_out}; i += 4) {{
        double acc[4] = {{0.0, 0.0, 0.0, 0.0}};
        int m = {n_out} - i < 4 ? {n_out} - i : 4;
        for (j = 0; j < {P}_N_INPUTS; ++j) {{
            double v = (double)x[j];
            for (u = 0; u < m; ++u) {{
{term}
            }}
        }}
        for (u = 0; u < m; ++u)
            if (({real})acc[u] >= {n}_t0[i + u])
                out[(i + u) / {W}] |= ({word})1 << ((i + u) % {W});
    }}
}}
"""
# +-1 weights stored as bits: add or subtract the input.
_TERM_BITS = """\
                int on = ({n}_w0[(i + u) * {P}_N_WORDS0 + j / {W}] >> (j % {W})) & 1u;
                acc[u] += on ? v : -v;"""
# real weights (first_layer="real"): the product of two floats is exact in double.
_TERM_REAL = """\
                acc[u] += (double){n}_w0[(i + u) * {P}_N_INPUTS + j] * v;"""

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

# The linear term: each product is rounded to double before it is added, as numpy does;
# a fused multiply-add would round once and differ.  GCC contracts a * b + c across
# statements in its GNU modes (-std=gnu99, the default) when the target has FMA; its ISO
# modes (-std=c99) do not, and the optimize attribute turns it off for this function.
# Clang honours the standard pragma.
_LINEAR = """\
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#define {P}_NO_FMA
#elif defined(__GNUC__)
#define {P}_NO_FMA __attribute__((optimize("fp-contract=off")))
#else
#define {P}_NO_FMA /* compile without contraction, e.g. -ffp-contract=off (see {n}.h) */
#endif

/* Linear term, added to the logits last: the intercept, then input j = 0, 1, ... in order,
   each product rounded to double before it is added (no fused multiply-add). */
{P}_NO_FMA static void {n}_linear(const {real} *x, double *logits)
{{
    double lin[{P}_N_OUTPUTS];
    int c, j;
    for (c = 0; c < {P}_N_OUTPUTS; ++c)
        lin[c] = {n}_lin_b[c];
    for (j = 0; j < {P}_N_FEATURES; ++j) {{
        double v = (double)x[j];
        for (c = 0; c < {P}_N_OUTPUTS; ++c) {{
            double product = v * {n}_lin_w[j * {P}_N_OUTPUTS + c];
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


def _header(net, fmt: dict, facts: dict, declarations: str, nbytes: int, stack: int) -> str:
    n, P, W, real, task = fmt["n"], fmt["P"], fmt["W"], fmt["real"], fmt["task"]
    n_outputs = len(net.head_bias)
    outputs = f"{n_outputs} classes" if task == "classification" else f"{n_outputs} outputs"
    shape = " -> ".join(map(str, facts["sizes"])) + f" -> {outputs}"
    if net.code is not None:
        shape = f"{net.n_features_in_} features, coded to {shape}"
    first = "bits (+-1)" if facts["binary_first"] else f"{facts['first_type']} matrix"
    scaling = "(x - offset) / scale in double, then cast" if net.input_scale is not None else "none"
    coding = "none"
    if net.code is not None:
        kept = "the inputs, then " if net.code.keep_raw else ""
        coding = (
            f"thermometer: {kept}{len(net.code.feature)} bits, {facts['sizes'][0]} values;\n"
            " *                bit k = x[feature[k]] >= threshold[k] "
            f"({facts['code_type'] or real}) ? +1 : -1"
        )
    linear = "none"
    if _linear_of(net) is not None:
        linear = (
            "lin = intercept, then lin += x[j] * coef[j] for j = 0, 1, ... in double\n"
            " *                (x: the scaled input, before the code), added to the logits last;\n"
            " *                each product rounded before it is added: no fused multiply-add\n"
            " *                (turned off for GCC and clang in the source; other compilers:\n"
            " *                compile with contraction off, e.g. -ffp-contract=off)"
        )
    defines = f"#define {P}_N_OUTPUTS {n_outputs}\n"
    if task == "classification":
        defines += f"#define {P}_N_CLASSES {n_outputs}\n"
    return f"""\
/* {n}.h: a 1-bit neural network exported by sklearn-bnn (PackedBinaryNetwork.to_c).
 *
 * Task:          {task}
 * Network:       {shape}
 * Input scaling: {scaling}
 * Input code:    {coding}
 * First layer:   {first}, double accumulation, threshold in {real}
 * Later layers:  packed {W}-bit words ({facts["word"]}), XOR + popcount <= threshold
 * Head:          {facts["head_type"]} weights, double logits
 * Linear term:   {linear}
 * Word size:     {W} bits
 * Memory:        {nbytes} bytes of constants (static const arrays);
 *                {stack} bytes of stack buffers per call, no dynamic allocation.
 * Portability:   C99; define BNN_PORTABLE to avoid compiler popcount builtins.
 *
{_ENTRY_POINTS[task].format(**fmt)}
 */
#ifndef {P}_H_
#define {P}_H_

#include <stdint.h>

#define {P}_N_FEATURES {net.n_features_in_}
{defines}#define {P}_WORD_BITS {W}
{declarations}
{_PROTOTYPES[task].format(**fmt)}

#endif /* {P}_H_ */
"""


def generate(
    net, name: str = "bnn", word_bits: int = 64, task: str | None = None
) -> tuple[str, str]:
    """The text of ``name.h`` and ``name.c`` for a packed network.

    Parameters
    ----------
    net : PackedBinaryNetwork
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
        writing ``n_samples`` rows of them.  Both have ``name_logits``.  ``None``: the
        network's own ``task``; naming the other raises ``ValueError``.

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
    real = "double" if net.layers[0].threshold.dtype == np.float64 else "float"
    arrays = _Arrays([])
    facts = _layers_code(net, name, word_bits, real, arrays)
    linear = _linear_of(net) is not None
    if linear:
        _linear_arrays(net, name, arrays)
    declarations = ""
    if task == "classification":
        declarations = "\n" + _classes_code(np.asarray(net.classes_), name, arrays) + "\n"
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
    n_outputs = len(net.head_bias)
    stack = 2 * facts["max_words"] * word_bytes + 4 * 8  # a, b and acc[4]
    if task == "classification":
        stack += 8 * n_outputs  # the logits of predict
    if linear:
        stack += 8 * n_outputs  # lin
    if net.input_scale is not None:
        stack += net.n_features_in_ * real_bytes  # xs
    if net.code is not None:
        stack += facts["sizes"][0] * real_bytes  # xc, the coded input
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
        _POPCOUNT.format(**fmt),
        "\n",
        _FIRST.format(
            term=(_TERM_BITS if facts["binary_first"] else _TERM_REAL).format(**fmt), **fmt
        ),
    ]
    if net.code is not None:
        parts += ["\n", _code_function(net, fmt)]
    if len(facts["sizes"]) > 2:
        parts += ["\n", _BINARY.format(**fmt)]
    if linear:
        parts += ["\n", _LINEAR.format(**fmt)]
    parts += ["\n", _logits_code(facts, fmt, net)]
    parts += ["\n", (_CLASSIFY if task == "classification" else _REGRESS).format(**fmt)]
    header = _header(net, fmt, facts, declarations, arrays.nbytes, stack)
    return header, "".join(parts)


def write(
    net, directory, name: str = "bnn", word_bits: int = 64, task: str | None = None
) -> tuple[Path, Path]:
    """Write ``name.h`` and ``name.c`` into ``directory`` (created if missing).

    Parameters
    ----------
    net : PackedBinaryNetwork
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
