"""Keep session ids out of access logs.

A session id is a bearer secret. Clients of this package never put it in a URL, but a
legacy client (``session_query_enabled``) or a stray link may, and an access log line
records the full request target. :class:`RedactSessionIds` rewrites ``session_id=<value>``
in a record's message and arguments to ``session_id=[redacted]`` before any handler
formats it. ``sessionstream serve`` installs it on ``uvicorn.access`` and ``uvicorn.error``
(which logs WebSocket handshakes with their target) through its default ``--log-config``
(``log_config.json`` next to this module); to keep it with a log configuration of your
own, add it to that file's ``filters`` and to both loggers::

    "filters": {"redact_session_ids": {"()": "sessionstream.server.log_filter.RedactSessionIds"}},
    "loggers": {"uvicorn.access": {"handlers": ["access"], "filters": ["redact_session_ids"]},
                "uvicorn.error": {"filters": ["redact_session_ids"]}}
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from pathlib import Path

REDACTED = "[redacted]"

LOG_CONFIG = Path(__file__).with_name("log_config.json")
"""uvicorn's default log configuration plus this filter on ``uvicorn.access``."""


class RedactSessionIds(logging.Filter):
    """Replace the value of every ``<name>=`` query parameter in ``names`` (default
    ``session_id``) in a record's message and string arguments. Never drops a record."""

    def __init__(self, name: str = "", names: Iterable[str] = ("session_id",)) -> None:
        super().__init__(name)
        alternatives = "|".join(re.escape(n) for n in names)
        # Up to the next separator of a query or a log line; percent-encoded or not.
        self._pattern = re.compile(rf"(?i)((?:^|[?&;\s\"'])(?:{alternatives})=)[^&;#\s\"']*")

    def redact(self, text: str) -> str:
        return self._pattern.sub(r"\1" + REDACTED, text)

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = self.redact(record.msg)
        args = record.args
        if isinstance(args, tuple):
            record.args = tuple(self.redact(a) if isinstance(a, str) else a for a in args)
        elif isinstance(args, dict):
            record.args = {k: self.redact(v) if isinstance(v, str) else v for k, v in args.items()}
        return True
