"""The end-of-run referential pass on a real hub (SQLite and PostgreSQL).

Orders whose customer or products are not in the hub are landed and reported (never
dropped, never held back), with why: the customer is quarantined, or simply missing.
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlmodel import func, select

from interchange.store import session_scope, utcnow
from process_apis import hub, pipeline
from process_apis.canonical.models import Order
from process_apis.canonical.views import (
    CanonicalCustomer,
    CanonicalOrder,
    CanonicalOrderLine,
    CanonicalPayment,
    CanonicalProduct,
)
from process_apis.mapping.base import Rejected
from process_apis.quality import referential
from process_apis.quality.referential import LINE_PRODUCT, ORDER_CUSTOMER, PAYMENT_CUSTOMER


def load(url, entity, records):
    processed = pipeline.Processed(source=records[0].source, stream=entity, entity=entity,
                                   read=len(records), records=records)
    pipeline.load_batch(processed, mode="full", cursor=None, high_water=None, pages=1,
                        database_url=url)


def customer(source_id, source="shop"):
    return CanonicalCustomer(source=source, source_id=source_id, email=f"{source_id}@ex.com")


def order(source_id, customer_id, *skus):
    lines = tuple(CanonicalOrderLine(source="shop", source_id=f"{source_id}-{i}",
                                     order_source_id=source_id, sku=sku, quantity=1,
                                     unit_price_minor=100, currency="USD")
                  for i, sku in enumerate(skus))
    return CanonicalOrder(source="shop", source_id=source_id, customer_source_id=customer_id,
                          status="paid", total_minor=100 * len(skus), currency="USD",
                          lines=lines)


def product(source, sku):
    return CanonicalProduct(source=source, source_id=f"{source}-{sku}", sku=sku,
                            price_minor=100, currency="USD")


def check(url, since):
    with session_scope(url) as s:
        return referential.check_run(s, "shop", since)


def test_orphans_are_landed_and_reported_with_why(hub_url):
    before = utcnow() - dt.timedelta(seconds=1)
    load(hub_url, "order", [order("old", "nobody", "SKU-1")])  # an earlier run's orphan
    since = utcnow()
    with session_scope(hub_url) as s:  # c2 failed its checks: it is in the quarantine
        hub.quarantine(s, entity="customer", source="shop", stream="customers",
                       rejected=[Rejected("c2", {"id": "c2"}, [{"rule": "phone.e164"}])])
    load(hub_url, "customer", [customer("c1"), customer("c3", source="other")])
    load(hub_url, "product", [product("shop", "SKU-1")])
    load(hub_url, "product", [product("erp", "SKU-2")])  # SKUs match across sources
    load(hub_url, "order", [
        order("o1", "c1", "SKU-1", "SKU-2"),      # all there
        order("o2", "c2", "SKU-9"),               # customer quarantined, product missing
        order("o3", "c3", None),                  # c3 exists, but in another source
        order("o4", None, "SKU-1"),               # a guest order: no customer to check
    ])
    report = check(hub_url, since)

    assert report.checked == {ORDER_CUSTOMER: 3, LINE_PRODUCT: 4, PAYMENT_CUSTOMER: 0}
    assert report.orphans == {ORDER_CUSTOMER: 2, LINE_PRODUCT: 1}
    assert report.reasons == {
        ORDER_CUSTOMER: {"customer quarantined": 1, "customer missing": 1},
        LINE_PRODUCT: {"product missing": 1}}
    assert report.examples == {ORDER_CUSTOMER: ["o2", "o3"], LINE_PRODUCT: ["o2"]}
    assert report.unchecked_lines == 1
    # the hub-wide view also counts the earlier run's orphan ("old")
    assert report.hub_orphans == {ORDER_CUSTOMER: 3, LINE_PRODUCT: 1}
    assert check(hub_url, before).orphans[ORDER_CUSTOMER] == 3
    with session_scope(hub_url) as s:  # every order landed: nothing dropped or held back
        assert s.exec(select(func.count()).select_from(Order)).one() == 5


def test_what_arrives_later_in_the_same_run_is_no_orphan(hub_url):
    since = utcnow()
    # Streams land in any order: the order and the payment before their customer.
    load(hub_url, "order", [order("o1", "c1", "SKU-1")])
    load(hub_url, "payment", [CanonicalPayment(source="shop", source_id="p1", kind="payment",
                                               customer_source_id="c1", amount_minor=100,
                                               currency="USD", status="succeeded")])
    load(hub_url, "product", [product("shop", "SKU-1")])
    load(hub_url, "customer", [customer("c1")])
    assert pipeline.link_orphans("shop", database_url=hub_url) >= 1  # the engine's sweep
    report = check(hub_url, since)
    assert report.total_orphans == 0
    assert report.checked == {ORDER_CUSTOMER: 1, LINE_PRODUCT: 1, PAYMENT_CUSTOMER: 1}
    with session_scope(hub_url) as s:
        assert s.exec(select(Order)).one().customer_id is not None


def test_a_payment_without_its_customer_is_an_orphan(hub_url):
    since = utcnow()
    load(hub_url, "payment", [CanonicalPayment(source="shop", source_id="p9", kind="payment",
                                               customer_source_id="ghost", amount_minor=1,
                                               currency="USD", status="succeeded")])
    report = check(hub_url, since)
    assert report.orphans == {PAYMENT_CUSTOMER: 1}
    assert report.reasons[PAYMENT_CUSTOMER] == {"customer missing": 1}
    with session_scope(hub_url) as s:
        assert referential.hub_orphans(s) == {"shop": {PAYMENT_CUSTOMER: 1}}


@pytest.mark.parametrize("ratio", [0.25])
def test_the_gate_quarantines_and_fails_a_bad_batch(sqlite_url, ratio):
    """Above the threshold: every bad record is quarantined with its checks, nothing of the
    batch is loaded, and DataQualityError fails the run (which the failed-run alert sees)."""
    from interchange.errors import DataQualityError
    from process_apis.canonical.models import Customer, QuarantineRecord

    raws = [{"id": f"cus_{i}", "object": "customer", "created": 1_767_225_600,
             "email": f"u{i}@example.com", "phone": "+14155550132" if i % 2 else "555"}
            for i in range(4)]
    processed = pipeline.process_batch("stripe", "customers", raws)
    assert len(processed.rejected) == 2
    with pytest.raises(DataQualityError, match="2 of 4 records failed"):
        pipeline.load_batch(processed, mode="full", cursor=None, high_water=None, pages=1,
                            max_invalid_ratio=ratio, database_url=sqlite_url)
    with session_scope(sqlite_url) as s:
        assert s.exec(select(func.count()).select_from(Customer)).one() == 0
        rows = s.exec(select(QuarantineRecord)).all()
    assert sorted(r.source_id for r in rows) == ["cus_0", "cus_2"]
    assert all(r.failed_rules for r in rows)
