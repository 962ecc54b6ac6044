"""Order-to-cash matching rules (process_apis.reconciliation), no database."""

from __future__ import annotations

import csv
import datetime as dt
import random

import pytest

from process_apis.reconciliation import (
    OrderRow,
    PaymentRow,
    Reconciliation,
    digits_form,
    name_form,
    reconcile,
    write_csv,
)

T0 = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)


def order(sid: str, number: str | None = None, *, total: int = 1000, currency: str = "EUR",
          status: str = "paid", at: dt.datetime | None = T0, golden: str | None = None,
          email: str | None = None) -> OrderRow:  # fmt: skip
    return OrderRow(f"ord_{sid}", sid, number, status, total, currency, at, golden, email)


def pay(sid: str, *, amount: int = 1000, currency: str = "EUR", ref: str | None = None,
        status: str = "succeeded", kind: str = "payment", at: dt.datetime | None = T0,
        golden: str | None = None, email: str | None = None, charge: str | None = None
        ) -> PaymentRow:  # fmt: skip
    return PaymentRow(f"pay_{sid}", sid, kind, status, amount, currency, at, ref, charge,
                      golden, email)  # fmt: skip


def categories(result: Reconciliation) -> dict[str, list[tuple[str, str]]]:
    """category -> list of (order source id, payment ids) per finding."""
    out: dict[str, list[tuple[str, str]]] = {}
    for f in result.findings:
        out.setdefault(f.category, []).append((f.order_source_id, f.payment_source_ids))
    return out


# ------------------------------------------------------------------ references


@pytest.mark.parametrize(("value", "name", "digits"), [
    ("#1001", "1001", "1001"),
    ("1001", "1001", "1001"),
    (" #1001 ", "1001", "1001"),
    ("ORD-1042", "ord-1042", "1042"),
    ("order#1042", "order#1042", "1042"),
    ("SO_001042", "so_001042", "1042"),
    ("ord 7", "ord 7", "7"),
    ("INV-2026-7", "inv-2026-7", None),  # two numbers: not a prefixed number
    ("abc", "abc", None),
    ("", None, None),
    (None, None, None),
])  # fmt: skip
def test_reference_normalisation(value, name, digits):
    assert name_form(value) == name
    assert digits_form(value) == digits


@pytest.mark.parametrize("ref", ["450789469", "ord_450789469", "#1001", "1001", "ORD-1001",
                                 "order-001001", " #1001 ", "ord_1001"])
def test_every_reference_form_matches_the_order(ref):
    result = reconcile([order("450789469", "#1001")], [pay("ch_1", ref=ref)])
    assert categories(result) == {"matched_by_reference": [("450789469", "ch_1")]}
    assert result.counts["matched_by_reference"] == 1
    assert result.mismatch_rate == 0


def test_source_id_wins_over_a_number_and_ambiguous_numbers_match_nothing():
    orders = [order("1001", "#5"), order("2002", "#1001"), order("3", "A-7"), order("4", "B-7")]
    payments = [pay("ch_a", ref="1001"),  # source id of the first, number of the second
                pay("ch_b", ref="ORD-7")]  # digits form 7 is on two orders: ambiguous
    result = reconcile(orders, payments)
    cats = categories(result)
    assert ("1001", "ch_a") in cats["matched_by_reference"]
    assert cats["orphan_payment"] == [("", "ch_b")]
    orphan = next(f for f in result.findings if f.category == "orphan_payment")
    assert "'ORD-7' matches no single order" in orphan.detail


# ------------------------------------------------------------------ categories


def test_every_category():
    orders = [
        order("o-ref", "#1"),  # paid by reference
        order("o-cus", "#2", golden="g1", at=T0),  # paid by customer+amount+currency
        order("o-amt", "#3", total=1000),  # reference, wrong amount
        order("o-cur", "#4", currency="EUR"),  # reference, wrong currency
        order("o-none", "#5", status="paid"),  # paid, nothing found
        order("o-pending", "#6", status="pending"),  # not due: no problem
        order("o-part", "#7", total=1000, status="partially_paid"),  # part-paid is fine
        order("o-split", "#8", total=1000),  # two charges add up
    ]
    payments = [
        pay("ch_ref", ref="#1"),
        pay("ch_cus", golden="g1", at=T0 + dt.timedelta(hours=5)),
        pay("ch_amt", ref="ORD-3", amount=900),
        pay("ch_cur", ref="4", currency="USD"),
        pay("ch_orphan", amount=4242),
        pay("ch_badref", ref="ORD-999"),
        pay("ch_failed", ref="#5", status="failed"),  # not settled: does not pay #5
        pay("ch_part", ref="#7", amount=400),
        pay("ch_s1", ref="#8", amount=600), pay("ch_s2", ref="#8", amount=400),
        pay("re_ok", kind="refund", charge="ch_ref", amount=100),
        pay("re_orphan", kind="refund", charge="ch_orphan", amount=4242),
        pay("re_unknown", kind="refund", charge="ch_gone", amount=10),
        pay("re_failed_charge", kind="refund", charge="ch_failed", amount=10),
        pay("re_dead", kind="refund", charge="ch_gone", status="failed"),  # ignored
    ]
    result = reconcile(orders, payments)
    cats = categories(result)
    assert cats["matched_by_reference"] == [("o-part", "ch_part"), ("o-ref", "ch_ref"),
                                            ("o-split", "ch_s1 ch_s2")]  # fmt: skip
    assert cats["matched_by_customer"] == [("o-cus", "ch_cus")]
    assert cats["amount_mismatch"] == [("o-amt", "ch_amt")]
    assert cats["currency_mismatch"] == [("o-cur", "ch_cur")]
    assert cats["unmatched_order"] == [("o-none", "")]
    assert cats["orphan_payment"] == [("", "ch_badref"), ("", "ch_orphan")]
    assert cats["refund_without_order"] == [("", "re_failed_charge"), ("", "re_orphan"),
                                            ("", "re_unknown")]  # fmt: skip
    c = result.counts
    assert (c["orders"], c["orders_considered"], c["orders_not_due"]) == (8, 7, 1)
    assert (c["payments"], c["payments_not_settled"], c["refunds"], c["refunds_matched"]) == (
        10, 1, 5, 1)
    assert result.problems == 1 + 1 + 1 + 2 + 3
    assert result.mismatch_rate == round(8 / 7, 6)
    amt = next(f for f in result.findings if f.category == "amount_mismatch")
    assert (amt.order_total_minor, amt.payment_amount_minor) == (1000, 900)
    assert "-100" in amt.detail
    cur = next(f for f in result.findings if f.category == "currency_mismatch")
    assert (cur.order_currency, cur.payment_currency) == ("EUR", "USD")


def test_partially_paid_rejects_overpayment_and_paid_rejects_underpayment():
    result = reconcile([order("a", "#1", status="partially_paid"), order("b", "#2")],
                       [pay("x", ref="#1", amount=1500), pay("y", ref="#2", amount=400)])
    assert [f.category for f in result.findings] == ["amount_mismatch", "amount_mismatch"]


def test_refund_with_its_own_order_reference_is_matched():
    result = reconcile([order("a", "#1")], [pay("re", kind="refund", ref="#1", charge="zzz")])
    assert result.counts["refunds_matched"] == 1
    assert result.counts["refund_without_order"] == 0


def test_a_cancelled_order_with_a_payment_is_matched_not_orphaned():
    result = reconcile([order("a", "#1", status="cancelled")], [pay("x", ref="#1")])
    assert categories(result) == {"matched_by_reference": [("a", "x")]}


# ------------------------------------------------------------ the customer pass


def test_customer_pass_needs_customer_currency_amount_and_window():
    orders = [order("o1", golden="g1")]
    window = dt.timedelta(hours=72)
    cases = {
        "other customer": pay("p", golden="g2"),
        "other currency": pay("p", golden="g1", currency="USD"),
        "other amount": pay("p", golden="g1", amount=999),
        "too late": pay("p", golden="g1", at=T0 + window + dt.timedelta(seconds=1)),
        "too early": pay("p", golden="g1", at=T0 - window - dt.timedelta(seconds=1)),
        "no time": pay("p", golden="g1", at=None),
    }
    for why, payment in cases.items():
        result = reconcile(orders, [payment], window=window)
        assert result.counts["matched_by_customer"] == 0, why
        assert result.counts["orphan_payment"] == 1, why
    for at in (T0 + window, T0 - window):  # the window is inclusive, on both sides
        assert reconcile(orders, [pay("p", golden="g1", at=at)],
                         window=window).counts["matched_by_customer"] == 1


def test_customer_pass_falls_back_to_email_only_without_golden_links():
    o = order("o1", email="ann@example.com")
    assert reconcile([o], [pay("p", email="ANN@example.com ")]).counts[
        "matched_by_customer"] == 1
    # both linked, to different golden customers: the e-mail does not override that
    linked = order("o1", golden="g1", email="ann@example.com")
    assert reconcile([linked], [pay("p", golden="g2", email="ann@example.com")]).counts[
        "matched_by_customer"] == 0
    # one side linked, the other not: the e-mail decides
    assert reconcile([linked], [pay("p", email="ann@example.com")]).counts[
        "matched_by_customer"] == 1


def test_unresolvable_reference_still_gets_the_customer_pass():
    result = reconcile([order("o1", "#1", golden="g1")],
                       [pay("p", ref="ORD-77", golden="g1")])
    assert categories(result) == {"matched_by_customer": [("o1", "p")]}


def test_an_order_referenced_by_a_charge_is_not_offered_to_the_customer_pass():
    result = reconcile([order("o1", "#1", golden="g1")],
                       [pay("p1", ref="#1", golden="g1"), pay("p2", golden="g1")])
    assert categories(result) == {"matched_by_reference": [("o1", "p1")],
                                  "orphan_payment": [("", "p2")]}  # fmt: skip


def test_closest_in_time_wins_and_each_side_matches_once():
    h = dt.timedelta(hours=1)
    orders = [order("o-a", golden="g", at=T0), order("o-b", golden="g", at=T0 + 10 * h)]
    payments = [pay("p-1", golden="g", at=T0 + 9 * h),  # 1 h from o-b, 9 h from o-a
                pay("p-2", golden="g", at=T0 + 2 * h),  # 2 h from o-a
                pay("p-3", golden="g", at=T0 + 3 * h)]  # 3 h from o-a: o-a is taken
    result = reconcile(orders, payments)
    assert categories(result) == {"matched_by_customer": [("o-a", "p-2"), ("o-b", "p-1")],
                                  "orphan_payment": [("", "p-3")]}  # fmt: skip


def test_ties_break_by_order_then_payment_source_id():
    h = dt.timedelta(hours=1)
    orders = [order("o-b", golden="g", at=T0 + h), order("o-a", golden="g", at=T0 - h)]
    payments = [pay("p-z", golden="g", at=T0), pay("p-y", golden="g", at=T0)]
    result = reconcile(orders, payments)
    assert categories(result)["matched_by_customer"] == [("o-a", "p-y"), ("o-b", "p-z")]


def test_matching_is_idempotent_and_order_independent():
    rng = random.Random(7)
    orders = [order(f"o{i:03}", f"#{i}", total=100 * (i % 5 + 1), golden=f"g{i % 7}",
                    at=T0 + dt.timedelta(hours=i % 11),
                    status=rng.choice(["paid", "paid", "pending", "refunded"]))
              for i in range(60)]  # fmt: skip
    payments = [pay(f"p{i:03}", amount=100 * (i % 5 + 1), golden=f"g{i % 7}",
                    ref=f"ORD-{i}" if i % 3 == 0 else None,
                    at=T0 + dt.timedelta(hours=(i * 7) % 13))
                for i in range(70)]  # fmt: skip
    payments += [pay(f"r{i}", kind="refund", charge=f"p{i * 5:03}", amount=1) for i in range(9)]
    first = reconcile(orders, payments)
    for _ in range(5):
        o, p = orders[:], payments[:]
        rng.shuffle(o)
        rng.shuffle(p)
        again = reconcile(o + o[:3], p)  # duplicates too
        assert again.findings == first.findings
        assert again.counts == first.counts
    assert first.counts["matched_by_customer"] > 0 and first.counts["matched_by_reference"] > 0


# -------------------------------------------------------------- range and rate


def test_date_range_reports_inside_and_matches_across_the_edge():
    start, end = T0, T0 + dt.timedelta(days=1)
    orders = [order("edge", golden="g", at=start - dt.timedelta(hours=1)),
              order("inside", "#2", at=start + dt.timedelta(hours=1)),
              order("after", "#3", at=end + dt.timedelta(hours=1))]  # fmt: skip
    payments = [pay("p-edge", golden="g", at=start + dt.timedelta(hours=1)),
                pay("p-in", ref="#2", at=start + dt.timedelta(hours=2)),
                pay("re-out", kind="refund", charge="ch_before_range", at=start)]
    result = reconcile(orders, payments, report_from=start, report_until=end)
    assert categories(result) == {"matched_by_reference": [("inside", "p-in")]}
    c = result.counts
    assert (c["orders"], c["payments"], c["orphan_payment"], c["unmatched_order"]) == (1, 2, 0, 0)
    assert c["refunds_unjudged"] == 1 and c["refund_without_order"] == 0


def test_rate_with_nothing_considered():
    assert reconcile([], []).mismatch_rate == 0
    assert reconcile([], [pay("x")]).mismatch_rate == 1.0


def test_csv_has_every_finding_and_no_personal_data(tmp_path):
    result = reconcile([order("o1", "#1", email="ann@example.com"), order("o2", "#2")],
                       [pay("p1", ref="#1", email="ann@example.com"), pay("p9", amount=5)])
    now = dt.datetime(2026, 3, 1, 8, 30, tzinfo=dt.UTC)
    first = write_csv(result, tmp_path, now=now)
    second = write_csv(result, tmp_path, now=now)
    assert first.name == "reconciliation-20260301T083000Z.csv"
    assert second.name == "reconciliation-20260301T083000Z-2.csv"
    rows = list(csv.DictReader(first.open()))
    assert [r["category"] for r in rows] == ["matched_by_reference", "unmatched_order",
                                             "orphan_payment"]  # fmt: skip
    assert rows[0]["order_number"] == "#1" and rows[0]["payment_amount_minor"] == "1000"
    assert "example.com" not in first.read_text()
    assert not list(tmp_path.glob(".*.tmp"))
