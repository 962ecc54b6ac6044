"""Deterministic, realistically messy HubSpot CRM data for the sandbox.

The same ``(records, seed)`` always gives the same rows, so tests can assert exact counts
(``expected``). The mess is the kind a real portal holds: phones typed by hand in every
national style, e-mails in mixed case with stray spaces, missing fields, about 2% invalid
e-mails, countries as names, codes or abbreviations.

Rows are plain tuples ready for :meth:`sandboxes.hubspot.store.Store.insert_many`:
``(properties, created_ms, updated_ms)``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

FIRST = [
    "James", "Mary", "John", "Patricia", "Robert", "Jennifer", "Michael", "Linda", "William",
    "Elizabeth", "David", "Barbara", "Sophie", "Lukas", "Emma", "Jürgen", "Zoë", "Chloé",
    "Mohammed", "Aisha", "Hiroshi", "Yuki", "Olga", "Ivan", "Siobhán", "Seán", "María", "José",
]  # fmt: skip
LAST = [
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Müller",
    "Schmidt", "O'Brien", "Dupont", "Rossi", "Tanaka", "Nguyen", "Kowalski", "van der Berg",
    "Fernández", "Ødegaard", "Smith-Jones",
]  # fmt: skip
MAIL_DOMAINS = ["example.com", "Example.org", "mail.example.net", "EXAMPLE.co.uk", "corp.example"]
COUNTRIES = [
    "US", "United States", "usa", "U.S.", "Germany", "DE", "deutschland", "UK",
    "United Kingdom", "GB", "France", "fr", "Japan", "Canada", "ca", "Ireland",
]  # fmt: skip
LIFECYCLE = ["subscriber", "lead", "marketingqualifiedlead", "salesqualifiedlead",
             "opportunity", "customer", "evangelist", "other"]  # fmt: skip
INDUSTRIES = ["COMPUTER_SOFTWARE", "RETAIL", "Financial Services", "MANUFACTURING",
              "health care", "EDUCATION_MANAGEMENT", "Logistics", ""]  # fmt: skip
COMPANY_WORDS = ["Acme", "Globex", "Initech", "Umbrella", "Stark", "Wayne", "Hooli", "Vandelay",
                 "Soylent", "Tyrell", "Cyberdyne", "Wonka", "Gringotts", "Oceanic"]  # fmt: skip
COMPANY_SUFFIX = ["Inc.", "GmbH", "Ltd", "LLC", "S.A.", "plc", "", "Co."]

# 2025-01-01T00:00:00Z and one year of modifications after it.
EPOCH_MS = 1_735_689_600_000
YEAR_MS = 365 * 24 * 3600 * 1000


# How the COUNTRIES spellings map to the national phone style a person there types.
_PHONE_COUNTRY = {
    "US": "US", "United States": "US", "usa": "US", "U.S.": "US", "Canada": "US", "ca": "US",
    "Germany": "DE", "DE": "DE", "deutschland": "DE",
    "UK": "GB", "United Kingdom": "GB", "GB": "GB", "Ireland": "INTL",
    "France": "FR", "fr": "FR", "Japan": "INTL",
}


def _phone(rng: random.Random, country: str | None) -> tuple[str, bool]:
    """A phone typed the way someone in ``country`` would, or (2%) a broken one.

    Returns ``(phone, valid)``. National formats only appear with a country that makes
    them readable; without one, numbers are typed internationally.
    """
    n = rng.randrange(10_000)
    if rng.random() < 0.02:
        return rng.choice([f"555-{n % 100:02d}", f"+1 555 {n % 10}",
                           "n/a"]), False
    style = _PHONE_COUNTRY.get(country or "", "INTL")
    pick = rng.randrange(3)
    if style == "US":
        return [f"(415) 555-{n:04d}", f"415.555.{n:04d}", f"+1-212-555-{n:04d}"][pick], True
    if style == "GB":
        return [f"+44 20 7946 {n % 1000:04d}", f"020 7946 {n % 1000:04d}",
                f"+44 (0)20 7946 {n % 1000:04d}"][pick], True
    if style == "DE":
        return [f"0049 30 9018{n % 100:02d}", f"030 9018{n % 100:02d}",
                f"+49 30 9018{n % 100:02d}"][pick], True
    if style == "FR":
        return [f"+33 1 42 68 {n % 100:02d} {n // 100 % 100:02d}",
                f"01 42 68 {n % 100:02d} {n // 100 % 100:02d}",
                f"0033 1 42 68 {n % 100:02d} {n // 100 % 100:02d}"][pick], True
    return [f"+1-212-555-{n:04d}", f"+44 20 7946 {n % 1000:04d}",
            f"+33 1 42 68 {n % 100:02d} {n // 100 % 100:02d}"][pick], True


def _email(rng: random.Random, first: str, last: str, i: int) -> tuple[str, bool]:
    """Returns ``(email, valid)``; unique per ``i`` once trimmed and lower-cased."""
    local = f"{first}.{last}".replace(" ", "").replace("'", "")
    domain = rng.choice(MAIL_DOMAINS)
    if rng.random() < 0.02:
        bad = rng.randrange(3)
        if bad == 0:
            return f"{local}{i}.{domain}", False  # no @
        if bad == 1:
            return f"{local}{i}@@{domain}", False
        return f"{local}{i}@", False
    email = f"{local}{i}@{domain}"
    case = rng.randrange(4)
    if case == 0:
        email = email.lower()
    elif case == 1:
        email = email.upper()
    if rng.random() < 0.1:
        email = f" {email}  " if rng.random() < 0.5 else f"{email} "
    return email, True


@dataclass
class Dataset:
    contacts: list[tuple[dict[str, Any], int, int]] = field(default_factory=list)
    companies: list[tuple[dict[str, Any], int, int]] = field(default_factory=list)
    expected: dict[str, int] = field(default_factory=dict)


def generate(records: int, *, seed: int = 42) -> Dataset:
    """``records`` contacts and ``max(1, records // 10)`` companies (none when 0)."""
    rng = random.Random(seed)
    data = Dataset()
    n_companies = max(1, records // 10) if records else 0
    company_names = []
    for i in range(n_companies):
        word = COMPANY_WORDS[i % len(COMPANY_WORDS)]
        name = f"{word} {i}" if i >= len(COMPANY_WORDS) else word
        suffix = rng.choice(COMPANY_SUFFIX)
        full = f"{name} {suffix}".strip()
        company_names.append(full)
        props: dict[str, Any] = {"name": full if rng.random() > 0.05 else f"  {full.upper()}"}
        if rng.random() > 0.1:
            props["domain"] = f"{name.lower().replace(' ', '')}.example"
        if rng.random() > 0.1:
            props["country"] = rng.choice(COUNTRIES)
        industry = rng.choice(INDUSTRIES)
        if industry:
            props["industry"] = industry
        props["numberofemployees"] = str(rng.choice([5, 12, 50, 250, 1200, 10000]))
        created = EPOCH_MS + rng.randrange(YEAR_MS // 2)
        data.companies.append((props, created, created + rng.randrange(YEAR_MS // 2)))

    invalid = invalid_phones = missing_phone = missing_lifecycle = missing_company = 0
    for i in range(records):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        email, valid = _email(rng, first, last, i)
        invalid += not valid
        props = {"email": email, "lastname": last}
        if rng.random() > 0.03:
            props["firstname"] = first if rng.random() > 0.1 else first.lower()
        country = rng.choice(COUNTRIES) if rng.random() > 0.1 else None
        if rng.random() > 0.1:
            props["phone"], phone_ok = _phone(rng, country)
            invalid_phones += not phone_ok
        else:
            missing_phone += 1
        if company_names and rng.random() > 0.15:
            props["company"] = rng.choice(company_names)
        else:
            missing_company += 1
        if country is not None:
            props["country"] = country
        if rng.random() > 0.05:
            props["lifecyclestage"] = rng.choice(LIFECYCLE)
        else:
            missing_lifecycle += 1
        created = EPOCH_MS + rng.randrange(YEAR_MS // 2)
        data.contacts.append((props, created, created + rng.randrange(YEAR_MS // 2)))

    data.expected = {
        "contacts": records,
        "companies": n_companies,
        "invalid_emails": invalid,
        "invalid_phones": invalid_phones,
        "missing_phone": missing_phone,
        "missing_lifecyclestage": missing_lifecycle,
        "missing_company": missing_company,
    }
    return data
