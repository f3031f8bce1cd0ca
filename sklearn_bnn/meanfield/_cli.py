"""``critical`` sub-command: print the critical initialisation of a binary network.

Wiring (in ``sklearn_bnn/__main__.py``)::

    from .meanfield import _cli as critical_cli

    subparsers = parser.add_subparsers(dest="command", required=True)
    critical_cli.add_parser(subparsers)          # registers "critical", sets func=run
    args = parser.parse_args(argv)
    return args.func(args)                        # or: critical_cli.run(args)

Example: ``python -m sklearn_bnn critical --depth 30 --surrogate deterministic --noise sign``.
numpy/scipy only (no torch import), so it answers in well under a second.
"""

from __future__ import annotations

import argparse
import math

from .._constants import UNIT_SLOPE
from .critical import TRAINABLE_DEPTH_FACTOR, critical_init, critical_model
from .maps import NOISE_NAMES, SURROGATES, propagate

#: Surrogates the command accepts: every model of the solver (:func:`critical_init` answers
#: for each, the 1-bit network included).
CLI_SURROGATES = tuple(SURROGATES)


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register the ``critical`` sub-command on an ``argparse`` subparsers object."""
    p = subparsers.add_parser(
        "critical",
        help="mean-field critical initialisation for a surrogate, noise and depth",
        description=(
            "Print the initialisation (sigma_m^2, sigma_b^2) the mean-field solver chooses, "
            "the criterion it used, q*, chi_1, the correlation depth scale xi_c and the "
            f"predicted trainable depth (~{TRAINABLE_DEPTH_FACTOR:g} xi_c) "
            "[Stamatescu et al., ICLR 2020]."
        ),
    )
    p.add_argument("--depth", type=int, default=None, help="number of binary layers")
    p.add_argument("--surrogate", default="deterministic", choices=CLI_SURROGATES)
    p.add_argument("--noise", default="gaussian", choices=NOISE_NAMES)
    p.add_argument("--noise-scale", type=float, default=None, help="noise scale s (default 1)")
    p.add_argument("--sigma-b2", type=float, default=None, help="bias variance (default 1e-3)")
    p.add_argument("--slope", default="1",
                   help="slope of the deterministic surrogate's neuron: a number, or 'unit' "
                        "(sqrt(pi/2), as BinaryNetClassifier(slope='unit')); default 1")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Run the ``critical`` sub-command; returns the exit status."""
    if args.depth is not None and args.depth < 1:
        raise SystemExit(f"--depth={args.depth}: give a positive number of layers")
    slope = _slope(args.slope)
    ci = critical_init(args.surrogate, args.noise, args.depth, args.sigma_b2, args.noise_scale,
                       slope=slope)
    fp = ci.fixed_point
    rows = [
        ("surrogate / noise", f"{args.surrogate} / {args.noise}"
         + ("" if slope == 1.0 else f" / slope {slope:.4g}")),
        ("depth", "-" if args.depth is None else str(args.depth)),
        ("criterion", ci.criterion),
        ("exact critical point", "yes" if ci.exact else "no"),
        ("init sigma_m2", f"{ci.sigma_m2:.4g}  (weight means +-{ci.sigma_m2 ** 0.5:.4g})"),
        ("init sigma_b2", f"{ci.sigma_b2:.3g}"),
        ("q*", f"{fp.q_star:.4g}"),
        ("chi_1", f"{fp.chi_1:.4g}"),
        ("xi_c (layers)", f"{fp.xi_c:.4g}"),
        ("trainable depth ~6 xi_c", f"{fp.trainable_depth:.3g}"),
    ]
    if args.depth is not None:
        p = propagate(critical_model(args.surrogate), args.noise, ci.sigma_m2, ci.sigma_b2,
                      args.depth, noise_scale=args.noise_scale, slope=slope)
        rows.append(("dc_L/dc_0 over depth", f"{float(p.chi.prod()):.3g}"))
        rows.append(("grad gain over depth", f"{float(p.grad_gain[:-1].prod()):.3g}"))
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    print(ci.message)
    return 0


def _slope(text: str) -> float:
    """``--slope``: a positive number, or ``unit`` for sqrt(pi/2)."""
    if text == "unit":
        return UNIT_SLOPE
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (value > 0.0 and math.isfinite(value)):
        raise SystemExit(f"--slope={text}: give a positive number or 'unit'")
    return value

