"""localstripe for the local stack and the tests: in memory, loopback only, bulk seeding.

Run it with ``python -m sandboxes.localstripe_server --host 127.0.0.1 --port 8420``.

Upstream ``python -m localstripe`` is unsafe to run on a developer machine or in parallel
tests, so this launcher changes three things and nothing else about the API:

* **In memory only.** Upstream pickles the whole store to ``/tmp/localstripe.pickle`` on
  every write (so seeding is quadratic) and reloads it at start (so parallel instances
  share state through that file). Here the store never touches the disk.
* **One interface.** Upstream binds ``::`` (every interface); here only ``--host``
  (default ``127.0.0.1``), and a port already in use is a one-line error, exit status 2.
* **Bulk seeding.** ``POST /_interchange/seed`` creates customers, payments and refunds
  in process through localstripe's own resource classes, so every object — and every
  event — is exactly what the equivalent API calls would have created, thousands per
  second instead of a few dozen.

Seed route
----------
``POST /_interchange/seed`` with ``Authorization: Bearer sk_...`` and a JSON body (at most
1 MiB, aiohttp's default; :func:`sandboxes.stripe_seed.seed` splits large data sets)::

    {
      "customers": [{"ref": "c1", "name": "Ada", "email": " Ada@Example.COM",
                     "phone": "(415) 555-0132", "address": {"country": "US"},
                     "metadata": {...}, "created": 1700000000}],
      "payments":  [{"ref": "p1", "customer": "c1", "amount": 1999, "currency": "usd",
                     "card": "4242424242424242", "metadata": {...}}],
      "refunds":   [{"ref": "r1", "payment": "p1", "amount": 500}],
      "deliver_webhooks": false
    }

* customers: any ``POST /v1/customers`` parameter, plus ``ref`` (a name for this
  request's other records to refer to).
* payments: a PaymentIntent created and confirmed like ``POST /v1/payment_intents`` then
  ``.../confirm``. ``customer`` is a customer ``ref`` from this body, an existing
  ``cus_...`` id, or absent. ``card`` is a test card number (default 4242…; 4000000000000341
  is declined at charge time and leaves a failed charge, like Stripe); one card payment
  method is created and attached per (customer, card). Any other parameter localstripe's
  PaymentIntent create takes passes through (``payment_method`` replaces ``card``;
  localstripe has no ``description`` on PaymentIntents).
* refunds: ``payment`` is a payment ``ref``, a ``pi_...`` or a ``ch_...`` id; ``amount``
  absent means a full refund. Refunding more than the charge's remainder is a 400.
* ``created`` (any record, optional): unix seconds in the past to backdate the object, its
  charge, balance transaction and the events it emitted. Without it objects carry the time
  of seeding, as the API would give them.
* ``deliver_webhooks``: events are always recorded (``/v1/events``); they are sent to
  webhooks registered with ``/_config/webhooks/{id}`` only when this is true.
* unknown top-level keys are rejected, except ``expected`` (ignored), so the output of
  :func:`sandboxes.stripe_seed.demo_dataset` can be posted as is.

The answer maps every ``ref`` (or ``"#<index>"``) to what was created::

    {"customers": {"c1": "cus_..."},
     "payments": {"p1": {"payment_intent": "pi_...", "charge": "ch_...",
                         "status": "succeeded", "customer": "cus_..."}},
     "refunds": {"r1": "re_..."},
     "counts": {"customers": 1, "payment_methods": 1, "payments": 1,
                "payments_succeeded": 1, "payments_failed": 0, "charges": 1,
                "refunds": 1, "events": 2},
     "seconds": 0.01}

Seeding is not atomic: on the first invalid record the route answers localstripe's error
(status and message, the message prefixed with the record's place, e.g. ``payments[3]:``)
with ``error.seeded`` counting what was already created. ``DELETE /_config/data`` (upstream)
empties the store.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import itertools
import json
import logging
import socket
import sys
import time
from collections.abc import Iterator, Mapping
from typing import Any

from aiohttp import web
from localstripe import resources, server, webhooks
from localstripe.errors import UserError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8420
SEED_PATH = "/_interchange/seed"
DEFAULT_CARD = "4242424242424242"

_SEED_KEYS = frozenset({"customers", "payments", "refunds", "deliver_webhooks", "expected"})
_OLDEST_CREATED = 1_500_000_000  # localstripe's own lower bound for `created` filters


class MemoryStore(dict):
    """localstripe's store without the disk, plus an index by object type.

    Why not just ``Store`` with the pickling switched off: upstream lists (and the
    ``refunds``/``subscriptions`` properties every charge and customer export reads)
    scan the *whole* store for one type's keys, so each export costs O(store size) and
    seeding 20,000 payments takes minutes. Keeping each type's objects in their own
    insertion-ordered dict gives the same objects in the same order at O(that type).
    """

    _by_type: dict[str, dict[str, Any]]

    def try_load_from_disk(self) -> None:
        """Never read /tmp/localstripe.pickle: each instance starts empty."""

    def dump_to_disk(self) -> None:
        """Never write it (upstream calls this on every write)."""

    def __setitem__(self, key: str, value: Any) -> None:
        dict.__setitem__(self, key, value)
        self._by_type.setdefault(key.partition(":")[0], {})[key] = value

    def __delitem__(self, key: str) -> None:
        dict.__delitem__(self, key)
        self._by_type.get(key.partition(":")[0], {}).pop(key, None)

    def clear(self) -> None:
        dict.clear(self)
        self._by_type.clear()

    def of_type(self, kind: str) -> dict[str, Any]:
        """The live ``{store key: object}`` dict of one object type, oldest first."""
        return self._by_type.setdefault(kind, {})

    def reindex(self) -> None:
        self._by_type = {}
        for key, value in self.items():
            self._by_type.setdefault(key.partition(":")[0], {})[key] = value


def _list_all(cls: type, url: str, limit: Any = None, starting_after: Any = None, **kwargs: Any):
    """``StripeObject._api_list_all`` reading the type index instead of scanning the store."""
    if kwargs:
        raise UserError(400, "Unexpected " + ", ".join(kwargs.keys()))
    li = resources.List(url, limit=limit, starting_after=starting_after)
    li._list = list(resources.store.of_type(cls.object).values())
    return li


_deliver_webhooks = True


def _schedule_webhook(event: Any) -> None:
    if _deliver_webhooks:
        webhooks.schedule_webhook(event)


@contextlib.contextmanager
def _webhooks_enabled(enabled: bool) -> Iterator[None]:
    # Seeding runs synchronously on the event loop, so nothing else observes the switch.
    global _deliver_webhooks
    saved, _deliver_webhooks = _deliver_webhooks, enabled
    try:
        yield
    finally:
        _deliver_webhooks = saved


def install() -> web.Application:
    """Patch localstripe in this process (idempotent) and return its app with our route.

    The swap is done on the one ``store`` instance (``__class__`` assignment) because
    ``localstripe.server`` imported the object by name: replacing the module attribute
    would leave the server holding the old, disk-backed store.
    """
    store = resources.store
    if not isinstance(store, MemoryStore):
        store.__class__ = MemoryStore
        store.reindex()
        resources.StripeObject._api_list_all = classmethod(_list_all)
        resources.schedule_webhook = _schedule_webhook
        resources.PaymentIntent._create_charge = _charge_with_metadata(
            resources.PaymentIntent._create_charge)
        server.app.router.add_post(SEED_PATH, _seed_handler)
    return server.app


def _charge_with_metadata(create_charge: Any) -> Any:
    """Stripe copies a PaymentIntent's metadata into the charge its confirmation
    creates (once); localstripe does not. Shops put their order reference there."""

    def create(self: Any, on_failure_now: Any) -> None:
        try:
            create_charge(self, on_failure_now)
        finally:  # a declined card raises, and its failed charge keeps the metadata too
            charge = getattr(self, "latest_charge", None)
            if charge is not None and not getattr(charge, "metadata", None):
                charge.metadata = dict(self.metadata or {})

    return create


# -- seeding ----------------------------------------------------------------------------


async def _seed_handler(request: web.Request) -> web.Response:
    try:
        body = json.loads(await request.read() or b"{}")
    except ValueError as exc:
        raise UserError(400, f"seed body is not JSON: {exc}") from exc
    return server.json_response(seed_store(body))


def seed_store(body: Mapping[str, Any]) -> dict[str, Any]:
    """Create the body's customers, then payments, then refunds (see the module doc)."""
    if not isinstance(body, Mapping):
        raise UserError(400, "seed body must be a JSON object")
    unknown = set(body) - _SEED_KEYS
    if unknown:
        raise UserError(400, f"unexpected seed keys: {', '.join(sorted(unknown))}")
    deliver = body.get("deliver_webhooks", False)
    if type(deliver) is not bool:
        raise UserError(400, "deliver_webhooks must be a boolean")
    started = time.perf_counter()
    seeder = _Seeder()
    with _webhooks_enabled(deliver):
        for section, create in (
            ("customers", seeder.customer),
            ("payments", seeder.payment),
            ("refunds", seeder.refund),
        ):
            records = body.get(section) or []
            if not isinstance(records, list):
                raise UserError(400, f"{section} must be a list")
            for index, record in enumerate(records):
                try:
                    if not isinstance(record, Mapping):
                        raise UserError(400, "each record must be a JSON object")
                    create(index, dict(record))
                except UserError as exc:
                    error = exc.body["error"]
                    error["message"] = f"{section}[{index}]: {error.get('message', 'error')}"
                    error["seeded"] = seeder.counts
                    raise
    return {
        "customers": seeder.customers,
        "payments": seeder.payments,
        "refunds": seeder.refunds,
        "counts": seeder.counts,
        "seconds": round(time.perf_counter() - started, 3),
    }


class _Seeder:
    def __init__(self) -> None:
        self.store: MemoryStore = resources.store
        self.customers: dict[str, str] = {}
        self.payments: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, str] = {}
        self.counts = dict.fromkeys(
            ("customers", "payment_methods", "payments", "payments_succeeded",
             "payments_failed", "charges", "refunds", "events"), 0,
        )  # fmt: skip
        self._payment_intents: dict[str, Any] = {}  # payment ref -> PaymentIntent
        self._methods: dict[tuple[str | None, str], Any] = {}
        self._refunded: dict[str, int] = {}  # charge id -> amount refunded so far

    def customer(self, index: int, record: dict[str, Any]) -> None:
        ref = _ref(record, index)
        created = _created(record)
        with self._stamping(created) as stamp:
            obj = resources.Customer._api_create(**record)
            stamp(obj)
        self.customers[ref] = obj.id
        self.counts["customers"] += 1

    def payment(self, index: int, record: dict[str, Any]) -> None:
        ref = _ref(record, index)
        created = _created(record)
        customer = self._customer_id(record.pop("customer", None))
        card = record.pop("card", DEFAULT_CARD)
        with self._stamping(created) as stamp:
            if "payment_method" not in record:
                record["payment_method"] = self._payment_method(customer, card, stamp).id
            pi = resources.PaymentIntent._api_create(customer=customer, **record)
            try:
                resources.PaymentIntent._api_confirm(pi.id)
            except UserError as exc:
                if exc.code != 402:  # 402 = declined: Stripe keeps the PI and failed charge
                    raise
            charge = pi.latest_charge
            stamp(pi, charge)
            if charge is not None and charge.balance_transaction:
                stamp(self.store.get("balance_transaction:" + charge.balance_transaction))
        self._payment_intents[ref] = pi
        self.payments[ref] = {
            "payment_intent": pi.id,
            "charge": charge.id if charge is not None else None,
            "status": pi.status,
            "customer": customer,
        }
        self.counts["payments"] += 1
        self.counts["charges"] += charge is not None
        if pi.status == "succeeded":
            self.counts["payments_succeeded"] += 1
        elif charge is not None and charge.status == "failed":
            self.counts["payments_failed"] += 1

    def refund(self, index: int, record: dict[str, Any]) -> None:
        ref = _ref(record, index)
        created = _created(record)
        payment = record.pop("payment", None)
        if isinstance(payment, str) and payment in self._payment_intents:
            record["payment_intent"] = self._payment_intents[payment].id
        elif isinstance(payment, str) and payment.startswith("pi_"):
            record["payment_intent"] = payment
        elif isinstance(payment, str) and payment.startswith("ch_"):
            record["charge"] = payment
        elif payment is not None:
            raise UserError(404, f"no payment {payment!r} in this request or the store")
        charge = self._charge_of(record)
        refunded = self._refunded.get(charge.id)
        if refunded is None:
            refunded = charge.amount_refunded
        if record.get("amount") is None:
            record.pop("amount", None)
            if refunded:  # Stripe refunds what is left; localstripe would refund it all
                record["amount"] = charge.amount - refunded
        amount = resources.try_convert_to_int(record.get("amount", charge.amount))
        if type(amount) is int and (amount <= 0 or refunded + amount > charge.amount):
            raise UserError(
                400,
                f"refund of {amount} exceeds the {charge.amount - refunded} left on {charge.id}",
            )
        with self._stamping(created) as stamp:
            obj = resources.Refund._api_create(**record)
            stamp(obj, self.store.get("balance_transaction:" + obj.balance_transaction))
            if created is not None:
                obj.date = created
        self._refunded[charge.id] = refunded + obj.amount
        self.refunds[ref] = obj.id
        self.counts["refunds"] += 1

    # helpers

    def _customer_id(self, value: Any) -> str | None:
        if value is None:
            return None
        if isinstance(value, str) and value in self.customers:
            return self.customers[value]
        if isinstance(value, str) and value.startswith("cus_"):
            return resources.Customer._api_retrieve(value).id  # 404 if absent
        raise UserError(404, f"no customer {value!r} in this request or the store")

    def _payment_method(self, customer: str | None, card: Any, stamp: Any) -> Any:
        key = (customer, card)
        if customer is not None and key in self._methods:
            return self._methods[key]
        if not isinstance(card, str):
            raise UserError(400, "card must be a test card number")
        pm = resources.PaymentMethod._api_create(
            type="card",
            card={"number": card, "exp_month": 12, "exp_year": 2030, "cvc": "123"},
        )
        if customer is not None:
            resources.PaymentMethod._api_attach(pm.id, customer=customer)
            self._methods[key] = pm
        stamp(pm)
        self.counts["payment_methods"] += 1
        return pm

    def _charge_of(self, record: Mapping[str, Any]) -> Any:
        if record.get("payment_intent"):
            pi = resources.PaymentIntent._api_retrieve(record["payment_intent"])
            if pi.latest_charge is None:
                raise UserError(400, f"{pi.id} has no charge to refund")
            return pi.latest_charge
        if record.get("charge"):
            return resources.Charge._api_retrieve(record["charge"])
        raise UserError(400, "a refund needs a payment")

    @contextlib.contextmanager
    def _stamping(self, created: int | None) -> Iterator[Any]:
        """Count the events emitted inside the block; backdate them and the stamped
        objects when ``created`` is given."""
        events = self.store.of_type("event")
        before = len(events)
        stamped: list[Any] = []
        yield lambda *objs: stamped.extend(o for o in objs if o is not None)
        new = len(events) - before
        self.counts["events"] += new
        if created is None:
            return
        for obj in stamped:
            obj.created = created
        for event in itertools.islice(reversed(events.values()), new):
            event.created = created
            snapshot = event.data.get("object")
            if isinstance(snapshot, dict):
                snapshot["created"] = created
                if isinstance(snapshot.get("latest_charge"), dict):
                    snapshot["latest_charge"]["created"] = created


def _ref(record: dict[str, Any], index: int) -> str:
    ref = record.pop("ref", None)
    return str(ref) if ref is not None else f"#{index}"


def _created(record: dict[str, Any]) -> int | None:
    created = record.pop("created", None)
    if created is None:
        return None
    if type(created) is not int or not _OLDEST_CREATED < created <= time.time():
        raise UserError(400, f"created must be unix seconds in the past, got {created!r}")
    return created


# -- command line -------------------------------------------------------------------------


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on exactly ``host:port`` (IPv4 or IPv6 literal, or a name)."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        # Lets a restarted sandbox reuse a port still in TIME_WAIT; it does not let two
        # listeners share a port on Linux, so "address in use" still means in use.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
        sock.listen(128)  # accept connections (queued) before the loop runs
    except BaseException:
        sock.close()
        raise
    return sock


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sandboxes.localstripe_server",
        description="localstripe in memory, on one interface, with POST " + SEED_PATH,
    )
    parser.add_argument("--host", default=DEFAULT_HOST, help="interface (default: %(default)s)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="(default: %(default)s)")
    parser.add_argument("--access-log", action="store_true", help="log every request")
    args = parser.parse_args(argv)

    try:
        sock = bind(args.host, args.port)
    except OSError as exc:
        reason = "address already in use" if exc.errno == errno.EADDRINUSE else exc.strerror
        print(
            f"localstripe_server: cannot listen on {args.host}:{args.port}: {reason or exc}",
            file=sys.stderr,
        )
        return 2

    app = install()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    access_log = logging.getLogger("aiohttp.access") if args.access_log else None
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"localstripe (in memory) listening on http://{host}:{args.port}", flush=True)
    web.run_app(app, sock=sock, print=None, access_log=access_log)
    return 0


if __name__ == "__main__":
    sys.exit(main())
