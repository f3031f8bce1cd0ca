"""String-keyed registries for option values.

Every string-valued option of the package (surrogate, gradient estimator, neuron noise,
init scheme, inference mode) maps to exactly one entry of a :class:`Registry`.  Adding an
option is adding one entry; the estimator looks values up instead of branching on them, and
an unknown value gets a :class:`ValueError` that lists the valid ones and suggests the
closest.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Registry(Mapping[str, T], Generic[T]):
    """A read-only mapping from option names to implementations.

    Parameters
    ----------
    option : str
        Name of the option the registry serves, used in error messages
        (for example ``"surrogate"``).
    entries : mapping of str to object
        The values, in the order messages list them.

    Examples
    --------
    >>> from sklearn_bnn._registry import Registry
    >>> reg = Registry("colour", {"red": 1, "blue": 2})
    >>> reg["red"], reg.available
    (1, ['red', 'blue'])
    >>> reg.lookup("rde")
    Traceback (most recent call last):
    ...
    ValueError: colour='rde' is not a valid value. Valid values: 'red', 'blue'. Did you mean 'red'?
    """

    def __init__(self, option: str, entries: Mapping[str, T]) -> None:
        self.option = option
        self._entries = dict(entries)

    def __getitem__(self, name: str) -> T:
        return self._entries[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def names(self) -> set[str]:
        """All names."""
        return set(self._entries)

    @property
    def available(self) -> list[str]:
        """All names, in registration order."""
        return list(self._entries)

    def lookup(self, name: Any) -> T:
        """Return the entry for ``name`` or raise a :class:`ValueError` that explains."""
        if isinstance(name, str) and name in self._entries:
            return self._entries[name]
        valid = ", ".join(repr(n) for n in self._entries)
        hint = ""
        if isinstance(name, str):
            close = difflib.get_close_matches(name, list(self._entries), n=1)
            if close:
                hint = f" Did you mean {close[0]!r}?"
        raise ValueError(
            f"{self.option}={name!r} is not a valid value. Valid values: {valid}.{hint}"
        )
