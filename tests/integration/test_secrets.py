"""VaultSecrets against a real OpenBao dev server: auth, cache, renewal, re-login, hygiene."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterator

import hvac
import pytest
from pydantic import SecretStr

from interchange import vaultdev
from interchange.errors import SecretNotFound, SecretsError
from interchange.secrets import VaultSecrets, get_secrets, reset_secrets
from interchange.settings import reset_settings
from tests.fixtures.common import wait_until
from tests.fixtures.vault import VaultServer


@pytest.fixture
def root(vault: VaultServer) -> Iterator[hvac.Client]:
    client = hvac.Client(url=vault.addr, token=vault.root_token)
    yield client
    client.adapter.close()


@pytest.fixture
def path(vault: VaultServer) -> str:
    """A fresh path under interchange/ holding a known secret."""
    p = f"interchange/test-{uuid.uuid4().hex[:10]}"
    vaultdev.seed(
        vault.addr,
        vault.root_token,
        {p: {"api_key": f"sk_{uuid.uuid4().hex}", "client_id": "cid-123"}},
    )
    return p


def _value(root: hvac.Client, path: str, key: str) -> str:
    data = root.secrets.kv.v2.read_secret_version(path=path, raise_on_deleted_version=True)
    return data["data"]["data"][key]


def _secrets(vault: VaultServer, **kw) -> VaultSecrets:
    kw.setdefault("addr", vault.addr)
    return VaultSecrets(**kw)


def test_read_and_get_with_token(vault, root, path):
    vs = _secrets(vault, token=vault.root_token)
    values = vs.read(path)
    assert set(values) == {"api_key", "client_id"}
    assert all(isinstance(v, SecretStr) for v in values.values())
    assert values["api_key"].get_secret_value() == _value(root, path, "api_key")
    assert vs.get(path, "client_id").get_secret_value() == "cid-123"
    assert vs.auth_method == "token" and vs.logins == 1


def test_approle_login(vault, root, path, vault_approle):
    role_id, secret_id = vault_approle
    vs = _secrets(vault, role_id=role_id, secret_id=SecretStr(secret_id))
    assert vs.get(path, "api_key").get_secret_value() == _value(root, path, "api_key")
    assert vs.auth_method == "approle" and vs.logins == 1
    assert vs._client.token != vault.root_token  # a token of its own


def test_secret_not_found_for_missing_path_and_key(vault, path):
    vs = _secrets(vault, token=vault.root_token)
    with pytest.raises(SecretNotFound) as missing_path:
        vs.read("interchange/does-not-exist")
    assert "interchange/does-not-exist" in str(missing_path.value)
    with pytest.raises(SecretNotFound) as missing_key:
        vs.get(path, "nope")
    assert path in str(missing_key.value) and "'nope'" in str(missing_key.value)
    assert "sk_" not in str(missing_key.value)


def test_cache_serves_within_ttl_until_invalidated(vault, root, path):
    vs = _secrets(vault, token=vault.root_token, cache_ttl=60)
    old = vs.get(path, "api_key").get_secret_value()
    root.secrets.kv.v2.create_or_update_secret(path=path, secret={"api_key": "changed"})
    assert vs.get(path, "api_key").get_secret_value() == old  # no Vault round trip
    vs.invalidate(path)
    assert vs.get(path, "api_key").get_secret_value() == "changed"
    root.secrets.kv.v2.create_or_update_secret(path=path, secret={"api_key": "again"})
    vs.invalidate()
    assert vs.get(path, "api_key").get_secret_value() == "again"


def test_cache_ttl_zero_always_reads(vault, root, path):
    vs = _secrets(vault, token=vault.root_token, cache_ttl=0)
    vs.read(path)
    root.secrets.kv.v2.create_or_update_secret(path=path, secret={"api_key": "fresh"})
    assert vs.get(path, "api_key").get_secret_value() == "fresh"


def test_concurrent_reads_share_one_client(vault, path, vault_approle):
    role_id, secret_id = vault_approle
    vs = _secrets(vault, role_id=role_id, secret_id=secret_id, cache_ttl=0)
    results: list[str] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(5):
                results.append(vs.get(path, "client_id").get_secret_value())
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert results == ["cid-123"] * 40
    assert vs.logins == 1


def test_relogin_after_token_revoked(vault, root, path, vault_approle):
    role_id, secret_id = vault_approle
    vs = _secrets(vault, role_id=role_id, secret_id=secret_id, cache_ttl=0)
    vs.read(path)
    first_accessor = vs.token_accessor
    assert first_accessor
    root.auth.token.revoke_accessor(first_accessor)
    assert vs.get(path, "client_id").get_secret_value() == "cid-123"
    assert vs.logins == 2
    assert vs.token_accessor != first_accessor


def test_revoked_static_token_is_a_secrets_error(vault, root, path):
    token = root.auth.token.create(policies=["default"], ttl="1h")["auth"]["client_token"]
    vs = _secrets(vault, token=token, cache_ttl=0)
    with pytest.raises(SecretsError) as denied:  # default policy cannot read KV
        vs.read(path)
    assert not isinstance(denied.value, SecretNotFound)
    assert token not in str(denied.value) and token not in repr(denied.value)


def test_short_ttl_token_is_renewed(vault, root, path):
    role_id, secret_id = vaultdev.setup_approle(
        vault.addr,
        vault.root_token,
        role_name=f"short-{uuid.uuid4().hex[:8]}",
        read_paths=["interchange/*"],
        token_ttl="3s",
        token_max_ttl="1h",
    )
    # Renew once less than 90% of the 3 s TTL remains, i.e. within ~0.3 s of login.
    vs = _secrets(vault, role_id=role_id, secret_id=secret_id, cache_ttl=0, renew_margin=0.9)
    vs.read(path)
    wait_until(lambda: vs.read(path) is not None and vs.renewals > 0, timeout=5, interval=0.1)
    assert vs.logins == 1  # kept alive by renewal, not by logging in again
    info = root.auth.token.lookup_accessor(vs.token_accessor)["data"]
    assert info.get("last_renewal_time")
    assert info["ttl"] > 0


def _read_for(vs: VaultSecrets, path: str, seconds: float) -> None:
    """Keep reading (as a busy client would) until ``seconds`` have passed."""
    deadline = time.monotonic() + seconds
    wait_until(lambda: vs.read(path) is not None and time.monotonic() > deadline, timeout=10)


def test_renewal_keeps_token_alive_past_its_ttl(vault, path):
    role_id, secret_id = vaultdev.setup_approle(
        vault.addr,
        vault.root_token,
        role_name=f"short-{uuid.uuid4().hex[:8]}",
        read_paths=["interchange/*"],
        token_ttl="2s",
        token_max_ttl="1h",
    )
    vs = _secrets(vault, role_id=role_id, secret_id=secret_id, cache_ttl=0, renew_margin=0.5)
    _read_for(vs, path, 3.0)
    assert vs.renewals >= 1
    assert vs.logins == 1  # the first token is still the one in use


def test_token_at_max_ttl_is_replaced_by_a_new_login(vault, path, caplog):
    caplog.set_level(logging.INFO, logger="interchange.secrets")
    role_id, secret_id = vaultdev.setup_approle(
        vault.addr,
        vault.root_token,
        role_name=f"capped-{uuid.uuid4().hex[:8]}",
        read_paths=["interchange/*"],
        token_ttl="2s",
        token_max_ttl="3s",
    )
    vs = _secrets(vault, role_id=role_id, secret_id=secret_id, cache_ttl=0, renew_margin=0.5)
    _read_for(vs, path, 4.0)
    assert vs.renewals >= 1
    assert vs.logins >= 2
    # Usually replaced before it expires; on a loaded 2-core CI machine the 403 path
    # may serve instead - either way no read failed, which is what a run needs.


def test_write_round_trip_updates_cache(vault, root, path, vault_approle):
    role_id, secret_id = vault_approle
    vs = _secrets(vault, role_id=role_id, secret_id=secret_id, cache_ttl=60)
    vs.read(path)
    vs.write(path, {"refresh_token": SecretStr("rt-new-1"), "client_id": "cid-123"})
    assert vs.get(path, "refresh_token").get_secret_value() == "rt-new-1"  # from cache
    assert _value(root, path, "refresh_token") == "rt-new-1"  # and in Vault
    vs.invalidate()
    assert set(vs.read(path)) == {"refresh_token", "client_id"}


def test_write_denied_outside_policy(vault, vault_approle):
    role_id, secret_id = vault_approle
    vs = _secrets(vault, role_id=role_id, secret_id=secret_id)
    with pytest.raises(SecretsError) as denied:
        vs.write("elsewhere/x", {"k": "secret-value-xyz"})
    assert "secret-value-xyz" not in str(denied.value)
    assert vs.logins == 2  # re-login was tried once, then it gave up


def test_unreachable_vault_is_a_secrets_error():
    vs = VaultSecrets(addr="http://127.0.0.1:9", token="t-unused", timeout=1)
    with pytest.raises(SecretsError) as exc:
        vs.read("interchange/x")
    assert "t-unused" not in str(exc.value)
    assert exc.value.__cause__ is not None


def test_nothing_leaks_into_repr_messages_or_logs(vault, root, path, vault_approle, caplog):
    caplog.set_level(logging.DEBUG)
    role_id, secret_id = vault_approle
    vs = _secrets(vault, role_id=role_id, secret_id=secret_id, cache_ttl=0)
    value = vs.get(path, "api_key")
    root.auth.token.revoke_accessor(vs.token_accessor)  # exercise the re-login path too
    vs.read(path)
    vs.write(path, {"api_key": value, "refresh_token": "rt-secret-777"})
    with pytest.raises(SecretNotFound) as missing:
        vs.get(path, "absent")
    token = vs._client.token
    sensitive = [value.get_secret_value(), "rt-secret-777", role_id, secret_id, token]
    texts = {
        "repr": repr(vs),
        "str": str(vs),
        "value repr": repr(value) + str(value),
        "dict repr": repr(vs.read(path)),
        "exception": str(missing.value) + repr(missing.value),
        "logs": caplog.text,
    }
    for name, text in texts.items():
        for s in sensitive:
            assert s not in text, f"secret material in {name}"
    assert "re-login after 403" in caplog.text
    assert path in caplog.text


def test_get_secrets_is_lazy_and_process_wide(vault, path, monkeypatch):
    monkeypatch.setenv("INTERCHANGE_VAULT_ADDR", vault.addr)
    monkeypatch.setenv("INTERCHANGE_VAULT_TOKEN", vault.root_token)
    reset_settings()
    reset_secrets()
    try:
        first = get_secrets()
        assert first is get_secrets()
        assert first.get(path, "client_id").get_secret_value() == "cid-123"
    finally:
        reset_secrets()
        reset_settings()
