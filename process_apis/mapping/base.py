"""What every mapper returns: canonical records plus the rejects and why."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

T = TypeVar("T", bound=BaseModel)


@dataclass
class Rejected:
    source_id: str
    raw: dict[str, Any]
    failed_rules: list[dict[str, Any]]


@dataclass
class MapResult(Generic[T]):
    records: list[T] = field(default_factory=list)
    raws: list[dict[str, Any]] = field(default_factory=list)  # raws[i] produced records[i]
    rejected: list[Rejected] = field(default_factory=list)
