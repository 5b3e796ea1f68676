"""The embedded result store (SQLite) and its single writer."""

from ._records import ConversationResult, ErrorInfo, RunKind, RunRecord
from ._sqlite import (
    DEFAULT_STORE_PATH,
    HEARTBEAT_S,
    LEASE_TTL_S,
    MIGRATIONS,
    ReviewStatus,
    SQLiteStore,
    StoreItem,
    WindowScore,
    config_diff,
)
from ._writer import store_writer

__all__ = [
    "DEFAULT_STORE_PATH",
    "HEARTBEAT_S",
    "LEASE_TTL_S",
    "MIGRATIONS",
    "ConversationResult",
    "ErrorInfo",
    "ReviewStatus",
    "RunKind",
    "RunRecord",
    "SQLiteStore",
    "StoreItem",
    "WindowScore",
    "config_diff",
    "store_writer",
]
