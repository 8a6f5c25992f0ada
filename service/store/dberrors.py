"""Which database errors mean "the store is unavailable", and turning them into StoreUnavailable."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from sqlalchemy import exc

from service.store.errors import StoreUnavailable

# Errors of the connection or the server, not of our statements: the server is down or
# unreachable, the connection dropped, the pool ran dry, SQLite's file is locked or
# cannot be opened. IntegrityError and ProgrammingError are bugs and propagate.
UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    exc.OperationalError,
    exc.InterfaceError,
    exc.DisconnectionError,
    exc.TimeoutError,
)


def is_unavailable(error: BaseException) -> bool:
    if isinstance(error, UNAVAILABLE_ERRORS):
        return True
    return isinstance(error, exc.DBAPIError) and error.connection_invalidated


@contextlib.contextmanager
def unavailable_as_store_error() -> Iterator[None]:
    """Re-raise connection-level database errors as :class:`StoreUnavailable`."""
    try:
        yield
    except exc.SQLAlchemyError as error:
        if is_unavailable(error):
            raise StoreUnavailable(f"database unavailable: {_short(error)}") from error
        raise


def _short(error: BaseException) -> str:
    orig = getattr(error, "orig", None)
    text = str(orig if orig is not None else error).strip()
    return text.splitlines()[0] if text else type(error).__name__
