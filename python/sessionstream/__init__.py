"""Live, isolated, resumable event streams to browser sessions.

The native core (``sessionstream._core``) owns channels, history, mailboxes,
sessions and limits; :mod:`sessionstream.fastapi` serves them over SSE and
WebSocket.
"""

from sessionstream._core import (
    ClosedError,
    Connection,
    ConnectionManager,
    Hub,
    InvalidArgumentError,
    InvalidUtf8Error,
    KafkaAdmin,
    KafkaError,
    KafkaPoolFullError,
    KafkaSessionPool,
    KafkaSink,
    KafkaSource,
    LifecycleEvent,
    LimitExceededError,
    Notifier,
    PayloadTooLargeError,
    SessionStore,
    SessionStreamError,
    event_hubs_properties,
    generate_session_id,
    is_foreign_private_channel,
    is_valid_session_id,
    private_channel,
    validate_session_id,
)

__version__ = "0.1.0"

__all__ = [
    "ClosedError",
    "Connection",
    "ConnectionManager",
    "Hub",
    "InvalidArgumentError",
    "InvalidUtf8Error",
    "KafkaAdmin",
    "KafkaError",
    "KafkaPoolFullError",
    "KafkaSessionPool",
    "KafkaSink",
    "KafkaSource",
    "LifecycleEvent",
    "LimitExceededError",
    "Notifier",
    "PayloadTooLargeError",
    "SessionStore",
    "SessionStreamError",
    "__version__",
    "event_hubs_properties",
    "generate_session_id",
    "is_foreign_private_channel",
    "is_valid_session_id",
    "private_channel",
    "validate_session_id",
]
