"""Turning a presented token into a principal: configured tokens in memory, stored ones by hash.

:func:`build_authenticator` decides, once at start, which tokens a service accepts:

- ``HPO_API_TOKENS`` set: those tokens, and tokens stored in the database.
- otherwise: tokens stored in the database, and the local token file
  ``<HPO_HOME>/api_token`` (an admin token of ``local``), generated at first start with
  user-only permissions. Listening beyond loopback with no token in the settings or the
  database is refused outside development: a token only this machine's user can read
  would leave everyone else locked out, and running open is never an option.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping

from service.auth.tokens import (
    DEFAULT_PRINCIPAL,
    AuthConfigError,
    Principal,
    ensure_token_file,
    hash_token,
    is_loopback,
)
from service.settings import Settings
from service.store import StudyStore

log = logging.getLogger(__name__)

STORED_CACHE_S = 5.0  # how long a stored token's lookup is reused (revocation delay)
CACHE_LIMIT = 4096


class Authenticator:
    """Tokens to principals. Configured tokens are matched in memory by their hash;
    stored tokens are looked up in the store by hash, and a hit is reused for
    ``cache_s`` seconds (a revoked token stops working within that time)."""

    def __init__(
        self,
        configured: Mapping[str, Principal],
        store: StudyStore | None = None,
        *,
        cache_s: float = STORED_CACHE_S,
    ) -> None:
        self._configured = dict(configured)  # token hash -> principal
        self._store = store
        self._cache_s = cache_s
        self._cache: dict[str, tuple[Principal, float]] = {}
        self._lock = threading.Lock()

    def configured_principal(self, token: str) -> Principal | None:
        """The principal of a configured token (no I/O), or None."""
        return self._configured.get(hash_token(token)) if token else None

    def stored_principal(self, token: str) -> Principal | None:
        """The principal of a token stored in the database, or None. Reads the store
        (call it off the event loop). Raises StoreUnavailable."""
        if not token or self._store is None:
            return None
        digest = hash_token(token)
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(digest)
            if hit is not None and hit[1] > now:
                return hit[0]
        record = self._store.find_api_token(digest)
        if record is None:
            return None
        principal = Principal(record.principal, is_admin=record.is_admin)
        with self._lock:
            if len(self._cache) >= CACHE_LIMIT:
                self._cache.clear()
            self._cache[digest] = (principal, now + self._cache_s)
        return principal

    def authenticate(self, token: str) -> Principal | None:
        """Who ``token`` acts for, or None for a token nobody issued."""
        return self.configured_principal(token) or self.stored_principal(token)


def build_authenticator(settings: Settings, store: StudyStore) -> Authenticator:
    """The authenticator of a service with these settings and this store (see the
    module's doc). Raises AuthConfigError with what to do when the service must not
    start, StoreUnavailable when the store cannot be read."""
    configured = {hash_token(e.token): e.principal for e in settings.token_entries}
    if configured:
        return Authenticator(configured, store)
    has_stored = bool(store.list_api_tokens())
    if not has_stored and not is_loopback(settings.host) and not settings.development:
        raise AuthConfigError(
            f"refusing to listen on {settings.host} with no API token configured (the "
            "generated local token is for a service on 127.0.0.1 only, unless "
            "HPO_ENV=development). Set HPO_API_TOKENS (TOKEN=PRINCIPAL[:admin],...), store "
            "a token with `hpo token create NAME` in the same database, or listen on "
            "127.0.0.1 (HPO_HOST)."
        )
    try:
        token = ensure_token_file(settings.token_file)
    except OSError as error:
        if has_stored:
            log.warning("no local token file (%s); only stored tokens work", error)
            return Authenticator({}, store)
        raise AuthConfigError(
            f"cannot write the local API token to {settings.token_file}: {error}. Set "
            "HPO_API_TOKENS or make HPO_HOME writable."
        ) from error
    if not is_loopback(settings.host):
        log.warning(
            "listening on %s; the local token file %s is an admin token: keep it private",
            settings.host,
            settings.token_file,
        )
    configured[hash_token(token)] = Principal(DEFAULT_PRINCIPAL, is_admin=True)
    return Authenticator(configured, store)
