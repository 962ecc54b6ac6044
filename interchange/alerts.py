"""Alerting as code: a notification block and four Prefect automations.

Interchange alerts on flow runs through Prefect's own automations (they work in the
open-source server), so nothing here runs at flow time. This module owns creating
them, idempotently, on the server that ``PREFECT_API_URL`` points at:

* a **notification block** (:func:`ensure_notification_block`):

  - ``webhook`` — a ``CustomWebhookNotificationBlock`` that POSTs a JSON object::

        {"alert": "failed" | "slow", "flow": ..., "flow_run": ..., "flow_run_id": ...,
         "state": ..., "message": ..., "link": ..., "tags": [...],
         "automation": ..., "occurred": ..., "subject": ...}

    (the local stack points it at :mod:`interchange.receiver`; any HTTP endpoint
    that takes JSON works, e.g. an incident tool's generic webhook);
  - ``slack`` — a ``SlackWebhook`` block; the same facts as readable text;
  - ``email`` — **not available in Prefect core**: ``EmailServerCredentials`` lives
    in the ``prefect-email`` collection and is a credentials block, not a
    notification block, so ``SendNotification`` cannot use it. Point the webhook at
    a mail relay, or create a core ``SendgridEmail`` block by hand and pass its id
    to :func:`ensure_automations`. Asking for ``email`` raises ``ConfigError``.

* three **automations** (:func:`ensure_automations`), replaced in place by name:

  - ``<prefix>: failed runs`` — reactive: any ``prefect.flow-run.Failed``,
    ``.Crashed`` or ``.TimedOut`` event notifies, once per flow run;
  - ``<prefix>: slow runs`` — proactive: after ``prefect.flow-run.Running``, expect
    a final state (Completed, Failed, Crashed, Cancelled, TimedOut) within
    ``slow_after_seconds``; if none arrives, notify (once per flow run). Prefect
    evaluates proactive triggers every 5 s and refuses windows under 10 s, so an
    alert arrives roughly 0–10 s after the threshold;
  - ``<prefix>: schema drift`` — reactive: an ``interchange.schema.drift`` event
    (emitted by a sync when a source stream's field set changes) notifies with the
    source, stream and the added / missing / retyped fields;
  - ``<prefix>: reconciliation mismatch`` — reactive: an
    ``interchange.reconciliation.mismatch`` event (emitted by ``reconcile-orders`` when
    the order-to-cash mismatch rate is above its threshold) notifies with the rate,
    the threshold and the counts per category (no record data).

The notification text is a Jinja template rendered by the *server* when the
automation fires (``flow``, ``flow_run``, ``event`` and ``automation`` are in
scope); values are JSON-escaped with ``tojson`` so run names and error messages
with quotes cannot break the webhook body.

Deploy steps and the CLI call :func:`apply_from_settings`, driven by
``INTERCHANGE_ALERT_*`` variables (see :class:`AlertSettings`)::

    PREFECT_API_URL=... INTERCHANGE_ALERT_URL=http://127.0.0.1:8765/alerts \\
        python -m interchange.alerts
"""

from __future__ import annotations

import sys
from datetime import timedelta
from typing import Literal
from urllib.parse import urlparse
from uuid import UUID

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from interchange.errors import ConfigError

__all__ = [
    "FAILED_EVENTS",
    "FINAL_EVENTS",
    "MIN_SLOW_SECONDS",
    "AlertKind",
    "AlertSettings",
    "apply_from_settings",
    "automation_names",
    "build_automations",
    "ensure_automations",
    "ensure_notification_block",
    "reconciliation_automation_name",
]

AlertKind = Literal["webhook", "slack", "email"]

FAILED_EVENTS = frozenset(
    {"prefect.flow-run.Failed", "prefect.flow-run.Crashed", "prefect.flow-run.TimedOut"}
)
FINAL_EVENTS = frozenset(
    {
        "prefect.flow-run.Completed",
        "prefect.flow-run.Failed",
        "prefect.flow-run.Crashed",
        "prefect.flow-run.Cancelled",
        "prefect.flow-run.TimedOut",
    }
)
MIN_SLOW_SECONDS = 10  # Prefect's floor for proactive trigger windows

# --- notification templates (rendered server-side by the SendNotification action) ---
#
# Jinja expressions; each prefers the object read from the API and falls back to the
# triggering event's own labels, which are always there.
_FLOW = "(flow.name or event.resource_in_role['flow'].name or none)"
_RUN = "(flow_run.name or event.resource.name or none)"
_STATE = "(flow_run.state.name or event.resource['prefect.state-name'] or none)"
_MESSAGE = "(flow_run.state.message or event.resource['prefect.state-message'] or none)"
_LINK = "(flow_run|ui_url if flow_run.id else none)"


def _headline(alert: str, slow_after_seconds: int) -> str:
    """A Jinja string expression: what happened, in a few words."""
    if alert == "failed":
        return f"'is ' ~ {_STATE}"
    return f"'still running after {slow_after_seconds} s'"


def _subject(alert: str, slow_after_seconds: int) -> str:
    """Jinja expression for the one-line subject."""
    return (
        f"'Interchange: ' ~ {_FLOW} ~ ' run ' ~ {_RUN} ~ ' ' ~ "
        f"{_headline(alert, slow_after_seconds)}"
    )


def _json_body(alert: str, slow_after_seconds: int) -> str:
    """Template rendering the webhook's JSON object (every value through ``tojson``)."""
    fields = {
        "flow": _FLOW,
        "flow_run": _RUN,
        "flow_run_id": "(flow_run.id|string if flow_run.id else none)",
        "state": _STATE,
        "message": _MESSAGE,
        "link": _LINK,
        "tags": "(flow_run.tags or [])",
        "subject": f"({_subject(alert, slow_after_seconds)})",
        "automation": "automation.name",
        "occurred": "(event.occurred.isoformat() if event.occurred else none)",
    }
    parts = [f'"alert": "{alert}"']
    if alert == "slow":
        parts.append(f'"slow_after_seconds": {slow_after_seconds}')
    parts += [f'"{key}": {{{{ {expr}|tojson }}}}' for key, expr in fields.items()]
    return "{" + ", ".join(parts) + "}"


def _text_body(alert: str, slow_after_seconds: int) -> str:
    """Template for chat / e-mail blocks: a few readable lines."""
    return (
        f"{{{{ {_FLOW} }}}} run {{{{ {_RUN} }}}} {{{{ {_headline(alert, slow_after_seconds)} }}}}\n"
        f"State: {{{{ {_STATE} }}}}\n"
        f"{{% if {_MESSAGE} %}}Message: {{{{ {_MESSAGE} }}}}\n{{% endif %}}"
        f"Flow run: {{{{ {_LINK} or 'n/a' }}}}\n"
        "Tags: {{ (flow_run.tags or [])|join(', ') }}\n"
        "Automation: {{ automation.name }}"
    )


# --- the notification block ---


def _check_url(url: str | None, kind: str) -> str:
    if not url:
        raise ConfigError(f"a {kind} alert needs a URL (INTERCHANGE_ALERT_URL)")
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ConfigError(
            f"the {kind} alert URL must be an http(s) URL, got scheme {parsed.scheme!r}"
        )
    return url


def ensure_notification_block(
    *,
    kind: AlertKind = "webhook",
    url: str | None,
    block_name: str = "interchange-alerts",
    emails: list[str] | None = None,
) -> UUID:
    """Create or overwrite the notification block ``block_name``; return its document id.

    ``webhook`` posts the JSON alert described in the module docstring to ``url``;
    ``slack`` posts text to a Slack incoming-webhook ``url``. ``email`` is not
    supported by Prefect core (see the module docstring) and raises ``ConfigError``.
    """
    from prefect.blocks.notifications import CustomWebhookNotificationBlock, SlackWebhook

    if kind == "webhook":
        block = CustomWebhookNotificationBlock(
            name=block_name,
            url=_check_url(url, kind),
            method="POST",
            # The whole request body is the rendered notification body, which our
            # automations render as JSON (see _json_body).
            form_data="{{body}}",
            headers={"Content-Type": "application/json"},
            timeout=10,
        )
    elif kind == "slack":
        block = SlackWebhook(url=SecretStr(_check_url(url, kind)), notify_type="failure")
    elif kind == "email":
        raise ConfigError(
            "email alerts are not available in Prefect core 3.9: EmailServerCredentials is "
            "in the prefect-email collection and is not a notification block. Use "
            f"kind='webhook' pointing at a mail relay (recipients: {emails or []}), or "
            "create a SendgridEmail block and pass its id to ensure_automations()"
        )
    else:
        raise ConfigError(f"unknown alert kind {kind!r} (webhook, slack or email)")
    return block.save(block_name, overwrite=True, _sync=True)  # type: ignore[call-arg]


# --- the automations ---


def automation_names(name_prefix: str = "interchange") -> tuple[str, str, str, str]:
    """The names of the (failed, slow, drift, reconciliation) automations."""
    return (f"{name_prefix}: failed runs", f"{name_prefix}: slow runs",
            f"{name_prefix}: schema drift", reconciliation_automation_name(name_prefix))


DRIFT_EVENT = "interchange.schema.drift"


def _event_json_body(alert: str, fields: dict[str, str]) -> str:
    """A JSON alert body for an event-triggered automation: ``alert``, the resource, the
    given payload ``fields`` (Jinja expressions), the automation and when it happened."""
    fields = {"resource": "event.resource.id", **fields, "automation": "automation.name",
              "occurred": "(event.occurred.isoformat() if event.occurred else none)"}
    parts = [f'"alert": "{alert}"'] + [f'"{k}": {{{{ {v}|tojson }}}}' for k, v in fields.items()]
    return "{" + ", ".join(parts) + "}"


def _event_automation(*, name: str, description: str, resource: str, event: str,
                      block_id: UUID, subject: str, body: str):  # fmt: skip
    """An automation that notifies once per matching event (drift, reconciliation)."""
    from prefect.automations import AutomationCore, EventTrigger, Posture, SendNotification

    return AutomationCore(
        name=name,
        description=description,
        enabled=True,
        trigger=EventTrigger(
            match={"prefect.resource.id": resource},
            expect={event},
            for_each={"prefect.resource.id"},
            posture=Posture.Reactive,
            threshold=1,
            within=timedelta(0),
        ),
        actions=[SendNotification(block_document_id=block_id, subject=subject, body=body)],
    )


def _drift_body(json_body: bool) -> str:
    """What a schema-drift alert says: which source stream and which fields moved."""
    payload = "event.payload"
    if json_body:
        return _event_json_body("drift", {
            "source": f"{payload}.source",
            "stream": f"{payload}.stream",
            "added": f"({payload}.added or [])",
            "missing": f"({payload}.missing or [])",
            "retyped": f"({payload}.retyped or [])",
        })
    return (
        f"Schema drift in {{{{ {payload}.source }}}}/{{{{ {payload}.stream }}}}\n"
        f"Added: {{{{ ({payload}.added or [])|join(', ') }}}}\n"
        f"Missing: {{{{ ({payload}.missing or [])|join(', ') }}}}\n"
        f"Retyped: {{{{ ({payload}.retyped or [])|join(', ') }}}}"
    )


def _validate_slow(slow_after_seconds: int) -> int:
    if isinstance(slow_after_seconds, bool) or not isinstance(slow_after_seconds, int):
        raise ConfigError(
            f"slow_after_seconds must be a whole number of seconds, got {slow_after_seconds!r}"
        )
    if slow_after_seconds < MIN_SLOW_SECONDS:
        raise ConfigError(
            f"slow_after_seconds must be at least {MIN_SLOW_SECONDS} (Prefect does not "
            f"evaluate proactive triggers over shorter windows), got {slow_after_seconds}"
        )
    return slow_after_seconds


def build_automations(
    *,
    block_id: UUID,
    slow_after_seconds: int = 600,
    name_prefix: str = "interchange",
    match_tags: list[str] | None = None,
    json_body: bool = True,
):
    """The ``AutomationCore`` definitions (failed, slow, drift, reconciliation mismatch),
    without touching a server."""
    from prefect.automations import AutomationCore, EventTrigger, Posture, SendNotification

    slow = _validate_slow(slow_after_seconds)
    failed_name, slow_name, drift_name, _ = automation_names(name_prefix)
    match = {"prefect.resource.id": "prefect.flow-run.*"}
    match_related: dict[str, str | list[str]] = {}
    if match_tags:
        match_related = {
            "prefect.resource.role": "tag",
            "prefect.resource.id": [f"prefect.tag.{t}" for t in match_tags],
        }
    tags_note = f" tagged {', '.join(match_tags)}" if match_tags else ""

    def action(alert: str):
        return SendNotification(
            block_document_id=block_id,
            subject="{{ " + _subject(alert, slow) + " }}",
            body=_json_body(alert, slow) if json_body else _text_body(alert, slow),
        )

    failed = AutomationCore(
        name=failed_name,
        description=f"Notify when a flow run{tags_note} fails, crashes or times out.",
        enabled=True,
        trigger=EventTrigger(
            match=match,
            match_related=match_related,
            expect=set(FAILED_EVENTS),
            for_each={"prefect.resource.id"},
            posture=Posture.Reactive,
            threshold=1,
            within=timedelta(0),
        ),
        actions=[action("failed")],
    )
    slow_automation = AutomationCore(
        name=slow_name,
        description=(
            f"Notify when a flow run{tags_note} is still running {slow} s after it started."
        ),
        enabled=True,
        trigger=EventTrigger(
            match=match,
            match_related=match_related,
            after={"prefect.flow-run.Running"},
            expect=set(FINAL_EVENTS),
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=timedelta(seconds=slow),
        ),
        actions=[action("slow")],
    )
    drift = _event_automation(
        name=drift_name,
        description="Notify when a source's field set changes (new, missing or retyped "
        "fields), as reported by a sync's interchange.schema.drift event.",
        resource="interchange.source.*", event=DRIFT_EVENT, block_id=block_id,
        subject="Interchange: schema drift in {{ event.payload.source }}/"
                "{{ event.payload.stream }}",
        body=_drift_body(json_body),
    )
    return [failed, slow_automation, drift, _reconciliation_automation(block_id, name_prefix,
                                                                        json_body)]


def ensure_automations(
    *,
    block_id: UUID,
    slow_after_seconds: int = 600,
    name_prefix: str = "interchange",
    match_tags: list[str] | None = None,
) -> list[UUID]:
    """Create or replace the failed-runs, slow-runs, schema-drift and reconciliation-mismatch
    automations; return their ids (in that order).

    Idempotent by name: an existing automation with the same name is updated in
    place (its id is kept) and duplicates are deleted, so calling this on every
    deploy leaves exactly one of each. ``block_id`` must be a notification block
    document; a Custom Webhook block gets the JSON body, any other the text body.
    """
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    _validate_slow(slow_after_seconds)
    with get_client(sync_client=True) as client:
        try:
            document = client.read_block_document(block_id)
        except ObjectNotFound as exc:
            raise ConfigError(f"notification block {block_id} does not exist") from exc
        slug = document.block_type.slug if document.block_type else ""
        wanted = build_automations(
            block_id=block_id,
            slow_after_seconds=slow_after_seconds,
            name_prefix=name_prefix,
            match_tags=match_tags,
            json_body=slug == "custom-webhook",
        )
        ids: list[UUID] = []
        for automation in wanted:
            existing = [
                a
                for a in client.read_automations_by_name(automation.name)
                if a.name == automation.name
            ]
            if existing:
                keep, *extra = existing
                client.update_automation(keep.id, automation)
                for duplicate in extra:
                    client.delete_automation(duplicate.id)
                ids.append(keep.id)
            else:
                ids.append(client.create_automation(automation))
        return ids


# --- order-to-cash reconciliation ---

RECONCILIATION_EVENT = "interchange.reconciliation.mismatch"


def reconciliation_automation_name(name_prefix: str = "interchange") -> str:
    """The name of the reconciliation-mismatch automation."""
    return f"{name_prefix}: reconciliation mismatch"


def _reconciliation_body(json_body: bool) -> str:
    """What a mismatch alert says: the rate against its threshold and the counts."""
    payload = "event.payload"
    if json_body:
        return _event_json_body("reconciliation", {
            "rate": f"{payload}.rate",
            "threshold": f"{payload}.threshold",
            "problems": f"{payload}.problems",
            "counts": f"({payload}.counts or {{}})",
            "export": f"{payload}.export",
        })
    return (
        f"Order-to-cash mismatch rate {{{{ {payload}.rate }}}} is above "
        f"{{{{ {payload}.threshold }}}} ({{{{ {payload}.problems }}}} problems)\n"
        f"{{% for k, v in ({payload}.counts or {{}}).items() %}}{{{{ k }}}}: {{{{ v }}}}\n"
        "{% endfor %}"
        f"Export: {{{{ {payload}.export }}}}"
    )


def _reconciliation_automation(block_id: UUID, name_prefix: str, json_body: bool):
    return _event_automation(
        name=reconciliation_automation_name(name_prefix),
        description="Notify when the order-to-cash mismatch rate is above its threshold, "
        "as reported by reconcile-orders' interchange.reconciliation.mismatch event.",
        resource="interchange.reconciliation.*", event=RECONCILIATION_EVENT,
        block_id=block_id,
        subject="Interchange: order-to-cash mismatch rate {{ event.payload.rate }} "
                "above {{ event.payload.threshold }}",
        body=_reconciliation_body(json_body),
    )


# --- settings-driven entry point ---


class AlertSettings(BaseSettings):
    """Alert configuration from ``INTERCHANGE_ALERT_*`` variables.

    ``INTERCHANGE_ALERT_KIND`` (webhook | slack), ``_URL``, ``_SLOW_SECONDS`` (600),
    ``_BLOCK_NAME``, ``_NAME_PREFIX``; list values are JSON, e.g.
    ``INTERCHANGE_ALERT_TAGS='["nightly"]'``.
    """

    model_config = SettingsConfigDict(env_prefix="INTERCHANGE_ALERT_", extra="ignore")

    kind: AlertKind = "webhook"
    url: str | None = Field(None, description="Webhook / Slack URL the alerts go to.")
    slow_seconds: int = Field(600, description="A run still running after this is slow.")
    block_name: str = "interchange-alerts"
    name_prefix: str = "interchange"
    tags: list[str] = Field(default_factory=list, description="Only runs with these tags.")
    emails: list[str] = Field(default_factory=list)


def apply_from_settings() -> list[UUID]:
    """Ensure the block and the automations from ``INTERCHANGE_ALERT_*`` variables."""
    try:
        settings = AlertSettings()
    except ValidationError as exc:
        raise ConfigError(f"invalid INTERCHANGE_ALERT_* settings: {exc}") from exc
    block_id = ensure_notification_block(
        kind=settings.kind,
        url=settings.url,
        block_name=settings.block_name,
        emails=settings.emails or None,
    )
    return ensure_automations(
        block_id=block_id,
        slow_after_seconds=settings.slow_seconds,
        name_prefix=settings.name_prefix,
        match_tags=settings.tags or None,
    )


def _main() -> int:
    try:
        ids = apply_from_settings()
    except ConfigError as exc:
        print(f"interchange.alerts: {exc}", file=sys.stderr)
        return 2
    prefix = AlertSettings().name_prefix
    names = automation_names(prefix)
    for name, automation_id in zip(names, ids, strict=True):
        print(f"automation {name!r}: {automation_id}")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
