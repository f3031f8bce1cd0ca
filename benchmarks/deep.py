"""Deep deployable binary networks: the residual 1-bit family against the plain one (issue 16).

Digits (1797 x 64), a stratified 75/25 split (``random_state=0``), features standardised on
the training rows; width 128; depths ``--depths``; inits ``critical``, ``glorot``, ``he``.
Every model is trained by the package's own training code (``BinaryNetClassifier.fit``: the
skorch loop, Adam, cosine schedule, the estimator's defaults apart from the depth, init,
``max_iter`` and ``random_state``) with the default ``surrogate="binary"``: the forward pass
is the deployed 1-bit network, the backward the noise-matched straight-through estimator.
Reported: the deployed network's **test accuracy** (what ``predict`` and the exported
artefact return; there is no separate surrogate, the trained network *is* the deployed one),
its training accuracy, and the theory's numbers for the family at that init
(:mod:`sklearn_bnn.meanfield.residual`): :math:`\\partial c^L/\\partial c_0` at the depth and
the predicted trainable depth (largest :math:`L` with
:math:`\\ln \\partial c^L/\\partial c_0 \\ge -6`, the :math:`6\\,\\xi_c` rule).

Families:

* ``plain``: :class:`~sklearn_bnn.BinaryNetClassifier` as it is (``BinaryNetwork``);
  ``init="critical"`` is refused for ``surrogate="binary"`` today, so the plain rows run
  glorot and he only.
* ``residual``: :class:`ResidualBinaryNetClassifier` below, a local subclass that swaps the
  module for :class:`~sklearn_bnn.nn.residual.ResidualBinaryNetwork` and its straight-through
  objective (the wiring the estimator needs, without editing it), and checks that the
  exported :class:`~sklearn_bnn.nn.packed_residual.PackedResidualNetwork` predicts exactly
  what the estimator predicts.

Usage::

    python benchmarks/deep.py                        # the grid (about 15 min on 2 cores)
    python benchmarks/deep.py --quick                # depth 30, residual critical only
    python benchmarks/deep.py --out benchmarks/results/deep_cpu.txt
"""

from __future__ import annotations

import argparse
import math
import platform
import time
import warnings
from typing import ClassVar

import numpy as np
import torch

from sklearn_bnn import BinaryNetClassifier
from sklearn_bnn._training import SBNNet, TensorBatches, fused_adam
from sklearn_bnn.meanfield import residual as mf
from sklearn_bnn.nn.residual import (
    TRAIN_MODE,
    ResidualBinaryNetwork,
    register_training,
)


class _ResidualSBNNet(SBNNet):
    """SBNNet that always trains with the residual network's straight-through objective."""

    def set_params(self, **kwargs):
        if kwargs.get("train_mode") is not None:
            kwargs["train_mode"] = TRAIN_MODE
        return super().set_params(**kwargs)


class ResidualBinaryNetClassifier(BinaryNetClassifier):
    """``BinaryNetClassifier`` whose network is a :class:`ResidualBinaryNetwork`.

    Wiring only (no new parameters): ``_build_net`` builds the residual module with the
    initial branch scale of ``init`` and trains it with ``"residual+st"``;
    ``init="critical"`` is resolved by :func:`sklearn_bnn.meanfield.residual.critical_init`
    for this depth (its means and zero biases are drawn as the pair
    ``(sigma_m2, 0.0)``, its branch scale given to the module); ``export_binary`` returns
    the exact :class:`PackedResidualNetwork`.
    """

    #: Keyword arguments for :func:`sklearn_bnn.meanfield.residual.critical_init`.
    critical_kwargs: ClassVar[dict] = {}

    def _fit_inner(self, X, y, sample_weight, incremental, first, train_mode, noise, device,
                   sizes):
        init = self.init
        self._branch_scale = 1.0
        self._residual_critical = None
        if first and isinstance(init, str) and init == "critical":
            answer = mf.critical_init(len(sizes), **self.critical_kwargs)
            self._residual_critical = answer
            self._branch_scale = answer.alpha
            self.init = (answer.sigma_m2, answer.sigma_b2)
        try:
            super()._fit_inner(X, y, sample_weight, incremental, first, TRAIN_MODE, noise,
                               device, sizes)
        finally:
            self.init = init
        if self._residual_critical is not None:
            self.critical_init_ = self._residual_critical.as_dict()

    def _build_net(self, sizes, noise, device, train_mode):
        register_training()
        encoder = self.encoder_
        n_inputs = self.n_features_in_ if encoder is None else encoder.n_features_out_
        net = _ResidualSBNNet(
            ResidualBinaryNetwork,
            module__n_features=n_inputs,
            module__hidden_layer_sizes=sizes,
            module__n_outputs=len(self.classes_),
            module__noise=noise,
            module__first_layer="real",
            module__branch_scale=self._branch_scale,
            criterion=torch.nn.CrossEntropyLoss,
            optimizer=torch.optim.Adam,
            optimizer__fused=fused_adam(device.type),
            lr=self.learning_rate_init,
            max_epochs=1,
            iterator_train=TensorBatches,
            iterator_valid=TensorBatches,
            train_split=None,
            device=device,
            callbacks=self._callbacks(False, True, 1),
            train_mode=TRAIN_MODE,
            alpha=self.alpha,
            jit_step=False,
            verbose=self.verbose,
        )
        net.initialize()
        return net

    def export_binary(self):
        from sklearn_bnn.nn.packed_residual import PackedResidualNetwork

        encoder = getattr(self, "encoder_", None)
        code = None if encoder is None else encoder.input_code()
        return PackedResidualNetwork.from_module(self.net_.module_, classes=self.classes_,
                                                 code=code)


def _data(seed=0):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    X, y = load_digits(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, stratify=y, random_state=seed)
    scaler = StandardScaler().fit(Xtr)
    return (scaler.transform(Xtr).astype(np.float32), scaler.transform(Xte).astype(np.float32),
            ytr, yte)


def _theory(family, init, depth, q1):
    """(dc_L/dc_0 at this depth, predicted trainable depth) of the family at init."""
    if family == "plain":  # the 1-bit network: c' = (2/pi) arcsin c, first layer real
        p = mf.propagate(depth, 1.0, skip=0.0, sigma_m2=min(q1, 1.0))
        return p.sensitivity, mf.trainable_depth(1.0, skip=0.0, sigma_m2=min(q1, 1.0))
    if init == "critical":
        ci = mf.critical_init(depth)
        p = mf.propagate(depth, ci.alpha**2, sigma_m2=ci.sigma_m2)
        return p.sensitivity, ci.trainable_depth
    # glorot / he: branch scale 1 (the module default), first layer of variance q1
    p = mf.propagate(depth, 1.0, sigma_m2=min(q1, 1.0))
    return p.sensitivity, mf.trainable_depth(1.0, sigma_m2=min(q1, 1.0))


#: Second moment of the real first layer's weights under each named init, digits (64 inputs,
#: width 128): glorot U(+-sqrt(6/192)) -> 1/32; he N(0, 2/64) clipped -> 2/64.
_Q1 = {"glorot": 6.0 / 192.0 / 3.0, "he": 2.0 / 64.0}


def _fit_one(family, init, depth, width, epochs, seed, data):
    Xtr, Xte, ytr, yte = data
    cls = ResidualBinaryNetClassifier if family == "residual" else BinaryNetClassifier
    clf = cls(hidden_layer_sizes=(width,) * depth, init=init, max_iter=epochs,
              random_state=seed)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.fit(Xtr, ytr)
    seconds = time.perf_counter() - t0
    pred = clf.predict(Xte)
    row = {
        "family": family, "init": init, "depth": depth, "seed": seed,
        "train_acc": float((clf.predict(Xtr) == ytr).mean()),
        "test_acc": float((pred == yte).mean()), "seconds": seconds, "export_exact": "",
    }
    if family == "residual":
        packed = clf.export_binary()
        row["export_exact"] = bool(np.array_equal(packed.predict(Xte), pred))
    q1 = 0.5 if init == "critical" else _Q1[init]
    row["dc_ratio"], row["theory_depth"] = _theory(family, init, depth, q1)
    return row


def _fmt_depth(v):
    return "inf" if math.isinf(v) else f"{v:.0f}"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--depths", type=int, nargs="+", default=[10, 20, 30, 50])
    ap.add_argument("--inits", nargs="+", default=["critical", "glorot", "he"])
    ap.add_argument("--families", nargs="+", default=["residual", "plain"])
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    if args.quick:
        args.depths, args.inits, args.families = [30], ["critical"], ["residual"]
    torch.set_num_threads(1)
    data = _data()
    rows = []
    lines = []

    def emit(text):
        print(text, flush=True)
        lines.append(text)

    emit(f"# benchmarks/deep.py  torch {torch.__version__}, {platform.machine()}, 1 thread; "
         f"digits 75/25, width {args.width}, {args.epochs} epochs, estimator defaults "
         "(surrogate='binary', Adam lr 3e-3 cosine, encoding raw+thermometer)")
    emit(f"{'family':9} {'init':9} {'depth':>5} {'seed':>4} {'train':>6} {'test':>6} "
         f"{'exact':>5} {'dcL/dc0':>9} {'theory L':>8} {'sec':>6}")
    for depth in args.depths:
        for family in args.families:
            for init in args.inits:
                if family == "plain" and init == "critical":
                    continue
                for seed in args.seeds:
                    r = _fit_one(family, init, depth, args.width, args.epochs, seed, data)
                    rows.append(r)
                    emit(f"{r['family']:9} {r['init']:9} {r['depth']:5d} {r['seed']:4d} "
                         f"{r['train_acc']:6.3f} {r['test_acc']:6.3f} "
                         f"{r['export_exact']!s:>5} {r['dc_ratio']:9.2e} "
                         f"{_fmt_depth(r['theory_depth']):>8} {r['seconds']:6.1f}")
    if args.out:
        with open(args.out, "w") as fh:
            fh.write("\n".join(lines) + "\n")
    return rows


if __name__ == "__main__":
    main()
