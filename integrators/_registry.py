"""A name-keyed registry, one instance per kind (integrators, systems).

Names are case-insensitive and ``_``/``-``/space are equivalent, so ``"two-body"``,
``"two_body"`` and ``"TwoBody"`` all find the same entry only when registered under a
name that normalises the same way (``"TwoBody"`` normalises to ``"twobody"``).

Each entry is a typed :class:`Entry`: its name, the factory that builds the object, what
callers need to know before building one (``separable``, ``defaults``) and, for an entry
that is one fixed object (a learned model), that object.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional

from .errors import InputError, InputTypeError, UnknownNameError


def normalise(name: str) -> str:
    """Canonical registry key: lower case, ``_`` and spaces become ``-``."""
    if not isinstance(name, str) or not name.strip():
        raise InputTypeError(f"a registry name must be a non-empty string, got {name!r}")
    return name.strip().lower().replace("_", "-").replace(" ", "-")


@dataclass(frozen=True)
class Entry:
    """One registered name.

    Attributes
    ----------
    name : str
        The normalised name.
    factory : callable
        ``factory(**parameters)`` builds the object.
    separable : bool
        Systems: whether H = T(p) + V(q). Integrators: whether they need such an H.
    defaults : mapping
        Parameter names and default values (empty where there are none).
    instance : object or None
        The object itself when the entry stands for one fixed object (a learned model).
    """

    name: str
    factory: Callable[..., Any]
    separable: bool = False
    defaults: Mapping[str, Any] = field(default_factory=dict)
    instance: Any = None


class Registry:
    """Typed entries keyed by a unique name.

    Parameters
    ----------
    kind : str
        What is registered (``"integrator"``, ``"system"``); used in error messages.
    """

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: Dict[str, Entry] = {}

    def register(self, name: str, factory: Callable[..., Any], *, separable: Optional[bool] = None,
                 defaults: Optional[Mapping[str, Any]] = None, instance: Any = None,
                 replace: bool = False) -> Callable[..., Any]:
        """Register ``factory`` under ``name``; a duplicate name raises ``ValueError``.

        ``separable`` and ``defaults`` default to the factory's class attributes
        (``separable`` or ``requires_separable``; ``defaults``), read once here.
        """
        key = normalise(name)
        if key in self._entries and not replace:
            raise InputError(
                f"a {self.kind} named {key!r} is already registered "
                f"({self._entries[key].factory!r}); choose another name or pass replace=True"
            )
        if not callable(factory):
            raise InputTypeError(f"a {self.kind} factory must be callable, got {factory!r}")
        if separable is None:
            separable = bool(getattr(factory, "separable", getattr(factory, "requires_separable", False)))
        if defaults is None:
            defaults = dict(getattr(factory, "defaults", {}) or {})
        self._entries[key] = Entry(key, factory, bool(separable), dict(defaults), instance)
        return factory

    def unregister(self, name: str) -> None:
        """Remove ``name``; unknown names raise ``KeyError``."""
        key = normalise(name)
        self.entry(key)
        del self._entries[key]

    def entry(self, name: str) -> Entry:
        """The :class:`Entry` registered under ``name``."""
        key = normalise(name)
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
        return self.entry(name).factory

    def get(self, name: str, **kwargs: Any) -> Any:
        """Build the object registered under ``name`` with ``kwargs``."""
        return self.entry(name).factory(**kwargs)

    def available(self) -> List[str]:
        """Registered names, sorted."""
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        try:
            return normalise(name) in self._entries
        except TypeError:
            return False
