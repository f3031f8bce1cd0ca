"""Screen levers for BinaryNetRegressor vs MLPRegressor (a research screen, issue 19).

Run from benchmarks/ with the package importable:
``SEED=k PYTHONPATH=..:. python regression_levers.py FOLDS TABLES LEVERS...``; the logs of
the runs behind the figures in the closing note are in ``results/regression_levers/``
(shared 2-core CPU, 1 torch thread). The winning lever (a float64 Ridge term plus the 1-bit
network on its residuals) is prototyped here as a wrapper, not yet an estimator option.
"""

from __future__ import annotations

import json
import sys
import time
import warnings

import numpy as np
import torch
from torch import nn

from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.compose import TransformedTargetRegressor
from sklearn.linear_model import Ridge
from sklearn.metrics import r2_score
from sklearn.model_selection import KFold
from sklearn.neural_network import MLPRegressor
from sklearn.preprocessing import StandardScaler

from _tables import load_regression, preprocessor

import sklearn_bnn.nn.estimators as est
from sklearn_bnn import BinaryNetRegressor
from sklearn_bnn._training import SBNNet, TensorBatches, fused_adam
from sklearn_bnn.nn.architecture import ARCHITECTURES
from sklearn_bnn.nn.network import BinaryNetwork
from sklearn_bnn.nn.surrogates import FORWARDS


# ------------------------------------------------------------------ the skip lever
class SkipBinaryNetwork(BinaryNetwork):
    """BinaryNetwork whose real head also reads the (encoded) input: wide & deep.

    output = W_h s(x) + W_x x + b, s(x) the +-1 units of the last hidden layer.
    ``features`` returns [s(x), x], so every forward mode (and the float64 head used at
    predict) carries the skip; the head is one Linear over both.
    """

    skip = True

    def __init__(self, n_features, hidden_layer_sizes, n_outputs, n_skip=None, **kwargs):
        super().__init__(n_features, hidden_layer_sizes, n_outputs, **kwargs)
        self.n_hidden = int(list(hidden_layer_sizes)[-1])
        self.n_skip = int(n_features) if n_skip is None else int(n_skip)
        self.head = nn.Linear(self.n_hidden + self.n_skip, int(n_outputs))

    def features(self, x, mode="deterministic", generator=None):
        return torch.cat([FORWARDS[mode](self, x, generator), x[:, : self.n_skip]], dim=1)


def ridge_head(module, X, Y, lam):
    """Skip weights = ridge of Y on X (intercept unpenalised); hidden-unit weights = 0."""
    X, Y = X[:, : module.n_skip].double(), Y.double()
    xm, ym = X.mean(0), Y.mean(0)
    Xc = X - xm
    A = Xc.T @ Xc + lam * torch.eye(X.shape[1], dtype=X.dtype)
    W = torch.linalg.solve(A, Xc.T @ (Y - ym)).T  # (n_out, n_in)
    with torch.no_grad():
        H = module.n_hidden
        module.head.weight[:, :H] = 0.0
        module.head.weight[:, H:] = W.float()
        module.head.bias[:] = (ym - W @ xm).float()


def _with_skip(path):
    """The straight-through training path (which calls net.head directly) plus the skip."""
    def wrapped(net, x, proxy, generator):
        h = path(net, x, proxy, generator)
        return torch.cat([h, x[:, : net.n_skip]], dim=1) if getattr(net, "skip", False) else h
    return wrapped


est._ST_PATHS = {k: _with_skip(v) for k, v in est._ST_PATHS.items()}


class SkipRegressor(BinaryNetRegressor):
    """BinaryNetRegressor building SkipBinaryNetwork (plain architecture only).

    ``skip_init`` (class attribute): None (nn.Linear default) or a ridge penalty: the skip
    weights and bias start at the ridge solution on the encoded input and standardised
    target, the hidden-unit weights at 0; then everything trains as usual.
    """

    skip_init = None

    def _configure(self, net, fit, network):
        super()._configure(net, fit, network)
        if fit.first and self.skip_init is not None:
            ridge_head(net.module_, fit.train.X, fit.train.y, self.skip_init)
            if getattr(self, "freeze_skip", False):
                H = net.module_.n_hidden

                def hook(g, H=H):
                    g = g.clone()
                    g[:, H:] = 0.0
                    return g
                net.module_.head.weight.register_hook(hook)

    def _build_net(self, network):
        module_kwargs = {f"module__{k}": v for k, v in self._module_kwargs(network).items()}
        if getattr(self, "skip_raw", False):
            module_kwargs["module__n_skip"] = self.n_features_in_
        architecture = ARCHITECTURES[network.architecture]
        net = SBNNet(
            SkipBinaryNetwork, **module_kwargs, criterion=torch.nn.MSELoss,
            optimizer=torch.optim.Adam, optimizer__fused=fused_adam(network.device.type),
            lr=self.learning_rate_init, max_epochs=1, iterator_train=TensorBatches,
            iterator_valid=TensorBatches, train_split=None, device=network.device,
            callbacks=self._callbacks(False, True, 1), loss=self._loss,
            train_mode=network.train_mode,
        )
        net.initialize()
        self.init_ = architecture.initialize(net.module_, self.init, self.surrogate)
        self.critical_init_ = self.init_.get("critical")
        net.module_.to(network.device)
        self.net_, self.device_ = net, network.device
        return net


# -------------------------------------------------------------- residual-on-Ridge lever
class RidgeResidual(RegressorMixin, BaseEstimator):
    """Ridge on X, then the 1-bit network on Ridge's residuals; prediction = sum."""

    def __init__(self, bnn=None, ridge_alpha=1.0):  # ridge_alpha=-1: RidgeCV
        self.bnn = bnn
        self.ridge_alpha = ridge_alpha

    def fit(self, X, y):
        if self.ridge_alpha < 0:
            from sklearn.linear_model import RidgeCV
            self.ridge_ = RidgeCV(alphas=np.logspace(-2, 3, 11)).fit(X, y)
        else:
            self.ridge_ = Ridge(alpha=self.ridge_alpha).fit(X, y)
        self.bnn_ = clone(self.bnn).fit(X, y - self.ridge_.predict(X))
        return self

    def predict(self, X):
        return self.ridge_.predict(X) + self.bnn_.predict(X)


def make(lever, seed):
    kw = dict(random_state=seed)
    name, _, arg = lever.partition(":")
    extra = json.loads(arg) if arg else {}
    name, _, lam = name.partition("@")
    lam = float(lam) if lam else 1.0
    if name == "base":
        return BinaryNetRegressor(**kw, **extra)
    if name == "skip":
        return SkipRegressor(**kw, **extra)
    if name == "skipraw":
        m = SkipRegressor(**kw, **extra)
        m.skip_raw = True
        return m
    if name == "skipfrozenraw":
        m = SkipRegressor(**kw, **extra)
        m.skip_init, m.freeze_skip, m.skip_raw = lam, True, True
        return m
    if name == "skipridge":
        m = SkipRegressor(**kw, **extra)
        m.skip_init = lam
        return m
    if name == "skipfrozen":
        m = SkipRegressor(**kw, **extra)
        m.skip_init, m.freeze_skip = lam, True
        return m
    if name == "ridge":
        return RidgeResidual(BinaryNetRegressor(**kw, **extra), ridge_alpha=lam)
    if name == "ridgeskip":
        return RidgeResidual(SkipRegressor(**kw, **extra))
    raise ValueError(lever)


def run(tables, levers, folds, seed=int(__import__("os").environ.get("SEED", 0))):
    torch.set_num_threads(1)
    res = {}
    for t in tables:
        X, y = load_regression(t)
        res[t] = {m: {"r2": [], "s": []} for m in ["MLP", *levers]}
        for tr, te in KFold(folds, shuffle=True, random_state=seed).split(X):
            prep = preprocessor(X.iloc[tr]).fit(X.iloc[tr])
            Xtr, Xte = prep.transform(X.iloc[tr]), prep.transform(X.iloc[te])
            ytr, yte = y.iloc[tr].to_numpy(), y.iloc[te].to_numpy()
            models = {"MLP": TransformedTargetRegressor(
                MLPRegressor(random_state=seed), transformer=StandardScaler())}
            models.update({lv: make(lv, seed) for lv in levers})
            for m, model in models.items():
                t0 = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    model.fit(Xtr, ytr)
                res[t][m]["s"].append(time.perf_counter() - t0)
                res[t][m]["r2"].append(r2_score(yte, model.predict(Xte)))
        print(t, {m: round(float(np.mean(r["r2"])), 3) for m, r in res[t].items()}, flush=True)
    return res


def report(res, levers):
    for lv in levers:
        print(f"\n== lever {lv}")
        print(f"{'table':<11}{'BNN R^2':>9}{'MLP R^2':>9}{'gap':>8}{'s ratio':>9}")
        gaps, ratios = [], []
        for t, r in res.items():
            b, m = np.mean(r[lv]["r2"]), np.mean(r["MLP"]["r2"])
            ratio = np.median(r[lv]["s"]) / np.median(r["MLP"]["s"])
            gaps.append(b - m)
            ratios.append(ratio)
            print(f"{t:<11}{b:>9.3f}{m:>9.3f}{b - m:>+8.3f}{ratio:>9.2f}")
        print(f"{'mean':<11}{'':>18}{np.mean(gaps):>+8.3f}{np.median(ratios):>9.2f} (median)")
        print(f"worst gap {min(gaps):+.3f}")


if __name__ == "__main__":
    folds = int(sys.argv[1])
    tables = sys.argv[2].split(",")
    levers = sys.argv[3:]
    res = run(tables, levers, folds)
    report(res, levers)
