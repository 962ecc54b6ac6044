"""Data quality: a Great Expectations suite per canonical entity, run once per batch."""

from process_apis.quality.suites import BatchReport, validate_batch

__all__ = ["BatchReport", "validate_batch"]
