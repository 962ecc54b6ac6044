"""Settings: pydantic-settings from ``INTERCHANGE_*`` variables plus a sources YAML file.

Nothing is read at import time: call :func:`get_settings` (cached, resettable with
:func:`reset_settings`) and :func:`load_sources`. Settings carry Vault *paths* and
the credentials needed to log in to Vault itself; source secret values never live
here.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from interchange.errors import ConfigError


class Settings(BaseSettings):
    """Process-wide settings. Every field can be set as ``INTERCHANGE_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="INTERCHANGE_", extra="ignore")

    home: Path = Field(Path(".interchange"), description="State directory (git-ignored).")
    database_url: str = Field(
        "", description="Hub database URL; defaults to SQLite under `home`."
    )
    sources_file: Path = Field(Path("sources.yaml"), description="Sources YAML file.")
    default_region: str = Field("US", description="Region for phone numbers without +CC.")
    clock_skew_seconds: float = Field(
        300.0, ge=0,
        description="How far in the future a source timestamp may be before data quality "
        "rejects it (clocks of sources and of this host disagree a little).",
    )
    survivorship_file: Path | None = Field(
        None, description="Survivorship rules YAML (default: process_apis/survivorship.yaml)."
    )

    vault_addr: str = "http://127.0.0.1:8200"
    vault_token: SecretStr | None = None
    vault_role_id: SecretStr | None = None
    vault_secret_id: SecretStr | None = None
    vault_approle_mount: str = "approle"
    vault_kv_mount: str = "secret"
    vault_cache_ttl: float = Field(30.0, ge=0, description="Seconds a secret is cached.")

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'hub.db').resolve()}"


class SourceConfig(BaseModel):
    """One source's connection settings (no secrets: only where they live in Vault)."""

    model_config = ConfigDict(extra="forbid")

    name: str = ""
    base_url: str
    vault_path: str = Field(description="KV v2 path of this source's credentials.")
    rate_limit_per_second: float = Field(25.0, gt=0)
    burst: int = Field(10, ge=1)
    timeout_seconds: float = Field(30.0, gt=0)
    max_retries: int = Field(5, ge=0)
    backoff_base_seconds: float = Field(0.5, ge=0)
    backoff_max_seconds: float = Field(30.0, ge=0)
    retry_after_cap_seconds: float = Field(60.0, ge=0)
    # Each system API checks this against its source's maximum (HubSpot 100, Shopify 250).
    page_size: int = Field(100, ge=1, le=1000)
    lookback_seconds: int = Field(300, ge=0)
    options: dict[str, Any] = Field(default_factory=dict)
    # A declarative REST source (``kind: rest``) is described here instead of in code;
    # system_apis.rest.spec validates these (this module imports no layer).
    kind: Literal["rest"] | None = None
    auth: dict[str, Any] | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    streams: dict[str, Any] = Field(default_factory=dict)


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        raise ConfigError(f"invalid INTERCHANGE_* settings: {exc}") from exc


def reset_settings() -> None:
    """Forget cached settings (tests, or after changing the environment)."""
    get_settings.cache_clear()


def load_sources(path: Path | None = None) -> dict[str, SourceConfig]:
    """Read the sources YAML: ``sources: {name: {base_url, vault_path, ...}}``.

    ``${VAR}`` and ``${VAR:-default}`` in string values are expanded from the
    environment so one file serves local, CI and production.
    """
    path = Path(path or get_settings().sources_file)
    try:
        stat = path.stat()
    except FileNotFoundError as exc:
        raise ConfigError(f"sources file not found: {path}") from exc
    # Every extract task asks for its source's config: parse the file once per
    # version of it (an edited file is read again), not once per batch.
    return dict(_parse_sources(str(path.resolve()), stat.st_mtime_ns, stat.st_size,
                               _env_fingerprint()))


def _env_fingerprint() -> tuple[tuple[str, str], ...]:
    """The environment the ``${VAR}`` expansion saw: part of the cache key."""
    return tuple(sorted(os.environ.items()))


@functools.lru_cache(maxsize=16)
def _parse_sources(
    path_str: str, _mtime: int, _size: int, _env: tuple[tuple[str, str], ...]
) -> dict[str, SourceConfig]:
    path = Path(path_str)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError as exc:
        raise ConfigError(f"sources file not found: {path}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"sources file {path} is not valid YAML: {exc}") from exc
    sources = raw.get("sources") if isinstance(raw, dict) else None
    if not isinstance(sources, dict):
        raise ConfigError(f"{path}: expected a top-level 'sources:' mapping")
    out: dict[str, SourceConfig] = {}
    for name, body in sources.items():
        try:
            out[name] = SourceConfig(name=name, **_expand(body or {}))
        except (ValidationError, TypeError) as exc:
            raise ConfigError(f"{path}: source {name!r} is invalid: {exc}") from exc
    return out


def get_source(name: str, path: Path | None = None) -> SourceConfig:
    sources = load_sources(path)
    if name not in sources:
        raise ConfigError(f"source {name!r} is not configured (have: {sorted(sources)})")
    return sources[name]


def _expand(value: Any) -> Any:
    if isinstance(value, str):
        return _expand_str(value)
    if isinstance(value, dict):
        return {k: _expand(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v) for v in value]
    return value


def _expand_str(value: str) -> str:
    import re

    def repl(m: re.Match[str]) -> str:
        name, default = m.group(1), m.group(3)
        return os.environ.get(name, default if default is not None else "")

    return re.sub(r"\$\{([A-Z0-9_]+)(:-([^}]*))?\}", repl, value)
