"""Deterministic, messy Shopify seed data.

:func:`generate` yields records shaped like Shopify Admin REST objects - customers with
hand-typed phones, mixed-case or padded e-mails and missing fields; products with
variants, SKUs and inventory items; orders with line items; locations and inventory
levels - from a seed, so the same ``(records, seed)`` always gives the same data.
Prices are decimal strings, currencies ISO 4217 codes, timestamps ISO 8601 with varied
UTC offsets (``2025-06-02T03:04:05-05:00``), as a real shop returns them.

Sizes: ``records`` customers, ``records`` orders, ``max(1, records // 4)`` products
(1-3 variants each), :data:`LOCATIONS` locations and one inventory level per variant
and location. :func:`expected_counts` gives the counts without generating anything.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

__all__ = [
    "BASE_TIME",
    "LOCATIONS",
    "expected_counts",
    "format_ts",
    "generate",
    "variants_per_product",
]

# Seeded data is dated in the year before this instant, so any "now" update is newer.
BASE_TIME = datetime(2026, 1, 1, tzinfo=UTC)
LOCATIONS = 3
CUSTOMER_ID0 = 6_100_000_000_000
PRODUCT_ID0 = 7_200_000_000_000
VARIANT_ID0 = 4_300_000_000_000
ITEM_ID0 = 4_500_000_000_000
ORDER_ID0 = 5_400_000_000_000
LINE_ID0 = 13_000_000_000_000
LOCATION_ID0 = 61_000_000_000

OFFSETS = [timedelta(hours=-5), timedelta(hours=-4), timedelta(0), timedelta(hours=1),
           timedelta(hours=5, minutes=30)]  # fmt: skip
FIRST = ["Ada", "grace", "ALAN", "Edsger", "Barbara", "Ken", "Margaret", "linus", "Radia",
         "Dennis", "Frances", "Tim", "Katherine", "John", "Hedy", "Donald"]  # fmt: skip
LAST = ["Lovelace", "Hopper", "turing", "Dijkstra", "LISKOV", "Thompson", "Hamilton",
        "Torvalds", "Perlman", "Ritchie", "Allen", "Berners-Lee", "Johnson"]  # fmt: skip
DOMAINS = ["example.com", "Example.COM", "mail.example.org", "shop.example.net"]
COUNTRIES = [("US", "United States", "USD"), ("CA", "Canada", "CAD"), ("GB", "United Kingdom",
             "GBP"), ("DE", "Germany", "EUR"), ("FR", "France", "EUR")]  # fmt: skip
PRODUCT_WORDS = ["Organic", "Classic", "Heavy", "Tiny", "Recycled", "Vintage", "Smart"]
PRODUCT_NOUNS = ["Mug", "T-Shirt", "Backpack", "Notebook", "Lamp", "Sneaker", "Kettle"]
SIZES = ["S", "M", "L"]


def format_ts(when: datetime, offset: timedelta = timedelta(hours=-5)) -> str:
    """Shopify's timestamp form: seconds precision with a numeric UTC offset."""
    return when.astimezone(timezone(offset)).replace(microsecond=0).isoformat()


def variants_per_product(product_index: int) -> int:
    return 1 + product_index % 3


def expected_counts(records: int) -> dict[str, int]:
    products = max(1, records // 4)
    variants = sum(variants_per_product(i) for i in range(products))
    return {
        "customers": records,
        "orders": records,
        "products": products,
        "variants": variants,
        "inventory_items": variants,
        "locations": LOCATIONS,
        "inventory_levels": variants * LOCATIONS,
    }


_AREA = {"US": [212, 415, 617, 312], "CA": [416, 604, 514]}


def _phone(rng: random.Random, code: str, *, national: bool) -> str | None:
    """A phone the way Shopify holds it: customers in E.164 (Shopify requires it),
    address phones typed in the country's national style. About 2% are unusable,
    and some are missing."""
    roll = rng.random()
    if roll < 0.08:
        return rng.choice([None, ""])
    c = rng.randint(0, 9999)
    if roll < 0.10:
        return rng.choice([f"555-{c % 100:02d}", "n/a", f"+1 555 {c % 10}"])
    if code in _AREA:
        area = rng.choice(_AREA[code])
        return f"({area}) 555-{c:04d}" if national else f"+1{area}555{c:04d}"
    if code == "GB":
        return f"020 7946 {c % 1000:04d}" if national else f"+442079460{c % 1000:03d}"
    if code == "DE":
        return f"030 9018{c % 100:02d}" if national else f"+49309018{c % 100:02d}"
    return (f"01 42 68 {c % 100:02d} {c // 100 % 100:02d}" if national
            else f"+3314268{c % 100:02d}{c // 100 % 100:02d}")


def _email(rng: random.Random, first: str, last: str, i: int) -> str | None:
    roll = rng.random()
    if roll < 0.05:
        return None
    local = f"{first}.{last}{i}"
    domain = rng.choice(DOMAINS)
    if roll < 0.3:
        return f"  {local.upper()}@{domain} "
    if roll < 0.6:
        return f"{local}@{domain}"
    return f"{local.lower()}@{domain.lower()}"


def _ts_pair(rng: random.Random) -> tuple[datetime, datetime]:
    created = BASE_TIME - timedelta(seconds=rng.randint(86_400, 360 * 86_400))
    updated = created + timedelta(seconds=rng.randint(0, 20 * 86_400))
    return created, min(updated, BASE_TIME - timedelta(seconds=1))


def _money(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.01")))


def generate(records: int, *, seed: int = 42) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(resource, object)`` pairs: locations, products, customers, orders, levels.

    Each object carries Shopify's fields plus nothing else; the store derives its index
    columns (ids, timestamps, order status) from them.
    """
    rng = random.Random(seed)
    counts = expected_counts(records)

    for k in range(LOCATIONS):
        code, country, _ = COUNTRIES[k % len(COUNTRIES)]
        created, updated = _ts_pair(rng)
        yield (
            "locations",
            {
                "id": LOCATION_ID0 + k + 1,
                "name": ["Main Warehouse", "Toronto Store", "London pop-up"][k % 3],
                "address1": f"{10 + k} Commerce St",
                "city": ["Newark", "Toronto", "London"][k % 3],
                "country_code": code,
                "country": country,
                "active": True,
                "created_at": format_ts(created),
                "updated_at": format_ts(updated),
            },
        )

    variants: list[dict[str, Any]] = []
    variant_no = 0
    for p in range(counts["products"]):
        pid = PRODUCT_ID0 + p + 1
        offset = OFFSETS[p % len(OFFSETS)]
        created, updated = _ts_pair(rng)
        title = f"{rng.choice(PRODUCT_WORDS)} {rng.choice(PRODUCT_NOUNS)} {p + 1}"
        base_price = Decimal(rng.randint(299, 19999)) / 100
        product_variants = []
        for v in range(variants_per_product(p)):
            variant_no += 1
            price = base_price + Decimal(v * 200) / 100
            variant = {
                "id": VARIANT_ID0 + variant_no,
                "product_id": pid,
                "title": SIZES[v] if variants_per_product(p) > 1 else "Default Title",
                "sku": f"SKU-{p + 1:06d}-{SIZES[v]}" if rng.random() > 0.03 else "",
                "price": _money(price),
                "compare_at_price": _money(price * Decimal("1.2")) if rng.random() < 0.3 else None,
                "position": v + 1,
                "inventory_item_id": ITEM_ID0 + variant_no,
                "inventory_quantity": 0,
                "inventory_management": "shopify",
                "barcode": None if rng.random() < 0.5 else f"{rng.randint(10**11, 10**12 - 1)}",
                "grams": rng.randint(50, 5000),
                "taxable": True,
                "created_at": format_ts(created, offset),
                "updated_at": format_ts(updated, offset),
            }
            product_variants.append(variant)
            variants.append(variant)
        yield (
            "products",
            {
                "id": pid,
                "title": title,
                "body_html": f"<p>{title}</p>" if rng.random() > 0.1 else None,
                "vendor": rng.choice(["Acme", "acme inc.", "Globex", "Initech"]),
                "product_type": rng.choice(["Kitchen", "Apparel", "Office", ""]),
                "handle": title.lower().replace(" ", "-"),
                "status": rng.choice(["active", "active", "active", "draft", "archived"]),
                "tags": rng.choice(["", "sale", "new, featured", "Sale,clearance"]),
                "created_at": format_ts(created, offset),
                "updated_at": format_ts(updated, offset),
                "published_at": format_ts(created, offset) if rng.random() > 0.2 else None,
                "variants": product_variants,
                "options": [
                    {
                        "name": "Size",
                        "position": 1,
                        "values": [v["title"] for v in product_variants],
                    }
                ],  # fmt: skip
                "admin_graphql_api_id": f"gid://shopify/Product/{pid}",
            },
        )

    customers: list[dict[str, Any]] = []
    for i in range(records):
        cid = CUSTOMER_ID0 + i + 1
        first, last = rng.choice(FIRST), rng.choice(LAST)
        code, country, currency = rng.choice(COUNTRIES)
        created, updated = _ts_pair(rng)
        offset = OFFSETS[i % len(OFFSETS)]
        address = None
        if rng.random() > 0.15:
            address = {
                "id": cid + 90_000_000_000,
                "customer_id": cid,
                "first_name": first,
                "last_name": last,
                "address1": f"{rng.randint(1, 999)} Main St",
                "city": rng.choice(["Springfield", "toronto", "LONDON", "Berlin", "Paris"]),
                "province": None,
                "country": country,
                "country_code": code,
                "zip": f"{rng.randint(10000, 99999)}",
                "phone": _phone(rng, code, national=True),
                "default": True,
            }
        customer = {
            "id": cid,
            "email": _email(rng, first, last, i),
            "first_name": first if rng.random() > 0.05 else None,
            "last_name": last if rng.random() > 0.05 else "",
            "phone": _phone(rng, code, national=False),
            "verified_email": rng.random() > 0.2,
            "accepts_marketing": rng.random() > 0.5,
            "state": rng.choice(["enabled", "disabled", "invited"]),
            "orders_count": 0,
            "total_spent": "0.00",
            "currency": currency,
            "tags": rng.choice(["", "VIP", "wholesale, vip", "newsletter"]),
            "note": None,
            "tax_exempt": False,
            "created_at": format_ts(created, offset),
            "updated_at": format_ts(updated, offset),
            "default_address": address,
            "addresses": [address] if address else [],
            "admin_graphql_api_id": f"gid://shopify/Customer/{cid}",
        }
        customers.append(customer)

    line_no = 0
    for o in range(records):
        oid = ORDER_ID0 + o + 1
        buyer = customers[rng.randrange(len(customers))] if customers else None
        currency = buyer["currency"] if buyer else "USD"
        offset = OFFSETS[(o * 7) % len(OFFSETS)]
        created, updated = _ts_pair(rng)
        lines = []
        subtotal = Decimal(0)
        for _ in range(rng.randint(1, 4)):
            line_no += 1
            variant = variants[rng.randrange(len(variants))]
            qty = rng.randint(1, 5)
            subtotal += Decimal(variant["price"]) * qty
            lines.append(
                {
                    "id": LINE_ID0 + line_no,
                    "product_id": variant["product_id"],
                    "variant_id": variant["id"],
                    "sku": variant["sku"],
                    "title": f"Product {variant['product_id'] - PRODUCT_ID0}",
                    "variant_title": variant["title"],
                    "quantity": qty,
                    "price": variant["price"],
                    "total_discount": "0.00",
                    "taxable": True,
                    "fulfillable_quantity": qty,
                }
            )
        tax = (subtotal * Decimal("0.08")).quantize(Decimal("0.01"))
        roll = rng.random()
        cancelled = format_ts(updated, offset) if roll < 0.05 else None
        closed = format_ts(updated, offset) if 0.05 <= roll < 0.35 else None
        if buyer:
            buyer["orders_count"] += 1
            buyer["total_spent"] = _money(Decimal(buyer["total_spent"]) + subtotal + tax)
        yield (
            "orders",
            {
                "id": oid,
                "name": f"#{1001 + o}",
                "order_number": 1001 + o,
                "email": buyer["email"] if buyer else None,
                "phone": None,
                "created_at": format_ts(created, offset),
                "updated_at": format_ts(updated, offset),
                "processed_at": format_ts(created, offset),
                "cancelled_at": cancelled,
                "closed_at": closed,
                "currency": currency,
                "presentment_currency": currency,
                "subtotal_price": _money(subtotal),
                "total_tax": _money(tax),
                "total_discounts": "0.00",
                "total_price": _money(subtotal + tax),
                "financial_status": rng.choice(
                    ["paid", "paid", "pending", "refunded", "partially_refunded"]
                ),  # fmt: skip
                "fulfillment_status": rng.choice([None, "fulfilled", "partial"]),
                "test": False,
                "customer": {
                    "id": buyer["id"],
                    "email": buyer["email"],
                    "first_name": buyer["first_name"],
                    "last_name": buyer["last_name"],
                }
                if buyer
                else None,
                "line_items": lines,
                "admin_graphql_api_id": f"gid://shopify/Order/{oid}",
            },
        )

    yield from (("customers", c) for c in customers)

    for variant in variants:
        for k in range(LOCATIONS):
            available = rng.randint(-2, 120) if rng.random() > 0.05 else None
            updated = BASE_TIME - timedelta(seconds=rng.randint(1, 90 * 86_400))
            yield (
                "inventory_levels",
                {
                    "inventory_item_id": variant["inventory_item_id"],
                    "location_id": LOCATION_ID0 + k + 1,
                    "available": available,
                    "updated_at": format_ts(updated, OFFSETS[k % len(OFFSETS)]),
                },
            )
