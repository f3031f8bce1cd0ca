"""String-keyed registries for option values.

Every string-valued option of the package (surrogate, gradient estimator, neuron noise,
init scheme, inference mode) maps to exactly one entry of a :class:`Registry`.  Adding an
option is adding one entry; the estimator never branches on option values itself.

An option may be *declared* before it is implemented (``pending``): it then appears in
the list of valid values, and looking it up raises a :class:`ValueError` saying that it
is not available yet, rather than silently falling back to something else.
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
        The implemented values.
    pending : mapping of str to str, default=None
        Declared but not yet implemented values, each with a short reason shown
        to the user.

    Examples
    --------
    >>> from sklearn_bnn._registry import Registry
    >>> reg = Registry("colour", {"red": 1}, pending={"blue": "planned"})
    >>> reg["red"]
    1
    >>> sorted(reg.names)
    ['blue', 'red']
    >>> reg.lookup("blue")
    Traceback (most recent call last):
    ...
    ValueError: colour='blue' is declared but not available yet (planned). Available now: 'red'.
    """

    def __init__(
        self,
        option: str,
        entries: Mapping[str, T],
        pending: Mapping[str, str] | None = None,
    ) -> None:
        self.option = option
        self._entries = dict(entries)
        self._pending = dict(pending or {})
        overlap = set(self._entries) & set(self._pending)
        if overlap:
            raise ValueError(f"{sorted(overlap)} both implemented and pending")

    # Mapping protocol: only implemented entries are items.
    def __getitem__(self, name: str) -> T:
        return self._entries[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def names(self) -> set[str]:
        """All declared names, implemented or pending."""
        return set(self._entries) | set(self._pending)

    @property
    def available(self) -> list[str]:
        """Implemented names, in registration order."""
        return list(self._entries)

    def lookup(self, name: Any) -> T:
        """Return the entry for ``name`` or raise a :class:`ValueError` that explains."""
        if isinstance(name, str) and name in self._entries:
            return self._entries[name]
        valid = ", ".join(repr(n) for n in self._entries)
        if isinstance(name, str) and name in self._pending:
            raise ValueError(
                f"{self.option}={name!r} is declared but not available yet "
                f"({self._pending[name]}). Available now: {valid}."
            )
        hint = ""
        if isinstance(name, str):
            close = difflib.get_close_matches(name, list(self.names), n=1)
            if close:
                hint = f" Did you mean {close[0]!r}?"
        raise ValueError(
            f"{self.option}={name!r} is not a valid value. Valid values: {valid}.{hint}"
        )

    def register(self, name: str, entry: T) -> None:
        """Add (or implement a pending) entry."""
        self._pending.pop(name, None)
        self._entries[name] = entry
