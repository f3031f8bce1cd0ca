"""The fast training step: every private torch call of the training loop, behind one switch.

:class:`~sklearn_bnn._training.SBNNet` and its callbacks call the public functions below.
Each has two paths: the *plain* path, public API only, which is the reference, and the
*fast* path, which computes bit for bit the same (``tests/test_fast_step.py`` fits a
seeded model through each and compares every tensor) with less Python per step.  Nothing
else in the package calls or reads an underscore-prefixed torch function or attribute, or
relies on how skorch's notifications are dispatched.

The switch (:func:`enabled`)
----------------------------
The fast path is taken only when both hold:

* :data:`FAST_STEP` allows it.  ``None`` (the default) follows the environment variable
  ``SKLEARN_BNN_FAST_STEP``, read at every call: unset or anything else is on, ``"0"``
  (or ``"false"``, ``"off"``, ``"no"``) is off.  ``True`` or ``False`` overrides it.
* the installed torch, :data:`TORCH_VERSION` (its major and minor release), lies in
  :data:`VERIFIED_TORCH`: from 2.4 up to, not including, 2.15.

Elsewhere the plain path is taken, with the same results; only the time differs.

What the fast path uses, and its plain counterpart
--------------------------------------------------
:func:`optimizer_step` (plain: ``optimizer.step()``)
    ``torch._foreach_add_(steps, 1)`` and ``torch._fused_adam_(params, grads, exp_avgs,
    exp_avg_sqs, [], steps, *, lr, beta1, beta2, weight_decay, eps, amsgrad, maximize,
    grad_scale, found_inf)``: the two calls that ``torch.optim.Adam(fused=True).step()``
    makes (``torch.optim.adam._fused_adam``), made directly for each parameter group
    once the optimiser's state exists, without the per-step Python around them (state
    and argument checks, grouping by device and dtype).  For other optimisers (or groups
    the direct call does not cover), the undecorated step,
    ``type(optimizer).step.__wrapped__``, which skips the profiler label and the hook loops
    of the wrapper that torch puts around ``step`` (``profile_hook_step``; the wrapper is
    marked by the ``hooked`` attribute).  Either only when no optimiser step hook is
    registered: torch keeps them in ``torch.optim.optimizer._global_optimizer_pre_hooks``,
    ``_global_optimizer_post_hooks`` and each optimiser's ``_optimizer_step_pre_hooks``,
    ``_optimizer_step_post_hooks``; if one of those is missing the plain step runs.
:func:`zero_grad` (plain: ``optimizer.zero_grad(set_to_none=True)``, skorch's call)
    ``param.grad = None`` for every parameter, without ``zero_grad``'s profiler label.
:func:`copy_into` (plain: ``dst.copy_(src)`` for each pair)
    ``torch._foreach_copy_``: one call for the end-of-epoch snapshot of every tensor
    (:class:`~sklearn_bnn._training.EpochCheckpoint`).
:func:`parameter_versions` (plain: ``None``, so the signs are taken again)
    ``Tensor._version``, the in-place version counter: :class:`~sklearn_bnn._training.FlipRatio`
    reuses the signs taken at an epoch's end as those of the next epoch's start when no
    parameter changed in between.
:func:`pm1_linear` (plain: ``F.linear`` of the :math:`\\pm 1` columns, then ``addmm`` of the rest)
    ``torch._int_mm``: the product of the input's :math:`\\pm 1` columns (the thermometer
    code's bits, or a hidden layer's sign units) with the :math:`\\pm 1` weights in int8,
    summed in int32 (oneDNN), on the CPU.  Every term is :math:`\\pm 1`, so both paths give
    the same integers exactly (float32 holds every integer below :math:`2^{24}`), and the
    real columns are then added to them by the same ``addmm`` call.
:func:`listeners` (plain: every hook that :meth:`skorch.NeuralNet.notify` calls)
    Only the hooks that do something: those that skorch's empty ``NeuralNet.on_batch_end``
    / ``on_grad_computed`` and ``Callback``'s empty methods leave out (skorch, not torch:
    it relies on ``notify`` calling the net's own hook, then each callback's, in
    ``callbacks_`` order).

Versions verified
-----------------
Run: ``tests/test_fast_step.py`` and the training tests on torch 2.13.0 (CPU) with
skorch 1.4.0, on both paths.  Read: in the released wheels of torch 2.1.0, 2.2.0, ...,
2.14.0 (the first release of every minor version), ``torch/optim/adam.py``
(``_fused_adam``: ``_foreach_add_`` of the steps, then ``_fused_adam_`` with these keyword
arguments, ``_fused_adamw_`` only for decoupled decay), ``torch/optim/optimizer.py`` (the
hook dictionaries, the ``functools.wraps`` wrapper and its ``hooked`` mark) and the stub
signatures of ``_fused_adam_``, ``_foreach_add_``, ``_foreach_copy_``,
``_int_mm`` (its CPU kernel from 2.3 on) and ``Tensor._version`` are the same as far as
this module relies on them; so is
``NeuralNet.notify`` (and the empty hooks) in skorch 1.0.0, 1.1.0, 1.2.0, 1.3.0 and 1.4.0.
Whatever the kernels compute, both paths call the same ones.

Why that range: it starts at 2.4, the first torch with fused Adam on the CPU.  The
estimators ask for fused Adam wherever the device has it (``fused_adam`` in
:mod:`sklearn_bnn._training`, public API), and the direct fused call is where the fast
step saves most.  Older torch, which the package still admits (torch 2.1), takes the plain
path; ``tests/test_fast_step.py`` simulates that (it sets :data:`TORCH_VERSION`).  The range
stops after 2.14, the newest release whose sources were read: a private call may change in
any release, so a later torch takes the plain path until someone reads the calls above in
its sources, raises ``VERIFIED_TORCH`` and runs ``tests/test_fast_step.py`` on it.  A range
too narrow costs speed, never a wrong model.
"""

from __future__ import annotations

import os
import re

import torch
from skorch import NeuralNet
from skorch.callbacks import Callback
from torch.nn import functional as F
from torch.optim import optimizer as torch_optimizer

#: The environment variable of the switch: ``"0"`` turns the fast path off.
ENV_VAR = "SKLEARN_BNN_FAST_STEP"
_OFF = frozenset({"0", "false", "off", "no"})

#: The switch itself: ``None`` follows :data:`ENV_VAR`; ``True`` / ``False`` override it
#: (the torch version must still be in :data:`VERIFIED_TORCH` for the fast path).
FAST_STEP: bool | None = None

#: ``(first, end)``: the fast path runs on torch ``first <= (major, minor) < end``.
VERIFIED_TORCH = ((2, 4), (2, 15))


def _release(version: str) -> tuple[int, int]:
    """``(major, minor)`` of a version string such as ``"2.13.0+cpu"``; ``(0, 0)`` if none."""
    match = re.match(r"\s*(\d+)\.(\d+)", str(version))
    return (int(match[1]), int(match[2])) if match else (0, 0)


#: The installed torch's ``(major, minor)``, as the switch reads it.
TORCH_VERSION = _release(torch.__version__)


def enabled() -> bool:
    """Whether the fast path is on: :data:`FAST_STEP` (or :data:`ENV_VAR`) allows it and
    :data:`TORCH_VERSION` is in :data:`VERIFIED_TORCH`."""
    flag = FAST_STEP
    if flag is None:
        flag = os.environ.get(ENV_VAR, "1").strip().lower() not in _OFF
    first, end = VERIFIED_TORCH
    return bool(flag) and first <= TORCH_VERSION < end


#: Fewest :math:`\pm 1` columns multiplied apart (in int8 on the fast path): below this
#: many the float32 product is as fast (the conversions cost more than the int8 kernel
#: saves), and torch 2.13's CPU ``_int_mm`` returns wrong sums for a single column
#: (``tests/test_fast_step.py`` checks both paths from 1 to 823 columns).
INT8_MIN_COLUMNS = 32
#: Whether this torch has oneDNN, whose int8 kernel ``torch._int_mm`` calls on the CPU.
_HAS_INT8 = torch.backends.mkldnn.is_available()


def pm1_linear(x: torch.Tensor, w: torch.Tensor, start: int | None) -> torch.Tensor:
    """``F.linear(x, w)`` for a :math:`\\pm 1` weight matrix ``w`` whose input ``x`` is
    exactly :math:`\\pm 1` from column ``start`` on (``None``: no such columns).

    On the CPU, from :data:`INT8_MIN_COLUMNS` such columns on: their product first, an
    exact integer in float32 (fast path: in int8 by ``torch._int_mm``, cheaper than the
    float32 GEMM on a wide code; measured on the benchmarks page), then ``addmm`` adds the
    product of the columns before ``start``.  Both paths give the same bits;
    against one ``F.linear`` over all columns only the real columns' rounding differs.
    Otherwise one ``F.linear``, as without ``start``.
    """
    n_code = 0 if start is None else x.shape[1] - start
    if n_code < INT8_MIN_COLUMNS or x.device.type != "cpu" or not _HAS_INT8:
        return F.linear(x, w)
    xc, wc = x[:, start:], w[:, start:]
    if enabled():
        code = torch._int_mm(xc.to(torch.int8), wc.to(torch.int8).t()).to(x.dtype)
    else:
        code = F.linear(xc, wc)
    return torch.addmm(code, x[:, :start], w[:, :start].t()) if start else code


def zero_grad(optimizer: torch.optim.Optimizer) -> None:
    """``optimizer.zero_grad(set_to_none=True)``: every parameter's gradient becomes ``None``
    (fast path: set directly, without the call's profiler label)."""
    if not enabled():
        optimizer.zero_grad(set_to_none=True)
        return
    for group in optimizer.param_groups:
        for param in group["params"]:
            param.grad = None


def optimizer_step(optimizer: torch.optim.Optimizer) -> None:
    """``optimizer.step()`` (fast path: fused Adam's kernels called directly,
    :func:`_fused_adam_step`, or else the step without torch's wrapper, when no step hook
    is registered; ``optimizer.step()`` itself whenever the wrapper is not the one
    expected)."""
    if not enabled():
        optimizer.step()
        return
    if _fused_adam_step(optimizer):
        return
    step = type(optimizer).step
    inner = getattr(step, "__wrapped__", None)
    if inner is None or not getattr(step, "hooked", False) or not _no_step_hooks(optimizer):
        optimizer.step()
    else:
        inner(optimizer)


def copy_into(copies: list[torch.Tensor], tensors: list[torch.Tensor]) -> None:
    """Copy each of ``tensors`` into the tensor of ``copies`` at its position (same shapes)."""
    if enabled():
        torch._foreach_copy_(copies, tensors)
        return
    for copy, tensor in zip(copies, tensors, strict=True):
        copy.copy_(tensor)


def parameter_versions(module: torch.nn.Module) -> list[int] | None:
    """The in-place version counters of ``module``'s parameters (any change bumps one), or
    ``None`` on the plain path: then no two calls can be told to be the same state."""
    if not enabled():
        return None
    return [p._version for p in module.parameters()]


def listeners(net: NeuralNet, hook: str) -> list:
    """The bound ``hook`` methods that :meth:`skorch.NeuralNet.notify` calls, in its order:
    the net's own, then each callback's.  Fast path: only those that do something, i.e.
    not skorch's empty ``NeuralNet`` method nor :class:`~skorch.callbacks.Callback`'s."""
    if not enabled():
        return [getattr(net, hook), *(getattr(cb, hook) for _, cb in net.callbacks_)]
    own = hook not in _EMPTY_NET_HOOKS or getattr(type(net), hook) is not getattr(NeuralNet, hook)
    empty = getattr(Callback, hook)
    callbacks = [
        getattr(cb, hook) for _, cb in net.callbacks_ if getattr(type(cb), hook) is not empty
    ]
    return [getattr(net, hook), *callbacks] if own else callbacks


#: Hooks that :class:`skorch.NeuralNet` defines with an empty body (``on_batch_begin`` and
#: ``on_epoch_begin`` add history rows).
_EMPTY_NET_HOOKS = frozenset({"on_batch_end", "on_grad_computed"})


def _no_step_hooks(optimizer) -> bool:
    """Whether no optimiser step hook, global or of ``optimizer``, is registered (``False``
    also where torch keeps them elsewhere than this code knows)."""
    hooks = (
        getattr(torch_optimizer, "_global_optimizer_pre_hooks", None),
        getattr(torch_optimizer, "_global_optimizer_post_hooks", None),
        getattr(optimizer, "_optimizer_step_pre_hooks", None),
        getattr(optimizer, "_optimizer_step_post_hooks", None),
    )
    return not any(h is None or h for h in hooks)


def _fused_adam_step(optimizer) -> bool:
    """The two kernels that ``torch.optim.Adam(fused=True).step()`` runs, called directly.

    For a plain fused Adam (no amsgrad, no decoupled decay, float hyper-parameters, no
    gradient scaler, no step hook) whose state exists (after its first step), over real
    dense tensors of one device and dtype per parameter group (any number of groups):
    ``torch._foreach_add_`` of the step counts, then ``torch._fused_adam_`` with the
    group's hyper-parameters, the very calls of ``torch.optim.adam._fused_adam``.
    Returns ``False``, having done nothing, wherever any of this does not hold; the caller
    then runs the optimiser's own step.
    """
    if type(optimizer) is not torch.optim.Adam or not _no_step_hooks(optimizer):
        return False
    if getattr(optimizer, "grad_scale", None) is not None:
        return False
    if getattr(optimizer, "found_inf", None) is not None:
        return False
    work = []
    for group in optimizer.param_groups:
        plan = _fused_adam_plan(optimizer, group)
        if plan is None:
            return False
        if plan:
            work.append((group, *plan))
    with torch.no_grad():
        for group, params, grads, exp_avgs, exp_avg_sqs, steps in work:
            beta1, beta2 = group["betas"]
            torch._foreach_add_(steps, 1)
            torch._fused_adam_(
                params, grads, exp_avgs, exp_avg_sqs, [], steps, amsgrad=False,
                lr=group["lr"], beta1=beta1, beta2=beta2, weight_decay=group["weight_decay"],
                eps=group["eps"], maximize=group["maximize"], grad_scale=None, found_inf=None,
            )  # fmt: skip
    return True


def _fused_adam_plan(optimizer, group):
    """``(params, grads, exp_avgs, exp_avg_sqs, steps)`` of ``group`` for
    :func:`_fused_adam_step`, ``()`` if no parameter has a gradient, ``None`` if the direct
    call does not apply."""
    flags = ("fused", "amsgrad", "differentiable", "decoupled_weight_decay", "capturable")
    if [bool(group.get(flag)) for flag in flags] != [True, False, False, False, False]:
        return None
    numbers = (group["lr"], *group["betas"], group["weight_decay"], group["eps"])
    if not all(type(x) in (int, float) for x in numbers):
        return None
    params = [p for p in group["params"] if p.grad is not None]
    if not params:
        return ()
    states = [optimizer.state.get(p) for p in params]
    first = params[0]
    kind = (first.device, first.dtype)
    for p, state in zip(params, states):
        if not state or (p.device, p.dtype) != kind or p.is_complex() or p.grad.is_sparse:
            return None
    return (
        params,
        [p.grad for p in params],
        [state["exp_avg"] for state in states],
        [state["exp_avg_sq"] for state in states],
        [state["step"] for state in states],
    )
