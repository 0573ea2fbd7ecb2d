"""``sessionstream serve APP [uvicorn options]``.

uvicorn's own command (``uvicorn.main``), with ``--http`` and ``--ws`` defaulting to the
handoff protocol classes and ``--log-config`` to uvicorn's logging plus a filter that
redacts session ids in access log lines (:mod:`sessionstream.server.log_filter`). Every
other option, and the ``UVICORN_*`` environment variables, are uvicorn's; an explicit
``--http`` / ``--ws`` / ``--log-config`` (or ``UVICORN_HTTP`` / ``UVICORN_WS`` /
``UVICORN_LOG_CONFIG``) still wins.
"""

from __future__ import annotations

from collections.abc import Sequence

import click
from uvicorn.main import main as uvicorn_main

from sessionstream.server.log_filter import LOG_CONFIG

DEFAULTS: dict[str, str] = {
    "http": "sessionstream.server:AUTO_HTTP",
    "ws": "sessionstream.server:AUTO_WS",
    "log_config": str(LOG_CONFIG),
}

cli = click.Group(
    "sessionstream",
    help="Serve a sessionstream app.",
    commands={"serve": uvicorn_main},
)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``sessionstream`` console script and ``python -m sessionstream``."""
    cli.main(
        args=list(argv) if argv is not None else None,
        prog_name="sessionstream",
        # Below the command line and the environment in click's order of precedence.
        default_map={"serve": dict(DEFAULTS)},
    )
