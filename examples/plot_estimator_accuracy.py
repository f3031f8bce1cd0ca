"""
How accurate are the gradient estimators?
=========================================

A small slice of ``benchmarks/estimators.py``, after the measurement of Shekhovtsov, Yanush
and Flach (NeurIPS 2020): a tiny
stochastic binary network (2 inputs, binary layers 5-5-5, logistic neuron noise, one
logistic output) on a 2-D toy problem of 200 points, where the *exact* gradient of the
expected loss can be computed by enumerating every state
(:func:`~sklearn_bnn.nn.exact.exact_gradient`).  Each estimator of
:mod:`sklearn_bnn.nn.estimators` gives one-sample estimates; the mean of :math:`n` of them
is compared with the exact gradient by cosine similarity, per binary layer.

An unbiased estimator's curve goes to 1 as :math:`n` grows, at a speed set by its variance;
a biased one levels off below 1.  The full benchmark and the numbers of [SYF20]_ are on the
benchmarks page.
"""

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch.nn import functional as F

from sklearn_bnn.nn import BinaryNetwork
from sklearn_bnn.nn.estimators import ESTIMATORS
from sklearn_bnn.nn.exact import exact_gradient, expected_loss, logistic_loss, make_toy
from sklearn_bnn.nn.noise import LogisticNoise

torch.set_num_threads(1)  # tiny float64 tensors: threads only add overhead

# %%
# The toy network, trained for 100 steps on the exact expected loss so that the gradient
# is measured at a point where training would actually be (the benchmark also measures at
# initialisation).  Means are kept inside (-1, 1): REINFORCE and ARM need every weight
# state to remain possible.
x, y = make_toy(200, torch.Generator().manual_seed(0))
torch.manual_seed(0)
net = BinaryNetwork(2, (5, 5, 5), 1, noise=LogisticNoise(0.25)).double()
with torch.no_grad():
    for layer in net.layers:
        layer.weight.uniform_(-1.0, 1.0)
        layer.bias.normal_(0.0, 0.5)
optimizer = torch.optim.Adam(net.parameters(), lr=0.05)
for _ in range(100):
    optimizer.zero_grad()
    expected_loss(net, x, y, logistic_loss).backward()
    optimizer.step()
    with torch.no_grad():
        for layer in net.layers:
            layer.weight.clamp_(-0.98, 0.98)
print(f"exact expected loss after training: {expected_loss(net, x, y, logistic_loss).item():.4f}")


def per_layer(grads):
    """One vector per binary layer: weight means and bias together."""
    return [
        torch.cat([grads[f"layers.{k}.weight"].reshape(-1), grads[f"layers.{k}.bias"]])
        for k in range(len(net.layers))
    ]


exact = per_layer(exact_gradient(net, x, y, logistic_loss))

# %%
# 1000 one-sample estimates per estimator; for each :math:`n` the mean of :math:`n` estimates
# is compared with the exact gradient, averaged over disjoint blocks of the 1000.
n_estimates = 1000
sizes = [1, 10, 100, 1000]
params = dict(net.named_parameters())
cosine = {}
for name in ("psa", "st", "arm", "reinforce"):
    generator = torch.Generator().manual_seed(1)
    rows = []
    for _ in range(n_estimates):
        net.zero_grad()
        surrogate, _ = ESTIMATORS[name](net, x, y, logistic_loss, generator)
        surrogate.backward()
        rows.append(per_layer({k: p.grad for k, p in params.items()}))
    samples = [torch.stack([r[k] for r in rows]) for k in range(len(net.layers))]
    cosine[name] = np.array(
        [
            [
                F.cosine_similarity(
                    s[: (n_estimates // n) * n].reshape(-1, n, s.shape[1]).mean(1), g[None]
                ).mean().item()
                for n in sizes
            ]
            for s, g in zip(samples, exact)
        ]
    )
    for k, values in enumerate(cosine[name]):
        print(
            f"{name:>9} layer {k + 1}: "
            + "  ".join(f"n={n}: {c:5.2f}" for n, c in zip(sizes, values))
        )

# %%
# Cosine similarity to the exact gradient against the number of averaged samples, per
# binary layer.  At this point of training PSA converges to the exact gradient on the two
# upper layers and levels off on the first one (with several stochastic layers above it PSA
# is biased too); ST levels off on every layer, and far below 1 on the upper two; ARM and
# REINFORCE keep improving, slowly, as unbiased estimators with a large variance should.
# (A mean cosine of single estimates can be negative even for an unbiased estimator: each
# estimate is normalised before averaging, so the large estimates count no more than the
# small ones.)
fig, axes = plt.subplots(1, 3, figsize=(12, 3.8), sharey=True)
for ax, k in zip(axes, range(len(net.layers))):
    for name, values in cosine.items():
        ax.semilogx(sizes, values[k], "o-", label=name)
    ax.axhline(1.0, color="k", lw=0.5)
    ax.set(xlabel="samples averaged", title=f"binary layer {k + 1}")
axes[0].set_ylabel("cosine similarity to exact gradient")
axes[0].legend()
fig.tight_layout()
plt.show()
