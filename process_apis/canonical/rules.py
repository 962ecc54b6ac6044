"""The rules every canonical data type follows, in one place.

* phone     -> E.164 (``phonenumbers``), national numbers read in a default region
* e-mail    -> trimmed, lower-cased, syntax-validated (``email-validator``, no DNS)
* timestamp -> aware UTC ``datetime``; rendered as ISO 8601 with ``Z``
* money     -> integer minor units + ISO 4217 alpha-3 currency (``pycountry``)
* country   -> ISO 3166-1 alpha-2 (``pycountry``)
* domain    -> bare lower-case host name ("https://www.Acme.com/" -> "acme.com")
* legacy dates ("MM/DD/YYYY") -> aware UTC midnight; counts and prices never negative

Each rule raises :class:`RuleViolation` naming the rule and the problem; the mappers
collect these per record so one bad field quarantines the record with every reason.
"""

from __future__ import annotations

import datetime as dt
import functools
from decimal import Decimal

import phonenumbers
import pycountry
from email_validator import EmailNotValidError, validate_email


class RuleViolation(ValueError):
    def __init__(self, rule: str, message: str) -> None:
        super().__init__(f"{rule}: {message}")
        self.rule = rule
        self.message = message

    def as_dict(self) -> dict[str, str]:
        return {"rule": self.rule, "message": self.message}


def normalize_email(raw: str | None) -> str | None:
    """Trim, lower-case and validate. Empty means "no e-mail" (None)."""
    if raw is None:
        return None
    value = raw.strip().lower()
    if not value:
        return None
    try:
        result = validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        raise RuleViolation("email.valid", f"{value!r} is not a valid e-mail: {exc}") from exc
    return result.normalized.lower()


def normalize_phone(raw: str | None, *, region: str | None = "US") -> str | None:
    """E.164 from an international or national-format number ("(415) 555-0132")."""
    if raw is None or not raw.strip():
        return None
    value = raw.strip()
    try:
        number = phonenumbers.parse(value, None if value.startswith("+") else region)
    except phonenumbers.NumberParseException as exc:
        raise RuleViolation("phone.e164", f"{value!r} is not a phone number ({exc})") from exc
    if not phonenumbers.is_valid_number(number):
        raise RuleViolation(
            "phone.e164", f"{value!r} is not a valid number for region {region or 'unknown'}"
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def to_utc(value: int | float | str | dt.datetime | None) -> dt.datetime | None:
    """Aware UTC from epoch seconds, an ISO 8601 string or a datetime.

    A naive datetime or an ISO string without offset is rejected: guessing a zone is
    how off-by-hours bugs are born.
    """
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise RuleViolation("timestamp.utc", f"{value!r} is not a timestamp")
    if isinstance(value, int | float):
        return dt.datetime.fromtimestamp(value, tz=dt.UTC)
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError as exc:
            raise RuleViolation("timestamp.utc", f"{value!r} is not ISO 8601") from exc
    if value.tzinfo is None:
        raise RuleViolation("timestamp.utc", f"{value.isoformat()} has no time zone")
    return value.astimezone(dt.UTC)


def iso_utc(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


# ISO 4217 minor units that differ from 2. pycountry has no exponent data.
_EXPONENTS = {
    **dict.fromkeys(
        "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF".split(), 0
    ),
    **dict.fromkeys("BHD IQD JOD KWD LYD OMR TND".split(), 3),
    **dict.fromkeys(["CLF", "UYW"], 4),
}


@functools.cache
def normalize_currency(raw: str | None) -> str:
    if not raw or not isinstance(raw, str):
        raise RuleViolation("money.currency", "currency is missing")
    code = raw.strip().upper()
    if pycountry.currencies.get(alpha_3=code) is None:
        raise RuleViolation("money.currency", f"{raw!r} is not an ISO 4217 currency")
    return code


def currency_exponent(code: str) -> int:
    return _EXPONENTS.get(normalize_currency(code), 2)


def to_minor_units(amount: int | str | Decimal, currency: str, *, minor: bool = True) -> int:
    """Integer minor units. ``minor=True`` means the source already sends minor units
    (Stripe does); otherwise ``amount`` is a decimal major-unit amount ("12.34")."""
    code = normalize_currency(currency)
    if isinstance(amount, bool):
        raise RuleViolation("money.amount", f"{amount!r} is not an amount")
    if minor:
        if isinstance(amount, int):
            return amount
        try:
            value = Decimal(str(amount))
        except ArithmeticError as exc:
            raise RuleViolation("money.amount", f"{amount!r} is not an amount") from exc
        if value != value.to_integral_value():
            raise RuleViolation("money.amount", f"{amount!r} is not whole minor units")
        return int(value)
    try:
        value = Decimal(str(amount).strip())
    except ArithmeticError as exc:
        raise RuleViolation("money.amount", f"{amount!r} is not an amount") from exc
    scaled = value.scaleb(currency_exponent(code))
    if scaled != scaled.to_integral_value():
        raise RuleViolation(
            "money.amount", f"{amount!r} has more decimals than {code} allows"
        )
    return int(scaled)


# What people type into CRM country fields that ISO 3166 does not spell that way.
_COUNTRY_ALIASES = {
    "U.S.": "US", "U.S.A.": "US", "USA": "US", "AMERICA": "US",
    "UNITED STATES OF AMERICA": "US", "UK": "GB", "U.K.": "GB", "GREAT BRITAIN": "GB",
    "BRITAIN": "GB", "ENGLAND": "GB", "SCOTLAND": "GB", "WALES": "GB",
    "NORTHERN IRELAND": "GB", "DEUTSCHLAND": "DE", "ALLEMAGNE": "DE", "ESPAÑA": "ES",
    "ESPANA": "ES", "ITALIA": "IT", "NEDERLAND": "NL", "HOLLAND": "NL", "SCHWEIZ": "CH",
    "SUISSE": "CH", "ÖSTERREICH": "AT", "OSTERREICH": "AT", "SOUTH KOREA": "KR",
    "KOREA": "KR", "RUSSIA": "RU",
}


@functools.cache
def normalize_country(raw: str | None) -> str | None:
    """ISO 3166-1 alpha-2 from alpha-2, alpha-3, an English name or a common alias."""
    if raw is None or not raw.strip():
        return None
    value = raw.strip()
    alias = _COUNTRY_ALIASES.get(value.upper())
    if alias:
        return alias
    country = None
    if len(value) == 2:
        country = pycountry.countries.get(alpha_2=value.upper())
    elif len(value) == 3:
        country = pycountry.countries.get(alpha_3=value.upper())
    if country is None:
        try:
            country = pycountry.countries.lookup(value)
        except LookupError:
            country = None
    if country is None:
        raise RuleViolation("country.iso3166", f"{raw!r} is not an ISO 3166 country")
    return country.alpha_2


def normalize_domain(raw: str | None) -> str | None:
    """A company's web domain as a bare lower-case host name, or None."""
    if raw is None or not raw.strip():
        return None
    value = raw.strip().lower()
    if "://" in value:
        value = value.split("://", 1)[1]
    value = value.split("/", 1)[0].split("?", 1)[0].split(":", 1)[0]
    value = value.removeprefix("www.").rstrip(".")
    labels = value.split(".")
    if len(labels) < 2 or not all(labels) or any(
        not all(c.isalnum() or c == "-" for c in label) for label in labels
    ):
        raise RuleViolation("domain.valid", f"{raw!r} is not a domain name")
    return value


def parse_legacy_date(raw: str | None, *, fmt: str = "%m/%d/%Y") -> dt.datetime | None:
    """A legacy system's date string (``MM/DD/YYYY`` by default) as aware UTC midnight."""
    if raw is None or not str(raw).strip():
        return None
    try:
        value = dt.datetime.strptime(str(raw).strip(), fmt)
    except ValueError as exc:
        raise RuleViolation("date.valid", f"{raw!r} is not a date in the form {fmt}") from exc
    return value.replace(tzinfo=dt.UTC)


def non_negative(value: int | None, rule: str, what: str) -> int | None:
    """``value`` unchanged, or a violation of ``rule`` when it is below zero."""
    if value is not None and value < 0:
        raise RuleViolation(rule, f"{what} {value} is negative")
    return value
