"""API keys for experience API consumers: issue, verify, list, revoke.

A key looks like ``ick_<prefix>_<secret>``: ``ick`` marks it as an Interchange key
(so secret scanners and humans recognise a leaked one), ``prefix`` is a public,
unique lookup handle shown in listings and logs, ``secret`` is 40 random base62
characters. The plaintext is returned once by :func:`create_key`; the table only
holds its SHA-256 hash, so a database dump does not yield usable keys.

Each key carries scopes (:class:`Scope`); routes require the scopes they need.
These functions take the caller's session and never commit: the caller owns the
transaction (``interchange.store.session_scope`` in the CLI, the request session in
the API).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
import string
from collections.abc import Iterable
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import JSON, Column, Field, Session, SQLModel, col, select

from interchange.errors import InterchangeError
from interchange.store import UTCDateTime, utcnow

KEY_MARKER = "ick"
PREFIX_LENGTH = 12  # hex characters: 48 random bits, enough to make clashes rare
SECRET_LENGTH = 40  # base62 characters: ~238 random bits
_BASE62 = string.ascii_letters + string.digits
# Writing last_used_at on every request would turn every read into a write; to the
# minute is precise enough to find unused keys.
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)


class Scope(StrEnum):
    """What a key may do. Routes document the scopes they require."""

    customers_read = "customers:read"
    payments_read = "payments:read"


class ApiKeyError(InterchangeError):
    """Base for API key administration errors (shown to the operator as-is)."""


class UnknownScope(ApiKeyError):
    pass


class DuplicateKeyName(ApiKeyError):
    pass


class KeyNotFound(ApiKeyError):
    pass


class ApiKey(SQLModel, table=True):
    """One issued key. Mirrors table ``api_keys`` of migration 0001."""

    __tablename__ = "api_keys"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100, unique=True)
    prefix: str = Field(max_length=16, unique=True)
    key_hash: str = Field(max_length=64)
    scopes: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_used_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def has_scopes(self, required: Iterable[str]) -> bool:
        return set(required) <= set(self.scopes)


def parse_scopes(scopes: Iterable[str] | str) -> list[str]:
    """Validate scope names (a list or a comma-separated string), deduplicated, in order."""
    items = scopes.split(",") if isinstance(scopes, str) else list(scopes)
    valid = {s.value for s in Scope}
    out: list[str] = []
    for raw in items:
        scope = str(raw).strip()
        if not scope:
            continue
        if scope not in valid:
            raise UnknownScope(f"unknown scope {scope!r}; valid scopes: {', '.join(sorted(valid))}")
        if scope not in out:
            out.append(scope)
    if not out:
        raise UnknownScope(f"at least one scope is required: {', '.join(sorted(valid))}")
    return out


def hash_key(plaintext: str) -> str:
    # A plain SHA-256 is the right tool here, unlike for passwords: the secret is ~238
    # bits from `secrets`, so guessing it from the hash is infeasible however fast the
    # hash is. Slow KDFs (bcrypt, argon2) protect low-entropy human passwords and would
    # only add tens of milliseconds to every API request.
    return hashlib.sha256(plaintext.encode()).hexdigest()


def create_key(session: Session, *, name: str, scopes: Iterable[str] | str) -> tuple[ApiKey, str]:
    """Issue a key; returns the row and the plaintext, which is not stored anywhere."""
    name = name.strip()
    if not name or len(name) > 100:
        raise ApiKeyError("key name must be 1 to 100 characters")
    scope_list = parse_scopes(scopes)
    if session.exec(select(ApiKey).where(col(ApiKey.name) == name)).first() is not None:
        raise DuplicateKeyName(f"an API key named {name!r} already exists")
    while True:
        prefix = secrets.token_hex(PREFIX_LENGTH // 2)
        if session.exec(select(ApiKey).where(col(ApiKey.prefix) == prefix)).first() is None:
            break
    secret = "".join(secrets.choice(_BASE62) for _ in range(SECRET_LENGTH))
    plaintext = f"{KEY_MARKER}_{prefix}_{secret}"
    key = ApiKey(name=name, prefix=prefix, key_hash=hash_key(plaintext), scopes=scope_list)
    session.add(key)
    try:
        session.flush()
    except sa.exc.IntegrityError as exc:  # a concurrent create; the caller rolls back
        raise DuplicateKeyName(f"an API key named {name!r} already exists") from exc
    return key, plaintext


def _split(plaintext: str) -> tuple[str, str] | None:
    parts = plaintext.strip().split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_MARKER or not parts[1] or not parts[2]:
        return None
    if len(parts[1]) > 16:
        return None
    return parts[1], parts[2]


def verify_key(session: Session, plaintext: str, *, touch: bool = True) -> ApiKey | None:
    """The active key matching ``plaintext``, or ``None`` (unknown, malformed, revoked).

    With ``touch``, records the use in ``last_used_at`` (at most once a minute); the
    caller commits.
    """
    parts = _split(plaintext)
    if parts is None:
        return None
    key = session.exec(select(ApiKey).where(col(ApiKey.prefix) == parts[0])).first()
    if key is None:
        return None
    # Constant-time, so response timing does not reveal how much of a hash matched.
    if not hmac.compare_digest(key.key_hash, hash_key(plaintext.strip())):
        return None
    if key.revoked_at is not None:
        return None
    if touch:
        now = utcnow()
        if key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION:
            key.last_used_at = now
            session.add(key)
    return key


def revoke_key(session: Session, *, name: str) -> ApiKey:
    """Revoke the key called ``name``; revoking twice keeps the first revocation time."""
    key = session.exec(select(ApiKey).where(col(ApiKey.name) == name)).first()
    if key is None:
        raise KeyNotFound(f"no API key named {name!r}")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        session.add(key)
        session.flush()
    return key


def list_keys(session: Session, *, include_revoked: bool = True) -> list[ApiKey]:
    """All keys, oldest first."""
    stmt = select(ApiKey)
    if not include_revoked:
        stmt = stmt.where(col(ApiKey.revoked_at).is_(None))
    return list(session.exec(stmt.order_by(col(ApiKey.created_at), col(ApiKey.id))).all())
