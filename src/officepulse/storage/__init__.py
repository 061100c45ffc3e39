"""Storage: the one writer path and the read cursors (see :mod:`officepulse.storage.store`)."""

from officepulse.storage.store import (
    Batch,
    Cursor,
    Store,
    StoreClosedError,
    StoreLockedError,
    StoreUnavailableError,
    apply_migrations,
    open_connection,
)

__all__ = [
    "Batch",
    "Cursor",
    "Store",
    "StoreClosedError",
    "StoreLockedError",
    "StoreUnavailableError",
    "apply_migrations",
    "open_connection",
]
