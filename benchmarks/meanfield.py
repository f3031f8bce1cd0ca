"""Timings of the mean-field solver (numpy/scipy only): critical_init, fixed_point, propagate.

critical_init: per surrogate x noise x depth, the first call of the process for that
combination ("cold": caches of Gauss-Hermite rules and Hermite series get filled) and the
median of the calls that follow.  fixed_point and propagate: median per surrogate x noise
(propagate at depth 10 and 100, sigma_m2 = 0.9).

    python benchmarks/meanfield.py            # depths 10, 30, 50, 100; 7 repeats
    python benchmarks/meanfield.py --quick    # depths 10, 100; 5 repeats
"""

from __future__ import annotations

import argparse
import statistics
import time

from sklearn_bnn.meanfield import critical_init, fixed_point, propagate

SURROGATES = ("deterministic", "lrt", "lrt_continuous", "sampled")
NOISES = ("sign", "gaussian", "logistic", "uniform")


def _combos():
    for surrogate in SURROGATES:
        for noise in NOISES:
            if surrogate == "lrt_continuous" and noise == "sign":
                continue  # needs a continuous neuron
            yield surrogate, noise


def _ms(fn, repeats):
    t = time.perf_counter()
    fn()
    cold = time.perf_counter() - t
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1000 * cold, 1000 * statistics.median(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="depths 10 and 100, 5 repeats")
    parser.add_argument("--repeats", type=int, default=None, help="timed calls after the first")
    args = parser.parse_args(argv)
    depths = (10, 100) if args.quick else (10, 30, 50, 100)
    repeats = args.repeats or (5 if args.quick else 7)

    print(f"critical_init(surrogate, noise, depth=L): ms, median of {repeats} (cold = first call)")
    head = f"{'surrogate':<15} {'noise':<9}" + "".join(
        f" {'L=' + str(d):>8} {'cold':>7}" for d in depths
    )
    print(head)
    print("-" * len(head))
    worst = 0.0
    for surrogate, noise in _combos():
        cells = []
        for depth in depths:
            cold, warm = _ms(lambda: critical_init(surrogate, noise, depth=depth), repeats)
            worst = max(worst, warm)
            cells.append(f" {warm:8.1f} {cold:7.1f}")
        print(f"{surrogate:<15} {noise:<9}" + "".join(cells))
    print(f"slowest (median): {worst:.1f} ms")

    print()
    print(
        "fixed_point(sigma_m2=0.9, sigma_b2=1e-3) and propagate(sigma_m2=0.9, depth=L): "
        f"ms, median of {repeats}"
    )
    head = f"{'surrogate':<15} {'noise':<9} {'fixed_pt':>9} {'prop L=10':>10} {'prop L=100':>11}"
    print(head)
    print("-" * len(head))
    for surrogate, noise in _combos():
        _, fp = _ms(lambda: fixed_point(surrogate, noise, 0.9, 1e-3), repeats)
        _, p10 = _ms(lambda: propagate(surrogate, noise, 0.9, 1e-3, 10), repeats)
        _, p100 = _ms(lambda: propagate(surrogate, noise, 0.9, 1e-3, 100), repeats)
        print(f"{surrogate:<15} {noise:<9} {fp:9.2f} {p10:10.2f} {p100:11.2f}")


if __name__ == "__main__":
    main()
