"""Stripe authentication: the secret key from Vault, per request, as a Bearer header.

:class:`StripeKeyAuth` reads ``api_key`` from the source's Vault path every time a
request is sent (the secrets client caches it for its TTL, so this is cheap), which is
how a rotated key is picked up without restarting anything. When Stripe answers 401 the
cached secret is dropped and the key read again from Vault; if Vault now holds a
different key the request is sent once more with it (a rotation that happened since the
cache was filled). If the key did not change, the 401 stands: retrying it would only
repeat the same failure.

The key only ever travels in the ``Authorization`` header: never in a URL, a log line,
an exception message or a ``repr``.
"""

from __future__ import annotations

from interchange.auth import SecretsReader, VaultHeaderAuth

__all__ = ["API_KEY_FIELD", "SecretsReader", "StripeKeyAuth"]

API_KEY_FIELD = "api_key"


class StripeKeyAuth(VaultHeaderAuth):
    """``Authorization: Bearer <secret key>``, the key read from Vault at request time."""

    def __init__(self, *, secrets: SecretsReader, vault_path: str, key: str = API_KEY_FIELD):
        super().__init__(secrets=secrets, vault_path=vault_path, key=key, source="stripe")

    def __repr__(self) -> str:
        return f"StripeKeyAuth(vault_path={self.vault_path!r}, key={self.key!r})"

    __str__ = __repr__
