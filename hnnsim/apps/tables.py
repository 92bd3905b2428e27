"""Plain-text tables for the applications' reports."""

from __future__ import annotations

from typing import List


def format_table(rows: List[List[str]], header: List[str]) -> str:
    """Left-aligned columns two spaces apart, under a header and a rule."""
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
    fmt = "  ".join("{:<%d}" % w for w in widths)
    return "\n".join([fmt.format(*header), fmt.format(*["-" * w for w in widths])] + [fmt.format(*r) for r in rows])
