r"""Plots of the mean-field solver: phase diagrams and layer-by-layer propagation.

matplotlib is imported inside each function, so importing :mod:`sklearn_bnn.meanfield` never
needs it (install ``sklearn-bnn[plot]``).  [SGL20]_ Fig. 1 draws the same quantities.

References
----------
.. [SGL20] G. Stamatescu, F. Gerace, C. Lucibello, I. Fuss, L. White. Critical
   initialisation in continuous approximations of binary neural networks. ICLR 2020,
   arXiv:1902.00177.
"""

from __future__ import annotations

import numpy as np

from .critical import phase_diagram
from .maps import propagate

__all__ = ["plot_phase_diagram", "plot_propagation"]


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "plotting needs matplotlib: pip install 'sklearn-bnn[plot]' (or matplotlib)"
        ) from exc
    return plt


def plot_phase_diagram(
    surrogate: str,
    noise: str,
    sigma_m2=None,
    sigma_b2=None,
    noise_scale: float | None = None,
    axes=None,
):
    r"""Draw :math:`\chi_1` and :math:`\xi_c` over :math:`(\sigma_m^2, \sigma_b^2)`.

    Parameters
    ----------
    surrogate, noise, sigma_m2, sigma_b2, noise_scale
        As :func:`~sklearn_bnn.meanfield.phase_diagram`.
    axes : pair of matplotlib Axes, optional
        Where to draw; a new figure with two panels otherwise.

    Returns
    -------
    axes : pair of matplotlib Axes
    grid : dict
        The :func:`~sklearn_bnn.meanfield.phase_diagram` it drew.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sklearn_bnn.meanfield.plot import plot_phase_diagram
    >>> axes, grid = plot_phase_diagram("lrt_continuous", "uniform", [0.5, 1.0], [0.0, 0.1])
    >>> grid["chi_1"].shape
    (2, 2)
    """
    plt = _pyplot()
    grid = phase_diagram(surrogate, noise, sigma_m2, sigma_b2, noise_scale)
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(9, 3.6), constrained_layout=True)
    extent = {"shading": "auto"}
    m, b = grid["sigma_m2"], grid["sigma_b2"]
    im = axes[0].pcolormesh(m, b, grid["chi_1"], cmap="coolwarm", vmin=0.0, vmax=2.0, **extent)
    if np.nanmin(grid["chi_1"]) < 1.0 < np.nanmax(grid["chi_1"]):
        axes[0].contour(m, b, grid["chi_1"], levels=[1.0], colors="k")
    axes[0].figure.colorbar(im, ax=axes[0], label=r"$\chi_1$")
    xi = np.log10(np.clip(grid["xi_c"], 1e-2, 1e3))
    im = axes[1].pcolormesh(m, b, xi, cmap="viridis", **extent)
    axes[1].figure.colorbar(im, ax=axes[1], label=r"$\log_{10}\xi_c$")
    for ax, title in zip(axes, (r"$\chi_1$", r"$\xi_c$ (layers)")):
        ax.set_xlabel(r"$\sigma_m^2$")
        ax.set_ylabel(r"$\sigma_b^2$")
        ax.set_title(f"{surrogate} / {noise}: {title}")
    return axes, grid


def plot_propagation(
    surrogate: str,
    noise: str,
    sigma_m2_values=(0.5, 0.9, 0.99),
    sigma_b2: float = 1e-3,
    depth: int = 30,
    noise_scale: float | None = None,
    axes=None,
):
    r"""Draw :math:`q^l`, :math:`c^l` and :math:`\prod_{k\le l}\chi^k` against depth.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sklearn_bnn.meanfield.plot import plot_propagation
    >>> axes = plot_propagation("deterministic", "sign", depth=5)
    >>> len(axes)
    3
    """
    plt = _pyplot()
    if axes is None:
        _, axes = plt.subplots(1, 3, figsize=(11, 3.4), constrained_layout=True)
    layers = np.arange(1, depth + 1)
    for sm2 in sigma_m2_values:
        p = propagate(surrogate, noise, sm2, sigma_b2, depth, noise_scale=noise_scale)
        label = rf"$\sigma_m^2={sm2:g}$"
        axes[0].semilogy(layers, p.q, label=label)
        axes[1].plot(layers, p.c, label=label)
        with np.errstate(divide="ignore"):
            axes[2].semilogy(layers, np.exp(np.cumsum(np.log(p.chi))), label=label)
    for ax, name in zip(axes, ("$q^l$", "$c^l$", r"$\prod_{k\leq l}\chi^k$")):
        ax.set_xlabel("layer")
        ax.set_title(name)
    axes[0].legend()
    return axes
