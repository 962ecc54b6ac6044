"""Task retry policy: only errors marked retryable are retried."""

import pytest
from prefect.states import Completed, Failed

from interchange import errors
from interchange.runtime import retry_if_retryable


@pytest.mark.parametrize(
    ("exc", "retry"),
    [
        (errors.SourceServerError("5xx", status_code=503), True),
        (errors.SourceRateLimited("429", retry_after=1.0, status_code=429), True),
        (errors.SourceConnectError("reset"), True),
        (errors.StoreError("locked"), True),
        (errors.SourceClientError("400", status_code=400), False),
        (errors.SourceAuthError("401", status_code=401), False),
        (errors.DataQualityError("too many invalid"), False),
        (errors.SchemaError("bad record"), False),
        (ValueError("a bug"), False),
    ],
)
def test_retry_only_retryable(exc, retry):
    assert retry_if_retryable(None, None, Failed(data=exc)) is retry


def test_completed_state_is_not_retried():
    assert retry_if_retryable(None, None, Completed(data=1)) is False
