"""Source record -> canonical record, one module per source."""

from process_apis.mapping.base import MapResult, Rejected

__all__ = ["MapResult", "Rejected"]
