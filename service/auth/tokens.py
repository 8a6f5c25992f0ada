"""API tokens without a database: principals, ``HPO_API_TOKENS``, the local token file, hashing.

Light on purpose (no SQLAlchemy, no FastAPI): the CLI and the Python client import it.

``HPO_API_TOKENS`` is a comma-separated list of ``TOKEN=PRINCIPAL`` or
``TOKEN=PRINCIPAL:admin`` entries, e.g. ``t0k3n-of-alice=alice,t0k3n-of-ops=ops:admin``.
A bare ``TOKEN`` (no ``=``) is an admin token of the principal ``local``, the owner
the embedded default uses, so a list of plain tokens (what the Helm chart generates)
keeps working. Tokens may not contain ``,``, ``=`` or white space; principal names are
letters, digits and ``. _ @ -``.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import logging
import os
import re
import secrets
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

log = logging.getLogger(__name__)

DEFAULT_PRINCIPAL = "local"
TOKEN_FILE_NAME = "api_token"
TOKEN_ENV = "HPO_TOKEN"
MIN_TOKEN_LENGTH = 16
# Values that show up in examples and templates: never accepted outside development.
DEFAULT_SECRETS = frozenset(
    {
        "admin",
        "changeit",
        "changeme",
        "changethis",
        "default",
        "hpo",
        "password",
        "secret",
        "test",
        "token",
    }
)
_PRINCIPAL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,254}")


class AuthConfigError(ValueError):
    """The authentication settings are unusable (bad HPO_API_TOKENS, a weak token, or no
    token at all where the service would be reachable from other machines)."""


@dataclass(frozen=True)
class Principal:
    """Who a request acts for: ``name`` owns the studies it creates; an admin sees all."""

    name: str
    is_admin: bool = False

    @property
    def owner_filter(self) -> str | None:
        """The owner to filter studies by: None (every study) for an admin."""
        return None if self.is_admin else self.name

    def may_see(self, owner: str) -> bool:
        return self.is_admin or owner == self.name


@dataclass(frozen=True)
class TokenEntry:
    """One entry of ``HPO_API_TOKENS``."""

    token: str = field(repr=False)
    principal: Principal


def valid_principal_name(name: str) -> bool:
    return _PRINCIPAL.fullmatch(name) is not None


def generate_token() -> str:
    """A new random token (256 bits, URL-safe, with a recognizable prefix)."""
    return "hpo_" + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """What the database keeps of a token: its SHA-256, hex."""
    return hashlib.sha256(token.encode()).hexdigest()


def weak_secret_reason(token: str) -> str | None:
    """Why ``token`` is too weak to guard a service, or None when it is fine."""
    if token.lower() in DEFAULT_SECRETS:
        return "is a well-known default value"
    if len(token) < MIN_TOKEN_LENGTH:
        return f"is shorter than {MIN_TOKEN_LENGTH} characters"
    return None


def parse_api_tokens(text: str) -> list[TokenEntry]:
    """The entries of ``HPO_API_TOKENS`` (see the module's doc). Raises AuthConfigError
    naming the entry by its position (never by its token) for an empty entry or token,
    a malformed principal or role, or a token given twice."""
    if not text.strip():
        return []
    entries: list[TokenEntry] = []
    seen: set[str] = set()
    for position, raw in enumerate(text.split(","), start=1):
        where = f"HPO_API_TOKENS entry {position}"
        item = raw.strip()
        if not item:
            raise AuthConfigError(f"{where} is empty (a stray comma?); empty tokens are refused")
        token, has_principal, rest = item.partition("=")
        token = token.strip()
        if not token:
            raise AuthConfigError(f"{where} has an empty token")
        if any(char.isspace() for char in token):
            raise AuthConfigError(f"{where}: a token may not contain white space")
        if has_principal:
            name, has_role, role = (part.strip() for part in rest.partition(":"))
            if not valid_principal_name(name):
                raise AuthConfigError(
                    f"{where}: {name!r} is not a principal name (letters, digits, '._@-')"
                )
            if has_role and role != "admin":
                raise AuthConfigError(f"{where}: the only role is 'admin', not {role!r}")
            principal = Principal(name, is_admin=bool(has_role))
        else:
            principal = Principal(DEFAULT_PRINCIPAL, is_admin=True)
        if token in seen:
            raise AuthConfigError(f"{where} repeats an earlier token")
        seen.add(token)
        entries.append(TokenEntry(token, principal))
    return entries


def is_loopback(host: str) -> bool:
    """Whether a bind address is reachable only from this machine."""
    host = host.strip().strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# --- the local token file -------------------------------------------------------------
def read_token_file(path: Path) -> str | None:
    """The token stored at ``path``, or None when there is none (or it cannot be read)."""
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return text or None


def ensure_token_file(path: Path) -> str:
    """The token at ``path``; generated and stored with user-only permissions (0600) when
    the file is missing or empty. The file appears whole or not at all (written to a
    temporary file, then linked into place), and a token another process stored first
    wins, so concurrent first starts agree. Raises OSError when it cannot be written."""
    existing = read_token_file(path)
    if existing:
        _keep_private(path)
        return existing
    path.parent.mkdir(parents=True, exist_ok=True)
    token = generate_token()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # mode 0600
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(token + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, path)  # atomic and never replaces an existing file
        except FileExistsError:
            stored = read_token_file(path)
            if stored:
                return stored
            os.replace(tmp, path)  # an empty file was in the way
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return token


def _keep_private(path: Path) -> None:
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            log.warning("%s was readable by others (mode %o); making it user-only", path, mode)
            path.chmod(0o600)
    except OSError as error:
        log.warning("could not check the permissions of %s: %s", path, error)


def default_home() -> Path:
    """``HPO_HOME`` as the service resolves it (default ``.hpo``)."""
    return Path(os.environ.get("HPO_HOME") or ".hpo").expanduser().resolve()


def client_token(explicit: str | None = None, *, home: Path | None = None) -> tuple[str, str]:
    """The token a client uses and where it came from, in order: ``explicit`` (``--token``
    or the URL's credentials), ``HPO_TOKEN``, the local token file
    ``<HPO_HOME>/api_token``. ("", "none") when there is none."""
    if explicit:
        return explicit, "explicit"
    from_env = os.environ.get(TOKEN_ENV, "").strip()
    if from_env:
        return from_env, TOKEN_ENV
    path = (home or default_home()) / TOKEN_FILE_NAME
    stored = read_token_file(path)
    if stored:
        return stored, str(path)
    return "", "none"


def split_url_credentials(url: str) -> tuple[str, str | None]:
    """``http://user:TOKEN@host`` → (``http://host``, ``TOKEN``): a token in a URL's
    credentials, as ``curl -u :TOKEN`` or a Basic-auth URL carries it (the password; the
    user name when the password is empty)."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, None
    token = unquote(parts.password or parts.username or "") or None
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=netloc)), token
