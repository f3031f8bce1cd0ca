"""Documentation contract of the public API.

Every public module (no path component starting with ``_``) declares ``__all__``; every class
and function it exports has its own numpydoc docstring with an ``Examples`` section holding
at least one doctest (run by ``--doctest-modules``, see ``pyproject.toml``); and every exported
name is listed in the API reference (``docs/api.rst``).  A new public object without an
example, or missing from the reference, fails here.
"""

from __future__ import annotations

import doctest
import importlib
import inspect
import os
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest

import sklearn_bnn

ROOT = Path(__file__).resolve().parent.parent
API_RST = ROOT / "docs" / "api.rst"
README = ROOT / "README.md"
_EXAMPLES = re.compile(r"^[ \t]*Examples[ \t]*\n[ \t]*-{8,}[ \t]*$", re.MULTILINE)
_NEXT_SECTION = re.compile(r"^[ \t]*\S.*\n[ \t]*-{3,}[ \t]*$", re.MULTILINE)


def _public_modules() -> list[str]:
    names = ["sklearn_bnn"]
    for info in pkgutil.walk_packages(sklearn_bnn.__path__, "sklearn_bnn."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            names.append(info.name)
    return sorted(names)


PUBLIC_MODULES = _public_modules()


def _exports():
    """``(module name, name, object)`` for every class and function in a public ``__all__``."""
    out = []
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name)
            if inspect.isclass(obj) or inspect.isroutine(obj):
                out.append((module_name, name, obj))
    return out


EXPORTS = _exports()


def _own_docstring(obj) -> str:
    """The object's own docstring: a class does not inherit its base class's here."""
    doc = obj.__dict__.get("__doc__") if inspect.isclass(obj) else obj.__doc__
    return inspect.cleandoc(doc) if isinstance(doc, str) else ""


def test_the_walk_finds_the_packages():
    assert {"sklearn_bnn", "sklearn_bnn.nn", "sklearn_bnn.meanfield", "sklearn_bnn.init"} <= set(
        PUBLIC_MODULES
    )
    assert len(EXPORTS) > 40


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_public_module_declares_all(module_name):
    module = importlib.import_module(module_name)
    assert module.__doc__, f"{module_name} has no module docstring"
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{module_name} is public but declares no __all__"
    missing = [name for name in exported if not hasattr(module, name)]
    assert not missing, f"{module_name}.__all__ names undefined objects: {missing}"


@pytest.mark.parametrize(
    "module_name, name, obj", EXPORTS, ids=[f"{m}.{n}" for m, n, _ in EXPORTS]
)
def test_public_object_has_examples(module_name, name, obj):
    doc = _own_docstring(obj)
    assert doc, f"{module_name}.{name} has no docstring of its own"
    match = _EXAMPLES.search(doc)
    assert match, f"{module_name}.{name}: the docstring has no numpydoc 'Examples' section"
    section = doc[match.end() :]
    following = _NEXT_SECTION.search(section)
    if following is not None:
        section = section[: following.start()]
    examples = doctest.DocTestParser().get_examples(section)
    assert examples, f"{module_name}.{name}: the 'Examples' section has no '>>>' doctest"


def _documented() -> set[tuple[str, int]]:
    """``(name, id(object))`` of every entry of an ``autosummary`` in ``docs/api.rst``."""
    documented = set()
    current = "sklearn_bnn"
    in_summary = False
    for line in API_RST.read_text(encoding="utf-8").splitlines():
        if line.startswith(".. currentmodule::"):
            current = line.split("::", 1)[1].strip()
        elif line.startswith(".. autosummary::"):
            in_summary = True
        elif in_summary and line and not line.startswith(" "):
            in_summary = False
        elif in_summary and line.strip() and not line.strip().startswith(":"):
            entry = line.strip()
            obj = importlib.import_module(current)
            for part in entry.split("."):
                obj = getattr(obj, part)
            documented.add((entry.rsplit(".", 1)[-1], id(obj)))
    return documented


def test_api_reference_lists_every_export():
    documented = _documented()
    missing = []
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in getattr(module, "__all__", ()):
            if name.startswith("__"):
                continue
            if (name, id(getattr(module, name))) not in documented:
                missing.append(f"{module_name}.{name}")
    assert not missing, f"exported but not in docs/api.rst: {missing}"


def _readme_example() -> str:
    """The code block under the README's "Ten lines" heading."""
    match = re.search(
        r"^## Ten lines\n\n```python\n(.*?)^```",
        README.read_text("utf-8"),
        re.MULTILINE | re.DOTALL,
    )
    assert match, "README.md has no python block under '## Ten lines'"
    return match.group(1)


def test_readme_example_runs_without_warnings(tmp_path):
    """The README's example, run as a user would with ``python -W error``.

    A fresh ``PYTHONPYCACHEPREFIX`` makes Python compile the package again, so a warning at
    compile time (an invalid escape in a docstring) counts as well as one at run time (a
    ``ConvergenceWarning`` from a default fit).  One torch thread keeps it to seconds.
    """
    code = _readme_example()
    assert code.count("\n") <= 12
    env = {**os.environ, "PYTHONPYCACHEPREFIX": str(tmp_path), "OMP_NUM_THREADS": "1"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", code],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert not result.stderr.strip(), result.stderr[-3000:]
    accuracy = float(result.stdout.split()[-1])
    assert 0.9 < accuracy <= 1.0
