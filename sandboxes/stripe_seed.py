"""A realistic, messy, deterministic Stripe data set, and the ways to load it.

* :func:`demo_dataset` builds customers, payments and refunds the way a real account
  looks after a few years: e-mails in mixed case with stray spaces, phones in national
  and international formats of the US, UK, Germany and France read in the customer's
  address country, country names next to ISO codes, missing fields, repeat customers
  under a second record, declined cards, full and partial refunds — and about 2 % of
  customers that a careful pipeline must reject. Same arguments, same data set.
* :func:`seed` posts it to the launcher's bulk route
  (``POST /_interchange/seed``, see :mod:`sandboxes.localstripe_server`), in requests of
  at most ``max_body`` bytes: 20,000 customers in seconds.
* :func:`seed_via_sdk` creates a handful of the same records with the official
  ``stripe`` SDK (``StripeClient`` pointed at the sandbox), to prove the sandbox speaks
  the API real clients speak.

Command line::

    python -m sandboxes.stripe_seed --url http://127.0.0.1:8420 --customers 300

Data set format (the seed route's body, plus ``expected``, which the route ignores)::

    {"customers": [{"ref": "cust-00000", "name": ..., "email": ..., "phone": ...,
                    "address": {...}, "preferred_locales": [...],
                    "metadata": {"seed_ref": "cust-00000", ...}}, ...],
     "payments":  [{"ref": "pay-000000", "customer": "cust-00000", "amount": 4999,
                    "currency": "usd", "card": "4242424242424242",
                    "metadata": {"order_id": ..., "channel": ...}}, ...],
     "refunds":   [{"ref": "rfd-00000", "payment": "pay-000000"},            # full
                   {"ref": "rfd-00001", "payment": "pay-000007", "amount": 700}, ...],
     "expected":  {...}}

``expected`` holds the counts a consumer should find (``customers``, ``payments``,
``payments_succeeded``, ``payments_failed``, ``payments_by_currency``, ``refunds``,
``refunds_full``, ``refunds_partial``, ``refunded_payments``,
``fully_refunded_payments``, ``events`` by type), the invalid customers with the rules
each one breaks (``invalid_customers``: ``{ref: ["email.valid", "phone.e164"]}``, the
rule names of ``process_apis.canonical.rules``: e-mail syntax after trim and lower-case;
phone valid for the address country, or the US without one) and the repeat customers
(``duplicates``: ``{ref: ref of the first record}``, same person and number, the e-mail
and phone written differently). Every customer carries its ``ref`` in
``metadata.seed_ref`` so a test can map Stripe ids back to the data set.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import httpx

SEED_PATH = "/_interchange/seed"
DEFAULT_API_KEY = "sk_test_interchange_sandbox"
DECLINED_CARD = "4000000000000341"  # attaches, then every charge is declined
CARDS = ("4242424242424242", "4000056655665556", "5555555555554444", "5200828282828210")

EMAIL_RULE = "email.valid"
PHONE_RULE = "phone.e164"
INVALID_EMAILS = ("not-an-email", "jane.doe@", "john@@mail.com", "contact at acme.com")
INVALID_PHONES = ("12345", "123", "n/a")


# -- what people and their numbers look like -------------------------------------------

_FIRST = {
    "US": "James Mary Robert Patricia Michael Jennifer David Linda Aaliyah Wei Carlos "
    "Priya Tyler Brianna DeShawn Emily",
    "GB": "Oliver Amelia Harry Isla George Ava Noah Mia Siobhan Rhys Priya Callum Fiona Gareth",
    "DE": "Lukas Anna Jürgen Lena Maximilian Sophie Jörg Marie Felix Mia Özlem Hans Katrin Björn",
    "FR": "Jean Marie Zoë Lucas Chloé François Léa Hugo Camille Hélène Théo Manon Amélie Noël",
}
_LAST = {
    "US": "Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Nguyen Chen "
    "O'Connor Washington Kim",
    "GB": "Smith Jones Taylor Brown Williams Wilson Evans Thomas Patel O'Brien "
    "Macdonald Hughes Ahmed",
    "DE": "Müller Schmidt Schneider Fischer Weber Meyer Wagner Becker Schäfer Koch Yılmaz Groß",
    "FR": "Martin Bernard Dubois Thomas Robert Richard Petit Durand Lefèvre Moreau Girard Lambert",
}
_DOMAINS = {
    "US": "gmail.com outlook.com yahoo.com icloud.com hotmail.com example.com acme-corp.com",
    "GB": "gmail.com btinternet.com yahoo.co.uk outlook.com sky.com example.co.uk",
    "DE": "web.de gmx.de t-online.de gmail.com posteo.de firma-beispiel.de",
    "FR": "orange.fr free.fr laposte.net gmail.com sfr.fr exemple.fr",
}
_CITIES = {
    "US": [("San Francisco", "CA", "941"), ("New York", "NY", "100"), ("Chicago", "IL", "606"),
           ("Boston", "MA", "021"), ("Seattle", "WA", "981")],
    "GB": [("London", None, "SW1A"), ("Manchester", None, "M1"), ("Leeds", None, "LS1"),
           ("Edinburgh", None, "EH1")],
    "DE": [("Berlin", None, "101"), ("München", None, "803"), ("Hamburg", None, "203"),
           ("Köln", None, "506")],
    "FR": [("Paris", None, "750"), ("Lyon", None, "690"), ("Marseille", None, "130"),
           ("Toulouse", None, "310")],
}  # fmt: skip
_STREETS = {
    "US": ("Market St", "Main Street", "Broadway", "Elm St.", "5th Ave"),
    "GB": ("High Street", "Station Road", "Church Lane", "Victoria Rd"),
    "DE": ("Hauptstraße", "Bahnhofstr.", "Schillerstraße", "Gartenweg"),
    "FR": ("rue de la Paix", "avenue Victor Hugo", "boulevard Voltaire", "rue Pasteur"),
}
# The address country as people type it: ISO codes, lower case, alpha-3, English names.
_COUNTRY_SPELLINGS = {
    "US": ("US", "US", "US", "us", "USA", "United States"),
    "GB": ("GB", "GB", "gb", "GBR", "United Kingdom"),
    "DE": ("DE", "DE", "de", "DEU", "Germany"),
    "FR": ("FR", "FR", "fr", "FRA", "France"),
}
_COUNTRY_WEIGHTS = {"US": 40, "GB": 25, "DE": 20, "FR": 15}
_LOCALES = {"US": "en-US", "GB": "en-GB", "DE": "de-DE", "FR": "fr-FR"}
_CURRENCY = {"US": "usd", "GB": "gbp", "DE": "eur", "FR": "eur"}
# Major-unit price points; jpy is zero-decimal, so its minor unit is the yen.
_PRICES = (4.99, 9.99, 12.5, 19.99, 24, 29.99, 49, 79.99, 99, 129.99, 249, 499.5, 1299)
_YEN = (500, 980, 1500, 2480, 3300, 5980, 12800, 29800)

Digits = Callable[[int], str]

# Formats verified valid for every digit string with ``phonenumbers.is_valid_number``
# (the fictional 555-01xx US and Ofcom drama ranges included); the tests check them again.
_PHONES: dict[str, tuple[Callable[[Digits], str], ...]] = {
    "US": (
        lambda d: f"({_pick(d, '415 212 312 617 206')}) 555-01{d(2)}",
        lambda d: f"415.555.01{d(2)}",
        lambda d: f"+1 212 555 01{d(2)}",
        lambda d: f"1-312-555-01{d(2)}",
        lambda d: f"617-555-01{d(2)}",
        lambda d: f"+1 (206) 555-01{d(2)}",
    ),
    "GB": (
        lambda d: f"+44 20 7946 0{d(3)}",
        lambda d: f"020 7946 0{d(3)}",
        lambda d: f"+44 (0)20 7946 0{d(3)}",
        lambda d: f"0161 496 0{d(3)}",
        lambda d: f"0113 496 0{d(3)}",
    ),
    "DE": (
        lambda d: f"030 {d(6)}",
        lambda d: f"+49 30 {d(6)}",
        lambda d: f"089 {d(8)}",
        lambda d: f"0151 {d(8)}",
        lambda d: f"+49 (0)40 {d(7)}",
        lambda d: f"0049 30 {d(7)}",
    ),
    "FR": (
        lambda d: f"01 {d(2)} {d(2)} {d(2)} {d(2)}",
        lambda d: f"+33 1 {d(2)} {d(2)} {d(2)} {d(2)}",
        lambda d: f"06 12 {d(2)} {d(2)} {d(2)}",
        lambda d: f"0033 6 12 {d(2)} {d(2)} {d(2)}",
        lambda d: f"04.72.{d(2)}.{d(2)}.{d(2)}",
        lambda d: f"07 81 {d(2)} {d(2)} {d(2)}",
    ),
}
# Without an address a national number would be read as a US one: international only
# (and "+", not "00": the US international prefix is 011).
_INTERNATIONAL = {"US": (2, 5), "GB": (0, 2), "DE": (1, 4), "FR": (1,)}  # indices in _PHONES


def _pick(d: Digits, words: str) -> str:
    options = words.split()
    return options[int(d(2)) % len(options)]


def _ascii(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text.replace("ß", "ss").replace("ı", "i"))
    return "".join(c for c in folded if c.isascii() and (c.isalnum() or c in "._-"))


# -- the data set --------------------------------------------------------------------------


def demo_dataset(
    *,
    customers: int = 300,
    seed: int = 7,
    created_range: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """Build the data set (see the module docstring for its format).

    ``created_range=(start, end)`` (unix seconds, in the past) backdates every record:
    customers spread over the range in order, each payment after its customer, each
    refund after its payment, payments and refunds listed oldest first. Without it the
    sandbox stamps the time of seeding, as the API would.
    """
    if customers < 0:
        raise ValueError("customers must be >= 0")
    rng = random.Random(seed)

    def digits(n: int) -> str:
        return "".join(rng.choice("0123456789") for _ in range(n))

    used: set[str] = set()
    people = [_person(rng, digits, i, used) for i in range(customers)]
    invalid = _break_some(rng, people)
    duplicates = _repeat_some(rng, people, invalid)
    payments, refunds = _payments(rng, people)

    if created_range is not None:
        _backdate(rng, created_range, people, payments, refunds)

    succeeded = [p for p in payments if p["card"] != DECLINED_CARD]
    refunded = {r["payment"] for r in refunds}
    # partial refunds never add up to the whole payment (each takes < 45 % of the rest)
    full = {r["payment"] for r in refunds if "amount" not in r}
    expected = {
        "customers": len(people),
        "invalid_customers": invalid,
        "duplicates": duplicates,
        "customers_without_email": sum(1 for p in people if p.get("email") is None),
        "customers_without_phone": sum(1 for p in people if p.get("phone") is None),
        "customers_without_address": sum(1 for p in people if p.get("address") is None),
        "payments": len(payments),
        "payments_succeeded": len(succeeded),
        "payments_failed": len(payments) - len(succeeded),
        "payments_by_currency": dict(sorted(Counter(p["currency"] for p in payments).items())),
        "refunds": len(refunds),
        "refunds_full": sum(1 for r in refunds if "amount" not in r),
        "refunds_partial": sum(1 for r in refunds if "amount" in r),
        "refunded_payments": len(refunded),
        "fully_refunded_payments": len(full),
        "events": {
            "customer.created": len(people),
            "payment_intent.succeeded": len(succeeded),
            "payment_intent.payment_failed": len(payments) - len(succeeded),
        },
    }
    return {"customers": people, "payments": payments, "refunds": refunds, "expected": expected}


def _person(rng: random.Random, digits: Digits, index: int, used: set[str]) -> dict[str, Any]:
    country = rng.choices(list(_COUNTRY_WEIGHTS), weights=list(_COUNTRY_WEIGHTS.values()))[0]
    first, last = rng.choice(_FIRST[country].split()), rng.choice(_LAST[country].split())
    ref = f"cust-{index:05d}"

    name = f"{first} {last}"
    style = rng.random()
    if style < 0.05:
        name = name.lower()
    elif style < 0.08:
        name = name.upper()
    elif style < 0.12:
        name = f"{last}, {first}"
    elif style < 0.16:
        name = f" {name}  "

    local = rng.choice(
        [f"{first}.{last}", f"{first}{last}", f"{first[0]}{last}", f"{first}_{last}{digits(2)}"]
    )
    local, domain = _ascii(local), rng.choice(_DOMAINS[country].split())
    email = f"{local}@{domain}"
    while email.lower() in used:  # the second John Smith on gmail picks a number
        email = f"{local}{rng.randint(1, 999)}@{domain}"
    used.add(email.lower())
    style = rng.random()
    if style < 0.3:
        email = email.title()
    elif style < 0.4:
        email = email.upper()
    elif style < 0.5:
        email = "".join(c.upper() if rng.random() < 0.3 else c for c in email)
    if rng.random() < 0.15:
        email = " " * rng.randint(1, 2) + email + " " * rng.randint(0, 1)

    record: dict[str, Any] = {
        "ref": ref,
        "name": name,
        "email": email,
        "phone": None,
        "address": _address(rng, digits, country),
        "preferred_locales": [_LOCALES[country]],
        "metadata": {"seed_ref": ref, "home_country": country},
    }
    formats = _PHONES[country]
    if record["address"] is None:
        formats = tuple(formats[i] for i in _INTERNATIONAL[country])
    if rng.random() >= 0.07:  # 7 % never gave a number
        record["phone"] = rng.choice(formats)(digits)
    if rng.random() < 0.03:
        record["email"] = None
    if rng.random() < 0.1:
        record["description"] = rng.choice(
            ["VIP", "wholesale account", "migrated from legacy shop", "prefers e-mail"]
        )
    if rng.random() < 0.2:
        record["metadata"]["crm_id"] = f"CRM-{digits(6)}"
    return {k: v for k, v in record.items() if v is not None}


def _address(rng: random.Random, digits: Digits, country: str) -> dict[str, str] | None:
    if rng.random() < 0.05:
        return None
    city, state, prefix = rng.choice(_CITIES[country])
    street = rng.choice(_STREETS[country])
    number = str(rng.randint(1, 250))
    line1 = f"{number} {street}" if country in ("US", "GB") else f"{street} {number}"
    if country == "FR":
        line1 = f"{number} {street}"
    postal = {
        "US": lambda: prefix + digits(2),
        "GB": lambda: (
            f"{prefix} {digits(1)}{rng.choice('ABDEFGHJLNPQRSTUWXYZ')}"
            f"{rng.choice('ABDEFGHJLNPQRSTUWXYZ')}"
        ),
        "DE": lambda: prefix + digits(2),
        "FR": lambda: prefix + digits(2),
    }[country]()
    address = {
        "line1": line1,
        "city": city,
        "postal_code": postal,
        "country": rng.choice(_COUNTRY_SPELLINGS[country]),
    }
    if state:
        address["state"] = state
    if rng.random() < 0.1:
        address["line2"] = rng.choice(["Apt 4B", "Suite 200", "2. OG", "Bât. C", "Flat 3"])
    return address


def _break_some(rng: random.Random, people: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Make about 2 % of the customers invalid (one of each kind in any 30 or more)."""
    count = max(round(len(people) * 0.02), min(3, len(people) // 10))
    broken: dict[str, list[str]] = {}
    kinds = ([EMAIL_RULE], [PHONE_RULE], [EMAIL_RULE, PHONE_RULE])
    for n, index in enumerate(sorted(rng.sample(range(len(people)), count))):
        person, rules = people[index], kinds[n % 3]
        if EMAIL_RULE in rules:
            person["email"] = rng.choice(INVALID_EMAILS)
        if PHONE_RULE in rules:
            person["phone"] = rng.choice(INVALID_PHONES)
        broken[person["ref"]] = list(rules)
    return broken


def _repeat_some(
    rng: random.Random, people: list[dict[str, Any]], invalid: Mapping[str, Any]
) -> dict[str, str]:
    """About 2 % of the records are a second record of an earlier customer: same name,
    same e-mail and number written differently, the same country."""
    valid = [
        i for i, p in enumerate(people) if p["ref"] not in invalid and "email" in p and "phone" in p
    ]
    count = round(len(people) * 0.02)
    if len(valid) < 2 or count == 0:
        return {}
    repeats: dict[str, str] = {}
    for index in sorted(rng.sample(valid[1:], min(count, len(valid) - 1))):
        earlier = [i for i in valid if i < index and people[i]["ref"] not in repeats]
        if not earlier:
            continue
        original = people[rng.choice(earlier)]
        person = people[index]
        for key in ("name", "address", "preferred_locales"):
            if key in original:
                person[key] = json.loads(json.dumps(original[key]))
            else:
                person.pop(key, None)
        person["metadata"]["home_country"] = original["metadata"]["home_country"]
        email = original["email"].strip()
        person["email"] = "  " + email.swapcase() if email.islower() else email.lower()
        person["phone"] = _respell_phone(original["phone"])
        repeats[person["ref"]] = original["ref"]
    return repeats


def _respell_phone(phone: str) -> str:
    """The same number written another way (spaces, dots and dashes shuffled)."""
    if phone.startswith("+"):
        return phone.replace(" ", "").replace("(0)", "")
    return phone.replace(" ", "-") if " " in phone else phone.replace(".", " ")


def _payments(
    rng: random.Random, people: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    payments: list[dict[str, Any]] = []
    order = 10_000
    for person in people:
        if rng.random() >= 0.85:  # 15 % never bought anything
            continue
        country = person["metadata"]["home_country"]
        card = rng.choice(CARDS)
        for _ in range(rng.choices((1, 2, 3), weights=(5, 3, 2))[0]):
            order += rng.randint(1, 7)
            roll = rng.random()
            currency = _CURRENCY[country]
            if roll < 0.05:
                currency = "jpy"
            elif roll < 0.12:
                currency = "usd" if currency != "usd" else "eur"
            if currency == "jpy":
                amount = rng.choice(_YEN)
            else:
                amount = round(rng.choice(_PRICES) * 100) * rng.choice((1, 1, 1, 2, 3))
            payment = {
                "ref": f"pay-{len(payments):06d}",
                "customer": person["ref"],
                "amount": amount,
                "currency": currency,
                "card": DECLINED_CARD if rng.random() < 0.03 else card,
                "metadata": {"order_id": f"ORD-{order}", "channel": rng.choice(("web", "app"))},
            }
            payments.append(payment)

    succeeded = [p for p in payments if p["card"] != DECLINED_CARD]
    refunds: list[dict[str, Any]] = []
    chosen = rng.sample(succeeded, round(len(succeeded) * 0.1))
    for payment in sorted(chosen, key=lambda p: p["ref"]):
        roll = rng.random()
        if roll < 0.55:
            refunds.append({"payment": payment["ref"]})  # full
            continue
        parts = 2 if roll > 0.9 else 1  # now and then two partial refunds
        left = payment["amount"]
        for _ in range(parts):
            amount = max(1, int(left * rng.uniform(0.1, 0.45)))
            left -= amount
            refunds.append({"payment": payment["ref"], "amount": amount})
    for n, refund in enumerate(refunds):
        refund["ref"] = f"rfd-{n:05d}"
        refund["metadata"] = {"reason_note": rng.choice(("damaged", "late", "duplicate", "other"))}
    return payments, refunds


def _backdate(
    rng: random.Random,
    created_range: tuple[int, int],
    people: list[dict[str, Any]],
    payments: list[dict[str, Any]],
    refunds: list[dict[str, Any]],
) -> None:
    start, end = created_range
    if not 1_500_000_000 < start < end:
        raise ValueError("created_range must be (start, end) unix seconds, start < end")
    span = end - start
    created: dict[str, int] = {}
    for n, person in enumerate(people):
        # customers in the first 70 % of the range, leaving room for what they bought
        person["created"] = created[person["ref"]] = start + int(span * 0.7 * n / len(people))
    for payment in payments:
        after = created[payment["customer"]]
        payment["created"] = created[payment["ref"]] = after + int(
            (end - after) * rng.uniform(0.0, 0.6)
        )
    for refund in refunds:
        after = created[refund["payment"]]
        refund["created"] = after + int((end - after) * rng.uniform(0.1, 0.9))
    # lists are oldest first, like the insertion order the sandbox keeps
    payments.sort(key=lambda p: p["created"])
    refunds.sort(key=lambda r: r["created"])


# -- loading it ----------------------------------------------------------------------------


class SeedError(RuntimeError):
    """The sandbox refused a seed request (its status and message are in the text)."""


def seed(
    base_url: str,
    api_key: str,
    dataset: Mapping[str, Any],
    *,
    deliver_webhooks: bool = False,
    max_body: int = 512 * 1024,
    timeout: float = 120.0,
) -> dict[str, Any]:
    """Load ``dataset`` through ``POST /_interchange/seed`` and return what was created.

    Customers go first, then payments, then refunds, each in requests of at most
    ``max_body`` bytes (the route takes 1 MiB); references to records of earlier requests
    are replaced by their Stripe ids. Returns ``{"customers": {ref: "cus_..."},
    "payments": {ref: {"payment_intent", "charge", "status", "customer"}},
    "refunds": {ref: "re_..."}, "counts": {...}, "requests": n, "server_seconds": s,
    "seconds": wall-clock s}``.
    """
    started = time.perf_counter()
    result: dict[str, Any] = {"customers": {}, "payments": {}, "refunds": {}}
    counts: Counter[str] = Counter()
    requests = 0
    server_seconds = 0.0
    with httpx.Client(
        base_url=base_url.rstrip("/"),
        headers={"Authorization": f"Bearer {api_key}"},
        timeout=timeout,
    ) as client:
        for section in ("customers", "payments", "refunds"):
            records = [_resolve(section, dict(r), result) for r in dataset.get(section) or []]
            for chunk in _chunks(records, max_body):
                body = {section: chunk, "deliver_webhooks": deliver_webhooks}
                response = client.post(SEED_PATH, json=body)
                requests += 1
                if response.status_code != 200:
                    raise SeedError(f"{SEED_PATH} answered {response.status_code}: {response.text}")
                answer = response.json()
                result[section].update(answer[section])
                counts.update(answer["counts"])
                server_seconds += answer["seconds"]
    result["counts"] = dict(counts)
    result["requests"] = requests
    result["server_seconds"] = round(server_seconds, 3)
    result["seconds"] = round(time.perf_counter() - started, 3)
    return result


def _resolve(section: str, record: dict[str, Any], done: Mapping[str, Any]) -> dict[str, Any]:
    if section == "payments" and record.get("customer") in done["customers"]:
        record["customer"] = done["customers"][record["customer"]]
    elif section == "refunds" and record.get("payment") in done["payments"]:
        record["payment"] = done["payments"][record["payment"]]["payment_intent"]
    return record


def _chunks(records: list[dict[str, Any]], max_body: int) -> Iterator[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    size = 0
    for record in records:
        length = len(json.dumps(record, ensure_ascii=False).encode()) + 2
        if chunk and size + length > max_body:
            yield chunk
            chunk, size = [], 0
        chunk.append(record)
        size += length
    if chunk:
        yield chunk


def seed_via_sdk(
    base_url: str,
    api_key: str,
    dataset: Mapping[str, Any] | None = None,
    *,
    limit: int = 5,
) -> dict[str, Any]:
    """Create the first ``limit`` customers of ``dataset`` (default: a small demo data
    set), their payments and refunds, with the official SDK, one API call at a time.

    Same return shape as :func:`seed` (``seconds``, no ``requests``). Payments are a card
    PaymentMethod attached to the customer, then a PaymentIntent created and confirmed;
    a declined card raises ``stripe.CardError`` on confirm, as with Stripe, and is
    recorded with its status.
    """
    import stripe  # the sandbox extra; only this function needs it

    started = time.perf_counter()
    if dataset is None:
        dataset = demo_dataset(customers=limit)
    client = stripe.StripeClient(
        api_key, base_addresses={"api": base_url.rstrip("/")}, max_network_retries=0
    )
    people = list(dataset.get("customers") or [])[:limit]
    result: dict[str, Any] = {"customers": {}, "payments": {}, "refunds": {}}
    counts: Counter[str] = Counter()
    for person in people:
        params = {k: v for k, v in person.items() if k not in ("ref", "created")}
        result["customers"][person["ref"]] = client.v1.customers.create(params=params).id
        counts["customers"] += 1

    methods: dict[tuple[str, str], str] = {}
    for payment in dataset.get("payments") or []:
        customer = result["customers"].get(payment.get("customer"))
        if customer is None:
            continue
        card = payment.get("card", CARDS[0])
        if (customer, card) not in methods:
            pm = client.v1.payment_methods.create(
                params={
                    "type": "card",
                    "card": {"number": card, "exp_month": 12, "exp_year": 2030, "cvc": "123"},
                }
            )
            client.v1.payment_methods.attach(pm.id, params={"customer": customer})
            methods[(customer, card)] = pm.id
            counts["payment_methods"] += 1
        params = {
            k: v for k, v in payment.items() if k not in ("ref", "customer", "card", "created")
        }
        pi = client.v1.payment_intents.create(
            params={**params, "customer": customer, "payment_method": methods[(customer, card)]}
        )
        try:
            pi = client.v1.payment_intents.confirm(pi.id)
        except stripe.CardError:
            pi = client.v1.payment_intents.retrieve(pi.id)
        # localstripe embeds the charge object where Stripe gives its id
        charge = getattr(pi, "latest_charge", None)
        charge_id = charge if charge is None or isinstance(charge, str) else charge.id
        result["payments"][payment["ref"]] = {
            "payment_intent": pi.id,
            "charge": charge_id,
            "status": pi.status,
            "customer": customer,
        }
        counts["payments"] += 1
        counts["payments_succeeded" if pi.status == "succeeded" else "payments_failed"] += 1

    for refund in dataset.get("refunds") or []:
        paid = result["payments"].get(refund.get("payment"))
        if paid is None:
            continue
        params = {k: v for k, v in refund.items() if k not in ("ref", "payment", "created")}
        created = client.v1.refunds.create(
            params={**params, "payment_intent": paid["payment_intent"]}
        )
        result["refunds"][refund["ref"]] = created.id
        counts["refunds"] += 1
    result["counts"] = dict(counts)
    result["seconds"] = round(time.perf_counter() - started, 3)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sandboxes.stripe_seed", description="Seed a localstripe sandbox."
    )
    parser.add_argument("--url", required=True, help="sandbox base URL")
    parser.add_argument("--api-key", default=DEFAULT_API_KEY, help="any sk_... key")
    parser.add_argument("--customers", type=int, default=300)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--backdate-days",
        type=int,
        default=0,
        help="spread created timestamps over this many past days (default: now)",
    )
    parser.add_argument("--sdk", action="store_true", help="use the stripe SDK (slow)")
    parser.add_argument("--webhooks", action="store_true", help="deliver the seeding events")
    args = parser.parse_args(argv)

    created_range = None
    if args.backdate_days > 0:
        now = int(time.time())
        created_range = (now - args.backdate_days * 86_400, now - 60)
    dataset = demo_dataset(customers=args.customers, seed=args.seed, created_range=created_range)
    try:
        if args.sdk:
            result = seed_via_sdk(args.url, args.api_key, dataset, limit=args.customers)
        else:
            result = seed(args.url, args.api_key, dataset, deliver_webhooks=args.webhooks)
    except (SeedError, httpx.HTTPError) as exc:
        print(f"stripe_seed: {exc}", file=sys.stderr)
        return 1
    expected = dataset["expected"]
    summary = {
        "counts": result["counts"],
        "seconds": result.get("seconds"),
        "invalid_customers": len(expected["invalid_customers"]),
        "duplicates": len(expected["duplicates"]),
    }
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
