"""Data quality: the checks per canonical entity (``expectations``), their Great
Expectations suites run once per batch (``suites``), the end-of-run referential pass
(``referential``) and the per-run quality report (``report``)."""

from process_apis.quality import referential
from process_apis.quality.expectations import EXPECTATIONS
from process_apis.quality.report import RunQuality
from process_apis.quality.suites import BatchReport, validate_batch

__all__ = ["EXPECTATIONS", "BatchReport", "RunQuality", "referential", "validate_batch"]
