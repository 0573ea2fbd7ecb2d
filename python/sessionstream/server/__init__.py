"""Serving sessionstream apps with uvicorn, with socket handoff to the native engine.

- :mod:`sessionstream.server.handoff`: the ``sessionstream.handoff`` scope extension
  (no uvicorn import; what :mod:`sessionstream.fastapi` uses).
- :mod:`sessionstream.server.protocols`: the uvicorn protocol classes that provide it,
  also importable from here (``sessionstream.server:AUTO_HTTP``); importing them imports
  uvicorn, so they load on first use.
- :mod:`sessionstream.server.cli`: ``sessionstream serve``, uvicorn's command line with
  these classes as defaults; :mod:`sessionstream.server.gunicorn`: a gunicorn worker.

See docs/server.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sessionstream.server._versions import TESTED_UVICORN_VERSIONS, check_uvicorn_version
from sessionstream.server.handoff import (
    HANDOFF_EXTENSION,
    DetachedSocket,
    Handoff,
    HandoffError,
)

if TYPE_CHECKING:
    from sessionstream.server.protocols import (
        AUTO_HTTP,
        AUTO_WS,
        H11HandoffProtocol,
        HttpToolsHandoffProtocol,
        WebSocketsSansIOHandoffProtocol,
    )

__all__ = [
    "AUTO_HTTP",
    "AUTO_WS",
    "HANDOFF_EXTENSION",
    "TESTED_UVICORN_VERSIONS",
    "DetachedSocket",
    "H11HandoffProtocol",
    "Handoff",
    "HandoffError",
    "HttpToolsHandoffProtocol",
    "WebSocketsSansIOHandoffProtocol",
    "check_uvicorn_version",
]

_PROTOCOL_NAMES = frozenset(
    {
        "AUTO_HTTP",
        "AUTO_WS",
        "H11HandoffProtocol",
        "HttpToolsHandoffProtocol",
        "WebSocketsSansIOHandoffProtocol",
    }
)


def __getattr__(name: str) -> Any:
    if name not in _PROTOCOL_NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from sessionstream.server import protocols

    try:
        return getattr(protocols, name)
    except AttributeError:
        dependency = "httptools" if name.startswith("HttpTools") else "websockets"
        raise ImportError(
            f"{name} needs {dependency}: pip install 'sessionstream[server]'"
        ) from None


check_uvicorn_version()
