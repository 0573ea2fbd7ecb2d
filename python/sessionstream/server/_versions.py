"""The uvicorn versions the protocol classes were tested with."""

from __future__ import annotations

import importlib.metadata
import logging

TESTED_UVICORN_VERSIONS: tuple[str, ...] = ("0.54.0",)

logger = logging.getLogger("sessionstream.server")

_warned = False


def check_uvicorn_version(version: str | None = None) -> bool:
    """Whether ``version`` (default: the installed uvicorn) is a tested one.

    When it is not, log a warning, once per process: the handoff classes subclass
    uvicorn's protocol classes and rely on their internal state. Without uvicorn
    installed there is nothing to check.
    """
    global _warned
    if version is None:
        try:
            version = importlib.metadata.version("uvicorn")
        except importlib.metadata.PackageNotFoundError:
            return True
    if version in TESTED_UVICORN_VERSIONS:
        return True
    if not _warned:
        _warned = True
        logger.warning(
            "sessionstream.server was tested with uvicorn %s, not %s: socket handoff "
            "may misbehave; pin uvicorn==%s",
            " / ".join(TESTED_UVICORN_VERSIONS),
            version,
            TESTED_UVICORN_VERSIONS[-1],
        )
    return False
