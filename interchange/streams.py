"""What every system API's ``read_stream`` yields, and the error for a foreign cursor.

The sync engine consumes these the same way for every source: a :class:`Page` of raw,
source-shaped records, an opaque cursor that resumes right after it, the page's
high-water mark (epoch seconds, or an aware datetime for the ERP) and whether more
follows. What a cursor holds is each source's business.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from interchange.errors import ConfigError

__all__ = ["InvalidCursor", "Page"]


@dataclass(frozen=True)
class Page:
    """One page of a stream: ``records`` as the source sent them; ``cursor`` resumes right
    after this page (``None`` only when nothing at all was listed yet); ``high_water``
    is the largest modification mark seen in the page, for the caller's watermark;
    ``has_more`` is False on the last page."""

    records: list[dict[str, Any]]
    cursor: str | None
    high_water: Any
    has_more: bool


class InvalidCursor(ConfigError):
    """A cursor this reader did not issue, or issued for another stream or mode."""
