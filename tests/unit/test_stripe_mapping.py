"""Stripe -> canonical mapping: rules applied, every reject carries its reasons."""

import datetime as dt

from process_apis.mapping.stripe import map_records

CREATED = 1_767_225_600  # 2026-01-01T00:00:00Z


def customer(**kw):
    base = {"id": "cus_1", "object": "customer", "created": CREATED, "email": None,
            "name": "Ada", "phone": None, "address": None, "metadata": {}}
    return {**base, **kw}


def test_customer_is_normalised():
    raw = customer(email="  Ada.Lovelace@Example.COM ", phone="020 7946 0018",
                   address={"country": "GB"}, name="  Ada Lovelace ")
    result = map_records("customers", [raw])
    assert not result.rejected
    (record,) = result.records
    assert record.email == "ada.lovelace@example.com"
    assert record.phone == "+442079460018"  # national number read in the address country
    assert record.country == "GB"
    assert record.name == "Ada Lovelace"
    assert record.source_created_at == dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    assert result.raws == [raw]


def test_default_region_applies_without_address():
    result = map_records("customers", [customer(phone="(415) 555-0132")], default_region="US")
    assert result.records[0].phone == "+14155550132"


def test_reject_lists_every_broken_rule():
    raw = customer(id="cus_bad", email="not-an-email", phone="12345")
    result = map_records("customers", [raw])
    assert not result.records
    (rejected,) = result.rejected
    assert rejected.source_id == "cus_bad"
    assert rejected.raw == raw
    assert {f["rule"] for f in rejected.failed_rules} == {"email.valid", "phone.e164"}


def test_schema_error_is_a_reject_not_a_crash():
    result = map_records("customers", [{"id": "cus_x", "object": "customer"}])
    (rejected,) = result.rejected
    assert rejected.failed_rules[0]["rule"] == "schema"


def test_deleted_customer_maps_to_a_tombstone():
    result = map_records("customers", [{"id": "cus_1", "object": "customer", "deleted": True}])
    assert result.records[0].deleted is True


def test_charge_and_refund_in_minor_units():
    charge = {"id": "ch_1", "object": "charge", "amount": 1999, "currency": "eur",
              "created": CREATED, "status": "succeeded", "customer": "cus_1",
              "payment_intent": "pi_1"}
    refund = {"id": "re_1", "object": "refund", "amount": 500, "currency": "eur",
              "created": CREATED, "charge": "ch_1", "status": "succeeded"}
    (payment,) = map_records("payments", [charge]).records
    assert (payment.kind, payment.amount_minor, payment.currency) == ("payment", 1999, "EUR")
    assert payment.customer_source_id == "cus_1"
    (ref,) = map_records("refunds", [refund]).records
    assert (ref.kind, ref.amount_minor, ref.related_source_id) == ("refund", 500, "ch_1")


def test_bad_currency_is_rejected():
    charge = {"id": "ch_2", "object": "charge", "amount": 10, "currency": "zzz",
              "created": CREATED, "status": "succeeded"}
    (rejected,) = map_records("payments", [charge]).rejected
    assert rejected.failed_rules[0]["rule"] == "money.currency"


def test_charge_names_its_order_from_metadata():
    base = {"object": "charge", "amount": 10, "currency": "usd", "created": CREATED,
            "status": "succeeded"}
    charges = [{**base, "id": "ch_a", "metadata": {"order_id": " ORD-7 ", "channel": "web"}},
               {**base, "id": "ch_b", "metadata": {"order_number": "1042"}},
               {**base, "id": "ch_c", "metadata": {"channel": "app"}},
               {**base, "id": "ch_d"},
               {**base, "id": "ch_e", "metadata": {"order_id": "ann@example.com"}},
               {**base, "id": "ch_f", "metadata": {"order_id": "=HYPERLINK(\"x\")"}}]
    refs = {p.source_id: p.order_ref for p in map_records("payments", charges).records}
    assert refs == {"ch_a": "ORD-7", "ch_b": "1042", "ch_c": None, "ch_d": None,
                    "ch_e": None, "ch_f": None}  # not references: never exported
