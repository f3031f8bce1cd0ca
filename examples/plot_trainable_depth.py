"""
=====================================================
Trainable depth: critical initialisation vs Glorot
=====================================================

A small slice of ``benchmarks/depth.py``, the experiment of Stamatescu et al. (ICLR 2020,
Fig. 2) on scikit-learn's digits: deep binary networks trained through the deterministic
surrogate (S1, sign neurons) with Adam for a few epochs, and their **training accuracy**
for Glorot applied to the means, a mid-range second moment :math:`\\sigma_m^2 = 0.5`, and
``init="critical"``.

Two neurons are compared: the exact mean of the stochastic network (``slope=1``, the
"literal" sign map :math:`\\operatorname{erf}(\\bar h/\\sqrt{2\\Sigma})`) and the unit-slope
neuron (``slope="unit"``, :math:`\\operatorname{erf}(\\sqrt{\\pi}\\,\\bar h/(2\\sqrt\\Sigma))`),
whose critical line :math:`\\chi_1 = 1` lies at :math:`(\\sigma_m^2, \\sigma_b^2) \\to (1, 0)`.

The second figure is the solver's side: the depth-:math:`L` correlation sensitivity
:math:`\\partial c^L/\\partial c^0` over :math:`\\sigma_m^2`, which ``critical_init``
maximises (its choice is marked).

The third part is about the network that ``predict`` deploys.  A trained S1 surrogate is
not it: its 1-bit network (:math:`\\operatorname{sign}(M)`, sign units) loses the depth the
surrogate gained.  The residual 1-bit network (:mod:`sklearn_bnn.nn.residual`: binary blocks
added to a real stream, trained as deployed by straight-through) is deployable and, by its
mean-field maps (:mod:`sklearn_bnn.meanfield.residual`), has no finite correlation depth
scale.  The full grids, with the fitted trainable-depth law, are in the user guide
(:ref:`depth`).
"""

import math
import time
import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from sklearn_bnn import BinaryNetClassifier  # noqa: E402
from sklearn_bnn.meanfield import critical_init, propagate  # noqa: E402
from sklearn_bnn.meanfield import residual as residual_theory  # noqa: E402
from sklearn_bnn.nn.surrogates import UNIT_SLOPE  # noqa: E402

X, y = load_digits(return_X_y=True)
X = StandardScaler().fit_transform(X).astype(np.float32)

# %%
# Training accuracy after 8 epochs, width 64 (narrow to keep the example under a minute).
depths = (10, 30)
inits = ("glorot", 0.5, "critical")
results, onebit = {}, {}
start = time.perf_counter()
for slope in (1.0, "unit"):
    for depth in depths:
        for init in inits:
            clf = BinaryNetClassifier(
                (64,) * depth,
                surrogate="deterministic",
                noise="sign",
                slope=slope,
                init=init,
                inference="surrogate",
                learning_rate_init=3e-3,
                binary_learning_rate=3e-3,  # one rate for every parameter, as in the paper
                batch_size=64,
                max_iter=8,
                n_iter_no_change=100,
                # the network itself is the subject: no linear term under it (logistic
                # regression alone fits digits' training set to 0.999), the all-binary
                # network on the raw features, as in benchmarks/depth.py
                linear=False,
                first_layer="binary",
                encoding="raw",
                random_state=0,
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                clf.fit(X, y)
            results[slope, depth, str(init)] = clf.score(X, y)
            clf.set_params(inference="binary")  # the 1-bit network the surrogate deploys
            onebit[slope, depth, str(init)] = clf.score(X, y)
            if init == "critical":
                print(f"slope={slope!s:>4} depth {depth}: critical_init chose "
                      f"sigma_m2={clf.critical_init_['sigma_m2']:.3f}")
print(f"{len(results)} fits in {time.perf_counter() - start:.0f} s")
for (slope, depth, init), acc in results.items():
    print(f"slope={slope!s:>4} depth {depth:>2} init={init:<8} training accuracy {acc:.3f} "
          f"(its 1-bit network: {onebit[slope, depth, init]:.3f})")

# what this example shows, checked: critical initialisation trains where Glorot does not,
# and the unit-slope neuron keeps it trainable at depth 30
for slope in (1.0, "unit"):
    assert results[slope, 10, "critical"] >= results[slope, 10, "glorot"] + 0.4, results
assert results["unit", 30, "critical"] >= 0.8 >= results["unit", 30, "glorot"], results

fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), sharey=True)
for ax, slope in zip(axes, (1.0, "unit")):
    width = 0.27
    for j, init in enumerate(inits):
        acc = [results[slope, d, str(init)] for d in depths]
        bars = ax.bar(np.arange(len(depths)) + (j - 1) * width, acc, width, label=str(init))
        ax.bar_label(bars, fmt="%.2f", fontsize=7)
    ax.set_xticks(range(len(depths)), [f"depth {d}" for d in depths])
    ax.axhline(0.1, color="grey", lw=0.8, ls=":")
    ax.set_title(f"slope={slope}")
    ax.set_ylim(0, 1.08)
axes[0].set_ylabel("training accuracy")
axes[1].legend(title="init", fontsize=8)
fig.tight_layout()

# %%
# The solver's criterion: correlation sensitivity over sigma_m2 at each depth, for both
# slopes (sigma_b2 = 1e-3), with critical_init's choice marked.
grid = np.linspace(0.05, 0.99, 60)
fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), sharey=True)
for ax, (name, slope) in zip(axes, (("1", 1.0), ("unit", UNIT_SLOPE))):
    for depth in (5, 10, 30, 50):
        sens = [math.exp(propagate("deterministic", "sign", m, 1e-3, depth, slope=slope)
                         .log_chi_product) for m in grid]
        (line,) = ax.semilogy(grid, sens, label=f"depth {depth}")
        ci = critical_init("deterministic", "sign", depth=depth, slope=slope)
        ax.semilogy(ci.sigma_m2, ci.correlation_sensitivity, "o", color=line.get_color())
    ax.set_xlabel(r"$\sigma_m^2$")
    ax.set_title(f"slope={name}")
    ax.set_ylim(1e-8, 2)
axes[0].set_ylabel(r"$\partial c^L / \partial c^0$")
axes[1].legend(fontsize=8)
fig.tight_layout()

# %%
# The deployable deep network: the residual 1-bit network from ``init="critical"`` (the
# depth-scaled branch of :func:`sklearn_bnn.meanfield.residual.critical_init`), trained as
# it is deployed (sign forward, straight-through backward), same width and epochs
# as above, with the estimator's defaults otherwise: ``architecture="residual"``.

def fit_residual(X, y, depth, width=64, epochs=8, seed=0):
    clf = BinaryNetClassifier(
        (width,) * depth, architecture="residual", init="critical", max_iter=epochs,
        linear=False, random_state=seed,
    )
    return clf.fit(X, y).score(X, y)  # predict: the deployed 1-bit network


residual = {depth: fit_residual(X, y, depth) for depth in depths}
for depth in depths:
    print(f"residual 1-bit network, depth {depth:>2}, init=critical: training accuracy "
          f"{residual[depth]:.3f} (deployed); S1 unit-slope critical: surrogate "
          f"{results['unit', depth, 'critical']:.3f}, its 1-bit network "
          f"{onebit['unit', depth, 'critical']:.3f}")

# checked: the S1 surrogate's 1-bit network loses what the surrogate learned, the residual
# 1-bit network keeps it
for depth in depths:
    assert onebit["unit", depth, "critical"] <= 0.3 and residual[depth] >= 0.85, depth
fig, ax = plt.subplots(figsize=(5.5, 3.4))
bars = {
    "S1 unit-slope surrogate (not deployable)": [results["unit", d, "critical"] for d in depths],
    "its 1-bit network (deployed)": [onebit["unit", d, "critical"] for d in depths],
    "residual 1-bit network (deployed)": [residual[d] for d in depths],
}
for j, (label, acc) in enumerate(bars.items()):
    drawn = ax.bar(np.arange(len(depths)) + (j - 1) * 0.27, acc, 0.27, label=label)
    ax.bar_label(drawn, fmt="%.2f", fontsize=7)
ax.set_xticks(range(len(depths)), [f"depth {d}" for d in depths])
ax.axhline(0.1, color="grey", lw=0.8, ls=":")
ax.set_ylim(0, 1.55)
ax.set_ylabel("training accuracy")
ax.set_title('init="critical"')
ax.legend(fontsize=7, loc="upper left")
fig.tight_layout()

# %%
# The theory behind it: the depth-L correlation sensitivity of the deployed networks.  The
# plain 1-bit network contracts it by 2/pi a layer (a geometric decay, xi_c ~ 2.2 layers),
# the residual stream with a constant branch by a power of the depth, and the depth-scaled
# branch of ``critical_init`` not at all (a depth-independent limit).
depth_grid = np.unique(np.geomspace(2, 500, 40).astype(int))
fig, ax = plt.subplots(figsize=(5.5, 3.4))
curves = {
    "plain 1-bit": [residual_theory.propagate(int(d), 1.0, skip=0.0).sensitivity
                    for d in depth_grid],
    "residual, branch scale 1": [residual_theory.propagate(int(d), 1.0, sigma_m2=0.05)
                                 .sensitivity for d in depth_grid],
    "residual, critical_init": [residual_theory.critical_init(int(d)).correlation_sensitivity
                                for d in depth_grid],
}
for label, values in curves.items():
    ax.loglog(depth_grid, values, label=label)
ax.axhline(math.exp(-6), color="grey", ls=":", lw=0.8)
ax.set_xlabel("depth L")
ax.set_ylabel(r"$\partial c^L / \partial c^0$")
ax.set_ylim(1e-12, 2)
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()
