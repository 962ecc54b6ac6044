"""The canonical rules: one behaviour per test, no I/O."""

import datetime as dt

import pytest

from process_apis.canonical import rules
from process_apis.canonical.rules import RuleViolation


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("(415) 555-0132", "US", "+14155550132"),
        ("415.555.0199", "US", "+14155550199"),
        ("+44 20 7946 0958", "US", "+442079460958"),
        ("020 7946 0018", "GB", "+442079460018"),
        ("030 901820", "DE", "+4930901820"),
        ("  ", "US", None),
        (None, "US", None),
    ],
)
def test_phone_to_e164(raw, region, expected):
    assert rules.normalize_phone(raw, region=region) == expected


@pytest.mark.parametrize("raw", ["12345", "not a phone", "+999 123"])
def test_invalid_phone_names_the_rule(raw):
    with pytest.raises(RuleViolation) as info:
        rules.normalize_phone(raw, region="US")
    assert info.value.rule == "phone.e164"
    assert raw.strip() in info.value.message


def test_email_is_trimmed_lowercased_and_validated():
    assert rules.normalize_email("  Alice.Smith@Example.COM ") == "alice.smith@example.com"
    assert rules.normalize_email("") is None
    with pytest.raises(RuleViolation) as info:
        rules.normalize_email("not-an-email")
    assert info.value.rule == "email.valid"


def test_timestamps_become_aware_utc():
    assert rules.to_utc(0) == dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    expected = dt.datetime(2026, 1, 2, 1, 4, 5, tzinfo=dt.UTC)
    assert rules.to_utc("2026-01-02T03:04:05+02:00") == expected
    assert rules.iso_utc(rules.to_utc("2026-01-02T03:04:05Z")) == "2026-01-02T03:04:05Z"
    with pytest.raises(RuleViolation):
        rules.to_utc("2026-01-02T03:04:05")  # naive: refuse to guess a zone
    with pytest.raises(RuleViolation):
        rules.to_utc(dt.datetime(2026, 1, 1))


@pytest.mark.parametrize(
    ("amount", "currency", "minor", "expected"),
    [(1234, "usd", True, 1234), ("12.34", "EUR", False, 1234), ("1200", "jpy", False, 1200),
     ("1.234", "KWD", False, 1234), ("12", "usd", True, 12)],
)
def test_money_in_minor_units(amount, currency, minor, expected):
    assert rules.to_minor_units(amount, currency, minor=minor) == expected


def test_money_rejects_bad_currency_and_fractions():
    with pytest.raises(RuleViolation) as info:
        rules.to_minor_units(100, "xyz")
    assert info.value.rule == "money.currency"
    with pytest.raises(RuleViolation):
        rules.to_minor_units("12.345", "usd", minor=False)
    with pytest.raises(RuleViolation):
        rules.to_minor_units("12.5", "usd", minor=True)


def test_country_to_alpha2():
    assert rules.normalize_country("gb") == "GB"
    assert rules.normalize_country("DEU") == "DE"
    assert rules.normalize_country("France") == "FR"
    assert rules.normalize_country(None) is None
    with pytest.raises(RuleViolation):
        rules.normalize_country("Atlantis")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("https://www.Acme.com/about", "acme.com"), ("acme.co.uk", "acme.co.uk"),
     ("  EXAMPLE.org. ", "example.org"), ("", None), (None, None)],
)
def test_domain_is_a_bare_host(raw, expected):
    assert rules.normalize_domain(raw) == expected


@pytest.mark.parametrize("raw", ["localhost", "not a domain", "acme..com"])
def test_bad_domain(raw):
    with pytest.raises(RuleViolation) as info:
        rules.normalize_domain(raw)
    assert info.value.rule == "domain.valid"
