"""One seeded world the four sandboxes are drawn from, each in its own formats.

The demo and the cross-system tests need the *same* people, products, orders and
payments to appear in several systems, disagreeing the way real systems do. A
:class:`World` is that truth; the ``*_data`` functions render each system's view of it:

* **HubSpot** (CRM): most people as contacts; e-mails in mixed case, phones typed by hand
  in national format - and for some people the CRM still holds an *old* phone number.
* **Shopify** (shop): the people who ordered, the catalogue with its variants' SKUs,
  the orders with lines, and stock levels at the shop's primary location; some buyers
  left no e-mail (matched by phone and name), and for some SKUs the shop's stock has
  *drifted* from the ERP's.
* **Stripe** (payments): one charge per paid order, the order number in
  ``metadata.order_id`` - except a few charges that lack it, and one charge whose amount
  does not match its order.
* **ERP** (system of record): customers (legacy formats: ``LAST, First`` names, dashed
  phones, upper-case e-mails), items (the SKUs, prices) and stock per warehouse.

:attr:`World.expected` says what a correct platform makes of it: how many distinct
people (golden customers), which payments lack a reference, which one mismatches,
which SKUs drifted, which records are broken (quarantined: an e-mail without domain in
the CRM, a truncated phone in the ERP). Same arguments, same world.

Command line (what ``make up`` runs; the Stripe key comes from ``$STRIPE_API_KEY``)::

    python -m sandboxes.world --people 300 --stripe-url URL --hubspot-url URL \
        --shopify-url URL --erp-url sqlite:///path/erp.db
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import phonenumbers

__all__ = ["World", "erp_data", "hubspot_data", "seed_world", "shopify_data", "stripe_data"]

BASE = datetime(2025, 6, 1, tzinfo=UTC)
FIRST = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Ken", "Margaret", "Linus", "Radia",
         "Dennis", "Frances", "Tim", "Katherine", "John", "Hedy", "Donald", "Annie", "Claude",
         "Sophie", "Niklaus", "Leslie", "Joan", "Tony", "Shafi"]  # fmt: skip
LAST = ["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Thompson", "Hamilton",
        "Torvalds", "Perlman", "Ritchie", "Allen", "Lee", "Johnson", "Clarke", "Lamarr",
        "Knuth", "Easley", "Shannon", "Wilson", "Wirth", "Lamport", "Goldwasser"]  # fmt: skip
US_AREAS = ["212", "305", "312", "415", "617", "646", "702", "718", "917", "206"]
NOUNS = ["Mug", "T-Shirt", "Backpack", "Notebook", "Lamp", "Sneaker", "Kettle", "Scarf"]
ADJ = ["Organic", "Classic", "Heavy", "Tiny", "Recycled", "Vintage", "Smart", "Solar"]
WAREHOUSES = ("WH1", "WH2")  # the ERP's; both feed the shop's primary location
SHOP_LOCATION = 61_000_000_001
ID0 = {"customer": 6_200_000_000_000, "product": 7_300_000_000_000,
       "variant": 4_400_000_000_000, "item": 4_600_000_000_000,
       "order": 5_500_000_000_000, "line": 14_000_000_000_000}  # fmt: skip


@dataclass
class Person:
    index: int
    first: str
    last: str
    email: str
    country: str  # ISO 3166 alpha-2
    phone: tuple[str, str]  # (country calling code, national significant number)
    old_phone: tuple[str, str] | None = None  # what a stale CRM still has
    systems: set[str] = field(default_factory=set)


@dataclass
class Item:
    sku: str
    name: str
    price: Decimal  # USD
    stock: dict[str, int]  # ERP warehouse -> quantity
    shop_stock: int  # what the shop shows (drifted for some)


@dataclass
class Line:
    sku: str
    quantity: int
    price: Decimal


@dataclass
class Order:
    number: int
    person: int
    lines: list[Line]
    placed_at: datetime

    @property
    def total(self) -> Decimal:
        return sum((ln.price * ln.quantity for ln in self.lines), Decimal(0))


@dataclass
class Charge:
    ref: str
    order: int | None  # order number in metadata (None: the reference is missing)
    paid_order: int  # which order it actually pays (the truth)
    person: int
    amount: int  # minor units
    currency: str


def _new_phone(rng: random.Random, country: str) -> tuple[str, str]:
    """A number libphonenumber accepts as valid for ``country``."""
    while True:
        if country == "US":
            phone = ("1", rng.choice(US_AREAS) + str(rng.randint(200, 999))
                     + f"{rng.randint(0, 9999):04d}")  # fmt: skip
        else:  # Ofcom's drama range 020 7946 0xxx: valid, never assigned
            phone = ("44", f"2079460{rng.randint(0, 999):03d}")
        parsed = phonenumbers.parse(f"+{phone[0]}{phone[1]}")
        if phonenumbers.is_valid_number(parsed):
            return phone


class World:
    """``people`` people, ``items`` SKUs, about 1.5 orders per buyer."""

    def __init__(self, people: int = 60, *, items: int | None = None, seed: int = 2026):
        if people < 4:
            raise ValueError("a world needs at least 4 people")
        rng = random.Random(seed)
        self.seed = seed
        self.people: list[Person] = []
        used: set[str] = set()
        for i in range(people):
            first, last = rng.choice(FIRST), rng.choice(LAST)
            email = f"{first}.{last}.{i}@example.com".lower()
            country = "US" if rng.random() < 0.8 else "GB"
            phone = _new_phone(rng, country)
            while phone[1] in used:
                phone = _new_phone(rng, country)
            used.add(phone[1])
            self.people.append(Person(i, first, last, email, country, phone))
        # Who is in which system (everyone in at least one).
        for p in self.people:
            if rng.random() < 0.85:
                p.systems.add("hubspot")
            if rng.random() < 0.7:
                p.systems.add("erp")
            if not p.systems:
                p.systems.add("hubspot")
        buyers = [p for p in self.people if rng.random() < 0.6] or self.people[:2]
        for p in buyers:
            p.systems.update({"shopify", "stripe"})
        # A few records a careful pipeline must reject (quarantine, never drop): an
        # e-mail typed without its domain in the CRM, a truncated phone in the ERP.
        self.broken: dict[str, set[int]] = {"hubspot": set(), "erp": set()}
        for system, share in (("hubspot", 0.04), ("erp", 0.03)):
            members = [p.index for p in self.people if system in p.systems]
            self.broken[system] = set(rng.sample(members, k=max(1, int(len(members) * share))))
        # The CRM has a stale phone for a few contacts.
        for p in self.people:
            if "hubspot" in p.systems and rng.random() < 0.15:
                cc, nsn = p.phone
                p.old_phone = (cc, nsn[:-4] + f"{(int(nsn[-4:]) + 1111) % 10000:04d}")

        n_items = items if items is not None else max(6, people // 2)
        self.items: list[Item] = []
        for k in range(n_items):
            stock = {w: rng.randint(0, 60) for w in WAREHOUSES}
            total = sum(stock.values())
            drift = total + rng.choice([-5, -2, 3, 7]) if rng.random() < 0.2 else total
            self.items.append(Item(
                sku=f"W-{k + 1:05d}", name=f"{rng.choice(ADJ)} {rng.choice(NOUNS)} {k + 1}",
                price=Decimal(rng.randint(499, 9999)) / 100, stock=stock,
                shop_stock=max(0, drift)))  # fmt: skip

        self.orders: list[Order] = []
        number = 1001
        for p in buyers:
            for _ in range(1 + (rng.random() < 0.5)):
                lines = [Line(item.sku, rng.randint(1, 3), item.price)
                         for item in rng.sample(self.items, k=min(len(self.items),
                                                                rng.randint(1, 3)))]  # fmt: skip
                placed = BASE + timedelta(days=rng.randint(0, 150), minutes=rng.randint(0, 1439))
                self.orders.append(Order(number, p.index, lines, placed))
                number += 1

        self.charges: list[Charge] = []
        for n, order in enumerate(self.orders):
            amount = int(order.total * 100)
            self.charges.append(Charge(f"w-pay-{n:05d}", order.number, order.number,
                                       order.person, amount, "usd"))  # fmt: skip
        # Disagreements a reconciliation must find.
        missing = rng.sample(range(len(self.charges)), k=max(1, len(self.charges) // 20))
        for n in missing:
            self.charges[n].order = None  # the charge names no order
        mismatched = next(n for n in range(len(self.charges)) if n not in missing)
        self.charges[mismatched].amount += 150  # charged 1.50 more than the order

        landed = [p for p in self.people
                  if any(p.index not in self.broken.get(s, ()) for s in p.systems)]
        self.expected: dict[str, Any] = {
            "people": len(self.people),
            "golden_customers": len(landed),  # people with at least one valid record
            "quarantined": {s: len(ids) for s, ids in self.broken.items()},
            "in_systems": {s: sum(s in p.systems for p in self.people)
                           for s in ("hubspot", "shopify", "stripe", "erp")},
            "in_all_four": sum(len(p.systems) == 4 for p in self.people),
            "stale_crm_phones": sum(p.old_phone is not None for p in self.people),
            "orders": len(self.orders),
            "charges": len(self.charges),
            "charges_without_order_ref": sorted(self.charges[n].ref for n in missing),
            "mismatched_charge": self.charges[mismatched].ref,
            "mismatched_order": self.charges[mismatched].paid_order,
            "items": len(self.items),
            "drifted_skus": sorted(i.sku for i in self.items
                                   if i.shop_stock != sum(i.stock.values())),
        }  # fmt: skip

    def in_system(self, system: str) -> list[Person]:
        return [p for p in self.people if system in p.systems]


# --------------------------------------------------------------------------- formats


def _national(phone: tuple[str, str]) -> str:
    cc, nsn = phone
    if cc == "1":
        return f"({nsn[:3]}) {nsn[3:6]}-{nsn[6:]}"
    return f"0{nsn[:2]} {nsn[2:6]} {nsn[6:]}"


def _international(phone: tuple[str, str]) -> str:
    cc, nsn = phone
    if cc == "1":
        return f"+1 {nsn[:3]}-{nsn[3:6]}-{nsn[6:]}"
    return f"+44 {nsn[:2]} {nsn[2:6]} {nsn[6:]}"


def _dashed(phone: tuple[str, str]) -> str:
    cc, nsn = phone
    return f"{nsn[:3]}-{nsn[3:6]}-{nsn[6:]}" if cc == "1" else f"+44-{nsn[:2]}-{nsn[2:]}"


def _e164(phone: tuple[str, str]) -> str:
    return f"+{phone[0]}{phone[1]}"


COUNTRY_NAMES = {"US": "United States", "GB": "United Kingdom"}


def hubspot_data(world: World) -> dict[str, Any]:
    """``{"contacts": [(properties, created_ms, updated_ms)], "companies": []}``."""
    rng = random.Random(world.seed + 1)
    contacts = []
    for p in world.in_system("hubspot"):
        email = p.email if rng.random() < 0.5 else p.email.title()
        if p.index in world.broken["hubspot"]:
            email = email.split("@")[0] + "@"  # typed without its domain
        props = {"email": email, "firstname": p.first, "lastname": p.last,
                 "phone": _national(p.old_phone or p.phone),
                 "country": COUNTRY_NAMES[p.country]}  # fmt: skip
        created = int((BASE - timedelta(days=200 - p.index % 150)).timestamp() * 1000)
        contacts.append((props, created, created + 86_400_000))
    return {"contacts": contacts, "companies": []}


def _shop_ts(when: datetime) -> str:
    return when.astimezone(UTC).isoformat().replace("+00:00", "-00:00")


def shopify_data(world: World) -> list[tuple[str, dict[str, Any]]]:
    """Shopify Admin REST objects: ``[(resource, object)]`` as the sandbox stores them."""
    rng = random.Random(world.seed + 2)
    out: list[tuple[str, dict[str, Any]]] = [("locations", {
        "id": SHOP_LOCATION, "name": "Main Warehouse", "country_code": "US",
        "country": "United States", "active": True, "created_at": _shop_ts(BASE),
        "updated_at": _shop_ts(BASE)})]  # fmt: skip
    variants: dict[str, dict[str, Any]] = {}
    for k, item in enumerate(world.items):
        pid, vid, iid = ID0["product"] + k + 1, ID0["variant"] + k + 1, ID0["item"] + k + 1
        variant = {"id": vid, "product_id": pid, "title": "Default Title", "sku": item.sku,
                   "price": f"{item.price:.2f}", "position": 1, "inventory_item_id": iid,
                   "inventory_management": "shopify", "created_at": _shop_ts(BASE),
                   "updated_at": _shop_ts(BASE)}  # fmt: skip
        variants[item.sku] = variant
        out.append(("products", {
            "id": pid, "title": item.name, "status": "active", "vendor": "Interchange Demo",
            "created_at": _shop_ts(BASE), "updated_at": _shop_ts(BASE),
            "variants": [variant],
            "options": [{"name": "Title", "position": 1, "values": ["Default Title"]}]}))
        out.append(("inventory_levels", {
            "inventory_item_id": iid, "location_id": SHOP_LOCATION,
            "available": item.shop_stock, "updated_at": _shop_ts(BASE)}))  # fmt: skip
    customers: dict[int, dict[str, Any]] = {}
    for p in world.in_system("shopify"):
        cid = ID0["customer"] + p.index + 1
        no_email = rng.random() < 0.1  # a guest checkout: matched by phone + name
        address = {"id": cid + 90_000_000_000, "customer_id": cid, "first_name": p.first,
                   "last_name": p.last, "country_code": p.country,
                   "country": COUNTRY_NAMES[p.country], "phone": _national(p.phone),
                   "default": True}  # fmt: skip
        customers[p.index] = {
            "id": cid, "email": None if no_email else p.email, "first_name": p.first,
            "last_name": p.last, "phone": _e164(p.phone), "currency": "USD",
            "created_at": _shop_ts(BASE), "updated_at": _shop_ts(BASE),
            "default_address": address, "addresses": [address], "orders_count": 0,
            "total_spent": "0.00", "state": "enabled"}  # fmt: skip
        out.append(("customers", customers[p.index]))
    line_id = ID0["line"]
    for o, order in enumerate(world.orders):
        buyer = customers[order.person]
        lines = []
        for ln in order.lines:
            line_id += 1
            v = variants[ln.sku]
            lines.append({"id": line_id, "product_id": v["product_id"], "variant_id": v["id"],
                          "sku": ln.sku, "title": ln.sku, "quantity": ln.quantity,
                          "price": f"{ln.price:.2f}", "total_discount": "0.00"})
        total = f"{order.total:.2f}"
        out.append(("orders", {
            "id": ID0["order"] + o + 1, "name": f"#{order.number}",
            "order_number": order.number, "email": buyer["email"],
            "created_at": _shop_ts(order.placed_at), "updated_at": _shop_ts(order.placed_at),
            "processed_at": _shop_ts(order.placed_at), "cancelled_at": None,
            "closed_at": None, "currency": "USD", "presentment_currency": "USD",
            "subtotal_price": total, "total_tax": "0.00", "total_discounts": "0.00",
            "total_price": total, "financial_status": "paid", "fulfillment_status": None,
            "customer": {"id": buyer["id"], "email": buyer["email"],
                         "first_name": buyer["first_name"], "last_name": buyer["last_name"]},
            "line_items": lines}))  # fmt: skip
    return out


def stripe_data(world: World) -> dict[str, Any]:
    """The body :func:`sandboxes.stripe_seed.seed` loads (customers, payments, refunds)."""
    rng = random.Random(world.seed + 3)
    customers = []
    for p in world.in_system("stripe"):
        email = p.email.upper() if rng.random() < 0.3 else p.email
        customers.append({
            "ref": f"w-cust-{p.index:05d}", "name": f"{p.first} {p.last}",
            "email": email, "phone": _international(p.phone),
            "address": {"country": p.country},
            "created": int((BASE - timedelta(days=30)).timestamp()),
            "metadata": {"seed_ref": f"w-cust-{p.index:05d}"}})  # fmt: skip
    placed = {o.number: o.placed_at for o in world.orders}
    payments = []
    for c in sorted(world.charges, key=lambda c: placed[c.paid_order]):
        # Paid at checkout: a few minutes after the order was placed.
        created = placed[c.paid_order] + timedelta(minutes=rng.randint(1, 20))
        metadata = {"channel": "web"}
        if c.order is not None:
            metadata["order_id"] = f"#{c.order}"
        payments.append({"ref": c.ref, "customer": f"w-cust-{c.person:05d}",
                         "created": int(created.timestamp()),
                         "amount": c.amount, "currency": c.currency,
                         "card": "4242424242424242", "metadata": metadata})  # fmt: skip
    return {"customers": customers, "payments": payments, "refunds": []}


def erp_data(world: World) -> dict[str, Any]:
    """Rows for the legacy ``CUST_MASTER``, ``ITEM_MASTER`` and ``STOCK`` tables."""
    rng = random.Random(world.seed + 4)
    stamp = datetime(2026, 1, 1)
    customers = []
    for n, p in enumerate(world.in_system("erp")):
        email = f"  {p.email.upper()} " if rng.random() < 0.4 else p.email
        customers.append({
            "CUST_NO": f"WC{p.index + 1:05d}", "NAME": f"{p.last.upper()}, {p.first}",
            "EMAIL": email, "COUNTRY": p.country,
            "PHONE": "555-01" if p.index in world.broken["erp"] else _dashed(p.phone),
            "CREATED_DT": (BASE - timedelta(days=400 + p.index)).strftime("%m/%d/%Y"),
            "LAST_MOD": stamp + timedelta(seconds=n)})  # fmt: skip
    items, stock = [], []
    for k, item in enumerate(world.items):
        items.append({"ITEM_NO": item.sku, "DESCR": item.name.upper(), "PRICE": item.price,
                      "CURRENCY": "USD", "LAST_MOD": stamp + timedelta(seconds=k)})
        for w, warehouse in enumerate(WAREHOUSES):
            stock.append({"ITEM_NO": item.sku, "WAREHOUSE": warehouse,
                          "QTY_ON_HAND": item.stock[warehouse],
                          "LAST_MOD": stamp + timedelta(seconds=2 * k + w)})
    return {"CUST_MASTER": customers, "ITEM_MASTER": items, "STOCK": stock}


def seed_world(
    world: World,
    *,
    stripe_url: str | None = None,
    stripe_key: str | None = None,
    hubspot_url: str | None = None,
    shopify_url: str | None = None,
    erp_url: str | None = None,
    timeout: float = 120.0,
) -> dict[str, Any]:
    """Load each given sandbox with its view of ``world`` (replacing what it held).

    Stripe through the launcher's bulk route, HubSpot and Shopify through their
    ``/_sandbox/load`` routes, the ERP by creating its legacy tables at ``erp_url``.
    Returns what each answered.
    """
    import httpx

    out: dict[str, Any] = {}
    if stripe_url:
        from sandboxes.stripe_seed import DEFAULT_API_KEY, seed

        out["stripe"] = seed(stripe_url, stripe_key or DEFAULT_API_KEY, stripe_data(world))
    if hubspot_url:
        data = hubspot_data(world)
        body = {k: [list(row) for row in rows] for k, rows in data.items()}
        response = httpx.post(f"{hubspot_url.rstrip('/')}/_sandbox/load", json=body,
                              timeout=timeout)  # fmt: skip
        response.raise_for_status()
        out["hubspot"] = response.json()
    if shopify_url:
        objects = [[r, b] for r, b in shopify_data(world)]
        response = httpx.post(f"{shopify_url.rstrip('/')}/_sandbox/load",
                              json={"objects": objects}, timeout=timeout)  # fmt: skip
        response.raise_for_status()
        out["shopify"] = response.json()
    if erp_url:
        import sqlalchemy as sa

        from sandboxes.erp.schema import create_schema
        from sandboxes.erp.seed import seed as seed_erp

        engine = sa.create_engine(erp_url)
        try:
            create_schema(engine)
            with engine.begin() as conn:
                for table in ("STOCK", "ITEM_MASTER", "CUST_MASTER"):
                    conn.execute(sa.text(f'DELETE FROM "{table}"'))  # noqa: S608 - fixed
            seed_erp(engine, erp_data(world))
        finally:
            engine.dispose()
        out["erp"] = {k: len(v) for k, v in erp_data(world).items()}
    return out


def main(argv: list[str] | None = None) -> int:
    import argparse
    import json
    import os

    parser = argparse.ArgumentParser(prog="python -m sandboxes.world", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=300)
    parser.add_argument("--seed", type=int, default=2026)
    for name in ("stripe", "hubspot", "shopify", "erp"):
        parser.add_argument(f"--{name}-url")
    args = parser.parse_args(argv)
    try:
        world = World(args.people, seed=args.seed)
    except ValueError as exc:
        parser.error(str(exc))
    seed_world(world, stripe_url=args.stripe_url, stripe_key=os.environ.get("STRIPE_API_KEY"),
               hubspot_url=args.hubspot_url, shopify_url=args.shopify_url,
               erp_url=args.erp_url)  # fmt: skip
    print(json.dumps(world.expected))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
