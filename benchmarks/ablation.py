"""Ablation: which part of the default ``BinaryNetClassifier`` earns its accuracy.

The tabular suite (``benchmarks/tabular.py``, the same tables, folds and preprocessing, models
interleaved per fold in one process), with these columns per table:

* ``BNN``: the default;
* ``BNN[frozen]``: the default with its +-1 layers frozen at initialisation
  (``binary_learning_rate=0``: every +-1 weight keeps its initial sign; the head, biases and
  the linear term train as in the default);
* ``BNN[alone]``: the network alone (``linear=False``);
* ``LR``: ``LogisticRegression(max_iter=1000)``, which is the linear term alone (the default's
  linear term is ``LogisticRegression(C=1 / linear_alpha)`` with ``linear_alpha=1``, fitted on
  the same rows);
* ``MLP``: ``MLPClassifier()``; ``HGB``: ``HistGradientBoostingClassifier()``.

The "Ablation" table gives, per table, the default minus each control in accuracy points and
the sum of the default's ``flip_ratio_``, with means over all tables and over the non-linear
ones (``nonlinear=True`` in ``benchmarks/_tables.py``).  Not a test: nothing is asserted.

Usage::

    python benchmarks/ablation.py --threads 1 --out ablation_cpu
    python benchmarks/ablation.py --datasets digits hpc_data --folds 3

Every option of ``benchmarks/tabular.py`` applies.  This machine sets ``OPENBLAS_CORETYPE``
and ``OPENBLAS_L2_SIZE``, which slow numpy's BLAS: unset both in the command that times
(``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/ablation.py ...``).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import tabular  # benchmarks/ is not a package: imported from the path above

CONTROLS = ["--config", "frozen:binary_learning_rate=0.0", "--config", "alone:linear=False"]


def controls(argv: list[str]) -> list[str]:
    """:data:`CONTROLS` less those whose column name ``argv`` gives a ``--config`` of its own
    (the caller's settings replace the control's, and the command line lists each once).

    >>> controls(["--config", "frozen:binary_learning_rate=0.01", "--threads", "1"])
    ['--config', 'alone:linear=False']
    """
    given = {value.split(":", 1)[0] for flag, value in zip(argv, argv[1:]) if flag == "--config"}
    pairs = zip(CONTROLS[::2], CONTROLS[1::2])
    return [
        item
        for flag, value in pairs
        if value.split(":", 1)[0] not in given
        for item in (flag, value)
    ]


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    return tabular.main([*controls(argv), *argv], command="python benchmarks/ablation.py")


if __name__ == "__main__":
    raise SystemExit(main())
