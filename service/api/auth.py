"""Who is asking: FastAPI dependencies that authenticate requests and hide others' studies.

A request brings its token in one of these ways:

- ``Authorization: Bearer TOKEN`` (the CLI, the Python client, curl);
- ``Authorization: Basic`` with the token as the password (or as the user name when the
  password is empty): ``curl -u :TOKEN``, ``http://hpo:TOKEN@host/`` URLs, and a
  browser's own sign-in dialog;
- the ``hpo_token`` cookie, for reads (GET/HEAD) only: what the web page and its event
  stream (``EventSource`` cannot send headers) use. A page request that authenticated
  with a header, or ``/?token=TOKEN`` (which then redirects to the same page without
  it), sets the cookie: HttpOnly, SameSite=Lax.

API routes answer 401 JSON with ``WWW-Authenticate: Bearer``; the page and the docs
answer 401 with a sign-in page and a ``Basic`` challenge, so a browser asks for the
token. A request that changes something and that a browser marks as cross-site
(``Sec-Fetch-Site``) is refused with 403, so a browser's remembered credentials cannot be
used by another site. Another principal's study is 404, exactly like a missing one.
"""

from __future__ import annotations

import base64
import binascii
import html
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlencode

from fastapi import Depends, HTTPException, Path, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from service.api.deps import StoreDep
from service.auth.authenticator import Authenticator
from service.auth.ratelimit import RateLimiter
from service.auth.tokens import Principal
from service.store import StudyNotFound, StudyRecord

COOKIE = "hpo_token"
REALM = "hpo-service"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
NO_TOKEN = (
    "not authenticated: send Authorization: Bearer <token> "
    "(`hpo token show` prints the token of this machine's user)"
)
BAD_TOKEN = "invalid token"
# Bounds of identifiers in paths and queries (the store's columns hold 32-bit study ids
# and names of 255 characters): larger ones are refused with 422, never sent to the DB.
MAX_STUDY_ID = 2**31 - 1
MAX_IDENTIFIER_LENGTH = 255
NO_NUL = r"^[^\x00]*$"  # PostgreSQL text cannot hold NUL characters

# Declares the scheme in the OpenAPI document (the docs' "Authorize" button); the
# header itself is read by presented_token, which also knows Basic and the cookie.
bearer_scheme = HTTPBearer(
    auto_error=False, description="An API token: `hpo token show` or `hpo token create`."
)


@dataclass(frozen=True)
class Presented:
    token: str
    source: str  # "header" | "cookie"


@dataclass(frozen=True)
class PageAuth:
    """A page request's principal, and the token to keep in the cookie when it came
    with a header (None when the cookie is already there)."""

    principal: Principal
    remember: str | None


class PageAuthRequired(Exception):
    """A page or docs request without a valid token: answered with a sign-in page."""

    def __init__(self, *, invalid: bool, clear_cookie: bool = False) -> None:
        super().__init__(BAD_TOKEN if invalid else NO_TOKEN)
        self.invalid = invalid
        self.clear_cookie = clear_cookie


class SignIn(Exception):
    """``?token=`` on a page with a valid token: keep it in the cookie, drop it from the URL."""

    def __init__(self, token: str, location: str) -> None:
        super().__init__("sign in")
        self.token = token
        self.location = location


def presented_token(request: Request) -> Presented | None:
    """The token a request brings (see the module's doc), or None. A malformed
    Authorization header counts as an empty (invalid) token."""
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.strip().partition(" ")
        value = value.strip()
        if scheme.lower() == "bearer":
            return Presented(value, "header")
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(value, validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                return Presented("", "header")
            user, _, password = decoded.partition(":")
            return Presented(password or user, "header")
        return Presented("", "header")
    if request.method in SAFE_METHODS:
        cookie = request.cookies.get(COOKIE)
        if cookie:
            return Presented(cookie, "cookie")
    return None


async def principal_of(request: Request, token: str) -> Principal | None:
    authenticator: Authenticator = request.app.state.authenticator
    principal = authenticator.configured_principal(token)
    if principal is None and token:
        principal = await run_in_threadpool(authenticator.stored_principal, token)
    return principal


def refuse_cross_site(request: Request) -> None:
    """403 for a state-changing request that a browser sent from another site."""
    if request.method in SAFE_METHODS:
        return
    if request.headers.get("sec-fetch-site") in ("cross-site", "same-site"):
        raise HTTPException(status_code=403, detail="cross-site requests may not change anything")


def _challenge(invalid: bool) -> dict[str, str]:
    error = ', error="invalid_token"' if invalid else ""
    return {"WWW-Authenticate": f'Bearer realm="{REALM}"{error}'}


async def current_principal(
    request: Request,
    _bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> Principal:
    """The principal of an API request. Raises 401 (no or bad token), 403 (cross-site)."""
    refuse_cross_site(request)
    presented = presented_token(request)
    if presented is None:
        raise HTTPException(status_code=401, detail=NO_TOKEN, headers=_challenge(False))
    principal = await principal_of(request, presented.token)
    if principal is None:
        raise HTTPException(status_code=401, detail=BAD_TOKEN, headers=_challenge(True))
    request.state.principal = principal
    return principal


PrincipalDep = Annotated[Principal, Depends(current_principal)]


async def optional_principal(request: Request) -> Principal | None:
    """The principal when the request brings a valid token; None otherwise (never 401)."""
    presented = presented_token(request)
    if presented is None:
        return None
    return await principal_of(request, presented.token)


async def page_principal(request: Request) -> PageAuth:
    """The principal of a page or docs request; raises PageAuthRequired or SignIn."""
    query_token = request.query_params.get("token")
    if query_token is not None:
        if await principal_of(request, query_token) is None:
            raise PageAuthRequired(invalid=True)
        query = urlencode([kv for kv in request.query_params.multi_items() if kv[0] != "token"])
        raise SignIn(query_token, request.url.path + (f"?{query}" if query else ""))
    presented = presented_token(request)
    if presented is None:
        raise PageAuthRequired(invalid=False)
    principal = await principal_of(request, presented.token)
    if principal is None:
        raise PageAuthRequired(invalid=True, clear_cookie=presented.source == "cookie")
    request.state.principal = principal
    return PageAuth(principal, presented.token if presented.source == "header" else None)


def set_token_cookie(response: Response, request: Request, token: str) -> None:
    response.set_cookie(
        COOKIE,
        token,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )


def remember(response: Response, request: Request, auth: PageAuth) -> Response:
    """Keep a header-authenticated page's token in the cookie (for its API calls)."""
    if auth.remember:
        set_token_cookie(response, request, auth.remember)
    return response


SIGN_IN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>sign in · hpo-service</title>
<style>body{{font:15px system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem}}
input{{font:inherit;width:100%;padding:.4rem;margin:.5rem 0}}
code{{background:#f3f4f6;padding:0 .2rem}}.error{{color:#dc2626}}</style></head>
<body><h1>hpo-service</h1>{message}
<p>Run <code>hpo token show</code> on the machine where the service runs (or ask its
admin for a token), then paste the token here:</p>
<form method="get" action="{action}"><input type="password" name="token" autocomplete="off"
 placeholder="API token" autofocus><button type="submit">Sign in</button></form>
</body></html>"""


def sign_in_response(request: Request, error: PageAuthRequired) -> HTMLResponse:
    message = (
        '<p class="error">That token is not valid.</p>'
        if error.invalid
        else "<p>This service needs an API token.</p>"
    )
    body = SIGN_IN_PAGE.format(message=message, action=html.escape(request.url.path))
    response = HTMLResponse(
        body,
        status_code=401,
        headers={"WWW-Authenticate": f'Basic realm="{REALM}", charset="UTF-8"'},
    )
    if error.clear_cookie:
        response.delete_cookie(COOKIE, path="/")
    return response


def sign_in_redirect(request: Request, sign_in: SignIn) -> RedirectResponse:
    response = RedirectResponse(sign_in.location, status_code=303)
    set_token_cookie(response, request, sign_in.token)
    return response


def visible_study(
    study_id: Annotated[int, Path(ge=1, le=MAX_STUDY_ID)],
    principal: PrincipalDep,
    store: StoreDep,
) -> StudyRecord:
    """The study, when the principal may see it. Raises StudyNotFound (404) for a study
    that is missing or someone else's: the two are indistinguishable."""
    return store.get_study(study_id, owner=principal.owner_filter)


async def visible_study_id(
    study_id: Annotated[int, Path(ge=1, le=MAX_STUDY_ID)],
    principal: PrincipalDep,
    request: Request,
) -> int:
    """The study's id, when the principal may see it; like :func:`visible_study`, but the
    owner comes from the study cache (a study's owner never changes), so a request
    already known to be allowed reads nothing. Raises StudyNotFound (404)."""
    cache = request.app.state.study_cache
    owner = cache.owner(study_id)
    if owner is None:
        owner = await run_in_threadpool(cache.load_owner, study_id)
    if not principal.may_see(owner):
        raise StudyNotFound(study_id)
    return study_id


def limit_study_creation(principal: PrincipalDep, request: Request) -> None:
    """429 when the principal created studies faster than its token bucket allows."""
    limiter: RateLimiter = request.app.state.create_limiter
    wait_s = limiter.acquire(principal.name)
    if wait_s > 0:
        retry = max(1, int(wait_s + 0.999))
        raise HTTPException(
            status_code=429,
            detail=f"too many studies created by {principal.name!r}; retry in {retry} s",
            headers={"Retry-After": str(retry)},
        )


OptionalPrincipalDep = Annotated[Principal | None, Depends(optional_principal)]
PageAuthDep = Annotated[PageAuth, Depends(page_principal)]
VisibleStudyDep = Annotated[StudyRecord, Depends(visible_study)]
VisibleStudyIdDep = Annotated[int, Depends(visible_study_id)]
CreateLimitDep = Depends(limit_study_creation)
