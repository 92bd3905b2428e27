"""A name-keyed registry, one instance per kind (integrators, systems).

Names are case-insensitive and ``_``/``-``/space are equivalent, so ``"two-body"``,
``"two_body"`` and ``"TwoBody"`` all find the same entry only when registered under a
name that normalises the same way (``"TwoBody"`` normalises to ``"twobody"``).
"""

from __future__ import annotations

import difflib
from typing import Any, Callable, Dict, List
from .errors import InputError, InputTypeError, UnknownNameError


def normalise(name: str) -> str:
    """Canonical registry key: lower case, ``_`` and spaces become ``-``."""
    if not isinstance(name, str) or not name.strip():
        raise InputTypeError(f"a registry name must be a non-empty string, got {name!r}")
    return name.strip().lower().replace("_", "-").replace(" ", "-")


class Registry:
    """Factories keyed by a unique name.

    Parameters
    ----------
    kind : str
        What is registered (``"integrator"``, ``"system"``); used in error messages.
    """

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: Dict[str, Callable[..., Any]] = {}

    def register(self, name: str, factory: Callable[..., Any], *, replace: bool = False) -> Callable[..., Any]:
        """Register ``factory`` under ``name``; a duplicate name raises ``ValueError``."""
        key = normalise(name)
        if key in self._entries and not replace:
            raise InputError(
                f"a {self.kind} named {key!r} is already registered "
                f"({self._entries[key]!r}); choose another name or pass replace=True"
            )
        if not callable(factory):
            raise InputTypeError(f"a {self.kind} factory must be callable, got {factory!r}")
        self._entries[key] = factory
        return factory

    def unregister(self, name: str) -> None:
        """Remove ``name``; unknown names raise ``KeyError``."""
        key = normalise(name)
        self._lookup(key)
        del self._entries[key]

    def _lookup(self, key: str) -> Callable[..., Any]:
        try:
            return self._entries[key]
        except KeyError:
            close = difflib.get_close_matches(key, self._entries, n=3)
            hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
            raise UnknownNameError(
                f"unknown {self.kind} {key!r}.{hint} Available: {', '.join(self.available())}"
            ) from None

    def factory(self, name: str) -> Callable[..., Any]:
        """The factory registered under ``name``."""
        return self._lookup(normalise(name))

    def get(self, name: str, **kwargs: Any) -> Any:
        """Build the entry ``name`` with keyword arguments ``kwargs``."""
        return self.factory(name)(**kwargs)

    def available(self) -> List[str]:
        """Registered names, sorted."""
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        return normalise(name) in self._entries
