"""Prefect runtime helpers shared by every flow: retry conditions, durations."""

from __future__ import annotations

from typing import Any

from interchange.errors import is_retryable


def retry_if_retryable(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect ``retry_condition_fn``: retry only errors marked ``retryable``.

    A 4xx from a source, a schema error or a data-quality failure will fail the same
    way again, so retrying them only delays the alert.
    """
    try:
        state.result()
    except Exception as exc:  # noqa: BLE001 - we inspect whatever the task raised
        return is_retryable(exc)
    return False
