"""A gunicorn worker that serves with the handoff protocol classes.

``gunicorn -k sessionstream.server.gunicorn.HandoffWorker module:app``. It is the
``uvicorn-worker`` package's ``UvicornWorker`` (uvicorn's own ``uvicorn.workers`` is
deprecated) with ``--http`` / ``--ws`` set to ``AUTO_HTTP`` / ``AUTO_WS``. Logging stays
gunicorn's (its handlers, ``--access-logfile``, ``--log-level``), with the session id
redaction of :mod:`sessionstream.server.log_filter` added to uvicorn's two loggers.
"""

from __future__ import annotations

import logging
from typing import Any

from uvicorn_worker import UvicornWorker  # type: ignore[import-untyped]  # no py.typed

from sessionstream.server.cli import DEFAULTS
from sessionstream.server.log_filter import RedactSessionIds


class HandoffWorker(UvicornWorker):  # type: ignore[misc]
    # Not the CLI's --log-config: it would replace the handlers gunicorn gave uvicorn.
    CONFIG_KWARGS: dict[str, Any] = {
        **UvicornWorker.CONFIG_KWARGS,
        **{k: v for k, v in DEFAULTS.items() if k != "log_config"},
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        redact = RedactSessionIds()
        for name in ("uvicorn.error", "uvicorn.access"):
            logging.getLogger(name).addFilter(redact)
