"""uvicorn protocol classes whose scopes carry the ``sessionstream.handoff`` extension.

Give them to uvicorn by import string (``--http sessionstream.server:AUTO_HTTP --ws
sessionstream.server:AUTO_WS``) or by class (``uvicorn.run(app, http=..., ws=...)``).
uvicorn's other implementations (the legacy ``websockets`` protocol, ``wsproto``,
``zttp``) are not supported: their scopes have no extension, so the app delivers in
Python.
"""

from __future__ import annotations

import asyncio

from sessionstream.server._h11_impl import H11HandoffProtocol

__all__ = [
    "AUTO_HTTP",
    "AUTO_WS",
    "H11HandoffProtocol",
    "HttpToolsHandoffProtocol",
    "WebSocketsSansIOHandoffProtocol",
]

AUTO_HTTP: type[asyncio.Protocol]
"""``HttpToolsHandoffProtocol`` when httptools is importable, else ``H11HandoffProtocol``
(as uvicorn's ``--http auto``)."""

AUTO_WS: type[asyncio.Protocol] | None
"""``WebSocketsSansIOHandoffProtocol``, or ``None`` (no WebSocket) without websockets."""

try:
    from sessionstream.server._httptools_impl import HttpToolsHandoffProtocol
except ImportError:  # httptools is optional for uvicorn
    AUTO_HTTP = H11HandoffProtocol
else:
    AUTO_HTTP = HttpToolsHandoffProtocol

try:
    from sessionstream.server._websockets_impl import WebSocketsSansIOHandoffProtocol
except ImportError:  # websockets is optional for uvicorn
    AUTO_WS = None
else:
    AUTO_WS = WebSocketsSansIOHandoffProtocol
