"""A gunicorn worker that serves with the handoff protocol classes.

``gunicorn -k sessionstream.server.gunicorn.HandoffWorker module:app``. It is the
``uvicorn-worker`` package's ``UvicornWorker`` (uvicorn's own ``uvicorn.workers`` is
deprecated) with ``--http`` / ``--ws`` set to ``AUTO_HTTP`` / ``AUTO_WS``.
"""

from __future__ import annotations

from typing import Any

from uvicorn_worker import UvicornWorker  # type: ignore[import-untyped]  # no py.typed

from sessionstream.server.cli import DEFAULTS


class HandoffWorker(UvicornWorker):  # type: ignore[misc]
    CONFIG_KWARGS: dict[str, Any] = {**UvicornWorker.CONFIG_KWARGS, **DEFAULTS}
