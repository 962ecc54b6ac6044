"""The quality gate inside a real sync: Shopify sandbox -> sync-commerce on Prefect.

The run publishes a quality report (Prefect artifact ``quality-shopify`` and a file
under INTERCHANGE_HOME/reports), linked from the run summary; its counts match the
hub and the quarantine, its referential section lists the orders whose customer is in
the quarantine - landed, not dropped - and it carries no personal data.
"""

from __future__ import annotations

import re
import secrets

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    ArtifactFilterKey,
)
from sqlmodel import select

from flows.sync_commerce import SyncCommerceParams, sync_commerce
from interchange import vaultdev
from interchange.errors import DataQualityError
from interchange.store import session_scope
from process_apis.canonical.models import Order, QuarantineRecord
from process_apis.quality.referential import ORDER_CUSTOMER


def artifacts(key, flow_run_id):
    with get_client(sync_client=True) as client:
        return client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key]),
                                           flow_run_id=ArtifactFilterFlowRunId(
                                               any_=[flow_run_id])))


@pytest.fixture
def shop(sync_hub, tmp_path, vault, monkeypatch, fresh_shopify, prefect_server):
    shop = fresh_shopify
    path = f"interchange/sources/shopify-{secrets.token_hex(4)}"
    vaultdev.seed(vault.addr, vault.root_token, {path: {"access_token": shop.token}})
    monkeypatch.setenv("INTERCHANGE_VAULT_ADDR", vault.addr)
    monkeypatch.setenv("INTERCHANGE_VAULT_TOKEN", vault.root_token)
    monkeypatch.setenv("INTERCHANGE_HOME", str(tmp_path / "home"))
    (tmp_path / "sources.yaml").write_text(
        f"sources:\n  shopify:\n    base_url: {shop.url}\n    vault_path: {path}\n"
        "    rate_limit_per_second: 50\n    burst: 20\n    page_size: 100\n"
        f"    options: {{api_version: \"{shop.version}\"}}\n")
    return shop


def test_a_sync_publishes_its_quality_report(shop, sync_hub, tmp_path):
    state = sync_commerce(SyncCommerceParams(mode="full"), return_state=True)
    summary, run_id = state.result(), state.state_details.flow_run_id

    with session_scope(sync_hub) as s:
        quarantined = s.exec(select(QuarantineRecord)).all()
        bad_customers = {q.source_id for q in quarantined if q.entity == "customer"}
        orphans = sorted(o.source_id for o in s.exec(select(Order)).all()
                         if o.customer_source_id in bad_customers)
    passed = sum(summary[s]["inserted"] for s in
                 ("customers", "products", "orders", "inventory_levels"))
    assert len(quarantined) > 0 and orphans  # the seed has broken customers with orders

    [report] = artifacts("quality-shopify", run_id)
    markdown = report.data
    assert "# Data quality: shopify" in markdown
    assert (f"{passed + len(quarantined)} records validated, {passed} passed, "
            f"{len(quarantined)} quarantined") in markdown
    # Orders of quarantined customers are landed and reported as orphans.
    assert (f"| `{ORDER_CUSTOMER}` | {summary['orders']['inserted']} | {len(orphans)} | "
            f"customer quarantined: {len(orphans)} |") in markdown
    assert f"| customers | customer | 1 | {summary['customers']['read']} |" in markdown
    assert "| customers | `phone.e164` |" in markdown
    # (source_id, check) pairs only: no e-mail addresses, phone numbers or payloads
    assert not re.search(r"\w@\w", markdown) and "example.com" not in markdown
    assert not any(q.raw.get("phone") and q.raw["phone"] in markdown for q in quarantined)

    [run_summary] = artifacts("sync-shopify-summary", run_id)
    assert f"{len(orphans)} referential orphans; report: artifact `quality-shopify`" in (
        run_summary.data)
    assert f"/artifacts/artifact/{report.id}" in run_summary.data  # a link to the report

    files = list((tmp_path / "home" / "reports").glob("quality-shopify-*.md"))
    assert len(files) == 1 and files[0].read_text() == markdown


def test_a_batch_over_its_threshold_fails_the_run_and_still_reports(shop, sync_hub):
    state = sync_commerce(SyncCommerceParams(mode="full", streams=["customers"],
                                             max_invalid_ratio=0.01), return_state=True)
    assert state.is_failed()  # what the failed-run automation (interchange.alerts) sees
    with pytest.raises(DataQualityError):
        state.result()
    with session_scope(sync_hub) as s:
        assert s.exec(select(QuarantineRecord)).all()  # the bad records are kept
    [report] = artifacts("quality-shopify", state.state_details.flow_run_id)
    assert "**The run failed its quality gate:**" in report.data
    assert "they are quarantined and the batch was not loaded" in report.data
