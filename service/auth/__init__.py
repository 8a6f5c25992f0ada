"""Authentication and ownership: API tokens, principals, the local token file, rate limits.

A *principal* is who a request acts for: a name that owns studies, and whether it is an
admin (admins see and touch every study). Tokens map to principals from three places:
``HPO_API_TOKENS`` (settings), the ``api_tokens`` table (``hpo token create``, stored as
SHA-256 hashes) and, when ``HPO_API_TOKENS`` is unset, the local token file
``<HPO_HOME>/api_token`` that the embedded default generates at first start.
"""

from __future__ import annotations

from service.auth.tokens import (
    DEFAULT_PRINCIPAL,
    TOKEN_FILE_NAME,
    AuthConfigError,
    Principal,
    TokenEntry,
    client_token,
    ensure_token_file,
    generate_token,
    hash_token,
    is_loopback,
    parse_api_tokens,
    read_token_file,
    split_url_credentials,
    valid_principal_name,
)

__all__ = [
    "DEFAULT_PRINCIPAL",
    "TOKEN_FILE_NAME",
    "AuthConfigError",
    "Principal",
    "TokenEntry",
    "client_token",
    "ensure_token_file",
    "generate_token",
    "hash_token",
    "is_loopback",
    "parse_api_tokens",
    "read_token_file",
    "split_url_credentials",
    "valid_principal_name",
]
