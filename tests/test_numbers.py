"""One source for every number: figures quoted in README.md and docs/ come from results.

Every decimal figure (``0.9667``, ``2.3``, ``15.4x``) and every figure with thousands
separators (``22,056``) in the prose and tables of ``README.md`` and ``docs/**/*.rst`` must
appear in a committed results file: ``benchmarks/results/**`` or the older
``benchmarks/results_*`` files beside the scripts.  A quoted figure matches a result when
it is printed there the same way, or when it is that result rounded to the decimals quoted
(``0.958`` quotes ``0.9583``); the sign is ignored (``0.39 points behind`` quotes
``-0.39``).

Not checked: code blocks and inline literals (parameters such as ``init=0.05``), maths,
version numbers (``torch 2.13.0``, ``Python >= 3.10``), arXiv identifiers, links, and the
short allow-list below, each entry with its reason.  Plain integers (epochs, widths, years)
are not figures here.

To quote a new measurement, commit the output of the command that produced it under
``benchmarks/results/`` first; a re-run then changes the result and the quote together.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RESULTS = sorted(
    [p for p in (ROOT / "benchmarks" / "results").rglob("*") if p.is_file()]
    + [p for p in (ROOT / "benchmarks").glob("results_*") if p.is_file()]
)
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.rst")])
PAGES = [p for p in PAGES if not {"_build", "auto_examples", "generated"} & set(p.parts)]

# Figures in the pages that are not measurements, with the reason.  Keep it short: a
# measured figure belongs in a results file, not here.
ALLOWED = {
    "0.05": "the default init, sigma_m^2 = 0.05 (a parameter)",
}

_FIGURE = re.compile(r"(?<![\w.,])(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+\.\d+)(?![\w.]*\d)")
_RESULT_NUMBER = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?")
_SOFTWARE = re.compile(
    r"(?i)(python|torch|pytorch|scikit-learn|sklearn|skorch|numpy|scipy|skops|emlearn|"
    r"onnxruntime|onnx|skl2onnx|joblib|dask|sphinx|sphinx-gallery|numpydoc|matplotlib|"
    r"pandas|hypothesis|pytest|setuptools|sklearn-bnn|gcc|cuda|version|release)"
    r"[\s\"'(]*(?:[<>=!~]=?\s*)?$"
)
_STRIP_INLINE = [
    re.compile(r"``.*?``", re.S),  # rst inline literal
    re.compile(r":math:`.*?`", re.S),  # rst inline maths
    re.compile(r":\w+:`.*?`", re.S),  # other roles (refs, classes): names, not figures
    re.compile(r"`[^`\n]*`_{0,2}"),  # default role (literal here), markdown code, links
    re.compile(r"https?://\S+"),
    re.compile(r"(?i)arxiv:\s*\d+\.\d+"),
    re.compile(r"\d+\.\d+\.\d+(?:\.\d+)*\S*"),  # a version number such as 2.13.0+cpu
]


def _prose_lines(path: Path) -> list[tuple[int, str]]:
    """``(line number, text)`` of a page without its code blocks and maths blocks."""
    lines = path.read_text(encoding="utf-8").splitlines()
    out = []
    fence = False
    block_indent = None  # inside an indented rst block (code, maths) deeper than this
    for number, line in enumerate(lines, 1):
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if path.suffix == ".md" and stripped.startswith("```"):
            fence = not fence
            continue
        if fence:
            continue
        if block_indent is not None:
            if not stripped or indent > block_indent:
                continue
            block_indent = None
        if re.match(r"\.\. (code-block|code|math|sourcecode|literalinclude|highlight)::", stripped) or (
            stripped.endswith("::") and not stripped.startswith("..")
        ):
            block_indent = indent
            if stripped.startswith(".."):
                continue
        out.append((number, line))
    return out


def _figures(text: str) -> list[str]:
    for pattern in _STRIP_INLINE:
        text = pattern.sub(" ", text)
    found = []
    for match in _FIGURE.finditer(text):
        if _SOFTWARE.search(text[: match.start()]):
            continue
        found.append(match.group(1))
    return found


def _quoted():
    """``(page, line, figure)`` for every checked figure of every page."""
    quoted = []
    for path in PAGES:
        for number, line in _prose_lines(path):
            for figure in _figures(line):
                quoted.append((path.relative_to(ROOT).as_posix(), number, figure))
    return quoted


def _result_numbers() -> tuple[set[str], list[Decimal]]:
    strings, values = set(), []
    for path in RESULTS:
        text = path.read_text(encoding="utf-8", errors="replace")
        for token in _RESULT_NUMBER.findall(text):
            plain = token.replace(",", "")
            strings.add(plain)
            values.append(Decimal(plain))
    return strings, values


def _decimals(figure: str) -> int:
    return len(figure.split(".")[1]) if "." in figure else 0


def _matches(figure: str, strings: set[str], values: list[Decimal]) -> bool:
    plain = figure.replace(",", "")
    if plain in strings:
        return True
    target = Decimal(plain)
    quantum = Decimal(1).scaleb(-_decimals(plain))
    for value in values:
        if -value.as_tuple().exponent <= _decimals(plain):
            continue  # a rounded quote needs a more precise result
        for rounding in (ROUND_HALF_UP, ROUND_HALF_EVEN):
            if value.quantize(quantum, rounding=rounding) == target:
                return True
    return False


QUOTED = _quoted()
STRINGS, VALUES = _result_numbers()


def test_the_pages_quote_figures_and_results_exist():
    assert len(RESULTS) >= 5
    assert len(QUOTED) > 50
    assert len(VALUES) > 1000


def test_allow_list_entries_are_used():
    used = {figure for _, _, figure in QUOTED}
    assert set(ALLOWED) <= used, f"stale allow-list entries: {set(ALLOWED) - used}"


def test_every_quoted_figure_is_a_committed_result():
    missing = [
        f"{page}:{line}: {figure}"
        for page, line, figure in QUOTED
        if figure not in ALLOWED and not _matches(figure, STRINGS, VALUES)
    ]
    assert not missing, (
        "figures quoted in the docs but found in no file under benchmarks/results "
        "(commit the result, quote it as printed there, or explain it in ALLOWED):\n"
        + "\n".join(missing)
    )


@pytest.mark.parametrize(
    "text, expected",
    [
        ("the 1-bit network scores 0.9667 in 2.3 s", ["0.9667", "2.3"]),
        ("packs into 22,056 bytes (15.4x)", ["22,056", "15.4"]),
        ("torch 2.13.0 CPU build, Python >= 3.10, ``init=0.05``", []),
        ("arXiv:1902.00177, :math:`\\sigma = 0.5`, 2026-12-01", []),
        ("scikit-learn 1.9 and torch >= 2.1", []),
    ],
)
def test_extraction(text, expected):
    assert _figures(text) == expected


def test_a_changed_figure_fails():
    assert _matches("0.9667", STRINGS, VALUES)
    assert not _matches("0.96671", STRINGS, VALUES)
    assert not _matches("123,456.789", STRINGS, VALUES)
