"""Plain-text tables for people (``--json`` prints the same rows for scripts)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Optional, TextIO


def cell(value: Any, width: Optional[int] = None) -> str:
    """A value as table text: NULL as empty; within ``width``, on one line and cut short
    with "..." (no limit and as it is without one)."""
    text = "" if value is None else str(value)
    if width is None:
        return text
    text = " ".join(text.split())
    return text if len(text) <= width else text[: max(width - 3, 0)] + "..."


def print_table(
    rows: Sequence[Mapping[str, Any]],
    out: TextIO,
    columns: Optional[Sequence[str]] = None,
    max_width: Optional[int] = 60,
) -> None:
    """Rows as aligned columns under a header; ``(no rows)`` when there are none."""
    if not rows:
        out.write("(no rows)\n")
        return
    names = list(columns or rows[0].keys())
    cells = [[cell(row.get(name), max_width) for name in names] for row in rows]
    widths = [max(len(name), *(len(r[i]) for r in cells)) for i, name in enumerate(names)]
    out.write("  ".join(n.ljust(w) for n, w in zip(names, widths)).rstrip() + "\n")
    for row in cells:
        out.write("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() + "\n")
